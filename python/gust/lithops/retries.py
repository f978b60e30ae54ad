"""Lithops' RetryingFunctionExecutor: a call whose function raised is run
again, on the client's side, up to `retries` more times (gust's engine itself
retries only a sandbox's failures: crash, timeout, out of memory).

The retries happen inside wait(): each failed call is submitted again as a
map of its one item, with the options of its first map. Unlike Lithops',
wait(throw_except=True) retries first and raises the last failure after.
Not thread-safe, as the executor it wraps.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from . import objects
from .executors import FunctionExecutor, iterdata_items
from .future import ResponseFuture
from .wait import ALL_COMPLETED, ALWAYS, THREADPOOL_SIZE, needed


class RetryingFuture:
    """A call and its retries: response_future is the latest attempt's
    future; failure_count how many attempts failed; retries the most extra
    attempts. done/error/stats/result as that future's."""

    def __init__(self, response_future: ResponseFuture, map_function: Callable[..., Any],
                 input: Any, retries: int | None = None, **map_kwargs: Any) -> None:
        self.response_future = response_future
        self.map_function = map_function
        self.input = input
        self.retries = retries or 0
        self.map_kwargs = map_kwargs
        self.failure_count = 0
        self.cancelled = False

    def _should_retry(self) -> bool:
        return not self.cancelled and self.failure_count <= self.retries

    def _retry(self, executor: FunctionExecutor) -> None:
        self.response_future = executor.map(self.map_function, [self.input],
                                            **self.map_kwargs)[0]

    def cancel(self) -> None:
        """No more retries (a running attempt is not stopped)."""
        self.cancelled = True

    @property
    def done(self) -> bool:
        return self.response_future.done

    @property
    def error(self) -> bool:
        return self.response_future.error

    @property
    def stats(self) -> dict[str, Any]:
        return self.response_future.stats

    def status(self, throw_except: bool = True, internal_storage: Any = None,
               check_only: bool = False) -> dict[str, Any]:
        """The latest attempt's status (ResponseFuture.status)."""
        return self.response_future.status(throw_except, internal_storage, check_only)

    def result(self, throw_except: bool = True, internal_storage: Any = None) -> Any:
        """The latest attempt's result; its exception is raised when it failed
        and throw_except is True (the default)."""
        return self.response_future.result(throw_except, internal_storage)


class RetryingFunctionExecutor:
    """RetryingFunctionExecutor(executor): executor's map and wait, where
    map(..., retries=N) makes each call that raises run again up to N times.
    A context manager as the executor it wraps."""

    def __init__(self, executor: FunctionExecutor) -> None:
        self.executor = executor
        self.config = executor.config

    def __enter__(self) -> RetryingFunctionExecutor:
        self.executor.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.executor.__exit__(*exc)

    def map(self, map_function: Callable[..., Any], map_iterdata: Any,
            retries: int | None = None, **map_kwargs: Any) -> list[RetryingFuture]:
        """executor.map(map_function, map_iterdata, **map_kwargs) (its options
        and errors), each call retried up to retries times when it raises
        (default None: the config's lithops.retries, else 0). Returns one
        RetryingFuture per item. NotImplementedError for a map_function with
        an obj parameter (its items become one call per object or chunk,
        which this does not retry one by one yet)."""
        if "obj" in objects.parameters(map_function):
            raise NotImplementedError("RetryingFunctionExecutor.map: functions with an obj "
                                      "parameter are not retried on gust yet; use "
                                      "FunctionExecutor.map (docs/COMPAT.md)")
        if retries is None:
            retries = (self.config.get("lithops") or {}).get("retries", 0)
        items = iterdata_items(map_iterdata)
        futures = self.executor.map(map_function, items, **map_kwargs)
        return [RetryingFuture(f, map_function, item, retries, **map_kwargs)
                for item, f in zip(items, futures)]

    def wait(self, fs: list[RetryingFuture], throw_except: bool = True,
             return_when: Any = ALL_COMPLETED, download_results: bool = False,
             timeout: float | None = None, threadpool_size: int = THREADPOOL_SIZE,
             wait_dur_sec: float | None = None,
             show_progressbar: bool = True) -> tuple[list[RetryingFuture], list[RetryingFuture]]:
        """Waits for fs as FunctionExecutor.wait, resubmitting each call that
        failed while it has retries left. Returns (done, not_done) lists; a
        call is done once it succeeded or failed its last attempt. timeout
        (s) bounds the whole wait. throw_except: True (the default) raises
        the exception of a call that failed its last attempt."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = list(fs)
        done: list[RetryingFuture] = []
        want = needed(return_when, len(fs))
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            inner_when = ALWAYS if return_when == ALWAYS else ALL_COMPLETED
            if want < len(fs):
                inner_when = -1  # any: retries start as soon as a call fails
            finished, _ = self.executor.wait([f.response_future for f in pending], False,
                                             inner_when, timeout=left,
                                             show_progressbar=show_progressbar)
            finished_ids = {id(f) for f in finished}
            still: list[RetryingFuture] = []
            for f in pending:
                if id(f.response_future) not in finished_ids:
                    still.append(f)
                    continue
                if f.response_future.error:
                    f.failure_count += 1
                    if f._should_retry():
                        f._retry(self.executor)
                        still.append(f)
                        continue
                done.append(f)
            pending = still
            expired = deadline is not None and time.monotonic() >= deadline
            if not pending or len(done) >= want or expired or return_when == ALWAYS:
                break
        if throw_except:
            for f in done:
                if f.error:
                    f.result()
        order = {id(f): i for i, f in enumerate(fs)}
        return (sorted(done, key=lambda f: order[id(f)]),
                sorted(pending, key=lambda f: order[id(f)]))

    def clean(self, fs: Any = None, cs: Any = None, clean_cloudobjects: bool = True,
              clean_fn: bool = False, force: bool = False) -> None:
        """executor.clean()."""
        self.executor.clean(fs, cs, clean_cloudobjects, clean_fn, force)
