"""The sandbox channel (issue 13: a task can use gust itself): a map task maps
from inside its sandbox and returns futures the client waits on, through the
engine's unix socket at /run/gust/engine.sock (src/api/channel_api.h), which
answers only the map-job API, only to running map tasks, for their own jobs,
down to --max-map-depth; with --access-key on, a task needs no key.

The functions are pickled by value (as in test_map.py) and import gust inside
the task: the sandbox offers the client library at /var/gust/gust.
"""

import http.client
import json
import os
import socket
import sys
import time

import cloudpickle
import pytest

import gust
from gust_e2e import Engine, SignedEngine, rootless_engine

cloudpickle.register_pickle_by_value(sys.modules[__name__])

CHANNEL = "/run/gust/engine.sock"


def square(x):
    return x * x


def map_inside(n):
    """Lithops' "lithops inside lithops": a task maps and waits on its map."""
    import gust
    fexec = gust.FunctionExecutor()
    return sum(fexec.get_result(fexec.map(square, range(n))))


def return_futures(n):
    """A task that returns the futures of its own map, unresolved."""
    import gust
    return gust.FunctionExecutor().map(square, range(n))


def nest(depth):
    """Maps itself depth levels down; returns the depth it reached."""
    if depth == 0:
        return 0
    import gust
    return gust.FunctionExecutor().map(nest, [depth - 1])[0].result() + 1


def nest_one_at_a_time(depth):
    """nest() with concurrency=1 at every level: each level's map runs on the
    same map function (same code, memory, timeout) as the task waiting on it."""
    if depth == 0:
        return 0
    import gust
    fexec = gust.FunctionExecutor(concurrency=1)
    return fexec.map(nest_one_at_a_time, [depth - 1])[0].result() + 1


def submit_or_probe(mode):
    """"submit": returns the futures of a map still running; "probe": in the
    same (warm) sandbox afterwards, which result pollers of this process are
    still running, and whether the submitter ran in this sandbox (its /tmp
    is the sandbox's own)."""
    import os
    import gust
    if mode == "submit":
        open("/tmp/submitted-here", "w").close()
        return gust.FunctionExecutor().map(nap, [2, 2])
    from gust import job
    return (os.path.exists("/tmp/submitted-here"),
            [j.job_id for j in job._polling if not j._stop.is_set()])


def nap(seconds):
    time.sleep(seconds)
    return seconds


def environment(_):
    import os
    return dict(os.environ)


def channel_request(method, path, body=None):
    """(status, error type, message) of one raw request on the channel."""
    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(CHANNEL)
    conn = Conn("localhost", timeout=30)
    conn.request(method, path, body=body)
    resp = conn.getresponse()
    data = resp.read()
    try:
        message = json.loads(data).get("message") or json.loads(data).get("Message")
    except ValueError:
        message = data.decode("utf-8", "replace")
    return resp.status, resp.getheader("x-amzn-ErrorType"), message


def probe_routes(other_job):
    """From inside a map task: what the channel answers off the job API."""
    import os
    out = {"endpoint": os.environ.get("GUST_ENDPOINT")}
    for name, (method, path) in {
            "functions": ("GET", "/2015-03-31/functions"),
            "invoke": ("POST", "/2015-03-31/functions/canary/invocations"),
            "sandboxes": ("GET", "/v1/sandboxes"),
            "logs": ("GET", "/v1/functions/canary/logs"),
            "events": ("GET", "/2019-09-25/functions/canary/event-invoke-config"),
            "web": ("GET", "/web/canary/"),
            "other_job": ("GET", "/v1/jobs/%s" % other_job),
            "other_results": ("GET", "/v1/jobs/%s/results" % other_job),
            "other_cancel": ("POST", "/v1/jobs/%s/cancel" % other_job),
            "health": ("GET", "/v1/health")}.items():
        out[name] = channel_request(method, path, b"{}" if method == "POST" else None)
    return out


def test_nested_map_4_by_4(engine):
    """A map of 4 tasks, each mapping 4 and waiting for them, on this 2-core
    machine: the waiting parents hold 4 sandboxes and the children still get
    theirs (no deadlock)."""
    fexec = gust.FunctionExecutor(engine.url)
    futures = fexec.map(map_inside, [4, 4, 4, 4])
    assert fexec.get_result(futures, timeout=120) == [14, 14, 14, 14]


def test_returned_futures_wait_in_the_client(engine):
    fexec = gust.FunctionExecutor(engine.url)
    inner = fexec.map(return_futures, [3, 5]).__iter__()
    first = next(inner).result(timeout=120)
    second = next(inner).result(timeout=120)
    assert all(isinstance(f, gust.ResponseFuture) for f in first + second)
    assert [f.result(timeout=60) for f in first] == [0, 1, 4]
    done, not_done = gust.wait(second, timeout=60)
    assert not not_done and len(done) == 5
    assert gust.get_all_results(second) == [0, 1, 4, 9, 16]
    assert fexec.get_result(first) == [0, 1, 4]
    assert first[0].job_id != second[0].job_id
    # Each child job is attributed to the job whose task submitted it.
    status, data = engine.get("/v1/jobs/" + first[0].job_id)
    assert status == 200, data
    child = json.loads(data)
    assert (child["Parent"], child["Depth"]) == (fexec.jobs[0].job_id, 1), child


def test_returned_futures_leave_no_poller_in_the_sandbox(engine):
    """The task that returned its futures has ended: its sandbox stops polling
    the child job (the client polls it), and the client still gets results."""
    fexec = gust.FunctionExecutor(engine.url, concurrency=1)
    submitted = fexec.map(submit_or_probe, ["submit"])[0].result(timeout=120)
    same_sandbox, polled = fexec.map(submit_or_probe, ["probe"])[0].result(timeout=120)
    assert same_sandbox  # the map function's warm sandbox ran both
    assert polled == [], polled
    assert [f.result(timeout=60) for f in submitted] == [2, 2]


def test_future_pickles_as_its_job_and_index(engine):
    """In one process too: the unpickled future polls the engine itself."""
    import pickle
    fexec = gust.FunctionExecutor(engine.url)
    futures = fexec.map(square, range(3))
    copy = pickle.loads(pickle.dumps(futures[2]))
    assert copy is not futures[2] and copy.job_id == futures[2].job_id
    assert copy.result(timeout=60) == 4
    with pytest.raises(TypeError, match="only once its job is submitted"):
        pickle.dumps(gust.ResponseFuture(None, 0))


def test_only_the_job_api_answers(engine):
    fexec = gust.FunctionExecutor(engine.url)
    other = fexec.map(square, [1])
    assert fexec.get_result(other) == [1]
    out = fexec.map(probe_routes, [other[0].job_id])[0].result(timeout=120)
    assert out["endpoint"] == "unix://" + CHANNEL
    for name in ("functions", "invoke", "sandboxes", "logs", "events", "web"):
        status, error_type, message = out[name]
        assert (status, error_type) == (403, "AccessDeniedException"), (name, out[name])
        assert "serves only the map-job API" in message, (name, message)
    for name in ("other_job", "other_results", "other_cancel"):
        status, error_type, message = out[name]
        assert status == 403, (name, out[name])
        assert "a task reaches only its own jobs" in message, (name, message)
    status, _, _ = out["health"]
    assert status == 200


CHANNEL_FROM_FUNCTION = """
import http.client, json, socket

class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect("/run/gust/engine.sock")

def handler(event, context):
    conn = Conn("localhost", timeout=30)
    conn.request("GET", "/v1/health")
    resp = conn.getresponse()
    return {"status": resp.status, "body": resp.read().decode()}
"""


def test_a_function_is_not_a_map_task(engine, fname):
    """A Lambda function's sandbox sees the socket but is refused: only the
    tasks of running map jobs are answered."""
    engine.create(fname, {"app.py": CHANNEL_FROM_FUNCTION})
    status, _, data = engine.invoke(fname, {})
    assert status == 200, data
    out = json.loads(data)
    assert out["status"] == 403, out
    assert "answers only the tasks of running map jobs" in out["body"], out


def test_a_host_process_is_not_a_map_task(engine):
    sock_path = os.path.join(engine.state_dir, "channel", "engine.sock")
    conn = http.client.HTTPConnection("localhost", timeout=10)
    conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.sock.connect(sock_path)
    conn.request("GET", "/v1/health")
    resp = conn.getresponse()
    body = resp.read().decode()
    assert resp.status == 403 and "process %d is not one" % os.getpid() in body, body


def test_depth_cap(tmp_path):
    with Engine(tmp_path / "state", extra_args=["--max-map-depth", "1"]) as eng:
        fexec = gust.FunctionExecutor(eng.url)
        assert fexec.map(nest, [1])[0].result(timeout=120) == 1
        with pytest.raises(gust.EngineError, match="maps nested deeper than 1"):
            fexec.map(nest, [2])[0].result(timeout=120)


def test_same_function_nested_at_its_concurrency(engine):
    """A job's concurrency bounds that job only: a parent at concurrency=1
    holding its one sandbox does not take the slot of its own nested map on
    the same map function (it used to wait 10 s and fail with Map.NoSandbox)."""
    fexec = gust.FunctionExecutor(engine.url, concurrency=1)
    started = time.monotonic()
    assert fexec.map(nest_one_at_a_time, [2])[0].result(timeout=120) == 2
    assert time.monotonic() - started < 9


def test_no_sandbox_left_for_a_nested_map_is_a_clear_error(tmp_path):
    """Two parents hold the engine's only two sandboxes while they wait on
    their maps: the child jobs fail with Map.NoSandbox after 10 s naming the
    cap, instead of waiting out the parents' timeout."""
    with Engine(tmp_path / "state", extra_args=["--max-sandboxes", "2"]) as eng:
        fexec = gust.FunctionExecutor(eng.url, concurrency=2, chunksize=1)
        started = time.monotonic()
        with pytest.raises(gust.TaskError, match="Map.NoSandbox.*--max-sandboxes"):
            fexec.get_result(fexec.map(map_inside, [2, 2]), timeout=120)
        assert time.monotonic() - started < 60


def test_auth_needs_no_key_inside(tmp_path, monkeypatch):
    key, secret = "AKIDCHANNELTEST", "channel-secret"
    with SignedEngine(tmp_path / "state", credentials=(key, secret),
                      extra_args=["--access-key", key, "--secret-key", secret]) as eng:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        fexec = gust.FunctionExecutor(eng.url)
        assert fexec.map(map_inside, [3])[0].result(timeout=120) == 5
        # The task had no key: the sandbox's environment holds only the
        # dummies botocore needs to sign for the S3 relay (docs/STORAGE.md).
        env = fexec.map(environment, [0])[0].result(timeout=60)
        assert env["GUST_ENDPOINT"] == "unix://" + CHANNEL
        assert env["AWS_SECRET_ACCESS_KEY"] == env["AWS_ACCESS_KEY_ID"] == "gust-sandbox"
        assert not any(secret in value or key in value for value in env.values()), env


def test_rootless_nested_map():
    """An engine run by nobody gives its sandboxes the channel too (a bind
    mount inside the zygote's user namespace; the peer's pid is read in the
    engine's namespace as with root)."""
    with rootless_engine(["--keep-alive", "60s"]) as eng:
        fexec = gust.FunctionExecutor(eng.url)
        assert fexec.get_result(fexec.map(map_inside, [3, 4]), timeout=120) == [5, 14]
