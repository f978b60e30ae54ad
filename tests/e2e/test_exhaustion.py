"""Attacks from outside, through the engine's HTTP port, as root and rootless
(suite_engine): bundles that point out of themselves, a zip bomb, 10,000
idle connections, 64 KB headers, a 7 MB body, slow clients. Each ends with a
specific error for that client only; the `case` fixture then checks that the
canary still answers within its bound and that nothing leaked.
docs/SECURITY.md lists the limits these cases hold the engine to."""
import errno
import io
import json
import os
import resource
import socket
import struct
import time
import zipfile

import pytest

from gust_e2e import (Engine, Leaks, canary_latency, rootless_engine, state_usage,
                      status_field)
from test_bad_input import create_body, post_create

HANDLER = "def handler(e, c):\n    return 'ok'\n"


def zip_with(entries):
    """entries: [(ZipInfo or name, data)] -> zip bytes, with app.py first."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.py", HANDLER)
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def symlink(name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: external_attr carries the mode
    info.external_attr = (0o120777 << 16)
    return info, target


def stored_code(engine):
    """The code blobs and extracted bundles an engine keeps on disk."""
    out = set()
    for top in ("blobs", "bundles"):
        for root, dirs, files in os.walk(os.path.join(engine.state_dir, top)):
            out |= {os.path.join(root, f) for f in files + dirs}
    return out


def assert_refused_bundle(case, zip_bytes, needle):
    """Creating a function from zip_bytes is refused with a 400 naming the
    problem, and leaves nothing on disk: no function, blob or bundle."""
    name = case.fname
    usage, code = state_usage(case.engine), stored_code(case.engine)
    status, etype, body = post_create(case.engine, create_body(name, zip_bytes))
    assert (status, etype) == (400, "InvalidParameterValueException"), (status, body)
    assert needle in body["Message"], body
    assert case.engine.request("GET", f"/2015-03-31/functions/{name}")[0] == 404
    assert stored_code(case.engine) == code
    assert state_usage(case.engine) - usage < 1 << 20
    return body["Message"]


@pytest.mark.parametrize("entries,needle", [
    ([("../evil.py", "x")], "'../evil.py' escapes the bundle"),
    ([("a/../../evil.py", "x")], "escapes the bundle"),
    ([("/etc/evil.py", "x")], "has an absolute path"),
    ([symlink("passwd", "/etc/passwd")], "is a symlink to an absolute path"),
    ([symlink("up", "../../../..")], "is a symlink pointing outside the bundle"),
    ([symlink("d/up", "../../x")], "is a symlink pointing outside the bundle"),
    # Through a link inside the bundle that is itself a link: "d" -> ".", then
    # "d/.." resolves (lexically) inside but the kernel would follow d first.
    ([symlink("d", "."), symlink("e", "d/../..")], "pointing outside the bundle"),
    # A file written through a symlinked directory.
    ([symlink("lib", "sub"), ("lib/x.py", "x")], "lib/x.py"),
], ids=["dotdot", "nested-dotdot", "absolute", "link-absolute", "link-up", "link-nested-up",
        "link-through-link", "file-through-link"])
def test_bundle_pointing_out(case, entries, needle):
    assert_refused_bundle(case, zip_with(entries), needle)


def test_bundle_symlink_inside_is_fine(case):
    """The checks refuse only what leaves the bundle: a link within it works."""
    zip_bytes = zip_with([("lib/data.txt", "inside"), symlink("data", "lib/data.txt")])
    status, _, body = post_create(case.engine, create_body(case.fname, zip_bytes))
    assert status == 201, body
    case.names.append(case.fname)


def test_zip_bomb_declared(case):
    """251 MB of zeros in a 250 KB zip: refused by its declared size."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.py", HANDLER)
        with zf.open("zeros.bin", "w", force_zip64=True) as f:
            for _ in range(251):
                f.write(b"\0" * (1 << 20))
    assert len(buf.getvalue()) < 2 << 20
    assert_refused_bundle(case, buf.getvalue(),
                          "Unzipped size must be smaller than 262144000 bytes")


def test_zip_bomb_lying_sizes(case):
    """An entry whose headers declare 1 KB but whose data inflates to 300 MB:
    extraction stops at the declared size, nothing is left on disk."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.py", HANDLER)
        with zf.open("bomb.bin", "w") as f:
            for _ in range(300):
                f.write(b"\0" * (1 << 20))
    data = bytearray(buf.getvalue())
    lie = struct.pack("<I", 1024)
    local = data.rfind(b"PK\x03\x04", 0, data.index(b"bomb.bin"))
    data[local + 22:local + 26] = lie  # local header: uncompressed size
    central = data.rfind(b"PK\x01\x02", 0, data.rindex(b"bomb.bin"))
    data[central + 24:central + 28] = lie  # central directory: uncompressed size
    assert_refused_bundle(case, bytes(data), "bomb.bin")


def test_sixty_four_kb_headers(case):
    engine = case.engine
    for headers in ({"X-Big": "a" * (70 * 1024)},
                    {f"X-H{i}": "b" * 1000 for i in range(70)}):
        status, hdrs, data = engine.request("GET", "/v1/health", headers=headers)
        assert status == 431, (status, data)
        assert hdrs["x-amzn-errortype"] == "InvalidRequestContentException"
        assert "request headers exceed the limit of 65536 bytes" in json.loads(data)["Message"]
    # Just under the limit is served.
    assert engine.request("GET", "/v1/health", headers={"X-Big": "a" * (60 * 1024)})[0] == 200


def test_seven_mb_body(case):
    engine = case.engine
    name = case.deploy("def handler(e, c):\n    return {'statusCode': 200, 'body': 'ok'}\n")
    big = json.dumps({"data": "x" * (7 << 20)})
    status, headers, data = engine.request(
        "POST", f"/2015-03-31/functions/{name}/invocations", big)
    assert status == 413 and headers["x-amzn-errortype"] == "RequestTooLargeException", data
    assert "6291456 bytes" in json.loads(data)["Message"]
    # The same through the web gateway.
    status, _, data = engine.request("POST", f"/web/{name}/upload", big)
    assert status == 413 and b"6291456 bytes" in data, (status, data[:300])
    # A body declared far over the server's limit is refused before it is sent.
    hwm = status_field(engine.proc.pid, "VmHWM")
    with socket.create_connection(("127.0.0.1", engine.port), timeout=10) as s:
        s.sendall(b"POST /2015-03-31/functions/x/invocations HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 1000000000\r\n\r\n" + b"x" * 65536)
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"RequestTooLargeException" in answer
    assert status_field(engine.proc.pid, "VmHWM") - hwm < 32 * 1024
    assert engine.request("POST", f"/2015-03-31/functions/{name}/invocations", "{}")[0] == 200


def test_slow_reader(case):
    """A client that takes its 6 MB answer a byte a second: the engine serves
    others meanwhile and lets go of the connection (its fd) once the write
    has taken the idle timeout (3 s in suite_engine); what the kernel still
    buffers for the client is no longer the engine's."""
    name = case.deploy("def handler(e, c):\n    return 'y' * (6000 << 10)\n")
    assert case.engine.invoke(name, {})[0] == 200  # warm
    fds_before = case.leaks.snapshot()["fds"]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", case.engine.port))
    s.sendall(f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: x\r\n"
              "Content-Length: 2\r\n\r\n{}".encode())
    start, got, released = time.monotonic(), 0, None
    with case.canary_during():
        while time.monotonic() - start < 30:
            got += len(s.recv(1))
            time.sleep(1)
            if case.leaks.snapshot()["fds"] <= fds_before:
                released = time.monotonic() - start
                break
    s.close()
    assert released is not None and got < 100, (released, got)


def test_slow_headers(case):
    """Header lines sent one a second (slowloris) do not hold a connection
    forever: it is closed once the header has taken the idle timeout."""
    s = socket.create_connection(("127.0.0.1", case.engine.port))
    s.sendall(b"GET /v1/health HTTP/1.1\r\n")
    start = time.monotonic()
    closed = False
    with case.canary_during():
        for i in range(30):
            try:
                s.sendall(f"X-{i}: y\r\n".encode())
            except OSError:
                closed = True
                break
            time.sleep(1)
            s.setblocking(False)
            try:
                if s.recv(1024) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
            s.setblocking(True)
    s.close()
    assert closed and time.monotonic() - start < 15, time.monotonic() - start


def open_idle(port, count):
    """count connections to port that never send a byte (non-blocking
    connects, no select); returns the sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 512:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 4096), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < count + 256:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low for {count} sockets")
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        assert err in (0, errno.EINPROGRESS, errno.EAGAIN), os.strerror(err)
        socks.append(s)
    return socks


# The engine's descriptors for this case: the connection cap is half of them
# (src/http/server.h), so 10,000 connections exceed it.
FD_LIMIT = 4096


@pytest.fixture(scope="module", params=["root", "rootless"])
def small_fd_engine(request, tmp_path_factory):
    """An engine whose RLIMIT_NOFILE is FD_LIMIT and whose idle timeout is the
    default (2 minutes), so idle connections stay until the engine evicts them."""
    wrap = ["prlimit", f"--nofile={FD_LIMIT}:{FD_LIMIT}", "--"]
    args = ["--keep-alive", "60s", "--prefork", "2", "--prefork-max", "2"]
    if request.param == "rootless":
        with rootless_engine(args, wrap=wrap) as eng:
            yield eng
        return
    if os.geteuid() != 0:
        pytest.skip("the root case needs root")
    eng = Engine(tmp_path_factory.mktemp("gust-fds"), extra_args=args, run_as=wrap)
    eng.start()
    try:
        yield eng
    finally:
        eng.stop()


def test_ten_thousand_idle_connections(small_fd_engine, fname):
    engine = small_fd_engine
    engine.create("canary", {"app.py": "def handler(e, c):\n    return 'alive'\n"})
    canary_latency(engine, "canary", calls=1)
    leaks = Leaks(engine)
    before = leaks.snapshot(settle=True)
    socks = open_idle(engine.port, 10000)
    try:
        # The engine accepts them all (evicting the oldest idle ones past its
        # cap), and still serves: a new function's cold start needs fds too.
        time.sleep(1)
        assert canary_latency(engine, "canary") < 1.0
        engine.create(fname, {"app.py": "def handler(e, c):\n    return 'alive'\n"})
        assert canary_latency(engine, fname) < 1.0
        fds = len(os.listdir(f"/proc/{engine.proc.pid}/fd"))
        assert fds < FD_LIMIT, fds
        assert "Too many open files" not in engine.log()
    finally:
        for s in socks:
            s.close()
    assert engine.request("DELETE", f"/2015-03-31/functions/{fname}")[0] in (200, 204)
    leaks.assert_none_since(before)
