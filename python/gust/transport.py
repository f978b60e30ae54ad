"""A small HTTP client for the engine's /v1 API: one keep-alive connection per
thread, errors turned into EngineError / EngineUnavailableError with the
request and the engine's answer in the message."""

import http.client
import json
import threading
import urllib.parse

from .errors import EngineError, EngineUnavailableError


class Transport:
    """Requests against one engine URL (http://host:port)."""

    def __init__(self, url, timeout=60.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError("engine URL must look like http://host:port, not %r" % url)
        self.url = url.rstrip("/")
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self, timeout):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            self._local.conn = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method, path, body=None, headers=None, timeout=None, chunked=False,
                with_headers=False, before_response=None):
        """(status, body bytes), or (status, body, {lower-case header: value})
        with_headers. Retries once, on a fresh connection, when a kept-alive
        connection turns out closed (so a chunked body must be re-iterable);
        raises EngineUnavailableError when the engine cannot be reached.
        before_response() runs once the request is sent, before its answer
        is read (work that can overlap the engine's)."""
        timeout = self.timeout if timeout is None else timeout
        for attempt in range(2):
            conn = self._conn(timeout)
            reused = conn.sock is not None  # a kept-alive connection the engine may have closed
            try:
                conn.request(method, path, body=body, headers=headers or {},
                             encode_chunked=chunked)
                if before_response is not None:
                    before_response()
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self._drop()
                if with_headers:
                    return resp.status, data, {k.lower(): v for k, v in resp.getheaders()}
                return resp.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self._drop()
                if not reused or attempt == 1:
                    raise EngineUnavailableError(
                        "the gust engine at %s closed the connection during %s %s: %s"
                        % (self.url, method, path, e)) from e
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                raise EngineUnavailableError("cannot reach the gust engine at %s (%s %s): %s: %s"
                                             % (self.url, method, path, type(e).__name__, e)) from e
        raise AssertionError("unreachable")

    def json(self, method, path, body=None, expect=(200,), timeout=None):
        """A JSON request; returns the decoded answer, raises EngineError on another status."""
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        status, data = self.request(method, path, payload, headers, timeout=timeout)
        check(status, data, expect, method, path)
        return json.loads(data) if data else {}

    def close(self):
        self._drop()


def check(status, data, expect, method, path):
    """Raises EngineError quoting the engine's answer unless status is expected."""
    if status in expect:
        return
    text = data.decode("utf-8", "replace")[:2000]
    message = text
    try:
        doc = json.loads(text)
        message = doc.get("message") or doc.get("Message") or doc.get("errorMessage") or text
    except (ValueError, AttributeError):
        pass
    raise EngineError("%s %s -> HTTP %d: %s" % (method, path, status, message), status, text)
