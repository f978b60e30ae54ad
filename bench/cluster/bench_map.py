"""Cluster step 5a: 1,000 tasks sleeping 1 s on 3 nodes against 1 node, in the same run
(docs/CLUSTER.md, "Step 5a as built").

Two clusters on one throwaway PostgreSQL (scripts/pg-temp): three nodes (n1-n3) and one
(solo). All nodes share this machine's cores, so each node's width is capped the same way:
the map's concurrency, which bounds each node's share (--concurrency, default 32 sandboxes
a node). The client calls n1 (the job's owner) or solo. Runs alternate 1 node / 3 nodes;
each times the map from submit to its last result (every result checked, in order) and, on
3 nodes, counts the tasks each node ran (GUST_NODE). Prints min/median/max over --runs with
the load average and CPU model; --json writes them.

    GUST_BIN=$PWD/build/bin /usr/bin/python3 bench/cluster/bench_map.py
"""
import argparse
import collections
import os
import sys
import time

import cloudpickle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import bench_cluster, report  # noqa: E402 -- bench/ is on the path above
from gust_e2e import REPO  # noqa: E402 -- bench/ is on the path above

sys.path.insert(0, os.path.join(REPO, "python"))
import gust  # noqa: E402 -- the repository's client

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def nap(x, seconds):
    time.sleep(seconds)
    return x, os.environ.get("GUST_NODE")


def timed_map(url, tasks, seconds, concurrency):
    ex = gust.FunctionExecutor(url=url, show_progress=False, concurrency=concurrency)
    start = time.perf_counter()
    results = ex.get_result(ex.map(nap, [(x, seconds) for x in range(tasks)]))
    wall = time.perf_counter() - start
    if [r[0] for r in results] != list(range(tasks)):
        raise SystemExit("results missing, repeated or out of order")
    return wall, collections.Counter(r[1] for r in results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=1.0, help="each task's sleep")
    ap.add_argument("--concurrency", type=int, default=32, help="sandboxes per node")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    runs = []
    with bench_cluster("gust-bench-cluster-map-") as cluster:
        three, one = cluster.database(), cluster.database()
        engines = [cluster.engine(name, ["--keep-alive", "10m"], db)
                   for name, db in (("n1", three), ("n2", three), ("n3", three), ("solo", one))]
        n1, solo = engines[0], engines[3]
        # The map function exists and each node has met it before the timed runs.
        timed_map(n1.url, 3 * args.concurrency, 0.2, args.concurrency)
        timed_map(solo.url, args.concurrency, 0.2, args.concurrency)
        for run in range(args.runs):
            one_s, _ = timed_map(solo.url, args.tasks, args.seconds, args.concurrency)
            three_s, spread = timed_map(n1.url, args.tasks, args.seconds, args.concurrency)
            runs.append({"one_node_s": one_s, "three_nodes_s": three_s,
                         "speedup": one_s / three_s, "tasks_per_node": dict(spread)})
            print(f"run {run + 1}: 1 node {one_s:.2f} s, 3 nodes {three_s:.2f} s "
                  f"(x{one_s / three_s:.2f}), tasks per node {dict(sorted(spread.items()))}",
                  flush=True)
    report(runs, ("one_node_s", "three_nodes_s", "speedup"), load_before, args.json, digits=2,
           tasks=args.tasks, seconds=args.seconds, concurrency=args.concurrency)


if __name__ == "__main__":
    main()
