"""An in-process stand-in for the engine's map API (docs/MAP.md), for client
tests that must not need the C++ engine: blobs, jobs and the results stream,
with tasks run by the real map worker in a thread.

It records every request (method, path, headers) so tests can check what the
client sent (HEAD before PUT, one POST per map, chunked submit...).
"""

import hashlib
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gust import wire
from gust_runtime import map_worker

U32 = wire.U32
_STATUS_CODES = {name: code for code, name in enumerate(wire.STATUS_NAMES)}
_TIMES = ("t_start", "t_setup", "t_done", "t_queued", "t_finished")


def decode_submit_body(body):
    """(header dict, [task bytes]) from a submit body (docs/MAP.md), as the
    engine reads it: the inverse of gust.wire.iter_submit_body. ValueError if
    a task is cut short."""
    newline = body.index(b"\n")
    header = json.loads(body[:newline])
    tasks = []
    pos = newline + 1
    while pos < len(body):
        if pos + 4 > len(body):
            raise ValueError("truncated task length at byte %d" % pos)
        (n,) = U32.unpack_from(body, pos)
        pos += 4
        if pos + n > len(body):
            raise ValueError("truncated task at byte %d: %d bytes announced, %d left"
                             % (pos, n, len(body) - pos))
        tasks.append(bytes(body[pos:pos + n]))
        pos += n
    return header, tasks


def encode_result(seq, index, status, meta=None, data=b""):
    """One result frame, as the engine sends it (the inverse of
    gust.wire.result_meta). meta: a dict of the result's fields (the
    timestamps, attempts and cold go to the head, the rest to the meta JSON;
    seq/index/status in it are ignored)."""
    meta = dict(meta or {})
    for key in ("seq", "index", "status"):
        meta.pop(key, None)
    times = [meta.pop(key, None) or 0.0 for key in _TIMES]
    attempts = meta.pop("attempts", None) or 0
    flags = 1 if meta.pop("cold", False) else 0
    raw = json.dumps(meta, separators=(",", ":")).encode("utf-8")
    return (wire.RESULT_HEAD.pack(seq, index, _STATUS_CODES[status], *times, attempts, flags,
                                  len(raw), len(data)) + raw + data)


class FakeEngine:
    def __init__(self, python="%d.%d.%d (fake)" % sys.version_info[:3], map_protocol=4):
        self.python = python
        self.environments = []  # the job headers' python, in submission order
        self.map_protocol = map_protocol
        self.blobs = {}
        self.jobs = {}
        self.requests = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.tmp = tempfile.mkdtemp(prefix="gust-fake-")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.worker_lock = threading.Lock()  # the map worker's cache is per process
        self.connections = set()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        # The unpacked code bundles: without this every test left a dir in /tmp.
        shutil.rmtree(self.tmp, ignore_errors=True)

    def kill(self):
        """Dies like a crashed engine: stops listening and resets every open connection."""
        self.stop()
        for sock in list(self.connections):
            try:
                sock.shutdown(2)
                sock.close()
            except OSError:
                pass

    # ---------------------------------------------------------------- jobs

    def submit(self, body):
        try:
            header, tasks = decode_submit_body(body)
        except ValueError as e:
            return 400, {"message": str(e)}
        # As the engine: the header names the client's environment, the map
        # runs in it, and only a Python before 3.9 is refused.
        python = header.get("python")
        if not isinstance(python, dict) or not str(python.get("executable", "")).startswith("/"):
            return 400, {"Message": "job header field python must name the client's Python "
                                    "environment, not %r" % (python,), "Type": "User",
                         "_error_type": "InvalidParameterValueException"}
        self.environments.append(python)
        major, minor = (int(x) for x in python["version"].split(".")[:2])
        if (major, minor) < (3, 9):
            return 400, {"Message": "client Python %d.%d (%s) is not supported: maps run in "
                                    "CPython 3.9 or later" % (major, minor, python["executable"]),
                         "Type": "User", "_error_type": "PythonVersionMismatchException"}
        if header["code"] not in self.blobs:
            return 400, {"Message": "code %s was not uploaded: PUT /v1/blobs/%s first"
                                    % (header["code"], header["code"]), "Type": "User",
                         "_error_type": "CodeNotUploadedException"}
        if not tasks:
            return 400, {"message": "a job needs at least one task"}
        with self.lock:
            job_id = "job-%d" % (len(self.jobs) + 1)
            self.jobs[job_id] = {"header": header, "n": len(tasks), "results": [],
                                 "created": time.time()}
        threading.Thread(target=self._run, args=(job_id, header, tasks), daemon=True).start()
        return 201, {"JobId": job_id, "Tasks": len(tasks), "Function": "gust-map-fake"}

    def _code_dir(self, digest):
        path = os.path.join(self.tmp, digest)
        if not os.path.isdir(path):
            with zipfile.ZipFile(io.BytesIO(self.blobs[digest])) as zf:
                zf.extractall(path)
        return path

    def _run(self, job_id, header, tasks):
        with self.worker_lock:
            os.environ["LAMBDA_TASK_ROOT"] = self._code_dir(header["code"])
            for index, task in enumerate(tasks):
                chunk = U32.pack(1) + struct.pack("<II", index, len(task)) + task
                t_queued = time.time()
                answer = map_worker.handler(chunk, None)
                # u32 count + u32 exec_us, then u32 index + u32 status + f64
                # t_start, t_setup, t_done + u32 meta length + u32 data length
                # + meta + data
                _index, status, t_start, t_setup, t_done, n, m = struct.unpack_from(
                    "<IIdddII", answer, 8)
                meta = json.loads(answer[48:48 + n]) if n else {}
                data = answer[48 + n:48 + n + m]
                meta.update({"index": index, "status": ("ok", "error")[status],
                             "t_start": t_start, "t_setup": t_setup, "t_done": t_done,
                             "attempts": 1, "cold": index == 0,
                             "sandbox": "sb-fake", "t_queued": t_queued,
                             "t_finished": time.time()})
                self.add_result(job_id, meta, data)

    def add_result(self, job_id, meta, data):
        with self.cond:
            job = self.jobs[job_id]
            meta["seq"] = len(job["results"]) + 1
            job["results"].append((meta, data))
            self.cond.notify_all()

    def results(self, job_id, after, wait):
        deadline = time.time() + wait
        with self.cond:
            job = self.jobs[job_id]
            while len(job["results"]) <= after and time.time() < deadline:
                self.cond.wait(deadline - time.time())
            out = []
            for meta, data in job["results"][after:]:
                meta = dict(meta)
                seq, index, status = meta.pop("seq"), meta.pop("index"), meta.pop("status")
                out.append(encode_result(seq, index, status, meta, data))
            return b"".join(out)

    # ---------------------------------------------------------------- HTTP

    def _handler_class(self):
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                engine.connections.add(self.connection)

            def _body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _send(self, status, body=b"", ctype="application/json"):
                error_type = None
                if isinstance(body, dict):
                    error_type = body.pop("_error_type", None)
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                self.send_response(status)
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _record(self):
                engine.requests.append((self.command, self.path, dict(self.headers)))

            def do_HEAD(self):
                self._record()
                digest = self.path.rsplit("/", 1)[-1]
                self._send(200 if digest in engine.blobs else 404)

            def do_PUT(self):
                self._record()
                body = self._body()
                digest = self.path.rsplit("/", 1)[-1]
                if hashlib.sha256(body).hexdigest() != digest:
                    return self._send(400, {"message": "digest mismatch"})
                engine.blobs[digest] = body
                self._send(201, {"Digest": digest})

            def do_GET(self):
                self._record()
                path, _, query = self.path.partition("?")
                params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                if path == "/v1/health":
                    health = {"status": "ok", "python": engine.python}
                    if engine.map_protocol is not None:  # None: an engine from before it
                        health["map_protocol"] = engine.map_protocol
                    return self._send(200, health)
                parts = path.strip("/").split("/")
                if len(parts) >= 3 and parts[:2] == ["v1", "jobs"] and parts[2] in engine.jobs:
                    job = engine.jobs[parts[2]]
                    if len(parts) == 4 and parts[3] == "results":
                        body = engine.results(parts[2], int(params.get("after", 0)),
                                              float(params.get("wait", 0)))
                        return self._send(200, body, "application/octet-stream")
                    done = len(job["results"])
                    return self._send(200, {"JobId": parts[2], "Tasks": job["n"], "Done": done,
                                            "Failed": 0, "Running": 0,
                                            "Pending": job["n"] - done, "Cancelled": 0,
                                            "State": "done" if done == job["n"] else "running"})
                self._send(404, {"message": "not found: " + path})

            def do_POST(self):
                self._record()
                body = self._body()
                if self.path == "/v1/jobs":
                    status, doc = engine.submit(body)
                    return self._send(status, doc)
                if self.path.endswith("/cancel"):
                    return self._send(200, {})
                self._send(404, {"message": "not found"})

            def do_DELETE(self):
                self._record()
                self._send(200, {})

        return Handler
