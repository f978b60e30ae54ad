#!/usr/bin/env python3
"""Microbenchmark of the map worker's task loop (runtimes/python/gust_runtime/map_worker.py):
a chunk of 5,000 no-op tasks decoded, run and answered in this process, no sandbox or engine.
Prints the process CPU time per task for each of --reps runs, then decode alone.

Run with /usr/bin/python3 bench/map/bench_worker.py (the figures in bench/RESULTS.md)."""
import argparse
import os
import pickle
import struct
import sys
import tempfile
import time

import cloudpickle

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "runtimes", "python"))
sys.path.insert(0, HERE)

import tasks  # noqa: E402 -- sys.path set above
from gust_runtime import map_worker  # noqa: E402 -- sys.path set above


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="gust-bench-worker-")
    os.makedirs(os.path.join(root, map_worker.JOB_DIR))
    with open(os.path.join(root, map_worker.JOB_DIR, "function.pkl"), "wb") as f:
        f.write(cloudpickle.dumps(tasks.noop))
    os.environ["LAMBDA_TASK_ROOT"] = root
    parts = [struct.pack("<I", args.tasks)]
    for i in range(args.tasks):
        data = pickle.dumps(((i,), {}), 5)
        parts.append(struct.pack("<II", i, len(data)) + data)
    chunk = b"".join(parts)
    for _ in range(args.reps):
        t0 = time.process_time()
        map_worker.handler(chunk, None)
        print("run: %.2f us/task" % ((time.process_time() - t0) / args.tasks * 1e6))
    t0 = time.perf_counter()
    map_worker.decode_chunk(chunk)
    print("decode alone: %.2f us/task" % ((time.perf_counter() - t0) / args.tasks * 1e6))


if __name__ == "__main__":
    main()
