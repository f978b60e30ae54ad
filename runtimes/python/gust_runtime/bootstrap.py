"""The in-sandbox runtime: Lambda's Python handler semantics over the gust protocol.

gust-sandbox-init forks a child of the zygote, isolates it and calls
`run(config_json)`; see docs/RUNTIME_PROTOCOL.md for the config, the frames
and the exact error wording (which follows AWS's Python runtime interface
client, awslambdaric).

Phases:
  init    set the environment and sys.path, import the handler's module
          (module-level code runs once per sandbox), send READY or INIT_ERROR.
  invoke  loop: read a frame, dispatch on its type. INVOKE decodes the event,
          calls handler(event, context), encodes the result, flushes
          stdout/stderr and sends RESULT or ERROR. EOF on the control socket
          ends the loop and run() returns 0.

The handler's print() goes straight to fd 1 (a pipe the engine drains); the
runtime never captures it, it only makes stdout line-buffered and flushes both
streams before every reply, so the output precedes the frame.
"""

import importlib
import json
import logging
import os
import sys
import time
import traceback

from . import protocol
from .context import LambdaContext

# Response payload limit of a synchronous invoke, as Lambda enforces it.
MAX_RESPONSE_BYTES = 6291556

_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))  # .../gust_runtime
_RUNTIME_PREFIX = _RUNTIME_DIR + os.sep

# errorType strings of Lambda's Python runtime.
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"


class Fault(Exception):
    """An error the runtime reports with a fixed errorType (Runtime.*, Function.*)."""

    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


# ---------------------------------------------------------------- JSON

# json.loads/json.dumps spend most of their time (1-2 us per call on a slow VM)
# in Python-level wrappers around the C scanner/encoder. The hot path calls the
# C functions directly and falls back to the full functions for anything
# unusual, so results and error messages stay exactly json's.
_scan_once = json.decoder.JSONDecoder().scan_once
_encoder_markers = {}  # circular-reference detection, as json.dumps does
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode = (_c_make_encoder(_encoder_markers, json.JSONEncoder().default,
                             json.encoder.encode_basestring_ascii, None, ": ", ", ",
                             False, False, True)
             if _c_make_encoder is not None else None)


def json_decode(data):
    """json.loads for a bytes-like UTF-8 document."""
    try:
        text = str(data, "utf-8")
    except UnicodeDecodeError:
        return json.loads(bytes(data))  # other encodings, or json's own error
    try:
        obj, end = _scan_once(text, 0)
    except Exception:  # noqa: B902 -- let json.loads raise its proper error
        return json.loads(text)
    if end != len(text):
        return json.loads(text)  # surrounding whitespace or trailing data
    return obj


def json_encode(obj):
    """json.dumps(obj).encode() (ensure_ascii, ', ' and ': ' separators, NaN allowed)."""
    if _c_encode is None:
        return json.dumps(obj).encode()
    try:
        return "".join(_c_encode(obj, 0)).encode()
    except BaseException:  # noqa: B902 -- re-raised after the clean-up
        _encoder_markers.clear()  # a failed encode may leave entries behind
        raise


# ---------------------------------------------------------------- errors

def make_error(message, error_type, stack_trace, request_id=""):
    """The error document, in the field order Lambda returns it."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack_trace or [],
    }


def _is_runtime_frame(filename):
    # co_filename keeps the path the module was imported by ("x/../gust_runtime").
    return os.path.abspath(filename).startswith(_RUNTIME_PREFIX)


def _is_import_machinery(filename):
    return filename.startswith("<frozen importlib") or filename.endswith(
        os.sep + "importlib" + os.sep + "__init__.py")


def format_stack_trace(tb):
    """Lambda's stackTrace: one string per user frame, runtime frames removed.

    Frames are reduced to (file, line, function, source) tuples before
    formatting, as awslambdaric does, so Python 3.11's caret lines (^^^^) do
    not appear. Leading importlib frames (an exception raised while importing
    the handler module) are dropped too.
    """
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)
              if not _is_runtime_frame(f.filename)]
    i = 0
    while i < len(frames) and _is_import_machinery(frames[i][0]):
        i += 1
    return traceback.format_list(frames[i:])


def error_from_exception(exc, request_id=""):
    if isinstance(exc, Fault):
        return make_error(exc.message, exc.error_type, exc.trace, request_id)
    return make_error(str(exc), type(exc).__name__, format_stack_trace(exc.__traceback__),
                      request_id)


# ---------------------------------------------------------------- logging

_current_request_id = ""

# Rootless engines limit memory with RLIMIT_DATA instead of a cgroup: there a
# MemoryError means the function hit its memory size, and the sandbox ends
# with this exit code, which the engine reports as Runtime.OutOfMemory (as a
# cgroup OOM kill would be). None: MemoryError is an ordinary exception.
_oom_exit_code = None


def _exit_if_out_of_memory(exc):
    if _oom_exit_code is None or not isinstance(exc, MemoryError):
        return
    try:
        sys.stderr.write("MemoryError: the function reached its memory size (RLIMIT_DATA)\n")
        _flush_output()
    finally:
        os._exit(_oom_exit_code)


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _current_request_id
        return True


class _StdoutHandler(logging.Handler):
    """Writes to whatever sys.stdout is at the time (the handler may replace it)."""

    def emit(self, record):
        try:
            sys.stdout.write(self.format(record))
        except Exception:  # noqa: B902 -- logging must never break an invocation
            self.handleError(record)


_logging_installed = False


def _setup_logging():
    """The root logger Lambda installs: '[LEVEL]\\t<time>Z\\t<request id>\\t<message>'."""
    global _logging_installed
    if _logging_installed:  # prepare() may have done it already
        return
    _logging_installed = True
    logging.Formatter.converter = time.gmtime
    handler = _StdoutHandler()
    handler.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
        "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(_RequestIdFilter())
    logging.getLogger().addHandler(handler)


def _apply_log_level():
    """The function's AWS_LAMBDA_LOG_LEVEL, if any (the handler is installed
    before the function's environment is known: in the zygote or a pool child)."""
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging._nameToLevel:  # pylint: disable=protected-access
        logging.getLogger().setLevel(level)


# ---------------------------------------------------------------- init

def _set_environment(config):
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
    for key, value in reserved.items():
        value = str(value)
        if env.get(key) != value:  # the zygote set the constant ones already
            env[key] = value
    if _tz_set != env.get("TZ"):
        time.tzset()


_tz_set = None  # the TZ value time.tzset() last ran with (in the zygote)


def preset_zygote():
    """What every sandbox would otherwise do first, done once in the zygote
    before it forks (each step costs a sandbox copy-on-write page faults):
    line-buffered stdout/stderr, Lambda's root logger, the environment
    variables that are the same for every function, TZ."""
    global _tz_set
    _reconfigure_streams()
    _setup_logging()
    _set_environment({"function_name": "", "env": {}})
    time.tzset()
    _tz_set = os.environ.get("TZ")


def load_handler(handler):
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


def _load_handler_read_only(handler):
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


def _flush_output():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: B902 -- a closed/broken stream must not stop the reply
            pass


# ---------------------------------------------------------------- invoke loop

class Runtime:
    """The invoke loop of one sandbox: reads frames and dispatches them by type.

    `dispatch` maps a frame type to a method taking the body (a memoryview). A
    map worker adds its own frame types here without touching the loop.
    """

    def __init__(self, conn, handler):
        self.conn = conn
        self.handler = handler
        self.dispatch = {protocol.INVOKE: self.on_invoke}

    def loop(self):
        read_frame = self.conn.read_frame
        dispatch = self.dispatch
        while True:
            frame = read_frame()
            if frame is None:
                return 0  # the engine closed the control socket: clean exit
            ftype, body = frame
            on_frame = dispatch.get(ftype)
            if on_frame is None:
                sys.stderr.write("gust runtime: unexpected frame type %d\n" % ftype)
                _flush_output()
                return 2
            on_frame(body)

    def on_invoke(self, body):
        global _current_request_id
        try:
            (meta_len,) = protocol.U32.unpack_from(body, 0)
            meta = json_decode(body[4:4 + meta_len])
            if not isinstance(meta, dict):
                raise ValueError("meta is not a JSON object")
        except Exception as e:  # noqa: B902 -- a broken INVOKE is the engine's bug
            raise protocol.ProtocolError("malformed INVOKE frame: %s" % e) from None
        request_id = meta.get("request_id", "")
        _current_request_id = request_id
        try:
            context = LambdaContext(request_id, meta.get("deadline_ms", 0),
                                    meta.get("invoked_function_arn"),
                                    meta.get("client_context"))
            payload = body[4 + meta_len:]
            if meta.get("stream"):
                context.gust_yield = self.exchange
            if meta.get("raw_event"):
                event = bytes(payload)  # map jobs: the handler decodes its own bytes
            elif payload:
                try:
                    event = json_decode(payload)
                except Exception as e:  # noqa: B902 -- also UnicodeDecodeError
                    raise Fault(UNMARSHAL_ERROR,
                                "Unable to unmarshal input: {}".format(e)) from None
            else:
                event = {}  # Lambda substitutes {} for an empty payload
            out = self.handler(event, context)
            if isinstance(out, (bytes, bytearray)):
                out = bytes(out)  # raw bytes pass through, as in awslambdaric
            else:
                try:
                    out = json_encode(out)
                except Exception as e:  # noqa: B902 -- TypeError, ValueError (circular)...
                    raise Fault(MARSHAL_ERROR, "Unable to marshal response: {}".format(e)) from None
            if len(out) > MAX_RESPONSE_BYTES:
                raise Fault(RESPONSE_TOO_LARGE,
                            "Response payload size exceeded maximum allowed payload size "
                            "({} bytes).".format(MAX_RESPONSE_BYTES))
        except Exception as e:  # noqa: B902 -- every handler failure becomes an ERROR frame
            _exit_if_out_of_memory(e)
            error = error_from_exception(e, request_id)
            _flush_output()
            self.conn.write_frame(protocol.ERROR, json.dumps(error).encode())
            return
        _flush_output()
        self.conn.write_frame(protocol.RESULT, out)

    def exchange(self, output):
        """A streaming invocation's round trip (docs/RUNTIME_PROTOCOL.md):
        sends partial output (YIELD) and returns the next input (RESUME), or
        None when the engine has no more."""
        self.conn.write_frame(protocol.YIELD, output)
        frame = self.conn.read_frame()
        if frame is None:
            raise protocol.ProtocolError("the engine closed the control socket while a "
                                         "streaming invocation waited for input")
        ftype, body = frame
        if ftype != protocol.RESUME:
            raise protocol.ProtocolError("expected RESUME after YIELD, got frame type %d" % ftype)
        return bytes(body) if len(body) else None


def _exit_code(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(str(code) + "\n")
    return 1


def _reconfigure_streams():
    # print() lands in the engine's pipe line by line, like Lambda's unbuffered stdout.
    for stream in (sys.stdout, sys.stderr):
        try:
            if not stream.line_buffering:
                stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass


def prepare():
    """Generic warm-up a pre-forked sandbox runs while it waits for a function.

    Everything here is independent of the function, so it can run before the
    sandbox is assigned: the copy-on-write page faults it causes (about 11 us
    each on a small VM) are then not part of a cold start. run() repeats the
    same steps cheaply with the function's own configuration.
    """
    _reconfigure_streams()
    if "random" in sys.modules:
        sys.modules["random"].seed()
    _set_environment({"function_name": "", "env": {}})
    LambdaContext.configure("", "$LATEST", 128, None, None)
    _setup_logging()
    json.loads(json.dumps({"warm": [1, 2.5, "x", None, True]}))
    _warm_invoke()  # before prewarm(): its Connection must not take the spare buffer
    protocol.prewarm()
    _warm_import()
    importlib.invalidate_caches()


def _warm_invoke():
    """One throwaway invocation through Runtime.on_invoke over a socketpair.

    Frame decoding, the context, event decoding, the handler call, result
    encoding and the reply then run on pages this sandbox has already touched
    when its first real invocation arrives."""
    global _current_request_id
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
        _current_request_id = ""
        if conn is not None:
            conn.close()
        a.close()
        b.close()


def _warm_import():
    """Imports a throwaway module through a fresh path entry, as load_handler will."""
    warm_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_warmup")
    sys.path.insert(0, warm_dir)
    try:
        _load_handler_read_only("gust_warm_module.handler")
        compile("def f(x):\n    return [x, {'k': x}]\n", "<gust-warmup>", "exec")
    except Exception:  # noqa: B902 -- a failed warm-up costs speed, not correctness
        pass
    finally:
        sys.path.remove(warm_dir)
        sys.modules.pop("gust_warm_module", None)
        sys.path_importer_cache.pop(warm_dir, None)


def run(config_json):
    """Runs the sandbox's runtime until the engine hangs up; returns the exit code."""
    t0 = time.perf_counter()
    global _oom_exit_code
    config = json.loads(config_json)
    _oom_exit_code = config.get("oom_exit_code")
    conn = protocol.Connection(int(config.get("control_fd", 3)))
    try:
        _reconfigure_streams()
        # (random reseeds itself in every forked child: os.register_at_fork.)
        _set_environment(config)
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
        _setup_logging()
        _apply_log_level()

        try:
            handler = _load_handler_read_only(config.get("handler", ""))
        except Exception as e:  # noqa: B902 -- any init failure is an INIT_ERROR
            _exit_if_out_of_memory(e)
            error = error_from_exception(e)
            _flush_output()
            conn.write_frame(protocol.INIT_ERROR, json.dumps(error).encode())
            return 1
        init_ms = (time.perf_counter() - t0) * 1000.0
        _flush_output()
        conn.write_frame(protocol.READY, json.dumps({"init_ms": round(init_ms, 3)}).encode())
        return Runtime(conn, handler).loop()
    except SystemExit as e:
        # sys.exit() in module code or a handler: the sandbox exits (the engine
        # reports Runtime.ExitError from the exit status).
        _flush_output()
        return _exit_code(e)
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the engine went away while we were replying
    except protocol.ProtocolError as e:
        sys.stderr.write("gust runtime: %s\n" % e)
        _flush_output()
        return 2
    finally:
        conn.close()
