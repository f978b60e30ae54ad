"""Engines in network namespaces (docs/CLUSTER.md, "Tests on one machine"): a
bridge on a test-only subnet, one namespace per node joined to it by a veth
pair, a PostgreSQL of its own listening on the bridge's address, and helpers to
cut a node's link and restore it.

Only what this module creates is touched: a bridge `gbr<tag>` in the root
namespace with 10.231.X.1/24 (X free on this machine), namespaces
`gust-<tag>-nI` each holding `eth0` = 10.231.X.(10+I)/24 and `lo`, and the veths
`gv<tag>I` on the bridge. No route leads outside: the namespaces have only their
subnet's route, and the root namespace's routes and interfaces are left alone.

Engines are started inside their namespace with `nsenter --net=` rather than
`ip netns exec`: the latter also mounts a fresh /sys over the engine's, which
hides /sys/fs/cgroup, where the engine keeps its sandboxes' cgroups.

A node cut off is its veth set down on the bridge side: the node reaches
neither PostgreSQL nor the other nodes nor the test, and they do not reach it;
packets are dropped, not refused, as with a pulled cable. A node cut off from
one address:port only (`block`, e.g. from PostgreSQL while its peers and
clients still reach it) is an nftables table `inet gust_partition` inside its
namespace that drops its packets to that address:port and theirs back; the root
namespace's firewall is not touched.

Teardown (also after a failed test) stops every engine, PostgreSQL, deletes the
namespaces (their veths, nftables tables and sockets go with them) and the
bridge."""
import os
import shutil
import subprocess
import tempfile
import uuid

from gust_e2e import (Engine, free_port, new_cluster_database, pg_temp_start,
                      pg_temp_stop, stop_all)


def _ip(*args, check=True):
    out = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise RuntimeError("ip %s failed: %s" % (" ".join(args), out.stderr.strip()))
    return out


BLOCK_TABLE = "gust_partition"  # engines name theirs inet gust_<port>: no clash


def _nft(namespace, rules):
    """Loads rules (nft's syntax) inside namespace."""
    out = subprocess.run(["nsenter", f"--net=/run/netns/{namespace}", "nft", "-f", "-"],
                         input=rules, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"nft in {namespace} failed: {out.stderr.strip()}\n{rules}")


def unusable_reason():
    """Why namespaces cannot be made here ("" if they can): not root, no `ip`
    or `nsenter`, or `ip netns add` refused."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the cluster tests as root)"
    for tool in ("ip", "nsenter", "nft"):
        if shutil.which(tool) is None:
            return f"no `{tool}` on PATH (iproute2, util-linux, nftables)"
    probe = "gust-probe-" + uuid.uuid4().hex[:6]
    out = _ip("netns", "add", probe, check=False)
    if out.returncode != 0:
        return "`ip netns add` is not usable here: " + out.stderr.strip()
    _ip("netns", "del", probe, check=False)
    return ""


def _free_subnet():
    """A third octet X with no address of 10.231.X.0/24 on this machine."""
    used = _ip("-4", "-o", "addr", "show").stdout
    for _ in range(200):
        x = int.from_bytes(os.urandom(1), "big") % 250 + 2
        if f" 10.231.{x}." not in used:
            return x
    raise RuntimeError("no free 10.231.X.0/24 subnet")


class NetnsNet:
    """The bridge, the nodes' namespaces and the PostgreSQL on the bridge."""

    def __init__(self, nodes):
        self.tag = uuid.uuid4().hex[:4]
        self.x = _free_subnet()
        self.bridge = f"gbr{self.tag}"
        self.gateway = f"10.231.{self.x}.1"
        self.names = [f"n{i}" for i in range(1, nodes + 1)]
        self.pg_dir = tempfile.mkdtemp(prefix="gust-pg-netns-")
        self.base = None  # PostgreSQL's conninfo on the bridge address
        self.made = []    # namespaces created, for teardown
        self.blocked = set()  # nodes with a block table (NetnsCluster.stop removes them)

    def namespace(self, name):
        return f"gust-{self.tag}-{name}"

    def veth(self, name):
        return f"gv{self.tag}{name[1:]}"

    def address(self, name):
        return f"10.231.{self.x}.{10 + int(name[1:])}"

    def setup(self):
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", self.gateway + "/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for name in self.names:
            ns = self.namespace(name)
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("link", "add", self.veth(name), "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            _ip("link", "set", self.veth(name), "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", self.address(name) + "/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        os.environ["PG_TEMP_LISTEN"] = self.gateway + "/24"
        try:
            loopback = pg_temp_start(self.pg_dir)
        finally:
            del os.environ["PG_TEMP_LISTEN"]
        # The same server and database, reached on the bridge by the nodes.
        self.base = loopback.replace("@127.0.0.1:", f"@{self.gateway}:")
        return self

    def cut(self, name):
        """Cuts node name off (its link down): nothing reaches it, it reaches nothing."""
        _ip("link", "set", self.veth(name), "down")

    def restore(self, name):
        _ip("link", "set", self.veth(name), "up")

    def block(self, name, host, port):
        """Cuts node name off from host:port only (TCP, both ways; packets dropped,
        not refused): everything else still reaches it."""
        rules = (f"table inet {BLOCK_TABLE} {{\n"
                 f"  chain out {{ type filter hook output priority 0; policy accept;\n"
                 f"    ip daddr {host} tcp dport {port} drop; }}\n"
                 f"  chain in {{ type filter hook input priority 0; policy accept;\n"
                 f"    ip saddr {host} tcp sport {port} drop; }}\n}}\n")
        _nft(self.namespace(name), rules)
        self.blocked.add(name)

    def unblock(self, name):
        """Undoes block (a no-op when name is not blocked)."""
        if name in self.blocked:
            _nft(self.namespace(name), f"delete table inet {BLOCK_TABLE}\n")
            self.blocked.discard(name)

    def postgres(self):
        """(address, port) at which the nodes reach PostgreSQL."""
        port = self.base.split(f"@{self.gateway}:", 1)[1].split("/", 1)[0]
        return self.gateway, int(port)

    def teardown(self):
        pg_temp_stop(self.pg_dir)
        shutil.rmtree(self.pg_dir, ignore_errors=True)
        for ns in self.made:
            _ip("netns", "del", ns, check=False)  # its end of the veth pair ends both
        _ip("link", "del", self.bridge, check=False)


class NetnsEngine(Engine):
    """An Engine inside a node's namespace, bound to and advertised at its address."""

    def __init__(self, net, name, state_dir, db, extra_args):
        address = net.address(name)
        port = free_port()
        super().__init__(
            state_dir, port=port, run_as=["nsenter", f"--net=/run/netns/{net.namespace(name)}"],
            host=address,
            extra_args=["--host", address, "--insecure-no-auth", "--cluster", db,
                        "--node-name", name, "--advertise", f"http://{address}:{port}"]
            + list(extra_args))
        self.name = name


class NetnsCluster:
    """A cluster of engines n1..nN, one per namespace, on a new database."""

    def __init__(self, net, state_root):
        self.net = net
        self.state_root = state_root
        self.engines = []

    def start(self, n, extra_args=("--keep-alive", "30s")):
        """(conninfo from the test process, [started NetnsEngine]) of a new cluster."""
        db = new_cluster_database(self.net.base)
        # As docs/CLUSTER.md asks of every node's conninfo: a statement in flight when the
        # link goes down fails in seconds, not after TCP's retransmissions (~15 minutes).
        node_db = db + "&tcp_user_timeout=4000"
        nodes = []
        for name in self.net.names[:n]:
            eng = NetnsEngine(self.net, name, os.path.join(str(self.state_root), name),
                              node_db, extra_args)
            self.engines.append(eng)
            nodes.append(eng.start())
        return db, nodes

    def cut(self, eng):
        self.net.cut(eng.name)

    def restore(self, eng):
        self.net.restore(eng.name)

    def block_postgres(self, eng):
        """Cuts eng off from PostgreSQL only: its peers and clients still reach it."""
        self.net.block(eng.name, *self.net.postgres())

    def unblock_postgres(self, eng):
        self.net.unblock(eng.name)

    def stop(self):
        for name in self.net.names:
            self.net.restore(name)  # a cut node must hear its stop and leave
            self.net.unblock(name)
        stop_all(self.engines)
