#!/usr/bin/python3
"""Events benchmark (issue 5), one command: `make bench-events`.

Measures, each with its peer from the same run:
  accept   async invocations accepted per second with durability on (fsync, group commit),
           gust-loadgen with X-Amz-Invocation-Type: Event; peers: the same accept path with
           --async-no-fsync, and SQLite's own rate of one fsync'd commit per event (what
           durability costs without group commit)
  drain    how fast 10,000 queued events of a no-op function run (--async-concurrency 32,
           the default, and 8); peer: the warm synchronous invoke throughput of the same
           function (gust-loadgen)
  jitter   schedule firing delay (handler start - tick time), p50/p99, rate(1 second) x 3
  recovery kill -9 with 10,000 queued, restart: time until the engine serves, until the first
           recovered event runs, until all have run
Writes JSON (--out) and prints a table. Note the load average: the machine is shared.
"""
import argparse
import calendar
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import BIN, Engine, machine, percentile  # noqa: E402 -- sys.path set above

NOOP = "def handler(event, context):\n    return None\n"
RECORDER = ("import json, time\n"
            "def handler(event, context):\n"
            "    print('FIRED', json.dumps({'time': event.get('time'), 'now': time.time()}))\n")
EVENT = "X-Amz-Invocation-Type: Event"


def loadgen(eng, name, connections, duration, headers=()):
    args = [os.path.join(BIN, "gust-loadgen"), "--port", str(eng.port), "--path",
            f"/2015-03-31/functions/{name}/invocations", "--method", "POST", "--body", "{}",
            "-c", str(connections), "-d", str(duration), "--warmup", "1"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def concurrency(eng, name, n):
    if n is None:
        return eng.call("DELETE", f"/2017-10-31/functions/{name}/concurrency")
    status, _, data = eng.call("PUT", f"/2017-10-31/functions/{name}/concurrency",
                               {"ReservedConcurrentExecutions": n})
    assert status == 200, data


def stored(eng):
    return json.loads(eng.call("GET", "/v1/async")[2])["stored"]


def accept_run(state, args, connections, duration):
    with Engine(state, args) as eng:
        eng.deploy("sink", NOOP)
        concurrency(eng, "sink", 0)  # accepted events wait: this measures accepting only
        r = loadgen(eng, "sink", connections, duration, [EVENT])
        r["stored_queued"] = stored(eng)["queued"]
        r["commits"] = json.loads(eng.call("GET", "/v1/async")[2])["commits"]
        return r


def sqlite_fsync_rate(path, seconds=3.0):
    """One INSERT per fsync'd transaction (WAL, synchronous=FULL): durability without
    group commit."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS e (id TEXT, payload TEXT)")
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO e VALUES (?, '{}')", (str(n),))
        db.execute("COMMIT")
        n += 1
    db.close()
    return n / (time.time() - t0)


def accept_many(eng, name, total, clients=32):
    """total async invokes over keep-alive connections (Python threads); returns seconds."""
    import http.client
    errors = []

    def client(count):
        conn = http.client.HTTPConnection("127.0.0.1", eng.port, timeout=60)
        for _ in range(count):
            conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body="{}",
                         headers={"X-Amz-Invocation-Type": "Event"})
            r = conn.getresponse()
            r.read()
            if r.status != 202:
                errors.append(r.status)
        conn.close()
    t0 = time.time()
    threads = [threading.Thread(target=client, args=(total // clients + (k < total % clients),))
               for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    return time.time() - t0


def wait_drained(eng, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if stored(eng)["queued"] == 0:
            return time.time()
        time.sleep(0.02)
    raise RuntimeError("queue did not drain")


def drain_run(state, total, args=()):
    with Engine(state, args) as eng:
        eng.deploy("noop", NOOP)
        for _ in range(3):
            eng.invoke("noop")
        sync = loadgen(eng, "noop", 4, 5)
        concurrency(eng, "noop", 0)
        accept_many(eng, "noop", total)
        assert stored(eng)["queued"] == total
        t0 = time.time()
        concurrency(eng, "noop", None)  # lift the throttle: the queue drains
        t1 = wait_drained(eng)
        return {"events": total, "seconds": t1 - t0, "per_s": total / (t1 - t0),
                "sync_rps": sync["rps"], "sync": sync}


def jitter_run(state, seconds):
    with Engine(state) as eng:
        names = [f"tick{i}" for i in range(3)]
        for n in names:
            eng.deploy(n, RECORDER)
            eng.invoke(n)  # warm
            status, _, data = eng.call("PUT", f"/v1/schedules/{n}",
                                       {"function": n, "expression": "rate(1 second)"})
            assert status == 201, data
        time.sleep(seconds + 1.5)
        for n in names:
            eng.call("DELETE", f"/v1/schedules/{n}")
        time.sleep(1.0)  # logs reach the file through a batch writer
        delays = []
        for n in names:
            text = json.loads(eng.call("GET", f"/v1/functions/{n}/logs")[2])["text"]
            for line in text.splitlines():
                if "FIRED " not in line:
                    continue
                doc = json.loads(line.split("FIRED ", 1)[1])
                if not doc["time"]:
                    continue  # the warm-up invoke
                tick = calendar.timegm(time.strptime(doc["time"], "%Y-%m-%dT%H:%M:%SZ"))
                delays.append((doc["now"] - tick) * 1000)
        return {"samples": len(delays), "p50_ms": percentile(delays, 50),
                "p99_ms": percentile(delays, 99), "max_ms": max(delays)}


def recovery_run(state, total):
    eng = Engine(state).start()
    eng.deploy("noop", NOOP)
    concurrency(eng, "noop", 0)
    accept_many(eng, "noop", total)
    queued = stored(eng)["queued"]
    eng.proc.send_signal(signal.SIGKILL)
    eng.proc.wait()
    # Same port and state dir (a restart cleans what the killed engine left).
    t0 = time.time()
    eng.start(poll_s=0.005)
    t_ready = time.time() - t0
    concurrency(eng, "noop", None)
    first = None
    while first is None and time.time() - t0 < 60:
        recs = json.loads(eng.call("GET", "/v1/invocations?function=noop&limit=1")[2])
        if recs["invocations"]:
            first = recs["invocations"][0]["start_ms"] / 1000.0 - t0
        else:
            time.sleep(0.005)
    t_drained = wait_drained(eng) - t0
    eng.stop()
    return {"queued_at_kill": queued, "ready_s": t_ready, "first_event_s": first,
            "all_run_s": t_drained}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/out/events.json")
    ap.add_argument("--connections", type=int, default=128)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--jitter-seconds", type=int, default=20)
    a = ap.parse_args()
    load_before = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="gust-bench-events-")
    res = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "load_before": load_before}
    res["accept_fsync"] = accept_run(f"{tmp}/a1", [], a.connections, a.duration)
    print("accept (fsync):", json.dumps(res["accept_fsync"]), flush=True)
    res["accept_no_fsync"] = accept_run(f"{tmp}/a2", ["--async-no-fsync"], a.connections,
                                        a.duration)
    res["sqlite_commit_per_event_per_s"] = sqlite_fsync_rate(f"{tmp}/raw.db")
    res["drain"] = drain_run(f"{tmp}/d", a.events)
    # A running event's slot is held until its outcome is fsync'd (that bounds what can
    # run twice after a crash), so the drain rate depends on --async-concurrency and fsync.
    res["drain_c8"] = drain_run(f"{tmp}/d8", a.events, ["--async-concurrency", "8"])
    res["jitter"] = jitter_run(f"{tmp}/j", a.jitter_seconds)
    res["recovery"] = recovery_run(f"{tmp}/r", a.events)
    res["load_after"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)

    af, an = res["accept_fsync"], res["accept_no_fsync"]
    raw = res["sqlite_commit_per_event_per_s"]
    d, j, r = res["drain"], res["jitter"], res["recovery"]
    print(f"\nEvents benchmark — {res['date']}, {res['machine']}")
    print(f"load average before {load_before[0]:.2f}, after {res['load_after'][0]:.2f}\n")
    print("| what | gust | peer (same run) |\n|---|---|---|")
    print(f"| async accepts/s, fsync + group commit, {a.connections} connections | "
          f"**{af['rps']:,.0f}/s** (p50 {af['p50_ms']:.2f} ms, p99 {af['p99_ms']:.2f} ms; "
          f"{af['non_2xx']} non-202; {af['commits']} commits) | no fsync: {an['rps']:,.0f}/s "
          f"({af['rps'] / an['rps']:.2f}x); one fsync'd SQLite commit per event: {raw:,.0f}/s "
          f"(group commit accepts {af['rps'] / raw:.1f}x as many) |")
    print(f"| drain of {d['events']:,} queued no-op events | **{d['per_s']:,.0f}/s** "
          f"({d['seconds']:.2f} s) | warm sync invoke, 4 connections: {d['sync_rps']:,.0f} req/s |")
    d2 = res["drain_c8"]
    print(f"| same, --async-concurrency 8 (default 32) | **{d2['per_s']:,.0f}/s** "
          f"({d2['seconds']:.2f} s) | warm sync invoke: {d2['sync_rps']:,.0f} req/s |")
    print(f"| schedule firing delay, rate(1 second) x 3, {j['samples']} ticks | "
          f"**p50 {j['p50_ms']:.1f} ms, p99 {j['p99_ms']:.1f} ms** (max {j['max_ms']:.1f}) | "
          f"target: within 100 ms |")
    print(f"| recovery after kill -9 with {r['queued_at_kill']:,} queued | serving after "
          f"**{r['ready_s']:.2f} s**; first recovered event ran at {r['first_event_s']:.2f} s; "
          f"all ran by {r['all_run_s']:.2f} s | |")
    print(f"\nraw JSON: {a.out}")


if __name__ == "__main__":
    main()
