"""Async events across nodes (docs/CLUSTER.md, "Step 4 as built"): three real
engines drain one PostgreSQL queue; a node leases no more than it can run; a
node killed with SIGKILL mid-drain loses nothing (its leased events run again
elsewhere within a lease time) and every event has one outcome; a node whose
membership cannot be renewed stops leasing at its own deadline."""
import signal
import time

from async_helpers import (WHERE, accept, invocation_counts, leased_to, leases,
                           wait_all_finished)
from gust_e2e import TEST_LEASE_ARGS, psql
from gust_e2e import TEST_LEASE_S as LEASE_S  # the event lease and membership lease

CONCURRENCY = 3  # per node: small, so the leases per node can be watched
ARGS = ("--keep-alive", "60s", "--async-concurrency", str(CONCURRENCY))
# The tests that wait for a lease to run out: a short one.
SHORT_LEASE = ARGS + TEST_LEASE_ARGS


def test_three_nodes_share_a_backlog_and_lease_only_what_they_can_run(cluster):
    db, nodes = cluster(3, ARGS)
    nodes[0].create("where", {"app.py": WHERE}, Timeout=30)
    # Every event is accepted by n1: the other nodes find them in the shared queue.
    ids = [accept(nodes[0], "where", {"i": i, "sleep": 0.4}) for i in range(45)]
    most = {}
    deadline = time.time() + 60
    while time.time() < deadline:
        for node, count in leases(db).items():
            most[node] = max(most.get(node, 0), count)
        if not leases(db):
            break
        time.sleep(0.1)
    done = wait_all_finished(nodes[1], ids, timeout=60)
    assert {d["Status"] for d in done.values()} == {"succeeded"}
    ran_on = {}
    for d in done.values():
        ran_on[d["Result"]["node"]] = ran_on.get(d["Result"]["node"], 0) + 1
    # Nobody starves: each node ran a share (3 x 3 slots for 45 events of 0.4 s).
    assert set(ran_on) == {"n1", "n2", "n3"}, ran_on
    assert min(ran_on.values()) >= 5, ran_on
    # Leases follow free capacity: the backlog was never taken by the node that accepted it.
    assert max(most.values()) <= CONCURRENCY, most
    # Nothing ran twice on a healthy cluster.
    time.sleep(1)  # the last record batches (every 200 ms)
    counts = invocation_counts(nodes[2], "where")
    assert sorted(counts) == sorted(ids) and set(counts.values()) == {1}, counts


def test_kill_9_during_a_drain_loses_nothing(cluster):
    db, nodes = cluster(3, SHORT_LEASE)
    nodes[0].create("where", {"app.py": WHERE}, Timeout=30)
    ids = [accept(nodes[i % 3], "where", {"i": i, "sleep": 1.5}) for i in range(30)]
    deadline = time.time() + 30
    victims = []
    while time.time() < deadline and not victims:
        victims = leased_to(db, "n2")
        time.sleep(0.05)
    assert victims, "n2 never leased an event"
    time.sleep(0.3)  # let it start them
    victims = leased_to(db, "n2")
    nodes[1].stop(sig=signal.SIGKILL)
    killed_at = time.time()
    # Its leases run out within one lease; another node takes them and runs each one (1.5 s).
    done = wait_all_finished(nodes[0], ids, timeout=LEASE_S + 30)
    assert {d["Status"] for d in done.values()} == {"succeeded"}, done
    for i in victims:
        assert done[i]["Result"]["node"] in ("n1", "n3"), done[i]
        # FinishedMs is the finishing node's clock: this machine's.
        took = done[i]["FinishedMs"] / 1000 - killed_at
        assert took <= LEASE_S + 0.5 + 1.5 + 3, (i, took)
    # Every event ran: once where the survivors recorded its outcome, unless the killed node
    # held it (at least once). The killed node's own runs may lack their invocation records
    # (batched every 200 ms, the batch in flight died with it), not their outcomes.
    time.sleep(1)  # the survivors' last record batches (every 200 ms)
    counts = invocation_counts(nodes[2], "where")
    by_survivors = [i for i in ids if done[i]["Result"]["node"] != "n2"]
    assert all(counts.get(i, 0) >= 1 for i in by_survivors), counts
    assert all(counts[i] == 1 for i in by_survivors if i not in victims), counts
    # The survivors hold nothing of the dead node's.
    assert "n2" not in leases(db)


def test_a_node_that_cannot_renew_its_membership_stops_leasing(cluster):
    db, nodes = cluster(3, SHORT_LEASE)
    nodes[0].create("where", {"app.py": WHERE}, Timeout=30)
    # A later start of n2's name (its epoch bumped): n2's heartbeats are refused from now on,
    # while PostgreSQL stays reachable for everything else it does.
    psql(db, "UPDATE nodes SET epoch = epoch + 1 WHERE name = 'n2'")
    time.sleep(LEASE_S + 1.5)  # past n2's own deadline
    # n2 still accepts (the queue takes the insert) but runs none of them; n1 and n3 do.
    ids = [accept(nodes[1], "where", {"i": i, "sleep": 0.2}) for i in range(24)]
    done = wait_all_finished(nodes[1], ids, timeout=60)
    assert {d["Status"] for d in done.values()} == {"succeeded"}
    assert {d["Result"]["node"] for d in done.values()} <= {"n1", "n3"}, done
    assert "n2" not in leases(db)
    assert "membership lease ran out" in open(nodes[1].log_path, errors="replace").read()
