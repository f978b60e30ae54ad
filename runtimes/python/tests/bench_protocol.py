"""Warm round trips between a Python "engine" and the real runtime, no sandbox.

Usage: /usr/bin/python3 runtimes/python/tests/bench_protocol.py [round_trips]

Starts /usr/bin/python3 running bootstrap.run() with a no-op handler on one end
of a socketpair (fd 3), waits for READY, then times N INVOKE -> RESULT round
trips from this process. Prints round trips/s and p50/p99 in microseconds.
The parent is deliberately lean (a prebuilt INVOKE frame, one recv_into per
reply) so the figure is dominated by the runtime and the kernel.
"""

import os
import struct
import sys
import tempfile
import time

import protocol_client as pc  # beside this script: sys.path[0]

_HEADER = struct.Struct("<IBBH")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with tempfile.TemporaryDirectory() as task_root:
        with open(os.path.join(task_root, "app.py"), "w") as f:
            f.write("def handler(event, context):\n    return None\n")
        proc, client = pc.spawn_exec(pc.make_config(task_root))
        ftype, _ = client.read_frame()
        assert ftype == pc.READY, ftype
        sock = client.sock
        sock.settimeout(None)
        frame = pc.encode_invoke(b'{"k": 1}', request_id="bench-request-id",
                                 deadline_ms=int(time.time() * 1000) + 600_000)
        buf = bytearray(65536)
        view = memoryview(buf)
        sendall, recv_into = sock.sendall, sock.recv_into
        unpack_from = _HEADER.unpack_from
        perf = time.perf_counter_ns
        samples = [0] * n
        warmup = 500
        for i in range(-warmup, n):
            t = perf()
            sendall(frame)
            got = recv_into(view)
            while got < 8:
                got += recv_into(view[got:])
            length, ftype, _, _ = unpack_from(buf, 0)
            while got < 8 + length:
                got += recv_into(view[got:])
            if i >= 0:
                samples[i] = perf() - t
            if ftype != pc.RESULT:
                raise SystemExit("unexpected frame %d: %r" % (ftype, bytes(buf[8:8 + length])))
        client.close()
        assert proc.wait(timeout=10) == 0
    total_s = sum(samples) / 1e9
    samples.sort()
    p50 = samples[n // 2] / 1000
    p99 = samples[int(n * 0.99)] / 1000
    print("python parent <-> gust runtime, no-op handler, %d round trips" % n)
    print("  %.0f round trips/s   p50 %.1f us   p99 %.1f us" % (n / total_s, p50, p99))


if __name__ == "__main__":
    main()
