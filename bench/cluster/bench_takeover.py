"""Cluster step 5b: how long after its owner's kill -9 a map job is taken over
(docs/CLUSTER.md, "Step 5b as built", "When").

Each run starts a cluster of two nodes on a new database of one throwaway PostgreSQL
(scripts/pg-temp), submits a map of 0.5 s tasks to n1 with a client given only n1 (so no
reader on n2 triggers the takeover: the sweep does), waits for its first result, kills n1
with SIGKILL and times until n2's log says it took the job over: from the kill, and from the
end of n1's lease (its row's deadline in PostgreSQL, on the database's clock, against the log
line's time: one machine, one clock). The first depends on when n1 last renewed (up to a beat
before the kill, more on a loaded machine); the second is what the takeover adds to the lease.
Prints min/median/max over
--runs with the load average and CPU model; --json writes them. GUST_BIN chooses the
engine (a build of another commit is the peer).

    GUST_BIN=$PWD/build/bin /usr/bin/python3 bench/cluster/bench_takeover.py --lease 10
"""
import argparse
import datetime
import os
import shutil
import signal
import sys
import tempfile
import time

import cloudpickle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import Engine, report  # noqa: E402 -- bench/ is on the path above
from gust_e2e import (  # noqa: E402 -- bench/ is on the path above
    REPO, new_cluster_database, pg_temp_start, pg_temp_stop, psql)

sys.path.insert(0, os.path.join(REPO, "python"))
import gust  # noqa: E402 -- the repository's client

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def pause(x):
    time.sleep(0.5)
    return x


def logged_at(eng, text):
    """The epoch time of eng's first log line containing text, else None."""
    with open(eng.log_path, "rb") as f:
        for line in f.read().decode(errors="replace").splitlines():
            if text in line:
                stamp = datetime.datetime.fromisoformat(line.split()[0])
                return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
    return None


def one_run(pg, root, lease_s):
    db = new_cluster_database(pg)
    args = ["--keep-alive", "30s", "--cluster", db, "--cluster-lease", "%ds" % lease_s]
    n1 = Engine(os.path.join(root, "n1"), args + ["--node-name", "n1"]).start()
    n2 = Engine(os.path.join(root, "n2"), args + ["--node-name", "n2"]).start()
    try:
        ex = gust.FunctionExecutor(url=n1.url, show_progress=False, concurrency=1)
        fs = ex.map(pause, range(200))
        deadline = time.time() + 60
        while not any(f.done() for f in fs):
            if time.time() > deadline:
                raise SystemExit("no result within 60 s")
            time.sleep(0.05)
        n1.proc.send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        n1.proc.wait()
        while (took := logged_at(n2, "taken over by n2")) is None:
            if time.perf_counter() - killed > 60:
                raise SystemExit("n2 did not take the job over within 60 s")
            time.sleep(0.02)
        from_kill = time.perf_counter() - killed
        deadline = float(psql(db, "SELECT extract(epoch FROM deadline) FROM nodes "
                                  "WHERE name = 'n1'"))
        return from_kill, took - deadline
    finally:
        n2.stop()
        if n1.proc.poll() is None:
            n1.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lease", type=int, default=10, help="--cluster-lease, s")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    os.environ.setdefault("GUST_BENCH_LOG_LEVEL", "info")  # the takeover's line is info
    root = tempfile.mkdtemp(prefix="gust-bench-takeover-")
    pg_dir = tempfile.mkdtemp(prefix="gust-bench-takeover-pg-")  # pg-temp's own
    load_before = os.getloadavg()[0]
    runs = []
    try:
        pg = pg_temp_start(pg_dir)
        for run in range(args.runs):
            from_kill, beyond = one_run(pg, os.path.join(root, str(run)), args.lease)
            runs.append({"after_kill_s": from_kill, "after_lease_end_s": beyond})
            print(f"run {run + 1}: taken over {from_kill:.2f} s after the kill, {beyond:.3f} s "
                  f"after n1's lease ended (lease {args.lease} s)", flush=True)
    finally:
        pg_temp_stop(pg_dir)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_dir, ignore_errors=True)
    report(runs, ("after_kill_s", "after_lease_end_s"), load_before, args.json, lease_s=args.lease,
           gust_bin=os.environ.get("GUST_BIN", ""))


if __name__ == "__main__":
    main()
