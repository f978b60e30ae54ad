"""The object store from inside a sandbox over TCP (issue 16; docs/STORAGE.md,
"From a function").

The engine serves its S3 API to sandboxes on the sandbox channel, a unix socket
(/run/gust/engine.sock; src/api/channel_api.h) that identifies the asking
sandbox by its pid and applies its bucket grants. boto3 speaks only TCP, so
each sandbox runs this relay: a listener on 127.0.0.1 (an ephemeral port) whose
connections are piped byte for byte to the channel, made by this process, so
that the engine sees this sandbox as the peer. GUST_S3_ENDPOINT names it
(http://127.0.0.1:PORT/s3), and dummy AWS credentials let botocore sign (the
channel checks no signature: the peer is the credential):

    boto3.client("s3", endpoint_url=os.environ["GUST_S3_ENDPOINT"])

The relay adds no rights: what the channel refuses a sandbox (other buckets,
writes to a read-only grant, the engine's other APIs) it refuses through the
relay too. A sandbox with network=True shares the host's network namespace,
where other host processes could connect to 127.0.0.1:PORT; so the relay
serves only a connection whose client socket belongs to a process this
sandbox's /proc shows (its own pid namespace), and closes any other.

Cost: one socket bound before the handler is imported (so that module code
sees GUST_S3_ENDPOINT), and one thread blocked in accept(), started once the
runtime waits for its first invocation (serve()); each connection gets a
thread of its own (bench/RESULTS.md, "S3 relay").
"""

from __future__ import annotations

import os
import _thread
import select
import socket

CHANNEL_SOCKET = "/run/gust/engine.sock"
ENDPOINT_ENV = "GUST_S3_ENDPOINT"
_BUF = 256 * 1024

_listener: socket.socket | None = None
_owner_pid = 0  # the process the listener and its thread belong to
_channel = CHANNEL_SOCKET
_serving = False


def offer(channel: str = CHANNEL_SOCKET) -> None:
    """Binds the relay's listener and sets the environment, when the sandbox
    has the channel; once per process (a forked child binds its own).
    Connections queue in the listen backlog until serve()."""
    global _listener, _owner_pid, _channel, _serving
    if not os.path.exists(channel):
        return
    if _listener is not None and _owner_pid == os.getpid():
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
    except OSError:  # no loopback: no relay (the channel itself still works)
        sock.close()
        return
    sock.set_inheritable(False)
    _listener, _owner_pid, _channel, _serving = sock, os.getpid(), channel, False
    port = sock.getsockname()[1]
    os.environ[ENDPOINT_ENV] = "http://127.0.0.1:%d/s3" % port
    # botocore signs every request and refuses to without credentials; the
    # channel ignores signatures. A function's own settings win.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "gust-sandbox")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "gust-sandbox")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def serve() -> None:
    """Starts accepting on offer()'s listener (once). The runtime calls it
    once it has reported READY and waits for its first invocation: the new
    thread's first turn at the GIL then costs the cold start nothing."""
    global _serving
    if _listener is None or _owner_pid != os.getpid() or _serving:
        return
    _serving = True
    # _thread, not threading.Thread: its start() waits until the new thread
    # has run, a scheduling delay on a loaded machine.
    _thread.start_new_thread(_accept_loop, (_listener, _channel))


def _accept_loop(listener: socket.socket, channel: str) -> None:
    port = listener.getsockname()[1]
    while True:
        try:
            conn, peer = listener.accept()
        except OSError:
            return
        if not _local_peer(peer[1], port):
            conn.close()
            continue
        _thread.start_new_thread(_pipe, (conn, channel))


def _local_peer(peer_port: int, port: int) -> bool:
    """Whether the client socket of 127.0.0.1:peer_port -> 127.0.0.1:port is
    held by a process of this sandbox (its /proc shows only its own)."""
    inode = _socket_inode("0100007F:%04X" % peer_port, "0100007F:%04X" % port)
    if inode is None:
        return False
    target = "socket:[%s]" % inode
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fd_dir = "/proc/%s/fd" % pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd_dir + "/" + fd) == target:
                    return True
            except OSError:
                continue
    return False


def _socket_inode(local: str, remote: str) -> str | None:
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) > 9 and fields[1] == local and fields[2] == remote:
                    return fields[9]
    except OSError:
        pass
    return None


def _pipe(conn: socket.socket, channel: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(channel)
        socks = [conn, upstream]
        other = {conn: upstream, upstream: conn}
        open_reads = set(socks)
        while open_reads:
            readable, _, _ = select.select(list(open_reads), [], [])
            for s in readable:
                data = s.recv(_BUF)
                if not data:  # one side is done sending: pass the half-close on
                    open_reads.discard(s)
                    try:
                        other[s].shutdown(socket.SHUT_WR)
                    except OSError:
                        open_reads.clear()
                    continue
                other[s].sendall(data)
    except OSError:
        pass
    finally:
        conn.close()
        upstream.close()
