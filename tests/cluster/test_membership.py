"""Cluster mode, step 2 (docs/CLUSTER.md): `gust cluster init`, `gust up --cluster`
and membership, against a real PostgreSQL (scripts/pg-temp) and real engines.

Two engines on one database see each other in `gust cluster status`; a SIGKILLed
one goes dead once its heartbeat lease runs out (`--cluster-lease`, short here; the
10 s default is checked on another node), and its restart is the next epoch; an
orderly stop reads "stopped" at once. The engine refuses a schema older
or newer than its own (naming both versions) and one never initialised; connection
errors name host and port, never the password; functions see GUST_NODE."""
import json
import subprocess
import time

from gust_e2e import (CLUSTER_PG_DIR, GUST, TEST_LEASE_ARGS, Engine, cluster_node, free_port,
                      new_cluster_database, psql, run_gust)
from gust_e2e import TEST_LEASE_S as LEASE_S  # the lease alpha and beta run with

DEFAULT_LEASE_S = 10  # a node's heartbeat lease without --cluster-lease (src/common/config.h)


def status(eng):
    out = run_gust(eng, "cluster", "status", "--json", cwd=eng.state_dir)
    return json.loads(out.stdout)


def nodes_by_name(eng):
    return {n["name"]: n for n in status(eng)["nodes"]}


def gust_up(tmp_path, *args):
    """`gust up` that is expected to fail at start: its CompletedProcess."""
    return subprocess.run([GUST, "up", "--port", str(free_port()), "--state-dir",
                           str(tmp_path / "refused")] + list(args),
                          capture_output=True, text=True, timeout=60)


def test_two_nodes_see_each_other_and_a_killed_one_goes_dead(pg, tmp_path):
    db = new_cluster_database(pg)
    args = ("--keep-alive", "30s") + TEST_LEASE_ARGS
    a = cluster_node(tmp_path, db, "alpha", args).start()
    b = cluster_node(tmp_path, db, "beta", args).start()
    try:
        seen = nodes_by_name(a)
        assert set(seen) == {"alpha", "beta"}
        for eng, name in ((a, "alpha"), (b, "beta")):
            n = seen[name]
            assert n["state"] == "up" and n["epoch"] == 1, n
            assert n["advertise"] == eng.url, n
            assert n["cores"] >= 1 and n["memory_mb"] > 0 and n["version"], n
            assert 0 <= n["heartbeat_age_ms"] < 5000, n
            assert 0 < n["deadline_in_ms"] <= LEASE_S * 1000, n  # the flag's lease
        assert status(b)["node"] == "beta"  # any node answers, and says which it is
        table = run_gust(a, "cluster", "status", cwd=a.state_dir).stdout
        assert "alpha *" in table and "beta" in table and "up" in table, table

        # Heartbeats renew the lease every fifth of it.
        first = seen["beta"]["heartbeat_ms"]
        time.sleep(LEASE_S / 5 + 0.5)
        assert nodes_by_name(a)["beta"]["heartbeat_ms"] > first

        # A second engine under a live node's name (another address) is refused.
        clash = gust_up(tmp_path, "--cluster", db, "--node-name", "alpha")
        assert clash.returncode == 3, clash.stderr
        assert "node name alpha is held by a live node at " + a.url in clash.stderr

        # kill -9: no orderly leave; dead to the others once its deadline passes.
        b.proc.kill()
        b.proc.wait()
        killed = time.time()
        while nodes_by_name(a)["beta"]["state"] == "up":
            assert time.time() - killed < LEASE_S + 5, "beta never went dead"
            time.sleep(0.25)
        took = time.time() - killed
        # Not before its lease less a beat (the last renewal came up to a beat before the
        # kill) and a poll.
        assert LEASE_S - LEASE_S / 5 - 0.5 <= took <= LEASE_S + 5, took
        assert nodes_by_name(a)["beta"]["state"] == "dead"

        # Its restart (same name, same address) is the next epoch.
        b.start()
        n = nodes_by_name(a)["beta"]
        assert n["state"] == "up" and n["epoch"] == 2, n
        # An orderly stop leaves at once.
        b.stop()
        assert nodes_by_name(a)["beta"]["state"] == "stopped"
        b.start()
        assert nodes_by_name(a)["beta"]["epoch"] == 3
    finally:
        b.stop()
        a.stop()


def test_schema_missing_older_or_newer_is_refused(pg, tmp_path):
    db = new_cluster_database(pg, init=False)
    out = gust_up(tmp_path, "--cluster", db, "--node-name", "n1")
    assert out.returncode == 3
    assert "has no gust schema: run `gust cluster init`" in out.stderr, out.stderr

    init = subprocess.run([GUST, "cluster", "init", db], capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    version = int(psql(db, "SELECT MAX(version) FROM schema_version"))
    assert f"schema: version {version} (was 0)" in init.stdout
    assert "cluster credential: GK" in init.stdout and "(created" in init.stdout
    assert f"gust up --cluster '{db}'" in init.stdout
    again = subprocess.run([GUST, "cluster", "init", db], capture_output=True, text=True)
    assert again.returncode == 0 and "current (nothing to apply)" in again.stdout
    assert "(kept" in again.stdout

    psql(db, f"DELETE FROM schema_version WHERE version = {version}")
    out = gust_up(tmp_path, "--cluster", db, "--node-name", "n1")
    assert out.returncode == 3
    assert (f"has schema version {version - 1}, older than this gust's ({version})"
            in out.stderr), out.stderr
    psql(db, f"INSERT INTO schema_version VALUES ({version}), (99)")
    out = gust_up(tmp_path, "--cluster", db, "--node-name", "n1")
    assert out.returncode == 3
    assert f"has schema version 99, newer than this gust's ({version})" in out.stderr, out.stderr


def test_connection_errors_name_host_and_port_never_the_password(tmp_path):
    port = free_port()  # nothing listens there
    db = f"postgresql://gust:hunter2secret@127.0.0.1:{port}/gust"
    for args, code in ((["up", "--port", str(free_port()), "--state-dir", str(tmp_path / "s"),
                         "--cluster", db, "--node-name", "n1"], 3),
                       (["cluster", "init", db], 2)):
        out = subprocess.run([GUST] + args, capture_output=True, text=True, timeout=60)
        assert out.returncode == code, out.stderr
        assert f"host 127.0.0.1 port {port}" in out.stderr, out.stderr
        assert "hunter2secret" not in out.stderr + out.stdout
    out = subprocess.run([GUST, "cluster", "init", "postgresql://gust@[::1/gust"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "does not parse" in out.stderr, out.stderr
    out = subprocess.run([GUST, "up", "--node-name", "n1"], capture_output=True, text=True)
    assert out.returncode == 2 and "--node-name and --advertise go with --cluster" in out.stderr
    out = subprocess.run([GUST, "up", "--cluster", "dbname=x", "--node-name", "a b"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "is not a node name" in out.stderr, out.stderr


def test_functions_see_their_node(pg, tmp_path):
    code = "import os\ndef handler(e, c):\n    return os.environ.get('GUST_NODE')\n"
    db = new_cluster_database(pg)
    with cluster_node(tmp_path, db, "gamma") as node:
        node.create("where", {"app.py": code})
        status_code, _, body = node.invoke("where", {})
        assert status_code == 200 and json.loads(body) == "gamma", body
        # Without --cluster-lease, the default lease: a heartbeat every 2 s renews it to 10 s.
        row = nodes_by_name(node)["gamma"]
        assert (DEFAULT_LEASE_S - 2.5) * 1000 < row["deadline_in_ms"] <= DEFAULT_LEASE_S * 1000, row
    # Outside cluster mode nothing is set, and `gust cluster status` says why it has nothing.
    with Engine(tmp_path / "embedded") as engine:
        engine.create("where-embedded", {"app.py": code})
        status_code, _, body = engine.invoke("where-embedded", {})
        expected = None if not CLUSTER_PG_DIR else f"e2e-{engine.port}"
        assert status_code == 200 and json.loads(body) == expected, body
        if not CLUSTER_PG_DIR:
            out = run_gust(engine, "cluster", "status", cwd=engine.state_dir, check=False)
            assert out.returncode == 2 and "is not part of a cluster" in out.stderr, out.stderr
