"""Issue 5's durability test: accept 10,000 asynchronous invocations of a
function that appends its request id to a file, kill -9 the engine while they
are queued and running, restart it: every accepted id appears at least once,
duplicates are no more than the invocations in flight at the kill (bounded by
--async-concurrency), nothing is lost; schedules survive the restart too.

The function reaches the file through a small TCP sink in this test process
(sandboxes have no writable host directory): it sends its id and waits for the
sink's ack, so an id in the file means the handler really ran. The sink listens
on a "LAN host" (examples/scrape/lan.py): networked sandboxes may not reach the
host's own loopback (docs/SECURITY.md, "Network")."""
import contextlib
import http.client
import json
import os
import signal
import socketserver
import sys
import threading
import time


from gust_e2e import REPO, Engine

sys.path.insert(0, os.path.join(REPO, "examples", "scrape"))
from lan import LanHost  # noqa: E402 -- needs the path set above

TOTAL = 10_000
CONCURRENCY = 4  # --async-concurrency: the most that can be running at the kill
CLIENTS = 16

HANDLER = """import os, socket, time
HOST, PORT = os.environ["SINK_HOST"], int(os.environ["SINK_PORT"])
def handler(event, context):
    time.sleep(0.004)  # slow enough that the queue is still long at the kill
    with socket.create_connection((HOST, PORT)) as s:
        s.sendall((context.aws_request_id + "\\n").encode())
        s.recv(2)
    return "ok"
"""


class Sink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path, sock=None):
        """Listens on sock (a listening socket), else on 127.0.0.1."""
        self.path = path
        self.lock = threading.Lock()
        self.count = 0
        self.file = open(path, "a")
        super().__init__(("127.0.0.1", 0), SinkHandler, bind_and_activate=sock is None)
        if sock is not None:
            self.socket.close()
            self.socket = sock
        self.host, self.port = self.socket.getsockname()[:2]


class SinkHandler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().decode().strip()
        if line:
            with self.server.lock:
                self.server.file.write(line + "\n")
                self.server.file.flush()
                self.server.count += 1
        self.wfile.write(b"ok")


def accept_all(port, name, total):
    """Sends total async invokes over CLIENTS keep-alive connections; returns the ids."""
    ids, errors = [], []
    lock = threading.Lock()
    per_client = total // CLIENTS

    def client(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        for i in range(per_client):
            conn.request("POST", f"/2015-03-31/functions/{name}/invocations",
                         body=json.dumps({"n": k * per_client + i}),
                         headers={"X-Amz-Invocation-Type": "Event"})
            r = conn.getresponse()
            r.read()
            if r.status != 202:
                errors.append(r.status)
                continue
            mine.append(r.getheader("x-amzn-RequestId"))
        conn.close()
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    return ids


def test_accepted_events_survive_kill_9(tmp_path):
    with contextlib.ExitStack() as stack:
        sock = None
        if LanHost.available():
            sock = stack.enter_context(LanHost()).listen()
        run_kill_9(tmp_path, Sink(str(tmp_path / "ran.txt"), sock))


def run_kill_9(tmp_path, sink):
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    port = None
    eng = Engine(tmp_path / "state", extra_args=["--async-concurrency", str(CONCURRENCY)])
    port = eng.port
    eng.start()
    try:
        eng.create("appender", {"app.py": HANDLER}, Network=True,
                   Environment={"Variables": {"SINK_HOST": sink.host,
                                              "SINK_PORT": str(sink.port)}})
        eng.create("other", {"app.py": "def handler(e, c):\n    return 1\n"})
        for name, body in [("hourly", {"function": "other", "expression": "rate(1 hour)",
                                       "group": "g"}),
                           ("warm", {"function": "other", "expression": "cron(0/5 * * * ? *)",
                                     "kind": "keep_warm", "group": "g"})]:
            status, _, data = eng.request("PUT", f"/v1/schedules/{name}", body)
            assert status == 201, data
        before = {s["name"]: s for s in json.loads(eng.get("/v1/schedules")[1])["schedules"]}

        t0 = time.time()
        ids = accept_all(port, "appender", TOTAL)
        accept_s = time.time() - t0
        assert len(ids) == TOTAL and len(set(ids)) == TOTAL
        ran_at_kill = sink.count
        eng.proc.send_signal(signal.SIGKILL)
        eng.proc.wait()
        # Queued and running at the kill: some ran, most had not.
        assert 0 < ran_at_kill < TOTAL, ran_at_kill

        eng.start()
        after = {s["name"]: s for s in json.loads(eng.get("/v1/schedules")[1])["schedules"]}
        for name in ("hourly", "warm"):
            for key in ("expression", "kind", "group", "function", "created_ms"):
                assert after[name][key] == before[name][key], (name, key)
        # Same phase (its first tick may have passed during the kill and been caught up).
        assert (after["hourly"]["next_fire_ms"] - before["hourly"]["next_fire_ms"]) % 3_600_000 == 0

        deadline = time.time() + 120
        seen = set()
        while time.time() < deadline:
            with open(sink.path) as f:
                lines = f.read().split()
            seen = set(lines)
            if seen >= set(ids):
                break
            time.sleep(0.2)
        missing = set(ids) - seen
        assert not missing, f"{len(missing)} accepted ids never ran, e.g. {sorted(missing)[:3]}"
        time.sleep(0.5)  # anything still running would append now
        with open(sink.path) as f:
            lines = f.read().split()
        duplicates = len(lines) - len(set(lines))
        print(f"\naccepted {TOTAL} in {accept_s:.1f} s; {ran_at_kill} had run at the kill; "
              f"{duplicates} ran twice (bound {CONCURRENCY})")
        assert duplicates <= CONCURRENCY, duplicates
        assert set(lines) == set(ids)  # nothing ran that was not accepted

        stored = json.loads(eng.get("/v1/async")[1])["stored"]
        assert stored["queued"] == 0 and stored["succeeded"] >= TOTAL, stored  # + schedule fires
        doc = json.loads(eng.get(f"/v1/async-invocations/{ids[0]}")[1])
        assert doc["Status"] == "succeeded"
    finally:
        eng.stop()
        sink.shutdown()
