"""The client's unix-socket transport (unix:// URLs: the sandbox channel a map
task reaches its engine by, docs/MAP.md "Maps from a task") against a real
HTTP server on a unix socket."""

import http.server
import json
import os
import socketserver
import threading

import pytest

from gust import engine, transport


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []

    def do_GET(self):  # noqa: N802 -- http.server's name
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def unix_server(tmp_path):
    path = str(tmp_path / "engine.sock")
    server = _Server(path, _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Handler.seen = []
    yield path
    server.shutdown()
    server.server_close()


def test_requests_go_over_the_socket_unsigned(unix_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    t = transport.Transport("unix://" + unix_server)
    assert t.json("GET", "/v1/health") == {"path": "/v1/health"}
    assert t.json("GET", "/v1/jobs/x") == {"path": "/v1/jobs/x"}  # the kept-alive connection
    assert t.credentials is None
    assert all("authorization" not in h for h in _Handler.seen), _Handler.seen


def test_relative_unix_path_is_refused():
    with pytest.raises(ValueError, match="absolute socket path"):
        transport.Transport("unix://engine.sock")


def test_gust_endpoint_is_found_after_gust_url(monkeypatch):
    monkeypatch.delenv("GUST_URL", raising=False)
    monkeypatch.setenv("GUST_ENDPOINT", "unix:///run/gust/engine.sock")
    assert engine.resolve_url() == ("unix:///run/gust/engine.sock", True)
    monkeypatch.setenv("GUST_URL", "http://127.0.0.1:1")
    assert engine.resolve_url() == ("http://127.0.0.1:1", True)
    assert engine.resolve_url("http://h:2") == ("http://h:2", True)


def test_an_absent_socket_is_engine_unavailable(tmp_path):
    t = transport.Transport("unix://" + os.path.join(str(tmp_path), "none.sock"))
    with pytest.raises(transport.EngineUnavailableError, match="cannot reach"):
        t.request("GET", "/v1/health")
