"""Cluster step 5b: what recording a map job in PostgreSQL costs (docs/CLUSTER.md, "Step 5b
as built"). A 10,000-task map of a no-op on a cluster of one, durable (the job's row and
inputs written before the 201, its results appended in batches, readers shown only stored
results) against the same engine with --map-no-durability (the job in memory only, as
before step 5b).

Two clusters of one node on one throwaway PostgreSQL (scripts/pg-temp); runs alternate
between them. Each times the map from submit to its last result (every result checked, in
order). Prints min/median/max over --runs with the load average and CPU model; --json
writes them.

    GUST_BIN=$PWD/build/bin /usr/bin/python3 bench/cluster/bench_map_durability.py
"""
import argparse
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


def noop(x):
    return x


def timed_map(url, tasks):
    ex = gust.FunctionExecutor(url=url, show_progress=False)
    start = time.perf_counter()
    results = ex.get_result(ex.map(noop, range(tasks)))
    wall = time.perf_counter() - start
    if results != list(range(tasks)):
        raise SystemExit("results missing, repeated or out of order")
    return wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    runs = []
    with bench_cluster("gust-bench-durability-") as cluster:
        engines = [cluster.engine(name, ["--keep-alive", "10m"] + extra, cluster.database())
                   for name, extra in (("durable", []), ("memory", ["--map-no-durability"]))]
        durable, memory = engines
        for eng in engines:  # the map function exists and its sandboxes are warm
            timed_map(eng.url, 200)
        for run in range(args.runs):
            memory_s = timed_map(memory.url, args.tasks)
            durable_s = timed_map(durable.url, args.tasks)
            runs.append({"memory_s": memory_s, "durable_s": durable_s,
                         "cost": durable_s / memory_s - 1})
            print(f"run {run + 1}: in memory {memory_s:.2f} s, durable {durable_s:.2f} s "
                  f"({100 * (durable_s / memory_s - 1):+.1f}%)", flush=True)
    report(runs, ("memory_s", "durable_s", "cost"), load_before, args.json, tasks=args.tasks)


if __name__ == "__main__":
    main()
