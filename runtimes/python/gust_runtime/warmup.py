"""Warm-up: the work every sandbox would do first, done before a function is
assigned (in the zygote before it forks, or in a pre-forked sandbox while it
waits), so the copy-on-write page faults it causes (about 11 us each on a
small VM) are not part of a cold start. bootstrap.run() repeats the same
steps cheaply with the function's own configuration.

Every step is best effort: a failed warm-up costs speed, not correctness.
"""

import importlib
import json
import os
import sys

from . import logs, protocol
from .context import LambdaContext
from .invoke import Runtime
from .loader import load_handler_read_only, pin_timezone, set_environment


def preset_zygote() -> None:
    """What every sandbox would otherwise do first, done once in the zygote
    before it forks (each step costs a sandbox copy-on-write page faults):
    line-buffered stdout/stderr, Lambda's root logger, the environment
    variables that are the same for every function, TZ."""
    logs.reconfigure_streams()
    logs.setup_logging()
    set_environment({"function_name": "", "env": {}})
    pin_timezone()


def prepare() -> None:
    """Generic warm-up a pre-forked sandbox runs while it waits for a function.

    Everything here is independent of the function, so it can run before the
    sandbox is assigned: the copy-on-write page faults it causes (about 11 us
    each on a small VM) are then not part of a cold start. run() repeats the
    same steps cheaply with the function's own configuration.
    """
    logs.reconfigure_streams()
    if "random" in sys.modules:
        sys.modules["random"].seed()
    set_environment({"function_name": "", "env": {}})
    LambdaContext.configure("", "$LATEST", 128, None, None)
    logs.setup_logging()
    json.loads(json.dumps({"warm": [1, 2.5, "x", None, True]}))
    _warm_invoke()  # before prewarm(): its Connection must not take the spare buffer
    protocol.prewarm()
    _warm_import()
    importlib.invalidate_caches()


def _warm_invoke() -> None:
    """One throwaway invocation through Runtime.on_invoke over a socketpair.

    Frame decoding, the context, event decoding, the handler call, result
    encoding and the reply then run on pages this sandbox has already touched
    when its first real invocation arrives."""
    import socket
    a, b = socket.socketpair()
    conn = None
    try:
        conn = protocol.Connection(os.dup(a.fileno()))
        meta = json.dumps({"request_id": "warm", "deadline_ms": 0,
                           "invoked_function_arn": "", "client_context": None}).encode()
        body = protocol.U32.pack(len(meta)) + meta + b'{"warm": [1, "x"]}'
        Runtime(conn, lambda event, context: {"event": event}).on_invoke(memoryview(body))
        b.recv(65536)
    except Exception:  # noqa: B902 -- a failed warm-up costs speed, not correctness
        pass
    finally:
        logs.current_request_id = ""
        if conn is not None:
            conn.close()
        a.close()
        b.close()


def _warm_import() -> None:
    """Imports a throwaway module through a fresh path entry, as load_handler will."""
    warm_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_warmup")
    sys.path.insert(0, warm_dir)
    try:
        load_handler_read_only("gust_warm_module.handler")
        compile("def f(x):\n    return [x, {'k': x}]\n", "<gust-warmup>", "exec")
    except Exception:  # noqa: B902 -- a failed warm-up costs speed, not correctness
        pass
    finally:
        sys.path.remove(warm_dir)
        sys.modules.pop("gust_warm_module", None)
        sys.path_importer_cache.pop(warm_dir, None)
