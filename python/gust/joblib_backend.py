"""A joblib backend running each batch of a Parallel call as a gust task.

    gust.register_joblib()
    with joblib.parallel_backend("gust"):
        GridSearchCV(..., n_jobs=-1).fit(X, y)

Each batch (a joblib BatchedCalls, pickled with cloudpickle) is submitted as a
one-task job whose function is the standard library's `operator.call`, so every
batch shares one code bundle (uploaded once) and the sandbox needs nothing of
gust. Inside the sandbox nested Parallel calls run sequentially.
"""

import concurrent.futures as cf
import operator

from joblib._parallel_backends import ParallelBackendBase, SequentialBackend


class GustBackend(ParallelBackendBase):
    """joblib backend; n_jobs=-1 means `workers` batches in flight (default 32)."""

    supports_timeout = True
    supports_sharedmem = False
    uses_threads = False

    def __init__(self, url=None, workers=32, memory=None, timeout=None, nesting_level=None,
                 inner_max_num_threads=None, **kwargs):
        super().__init__(nesting_level=nesting_level,
                         inner_max_num_threads=inner_max_num_threads, **kwargs)
        self.url = url
        self.workers = workers
        self.memory = memory
        self.timeout = timeout
        self._executor = None

    def __getstate__(self):
        # Never ship the executor (locks, connections) if joblib pickles us.
        state = dict(self.__dict__)
        state["_executor"] = None
        state.pop("parallel", None)
        return state

    def effective_n_jobs(self, n_jobs):
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            return max(self.workers + 1 + n_jobs, 1)
        return n_jobs

    def configure(self, n_jobs=1, parallel=None, prefer=None, require=None, **backend_args):
        if require == "sharedmem":
            raise ValueError("the gust backend cannot share memory with the caller "
                             "(require='sharedmem')")
        self.parallel = parallel
        if self._executor is None:
            from .executor import Executor
            config = {k: v for k, v in (("memory", self.memory), ("timeout", self.timeout))
                      if v is not None}
            self._executor = Executor(url=self.url, show_progress=False, **config)
        return self.effective_n_jobs(n_jobs)

    def apply_async(self, func, callback=None):
        """Runs one joblib batch (a callable of no arguments) as a gust task;
        the batches joblib dispatches in a burst travel as one job."""
        future = self._executor.submit(operator.call, func)
        future.get = lambda timeout=None: _get(future, timeout)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def abort_everything(self, ensure_ready=True):
        """Cancels every batch not yet finished (joblib saw an error)."""
        if self._executor is not None:
            for f in self._executor._futures:
                f.cancel()
            self._executor._futures = [f for f in self._executor._futures if not f.done()]

    def get_nested_backend(self):
        return SequentialBackend(nesting_level=(self.nesting_level or 0) + 1), None


def _get(future, timeout):
    try:
        return future.result(timeout=timeout)
    except cf.TimeoutError as e:
        raise TimeoutError from e


def register_joblib():
    """Registers the backend under the name "gust" (joblib.parallel_backend("gust"))."""
    from joblib.parallel import register_parallel_backend
    register_parallel_backend("gust", GustBackend)
