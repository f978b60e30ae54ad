"""lithops.storage.utils: the CloudObject reference Lithops code passes around
(an object of a storage: backend, bucket, key), CloudObjectUrl (an object at
an http(s) URL) and CloudObjectLocal, the part of an object an obj
function's task gets with either (ObjectPart), and StorageNoSuchKeyError.
Plain values; thread-safe."""

from __future__ import annotations

import os
from typing import IO


class StorageNoSuchKeyError(Exception):
    """Lithops' error for a missing object (or bucket: key ""), raised by
    gust.lithops.Storage; its __cause__ is gust.storage's NoSuchKey or
    NoSuchBucket."""

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__("No such key /%s/%s found in storage." % (bucket, key))
        self.bucket = bucket
        self.key = key

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Raised in a task, re-raised in the client.
        return (type(self), (self.bucket, self.key))


class ObjectPart:
    """What an obj function's task (gust.lithops.objects) gets with its
    object, CloudObject or CloudObjectUrl: data_stream (a binary file object
    of its part's bytes), data_byte_range (first, last), chunk_size, part and
    total_parts (1-based part of how many) and newline (the line separator
    chunks respect, or None)."""

    data_stream: IO[bytes] | None = None
    data_byte_range: tuple[int, int] | None = None
    chunk_size: int | None = None
    part: int = 1
    total_parts: int = 1
    newline: str | None = "\n"


class CloudObject(ObjectPart):
    """A reference to the object key of bucket in the storage backend (with
    ObjectPart's attributes in an obj function's task)."""

    def __init__(self, backend: str, bucket: str, key: str) -> None:
        self.backend = backend
        self.bucket = bucket
        self.key = key

    def __str__(self) -> str:
        return "<CloudObject at %s://%s/%s>" % (self.backend, self.bucket, self.key)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, CloudObject)
                and (self.backend, self.bucket, self.key)
                == (other.backend, other.bucket, other.key))

    def __hash__(self) -> int:
        return hash((self.backend, self.bucket, self.key))


class CloudObjectUrl(ObjectPart):
    """A reference to an object by URL (with ObjectPart's attributes in an
    obj function's task)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __str__(self) -> str:
        return "<CloudObject at %s>" % self.url


class CloudObjectLocal:
    """A reference to a local file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.bucket = os.path.dirname(path)
        self.key = os.path.basename(path)

    def __str__(self) -> str:
        return "<CloudObject at %s>" % self.path
