"""A map job and the node that owns it (docs/CLUSTER.md, "Step 5b as built" and "Step 6 as
built"): a draining node sends a client's new job to an up node; a job's status and cancel
through another node are the owner's (forwarded to it), and answered from the job's row, or
refused naming the owner, when the owner is dead; a dead owner's job is taken over about a
lease after its death (the survivor reads the nodes afresh when the owner's lease runs out,
rather than a heartbeat and a sweep later). A node just started forwards like any other: it
reads the membership before it serves, not at its first heartbeat."""
import json
import os
import signal
import sys
import time

import cloudpickle

import gust
from gust_e2e import cluster_node

cloudpickle.register_pickle_by_value(sys.modules[__name__])

LEASE_S = 4
ARGS = ("--keep-alive", "30s", "--cluster-lease", "%ds" % LEASE_S)


def where(x, pause):
    time.sleep(pause)
    return x, os.environ.get("GUST_NODE")


def describe(eng, job_id):
    status, data = eng.get("/v1/jobs/" + job_id)
    assert status == 200, (status, data)
    return json.loads(data)


def cancel(eng, job_id):
    status, _, data = eng.request("POST", "/v1/jobs/%s/cancel" % job_id, "{}")
    return status, data.decode(errors="replace")


def wait_for(what, check, timeout_s=30, every_s=0.1):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every_s)
    raise AssertionError("not within %d s: %s" % (timeout_s, what))


def test_a_job_submitted_to_a_draining_node_is_owned_by_an_up_node(cluster):
    _, (n1, n2) = cluster(2, ARGS)
    ex = gust.FunctionExecutor(url=n2.url, show_progress=False, concurrency=1)
    held = ex.map(where, [(0, 4.0)])  # n2 owns it: the drain waits for it
    status, _, data = n1.request("POST", "/v1/nodes/n2/drain")
    assert status == 200, data
    wait_for("n2 reads itself draining", lambda: "node n2 is draining" in n2.log())

    sent = ex.map(where, [(1, 0.1), (2, 0.1)])
    job_id = sent[0].job_id
    # Through n2 the status is forwarded to the owner, whose own answer carries the counts.
    doc = describe(n2, job_id)
    assert doc["Owner"] == "n1", doc
    assert "Done" in doc and "Note" not in doc, doc
    assert [tuple(r) for r in ex.get_result(sent)] == [(1, "n1"), (2, "n1")]
    # The drain still finishes what n2 held, then n2 leaves.
    assert [tuple(r) for r in ex.get_result(held)] == [(0, "n2")]
    assert n2.proc.wait(timeout=30) == 0


def test_status_and_cancel_through_another_node_and_a_takeover_within_a_lease(cluster, tmp_path):
    db, (n1, n2) = cluster(2, ARGS)
    ex = gust.FunctionExecutor(url=n1.url, show_progress=False, concurrency=1)

    # A live owner: n2 forwards both to n1.
    fs = ex.map(where, [(x, 0.5) for x in range(40)])
    job_id = fs[0].job_id
    wait_for("a first result", lambda: any(f.done() for f in fs))
    # A node just started forwards at once, long before its first heartbeat (a fifth of its
    # 20 s lease): it read the membership before it served.
    with cluster_node(tmp_path, db, "n3", ("--keep-alive", "30s", "--cluster-lease", "20s")) as n3:
        doc = describe(n3, job_id)
    assert "Note" not in doc and doc["Owner"] == "n1", doc
    doc = describe(n2, job_id)
    assert "Note" not in doc, doc
    assert doc["Owner"] == "n1" and doc["State"] == "running", doc
    assert doc["Done"] >= 1 and "Running" in doc, doc
    status, body = cancel(n2, job_id)
    assert status == 200 and json.loads(body)["Cancelled"] is True, (status, body)
    done = wait_for("the cancelled job done", lambda: (lambda d: d if d["State"] == "done" else
                                                       None)(describe(n2, job_id)))
    assert done["Owner"] == "n1" and done["Cancelled"] > 0, done

    # A dead owner: the status is the row's, saying what it cannot know; cancel names n1.
    fs = ex.map(where, [(x, 0.5) for x in range(40)])
    job_id = fs[0].job_id
    wait_for("a first result", lambda: any(f.done() for f in fs))
    n1.proc.send_signal(signal.SIGKILL)
    killed = time.time()
    n1.proc.wait()
    doc = describe(n2, job_id)
    if doc["Owner"] == "n1":  # (unless n2 took it over already, on a very slow machine)
        assert "owner n1" in doc["Note"] and "known only to the owner" in doc["Note"], doc
        assert "Done" not in doc, doc
        status, body = cancel(n2, job_id)
        assert status == 503 and "owner n1" in body, (status, body)

    # n2 takes it over once n1's lease has run out, not a heartbeat and a sweep later.
    wait_for("n2 owns the job", lambda: describe(n2, job_id)["Owner"] == "n2", timeout_s=30,
             every_s=0.05)
    took_s = time.time() - killed
    print("taken over %.2f s after the kill (lease %d s)" % (took_s, LEASE_S))
    assert took_s < LEASE_S + 1.5, took_s
    # Once loaded there, n2 answers and cancels it as its owner.
    wait_for("n2 runs the job", lambda: "Done" in describe(n2, job_id))
    status, body = cancel(n2, job_id)
    assert status == 200, (status, body)
    wait_for("the job done on n2", lambda: describe(n2, job_id)["State"] == "done")


def size_of(b, pause=0.0):
    time.sleep(pause)
    return len(b)


def test_a_read_through_another_node_right_after_the_201_finds_the_job(cluster):
    """The 201 comes before the job's row is written (a few milliseconds; tens for the ~8 MB
    of inputs here): a status, results or delete through another node in between is asked of
    the node the job id names, never a 404."""
    _, (n1, n2) = cluster(2, ARGS)
    ex = gust.FunctionExecutor(url=n1.url, show_progress=False)
    warm = ex.map(size_of, [b"x"])
    # (n2 knows where n1 is once its first heartbeat has read the membership; until then a
    # job without a row is a 404 there, one with a row is the row with a note.)

    def forwarded():
        status, data = n2.get("/v1/jobs/" + warm[0].job_id)
        return status == 200 and "Note" not in json.loads(data)

    wait_for("n2 reads n1 live", forwarded, timeout_s=10)
    assert ex.get_result(warm) == [1]
    inputs = [bytes(4096)] * 2000
    for _ in range(3):
        fs = ex.map(size_of, inputs)
        job_id = fs[0].job_id
        assert job_id.endswith("-n1"), job_id  # the id names the node that accepted it
        doc = describe(n2, job_id)
        assert doc["JobId"] == job_id and doc["Owner"] == "n1", doc
        status, data = n2.get("/v1/jobs/%s/results?after=0&wait=0" % job_id)
        assert status == 200, (status, data[:300])
        assert ex.get_result(fs) == [4096] * len(inputs)

    fs = ex.map(size_of, [(b, 0.2) for b in inputs])
    job_id = fs[0].job_id
    status, _, data = n2.request("DELETE", "/v1/jobs/" + job_id)
    assert status == 204, (status, data[:300])
    # Gone on both nodes, also once n1's record has committed (its delete followed it).
    time.sleep(0.5)
    for eng in (n1, n2):
        status, data = eng.get("/v1/jobs/" + job_id)
        assert status == 404, (eng.url, status, data[:300])
