"""gust.pywren: Pywren's API on a gust engine. Code written for Pywren runs
with one changed line, `import pywren` -> `from gust import pywren`.

    from gust import pywren

    pwex = pywren.default_executor()
    futures = pwex.map(square, [1, 2, 3])
    print(pywren.get_all_results(futures))      # [1, 4, 9]

Pywren passes each item of a map whole as the function's one argument (a
tuple, list or dict too), unlike gust.FunctionExecutor and Lithops, which
unpack them: `map(describe, [(1.5, 2.5)])` calls describe((1.5, 2.5)). The
futures are gust's (concurrent.futures ones, as Pywren's), with Pywren's
run_status and invoke_status. Sandboxes have the network by default, as
Lambda functions do (docs/MAP.md, "Network"). What differs from Pywren:
docs/COMPAT.md. Thread-safety: as gust.FunctionExecutor.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from . import futures as gustfut
from .executor import FunctionExecutor
from .futures import ResponseFuture
from .lithops.executors import with_env

logger = logging.getLogger("gust.pywren")

# Pywren's return_when values (pywren.wait) and gust's.
ALL_COMPLETED = 1
ANY_COMPLETED = 2
ALWAYS = 3
_RETURN_WHEN = {ALL_COMPLETED: gustfut.ALL_COMPLETED, ANY_COMPLETED: gustfut.ANY_COMPLETED,
                ALWAYS: gustfut.ALWAYS}
# Pywren's executor arguments that mean nothing on gust.
_IGNORED = frozenset({"config", "invoker", "shard_runtime", "runtime_s3_bucket",
                      "runtime_s3_key"})


class Executor:
    """Pywren's executor on gust: map, call_async, reduce. Made by
    default_executor(); gust_executor is the gust.FunctionExecutor below,
    futures every future it returned."""

    def __init__(self, **config: Any) -> None:
        options: dict[str, Any] = {"network": True}
        for key, value in config.items():
            if key == "job_max_runtime":
                options["timeout"] = value
            elif key in _IGNORED:
                logger.debug("default_executor(%s=...) means nothing on gust: ignored", key)
            else:
                options[key] = value
        self.gust_executor = FunctionExecutor(**options)

    @property
    def futures(self) -> list[ResponseFuture]:
        return self.gust_executor.futures

    def map(self, func: Callable[..., Any], iterdata: Iterable[Any],
            extra_env: dict[str, str] | None = None, extra_meta: Any = None,
            invoke_pool_threads: int = 64, data_all_as_one: bool = True,
            use_cached_runtime: bool = True, overwrite_invoke_args: Any = None,
            exclude_modules: Any = None) -> list[ResponseFuture]:
        """Runs func(item) once per item of iterdata, each item whole (a tuple,
        list or dict is the one argument). extra_env: environment variables
        set in the sandbox first (default None). The other arguments are
        accepted for Pywren's signature and ignored. Returns one future per
        item, in order; raises what gust.FunctionExecutor.map raises."""
        return self.gust_executor._map_whole(with_env(func, extra_env), iterdata)

    def call_async(self, func: Callable[..., Any], data: Any,
                   extra_env: dict[str, str] | None = None,
                   extra_meta: Any = None) -> ResponseFuture:
        """Runs func(data) as one task; returns its future."""
        return self.map(func, [data], extra_env)[0]

    def reduce(self, function: Callable[[list[Any]], Any], list_of_futures: Iterable[Any],
               extra_env: dict[str, str] | None = None,
               extra_meta: Any = None) -> ResponseFuture:
        """Waits for list_of_futures, then runs function(list of their results,
        in order) as one task; returns its future. Raises the first failed
        future's exception."""
        results = get_all_results(list_of_futures)
        return self.call_async(function, results, extra_env)

    def plot(self, fs: Any = None, dst: str | None = None) -> tuple[str, str]:
        """gust.FunctionExecutor.plot: Pywren's timeline and histogram."""
        return self.gust_executor.plot(fs, dst)


def default_executor(**config: Any) -> Executor:
    """An Executor on the configured engine (url=, $GUST_URL) or a local one
    started on demand. config: gust.FunctionExecutor's options (memory MB,
    timeout s, network, default True here, ...), job_max_runtime (s, gust's
    timeout), and Pywren's config/invoker arguments (ignored). Raises
    TypeError for an unknown option and what gust.FunctionExecutor() raises."""
    return Executor(**config)


# Pywren's other executor constructors: one engine, one executor.
lambda_executor = remote_executor = local_executor = dummy_executor = default_executor


def wait(fs: Iterable[Any], return_when: int = ALL_COMPLETED, THREADPOOL_SIZE: int = 64,
         WAIT_DUR_SEC: float = 5) -> tuple[list[Any], list[Any]]:
    """Waits for the futures fs: return_when ALL_COMPLETED (the default),
    ANY_COMPLETED or ALWAYS (Pywren's values; gust's are accepted too).
    Returns (done, not_done) lists in fs's order; raises ValueError for
    another return_when. THREADPOOL_SIZE and WAIT_DUR_SEC are accepted for
    Pywren's signature."""
    futs = list(fs)
    when: Any = _RETURN_WHEN.get(return_when, return_when)
    done, _ = gustfut.wait(futs, when)
    return [f for f in futs if f in done], [f for f in futs if f not in done]


def get_all_results(fs: Iterable[Any]) -> list[Any]:
    """The results of fs in order, once all are done; raises the first failed
    future's exception (gust.get_all_results)."""
    return gustfut.get_all_results(fs)


__all__ = ["ALL_COMPLETED", "ALWAYS", "ANY_COMPLETED", "Executor", "default_executor",
           "get_all_results", "lambda_executor", "wait"]
