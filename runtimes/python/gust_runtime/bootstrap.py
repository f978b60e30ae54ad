"""The in-sandbox runtime's entry points: Lambda's Python handler semantics
over the gust protocol.

gust-sandbox-init forks a child of the zygote, isolates it and calls
`run(config_json)`; see docs/RUNTIME_PROTOCOL.md for the config, the frames
and the exact error wording (which follows AWS's Python runtime interface
client, awslambdaric). The engine's C++ (src/sandbox) imports this module by
name and calls run(), prepare() (a pre-forked sandbox's warm-up) and, through
zygote.py, preset_zygote(); the work itself is in the modules by concern:

  codec    the fast JSON codec and Lambda's error document (Fault, errorTypes)
  logs     Lambda's root logger, the request id, stdout/stderr set-up and flush
  loader   the environment variables, importing the handler (init)
  invoke   the invoke loop (Runtime): INVOKE -> handler -> RESULT or ERROR
  warmup   preset_zygote() and prepare(): the same work, done ahead of a function

Phases of run():
  init    set the environment and sys.path, import the handler's module
          (module-level code runs once per sandbox), send READY or INIT_ERROR.
  invoke  Runtime.loop() until EOF on the control socket; run() returns 0.
"""

import json
import os
import sys
import time

from . import invoke, logs, protocol, s3_relay
from .codec import error_from_exception
from .context import LambdaContext
from .invoke import Runtime
from .loader import load_handler_read_only, set_environment
from .warmup import prepare, preset_zygote

__all__ = ["run", "prepare", "preset_zygote"]


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(str(code) + "\n")
    return 1


def run(config_json: str) -> int:
    """Runs the sandbox's runtime until the engine hangs up; returns the exit code."""
    t0 = time.perf_counter()
    config = json.loads(config_json)
    invoke.oom_exit_code = config.get("oom_exit_code")
    conn = protocol.Connection(int(config.get("control_fd", 3)))
    try:
        logs.reconfigure_streams()
        # (random reseeds itself in every forked child: os.register_at_fork.)
        set_environment(config)
        # The engine's sandbox channel (docs/STORAGE.md, "From a function"):
        # GUST_ENDPOINT for gust's client, GUST_S3_ENDPOINT for boto3 (not
        # where the engine's loopback guard closes 127.0.0.1 to the sandbox).
        if os.path.exists(s3_relay.CHANNEL_SOCKET):
            os.environ.setdefault("GUST_ENDPOINT", "unix://" + s3_relay.CHANNEL_SOCKET)
            if config.get("s3_relay", True):
                s3_relay.offer()
        task_root = config.get("task_root", "/var/task")
        try:
            os.chdir(task_root)
        except OSError:
            pass
        if task_root in sys.path:
            sys.path.remove(task_root)
        sys.path.insert(0, task_root)
        # A finder the zygote may have cached for this path saw another
        # directory (the bundle is mounted per sandbox): forget it, and only
        # it (importlib.invalidate_caches() would write to every finder).
        sys.path_importer_cache.pop(task_root, None)
        LambdaContext.configure(config.get("function_name", ""),
                                config.get("function_version", "$LATEST"),
                                config.get("memory_mb", 128), config.get("log_group_name"),
                                config.get("log_stream_name"))
        logs.setup_logging()
        logs.apply_log_level()

        try:
            handler = load_handler_read_only(config.get("handler", ""))
        except Exception as e:  # noqa: B902 -- any init failure is an INIT_ERROR
            invoke.exit_if_out_of_memory(e)
            error = error_from_exception(e)
            logs.flush_output()
            conn.write_frame(protocol.INIT_ERROR, json.dumps(error).encode())
            return 1
        init_ms = (time.perf_counter() - t0) * 1000.0
        logs.flush_output()
        conn.write_frame(protocol.READY, json.dumps({"init_ms": round(init_ms, 3)}).encode())
        s3_relay.serve()  # the relay's thread, off the init path
        return Runtime(conn, handler).loop()
    except SystemExit as e:
        # sys.exit() in module code or a handler: the sandbox exits (the engine
        # reports Runtime.ExitError from the exit status).
        logs.flush_output()
        return _exit_code(e)
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the engine went away while we were replying
    except protocol.ProtocolError as e:
        sys.stderr.write("gust runtime: %s\n" % e)
        logs.flush_output()
        return 2
    finally:
        conn.close()
