#!/usr/bin/env /usr/bin/python3
"""A word count as a shuffle over the engine's object store (issue 16):

  generate  G tasks each write one part of seeded random text (words drawn
            from a seeded vocabulary, Zipf-like) to the bucket, and return
            how often they wrote each word: the known answer;
  map       one task per part reads it (streamed), counts its words and
            writes R partition objects, a word going to crc32(word) mod R;
  reduce    R tasks each read their partition from every mapper, merge the
            counts and write their part of the result.

The client then checks every word's count, and the total, against what the
generators wrote, prints the top words and the time of each stage, and
deletes the run's objects (and the bucket if it made it).

    GUST_URL=http://127.0.0.1:7700 /usr/bin/python3 examples/shuffle/wordcount.py \
        [--size 1G] [--part-size 32M] [--reducers 8] [--bucket shuffle] [--seed 1]
        [--concurrency CORES] [--url URL]

--size 8M makes a run of a few seconds. The tasks run with 512 MB each and
are granted the one bucket (map(..., buckets=[bucket])). bench/storage/
bench_shuffle.py runs the same functions on multiprocessing.Pool(2) as the
peer (runner.py).
"""
import argparse
import collections
import os
import sys
import time
import uuid
import zlib

import cloudpickle

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import runner  # noqa: E402 -- examples/shuffle on the path, for an import as a module too

cloudpickle.register_pickle_by_value(sys.modules[__name__])

VOCABULARY = 50000  # distinct words: partitions of a few thousand words each
READ_BLOCK = 8 << 20  # a map task reads its part this much at a time
BATCH = 1 << 20  # a generator draws this many words at a time


_vocabularies = {}  # seed -> vocabulary(seed): a process (the client, a pool worker) builds it once


def vocabulary(seed):
    """VOCABULARY distinct lowercase words (bytes), the same for a seed, and
    the probability of each (~1/(rank + 10): a few words are most of the text)."""
    if seed not in _vocabularies:
        _vocabularies[seed] = _make_vocabulary(seed)
    return _vocabularies[seed]


def _make_vocabulary(seed):
    import numpy as np
    rng = np.random.default_rng([seed, 0xC0FFEE])
    words = {}
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    while len(words) < VOCABULARY:
        for length in rng.integers(2, 11, size=VOCABULARY):
            words.setdefault(letters[rng.integers(0, 26, size=length)].tobytes(), None)
            if len(words) == VOCABULARY:
                break
    weights = 1.0 / (np.arange(VOCABULARY) + 10.0)
    return list(words), weights / weights.sum()


def generate(spec, key, seed, part, nbytes):
    """Writes about nbytes (never more) of words separated by spaces to key;
    returns the count of each vocabulary word written (a numpy array)."""
    import operator

    import numpy as np
    words, p = vocabulary(seed)
    sizes = np.array([len(w) + 1 for w in words])  # each word and its separator
    rng = np.random.default_rng([seed, part])
    counts = np.zeros(VOCABULARY, dtype=np.int64)
    chunks, left = [], nbytes
    while left > 0:
        idx = rng.choice(VOCABULARY, size=BATCH, p=p)
        fits = int(np.searchsorted(np.cumsum(sizes[idx]), left, side="right"))
        if fits == 0:
            break
        idx = idx[:fits]
        chunks.append(b" ".join(operator.itemgetter(*idx)(words)) + b" " if fits > 1
                      else words[idx[0]] + b" ")
        counts += np.bincount(idx, minlength=VOCABULARY)
        left -= int(sizes[idx].sum())
    runner.open_store(spec).put(key, b"".join(chunks))
    return counts


def count(spec, prefix, part, reducers):
    """The map: counts the words of input part `part` (read READ_BLOCK at a
    time, a word cut by a block's end carried to the next) and writes one
    object per reducer, "word count" lines; returns the words counted."""
    store = runner.open_store(spec)
    counter = collections.Counter()
    carry = b""
    with store.open("%sin/%05d" % (prefix, part)) as f:
        while True:
            block = f.read(READ_BLOCK)
            if not block:
                break
            block = carry + block
            cut = max(block.rfind(b" "), block.rfind(b"\n")) + 1
            counter.update(block[:cut].split())
            carry = block[cut:]
    counter.update(carry.split())
    lines = [[] for _ in range(reducers)]
    for word, n in counter.items():
        lines[zlib.crc32(word) % reducers].append(b"%s %d\n" % (word, n))
    for r in range(reducers):
        store.put("%smap/%05d/%05d" % (prefix, part, r), b"".join(lines[r]))
    return sum(counter.values())


def merge(spec, prefix, r, mappers):
    """The reduce: merges partition r of every mapper, writes it to
    out/r and returns it ({word: count})."""
    store = runner.open_store(spec)
    totals = collections.Counter()
    for m in range(mappers):
        for line in store.get("%smap/%05d/%05d" % (prefix, m, r)).splitlines():
            word, n = line.split(b" ")
            totals[word] += int(n)
    store.put("%sout/%05d" % (prefix, r),
              b"".join(b"%s %d\n" % (w, n) for w, n in sorted(totals.items())))
    return dict(totals)


def run(run_tasks, spec, size, part_size=32 << 20, reducers=8, seed=1):
    """One word count of `size` bytes through store `spec` with run_tasks (a
    runner.GustRunner or PoolRunner); checks it and deletes its objects.
    Returns {generate_s, map_s, reduce_s, shuffle_s (map + reduce), words,
    distinct, top: [(word, count)] x 10}. Raises AssertionError when a count
    differs from the generators'."""
    store = runner.open_store(spec)
    prefix = "wordcount-%s/" % uuid.uuid4().hex[:12]
    parts = max(1, -(-size // part_size))
    sizes = [size // parts + (1 if i < size % parts else 0) for i in range(parts)]
    try:
        t0 = time.perf_counter()
        generated = run_tasks.map(generate, [(spec, "%sin/%05d" % (prefix, i), seed, i, n)
                                             for i, n in enumerate(sizes)])
        t1 = time.perf_counter()
        counted = run_tasks.map(count, [(spec, prefix, i, reducers) for i in range(parts)])
        t2 = time.perf_counter()
        merged = run_tasks.map(merge, [(spec, prefix, r, parts)
                                       for r in range(reducers)])
        t3 = time.perf_counter()
    finally:
        store.delete_prefix(prefix)
    words, _ = vocabulary(seed)
    expected = sum(generated)
    want = {words[i]: int(n) for i, n in enumerate(expected) if n}
    got = {}
    for part in merged:
        overlap = got.keys() & part.keys()
        assert not overlap, "words in two reducers' partitions: %r" % sorted(overlap)[:5]
        got.update(part)
    total = sum(got.values())
    assert total == int(expected.sum()) == sum(counted), (
        "total words: reduced %d, mapped %d, generated %d"
        % (total, sum(counted), int(expected.sum())))
    wrong = [w for w in want.keys() | got.keys() if want.get(w) != got.get(w)]
    assert not wrong, "%d words counted wrong, e.g. %r: %r, generated %r" % (
        len(wrong), wrong[0], got.get(wrong[0]), want.get(wrong[0]))
    top = sorted(got.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return {"generate_s": t1 - t0, "map_s": t2 - t1, "reduce_s": t3 - t2,
            "shuffle_s": t3 - t1, "words": total, "distinct": len(got), "parts": parts,
            "reducers": reducers, "bytes": sum(sizes),
            "top": [(w.decode(), n) for w, n in top]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1G", help="bytes of text (8M, 1G; default 1G)")
    ap.add_argument("--part-size", default="32M", help="bytes per input part (default 32M)")
    ap.add_argument("--reducers", type=int, default=8, help="reduce tasks (default 8)")
    ap.add_argument("--bucket", default="shuffle", help="bucket (made if missing)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--url", default=None, help="the engine (default: $GUST_URL, the local one)")
    ap.add_argument("--concurrency", type=int, default=os.cpu_count(),
                    help="sandboxes at once (default: the cores; each may use 512 MB)")
    args = ap.parse_args()
    size, part_size = runner.parse_size(args.size), runner.parse_size(args.part_size)
    if size <= 0 or part_size <= 0 or args.reducers <= 0:
        ap.error("--size, --part-size and --reducers must be positive")
    r = runner.run_on_gust(args.url, args.bucket, args.concurrency, lambda g: run(
        g, ("bucket", args.bucket), size, part_size, args.reducers, args.seed))
    print("%d bytes, %d words (%d distinct) in %d parts, %d reducers: counts match the "
          "generators'" % (r["bytes"], r["words"], r["distinct"], r["parts"], r["reducers"]))
    print("top words: " + ", ".join("%s %d" % wc for wc in r["top"]))
    print("generate %.2f s, map %.2f s, reduce %.2f s (shuffle %.2f s)"
          % (r["generate_s"], r["map_s"], r["reduce_s"], r["shuffle_s"]))


if __name__ == "__main__":
    main()
