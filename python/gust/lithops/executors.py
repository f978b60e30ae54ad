"""Lithops' FunctionExecutor over gust's (python/gust/executor.py).

What Lithops code passes is taken as Lithops means it: `config=` (a Lithops
config dict, lithops.config), backend/storage/mode names (accepted; on gust
there is one backend), runtime_memory (gust's memory), runtime_timeout and
execution_timeout (timeout), max_workers (concurrency); the backend options
that mean nothing on gust (runtime, region, ...) are ignored with a debug
log, any other name is a TypeError. gust's own options (url, memory,
network, ...) are accepted too.

Differences from gust.FunctionExecutor (docs/COMPAT.md): Lithops' futures
(future.py), get_result() of the results not yet read, a bare value after
call_async or map_reduce, Lithops' iterdata rules (a list, range or set is
the items; anything else one item), and network=True by default (Lambda
gives functions the internet, and Lithops code assumes it: docs/MAP.md,
"Network"). Not thread-safe: one executor per thread, as Lithops'.
"""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from typing import Any, Callable

from .. import executor as gustexec
from ..errors import EngineError
from . import config as lconfig
from . import objects
from .future import ResponseFuture, as_list, unwrap, wrap_all
from .storage import TASK_STORAGE_ENV, Storage
from .utils import FuturesList
from .wait import ALL_COMPLETED, THREADPOOL_SIZE, get_result, wait

logger = logging.getLogger("gust.lithops")

# The executor options gust.lithops starts from: gust's, with the network on.
DEFAULTS: dict[str, Any] = dict(gustexec.DEFAULTS, network=True)
# Lithops names with a gust meaning, and that meaning.
RENAMED = {"runtime_memory": "memory", "runtime_timeout": "timeout",
           "execution_timeout": "timeout", "max_workers": "concurrency"}
# Lithops backend options with no meaning on gust (one local engine, one runtime).
IGNORED = frozenset({"runtime", "region", "worker_processes", "invoke_pool_threads",
                     "remote_invoker", "runtime_cpu", "exec_mode", "use_gpu", "monitoring",
                     "mode", "backend", "storage", "config_file", "include_modules",
                     "exclude_modules", "customized_runtime", "namespace", "user_agent",
                     "storage_bucket"})
GUST_OPTIONS = frozenset(gustexec.DEFAULTS) | {"url", "show_progress"}


def gust_options(config: dict[str, Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """gust's executor options from a Lithops config and Lithops keyword
    arguments, the latter winning. From the config: the "gust" section
    (gust's names), lithops.execution_timeout, and the backend section's
    runtime_memory, runtime_timeout and max_workers. Raises TypeError naming
    an unknown keyword argument."""
    options: dict[str, Any] = {}
    if config:
        lithops = config.get("lithops") or {}
        options.update(_translate(config.get("gust") or {}, strict=True, what="config's gust"))
        backend = config.get(lithops.get("backend", lconfig.BACKEND)) or {}
        options.update(_translate({k: backend[k] for k in RENAMED if k in backend},
                                  strict=False, what="config"))
        if "execution_timeout" in lithops:
            options["timeout"] = lithops["execution_timeout"]
    options.update(_translate({k: v for k, v in kwargs.items() if v is not None}, strict=True,
                              what="FunctionExecutor"))
    return options


def _translate(names: dict[str, Any], strict: bool, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    unknown = []
    for key, value in names.items():
        if key in GUST_OPTIONS:
            out[key] = value
        elif key in RENAMED:
            out[RENAMED[key]] = value
        elif key in IGNORED:
            logger.debug("%s option %s=%r means nothing on gust: ignored", what, key, value)
        else:
            unknown.append(key)
    if unknown and strict:
        raise TypeError("unknown %s option(s): %s (known: gust's %s; Lithops' %s)"
                        % (what, ", ".join(sorted(unknown)), ", ".join(sorted(GUST_OPTIONS)),
                           ", ".join(sorted(set(RENAMED) | IGNORED))))
    return out


def iterdata_items(iterdata: Any) -> list[Any]:
    """The items of a Lithops iterdata: a list, range or set is its items;
    anything else (a tuple, a dict, a string, a number) is one item, as
    Lithops' format_data has it. A FuturesList (chaining) is its futures'
    results, waited for here; those futures then give no get_result()
    output of their own. Raises what a future's result() raises."""
    if isinstance(iterdata, FuturesList):
        items = [f.result() for f in iterdata]
        for f in iterdata:
            f._produce_output = False
        return items
    if isinstance(iterdata, list):
        return iterdata
    if isinstance(iterdata, (range, set, frozenset)):
        return list(iterdata)
    return [iterdata]


def with_env(func: Callable[..., Any], extra_env: dict[str, str] | None) -> Callable[..., Any]:
    """func, setting the environment variables extra_env in the sandbox first
    (Lithops' extra_env); the wrapper keeps func's signature so that items
    are unpacked for func. A closure, so cloudpickle sends it by value and
    the sandbox needs no gust.lithops."""
    if not extra_env:
        return func
    env = {str(k): str(v) for k, v in extra_env.items()}

    def run_with_env(*args: Any, **kwargs: Any) -> Any:
        import os as _os
        _os.environ.update(env)
        return func(*args, **kwargs)

    try:
        run_with_env.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        pass
    return run_with_env


def with_extra_args(func: Callable[..., Any], extra: Any) -> Callable[..., Any]:
    """func with Lithops' extra arguments bound after the ones it is called
    with: a tuple or list appended positionally, a dict as keywords. Raises
    TypeError (naming the type) for anything else."""
    if isinstance(extra, dict):
        kwargs = dict(extra)

        def call_with_kwargs(*args: Any) -> Any:
            return func(*args, **kwargs)
        return call_with_kwargs
    if isinstance(extra, (tuple, list)):
        tail = tuple(extra)

        def call_with_args(*args: Any) -> Any:
            return func(*args, *tail)
        return call_with_args
    raise TypeError("extra_args_reduce must be a tuple, list or dict, not %s"
                    % type(extra).__name__)


# What a map submits: the function, its items, its bucket grants, the parts of each object.
Prepared = tuple[Callable[..., Any], list[Any], list[str], "list[int] | None"]


class FunctionExecutor:
    """Lithops' FunctionExecutor, running on a gust engine.

    FunctionExecutor(mode=None, config=None, config_file=None, backend=None,
    storage=None, monitoring=None, log_level=False, **kwargs)

    config: a Lithops config dict (lithops.config.default_config(); default
    None: the file Lithops would read, if any). mode, backend, storage,
    monitoring and config_file are accepted and ignored (one backend: the
    gust engine at url=, $GUST_URL or gust's default). log_level: a logging
    level name for the "gust.lithops" logger (default False: unchanged).
    kwargs: runtime_memory (MB, gust's memory), runtime_timeout (s, gust's
    timeout), max_workers (gust's concurrency), Lithops backend options that
    mean nothing on gust (ignored), and gust.FunctionExecutor's options
    (url, memory, timeout, retries, chunksize, concurrency, network,
    straggler_factor, ttl_s, show_progress); network defaults to True here.

    Raises TypeError for an unknown option and what gust.FunctionExecutor
    raises. Attributes: futures (every future returned, oldest first),
    executor_id, config, gust_executor (the gust.FunctionExecutor).
    """

    def __init__(self, mode: str | None = None, config: dict[str, Any] | None = None,
                 config_file: str | None = None, backend: str | None = None,
                 storage: str | None = None, monitoring: str | None = None,
                 log_level: str | bool = False, **kwargs: Any) -> None:
        for name, value in (("mode", mode), ("backend", backend), ("storage", storage),
                            ("monitoring", monitoring)):
            if value is not None:
                logger.debug("FunctionExecutor(%s=%r): gust has one backend; ignored",
                             name, value)
        self.config = lconfig.default_config(config_file, config)
        options = dict(DEFAULTS)
        options.update(gust_options(self.config, kwargs))
        if log_level:
            logging.getLogger("gust.lithops").setLevel(str(log_level).upper())
        url = options.pop("url", None)
        # Whether the tasks may fetch obj URLs themselves (objects.partition refuses them if not).
        self.network = bool(options.get("network"))
        self.gust_executor = gustexec.FunctionExecutor(url, **options)
        self.executor_id = uuid.uuid4().hex[:6]
        self.futures: list[ResponseFuture] = []
        self.last_call: str | None = None
        self.storage_config = lconfig.extract_storage_config(self.config)
        if url:  # the storage is on the executor's engine unless its section says otherwise
            self.storage_config[self.storage_config["backend"]].setdefault("url", url)
        self._storage: Storage | None = None

    @property
    def storage(self) -> Storage:
        """The executor's Storage (its config's storage section), made at
        first use; its bucket is granted to every map."""
        if self._storage is None:
            self._storage = Storage(storage_config=self.storage_config)
        return self._storage

    def _prepare(self, func: Callable[..., Any], items: list[Any],
                 chunk_size: int | None = None, chunk_number: int | None = None,
                 newline: str | None = "\n") -> Prepared:
        """(function to submit, its items, bucket grants, parts per object or
        None): a function with Lithops' obj, storage or id parameters gets
        them (objects.py), an obj function one item per object or chunk."""
        if (chunk_size or chunk_number) and "obj" not in objects.parameters(func):
            raise ValueError("obj_chunk_size/obj_chunk_number split objects: the map function "
                             "needs an obj parameter")
        if not objects.needs_wrapping(func):
            # Granted for a task that makes a Storage() itself; a storage that cannot be
            # reached is the concern of the code that uses it, not of every map.
            try:
                return func, items, [self.storage.bucket], None
            except EngineError as e:
                logger.debug("map: no storage bucket granted (%s)", e)
                return func, items, [], None
        grants = {self.storage.bucket}
        params = objects.parameters(func)
        entries = objects.item_dicts(func, items)
        parts = None
        if "obj" in params:
            entries, parts, read = objects.partition(self.storage, entries, chunk_size,
                                                     chunk_number, newline, self.network)
            grants |= {b + ":ro" for b in read if b not in grants}
        if "id" in params:
            for i, entry in enumerate(entries):
                entry.setdefault("id", i)
        return (objects.with_injection(func, self.storage_config), entries, sorted(grants),
                parts)

    def _task_env(self, extra_env: dict[str, str] | None) -> dict[str, str]:
        """extra_env with the storage config a Storage() made in the task
        takes (as Lithops' workers have their executor's config)."""
        return dict(extra_env or {}, **{TASK_STORAGE_ENV: json.dumps(self.storage_config)})

    def __enter__(self) -> FunctionExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _map(self, func: Callable[..., Any], items: list[Any], extra_args: Any,
             extra_env: dict[str, str] | None, overrides: dict[str, Any],
             produce_output: bool = True, chunk_size: int | None = None,
             chunk_number: int | None = None, newline: str | None = "\n"
             ) -> list[ResponseFuture]:
        func, items, grants, _ = self._prepare(func, items, chunk_size, chunk_number, newline)
        fs = self.gust_executor.map(with_env(func, self._task_env(extra_env)), items,
                                    extra_args=extra_args,
                                    buckets=grants,
                                    **{k: v for k, v in overrides.items() if v is not None})
        wrapped = wrap_all(fs, self.executor_id, produce_output)
        self.futures.extend(wrapped)
        return wrapped

    def map(self, map_function: Callable[..., Any], map_iterdata: Any,
            chunksize: int | None = None, extra_args: Any = None,
            extra_env: dict[str, str] | None = None, runtime_memory: int | None = None,
            obj_chunk_size: int | None = None, obj_chunk_number: int | None = None,
            obj_newline: str = "\n", timeout: float | None = None,
            include_modules: list[str] | None = None, exclude_modules: list[str] | None = None,
            max_workers: int | None = None) -> FuturesList:
        """Runs map_function once per item of map_iterdata (iterdata_items'
        rules; each item as gust.FunctionExecutor.map passes it: a dict by
        parameter names, `*args`/`**kwargs` ones included, a tuple as
        positional arguments, anything else as the one argument).

        extra_args: a tuple appended to each call's positional arguments or a
        dict of keyword arguments (default None). extra_env: environment
        variables set in the sandbox before the call (default None).
        runtime_memory (MB), timeout (s), chunksize (calls per sandbox round
        trip) and max_workers (sandboxes at once) override the executor's for
        this map (None: the executor's). include_modules/exclude_modules are
        accepted and ignored (gust ships the local modules a function uses).
        map_iterdata may be the FuturesList of an earlier map (chaining,
        utils.FuturesList). A map_function with an obj parameter processes
        objects of the storage (gust.lithops.objects): each item names a
        bucket, prefix or key ("bucket/prefix/", "gust://bucket/key", a
        CloudObject) or an http(s) URL (fetched by the task, so it needs
        network=True, the default), one task per object, or per chunk of obj_chunk_size
        bytes or per obj_chunk_number chunks of each object, lines kept
        whole at obj_newline (None: exact byte ranges). A `storage`
        parameter gets a Storage, an `id` parameter the call's index. The
        storage bucket and the buckets read are granted to the tasks.
        Returns one future per item (per object or chunk), as a
        FuturesList. Raises ValueError for obj_chunk_* without an obj
        parameter, when no object is found, for a URL without network or
        whose HEAD fails or gives no Content-Length, StorageNoSuchKeyError for a
        missing key, and what gust.FunctionExecutor.map raises."""
        self.last_call = "map"
        return self._futures_list(self._map(
            map_function, iterdata_items(map_iterdata), extra_args, extra_env,
            {"chunksize": chunksize, "memory": runtime_memory, "timeout": timeout,
             "concurrency": max_workers}, chunk_size=obj_chunk_size,
            chunk_number=obj_chunk_number, newline=obj_newline))

    def _futures_list(self, fs: list[ResponseFuture]) -> FuturesList:
        out = FuturesList(fs)
        out.executor = self
        return out

    def call_async(self, func: Callable[..., Any], data: Any,
                   extra_env: dict[str, str] | None = None, runtime_memory: int | None = None,
                   timeout: float | None = None,
                   include_modules: list[str] | None = None,
                   exclude_modules: list[str] | None = None) -> ResponseFuture:
        """Runs func on data (one item, as map passes it) as one call; the
        options as map's. Returns its future; raises what map raises."""
        self.last_call = "call_async"
        return self._map(func, [data], None, extra_env,
                         {"memory": runtime_memory, "timeout": timeout})[0]

    def map_reduce(self, map_function: Callable[..., Any], map_iterdata: Any,
                   reduce_function: Callable[..., Any], chunksize: int | None = None,
                   extra_args: Any = None, extra_args_reduce: Any = None,
                   extra_env: dict[str, str] | None = None,
                   map_runtime_memory: int | None = None,
                   reduce_runtime_memory: int | None = None, timeout: float | None = None,
                   obj_chunk_size: int | None = None, obj_chunk_number: int | None = None,
                   obj_newline: str = "\n", obj_reduce_by_key: bool = False,
                   spawn_reducer: int = 20, include_modules: list[str] | None = None,
                   exclude_modules: list[str] | None = None) -> FuturesList:
        """map, then reduce_function(list of the map's results, in order) as
        one more call once they are all done; with obj_reduce_by_key and an
        obj map_function, one reducer per object over its chunks' results.
        The obj_* options as map's. A reducer with a `storage` parameter
        gets a Storage. map_runtime_memory (MB) is the memory of both
        (reduce_runtime_memory and spawn_reducer are accepted and ignored).
        extra_args_reduce, as Lithops passes it: a tuple or list appended to
        the reducer's positional arguments after the results, or a dict of
        keyword arguments (default None). Returns the map's futures followed
        by the reducers'; get_result() gives the reducers' values only.
        Raises TypeError for an extra_args_reduce of another type, and what
        map raises."""
        reduce_function = objects.with_injection(reduce_function, self.storage_config) \
            if "storage" in objects.parameters(reduce_function) else reduce_function
        if extra_args_reduce is not None:
            reduce_function = with_extra_args(reduce_function, extra_args_reduce)
        self.last_call = "map_reduce"
        func, items, grants, parts = self._prepare(map_function, iterdata_items(map_iterdata),
                                                   obj_chunk_size, obj_chunk_number,
                                                   obj_newline)
        gex = self.gust_executor
        map_fs = gex.map(with_env(func, self._task_env(extra_env)), items, extra_args=extra_args,
                         chunksize=chunksize, timeout=timeout, memory=map_runtime_memory,
                         buckets=grants)
        groups = [map_fs]
        if obj_reduce_by_key and parts:
            bounds = [sum(parts[:i]) for i in range(len(parts) + 1)]
            groups = [map_fs[bounds[i]:bounds[i + 1]] for i in range(len(parts))]
        reduce_fs = gex.reduce_groups(reduce_function, groups, timeout=timeout,
                                      memory=map_runtime_memory, buckets=grants)
        wrapped = (wrap_all(map_fs, self.executor_id, produce_output=False)
                   + wrap_all(reduce_fs, self.executor_id))
        self.futures.extend(wrapped)
        return self._futures_list(wrapped)

    def wait(self, fs: Any = None, throw_except: bool = True,
             return_when: Any = ALL_COMPLETED, download_results: bool = False,
             timeout: float | None = None, threadpool_size: int = THREADPOOL_SIZE,
             wait_dur_sec: float | None = None,
             show_progressbar: bool = True) -> tuple[list[Any], list[Any]]:
        """gust.lithops.wait over fs (default None: every future of this
        executor); returns (done, not_done) lists."""
        return wait(self.futures if fs is None else fs, throw_except, return_when,
                    download_results, timeout, threadpool_size, wait_dur_sec,
                    show_progressbar)

    def get_result(self, fs: Any = None, throw_except: bool = True,
                   timeout: float | None = None, threadpool_size: int = THREADPOOL_SIZE,
                   wait_dur_sec: float | None = None, show_progressbar: bool = True) -> Any:
        """The results of fs, as Lithops: fs None (the default) means the
        futures whose results no earlier get_result() returned, and marks them
        read; a map_reduce's map calls are left out (its reducer's value is the
        result). One result is returned bare unless the last call was a map;
        otherwise a list in the futures' order. throw_except and timeout (s)
        as gust.lithops.get_result; raises what it raises."""
        targets = ([f for f in self.futures if not f._read] if fs is None else as_list(fs))
        targets = [f for f in targets
                   if not isinstance(f, ResponseFuture) or f._produce_output]
        values = get_result(targets, throw_except, timeout, threadpool_size, wait_dur_sec,
                            show_progressbar)
        if fs is None:
            for f in targets:
                f._read = True
        if len(values) == 1 and self.last_call != "map":
            return values[0]
        return values

    def plot(self, fs: Any = None, dst: str | None = None,
             figsize: tuple[float, float] = (10, 6)) -> tuple[str, str] | None:
        """gust.FunctionExecutor.plot of fs (default: every future of this
        executor); None when none has finished (as Lithops)."""
        futs = [unwrap(f) for f in as_list(self.futures if fs is None else fs)]
        if not any(f.done() for f in futs):
            return None
        return self.gust_executor.plot(futs, dst)

    def clean(self, fs: Any = None, cs: Any = None, clean_cloudobjects: bool = True,
              clean_fn: bool = False, force: bool = False) -> None:
        """Deletes this executor's jobs and their stored results on the engine,
        and the CloudObjects cs (a list of them, default None) from the
        storage (the other arguments are accepted for Lithops' signature).
        Never raises."""
        self.gust_executor.clean()
        if cs and clean_cloudobjects:
            try:
                self.storage.delete_cloudobjects(list(cs))
            except Exception as e:  # noqa: B902 -- clean never raises, as Lithops'
                logger.debug("clean: the cloudobjects were not deleted: %s", e)

    def job_summary(self, cloud_objects_n: int = 0) -> None:
        """Accepted for Lithops' API; gust's figures are the futures' stats."""
        logger.debug("job_summary: see the futures' stats on gust")


# Lithops' executor classes by backend kind: the same executor on gust.
LocalhostExecutor = ServerlessExecutor = StandaloneExecutor = FunctionExecutor
