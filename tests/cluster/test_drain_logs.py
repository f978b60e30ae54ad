"""Cluster step 6 (docs/CLUSTER.md, "Step 6 as built"): `gust node drain NAME` and a
function's logs merged across nodes.

Drain: a node with leased async events and map chunks takes no new work once it reads
itself draining, finishes what it holds, and leaves (its row reads stopped, its `gust up`
exits 0); nothing accepted is lost. Errors: an unknown node (404), a stopped one (409), an
engine without --cluster (409), a wait that times out (non-zero, naming what still runs).

Logs: lines of invocations run on n1 and n2, read through n3, come back labelled with the
node that produced them and in time order; `gust logs --follow` through n3 follows both; a
node killed with SIGKILL is a warning naming it, not a failure."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import cloudpickle

import gust
from async_helpers import WHERE, accept, leased_to, wait_all_finished
from gust_e2e import GUST, Engine

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ARGS = ("--keep-alive", "60s", "--async-concurrency", "3")


def where(x, pause):
    time.sleep(pause)
    return x, os.environ.get("GUST_NODE")


def gust_cli(eng, *args, timeout=90):
    return subprocess.run([GUST, "--url", eng.url] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def node_row(eng, name):
    status, data = eng.get("/v1/nodes")
    assert status == 200, data
    rows = [n for n in json.loads(data)["nodes"] if n["name"] == name]
    assert rows, data
    return rows[0]


def wait_for_log(eng, text, timeout_s=15):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if text in eng.log():
            return time.time()
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {eng.log_path} within {timeout_s} s")


def test_drain_finishes_async_events_and_map_chunks_then_leaves(cluster):
    db, nodes = cluster(3, ARGS)
    n1, n2, n3 = nodes
    n1.create("where", {"app.py": WHERE}, Timeout=30)
    ids = [accept(nodes[i % 3], "where", {"i": i, "sleep": 1.0}) for i in range(36)]
    # A map owned by n1 that n2 and n3 help with.
    ex = gust.FunctionExecutor(url=n1.url, show_progress=False, concurrency=2)
    fs = ex.map(where, [(x, 0.3) for x in range(120)])
    deadline = time.time() + 45
    while time.time() < deadline:
        done = [f.result() for f in fs if f.done()]
        if leased_to(db, "n2") and any(r[1] == "n2" for r in done):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("n2 never held both events and map chunks")

    drain = subprocess.Popen([GUST, "--url", n3.url, "node", "drain", "n2", "--timeout", "60"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_log(n2, "async: draining")  # on the engine thread, when it takes effect
    time.sleep(0.3)  # a page-in already in flight then lands and is given back at once
    held = set(leased_to(db, "n2"))
    # A sync call that reaches it directly runs on an up node.
    status, _, data = n2.invoke("where", {"i": -1, "sleep": 0})
    assert status == 200 and json.loads(data)["node"] in ("n1", "n3"), data
    # Other nodes see it (`gust cluster status`) and it takes no new leases from here on.
    status = gust_cli(n1, "cluster", "status")
    assert re.search(r"^n2\s+draining\s", status.stdout, re.M), status.stdout
    while n2.proc.poll() is None:
        assert set(leased_to(db, "n2")) <= held, (held, leased_to(db, "n2"))
        time.sleep(0.1)
    out, err = drain.communicate(timeout=60)
    assert drain.returncode == 0, (out, err)
    assert "node n2 drained and left (stopped)" in out, out
    assert "still running" in out, out  # progress while it finished its work
    assert n2.proc.returncode == 0, n2.log()
    assert node_row(n1, "n2")["state"] == "stopped"
    log = n2.log()
    assert "async: draining" in log and "map: draining" in log, log
    assert "drained: nothing runs here any more; leaving" in log, log

    # Nothing lost: every event once, the map's every result in order.
    finished = wait_all_finished(n1, ids, timeout=60)
    assert {d["Status"] for d in finished.values()} == {"succeeded"}, finished
    results = ex.get_result(fs)
    assert [r[0] for r in results] == list(range(120)), results
    ran_on = {r[1] for r in results}
    assert ran_on >= {"n1", "n2", "n3"}, ran_on
    # The chunks n2 held were answered by n2, not taken back as a dead node's.
    assert "node n2 left the cluster" not in n1.log(), n1.log()


def test_drain_errors_and_a_wait_that_times_out(cluster, tmp_path):
    _, nodes = cluster(2, ARGS)
    n1, n2 = nodes
    unknown = gust_cli(n1, "node", "drain", "nobody")
    assert unknown.returncode != 0
    assert "no node named 'nobody'" in unknown.stderr, unknown.stderr
    status, _, data = n1.request("POST", "/v1/nodes/nobody/drain")
    assert status == 404, data

    # A node busy with a map it owns: the wait ends at --timeout saying what still runs.
    ex = gust.FunctionExecutor(url=n2.url, show_progress=False, concurrency=1)
    fs = ex.map(where, [(0, 6.0)])
    deadline = time.time() + 20  # published by n2's next heartbeat (every 2 s)
    while time.time() < deadline and node_row(n1, "n2")["activity"].get("map_jobs", 0) == 0:
        time.sleep(0.2)
    waited = gust_cli(n1, "node", "drain", "n2", "--timeout", "1")
    assert waited.returncode != 0, waited
    assert "still draining after 1 s" in waited.stderr, waited.stderr
    assert "1 map jobs it owns" in waited.stderr, waited.stderr
    # The drain goes on: the job finishes, its result is read, and the node leaves.
    assert [tuple(r) for r in ex.get_result(fs)] == [(0, "n2")]
    assert n2.proc.wait(timeout=30) == 0
    stopped = gust_cli(n1, "node", "drain", "n2", "--no-wait")
    assert stopped.returncode != 0
    assert "node n2 is stopped, not up" in stopped.stderr, stopped.stderr

    # An engine without --cluster has no nodes to drain.
    with Engine(tmp_path / "embedded") as embedded:
        status, _, data = embedded.request("POST", "/v1/nodes/n1/drain")
        assert status == 409, data
        assert b"not part of a cluster" in data


SAY = ("import os\n"
       "def handler(event, context):\n"
       "    print('said', event['i'], 'on', os.environ.get('GUST_NODE'))\n"
       "    return os.environ.get('GUST_NODE')\n")
LINE = re.compile(r"^(\S+) \[(n\d)\] (.*)$")


def say_on(eng, i):
    status, _, data = eng.invoke("say", {"i": i})
    assert status == 200, data
    return json.loads(data)


def test_logs_are_merged_across_nodes_labelled_in_time_order(cluster):
    _, nodes = cluster(3)
    n1, n2, n3 = nodes
    n1.create("say", {"app.py": SAY})
    # A warm sandbox on each of n1 and n2: a call finds one idle where it arrives and runs
    # there (nothing is forwarded).
    for eng in (n1, n2):
        assert eng.request("POST", "/v1/functions/say/warm")[0] == 200
    ran = {i: say_on(n1 if i % 2 == 0 else n2, i) for i in range(6)}
    assert set(ran.values()) == {"n1", "n2"}, ran

    time.sleep(0.3)  # each node writes its log lines in the background (every 50 ms)
    out = gust_cli(n3, "logs", "say")
    assert out.returncode == 0, out.stderr
    lines = [LINE.match(line) for line in out.stdout.splitlines()]
    assert all(lines), out.stdout
    said = {int(m.group(3).split()[1]): m.group(2) for m in lines
            if m.group(3).startswith("said ")}
    assert said == ran, (said, out.stdout)  # each line labelled with the node that ran it
    stamps = [m.group(1) for m in lines]
    assert stamps == sorted(stamps), out.stdout
    assert {m.group(2) for m in lines if m.group(3).startswith("START")} == {"n1", "n2"}
    assert "warning" not in out.stderr, out.stderr

    # Tail follows every node.
    follow = subprocess.Popen([GUST, "--url", n3.url, "logs", "say", "--follow"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(follow.stdout), daemon=True)
    reader.start()
    try:
        say_on(n1, 100)
        say_on(n2, 101)
        deadline = time.time() + 10
        while time.time() < deadline:
            text = "".join(seen)
            if "[n1] said 100 on n1" in text and "[n2] said 101 on n2" in text:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("".join(seen))
    finally:
        follow.terminate()
        follow.wait(10)

    # A node that does not answer is named in a warning; the others' lines still come.
    n2.stop(sig=signal.SIGKILL)
    out = gust_cli(n3, "logs", "say")
    assert out.returncode == 0, out.stderr
    assert re.search(r"warning: node n2 \(http://[^)]+\) did not answer", out.stderr), out.stderr
    assert "[n1] said 0 on n1" in out.stdout and "[n2]" not in out.stdout, out.stdout
