"""Exceptions the gust client raises.

Errors raised by the user's function inside a sandbox are re-raised locally with
their original type; these classes cover everything else (engine-side task
failures, transport problems, bad input, version mismatches). The hierarchy:

    GustError
        EngineError                  the engine answered with an error status
        EngineUnavailableError       no engine answers
        VersionMismatchError         the client's Python is too old for a map
        SerializationError           (also a TypeError) cannot pickle, or too big
        ResultDecodeError            a result cannot be unpickled here
        TaskError                    a task failed on the engine's side
            TaskTimeoutError
            TaskOutOfMemoryError     (also a MemoryError)
            TaskExitError
    RemoteTraceback                  the __cause__ of a re-raised remote exception
"""

from __future__ import annotations


class GustError(Exception):
    """Base class of every error the gust client itself raises."""


class EngineError(GustError):
    """The engine answered a request with an error status.

    `status` is the HTTP status (None when there was no answer to read) and
    `body` the response (bytes as received, or text), so a caller (or a bug
    report) can see exactly what the engine said.
    """

    def __init__(self, message: str, status: int | None = None,
                 body: bytes | str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class EngineUnavailableError(GustError):
    """The engine cannot be reached (not running, died mid-map, wrong URL)."""


class VersionMismatchError(GustError):
    """The client's Python is one the engine cannot run a map in (before 3.9):
    no task is submitted."""


class SerializationError(GustError, TypeError):
    """The function, extra_args or an argument cannot be pickled (raised before
    anything is submitted), or a task is too large to send."""


class ResultDecodeError(GustError):
    """A task finished but its result cannot be unpickled on the client (for
    example it references a module that is only installed in the sandbox)."""


class TaskError(GustError):
    """A task failed on the engine's side (not an exception of the function):
    its sandbox timed out, ran out of memory or exited, after `attempts` tries.

    `error_type` is the engine's Lambda-style error type (e.g. Sandbox.Timedout),
    `index` the task's position in its map, `attempts` how many tries it had
    (None when the engine did not say).
    """

    def __init__(self, message: str, error_type: str | None = "", index: int | None = None,
                 attempts: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.index = index
        self.attempts = attempts


class TaskTimeoutError(TaskError):
    """The task's sandbox exceeded the map's timeout (Sandbox.Timedout)."""


class TaskOutOfMemoryError(TaskError, MemoryError):
    """The task's sandbox exceeded the map's memory size (Runtime.OutOfMemory)."""


class TaskExitError(TaskError):
    """The task's sandbox process exited or crashed (Runtime.ExitError)."""


_TASK_ERRORS = {
    "Sandbox.Timedout": TaskTimeoutError,
    "Runtime.OutOfMemory": TaskOutOfMemoryError,
    "Runtime.ExitError": TaskExitError,
}


def task_error(error_type: str | None, message: str | None, index: int | None = None,
               attempts: int | None = None) -> TaskError:
    """The TaskError subclass matching an engine error type, instantiated."""
    cls = _TASK_ERRORS.get(error_type or "", TaskError)
    text = "task %s failed: %s: %s" % (index, error_type or "error", message or "(no message)")
    if attempts:
        text += " (after %d attempt%s)" % (attempts, "" if attempts == 1 else "s")
    return cls(text, error_type=error_type, index=index, attempts=attempts)


class RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised inside a sandbox.

    Set as the `__cause__` of the re-raised exception (as ProcessPoolExecutor
    does), so the remote frames print above the local ones."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return "\n\"\"\"\nRemote traceback (in a gust sandbox):\n%s\"\"\"" % self.tb
