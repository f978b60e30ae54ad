"""Tests of gust_runtime.bootstrap, driven over a socketpair like the engine does.

Run with: /usr/bin/python3 -m pytest runtimes/python/tests
Each test forks a child running bootstrap.run() (as the zygote would) on a
temporary task root, then talks to it through protocol_client.
"""

import json
import logging
import os
import subprocess
import textwrap
import time

import pytest

import protocol_client as pc
from protocol_client import ERROR, INIT_ERROR, READY, RESULT


class Runtime:
    """A running child runtime plus the test's ends of its sockets/pipes."""

    def __init__(self, task_root, files, handler="app.handler", env=None, capture_stdout=False):
        for name, source in files.items():
            path = task_root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        self.task_root = task_root
        self.out_r = None
        out_w = None
        if capture_stdout:
            self.out_r, out_w = os.pipe()
        config = pc.make_config(task_root, handler=handler, env=env or {})
        self.pid, self.client = pc.spawn_forked(config, stdout_fd=out_w)
        if out_w is not None:
            os.close(out_w)
        self.exit_code = None

    def first_frame(self):
        return self.client.read_frame()

    def ready(self):
        ftype, body = self.client.read_frame()
        assert ftype == READY, (ftype, body)
        return json.loads(body)

    def invoke(self, payload, **kw):
        if not isinstance(payload, bytes):
            payload = json.dumps(payload).encode()
        return self.client.invoke(payload, **kw)

    def invoke_ok(self, payload, **kw):
        ftype, body = self.invoke(payload, **kw)
        assert ftype == RESULT, (ftype, body)
        return json.loads(body)

    def invoke_error(self, payload, **kw):
        ftype, body = self.invoke(payload, **kw)
        assert ftype == ERROR, (ftype, body)
        return json.loads(body)

    def read_stdout_now(self):
        """Whatever the child has written to its stdout pipe so far (non-blocking)."""
        os.set_blocking(self.out_r, False)
        chunks = []
        while True:
            try:
                chunk = os.read(self.out_r, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()

    def close(self):
        """Closes the control socket and returns the child's exit code."""
        if self.exit_code is None:
            self.client.close()
            self.exit_code = pc.wait_exit(self.pid)
            if self.out_r is not None:
                os.close(self.out_r)
        return self.exit_code


@pytest.fixture
def start(tmp_path):
    runtimes = []

    def _start(files, **kw):
        rt = Runtime(tmp_path, files, **kw)
        runtimes.append(rt)
        return rt

    yield _start
    for rt in runtimes:
        rt.close()


ECHO = {"app.py": """
    def handler(event, context):
        return event
"""}


# ---------------------------------------------------------------- happy paths

def test_ready_reports_init_ms(start):
    rt = start(ECHO)
    ready = rt.ready()
    assert isinstance(ready["init_ms"], float) and 0 <= ready["init_ms"] < 5000


def test_echo_round_trips(start):
    rt = start(ECHO)
    rt.ready()
    event = {"a": [1, 2.5, "x", None, True], "b": {"nested": "ü"}}
    assert rt.invoke_ok(event) == event
    assert rt.invoke_ok("just a string") == "just a string"
    assert rt.invoke_ok(None) is None


def test_empty_payload_is_empty_dict(start):
    rt = start(ECHO)
    rt.ready()
    assert rt.invoke_ok(b"") == {}


def test_none_result_is_null(start):
    rt = start({"app.py": "def handler(event, context):\n    pass\n"})
    rt.ready()
    ftype, body = rt.invoke(b"{}")
    assert (ftype, body) == (RESULT, b"null")


def test_bytes_result_passes_through(start):
    rt = start({"app.py": "def handler(event, context):\n    return b'\\x00raw'\n"})
    rt.ready()
    assert rt.invoke(b"{}") == (RESULT, b"\x00raw")


def test_big_event_and_result(start):
    # Bigger than the runtime's 256 KB read buffer: exercises the large-frame path.
    rt = start(ECHO)
    rt.ready()
    big = "x" * (3 * 1024 * 1024)
    assert rt.invoke_ok(big) == big
    assert rt.invoke_ok({"small": 1}) == {"small": 1}


def test_context_fields(start):
    rt = start({"app.py": """
        import time

        def handler(event, context):
            first = context.get_remaining_time_in_millis()
            time.sleep(0.05)
            second = context.get_remaining_time_in_millis()
            cc = context.client_context
            return {
                "request_id": context.aws_request_id,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "arn": context.invoked_function_arn,
                "memory": context.memory_limit_in_mb,
                "log_group": context.log_group_name,
                "log_stream": context.log_stream_name,
                "identity": [context.identity.cognito_identity_id,
                             context.identity.cognito_identity_pool_id],
                "custom": cc.custom if cc else None,
                "app_title": cc.client.app_title if cc else None,
                "remaining": [first, second],
            }
    """})
    rt.ready()
    now = int(time.time() * 1000)
    arn = "arn:aws:lambda:us-east-1:000000000000:function:f"
    out = rt.invoke_ok({}, request_id="rid-42", deadline_ms=now + 3000, arn=arn,
                       client_context={"custom": {"k": "v"}, "client": {"app_title": "t"}})
    assert out["request_id"] == "rid-42"
    assert out["function_name"] == "f"
    assert out["function_version"] == "$LATEST"
    assert out["arn"] == arn
    assert out["memory"] == 128
    assert out["log_group"] == "/aws/lambda/f"
    assert out["log_stream"] == "2026/11/25/[$LATEST]sbx"
    assert out["identity"] == [None, None]
    assert out["custom"] == {"k": "v"} and out["app_title"] == "t"
    first, second = out["remaining"]
    assert 2500 < first <= 3000
    assert second <= first - 40
    # A passed deadline reads as 0, never negative; no client context -> None.
    out = rt.invoke_ok({}, request_id="rid-43", deadline_ms=now - 10)
    assert out["remaining"] == [0, 0] and out["request_id"] == "rid-43"
    assert out["custom"] is None


def test_environment(start):
    rt = start({"app.py": """
        import os, sys

        def handler(event, context):
            return {"env": dict(os.environ), "path0": sys.path[0], "cwd": os.getcwd()}
    """}, env={"MY_VAR": "hello", "AWS_REGION": "user-cannot-override"})
    rt.ready()
    out = rt.invoke_ok({})
    env = out["env"]
    assert env["MY_VAR"] == "hello"
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "LAMBDA_TASK_ROOT": str(rt.task_root),
        "_HANDLER": "app.handler",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TZ": ":UTC",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/f",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/25/[$LATEST]sbx",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    }
    for key, value in expected.items():
        assert env[key] == value, key
    assert os.path.isdir(env["LAMBDA_RUNTIME_DIR"])
    assert out["path0"] == str(rt.task_root)
    assert out["cwd"] == str(rt.task_root)


def test_print_reaches_stdout_before_result(start):
    rt = start({"app.py": """
        import sys

        def handler(event, context):
            print("hello from", event["who"])
            sys.stdout.write("no newline")
            sys.stderr.write("to stderr\\n")
            return "done"
    """}, capture_stdout=True)
    rt.ready()
    assert rt.invoke_ok({"who": "handler"}) == "done"
    # The frame has arrived: everything printed must already be in the pipe.
    out = rt.read_stdout_now()
    assert "hello from handler\n" in out
    assert "no newline" in out
    assert "to stderr\n" in out


def test_logging_uses_lambda_format(start):
    rt = start({"app.py": """
        import logging
        logger = logging.getLogger()
        logger.setLevel(logging.INFO)

        def handler(event, context):
            logger.info("processing %s", event["n"])
            return 1
    """}, capture_stdout=True)
    rt.ready()
    rt.invoke_ok({"n": 7}, request_id="rid-log")
    out = rt.read_stdout_now()
    line = [ln for ln in out.splitlines() if "processing 7" in ln][0]
    level, stamp, rid, msg = line.split("\t")
    assert level == "[INFO]" and rid == "rid-log" and msg == "processing 7"
    assert stamp.endswith("Z") and "T" in stamp


def test_module_code_runs_once(start):
    rt = start({"app.py": """
        INIT_COUNT = 0
        INIT_COUNT += 1
        calls = []

        def handler(event, context):
            calls.append(event)
            return {"inits": INIT_COUNT, "calls": len(calls)}
    """})
    rt.ready()
    for i in range(1, 6):
        assert rt.invoke_ok(i) == {"inits": 1, "calls": i}


def test_handler_in_package_and_slash_form(start):
    rt = start({"pkg/__init__.py": "", "pkg/mod.py": "def go(event, context):\n    return 'pkg'\n"},
               handler="pkg/mod.go")
    rt.ready()
    assert rt.invoke_ok({}) == "pkg"


def test_eof_exits_zero(start):
    rt = start(ECHO)
    rt.ready()
    rt.invoke_ok({})
    assert rt.close() == 0


def test_eof_before_any_invoke_exits_zero(start):
    rt = start(ECHO)
    rt.ready()
    assert rt.close() == 0


def test_exec_path(tmp_path):
    # The C++ test uses this shape: a fresh /usr/bin/python3, socket on fd 3.
    (tmp_path / "app.py").write_text(textwrap.dedent(ECHO["app.py"]))
    proc, client = pc.spawn_exec(pc.make_config(tmp_path))
    try:
        assert client.read_frame()[0] == READY
        assert client.invoke(b'{"x": 1}') == (RESULT, b'{"x": 1}')
    finally:
        client.close()
        assert proc.wait(timeout=10) == 0


# ---------------------------------------------------------------- init errors

def init_error(rt):
    ftype, body = rt.first_frame()
    assert ftype == INIT_ERROR, (ftype, body)
    assert rt.client.read_frame() is None  # the runtime hangs up after INIT_ERROR
    assert rt.close() == 1
    return json.loads(body)


def test_module_missing(start):
    err = init_error(start({}, handler="app.handler"))
    assert err["errorType"] == "Runtime.ImportModuleError"
    assert err["errorMessage"] == "Unable to import module 'app': No module named 'app'"
    assert err["stackTrace"] == []


def test_dependency_missing_is_import_module_error(start):
    err = init_error(start({"app.py": "import numpyy_not_here\n"}))
    assert err["errorType"] == "Runtime.ImportModuleError"
    assert err["errorMessage"] == ("Unable to import module 'app': "
                                   "No module named 'numpyy_not_here'")


def test_handler_missing(start):
    err = init_error(start(ECHO, handler="app.fn"))
    assert err["errorType"] == "Runtime.HandlerNotFound"
    assert err["errorMessage"] == "Handler 'fn' missing on module 'app'"


def test_malformed_handler(start):
    err = init_error(start(ECHO, handler="x"))
    assert err["errorType"] == "Runtime.MalformedHandlerName"
    assert err["errorMessage"] == "Bad handler 'x': not enough values to unpack (expected 2, got 1)"


def test_builtin_module_conflict(start):
    err = init_error(start({}, handler="sys.handler"))
    assert err["errorType"] == "Runtime.BuiltInModuleConflict"
    assert err["errorMessage"] == "Cannot use built-in module sys as a handler module"


def test_syntax_error(start):
    err = init_error(start({"app.py": "x = 1\ny = 2\ndef handler(:\n    pass\n"}))
    assert err["errorType"] == "Runtime.UserCodeSyntaxError"
    assert err["errorMessage"] == "Syntax error in module 'app': invalid syntax (app.py, line 3)"
    assert len(err["stackTrace"]) == 1 and "app.py\" Line 3" in err["stackTrace"][0]


def test_exception_at_import(start):
    rt = start({"app.py": """
        class ConfigError(Exception):
            pass

        def load():
            raise ConfigError("missing DB_URL")

        load()

        def handler(event, context):
            return 1
    """})
    err = init_error(rt)
    assert err["errorType"] == "ConfigError"
    assert err["errorMessage"] == "missing DB_URL"
    trace = err["stackTrace"]
    assert trace, err
    # User frames only: no runtime, no importlib machinery.
    assert trace[0].startswith('  File "%s/app.py", line 8, in <module>\n' % rt.task_root)
    assert trace[-1] == ('  File "%s/app.py", line 6, in load\n'
                         '    raise ConfigError("missing DB_URL")\n' % rt.task_root)
    assert not any("gust_runtime" in t or "importlib" in t for t in trace)


def test_sys_exit_at_import_exits_without_frame(start):
    rt = start({"app.py": "import sys\nsys.exit(3)\n"})
    assert rt.first_frame() is None
    assert rt.close() == 3


# ---------------------------------------------------------------- invoke errors

def test_handler_raises_custom_exception(start):
    rt = start({"app.py": """
        class PaymentDeclined(Exception):
            pass

        def charge(amount):
            raise PaymentDeclined("card declined for %d" % amount)

        def handler(event, context):
            return charge(event["amount"])
    """})
    rt.ready()
    err = rt.invoke_error({"amount": 5}, request_id="rid-err")
    assert err["errorType"] == "PaymentDeclined"
    assert err["errorMessage"] == "card declined for 5"
    assert err["requestId"] == "rid-err"
    root = rt.task_root
    assert err["stackTrace"] == [
        '  File "%s/app.py", line 9, in handler\n    return charge(event["amount"])\n' % root,
        '  File "%s/app.py", line 6, in charge\n'
        '    raise PaymentDeclined("card declined for %%d" %% amount)\n' % root,
    ]
    assert list(err) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    # The sandbox survives a handler error.
    ftype, _ = rt.invoke(b"{}")
    assert ftype == ERROR  # KeyError 'amount'
    assert rt.close() == 0


def test_builtin_exception_type_name(start):
    rt = start({"app.py": "def handler(event, context):\n    return event['missing']\n"})
    rt.ready()
    err = rt.invoke_error({})
    assert err["errorType"] == "KeyError"
    assert err["errorMessage"] == "'missing'"
    assert len(err["stackTrace"]) == 1


def test_result_not_serialisable(start):
    rt = start({"app.py": "def handler(event, context):\n    return {'s': {1, 2}}\n"})
    rt.ready()
    err = rt.invoke_error({})
    assert err["errorType"] == "Runtime.MarshalError"
    assert err["errorMessage"] == ("Unable to marshal response: "
                                   "Object of type set is not JSON serializable")
    assert err["stackTrace"] == []


def test_result_too_large(start):
    rt = start({"app.py": """
        def handler(event, context):
            return "x" * event["n"]
    """})
    rt.ready()
    # A JSON string of n chars is n + 2 bytes: 6291554 + 2 is exactly the limit.
    assert len(rt.invoke(json.dumps({"n": 6291554}).encode())[1]) == 6291556
    err = rt.invoke_error({"n": 6291555})
    assert err["errorType"] == "Function.ResponseSizeTooLarge"
    assert err["errorMessage"] == ("Response payload size exceeded maximum allowed "
                                   "payload size (6291556 bytes).")


def test_event_not_json(start):
    rt = start(ECHO)
    rt.ready()
    err = rt.invoke_error(b"not json")
    assert err["errorType"] == "Runtime.UnmarshalError"
    assert err["errorMessage"] == ("Unable to unmarshal input: "
                                   "Expecting value: line 1 column 1 (char 0)")
    assert rt.invoke_ok({"ok": 1}) == {"ok": 1}


def test_sys_exit_in_handler(start):
    rt = start({"app.py": "import sys\ndef handler(event, context):\n    sys.exit(4)\n"})
    rt.ready()
    ftype_body = rt.invoke(b"{}")
    assert ftype_body is None  # no frame, just EOF: the engine reports Runtime.ExitError
    assert rt.close() == 4


def test_unknown_frame_type_exits_2(start):
    rt = start(ECHO)
    rt.ready()
    rt.client.sock.sendall(b"\x00\x00\x00\x00\x63\x00\x00\x00")
    assert rt.client.read_frame() is None
    assert rt.close() == 2


# ---------------------------------------------------------------- zygote

def test_log_level_from_the_functions_environment(start):
    rt = start({"app.py": """
        import logging

        def handler(event, context):
            logging.getLogger().info("hidden")
            logging.getLogger().warning("shown")
            return logging.getLogger().level
    """}, env={"AWS_LAMBDA_LOG_LEVEL": "warning"}, capture_stdout=True)
    rt.ready()
    assert rt.invoke_ok({}) == logging.WARNING
    out = rt.read_stdout_now()
    assert "shown" in out and "hidden" not in out


def test_zygote_presets_what_every_sandbox_needs():
    """preload() leaves the zygote with line-buffered streams, Lambda's root
    logger and the constant environment, so a forked sandbox need not redo them."""
    code = textwrap.dedent("""
        import json, logging, os, sys
        sys.path.insert(0, %r)
        from gust_runtime import zygote
        zygote.preload([])
        print(json.dumps({"line": sys.stdout.line_buffering,
                          "handlers": [type(h).__name__ for h in logging.getLogger().handlers],
                          "tz": os.environ.get("TZ"),
                          "runtime_dir": os.environ.get("LAMBDA_RUNTIME_DIR")}))
    """ % pc.RUNTIME_DIR)
    out = subprocess.run([pc.PYTHON, "-c", code], capture_output=True, text=True, check=True,
                         timeout=30)
    result = json.loads(out.stdout)
    assert result["line"] is True
    assert result["handlers"] == ["_StdoutHandler"]
    assert result["tz"] == ":UTC" and result["runtime_dir"] == pc.RUNTIME_DIR


def test_zygote_preload_reports_failures():
    code = textwrap.dedent("""
        import json, sys, threading
        sys.path.insert(0, %r)
        from gust_runtime import zygote
        errors = zygote.preload(["json", "no_such_module_xyz"])
        print(json.dumps({"errors": errors, "loaded": zygote.runtime_modules_loaded(),
                          "threads": threading.active_count()}))
    """ % pc.RUNTIME_DIR)
    out = subprocess.run([pc.PYTHON, "-c", code], capture_output=True, text=True, check=True,
                         timeout=30)
    result = json.loads(out.stdout)
    assert result["errors"] == {
        "no_such_module_xyz": "ModuleNotFoundError: No module named 'no_such_module_xyz'"}
    assert result["loaded"] is True
    assert result["threads"] == 1


def test_malformed_invoke_meta_exits_2(start):
    rt = start(ECHO)
    rt.ready()
    body = b"\x03\x00\x00\x00[1]"  # meta is a JSON array, not an object
    rt.client.sock.sendall(len(body).to_bytes(4, "little") + b"\x01\x00\x00\x00" + body)
    assert rt.client.read_frame() is None
    assert rt.close() == 2
