"""A tiny engine-side client of the gust runtime protocol, for tests and benchmarks.

Written independently of gust_runtime.protocol on purpose, so the tests check
the runtime against the documented wire format (docs/RUNTIME_PROTOCOL.md),
not against its own codec.
"""

import io
import json
import os
import socket
import struct
import subprocess
import sys
import time

INVOKE, READY, INIT_ERROR, RESULT, ERROR = 1, 10, 11, 12, 13
_HEADER = struct.Struct("<IBBH")

RUNTIME_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PYTHON = "/usr/bin/python3"


def encode_invoke(payload, request_id="req-1", deadline_ms=None, arn="", client_context=None):
    if deadline_ms is None:
        deadline_ms = int(time.time() * 1000) + 3000
    meta = json.dumps({"request_id": request_id, "deadline_ms": deadline_ms,
                       "invoked_function_arn": arn,
                       "client_context": client_context}).encode()
    body = struct.pack("<I", len(meta)) + meta + payload
    return _HEADER.pack(len(body), INVOKE, 0, 0) + body


class RuntimeClient:
    """Engine end of one control socket."""

    def __init__(self, sock):
        self.sock = sock

    def _recv_exact(self, n):
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                return None if not chunks else b"".join(chunks)
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_frame(self, timeout=10.0):
        """(type, body bytes), or None on EOF."""
        self.sock.settimeout(timeout)
        header = self._recv_exact(8)
        if header is None:
            return None
        assert len(header) == 8, "EOF inside a header"
        length, ftype, flags, reserved = _HEADER.unpack(header)
        assert flags == 0 and reserved == 0, (flags, reserved)
        body = self._recv_exact(length) if length else b""
        assert body is not None and len(body) == length, "EOF inside a body"
        return ftype, body

    def invoke(self, payload, **kw):
        self.sock.sendall(encode_invoke(payload, **kw))
        return self.read_frame()

    def close(self):
        self.sock.close()


def make_config(task_root, handler="app.handler", **overrides):
    config = {"control_fd": 3, "handler": handler, "task_root": str(task_root),
              "function_name": "f", "function_version": "$LATEST", "memory_mb": 128,
              "timeout_s": 3, "env": {}, "region": "us-east-1",
              "log_group_name": "/aws/lambda/f",
              "log_stream_name": "2026/11/25/[$LATEST]sbx", "sandbox_id": "sbx"}
    config.update(overrides)
    return config


def spawn_forked(config, stdout_fd=None):
    """Forks a child that runs bootstrap.run(config) on fd 3, like the zygote does.

    stdout_fd, if given, becomes the child's fds 1 and 2. Returns (pid, client).
    """
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # child
        code = 70
        try:
            parent.close()
            os.dup2(child.fileno(), 3)
            if child.fileno() != 3:
                child.close()
            if stdout_fd is not None:
                os.dup2(stdout_fd, 1)
                os.dup2(stdout_fd, 2)
            # pytest replaces sys.stdout; give the child real fd-backed streams.
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False))
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False))
            sys.path.insert(0, RUNTIME_DIR)
            from gust_runtime import bootstrap
            code = bootstrap.run(json.dumps(config))
        except BaseException:  # noqa: B902 -- the forked child reports and exits
            import traceback
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    child.close()
    return pid, RuntimeClient(parent)


def spawn_exec(config):
    """Starts /usr/bin/python3 running bootstrap.run(config) with the socket as fd 3.

    Returns (Popen, client).
    """
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    code = ("import sys; sys.path.insert(0, %r); from gust_runtime import bootstrap; "
            "sys.exit(bootstrap.run(sys.argv[1]))" % RUNTIME_DIR)
    cfd = child.fileno()

    def to_fd3():
        if cfd == 3:
            os.set_inheritable(3, True)  # dup2 onto itself would keep O_CLOEXEC
        else:
            os.dup2(cfd, 3)  # the copy is inheritable

    # close_fds=False: fd 3 is made by preexec_fn, after which Popen would close it.
    # Python's own fds are non-inheritable, so nothing else leaks.
    proc = subprocess.Popen([PYTHON, "-c", code, json.dumps(config)], close_fds=False,
                            preexec_fn=to_fd3, stdin=subprocess.DEVNULL)
    child.close()
    return proc, RuntimeClient(parent)


def wait_exit(pid, timeout=10.0):
    """Exit code of a forked child, waiting up to timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise TimeoutError("runtime %d did not exit" % pid)
