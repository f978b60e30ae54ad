#!/usr/bin/env python3
"""Engine-core benchmarks (issue 2): cold start (lean and with sklearn
preloaded), warm invoke latency, warm throughput, sandboxes created per
second, idle sandbox private memory, idle engine RSS — with the naive peer
(a fresh interpreter per invocation, as Lithops' localhost backend does)
measured in the same run. Prints a JSON report; --markdown appends a
RESULTS.md section."""
import argparse
import base64
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import (Engine, children, machine, percentile,  # noqa: E402 -- sys.path set above
                    private_kb, rss_kb)

NOOP = "def handler(event, context):\n    return None\n"
SKLEARN = ("import numpy\nimport sklearn\nimport sklearn.neighbors\n"
           "def handler(event, context):\n    return numpy.__version__\n")


def init_duration(headers):
    log = base64.b64decode(headers.get("x-amz-log-result", "")).decode()
    m = re.search(r"Init Duration: ([0-9.]+) ms", log)
    return float(m.group(1)) if m else None


def cold_starts(eng, name, source, n, gap_s=0.0, deploy=True):
    """n cold invocations: recycle the warm sandbox, then time the invoke.

    gap_s > 0 spaces them out (sporadic cold starts, the common case: the
    zygote has refilled its pre-fork pool in between); 0 is back to back."""
    if deploy:
        eng.deploy(name, source, MemorySize=512, Timeout=30)
    e2e, init = [], []
    for _ in range(n):
        eng.call("POST", f"/v1/functions/{name}/recycle")
        # The kill is asynchronous; wait until the sandbox is gone so the next call is cold.
        for _ in range(200):
            sbx = json.loads(eng.call("GET", "/v1/sandboxes")[2])["sandboxes"]
            if not any(s["function"] == name for s in sbx):
                break
            time.sleep(0.002)
        if gap_s:
            time.sleep(gap_s)
        t0 = time.perf_counter()
        status, headers, body = eng.invoke(name, tail=True)
        e2e.append((time.perf_counter() - t0) * 1000)
        assert status == 200 and "x-amz-function-error" not in headers, body
        d = init_duration(headers)
        assert d is not None, "not a cold start"
        init.append(d)
    return {"n": n, "e2e_p50_ms": percentile(e2e, 50), "e2e_p99_ms": percentile(e2e, 99),
            "init_p50_ms": percentile(init, 50), "init_p99_ms": percentile(init, 99)}


def naive_peer(source_import, n):
    """A fresh /usr/bin/python3 per invocation (Lithops localhost, naive containers)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(["/usr/bin/python3", "-c", source_import], check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return {"n": n, "p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}


def creation_rate(eng, count, threads):
    names = [f"burst{i}" for i in range(count)]
    for name in names:
        eng.deploy(name, NOOP)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda n: eng.invoke(n)[0], names))
    elapsed = time.perf_counter() - t0
    assert all(s == 200 for s in results), results
    return {"sandboxes": count, "client_threads": threads, "seconds": elapsed,
            "per_second": count / elapsed}


def idle_memory(eng, name):
    sbx = [s for s in json.loads(eng.call("GET", "/v1/sandboxes")[2])["sandboxes"]
           if s["function"] == name and s["state"] == "idle"]
    kb = [private_kb(s["pid"]) for s in sbx]
    return {"sandboxes": len(kb), "private_kb_p50": percentile(kb, 50) if kb else None}


def run_cold_only(args):
    """Only the lean cold starts (spaced, then back to back): quick A/B runs."""
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "command": " ".join(sys.argv), "load": os.getloadavg()[0]}
    tmp = tempfile.mkdtemp(prefix="gust-bench-")
    try:
        with Engine(os.path.join(tmp, "lean"), ["--keep-alive", "10m"] + args.engine_arg) as eng:
            report["cold_lean"] = cold_starts(eng, "noop", NOOP, args.cold, args.gap)
            if not args.no_back_to_back:
                report["cold_lean_back_to_back"] = cold_starts(eng, "noop", NOOP, args.cold, 0,
                                                               False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def run(args):
    if args.only == "cold":
        return run_cold_only(args)
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "command": " ".join(sys.argv)}
    tmp = tempfile.mkdtemp(prefix="gust-bench-")
    try:
        with Engine(os.path.join(tmp, "lean"), ["--keep-alive", "10m"] + args.engine_arg) as eng:
            report["engine_rss_idle_kb"] = rss_kb(eng.pid())
            zygotes = children(eng.pid())
            report["zygote_rss_kb_lean"] = sum(rss_kb(p) for p in zygotes)
            report["cold_lean"] = cold_starts(eng, "noop", NOOP, args.cold, args.gap)
            report["cold_lean_back_to_back"] = cold_starts(eng, "noop", NOOP, args.cold, 0, False)
            eng.invoke("noop")
            report["warm_latency"] = eng.loadgen("noop", 1, args.duration)
            report["warm_throughput"] = {
                c: eng.loadgen("noop", c, args.duration) for c in args.connections}
            report["idle_sandbox_memory"] = idle_memory(eng, "noop")
            report["creation_rate"] = creation_rate(eng, args.burst, 8)
        with Engine(os.path.join(tmp, "sk"),
                    ["--preload", "numpy,sklearn,sklearn.neighbors"] + args.engine_arg) as eng:
            report["zygote_rss_kb_sklearn"] = sum(rss_kb(p) for p in children(eng.pid()))
            report["cold_sklearn"] = cold_starts(eng, "sk", SKLEARN, args.cold, args.gap)
            report["cold_sklearn_back_to_back"] = cold_starts(eng, "sk", SKLEARN, args.cold, 0,
                                                              False)
            eng.invoke("sk")
            report["idle_sandbox_memory_sklearn"] = idle_memory(eng, "sk")
        report["peer_fresh_python_noop"] = naive_peer("pass", args.peer)
        report["peer_fresh_python_sklearn"] = naive_peer(
            "import numpy, sklearn, sklearn.neighbors", max(3, args.peer // 4))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cold", type=int, default=100, help="cold starts per kind")
    ap.add_argument("--gap", type=float, default=0.2,
                    help="seconds between spaced cold starts (back-to-back ones are measured too)")
    ap.add_argument("--duration", type=float, default=5, help="seconds per warm load run")
    ap.add_argument("--connections", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--burst", type=int, default=100, help="sandboxes for the creation rate")
    ap.add_argument("--peer", type=int, default=20, help="fresh-interpreter peer runs")
    ap.add_argument("--out", help="write the JSON report here")
    ap.add_argument("--only", choices=["cold"],
                    help="cold: only the lean cold starts (spaced and back to back)")
    ap.add_argument("--no-back-to-back", action="store_true",
                    help="with --only cold: skip the back-to-back cold starts")
    ap.add_argument("--engine-arg", action="append", default=[],
                    help="extra argument for `gust up` (repeatable), e.g. --engine-arg=--prefork=2")
    args = ap.parse_args()
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
