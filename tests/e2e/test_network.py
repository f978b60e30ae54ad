"""Maps that reach the network (issue 20): the network option on every API of
the Python client, the hint a task gets when it needs a network it was not
given, and what a networked sandbox can reach (docs/SECURITY.md, "Network"):
a "LAN" host (a veth peer in a network namespace this test creates, serving
the scraping example's site; no outside network exists here) yes, the host's
own loopback services no (unless the operator opens them), as root and
rootless.

Functions are pickled by value (see test_map.py). Every map uses
concurrency=2: each test needs one or two sandboxes, not a core's worth.
"""

import http.server
import os
import sys
import threading
import time
import urllib.error
import urllib.request

import cloudpickle
import pytest

import gust
from gust_e2e import REPO, rootless_engine

cloudpickle.register_pickle_by_value(sys.modules[__name__])

HINT = "pass network=True"
SCRAPE = os.path.join(REPO, "examples", "scrape")
sys.path.insert(0, SCRAPE)
from lan import LanHost  # noqa: E402 -- needs the path set above


def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def title(url):
    """The <h1> of a page of the example's site (examples/scrape/scrape.py)."""
    return fetch(url).split("<h1>")[1].split("</h1>")[0]


def titles(pages):
    return "|".join(pages)


def title_pair(a, b):
    return title(a) + "+" + title(b)


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 -- http.server's name
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def local():
    """An HTTP server on the host's loopback (a "database on 127.0.0.1");
    yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def site():
    """The example's site on a LAN host: a network namespace this test makes,
    behind a veth pair (lan.py). Yields its base URL; pages are /paper/N."""
    if not LanHost.available():
        pytest.skip("needs root and iproute2 to make a LAN host")
    command = [sys.executable, os.path.join(SCRAPE, "scrape.py"), "--serve", "{addr}",
               "--delay", "0"]
    with LanHost(command) as host:
        url = "http://%s:8080" % host.addr
        deadline = time.monotonic() + 10
        while True:
            try:
                fetch(url + "/ready")
                break
            except OSError:
                assert host.proc.poll() is None and time.monotonic() < deadline, "no LAN site"
                time.sleep(0.02)
        yield url + "/paper/"


def assert_no_network_hint(excinfo_value):
    """The failure is the function's own URLError, noted with the option to pass."""
    assert isinstance(excinfo_value, urllib.error.URLError), repr(excinfo_value)
    notes = getattr(excinfo_value, "__notes__", [])
    assert any(HINT in n and "no network" in n for n in notes), (excinfo_value, notes)


def network_notes(exc):
    """The notes of exc about the network (a failed task also has one naming its item)."""
    return [n for n in getattr(exc, "__notes__", []) if "network" in n]


def test_default_has_no_network_and_says_which_option(engine, site, local):
    ex = gust.FunctionExecutor(url=engine.url, concurrency=2)
    for url in (site + "1", local):  # no route; the sandbox's own loopback
        with pytest.raises(urllib.error.URLError) as e:
            ex.get_result(ex.map(fetch, [url]))
        assert_no_network_hint(e.value)
    # Shown where a user reads it: under the traceback.
    import traceback
    assert HINT in "".join(traceback.format_exception(e.value))
    # A failure that is not about the network gets no such note (only the item's).
    with pytest.raises(ValueError) as e:
        ex.get_result(ex.call_async(int, "x"))
    assert not network_notes(e.value)


def test_name_resolution_failure_gets_the_hint(engine):
    ex = gust.FunctionExecutor(url=engine.url, concurrency=2)
    with pytest.raises(urllib.error.URLError) as e:
        ex.get_result(ex.call_async(fetch, "http://pages.example/"))
    assert_no_network_hint(e.value)


def test_function_executor_network(engine, site):
    ex = gust.FunctionExecutor(url=engine.url, network=True, concurrency=2)
    assert ex.get_result(ex.map(title, [site + "1", site + "2"])) == ["Paper 1", "Paper 2"]
    assert ex.get_result(ex.call_async(title, site + "3")) == "Paper 3"
    assert ex.get_result(ex.map_reduce(title, [site + "4", site + "5"], titles)) \
        == "Paper 4|Paper 5"
    # A per-call False overrides the executor's True.
    with pytest.raises(urllib.error.URLError) as e:
        ex.get_result(ex.call_async(title, site + "6", network=False))
    assert_no_network_hint(e.value)


def test_per_call_network(engine, site):
    ex = gust.FunctionExecutor(url=engine.url, concurrency=2)
    assert ex.get_result(ex.map(title, [site + "7"], network=True)) == ["Paper 7"]
    assert ex.get_result(ex.call_async(title_pair, (site + "8", site + "9"),
                                       network=True)) == "Paper 8+Paper 9"
    # map_reduce: the map tasks and the reduce task run networked.
    assert ex.get_result(ex.map_reduce(title, [site + "10"], titles, network=True)) \
        == "Paper 10"
    with pytest.raises(TypeError, match="network must be True or False"):
        ex.map(title, [site], network="yes")


def test_executor_and_joblib_network(engine, site):
    with gust.Executor(url=engine.url, network=True, concurrency=2) as ex:
        assert ex.submit(title, site + "11").result(60) == "Paper 11"
        assert list(ex.map(title, [site + "12", site + "13"])) == ["Paper 12", "Paper 13"]
    with gust.Executor(url=engine.url, concurrency=2) as ex:
        with pytest.raises(urllib.error.URLError) as e:
            ex.submit(title, site + "11").result(60)
        assert_no_network_hint(e.value)
    joblib = pytest.importorskip("joblib")
    gust.register_joblib()
    with joblib.parallel_backend("gust", url=engine.url, network=True):
        pages = joblib.Parallel(n_jobs=2)(joblib.delayed(title)(site + str(i))
                                          for i in (14, 15))
    assert pages == ["Paper 14", "Paper 15"]


def test_host_loopback_is_closed_to_networked_sandboxes(engine, local):
    """docs/SECURITY.md, "Network": the LAN and beyond, yes; the host's own
    services (its loopback: a local server, the engine's API), no."""
    assert "host loopback closed to network=true sandboxes" in engine.health()["isolation"]
    ex = gust.FunctionExecutor(url=engine.url, network=True, concurrency=2)
    for url in (local, engine.url + "/v1/health"):
        with pytest.raises(urllib.error.URLError, match="No route to host") as e:
            ex.get_result(ex.call_async(fetch, url))
        assert not network_notes(e.value)  # it has a network: no hint


@pytest.fixture(scope="module")
def rootless():
    with rootless_engine(["--keep-alive", "60s"]) as eng:
        yield eng


def test_rootless_network(rootless, site, local):
    """Rootless, network=True is the host's namespace too (seen through the
    engine user's user namespace) with NO loopback guard (an unprivileged
    engine may not change the host's firewall): the LAN and the host's
    loopback are both reachable. The default: a loopback of its own, and the
    same hint."""
    ex = gust.FunctionExecutor(url=rootless.url, concurrency=2)
    assert ex.get_result(ex.call_async(title, site + "16", network=True)) == "Paper 16"
    assert ex.get_result(ex.call_async(fetch, local, network=True)) == "ok"
    with pytest.raises(urllib.error.URLError) as e:
        ex.get_result(ex.call_async(title, site + "17"))
    assert_no_network_hint(e.value)


def test_network_host_access_opts_out_and_clears_a_stale_guard(tmp_path):
    """`gust up --network-host-access` loads no guard and removes the table a
    crashed engine on its port left (whether its sandboxes then reach the
    host depends on the other engines of the host: the rule matches the
    sandbox uid they all share, docs/SECURITY.md)."""
    import shutil
    import subprocess
    from gust_e2e import Engine, free_port
    if os.geteuid() != 0 or not shutil.which("nft"):
        pytest.skip("needs root and nft")
    port = free_port()
    table = "gust_%d" % port
    subprocess.run(["nft", "add", "table", "inet", table], check=True)  # a crashed engine's
    eng = Engine(tmp_path / "state", port=port, extra_args=["--network-host-access"])
    try:
        eng.start()
        assert "host loopback OPEN to network=true sandboxes (gust up " \
               "--network-host-access)" in eng.health()["isolation"], eng.health()["isolation"]
        listed = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert "inet %s" % table not in listed, listed
    finally:
        eng.stop()
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)
