"""gust: run Python functions over data in gust sandboxes.

A client for a gust engine (`gust up`): each call of a map is a task that
runs in a sandbox, and the results come back to this process. Three ways in:

- the Pywren/Lithops API: `FunctionExecutor` (`default_executor`) with
  map, call_async, map_reduce, wait and get_result, and the module-level
  `wait` and `get_all_results` over any futures;
- `Executor`, a concurrent.futures.Executor (submit, map, shutdown);
- a joblib backend: `register_joblib()`, then
  joblib.parallel_backend("gust").

Code written for Lithops or Pywren runs unchanged through `from gust import
lithops` and `from gust import pywren` (docs/COMPAT.md). The engine's object
store is `from gust import storage` (storage.Client(); in a task, for the
buckets its map was given with buckets=[...]: docs/STORAGE.md).

Example:

    import gust

    def square(x):
        return x * x

    with gust.FunctionExecutor(memory=512) as fexec:
        futures = fexec.map(square, range(100))
        print(sum(fexec.get_result(futures)))       # 328350

    with gust.Executor() as pool:                   # concurrent.futures
        print(list(pool.map(square, [1, 2, 3])))    # [1, 4, 9]

The engine is found at url=..., else $GUST_URL, else DEFAULT_URL, where
`gust up -d` is started if nothing answers. The function, its arguments and
the local modules it uses are pickled with cloudpickle; the tasks run in the
client's own Python environment (sys.executable: a venv, conda env or pyenv
build, CPython 3.9 or later; docs/ENVIRONMENTS.md). A function's exception
is re-raised here with its own type and the remote traceback as its
__cause__ (a RemoteTraceback); failures of the sandbox itself are TaskError
subclasses; every other error of the client is a GustError. The wire
contract with the engine is docs/MAP.md.
"""

from __future__ import annotations

import sys

# Checked before anything else is imported: an older interpreter would fail
# later on syntax or typing it lacks, with a message that names neither.
if sys.version_info < (3, 9):
    raise ImportError("gust supports CPython 3.9 to 3.13; this is Python %d.%d (%s): run the "
                      "client in a newer environment (docs/ENVIRONMENTS.md)"
                      % (sys.version_info[0], sys.version_info[1], sys.executable))

from .engine import DEFAULT_URL
from .errors import (EngineError, EngineUnavailableError, GustError, RemoteTraceback,
                     ResultDecodeError, SerializationError, TaskError, TaskExitError,
                     TaskOutOfMemoryError, TaskTimeoutError, VersionMismatchError)
from .executor import Executor, FunctionExecutor, default_executor
from .futures import (ALL_COMPLETED, ALWAYS, ANY_COMPLETED, FIRST_COMPLETED, ResponseFuture,
                      get_all_results, wait)
from .job import Job, get_job

__version__ = "0.1.0"


def register_joblib() -> None:
    """Registers the "gust" joblib backend (gust.joblib_backend.GustBackend), so
    that `with joblib.parallel_backend("gust"):` runs each batch of a
    joblib.Parallel call (a scikit-learn fit with n_jobs=-1, say) as a gust
    task. Backend options go to parallel_backend: url, workers (batches in
    flight for n_jobs=-1, default 32), memory (MB), timeout (s). Imports joblib
    only when called; raises ImportError without it."""
    from .joblib_backend import register_joblib as _register
    _register()


__all__ = [
    "ALL_COMPLETED", "ALWAYS", "ANY_COMPLETED", "DEFAULT_URL", "EngineError",
    "EngineUnavailableError", "Executor", "FIRST_COMPLETED", "FunctionExecutor", "GustError",
    "Job", "RemoteTraceback", "ResponseFuture", "ResultDecodeError", "SerializationError",
    "TaskError", "TaskExitError", "TaskOutOfMemoryError", "TaskTimeoutError",
    "VersionMismatchError", "default_executor", "get_all_results", "get_job", "register_joblib",
    "wait",
]
