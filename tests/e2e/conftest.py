"""Fixtures for end-to-end tests (helpers in gust_e2e.py)."""
import base64
import contextlib
import json
import os
import statistics
import sys
import threading
import uuid

import pytest

from gust_e2e import REPO, Engine, Leaks, canary_latency, rootless_engine

# The client library (python/gust) for the tests that drive the engine through it.
sys.path.insert(0, os.path.join(REPO, "python"))


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    eng = Engine(tmp_path_factory.mktemp("gust-state"), extra_args=["--keep-alive", "60s"])
    eng.start()
    yield eng
    eng.stop()


@pytest.fixture
def lam(engine):
    import boto3
    from botocore.config import Config
    return boto3.client(
        "lambda", endpoint_url=engine.url, region_name="us-east-1",
        aws_access_key_id="gust", aws_secret_access_key="gust",
        config=Config(retries={"max_attempts": 0}, read_timeout=300, connect_timeout=5))


_counter = [0]


@pytest.fixture
def fname(request):
    """A function name unique to this test."""
    _counter[0] += 1
    import re
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", request.node.name).strip("-")
    return f"{base[:48]}-{_counter[0]}"


CANARY = "def handler(e, c):\n    return 'alive'\n"
# The canary's median latency during and after each case, on a loaded 2-core
# CI machine (a warm invocation is ~1 ms; the bound only catches an engine
# that stopped serving others or stalls behind the attack).
CANARY_BOUND_S = 1.0


def _suite(eng, marker):
    eng.marker = marker
    eng.create("canary", {"app.py": CANARY})
    assert eng.invoke("canary", {})[0] == 200
    return eng


@pytest.fixture(scope="module", params=["root", "rootless"])
def suite_engine(request, tmp_path_factory):
    """An engine of its own for the escape and exhaustion suites, as root and
    as nobody (rootless): its pool fixed at 2 (so its processes return to the
    same count once a case's sandboxes are gone), a 3 s HTTP idle timeout (the
    slow-client cases), a marker in its environment that no sandbox may read,
    and a warm `canary` function that must keep answering."""
    marker = "gust-escape-marker-" + uuid.uuid4().hex
    args = ["--keep-alive", "60s", "--prefork", "2", "--prefork-max", "2",
            "--http-idle-timeout", "3s"]
    env = {"GUST_ESCAPE_MARKER": marker}
    if request.param == "rootless":
        with rootless_engine(args, env) as eng:
            yield _suite(eng, marker)
        return
    if os.geteuid() != 0:
        pytest.skip("the root case needs root")
    eng = Engine(tmp_path_factory.mktemp("gust-suite"), extra_args=args, env=env)
    eng.start()
    try:
        yield _suite(eng, marker)
    finally:
        eng.stop()


class Case:
    """One attack against suite_engine: deploys the functions it needs, and at
    the end deletes them and checks that the canary still answers within
    CANARY_BOUND_S and that nothing leaked (gust_e2e.Leaks)."""

    def __init__(self, engine, fname):
        self.engine = engine
        self.fname = fname
        self.names = []
        self.leaks = Leaks(engine)
        self.before = self.leaks.snapshot(settle=True)

    def deploy(self, source, suffix="", **config):
        name = self.fname + suffix
        self.engine.create(name, {"app.py": source}, **config)
        self.names.append(name)
        return name

    def invoke(self, name, payload=None):
        """(status, JSON body, log tail) of one invocation of name."""
        status, headers, data = self.engine.invoke(name, payload or {}, tail=True)
        log = base64.b64decode(headers.get("x-amz-log-result", "")).decode(errors="replace")
        return status, json.loads(data) if data else None, log

    def run(self, source, payload=None, **config):
        """Deploys source, invokes it once, asserts a 200 and returns (body, log)."""
        status, body, log = self.invoke(self.deploy(source, **config), payload)
        assert status == 200, (status, body)
        return body, log

    @contextlib.contextmanager
    def canary_during(self, period_s=0.2):
        """Invokes the canary every period_s while the block runs; asserts each
        call answered and their median latency."""
        stop, times, errors = threading.Event(), [], []

        def loop():
            while not stop.is_set():
                try:
                    times.append(canary_latency(self.engine, "canary", calls=1))
                except Exception as e:  # noqa: B902 -- reported below, in the test's thread
                    errors.append(repr(e))
                stop.wait(period_s)

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        try:
            yield times
        finally:
            stop.set()
            t.join(60)
        assert not errors, errors[:3]
        assert times and statistics.median(times) < CANARY_BOUND_S, times

    def finish(self):
        for name in self.names:
            status, _, data = self.engine.request("DELETE", f"/2015-03-31/functions/{name}")
            assert status in (200, 204), (status, data)
        assert canary_latency(self.engine, "canary") < CANARY_BOUND_S
        self.leaks.assert_none_since(self.before)


@pytest.fixture
def case(suite_engine, fname):
    c = Case(suite_engine, fname)
    yield c
    c.finish()
