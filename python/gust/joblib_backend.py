"""A joblib backend running each batch of a Parallel call as a gust task.

    gust.register_joblib()
    with joblib.parallel_backend("gust"):
        GridSearchCV(..., n_jobs=-1).fit(X, y)

Each batch (a joblib BatchedCalls, pickled with cloudpickle) is submitted as a
one-task job whose function is the standard library's `operator.call`, so every
batch shares one code bundle (uploaded once) and the sandbox needs nothing of
gust. Inside the sandbox nested Parallel calls run sequentially.

The backend's options are passed through joblib:
joblib.parallel_backend("gust", url=..., workers=..., memory=..., timeout=...,
network=...).
"""

from __future__ import annotations

import concurrent.futures as cf
import operator
from typing import Any, Callable

from joblib._parallel_backends import ParallelBackendBase, SequentialBackend

from .executor import Executor
from .futures import ResponseFuture


class GustBackend(ParallelBackendBase):
    """The joblib backend "gust": each batch of a Parallel call is one gust task.

    GustBackend(url=None, workers=32, memory=None, timeout=None, network=False)

    url: the engine (default: $GUST_URL, else the local engine). workers: the
    batches in flight for n_jobs=-1 (n_jobs=-2 is workers - 1, and so on; a
    positive n_jobs is taken as is). memory (MB) and timeout (s): each
    sandbox's limits (None: the executor's defaults, 256 MB and 300 s; up
    to the engine's `gust up --max-memory` and `--max-timeout`, not Lambda's
    10240 MB and 900 s; timeout=0: no limit of the batch's own).
    network: True gives the batches' sandboxes the network (default False,
    as FunctionExecutor's).
    Parallel(..., timeout=t) is honoured: a batch unfinished after t seconds
    raises TimeoutError. require="sharedmem" raises ValueError (a sandbox
    shares no memory with the caller). A batch's exception is raised by
    Parallel with its original type.
    """

    supports_timeout = True
    supports_sharedmem = False
    uses_threads = False

    def __init__(self, url: str | None = None, workers: int = 32, memory: int | None = None,
                 timeout: float | None = None, network: bool = False,
                 nesting_level: int | None = None,
                 inner_max_num_threads: int | None = None, **kwargs: Any) -> None:
        super().__init__(nesting_level=nesting_level,
                         inner_max_num_threads=inner_max_num_threads, **kwargs)
        self.url = url
        self.workers = workers
        self.memory = memory
        self.timeout = timeout
        self.network = network
        self._executor: Executor | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Never ship the executor (locks, connections) if joblib pickles us.
        state = dict(self.__dict__)
        state["_executor"] = None
        state.pop("parallel", None)
        return state

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """The batches in flight for n_jobs (see the class docstring); ValueError for 0."""
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            return max(self.workers + 1 + n_jobs, 1)
        return n_jobs

    def configure(self, n_jobs: int | None = 1, parallel: Any = None, prefer: str | None = None,
                  require: str | None = None, **backend_args: Any) -> int:
        """Called by joblib before a Parallel call: makes the gust Executor (once)
        and returns the batches in flight; ValueError for require="sharedmem"."""
        if require == "sharedmem":
            raise ValueError("the gust backend cannot share memory with the caller "
                             "(require='sharedmem')")
        self.parallel = parallel
        if self._executor is None:
            config = {k: v for k, v in (("memory", self.memory), ("timeout", self.timeout))
                      if v is not None}
            self._executor = Executor(url=self.url, show_progress=False, network=self.network,
                                      **config)
        return self.effective_n_jobs(n_jobs)

    def apply_async(self, func: Callable[[], Any],
                    callback: Callable[[Any], Any] | None = None) -> ResponseFuture:
        """Runs one joblib batch (a callable of no arguments) as a gust task;
        the batches joblib dispatches in a burst travel as one job. Returns its
        future, whose get(timeout) joblib calls."""
        if self._executor is None:
            raise RuntimeError("the gust joblib backend was not configured")
        future = self._executor.submit(operator.call, func)
        future.get = lambda timeout=None: _get(future, timeout)  # type: ignore[attr-defined]
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """Cancels every batch not yet finished (joblib saw an error)."""
        if self._executor is not None:
            for f in self._executor._futures:
                f.cancel()
            self._executor._futures = [f for f in self._executor._futures if not f.done()]

    def get_nested_backend(self) -> tuple[Any, None]:
        """Nested Parallel calls inside a sandbox run sequentially."""
        return SequentialBackend(nesting_level=(self.nesting_level or 0) + 1), None


def _get(future: ResponseFuture, timeout: float | None) -> Any:
    try:
        return future.result(timeout=timeout)
    except cf.TimeoutError as e:
        raise TimeoutError from e


def register_joblib() -> None:
    """Registers GustBackend with joblib under the name "gust", for
    joblib.parallel_backend("gust", ...). Raises ImportError without joblib."""
    from joblib.parallel import register_parallel_backend
    register_parallel_backend("gust", GustBackend)
