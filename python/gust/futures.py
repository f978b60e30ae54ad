"""Futures of gust tasks and the Pywren/Lithops waiting functions.

ResponseFuture is a real concurrent.futures.Future, so
concurrent.futures.as_completed/wait accept it; it adds Pywren's
`result(throw_except=...)` and per-task `stats`. The job's results poller
resolves futures in batches with `resolve_batch` (docs/MAP.md result frames).

A map of 100k tasks makes 100k futures, so the per-future work is kept small:
the futures of one job share one Condition, a result's meta JSON is parsed
only when its stats are read, and waiting for a whole job waits on the job's
own completion event instead of installing a waiter in every future.
"""

from __future__ import annotations

import concurrent.futures as cf
import linecache
import pickle
import re
import threading
import time
from concurrent.futures import _base
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from .errors import RemoteTraceback, ResultDecodeError, TaskError, task_error
from .gcpause import gc_paused
from .wire import result_meta

if TYPE_CHECKING:
    from .job import Job

# wait()'s return_when: concurrent.futures' constants, ANY_COMPLETED being
# Pywren's name for FIRST_COMPLETED, and ALWAYS (return at once).
ALL_COMPLETED = cf.ALL_COMPLETED
ANY_COMPLETED = cf.FIRST_COMPLETED
FIRST_COMPLETED = cf.FIRST_COMPLETED
ALWAYS = "ALWAYS"

_PENDING = _base.PENDING
_FINISHED = _base.FINISHED
_DONE_STATES = (_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED, _base.FINISHED)
_loads = pickle.loads  # cloudpickle's output is plain pickle data


class ResponseFuture(cf.Future):
    """The future of one task of a map (index `index` of job `job`, a gust.Job).

    A concurrent.futures.Future: done(), cancel(), add_done_callback(),
    concurrent.futures.wait() and as_completed() work on it. Besides:
    result(timeout, throw_except), `stats`, `error` and `job_id`. It pickles
    as its job id and index (a task may return futures: __reduce__).

    stats (a dict; times in epoch seconds): host_submit (client sent the job),
    task_start, setup_done, task_done (worker clock), result_returned (client
    decoded the result); plus cold (bool), sandbox (id), attempts,
    queued/finished (engine clock), status ("ok", "error", "cancelled").
    """

    # Slots, not a __dict__: a 100k-task map makes 100k futures, and a slotted
    # one is built in a third of the time and memory (concurrent.futures.Future
    # has no __slots__, so an instance still takes other attributes in a
    # __dict__ made on first use). Until stats are read, _meta is either the
    # result's fields (a dict; _returned then is when it was decoded, epoch s)
    # or its frame's offset in the body of _returned, a Received (no object
    # per result).
    __slots__ = ("_condition", "_state", "_result", "_exception", "_w", "_cb", "job", "index",
                 "_host_submit", "_stats", "_meta", "_returned")
    # What the slots hold (see above), and the concurrent.futures.Future
    # internals gust reads; _w and _cb are () until first used.
    _condition: threading.Condition
    _state: str
    _result: Any
    _exception: BaseException | None
    _invoke_callbacks: Callable[[], None]
    _w: Any
    _cb: Any
    _stats: dict[str, Any] | None
    _meta: Any
    _returned: Any

    def __init__(self, job: Job | None, index: int, host_submit: float | None = None,
                 condition: threading.Condition | None = None) -> None:
        # concurrent.futures.Future.__init__, except that the futures of one job
        # may share one Condition: building a Condition costs ~15 us here, 1.5 s
        # for a 100k-task map. result()/exception() below wait in a loop, so a
        # wake-up meant for a sibling future is harmless.
        self._condition = condition if condition is not None else threading.Condition()
        self._state = _PENDING
        self._result = self._exception = None
        self._w = self._cb = ()
        self.job = job
        self.index = index
        self._host_submit = host_submit
        self._stats = self._meta = self._returned = None

    @classmethod
    def many(cls, job: Job, n: int, condition: threading.Condition) -> list[ResponseFuture]:
        """n futures of one job (host_submit: the job's), as __init__ makes
        them but without a call per future. The cyclic GC is paused meanwhile
        (gcpause.py)."""
        new = cls.__new__
        futures: list[ResponseFuture] = []
        append = futures.append
        with gc_paused():
            for i in range(n):
                f = new(cls)
                f._condition = condition
                f._state = _PENDING
                f._result = f._exception = f._host_submit = None
                f._stats = f._meta = f._returned = None
                f._w = f._cb = ()
                f.job = job
                f.index = i
                append(f)
        return futures

    # concurrent.futures.Future's waiter and callback lists, made on first use:
    # most futures never get either, and two lists per future were a third of
    # building them. gust's own code reads _w/_cb (an empty tuple until then).
    @property
    def _waiters(self) -> Any:
        if self._w == ():
            self._w = []
        return self._w

    @_waiters.setter
    def _waiters(self, value: Any) -> None:
        self._w = value

    @property
    def _done_callbacks(self) -> Any:
        if self._cb == ():
            self._cb = []
        return self._cb

    @_done_callbacks.setter
    def _done_callbacks(self, value: Any) -> None:
        self._cb = value

    def __repr__(self) -> str:
        return "<gust.ResponseFuture %s[%d] %s>" % (self.job_id, self.index, self._state.lower())

    def __reduce__(self) -> tuple[Any, ...]:
        """A future pickles as its job's id, task count and its own index, not
        its state: unpickled in another process (a task returned it, say), it
        is that process's future of the same task, bound to that process's
        engine connection (gust.job.restore_future), and result(), wait() and
        get_result read the task's result from the engine (which keeps it
        for the job's ttl_s). Raises TypeError (pickle's PicklingError) for a
        future whose job was not submitted yet."""
        job_id = self.job_id
        if job_id is None:
            raise TypeError("a gust future pickles only once its job is submitted "
                            "(it travels as the job's id)")
        from .job import restore_future
        return (restore_future, (job_id, getattr(self.job, "n_tasks", 0), self.index))

    @property
    def stats(self) -> dict[str, Any]:
        """The task's timestamps and placement (see the class docstring)."""
        if self._stats is None:
            host_submit = self._host_submit
            if host_submit is None:
                host_submit = getattr(self.job, "host_submit", None)
            self._stats = {"host_submit": host_submit}
        returned = self._returned
        if self._meta is not None:
            meta, self._meta = self._meta, None
            self._stats.update(_stats_from_meta(_meta_dict(meta, returned)))
        if returned is not None:
            self._stats["result_returned"] = (returned.at if isinstance(returned, Received)
                                              else returned)
        return self._stats

    @stats.setter
    def stats(self, value: dict[str, Any]) -> None:
        self._meta = None
        self._returned = None
        self._stats = value

    @property
    def job_id(self) -> str | None:
        """The id of the task's job on the engine (None before it is submitted)."""
        return getattr(self.job, "job_id", None) or None

    def result(self, timeout: float | None = None, throw_except: bool = True,
               check_only: bool = False, storage_handler: Any = None) -> Any:
        """The task's return value, waiting up to `timeout` seconds (None: no limit).

        Raises the task's exception (the function's own, with its original
        type and the remote traceback as __cause__, or a TaskError) unless
        throw_except is False, which returns None for a failed task instead.
        check_only (Pywren's; default False): True returns None at once when
        the task is not done yet instead of waiting. storage_handler is
        accepted for Pywren's signature and ignored. Raises
        concurrent.futures.TimeoutError when the task is not done in time and
        concurrent.futures.CancelledError if it was cancelled."""
        if check_only and not self.done():
            return None
        if self._state != _FINISHED or self._exception is not None:
            self._wait_done(timeout)
        try:
            return super().result(0)
        except (cf.CancelledError, cf.TimeoutError):
            raise
        except BaseException as exc:  # noqa: B902 -- re-raised unless throw_except is False
            if not throw_except:
                return None
            if is_task_failure(exc):
                raise exc.with_traceback(None)  # a task failed: its traceback is above
            raise

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception (None if it succeeded), as concurrent.futures.Future's."""
        self._wait_done(timeout)
        return super().exception(0)

    def _wait_done(self, timeout: float | None) -> None:
        """Blocks until the future is done or timeout (s) passes."""
        with self._condition:
            end = None if timeout is None else time.monotonic() + timeout
            while self._state not in _DONE_STATES:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                self._condition.wait(remaining)

    def cancel(self) -> bool:
        """Cancels the task if it has not finished: the engine drops it if still
        pending; a result that arrives later is ignored. Returns False if the
        future was already done, else whether it is now cancelled."""
        if self.done():
            return False
        cancelled = super().cancel()
        if cancelled:
            # CANCELLED_AND_NOTIFIED: what concurrent.futures.wait counts as done.
            self.set_running_or_notify_cancel()
            if self.job is not None:
                self.job.cancel_tasks([self.index])
        return cancelled

    @property
    def error(self) -> bool:
        """True if the task finished with an exception (Pywren's attribute)."""
        return self.done() and not self.cancelled() and self.exception(0) is not None

    @property
    def run_status(self) -> dict[str, Any]:
        """Pywren's run_status, from stats: start_time and end_time (epoch s),
        setup_time and exec_time (s), host_submit_time, runtime_cached (a
        warm sandbox); None where not known yet."""
        s = self.stats
        start, setup, end = s.get("task_start"), s.get("setup_done"), s.get("task_done")
        return {"start_time": start, "end_time": end,
                "setup_time": None if start is None or setup is None else setup - start,
                "exec_time": None if setup is None or end is None else end - setup,
                "host_submit_time": s.get("host_submit"),
                "runtime_cached": None if s.get("cold") is None else not s.get("cold"),
                "call_id": self.index, "callset_id": self.job_id}

    @property
    def invoke_status(self) -> dict[str, Any]:
        """Pywren's invoke_status (the client's side), from stats:
        host_submit_time and download_output_timestamp (epoch s)."""
        s = self.stats
        return {"host_submit_time": s.get("host_submit"),
                "download_output_timestamp": s.get("result_returned")}

    def resolve(self, meta: dict[str, Any], data: bytes) -> None:
        """Completes the future from one result (meta dict + data bytes)."""
        resolve_batch([(self, meta.get("status"), meta, data)])

    def fail(self, exc: BaseException) -> None:
        """Completes the future with a client-side error (engine gone, ...)."""
        try:
            if not self.done():
                self.set_exception(exc)
        except cf.InvalidStateError:
            pass


class Received:
    """One results body as its futures keep it: their frames' fields are read
    from it when someone asks for their stats; `at` is when it was decoded."""

    __slots__ = ("body", "at")

    def __init__(self, body: bytes, at: float) -> None:
        self.body = body
        self.at = at


def _meta_dict(meta: Any, received: Any) -> dict[str, Any]:
    """A result's fields: meta itself (a dict), or read from the frame at
    offset `meta` of the Received body; a malformed frame gives what is known
    rather than failing a stats read."""
    if isinstance(meta, dict):
        return meta
    try:
        return result_meta(received.body, meta)
    except (ValueError, IndexError):
        return {}


def _stats_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_start": meta.get("t_start"),
        "setup_done": meta.get("t_setup"),
        "task_done": meta.get("t_done"),
        "queued": meta.get("t_queued"),
        "finished": meta.get("t_finished"),
        "cold": meta.get("cold"),
        "sandbox": meta.get("sandbox"),
        "attempts": meta.get("attempts"),
        "status": meta.get("status"),
    }


def resolve_batch(results: Iterable[tuple[ResponseFuture, Any, Any, bytes]]) -> None:
    """Completes futures from results: [(future, status, meta, data)], meta
    being the result's fields (a dict) or where its frame is: (Received,
    offset).

    What concurrent.futures.Future.set_result/set_exception do, once per batch
    instead of once per future: results are unpickled outside the lock, then
    the futures of one condition are completed under one acquisition with one
    notify_all. A future already done (cancelled locally, or a duplicate from a
    straggler's backup copy) is left as it is."""
    returned = time.time()
    ready: list[tuple[ResponseFuture, bool, Any]] = []  # (future, ok, value)
    for f, status, meta, data in results:
        if f._state in _DONE_STATES:
            continue
        if isinstance(meta, dict):
            f._meta, f._returned = meta, returned
        else:
            f._returned, f._meta = meta
        if status == "ok":
            try:
                ready.append((f, True, _loads(data)))
            except Exception as e:  # noqa: B902 -- unpickling runs arbitrary code
                ready.append((f, False, _decode_failure(f.index, data, e)))
        elif status == "cancelled":
            if super(ResponseFuture, f).cancel():
                f.set_running_or_notify_cancel()
        else:
            ready.append((f, False, decode_error(_meta_dict(f._meta, f._returned), data,
                                                 f.index)))
    start = 0
    while start < len(ready):
        condition = ready[start][0]._condition
        end = start
        callbacks: list[ResponseFuture] = []
        with condition:
            while end < len(ready) and ready[end][0]._condition is condition:
                f, ok, value = ready[end]
                end += 1
                if f._state in _DONE_STATES:
                    continue  # cancelled concurrently by the user
                f._state = _FINISHED
                if ok:
                    f._result = value
                    for waiter in f._w:
                        waiter.add_result(f)
                else:
                    f._exception = value
                    for waiter in f._w:
                        waiter.add_exception(f)
                if f._cb:
                    callbacks.append(f)
            condition.notify_all()
        for f in callbacks:
            f._invoke_callbacks()
        start = end


def _decode_failure(index: int | None, data: bytes, e: BaseException) -> ResultDecodeError:
    return ResultDecodeError(
        "the result of task %s (%d bytes) cannot be unpickled on the client: %s: %s "
        "(does it need a module that is not importable here?)"
        % (index, len(data), type(e).__name__, e))


def decode_value(data: bytes, index: int | None = None) -> Any:
    """Unpickles a task's return value; raises ResultDecodeError naming the task."""
    try:
        return _loads(data)
    except Exception as e:  # noqa: B902 -- unpickling runs arbitrary code
        raise _decode_failure(index, data, e) from e


def decode_error(meta: dict[str, Any], data: bytes, index: int | None = None) -> BaseException:
    """The exception a failed task's future raises.

    The function's own exception comes back pickled with the remote traceback
    text: it is re-raised with its original type, the traceback attached as its
    __cause__ (a RemoteTraceback) and as `remote_traceback`. Engine-side errors
    (no data) become TaskError subclasses."""
    if not data:
        return task_error(meta.get("error_type"), meta.get("error_message"), index,
                          meta.get("attempts"))
    try:
        exc, tb_text = _loads(data)
    except Exception as e:  # noqa: B902 -- unpickling runs arbitrary code
        return ResultDecodeError(
            "task %s raised %s: %s, but the exception cannot be unpickled on the client: %s: %s"
            % (index, meta.get("error_type"), meta.get("error_message"), type(e).__name__, e))
    return attach_remote_traceback(exc, tb_text)


def is_task_failure(exc: BaseException) -> bool:
    """Whether exc is a task's failure (its own exception, or a TaskError).
    Those are re-raised to the user without gust's frames below the raise
    (exc.with_traceback(None) at each public entry point: Future.result,
    get_all_results, FunctionExecutor.get_result): the client's traceback
    shows the user's call, one gust frame, then the remote frames as its
    __cause__, instead of five frames of futures plumbing."""
    return isinstance(exc, TaskError) or hasattr(exc, "remote_traceback")


_FRAME_LINE = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in ')


def with_client_source(tb_text: str) -> str:
    """The remote traceback with the source line of each frame the sandbox
    could not show: the function was pickled from the client's files (a
    script, a module, a notebook cell in linecache), which the sandbox does
    not have; the client does."""
    lines = tb_text.splitlines(keepends=True)
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        m = _FRAME_LINE.match(line)
        if m is None or (i + 1 < len(lines) and lines[i + 1].startswith("    ")):
            continue
        source = linecache.getline(m.group("file"), int(m.group("line"))).strip()
        if source:
            out.append("    %s\n" % source)
    return "".join(out)


def attach_remote_traceback(exc: Any, tb_text: str) -> BaseException:
    """Marks a re-raised remote exception with its remote traceback text
    (with the client's source lines where the sandbox had none)."""
    tb_text = with_client_source(tb_text)
    if not isinstance(exc, BaseException):
        exc = RuntimeError("remote task raised a non-exception object: %r" % (exc,))
    try:
        exc.remote_traceback = tb_text
    except AttributeError:
        pass
    if tb_text and exc.__cause__ is None:
        exc.__cause__ = RemoteTraceback(tb_text)
    return exc


def _wait_for_jobs(fs: Sequence[Any], deadline: float | None) -> list[Any]:
    """ALL_COMPLETED for whole jobs: when fs holds every future of a job, waits
    on the job's completion event (one wait per job instead of one waiter per
    future). Returns the futures left to wait for one by one."""
    jobs: dict[int, list[Any]] = {}  # id(job) -> [job, its futures among fs]
    for f in fs:
        job = getattr(f, "job", None)
        if job is not None and getattr(job, "all_resolved", None) is not None:
            jobs.setdefault(id(job), [job, 0])[1] += 1
    whole = {key for key, (job, count) in jobs.items() if count == job.n_tasks}
    for key in whole:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not jobs[key][0].all_resolved.wait(remaining):
            break
    return [f for f in fs if f._state not in _DONE_STATES
            and id(getattr(f, "job", None)) not in whole]


def wait(fs: Iterable[cf.Future[Any]], return_when: str = ALL_COMPLETED,
         timeout: float | None = None,
         show_progress: bool | None = None) -> tuple[set[Any], set[Any]]:
    """Waits for the futures `fs` (gust's or any concurrent.futures.Future).

    return_when: ALL_COMPLETED (the default: every future done),
    ANY_COMPLETED or FIRST_COMPLETED (at least one done), or ALWAYS (return
    the current state at once, without waiting). timeout: seconds to wait at
    most (None, the default: no limit); when it passes, wait returns the
    state so far rather than raising. show_progress: a progress bar on
    stderr (None, the default: when stdout and stderr are terminals, or in a
    Jupyter kernel).

    Returns a pair of sets (done, not_done), as concurrent.futures.wait.
    Raises ValueError for another return_when. A task's failure is not
    raised here: its future is done, and result() raises it."""
    futs: list[Any] = list(fs)
    if return_when == ALWAYS:
        done = {f for f in futs if f.done()}
        return done, set(futs) - done
    if return_when not in (ALL_COMPLETED, ANY_COMPLETED):
        raise ValueError("return_when must be ALL_COMPLETED, ANY_COMPLETED or ALWAYS, not %r"
                         % (return_when,))
    from .progress import Progress
    with Progress(futs, show_progress) as progress:
        deadline = None if timeout is None else time.monotonic() + timeout
        if return_when == ALL_COMPLETED and not progress.active:
            _wait_for_jobs(futs, deadline)
        while True:
            done = {f for f in futs if f._state in _DONE_STATES}
            not_done = set(futs) - done if len(done) < len(futs) else set()
            if not not_done or (return_when == ANY_COMPLETED and done):
                return done, not_done
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining is not None and remaining <= 0:
                return done, not_done
            step = 0.25 if progress.active else remaining
            if step is not None and remaining is not None:
                step = min(step, remaining)
            cf.wait(not_done, timeout=step, return_when=return_when)
            progress.update()


def get_all_results(fs: Iterable[ResponseFuture], timeout: float | None = None,
                    throw_except: bool = True, show_progress: bool | None = None) -> list[Any]:
    """The results of the futures `fs`, in their order, once all are done.

    timeout: seconds to wait for all of them (None, the default: no limit).
    throw_except: True (the default) raises the first failed task's exception,
    in the order of fs (the function's own exception with its original type,
    or a TaskError); False puts None in place of a failed task's result.
    show_progress: as wait().

    Returns a list of results. Raises concurrent.futures.TimeoutError when
    some are unfinished after timeout, ResultDecodeError when a result cannot
    be unpickled here, and concurrent.futures.CancelledError for a cancelled
    task."""
    futs: list[Any] = list(fs)
    from .progress import interactive
    quiet = not (interactive() if show_progress is None else show_progress)
    deadline = None if timeout is None else time.monotonic() + timeout
    if quiet:  # no bar to update: wait for whole jobs, then check (no sets of futures)
        _wait_for_jobs(futs, deadline)
    if not (quiet and all(f._state in _DONE_STATES for f in futs)):
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, not_done = wait(futs, ALL_COMPLETED, timeout=remaining, show_progress=show_progress)
        if not_done:
            raise cf.TimeoutError("%d of %d tasks unfinished after %s s"
                                  % (len(not_done), len(futs), timeout))
    # Every future is done: a finished one's value can be read without its lock.
    try:
        return [f._result if f._state == _FINISHED and f._exception is None
                else f.result(throw_except=throw_except) for f in futs]
    except BaseException as exc:  # noqa: B902 -- re-raised
        if is_task_failure(exc):
            raise exc.with_traceback(None)  # a task failed: its traceback is above
        raise
