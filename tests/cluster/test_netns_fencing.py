"""Issue 15 step 6 (docs/CLUSTER.md, "Step 6 as built"): engines in network
namespaces of their own on one bridge (tests/cluster/netns.py), and a node cut
off by taking its link down.

- An async drain: the cut node's events run again on the others within a
  lease; the cut node abandons them (kills their sandboxes) when its own
  membership lapses instead of running on; once its link is back, its late
  outcomes change nothing and every event has one outcome. Side effects are at
  least once: a run the cut node started may have had effects before it was
  abandoned.
- A map whose helper node is cut off: every result, in order, once.
- A sync call forwarded to a node that is cut off mid-call: a 502 naming the
  node within the peer silence limit (the lease), not a hang.

Leases are short (gust_e2e.TEST_LEASE_ARGS: --cluster-lease 4s, heartbeats every
0.8 s) to keep each test well under 20 s; every conninfo carries tcp_user_timeout, as
docs/CLUSTER.md asks of operators, so a statement in flight when the link went
down fails in seconds rather than TCP's ~15 minutes."""
import json
import re
import threading
import time

import async_helpers
import cloudpickle

import gust
from async_helpers import (SIDE, accept, accept_until_leased, finished_elsewhere, function_log,
                           leases, records, wait_all_finished, wait_for_log, where)
from gust_e2e import TEST_LEASE_ARGS
from gust_e2e import TEST_LEASE_S as LEASE_S

cloudpickle.register_pickle_by_value(async_helpers)

ARGS = ("--keep-alive", "60s", "--async-concurrency", "3") + TEST_LEASE_ARGS


def test_a_cut_off_node_abandons_its_events_and_its_late_outcomes_change_nothing(netns_cluster):
    db, (n1, n2, n3) = netns_cluster(3, ARGS)
    n1.create("side", {"app.py": SIDE}, Timeout=30)
    # Longer than a lease and a check: without the abandon, n2 would finish them late.
    run_s = LEASE_S + 2
    ids, victims = accept_until_leased(db, n1, "n2", run_s)
    netns_cluster.cut(n2)
    cut_at = time.time()

    # Within a lease (and a beat, and a run) the others have run n2's events.
    done, took = finished_elsewhere(n1, ids, victims, "n2", cut_at, LEASE_S, run_s)
    print(f"measured: n2's {len(victims)} events finished elsewhere {min(took.values()):.1f}-"
          f"{max(took.values()):.1f} s after the cut ({run_s} s runs)")
    # Abandoned runs are not attempts: every event ran to its outcome once.
    assert {d["Attempts"] for d in done.values()} == {1}, done
    assert "n2" not in leases(db)
    # n2 noticed its lapse by its own clock and killed what it ran: none of its runs of the
    # events taken over reached its end (the sandbox would have, run_s after the start).
    time.sleep(max(0.0, cut_at + run_s + 1 - time.time()))
    side_n2 = function_log(n2, "side")
    for i in victims:
        assert f"side-effect end {i} n2" not in side_n2, side_n2
    wait_for_log(n2, "running event(s): their leases lapsed", 1)

    # Back on the network: n2's give-backs and records arrive late and change nothing.
    netns_cluster.restore(n2)
    wait_for_log(n2, "membership is live again", 20)
    time.sleep(2 * LEASE_S / 5)  # two beats: whatever n2 had to write is written
    assert records(n1, ids) == {i: done[i] for i in ids}
    assert "n2" not in leases(db)
    # n2 accepts events again once live: the cluster is whole.
    more = [accept(n2, "side", {"i": 100 + i}) for i in range(3)]
    again = wait_all_finished(n3, more, timeout=30)
    assert {d["Status"] for d in again.values()} == {"succeeded"}, again


def test_a_map_whose_helper_is_cut_off_returns_every_result_once_in_order(netns_cluster):
    _, (n1, n2, n3) = netns_cluster(3, ARGS)
    n = 90
    ex = gust.FunctionExecutor(url=n1.url, show_progress=False, concurrency=3)
    fs = ex.map(where, [(x, 0.4) for x in range(n)])
    deadline = time.time() + 60
    while time.time() < deadline:
        if sum(1 for f in fs if f.done() and f.result()[1] == "n3") >= 2:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("n3 never ran a task of the map")
    netns_cluster.cut(n3)
    cut_at = time.time()
    try:
        results = ex.get_result(fs)
    finally:
        netns_cluster.restore(n3)
    assert [r[0] for r in results] == list(range(n)), results
    assert {r[1] for r in results} >= {"n1", "n2", "n3"}
    # The owner took n3's chunks back once n3's membership lapsed, and n3, by its own clock,
    # killed its sandboxes of the job rather than run on.
    assert "node n3 left the cluster" in n1.log(), n1.log()
    assert re.search(r"membership lease ran out .* abandoned [1-9][0-9]* remote session",
                     n3.log()), n3.log()
    assert time.time() - cut_at < LEASE_S + 20
    print(f"measured: the map ended {time.time() - cut_at:.1f} s after n3's cut")


def test_a_call_forwarded_to_a_node_cut_off_mid_call_is_a_502_naming_it(netns_cluster):
    _, (n1, n2) = netns_cluster(2, ARGS)
    n1.create("side", {"app.py": SIDE}, Timeout=60)
    # A sandbox of it on n2 only, and n1's copy of the heartbeats knows it. (Warmed first: a
    # cold call through n2 may start where a heartbeat read a lower load, n1.)
    status, _, body = n2.request("POST", "/v1/functions/side/warm", {})
    assert status == 200, body
    status, _, body = n2.invoke("side", {})
    assert status == 200 and json.loads(body)["node"] == "n2", body
    deadline = time.time() + 15
    while time.time() < deadline:
        seen = {n["name"]: n for n in json.loads(n1.get("/v1/nodes")[1])["nodes"]}
        if seen["n2"]["warm"].get("side", {}).get("$LATEST", 0) > 0:
            break
        time.sleep(0.2)
    time.sleep(2 * LEASE_S / 5 + 0.3)  # n1's next beat reads it
    answer = {}

    def call():
        answer["reply"] = n1.invoke("side", {"sleep": 50})

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(1.5)  # delivered to n2 and running there
    netns_cluster.cut(n2)
    cut_at = time.time()
    caller.join(LEASE_S + 15)
    assert not caller.is_alive(), "the forwarded call hangs on a node cut off"
    waited = time.time() - cut_at
    status, _, body = answer["reply"]
    assert status == 502, (status, body)
    assert b"cluster node n2" in body and n2.url.encode() in body, body
    # Bounded by the peer silence limit (the lease) and the kernel's probe rounding.
    assert waited < LEASE_S + 5, waited
    print(f"measured: the forwarded call's 502 came {waited:.1f} s after n2's cut")
