#!/usr/bin/env /usr/bin/python3
"""What a networked sandbox would cost per cold start in a network namespace
of its own with a route out (veth pair + NAT) instead of the host's namespace
(issue 20; the decision is in docs/SECURITY.md, "Network").

Measures, as root, N times each (wall time, median and p90, in ms):
  unshare    unshare(CLONE_NEWNET) alone: what every network=False sandbox
             pays today (the baseline, not an extra)
  veth       in a fresh namespace: create a veth pair with one end in it,
             address both ends, bring them and lo up, add the default route
             (the per-sandbox setup), through one `ip -batch` process per
             sandbox, as an engine shelling out to iproute2 would
  veth-nl    the same netlink work for N sandboxes in ONE `ip -batch`
             process: the kernel's share, what an engine speaking netlink
             itself would pay per sandbox
  teardown   deleting the veth pair (the namespace goes with its last process)
The NAT rule (one nftables masquerade for the sandboxes' subnet) is per
engine, not per sandbox, so it is not counted. No packet leaves the machine:
the addresses live only on the veth pairs this script creates and deletes.

    /usr/bin/python3 bench/scrape/netns_cost.py [-n 50]
"""
import argparse
import ctypes
import os
import statistics
import subprocess
import time

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def addrs(i):
    """(host end, sandbox end) of sandbox i's /30 in 10.214.0.0/16."""
    base = 4 * i
    prefix = "10.214.%d." % (base // 256)
    return prefix + str(base % 256 + 1), prefix + str(base % 256 + 2)


def in_child(fn):
    """Runs fn() in a forked child; returns its wall time in ms as measured there."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        t0 = time.perf_counter()
        fn()
        os.write(w, repr((time.perf_counter() - t0) * 1000).encode())
        os._exit(0)
    os.close(w)
    out = os.read(r, 64)
    os.close(r)
    os.waitpid(pid, 0)
    return float(out)


def unshare_net():
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")


def setup_lines(i, pid):
    host, sandbox = addrs(i)
    return ["link add gbv%d type veth peer name eth0 netns %d" % (i, pid),
            "addr add %s/30 dev gbv%d" % (host, i),
            "link set gbv%d up" % i]


def inside_lines(i):
    host, sandbox = addrs(i)
    return ["addr add %s/30 dev eth0" % sandbox, "link set eth0 up", "link set lo up",
            "route add default via %s" % host]


def ip_batch(lines, netns_pid=None):
    cmd = ["ip", "-batch", "-"]
    if netns_pid is not None:
        cmd = ["nsenter", "-t", str(netns_pid), "-n"] + cmd
    subprocess.run(cmd, input="\n".join(lines) + "\n", text=True, check=True)


def holders(n):
    """n children each in a new network namespace, sleeping; their pids."""
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            unshare_net()
            time.sleep(3600)
            os._exit(0)
        pids.append(pid)
    time.sleep(0.2)
    return pids


def summary(name, ms):
    ms = sorted(ms)
    print("%-9s median %6.2f ms  p90 %6.2f ms  (n=%d)"
          % (name, statistics.median(ms), ms[int(0.9 * (len(ms) - 1))], len(ms)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    n = ap.parse_args().n
    summary("unshare", [in_child(unshare_net) for _ in range(n)])

    pids = holders(2 * n)
    try:
        per = []
        for i, pid in enumerate(pids[:n]):
            t0 = time.perf_counter()
            ip_batch(setup_lines(i, pid))
            ip_batch(inside_lines(i), netns_pid=pid)
            per.append((time.perf_counter() - t0) * 1000)
        summary("veth", per)
        t0 = time.perf_counter()
        ip_batch([line for i, pid in enumerate(pids[n:], n) for line in setup_lines(i, pid)])
        host_ms = (time.perf_counter() - t0) * 1000
        summary("veth-nl", [host_ms / n])
        t0 = time.perf_counter()
        ip_batch(["link del gbv%d" % i for i in range(2 * n)])
        summary("teardown", [(time.perf_counter() - t0) * 1000 / (2 * n)])
    finally:
        for pid in pids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        subprocess.run(["ip", "-batch", "-"], input="".join(
            "link del gbv%d\n" % i for i in range(2 * n)), text=True, capture_output=True)


if __name__ == "__main__":
    main()
