"""Faults inside sandboxes: each reported Lambda's way, and each leaves the
engine serving with no leaked process or cgroup."""
import base64
import json
import time

import pytest

from gust_e2e import gust_cgroups


def run(engine, name, source, payload=None, tail=True, **config):
    engine.create(name, {"app.py": source}, **config)
    status, headers, data = engine.invoke(name, payload or {}, tail=tail)
    assert status == 200, data
    log = base64.b64decode(headers.get("x-amz-log-result", "")).decode(errors="replace")
    return headers, json.loads(data), log


def assert_engine_serves(engine, fname):
    name = fname + "-after"
    engine.create(name, {"app.py": "def handler(e, c):\n    return 'alive'\n"})
    status, _, data = engine.invoke(name, {})
    assert status == 200 and json.loads(data) == "alive"


def test_timeout(engine, fname):
    headers, body, log = run(engine, fname, "import time\ndef handler(e, c):\n    time.sleep(30)\n",
                             Timeout=1)
    assert headers["x-amz-function-error"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    assert "Task timed out after 1.00 seconds" in log
    assert_engine_serves(engine, fname)


def test_out_of_memory(engine, fname):
    src = ("def handler(e, c):\n    blocks = []\n    while True:\n"
           "        blocks.append(bytearray(16 << 20))\n")
    headers, body, log = run(engine, fname, src, MemorySize=128)
    assert body["errorType"] == "Runtime.OutOfMemory", body
    assert "Max Memory Used: " in log
    used = int(log.split("Max Memory Used: ")[1].split(" MB")[0])
    assert used >= 100
    assert_engine_serves(engine, fname)


@pytest.mark.parametrize("code,expected", [
    ("import os\ndef handler(e, c):\n    os._exit(3)\n", "exit status 3"),
    ("import ctypes\ndef handler(e, c):\n    ctypes.string_at(0)\n", "signal: segmentation fault"),
])
def test_crash(engine, fname, code, expected):
    headers, body, log = run(engine, fname, code)
    assert body["errorType"] == "Runtime.ExitError"
    assert expected in body["errorMessage"]
    assert_engine_serves(engine, fname)


def test_handler_exception(engine, fname):
    src = ("class CustomError(Exception):\n    pass\n\n"
           "def handler(e, c):\n    raise CustomError('it broke')\n")
    headers, body, log = run(engine, fname, src)
    assert headers["x-amz-function-error"] == "Unhandled"
    assert body["errorType"] == "CustomError"
    assert body["errorMessage"] == "it broke"
    assert any('app.py' in line for line in body["stackTrace"])
    assert "[ERROR] CustomError: it broke" in log
    # The sandbox survives a handler exception and is reused.
    status, _, data = engine.invoke(fname, {})
    assert json.loads(data)["errorType"] == "CustomError"


def test_bad_handlers(engine, fname):
    _, body, _ = run(engine, fname, "x = 1\n", handler="missing_module.handler")
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'missing_module'" in body["errorMessage"]
    _, body, _ = run(engine, fname + "-2", "x = 1\n", handler="app.nothere")
    assert body["errorType"] == "Runtime.HandlerNotFound"
    assert_engine_serves(engine, fname)


FORK_BOMB = ("import os\ndef handler(e, c):\n    n = 0\n    try:\n        while True:\n"
             "            if os.fork() == 0:\n                import time; time.sleep(60)\n"
             "            n += 1\n    except OSError as err:\n"
             "        return {'forked': n, 'error': str(err)}\n")


def test_fork_bomb_contained(engine, fname):
    # Generous timeout: ~1000 forks of a Python process are slow on a loaded 2-core box.
    _, body, log = run(engine, fname, FORK_BOMB, Timeout=90, MemorySize=2048)
    assert "forked" in body, (body, log[-2000:])
    assert 0 < body["forked"] < 1100, body
    assert_engine_serves(engine, fname)


def test_endless_stdout_contained(engine, fname):
    src = "def handler(e, c):\n    while True:\n        print('x' * 1000)\n"
    headers, body, log = run(engine, fname, src, Timeout=2)
    assert body["errorType"] == "Sandbox.Timedout"
    assert_engine_serves(engine, fname)


def test_tmp_fill_contained(engine, fname):
    src = ("def handler(e, c):\n    n = 0\n    try:\n        with open('/tmp/fill', 'wb') as f:\n"
           "            while True:\n                f.write(b'0' * (1 << 20)); f.flush(); n += 1\n"
           "    except OSError as err:\n        return {'mb': n, 'error': err.errno}\n")
    _, body, _ = run(engine, fname, src, MemorySize=1024, Timeout=30)
    assert body["mb"] <= 512 and body["error"] == 28, body  # ENOSPC
    assert_engine_serves(engine, fname)


def test_network_denied_by_default(engine, fname):
    src = ("import socket\ndef handler(e, c):\n    s = socket.socket()\n    s.settimeout(2)\n"
           "    try:\n        s.connect(('127.0.0.1', int(e['port'])))\n"
           "        return 'connected'\n"
           "    except OSError as err:\n        return 'refused: ' + str(err)\n")
    engine.create(fname, {"app.py": src})
    status, _, data = engine.invoke(fname, {"port": engine.port})
    assert json.loads(data).startswith("refused"), data


def test_no_leaks_after_faults(engine):
    # Give exit reports a moment, then: no sandbox cgroups beyond live sandboxes.
    time.sleep(1)
    live = engine.health()["sandboxes"]["live"]
    assert len(gust_cgroups(engine.port)) == live * 3


def test_network_when_asked(engine, fname):
    """A networked function shares the host's network namespace, but the
    host's own services (here the engine's API) stay closed to it: the
    engine's nftables rule (src/sandbox/loopback_guard.h; the LAN and beyond
    are reached in test_network.py)."""
    src = ("import socket\ndef handler(e, c):\n"
           "    try:\n"
           "        socket.create_connection(('127.0.0.1', int(e['port'])), 2)\n"
           "        return 'connected'\n"
           "    except OSError as err:\n"
           "        return 'refused: ' + str(err)\n")
    engine.create(fname, {"app.py": src}, Network=True)
    status, _, data = engine.invoke(fname, {"port": engine.port})
    assert status == 200 and json.loads(data) == "refused: [Errno 113] No route to host", data
