"""Helpers of the async and partition cluster tests (test_async_*.py,
test_netns_*.py): functions that say which node ran them, async accepts over
HTTP, event records and leases read from any node or from PostgreSQL itself,
and a node's logs."""
import json
import os
import time

from gust_e2e import psql

from gust import wire
from gust.transport import Transport

# Sleeps event["sleep"] seconds and says where it ran: the node's name
# (GUST_NODE) shows which node executed an event.
WHERE = ("import os, time\n"
         "def handler(event, context):\n"
         "    time.sleep(event.get('sleep', 0))\n"
         "    return {'node': os.environ.get('GUST_NODE'), 'i': event.get('i')}\n")


# Each run leaves a side effect where it ran: two lines of the function's log
# on that node (a sandbox's own /tmp is private, its log is not).
SIDE = """import os, time
def handler(event, context):
    node = os.environ["GUST_NODE"]
    print("side-effect begin", context.aws_request_id, node, flush=True)
    time.sleep(event.get("sleep", 0))
    print("side-effect end", context.aws_request_id, node, flush=True)
    return {"node": node, "i": event.get("i")}
"""


def where(x, pause):
    """A map task: x after pause seconds, and the node that ran it."""
    time.sleep(pause)
    return x, os.environ.get("GUST_NODE")


def function_log(eng, function):
    """The function's log lines on eng's node (<state dir>/logs/FUNCTION.log)."""
    try:
        with open(os.path.join(eng.state_dir, "logs", function + ".log"), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for_log(eng, text, timeout):
    """Waits until eng's engine log has text; AssertionError with the log after timeout s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in eng.log():
            return
        time.sleep(0.2)
    raise AssertionError(f"{eng.name} never logged {text!r}:\n{eng.log()}")


def log_time(eng, text):
    """The timestamp of eng's first engine log line with text ("2026-12-08T00:25:21.123",
    local time: comparable as strings between engines of one machine)."""
    for line in eng.log().splitlines():
        if text in line:
            return line.split(" ", 1)[0]
    raise AssertionError(f"{eng.name} never logged {text!r}:\n{eng.log()}")


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


def records(eng, ids):
    """{id: record} of the events ids, as eng serves them."""
    return {i: record(eng, i) for i in ids}


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


def accept_until_leased(db, via, node, run_s, count=9, timeout=20):
    """Accepts count events of "side" sleeping run_s each through engine via, and waits until
    node holds leases on some and has started them: (every id, the ids leased to node)."""
    ids = [accept(via, "side", {"i": i, "sleep": run_s}) for i in range(count)]
    deadline = time.time() + timeout
    while time.time() < deadline and not leased_to(db, node):
        time.sleep(0.05)
    time.sleep(0.5)  # node starts them
    victims = leased_to(db, node)
    assert victims, f"{node} never leased an event"
    return ids, victims


def finished_elsewhere(via, ids, victims, cut_node, cut_at, lease_s, run_s):
    """Waits until every event of ids succeeded (read through via) and checks that the
    victims (cut_node's) ran on another node within a lease, a beat and a run of cut_at:
    (the events' records, {victim: seconds from the cut to its end})."""
    done = wait_all_finished(via, ids, timeout=lease_s + run_s + 15)
    assert {d["Status"] for d in done.values()} == {"succeeded"}, done
    took = {}
    for i in victims:
        assert done[i]["Result"]["node"] != cut_node, done[i]
        took[i] = done[i]["FinishedMs"] / 1000 - cut_at
        assert took[i] <= lease_s + 1 + run_s + 4, (i, took[i])
    return done, took


def invocation_counts(eng, name):
    """{request id: how many runs were recorded} of function name (records of every node)."""
    status, data = eng.get(f"/v1/invocations?function={name}&limit=100000")
    assert status == 200, data
    counts = {}
    for rec in json.loads(data)["invocations"]:
        counts[rec["request_id"]] = counts.get(rec["request_id"], 0) + 1
    return counts


def stored_results(url, job_id):
    """Every result of a map job as the node at url serves it (after=0): [(seq, index)]."""
    status, data = Transport(url).request("GET", "/v1/jobs/%s/results?after=0" % job_id)
    assert status == 200, (status, data[:300])
    out, pos = [], 0
    while pos < len(data):
        seq, index, _, meta_len, data_len = wire.RESULT_ROUTE.unpack_from(data, pos)
        out.append((seq, index))
        pos += wire.RESULT_HEAD_BYTES + meta_len + data_len
    return out


def wait_stored(urls, job_id, n, timeout=10):
    """Waits until every node of urls serves n results of the job: a job's owner streams
    results before it stores them (the last ones up to --map-store-interval after its end),
    and a node that does not own the job serves the stored ones."""
    deadline = time.time() + timeout
    while (any(len(stored_results(url, job_id)) < n for url in urls)
           and time.time() < deadline):
        time.sleep(0.1)
