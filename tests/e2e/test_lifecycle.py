"""Engine lifecycle: state survives a restart; idle sandboxes scale to zero;
the gust CLI drives the same API."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from gust_e2e import GUST, Engine


def test_state_survives_restart(tmp_path):
    eng = Engine(tmp_path / "state").start()
    try:
        eng.create("persist", {"app.py": "def handler(e, c):\n    return 'v1'\n"})
        assert eng.request("POST", "/2015-03-31/functions/persist/versions", {})[0] == 201
        assert eng.request("POST", "/2015-03-31/functions/persist/aliases",
                           {"Name": "live", "FunctionVersion": "1"})[0] == 201
        assert eng.request("PUT", "/2017-10-31/functions/persist/concurrency",
                           {"ReservedConcurrentExecutions": 5})[0] == 200
    finally:
        eng.stop()
    eng2 = Engine(tmp_path / "state", port=eng.port).start()
    try:
        status, _, data = eng2.request("GET", "/2015-03-31/functions/persist")
        assert status == 200
        assert json.loads(data)["Concurrency"]["ReservedConcurrentExecutions"] == 5
        status, _, data = eng2.request("GET", "/2015-03-31/functions/persist/versions")
        assert [v["Version"] for v in json.loads(data)["Versions"]] == ["$LATEST", "1"]
        status, _, data = eng2.invoke("persist", {}, qualifier="live")
        assert status == 200 and json.loads(data) == "v1"
    finally:
        eng2.stop()


def test_scale_to_zero(tmp_path):
    eng = Engine(tmp_path / "state", extra_args=["--keep-alive", "1s"]).start()
    try:
        eng.create("idle", {"app.py": "def handler(e, c):\n    return 1\n"})
        assert eng.invoke("idle", {})[0] == 200
        assert eng.health()["sandboxes"]["live"] == 1
        deadline = time.time() + 10
        while time.time() < deadline and eng.health()["sandboxes"]["live"] > 0:
            time.sleep(0.2)
        assert eng.health()["sandboxes"]["live"] == 0
        # And it comes back on demand.
        assert eng.invoke("idle", {})[0] == 200
    finally:
        eng.stop()


def test_concurrent_invocations_get_more_sandboxes(engine, fname):
    import concurrent.futures
    engine.create(fname, {"app.py": "import time, os\ndef handler(e, c):\n    time.sleep(0.5)\n"
                                    "    return c.log_stream_name\n"})
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: engine.invoke(fname, {}), range(4)))
    assert all(r[0] == 200 for r in results), [(r[0], r[2][:300]) for r in results]
    streams = {json.loads(r[2]) for r in results}
    assert len(streams) == 4  # four sandboxes ran at once


def test_cli_deploy_invoke_logs(engine, tmp_path):
    app = tmp_path / "proj"
    app.mkdir()
    (app / "main.py").write_text("def run(event, context):\n    print('cli says hi')\n"
                                 "    return {'got': event}\n")
    env = dict(os.environ, GUST_URL=engine.url)
    out = subprocess.run([GUST, "deploy", "clifn", str(app), "--handler", "main.run",
                          "--memory", "256", "--env", "AB=1"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "version 1" in out.stdout and "code " in out.stdout
    out = subprocess.run([GUST, "invoke", "clifn", "--payload", '{"a": 2}', "--log"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"got": {"a": 2}}
    assert "cli says hi" in out.stderr and "REPORT RequestId" in out.stderr
    out = subprocess.run([GUST, "ls"], env=env, capture_output=True, text=True, timeout=60)
    assert "clifn" in out.stdout
    out = subprocess.run([GUST, "info", "clifn"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert "main.run" in out.stdout and "256 MB" in out.stdout and "AB=1" in out.stdout
    time.sleep(0.3)  # logs are written in the background
    out = subprocess.run([GUST, "logs", "clifn", "--since", "10m"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert "cli says hi" in out.stdout and "START RequestId" in out.stdout
    out = subprocess.run([GUST, "invoke", "nosuchfn"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "ResourceNotFoundException" in out.stderr
    out = subprocess.run([GUST, "rm", "clifn"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0


def test_cli_without_engine_says_how_to_start_one(tmp_path):
    env = dict(os.environ, GUST_URL="http://127.0.0.1:9")
    out = subprocess.run([GUST, "ls"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "gust up" in out.stderr


def test_concurrency_cap_throttles_sync_calls(tmp_path):
    import concurrent.futures
    eng = Engine(tmp_path / "state", extra_args=["--concurrency", "2"]).start()
    try:
        eng.create("slow", {"app.py": "import time\ndef handler(e, c):\n    time.sleep(1)\n"
                                      "    return 'ok'\n"}, Timeout=10)
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            results = list(pool.map(lambda _: eng.invoke("slow", {}), range(5)))
        statuses = sorted(r[0] for r in results)
        assert statuses == [200, 200, 429, 429, 429], statuses
        throttled = [r for r in results if r[0] == 429][0]
        assert throttled[1]["x-amzn-errortype"] == "TooManyRequestsException"
        body = json.loads(throttled[2])
        assert body["Reason"] == "ConcurrentInvocationLimitExceeded"
        # Capacity comes back as soon as the calls finish.
        assert eng.invoke("slow", {})[0] == 200
    finally:
        eng.stop()


def test_every_invocation_is_recorded(engine, fname):
    engine.create(fname, {"app.py": "def handler(e, c):\n    if e.get('fail'):\n"
                                    "        raise ValueError('no')\n    return 1\n"},
                  MemorySize=256)
    # Ordered by request id: warm invocations may start within the same ms.
    ids = [engine.invoke(fname, payload)[1]["x-amzn-requestid"]
           for payload in ({}, {}, {"fail": True})]
    status, data = engine.get(f"/v1/invocations?function={fname}")
    assert status == 200
    records = json.loads(data)["invocations"]
    assert len(records) == 3
    by_id = {r["request_id"]: r for r in records}
    oldest_first = [by_id[i] for i in ids]
    assert [r["cold"] for r in oldest_first] == [True, False, False]
    assert oldest_first[0]["init_ms"] > 0
    assert [r["outcome"] for r in oldest_first] == ["Success", "Success", "Unhandled"]
    assert oldest_first[2]["error_type"] == "ValueError"
    for r in records:
        assert r["memory_mb"] == 256 and r["billed_ms"] >= 1 and r["version"] == "$LATEST"
        assert r["max_memory_used_mb"] > 0 and r["request_id"]


def test_per_function_keep_alive(engine, fname):
    # The session engine keeps sandboxes 60 s; this function asks for 1 s.
    engine.create(fname, {"app.py": "def handler(e, c):\n    return 1\n"}, KeepAliveSeconds=1)
    assert engine.invoke(fname, {})[0] == 200

    def mine():
        return [s for s in json.loads(engine.get("/v1/sandboxes")[1])["sandboxes"]
                if s["function"] == fname]
    assert len(mine()) == 1
    deadline = time.time() + 10
    while time.time() < deadline and mine():
        time.sleep(0.2)
    assert mine() == []


def test_up_detached_and_down(tmp_path):
    from gust_e2e import free_port
    state = tmp_path / "nested" / "dirs" / "state"
    port = free_port()
    env = dict(os.environ, GUST_URL=f"http://127.0.0.1:{port}")
    out = subprocess.run([GUST, "up", "-d", "--port", str(port), "--state-dir", str(state)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"running at http://127.0.0.1:{port}" in out.stdout
    try:
        out = subprocess.run([GUST, "ls"], env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "no functions" in out.stdout
    finally:
        out = subprocess.run([GUST, "down", "--state-dir", str(state)], env=env,
                             capture_output=True, text=True, timeout=60)
    assert "stopped" in out.stdout, out.stdout + out.stderr
    out = subprocess.run([GUST, "ls"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2


def test_up_reports_a_busy_port(tmp_path, engine):
    out = subprocess.run([GUST, "up", "--port", str(engine.port), "--state-dir",
                          str(tmp_path / "s")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    assert f"127.0.0.1:{engine.port}" in out.stderr


@pytest.mark.parametrize("option", ["--prefork", "--prefork-max"])
def test_up_refuses_a_negative_pool_size(tmp_path, option):
    out = subprocess.run([GUST, "up", option, "-1", "--state-dir", str(tmp_path / "s")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert option in out.stderr and "-1" in out.stderr, out.stderr


def test_second_engine_on_a_busy_port_leaves_the_first_alone(engine, fname, tmp_path):
    engine.create(fname, {"app.py": "def handler(e, c):\n    return 'still here'\n"})
    assert engine.invoke(fname, {})[0] == 200  # a warm sandbox now lives in gust-<port>
    out = subprocess.run([GUST, "up", "--port", str(engine.port), "--state-dir",
                          str(tmp_path / "other")], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert f"127.0.0.1:{engine.port}" in out.stderr, out.stderr
    status, _, data = engine.invoke(fname, {})
    assert status == 200 and json.loads(data) == "still here"
    sandboxes = json.loads(engine.get("/v1/sandboxes")[1])["sandboxes"]
    assert any(s["function"] == fname for s in sandboxes)


def _listening_inode(port):
    """The socket inode of 127.0.0.1:port in LISTEN state, from /proc/net/tcp."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and local == "0100007F:%04X" % port:
                return inode
    return None


def _holders(inode):
    """Pids of every process holding socket:[inode]."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in fds):
                out.append(int(pid))
        except OSError:
            continue  # gone, or a fd closed between the listing and the readlink
    return out


def test_a_killed_engine_refuses_connections_at_once(tmp_path):
    """The API's listening socket is the engine's alone: no zygote, pool
    child or sandbox inherits it. One that did would accept connections after
    the engine died and then reset them, so a cluster peer forwarding to a
    dead node read a reset (a 502) where a refusal lets it answer itself."""
    eng = Engine(tmp_path / "state", extra_args=["--prefork", "2"]).start()
    try:
        eng.create("warm", {"app.py": "def handler(e, c):\n    return 1\n"})
        assert eng.invoke("warm", {})[0] == 200
        inode = _listening_inode(eng.port)
        assert inode is not None
        assert _holders(inode) == [eng.proc.pid], (_holders(inode), eng.proc.pid)
        eng.proc.send_signal(signal.SIGKILL)
        eng.proc.wait()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", eng.port), timeout=5).close()
        # The port is free for a new engine at once (it also clears what the
        # killed one left: its cgroups and its nftables table).
        eng.start()
        assert eng.invoke("warm", {})[0] == 200
    finally:
        eng.stop()
