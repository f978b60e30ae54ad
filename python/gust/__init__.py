"""gust: map Python functions over arguments in gust sandboxes.

Pywren/Lithops API (`default_executor`, `FunctionExecutor`, `wait`,
`get_all_results`), a concurrent.futures `Executor`, and a joblib backend
(`register_joblib`). The wire contract with the engine is docs/MAP.md.
"""

from .engine import DEFAULT_URL
from .errors import (EngineError, EngineUnavailableError, GustError, RemoteTraceback,
                     ResultDecodeError, SerializationError, TaskError, TaskExitError,
                     TaskOutOfMemoryError, TaskTimeoutError, VersionMismatchError)
from .executor import Executor, FunctionExecutor, default_executor
from .futures import (ALL_COMPLETED, ALWAYS, ANY_COMPLETED, FIRST_COMPLETED, ResponseFuture,
                      get_all_results, wait)
from .job import Job, get_job

__version__ = "0.1.0"


def register_joblib():
    """Registers the "gust" joblib backend (imports joblib only when called)."""
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
