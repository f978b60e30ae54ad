"""PostgreSQL stopped under a cluster of three real engines (docs/CLUSTER.md,
"Step 4 as built"): warm sync invokes keep working on every node; async accepts
and deploys answer 503 ServiceException naming the database, promptly; the
heartbeat outage is logged once; after PostgreSQL returns (same port), the nodes
recover without a restart and every event that was accepted, before or during
the load around the outage, runs."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import cloudpickle
import pytest
from async_helpers import WHERE, accept, async_invoke, wait_all_finished
from gust_e2e import (PG_TEMP, TEST_LEASE_ARGS, TEST_LEASE_S, cluster_node, make_zip,
                      new_cluster_database, pg_temp_start, pg_temp_stop)

import gust
from gust.errors import EngineError

cloudpickle.register_pickle_by_value(__import__("sys").modules[__name__])

# Longer than the nodes' membership lease (a short one, TEST_LEASE_S): they stop leasing
# meanwhile.
OUTAGE_S = TEST_LEASE_S + 3


@pytest.fixture
def own_pg():
    """A PostgreSQL of this test's own (the session's must not be stopped)."""
    directory = tempfile.mkdtemp(prefix="gust-pg-outage-")
    try:
        yield directory, pg_temp_start(directory)
    finally:
        pg_temp_stop(directory)
        shutil.rmtree(directory, ignore_errors=True)


def square(x):
    return x * x


def assert_503_naming_the_database(status, headers, data, started):
    assert status == 503, (status, data)
    assert headers["x-amzn-errortype"] == "ServiceException", headers
    message = json.loads(data)["Message"]
    assert "PostgreSQL database at host 127.0.0.1 port" in message, message
    assert time.time() - started < 10, "a refusal must not wait for the database"


def test_postgres_stopped_and_restarted(own_pg, tmp_path):
    directory, base = own_pg
    port = base.rsplit(":", 1)[1].split("/")[0]
    db = new_cluster_database(base)
    args = ("--keep-alive", "120s") + TEST_LEASE_ARGS
    nodes = [cluster_node(tmp_path, db, f"n{i}", args).start() for i in (1, 2, 3)]
    try:
        nodes[0].create("where", {"app.py": WHERE}, Timeout=30)
        for eng in nodes:  # warm on every node: the function known, a sandbox kept
            status, _, data = eng.invoke("where", {"i": -1})
            assert status == 200, data
        before = [accept(nodes[i % 3], "where", {"i": i, "sleep": 0.5}) for i in range(12)]
        ex = gust.FunctionExecutor(url=nodes[0].url, show_progress=False)
        assert ex.get_result(ex.map(square, [1, 2])) == [1, 4]  # its code and function known

        # Load across the outage: each node keeps accepting; what got a 202 must run.
        accepted, refused, stop = [], [], threading.Event()

        def load(eng):
            i = 0
            while not stop.is_set():
                status, headers, data = async_invoke(eng, "where", {"i": 1000 + i})
                if status == 202:
                    accepted.append(headers["x-amzn-requestid"])
                else:
                    refused.append((status, data))
                i += 1
                time.sleep(0.1)

        threads = [threading.Thread(target=load, args=(eng,)) for eng in nodes]
        for t in threads:
            t.start()
        time.sleep(1)
        pg_temp_stop(directory)
        outage_began = time.time()
        try:
            while time.time() - outage_began < OUTAGE_S:
                for eng in nodes:
                    # Warm sync invokes never touch PostgreSQL.
                    status, _, data = eng.invoke("where", {"i": -2})
                    assert status == 200, (eng.url, data)
                    assert json.loads(data)["node"] == os.path.basename(eng.state_dir)
                started = time.time()
                assert_503_naming_the_database(*async_invoke(nodes[1], "where", {}), started)
                time.sleep(1)
            # A map job is refused (its function's lookup reads PostgreSQL; a record that fails
            # later ends the job and its reader gets the same 503), promptly.
            started = time.time()
            with pytest.raises(EngineError) as failed:
                ex.get_result(ex.map(square, [3]), timeout=30)
            assert "HTTP 503" in str(failed.value), failed.value
            assert "PostgreSQL database at host 127.0.0.1" in str(failed.value), failed.value
            assert time.time() - started < 10
            for eng in nodes:
                started = time.time()
                zipped = base64.b64encode(make_zip({"app.py": WHERE})).decode()
                assert_503_naming_the_database(*eng.request(
                    "PUT", "/2015-03-31/functions/where/code", {"ZipFile": zipped}), started)
                started = time.time()
                assert_503_naming_the_database(*eng.request("POST", "/2015-03-31/functions", {
                    "FunctionName": "new", "Runtime": "python3.11", "Role": "r",
                    "Handler": "app.handler", "Code": {"ZipFile": zipped}}), started)
        finally:
            pg_temp_start_on(directory, port)
        recovered_at = time.time()
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join()
        assert refused, "no accept was refused during the outage"
        assert all(s == 503 for s, _ in refused), refused[:3]

        # Every node takes accepts and deploys again, without a restart.
        after = [accept(eng, "where", {"i": 2000 + n}) for n, eng in enumerate(nodes)]
        nodes[2].create("new", {"app.py": WHERE})
        ids = before + accepted + after
        done = wait_all_finished(nodes[0], ids, timeout=60)
        assert {d["Status"] for d in done.values()} == {"succeeded"}
        assert time.time() - recovered_at < 60
        for eng in nodes:
            log = open(eng.log_path, errors="replace").read()
            # The outage is logged once per node (and its end), not once per beat.
            for what in ("heartbeat", "event queue commit"):
                assert log.count(f"{what} failed") == 1, log[-3000:]
                assert log.count(f"{what} works again") == 1, log[-3000:]
            assert "membership lease ran out" in log, log[-3000:]
            assert "membership is live again" in log, log[-3000:]
            assert eng.proc.poll() is None
    finally:
        for eng in nodes:
            eng.stop()


def pg_temp_start_on(directory, port):
    """Restarts the stopped server of directory on its old port (nodes keep their conninfo)."""
    out = subprocess.run([PG_TEMP, "start", directory, port], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
