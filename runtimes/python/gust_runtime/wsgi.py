"""WSGI adapter of the stage handler (stage.py): HTTP requests in, responses out.

Two ways an HTTP request reaches a WSGI app:

* the gateway's encoding (src/api/http_event.h), a raw-bytes event:
      b"GUSTWSGI1\\n" | u32 LE n | n bytes of JSON: the environ's strings | body
  answered with raw bytes shaped like an HTTP/1.1 head:
      b"200 OK\\r\\nName: value\\r\\n...\\r\\n\\r\\n" + body
  Environ strings and header values are WSGI "bytes as latin-1" strings, so
  nothing is lost either way; this path is the one every gateway request takes
  and is kept short (one C-level JSON decode, no per-header Python work).

* an API Gateway proxy event (payload v2.0, or v1 with "httpMethod") sent
  through the Lambda API, as Zappa's handler accepts them: the answer is the
  proxy response dict {statusCode, headers, [cookies | multiValueHeaders],
  body, isBase64Encoded}.

Only the standard library is imported, so the zygote can preload this module.
"""

from __future__ import annotations

import base64
import io
import struct
import sys
from urllib.parse import unquote_to_bytes, urlencode

from .codec import json_decode

# typing only for the type checker: the runtime does not import it (import
# time in every sandbox that does not preload it).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAGIC = b"GUSTWSGI1\n"
_HEADER_AT = len(MAGIC)
_BODY_LENGTH_AT = _HEADER_AT + 4
_U32 = struct.Struct("<I")

_WSGI_CONSTANTS = {
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}

_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml",
               "application/x-www-form-urlencoded", "+json", "+xml")


class ResponseError(Exception):
    """The app's answer cannot be sent as HTTP (bad status, header with a line break...)."""


# ---------------------------------------------------------------- calling the app

def call_app(app, environ):
    """Runs one WSGI request; returns (status line, [(name, value)], body bytes)."""
    state: list[Any] = []
    chunks: list[bytes] = []

    def start_response(status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if state and chunks:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        # Nothing is sent before the app returns, so a second call (an error
        # page after a failure) simply replaces the first.
        state[:] = (status, headers)
        return chunks.append

    result = app(environ, start_response)
    try:
        for data in result:
            if data:
                chunks.append(data)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not state:
        raise ResponseError("the WSGI app returned without calling start_response")
    return state[0], state[1], b"".join(chunks)


# ---------------------------------------------------------------- the gateway's encoding

def is_raw_request(event):
    return type(event) is bytes and event.startswith(MAGIC)


def environ_from_raw(payload):
    n = _U32.unpack_from(payload, _HEADER_AT)[0]
    end = _BODY_LENGTH_AT + n
    environ = json_decode(payload[_BODY_LENGTH_AT:end])
    environ.update(_WSGI_CONSTANTS)
    environ["wsgi.input"] = io.BytesIO(payload[end:])
    environ["wsgi.errors"] = sys.stderr
    return environ


def raw_response(status, headers, body):
    """The bytes the gateway turns into the HTTP response."""
    if type(status) is not str or len(status) < 3 or not status[:3].isdigit():
        raise ResponseError("invalid WSGI status %r (expected e.g. '200 OK')" % (status,))
    head = status + "\r\n" + "".join([name + ": " + value + "\r\n"
                                      for name, value in headers]) + "\r\n"
    lines = len(headers) + 2
    if head.count("\n") != lines or head.count("\r") != lines:
        raise ResponseError("a response header or the status contains a line break: %r"
                            % ([status] + list(headers),))
    try:
        return head.encode("latin-1") + body
    except UnicodeEncodeError as e:
        raise ResponseError("response headers must be latin-1 strings (WSGI): %s" % e) from None


def serve_raw(app, payload):
    status, headers, body = call_app(app, environ_from_raw(payload))
    return raw_response(status, headers, body)


# ---------------------------------------------------------------- API Gateway proxy events

def is_http_event(event):
    return isinstance(event, dict) and (
        event.get("version") == "2.0" and "requestContext" in event or "httpMethod" in event)


def environ_from_event(event):
    """A WSGI environ from an API Gateway proxy event (v2.0 or v1)."""
    ctx = event.get("requestContext") or {}
    script_name = ""
    if event.get("version") == "2.0":
        http = ctx.get("http") or {}
        method = http.get("method") or "GET"
        path = event.get("rawPath") or "/"
        query = event.get("rawQueryString") or ""
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        if event.get("cookies"):
            headers["cookie"] = "; ".join(event["cookies"])
        source_ip = http.get("sourceIp") or ""
        stage = ctx.get("stage") or "$default"
        if stage != "$default" and (path == "/" + stage or path.startswith("/" + stage + "/")):
            script_name, path = "/" + stage, path[len(stage) + 1:]
    else:
        method = event.get("httpMethod") or "GET"
        path = event.get("path") or "/"
        multi = event.get("multiValueQueryStringParameters")
        if multi:
            query = urlencode([(k, v) for k, vs in multi.items() for v in vs])
        else:
            query = urlencode(event.get("queryStringParameters") or {})
        headers = {}
        for k, vs in (event.get("multiValueHeaders") or {}).items():
            headers[str(k).lower()] = ", ".join(str(v) for v in vs)
        for k, v in (event.get("headers") or {}).items():
            headers.setdefault(str(k).lower(), str(v))
        source_ip = (ctx.get("identity") or {}).get("sourceIp") or ""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body)
    elif isinstance(body, str):
        body = body.encode("utf-8")

    host = headers.get("host", "localhost")
    name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": name or host,
        "SERVER_PORT": port or headers.get("x-forwarded-port", "80"),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": source_ip,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
    }
    environ.update(_WSGI_CONSTANTS)
    for k, v in headers.items():
        if k == "content-type":
            environ["CONTENT_TYPE"] = v
        elif k != "content-length":
            environ["HTTP_" + k.upper().replace("-", "_")] = v
    return environ


def _is_text(headers, body):
    ctype = ""
    for name, value in headers:
        if name.lower() == "content-type":
            ctype = value.lower()
    if not any(t in ctype for t in _TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def event_response(event, status, headers, body):
    """The proxy response dict for an API Gateway event."""
    text = _is_text(headers, body)
    out = {
        "statusCode": int(status[:3]),
        "body": body.decode("utf-8") if text else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": not text,
    }
    if event.get("version") == "2.0":
        single: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in headers:
            if name.lower() == "set-cookie":
                cookies.append(value)
            elif name in single:
                single[name] += ", " + value
            else:
                single[name] = value
        out["headers"] = single
        if cookies:
            out["cookies"] = cookies
    else:
        multi: dict[str, list[str]] = {}
        for name, value in headers:
            multi.setdefault(name, []).append(value)
        out["headers"] = {name: values[-1] for name, values in multi.items()}
        out["multiValueHeaders"] = multi
    return out


def serve_event(app, event):
    status, headers, body = call_app(app, environ_from_event(event))
    return event_response(event, status, headers, body)
