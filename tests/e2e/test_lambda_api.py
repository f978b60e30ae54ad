"""The Lambda REST API driven by the real boto3 and the real aws CLI."""
import base64
import json
import os
import subprocess
import urllib.request

import pytest
from botocore.exceptions import ClientError

from gust_e2e import make_zip

ECHO = """
import os
COUNTER = {"inits": 0}
COUNTER["inits"] += 1

def handler(event, context):
    print("event received", event)
    return {"event": event, "inits": COUNTER["inits"],
            "request_id": context.aws_request_id, "name": context.function_name,
            "version": context.function_version, "memory": context.memory_limit_in_mb,
            "remaining": context.get_remaining_time_in_millis(),
            "arn": context.invoked_function_arn,
            "env": os.environ.get("GREETING"), "task_root": os.environ.get("LAMBDA_TASK_ROOT")}
"""


def create_echo(lam, name, **extra):
    args = dict(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::0:role/r",
                Handler="app.handler", Code={"ZipFile": make_zip({"app.py": ECHO})},
                Environment={"Variables": {"GREETING": "hi"}}, Timeout=5, MemorySize=256)
    args.update(extra)
    return lam.create_function(**args)


def test_create_get_invoke_with_boto3(lam, fname):
    created = create_echo(lam, fname)
    assert created["FunctionName"] == fname
    assert created["State"] == "Active"
    assert created["Version"] == "$LATEST"
    lam.get_waiter("function_active_v2").wait(FunctionName=fname)

    cfg = lam.get_function_configuration(FunctionName=fname)
    assert cfg["MemorySize"] == 256 and cfg["Timeout"] == 5
    assert cfg["LastUpdateStatus"] == "Successful"
    assert cfg["Environment"]["Variables"] == {"GREETING": "hi"}

    resp = lam.invoke(FunctionName=fname, Payload=json.dumps({"x": 1}), LogType="Tail")
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert resp["ExecutedVersion"] == "$LATEST"
    body = json.loads(resp["Payload"].read())
    assert body["event"] == {"x": 1}
    assert body["name"] == fname
    assert body["memory"] == 256
    assert body["env"] == "hi"
    assert body["task_root"] == "/var/task"
    assert 0 < body["remaining"] <= 5000
    assert body["request_id"] == resp["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(resp["LogResult"]).decode()
    assert f"START RequestId: {body['request_id']} Version: $LATEST" in log
    assert "event received {'x': 1}" in log
    assert f"END RequestId: {body['request_id']}" in log
    assert "REPORT RequestId: " in log and "Billed Duration: " in log
    assert "Max Memory Used: " in log

    # Module-level code ran once: the second call is warm and has no Init Duration.
    resp2 = lam.invoke(FunctionName=fname, Payload=b"{}", LogType="Tail")
    body2 = json.loads(resp2["Payload"].read())
    assert body2["inits"] == 1
    assert "Init Duration" not in base64.b64decode(resp2["LogResult"]).decode()
    assert "Init Duration" in log


def test_get_function_code_location_downloads_the_zip(lam, fname):
    zip_bytes = make_zip({"app.py": ECHO})
    create_echo(lam, fname, Code={"ZipFile": zip_bytes})
    fn = lam.get_function(FunctionName=fname)
    with urllib.request.urlopen(fn["Code"]["Location"]) as r:
        assert r.read() == zip_bytes
    import hashlib
    assert fn["Configuration"]["CodeSha256"] == base64.b64encode(
        hashlib.sha256(zip_bytes).digest()).decode()
    assert fn["Configuration"]["CodeSize"] == len(zip_bytes)


def test_update_code_and_configuration(lam, fname):
    create_echo(lam, fname)
    assert json.loads(lam.invoke(FunctionName=fname)["Payload"].read())["env"] == "hi"
    lam.update_function_configuration(FunctionName=fname,
                                      Environment={"Variables": {"GREETING": "hello"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fname)
    assert json.loads(lam.invoke(FunctionName=fname)["Payload"].read())["env"] == "hello"
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip(
        {"app.py": "def handler(e, c):\n    return 'v2'\n"}))
    assert json.loads(lam.invoke(FunctionName=fname)["Payload"].read()) == "v2"


def test_versions_and_aliases(lam, fname):
    one = make_zip({"app.py": "def handler(e, c):\n    return 'one'\n"})
    create_echo(lam, fname, Code={"ZipFile": one})
    v1 = lam.publish_version(FunctionName=fname)
    assert v1["Version"] == "1"
    # Publishing unchanged code returns the same version.
    assert lam.publish_version(FunctionName=fname)["Version"] == "1"
    lam.update_function_code(FunctionName=fname, ZipFile=make_zip(
        {"app.py": "def handler(e, c):\n    return 'two'\n"}))
    v2 = lam.publish_version(FunctionName=fname, Description="second")
    assert v2["Version"] == "2"
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=fname)["Versions"]]
    assert versions == ["$LATEST", "1", "2"]

    alias = lam.create_alias(FunctionName=fname, Name="prod", FunctionVersion="1")
    assert alias["AliasArn"].endswith(f":function:{fname}:prod")
    r = lam.invoke(FunctionName=fname, Qualifier="prod")
    assert json.loads(r["Payload"].read()) == "one"
    assert r["ExecutedVersion"] == "1"
    assert json.loads(lam.invoke(FunctionName=fname, Qualifier="2")["Payload"].read()) == "two"
    lam.update_alias(FunctionName=fname, Name="prod", FunctionVersion="2")
    assert json.loads(lam.invoke(FunctionName=fname, Qualifier="prod")["Payload"].read()) == "two"
    assert [a["Name"] for a in lam.list_aliases(FunctionName=fname)["Aliases"]] == ["prod"]
    with pytest.raises(ClientError) as err:
        lam.invoke(FunctionName=fname, Qualifier="nope")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    lam.delete_alias(FunctionName=fname, Name="prod")
    with pytest.raises(ClientError):
        lam.get_alias(FunctionName=fname, Name="prod")


def test_list_functions_pages(lam, fname):
    for i in range(3):
        create_echo(lam, f"{fname}-{i}")
    names = []
    for page in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}):
        names += [f["FunctionName"] for f in page["Functions"]]
    for i in range(3):
        assert f"{fname}-{i}" in names
    assert len(names) == len(set(names))


def test_list_functions_all_versions(lam, fname):
    create_echo(lam, fname)
    lam.publish_version(FunctionName=fname)
    lam.update_function_configuration(FunctionName=fname, MemorySize=512)
    lam.publish_version(FunctionName=fname)
    seen = []
    for page in lam.get_paginator("list_functions").paginate(
            FunctionVersion="ALL", PaginationConfig={"PageSize": 2}):
        seen += [(f["FunctionName"], f["Version"], f["MemorySize"]) for f in page["Functions"]]
    mine = [s for s in seen if s[0] == fname]
    assert [v for _, v, _ in mine] == ["$LATEST", "1", "2"]
    assert mine[1][2] != 512 and mine[2][2] == 512
    assert len(seen) == len(set(seen))
    with pytest.raises(ClientError) as err:
        lam.list_functions(FunctionVersion="SOME")
    assert err.value.response["Error"]["Code"] in ("ValidationException",
                                                   "InvalidParameterValueException")


def test_update_code_dry_run_validates_without_changing(lam, fname):
    create_echo(lam, fname)
    before = lam.get_function_configuration(FunctionName=fname)
    new_zip = make_zip({"app.py": "def handler(e, c):\n    return 'new'\n"})
    out = lam.update_function_code(FunctionName=fname, ZipFile=new_zip, DryRun=True)
    assert out["CodeSha256"] != before["CodeSha256"]
    after = lam.get_function_configuration(FunctionName=fname)
    assert after["CodeSha256"] == before["CodeSha256"]
    assert after["RevisionId"] == before["RevisionId"]
    with pytest.raises(ClientError) as err:
        lam.update_function_code(FunctionName=fname, ZipFile=b"not a zip", DryRun=True)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_delete_function(lam, fname):
    create_echo(lam, fname)
    lam.invoke(FunctionName=fname)
    lam.delete_function(FunctionName=fname)
    with pytest.raises(ClientError) as err:
        lam.get_function(FunctionName=fname)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError):
        lam.invoke(FunctionName=fname)


def test_reserved_concurrency_zero_throttles(lam, fname):
    create_echo(lam, fname)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    assert lam.get_function_concurrency(FunctionName=fname)["ReservedConcurrentExecutions"] == 0
    with pytest.raises(ClientError) as err:
        lam.invoke(FunctionName=fname)
    assert err.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    lam.delete_function_concurrency(FunctionName=fname)
    assert lam.invoke(FunctionName=fname)["StatusCode"] == 200


def test_dry_run(lam, fname):
    create_echo(lam, fname)
    assert lam.invoke(FunctionName=fname, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError):
        lam.invoke(FunctionName=fname + "-missing", InvocationType="DryRun")


def test_aws_cli(engine, lam, fname, tmp_path):
    create_echo(lam, fname)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="gust", AWS_SECRET_ACCESS_KEY="gust",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    out = subprocess.run(["aws", "lambda", "list-functions", "--endpoint-url", engine.url],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert fname in [f["FunctionName"] for f in json.loads(out.stdout)["Functions"]]
    result = tmp_path / "out.json"
    out = subprocess.run(["aws", "lambda", "invoke", "--endpoint-url", engine.url,
                          "--function-name", fname,
                          "--payload", '{"k": "v"}', str(result)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["StatusCode"] == 200
    assert json.loads(result.read_text())["event"] == {"k": "v"}
