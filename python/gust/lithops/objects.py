"""Lithops' data-processing maps on gust: functions with an `obj`, `storage`
or `id` parameter (lithops/job/partitioner.py and worker/jobrunner.py are
the reference; this is gust's own code).

- `storage`: the task gets a gust.lithops Storage, connected in the sandbox
  through its channel.
- `id`: the task gets its call's index in the map.
- `obj`: each item names objects of the storage: "bucket/prefix/",
  "bucket/key", "<backend>://bucket/..." or a CloudObject. partition() lists
  them in the client (one task per object, or per byte range with
  obj_chunk_size / obj_chunk_number, ranges reaching past the chunk by
  CHUNK_THRESHOLD so that a line cut by a boundary is read whole by the
  chunk it starts in, Lithops' newline rule); the task reads its range and
  gets the CloudObject with data_stream (read from the engine as it is
  consumed), data_byte_range, chunk_size, part and total_parts set.
  An http(s) URL (or a CloudObjectUrl) is sized by a HEAD request in the
  client and chunked by the same rules (one part when the server does not
  advertise Accept-Ranges, as Lithops); the task GETs its range itself
  (so the map needs the network) and gets a CloudObjectUrl with the same
  attributes and url. Local paths (Lithops reads those too) are not taken:
  ValueError naming them.

Pure functions and picklable closures; thread-safe.
"""

from __future__ import annotations

import inspect
import io
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import IO, Any, Callable, Iterator

from .storage import Storage, open_stream
from .storage.utils import CloudObject, CloudObjectUrl, ObjectPart
from .utils import split_object_url

CHUNK_THRESHOLD = 128 * 1024  # how far a range reads past its chunk (Lithops')
RESERVED = ("storage", "id")  # parameters the task fills in, not the items
URL_SCHEMES = ("http://", "https://")
# A server that neither answers nor sends a byte for this long fails the HEAD or the task
# (with the URL named) instead of holding a sandbox until the map's timeout.
URL_TIMEOUT_S = 60.0


def parameters(func: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return set()


def needs_wrapping(func: Callable[..., Any]) -> bool:
    """Whether func takes one of Lithops' injected parameters (obj, storage, id)."""
    return bool(parameters(func) & {"obj", "storage", "id"})


def item_dicts(func: Callable[..., Any], items: list[Any]) -> list[dict[str, Any]]:
    """Each item as a dict of func's parameters, storage and id left out
    (Lithops' verify_args): a dict as it is, a tuple as positional
    arguments, anything else as the first argument. Raises TypeError naming
    an item that does not fit."""
    sig = inspect.signature(func)
    bindable = sig.replace(parameters=[p for n, p in sig.parameters.items()
                                       if n not in RESERVED])
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            out.append(dict(item))
            continue
        try:
            bound = bindable.bind(*item) if isinstance(item, tuple) else bindable.bind(item)
        except TypeError as e:
            raise TypeError("item %d (%r) does not fit %s%s: %s"
                            % (i, item, getattr(func, "__name__", "the function"),
                               bindable, e)) from e
        out.append(dict(bound.arguments))
    return out


def chunk_ranges(obj_size: int, chunk_size: int | None, chunk_number: int | None,
                 newline: str | None) -> list[tuple[tuple[int, int] | None, int]]:
    """The (byte range or None for the whole object, chunk size) of each part
    of an object of obj_size bytes, by Lithops' rules: chunk_number parts of
    equal size, else parts of chunk_size, else one; with a newline a middle
    range starts a byte early (to see whether the previous chunk ended a
    line) and reads CHUNK_THRESHOLD past its end (to finish its last line).
    As Lithops, an object of 0 or 1 bytes has no parts."""
    if chunk_number:
        rest = obj_size % chunk_number
        size = obj_size // chunk_number + round(rest / chunk_number + 0.5)
    else:
        size = chunk_size or obj_size
    parts: list[tuple[tuple[int, int] | None, int]] = []
    done = 0
    while done < obj_size - 1:
        if obj_size <= size:
            parts.append((None, obj_size))
            size = obj_size
        elif newline is None:
            parts.append(((done, done + size - 1), size))
        elif done + size < obj_size:
            parts.append(((done - 1 if done else 0, done + size + CHUNK_THRESHOLD), size))
        else:
            size = obj_size - done
            parts.append(((done - 1, obj_size - 1), size))
        done += size
    return parts


def is_url(spec: Any) -> bool:
    """Whether an obj item names an object by URL (Lithops' test is "starts
    with http"; gust's is the scheme, so a bucket called "httpdata" is a bucket)."""
    return isinstance(spec, CloudObjectUrl) or (isinstance(spec, str)
                                                and spec.lower().startswith(URL_SCHEMES))


def url_size(url: str) -> tuple[int, bool]:
    """(size, whether byte ranges may be asked) of the object at url, from a
    HEAD request as Lithops' partitioner. Raises ValueError naming url when
    it does not answer 2xx or gives no Content-Length (Lithops would make no
    task for it, silently)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"),
                                    timeout=URL_TIMEOUT_S) as r:
            headers = r.headers
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ValueError("obj %r: its HEAD request failed: %s" % (url, e)) from e
    length = headers.get("Content-Length")
    if length is None or not length.strip().isdigit():
        raise ValueError("obj %r: its HEAD answer gives no Content-Length (%r), so "
                         "gust.lithops cannot size it into tasks" % (url, length))
    ranges = headers.get("Accept-Ranges")
    return int(length), ranges is not None and "bytes" in ranges.lower()


def url_parts(url: str, chunk_size: int | None, chunk_number: int | None,
              newline: str | None) -> list[tuple[tuple[int, int] | None, int]]:
    """chunk_ranges for the object at url (url_size): one part, read whole,
    when its server does not say it takes byte ranges (as Lithops)."""
    size, ranged = url_size(url)
    if not ranged:
        chunk_size, chunk_number = None, None
    return chunk_ranges(size, chunk_size, chunk_number, newline)


def partition(storage: Storage, entries: list[dict[str, Any]], chunk_size: int | None,
              chunk_number: int | None, newline: str | None, network: bool = True
              ) -> tuple[list[dict[str, Any]], list[int], set[str]]:
    """(one entry per task, the number of parts of each object in order,
    the buckets read) for entries whose "obj" names objects of the storage
    or URLs (url_parts; their HEAD requests run at once). Raises ValueError
    for a local path, an entry without "obj", a URL when not network (its
    task could not fetch it), a URL url_size refuses, or when nothing is
    found; StorageNoSuchKeyError for a missing object."""
    for entry in entries:
        if "obj" not in entry:
            raise ValueError("an obj function's item must give obj, not %r" % (entry,))
    urls = [e["obj"].url if isinstance(e["obj"], CloudObjectUrl) else e["obj"]
            for e in entries if is_url(e["obj"])]
    if urls and not network:
        raise ValueError("obj %r: a URL is fetched by the task itself, and this executor's "
                         "sandboxes have no network (network=False); pass network=True "
                         "or put the data in a bucket" % (urls[0],))
    url_sizes: dict[str, list[tuple[tuple[int, int] | None, int]]] = {}
    if urls:
        unique = list(dict.fromkeys(urls))
        with ThreadPoolExecutor(min(32, len(unique))) as pool:
            url_sizes = dict(zip(unique, pool.map(
                lambda u: url_parts(u, chunk_size, chunk_number, newline), unique)))
    tasks: list[dict[str, Any]] = []
    parts_per_object: list[int] = []
    buckets: set[str] = set()
    for entry in entries:
        spec = entry["obj"]
        if is_url(spec):
            url = spec.url if isinstance(spec, CloudObjectUrl) else spec
            tasks += _part_entries(entry, url_sizes[url], newline, partial(CloudObjectUrl, url))
            parts_per_object.append(len(url_sizes[url]))
            continue
        if isinstance(spec, CloudObject):
            spec = "%s://%s/%s" % (spec.backend, spec.bucket, spec.key)
        if not isinstance(spec, str) or spec.startswith("/"):
            raise ValueError("obj %r: gust.lithops reads objects of its storage "
                             "(\"bucket/prefix/\", \"bucket/key\", \"<backend>://...\" or a "
                             "CloudObject) and http(s) URLs, not local paths (docs/COMPAT.md)"
                             % (spec,))
        backend, bucket, prefix, name = split_object_url(spec)
        backend = backend or storage.backend
        if name:
            key = prefix + "/" + name if prefix else name
            found = [(key, int(storage.head_object(bucket, key)["content-length"]))]
        else:
            found = [(o["Key"], o["Size"]) for o in
                     storage.list_objects(bucket, prefix + "/" if prefix else None)]
        buckets.add(bucket)
        for key, size in found:
            if key.endswith("/"):
                continue  # a "folder" marker
            parts = chunk_ranges(size, chunk_size, chunk_number, newline)
            tasks += _part_entries(entry, parts, newline,
                                   partial(CloudObject, backend, bucket, key))
            parts_per_object.append(len(parts))
    if not tasks:
        raise ValueError("no objects found under %s"
                         % ", ".join(repr(str(e["obj"])) for e in entries))
    return tasks, parts_per_object, buckets


def _part_entries(entry: dict[str, Any], parts: list[tuple[tuple[int, int] | None, int]],
                  newline: str | None, make: Callable[[], ObjectPart]) -> list[dict[str, Any]]:
    """entry once per part (chunk_ranges), its obj a new object from make()
    with the part's range, chunk size, number and newline."""
    out = []
    for n, (byte_range, csize) in enumerate(parts, 1):
        obj = make()
        obj.data_byte_range = byte_range
        obj.chunk_size = csize
        obj.part = n
        obj.total_parts = len(parts)
        obj.newline = newline
        out.append(dict(entry, obj=obj))
    return out


def chunk_lines(f: IO[bytes], starts_early: bool, chunk_size: int, newline: str,
                block: int = 256 << 10) -> Iterator[bytes]:
    """A chunk's lines, read from f (the bytes of its range, chunk_ranges)
    block by block: with starts_early the first byte is the previous
    chunk's last, and unless it is the newline the first (partial) line
    belongs to the previous chunk and is skipped; the chunk ends with the
    newline of the line that reaches its chunk_size-th byte (or at the end
    of f). Never holds more than a block and a newline in memory."""
    nl = newline.encode()
    keep = len(nl) - 1  # bytes kept back: a newline may straddle two blocks
    limit = max(chunk_size - 1, 0)  # the line ending at or after this offset is the last
    # base: the offset of buf[0] in the chunk (-1: the early byte). The skipped line ends
    # with the first newline starting at the early byte or after, which is where the
    # previous chunk stopped (for a newline of two bytes too: Lithops compares one byte).
    buf, base, eof = b"", -1 if starts_early else 0, False
    skipping = starts_early
    while True:
        if not eof:
            more = f.read(block)
            eof = not more
            buf += more
        if skipping:
            i = buf.find(nl)
            if i < 0:
                if eof:
                    return
                base, buf = base + len(buf) - keep, buf[len(buf) - keep:] if keep else b""
                continue
            if base + i >= limit:
                return  # the skipped line is also the one that ends this chunk
            base, buf, skipping = base + i + len(nl), buf[i + len(nl):], False
        j = buf.find(nl, max(limit - base, 0))
        if j >= 0:
            yield buf[:j + len(nl)]
            return
        if eof:
            if buf:
                yield buf
            return
        cut = len(buf) - keep
        if cut > 0:
            yield buf[:cut]
            base, buf = base + cut, buf[cut:]


class _IterRaw(io.RawIOBase):
    """An iterator of byte strings as a raw stream; closing it closes source."""

    def __init__(self, parts: Iterator[bytes], source: IO[bytes]) -> None:
        self._parts = parts
        self._source = source
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._pending:
            self._pending = next(self._parts, b"")
            if not self._pending:
                return 0
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


def open_url(url: str, byte_range: tuple[int, int] | None) -> IO[bytes]:
    """The body of a GET of url (Lithops' jobrunner: with a Range header for
    byte_range), read as it is consumed. Raises OSError naming url when the
    request fails, or when the server answers a range with anything but
    206 (a server that ignores Range would give each chunk the whole
    object, counting it once per chunk)."""
    headers = {"Range": "bytes=%d-%d" % byte_range} if byte_range else {}
    try:
        r = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                   timeout=URL_TIMEOUT_S)
    except (urllib.error.URLError, OSError) as e:
        raise OSError("obj %r: GET failed: %s" % (url, e)) from None
    if byte_range and r.status != 206:
        r.close()
        raise OSError("obj %r: asked for bytes %d-%d, the server answered %d, not 206 "
                      "(it does not honour Range although its HEAD said Accept-Ranges)"
                      % ((url,) + byte_range + (r.status,)))
    return r


def load(storage: Storage | None, obj: ObjectPart) -> None:
    """Sets obj.data_stream to its chunk's data (as Lithops' jobrunner),
    read from the storage (a CloudObject) or over HTTP (a CloudObjectUrl),
    and obj.data_byte_range to the chunk's own bytes."""
    byte_range = obj.data_byte_range
    chunk = int(obj.chunk_size or 0)

    def source() -> IO[bytes]:
        if isinstance(obj, CloudObjectUrl):
            return open_url(obj.url, byte_range)
        assert isinstance(obj, CloudObject) and storage is not None
        return open_stream(storage, obj.bucket, obj.key, byte_range)

    if byte_range is None:
        obj.data_stream = source()
        obj.data_byte_range = (0, chunk - 1)
        return
    stream = source()
    if obj.newline is None:
        obj.data_stream = stream
    else:
        lines = chunk_lines(stream, byte_range[0] > 0, chunk, obj.newline)
        obj.data_stream = io.BufferedReader(_IterRaw(lines, stream))
    first, last = byte_range
    if last - first > chunk:
        obj.data_byte_range = (first, first + chunk - 1)


def with_injection(func: Callable[..., Any], storage_config: dict[str, Any]
                   ) -> Callable[..., Any]:
    """func called with its Lithops extras: a Storage (storage_config's,
    connected in the task) for a `storage` parameter, and an `obj`
    CloudObject's or CloudObjectUrl's data loaded first (load). The wrapper's signature is func's
    without `storage`, so items bind as for func. A closure: cloudpickle
    sends it by value, gust.lithops is imported in the sandbox."""
    params = parameters(func)
    wants_storage = "storage" in params

    def lithops_task(*args: Any, **kwargs: Any) -> Any:
        storage = None
        obj = kwargs.get("obj")
        if wants_storage or isinstance(obj, CloudObject):
            storage = Storage(storage_config=storage_config)
        if isinstance(obj, (CloudObject, CloudObjectUrl)):
            load(storage, obj)
        if wants_storage:
            kwargs["storage"] = storage
        return func(*args, **kwargs)

    try:
        sig = inspect.signature(func)
        lithops_task.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[p for n, p in sig.parameters.items() if n != "storage"])
    except (TypeError, ValueError):
        pass
    lithops_task.__name__ = getattr(func, "__name__", "lithops_task")
    return lithops_task
