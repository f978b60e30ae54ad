"""lithops.storage.utils: the CloudObject reference Lithops code passes around
(an object of a storage: backend, bucket, key). Plain values; thread-safe."""

from __future__ import annotations

import os


class StorageNoSuchKeyError(Exception):
    """Lithops' error for a missing object (raised by a storage gust does not
    have yet; defined so that code catching it loads)."""

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__("No such key /%s/%s found in storage." % (bucket, key))


class CloudObject:
    """A reference to the object key of bucket in the storage backend."""

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


class CloudObjectUrl:
    """A reference to an object by URL."""

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
