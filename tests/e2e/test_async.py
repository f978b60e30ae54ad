"""Asynchronous invocations (InvocationType Event): durable accept, retries,
dead letters, redrive, destinations and event invoke configs, driven by boto3,
the aws CLI, the gust binary and raw HTTP against a real engine whose retry
back-off is shortened to 300 ms (then 600 ms)."""
import json
import os
import subprocess
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from gust_e2e import CLUSTER_PG_DIR, GUST, Engine

RETRY_DELAY_S = 0.3


@pytest.fixture(scope="module")
def eng(tmp_path_factory):
    e = Engine(tmp_path_factory.mktemp("gust-async"),
               extra_args=["--keep-alive", "60s", "--async-retry-delay", "300ms"]).start()
    yield e
    e.stop()


@pytest.fixture
def client(eng):
    return boto3.client("lambda", endpoint_url=eng.url, region_name="us-east-1",
                        aws_access_key_id="gust", aws_secret_access_key="gust",
                        config=Config(retries={"max_attempts": 0}, read_timeout=120))


ECHO = ("import json\n"
        "def handler(event, context):\n"
        "    print('EVENT', json.dumps(event))\n"
        "    if isinstance(event, dict) and event.get('fail'):\n"
        "        raise ValueError('asked to fail')\n"
        "    return {'request_id': context.aws_request_id, 'event': event}\n")
ALWAYS_FAILS = "def handler(event, context):\n    raise RuntimeError('broken on purpose')\n"


def async_invoke(eng, name, payload, qualifier=None):
    path = f"/2015-03-31/functions/{name}/invocations"
    if qualifier:
        path += f"?Qualifier={qualifier}"
    return eng.request("POST", path, json.dumps(payload), {"X-Amz-Invocation-Type": "Event"})


def wait_status(eng, request_id, statuses, timeout=30):
    deadline = time.time() + timeout
    doc = None
    while time.time() < deadline:
        status, data = eng.get(f"/v1/async-invocations/{request_id}")
        assert status == 200, data
        doc = json.loads(data)
        if doc["Status"] in statuses:
            return doc
        time.sleep(0.05)
    raise AssertionError(f"{request_id} still {doc and doc['Status']} after {timeout} s: {doc}")


def records(eng, name):
    return json.loads(eng.get(f"/v1/invocations?function={name}")[1])["invocations"]


def gust(eng, *args, check=True):
    out = subprocess.run([GUST, "--url", eng.url, *args], capture_output=True, text=True,
                         timeout=60)
    if check:
        assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return out


def test_boto3_event_is_202_and_runs_under_its_request_id(eng, client, fname):
    eng.create(fname, {"app.py": ECHO})
    r = client.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"k": 1}')
    assert r["StatusCode"] == 202
    request_id = r["ResponseMetadata"]["RequestId"]
    assert r["Payload"].read() == b""
    doc = wait_status(eng, request_id, {"succeeded"})
    assert doc["Result"] == {"request_id": request_id, "event": {"k": 1}}
    assert doc["Attempts"] == 1 and doc["Source"] == "invoke"
    assert [rec["request_id"] for rec in records(eng, fname)] == [request_id]


def test_aws_cli_and_gust_invoke_async(eng, fname, tmp_path):
    eng.create(fname, {"app.py": ECHO})
    env = dict(os.environ, AWS_ACCESS_KEY_ID="gust", AWS_SECRET_ACCESS_KEY="gust",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    out = subprocess.run(["aws", "lambda", "invoke", "--endpoint-url", eng.url,
                          "--function-name", fname, "--invocation-type", "Event",
                          "--payload", '{"via": "aws"}', str(tmp_path / "out.json")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["StatusCode"] == 202

    out = gust(eng, "invoke", fname, "--async", "--payload", '{"via": "gust"}')
    request_id = out.stdout.strip()
    assert len(request_id) == 36, out.stdout
    assert "get-invocation" in out.stderr
    wait_status(eng, request_id, {"succeeded"})
    shown = gust(eng, "get-invocation", request_id).stdout
    assert "status:       succeeded" in shown and '"via":"gust"' in shown, shown
    missing = gust(eng, "get-invocation", "no-such-id", check=False)
    assert missing.returncode == 2 and "ResourceNotFoundException" in missing.stderr


def test_bad_async_requests(eng, client, fname):
    eng.create(fname, {"app.py": ECHO})
    # 1 MB is the async limit: exactly 1 MB is taken, one byte more is 413.
    body = '"' + "x" * (1024 * 1024 - 2) + '"'
    status, headers, data = eng.request("POST", f"/2015-03-31/functions/{fname}/invocations",
                                        body, {"X-Amz-Invocation-Type": "Event"})
    assert status == 202, data
    status, headers, data = eng.request("POST", f"/2015-03-31/functions/{fname}/invocations",
                                        body + " ", {"X-Amz-Invocation-Type": "Event"})
    assert status == 413 and headers["x-amzn-errortype"] == "RequestTooLargeException"
    assert "1048576 bytes" in json.loads(data)["Message"]
    with pytest.raises(ClientError) as e:
        client.invoke(FunctionName=fname, InvocationType="Event", Payload=b"x" * (1 << 20 | 1))
    assert e.value.response["Error"]["Code"] == "RequestTooLargeException"
    # The same 2 MB synchronously is fine (6 MB limit): only Event is 1 MB.
    status, _, _ = eng.request("POST", f"/2015-03-31/functions/{fname}/invocations",
                               '"' + "y" * (2 << 20) + '"')
    assert status == 200
    with pytest.raises(ClientError) as e:
        client.invoke(FunctionName=fname + "-nope", InvocationType="Event", Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        client.invoke(FunctionName=fname, Qualifier="9", InvocationType="Event", Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    status, headers, data = eng.request("POST", f"/2015-03-31/functions/{fname}/invocations",
                                        "{not json", {"X-Amz-Invocation-Type": "Event"})
    assert status == 400 and headers["x-amzn-errortype"] == "InvalidRequestContentException"
    # Nothing of the refused requests was queued.
    stored = json.loads(eng.get("/v1/async")[1])["stored"]
    assert stored["queued"] == 0


def test_default_retries_back_off_then_dead_letter_and_redrive(eng, fname):
    eng.create(fname, {"app.py": ALWAYS_FAILS})
    status, headers, _ = async_invoke(eng, fname, {"n": 7})
    assert status == 202
    request_id = headers["x-amzn-requestid"]
    doc = wait_status(eng, request_id, {"dead-lettered"})
    assert doc["Attempts"] == 3 and doc["Condition"] == "RetriesExhausted"
    assert doc["Error"]["errorType"] == "RuntimeError"
    runs = sorted(records(eng, fname), key=lambda r: r["start_ms"])
    assert [r["request_id"] for r in runs] == [request_id] * 3
    gaps = [b["start_ms"] - a["start_ms"] for a, b in zip(runs, runs[1:])]
    assert gaps[0] >= RETRY_DELAY_S * 1000 and gaps[1] >= 2 * RETRY_DELAY_S * 1000, gaps

    listed = gust(eng, "dlq", fname).stdout
    assert request_id in listed and "RetriesExhausted" in listed and "RuntimeError" in listed
    letters = json.loads(eng.get(f"/v1/functions/{fname}/dead-letters")[1])["DeadLetters"]
    assert [d["Payload"] for d in letters] == [{"n": 7}]

    # Fix the function, redrive: the same request id runs again and succeeds.
    eng.request("PUT", f"/2015-03-31/functions/{fname}/code",
                {"ZipFile": __import__("base64").b64encode(
                    __import__("gust_e2e").make_zip({"app.py": ECHO})).decode()})
    out = gust(eng, "dlq", fname, "--redrive").stdout
    assert "redriven 1 event" in out, out
    doc = wait_status(eng, request_id, {"succeeded"})
    assert doc["Result"]["event"] == {"n": 7} and doc["Source"] == "redrive"
    assert "no dead letters" in gust(eng, "dlq", fname).stdout


def test_event_invoke_config_limits_retries(eng, client, fname):
    eng.create(fname, {"app.py": ALWAYS_FAILS})
    client.put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=0)
    status, headers, _ = async_invoke(eng, fname, {})
    doc = wait_status(eng, headers["x-amzn-requestid"], {"dead-lettered"})
    assert doc["Attempts"] == 1


def test_on_failure_and_on_success_destinations(eng, client, fname):
    sink = fname + "-sink"
    eng.create(sink, {"app.py": ECHO})
    eng.create(fname, {"app.py": ECHO})
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{sink}"
    client.put_function_event_invoke_config(
        FunctionName=fname, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}, "OnSuccess": {"Destination": arn}})
    _, h1, _ = async_invoke(eng, fname, {"fail": True, "tag": "bad"})
    _, h2, _ = async_invoke(eng, fname, {"tag": "good"})
    failed = wait_status(eng, h1["x-amzn-requestid"], {"failed"})
    assert failed["Destination"] == arn and failed["Condition"] == "RetriesExhausted"
    wait_status(eng, h2["x-amzn-requestid"], {"succeeded"})
    deadline, seen = time.time() + 20, {}
    while time.time() < deadline and len(seen) < 2:
        log = json.loads(eng.get(f"/v1/functions/{sink}/logs")[1])["text"]
        for line in log.splitlines():
            if "EVENT " in line:
                record = json.loads(line.split("EVENT ", 1)[1])
                seen[record["requestContext"]["condition"]] = record
        time.sleep(0.1)
    bad = seen["RetriesExhausted"]
    assert bad["requestContext"]["requestId"] == h1["x-amzn-requestid"]
    assert bad["requestContext"]["functionArn"].endswith(f"function:{fname}:$LATEST")
    assert bad["requestPayload"] == {"fail": True, "tag": "bad"}
    assert bad["responseContext"]["functionError"] == "Unhandled"
    assert bad["responsePayload"]["errorType"] == "ValueError"
    good = seen["Success"]
    assert good["responsePayload"]["event"] == {"tag": "good"}
    assert "functionError" not in good["responseContext"]
    # A failure that went to a destination is not in the dead-letter store.
    assert json.loads(eng.get(f"/v1/functions/{fname}/dead-letters")[1])["DeadLetters"] == []


def test_throttled_events_wait_without_spending_attempts(eng, client, fname):
    eng.create(fname, {"app.py": ECHO})
    client.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    ids = [async_invoke(eng, fname, {"i": i})[1]["x-amzn-requestid"] for i in range(3)]
    time.sleep(1.0)
    for request_id in ids:
        assert json.loads(eng.get(f"/v1/async-invocations/{request_id}")[1])["Status"] == "queued"
    assert json.loads(eng.get("/v1/async")[1])["throttled"] > 0
    client.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=2)
    for request_id in ids:
        assert wait_status(eng, request_id, {"succeeded"})["Attempts"] == 1


def test_event_invoke_config_api_shapes(eng, client, fname):
    eng.create(fname, {"app.py": ECHO})
    with pytest.raises(ClientError) as e:
        client.get_function_event_invoke_config(FunctionName=fname)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    put = client.put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=1,
                                                  MaximumEventAgeInSeconds=120)
    assert put["MaximumRetryAttempts"] == 1 and put["MaximumEventAgeInSeconds"] == 120
    assert put["FunctionArn"].endswith(f":function:{fname}:$LATEST")
    assert put["LastModified"].year >= 2024
    updated = client.update_function_event_invoke_config(FunctionName=fname,
                                                         MaximumEventAgeInSeconds=3600)
    assert updated["MaximumRetryAttempts"] == 1 and updated["MaximumEventAgeInSeconds"] == 3600
    got = client.get_function_event_invoke_config(FunctionName=fname)
    assert got["MaximumEventAgeInSeconds"] == 3600
    listed = client.list_function_event_invoke_configs(FunctionName=fname)
    assert len(listed["FunctionEventInvokeConfigs"]) == 1
    # Put replaces: fields left out go back to the defaults.
    put = client.put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=2)
    assert "MaximumEventAgeInSeconds" not in put

    env = dict(os.environ, AWS_ACCESS_KEY_ID="gust", AWS_SECRET_ACCESS_KEY="gust",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    out = subprocess.run(["aws", "lambda", "put-function-event-invoke-config", "--endpoint-url",
                          eng.url, "--function-name", fname, "--maximum-retry-attempts", "0"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["MaximumRetryAttempts"] == 0

    client.delete_function_event_invoke_config(FunctionName=fname)
    with pytest.raises(ClientError):
        client.get_function_event_invoke_config(FunctionName=fname)
    with pytest.raises(ClientError) as e:
        client.delete_function_event_invoke_config(FunctionName=fname)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.mark.parametrize("body,code,needle", [
    ({"MaximumRetryAttempts": 3}, "ValidationException",
     "Value '3' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value "
     "less than or equal to 2"),
    ({"MaximumRetryAttempts": -1}, "ValidationException", "greater than or equal to 0"),
    ({"MaximumEventAgeInSeconds": 59}, "ValidationException",
     "Member must have value greater than or equal to 60"),
    ({"MaximumEventAgeInSeconds": 21601}, "ValidationException", "less than or equal to 21600"),
    ({"MaximumRetryAttempts": "two"}, "InvalidRequestContentException", "must be an integer"),
    ({"DestinationConfig": {"OnFailure": {"Destination":
                                          "arn:aws:sqs:us-east-1:000000000000:q"}}},
     "InvalidParameterValueException", "is not a Lambda function ARN"),
    ({"DestinationConfig": {"OnFailure": {"Destination":
                                          "arn:aws:lambda:us-east-1:000000000000:function:gone"}}},
     "InvalidParameterValueException", "does not exist"),
    ({"DestinationConfig": "x"}, "InvalidRequestContentException", "must be an object"),
])
def test_bad_event_invoke_configs(eng, fname, body, code, needle):
    eng.create(fname, {"app.py": ECHO})
    path = f"/2019-09-25/functions/{fname}/event-invoke-config"
    status, headers, data = eng.request("PUT", path, body)
    assert status == 400 and headers["x-amzn-errortype"] == code, data
    assert needle in json.loads(data)["Message"]
    status, _, _ = eng.request("GET", path)
    assert status == 404  # nothing was stored


def test_event_invoke_config_unknown_function(eng, client):
    with pytest.raises(ClientError) as e:
        client.put_function_event_invoke_config(FunctionName="no-such-fn", MaximumRetryAttempts=1)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ParamValidationError):  # botocore checks the minimum itself
        client.put_function_event_invoke_config(FunctionName="x", MaximumEventAgeInSeconds=1)


def test_a_throttled_function_does_not_hold_the_window(tmp_path):
    # 16 queued events fit in memory; a function that cannot run (reserved concurrency 0)
    # fills it, and more of its events wait on disk. Another function's event still runs:
    # the throttled function's events go back to disk.
    eng = Engine(tmp_path / "state", extra_args=["--async-window", "16"]).start()
    try:
        eng.create("stuck", {"app.py": ECHO})
        eng.create("free", {"app.py": ECHO})
        status, _, data = eng.request("PUT", "/2017-10-31/functions/stuck/concurrency",
                                      {"ReservedConcurrentExecutions": 0})
        assert status == 200, data
        stuck = [async_invoke(eng, "stuck", {"i": i})[1]["x-amzn-requestid"] for i in range(40)]
        _, headers, _ = async_invoke(eng, "free", {"hello": 1})
        wait_status(eng, headers["x-amzn-requestid"], {"succeeded"}, timeout=15)
        eng.request("DELETE", "/2017-10-31/functions/stuck/concurrency")
        for request_id in stuck:
            assert wait_status(eng, request_id, {"succeeded"}, timeout=30)["Attempts"] == 1
    finally:
        eng.stop()


@pytest.mark.skipif(bool(CLUSTER_PG_DIR),
                    reason="ages the queue in the embedded engine's SQLite file")
def test_an_event_past_its_maximum_age_is_dead_lettered_unrun(tmp_path):
    # MaximumEventAgeInSeconds is at least 60 s; rather than wait, the stopped
    # engine's queue is aged by two minutes in its SQLite file, then the
    # engine restarts and the function's throttle is lifted.
    import sqlite3
    eng = Engine(tmp_path / "state").start()
    try:
        eng.create("aged", {"app.py": ECHO})
        status, _, data = eng.request("PUT", "/2019-09-25/functions/aged/event-invoke-config",
                                      {"MaximumEventAgeInSeconds": 60})
        assert status == 200, data
        eng.request("PUT", "/2017-10-31/functions/aged/concurrency",
                    {"ReservedConcurrentExecutions": 0})
        _, old, _ = async_invoke(eng, "aged", {"old": True})
        old_id = old["x-amzn-requestid"]
        assert wait_status(eng, old_id, {"queued"})["Attempts"] == 0
        eng.stop()
        with sqlite3.connect(os.path.join(eng.state_dir, "queue.db")) as db:
            aged = db.execute("UPDATE events SET enqueued_ms = enqueued_ms - 120000 WHERE id = ?",
                              (old_id,)).rowcount
        assert aged == 1
        eng.start()
        _, fresh, _ = async_invoke(eng, "aged", {"old": False})
        eng.request("DELETE", "/2017-10-31/functions/aged/concurrency")
        doc = wait_status(eng, old_id, {"dead-lettered", "failed", "succeeded"})
        assert doc["Status"] == "dead-lettered" and doc["Condition"] == "EventAgeExceeded", doc
        assert doc["Error"]["errorType"] == "EventAgeExceeded"
        assert "over MaximumEventAgeInSeconds 60" in doc["Error"]["errorMessage"]
        assert wait_status(eng, fresh["x-amzn-requestid"], {"succeeded"})["Attempts"] == 1
        # The aged event never reached the handler.
        assert [r["request_id"] for r in records(eng, "aged")] == [fresh["x-amzn-requestid"]]
        letters = json.loads(eng.get("/v1/functions/aged/dead-letters")[1])["DeadLetters"]
        assert [d["Payload"] for d in letters] == [{"old": True}]
    finally:
        eng.stop()
