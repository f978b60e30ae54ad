"""The shuffle examples as a benchmark (issue 16): examples/shuffle's word count
(generate SIZE of text -> map to partition objects -> reduce) and blocked
multiply (N x N float64 in BLOCK x BLOCK blocks, a task per block of C) on
gust (tasks in sandboxes, objects in the engine's store through the sandbox
channel) against the same task functions on multiprocessing.Pool(WORKERS)
with the objects as files in a temp directory on the same disk: the peer, in
the same run, the two interleaved (their order alternating run to run).
gust's maps use concurrency=WORKERS, so both have as many workers. Each run
checks its answers (examples/shuffle: the generators' counts, numpy's A @ B).

    GUST_BIN=build/bin /usr/bin/python3 bench/storage/bench_shuffle.py \
        [--runs 3] [--size 1G] [--n 4096] [--block 1024] [--workers 2] [--out FILE]

Prints min/median/max of each figure, the machine and its load; --out writes
them and every run as JSON (make bench-shuffle: bench/out/shuffle.json).
Takes ~10 minutes at the defaults on 2 cores; --size 64M --n 1024 --block 256
is a run of a minute.
"""
import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import common  # noqa: E402 -- sys.path set above

sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "shuffle"))
import gust  # noqa: E402 -- python/ is on the path from here
import matmul  # noqa: E402 -- examples/shuffle is on the path from here
import runner  # noqa: E402 -- likewise
import wordcount  # noqa: E402 -- likewise
from gust import storage  # noqa: E402 -- python/ is on the path from here

BUCKET = "bench-shuffle"
KEYS = ["wc_gust_generate_s", "wc_pool_generate_s", "wc_gust_shuffle_s", "wc_pool_shuffle_s",
        "wc_gust_map_s", "wc_pool_map_s", "wc_gust_reduce_s", "wc_pool_reduce_s",
        "mm_gust_store_s", "mm_pool_store_s", "mm_gust_multiply_s", "mm_pool_multiply_s",
        "mm_gust_assemble_s", "mm_pool_assemble_s", "mm_numpy_s",
        "wc_shuffle_gust_over_pool", "mm_multiply_gust_over_pool"]


def one_run(i, runners, args, size, part_size):
    out = {}
    order = runners if i % 2 == 0 else runners[::-1]
    for name, run_tasks, spec in order:
        r = wordcount.run(run_tasks, spec, size, part_size, args.reducers, seed=i + 1)
        for k in ("generate_s", "map_s", "reduce_s", "shuffle_s"):
            out["wc_%s_%s" % (name, k)] = r[k]
        out["wc_words"] = r["words"]
        print("run %d word count on %s: generate %.2f s, map %.2f s, reduce %.2f s"
              % (i, name, r["generate_s"], r["map_s"], r["reduce_s"]), flush=True)
    for name, run_tasks, spec in order:
        r = matmul.run(run_tasks, spec, args.n, args.block, seed=i + 1)
        for k in ("store_s", "multiply_s", "assemble_s"):
            out["mm_%s_%s" % (name, k)] = r[k]
        out["mm_%s_task_io_s" % name] = r["task_io_s"]
        out["mm_%s_task_compute_s" % name] = r["task_compute_s"]
        out["mm_numpy_s"] = r["numpy_s"]  # the client's A @ B, the same either way
        print("run %d multiply on %s: store %.2f s, multiply %.2f s, read C %.2f s; "
              "numpy %.2f s" % (i, name, r["store_s"], r["multiply_s"], r["assemble_s"],
                                r["numpy_s"]), flush=True)
    out["wc_shuffle_gust_over_pool"] = out["wc_gust_shuffle_s"] / out["wc_pool_shuffle_s"]
    out["mm_multiply_gust_over_pool"] = out["mm_gust_multiply_s"] / out["mm_pool_multiply_s"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="1G", help="word count's bytes of text (default 1G)")
    ap.add_argument("--part-size", default="32M")
    ap.add_argument("--reducers", type=int, default=8)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2,
                    help="Pool(WORKERS) and gust's concurrency (default 2)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    size, part_size = runner.parse_size(args.size), runner.parse_size(args.part_size)
    load_before = os.getloadavg()[0]
    state = tempfile.mkdtemp(prefix="gust-bench-shuffle-")
    peer_dir = tempfile.mkdtemp(prefix="gust-bench-shuffle-peer-")
    try:
        with common.Engine(state) as eng, multiprocessing.Pool(args.workers) as pool:
            os.environ["GUST_URL"] = eng.url  # the examples' storage.Client() on this side
            storage.Client(eng.url).create_bucket(BUCKET)
            ex = gust.FunctionExecutor(url=eng.url, show_progress=False,
                                       concurrency=args.workers)
            runners = [("gust", runner.GustRunner(ex, BUCKET), ("bucket", BUCKET)),
                       ("pool", runner.PoolRunner(pool), ("dir", peer_dir))]
            runs = [one_run(i, runners, args, size, part_size) for i in range(args.runs)]
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(peer_dir, ignore_errors=True)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    common.report(runs, KEYS, load_before, args.out, size=size, part_size=part_size,
                  reducers=args.reducers, n=args.n, block=args.block, workers=args.workers,
                  command=" ".join(sys.argv))


if __name__ == "__main__":
    main()
