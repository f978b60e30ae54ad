#!/usr/bin/python3
"""Cluster step 4 benchmark (issue 15, docs/CLUSTER.md "Step 4 as built"): how fast
N queued async events (default 10,000) are drained by 3 nodes against 1 node, in the
same run, alternating, --runs times each.

Each measurement: a new cluster database on one PostgreSQL (scripts/pg-temp), the
function deployed through a first node, then N events inserted in one statement,
all due at the same instant a few seconds ahead (a recovered backlog: no node has
it in memory), and the nodes started before that instant. The figure is the time
from that instant until the last event's outcome is committed (its finished_ms)
and events/s. Every node shares this machine's cores, so the function sleeps
(--sleep-ms, default 100) and each node runs at most --concurrency events at once
(default 8): the spread across nodes shows as capacity, as it would on real
machines. Prints JSON (--out writes it) with min/median/max, load and CPU model.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import bench_cluster, machine  # noqa: E402 -- sys.path set above
from gust_e2e import psql  # noqa: E402 -- sys.path set above

SLEEPER = ("import time\n"
           "def handler(event, context):\n"
           "    time.sleep(event['ms'] / 1000)\n")


def drain(cluster, state_root, nodes, events, sleep_ms, concurrency):
    db = cluster.database()
    args = ["--keep-alive", "120s", "--async-concurrency", str(concurrency)]
    first = cluster.engine("deploy", args, db, os.path.join(state_root, "deploy"))
    first.deploy("sleeper", SLEEPER, Timeout=60)
    first.stop()
    due_ms = int(time.time() * 1000) + 4000 + 1500 * nodes  # after every node is up
    psql(db, "INSERT INTO events(id, function, qualifier, payload, source, enqueued_ms, "
             "due_ms, attempts, status) SELECT 'bench-' || i, 'sleeper', '', "
             f"'{{\"ms\": {sleep_ms}}}', 'invoke', {due_ms}, {due_ms}, 0, 0 "
             f"FROM generate_series(1, {events}) AS i")
    engines = []
    try:
        for i in range(1, nodes + 1):
            engines.append(cluster.engine(f"n{i}", args, db, os.path.join(state_root, f"n{i}")))
        assert time.time() * 1000 < due_ms, "the nodes started after the events came due"
        while int(psql(db, "SELECT count(*) FROM events WHERE status = 0")) > 0:
            time.sleep(0.5)
        last = int(psql(db, "SELECT max(finished_ms) FROM events"))
        per_node = psql(db, "SELECT count(*) FROM events WHERE status <> 1")
        assert per_node == "0", f"{per_node} events did not succeed"
    finally:
        for eng in engines:
            eng.stop()
    seconds = (last - due_ms) / 1000
    return {"seconds": round(seconds, 2), "events_per_s": round(events / seconds, 1)}


def summary(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sleep-ms", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8, help="--async-concurrency per node")
    ap.add_argument("--out", help="also write the JSON here")
    opts = ap.parse_args()
    runs = {1: [], 3: []}
    with bench_cluster("gust-bench-async-") as cluster:
        for _ in range(opts.runs):
            for nodes in (1, 3):  # alternating: both see the same machine's moods
                r = drain(cluster, f"run{len(runs[nodes])}-{nodes}",
                          nodes, opts.events, opts.sleep_ms, opts.concurrency)
                r["load1"] = round(os.getloadavg()[0], 2)
                runs[nodes].append(r)
                print(nodes, "node(s):", r, file=sys.stderr)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "command": " ".join(["bench/cluster/bench_async.py"] + sys.argv[1:]),
        "events": opts.events, "sleep_ms": opts.sleep_ms, "concurrency": opts.concurrency,
        "ideal_events_per_s_per_node": round(opts.concurrency * 1000 / opts.sleep_ms, 1),
        "runs": {f"{n}_nodes": runs[n] for n in runs},
        "seconds": {f"{n}_nodes": summary([r["seconds"] for r in runs[n]]) for n in runs},
        "events_per_s": {f"{n}_nodes": summary([r["events_per_s"] for r in runs[n]])
                         for n in runs},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if opts.out:
        with open(opts.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
