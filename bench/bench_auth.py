"""The cost of SigV4 on the invoke path (issue 11): 2,000 sequential invokes of
a no-op function through the Python client's Transport, signed against an
engine with credentials and unsigned against one without, alternating runs.

    GUST_BIN=build/bin /usr/bin/python3 bench/bench_auth.py [--n 2000] [--runs 3]
"""
import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from gust.transport import Transport  # noqa: E402 -- sys.path set above
from gust_e2e import Engine, SignedEngine, make_zip  # noqa: E402 -- sys.path set above

KEY, SECRET = "GKBENCHACCESSKEY0001", "bench/secret+0123456789abcdefghijklmnop"
PATH = "/2015-03-31/functions/noop/invocations"


def deploy(t):
    code = base64.b64encode(make_zip({"app.py": "def handler(e, c):\n    return e\n"})).decode()
    t.json("POST", "/2015-03-31/functions", {"FunctionName": "noop", "Runtime": "python3.11",
                                             "Role": "r", "Handler": "app.handler",
                                             "Code": {"ZipFile": code}}, expect=(201,))


def run(t, n):
    body = b'{"x": 1}'
    for _ in range(50):  # warm
        t.request("POST", PATH, body)
    start = time.perf_counter()
    for _ in range(n):
        status, _ = t.request("POST", PATH, body)
        assert status == 200, status
    return n / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        signed_eng = SignedEngine(a, credentials=(KEY, SECRET),
                                  extra_args=["--access-key", KEY, "--secret-key", SECRET])
        plain_eng = Engine(b)
        plain_eng.start()
        signed_eng.start()
        signed = Transport(signed_eng.url, credentials=(KEY, SECRET))
        plain = Transport(plain_eng.url)
        plain.credentials = None
        try:
            deploy(signed)
            deploy(plain)
            results = {"signed": [], "unsigned": []}
            for _ in range(args.runs):
                results["unsigned"].append(run(plain, args.n))
                results["signed"].append(run(signed, args.n))
            for name, rates in results.items():
                print("%-8s invokes/s min %.0f median %.0f max %.0f  (%s)" % (
                    name, min(rates), statistics.median(rates), max(rates),
                    ", ".join("%.0f" % r for r in rates)))
            print(json.dumps(results))
        finally:
            signed_eng.stop()
            plain_eng.stop()


if __name__ == "__main__":
    main()
