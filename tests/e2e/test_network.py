"""Maps that reach the network (issue 20): the network option on every API of
the Python client, the hint a task gets when it needs a network it was not
given, and what a networked sandbox can reach (docs/SECURITY.md, "Network"):
a server on the host's loopback, a "LAN" host (a veth peer in a network
namespace this test creates; no outside network exists here), as root and
rootless.

Functions are pickled by value (see test_map.py). Every map uses
concurrency=2: each test needs one or two sandboxes, not a core's worth.
"""

import http.server
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import cloudpickle
import pytest

import gust
from gust_e2e import rootless_engine

cloudpickle.register_pickle_by_value(sys.modules[__name__])

HINT = "pass network=True"
# The test's LAN: host side and peer of a veth pair (a /30 nothing else uses).
LAN_HOST, LAN_PEER, LAN_PORT = "10.213.77.1", "10.213.77.2", 8080


def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def fetch_pair(a, b):
    return fetch(a) + fetch(b)


def joined(pages):
    return "|".join(pages)


class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 -- http.server's name
        body = ("page " + self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    """An HTTP server on the host's loopback; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def lan(tmp_path_factory):
    """A host on a LAN: a network namespace with one end of a veth pair, the
    other end in the host's namespace, and an HTTP server in it. Yields its URL."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    ns, veth = "gust-lan-%d" % os.getpid(), "gl%d" % os.getpid()
    ip = ["ip"]

    def run(*cmd):
        subprocess.run(list(cmd), check=True, capture_output=True)

    run(*ip, "netns", "add", ns)
    server = None
    try:
        run(*ip, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run(*ip, "addr", "add", LAN_HOST + "/30", "dev", veth)
        run(*ip, "link", "set", veth, "up")
        run(*ip, "-n", ns, "addr", "add", LAN_PEER + "/30", "dev", "eth0")
        run(*ip, "-n", ns, "link", "set", "eth0", "up")
        run(*ip, "-n", ns, "link", "set", "lo", "up")
        root = tmp_path_factory.mktemp("lan")
        (root / "lan").write_text("page /lan")
        (root / "ready").write_text("")
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", "--bind", LAN_PEER,
             "--directory", str(root), str(LAN_PORT)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = "http://%s:%d" % (LAN_PEER, LAN_PORT)
        for _ in range(100):
            try:
                fetch(url + "/ready")
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("the LAN server exited")
                threading.Event().wait(0.05)
        yield url
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(ip + ["link", "del", veth], capture_output=True)
        subprocess.run(ip + ["netns", "del", ns], capture_output=True)


def assert_no_network_hint(excinfo_value):
    """The failure is the function's own URLError, noted with the option to pass."""
    assert isinstance(excinfo_value, urllib.error.URLError), repr(excinfo_value)
    notes = getattr(excinfo_value, "__notes__", [])
    assert any(HINT in n and "no network" in n for n in notes), (excinfo_value, notes)


def test_default_has_no_network_and_says_which_option(engine, site):
    ex = gust.FunctionExecutor(url=engine.url, concurrency=2)
    with pytest.raises(urllib.error.URLError) as e:
        ex.get_result(ex.map(fetch, [site + "/a"]))
    assert_no_network_hint(e.value)
    # Shown where a user reads it: under the traceback.
    import traceback
    assert HINT in "".join(traceback.format_exception(e.value))
    # A failure that is not about the network gets no such note.
    with pytest.raises(ValueError) as e:
        ex.get_result(ex.call_async(int, "x"))
    assert not getattr(e.value, "__notes__", None)


def test_name_resolution_failure_gets_the_hint(engine):
    ex = gust.FunctionExecutor(url=engine.url, concurrency=2)
    with pytest.raises(urllib.error.URLError) as e:
        ex.get_result(ex.call_async(fetch, "http://pages.example/"))
    assert_no_network_hint(e.value)


def test_function_executor_network(engine, site):
    ex = gust.FunctionExecutor(url=engine.url, network=True, concurrency=2)
    assert ex.get_result(ex.map(fetch, [site + "/1", site + "/2"])) == ["page /1", "page /2"]
    assert ex.get_result(ex.call_async(fetch, site + "/c")) == "page /c"
    assert ex.get_result(ex.map_reduce(fetch, [site + "/x", site + "/y"], joined)) \
        == "page /x|page /y"
    # A per-call False overrides the executor's True.
    with pytest.raises(urllib.error.URLError) as e:
        ex.get_result(ex.call_async(fetch, site + "/off", network=False))
    assert_no_network_hint(e.value)


def test_per_call_network(engine, site):
    ex = gust.FunctionExecutor(url=engine.url, concurrency=2)
    assert ex.get_result(ex.map(fetch, [site + "/m"], network=True)) == ["page /m"]
    assert ex.get_result(ex.call_async(fetch_pair, (site + "/a", site + "/b"),
                                       network=True)) == "page /apage /b"
    # map_reduce: both the map tasks and the reduce task run networked.
    fut = ex.map_reduce(fetch, [site + "/r"], joined, network=True)
    assert ex.get_result(fut) == "page /r"
    with pytest.raises(TypeError, match="network must be True or False"):
        ex.map(fetch, [site], network="yes")


def test_executor_and_joblib_network(engine, site):
    with gust.Executor(url=engine.url, network=True, concurrency=2) as ex:
        assert ex.submit(fetch, site + "/s").result(60) == "page /s"
        assert list(ex.map(fetch, [site + "/e1", site + "/e2"])) == ["page /e1", "page /e2"]
    with gust.Executor(url=engine.url, concurrency=2) as ex:
        with pytest.raises(urllib.error.URLError) as e:
            ex.submit(fetch, site + "/s").result(60)
        assert_no_network_hint(e.value)
    joblib = pytest.importorskip("joblib")
    gust.register_joblib()
    with joblib.parallel_backend("gust", url=engine.url, network=True):
        pages = joblib.Parallel(n_jobs=2)(joblib.delayed(fetch)(site + "/j%d" % i)
                                          for i in range(2))
    assert pages == ["page /j0", "page /j1"]


def test_networked_sandbox_reaches_the_lan(engine, lan):
    ex = gust.FunctionExecutor(url=engine.url, concurrency=2)
    assert ex.get_result(ex.call_async(fetch, lan + "/lan", network=True)) == "page /lan"
    with pytest.raises(urllib.error.URLError) as e:
        ex.get_result(ex.call_async(fetch, lan + "/lan"))
    assert_no_network_hint(e.value)


def test_networked_sandbox_and_the_engine_api(engine):
    """The decided meaning today (docs/SECURITY.md, "Network"): a networked
    sandbox shares the host's namespace, so it reaches loopback services,
    the engine's API included; what guards them is their credentials."""
    ex = gust.FunctionExecutor(url=engine.url, concurrency=2)
    health = ex.get_result(ex.call_async(fetch, engine.url + "/v1/health", network=True))
    assert '"isolation"' in health


@pytest.fixture(scope="module")
def rootless():
    with rootless_engine(["--keep-alive", "60s"]) as eng:
        yield eng


def test_rootless_network(rootless, site):
    """Rootless, network=True means the same (the host's namespace, seen
    through the engine user's own user namespace); the default has only a
    loopback that is down, and the same hint."""
    ex = gust.FunctionExecutor(url=rootless.url, concurrency=2)
    assert ex.get_result(ex.call_async(fetch, site + "/rl", network=True)) == "page /rl"
    with pytest.raises(urllib.error.URLError) as e:
        ex.get_result(ex.call_async(fetch, site + "/rl"))
    assert_no_network_hint(e.value)
