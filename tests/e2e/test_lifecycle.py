"""Engine lifecycle: state survives a restart; idle sandboxes scale to zero;
the gust CLI drives the same API."""
import json
import os
import subprocess
import time

from conftest import GUST, Engine, make_zip


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
    out = subprocess.run([GUST, "info", "clifn"], env=env, capture_output=True, text=True, timeout=60)
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
