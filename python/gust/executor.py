"""The executors: FunctionExecutor (Pywren/Lithops API) and Executor (a
concurrent.futures.Executor). Both pickle the function once per map into a
content-addressed code bundle and submit all tasks of a map as one job."""

import concurrent.futures as cf
import pickle
import threading
import time

import cloudpickle

from . import args as argmod
from . import futures as futmod
from .engine import check_map_protocol, check_python_version, connect
from .errors import SerializationError
from .gcpause import gc_paused
from .job import submit
from .packaging import build_bundle, dumps_checked
from .wire import MAX_TASK_BYTES

DEFAULTS = {"memory": 256, "timeout": 300, "retries": 2, "chunksize": None,
            "concurrency": None, "straggler_factor": None, "ttl_s": None}


def pickle_call(call, i):
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


def pickle_tasks(calls):
    """pickle_call of each (args, kwargs)."""
    return [pickle_call(call, i) for i, call in enumerate(calls)]


# Item types the C pickler carries with no reference to __main__.
_SCALARS = frozenset((int, float, complex, bool, str, bytes, type(None)))


def pickle_items(func, items, extra_args=None):
    """The task bytes of each item of a map (args.py's rules), in one pass: a
    map of 10,000 numbers should not cost more than its own pickling."""
    argmod.check_extra_args(extra_args)
    sig = argmod.signature(func)
    single = extra_args is None and argmod.takes_one_argument(sig)
    dumps = pickle.dumps
    if single and set(map(type, items)) <= _SCALARS:
        # map(f, range(n)) and the like: no item can refer to __main__ or be
        # a dict/tuple/list, so each is pickled as is (~0.3 us a task).
        out = [dumps(((item,), {}), 5) for item in items]
        if not out or max(map(len, out)) <= MAX_TASK_BYTES:
            return out
    plain_types = (dict, tuple, list)
    out = []
    append = out.append
    for i, item in enumerate(items):
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

    def __init__(self, url=None, **config):
        unknown = set(config) - set(DEFAULTS) - {"show_progress"}
        if unknown:
            raise TypeError("unknown executor option(s): %s (known: %s)"
                            % (", ".join(sorted(unknown)), ", ".join(sorted(DEFAULTS))))
        self.show_progress = config.pop("show_progress", None)
        self.config = dict(DEFAULTS, **config)
        self.transport = connect(url)
        self.url = self.transport.url
        self._version_checked = False
        self.jobs = []  # FunctionExecutor keeps its jobs (plot, clean); Executor does not
        self.keep_jobs = True
        self._lock = threading.Lock()

    def record(self, job):
        if self.keep_jobs:
            with self._lock:
                self.jobs.append(job)

    def check_version(self):
        if not self._version_checked:
            health = self.transport.json("GET", "/v1/health")
            check_map_protocol(health, self.url)
            check_python_version(health)
            self._version_checked = True

    def submit_calls(self, func, calls, extra_args=None, **overrides):
        """Submits one job of pre-normalised (args, kwargs) calls; returns its futures."""
        if not calls:
            return []
        with gc_paused():
            tasks = pickle_tasks(calls)
        return self.submit_tasks(func, tasks, extra_args, **overrides)

    def submit_tasks(self, func, tasks, extra_args=None, **overrides):
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
    """Pywren/Lithops executor: map, call_async, map_reduce, wait, get_result, plot.

    Options (per executor, each map may override some): url, memory (MB),
    timeout (s), retries, chunksize, concurrency, straggler_factor, ttl_s (None: the
    engine's --job-ttl),
    show_progress (None: only on a terminal).
    """

    def __init__(self, url=None, **config):
        self._core = _Core(url, **config)
        self.futures = []

    @property
    def url(self):
        return self._core.url

    @property
    def jobs(self):
        return list(self._core.jobs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, func, iterdata, extra_args=None, chunksize=None, timeout=None, memory=None,
            retries=None, concurrency=None, straggler_factor=None):
        """One future per item of iterdata, in order (an empty iterdata gives [])."""
        with gc_paused():
            tasks = pickle_items(func, list(iterdata), extra_args)
        fs = self._core.submit_tasks(func, tasks, extra_args, chunksize=chunksize,
                                     timeout=timeout, memory=memory, retries=retries,
                                     concurrency=concurrency, straggler_factor=straggler_factor)
        self.futures.extend(fs)
        return fs

    def call_async(self, func, data, extra_args=None, timeout=None, memory=None):
        """One task: func applied to data (same argument rules as map)."""
        return self.map(func, [data], extra_args=extra_args, timeout=timeout, memory=memory)[0]

    def map_reduce(self, map_func, iterdata, reduce_func, extra_args=None, chunksize=None,
                   timeout=None, memory=None):
        """Maps, then runs reduce_func(list of map results) as one more task once
        every map task is done. Returns the reduce task's future."""
        map_fs = self.map(map_func, iterdata, extra_args=extra_args, chunksize=chunksize,
                          timeout=timeout, memory=memory)
        reduce_future = futmod.ResponseFuture(None, 0, time.time())

        def run_reduce():
            try:
                results = [f.result() for f in map_fs]
                inner = self._core.submit_calls(reduce_func, [((results,), {})], None,
                                                timeout=timeout, memory=memory)[0]
                value = inner.result()
                reduce_future.stats = inner.stats
                reduce_future.set_result(value)
            except BaseException as e:  # noqa: B902 -- forwarded to the future
                reduce_future.fail(e)

        threading.Thread(target=run_reduce, name="gust-reduce", daemon=True).start()
        self.futures.append(reduce_future)
        return reduce_future

    def wait(self, fs=None, return_when=futmod.ALL_COMPLETED, timeout=None):
        """(done, not_done) for fs (default: every future of this executor)."""
        fs = self.futures if fs is None else _as_list(fs)
        return futmod.wait(fs, return_when, timeout, show_progress=self._core.show_progress)

    def get_result(self, fs=None, throw_except=True, timeout=None):
        """Results of fs in order (a single future gives its single result)."""
        single = isinstance(fs, cf.Future)
        fs = self.futures if fs is None else _as_list(fs)
        results = futmod.get_all_results(fs, timeout=timeout, throw_except=throw_except,
                                         show_progress=self._core.show_progress)
        return results[0] if single else results

    def plot(self, fs=None, dst=None):
        """Timeline and histogram PNGs of the tasks (Pywren's figure); returns their paths."""
        from .plot import plot
        return plot(self.futures if fs is None else _as_list(fs), dst)

    def clean(self):
        """Deletes this executor's jobs (and their stored results) on the engine."""
        for job in self._core.jobs:
            try:
                job.delete()
            except Exception:  # noqa: B902 -- cleaning is best effort
                pass


def _as_list(fs):
    return [fs] if isinstance(fs, cf.Future) else list(fs)


class _SubmitBatcher:
    """Groups the Executor.submit calls of one function made within `delay`
    seconds into one job: a loop of 1000 submits becomes one request and one
    results stream instead of 1000 jobs (each with its own poller connection).
    Pickling errors and version mismatches still raise from submit() itself."""

    def __init__(self, core, delay=0.002, max_batch=10000):
        self.core = core
        self.delay = delay
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._batch = None

    def add(self, fn, args, kwargs):
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
            future = futmod.ResponseFuture(None, len(batch["futures"]), time.time())
            batch["tasks"].append(data)
            batch["futures"].append(future)
        if full is not None:
            self._send(full)
        return future

    def flush(self, batch=None):
        """Sends the pending batch (only if it is still `batch`, when given)."""
        with self._lock:
            if self._batch is None or (batch is not None and self._batch is not batch):
                return
            pending, self._batch = self._batch, None
        self._send(pending)

    def _send(self, batch):
        try:
            job = submit(self.core.transport, batch["bundle"], batch["tasks"],
                         futures=batch["futures"], **self.core.config)
            self.core.record(job)
        except BaseException as e:  # noqa: B902 -- the futures carry the error
            for f in batch["futures"]:
                f.fail(e)


class Executor(cf.Executor):
    """A concurrent.futures.Executor running calls in gust sandboxes.

    Its futures are concurrent.futures.Future instances (gust ResponseFutures),
    so concurrent.futures.as_completed and wait work on them. map() submits all
    items as one job. Options as FunctionExecutor's.
    """

    def __init__(self, url=None, **config):
        self._core = _Core(url, **config)
        self._core.keep_jobs = False  # futures live as long as the caller keeps them
        self._shutdown = False
        self._futures = []  # unfinished ones, for shutdown(); pruned as they finish
        self._batcher = _SubmitBatcher(self._core)

    def _track(self, fs):
        if len(self._futures) > 1024:
            self._futures = [f for f in self._futures if not f.done()]
        self._futures.extend(fs)

    def submit(self, fn, /, *args, **kwargs):
        """Schedules fn(*args, **kwargs); calls of one function submitted within
        ~2 ms of each other travel as one job."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        f = self._batcher.add(fn, args, kwargs)
        self._track([f])
        return f

    def map(self, fn, *iterables, timeout=None, chunksize=None):
        """Like concurrent.futures.Executor.map (results in order, timeout
        counted from the call), with every call submitted as one job."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        calls = [(tuple(a), {}) for a in zip(*iterables)]
        fs = self._core.submit_calls(fn, calls, chunksize=chunksize)
        self._track(fs)
        end = None if timeout is None else time.monotonic() + timeout

        def results():
            try:
                for f in fs:
                    yield f.result(None if end is None else end - time.monotonic())
            finally:
                for f in fs:
                    f.cancel()
        return results()

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._shutdown = True
        self._batcher.flush()
        if cancel_futures:
            for f in self._futures:
                f.cancel()
        if wait:
            cf.wait([f for f in self._futures if not f.done()])


def default_executor(**config):
    """A FunctionExecutor on the configured engine (url=, $GUST_URL) or on a local
    engine started on demand (`gust up -d`, reused by later calls)."""
    return FunctionExecutor(**config)
