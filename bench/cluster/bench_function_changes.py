"""Function changes across nodes (docs/CLUSTER.md, "Function changes across
nodes"): how long after an UpdateFunctionCode through one node another node
answers with the new code, against the same through the node itself, in the
same run.

Two engines (n1, n2) of one cluster on a throwaway PostgreSQL (scripts/pg-temp).
Each trial updates $LATEST's code with a new tag, then invokes until the answer
carries it (a tight loop of invokes on one kept-alive connection), timing from
the update's 200 to the first new answer: through n1 and asked of n2 (the change
travels by the feed: NOTIFY, a read, the engine thread), and through n2 and asked
of n2 (the local peer: the invalidation is immediate). Both include the cold
start of the new code. Prints p50/max per run and min/median/max over --runs.

    GUST_BIN=$PWD/build/bin /usr/bin/python3 bench/cluster/bench_function_changes.py
"""
import argparse
import base64
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import bench_cluster, make_zip, percentile, report  # noqa: E402 -- path above

CODE = "def handler(event, context):\n    return 'TAG'\n"
PATH = "/2015-03-31/functions/f/invocations"


def update(node, tag):
    body = {"ZipFile": base64.b64encode(make_zip({"app.py": CODE.replace("TAG", tag)})).decode()}
    status, _, data = node.call("PUT", "/2015-03-31/functions/f/code", body)
    if status != 200:
        raise SystemExit(f"update failed: {status} {data!r}")


def until_answer(conn, tag, limit_s=10.0):
    """Milliseconds from now until an invoke answers tag."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        conn.request("POST", PATH, body=b"{}")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status == 200 and json.loads(body) == tag:
            return (time.perf_counter() - start) * 1000.0
    raise SystemExit(f"{tag} not answered within {limit_s} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--trials", type=int, default=20, help="updates per path and run")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    runs = []
    with bench_cluster("gust-bench-changes-") as cluster:
        db = cluster.database()
        n1 = cluster.engine("n1", ["--keep-alive", "10m"], db)
        n2 = cluster.engine("n2", ["--keep-alive", "10m"], db)
        n1.deploy("f", CODE.replace("TAG", "t0"))
        conn = http.client.HTTPConnection("127.0.0.1", n2.port, timeout=60)
        until_answer(conn, "t0")
        tag = 0
        for run in range(args.runs):
            remote, local = [], []
            for _ in range(args.trials):
                tag += 1
                update(n1, f"t{tag}")
                remote.append(until_answer(conn, f"t{tag}"))
                tag += 1
                update(n2, f"t{tag}")
                local.append(until_answer(conn, f"t{tag}"))
            figures = {"other_node_p50_ms": percentile(remote, 50),
                       "other_node_max_ms": max(remote),
                       "same_node_p50_ms": percentile(local, 50),
                       "same_node_max_ms": max(local)}
            runs.append(figures)
            print(f"run {run + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    report(runs, list(runs[0]), load_before, args.json, digits=2, trials=args.trials)


if __name__ == "__main__":
    main()
