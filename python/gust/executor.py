"""The executors: FunctionExecutor (Pywren/Lithops API) and Executor (a
concurrent.futures.Executor). Both pickle the function once per map into a
content-addressed code bundle and submit all tasks of a map as one job."""

from __future__ import annotations

import concurrent.futures as cf
import pickle
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

import cloudpickle

from . import args as argmod
from . import futures as futmod
from .args import Call, ExtraArgs
from .engine import check_map_protocol, connect
from .errors import SerializationError
from .futures import ResponseFuture
from .gcpause import gc_paused
from .job import Job, submit
from .packaging import build_bundle, dumps_checked
from .wire import MAX_TASK_BYTES

# The executor options (see FunctionExecutor's docstring) and their defaults.
# network is off by default: a networked sandbox shares the host's network
# namespace, loopback included (docs/SECURITY.md, "Network"), so a map reaches
# the network only when its author says so; a task that fails for want of it
# is told which option to pass (runtimes/python/gust_runtime/map_worker.py).
DEFAULTS: dict[str, Any] = {"memory": 256, "timeout": 300, "retries": 2, "chunksize": None,
                            "concurrency": None, "straggler_factor": None, "ttl_s": None,
                            "network": False, "buckets": None}


def pickle_call(call: Call, i: int) -> bytes:
    """The task bytes of one (args, kwargs); raises SerializationError naming
    the argument that cannot be pickled or is over the 6 MB task limit.

    Plain data goes through the C pickler (~0.5 us a task); anything it cannot
    carry to another process (lambdas, classes of __main__...) through
    cloudpickle, as the map worker does with results."""
    try:
        data = pickle.dumps(call, 5)
        if b"__main__" in data:
            data = cloudpickle.dumps(call)
    except Exception:  # noqa: B902 -- cloudpickle, or a message naming the task
        data = dumps_checked(call, "the argument of task %d (%s)"
                             % (i, argmod.short_repr(call[0] if not call[1] else call[1])))
    if len(data) > MAX_TASK_BYTES:
        raise SerializationError("task %d is %d bytes pickled, over the engine's limit of %d "
                                 "bytes per task; pass large data through files or split it"
                                 % (i, len(data), MAX_TASK_BYTES))
    return data


def pickle_tasks(calls: Sequence[Call]) -> list[bytes]:
    """pickle_call of each (args, kwargs)."""
    return [pickle_call(call, i) for i, call in enumerate(calls)]


# Item types the C pickler carries with no reference to __main__.
_SCALARS = frozenset((int, float, complex, bool, str, bytes, type(None)))


def pickle_items(func: Callable[..., Any], items: Sequence[Any],
                 extra_args: ExtraArgs = None) -> list[bytes]:
    """The task bytes of each item of a map (args.py's rules), in one pass: a
    map of 10,000 numbers should not cost more than its own pickling."""
    argmod.check_extra_args(extra_args)
    sig = argmod.signature(func)
    single = extra_args is None and argmod.takes_one_argument(sig)
    dumps = pickle.dumps
    if single and set(map(type, items)) <= _SCALARS:
        # map(f, range(n)) and the like: no item can refer to __main__ or be
        # a dict/tuple/list, so each is pickled as is (~0.3 us a task).
        plain = [dumps(((item,), {}), 5) for item in items]
        if not plain or max(map(len, plain)) <= MAX_TASK_BYTES:
            return plain
    plain_types = (dict, tuple, list)
    out: list[bytes] = []
    append = out.append
    for i, item in enumerate(items):
        call: Call
        if single and not isinstance(item, plain_types):
            call = ((item,), {})
            try:
                data = dumps(call, 5)
                if b"__main__" not in data and len(data) <= MAX_TASK_BYTES:
                    append(data)
                    continue
            except Exception:  # noqa: B902 -- pickle_call says why
                pass
        else:
            call = argmod.normalize_item(func, item, sig, extra_args)
        append(pickle_call(call, i))
    return out


class _Core:
    """What both executors share: the engine connection, the version check, the
    job configuration and the submission of one map."""

    def __init__(self, url: str | None = None, **config: Any) -> None:
        unknown = set(config) - set(DEFAULTS) - {"show_progress"}
        if unknown:
            raise TypeError("unknown executor option(s): %s (known: %s)"
                            % (", ".join(sorted(unknown)), ", ".join(sorted(DEFAULTS))))
        self.show_progress = config.pop("show_progress", None)
        self.config = dict(DEFAULTS, **config)
        self.transport = connect(url)
        self.url = self.transport.url
        self._version_checked = False
        # FunctionExecutor keeps its jobs (plot, clean); Executor does not.
        self.jobs: list[Job] = []
        self.keep_jobs = True
        self._lock = threading.Lock()

    def record(self, job: Job) -> None:
        if self.keep_jobs:
            with self._lock:
                self.jobs.append(job)

    def check_version(self) -> None:
        if not self._version_checked:
            health = self.transport.json("GET", "/v1/health")
            check_map_protocol(health, self.url)
            self._version_checked = True

    def submit_calls(self, func: Callable[..., Any], calls: Sequence[Call],
                     extra_args: ExtraArgs = None,
                     **overrides: Any) -> list[ResponseFuture]:
        """Submits one job of pre-normalised (args, kwargs) calls; returns its futures."""
        if not calls:
            return []
        with gc_paused():
            tasks = pickle_tasks(calls)
        return self.submit_tasks(func, tasks, extra_args, **overrides)

    def submit_tasks(self, func: Callable[..., Any], tasks: Sequence[bytes],
                     extra_args: ExtraArgs = None,
                     **overrides: Any) -> list[ResponseFuture]:
        """Submits one job of pickled tasks; returns its futures."""
        if not tasks:
            return []
        bundle = build_bundle(func, extra_args)
        self.check_version()
        config = dict(self.config)
        config.update({k: v for k, v in overrides.items() if v is not None})
        job = submit(self.transport, bundle, tasks, **config)
        self.record(job)
        return job.futures


class FunctionExecutor:
    """Runs Python functions over data in gust sandboxes: the Pywren/Lithops API.

    FunctionExecutor(url=None, *, memory=256, timeout=300, retries=2,
    chunksize=None, concurrency=None, straggler_factor=None, ttl_s=None,
    network=False, buckets=None, show_progress=None)

    url: the engine, "http://host:port", "https://host:port" or
    "unix:///path/to/socket"; several comma-separated URLs are nodes of one
    cluster: the first that answers is used, and a job's results move to
    another when its node dies (docs/CLUSTER.md, "Step 5b as built")
    (default: $GUST_URL, else $GUST_ENDPOINT, which
    a map task's sandbox sets to the engine's sandbox channel so that a task
    can map too (docs/MAP.md, "Maps from a task"), else a local engine on
    DEFAULT_URL, started with `gust up -d` if none answers).
    memory: each sandbox's memory limit in MB (default 256; from 128 up to
    the engine's `gust up --max-memory`, the machine's memory by default:
    Lambda's 10240 does not apply). timeout: each task's time limit in
    seconds (default 300; up to the engine's `gust up --max-timeout`, a week
    by default: Lambda's 900 does not apply; 0 or None: no limit of the
    task's own, so the engine's ceiling; nothing else stops a running task,
    and a slow one at most gets a backup copy, see straggler_factor).
    A value above the engine's ceiling fails the map with an EngineError
    naming it; a memory below 128 or a negative timeout raises ValueError,
    another type TypeError. retries: how many more times
    a task whose sandbox failed (timeout, out of memory, crash) is tried
    (default 2; an exception of the function is never retried). chunksize:
    tasks a sandbox takes per round trip (None: the engine sizes chunks to
    ~20 ms of work). concurrency: the most sandboxes a map uses at once
    (None: the engine's limit, `gust up --max-sandboxes`). straggler_factor:
    a chunk running longer than this many times the map's median time per
    task gets a backup copy on another sandbox (None: the engine's default).
    ttl_s: seconds the engine keeps a job's results after it ends (None: its
    --job-ttl, 1 h by default). network: True gives each sandbox the host's
    network (the internet, the LAN, and the host's own loopback services:
    docs/SECURITY.md); False (the default) gives it none, and a task's
    network call then fails with an error naming this option. buckets: the
    object store's buckets (docs/STORAGE.md) the tasks may use through their
    sandbox channel, gust.storage.Client() inside a task: a list of "name"
    (read-write) or "name:ro" (read-only); None (the default): none.
    show_progress: a progress bar while waiting (None: when stdout and
    stderr are terminals, or in a Jupyter kernel). map, call_async and
    map_reduce override some of these per call; docs/MAP.md has the details.

    Raises TypeError for an unknown option, EngineUnavailableError when no
    engine answers, and EngineError when the engine refuses the client (for
    example its credentials). The executor is a context manager; leaving it
    neither waits nor cancels (as Lithops').

    Attributes: futures (every future this executor returned, in order),
    jobs (its gust.Job objects), url.
    """

    def __init__(self, url: str | None = None, **config: Any) -> None:
        self._core = _Core(url, **config)
        self.futures: list[ResponseFuture] = []

    @property
    def url(self) -> str:
        """The engine's URL."""
        return self._core.url

    @property
    def jobs(self) -> list[Job]:
        """The jobs (one per map) this executor submitted, oldest first."""
        return list(self._core.jobs)

    def __enter__(self) -> FunctionExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, func: Callable[..., Any], iterdata: Iterable[Any],
            extra_args: ExtraArgs = None, chunksize: int | None = None,
            timeout: float | None = None, memory: int | None = None,
            retries: int | None = None, concurrency: int | None = None,
            straggler_factor: float | None = None,
            network: bool | None = None,
            buckets: Sequence[str] | None = None) -> list[ResponseFuture]:
        """Runs func once per item of iterdata, each call a task of one job.

        An item is passed as Lithops does: a dict whose keys name func's
        parameters as keyword arguments, a tuple or list as positional
        arguments, anything else as the single argument. extra_args (a
        tuple/list appended to every call's positional arguments, or a dict
        of keyword arguments; default None) travels once per map, not once
        per task. chunksize, timeout (s), memory (MB), retries, concurrency,
        straggler_factor, network (bool) and buckets override the executor's options
        for this map (None, the default: the executor's); timeout=0 gives the
        tasks no time limit of their own (the engine's --max-timeout, a week
        by default), and memory may exceed Lambda's 10240 MB up to the
        engine's --max-memory (the machine's memory by default).

        Returns one ResponseFuture per item, in iterdata's order (an empty
        iterdata gives []); the results are read with get_result() or the
        futures' result(). Raises TypeError when an item fits none of the
        argument rules or extra_args has another type, SerializationError
        when func, extra_args or an item cannot be pickled or a task is over
        the engine's 6 MB limit (nothing is submitted then),
        VersionMismatchError when this Python is one the engine cannot run
        a map in (before 3.9), and EngineError/EngineUnavailableError when the engine
        refuses the job (a timeout or memory above its ceilings, named in
        the message) or cannot be reached; ValueError for a memory below 128
        or a negative timeout."""
        with gc_paused():
            tasks = pickle_items(func, list(iterdata), extra_args)
        fs = self._core.submit_tasks(func, tasks, extra_args, chunksize=chunksize,
                                     timeout=timeout, memory=memory, retries=retries,
                                     concurrency=concurrency, straggler_factor=straggler_factor,
                                     network=network, buckets=buckets)
        self.futures.extend(fs)
        return fs

    def _map_whole(self, func: Callable[..., Any], items: Iterable[Any],
                   **overrides: Any) -> list[ResponseFuture]:
        """map, but each item is func's one argument whatever its type (no
        unpacking of dicts, tuples or lists): Pywren's rule, the hook of
        gust.pywren. overrides as map's options; raises what map raises."""
        fs = self._core.submit_calls(func, [((item,), {}) for item in items], None,
                                     **overrides)
        self.futures.extend(fs)
        return fs

    def call_async(self, func: Callable[..., Any], data: Any,
                   extra_args: ExtraArgs = None, timeout: float | None = None,
                   memory: int | None = None,
                   network: bool | None = None) -> ResponseFuture:
        """Runs func on data as one task; data follows map's argument rules.

        extra_args, timeout (s), memory (MB) and network (bool) as in map.
        Returns the task's ResponseFuture. Raises what map raises."""
        return self.map(func, [data], extra_args=extra_args, timeout=timeout, memory=memory,
                        network=network)[0]

    def map_reduce(self, map_func: Callable[..., Any], iterdata: Iterable[Any],
                   reduce_func: Callable[[list[Any]], Any],
                   extra_args: ExtraArgs = None, chunksize: int | None = None,
                   timeout: float | None = None, memory: int | None = None,
                   network: bool | None = None,
                   buckets: Sequence[str] | None = None) -> ResponseFuture:
        """Maps map_func over iterdata, then runs reduce_func(list of the map's
        results, in order) as one more task once every map task is done.

        extra_args, chunksize, timeout (s), memory (MB), network (bool) and
        buckets as in map (the reduce task gets the same timeout, memory,
        network and buckets). Returns the reduce
        task's future at once; the map's futures are in self.futures too.
        Raises what map raises; a failed map task fails the reduce future with
        that task's exception."""
        map_fs = self.map(map_func, iterdata, extra_args=extra_args, chunksize=chunksize,
                          timeout=timeout, memory=memory, network=network, buckets=buckets)
        return self.reduce_groups(reduce_func, [map_fs], timeout=timeout, memory=memory,
                                  network=network, buckets=buckets)[0]

    def reduce_groups(self, reduce_func: Callable[[list[Any]], Any],
                      groups: Sequence[Sequence[cf.Future[Any]]],
                      **overrides: Any) -> list[ResponseFuture]:
        """One reduce task per group of futures, reduce_func(list of the
        group's results, in order), all in one job submitted once every
        group's futures are done (map_reduce's reducer; gust.lithops' one
        reducer per object). overrides as map's options. Returns the reduce
        futures at once (also in self.futures); a failed future of a group
        fails every reduce future with its exception."""
        outs = [ResponseFuture(None, 0, time.time()) for _ in groups]

        def run_reduce() -> None:
            try:
                calls: list[Call] = [(([f.result() for f in group],), {}) for group in groups]
                inner = self._core.submit_calls(reduce_func, calls, None, **overrides)
            except BaseException as e:  # noqa: B902 -- forwarded to the futures
                for out in outs:
                    out.fail(e)
                return
            for out, f in zip(outs, inner):
                try:
                    value = f.result()
                    out.stats = f.stats
                    out.set_result(value)
                except BaseException as e:  # noqa: B902 -- forwarded to the future
                    out.fail(e)

        if groups:
            threading.Thread(target=run_reduce, name="gust-reduce", daemon=True).start()
        self.futures.extend(outs)
        return outs

    def wait(self, fs: cf.Future[Any] | Iterable[cf.Future[Any]] | None = None,
             return_when: str = futmod.ALL_COMPLETED,
             timeout: float | None = None) -> tuple[set[Any], set[Any]]:
        """Waits for fs: a future or an iterable of them (default None: every
        future this executor returned). return_when (ALL_COMPLETED, the
        default, ANY_COMPLETED or ALWAYS) and timeout (s; None: no limit) as
        gust.wait, with the executor's show_progress.

        Returns the sets (done, not_done). Raises ValueError for another
        return_when; a task's failure is raised by get_result, not here."""
        fs = self.futures if fs is None else _as_list(fs)
        return futmod.wait(fs, return_when, timeout, show_progress=self._core.show_progress)

    def get_result(self, fs: cf.Future[Any] | Iterable[cf.Future[Any]] | None = None,
                   throw_except: bool = True, timeout: float | None = None) -> Any:
        """Waits for fs and returns its results: a single future gives its
        result, an iterable of futures (default None: every future this
        executor returned) a list of results in the same order.

        throw_except: True (the default) raises the first failed task's
        exception (the function's own, with its type and the remote traceback
        as __cause__, or a TaskError such as TaskTimeoutError); False gives
        None for a failed task. timeout: seconds to wait for all (None, the
        default: no limit). Raises concurrent.futures.TimeoutError when tasks
        are unfinished after timeout, ResultDecodeError when a result cannot
        be unpickled here."""
        single = isinstance(fs, cf.Future)
        fs = self.futures if fs is None else _as_list(fs)
        try:
            results = futmod.get_all_results(fs, timeout=timeout, throw_except=throw_except,
                                             show_progress=self._core.show_progress)
        except BaseException as exc:  # noqa: B902 -- re-raised
            if futmod.is_task_failure(exc):
                raise exc.with_traceback(None)  # a task failed: its traceback is above
            raise
        return results[0] if single else results

    def plot(self, fs: cf.Future[Any] | Iterable[cf.Future[Any]] | None = None,
             dst: str | None = None) -> tuple[str, str]:
        """Draws Pywren's figures of the finished tasks among fs (default: every
        future of this executor) with matplotlib: dst + "_timeline.png" and
        dst + "_histogram.png" (dst default "gust_plot", in the working
        directory). Returns the two paths; raises ValueError when no task has
        finished."""
        from .plot import plot
        return plot(self.futures if fs is None else _as_list(fs), dst)

    def clean(self) -> None:
        """Deletes this executor's jobs (and their stored results) on the engine;
        unfinished tasks are cancelled. Best effort: never raises."""
        for job in self._core.jobs:
            try:
                job.delete()
            except Exception:  # noqa: B902 -- cleaning is best effort
                pass


def _as_list(fs: cf.Future[Any] | Iterable[cf.Future[Any]]) -> list[Any]:
    return [fs] if isinstance(fs, cf.Future) else list(fs)


class _SubmitBatcher:
    """Groups the Executor.submit calls of one function made within `delay`
    seconds into one job: a loop of 1000 submits becomes one request and one
    results stream instead of 1000 jobs (each with its own poller connection).
    Pickling errors and version mismatches still raise from submit() itself."""

    def __init__(self, core: _Core, delay: float = 0.002, max_batch: int = 10000) -> None:
        self.core = core
        self.delay = delay
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._batch: dict[str, Any] | None = None

    def add(self, fn: Callable[..., Any], args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> ResponseFuture:
        data = dumps_checked((args, kwargs), "the arguments %s" % argmod.short_repr(
            (args, kwargs)))
        if len(data) > MAX_TASK_BYTES:
            raise SerializationError("the call's arguments are %d bytes pickled, over the "
                                     "engine's limit of %d bytes per task"
                                     % (len(data), MAX_TASK_BYTES))
        self.core.check_version()
        full = None
        with self._lock:
            batch = self._batch
            if batch is not None and (batch["fn"] is not fn
                                      or len(batch["tasks"]) >= self.max_batch):
                full, batch, self._batch = batch, None, None
            if batch is None:
                batch = {"fn": fn, "bundle": build_bundle(fn), "tasks": [], "futures": []}
                self._batch = batch
                timer = threading.Timer(self.delay, self.flush, args=(batch,))
                timer.daemon = True
                timer.start()
            future = ResponseFuture(None, len(batch["futures"]), time.time())
            batch["tasks"].append(data)
            batch["futures"].append(future)
        if full is not None:
            self._send(full)
        return future

    def flush(self, batch: dict[str, Any] | None = None) -> None:
        """Sends the pending batch (only if it is still `batch`, when given)."""
        with self._lock:
            if self._batch is None or (batch is not None and self._batch is not batch):
                return
            pending, self._batch = self._batch, None
        self._send(pending)

    def _send(self, batch: dict[str, Any]) -> None:
        try:
            job = submit(self.core.transport, batch["bundle"], batch["tasks"],
                         futures=batch["futures"], **self.core.config)
            self.core.record(job)
        except BaseException as e:  # noqa: B902 -- the futures carry the error
            for f in batch["futures"]:
                f.fail(e)


class Executor(cf.Executor):
    """A concurrent.futures.Executor whose calls run in gust sandboxes.

    Executor(url=None, *, memory=256, timeout=300, retries=2, chunksize=None,
    concurrency=None, straggler_factor=None, ttl_s=None, network=False,
    show_progress=None)

    The options as FunctionExecutor's (network=True: the calls' sandboxes
    reach the network). Its futures are
    concurrent.futures.Future instances (gust ResponseFutures), so
    concurrent.futures.as_completed and wait work on them. Unlike a process
    pool there is no max_workers: the engine decides how many sandboxes run
    (concurrency= caps it). Raises what FunctionExecutor() raises. As a
    context manager, leaving it calls shutdown(wait=True).
    """

    def __init__(self, url: str | None = None, **config: Any) -> None:
        self._core = _Core(url, **config)
        self._core.keep_jobs = False  # futures live as long as the caller keeps them
        self._shutdown = False
        # The unfinished futures, for shutdown(); pruned as they finish.
        self._futures: list[ResponseFuture] = []
        self._batcher = _SubmitBatcher(self._core)

    def _track(self, fs: Sequence[ResponseFuture]) -> None:
        if len(self._futures) > 1024:
            self._futures = [f for f in self._futures if not f.done()]
        self._futures.extend(fs)

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> ResponseFuture:
        """Schedules fn(*args, **kwargs) as a task and returns its future.

        Calls of one function submitted within ~2 ms of each other travel as
        one job. Raises RuntimeError after shutdown(), SerializationError when
        fn or the arguments cannot be pickled or are over the engine's 6 MB
        task limit, VersionMismatchError when this Python is before 3.9, and
        EngineError/EngineUnavailableError from the first call's version
        check. The engine refusing the job fails the future rather than
        raising."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        f = self._batcher.add(fn, args, kwargs)
        self._track([f])
        return f

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any],
            timeout: float | None = None, chunksize: int | None = None) -> Iterator[Any]:
        """Returns an iterator of fn(*args) for args in zip(*iterables), in order,
        as concurrent.futures.Executor.map; every call is submitted at once, as
        one job.

        timeout: seconds from this call until each result must be there (None,
        the default: no limit). chunksize: tasks a sandbox takes per request
        (None, the default: the engine chooses; unlike ProcessPoolExecutor's,
        it never changes the results). Raises RuntimeError after shutdown()
        and what FunctionExecutor.map raises; the iterator raises a call's
        exception when it reaches that call, and concurrent.futures.TimeoutError
        when a result is not there in time (then cancels the calls left)."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        calls: list[Call] = [(tuple(a), {}) for a in zip(*iterables)]
        fs = self._core.submit_calls(fn, calls, chunksize=chunksize)
        self._track(fs)
        end = None if timeout is None else time.monotonic() + timeout

        def results() -> Iterator[Any]:
            try:
                for f in fs:
                    yield f.result(None if end is None else end - time.monotonic())
            finally:
                for f in fs:
                    f.cancel()
        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuses new calls and sends any batched ones; with wait (default
        True) returns once every call is done; cancel_futures (default False)
        cancels the calls not yet finished first. Never raises a call's
        exception."""
        self._shutdown = True
        self._batcher.flush()
        if cancel_futures:
            for f in self._futures:
                f.cancel()
        if wait:
            cf.wait([f for f in self._futures if not f.done()])


def default_executor(**config: Any) -> FunctionExecutor:
    """A FunctionExecutor(**config) (Pywren's name): on the configured engine
    (url=, $GUST_URL) or on a local engine started on demand (`gust up -d`,
    reused by later calls). Raises what FunctionExecutor() raises."""
    return FunctionExecutor(**config)
