"""gust.storage: a small client for the engine's S3-compatible object API
(/s3 on the engine's port, docs/STORAGE.md), with no boto3.

    from gust import storage
    st = storage.Client()                  # the engine gust.FunctionExecutor() would use
    st.create_bucket("data", exist_ok=True)
    st.put("data", "in/a.txt", b"hello")
    st.get("data", "in/a.txt", range=(1, 3))          # b"ell"
    [o.key for o in st.list("data", prefix="in/")]     # ["in/a.txt"]
    with st.open("data", "big.bin") as f:              # streamed, never whole in memory
        for block in iter(lambda: f.read(1 << 20), b""): ...

Where requests go: url= (a client's engine URL), else $GUST_URL, else
$GUST_ENDPOINT: inside a map task's sandbox that is the sandbox channel
(unix:///run/gust/engine.sock), which serves /s3 for the buckets the job
was granted (Executor.map(..., buckets=[...]), docs/MAP.md), else the local
engine (started if need be, as gust.connect does). Requests to a TCP engine
are signed with SigV4 for service "s3" when there are credentials (the same
ones as gust's other calls, python/gust/transport.py); the channel's are not.

Errors are values of the engine's S3 answer: NoSuchBucket and NoSuchKey
(both StorageError, which is an EngineError) name the bucket and key; any
other refusal is a StorageError with S3's code (e.g. "AccessDenied",
"BucketNotEmpty") in .code. EngineUnavailableError when the engine cannot
be reached.

Big data: put() of a file-like body, or of bytes over MULTIPART_THRESHOLD,
uploads in parts of PART_SIZE (multipart: the engine holds at most one part
of a request in memory); open() streams a GET. A Client is thread-safe (one
kept-alive connection per thread, transport.py).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator, Union

from . import engine
from .errors import EngineError
from .transport import S3_SERVICE, Transport

PREFIX = "/s3"
# A put() of a file-like body is read PART_SIZE at a time; bytes over
# MULTIPART_THRESHOLD are sent in PART_SIZE parts too. Both under the
# engine's 100 MB request limit, and above S3's 5 MiB minimum part.
PART_SIZE = 16 << 20
MULTIPART_THRESHOLD = 64 << 20
DELETE_BATCH = 1000  # S3's most keys per DeleteObjects

Body = Union[bytes, bytearray, memoryview, str, IO[bytes], IO[str]]
Range = Union[tuple[int, int], tuple[int, None], str, None]


class StorageError(EngineError):
    """A refusal of the object API: .code is S3's error code (e.g.
    "AccessDenied"), .bucket and .key what it was about ("" if none)."""

    def __init__(self, message: str, status: int, code: str, bucket: str = "",
                 key: str = "", body: str = "") -> None:
        super().__init__(message, status, body)
        self.code = code
        self.bucket = bucket
        self.key = key

    def __reduce__(self) -> Any:
        # Raised in a task, re-raised in the client: pickled with every field.
        return (type(self), (str(self), self.status, self.code, self.bucket, self.key,
                             self.body))


class NoSuchBucket(StorageError):
    """The bucket does not exist."""


class NoSuchKey(StorageError):
    """The bucket has no object of that key."""


@dataclass
class ObjectInfo:
    """One object of a listing or a head(): key, size (bytes), etag (S3's,
    without quotes), last_modified (as the engine wrote it), and from head()
    content_type and metadata (x-amz-meta-* without the prefix)."""

    key: str
    size: int
    etag: str
    last_modified: str
    content_type: str = ""
    metadata: dict[str, str] | None = None


@dataclass
class ListPage:
    """One page of ListObjectsV2: objects, common_prefixes (with a
    delimiter) and next_token (None on the last page)."""

    objects: list[ObjectInfo]
    common_prefixes: list[str]
    next_token: str | None


def _strip_ns(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if _strip_ns(c.tag) == name]


def _text(elem: ET.Element, name: str, default: str = "") -> str:
    found = _children(elem, name)
    return (found[0].text or "") if found else default


def _xml(data: bytes, what: str) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as e:
        raise EngineError("%s: the engine's answer is not XML (%s): %r"
                          % (what, e, data[:200]), 0, data.decode("utf-8", "replace")) from e


def range_header(range: Range) -> str | None:
    """The Range header of a range: (first, last) inclusive bytes, (first,
    None) to the end, or a header value ("bytes=0-99") as Lithops passes
    it; None for none. Raises ValueError for anything else."""
    if range is None:
        return None
    if isinstance(range, str):
        if not range.startswith("bytes="):
            raise ValueError("a range string must look like 'bytes=FIRST-LAST', not %r"
                             % range)
        return range
    if (isinstance(range, tuple) and len(range) == 2 and isinstance(range[0], int)
            and (range[1] is None or isinstance(range[1], int))):
        first, last = range
        if first < 0 or (last is not None and last < first):
            raise ValueError("range (%r, %r): first must be >= 0 and last >= first"
                             % (first, last))
        return "bytes=%d-%s" % (first, "" if last is None else last)
    raise ValueError("range must be (first, last), (first, None) or 'bytes=...', not %r"
                     % (range,))


class _Raw(io.RawIOBase):
    """An HTTP response's body as a raw stream; closing it closes the connection."""

    def __init__(self, resp: Any) -> None:
        self._resp = resp

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return int(self._resp.readinto(b))

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
        super().close()


class Client:
    """The object API of one engine. url, credentials ((key id, secret);
    default: transport.find_credentials), timeout (s, per request) and
    ca_bundle as gust.Transport's; url None: see the module's docstring.
    Raises EngineUnavailableError when no engine answers."""

    def __init__(self, url: str | None = None, credentials: tuple[str, str] | None = None,
                 timeout: float = 120.0, ca_bundle: str | None = None) -> None:
        resolved, explicit = engine.resolve_url(url)
        if not explicit:
            resolved = engine.connect(None).url  # the local engine, started if need be
        # A cluster's nodes (comma-separated) share no objects yet: the first one serves.
        self.url = resolved.split(",")[0].strip().rstrip("/")
        self.transport = Transport(self.url, timeout, credentials, ca_bundle,
                                   service=S3_SERVICE)

    # -- requests ---------------------------------------------------------------------

    @staticmethod
    def _path(bucket: str, key: str | None = None, query: dict[str, Any] | None = None) -> str:
        if not isinstance(bucket, str) or not bucket:
            raise ValueError("a bucket name must be a non-empty string, not %r" % (bucket,))
        path = PREFIX + "/" + urllib.parse.quote(bucket, safe="")
        if key is not None:
            if not isinstance(key, str) or not key:
                raise ValueError("an object key must be a non-empty string, not %r" % (key,))
            path += "/" + urllib.parse.quote(key, safe="/~")
        if query:
            path += "?" + "&".join(
                urllib.parse.quote(k, safe="-_.~") if v is None else
                "%s=%s" % (urllib.parse.quote(k, safe="-_.~"),
                           urllib.parse.quote(str(v), safe="-_.~"))
                for k, v in query.items())
        return path

    def _request(self, method: str, bucket: str, key: str | None = None,
                 query: dict[str, Any] | None = None, body: bytes | None = None,
                 headers: dict[str, str] | None = None,
                 expect: Iterable[int] = (200,)) -> tuple[bytes, dict[str, str]]:
        path = self._path(bucket, key, query)
        status, data, resp_headers = self.transport.request(method, path, body, headers,
                                                            with_headers=True)
        if status not in tuple(expect):
            raise self._error(method, path, status, data, bucket, key or "")
        return data, resp_headers

    def _error(self, method: str, path: str, status: int, data: bytes, bucket: str,
               key: str) -> StorageError:
        """The exception of a refusal: S3's <Error> document, or for a HEAD
        (no body) the status alone."""
        code, message = "", ""
        text = data.decode("utf-8", "replace")
        if data:
            try:
                root = ET.fromstring(data)
                code, message = _text(root, "Code"), _text(root, "Message")
            except ET.ParseError:
                message = _json_message(text)  # refused before routing: the engine's JSON
        if not code and status == 404:
            code = "NoSuchKey" if key else "NoSuchBucket"
        if not code and status == 403:
            code = "AccessDenied"
        code = code or "HTTP%d" % status
        where = "bucket %r" % bucket + (", key %r" % key if key else "")
        detail = ": " + message if message else ""
        full = "%s %s -> HTTP %d %s (%s)%s" % (method, path, status, code, where, detail)
        cls = {"NoSuchKey": NoSuchKey, "NoSuchBucket": NoSuchBucket}.get(code, StorageError)
        return cls(full, status, code, bucket, key, text)

    # -- buckets ----------------------------------------------------------------------

    def create_bucket(self, bucket: str, exist_ok: bool = False) -> None:
        """Creates bucket. exist_ok: an existing bucket of this engine is no
        error (default: StorageError "BucketAlreadyOwnedByYou")."""
        try:
            self._request("PUT", bucket)
        except StorageError as e:
            if not (exist_ok and e.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")):
                raise

    def delete_bucket(self, bucket: str) -> None:
        """Deletes an empty bucket (StorageError "BucketNotEmpty" otherwise)."""
        self._request("DELETE", bucket, expect=(200, 204))

    def head_bucket(self, bucket: str) -> dict[str, str]:
        """The bucket's HEAD headers; NoSuchBucket when it does not exist."""
        return self._request("HEAD", bucket)[1]

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self.head_bucket(bucket)
            return True
        except NoSuchBucket:
            return False

    def list_buckets(self) -> list[str]:
        """The names of every bucket, sorted."""
        status, data = self.transport.request("GET", PREFIX + "/")
        if status != 200:
            raise self._error("GET", PREFIX + "/", status, data, "", "")
        root = _xml(data, "ListBuckets")
        names = [_text(b, "Name") for bs in _children(root, "Buckets")
                 for b in _children(bs, "Bucket")]
        return sorted(names)

    # -- objects ----------------------------------------------------------------------

    def put(self, bucket: str, key: str, body: Body, content_type: str | None = None,
            metadata: dict[str, str] | None = None) -> str:
        """Stores body (bytes, str as UTF-8, or a binary or text file-like
        object read to its end) as key; returns its ETag. A file-like body
        larger than PART_SIZE, or bytes over MULTIPART_THRESHOLD, go up as a
        multipart upload (aborted if a part fails). Raises TypeError for
        another body type."""
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        for name, value in (metadata or {}).items():
            headers["x-amz-meta-" + name] = str(value)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if isinstance(body, (bytes, bytearray, memoryview)):
            data = memoryview(body)
            if len(data) <= MULTIPART_THRESHOLD:
                return self._put_one(bucket, key, bytes(data), headers)
            parts: Iterator[bytes] = (bytes(data[i:i + PART_SIZE])
                                      for i in range(0, len(data), PART_SIZE))
            return self._put_parts(bucket, key, parts, headers)
        if not hasattr(body, "read"):
            raise TypeError("put: body must be bytes, str or a readable file object, not %s"
                            % type(body).__name__)
        pieces = _read_pieces(body)
        first = next(pieces, b"")
        second = next(pieces, None)
        if second is None:
            return self._put_one(bucket, key, first, headers)
        return self._put_parts(bucket, key, _chain([first, second], pieces), headers)

    def _put_one(self, bucket: str, key: str, data: bytes, headers: dict[str, str]) -> str:
        headers = dict(headers, **{"Content-MD5": _md5_b64(data)})
        return self._request("PUT", bucket, key, body=data,
                             headers=headers)[1].get("etag", "").strip('"')

    def _put_parts(self, bucket: str, key: str, parts: Iterator[bytes],
                   headers: dict[str, str]) -> str:
        data, _ = self._request("POST", bucket, key, {"uploads": None}, body=b"",
                                headers=headers)
        upload_id = _text(_xml(data, "CreateMultipartUpload"), "UploadId")
        completed = False
        try:
            etags = []
            for number, part in enumerate(parts, 1):
                _, h = self._request("PUT", bucket, key,
                                     {"partNumber": number, "uploadId": upload_id}, body=part,
                                     headers={"Content-MD5": _md5_b64(part)})
                etags.append(h.get("etag", ""))
            doc = "".join("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>"
                          % (n, etag) for n, etag in enumerate(etags, 1))
            done, _ = self._request(
                "POST", bucket, key, {"uploadId": upload_id},
                body=("<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % doc).encode())
            root = _xml(done, "CompleteMultipartUpload")
            if _strip_ns(root.tag) == "Error":  # S3 may fail a completion under a 200
                raise self._error("POST", self._path(bucket, key), 200, done, bucket, key)
            completed = True
            return _text(root, "ETag").strip('"')
        finally:
            if not completed:  # whatever stopped it: the parts stored so far go
                try:
                    self._request("DELETE", bucket, key, {"uploadId": upload_id},
                                  expect=(204, 200))
                except EngineError:
                    pass  # the first error is the one to report

    def get(self, bucket: str, key: str, range: Range = None) -> bytes:
        """The object's bytes, or those of range (see range_header; S3's
        InvalidRange 416 beyond the end)."""
        rh = range_header(range)
        return self._request("GET", bucket, key, headers={"Range": rh} if rh else None,
                             expect=(200, 206))[0]

    def open(self, bucket: str, key: str, range: Range = None) -> io.BufferedReader:
        """The object (or range) as a binary file object read from the engine
        as it is consumed (read, readline, iteration by lines); close it (or
        use `with`) to free its connection."""
        rh = range_header(range)
        path = self._path(bucket, key)
        resp = self.transport.stream("GET", path, {"Range": rh} if rh else None)
        if resp.status not in (200, 206):
            data = resp.read()
            resp.close()
            raise self._error("GET", path, resp.status, data, bucket, key)
        return io.BufferedReader(_Raw(resp), buffer_size=256 << 10)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """The object's size, ETag, time, Content-Type and metadata; NoSuchKey
        (or NoSuchBucket, when the bucket is what is missing)."""
        try:
            _, h = self._request("HEAD", bucket, key)
        except NoSuchKey:
            self.head_bucket(bucket)  # NoSuchBucket names the real problem
            raise
        return ObjectInfo(key, int(h.get("content-length", 0)), h.get("etag", "").strip('"'),
                          h.get("last-modified", ""), h.get("content-type", ""),
                          {k[len("x-amz-meta-"):]: v for k, v in h.items()
                           if k.startswith("x-amz-meta-")})

    def head_headers(self, bucket: str, key: str) -> dict[str, str]:
        """The object's HEAD headers, lower-case names (what Lithops'
        head_object returns); errors as head()."""
        try:
            return self._request("HEAD", bucket, key)[1]
        except NoSuchKey:
            self.head_bucket(bucket)
            raise

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._request("HEAD", bucket, key)
            return True
        except NoSuchKey:
            return False

    def delete(self, bucket: str, key: str) -> None:
        """Deletes key (no error if it is missing, as S3; NoSuchBucket if the
        bucket is)."""
        self._request("DELETE", bucket, key, expect=(204, 200))

    def delete_many(self, bucket: str, keys: Iterable[str]) -> list[tuple[str, str]]:
        """Deletes keys, DELETE_BATCH per request; returns the (key, error
        code) of those the engine could not delete ([] when all went)."""
        keys = list(keys)
        failed: list[tuple[str, str]] = []
        for i in range(0, len(keys), DELETE_BATCH):
            doc = "".join("<Object><Key>%s</Key></Object>" % _xml_escape(k)
                          for k in keys[i:i + DELETE_BATCH])
            body = ("<Delete><Quiet>true</Quiet>%s</Delete>" % doc).encode("utf-8")
            data, _ = self._request("POST", bucket, None, {"delete": None}, body=body,
                                    headers={"Content-MD5": _md5_b64(body)})
            root = _xml(data, "DeleteObjects")
            failed += [(_text(e, "Key"), _text(e, "Code")) for e in _children(root, "Error")]
        return failed

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> str:
        """Copies an object (its metadata too); returns the copy's ETag."""
        source = "/%s/%s" % (urllib.parse.quote(src_bucket, safe=""),
                             urllib.parse.quote(src_key, safe="/~"))
        data, _ = self._request("PUT", dst_bucket, dst_key,
                                headers={"x-amz-copy-source": source})
        root = _xml(data, "CopyObject")
        if _strip_ns(root.tag) == "Error":
            raise self._error("PUT", self._path(dst_bucket, dst_key), 200, data, src_bucket,
                              src_key)
        return _text(root, "ETag").strip('"')

    def list_page(self, bucket: str, prefix: str = "", delimiter: str | None = None,
                  token: str | None = None, max_keys: int | None = None,
                  start_after: str | None = None) -> ListPage:
        """One page of ListObjectsV2 (at most max_keys, the engine's 1000 by
        default): objects under prefix in key order; with a delimiter, the
        keys that have it after the prefix are rolled up into
        common_prefixes. token: the previous page's next_token."""
        query: dict[str, Any] = {"list-type": 2}
        for name, value in (("prefix", prefix), ("delimiter", delimiter),
                            ("continuation-token", token), ("max-keys", max_keys),
                            ("start-after", start_after)):
            if value:
                query[name] = value
        data, _ = self._request("GET", bucket, None, query)
        root = _xml(data, "ListObjectsV2")
        objects = [ObjectInfo(_text(c, "Key"), int(_text(c, "Size", "0")),
                              _text(c, "ETag").strip('"'), _text(c, "LastModified"))
                   for c in _children(root, "Contents")]
        prefixes = [_text(p, "Prefix") for p in _children(root, "CommonPrefixes")]
        truncated = _text(root, "IsTruncated") == "true"
        token = _text(root, "NextContinuationToken") or None
        return ListPage(objects, prefixes, token if truncated else None)

    def list_prefixes(self, bucket: str, prefix: str = "", delimiter: str = "/") -> list[str]:
        """The common prefixes under prefix ("folders" for delimiter '/')."""
        out: list[str] = []
        token = None
        while True:
            page = self.list_page(bucket, prefix, delimiter, token)
            out += page.common_prefixes
            token = page.next_token
            if token is None:
                return out

    # Last of the methods that annotate with list[...]: past here, `list` is this method.
    def list(self, bucket: str, prefix: str = "", delimiter: str | None = None,
             page_size: int | None = None) -> Iterator[ObjectInfo]:
        """Every object under prefix (page after page, lazily); with a
        delimiter, only those not rolled up into a common prefix."""
        token = None
        while True:
            page = self.list_page(bucket, prefix, delimiter, token, page_size)
            yield from page.objects
            token = page.next_token
            if token is None:
                return

    def upload_file(self, path: str, bucket: str, key: str) -> str:
        """put() of a local file, in parts when big; returns the ETag."""
        with io.open(path, "rb") as f:
            return self.put(bucket, key, f)

    def download_file(self, bucket: str, key: str, path: str) -> None:
        """Writes the object to path, streamed."""
        with self.open(bucket, key) as src, io.open(path, "wb") as dst:
            while True:
                block = src.read(1 << 20)
                if not block:
                    return
                dst.write(block)

    def close(self) -> None:
        self.transport.close()


def _json_message(text: str) -> str:
    try:
        doc = json.loads(text)
        return str(doc.get("Message") or doc.get("message") or text)[:1000]
    except (ValueError, AttributeError):
        return text[:500]


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _xml_escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _read_pieces(f: Any) -> Iterator[bytes]:
    """A file object's content, PART_SIZE bytes at a time (a text file's as UTF-8)."""
    while True:
        piece = f.read(PART_SIZE)
        if not piece:
            return
        if isinstance(piece, str):
            piece = piece.encode("utf-8")
        # A text or unbuffered file may return less than asked: fill the part.
        while len(piece) < PART_SIZE:
            more = f.read(PART_SIZE - len(piece))
            if not more:
                break
            piece += more.encode("utf-8") if isinstance(more, str) else more
        yield piece


def _chain(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from rest


__all__ = ["Client", "ListPage", "NoSuchBucket", "NoSuchKey", "ObjectInfo", "StorageError",
           "range_header"]
