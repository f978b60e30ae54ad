"""Cluster of one against the embedded engine, in the same run (issue 15: "a cluster of
one against the embedded engine (warm invoke p50 and 10,000-no-op map within 5% of
embedded)"; docs/CLUSTER.md, "A cluster of one").

Two engines side by side on this machine: embedded (plain `gust up`, SQLite) and a
cluster of one (`gust up --cluster ...` on a throwaway PostgreSQL, scripts/pg-temp).
Both run for the whole benchmark, so whatever else loads the machine (other builds)
hits both alike; every measurement alternates between them (A/B/A/B):

- warm invoke: --calls sequential invokes of a no-op on one kept-alive connection to
  each engine, interleaved in blocks of 50 (as bench/cluster/bench_forward.py);
  p50/p99 per run;
- map: --tasks no-op tasks through the Python client (gust.FunctionExecutor, sandboxes
  warm from the warm-up maps), submit to last result, every result checked in order;
  default chunking (the client's figure) and chunksize=1 (one engine round trip per
  task: the engine's share of the time at its largest); per round one map of each kind
  on each engine (A/B in even rounds, B/A in odd ones), --maps rounds per run, the
  run's figure the median of its rounds; and the engine process's own CPU (user +
  system, /proc) per round's two maps, which the machine's other load does not inflate
  as it does wall time.

Prints per-run figures, min/median/max over --runs, the cluster/embedded ratios, the load
average and CPU model; --json writes them.

    GUST_BIN=$PWD/build/bin /usr/bin/python3 bench/cluster/bench_cluster_of_one.py
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import time

import cloudpickle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import (  # noqa: E402 -- bench/ on the path
    bench_cluster, machine, percentile, summarize)
from gust_e2e import REPO  # noqa: E402 -- bench/ is on the path above

sys.path.insert(0, os.path.join(REPO, "python"))
import gust  # noqa: E402 -- the repository's client

cloudpickle.register_pickle_by_value(sys.modules[__name__])

NOOP = "def handler(event, context):\n    return event\n"
PATH = "/2015-03-31/functions/noop/invocations"


def noop(x):
    return x


def timed_calls(conn, n):
    out = []
    for i in range(n):
        body = json.dumps({"i": i}).encode()
        start = time.perf_counter()
        conn.request("POST", PATH, body=body)
        resp = conn.getresponse()
        answer = resp.read()
        out.append((time.perf_counter() - start) * 1000.0)
        if resp.status != 200 or answer != body:
            raise SystemExit(f"unexpected answer {resp.status} {answer!r} (expected {body!r})")
    return out


def engine_cpu_s(eng):
    """User + system CPU seconds of the engine's own process so far (/proc): what the
    engine spends, which the machine's other load does not inflate as it does wall time."""
    with open(f"/proc/{eng.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_map(ex, tasks, **kw):
    start = time.perf_counter()
    results = ex.get_result(ex.map(noop, range(tasks), **kw))
    wall = time.perf_counter() - start
    if results != list(range(tasks)):
        raise SystemExit("results missing, repeated or out of order")
    ex.clean()
    ex.futures.clear()
    return wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--calls", type=int, default=1000, help="warm invokes per engine and run")
    ap.add_argument("--tasks", type=int, default=10000, help="no-op tasks per map")
    ap.add_argument("--maps", type=int, default=9, help="maps of each kind per engine and run")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    loads = []
    runs = []
    with bench_cluster("gust-bench-one-") as cluster:
        common = ["--keep-alive", "10m"]
        engines = {"embedded": cluster.engine("embedded", common),
                   "cluster": cluster.engine("n1", common, cluster.database(), "one")}
        conns, execs = {}, {}
        for name, eng in engines.items():
            eng.deploy("noop", NOOP)
            conns[name] = http.client.HTTPConnection("127.0.0.1", eng.port, timeout=60)
            timed_calls(conns[name], 50)  # the sandbox warm, the connection open
            execs[name] = gust.FunctionExecutor(url=eng.url, show_progress=False)
            timed_map(execs[name], args.tasks)  # the map function's sandboxes warm
            timed_map(execs[name], args.tasks, chunksize=1)
        for run in range(args.runs):
            # A run's maps take minutes on a loaded machine: the engine closes a connection
            # idle that long, so each run opens its own (warmed by untimed calls).
            for name, eng in engines.items():
                conns[name].close()
                conns[name] = http.client.HTTPConnection("127.0.0.1", eng.port, timeout=60)
                timed_calls(conns[name], 5)
            calls = {name: [] for name in engines}
            for _ in range(max(1, args.calls // 50)):
                for name in engines:
                    calls[name] += timed_calls(conns[name], 50)
            maps = {name: [] for name in engines}
            maps_c1 = {name: [] for name in engines}
            cpu = {name: -engine_cpu_s(eng) for name, eng in engines.items()}
            for rnd in range(args.maps):
                # A/B then B/A: what an engine leaves running after its map (its
                # batched records, the job's cleanup) lands on either engine's map alike.
                order = list(engines) if rnd % 2 == 0 else list(reversed(engines))
                for name in order:
                    maps[name].append(timed_map(execs[name], args.tasks))
                for name in order:
                    maps_c1[name].append(timed_map(execs[name], args.tasks, chunksize=1))
            figures = {}
            for name, eng in engines.items():
                # Both kinds of map: the engine's CPU per pair of maps, in ms.
                figures[f"{name}_map_cpu_ms"] = ((cpu[name] + engine_cpu_s(eng)) * 1000.0
                                                 / args.maps)
                figures[f"{name}_invoke_p50_ms"] = percentile(calls[name], 50)
                figures[f"{name}_invoke_p99_ms"] = percentile(calls[name], 99)
                figures[f"{name}_map_s"] = statistics.median(maps[name])
                figures[f"{name}_map_c1_s"] = statistics.median(maps_c1[name])
            for what in ("invoke_p50_ms", "invoke_p99_ms", "map_s", "map_c1_s", "map_cpu_ms"):
                figures[f"ratio_{what}"] = (figures[f"cluster_{what}"]
                                            / figures[f"embedded_{what}"])
            figures["maps_s"] = {"auto": maps, "chunksize=1": maps_c1}
            runs.append(figures)
            loads.append(os.getloadavg()[0])
            print(f"run {run + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()
                                                 if k != "maps_s")
                  + f"; maps {maps}; load {loads[-1]:.2f}", flush=True)
    load_after = os.getloadavg()[0]
    summary = summarize(runs, [k for k in runs[0] if k != "maps_s"])
    print(f"machine: {machine()}; load (1 min) {load_before:.2f} before, "
          f"{' '.join(f'{x:.2f}' for x in loads)} after each run, {load_after:.2f} after")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "summary": summary, "machine": machine(),
                       "load_before": load_before, "load_runs": loads, "load_after": load_after,
                       "calls": args.calls, "tasks": args.tasks, "maps": args.maps}, f, indent=2)


if __name__ == "__main__":
    main()
