"""Rootless mode: the engine run by an unprivileged user (nobody) isolates with
user namespaces + rlimits, says so, and still contains every fault."""
import json
import os
import shutil
import subprocess

import pytest

from gust_e2e import GUST_BIN, NOBODY, free_port, private_copy, rootless_engine
from test_faults import FORK_BOMB, assert_engine_serves, run
from test_isolation import PROBE


@pytest.fixture(scope="module")
def rootless():
    with rootless_engine(["--keep-alive", "60s"]) as eng:
        yield eng


def test_says_it_is_rootless(rootless):
    startup = rootless.log()
    assert "isolation: ROOTLESS (engine uid 65534)" in startup, startup
    assert "NO cgroups" in startup and "cpu weight NOT enforced" in startup
    assert rootless.health()["isolation"].startswith("ROOTLESS")
    if os.path.exists(os.path.join(GUST_BIN, "_gust_zygote.so")):
        # The zygote runs in /usr/bin/python3 inside the user namespace as well.
        assert "/usr/bin/python3 running " in startup, startup


def test_isolation_seen_from_inside(rootless, fname):
    rootless.create(fname, {"app.py": PROBE})
    status, _, data = rootless.invoke(fname, {"state_dir": rootless.state_dir})
    assert status == 200, data
    r = json.loads(data)
    assert "errorType" not in r, r
    assert (r["uid"], r["gid"], r["pid"], r["pids"]) == (993, 993, 2, [1, 2])
    assert r["hostname"] == "sandbox"
    assert r["cap_eff"] == "0000000000000000"
    assert (r["no_new_privs"], r["seccomp"]) == ("1", "2")
    for call in ("mount", "unshare", "ptrace", "io_uring"):
        assert r[call] == "EPERM", (call, r)
    assert r["write_task"] in ("EROFS", "EACCES")
    assert r["tmp_writable"] == "allowed"
    assert not r["state_dir_visible"] and not r["home_visible"]
    assert (r["nofile"], r["core"]) == (1024, 0)
    assert r["interfaces"] == ["lo"]


def test_memory_limit_is_out_of_memory(rootless, fname):
    src = ("def handler(e, c):\n    blocks = []\n    while True:\n"
           "        blocks.append(bytearray(16 << 20))\n")
    headers, body, log = run(rootless, fname, src, MemorySize=128)
    assert body["errorType"] == "Runtime.OutOfMemory", (body, log)
    assert "Max Memory Used" in log
    # Within the limit is fine.
    name = fname + "-ok"
    _, body, _ = run(rootless, name, "def handler(e, c):\n    return len(bytearray(64 << 20))\n",
                     MemorySize=128)
    assert body == 64 << 20
    assert_engine_serves(rootless, fname)


def test_fork_bomb_contained_per_sandbox(rootless, fname):
    _, body, log = run(rootless, fname, FORK_BOMB, Timeout=90, MemorySize=2048)
    assert "forked" in body, (body, log[-2000:])
    assert 0 < body["forked"] < 1100, body
    # RLIMIT_NPROC counts per sandbox (each has its own user namespace), so
    # another sandbox can still fork while the bomb's children live on.
    name = fname + "-fork"
    _, body, _ = run(rootless, name, "import os\ndef handler(e, c):\n    pid = os.fork()\n"
                     "    if pid == 0:\n        os._exit(0)\n    os.waitpid(pid, 0)\n"
                     "    return 'forked'\n")
    assert body == "forked"


def test_timeout_and_crash(rootless, fname):
    _, body, log = run(rootless, fname, "import time\ndef handler(e, c):\n    time.sleep(30)\n",
                       Timeout=1)
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in log
    _, body, _ = run(rootless, fname + "-segv",
                     "import ctypes\ndef handler(e, c):\n    ctypes.string_at(0)\n")
    assert body["errorType"] == "Runtime.ExitError"
    assert "signal: segmentation fault" in body["errorMessage"]
    assert_engine_serves(rootless, fname)


def test_full_isolation_refused_without_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to run gust as another user")
    top = private_copy()
    os.makedirs(os.path.join(top, "state"))
    os.chown(os.path.join(top, "state"), NOBODY, NOBODY)
    try:
        proc = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             os.path.join(top, "gust"), "up", "--isolation", "full", "--port", str(free_port()),
             "--state-dir", os.path.join(top, "state")],
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, GUST_RUNTIME_DIR=os.path.join(top, "runtime"), HOME=top))
    finally:
        shutil.rmtree(top, ignore_errors=True)
    assert proc.returncode != 0
    assert "full isolation needs root" in proc.stderr, proc.stderr
