"""The helpers of lithops.utils that user code calls, for gust.lithops.

Plain functions with no state but the logging configuration; thread-safe.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from typing import Any, Iterator, Sequence

from .future import ResponseFuture

LOGGER_FORMAT = "%(asctime)s [%(levelname)s] %(name)s -- %(message)s"


class FuturesList(list[Any]):
    """A list of futures (Lithops returns one from map); wait() and
    get_result() as gust.lithops.wait/get_result over it."""

    def wait(self, **kwargs: Any) -> tuple[list[Any], list[Any]]:
        from .wait import wait
        return wait(list(self), **kwargs)

    def get_result(self, **kwargs: Any) -> Any:
        from .wait import get_result
        return get_result(list(self), **kwargs)


def setup_lithops_logger(log_level: str | int = "INFO", log_format: str = LOGGER_FORMAT,
                         stream: Any = None, filename: str | None = None) -> None:
    """Sends the "lithops" and "gust.lithops" loggers' records of log_level
    and above to stream (default sys.stderr) or to the file filename."""
    handler: logging.Handler
    if filename:
        handler = logging.FileHandler(filename)
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(log_format))
    level: str | int = log_level.upper() if isinstance(log_level, str) else log_level
    for name in ("lithops", "gust.lithops"):
        log = logging.getLogger(name)
        log.setLevel(level)
        log.addHandler(handler)


def is_lithops_worker() -> bool:
    """True inside a gust sandbox (a map task), False on the client."""
    return os.path.isdir("/var/task/_gust_job")


def is_unix_system() -> bool:
    return os.name == "posix"


def is_linux_system() -> bool:
    return sys.platform.startswith("linux")


def is_notebook() -> bool:
    """True in a Jupyter kernel."""
    return "ipykernel" in sys.modules


def uuid_str() -> str:
    return str(uuid.uuid4())


def create_executor_id(length: int = 6) -> str:
    return uuid.uuid4().hex[:length]


def iterchunks(lst: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    """lst in slices of n items (the last may be shorter)."""
    for i in range(0, len(lst), n):
        yield lst[i:i + n]


def sizeof_fmt(num: float, suffix: str = "B") -> str:
    """num bytes as text: 1536 -> "1.5KiB"."""
    for unit in ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi"):
        if abs(num) < 1024.0:
            return "%3.1f%s%s" % (num, unit, suffix)
        num /= 1024.0
    return "%.1f%s%s" % (num, "Yi", suffix)


def split_object_url(obj_url: str) -> tuple[str, str, str, str]:
    """"s3://bucket/dir/key" -> ("s3", "bucket", "dir/", "key"); a URL
    without a scheme gets "" for it."""
    scheme, sep, rest = obj_url.partition("://")
    if not sep:
        scheme, rest = "", obj_url
    bucket, _, path = rest.partition("/")
    prefix, _, key = path.rpartition("/")
    return scheme, bucket, prefix + "/" if prefix else "", key


def split_path(path: str) -> tuple[str, str]:
    """"bucket/dir/key" -> ("bucket", "dir/key")."""
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def is_future(obj: Any) -> bool:
    return isinstance(obj, ResponseFuture)
