#!/usr/bin/env python3
"""Web apps (issue 4): the article's Flask /time app served by gust (through
its HTTP gateway, each request in an isolated sandbox) and, in the same run,
by gunicorn `-w 2` (sync) and `-w 4 -k gthread`, each driven by
`wrk -t2 -c32 -d10s --latency`; plus the first request to an app scaled to
zero. Also accounts the CPU each server used per request (engine vs
sandboxes for gust), which is what bounds throughput on a small machine.

    make bench-web        # writes bench/out/web.json and prints a table
"""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import BIN, Engine, free_port, machine, percentile  # noqa: E402 -- sys.path set above

TIME_APP = '''import datetime
from flask import Flask
app = Flask(__name__)

@app.route("/time")
def time():
    return str(datetime.datetime.now())
'''
PYTHON = "/usr/bin/python3"


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def cpu_ticks(root_pid):
    """{pid: (comm, utime+stime ticks)} of a process and all its descendants."""
    total, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        total[pid] = (comm, int(fields[11]) + int(fields[12]))
    return total


def cpu_used(before, after):
    """CPU seconds per process name between two cpu_ticks samples."""
    tck = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid, (name, ticks) in after.items():
        delta = ticks - before.get(pid, (name, 0))[1]
        used[name] = used.get(name, 0) + delta / tck
    return used


def parse_ms(text):
    m = re.match(r"([0-9.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(url, duration, connections=32, threads=2):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
                          url], capture_output=True, text=True, check=True).stdout
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))}
    for p in ("50", "75", "90", "99"):
        result[f"p{p}_ms"] = parse_ms(re.search(rf"\s{p}%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    result["socket_errors"] = sum(int(x) for x in socket.groups()) if socket else 0
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    return result


def measured(url, duration, warmup, root_pid):
    """A warm-up run, then the measured run with the CPU it cost."""
    if warmup:
        wrk(url, warmup)
    load = loadavg()
    before = cpu_ticks(root_pid)
    result = wrk(url, duration)
    used = cpu_used(before, cpu_ticks(root_pid))
    result["loadavg_before"] = load
    result["cpu_s"] = {k: round(v, 2) for k, v in used.items()}
    result["cpu_us_per_request"] = {k: round(v / result["requests"] * 1e6, 1)
                                    for k, v in used.items() if result["requests"]}
    return result


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def run_gunicorn(app_dir, args, duration, warmup):
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-m", "gunicorn", "-b", f"127.0.0.1:{port}"] + args +
                            ["app:app"], cwd=app_dir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/time"
        wait_http(url)
        return measured(url, duration, warmup, proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def gust(cmd, project, url):
    return subprocess.run([os.path.join(BIN, "gust")] + cmd, cwd=project, check=True,
                          capture_output=True, text=True, env=dict(os.environ, GUST_URL=url))


def sandboxes_of(eng, name):
    return [s for s in json.loads(eng.call("GET", "/v1/sandboxes")[2])["sandboxes"]
            if s["function"] == name]


def first_requests_from_zero(eng, name, n, gap_s):
    """n requests, each to the app scaled to zero (its idle sandbox stopped first)."""
    times, inits = [], []
    for _ in range(n):
        # Requests wrk left behind may still be finishing: recycle until none is left.
        deadline = time.time() + 10
        while True:
            eng.call("POST", f"/v1/functions/{name}/recycle")
            time.sleep(0.005)
            left = sandboxes_of(eng, name)
            if not left or time.time() > deadline:
                break
        assert not left, f"the app did not scale to zero: {left}"
        time.sleep(gap_s)
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{eng.url}/web/{name}/time", timeout=30) as r:
            assert r.status == 200
            r.read()
        times.append((time.perf_counter() - t0) * 1000)
        records = json.loads(eng.call("GET", f"/v1/invocations?function={name}&limit=1")[2])
        record = records["invocations"][0]
        assert record["cold"], "not a cold start"
        inits.append(record["init_ms"])
    return {"n": n, "p50_ms": round(percentile(times, 50), 2),
            "p90_ms": round(percentile(times, 90), 2), "max_ms": round(max(times), 2),
            "init_p50_ms": round(percentile(inits, 50), 2), "loadavg": loadavg()}


def run_gust(app_dir, duration, warmup, cold_n, state):
    project = os.path.join(state, "timeapp")
    shutil.copytree(app_dir, project)
    with open(os.path.join(project, "gust_settings.json"), "w") as f:
        json.dump({"bench": {"app_function": "app.app", "project_name": "timeapp"}}, f)
    args = ["--preload", "flask", "--keep-alive", "10m"]
    with Engine(os.path.join(state, "engine"), args) as eng:
        gust(["deploy", "bench"], project, eng.url)
        url = f"{eng.url}/web/timeapp-bench/time"
        wait_http(url)
        result = measured(url, duration, warmup, eng.pid())
        result["sandboxes_after"] = len(sandboxes_of(eng, "timeapp-bench"))
        if cold_n:
            result["first_request_from_zero"] = first_requests_from_zero(eng, "timeapp-bench",
                                                                         cold_n, 0.3)
        return result


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of wrk before measuring")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every server this many times, interleaved; medians reported")
    ap.add_argument("--cold", type=int, default=20, help="first requests from zero to time")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "out",
                                                  "web.json"))
    args = ap.parse_args()

    state = tempfile.mkdtemp(prefix="gust-bench-web-")
    app_dir = os.path.join(state, "app")
    os.makedirs(app_dir)
    with open(os.path.join(app_dir, "app.py"), "w") as f:
        f.write(TIME_APP)
    runs = {"gust": [], "gunicorn -w 2 (sync)": [], "gunicorn -w 4 -k gthread": []}
    try:
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}, load {loadavg()}", file=sys.stderr, flush=True)
            runs["gust"].append(run_gust(app_dir, args.duration, args.warmup,
                                         args.cold if r == 0 else 0, os.path.join(state, str(r))))
            runs["gunicorn -w 2 (sync)"].append(
                run_gunicorn(app_dir, ["-w", "2"], args.duration, args.warmup))
            runs["gunicorn -w 4 -k gthread"].append(
                run_gunicorn(app_dir, ["-w", "4", "-k", "gthread"], args.duration, args.warmup))
    finally:
        shutil.rmtree(state, ignore_errors=True)

    def median(server, key):
        return statistics.median(run[key] for run in runs[server])

    summary = {}
    for server in runs:
        summary[server] = {k: median(server, k) for k in
                           ("requests_per_s", "p50_ms", "p90_ms", "p99_ms")}
        summary[server]["errors"] = sum(run["non_2xx"] + run["socket_errors"]
                                        for run in runs[server])
    sync = summary["gunicorn -w 2 (sync)"]
    report = {
        "benchmark": "web",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "wrk -t2 -c32 -d%ds --latency (warm-up %ds), %d round(s)" % (
            args.duration, args.warmup, args.rounds),
        "summary": summary,
        "ratio_vs_gunicorn_sync": {
            "requests_per_s": round(summary["gust"]["requests_per_s"] / sync["requests_per_s"], 3),
            "p99": round(summary["gust"]["p99_ms"] / sync["p99_ms"], 3),
        },
        "first_request_from_zero": runs["gust"][0].get("first_request_from_zero"),
        "runs": runs,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)

    print(f"\nweb benchmark, {report['date']}, {report['machine']}")
    print(report["command"])
    print(f"{'server':28s} {'req/s':>9s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} "
          f"{'errors':>7s}  CPU per request")
    for server, s in summary.items():
        cpu = runs[server][-1]["cpu_us_per_request"]
        cpu_text = ", ".join(f"{k} {v:.0f} us" for k, v in cpu.items())
        print(f"{server:28s} {s['requests_per_s']:9.0f} {s['p50_ms']:8.2f} {s['p90_ms']:8.2f} "
              f"{s['p99_ms']:8.2f} {s['errors']:7d}  {cpu_text}")
    ratio = report["ratio_vs_gunicorn_sync"]
    print(f"gust / gunicorn sync: {ratio['requests_per_s']:.2f}x req/s, "
          f"p99 ratio {ratio['p99']:.2f} (target >= 1.0x, p99 ratio <= 1.0)")
    cold = report["first_request_from_zero"]
    if cold:
        print(f"first request to an app scaled to zero ({cold['n']} samples): p50 "
              f"{cold['p50_ms']:.1f} ms, p90 {cold['p90_ms']:.1f} ms, max {cold['max_ms']:.1f} ms "
              f"(init p50 {cold['init_p50_ms']:.1f} ms; target <= 50 ms)")
    print(f"load average after: {loadavg()}; wrote {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
