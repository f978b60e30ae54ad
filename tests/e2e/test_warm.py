"""POST /v1/functions/{name}/warm: one initialised sandbox without calling the
handler (keep-warm schedules, deploy-time import checks)."""
import json
import time

from gust_e2e import Engine


def _sandboxes(engine, function):
    data = json.loads(engine.get("/v1/sandboxes")[1])["sandboxes"]
    return [s for s in data if s["function"] == function]


def test_warm_spawns_once_and_never_calls_the_handler(engine, fname):
    # The handler would fail loudly if called; init prints a marker.
    engine.create(fname, {"app.py": "print('init ran')\n"
                                    "def handler(e, c):\n    raise RuntimeError('called')\n"})
    status, _, data = engine.request("POST", f"/v1/functions/{fname}/warm")
    assert status == 200, data
    first = json.loads(data)
    assert first["Spawned"] is True and first["SandboxId"].startswith("sbx-")
    assert "FunctionError" not in first
    assert [s["state"] for s in _sandboxes(engine, fname)] == ["idle"]

    status, _, data = engine.request("POST", f"/v1/functions/{fname}/warm")
    second = json.loads(data)
    assert status == 200 and second["Spawned"] is False
    assert second["SandboxId"] == first["SandboxId"]
    assert len(_sandboxes(engine, fname)) == 1

    # The warmed sandbox serves the next invocation warm.
    status, headers, data = engine.invoke(fname, {}, tail=True)
    assert status == 200 and headers.get("x-amz-function-error") == "Unhandled"
    assert json.loads(data)["errorType"] == "RuntimeError"
    records = json.loads(engine.get(f"/v1/invocations?function={fname}")[1])["invocations"]
    assert len(records) == 1 and records[0]["cold"] is False  # warming is not an invocation

    log = ""
    deadline = time.time() + 10  # logs reach the file through a background writer
    while time.time() < deadline and "WARM Version" not in log:
        log = json.loads(engine.get(f"/v1/functions/{fname}/logs")[1])["text"]
        time.sleep(0.1)
    assert "init ran" in log and "WARM Version: $LATEST" in log


def test_warm_reports_an_import_error_and_leaves_nothing(engine, fname):
    engine.create(fname, {"app.py": "import no_such_module_here\n"
                                    "def handler(e, c):\n    return 1\n"})
    status, _, data = engine.request("POST", f"/v1/functions/{fname}/warm")
    assert status == 200, data
    doc = json.loads(data)
    assert doc["FunctionError"] == "Unhandled"
    assert doc["Error"]["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module_here" in doc["Error"]["errorMessage"]
    assert not [s for s in _sandboxes(engine, fname) if s["state"] != "dead"]


def test_warm_unknown_function_or_version(engine, fname):
    status, headers, data = engine.request("POST", "/v1/functions/nope-not-here/warm")
    assert status == 404 and headers["x-amzn-errortype"] == "ResourceNotFoundException"
    engine.create(fname, {"app.py": "def handler(e, c):\n    return 1\n"})
    status, _, data = engine.request("POST", f"/v1/functions/{fname}/warm?Qualifier=7")
    assert status == 404, data
    status, _, data = engine.request("POST", "/v1/functions/bad%20name/warm")
    assert status == 400, data


def test_warm_sandbox_still_scales_to_zero(tmp_path):
    eng = Engine(tmp_path / "state", extra_args=["--keep-alive", "1s"]).start()
    try:
        eng.create("warmed", {"app.py": "def handler(e, c):\n    return 1\n"})
        assert eng.request("POST", "/v1/functions/warmed/warm")[0] == 200
        assert eng.health()["sandboxes"]["live"] == 1
        deadline = time.time() + 10
        while time.time() < deadline and eng.health()["sandboxes"]["live"] > 0:
            time.sleep(0.2)
        assert eng.health()["sandboxes"]["live"] == 0
    finally:
        eng.stop()
