"""Unit tests of the stage handler's WSGI adapter (gust_runtime.wsgi): the
gateway's raw encoding both ways and API Gateway proxy events, without an
engine (tests/e2e/test_web_gateway.py runs the same paths through one)."""
import base64
import json
import struct
import sys

import pytest

from gust_runtime import wsgi


def raw_event(environ, body=b""):
    head = json.dumps(environ).encode()
    return wsgi.MAGIC + struct.pack("<I", len(head)) + head + body


def echo_app(environ, start_response):
    start_response("207 Multi", [("X-A", "1"), ("X-A", "2"), ("Content-Type", "text/plain")])
    seen = {k: v for k, v in environ.items() if isinstance(v, str)}
    return [json.dumps(seen).encode(), b"|", environ["wsgi.input"].read()]


def test_raw_round_trip_keeps_bytes_and_repeated_headers():
    payload = raw_event({"REQUEST_METHOD": "POST", "PATH_INFO": "/caf\u00e9",
                         "HTTP_X_RAW": "\u00ff"}, b"\x00\x01body")
    out = wsgi.serve_raw(echo_app, payload)
    head, body = out.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"207 Multi"
    assert lines[1:] == [b"X-A: 1", b"X-A: 2", b"Content-Type: text/plain"]
    seen, echoed = body.split(b"|", 1)
    assert echoed == b"\x00\x01body"
    seen = json.loads(seen)
    assert seen["PATH_INFO"] == "/caf\u00e9" and seen["HTTP_X_RAW"] == "\u00ff"
    assert seen["wsgi.url_scheme"] == "http"


def test_generator_apps_are_closed_and_may_replace_headers_on_error():
    closed = []

    class Body:
        def __iter__(self):
            yield b"a"
            yield b""
            yield b"b"

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [("X", "first")])
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("500 Internal Server Error", [("X", "error page")], sys.exc_info())
        return Body()

    status, headers, body = wsgi.call_app(app, {})
    assert status.startswith("500") and headers == [("X", "error page")] and body == b"ab"
    assert closed == [True]


@pytest.mark.parametrize("status, headers, problem", [
    ("200 OK", [("X-Evil", "a\r\nSet-Cookie: stolen=1")], "line break"),
    ("200 OK\r\nX: y", [], "line break"),
    ("OK", [], "invalid WSGI status"),
    ("200 OK", [("X-Name", "\u20ac")], "latin-1"),
])
def test_responses_that_are_not_http_are_refused(status, headers, problem):
    with pytest.raises(wsgi.ResponseError, match=problem):
        wsgi.raw_response(status, headers, b"")


def test_an_app_that_never_starts_a_response_is_an_error():
    with pytest.raises(wsgi.ResponseError, match="start_response"):
        wsgi.call_app(lambda environ, start_response: [b"x"], {})


def test_api_gateway_v2_event_to_environ_and_back():
    event = {"version": "2.0", "rawPath": "/dev/items/a%20b", "rawQueryString": "q=1",
             "headers": {"Host": "api.example.com:8443", "Content-Type": "application/json"},
             "cookies": ["a=1", "b=2"],
             "requestContext": {"http": {"method": "POST", "sourceIp": "10.0.0.1"},
                                "stage": "dev"},
             "body": base64.b64encode(b"\xff").decode(), "isBase64Encoded": True}
    env = wsgi.environ_from_event(event)
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/dev", "/items/a b")  # stage prefix split
    assert env["QUERY_STRING"] == "q=1" and env["HTTP_COOKIE"] == "a=1; b=2"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("api.example.com", "8443")
    assert env["CONTENT_TYPE"] == "application/json" and env["REMOTE_ADDR"] == "10.0.0.1"
    assert env["wsgi.input"].read() == b"\xff"

    out = wsgi.event_response(event, "201 Created",
                              [("Content-Type", "text/plain"), ("Set-Cookie", "s=1"),
                               ("Set-Cookie", "t=2"), ("X-M", "a"), ("X-M", "b")], "héllo".encode())
    assert out == {"statusCode": 201, "body": "héllo", "isBase64Encoded": False,
                   "headers": {"Content-Type": "text/plain", "X-M": "a, b"},
                   "cookies": ["s=1", "t=2"]}
    binary = wsgi.event_response(event, "200 OK", [("Content-Type", "image/png")], b"\x89PNG")
    assert binary["isBase64Encoded"] and base64.b64decode(binary["body"]) == b"\x89PNG"


def test_api_gateway_v1_event_uses_multi_value_fields():
    event = {"httpMethod": "GET", "path": "/x",
             "multiValueQueryStringParameters": {"k": ["1", "2"]},
             "multiValueHeaders": {"X-Dup": ["a", "b"]}, "headers": {"Host": "h"},
             "requestContext": {"identity": {"sourceIp": "1.2.3.4"}}, "body": None}
    env = wsgi.environ_from_event(event)
    assert env["QUERY_STRING"] == "k=1&k=2" and env["HTTP_X_DUP"] == "a, b"
    assert env["REMOTE_ADDR"] == "1.2.3.4" and env["SCRIPT_NAME"] == ""
    out = wsgi.event_response(event, "200 OK", [("X-M", "a"), ("X-M", "b")], b"")
    assert out["multiValueHeaders"] == {"X-M": ["a", "b"]} and out["headers"] == {"X-M": "b"}
