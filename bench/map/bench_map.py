#!/usr/bin/env python3
"""Map benchmark (issue 3): gust's map against every peer of the issue, in one run.

Peers (all with 2 workers): multiprocessing.Pool with chunksize=1 and with its
default chunking, concurrent.futures.ProcessPoolExecutor, joblib (loky) and a
dask.distributed LocalCluster. Workloads:

  noop     10,000 no-op tasks (tasks/s): gust chunksize=1 and auto-chunked
  cpu      1,000 tasks of ~5 ms CPU (s; ideal = serial / 2)
  sleep    100 and 1,000 tasks that sleep 1 s (s, end to end)
  knn      the article's KNN search, n_neighbors 1..8: ex.map, joblib's gust
           backend under GridSearchCV, against serial, joblib loky, GridSearchCV(n_jobs=2)
  latency  a fresh 1-task map on a warm engine, call -> result in hand

Timing: from the map call to every result in hand. Peers' pools are started
(and warmed with a tiny map) before the clock starts; their start-up is
reported apart. gust runs against an engine that is already up: "cold" runs
start from no sandbox of the map's function (its sandboxes are recycled
first), "warm" runs reuse the sandboxes the previous run left.

Writes a JSON report (--out) and prints a table. One command: `make bench-map`.
"""
import argparse
import concurrent.futures as cf
import contextlib
import datetime
import functools
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "python"))
sys.path.insert(0, HERE)
from common import Engine, machine  # noqa: E402 -- sys.path set above

import tasks  # noqa: E402 -- sys.path set above

PEERS = ["mp.Pool c=1", "mp.Pool default", "ProcessPoolExecutor", "joblib loky",
         "dask LocalCluster"]
WORKERS = 2


def load():
    return os.getloadavg()[0]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def summary(times, n_tasks=None, note=None, **extra):
    out = {"runs_s": [round(t, 4) for t in times], "median_s": round(statistics.median(times), 4),
           "load": round(load(), 2)}
    if n_tasks:
        out["tasks_per_s"] = round(n_tasks / statistics.median(times), 1)
    if note:
        out["note"] = note
    out.update(extra)
    return out


# ---------------------------------------------------------------- peers

class Peer:
    """One peer executor, started once per workload; map(f, items) -> list."""

    def __init__(self, name):
        self.name = name
        self.startup_s = None

    def __enter__(self):
        t0 = time.perf_counter()
        if self.name.startswith("mp.Pool"):
            self.pool = multiprocessing.get_context("fork").Pool(WORKERS)
        elif self.name == "ProcessPoolExecutor":
            self.pool = cf.ProcessPoolExecutor(WORKERS,
                                               mp_context=multiprocessing.get_context("fork"))
        elif self.name == "joblib loky":
            import joblib
            self.pool = joblib.Parallel(n_jobs=WORKERS, backend="loky")
        elif self.name == "dask LocalCluster":
            from dask.distributed import Client, LocalCluster
            self.cluster = LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=40)
            self.pool = Client(self.cluster)
        self.map(tasks.noop, range(WORKERS * 2))  # workers up and warm
        self.startup_s = time.perf_counter() - t0
        return self

    def __exit__(self, *exc):
        if self.name.startswith("mp.Pool"):
            self.pool.terminate()
            self.pool.join()
        elif self.name == "ProcessPoolExecutor":
            self.pool.shutdown()
        elif self.name == "joblib loky":
            from joblib.externals.loky import get_reusable_executor
            get_reusable_executor().shutdown(wait=True)
        elif self.name == "dask LocalCluster":
            self.pool.close()
            self.cluster.close()

    def map(self, f, items):
        items = list(items)
        if self.name == "mp.Pool c=1":
            return self.pool.map(f, items, chunksize=1)
        if self.name == "mp.Pool default":
            return self.pool.map(f, items)
        if self.name == "ProcessPoolExecutor":
            return list(self.pool.map(f, items))
        if self.name == "joblib loky":
            import joblib
            return self.pool(joblib.delayed(f)(x) for x in items)
        futures = self.pool.map(f, items, pure=False)
        return self.pool.gather(futures)


def run_peers(peers, f, items, reps, check=None):
    out = {}
    for name in peers:
        with Peer(name) as p:
            times = []
            for _ in range(reps):
                t, result = timed(lambda: p.map(f, items))
                if check:
                    check(result)
                times.append(t)
            out[name] = summary(times, len(items), startup_s=round(p.startup_s, 3))
        print("  %-22s %s" % (name, _short(out[name])), flush=True)
    return out


# ---------------------------------------------------------------- gust

class Gust:
    def __init__(self, engine):
        import gust
        self.gust = gust
        self.engine = engine
        self.ex = gust.FunctionExecutor(url=engine.url, show_progress=False)

    def map(self, f, items, **kw):
        fs = self.ex.map(f, items, **kw)
        return fs, self.ex.get_result(fs)

    def recycle(self, function):
        """Kills the function's idle sandboxes and waits until they are gone
        and the engine is at rest again: the kernel tears network namespaces
        down in the background (under the lock a new sandbox's namespace
        needs) and the zygote refills its pool of pre-forked children, both of
        which would otherwise slow the next cold run for a reason no user
        meets (sandboxes normally go after a 10-minute keep-alive, not just
        before a burst)."""
        self.engine.call("POST", "/v1/functions/%s/recycle" % function)
        killed = 0
        for _ in range(3000):
            sbx = json.loads(self.engine.call("GET", "/v1/sandboxes")[2])["sandboxes"]
            mine = sum(1 for s in sbx if s["function"] == function)
            killed = max(killed, mine)
            if not mine:
                break
            time.sleep(0.01)
        time.sleep(min(3.0, 0.2 + killed * 0.003))
        self.engine.wait_settled()

    def run(self, label, f, items, reps, cold=True, check=None, **kw):
        """reps timed maps; cold: recycle the function's sandboxes before each."""
        times, colds, sandboxes, functions = [], [], [], set()
        for _ in range(reps):
            for fn in functions:
                if cold:
                    self.recycle(fn)
            t, (fs, result) = timed(lambda: self.map(f, items, **kw))
            if check:
                check(result)
            times.append(t)
            colds.append(sum(1 for x in fs if x.stats.get("cold")))
            sandboxes.append(len({x.stats.get("sandbox") for x in fs}))
            functions.update(j.function for j in self.ex.jobs if j.function)
            self.ex.clean()
            self.ex.futures.clear()
        out = summary(times, len(items), cold_tasks=colds, sandboxes=sandboxes)
        print("  %-22s %s" % (label, _short(out)), flush=True)
        return out


def _short(r):
    text = "median %.3f s" % r["median_s"]
    if "tasks_per_s" in r:
        text += ", %.0f tasks/s" % r["tasks_per_s"]
    if "startup_s" in r:
        text += " (start-up %.2f s)" % r["startup_s"]
    if "sandboxes" in r:
        text += " (sandboxes %s)" % r["sandboxes"]
    text += " [load %.1f]" % r["load"]
    return text


def expect_len(n):
    def check(result):
        assert len(result) == n, "got %d results, expected %d" % (len(result), n)
    return check


# ---------------------------------------------------------------- workloads

def bench_noop(g, peers, args):
    n = args.noop_tasks
    items = range(n)
    check = expect_len(n)
    print("noop: %d no-op tasks" % n, flush=True)
    out = {"tasks": n}
    out["gust chunksize=1 (cold)"] = g.run("gust chunksize=1 cold", tasks.noop, items, args.reps,
                                           cold=True, check=check, chunksize=1)
    out["gust chunksize=1 (warm)"] = g.run("gust chunksize=1 warm", tasks.noop, items, args.reps,
                                           cold=False, check=check, chunksize=1)
    out["gust auto (cold)"] = g.run("gust auto cold", tasks.noop, items, args.reps, cold=True,
                                    check=check)
    if args.interleave:
        out.update(interleaved(g, peers, tasks.noop, list(items), args.reps, check))
        return out
    out["gust auto (warm)"] = g.run("gust auto warm", tasks.noop, items, args.reps, cold=False,
                                    check=check)
    out.update(run_peers(peers, tasks.noop, items, args.reps, check))
    return out


def bench_cpu(g, peers, args):
    n = args.cpu_tasks
    loops = tasks.calibrate()
    serial_t, _ = timed(lambda: [tasks.burn(loops) for _ in range(50)])
    per_task = serial_t / 50
    print("cpu: %d tasks of %.2f ms CPU (%d loops); serial %.2f s, ideal on %d cores %.2f s"
          % (n, per_task * 1000, loops, per_task * n, WORKERS, per_task * n / WORKERS), flush=True)
    items = [loops] * n
    check = expect_len(n)
    out = {"tasks": n, "task_ms": round(per_task * 1000, 3), "serial_s": round(per_task * n, 3),
           "ideal_s": round(per_task * n / WORKERS, 3)}
    out["gust auto (cold)"] = g.run("gust auto cold", tasks.burn, items, args.reps, cold=True,
                                    check=check)
    if args.interleave:
        out.update(interleaved(g, peers, tasks.burn, items, args.reps, check))
        return out
    out["gust auto (warm)"] = g.run("gust auto warm", tasks.burn, items, args.reps, cold=False,
                                    check=check)
    out.update(run_peers(peers, tasks.burn, items, args.reps, check))
    return out


def interleaved(g, peers, f, items, reps, check):
    """gust (warm) and every peer take turns, one map each per round (the
    first one rotating), so this VM's CPU speed swings hit them alike."""
    runners = {"gust auto (warm)": lambda: g.map(f, items)[1]}
    times = {"gust auto (warm)": []}
    with contextlib.ExitStack() as stack:
        for name in peers:
            p = stack.enter_context(Peer(name))
            runners[name] = functools.partial(p.map, f, items)
            times[name] = []
        g.map(f, items[:10])  # gust's sandboxes up and warm, as the peers' pools are
        g.ex.clean()
        names = list(runners)
        for r in range(reps):
            for name in names[r % len(names):] + names[:r % len(names)]:
                t, result = timed(runners[name])
                check(result)
                times[name].append(t)
            g.ex.clean()
            g.ex.futures.clear()
    out = {name: summary(ts, len(items), interleaved=True) for name, ts in times.items()}
    for name in names:
        print("  %-22s %s (interleaved)" % (name, _short(out[name])), flush=True)
    return out


def bench_sleep(g, peers, args):
    out = {}
    for n in args.sleep_tasks:
        print("sleep: %d tasks of 1 s" % n, flush=True)
        check = expect_len(n)
        r = {"tasks": n}
        r["gust (cold)"] = g.run("gust cold", tasks.sleep1, range(n), args.sleep_reps, cold=True,
                                 check=check)
        r["gust (warm)"] = g.run("gust warm", tasks.sleep1, range(n), 1, cold=False, check=check)
        # Every peer runs 2 tasks at a time: N tasks take N/2 s. They run the
        # real N with --full-sleep-peers, else a short run, scaled up (labelled).
        m = n if args.full_sleep_peers else min(n, args.peer_sleep_tasks)
        peer = run_peers(peers, tasks.sleep1, range(m), 1, expect_len(m))
        for name, res in peer.items():
            if m != n:
                res["measured_tasks"] = m
                res["measured_s"] = res["median_s"]
                res["median_s"] = round(res["median_s"] * n / m, 3)
                res["note"] = "scaled from %d tasks (x%.0f)" % (m, n / m)
                res.pop("tasks_per_s", None)
        r.update(peer)
        out[str(n)] = r
    return out


def bench_knn(g, peers, args):
    out = knn_runs(g, peers, args, "")
    # The same with sklearn imported once in the zygote (`gust up --preload`),
    # as a data scientist running sklearn maps would start the engine.
    print("knn: engine with --preload %s" % KNN_PRELOAD, flush=True)
    state = tempfile.mkdtemp(prefix="gust-bench-map-knn-")
    with Engine(state, args.engine_arg + ["--preload", KNN_PRELOAD]) as eng:
        pre = Gust(eng)
        pre.map(tasks.noop, [0])
        out.update(knn_runs(pre, [], args, " preload"))
    return out


KNN_PRELOAD = "numpy,sklearn,sklearn.neighbors"


def knn_runs(g, peers, args, suffix):
    import joblib
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    Xtrain, Xtest, ytrain, ytest = tasks.knn_data()
    hyper = [{"n_neighbors": k} for k in range(1, 9)]

    def train_model(hyperparams):  # the article's closure over the training data
        classifier = KNeighborsClassifier(**hyperparams)
        classifier.fit(Xtrain, ytrain)
        return classifier

    def scores(classifiers):
        return [round(c.score(Xtest, ytest), 4) for c in classifiers]

    print("knn: n_neighbors 1..8", flush=True)
    out = {}
    t, local = timed(lambda: [train_model(h) for h in hyper])
    expected = scores(local)
    if not suffix:
        out["serial (local)"] = summary([t])

    def check(classifiers):
        assert scores(classifiers) == expected, "scores differ from the local run"

    out["gust ex.map (cold)" + suffix] = g.run("gust ex.map cold" + suffix, train_model, hyper,
                                               args.reps, cold=True, check=check)
    out["gust ex.map (warm)" + suffix] = g.run("gust ex.map warm" + suffix, train_model, hyper,
                                               args.reps, cold=False, check=check)
    if "joblib loky" in peers:
        with Peer("joblib loky") as p:
            t, res = timed(lambda: p.map(train_model, hyper))
            assert scores(res) == expected
            out["joblib loky"] = summary([t], startup_s=round(p.startup_s, 3))

    grid = {"n_neighbors": list(range(1, 9))}

    def search(backend, **kw):
        with joblib.parallel_backend(backend, **kw):
            return GridSearchCV(KNeighborsClassifier(), grid, n_jobs=-1).fit(Xtrain, ytrain)

    t, local_search = timed(lambda: search("loky", n_jobs=WORKERS))
    if not suffix:
        out["GridSearchCV joblib loky n_jobs=2"] = summary([t])
    g.gust.register_joblib()
    times = []
    for _ in range(args.reps):
        t, s = timed(lambda: search("gust", url=g.engine.url))
        assert s.best_params_ == local_search.best_params_, (
            s.best_params_, local_search.best_params_)
        times.append(t)
    out["GridSearchCV gust backend" + suffix] = summary(times, best=local_search.best_params_)
    for k, v in out.items():
        print("  %-34s %s" % (k, _short(v)), flush=True)
    return out


def bench_latency(g, peers, args):
    print("latency: a 1-task map on a warm engine, call -> result", flush=True)
    n = args.latency_reps
    out = {}
    g.map(tasks.noop, [0])  # the function's sandbox exists and is warm
    same = []
    for i in range(n):
        t, (_, r) = timed(lambda: g.map(tasks.noop, [i]))
        assert r == [i]
        same.append(t)
    g.ex.clean()
    out["gust, same function (warm sandbox)"] = _lat(same)
    fresh = []
    for i in range(min(n, 30)):
        f = eval("lambda x: x + %d" % i)  # a new function: new code, new sandbox
        t, (_, r) = timed(lambda: g.map(f, [1]))
        assert r == [1 + i]
        fresh.append(t)
    g.ex.clean()
    out["gust, new function (upload + cold sandbox)"] = _lat(fresh)
    with cf.ProcessPoolExecutor(WORKERS) as pool:
        pool.submit(tasks.noop, 0).result()
        lat = []
        for i in range(n):
            t, _ = timed(lambda: pool.submit(tasks.noop, i).result())
            lat.append(t)
    out["ProcessPoolExecutor (started), submit -> result"] = _lat(lat)
    lat = []
    for i in range(min(n, 10)):
        def fresh_pool():
            with multiprocessing.get_context("fork").Pool(WORKERS) as p:
                return p.map(tasks.noop, [i])
        t, _ = timed(fresh_pool)
        lat.append(t)
    out["mp.Pool created for the call"] = _lat(lat)
    for k, v in out.items():
        print("  %-48s p50 %.2f ms, p90 %.2f ms [load %.1f]"
              % (k, v["p50_ms"], v["p90_ms"], v["load"]), flush=True)
    return out


def _lat(times):
    ms = sorted(t * 1000 for t in times)
    return {"n": len(ms), "p50_ms": round(ms[len(ms) // 2], 3),
            "p90_ms": round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 3),
            "min_ms": round(ms[0], 3), "load": round(load(), 2)}


WORKLOADS = {"noop": bench_noop, "cpu": bench_cpu, "sleep": bench_sleep, "knn": bench_knn,
             "latency": bench_latency}


def print_table(report):
    print("\n| workload | gust | %s |" % " | ".join(PEERS))
    print("|---|---|" + "---|" * len(PEERS))
    w = report["workloads"]

    def cell(r, rate=False):
        if r is None:
            return "-"
        if rate and "tasks_per_s" in r:
            return "%.0f/s" % r["tasks_per_s"]
        return "%.2f s" % r["median_s"] + ("*" if "note" in r else "")

    if "noop" in w:
        r = w["noop"]
        g = "c=1 %s / %s warm; auto %s / %s warm" % (
            cell(r["gust chunksize=1 (cold)"], True), cell(r["gust chunksize=1 (warm)"], True),
            cell(r["gust auto (cold)"], True), cell(r["gust auto (warm)"], True))
        print("| %d no-op tasks | %s | %s |" % (r["tasks"], g, " | ".join(
            cell(r.get(p), True) for p in PEERS)))
    if "cpu" in w:
        r = w["cpu"]
        g = "%s / %s warm (ideal %.2f s)" % (cell(r["gust auto (cold)"]),
                                             cell(r["gust auto (warm)"]), r["ideal_s"])
        print("| %d tasks of %.1f ms CPU | %s | %s |" % (r["tasks"], r["task_ms"], g, " | ".join(
            cell(r.get(p)) for p in PEERS)))
    if "sleep" in w:
        for n, r in w["sleep"].items():
            g = "%s / %s warm" % (cell(r["gust (cold)"]), cell(r["gust (warm)"]))
            print("| %s tasks sleeping 1 s | %s | %s |" % (n, g, " | ".join(
                cell(r.get(p)) for p in PEERS)))
    if "knn" in w:
        r = w["knn"]
        for suffix, label in (("", "default engine"), (" preload", "--preload " + KNN_PRELOAD)):
            print("| KNN n_neighbors 1..8, %s | ex.map %s / %s warm; GridSearchCV %s | "
                  "joblib loky %s; GridSearchCV loky %s; serial %s |" % (
                      label, cell(r.get("gust ex.map (cold)" + suffix)),
                      cell(r.get("gust ex.map (warm)" + suffix)),
                      cell(r.get("GridSearchCV gust backend" + suffix)),
                      cell(r.get("joblib loky")), cell(r.get("GridSearchCV joblib loky n_jobs=2")),
                      cell(r.get("serial (local)"))))
    if "latency" in w:
        for k, v in w["latency"].items():
            print("| 1-task map: %s | p50 %.1f ms, p90 %.1f ms |" % (k, v["p50_ms"], v["p90_ms"]))
    print("(* peers' sleep figures scaled from a shorter run; see the JSON)")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(WORKLOADS),
                    help="comma-separated workloads (default: all): " + ",".join(WORKLOADS))
    ap.add_argument("--peers", default=",".join(PEERS),
                    help="comma-separated peers, or 'none' (default: all)")
    ap.add_argument("--reps", type=int, default=3, help="timed runs per figure (median)")
    ap.add_argument("--noop-tasks", type=int, default=10_000)
    ap.add_argument("--cpu-tasks", type=int, default=1000)
    ap.add_argument("--sleep-tasks", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--sleep-reps", type=int, default=2)
    ap.add_argument("--peer-sleep-tasks", type=int, default=20,
                    help="peers run this many sleep tasks and are scaled to N (N/2 s each)")
    ap.add_argument("--full-sleep-peers", action="store_true",
                    help="peers run the full sleep workloads (50 s and 500 s each)")
    ap.add_argument("--interleave", action="store_true",
                    help="cpu, noop: gust (warm, auto-chunked) and the peers take turns, one map "
                         "each per round (--reps rounds), instead of one after the other")
    ap.add_argument("--latency-reps", type=int, default=50)
    ap.add_argument("--engine-arg", action="append", default=[],
                    help="extra `gust up` argument (repeatable)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "out", "map.json"))
    args = ap.parse_args()
    only = [w for w in args.only.split(",") if w]
    for w in only:
        if w not in WORKLOADS:
            ap.error("unknown workload %r (known: %s)" % (w, ", ".join(WORKLOADS)))
    peers = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",")]
    for p in peers:
        if p not in PEERS:
            ap.error("unknown peer %r (known: %s)" % (p, ", ".join(PEERS)))

    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "command": " ".join(sys.argv), "load_start": load(),
              "workers": WORKERS, "engine_args": args.engine_arg, "workloads": {}}
    print("map benchmark, %s, load %.2f" % (report["machine"], load()), flush=True)
    state = tempfile.mkdtemp(prefix="gust-bench-map-")
    with Engine(state, args.engine_arg) as eng:
        g = Gust(eng)
        g.map(tasks.noop, [0])  # engine warm: first upload, first function
        for w in only:
            report["workloads"][w] = WORKLOADS[w](g, peers, args)
    report["load_end"] = load()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print_table(report)
    print("\nJSON report: %s (load %.2f at start, %.2f at end)"
          % (args.out, report["load_start"], report["load_end"]))


if __name__ == "__main__":
    main()
