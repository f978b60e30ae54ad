#!/usr/bin/python3
"""Interpreter speed of the sandbox zygote: the same pure-Python CPU loop in

  python3   a plain, long-lived /usr/bin/python3 process (the reference:
            Debian's PGO+LTO build)
  python    a sandbox of an engine whose zygote is /usr/bin/python3 running
            _gust_zygote.so (`gust up --zygote python`, the default)
  embedded  a sandbox of an engine whose zygote is gust-sandbox-init, which
            embeds libpython (`gust up --zygote embedded`, the former default)

interleaved round by round (so machine load hits all three alike), reporting
the loop's process CPU time (time.process_time) per repetition: min and
median, and each one's ratio to python3. Both engines run at once, each with
one warm sandbox of the function. One command: `make bench-zygote`; writes a
JSON report (--out) and prints a table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common import Engine, machine  # noqa: E402 -- sys.path set above

# The map benchmark's CPU task (bench/map/tasks.py burn), timed repetition by repetition.
LOOP = r'''
import time

def burn(n):
    acc = 0
    for i in range(n):
        acc += i * i
    return acc & 0xFFFF

def measure(n, reps):
    out = []
    for _ in range(reps):
        t0 = time.process_time()
        burn(n)
        out.append(time.process_time() - t0)
    return out

def handler(event, context):
    return measure(event["n"], event["reps"])
'''


class Python3:
    """A long-lived /usr/bin/python3 running the loop on request (warm, like a
    sandbox that is reused), one JSON request and answer per line."""

    def __init__(self):
        code = LOOP + ("\nimport json, sys\nfor line in sys.stdin:\n"
                       "    print(json.dumps(measure(*json.loads(line))), flush=True)\n")
        self.proc = subprocess.Popen(["/usr/bin/python3", "-E", "-s", "-c", code],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, n, reps):
        self.proc.stdin.write(json.dumps([n, reps]) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def in_sandbox(engine, n, reps):
    status, _, data = engine.invoke("loop", json.dumps({"n": n, "reps": reps}))
    assert status == 200, data
    return json.loads(data)


def load():
    return os.getloadavg()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60_000,
                    help="loop iterations per repetition (~5 ms of CPU here, as in bench-map)")
    ap.add_argument("--reps", type=int, default=20, help="repetitions per context per round")
    ap.add_argument("--rounds", type=int, default=30, help="interleaved rounds")
    ap.add_argument("--out", default="bench/out/zygote.json", help="JSON report")
    args = ap.parse_args()

    load_before = load()
    samples = {"python3": [], "python": [], "embedded": []}
    with tempfile.TemporaryDirectory(prefix="gust-bench-zygote-") as tmp, \
            Engine(os.path.join(tmp, "python"), ["--zygote", "python"]) as py, \
            Engine(os.path.join(tmp, "embedded"), ["--zygote", "embedded"]) as emb:
        engines = {"python": py, "embedded": emb}
        for eng in engines.values():
            eng.deploy("loop", LOOP, Timeout=300)
            in_sandbox(eng, args.n, 2)  # cold start and warm-up, untimed
        py3 = Python3()
        py3.run(args.n, 2)
        for r in range(args.rounds):
            order = ["python3", "python", "embedded"]
            order = order[r % 3:] + order[:r % 3]  # no context always goes first
            for ctx in order:
                got = (py3.run(args.n, args.reps) if ctx == "python3"
                       else in_sandbox(engines[ctx], args.n, args.reps))
                samples[ctx].extend(got)
        py3.close()
    load_after = load()

    ref = statistics.median(samples["python3"])
    ref_min = min(samples["python3"])
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
              "load_before": load_before, "load_after": load_after,
              "command": " ".join(sys.argv), "n": args.n, "reps": args.reps,
              "rounds": args.rounds, "contexts": {}}
    print(f"pure-Python loop, {args.n} iterations, {args.rounds} rounds x {args.reps} reps "
          f"per context (load {load_before[0]:.2f} -> {load_after[0]:.2f})")
    print(f"{'context':<10} {'min ms':>8} {'median ms':>10} {'min/py3':>8} {'median/py3':>11}")
    for ctx, vals in samples.items():
        med, lo = statistics.median(vals), min(vals)
        report["contexts"][ctx] = {"min_s": lo, "median_s": med, "min_ratio": lo / ref_min,
                                   "median_ratio": med / ref, "samples": len(vals)}
        print(f"{ctx:<10} {lo * 1e3:>8.3f} {med * 1e3:>10.3f} {lo / ref_min:>8.3f} "
              f"{med / ref:>11.3f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
