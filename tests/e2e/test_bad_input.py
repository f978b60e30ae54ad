"""Bad input: each a specific status + Lambda error type + message naming the
problem, and nothing half-written (the function is unchanged afterwards)."""
import base64
import io
import json
import threading
import time
import zipfile

import pytest

from gust_e2e import make_zip

OK_ZIP = make_zip({"app.py": "def handler(e, c):\n    return 'ok'\n"})


def create_body(name, zip_bytes=OK_ZIP, **extra):
    body = {"FunctionName": name, "Runtime": "python3.11", "Role": "r", "Handler": "app.handler",
            "Code": {"ZipFile": base64.b64encode(zip_bytes).decode()}}
    body.update(extra)
    return body


def post_create(engine, body):
    status, headers, data = engine.request("POST", "/2015-03-31/functions", body)
    return status, headers.get("x-amzn-errortype"), json.loads(data) if data else {}


def assert_absent(engine, name):
    status, _, _ = engine.request("GET", f"/2015-03-31/functions/{name}")
    assert status == 404


@pytest.mark.parametrize("name", ["has space", "slash/name", "x" * 65, "bad!char"])
def test_invalid_function_names(engine, name):
    status, etype, body = post_create(engine, create_body(name))
    assert status == 400
    assert etype == "ValidationException"
    assert "functionName" in body["Message"]


def test_unknown_function_version_alias(engine, fname):
    for path in [f"/2015-03-31/functions/{fname}",
                 f"/2015-03-31/functions/{fname}/configuration"]:
        status, headers, data = engine.request("GET", path)
        assert status == 404
        assert headers["x-amzn-errortype"] == "ResourceNotFoundException"
        assert f"function:{fname}" in json.loads(data)["Message"]
    engine.create(fname, {"app.py": "def handler(e, c):\n    return 1\n"})
    for qualifier in ["7", "nosuchalias"]:
        status, headers, data = engine.invoke(fname, {}, qualifier=qualifier)
        assert status == 404, data
        assert json.loads(data)["Message"].endswith(f"function:{fname}:{qualifier}")


def test_malformed_json(engine, fname):
    status, headers, data = engine.request("POST", "/2015-03-31/functions", "{not json")
    assert status == 400
    assert headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert "Could not parse request body into json" in json.loads(data)["Message"]
    engine.create(fname, {"app.py": "def handler(e, c):\n    return 1\n"})
    status, headers, data = engine.request(
        "POST", f"/2015-03-31/functions/{fname}/invocations", "{broken")
    assert status == 400
    assert headers["x-amzn-errortype"] == "InvalidRequestContentException"
    # A NUL ends nlohmann's input: "{}\0junk" must not pass as the JSON {}.
    status, headers, data = engine.request(
        "POST", f"/2015-03-31/functions/{fname}/invocations", "{}\0junk")
    assert status == 400, data
    assert headers["x-amzn-errortype"] == "InvalidRequestContentException"


def test_payload_over_6mb(engine, fname):
    engine.create(fname, {"app.py": "def handler(e, c):\n    return 1\n"})
    big = json.dumps({"data": "x" * (6 * 1024 * 1024)})
    status, headers, data = engine.request(
        "POST", f"/2015-03-31/functions/{fname}/invocations", big)
    assert status == 413
    assert headers["x-amzn-errortype"] == "RequestTooLargeException"
    assert "6291456 bytes" in json.loads(data)["Message"]


def test_zip_that_is_not_a_zip(engine, fname):
    status, etype, body = post_create(engine, create_body(fname, b"this is not a zip file"))
    assert status == 400
    assert etype == "InvalidParameterValueException"
    assert body["Message"] == ("Could not unzip uploaded file. Please check your file, "
                               "then try to upload again.")
    assert_absent(engine, fname)


@pytest.mark.parametrize("evil", ["../evil.py", "/etc/evil.py", "a/../../evil.py"])
def test_zip_with_escaping_paths(engine, fname, evil):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(e, c):\n    return 1\n")
        zf.writestr(zipfile.ZipInfo(evil), "boom")
    status, etype, body = post_create(engine, create_body(fname, buf.getvalue()))
    assert status == 400, body
    assert etype == "InvalidParameterValueException"
    assert evil in body["Message"]
    assert_absent(engine, fname)


def test_zip_over_250mb_unzipped(engine, fname):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.py", "def handler(e, c):\n    return 1\n")
        with zf.open("zeros.bin", "w", force_zip64=True) as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(251):
                f.write(chunk)
    assert len(buf.getvalue()) < 2 * 1024 * 1024
    status, etype, body = post_create(engine, create_body(fname, buf.getvalue()))
    assert status == 400
    assert body["Message"] == "Unzipped size must be smaller than 262144000 bytes"
    assert_absent(engine, fname)


@pytest.mark.parametrize("field,value,needle", [
    ("MemorySize", 64, "greater than or equal to 128"),
    # Above the engine's ceilings (the machine's memory, a week): named, not Lambda's.
    ("MemorySize", 1 << 24, "above this engine's --max-memory of"),
    ("Timeout", 0, "greater than or equal to 1"),
    ("Timeout", 604801, "above this engine's --max-timeout of 604800 seconds"),
])
def test_memory_or_timeout_out_of_range(engine, fname, field, value, needle):
    status, etype, body = post_create(engine, create_body(fname, **{field: value}))
    assert status == 400
    assert etype == "ValidationException"
    assert needle in body["Message"] and str(value) in body["Message"]
    assert_absent(engine, fname)


def test_invalid_env_names_and_size(engine, fname):
    status, etype, body = post_create(
        engine, create_body(fname, Environment={"Variables": {"1BAD": "x"}}))
    assert status == 400 and etype == "ValidationException"
    assert "1BAD" in body["Message"]
    status, etype, body = post_create(
        engine, create_body(fname, Environment={"Variables": {"BIG": "x" * 5000}}))
    assert status == 400 and etype == "InvalidParameterValueException"
    assert "4KB" in body["Message"]
    assert_absent(engine, fname)


def test_bad_update_leaves_function_unchanged(engine, fname):
    engine.create(fname, {"app.py": "def handler(e, c):\n    return 'original'\n"})
    status, _, _ = engine.request("PUT", f"/2015-03-31/functions/{fname}/configuration",
                                  {"MemorySize": 1})
    assert status == 400
    status, _, _ = engine.request("PUT", f"/2015-03-31/functions/{fname}/code",
                                  {"ZipFile": base64.b64encode(b"garbage").decode()})
    assert status == 400
    status, _, data = engine.request("GET", f"/2015-03-31/functions/{fname}/configuration")
    assert json.loads(data)["MemorySize"] == 128
    status, _, data = engine.invoke(fname, {})
    assert json.loads(data) == "original"


def test_duplicate_create_conflicts(engine, fname):
    engine.create(fname, {"app.py": "def handler(e, c):\n    return 1\n"})
    status, etype, body = post_create(engine, create_body(fname))
    assert status == 409
    assert etype == "ResourceConflictException"
    assert fname in body["Message"]


def test_delete_while_invoked(engine, fname):
    engine.create(fname, {"app.py": "import time\ndef handler(e, c):\n    time.sleep(1.5)\n"
                                    "    return 'finished'\n"}, Timeout=10)
    result = {}

    def call():
        result["r"] = engine.invoke(fname, {})

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.5)
    status, _, _ = engine.request("DELETE", f"/2015-03-31/functions/{fname}")
    assert status == 204
    t.join(30)
    status, headers, data = result["r"]
    # The in-flight invocation completes on the code it started with.
    assert status == 200 and json.loads(data) == "finished"
    assert engine.invoke(fname, {})[0] == 404
