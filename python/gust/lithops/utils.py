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
    """The futures a map or map_reduce returns, as Lithops' FuturesList.

    Chaining: `fexec.map(f, data).map(g)` maps g over f's results, each result
    one item (by map's item rules: a dict by parameter names, a tuple as
    positional arguments); the list then holds g's futures, and get_result()
    gives the last stage's results only. gust.lithops resolves the previous
    stage in the client before it submits the next (Lithops submits at once
    and its tasks wait for their input); sync= is accepted for that reason.
    wait() and get_result() cover every stage. Not thread-safe (the
    executor's rule).
    """

    executor: Any = None  # the gust.lithops FunctionExecutor that made it

    def _stages(self) -> list[Any]:
        return list(getattr(self, "alt_list", self))

    def _extend_futures(self, fs: Sequence[Any]) -> None:
        for f in self:
            f._produce_output = False
        if not hasattr(self, "alt_list"):
            self.alt_list = list(self)
        self.alt_list.extend(fs)
        self.clear()
        self.extend(fs)

    def _executor(self) -> Any:
        if self.executor is None:
            from .executors import FunctionExecutor
            self.executor = FunctionExecutor()
        return self.executor

    def map(self, map_function: Any, sync: bool = False, **kwargs: Any) -> FuturesList:
        """map_function over this list's results (FunctionExecutor.map's
        keywords); returns this list, now of the new futures."""
        self._extend_futures(self._executor().map(map_function, self, **kwargs))
        return self

    def map_reduce(self, map_function: Any, reduce_function: Any, sync: bool = False,
                   **kwargs: Any) -> FuturesList:
        """map_reduce over this list's results; returns this list."""
        self._extend_futures(self._executor().map_reduce(map_function, self, reduce_function,
                                                         **kwargs))
        return self

    def wait(self, **kwargs: Any) -> tuple[list[Any], list[Any]]:
        if self.executor is None:
            from .wait import wait
            return wait(self._stages(), **kwargs)
        return self.executor.wait(self._stages(), **kwargs)

    def get_result(self, **kwargs: Any) -> Any:
        if self.executor is None:
            from .wait import get_result
            return get_result(self._stages(), **kwargs)
        return self.executor.get_result(self._stages(), **kwargs)

    def __reduce__(self) -> Any:
        # As Lithops: a pickled list does not carry its executor.
        self.executor = None
        return super().__reduce__()


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


def split_object_url(obj_url: str) -> tuple[str | None, str, str, str]:
    """(backend, bucket, prefix, object name) as Lithops splits an object URL:
    "s3://b/d/k" -> ("aws_s3", "b", "d", "k") (s3 and cos are Lithops' names
    aws_s3 and ibm_cos), "b/d/" -> (None, "b", "d", ""), "b" -> (None, "b",
    "", "")."""
    backend, sep, path = obj_url.partition("://")
    if not sep:
        backend, path = "", obj_url
    backend = {"s3": "aws_s3", "cos": "ibm_cos"}.get(backend, backend)
    bucket, _, full_key = path.partition("/")
    if full_key.endswith("/"):
        prefix, name = full_key[:-1], ""
    elif "/" in full_key:
        prefix, _, name = full_key.rpartition("/")
    else:
        prefix, name = "", full_key
    return backend or None, bucket, prefix, name


def split_path(path: str) -> tuple[str, str]:
    """"bucket/dir/key" -> ("bucket", "dir/key")."""
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def is_future(obj: Any) -> bool:
    return isinstance(obj, ResponseFuture)
