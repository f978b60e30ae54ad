"""A host on a LAN, made on this machine: a network namespace joined to the
host's by a veth pair, with a program of ours running inside it.

Why: gust's networked sandboxes reach the internet and the LAN but not the
host's own services (its loopback and its own addresses are closed to them:
docs/SECURITY.md, "Network"), and these machines have no other network. So a
site for sandboxes to scrape must live on "another host": this one. Needs
root (iproute2's `ip`); LanHost.available() says whether it can be made.
Nothing is routed beyond the pair: the /30 exists only between the two ends.

    with LanHost([sys.executable, "-m", "http.server", "--bind", "{addr}", "8080"]) as host:
        urllib.request.urlopen("http://%s:8080/" % host.addr)
"""
import ctypes
import os
import shutil
import socket
import subprocess

CLONE_NEWNET = 0x40000000


class LanHost:
    """Context manager: the namespace, the veth pair (host end .1, peer .2 of
    10.213.N.0/30, N from the pid so concurrent runs differ) and `command`
    (argv, or None for no program; "{addr}" in an argument is replaced by the
    peer's address) running in the namespace. On exit the program is killed
    and both go."""

    made = 0  # LanHosts this process made: each gets its own names and subnet

    def __init__(self, command=None, subnet=None):
        LanHost.made += 1
        k = LanHost.made % 100
        n = (os.getpid() + 37 * k) % 250 if subnet is None else subnet
        self.ns = "gust-lan-%d-%d" % (os.getpid(), k)
        self.veth = "glan%d-%d" % (os.getpid() % 10**6, k)
        self.host_addr, self.addr = "10.213.%d.1" % n, "10.213.%d.2" % n
        self.command = [a.replace("{addr}", self.addr) for a in command or []]
        self.proc = None

    @staticmethod
    def available():
        return os.geteuid() == 0 and shutil.which("ip") is not None

    def _ip(self, *args):
        subprocess.run(["ip"] + list(args), check=True, capture_output=True)

    def __enter__(self):
        self._ip("netns", "add", self.ns)
        try:
            self._ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0",
                     "netns", self.ns)
            self._ip("addr", "add", self.host_addr + "/30", "dev", self.veth)
            self._ip("link", "set", self.veth, "up")
            self._ip("-n", self.ns, "addr", "add", self.addr + "/30", "dev", "eth0")
            self._ip("-n", self.ns, "link", "set", "eth0", "up")
            self._ip("-n", self.ns, "link", "set", "lo", "up")
            if self.command:
                self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns] + self.command,
                                             stdout=subprocess.DEVNULL)
        except BaseException:  # noqa: B902 -- undo the half-made host, then re-raise
            self.__exit__()
            raise
        return self

    def listen(self, port=0):
        """A TCP socket listening on the LAN host's address, made inside its
        namespace by this thread (setns, then back): a server of this process
        that sandboxes reach as another host."""
        libc = ctypes.CDLL(None, use_errno=True)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        theirs = os.open("/run/netns/" + self.ns, os.O_RDONLY)
        try:
            if libc.setns(theirs, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into " + self.ns)
            try:
                sock = socket.create_server((self.addr, port), backlog=1024)
            finally:
                if libc.setns(own, CLONE_NEWNET) != 0:  # cannot fail: our own namespace
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(own)
            os.close(theirs)
        return sock

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
