"""Function changes across nodes (docs/CLUSTER.md, "Function changes across
nodes"): a change to a function made through one node reaches every other
node's caches (what the function resolves to, its warm sandboxes) within
milliseconds, by the change feed (src/engine/function_feed.h): new code,
configuration, aliases, concurrency and deletion. A node whose listening
session was killed still catches up (the feed's probe reads the table)."""
import base64
import json
import time

from gust_e2e import make_zip, psql

CODE = """import os
def handler(event, context):
    return {"code": "CODE", "node": os.environ["GUST_NODE"],
            "colour": os.environ.get("COLOUR", ""), "version": context.function_version}
"""


def code(tag):
    return {"app.py": CODE.replace("CODE", tag)}


def answer(node, name, qualifier=None):
    status, _, body = node.invoke(name, {}, qualifier=qualifier)
    assert status == 200, (status, body)
    return json.loads(body)


def until(check, timeout=5.0):
    """Polls check() until it is truthy; returns the seconds it took."""
    started = time.time()
    while time.time() - started < timeout:
        if check():
            return time.time() - started
        time.sleep(0.005)
    raise AssertionError(f"not within {timeout} s")


def update_code(node, name, files):
    body = {"ZipFile": base64.b64encode(make_zip(files)).decode()}
    status, _, data = node.request("PUT", f"/2015-03-31/functions/{name}/code", body)
    assert status == 200, (status, data)


def test_new_code_and_configuration_reach_a_node_holding_a_warm_sandbox(cluster):
    _, (n1, n2) = cluster(2)
    n1.create("f", code("v1"))
    assert answer(n2, "f")["code"] == "v1"  # n2 now has v1 warm and cached
    assert answer(n2, "f")["code"] == "v1"
    update_code(n1, "f", code("v2"))
    took = until(lambda: answer(n2, "f")["code"] == "v2")
    assert took < 2.5, took  # notified, not only the 2 s probe
    # Configuration through n2 reaches n1.
    answer(n1, "f")
    status, _, data = n2.request("PUT", "/2015-03-31/functions/f/configuration",
                                 {"Environment": {"Variables": {"COLOUR": "blue"}}})
    assert status == 200, data
    until(lambda: answer(n1, "f")["colour"] == "blue")
    # Every answer from here on is the new one, wherever it runs.
    for node in (n1, n2, n1, n2):
        got = answer(node, "f")
        assert (got["code"], got["colour"]) == ("v2", "blue"), got


def test_aliases_concurrency_and_deletion_reach_the_other_node(cluster):
    _, (n1, n2) = cluster(2)
    n1.create("g", code("one"))
    status, _, data = n1.request("POST", "/2015-03-31/functions/g/versions", {})
    assert status == 201, data
    update_code(n1, "g", code("two"))
    status, _, data = n1.request("POST", "/2015-03-31/functions/g/versions", {})
    assert status == 201, data
    status, _, data = n1.request("POST", "/2015-03-31/functions/g/aliases",
                                 {"Name": "live", "FunctionVersion": "1"})
    assert status == 201, data
    assert answer(n2, "g", "live")["code"] == "one"  # resolved and cached on n2
    status, _, data = n1.request("PUT", "/2015-03-31/functions/g/aliases/live",
                                 {"FunctionVersion": "2"})
    assert status == 200, data
    until(lambda: answer(n2, "g", "live")["code"] == "two")

    # Concurrency 0 through n2: n1 throttles at once, as n2 does.
    assert answer(n1, "g")["code"] == "two"
    status, _, data = n2.request("PUT", "/2017-10-31/functions/g/concurrency",
                                 {"ReservedConcurrentExecutions": 0})
    assert status == 200, data
    until(lambda: n1.invoke("g", {})[0] == 429)

    # Deleted through n1: n2, which has it cached and warm, answers 404.
    status, _, data = n1.request("DELETE", "/2015-03-31/functions/g")
    assert status == 204, data
    until(lambda: n2.invoke("g", {})[0] == 404)
    status, _, body = n2.invoke("g", {})
    assert status == 404 and b"Function not found" in body, body


def test_a_node_whose_listening_session_was_killed_still_catches_up(cluster):
    db, (n1, n2) = cluster(2)
    n1.create("h", code("old"))
    assert answer(n2, "h")["code"] == "old"
    # Every session listening for changes (one per node) dies; nothing notifies them of
    # what is written before they listen again.
    killed = psql(db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                      "WHERE application_name = 'gust function changes'")
    assert int(killed) >= 2, killed
    update_code(n1, "h", code("new"))
    took = until(lambda: answer(n2, "h")["code"] == "new", timeout=8)
    assert took < 6, took
    # Listening again: the next change is quick.
    update_code(n1, "h", code("newer"))
    until(lambda: answer(n2, "h")["code"] == "newer", timeout=2.5)
    assert "reading function changes failed" in n2.log() or took < 2.5
