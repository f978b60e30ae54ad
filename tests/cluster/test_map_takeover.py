"""Cluster step 5b (docs/CLUSTER.md, "Step 5b as built"): a map job survives the death of
the node that owns it. The client is given every node (url="A,B,C"); it submits to n1,
which owns the job and records it (its inputs, then its results in batches) in PostgreSQL.
After kill -9 of n1, n2 or n3 sees n1 dead in the membership, takes the job over (exactly
one wins), reloads it and runs the tasks without a stored result; the client's results
stream moves to another node and resumes after the results stored (docs/MAP.md, "Reading
results in a cluster")."""
import os
import signal
import sys
import time

import async_helpers
import cloudpickle

import gust
from async_helpers import stored_results, wait_stored, where
from gust_e2e import TEST_LEASE_ARGS

cloudpickle.register_pickle_by_value(async_helpers)
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_map_survives_kill_9_of_its_owner(cluster):
    _, nodes = cluster(3, ("--keep-alive", "30s") + TEST_LEASE_ARGS)
    n = 60
    ex = gust.FunctionExecutor(url=",".join(e.url for e in nodes), show_progress=False,
                               concurrency=2)
    fs = ex.map(where, [(x, 0.5) for x in range(n)])
    deadline = time.time() + 60
    while sum(f.done() for f in fs) < 8 and time.time() < deadline:
        time.sleep(0.1)
    assert 8 <= sum(f.done() for f in fs) < n, "kill n1 mid-map"
    nodes[0].proc.send_signal(signal.SIGKILL)
    nodes[0].proc.wait()

    results = ex.get_result(fs, timeout=120)
    assert [r[0] for r in results] == list(range(n)), results
    # Exactly one survivor took the job over (after n1's lease and a heartbeat's read).
    logs = {name: open(e.log_path, errors="replace").read()
            for name, e in (("n2", nodes[1]), ("n3", nodes[2]))}
    took = [name for name, log in logs.items() if "taken over by " + name in log]
    assert len(took) == 1, logs
    # Each result once: the stream every node serves is seq 1..n over each task once.
    job_id = fs[0].job_id
    wait_stored([e.url for e in nodes[1:]], job_id, n)
    for e in nodes[1:]:
        stream = stored_results(e.url, job_id)
        assert [s for s, _ in stream] == list(range(1, n + 1)), stream
        assert sorted(i for _, i in stream) == list(range(n)), stream


def slow_on_n1(x):
    # The owner's own sessions are slow, the other nodes' fast: the first results the client
    # gets are tasks the helpers ran, not the first tasks by index, which are the first a
    # node that takes the job over runs again.
    time.sleep(2.0 if os.environ.get("GUST_NODE") == "n1" else 0.05)
    return x


def test_a_client_that_saw_unstored_results_gets_each_task_once_after_a_takeover(cluster):
    # --map-store-interval 1h: n1 stores nothing while the job runs, so every result the
    # client has when n1 dies was streamed before it was stored. The node that takes the job
    # over runs every task again and numbers their results from seq 1 in its own order; a
    # client resuming after the last seq it saw would skip the tasks that node ran first.
    _, nodes = cluster(3, ("--keep-alive", "30s", "--cluster-lease", "4s",
                           "--map-store-interval", "1h"))
    n = 40
    ex = gust.FunctionExecutor(url=",".join(e.url for e in nodes), show_progress=False,
                               concurrency=2)
    fs = ex.map(slow_on_n1, range(n))
    deadline = time.time() + 60
    while sum(f.done() for f in fs) < 8 and time.time() < deadline:
        time.sleep(0.05)
    assert 8 <= sum(f.done() for f in fs) < n, "kill n1 mid-map"
    job_id = fs[0].job_id
    assert stored_results(nodes[1].url, job_id) == [], "n1 stored results: the test needs none"
    nodes[0].proc.send_signal(signal.SIGKILL)
    nodes[0].proc.wait()

    assert ex.get_result(fs, timeout=60) == list(range(n))
    wait_stored([e.url for e in nodes[1:]], job_id, n)
    for e in nodes[1:]:
        stream = stored_results(e.url, job_id)
        assert [s for s, _ in stream] == list(range(1, n + 1)), stream
        assert sorted(i for _, i in stream) == list(range(n)), stream
