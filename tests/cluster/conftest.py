"""Fixtures for cluster tests (docs/CLUSTER.md): a real PostgreSQL of this
session's own (scripts/pg-temp) and clusters of real engines on it.

`cluster(n, extra_args=...)` starts n engines on a new, initialised database
(nodes "n1".."nN", each on a free loopback port with a state dir of its own) and
stops whatever is left of them at the test's end; a test may SIGKILL or restart
its nodes.

`netns_cluster(n, extra_args=...)` does the same with each engine in a network
namespace of its own on a bridge (tests/cluster/netns.py), on a PostgreSQL of
the test module that listens on the bridge; `netns_cluster.cut(node)` and
`.restore(node)` take a node's link down and up; `.block_postgres(node)` and
`.unblock_postgres(node)` cut it off from PostgreSQL only. Skipped, with the reason, when
namespaces cannot be made (not root, no `ip netns`)."""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))

from gust_e2e import (  # noqa: E402 -- importable once tests/e2e is on the path
    REPO, cluster_node, new_cluster_database, pg_available, pg_temp_start, pg_temp_stop,
    stop_all)
import netns  # noqa: E402 -- after gust_e2e's path

sys.path.insert(0, os.path.join(REPO, "python"))


def pytest_collection_modifyitems(config, items):
    if pg_available():
        return
    skip = pytest.mark.skip(reason="no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)"
                            " or psql: run scripts/install-deps")
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pg():
    """The session's PostgreSQL: its base conninfo (a database per cluster is a
    schema in it, gust_e2e.new_cluster_database)."""
    directory = tempfile.mkdtemp(prefix="gust-pg-cluster-")
    try:
        yield pg_temp_start(directory)
    finally:
        pg_temp_stop(directory)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def cluster(pg, tmp_path):
    """cluster(n, extra_args=()) -> (conninfo, [Engine]): n started nodes of a new
    cluster. Every node is stopped at the test's end (a killed one is skipped)."""
    started = []

    def make(n, extra_args=("--keep-alive", "30s")):
        db = new_cluster_database(pg)
        nodes = []
        for i in range(1, n + 1):
            eng = cluster_node(tmp_path, db, f"n{i}", extra_args)
            started.append(eng)
            nodes.append(eng.start())
        return db, nodes

    yield make
    stop_all(started)  # a killed node, or one the test stopped itself, is skipped


@pytest.fixture(scope="module")
def netns_net():
    """The module's bridge, namespaces n1..n3 and PostgreSQL on the bridge
    (netns.NetnsNet), torn down after the module's last test."""
    reason = netns.unusable_reason()
    if reason:
        pytest.skip(reason)
    net = netns.NetnsNet(3)
    try:
        yield net.setup()
    finally:
        net.teardown()


@pytest.fixture
def netns_cluster(netns_net, tmp_path):
    """netns_cluster(n, extra_args=()) -> (conninfo, [NetnsEngine]); also
    .cut(engine), .restore(engine), .block_postgres(engine),
    .unblock_postgres(engine). Links and blocks are restored and engines stopped at
    the test's end, whatever happened."""
    made = netns.NetnsCluster(netns_net, tmp_path)

    class Start:
        def __call__(self, n, extra_args=("--keep-alive", "30s")):
            return made.start(n, extra_args)

        cut = staticmethod(made.cut)
        restore = staticmethod(made.restore)
        block_postgres = staticmethod(made.block_postgres)
        unblock_postgres = staticmethod(made.unblock_postgres)

    try:
        yield Start()
    finally:
        made.stop()
