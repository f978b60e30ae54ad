"""lithops.storage on gust: Lithops' Storage over the engine's object API
(gust.storage, docs/STORAGE.md).

    from gust import lithops
    storage = lithops.Storage()                      # bucket: storage_bucket, else DEFAULT_BUCKET
    storage.put_object(storage.bucket, "in/a.txt", b"hello")
    storage.get_object(storage.bucket, "in/a.txt", extra_get_args={"Range": "bytes=0-1"})
    co = storage.put_cloudobject(b"data")            # a CloudObject, passed to tasks

In a task, Storage() with no arguments is the executor's (its storage
config travels in the task's environment). Which engine: the storage
section of the Lithops config ("gust" unless
lithops.storage names another; its "url", else gust's default: $GUST_URL,
$GUST_ENDPOINT, the local engine). Inside a task's sandbox
($GUST_ENDPOINT set) the sandbox channel is used whatever the config says,
for the buckets the map was granted (gust.lithops grants its storage
bucket and the buckets of obj:// inputs). Any backend name (aws_s3, ibm_cos,
...) means this one storage; CloudObjects keep the name they were made
with. Outside a sandbox the bucket is created when it is missing.

Errors as Lithops': StorageNoSuchKeyError for a missing key (and, as
Lithops' S3 backend has it, for a missing bucket of head_bucket/list);
other refusals are gust.storage.StorageError. Thread-safe as gust.storage.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
from typing import IO, Any, Iterator

from ... import storage as gstorage
from .. import config as lconfig
from .utils import CloudObject, StorageNoSuchKeyError

DEFAULT_BUCKET = "lithops-gust"
# Set in a gust.lithops map's tasks: its executor's storage config (JSON), which a
# Storage() made in the task without arguments takes.
TASK_STORAGE_ENV = "GUST_LITHOPS_STORAGE"
TEMP_PREFIX = "lithops.jobs/tmp"  # Lithops' prefix of put_cloudobject's keys
_COBJECTS = itertools.count()


def in_sandbox() -> bool:
    """Whether this process runs in a map task's sandbox (the channel is set)."""
    return bool(os.environ.get("GUST_ENDPOINT")) and not os.environ.get("GUST_URL")


class Storage:
    """Lithops' Storage(config=None, backend=None, storage_config=None):
    config a Lithops config dict (default: the file Lithops reads, if any),
    backend a storage name (accepted: one storage on gust), storage_config
    what lithops.config.extract_storage_config returns (wins over config).
    Attributes: backend, bucket, config. Raises EngineUnavailableError when
    no engine answers, StorageError when the bucket cannot be created."""

    def __init__(self, config: dict[str, Any] | None = None, backend: str | None = None,
                 storage_config: dict[str, Any] | None = None) -> None:
        if not storage_config and config is None and in_sandbox() \
                and os.environ.get(TASK_STORAGE_ENV):
            storage_config = json.loads(os.environ[TASK_STORAGE_ENV])  # the executor's
        if not storage_config:
            storage_config = lconfig.extract_storage_config(
                lconfig.default_storage_config(config_data=config, backend=backend))
        self.config = storage_config
        self.backend = str(storage_config.get("backend") or lconfig.STORAGE)
        section = storage_config.get(self.backend) or {}
        self.bucket = str(section.get("storage_bucket") or DEFAULT_BUCKET)
        url = None if in_sandbox() else section.get("url")
        self.client = gstorage.Client(url)
        if not in_sandbox():
            self.create_bucket(self.bucket)

    def __getstate__(self) -> dict[str, Any]:
        # A Storage sent to a task reconnects there (through the channel).
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(storage_config=state["config"])  # type: ignore[misc]

    def get_client(self) -> gstorage.Client:
        """The gust.storage.Client under this Storage (Lithops gives its
        backend's client, boto3's for S3; for boto3 against gust, see
        docs/STORAGE.md)."""
        return self.client

    def get_storage_config(self) -> dict[str, Any]:
        return self.config

    def create_bucket(self, bucket: str) -> None:
        """Creates bucket unless it exists."""
        if not self.client.bucket_exists(bucket):
            self.client.create_bucket(bucket, exist_ok=True)

    def put_object(self, bucket: str, key: str, body: Any) -> None:
        """Stores body (str, bytes, or a text or binary file object) as key."""
        self._call(bucket, key, self.client.put, bucket, key, body)

    def get_object(self, bucket: str, key: str, stream: bool = False,
                   extra_get_args: dict[str, Any] | None = None) -> Any:
        """The object's bytes, or with stream=True a file object read as it
        is consumed; extra_get_args {"Range": "bytes=a-b"} for a range.
        StorageNoSuchKeyError for a missing key."""
        range_ = (extra_get_args or {}).get("Range")
        if stream:
            return self._call(bucket, key, self.client.open, bucket, key, range_)
        return self._call(bucket, key, self.client.get, bucket, key, range_)

    def upload_file(self, file_name: str, bucket: str, key: str | None = None,
                    extra_args: dict[str, Any] | None = None, config: Any = None) -> bool:
        """Uploads a local file (multipart when big) to key (default: the
        file's name); True when done, as Lithops."""
        self._call(bucket, key, self.client.upload_file, file_name, bucket,
                   key or os.path.basename(file_name))
        return True

    def download_file(self, bucket: str, key: str, file_name: str | None = None,
                      extra_args: dict[str, Any] | None = None, config: Any = None) -> bool:
        """Writes the object to file_name (default: the key's last part)."""
        self._call(bucket, key, self.client.download_file, bucket, key,
                   file_name or key.rsplit("/", 1)[-1])
        return True

    def head_object(self, bucket: str, key: str) -> dict[str, str]:
        """The object's HTTP headers, lower-case names ("content-length",
        "etag", "last-modified", "content-type", x-amz-meta-*)."""
        result: dict[str, str] = self._call(bucket, key, self.client.head_headers, bucket, key)
        return result

    def delete_object(self, bucket: str, key: str) -> None:
        self._call(bucket, key, self.client.delete, bucket, key)

    def delete_objects(self, bucket: str, key_list: list[str]) -> list[tuple[str, str]]:
        """Deletes the keys; returns the (key, error code) of any not deleted."""
        result: list[tuple[str, str]] = self._call(bucket, "", self.client.delete_many,
                                                   bucket, key_list)
        return result

    def head_bucket(self, bucket: str) -> dict[str, Any]:
        """As boto3's head_bucket, which Lithops returns: {"ResponseMetadata":
        {"HTTPStatusCode": 200, "HTTPHeaders": {...}}}; StorageNoSuchKeyError(
        bucket, "") when the bucket is missing."""
        headers = self._call(bucket, "", self.client.head_bucket, bucket)
        return {"ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": headers}}

    def list_objects(self, bucket: str, prefix: str | None = None,
                     match_pattern: str | None = None) -> list[dict[str, Any]]:
        """Every object under prefix as {"Key", "Size", "ETag", "LastModified"},
        in key order; match_pattern a glob the keys must match."""
        found = [o for o in self._objects(bucket, prefix)
                 if match_pattern is None or fnmatch.fnmatchcase(o.key, match_pattern)]
        return [{"Key": o.key, "Size": o.size, "ETag": '"%s"' % o.etag,
                 "LastModified": o.last_modified} for o in found]

    def list_keys(self, bucket: str, prefix: str | None = None) -> list[str]:
        """Every key under prefix, in order."""
        return [o.key for o in self._objects(bucket, prefix)]

    def _objects(self, bucket: str, prefix: str | None) -> Iterator[gstorage.ObjectInfo]:
        try:
            yield from self.client.list(bucket, prefix or "")
        except gstorage.NoSuchBucket as e:
            raise StorageNoSuchKeyError(bucket, prefix or "") from e

    def put_cloudobject(self, body: Any, bucket: str | None = None,
                        key: str | None = None) -> CloudObject:
        """Stores body (default bucket: this Storage's; key: a new one under
        Lithops' temporary prefix); returns its CloudObject."""
        if key is None:
            session = os.environ.get("__LITHOPS_SESSION_ID", "")
            name = "cloudobject_%x_%s" % (next(_COBJECTS), os.urandom(4).hex())
            key = "/".join([TEMP_PREFIX, session, name] if session else [TEMP_PREFIX, name])
        bucket = bucket or self.bucket
        self.put_object(bucket, key, body)
        return CloudObject(self.backend, bucket, key)

    def get_cloudobject(self, cloudobject: CloudObject, stream: bool = False) -> Any:
        """The CloudObject's content (a file object with stream=True)."""
        return self.get_object(cloudobject.bucket, cloudobject.key, stream=stream)

    def delete_cloudobject(self, cloudobject: CloudObject) -> None:
        self.delete_object(cloudobject.bucket, cloudobject.key)

    def delete_cloudobjects(self, cloudobjects: list[CloudObject]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for co in cloudobjects:
            by_bucket.setdefault(co.bucket, []).append(co.key)
        for bucket, keys in by_bucket.items():
            self.delete_objects(bucket, keys)

    @staticmethod
    def _call(bucket: str, key: str | None, fn: Any, *args: Any) -> Any:
        """fn(*args) with gust's NoSuchKey/NoSuchBucket as Lithops'
        StorageNoSuchKeyError (naming bucket and key)."""
        try:
            return fn(*args)
        except (gstorage.NoSuchKey, gstorage.NoSuchBucket) as e:
            raise StorageNoSuchKeyError(bucket, key or "") from e


def open_stream(storage: Storage, bucket: str, key: str,
                byte_range: tuple[int, int] | None) -> IO[bytes]:
    """The object (or its inclusive byte_range) as a stream."""
    extra = {"Range": "bytes=%d-%d" % byte_range} if byte_range else None
    stream: IO[bytes] = storage.get_object(bucket, key, stream=True, extra_get_args=extra)
    return stream


__all__ = ["CloudObject", "DEFAULT_BUCKET", "Storage", "StorageNoSuchKeyError"]
