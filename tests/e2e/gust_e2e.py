"""Helpers for end-to-end tests: a real gust engine on a free loopback port with
a private state dir (Engine), zips, free ports. A module of its own (not
conftest.py) so `from gust_e2e import ...` cannot pick up another directory's
conftest when several test trees run in one pytest session."""
import base64
import http.client
import io
import json
import os
import socket
import subprocess
import time
import urllib.request
import zipfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GUST_BIN = os.environ.get("GUST_BIN", os.path.join(REPO, "build", "bin"))
GUST = os.path.join(GUST_BIN, "gust")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_zip(files):
    """files: {path: source text or bytes} -> zip bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, content in files.items():
            zf.writestr(path, content)
    return buf.getvalue()


class Engine:
    def __init__(self, state_dir, port=None, extra_args=(), gust=None, run_as=(), env=None):
        """run_as: a command prefix (e.g. setpriv to another user); env: extra
        environment for the engine; gust: the gust binary to run."""
        self.gust = gust or GUST
        self.run_as = list(run_as)
        self.env = env
        self.state_dir = str(state_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = os.path.join(self.state_dir, "engine-test.log")

    def start(self):
        os.makedirs(self.state_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(
            self.run_as + [self.gust, "up", "--port", str(self.port), "--state-dir",
                           self.state_dir] + self.extra_args,
            stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("engine exited during start-up:\n" + self.log())
            try:
                if self.get("/v1/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("engine did not answer within 30 s:\n" + self.log())

    def stop(self, sig=None):
        if self.proc and self.proc.poll() is None:
            if sig:
                self.proc.send_signal(sig)
            else:
                self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-8000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, timeout=120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        conn.close()
        return resp.status, headers, data

    def get(self, path):
        status, headers, data = self.request("GET", path)
        return status, data

    def health(self):
        return json.loads(self.get("/v1/health")[1])

    def create(self, name, files, handler="app.handler", **config):
        body = {"FunctionName": name, "Runtime": "python3.11", "Role": "r", "Handler": handler,
                "Code": {"ZipFile": base64.b64encode(make_zip(files)).decode()}}
        body.update(config)
        status, headers, data = self.request("POST", "/2015-03-31/functions", body)
        assert status == 201, (status, data)
        return json.loads(data)

    def invoke(self, name, payload=None, qualifier=None, tail=False):
        path = f"/2015-03-31/functions/{name}/invocations"
        if qualifier:
            path += f"?Qualifier={qualifier}"
        headers = {"X-Amz-Log-Type": "Tail"} if tail else {}
        body = json.dumps(payload) if payload is not None else ""
        status, headers, data = self.request("POST", path, body, headers)
        return status, headers, data
