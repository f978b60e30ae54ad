"""The sandbox's init (src/sandbox/namespace_init.h): the handler is not pid 1
of its pid namespace, so the signals it sends itself act as on Lambda, its
exit is reported with the true signal name (Runtime.ExitError), the orphans it
leaves are reaped, termination sent to the init reaches it, and a timeout
ends every process of the sandbox. Checked with both zygotes (python3 +
_gust_zygote.so, gust-sandbox-init) and in rootless mode."""
import base64
import json
import os
import re
import signal
import threading
import time
import uuid

import pytest

from gust_e2e import GUST_BIN, Engine, rootless_engine


@pytest.fixture(scope="module", params=["python", "embedded", "rootless"])
def eng(request, tmp_path_factory):
    mode = request.param
    if mode == "python" and not os.path.exists(os.path.join(GUST_BIN, "_gust_zygote.so")):
        pytest.skip("built without GUST_ZYGOTE_IN_PYTHON (e.g. a sanitizer build)")
    if mode == "rootless":
        with rootless_engine(["--keep-alive", "60s"]) as engine:
            yield engine
        return
    engine = Engine(tmp_path_factory.mktemp("gust-init-" + mode),
                    extra_args=["--keep-alive", "60s", "--zygote", mode])
    engine.start()
    yield engine
    engine.stop()


_names = [0]


def name(prefix):
    _names[0] += 1
    return f"init-{prefix}-{_names[0]}-{uuid.uuid4().hex[:6]}"


def invoke(engine, fn, payload=None):
    status, headers, data = engine.invoke(fn, payload or {}, tail=True)
    assert status == 200, data
    log = base64.b64decode(headers.get("x-amz-log-result", "")).decode(errors="replace")
    return headers, json.loads(data), log


# Module code runs once per sandbox: TOKEN tells sandboxes apart.
CRASHER = r'''
import os, signal, sys, uuid
TOKEN = uuid.uuid4().hex

def handler(event, context):
    how = event.get("how")
    if how == "kill":
        os.kill(os.getpid(), getattr(signal, event["signal"]))
        return "survived " + event["signal"]
    if how == "abort":
        os.abort()
    if how == "sys.exit":
        sys.exit(3)
    if how == "os._exit":
        os._exit(3)
    return {"token": TOKEN, "pid": os.getpid()}
'''

CRASHES = [
    ({"how": "kill", "signal": "SIGSEGV"}, "signal: segmentation fault"),
    ({"how": "abort"}, "signal: aborted"),
    ({"how": "sys.exit"}, "exit status 3"),
    ({"how": "os._exit"}, "exit status 3"),
    ({"how": "kill", "signal": "SIGKILL"}, "signal: killed"),
    ({"how": "kill", "signal": "SIGTERM"}, "signal: terminated"),
    ({"how": "kill", "signal": "SIGBUS"}, "signal: bus error"),
    ({"how": "kill", "signal": "SIGFPE"}, "signal: floating point exception"),
    ({"how": "kill", "signal": "SIGILL"}, "signal: illegal instruction"),
]


@pytest.mark.parametrize("event,expected", CRASHES,
                         ids=[e[0].get("signal", e[0]["how"]) for e in CRASHES])
def test_exit_reported_as_lambda_does(eng, event, expected):
    fn = name("crash")
    eng.create(fn, {"app.py": CRASHER})
    _, before, _ = invoke(eng, fn)
    headers, body, log = invoke(eng, fn, event)
    assert headers.get("x-amz-function-error") == "Unhandled", body
    assert body["errorType"] == "Runtime.ExitError", body
    rid = re.search(r"START RequestId: (\S+)", log).group(1)
    assert body["errorMessage"] == f"RequestId: {rid} Error: Runtime exited with error: {expected}"
    assert f"RequestId: {rid} Error: Runtime exited with error: {expected}" in log
    # The next invocation gets a fresh sandbox, which works.
    _, after, _ = invoke(eng, fn)
    assert after["token"] != before["token"], (before, after)
    assert before["pid"] == after["pid"] == 2, (before, after)


def test_handler_is_not_pid_1(eng):
    fn = name("pid")
    eng.create(fn, {"app.py": r'''
import os
def handler(event, context):
    return {"pid": os.getpid(), "ppid": os.getppid(),
            "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "init": open("/proc/1/comm").read().strip()}
'''})
    _, body, _ = invoke(eng, fn)
    # The runtime's parent is the zygote, outside its pid namespace (so 0).
    assert body == {"pid": 2, "ppid": 0, "pids": [1, 2], "init": "gust-init"}, body


ORPHANS = r'''
import os, time

def state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        # Reaped between open() and read(): read() of a dead pid's stat is ESRCH.
        return "gone"

def zombies():
    return [p for p in os.listdir("/proc") if p.isdigit() and state(int(p)) == "Z"]

def handler(event, context):
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        grandchild = os.fork()
        if grandchild == 0:
            time.sleep(0.3)
            os._exit(0)
        os.write(w, str(grandchild).encode())
        os._exit(0)
    os.waitpid(child, 0)
    orphan = int(os.read(r, 16))
    with open("/proc/%d/stat" % orphan) as f:
        parent = int(f.read().rsplit(")", 1)[1].split()[1])
    for _ in range(300):
        if state(orphan) in ("Z", "gone"):
            break
        time.sleep(0.01)
    time.sleep(0.5)  # a reaper has had time: a zombie now is a leak
    return {"parent": parent, "orphan": state(orphan), "zombies": zombies()}
'''


def test_orphans_are_reaped(eng):
    fn = name("orphans")
    eng.create(fn, {"app.py": ORPHANS})
    for _ in range(2):  # and again in the same (warm) sandbox
        _, body, _ = invoke(eng, fn)
        assert body == {"parent": 1, "orphan": "gone", "zombies": []}, body


def _host_pids_named(comm):
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/comm") as f:
                if f.read().strip() == comm:
                    found.append(int(p))
        except OSError:
            pass
    return found


def _status_field(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].split()
    return []


def _init_of(runtime):
    """The host pid of the init of runtime's sandbox: the process that is pid 1
    of the runtime's pid namespace (a sibling: both are the zygote's children)."""
    ns = os.readlink(f"/proc/{runtime}/ns/pid")
    zygote = int(_status_field(runtime, "PPid")[0])
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == runtime:
            continue
        try:
            if (int(_status_field(int(p), "PPid")[0]) == zygote
                    and os.readlink(f"/proc/{p}/ns/pid") == ns
                    and _status_field(int(p), "NSpid")[-1] == "1"):
                return int(p)
        except (OSError, IndexError):
            pass
    return None


# The handler names itself (comm) so that the test finds it on the host.
WAITS_FOR_SIGTERM = r'''
import ctypes, os, signal, time

def set_comm(name):  # prctl(PR_SET_NAME): /proc/self/comm is root's (not dumpable)
    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)

def handler(event, context):
    got = []
    signal.signal(signal.SIGTERM,
                  (lambda s, f: got.append(s)) if event.get("catch") else signal.SIG_DFL)
    set_comm(event["comm"])
    if event.get("self"):
        os.kill(1, signal.SIGTERM)  # from inside the sandbox, to its init
    for _ in range(1000):
        if got:
            return "forwarded"
        time.sleep(0.01)
    return "not forwarded"
'''


def _invoke_in_background(engine, fn, payload):
    out = {}

    def call():
        try:
            out["r"] = invoke(engine, fn, payload)
        except OSError as e:  # the engine stopped meanwhile
            out["error"] = e

    t = threading.Thread(target=call)
    t.start()
    return t, out


def _wait_for(comm, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = _host_pids_named(comm)
        if pids:
            return pids[0]
        time.sleep(0.02)
    raise AssertionError(f"no process named {comm}")


@pytest.mark.skipif(os.geteuid() != 0, reason="signals another user's processes")
def test_sigterm_to_the_init_is_forwarded(eng):
    fn = name("term")
    eng.create(fn, {"app.py": WAITS_FOR_SIGTERM}, Timeout=30)
    # Caught by the handler: the signal reached the runtime.
    comm = "gt" + uuid.uuid4().hex[:10]
    t, out = _invoke_in_background(eng, fn, {"comm": comm, "catch": True})
    runtime = _wait_for(comm)
    init = _init_of(runtime)
    assert init is not None
    with open(f"/proc/{init}/comm") as f:
        assert f.read().strip() == "gust-init"
    os.kill(init, signal.SIGTERM)
    t.join(30)
    assert out["r"][1] == "forwarded", out
    # Not caught: the runtime is terminated by it, as on Lambda.
    comm = "gt" + uuid.uuid4().hex[:10]
    t, out = _invoke_in_background(eng, fn, {"comm": comm})
    runtime = _wait_for(comm)
    os.kill(_init_of(runtime), signal.SIGTERM)
    t.join(30)
    headers, body, _ = out["r"]
    assert body["errorType"] == "Runtime.ExitError", body
    assert body["errorMessage"].endswith("Error: Runtime exited with error: signal: terminated")


def test_sigterm_sent_to_pid_1_from_inside_is_forwarded(eng):
    fn = name("self")
    eng.create(fn, {"app.py": WAITS_FOR_SIGTERM}, Timeout=30)
    _, body, _ = invoke(eng, fn, {"comm": "x", "catch": True, "self": True})
    assert body == "forwarded"


# Children that outlive the handler: one it still parents, one orphaned.
LINGERS = r'''
import ctypes, os, time

def set_comm(name):  # prctl(PR_SET_NAME): /proc/self/comm is root's (not dumpable)
    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)

def spawn(comm, orphan):
    pid = os.fork()
    if pid == 0:
        if orphan and os.fork() != 0:
            os._exit(0)
        set_comm(comm)
        time.sleep(120)
        os._exit(0)
    if orphan:
        os.waitpid(pid, 0)

def handler(event, context):
    spawn(event["comm"], False)
    spawn(event["comm"], True)
    set_comm(event["comm"] + "-r")
    time.sleep(60)
'''


@pytest.mark.skipif(os.geteuid() != 0, reason="looks at another user's processes")
def test_timeout_ends_every_process_of_the_sandbox(eng):
    fn = name("timeout")
    eng.create(fn, {"app.py": LINGERS}, Timeout=2)
    comm = "gl" + uuid.uuid4().hex[:10]
    _, body, _ = invoke(eng, fn, {"comm": comm})
    assert body["errorType"] == "Sandbox.Timedout", body
    deadline = time.time() + 5
    while _host_pids_named(comm) and time.time() < deadline:
        time.sleep(0.05)
    assert _host_pids_named(comm) == []


def test_out_of_memory_and_max_memory_used(eng):
    fn = name("mem")
    eng.create(fn, {"app.py": r'''
def handler(event, context):
    if event.get("oom"):
        blocks = []
        while True:
            blocks.append(bytearray(16 << 20))
    return len(bytearray(96 << 20))
'''}, MemorySize=256)
    _, body, log = invoke(eng, fn)
    assert body == 96 << 20
    used = int(log.split("Max Memory Used: ")[1].split(" MB")[0])
    assert used >= 96, log
    _, body, log = invoke(eng, fn, {"oom": True})
    assert body["errorType"] == "Runtime.OutOfMemory", (body, log)
    _, body, _ = invoke(eng, fn)
    assert body == 96 << 20


def test_no_processes_left_after_stop(tmp_path):
    """Every init, runtime and orphan ends with the engine."""
    engine = Engine(tmp_path / "state", extra_args=["--keep-alive", "60s"])
    engine.start()
    try:
        fn = name("stop")
        engine.create(fn, {"app.py": LINGERS}, Timeout=30)
        comm = "gs" + uuid.uuid4().hex[:10]
        t, out = _invoke_in_background(engine, fn, {"comm": comm})
        runtime = _wait_for(comm + "-r")
        init = _init_of(runtime)
        assert init is not None
        deadline = time.time() + 10
        while len(_host_pids_named(comm)) < 2 and time.time() < deadline:
            time.sleep(0.02)
        assert len(_host_pids_named(comm)) == 2
    finally:
        engine.stop()
    t.join(30)
    deadline = time.time() + 5
    while _host_pids_named(comm) and time.time() < deadline:
        time.sleep(0.05)
    assert _host_pids_named(comm) == []

    def gone(pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                return f.read()
        except FileNotFoundError:
            return "gone"
    assert (gone(runtime), gone(init)) == ("gone", "gone")
