"""What the sandbox's S3 relay (runtimes/python/gust_runtime/s3_relay.py) costs:
  start   s3_relay.offer() (the part on a cold start's path) and serve() (started
          after READY, while the runtime waits), each in a fresh forked process
  rtt     one 200-byte request and 200-byte answer on a kept-alive connection,
          through the relay (TCP 127.0.0.1 -> relay -> unix socket) against the
          same exchange on the unix socket directly (the peer: gust.storage's path)
against a unix socket server of this script's own (no engine: the relay's cost alone).

    /usr/bin/python3 bench/storage/bench_relay.py [--runs 5] [--starts 200] [--exchanges 2000]
"""
import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "runtimes", "python"))
from gust_runtime import s3_relay  # noqa: E402 -- runtimes/python put on the path above

ANSWER = b"A" * 200
REQUEST = b"R" * 200


def serve(path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)

    def one(conn):
        with conn:
            while True:
                got = b""
                while len(got) < len(REQUEST):
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    got += chunk
                conn.sendall(ANSWER)

    def loop():
        while True:
            conn, _ = server.accept()
            threading.Thread(target=one, args=(conn,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def start_cost_us(path):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        s3_relay._listener = None
        t0 = time.perf_counter()
        s3_relay.offer(path)
        t1 = time.perf_counter()
        s3_relay.serve()
        t2 = time.perf_counter()
        os.write(w, ("%f %f" % ((t1 - t0) * 1e6, (t2 - t1) * 1e6)).encode())
        os._exit(0)
    os.close(w)
    offer, serve_ = map(float, os.read(r, 64).split())
    os.close(r)
    os.waitpid(pid, 0)
    return offer, serve_


def exchange_us(sock, n):
    t0 = time.perf_counter()
    for _ in range(n):
        sock.sendall(REQUEST)
        got = b""
        while len(got) < len(ANSWER):
            got += sock.recv(65536)
    return (time.perf_counter() - t0) * 1e6 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--starts", type=int, default=200)
    ap.add_argument("--exchanges", type=int, default=2000)
    args = ap.parse_args()
    path = os.path.join(tempfile.mkdtemp(), "engine.sock")
    serve(path)
    s3_relay.offer(path)
    s3_relay.serve()
    port = int(os.environ["GUST_S3_ENDPOINT"].split(":")[2].split("/")[0])
    offers, serves, relayed, direct = [], [], [], []
    for _ in range(args.runs):
        costs = [start_cost_us(path) for _ in range(args.starts)]
        offers.append(statistics.median(c[0] for c in costs))
        serves.append(statistics.median(c[1] for c in costs))
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            relayed.append(exchange_us(s, args.exchanges))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            direct.append(exchange_us(s, args.exchanges))
    for name, values in (("offer() (median of %d), us" % args.starts, offers),
                         ("serve() (median of %d), us" % args.starts, serves),
                         ("rtt through the relay, us", relayed),
                         ("rtt on the unix socket directly, us", direct)):
        print("%-40s min %8.1f  median %8.1f  max %8.1f" % (
            name, min(values), statistics.median(values), max(values)))


if __name__ == "__main__":
    main()
