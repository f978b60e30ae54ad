"""The runtime's TCP relay to the sandbox channel (gust_runtime.s3_relay), against a
unix socket server of the test's own: bytes go both ways unchanged, a half-close is
passed on, the environment names the relay, and a function's own credentials win."""
import os
import socket
import threading

import pytest

from gust_runtime import s3_relay


@pytest.fixture
def channel(tmp_path, monkeypatch):
    """A unix socket server that answers each connection with b"echo:" + what it
    read until the client's half-close; yields its path."""
    for name in ("GUST_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(s3_relay, "_listener", None)
    path = str(tmp_path / "engine.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                conn.sendall(b"echo:" + data)
    threading.Thread(target=serve, daemon=True).start()
    yield path
    server.close()


def endpoint_port():
    url = os.environ["GUST_S3_ENDPOINT"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/s3"), url
    return int(url[len("http://127.0.0.1:"):-len("/s3")])


def test_relay_pipes_both_ways_and_passes_the_half_close(channel):
    s3_relay.offer(channel)
    s3_relay.serve()
    payload = os.urandom(3 * 1024 * 1024)  # several of the relay's buffers
    with socket.create_connection(("127.0.0.1", endpoint_port()), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert got == b"echo:" + payload
    assert os.environ["AWS_ACCESS_KEY_ID"] and os.environ["AWS_SECRET_ACCESS_KEY"]


def test_once_per_process_and_a_functions_credentials_win(channel, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    s3_relay.offer(channel)
    first = os.environ["GUST_S3_ENDPOINT"]
    s3_relay.offer(channel)
    assert os.environ["GUST_S3_ENDPOINT"] == first
    assert os.environ["AWS_ACCESS_KEY_ID"] == "mine"


def test_no_channel_no_relay(tmp_path, monkeypatch):
    monkeypatch.delenv("GUST_S3_ENDPOINT", raising=False)
    monkeypatch.setattr(s3_relay, "_listener", None)
    s3_relay.offer(str(tmp_path / "absent.sock"))
    assert "GUST_S3_ENDPOINT" not in os.environ
