"""A small HTTP client for the engine's /v1 API: one keep-alive connection per
thread, errors turned into EngineError / EngineUnavailableError with the
request and the engine's answer in the message.

Requests are signed with AWS Signature Version 4 when there are credentials:
AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, else the engine's state dir file
($GUST_STATE_DIR or ~/.gust, `credentials`, written by `gust auth init`).
The signer is the few lines below (hashlib/hmac), the same canonical request
as the engine's (src/http/sigv4.h) and botocore's, so the client needs no
botocore. Streamed (chunked) bodies are signed as UNSIGNED-PAYLOAD.

A unix:///path/to/socket URL speaks HTTP over that unix socket: inside a map
task's sandbox GUST_ENDPOINT names the engine's sandbox channel
(unix:///run/gust/engine.sock, docs/MAP.md "Maps from a task"), where the
engine knows the caller by its pid and checks no signature, so nothing is
signed there.

An https:// engine (`gust up --tls-cert ... --tls-key ...`) is verified
against $GUST_CA_BUNDLE, else $AWS_CA_BUNDLE (what boto3 reads), else the
system's CAs; a certificate in the bundle is trusted even if it is not a root
(the engine's own self-signed one is the common case)."""

from __future__ import annotations

import configparser
import datetime
import functools
import hashlib
import hmac
import http.client
import json
import os
import socket
import ssl
import threading
import urllib.parse
from typing import Any, Callable, Iterable, Mapping

from .errors import EngineError, EngineUnavailableError


SIGV4_SERVICE = "lambda"  # what the engine accepts for its Lambda and /v1 APIs
S3_SERVICE = "s3"  # its object API's (/s3, docs/STORAGE.md): S3's signing rules
SIGV4_REGION = "us-east-1"  # any: gust has no regions
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


def state_dir() -> str:
    return os.environ.get("GUST_STATE_DIR") or os.path.join(os.path.expanduser("~"), ".gust")


def find_credentials() -> tuple[str, str] | None:
    """(access key id, secret) from the environment, else the state dir's
    credentials file ([default] profile); None: requests go unsigned."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return key, secret
    parser = configparser.ConfigParser()
    try:
        if not parser.read(os.path.join(state_dir(), "credentials")):
            return None
    except configparser.Error:
        return None
    if not parser.has_option("default", "aws_access_key_id"):
        return None
    return (parser.get("default", "aws_access_key_id"),
            parser.get("default", "aws_secret_access_key", fallback=""))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


@functools.lru_cache(maxsize=8)
def _signing_key(secret: str, date: str, service: str) -> bytes:
    """The day's derived key (4 HMACs, a third of a signature's cost)."""
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    for part in (SIGV4_REGION, service, "aws4_request"):
        k = _hmac(k, part)
    return k


def _canonical_path(path: str) -> str:
    """botocore's remove_dot_segments, then every byte but A-Za-z0-9-_.~/
    percent-encoded (the wire path is already encoded: '%' becomes %25)."""
    parts: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if parts:
                parts.pop()
        elif seg and seg != ".":
            parts.append(seg)
    out = ("/" if path.startswith("/") else "") + "/".join(parts)
    if path.endswith("/") and parts:
        out += "/"
    return urllib.parse.quote(out or "/", safe="/~")


def _canonical_query(query: str) -> str:
    pairs = []
    for item in query.split("&") if query else []:
        name, _, value = item.partition("=")
        pairs.append((urllib.parse.quote(urllib.parse.unquote(name), safe="-_.~"),
                      urllib.parse.quote(urllib.parse.unquote(value), safe="-_.~")))
    return "&".join("%s=%s" % p for p in sorted(pairs))


def sign(credentials: tuple[str, str], method: str, target: str, host: str, payload_hash: str,
         headers: Mapping[str, Any], now: datetime.datetime | None = None,
         service: str = SIGV4_SERVICE) -> dict[str, str]:
    """The headers that sign a request (X-Amz-Date, X-Amz-Content-Sha256,
    Authorization); host, those two and `headers` are signed. service "s3"
    signs by S3's rules (botocore's S3SigV4Auth, the engine's too): the path
    as sent, with no dot-segment removal and no second encoding."""
    key, secret = credentials
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    signed = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()}
    signed.update({"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash})
    names = sorted(signed)
    path, _, query = target.partition("?")
    canonical_path = path if service == S3_SERVICE else _canonical_path(path)
    canonical = "\n".join([method, canonical_path, _canonical_query(query),
                           "".join("%s:%s\n" % (n, signed[n]) for n in names),
                           ";".join(names), payload_hash])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], SIGV4_REGION, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    signature = hmac.new(_signing_key(secret, amz_date[:8], service), to_sign.encode("utf-8"),
                         hashlib.sha256).hexdigest()
    return {"X-Amz-Date": amz_date, "X-Amz-Content-Sha256": payload_hash,
            "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                             % (key, scope, ";".join(names), signature)}


def tls_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """The ssl.SSLContext https:// engines are checked with: ca_bundle, else
    $GUST_CA_BUNDLE, else $AWS_CA_BUNDLE, else the system's CAs. Raises
    ValueError naming a bundle that cannot be read."""
    cafile = ca_bundle or os.environ.get("GUST_CA_BUNDLE") or os.environ.get("AWS_CA_BUNDLE")
    try:
        context = ssl.create_default_context(cafile=cafile or None)
    except (OSError, ssl.SSLError) as e:
        raise ValueError("cannot load the CA bundle %s: %s" % (cafile, e)) from e
    # Trust what the bundle holds even when it is not a root, as curl does.
    context.verify_flags |= getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)
    return context


# A TCP peer whose kernel acknowledges nothing for this long is gone (a node cut off, a
# pulled cable): the request fails with EngineUnavailableError instead of waiting for its
# read timeout (a job's results poll waits up to 40 s) or TCP's retransmissions (~15
# minutes). Keepalive probes during a long poll are what a live engine's kernel answers,
# even when the engine itself is busy or stopped, so a slow answer is not cut: the
# engine's forwarder does the same (http::Client::SetPeerSilenceLimit).
PEER_SILENCE_S = 5


def limit_peer_silence(sock: socket.socket) -> None:
    """Keepalive probes every second after a second idle, and TCP_USER_TIMEOUT:
    the connection fails PEER_SILENCE_S after its peer last acknowledged
    anything (Linux; elsewhere only what the platform has)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 1), ("TCP_KEEPINTVL", 1),
                            ("TCP_KEEPCNT", PEER_SILENCE_S),
                            ("TCP_USER_TIMEOUT", PEER_SILENCE_S * 1000)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        pass  # not a TCP socket after all: the read timeout still bounds the wait


class TcpHTTPConnection(http.client.HTTPConnection):
    """http.client's connection with the peer silence limit."""

    def connect(self) -> None:
        super().connect()
        limit_peer_silence(self.sock)


class TcpHTTPSConnection(http.client.HTTPSConnection):
    """http.client's TLS connection with the peer silence limit."""

    def connect(self) -> None:
        super().connect()
        limit_peer_silence(self.sock)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client's connection over a unix-domain stream socket at `path`."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Transport:
    """Requests against one engine URL (http://host:port, https://host:port,
    or unix:///path/to/socket). ca_bundle: a PEM file of certificates an https
    engine is checked against (default: see tls_context). service: the SigV4
    service requests are signed for ("lambda"; S3_SERVICE for /s3, which
    also signs every x-amz-* and Range header a request carries)."""

    def __init__(self, url: str, timeout: float = 60.0,
                 credentials: tuple[str, str] | None = None,
                 ca_bundle: str | None = None, service: str = SIGV4_SERVICE) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.unix_path = parsed.path if parsed.scheme == "unix" else None
        if self.unix_path is not None:
            if not self.unix_path.startswith("/"):
                raise ValueError("a unix engine URL must name an absolute socket path, like "
                                 "unix:///run/gust/engine.sock, not %r" % url)
        elif parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("engine URL must look like http://host:port, https://host:port "
                             "or unix:///path/to/socket, not %r" % url)
        self.url = url.rstrip("/")
        self.service = service
        # Every node of a cluster the client was given, this one first (engine.connect with
        # several URLs): where a job's results stream fails over to.
        self.endpoints: list[str] = [self.url]
        self.host = parsed.hostname or "localhost"
        self._ca_bundle = ca_bundle
        self.tls = tls_context(ca_bundle) if parsed.scheme == "https" else None
        default_port = 443 if self.tls else 80
        self.port = (parsed.port if self.unix_path is None else None) or default_port
        self.timeout = timeout
        self._local = threading.local()
        # The Host header as http.client would send it, set explicitly: it is signed.
        host = "[%s]" % self.host if ":" in self.host else self.host
        self.host_header = host if self.port == default_port else "%s:%d" % (host, self.port)
        # The channel's caller is known by its pid: nothing to sign with.
        self.credentials = None if self.unix_path else credentials or find_credentials()

    def sibling(self, url: str) -> Transport:
        """A Transport to another of self.endpoints, with this one's timeout,
        credentials and certificates."""
        other = Transport(url, self.timeout, self.credentials, self._ca_bundle, self.service)
        other.endpoints = self.endpoints
        return other

    def _signed(self, method: str, path: str, body: Any, headers: Mapping[str, str] | None,
                chunked: bool) -> dict[str, str]:
        headers = dict(headers or {})
        if self.credentials is None:
            return headers
        if chunked or not (body is None or isinstance(body, (bytes, bytearray, str))):
            payload_hash = UNSIGNED_PAYLOAD  # a stream: not hashed ahead of sending
        else:
            data = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
            payload_hash = hashlib.sha256(data).hexdigest()
        headers["Host"] = self.host_header
        signable = {k: v for k, v in headers.items()
                    if k.lower() in ("content-type", "content-md5", "range")
                    or k.lower().startswith("x-amz-")}
        headers.update(sign(self.credentials, method, path, self.host_header, payload_hash,
                            signable, service=self.service))
        return headers

    def _new_conn(self, timeout: float) -> http.client.HTTPConnection:
        if self.unix_path is not None:
            return UnixHTTPConnection(self.unix_path, timeout)
        if self.tls is not None:
            return TcpHTTPSConnection(self.host, self.port, timeout=timeout, context=self.tls)
        return TcpHTTPConnection(self.host, self.port, timeout=timeout)

    def _conn(self, timeout: float) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._new_conn(timeout)
            self._local.conn = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method: str, path: str, body: bytes | Iterable[bytes] | None = None,
                headers: Mapping[str, str] | None = None, timeout: float | None = None,
                chunked: bool = False, with_headers: bool = False,
                before_response: Callable[[], None] | None = None) -> tuple[Any, ...]:
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
                conn.request(method, path, body=body,
                             headers=self._signed(method, path, body, headers, chunked),
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
                hint = ""
                if isinstance(e, ssl.SSLCertVerificationError):
                    hint = " (pass the engine's certificate, or its CA's, in GUST_CA_BUNDLE)"
                raise EngineUnavailableError("cannot reach the gust engine at %s (%s %s): %s: %s%s"
                                             % (self.url, method, path, type(e).__name__, e,
                                                hint)) from e
        raise AssertionError("unreachable")

    def stream(self, method: str, path: str, headers: Mapping[str, str] | None = None,
               timeout: float | None = None) -> http.client.HTTPResponse:
        """The response to a bodiless request, its body not yet read, on a
        connection of its own that closing the response closes (a big
        download read as the caller takes it, while this thread's kept-alive
        connection stays free). Raises EngineUnavailableError as request."""
        timeout = self.timeout if timeout is None else timeout
        conn = self._new_conn(timeout)
        try:
            conn.request(method, path, headers=self._signed(method, path, None, headers, False))
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise EngineUnavailableError("cannot reach the gust engine at %s (%s %s): %s: %s"
                                         % (self.url, method, path, type(e).__name__, e)) from e
        # The response owns the socket from here: a socket closed while a file made from it
        # is open closes for real when that file (the response's) closes.
        sock, conn.sock = conn.sock, None
        if sock is not None:
            sock.close()
        return resp

    def json(self, method: str, path: str, body: Any = None, expect: Iterable[int] = (200,),
             timeout: float | None = None) -> Any:
        """A JSON request; returns the decoded answer, raises EngineError on another status."""
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        status, data = self.request(method, path, payload, headers, timeout=timeout)
        check(status, data, expect, method, path)
        return json.loads(data) if data else {}

    def close(self) -> None:
        self._drop()


def check(status: int, data: bytes, expect: Iterable[int], method: str, path: str) -> None:
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
