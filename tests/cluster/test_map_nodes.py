"""Cluster step 5a (docs/CLUSTER.md, "Step 5a as built"): one map uses every node, and
survives a non-owner node's death. The client calls n1, the job's owner; n2 and n3 are
offered the job and run shares of it in their own sandboxes, pulling chunks from n1.

Tasks return (their input, GUST_NODE), so where each ran is in its result. Per-node
concurrency is small (a map's concurrency bounds each node's share) to keep the sandbox
count of three engines on a small machine modest."""
import os
import signal
import sys
import time

import cloudpickle

import gust
from gust_e2e import TEST_LEASE_ARGS, TEST_LEASE_S

cloudpickle.register_pickle_by_value(sys.modules[__name__])

# The kill and stop tests wait for a node's membership to run out: a short lease.
SHORT_LEASE = ("--keep-alive", "30s") + TEST_LEASE_ARGS


def where(x, pause):
    time.sleep(pause)
    return x, os.environ.get("GUST_NODE")


def run_map(owner, n, pause, concurrency, during=None):
    """Maps where() over range(n) through owner; during(futures) runs while the map
    runs. Returns the results and the job's description."""
    ex = gust.FunctionExecutor(url=owner.url, show_progress=False, concurrency=concurrency)
    fs = ex.map(where, [(x, pause) for x in range(n)])
    if during:
        during(fs)
    results = ex.get_result(fs)
    return results


def check_every_result_once(results, n):
    assert [r[0] for r in results] == list(range(n)), results


def wait_for_node_results(fs, node, at_least, timeout_s=60):
    """Waits until `at_least` finished futures ran on node."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        done = [f.result() for f in fs if f.done()]
        if sum(1 for r in done if r[1] == node) >= at_least:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {at_least} results from {node} in {timeout_s} s")


def test_map_runs_on_every_node_in_order(cluster):
    _, nodes = cluster(3)
    results = run_map(nodes[0], 90, 0.5, concurrency=4)
    check_every_result_once(results, 90)
    ran_on = {r[1] for r in results}
    assert ran_on == {"n1", "n2", "n3"}, ran_on
    # The owner's sessions and the remote ones were torn down with the job.
    assert "offered a share" in open(nodes[1].log_path).read()


def test_map_survives_kill_9_of_a_helper_node(cluster):
    _, nodes = cluster(3, SHORT_LEASE)
    killed_at = []

    def kill_n3(fs):
        wait_for_node_results(fs, "n3", 2)
        nodes[2].proc.send_signal(signal.SIGKILL)  # holding chunks: tasks take 1 s each
        nodes[2].proc.wait()
        killed_at.append(time.time())

    started = time.time()
    results = run_map(nodes[0], 120, 1.0, concurrency=4, during=kill_n3)
    check_every_result_once(results, 120)
    assert {"n1", "n2", "n3"} <= {r[1] for r in results}
    # Its lost chunks came back once its membership went dead (within a lease and a read).
    log = nodes[0].log()
    assert "node n3 left the cluster" in log, log
    assert time.time() - started < 120


def test_map_ignores_a_stale_helper(cluster):
    """A node stopped (SIGSTOP) past its lease loses its chunks to the others; once it
    runs again, its sandboxes' answers for those chunks change nothing."""
    _, nodes = cluster(3, SHORT_LEASE)

    def pause_n3(fs):
        wait_for_node_results(fs, "n3", 2)
        nodes[2].proc.send_signal(signal.SIGSTOP)
        try:
            deadline = time.time() + 3 * TEST_LEASE_S
            while time.time() < deadline and "node n3 left the cluster" not in nodes[0].log():
                time.sleep(0.5)
        finally:
            nodes[2].proc.send_signal(signal.SIGCONT)

    results = run_map(nodes[0], 150, 1.0, concurrency=4, during=pause_n3)
    check_every_result_once(results, 150)
    log = nodes[0].log()
    assert "node n3 left the cluster" in log, log
    # n3's late answers reached the owner and were refused as stale.
    deadline = time.time() + 10
    while "stale call of session" not in nodes[0].log() and time.time() < deadline:
        time.sleep(0.5)
    assert "stale call of session" in nodes[0].log(), nodes[0].log()


def test_cluster_routes_refuse_what_the_cluster_key_did_not_sign(cluster):
    """Only another node, signing with the cluster's credential, reaches the chunk and
    offer routes; an unsigned call (a client, or anything on the network) is refused."""
    _, nodes = cluster(1)
    for path in ("/v1/cluster/jobs/job-x/chunks", "/v1/cluster/jobs/job-x/offer"):
        status, _, body = nodes[0].request("POST", path, b"{}",
                                           {"x-gust-node": "n9", "x-gust-epoch": "1",
                                            "x-gust-session": "s", "x-gust-turn": "yield"})
        assert status == 403, (path, status, body)
