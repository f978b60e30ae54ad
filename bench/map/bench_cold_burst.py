"""Cold wide bursts: N tasks that sleep 1 s on a fresh engine, then again
after each recycle of the function's sandboxes.

The first map after `gust up` forks nearly every sandbox on demand (the
zygote's pool holds --prefork children at rest); the later ones start from no
sandbox of the function too, but on a pool the earlier burst sized (what a
user editing a function and mapping it again meets). Both are reported, with
the number of sandboxes each map used. GUST_BIN selects the build, so two
builds can be compared in turns:

    for b in old new; do GUST_BIN=... python3 bench/map/bench_cold_burst.py; done
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_map  # noqa: E402 -- sys.path set above
import tasks  # noqa: E402 -- sys.path set above
from common import Engine, machine  # noqa: E402 -- sys.path set above


def timed_map(g, n):
    """(seconds, sandboxes used, the map's function)."""
    t0 = time.perf_counter()
    fs, result = g.map(tasks.sleep1, range(n))
    seconds = time.perf_counter() - t0
    if sorted(result) != list(range(n)):
        raise SystemExit("wrong results")
    sandboxes = len({f.stats["sandbox"] for f in fs})
    function = g.ex.jobs[-1].function
    g.ex.clean()
    g.ex.futures.clear()
    return round(seconds, 3), sandboxes, function


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5, help="recycled repeats after the first map")
    ap.add_argument("--engine-arg", action="append", default=[],
                    help="extra `gust up` argument (repeatable)")
    ap.add_argument("--out", help="write the JSON report here")
    args = ap.parse_args()
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
              "machine": machine(), "command": " ".join(sys.argv),
              "gust_bin": os.environ.get("GUST_BIN", "build/bin"), "tasks": args.tasks}
    with Engine(tempfile.mkdtemp(prefix="gust-bench-burst-"), args.engine_arg) as engine:
        g = bench_map.Gust(engine)
        seconds, sandboxes, function = timed_map(g, args.tasks)
        report["first_after_start"] = [seconds, sandboxes]
        print("first map after engine start: %.2f s (%d sandboxes)" % (seconds, sandboxes),
              flush=True)
        runs = []
        for _ in range(args.reps):
            g.recycle(function)
            seconds, sandboxes, _ = timed_map(g, args.tasks)
            runs.append([seconds, sandboxes])
            print("  cold, pool sized by the earlier bursts: %.2f s (%d sandboxes)"
                  % (seconds, sandboxes), flush=True)
    report["cold_runs"] = runs
    report["cold_median_s"] = statistics.median(s for s, _ in runs) if runs else None
    print("cold median %s s" % report["cold_median_s"])
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
