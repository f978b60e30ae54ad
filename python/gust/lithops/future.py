"""Lithops' ResponseFuture over a gust future.

Lithops' futures answer with boolean *properties* (`if f.done:`), where a
concurrent.futures.Future has methods; gust's own futures stay
concurrent.futures ones, and gust.lithops wraps each in this class. The
wrapper keeps the gust future (`gust_future`), so gust.wait,
concurrent.futures and gust.lithops functions all accept it through
`unwrap`.

States as Lithops names them, from what the gust engine reports: `running`
from submission until the task is done (gust does not tell a queued task
from a running one), `ready` once it succeeded, `error` once it failed,
`done` and `success` once it finished either way. Thread-safe as the gust
future is; `_read` (what get_result() has returned) is only the executor's.
"""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any, Iterable

from .. import futures as gustfut
from ..futures import ResponseFuture as GustFuture

# Lithops' stats names for gust's (futures.ResponseFuture.stats): Lithops'
# plots and user code read these.
_STATS_NAMES = {
    "host_submit_tstamp": "host_submit",
    "worker_start_tstamp": "task_start",
    "worker_func_start_tstamp": "setup_done",
    "worker_func_end_tstamp": "task_done",
    "worker_end_tstamp": "task_done",
    "host_result_done_tstamp": "result_returned",
}


class ResponseFuture:
    """The future of one Lithops call (a map item, a call_async, a reducer).

    Properties (bools): new (always False: a gust future exists once
    submitted), invoked, running, ready, error, success, done, futures (the
    call returned futures, whose results result() gives). stats: gust's stats dict plus
    Lithops' *_tstamp names. call_id ("00000", the index in its map),
    job_id, executor_id.
    """

    __slots__ = ("gust_future", "call_id", "executor_id", "_read", "_produce_output")

    def __init__(self, gust_future: cf.Future[Any], executor_id: str = "",
                 produce_output: bool = True) -> None:
        self.gust_future = gust_future
        self.call_id = "%05d" % getattr(gust_future, "index", 0)
        self.executor_id = executor_id
        self._read = False
        # False for a map_reduce's map calls: get_result() gives only the reducer's.
        self._produce_output = produce_output

    def __repr__(self) -> str:
        return "<lithops.ResponseFuture %s/%s %s>" % (self.job_id, self.call_id, self.status_name)

    @property
    def job_id(self) -> str | None:
        """The gust job of the call (None before it is submitted)."""
        return getattr(self.gust_future, "job_id", None)

    @property
    def new(self) -> bool:
        return False

    @property
    def invoked(self) -> bool:
        return not self.gust_future.done()

    @property
    def running(self) -> bool:
        return not self.gust_future.done()

    @property
    def done(self) -> bool:
        return self.gust_future.done()

    @property
    def success(self) -> bool:
        return self.gust_future.done()

    @property
    def ready(self) -> bool:
        f = self.gust_future
        return f.done() and not f.cancelled() and f.exception(0) is None

    @property
    def error(self) -> bool:
        f = self.gust_future
        return f.done() and (f.cancelled() or f.exception(0) is not None)

    @property
    def futures(self) -> bool:
        """True when the call returned futures (a task that maps: their results
        are what result() and get_result() give)."""
        f = self.gust_future
        return f.done() and not f.cancelled() and f.exception(0) is None and returns_futures(
            f.result(0))

    @property
    def status_name(self) -> str:
        """Lithops' state name: "Running", "Ready" or "Error"."""
        if not self.gust_future.done():
            return "Running"
        return "Error" if self.error else "Ready"

    @property
    def stats(self) -> dict[str, Any]:
        """gust's stats of the call with Lithops' names added (None until known)."""
        stats = dict(getattr(self.gust_future, "stats", {}))
        for lithops_name, gust_name in _STATS_NAMES.items():
            stats[lithops_name] = stats.get(gust_name)
        return stats

    def cancel(self) -> bool:
        """Cancels the call if it has not finished (Lithops cannot; gust can)."""
        return self.gust_future.cancel()

    def cancelled(self) -> bool:
        return self.gust_future.cancelled()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The call's exception or None, waiting up to timeout seconds."""
        return self.gust_future.exception(timeout)

    def result(self, throw_except: bool = True, internal_storage: Any = None,
               timeout: float | None = None) -> Any:
        """The call's return value, waiting for it (timeout: seconds, None: no
        limit). throw_except: True (the default) raises the call's
        exception, False gives None for a failed call. internal_storage is
        accepted for Lithops' signature. Raises concurrent.futures.TimeoutError
        when timeout passes first."""
        try:
            value = self.gust_future.result(timeout)
        except (cf.TimeoutError, cf.CancelledError):
            raise
        except BaseException:  # noqa: B902 -- the call's own exception, as Lithops
            if throw_except:
                raise
            return None
        return resolve_nested(value, throw_except)

    def status(self, throw_except: bool = True, internal_storage: Any = None,
               check_only: bool = False, wait_dur_sec: float | None = None) -> dict[str, Any]:
        """The call's stats once it is done (check_only: at once, done or not).
        Raises the call's exception when it failed and throw_except is True."""
        if not check_only:
            cf.wait([self.gust_future])
        if throw_except and self.error:
            self.result()
        return self.stats


def returns_futures(value: Any) -> bool:
    """True when a call's value is a future or a non-empty list of them."""
    if isinstance(value, list) and value:
        return all(isinstance(v, _FUTURES) for v in value)
    return isinstance(value, _FUTURES)


def resolve_nested(value: Any, throw_except: bool = True) -> Any:
    """A call's value; when it is futures (the task mapped with gust.lithops
    and returned what map or call_async gave it, as Lithops allows), their
    results instead: one future's value, or a list of values. The futures
    travel as their job's id (gust.futures.ResponseFuture.__reduce__) and are
    read from the engine here."""
    if not returns_futures(value):
        return value
    futs = value if isinstance(value, list) else [value]
    results = [resolve_nested(r, throw_except) for r in gustfut.get_all_results(
        [unwrap(f) for f in futs], throw_except=throw_except)]
    return results if isinstance(value, list) else results[0]


def unwrap(f: Any) -> Any:
    """The gust (concurrent.futures) future of f: f.gust_future for a
    gust.lithops future, f itself for any other future."""
    return f.gust_future if isinstance(f, ResponseFuture) else f


_FUTURES = (ResponseFuture, cf.Future)


def as_list(fs: Any) -> list[Any]:
    """fs as a list: one future, or an iterable of them."""
    if isinstance(fs, (ResponseFuture, cf.Future)):
        return [fs]
    return list(fs)


def wrap_all(fs: Iterable[GustFuture], executor_id: str,
             produce_output: bool = True) -> list[ResponseFuture]:
    """gust futures as gust.lithops ones."""
    return [ResponseFuture(f, executor_id, produce_output) for f in fs]
