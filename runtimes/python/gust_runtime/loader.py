"""A function's init in its sandbox: Lambda's environment variables, then
importing the handler's module (module-level code runs once per sandbox) and
finding the handler in it, with Lambda's errorType for each failure (a Fault).

Runs in the sandbox's single thread (and once in the zygote, for the
environment every function shares); not thread-safe.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

from .codec import (BUILT_IN_MODULE_CONFLICT, HANDLER_NOT_FOUND, IMPORT_MODULE_ERROR,
                    MALFORMED_HANDLER_NAME, USER_CODE_SYNTAX_ERROR, Fault)

# typing only for the type checker: the runtime does not import it (import
# time in every sandbox that does not preload it).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))  # .../gust_runtime

_tz_set: str | None = None  # the TZ value time.tzset() last ran with (in the zygote)


def set_environment(config: dict[str, Any]) -> None:
    """Lambda's reserved variables (which win over the user's) plus the user's."""
    env = os.environ
    for key, value in (config.get("env") or {}).items():
        env[str(key)] = str(value)
    region = config.get("region", "us-east-1")
    function_name = config.get("function_name", "")
    reserved = {
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": config.get("function_version", "$LATEST"),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("memory_mb", 128)),
        "LAMBDA_TASK_ROOT": config.get("task_root", "/var/task"),
        "LAMBDA_RUNTIME_DIR": os.path.dirname(_RUNTIME_DIR),
        "_HANDLER": config.get("handler", ""),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "TZ": ":UTC",
        "AWS_LAMBDA_LOG_GROUP_NAME": config.get("log_group_name",
                                                "/aws/lambda/" + function_name),
        "AWS_LAMBDA_LOG_STREAM_NAME": config.get("log_stream_name", ""),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
    }
    node = config.get("node")
    if node:  # cluster mode (docs/CLUSTER.md): the node the sandbox runs on
        reserved["GUST_NODE"] = node
    for key, value in reserved.items():
        value = str(value)
        if env.get(key) != value:  # the zygote set the constant ones already
            env[key] = value
    if _tz_set != env.get("TZ"):
        time.tzset()


def pin_timezone() -> None:
    """Runs time.tzset() for the current TZ and remembers it, so that
    set_environment skips it while TZ stays the same (done in the zygote)."""
    global _tz_set
    time.tzset()
    _tz_set = os.environ.get("TZ")


def load_handler(handler: str) -> Callable[..., Any]:
    """Imports the handler's module and returns the function; raises Fault."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise Fault(MALFORMED_HANDLER_NAME, "Bad handler '{}': {}".format(handler, e)) from None
    if modname.split(".")[0] in sys.builtin_module_names:
        raise Fault(BUILT_IN_MODULE_CONFLICT,
                    "Cannot use built-in module {} as a handler module".format(modname))
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise Fault(IMPORT_MODULE_ERROR,
                    "Unable to import module '{}': {}".format(modname, e)) from None
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise Fault(USER_CODE_SYNTAX_ERROR,
                    "Syntax error in module '{}': {}".format(modname, e), trace) from None
    try:
        return getattr(module, fname)
    except AttributeError:
        raise Fault(HANDLER_NOT_FOUND,
                    "Handler '{}' missing on module '{}'".format(fname, modname)) from None


def load_handler_read_only(handler: str) -> Callable[..., Any]:
    """load_handler without trying to write bytecode caches.

    /var/task is read-only: each module imported from it would otherwise try
    to create __pycache__ (a failing mkdir and an exception, ~0.15 ms on a
    slow VM) during the cold start. The setting applies during init only."""
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        return load_handler(handler)
    finally:
        if sys.dont_write_bytecode is True:  # unless the module turned it off
            sys.dont_write_bytecode = before
