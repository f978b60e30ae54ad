"""Finding the engine: url=..., $GUST_URL, $GUST_ENDPOINT (the sandbox
channel a map task is given), or a local engine the client starts itself
(`gust up -d`) on the default URL and reuses; plus the map protocol check
against the one the engine reports in /v1/health."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

from .errors import EngineError, EngineUnavailableError
from .transport import Transport

DEFAULT_URL = "http://127.0.0.1:7700"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_start_lock = threading.Lock()
_transports: dict[str, Transport] = {}  # engine URL -> its Transport
_last: list[Transport] = []  # the Transport connect() returned last


def find_gust_binary() -> str:
    """The gust executable: $GUST_BIN (the binary or its directory), `gust` on
    PATH, or the build/bin/gust of the repository this package sits in."""
    candidates = []
    env = os.environ.get("GUST_BIN")
    if env:
        candidates.append(os.path.join(env, "gust") if os.path.isdir(env) else env)
    on_path = shutil.which("gust")
    if on_path:
        candidates.append(on_path)
    candidates.append(os.path.join(_PACKAGE_DIR, "..", "..", "build", "bin", "gust"))
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
    raise EngineUnavailableError(
        "no gust engine answers at %s and no gust binary was found to start one (looked at "
        "$GUST_BIN, PATH and %s); start one with `gust up -d` or set GUST_URL"
        % (DEFAULT_URL, os.path.abspath(candidates[-1])))


def _alive(transport: Transport) -> bool:
    """Whether the engine answers; EngineError if it answers but refuses the
    client's credentials (or their absence), which no restart would mend."""
    try:
        status, data = transport.request("GET", "/v1/health", timeout=5)
    except EngineUnavailableError:
        return False
    if status == 403:
        message = data.decode("utf-8", "replace")
        try:
            message = json.loads(message).get("Message") or message
        except (ValueError, AttributeError):
            pass
        raise EngineError("the gust engine at %s refused the request: %s (it checks signatures: "
                          "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use the state "
                          "dir's credentials file from `gust auth init`)"
                          % (transport.url, message), status, data)
    return status == 200


def start_local_engine(transport: Transport, wait_s: float = 30.0) -> None:
    """Runs `gust up -d` and waits until /v1/health answers."""
    binary = find_gust_binary()
    proc = subprocess.run([binary, "up", "-d"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=wait_s + 30)
    output = proc.stdout.decode("utf-8", "replace").strip()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if _alive(transport):
            return
        time.sleep(0.1)
    raise EngineUnavailableError("started `%s up -d` (exit %d) but %s did not answer within "
                                 "%.0f s; its output:\n%s" % (binary, proc.returncode,
                                                              transport.url, wait_s, output))


def resolve_url(url: str | None = None) -> tuple[str, bool]:
    """(url, explicit): url= wins, then $GUST_URL, then $GUST_ENDPOINT (set in
    a map task's sandbox: unix:///run/gust/engine.sock), else the default
    local URL."""
    if url:
        return url.rstrip("/"), True
    for name in ("GUST_URL", "GUST_ENDPOINT"):
        env = os.environ.get(name)
        if env:
            return env.rstrip("/"), True
    return DEFAULT_URL, False


def connect(url: str | None = None, start: bool = True) -> Transport:
    """A Transport to a live engine. With no URL configured, starts the local
    engine if it is not running (once per process; later calls reuse it).

    Several comma-separated URLs (url= or $GUST_URL) name nodes of one cluster
    (docs/CLUSTER.md): the first that answers is used, and a job's results
    stream moves to the next when its node stops answering. Raises
    EngineUnavailableError when none answers."""
    url, explicit = resolve_url(url)
    urls = [u.strip().rstrip("/") for u in url.split(",") if u.strip()]
    if len(urls) > 1:
        return _connect_any(urls)
    with _start_lock:
        transport = _transports.get(url)
        if transport is not None and (explicit or _alive(transport)):
            _last[:] = [transport]
            return transport  # the local engine is re-checked: it may have been stopped
        transport = transport or Transport(url)
        if not _alive(transport):
            if explicit or not start:
                raise EngineUnavailableError(
                    "no gust engine answers at %s (GET /v1/health failed); is it running?" % url)
            start_local_engine(transport)
        _transports[url] = transport
        _last[:] = [transport]
        return transport


def _connect_any(urls: list[str]) -> Transport:
    """connect() to the first of a cluster's nodes that answers."""
    errors = []
    for i, url in enumerate(urls):
        with _start_lock:
            transport = _transports.get(url) or Transport(url)
        if not _alive(transport):
            errors.append(url)
            continue
        transport.endpoints = urls[i:] + urls[:i]
        with _start_lock:
            _transports[url] = transport
            _last[:] = [transport]
        return transport
    raise EngineUnavailableError("no gust engine answers at any of %s (GET /v1/health failed)"
                                 % ", ".join(errors))


def default_transport() -> Transport:
    """The engine this process uses: the one connect() returned last, else
    connect()'s (url-less) choice. Futures unpickled here bind to it."""
    with _start_lock:
        if _last:
            return _last[0]
    return connect()


def client_python() -> dict[str, str]:
    """This interpreter's environment, as sent in the job header: the map's
    tasks run in it (docs/ENVIRONMENTS.md). sys.executable as the user runs it
    (a venv's bin/python, not what it links to, so the engine finds the venv)."""
    executable = sys.executable
    if not executable or not os.path.isabs(executable):
        raise EngineError("this Python reports no absolute sys.executable (%r): gust runs a map's "
                          "tasks in the client's interpreter and cannot find it" % (executable,))
    return {"executable": executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix,
            "version": "%d.%d.%d" % sys.version_info[:3]}


# The map wire contract (docs/MAP.md) this client speaks; the engine reports
# its own in /v1/health ("map_protocol"; engines before it had none: 1).
MAP_PROTOCOL = 4  # 4: the header's python names the client's environment


def check_map_protocol(health: Any, url: str = "") -> None:
    """Raises EngineError unless the engine speaks this client's map protocol
    (a client and an engine of different gust versions would misread each
    other's results)."""
    if not isinstance(health, dict):
        return
    theirs = health.get("map_protocol", 1)
    if theirs != MAP_PROTOCOL:
        raise EngineError(
            "the gust engine at %s speaks map protocol %s, this client %d: use a client and an "
            "engine of the same gust version (engine %s)"
            % (url, theirs, MAP_PROTOCOL, health.get("version", "?")))
