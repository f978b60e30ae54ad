"""Two builds' clusters of one side by side (A/B): a change to the cluster's map path
against its peer build, in the same run, on one PostgreSQL.

bench_cluster_of_one.py compares a cluster of one with the embedded engine of the same
build; on a loaded machine that ratio moves more than a change does. Here both engines are
clusters of one (`gust up --cluster`, each on a database of its own), one per build, and
every round runs, on each (A/B in even rounds, B/A in odd ones), a --tasks-no-op map
auto-chunked and one with chunksize=1, timed from submit to the last result (every result
checked in order), and the engine process's CPU (user + system, /proc; 10 ms ticks) per map.
Prints min/median/max per build and the B/A ratio of the medians.

    GUST_BIN=$PWD/build/bin /usr/bin/python3 bench/cluster/bench_cluster_ab.py \\
        --a /tmp/peer-bin/gust --b build/bin/gust --rounds 20

(A copied build dir needs GUST_RUNTIME_DIR=$PWD/runtimes/python.)
"""
import argparse
import json
import os
import statistics
import sys

import cloudpickle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import bench_cluster, machine  # noqa: E402 -- bench/ on the path
from gust_e2e import REPO, Engine  # noqa: E402 -- tests/e2e on the path (common puts it there)

sys.path.insert(0, os.path.join(REPO, "python"))
import gust  # noqa: E402 -- the repository's client
from bench_cluster_of_one import engine_cpu_s, timed_map  # noqa: E402 -- its neighbour

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def stats(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="the peer build's gust binary")
    ap.add_argument("--b", required=True, help="the changed build's gust binary")
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    figures = {}
    with bench_cluster("gust-bench-ab-") as cluster:
        engines = {}
        for name, binary in (("a", args.a), ("b", args.b)):
            eng = Engine(os.path.join(cluster.root, name), gust=os.path.abspath(binary),
                         extra_args=["--keep-alive", "10m", "--cluster", cluster.database(),
                                     "--node-name", "n1"])
            cluster._engines.append(eng)  # stopped at the block's end, as engine() does
            engines[name] = eng.start()
        execs = {name: gust.FunctionExecutor(url=eng.url, show_progress=False)
                 for name, eng in engines.items()}
        for ex in execs.values():  # sandboxes warm
            for _ in range(2):
                timed_map(ex, args.tasks)
                timed_map(ex, args.tasks, chunksize=1)
        got = {name: {"auto_s": [], "auto_cpu_ms": [], "c1_s": [], "c1_cpu_ms": []}
               for name in engines}
        for rnd in range(args.rounds):
            order = ["a", "b"] if rnd % 2 == 0 else ["b", "a"]
            for name in order:
                eng, ex, g = engines[name], execs[name], got[name]
                before = engine_cpu_s(eng)
                g["auto_s"].append(timed_map(ex, args.tasks))
                middle = engine_cpu_s(eng)
                g["c1_s"].append(timed_map(ex, args.tasks, chunksize=1))
                g["auto_cpu_ms"].append((middle - before) * 1000.0)
                g["c1_cpu_ms"].append((engine_cpu_s(eng) - middle) * 1000.0)
        for name, g in got.items():
            figures[name] = {k: stats(v) for k, v in g.items()}
            print(name, ", ".join("%s %.3f/%.3f/%.3f" % (k, s["min"], s["median"], s["max"])
                                  for k, s in figures[name].items()))
        for k in ("auto_s", "c1_s", "auto_cpu_ms", "c1_cpu_ms"):
            a, b = figures["a"][k]["median"], figures["b"][k]["median"]
            figures["ratio_" + k] = b / a if a else None
            print("b/a %s: %s" % (k, "%.3f" % (b / a) if a else "n/a"))
    load_after = os.getloadavg()[0]
    print(f"machine: {machine()}; load (1 min) {load_before:.2f} before, {load_after:.2f} after")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"a": args.a, "b": args.b, "figures": figures, "rounds": args.rounds,
                       "tasks": args.tasks, "machine": machine(), "load_before": load_before,
                       "load_after": load_after}, f, indent=2)


if __name__ == "__main__":
    main()
