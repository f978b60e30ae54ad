"""Issue 15's partitions beyond a link down (docs/CLUSTER.md, "Partitions as
built"), engines in network namespaces (tests/cluster/netns.py):

- A node cut off from PostgreSQL only (an nftables rule in its namespace; its
  peers and the test still reach it): warm sync invokes through it keep
  working, async accepts and deploys through it answer 503 naming PostgreSQL,
  its membership lapses so the others run its leased events within about a
  lease while it abandons them, the others stop forwarding to it, and once the
  rule is gone it is live again (the next epoch) and serves again; every event
  has one outcome.
- The owner of a map job cut off from PostgreSQL only: it kills the job's
  sandboxes by its own clock before another node takes the job over, and
  rejoins as the next epoch without resuming it.
- The owner of a map job cut off (link down) while the client, given every
  node, reads the results: the job is taken over, the client gets every result
  in order, once; the owner dropped the job at its lapse and, restored, rejoins
  as the next epoch and runs none of its sandboxes.

Leases are short (--cluster-lease 3s) so that each test stays well under 20 s
of waiting."""
import base64
import json
import time

import async_helpers
import cloudpickle

import gust
from async_helpers import (SIDE, WHERE, accept, accept_until_leased, async_invoke,
                           finished_elsewhere, function_log, leases, log_time, records,
                           stored_results, wait_all_finished, wait_for_log, wait_stored, where)
from gust_e2e import make_zip

cloudpickle.register_pickle_by_value(async_helpers)

LEASE_S = 3
ARGS = ("--keep-alive", "60s", "--async-concurrency", "3", "--cluster-lease", f"{LEASE_S}s")


def nodes_seen_by(eng):
    """{name: row} of the membership as eng reads it from PostgreSQL."""
    status, data = eng.get("/v1/nodes")
    assert status == 200, data
    return {n["name"]: n for n in json.loads(data)["nodes"]}


def map_sandboxes(eng, busy):
    """eng's sandboxes of map jobs (functions gust-map-*), only the ones not idle if busy."""
    status, data = eng.get("/v1/sandboxes")
    assert status == 200, data
    return [s for s in json.loads(data)["sandboxes"] if s["function"].startswith("gust-map-")
            and not (busy and s["state"] == "idle")]


def assert_503_naming_postgres(reply, started, limit):
    status, headers, data = reply
    assert status == 503, (status, data)
    assert headers["x-amzn-errortype"] == "ServiceException", headers
    message = json.loads(data)["Message"]
    assert "PostgreSQL database at host" in message, message
    took = time.time() - started
    assert took < limit, f"the 503 took {took:.1f} s"
    return took


def deploy(eng, name, wait_s=30):
    """(status, headers, body) of a CreateFunction of WHERE as name through eng."""
    zipped = base64.b64encode(make_zip({"app.py": WHERE})).decode()
    return eng.request("POST", "/2015-03-31/functions", {
        "FunctionName": name, "Runtime": "python3.11", "Role": "r", "Handler": "app.handler",
        "Code": {"ZipFile": zipped}}, timeout=wait_s)


def test_a_node_cut_off_from_postgres_serves_warm_calls_and_gives_up_its_events(netns_cluster):
    db, (n1, n2, n3) = netns_cluster(3, ARGS)
    n1.create("side", {"app.py": SIDE}, Timeout=30)
    n1.create("where", {"app.py": WHERE}, Timeout=30)
    # Warm on n2 only, right after the deploy through n1: n2 keeps a sandbox and its
    # resolution of `where`, which the deploy's own changes, read by n2's function feed a
    # moment later, must not drop (docs/CLUSTER.md, "Partitions as built"): else the next
    # call through n2 needs PostgreSQL.
    status, _, body = n2.request("POST", "/v1/functions/where/warm", {})
    assert status == 200, body
    status, _, body = n2.invoke("where", {})
    assert status == 200 and json.loads(body)["node"] == "n2", body
    epoch = nodes_seen_by(n1)["n2"]["epoch"]
    run_s = LEASE_S + 2  # longer than a lease: without the abandon n2 would finish them late
    ids, victims = accept_until_leased(db, n1, "n2", run_s)
    netns_cluster.block_postgres(n2)
    cut_at = time.time()
    try:
        # Warm sync invokes through n2 never touch PostgreSQL.
        started = time.time()
        status, _, body = n2.invoke("where", {"i": 1})
        assert status == 200 and json.loads(body)["node"] == "n2", body
        assert time.time() - started < 2, "a warm invoke waited for PostgreSQL"
        # Async accepts and deploys through n2: a 503 naming PostgreSQL, in the time a
        # statement in flight takes to fail (tcp_user_timeout, 4 s) or a connect to time out.
        accept_s = assert_503_naming_postgres(async_invoke(n2, "where", {"i": 2}, timeout=30),
                                              time.time(), 12)
        deploy_s = assert_503_naming_postgres(deploy(n2, "new"), time.time(), 12)

        # The others run n2's events within about a lease (its membership lapsed); n2
        # killed its runs of them by its own clock.
        done, took = finished_elsewhere(n1, ids, victims, "n2", cut_at, LEASE_S, run_s)
        assert {d["Attempts"] for d in done.values()} == {1}, done
        assert "n2" not in leases(db)
        wait_for_log(n2, "running event(s): their leases lapsed", 1)
        time.sleep(max(0.0, cut_at + run_s + 1 - time.time()))
        side_n2 = function_log(n2, "side")
        for i in victims:
            assert f"side-effect end {i} n2" not in side_n2, side_n2

        # n2 left the membership: n1 no longer forwards to it (its sandbox of `where` is
        # the only warm one), it runs the call itself or on n3.
        seen = nodes_seen_by(n1)["n2"]
        assert seen["deadline_in_ms"] < 0, seen
        for _ in range(3):
            started = time.time()
            status, _, body = n1.invoke("where", {"i": 3})
            assert status == 200 and json.loads(body)["node"] in ("n1", "n3"), body
            assert time.time() - started < 10
        # And n2 still serves its warm function.
        status, _, body = n2.invoke("where", {"i": 4})
        assert status == 200 and json.loads(body)["node"] == "n2", body
    finally:
        netns_cluster.unblock_postgres(n2)
    print(f"measured: n2's {len(victims)} events finished elsewhere {min(took.values()):.1f}-"
          f"{max(took.values()):.1f} s after the cut ({run_s} s runs); its 503s took "
          f"{accept_s:.1f} s (accept) and {deploy_s:.1f} s (deploy)")

    # Back: n2 is live again, its late writes change nothing, it accepts and deploys again.
    wait_for_log(n2, "membership is live again", 15)
    time.sleep(2 * LEASE_S / 5)  # two beats: whatever n2 had to write is written
    assert records(n1, ids) == {i: done[i] for i in ids}
    assert "n2" not in leases(db)
    back = nodes_seen_by(n1)["n2"]
    assert back["state"] == "up" and back["deadline_in_ms"] > 0, back
    # Back as the next epoch (its lease had lapsed): whatever it held under the old one
    # stays fenced by it ("Membership and fencing").
    assert back["epoch"] == epoch + 1, (epoch, back)
    wait_for_log(n2, f"rejoined as epoch {epoch + 1}", 1)
    # Each event has one successful run on record; an event n2 abandoned also has n2's run,
    # killed midway (an ExitError record: it did run, up to the abandon).
    runs = {}
    for rec in json.loads(n1.get("/v1/invocations?function=side&limit=1000")[1])["invocations"]:
        runs.setdefault(rec["request_id"], []).append(rec["outcome"])
    for i in ids:
        assert runs[i].count("Success") == 1, (i, runs[i])
        assert len(runs[i]) == 1 or (i in victims and len(runs[i]) == 2), (i, runs[i])
    status, _, body = deploy(n2, "new")
    assert status == 201, body
    more = [accept(n2, "side", {"i": 100 + i}) for i in range(3)]
    again = wait_all_finished(n3, more, timeout=30)
    assert {d["Status"] for d in again.values()} == {"succeeded"}, again


def map_running_on_n1(nodes, n, task_s, concurrency, done_first):
    """Submits n tasks of task_s seconds to the cluster (n1, the first URL, owns the job) and
    returns (executor, futures, job id) once done_first have finished and n1 still runs some."""
    ex = gust.FunctionExecutor(url=",".join(e.url for e in nodes), show_progress=False,
                               concurrency=concurrency)
    fs = ex.map(where, [(x, task_s) for x in range(n)])
    deadline = time.time() + 60
    while sum(f.done() for f in fs) < done_first and time.time() < deadline:
        time.sleep(0.1)
    assert done_first <= sum(f.done() for f in fs) < n, "cut n1 mid-map"
    assert map_sandboxes(nodes[0], busy=True), "n1 runs none of the job's sandboxes"
    return ex, fs, fs[0].job_id


def test_a_map_owner_cut_off_from_postgres_stops_its_tasks_before_the_takeover(netns_cluster):
    nodes = netns_cluster(3, ARGS)[1]
    n1, n2, n3 = nodes
    epoch = nodes_seen_by(n2)["n1"]["epoch"]
    # Enough work that the job, unstopped, runs on n1 and its helpers well past n1's lease.
    n = 36
    ex, fs, job_id = map_running_on_n1(nodes, n, 1.0, concurrency=2, done_first=4)
    netns_cluster.block_postgres(n1)  # the owner; the test still reaches its API
    cut_at = time.time()
    try:
        # By its own clock n1 stops the job's tasks before its lease ends (a lease after its
        # last good beat, which began before the cut): without that it runs the job out.
        while map_sandboxes(n1, busy=True) and time.time() < cut_at + 2 * LEASE_S:
            time.sleep(0.1)
        stopped_s = time.time() - cut_at
        assert not map_sandboxes(n1, busy=True), n1.get("/v1/sandboxes")[1]
        assert stopped_s < LEASE_S + 0.5, f"n1's sandboxes ran {stopped_s:.1f} s after the cut"
        results = ex.get_result(fs, timeout=60)
        ended_s = time.time() - cut_at
        assert [r[0] for r in results] == list(range(n)), results
        took = [e for e in (n2, n3) if f"taken over by {e.name}" in e.log()]
        assert len(took) == 1, (n2.log(), n3.log())
        # ... and before another node took the job over (the nodes share a clock).
        dropped = log_time(n1, f"map job {job_id}: dropped here: this node's membership lease")
        taken = log_time(took[0], f"taken over by {took[0].name}")
        assert dropped < taken, (dropped, taken, n1.log())
        assert not map_sandboxes(n1, busy=True), n1.get("/v1/sandboxes")[1]
    finally:
        netns_cluster.unblock_postgres(n1)
    print(f"measured: n1's sandboxes stopped {stopped_s:.1f} s after the cut, the map ended "
          f"{ended_s:.1f} s after it")

    # Back as the next epoch; the job is not resumed here, and every node serves its stream
    # once, in order.
    wait_for_log(n1, f"rejoined as epoch {epoch + 1}", 15)
    back = nodes_seen_by(n2)["n1"]
    assert back["epoch"] == epoch + 1 and back["state"] == "up", back
    time.sleep(1)
    assert not map_sandboxes(n1, busy=True), n1.get("/v1/sandboxes")[1]
    wait_stored([e.url for e in nodes], job_id, n)
    stream = stored_results(n2.url, job_id)
    assert [s for s, _ in stream] == list(range(1, n + 1)), stream
    assert sorted(i for _, i in stream) == list(range(n)), stream


def test_a_map_whose_owner_is_cut_off_is_read_through_another_node(netns_cluster):
    nodes = netns_cluster(3, ARGS)[1]
    n1, n2, n3 = nodes
    n = 60
    ex, fs, job_id = map_running_on_n1(nodes, n, 0.4, concurrency=3, done_first=8)
    netns_cluster.cut(n1)  # the owner: the client submitted to the first node
    cut_at = time.time()
    try:
        results = ex.get_result(fs, timeout=60)
        ended_s = time.time() - cut_at
        assert [r[0] for r in results] == list(range(n)), results
        # The takeover waits a lease, a beat and a sweep (~6 s); the client's poll of the
        # silent owner fails after gust.transport.PEER_SILENCE_S (5 s) in parallel. Without
        # that limit the poll waits for its read timeout (40 s).
        assert ended_s < 20, f"the map ended {ended_s:.1f} s after its owner's cut"
        took = [e.name for e in (n2, n3) if f"taken over by {e.name}" in e.log()]
        assert len(took) == 1, (n2.log(), n3.log())
        wait_stored([n2.url], job_id, n)
        stream = stored_results(n2.url, job_id)
        assert [s for s, _ in stream] == list(range(1, n + 1)), stream
        assert sorted(i for _, i in stream) == list(range(n)), stream
    finally:
        netns_cluster.restore(n1)
    print(f"measured: the map ended {ended_s:.1f} s after its owner's cut")

    # The owner dropped the job and killed its sandboxes at its own lapse, cut off; back, it
    # rejoins as the next epoch and runs none of the job; the stored stream is unchanged.
    wait_for_log(n1, f"map job {job_id}: dropped here: this node's membership lease", 1)
    wait_for_log(n1, "rejoined as epoch", 15)
    time.sleep(1)
    assert not map_sandboxes(n1, busy=True), n1.get("/v1/sandboxes")[1]
    for eng in nodes:
        assert stored_results(eng.url, job_id) == stream
