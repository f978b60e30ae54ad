"""Cluster step 3 (docs/CLUSTER.md, "Step 3 as built"): a sync invoke or a web
request that finds no idle sandbox on the node it reached runs on a node that
has one, as the heartbeats' warm counts tell; GUST_NODE in the function's answer
tells where it ran. A forwarded request is not forwarded again, the forwarded
mark needs the cluster's credential, and a node killed -9 between heartbeats
costs a connection refused and a local run, not the call."""
import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from gust_e2e import (GUST, REPO, TEST_LEASE_ARGS, TEST_LEASE_S, Engine, SignedEngine, free_port,
                      make_certificate, new_cluster_database, psql, run_gust)

sys.path.insert(0, os.path.join(REPO, "python"))

from gust import transport  # noqa: E402 -- python/ is on the path from here

# A short lease: heartbeats every fifth of it (src/engine/cluster_node.h), so the waits for
# a beat to carry a warm count are short.
ARGS = ("--keep-alive", "30s") + TEST_LEASE_ARGS
HEARTBEAT_S = TEST_LEASE_S / 5

WHERE = """import os, time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError("asked to fail on " + os.environ["GUST_NODE"])
    print("ran on", os.environ["GUST_NODE"])
    return {"node": os.environ["GUST_NODE"], "echo": event}
"""

WEB = """import os
def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "text/plain"},
            "body": os.environ["GUST_NODE"] + " " + event["rawPath"]}
"""


def nodes_seen(node):
    status, body = node.get("/v1/nodes")
    assert status == 200, body
    return {n["name"]: n for n in json.loads(body)["nodes"]}


def wait_warm(asker, holder, function, version="$LATEST", timeout=15):
    """Returns once asker's in-memory copy of the heartbeats has holder's idle
    sandbox of function: the row shows it, then one more beat of asker reads it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        warm = nodes_seen(asker)[holder]["warm"]
        if warm.get(function, {}).get(version, 0) > 0:
            time.sleep(HEARTBEAT_S + 0.5)
            return
        time.sleep(0.2)
    raise AssertionError(f"{holder}'s warm {function} never showed: {nodes_seen(asker)}")


def ran_on(node, function, payload=None, **kwargs):
    status, headers, body = node.invoke(function, payload or {}, **kwargs)
    assert status == 200, (status, body, node.log())
    return json.loads(body)["node"], headers, body


def cluster_key(db):
    row = psql(db, "SELECT access_key_id || ' ' || secret_access_key FROM cluster_credentials")
    key, secret = row.split()
    return key, secret


def signed(node, credentials, method, path, body, headers):
    data = body.encode()
    host = f"127.0.0.1:{node.port}"
    out = dict(headers, Host=host)
    out.update(transport.sign(credentials, method, path, host, hashlib.sha256(data).hexdigest(),
                              headers))
    return Engine.request(node, method, path, data, out)  # as signed here, not re-signed


def warm_here(db, node, function, payload=None):
    """Runs function once on node itself, leaving it a warm sandbox: a call through the API
    that finds none may cold-start on a node whose heartbeat read a lower load (all nodes
    share this machine, so which one is a matter of when each sampled it). Marked forwarded
    and signed with the cluster's key, it runs where it lands."""
    path = "/2015-03-31/functions/%s/invocations" % function
    status, _, body = signed(node, cluster_key(db), "POST", path, json.dumps(payload or {}),
                             {"x-gust-forwarded": "test"})
    assert status == 200, (status, body)
    return json.loads(body)


def kill9(node):
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()
    # A SIGKILLed engine leaves its nftables table (src/sandbox/loopback_guard.h).
    subprocess.run(["nft", "delete", "table", "inet", f"gust_{node.port}"], capture_output=True)


def test_a_call_to_a_node_without_a_warm_sandbox_runs_where_one_is(cluster):
    db, (n1, n2) = cluster(2, ARGS)
    n1.create("where", {"app.py": WHERE})
    assert warm_here(db, n2, "where")["node"] == "n2"  # n2 warm; n1 has never run it
    wait_warm(n1, "n2", "where")
    assert nodes_seen(n1)["n1"]["warm"] == {}
    for i in range(3):
        node, headers, body = ran_on(n1, "where", {"i": i}, tail=True)
        assert node == "n2", body
        # The answer is what a local invoke returns: payload, version, log tail.
        assert json.loads(body)["echo"] == {"i": i}
        assert headers["x-amz-executed-version"] == "$LATEST"
        assert "x-amzn-requestid" in headers
        tail = base64.b64decode(headers["x-amz-log-result"]).decode()
        assert "ran on n2" in tail and "REPORT RequestId" in tail, tail
    # A function error comes back as it does locally.
    status, headers, body = n1.invoke("where", {"fail": True})
    assert status == 200 and headers.get("x-amz-function-error") == "Unhandled", (headers, body)
    error = json.loads(body)
    assert error["errorType"] == "ValueError" and "on n2" in error["errorMessage"], error
    # n1 never ran it: its row still shows no sandbox of it.
    time.sleep(HEARTBEAT_S + 0.5)
    assert nodes_seen(n1)["n1"]["warm"] == {}
    assert nodes_seen(n1)["n2"]["warm"]["where"]["$LATEST"] >= 1
    # `gust cluster status` shows each node's warm (idle) sandboxes.
    out = run_gust(n1, "cluster", "status", cwd=n1.state_dir).stdout
    assert "WARM" in out.splitlines()[0], out
    # From the right: ... WARM, the heartbeat's age ("1.2s ago"), the version.
    warm = {row.split()[0]: row.split()[-4] for row in out.splitlines()[1:]
            if row.startswith("n")}
    assert warm["n1"] == "0" and int(warm["n2"]) >= 1, out


def test_a_forwarded_request_is_not_forwarded_again(cluster):
    db, (n1, n2) = cluster(2, ARGS)
    n1.create("where", {"app.py": WHERE})
    warm_here(db, n2, "where")
    wait_warm(n1, "n2", "where")
    # Marked forwarded (as n2 would) and signed with the cluster's credential: n1 runs it
    # itself although n2 has the warm sandbox.
    path = "/2015-03-31/functions/where/invocations"
    status, _, body = signed(n1, cluster_key(db), "POST", path, "{}",
                             {"x-gust-forwarded": "n2"})
    assert status == 200 and json.loads(body)["node"] == "n1", body


def test_the_forwarded_mark_needs_the_cluster_credential(cluster):
    db, (n1, n2) = cluster(2, ARGS)
    n1.create("where", {"app.py": WHERE})
    path = "/2015-03-31/functions/where/invocations"
    status, _, body = n1.request("POST", path, "{}", {"x-gust-forwarded": "n2"})
    assert status == 403 and b"x-gust-forwarded" in body, body
    status, _, body = signed(n1, ("AKIDNOTTHECLUSTERS1", "not-the-secret"), "POST", path, "{}",
                             {"x-gust-forwarded": "n2"})
    assert status == 403 and b"cluster's credential" in body, body
    # The web gateway's path is checked the same way (before routing).
    status, _, body = n1.request("GET", "/web/where/x", None, {"x-gust-forwarded": "n2"})
    assert status == 403, body
    # Without the mark nothing changes for an unsigned client (these engines have no keys):
    # the call is taken (where it runs is the router's choice).
    ran_on(n1, "where")


def test_a_node_killed_between_heartbeats_costs_a_refused_connection_not_the_call(cluster):
    db, (n1, n2) = cluster(2, ARGS)
    n1.create("where", {"app.py": WHERE})
    warm_here(db, n2, "where")
    wait_warm(n1, "n2", "where")
    kill9(n2)
    # n1's copy still shows n2 up and warm: the connection is refused, so nothing was
    # delivered and n1 runs the call itself.
    started = time.time()
    node, _, body = ran_on(n1, "where", {"after": "kill"})
    assert node == "n1", body
    assert time.time() - started < 10
    assert "could not be reached" in n1.log()


def test_a_node_killed_during_a_forwarded_call_is_a_502_naming_it_not_a_rerun(cluster):
    db, (n1, n2) = cluster(2, ARGS)
    n1.create("where", {"app.py": WHERE})
    warm_here(db, n2, "where")
    wait_warm(n1, "n2", "where")
    answer = {}

    def call():
        answer["started"] = time.time()
        answer["reply"] = n1.invoke("where", {"sleep": 20})

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(2)  # delivered to n2 and running there
    kill9(n2)
    killed = time.time()
    caller.join(30)
    status, _, body = answer["reply"]
    assert status == 502, (status, body)
    assert b"cluster node n2" in body and n2.url.encode() in body, body
    assert time.time() - killed < 5  # fails fast, not after the function's 20 s
    # It did not run again on n1: n1 has no sandbox of it.
    time.sleep(HEARTBEAT_S + 0.5)
    assert nodes_seen(n1)["n1"]["warm"] == {}


def test_the_web_gateway_forwards(cluster):
    db, (n1, n2) = cluster(2, ARGS)
    n1.create("site", {"app.py": WEB})
    assert warm_here(db, n2, "site", {"rawPath": "/first"})["body"] == "n2 /first"
    wait_warm(n1, "n2", "site")
    status, headers, body = n1.request("GET", "/web/site/hello?x=1")
    assert status == 200 and body == b"n2 /hello", (status, headers, body)
    assert headers["content-type"] == "text/plain"
    # The access line is written where it ran.
    status, _, _ = n2.request("GET", "/v1/health")
    assert status == 200


def test_boto3_through_any_node(cluster):
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config
    db, (n1, n2, n3) = cluster(3, ARGS)
    n1.create("where", {"app.py": WHERE})
    warm_here(db, n2, "where")
    wait_warm(n1, "n2", "where")
    wait_warm(n3, "n2", "where", timeout=5)
    for node in (n1, n3, n2):
        client = boto3.client("lambda", endpoint_url=node.url, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="y",
                              config=Config(retries={"max_attempts": 0}))
        out = client.invoke(FunctionName="where", Payload=b'{"via": "boto3"}', LogType="Tail")
        answer = json.loads(out["Payload"].read())
        assert answer == {"node": "n2", "echo": {"via": "boto3"}}, (node.url, answer)
        assert "ran on n2" in base64.b64decode(out["LogResult"]).decode()
        assert out["ExecutedVersion"] == "$LATEST"


def test_nodes_with_credentials_forward_what_their_clients_signed(pg, tmp_path):
    # The client signs with the engines' key; n1 checks it, then re-signs the forward with
    # the cluster's key, which n2 accepts for a marked request only.
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config
    key, secret = "AKIDCLUSTERTEST00001", "engine-secret"
    db = new_cluster_database(pg)
    n1, n2 = (SignedEngine(os.path.join(str(tmp_path), name), credentials=(key, secret),
                           extra_args=["--cluster", db, "--node-name", name, "--access-key",
                                       key, "--secret-key", secret] + list(ARGS))
              for name in ("n1", "n2"))

    def client(node, secret_key=secret):
        return boto3.client("lambda", endpoint_url=node.url, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key=secret_key,
                            config=Config(retries={"max_attempts": 0}))

    with n1, n2:
        n1.create("where", {"app.py": WHERE})
        assert warm_here(db, n2, "where")["node"] == "n2"
        wait_warm(n1, "n2", "where")
        out = client(n1).invoke(FunctionName="where", Payload=b"{}")
        assert json.loads(out["Payload"].read())["node"] == "n2"
        # A client with a wrong secret is refused by n1 itself, before any forward.
        with pytest.raises(Exception, match="signature"):
            client(n1, "wrong").invoke(FunctionName="where", Payload=b"{}")


def test_nodes_serving_https_trust_peers_through_gust_ca_bundle(pg, tmp_path):
    # Nodes that serve HTTPS advertise https:// URLs; a forward checks the peer's
    # certificate against the engine's $GUST_CA_BUNDLE, as the gust CLI does.
    cert, tls_key = make_certificate(str(tmp_path), "node", "IP:127.0.0.1")
    db = new_cluster_database(pg)
    n1, n2 = (Engine(os.path.join(str(tmp_path), name), tls_ca=cert,
                     env={"GUST_CA_BUNDLE": cert},
                     extra_args=["--cluster", db, "--node-name", name, "--tls-cert", cert,
                                 "--tls-key", tls_key] + list(ARGS))
              for name in ("n1", "n2"))
    with n1, n2:
        assert nodes_seen(n1)["n2"]["advertise"].startswith("https://"), nodes_seen(n1)
        n1.create("where", {"app.py": WHERE})
        assert warm_here(db, n2, "where")["node"] == "n2"
        wait_warm(n1, "n2", "where")
        assert ran_on(n1, "where")[0] == "n2", n1.log()  # forwarded over HTTPS, trusted
    # An unreadable bundle stops `gust up`, naming it, rather than failing every forward.
    out = subprocess.run([GUST, "up", "--cluster", db, "--node-name", "n3", "--port",
                          str(free_port()), "--state-dir", str(tmp_path / "n3")],
                         env=dict(os.environ, GUST_CA_BUNDLE=str(tmp_path / "missing.pem")),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "missing.pem" in out.stderr, out
