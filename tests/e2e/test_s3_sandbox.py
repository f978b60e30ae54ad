"""The object store from inside sandboxes (issue 16; docs/STORAGE.md, "From a
function"): map tasks and Lambda functions reach the engine's S3 API through
the sandbox channel (src/api/channel_api.h), with boto3 on the relay the
runtime starts (GUST_S3_ENDPOINT, runtimes/python/gust_runtime/s3_relay.py)
and with raw HTTP on the unix socket, without network, and only for the
buckets their job or configuration grants (403 AccessDenied otherwise; `:ro`
refuses writes). A nested map gets at most its parent's grants; the relay
reaches nothing of the engine the channel does not already serve.

Map jobs carry their grants in the job header's "Buckets"; the client's
`buckets=` is another change, so these tests add the field to the header the
client builds (with_buckets)."""
import base64
import json
import os
import socket
import sys
import uuid

import boto3
import cloudpickle
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import gust
from gust_e2e import SignedEngine, make_zip, rootless_engine, run_gust

cloudpickle.register_pickle_by_value(sys.modules[__name__])

CHANNEL = "/run/gust/engine.sock"
DATA, RO, OTHER = "sbx-data", "sbx-ro", "sbx-other"


@pytest.fixture(scope="module")
def buckets(engine):
    """The three buckets, made from the host (anonymous: the engine has no key),
    with one object in each of the read-only and the ungranted one."""
    s3 = boto3.client("s3", endpoint_url=engine.url + "/s3", region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x",
                      config=Config(retries={"max_attempts": 0}))
    for name in (DATA, RO, OTHER):
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as e:
            if e.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
    s3.put_object(Bucket=RO, Key="in.txt", Body=b"read me")
    s3.put_object(Bucket=OTHER, Key="secret.txt", Body=b"not yours")
    return s3


def with_buckets(grants):
    """Patches the client (in this process: the host, or a task) to send
    "Buckets": grants in its job headers; returns the undo."""
    from gust import job
    original = job.make_header

    def make_header(*args, **kwargs):
        header = original(*args, **kwargs)
        header["Buckets"] = grants if isinstance(grants, str) else list(grants)
        return header
    job.make_header = make_header
    return lambda: setattr(job, "make_header", original)


def channel_request(method, path, body=None, headers=None):
    """(status, body) of one raw request on the sandbox channel."""
    import http.client
    import socket as socket_module

    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
            self.sock.connect(CHANNEL)
    conn = Conn("localhost", timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read().decode("utf-8", "replace")


def relay_request(method, path):
    """(status, body) of one raw request through the relay (GUST_S3_ENDPOINT's port)."""
    import http.client
    import os
    import urllib.parse
    endpoint = urllib.parse.urlsplit(os.environ["GUST_S3_ENDPOINT"])
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    conn.request(method, path, body=b"{}" if method == "POST" else None)
    resp = conn.getresponse()
    return resp.status, resp.read().decode("utf-8", "replace")


def error_code(call):
    """The S3 error code call() raises, or None."""
    from botocore.exceptions import ClientError as Error
    try:
        call()
    except Error as e:
        return e.response["Error"]["Code"]
    return None


def exercise(tag):
    """Inside a sandbox granted DATA (read-write) and RO (read-only): what
    boto3 (on the relay) and raw HTTP (on the channel) get."""
    import os
    import boto3 as b3
    s3 = b3.client("s3", endpoint_url=os.environ["GUST_S3_ENDPOINT"])
    key = "out-%s.txt" % tag
    s3.put_object(Bucket=DATA, Key=key, Body=b"written in " + tag.encode())
    out = {
        "endpoint": os.environ["GUST_S3_ENDPOINT"],
        "read_back": s3.get_object(Bucket=DATA, Key=key)["Body"].read().decode(),
        "read_ro": s3.get_object(Bucket=RO, Key="in.txt")["Body"].read().decode(),
        "put_ro": error_code(lambda: s3.put_object(Bucket=RO, Key="x", Body=b"x")),
        "delete_ro": error_code(lambda: s3.delete_object(Bucket=RO, Key="in.txt")),
        "get_other": error_code(lambda: s3.get_object(Bucket=OTHER, Key="secret.txt")),
        "list_other": error_code(lambda: s3.list_objects_v2(Bucket=OTHER)),
        "copy_from_other": error_code(lambda: s3.copy_object(
            Bucket=DATA, Key="stolen", CopySource={"Bucket": OTHER, "Key": "secret.txt"})),
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "raw_get": channel_request("GET", "/s3/%s/%s" % (DATA, key)),
        "raw_other": channel_request("GET", "/s3/%s/secret.txt" % OTHER),
        "raw_put_ro": channel_request("PUT", "/s3/%s/raw" % RO, b"x"),
        "relay_lambda_api": relay_request("GET", "/2015-03-31/functions"),
        "relay_sandboxes": relay_request("GET", "/v1/sandboxes"),
    }
    return out


def check_exercise(out, tag):
    assert out["endpoint"].startswith("http://127.0.0.1:") and out["endpoint"].endswith("/s3")
    assert out["read_back"] == "written in " + tag
    assert out["read_ro"] == "read me"
    for name in ("put_ro", "delete_ro", "get_other", "list_other", "copy_from_other"):
        assert out[name] == "AccessDenied", (name, out[name])
    assert out["buckets"] == [DATA, RO]
    assert list(out["raw_get"]) == [200, "written in " + tag]  # a tuple, or a list from JSON
    for name in ("raw_other", "raw_put_ro"):
        status, body = out[name]
        assert status == 403 and "<Code>AccessDenied</Code>" in body, (name, out[name])
    assert "<Code>AccessDenied</Code>" in out["raw_other"][1]
    assert "not granted" in out["raw_other"][1], out["raw_other"]
    assert "read-only" in out["raw_put_ro"][1], out["raw_put_ro"]
    for name in ("relay_lambda_api", "relay_sandboxes"):
        assert out[name][0] == 403, (name, out[name])


def map_task(tag):
    return exercise(tag)


def test_a_map_task_uses_its_granted_buckets(engine, buckets):
    tag = "map-" + uuid.uuid4().hex[:6]
    undo = with_buckets([DATA, RO + ":ro", DATA + ":ro"])  # a wider duplicate wins
    try:
        fexec = gust.FunctionExecutor(engine.url)  # network=False: no network in the sandbox
        out = fexec.map(map_task, [tag])[0].result(timeout=120)
    finally:
        undo()
    check_exercise(out, tag)
    # The write is the store's, as the host sees it.
    body = buckets.get_object(Bucket=DATA, Key="out-%s.txt" % tag)["Body"].read()
    assert body == b"written in " + tag.encode()
    assert error_code(lambda: buckets.head_object(Bucket=DATA, Key="stolen")) == "404"


def test_a_map_without_grants_reaches_no_bucket(engine, buckets):
    def probe(_):
        import os
        import boto3 as b3
        s3 = b3.client("s3", endpoint_url=os.environ["GUST_S3_ENDPOINT"])
        return (error_code(lambda: s3.get_object(Bucket=RO, Key="in.txt")),
                [b["Name"] for b in s3.list_buckets()["Buckets"]])
    fexec = gust.FunctionExecutor(engine.url)
    assert fexec.map(probe, [0])[0].result(timeout=120) == ("AccessDenied", [])


def nested(grants):
    """From a task granted DATA:ro: submits a map asking for grants (comma-
    separated); the nested task lists its buckets and tries to write DATA."""
    import gust as g
    undo = with_buckets([b for b in grants.split(",") if b])
    try:
        fexec = g.FunctionExecutor()
        try:
            futures = fexec.map(nested_task, [0])
        except g.EngineError as e:
            return "refused: %s" % e
        return futures[0].result(timeout=60)
    finally:
        undo()


def nested_task(_):
    import os
    import boto3 as b3
    s3 = b3.client("s3", endpoint_url=os.environ["GUST_S3_ENDPOINT"])
    return (sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
            error_code(lambda: s3.put_object(Bucket=DATA, Key="nested", Body=b"x")))


def test_a_nested_map_cannot_widen_its_grants(engine, buckets):
    undo = with_buckets([DATA + ":ro"])
    try:
        fexec = gust.FunctionExecutor(engine.url)
        wider_bucket, wider_access, same, none = [
            f.result(timeout=180) for f in fexec.map(nested, [OTHER, DATA, DATA + ":ro", ""])]
    finally:
        undo()
    assert wider_bucket.startswith("refused") and "'%s'" % OTHER in wider_bucket, wider_bucket
    assert "HTTP 403" in wider_bucket and "only its job's buckets" in wider_bucket, wider_bucket
    assert wider_access.startswith("refused") and "'%s'" % DATA in wider_access, wider_access
    assert same == ([DATA], "AccessDenied"), same
    assert none == ([], "AccessDenied"), none


def test_bad_grants_in_a_job_are_400_naming_them(engine, buckets):
    undo = with_buckets([DATA, "Bad_Bucket"])
    try:
        with pytest.raises(gust.EngineError, match="'Bad_Bucket'"):
            gust.FunctionExecutor(engine.url).map(map_task, ["x"])
    finally:
        undo()
    undo = with_buckets(DATA)  # a string, not a list
    try:
        with pytest.raises(gust.EngineError, match="Buckets must be a list"):
            gust.FunctionExecutor(engine.url).map(map_task, ["x"])
    finally:
        undo()


FUNCTION = """
import json, sys
sys.path.insert(0, "/var/task")
from probe import exercise

def handler(event, context):
    return exercise(event["tag"])
"""


def probe_module():
    """The probe's source for a Lambda bundle: this module's helpers, pickled
    by value, and a module that loads them."""
    helpers = cloudpickle.dumps(exercise)
    return ("import base64, cloudpickle\n"
            "exercise = cloudpickle.loads(base64.b64decode(%r))\n"
            % base64.b64encode(helpers).decode())


def test_a_lambda_function_uses_its_configured_buckets(engine, buckets, fname):
    conf = engine.create(fname, {"app.py": FUNCTION, "probe.py": probe_module()},
                         GustBuckets=[DATA, RO + ":ro"])
    assert conf["GustBuckets"] == [DATA, RO + ":ro"], conf
    status, data = engine.get("/2015-03-31/functions/%s/configuration" % fname)
    assert status == 200 and json.loads(data)["GustBuckets"] == [DATA, RO + ":ro"], data
    tag = "fn-" + uuid.uuid4().hex[:6]
    status, _, data = engine.invoke(fname, {"tag": tag})
    assert status == 200, data
    check_exercise(json.loads(data), tag)

    # Read-write on RO from now: the function's new sandboxes get the new grant.
    status, _, data = engine.request(
        "PUT", "/2015-03-31/functions/%s/configuration" % fname, {"GustBuckets": [DATA, RO]})
    assert status == 200 and json.loads(data)["GustBuckets"] == [DATA, RO], data
    status, _, data = engine.invoke(fname, {"tag": tag})
    assert status == 200, data
    assert json.loads(data)["put_ro"] is None, data
    # Emptied: nothing is granted, and the field is no longer shown.
    status, _, data = engine.request(
        "PUT", "/2015-03-31/functions/%s/configuration" % fname, {"GustBuckets": []})
    assert status == 200 and "GustBuckets" not in json.loads(data), data


def test_bad_grants_of_a_function_are_400_naming_them(engine, fname):
    body = {"FunctionName": fname, "Runtime": "python3.11", "Role": "r",
            "Handler": "app.handler",
            "Code": {"ZipFile": base64.b64encode(make_zip({"app.py": FUNCTION})).decode()}}
    for grants, message in (([DATA, "UPPER:ro"], "'UPPER:ro'"), (DATA, "GustBuckets"),
                            ([DATA, 7], "GustBuckets")):
        status, _, data = engine.request("POST", "/2015-03-31/functions",
                                         dict(body, GustBuckets=grants))
        assert status == 400 and message in data.decode(), (grants, status, data)


RELAY_PORT = """
import os, urllib.parse, boto3

def handler(event, context):
    s3 = boto3.client("s3", endpoint_url=os.environ["GUST_S3_ENDPOINT"])
    s3.create_bucket(Bucket="mine")
    s3.put_object(Bucket="mine", Key="k", Body=b"v")
    return {"port": urllib.parse.urlsplit(os.environ["GUST_S3_ENDPOINT"]).port,
            "read": s3.get_object(Bucket="mine", Key="k")["Body"].read().decode()}
"""


def test_a_host_process_cannot_use_a_networked_sandboxs_relay():
    """A sandbox with network=True shares the host's network namespace (in
    rootless mode with no loopback guard), so its relay's port is reachable
    from the host: the relay serves its own sandbox's processes (boto3 in the
    function works) and closes a host process's connection unanswered."""
    with rootless_engine(["--keep-alive", "60s"]) as eng:
        eng.create("relay", {"app.py": RELAY_PORT}, Network=True, GustBuckets=["mine"])
        status, _, data = eng.invoke("relay", {})
        assert status == 200, data
        out = json.loads(data)
        assert out["read"] == "v", out
        with socket.create_connection(("127.0.0.1", out["port"]), timeout=10) as s:
            s.sendall(b"GET /s3/mine/k HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                answer = s.recv(100)
            except ConnectionResetError:  # closed with the request unread
                answer = b""
            assert answer == b""  # closed unanswered


def test_the_channel_checks_no_signature_on_an_engine_with_keys(tmp_path):
    """An engine with --access-key: the sandbox's dummy credentials sign
    requests the TCP port would refuse, and the channel serves them."""
    key, secret = "AKIAGUSTCHANNEL", "channel-secret"
    with SignedEngine(tmp_path / "state", credentials=(key, secret),
                      extra_args=["--access-key", key, "--secret-key", secret]) as eng:
        eng.create("signed", {"app.py": RELAY_PORT}, GustBuckets=["mine"])
        status, _, data = eng.invoke("signed", {})
        assert status == 200, data
        assert json.loads(data)["read"] == "v", data
        s3 = boto3.client("s3", endpoint_url=eng.url + "/s3", region_name="us-east-1",
                          aws_access_key_id="gust-sandbox", aws_secret_access_key="gust-sandbox",
                          config=Config(retries={"max_attempts": 0}))
        assert error_code(lambda: s3.get_object(Bucket="mine", Key="k")) == "InvalidAccessKeyId"


def test_gust_deploy_bucket_sets_the_grants(engine, buckets, fname, tmp_path):
    """`gust deploy --bucket` (repeatable) sets GustBuckets, `gust info` shows
    them, a redeploy without --bucket keeps them, and a bad name is refused
    naming it."""
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    run_gust(engine, "deploy", fname, str(tmp_path), "--handler", "app.handler",
             "--bucket", RO + ":ro", "--bucket", DATA, cwd=tmp_path)
    status, data = engine.get("/2015-03-31/functions/%s/configuration" % fname)
    assert json.loads(data)["GustBuckets"] == [DATA, RO + ":ro"], data
    run_gust(engine, "deploy", fname, str(tmp_path), cwd=tmp_path)
    info = run_gust(engine, "info", fname, cwd=tmp_path).stdout
    assert "buckets:       %s, %s:ro" % (DATA, RO) in info, info
    bad = run_gust(engine, "deploy", fname, str(tmp_path), "--bucket", "No_Such",
                   cwd=tmp_path, check=False)
    assert bad.returncode != 0 and "'No_Such'" in bad.stderr, (bad.stdout, bad.stderr)


ENDPOINTS = """
import os

def handler(event, context):
    return [os.environ.get("GUST_ENDPOINT"), os.environ.get("GUST_S3_ENDPOINT")]
"""


def test_a_guarded_networked_sandbox_gets_no_relay(engine, fname):
    """Under full isolation the loopback guard closes 127.0.0.1 to a sandbox
    with network=True: it is offered the socket, not a relay it could not
    reach."""
    if os.geteuid() != 0:
        pytest.skip("needs full isolation (root), where the guard is")
    engine.create(fname, {"app.py": ENDPOINTS}, Network=True)
    status, _, data = engine.invoke(fname, {})
    assert status == 200, data
    assert json.loads(data) == ["unix://" + CHANNEL, None], data


def test_a_function_without_grants_gets_no_relay(engine, fname):
    """The relay is for sandboxes that may reach a bucket: a function with no
    grants (most of them) pays no socket or thread for it at its cold start,
    and still has the channel."""
    engine.create(fname, {"app.py": ENDPOINTS})
    status, _, data = engine.invoke(fname, {})
    assert status == 200, data
    assert json.loads(data) == ["unix://" + CHANNEL, None], data
    status, _, data = engine.request(
        "PUT", "/2015-03-31/functions/%s/configuration" % fname, {"GustBuckets": [DATA]})
    assert status == 200, data
    status, _, data = engine.invoke(fname, {})
    assert status == 200 and json.loads(data)[1].startswith("http://127.0.0.1:"), data
