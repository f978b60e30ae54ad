#!/usr/bin/env /usr/bin/python3
"""A blocked matrix multiply as numpywren-style tasks over stored blocks
(issue 16): A and B (n x n float64, seeded) are cut into g x g blocks of
b x b (g = n / b) and stored in a bucket, one object per block (its raw
float64 bytes, row-major); one task per block of C reads its row of A's
blocks and its column of B's, sums A[i,k] @ B[k,j] over k and stores C[i,j].
The client reads C's blocks back, assembles C and checks it against
numpy's A @ B (np.allclose), prints the time of each step, and deletes the
run's objects (and the bucket if it made it).

    GUST_URL=http://127.0.0.1:7700 /usr/bin/python3 examples/shuffle/matmul.py \
        [--n 4096] [--block 1024] [--bucket shuffle] [--seed 1] [--concurrency CORES] [--url URL]

--n 512 --block 128 is a run of a few seconds. Each task holds 2 blocks of
the inputs and one of C at a time (3 x 8 MB at the default sizes) and runs
with 512 MB. bench/storage/bench_shuffle.py runs the same functions on
multiprocessing.Pool(2) as the peer (runner.py).
"""
import argparse
import os
import sys
import time
import uuid

import cloudpickle

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import runner  # noqa: E402 -- examples/shuffle on the path, for an import as a module too

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def block_key(prefix, name, i, j):
    return "%s%s/%d/%d" % (prefix, name, i, j)


def load_block(store, key, b):
    import numpy as np
    data = store.get(key)
    if len(data) != b * b * 8:
        raise ValueError("block %r has %d bytes, not %d (%d x %d float64)"
                         % (key, len(data), b * b * 8, b, b))
    return np.frombuffer(data, dtype=np.float64).reshape(b, b)


def multiply_block(spec, prefix, i, j, g, b):
    """The task of C[i,j]: sum over k of A[i,k] @ B[k,j], read from the
    store block by block; stores C[i,j] and returns the seconds it spent
    reading, computing and writing."""
    import numpy as np
    store = runner.open_store(spec)
    io_s = compute_s = 0.0
    c = np.zeros((b, b))
    for k in range(g):
        t0 = time.perf_counter()
        a = load_block(store, block_key(prefix, "A", i, k), b)
        bb = load_block(store, block_key(prefix, "B", k, j), b)
        t1 = time.perf_counter()
        c += a @ bb
        io_s += t1 - t0
        compute_s += time.perf_counter() - t1
    t0 = time.perf_counter()
    store.put(block_key(prefix, "C", i, j), c.tobytes())
    return {"io_s": io_s + time.perf_counter() - t0, "compute_s": compute_s}


def run(run_tasks, spec, n=4096, block=1024, seed=1):
    """One multiply of two seeded n x n matrices in blocks of block x block
    through store `spec` with run_tasks (runner.GustRunner or PoolRunner);
    checks C against numpy's A @ B and deletes its objects. Returns
    {store_s (the client's upload of A's and B's blocks), multiply_s (the
    tasks), assemble_s (the client's read of C), numpy_s (A @ B in the
    client: the check, and a reference), task_io_s, task_compute_s (summed
    over tasks), tasks}. Raises AssertionError when C is wrong, ValueError
    when block does not divide n."""
    import numpy as np
    if n <= 0 or block <= 0 or n % block:
        raise ValueError("the block size (%d) must divide n (%d)" % (block, n))
    g = n // block
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    bm = rng.standard_normal((n, n))
    store = runner.open_store(spec)
    prefix = "matmul-%s/" % uuid.uuid4().hex[:12]
    try:
        t0 = time.perf_counter()
        for name, m in (("A", a), ("B", bm)):
            for i in range(g):
                for j in range(g):
                    store.put(block_key(prefix, name, i, j),
                              np.ascontiguousarray(m[i * block:(i + 1) * block,
                                                     j * block:(j + 1) * block]).tobytes())
        t1 = time.perf_counter()
        costs = run_tasks.map(multiply_block, [(spec, prefix, i, j, g, block)
                                               for i in range(g) for j in range(g)])
        t2 = time.perf_counter()
        c = np.empty((n, n))
        for i in range(g):
            for j in range(g):
                c[i * block:(i + 1) * block, j * block:(j + 1) * block] = load_block(
                    store, block_key(prefix, "C", i, j), block)
        t3 = time.perf_counter()
    finally:
        store.delete_prefix(prefix)
    want = a @ bm
    t4 = time.perf_counter()
    assert np.allclose(c, want), "C differs from numpy's A @ B: max |diff| %g" % (
        np.abs(c - want).max())
    return {"store_s": t1 - t0, "multiply_s": t2 - t1, "assemble_s": t3 - t2,
            "numpy_s": t4 - t3, "task_io_s": sum(x["io_s"] for x in costs),
            "task_compute_s": sum(x["compute_s"] for x in costs), "tasks": g * g,
            "n": n, "block": block}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4096, help="matrix side (default 4096)")
    ap.add_argument("--block", type=int, default=1024, help="block side (default 1024)")
    ap.add_argument("--bucket", default="shuffle", help="bucket (made if missing)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--url", default=None, help="the engine (default: $GUST_URL, the local one)")
    ap.add_argument("--concurrency", type=int, default=os.cpu_count(),
                    help="sandboxes at once (default: the cores; each may use 512 MB)")
    args = ap.parse_args()
    if args.n <= 0 or args.block <= 0 or args.n % args.block:
        ap.error("--block (%d) must be positive and divide --n (%d)" % (args.block, args.n))
    r = runner.run_on_gust(args.url, args.bucket, args.concurrency, lambda g: run(
        g, ("bucket", args.bucket), args.n, args.block, args.seed))
    print("C = A @ B, %dx%d in %d tasks of %dx%d blocks: matches numpy's A @ B"
          % (r["n"], r["n"], r["tasks"], r["block"], r["block"]))
    print("store A, B %.2f s, multiply %.2f s (tasks: %.2f s reading/writing, %.2f s "
          "computing), read C %.2f s; numpy's A @ B here %.2f s"
          % (r["store_s"], r["multiply_s"], r["task_io_s"], r["task_compute_s"],
             r["assemble_s"], r["numpy_s"]))


if __name__ == "__main__":
    main()
