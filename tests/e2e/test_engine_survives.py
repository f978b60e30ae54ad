"""Issue 11's findings: one request or one function's answer could end the engine
(an exception on the worker pool or the engine thread is std::terminate). Each case
sends the input, expects a specific error for that caller, then checks the same
engine (same pid) still serves another function."""
import hashlib
import json
import sys
import time

import pytest

from gust_e2e import make_zip

# The job header's python: this interpreter's environment, as the client sends it.
PY = {"executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix,
      "version": "%d.%d.%d" % sys.version_info[:3]}


@pytest.fixture
def canary(engine, fname):
    name = fname + "-canary"
    engine.create(name, {"app.py": "def handler(e, c):\n    return {'alive': e}\n"})
    return name


def assert_engine_serves(engine, canary, pid_before):
    assert engine.proc.poll() is None, "the engine exited:\n" + engine.log()
    assert engine.proc.pid == pid_before
    status, _, data = engine.invoke(canary, 7)
    assert status == 200 and json.loads(data) == {"alive": 7}


def job_with_header(header):
    task = b"not even a pickle"
    return json.dumps(header).encode() + b"\n" + len(task).to_bytes(4, "little") + task


@pytest.mark.parametrize("header, needle", [
    # The finding: h.value("code", std::string()) threw type_error on the worker pool.
    ({"code": 5, "python": PY}, "job header field code must be the sha256"),
    ({"code": ["a"], "python": PY}, "job header field code must be the sha256"),
    ({"code": "0" * 64, "python": 3.11}, "job header field python"),
    ({"code": "0" * 64, "python": PY, "memory": "256"}, "memory must be an integer"),
    ({"code": "0" * 64, "python": PY, "memory": 2 ** 64 - 1}, "memory must be an integer"),
    ({"code": "0" * 64, "python": PY, "straggler_factor": "2"}, "straggler_factor"),
    ({"code": "0" * 64, "python": PY, "network": "yes"}, "network must be a boolean"),
])
def test_job_header_of_wrong_types_is_a_400(engine, canary, header, needle):
    pid = engine.proc.pid
    status, headers, data = engine.request("POST", "/v1/jobs", job_with_header(header))
    assert status == 400, data
    assert headers["x-amzn-errortype"] == "InvalidParameterValueException"
    assert needle in json.loads(data)["Message"]
    assert_engine_serves(engine, canary, pid)


def test_cancel_with_out_of_range_task_is_a_400(engine, canary):
    pid = engine.proc.pid
    status, _, data = engine.request("POST", "/v1/jobs/job-nope/cancel",
                                     json.dumps({"tasks": [2 ** 40]}))
    assert status == 400 and b"cancel body must be" in data
    assert_engine_serves(engine, canary, pid)


BAD_WEB_ANSWERS = r'''
def handler(event, context):
    path = event["rawPath"]
    if path == "/b64-string":   # the finding: ended the engine on the engine thread
        return {"statusCode": 200, "isBase64Encoded": "false", "body": "x"}
    if path == "/huge-status":
        return {"statusCode": 2 ** 64 - 1, "body": "x"}
    if path == "/status-list":
        return {"statusCode": [200]}
    if path == "/odd-types":
        return {"statusCode": "201", "headers": {"X-N": 5}, "body": {"k": [1]}}
    return {"statusCode": 200, "body": "fine"}
'''


@pytest.mark.parametrize("path, status, needle", [
    ("/b64-string", 502, 'isBase64Encoded must be a boolean, not \\"false\\"'),
    ("/huge-status", 502, "statusCode"),
    ("/status-list", 502, "statusCode"),
])
def test_function_answer_of_wrong_types_is_a_502(engine, fname, canary, path, status, needle):
    engine.create(fname, {"app.py": BAD_WEB_ANSWERS})
    pid = engine.proc.pid
    got, _, data = engine.request("GET", f"/web/{fname}{path}")
    assert got == status, data
    assert needle in data.decode(), data
    assert_engine_serves(engine, canary, pid)
    got, headers, data = engine.request("GET", f"/web/{fname}/odd-types")
    assert got == 201 and headers["x-n"] == "5" and json.loads(data) == {"k": [1]}


def test_bytes_that_are_not_utf8_in_names_and_paths(engine, canary):
    """Error messages quote what the client sent; JSON of bytes that are not UTF-8
    made nlohmann's dump() throw."""
    pid = engine.proc.pid
    for path in ["/2015-03-31/functions/%FF%FE/invocations",
                 "/2015-03-31/functions/%C3%28",
                 "/v1/jobs/%FF/results",
                 "/v1/blobs/%FF"]:
        method = "POST" if path.endswith("invocations") else "GET"
        status, _, data = engine.request(method, path)
        assert 400 <= status < 500, (path, status, data)
        json.loads(data)  # a JSON error document, bad bytes replaced
    assert_engine_serves(engine, canary, pid)


def test_code_digest_of_wrong_case_or_type_is_named(engine, canary):
    pid = engine.proc.pid
    code = make_zip({"x.py": "x = 1\n"})
    digest = hashlib.sha256(code).hexdigest().upper()
    status, _, data = engine.request("POST", "/v1/jobs",
                                     job_with_header({"code": digest, "python": PY}))
    assert status == 400 and b"sha256" in data
    assert_engine_serves(engine, canary, pid)


DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON, under the 256 KB event limit


def test_deeply_nested_json_is_refused_not_recursed(engine, fname, canary):
    """nlohmann parses iteratively but copies and dumps recursively: an event of
    100,000 nested lists, shown back in the dead-letter list, overflowed the
    worker's stack."""
    engine.create(fname, {"app.py": "def handler(e, c):\n    return 'ran'\n"})
    status, _, data = engine.request("PUT", f"/2019-09-25/functions/{fname}/event-invoke-config",
                                     {"MaximumRetryAttempts": 0})
    assert status == 200, data
    pid = engine.proc.pid
    status, headers, _ = engine.request(
        "POST", f"/2015-03-31/functions/{fname}/invocations", DEEP,
        {"X-Amz-Invocation-Type": "Event"})
    assert status == 202
    request_id = headers["x-amzn-requestid"]
    deadline = time.time() + 60
    while time.time() < deadline:
        status, _, data = engine.request("GET", f"/v1/async-invocations/{request_id}")
        assert status == 200, data
        if json.loads(data)["Status"] in ("failed", "dead-lettered"):
            break
        time.sleep(0.2)
    assert json.loads(data)["Status"] in ("failed", "dead-lettered"), data
    status, _, data = engine.request("GET", f"/v1/functions/{fname}/dead-letters")
    assert status == 200, engine.log()
    letters = json.loads(data)["DeadLetters"]
    # The payload cannot be shown as JSON that deep: it comes back as the string it was.
    assert [d["Payload"] for d in letters] == [DEEP]
    # A management body that deep is a 400 naming the problem.
    status, _, data = engine.request("PUT", f"/2015-03-31/functions/{fname}/configuration",
                                     '{"Description": ' + DEEP + '}')
    assert status == 400 and b"deeper than 512" in data, data
    assert_engine_serves(engine, canary, pid)
