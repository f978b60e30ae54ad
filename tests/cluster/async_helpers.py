"""Helpers of the async cluster tests (test_async_*.py): a function that says
which node ran it, async accepts over HTTP, event records and leases read from
any node or from PostgreSQL itself."""
import json
import time

from gust_e2e import psql

# Sleeps event["sleep"] seconds and says where it ran: the node's name
# (GUST_NODE) shows which node executed an event.
WHERE = ("import os, time\n"
         "def handler(event, context):\n"
         "    time.sleep(event.get('sleep', 0))\n"
         "    return {'node': os.environ.get('GUST_NODE'), 'i': event.get('i')}\n")


def async_invoke(eng, name, payload, timeout=30):
    """(status, headers, body) of an Event invoke of name on eng."""
    return eng.request("POST", f"/2015-03-31/functions/{name}/invocations",
                       json.dumps(payload), {"X-Amz-Invocation-Type": "Event"},
                       timeout=timeout)


def accept(eng, name, payload):
    """Queues one event on eng; returns its request id (asserts a 202)."""
    status, headers, data = async_invoke(eng, name, payload)
    assert status == 202, (status, data)
    return headers["x-amzn-requestid"]


def record(eng, request_id):
    status, data = eng.get(f"/v1/async-invocations/{request_id}")
    assert status == 200, (status, data)
    return json.loads(data)


def wait_all_finished(eng, ids, timeout):
    """{id: record} once every event of ids has an outcome, asked of eng;
    AssertionError naming what is still queued after timeout seconds."""
    deadline = time.time() + timeout
    done = {}
    while time.time() < deadline:
        for i in ids:
            if i not in done:
                doc = record(eng, i)
                if doc["Status"] not in ("queued", "running"):
                    done[i] = doc
        if len(done) == len(ids):
            return done
        time.sleep(0.2)
    missing = [i for i in ids if i not in done]
    raise AssertionError(f"{len(missing)} of {len(ids)} events unfinished after {timeout} s:"
                         f" {missing[:5]}")


def leases(db):
    """{node: count} of the unfinished events leased per node, read from PostgreSQL."""
    out = psql(db, "SELECT lease_node, count(*) FROM events WHERE status = 0 AND "
                   "lease_node <> '' GROUP BY lease_node")
    return {line.split("|")[0]: int(line.split("|")[1]) for line in out.splitlines() if line}


def leased_to(db, node):
    """The ids of the unfinished events node holds a lease on."""
    out = psql(db, f"SELECT id FROM events WHERE status = 0 AND lease_node = '{node}'")
    return [line for line in out.splitlines() if line]


def invocation_counts(eng, name):
    """{request id: how many runs were recorded} of function name (records of every node)."""
    status, data = eng.get(f"/v1/invocations?function={name}&limit=100000")
    assert status == 200, data
    counts = {}
    for rec in json.loads(data)["invocations"]:
        counts[rec["request_id"]] = counts.get(rec["request_id"], 0) + 1
    return counts
