"""Shared helpers for gust benchmarks: start an engine, deploy, time things."""
import base64
import http.client
import json
import os
import platform
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# One copy of the small helpers, shared with the end-to-end tests.
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
# E402: the import needs the path set above; F401: children is re-exported for bench_engine.py.
from gust_e2e import (children, descendants, free_port, make_zip,  # noqa: E402,F401 -- see above
                      wait_settled)
BIN = os.environ.get("GUST_BIN", os.path.join(REPO, "build", "bin"))


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    idx = min(len(values) - 1, int(p / 100.0 * len(values)))
    return values[idx]


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB, kernel {platform.release()}"


class Engine:
    def __init__(self, state_dir, args=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_dir = state_dir
        self.args = list(args)

    def __enter__(self):
        os.makedirs(self.state_dir, exist_ok=True)
        self.log = open(os.path.join(self.state_dir, "bench-engine.log"), "ab")
        self.proc = subprocess.Popen([os.path.join(BIN, "gust"), "up", "--port", str(self.port),
                                      "--state-dir", self.state_dir, "--log-level",
                                      os.environ.get("GUST_BENCH_LOG_LEVEL", "warn")] + self.args,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.call("GET", "/v1/health")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("engine did not start")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(30)

    def processes(self):
        """How many processes run under the engine: its zygote, the zygote's
        pool of pre-forked children and the sandboxes."""
        return len(descendants(self.proc.pid))

    def wait_settled(self, quiet_s=0.5, limit_s=15.0):
        """Waits until the zygote's process count has not changed for quiet_s
        (its pool refilled, killed sandboxes gone), at most limit_s."""
        wait_settled(self.proc.pid, quiet_s, limit_s)

    def call(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        return r.status, hdrs, data

    def deploy(self, name, source, **config):
        body = {"FunctionName": name, "Runtime": "python3.11", "Role": "r",
                "Handler": "app.handler",
                "Code": {"ZipFile": base64.b64encode(make_zip({"app.py": source})).decode()}}
        body.update(config)
        status, _, data = self.call("POST", "/2015-03-31/functions", body)
        assert status == 201, data

    def invoke(self, name, payload=b"{}", tail=False):
        headers = {"X-Amz-Log-Type": "Tail"} if tail else {}
        return self.call("POST", f"/2015-03-31/functions/{name}/invocations", payload, headers)

    def loadgen(self, name, connections, duration, warmup=1.0):
        out = subprocess.run([os.path.join(BIN, "gust-loadgen"), "--port", str(self.port),
                              "--path", f"/2015-03-31/functions/{name}/invocations",
                              "--method", "POST", "--body", "{}", "-c", str(connections),
                              "-d", str(duration), "--warmup", str(warmup)],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def pid(self):
        return self.proc.pid


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def private_kb(pid):
    """Private (clean + dirty) memory of a process: what it costs beyond shared pages."""
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total
