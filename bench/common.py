"""Shared helpers for gust benchmarks: start an engine or a cluster of them
(bench_cluster), deploy, time things."""
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# One copy of the small helpers, shared with the end-to-end tests.
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
# E402: the import needs the path set above; F401: children, free_port and
# make_zip are re-exported for the benchmarks.
import gust_e2e  # noqa: E402 -- see above
from gust_e2e import (children, descendants, free_port, make_zip,  # noqa: E402,F401 -- see above
                      new_cluster_database, pg_temp_start, pg_temp_stop, stop_all,
                      wait_settled)
BIN = gust_e2e.GUST_BIN


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    idx = min(len(values) - 1, int(p / 100.0 * len(values)))
    return values[idx]


def summarize(runs, keys, digits=3):
    """{key: {min, median, max}} over runs (dicts) for each key, each also printed."""
    import statistics
    summary = {}
    for key in keys:
        values = [r[key] for r in runs]
        summary[key] = {"min": min(values), "median": statistics.median(values),
                        "max": max(values)}
        print(f"{key}: min {min(values):.{digits}f} median {statistics.median(values):.{digits}f}"
              f" max {max(values):.{digits}f}")
    return summary


def report(runs, keys, load_before, path=None, digits=3, **parameters):
    """The end of a benchmark: prints min/median/max of each key over runs and the
    machine with its load average before the runs and now; with path, writes them
    and the run's parameters as JSON there. Returns the summary."""
    load_after = os.getloadavg()[0]
    summary = summarize(runs, keys, digits)
    print(f"machine: {machine()}; load (1 min) {load_before:.2f} before, {load_after:.2f} after")
    if path:
        with open(path, "w") as f:
            json.dump(dict({"runs": runs, "summary": summary, "machine": machine(),
                            "load_before": load_before, "load_after": load_after},
                           **parameters), f, indent=2)
    return summary


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB, kernel {platform.release()}"


class Engine(gust_e2e.Engine):
    """The end-to-end tests' engine (tests/e2e/gust_e2e.py: one harness for
    tests and benchmarks) with the benchmarks' habits: `with Engine(...)`
    starts and stops it, it logs at warn ($GUST_BENCH_LOG_LEVEL), may take 60 s
    to start, and a request may take 300 s."""

    def __init__(self, state_dir, args=()):
        level = os.environ.get("GUST_BENCH_LOG_LEVEL", "warn")
        super().__init__(state_dir, extra_args=["--log-level", level] + list(args))

    def start(self, timeout=60.0, poll_s=0.05):
        return super().start(timeout, poll_s)

    def call(self, method, path, body=None, headers=None):
        """(status, lower-case headers, body bytes)."""
        return self.request(method, path, body, headers, timeout=300)

    def deploy(self, name, source, **config):
        """Creates function name from one file, app.py = source (handler app.handler)."""
        self.create(name, {"app.py": source}, **config)

    def processes(self):
        """How many processes run under the engine: its zygote, the zygote's
        pool of pre-forked children and the sandboxes."""
        return len(descendants(self.proc.pid))

    def wait_settled(self, quiet_s=0.5, limit_s=15.0):
        """Waits until the zygote's process count has not changed for quiet_s
        (its pool refilled, killed sandboxes gone), at most limit_s."""
        wait_settled(self.proc.pid, quiet_s, limit_s)

    def loadgen(self, name, connections, duration, warmup=1.0):
        out = subprocess.run([os.path.join(BIN, "gust-loadgen"), "--port", str(self.port),
                              "--path", f"/2015-03-31/functions/{name}/invocations",
                              "--method", "POST", "--body", "{}", "-c", str(connections),
                              "-d", str(duration), "--warmup", str(warmup)],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def pid(self):
        return self.proc.pid


class BenchCluster:
    """What bench_cluster yields: a throwaway PostgreSQL (its base conninfo, .pg)
    and a state root (.root) for the benchmark's engines."""

    def __init__(self, root):
        self.root = root
        self.pg = None
        self._engines = []

    def database(self):
        """A new, initialised cluster database (gust_e2e.new_cluster_database)."""
        return new_cluster_database(self.pg)

    def engine(self, name, args=(), db=None, state_dir=None):
        """Starts and returns an Engine whose state dir is root/state_dir (default:
        name); with db, a node of that cluster named name, else an embedded engine.
        It is stopped when the bench_cluster block ends, if it is still running."""
        if db is not None:
            args = list(args) + ["--cluster", db, "--node-name", name]
        eng = Engine(os.path.join(self.root, state_dir or name), args)
        self._engines.append(eng)  # before start: one that fails half-way is stopped too
        return eng.start()

    def stop(self):
        stop_all(self._engines)  # skips one the benchmark stopped itself
        self._engines.clear()


@contextlib.contextmanager
def bench_cluster(prefix):
    """with bench_cluster("gust-bench-x-") as c: a PostgreSQL of its own (scripts/pg-temp,
    in a new temp dir: pg-temp gives its directory to the postgres user) and a temp state
    root, both named after prefix. At the block's end, whatever happened, every engine
    c.engine() started is stopped, then PostgreSQL, and both directories are removed."""
    root = tempfile.mkdtemp(prefix=prefix)
    pg_dir = tempfile.mkdtemp(prefix=prefix + "pg-")
    cluster = BenchCluster(root)
    try:
        cluster.pg = pg_temp_start(pg_dir)
        yield cluster
    finally:
        cluster.stop()
        pg_temp_stop(pg_dir)
        shutil.rmtree(pg_dir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def private_kb(pid):
    """Private (clean + dirty) memory of a process: what it costs beyond shared pages."""
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total
