"""The cost of SigV4 and TLS on the invoke path (issue 11): 2,000 sequential
invokes of a no-op function through the Python client's Transport, signed
against an engine with credentials, unsigned against one without, and signed
over HTTPS against one with credentials and --tls-cert (kept-alive, and with a
new connection, so a full TLS handshake, per invoke), alternating runs.

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
from gust_e2e import (Engine, SignedEngine, make_certificate,  # noqa: E402 -- sys.path set above
                      make_zip)

KEY, SECRET = "GKBENCHACCESSKEY0001", "bench/secret+0123456789abcdefghijklmnop"
PATH = "/2015-03-31/functions/noop/invocations"


def deploy(t):
    code = base64.b64encode(make_zip({"app.py": "def handler(e, c):\n    return e\n"})).decode()
    t.json("POST", "/2015-03-31/functions", {"FunctionName": "noop", "Runtime": "python3.11",
                                             "Role": "r", "Handler": "app.handler",
                                             "Code": {"ZipFile": code}}, expect=(201,))


def run(t, n, reconnect=False):
    body = b'{"x": 1}'
    for _ in range(50):  # warm
        t.request("POST", PATH, body)
    start = time.perf_counter()
    for _ in range(n):
        if reconnect:
            t._drop()  # the next request opens (and handshakes) a new connection
        status, _ = t.request("POST", PATH, body)
        assert status == 200, status
    return n / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, \
            tempfile.TemporaryDirectory() as c:
        auth = ["--access-key", KEY, "--secret-key", SECRET]
        cert, key = make_certificate(c, "tls", "IP:127.0.0.1")
        signed_eng = SignedEngine(a, credentials=(KEY, SECRET), extra_args=auth)
        plain_eng = Engine(b)
        tls_eng = SignedEngine(os.path.join(c, "state"), credentials=(KEY, SECRET), tls_ca=cert,
                               extra_args=auth + ["--tls-cert", cert, "--tls-key", key])
        engines = [plain_eng, signed_eng, tls_eng]
        for eng in engines:
            eng.start()
        signed = Transport(signed_eng.url, credentials=(KEY, SECRET))
        plain = Transport(plain_eng.url)
        plain.credentials = None
        tls = Transport(tls_eng.url, credentials=(KEY, SECRET), ca_bundle=cert)
        try:
            deploy(signed)
            deploy(plain)
            deploy(tls)
            results = {"unsigned": [], "signed": [], "signed+tls": [],
                       "signed+tls, a handshake per invoke": []}
            for _ in range(args.runs):
                results["unsigned"].append(run(plain, args.n))
                results["signed"].append(run(signed, args.n))
                results["signed+tls"].append(run(tls, args.n))
                results["signed+tls, a handshake per invoke"].append(
                    run(tls, max(1, args.n // 4), reconnect=True))
            for name, rates in results.items():
                print("%-34s invokes/s min %.0f median %.0f max %.0f  (%s)" % (
                    name, min(rates), statistics.median(rates), max(rates),
                    ", ".join("%.0f" % r for r in rates)))
            print(json.dumps(results))
        finally:
            for eng in engines:
                eng.stop()


if __name__ == "__main__":
    main()
