"""Cluster step 3: a warm sync invoke through a node that forwards it against a
local hit, in the same run (docs/CLUSTER.md, "Step 3 as built").

Two engines (n1, n2) of one cluster on a throwaway PostgreSQL (scripts/pg-temp).
A no-op function is warm on n2 only; n1 forwards every call to n2 (the answer
names the node it ran on, checked on every call). Each run times --calls
sequential invokes through n1 (forwarded) and as many straight to n2 (local
hit), interleaved in blocks of 50, each client on one kept-alive connection.
Prints p50/p99 per run and min/median/max over --runs, with the load average
and CPU model; --json writes them.

    GUST_BIN=$PWD/build/bin /usr/bin/python3 bench/cluster/bench_forward.py
"""
import argparse
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import bench_cluster, percentile, report  # noqa: E402 -- bench/ is on the path

NOOP = "import os\ndef handler(event, context):\n    return os.environ['GUST_NODE']\n"
PATH = "/2015-03-31/functions/noop/invocations"


def timed_calls(conn, n, expect):
    out = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("POST", PATH, body=b"{}")
        resp = conn.getresponse()
        body = resp.read()
        out.append((time.perf_counter() - start) * 1000.0)
        if resp.status != 200 or json.loads(body) != expect:
            raise SystemExit(f"unexpected answer {resp.status} {body!r} (expected {expect})")
    return out


def wait_warm(n1, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        nodes = {n["name"]: n for n in json.loads(n1.get("/v1/nodes")[1])["nodes"]}
        if nodes["n2"]["warm"].get("noop", {}).get("$LATEST", 0) > 0:
            time.sleep(2.5)  # one more beat of n1 reads it into its copy
            return
        time.sleep(0.2)
    raise SystemExit("n2's warm sandbox never showed in the heartbeats")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--calls", type=int, default=500, help="per path and run")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    runs = []
    with bench_cluster("gust-bench-forward-") as cluster:
        db = cluster.database()
        n1 = cluster.engine("n1", ["--keep-alive", "10m"], db)
        n2 = cluster.engine("n2", ["--keep-alive", "10m"], db)
        n1.deploy("noop", NOOP)
        assert n2.invoke("noop", {})[0] == 200
        wait_warm(n1)
        via = http.client.HTTPConnection("127.0.0.1", n1.port, timeout=60)
        local = http.client.HTTPConnection("127.0.0.1", n2.port, timeout=60)
        timed_calls(via, 50, "n2")  # connections and the forward pool's clients
        timed_calls(local, 50, "n2")
        for run in range(args.runs):
            forwarded, hit = [], []
            for _ in range(max(1, args.calls // 50)):
                forwarded += timed_calls(via, 50, "n2")
                hit += timed_calls(local, 50, "n2")
            figures = {"forwarded_p50_ms": percentile(forwarded, 50),
                       "forwarded_p99_ms": percentile(forwarded, 99),
                       "local_p50_ms": percentile(hit, 50),
                       "local_p99_ms": percentile(hit, 99)}
            runs.append(figures)
            print(f"run {run + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
    report(runs, list(runs[0]), load_before, args.json, calls=args.calls)


if __name__ == "__main__":
    main()
