"""Helpers for end-to-end tests: a real gust engine on a free loopback port with
a private state dir (Engine), zips, free ports. A module of its own (not
conftest.py) so `from gust_e2e import ...` cannot pick up another directory's
conftest when several test trees run in one pytest session.

GUST_E2E_CLUSTER=DIR runs every Engine as a cluster of one (`gust up --cluster`,
docs/CLUSTER.md) on the PostgreSQL that scripts/pg-temp keeps in DIR (started on
first use, and stopped at exit if this process started it), each Engine on a
database of its own (`make test-cluster`)."""
import atexit
import base64
import http.client
import io
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import tempfile
import time
import uuid
import zipfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GUST_BIN = os.environ.get("GUST_BIN", os.path.join(REPO, "build", "bin"))
GUST = os.path.join(GUST_BIN, "gust")
PG_TEMP = os.path.join(REPO, "scripts", "pg-temp")
CLUSTER_PG_DIR = os.environ.get("GUST_E2E_CLUSTER", "")


def pg_available():
    """Whether PostgreSQL's server binaries are installed (scripts/install-deps)."""
    import glob
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")) and bool(shutil.which("psql"))


def pg_temp_start(directory):
    """Starts scripts/pg-temp's PostgreSQL in directory (or finds it running);
    returns its connection string. RuntimeError with pg-temp's message."""
    out = subprocess.run([PG_TEMP, "start", str(directory)], capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise RuntimeError("pg-temp start failed: " + out.stderr)
    return out.stdout.strip()


def pg_temp_stop(directory):
    subprocess.run([PG_TEMP, "stop", str(directory)], capture_output=True, timeout=120)


def psql(conninfo, sql):
    """Runs sql with psql; returns its unaligned output. Raises on an error."""
    out = subprocess.run(["psql", conninfo, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, (sql, out.stderr)
    return out.stdout.strip()


def new_cluster_database(base, init=True):
    """A new empty database for one cluster in base's PostgreSQL: a schema of its
    own (a CREATE DATABASE costs seconds here, docs/CLUSTER.md), named by the
    returned conninfo's search_path; prepared with `gust cluster init` unless
    init is False."""
    name = "c_" + uuid.uuid4().hex[:12]
    psql(base, "CREATE SCHEMA " + name)
    conninfo = base + "?options=-csearch_path%3D" + name
    if init:
        out = subprocess.run([GUST, "cluster", "init", conninfo], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    return conninfo


# Cluster tests that wait for a node to go dead (kill -9, SIGSTOP, a PostgreSQL outage,
# a cut link) start their engines with this lease (`gust up --cluster-lease`: heartbeats
# every fifth of it, dead after it) instead of the 10 s default: each such wait is then
# seconds, not ten, of CI time. Tests of the default itself keep it.
TEST_LEASE_S = 4
TEST_LEASE_ARGS = ("--cluster-lease", f"{TEST_LEASE_S}s")


def stop_all(engines):
    """Stops engines side by side: each is sent SIGTERM, then each is waited for
    (Engine.stop one after another would add up their shutdowns)."""
    for eng in [e for e in engines if e.signal_stop()]:
        eng.wait_stopped()


def cluster_node(state_root, db, name, extra_args=("--keep-alive", "30s"), port=None):
    """An Engine (not started) that joins the cluster in database db as node name,
    its state dir state_root/name."""
    return Engine(os.path.join(str(state_root), name), port=port,
                  extra_args=["--cluster", db, "--node-name", name] + list(extra_args))


_cluster_pg = {}


def cluster_pg():
    """GUST_E2E_CLUSTER's PostgreSQL: its conninfo, started on first use."""
    if "base" not in _cluster_pg:
        was_running = os.path.exists(os.path.join(CLUSTER_PG_DIR, "data", "postmaster.pid"))
        _cluster_pg["base"] = pg_temp_start(CLUSTER_PG_DIR)
        if not was_running:
            atexit.register(pg_temp_stop, CLUSTER_PG_DIR)
    return _cluster_pg["base"]


def run_gust(eng, *args, cwd, input=None, check=True, timeout=120):
    """Runs the gust CLI against eng (GUST_URL) in cwd; asserts exit 0 unless
    check is False. Returns the CompletedProcess (text stdout/stderr)."""
    out = subprocess.run([GUST] + list(args), cwd=cwd, input=input, text=True,
                         capture_output=True, env=dict(os.environ, GUST_URL=eng.url),
                         timeout=timeout)
    if check:
        assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out


@pytest.fixture(scope="module", name="eng")
def flask_engine(tmp_path_factory):
    """A module's engine for web stages: Flask preloaded, sandboxes kept 60 s.
    A test module imports it (and stage_cli) to have the `eng` and `gust`
    fixtures."""
    e = Engine(tmp_path_factory.mktemp("gust-stages"),
               extra_args=["--keep-alive", "60s", "--preload", "flask"])
    e.start()
    yield e
    e.stop()


@pytest.fixture(name="gust")
def stage_cli(eng):
    """run_gust bound to the module's engine: gust("deploy", "dev", cwd=d)."""
    return lambda *args, **kwargs: run_gust(eng, *args, **kwargs)


DEBIAN_CLOUDPICKLE = "/usr/lib/python3/dist-packages/cloudpickle"


def envs_dir():
    """A new directory for Python environments, readable by every user as a
    project in a home directory is (the sandbox user must read an environment;
    pytest's tmp dirs are 0700), under /var/tmp: an environment under /tmp is
    refused, as the sandbox has a /tmp of its own. The caller removes it."""
    top = tempfile.mkdtemp(prefix="gust-envs-", dir="/var/tmp")
    os.chmod(top, 0o755)
    return top


def make_venv(base_python, path, value="mypkg", system_site_packages=False):
    """A venv over base_python at path, made offline as a user would: `-m venv
    --without-pip` (and --system-site-packages if asked), Debian's pure-Python
    cloudpickle copied into its site-packages (as `pip install cloudpickle`
    puts it there), and a package of its own, mypkg, whose VALUE is `value`.
    Returns its bin/python, the path as a user runs it."""
    flags = ["--system-site-packages"] if system_site_packages else []
    subprocess.run([base_python, "-m", "venv", "--without-pip"] + flags + [path], check=True,
                   timeout=120)
    python = os.path.join(path, "bin", "python")
    site = subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        text=True).strip()
    shutil.copytree(DEBIAN_CLOUDPICKLE, os.path.join(site, "cloudpickle"))
    os.makedirs(os.path.join(site, "mypkg"))
    with open(os.path.join(site, "mypkg", "__init__.py"), "w") as f:
        f.write("VALUE = %r\n" % value)
    return python


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(directory, name, san):
    """A self-signed P-256 certificate for san ("IP:127.0.0.1,DNS:localhost")
    and its key, made by the openssl CLI as README "Security" shows; returns
    (cert path, key path) in directory."""
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=" + san, "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def make_zip(files):
    """files: {path: source text or bytes} -> zip bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, content in files.items():
            zf.writestr(path, content)
    return buf.getvalue()


class Engine:
    def __init__(self, state_dir, port=None, extra_args=(), gust=None, run_as=(), env=None,
                 tls_ca=None, host="127.0.0.1"):
        """run_as: a command prefix (e.g. setpriv to another user); env: extra
        environment for the engine; gust: the gust binary to run; tls_ca: the
        engine serves HTTPS (extra_args carry --tls-cert/--tls-key) and its
        certificate is checked against this PEM file; host: the address the
        tests reach it at (extra_args carry --host when it is not loopback)."""
        self.gust = gust or GUST
        self.run_as = list(run_as)
        self.env = env
        self.state_dir = str(state_dir)
        self.port = port or free_port()
        self.host = host
        self.tls = ssl.create_default_context(cafile=tls_ca) if tls_ca else None
        self.url = f"{'https' if tls_ca else 'http'}://{host}:{self.port}"
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = os.path.join(self.state_dir, "engine-test.log")
        # GUST_E2E_CLUSTER: this engine's cluster database (kept across restarts).
        self.cluster = None

    def start(self, timeout=30.0, poll_s=0.05):
        """Starts `gust up` (again, after a stop or a kill: same port and state
        dir) and returns once /v1/health answers 200, polled every poll_s
        seconds; raises RuntimeError with the log's tail if the engine exits or
        does not answer within timeout seconds."""
        os.makedirs(self.state_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        env = dict(os.environ, **self.env) if self.env else None
        cluster_args = []
        if CLUSTER_PG_DIR and "--cluster" not in self.extra_args:
            if self.cluster is None:
                self.cluster = new_cluster_database(cluster_pg())
            cluster_args = ["--cluster", self.cluster, "--node-name", f"e2e-{self.port}"]
        self.proc = subprocess.Popen(
            self.run_as + [self.gust, "up", "--port", str(self.port), "--state-dir",
                           self.state_dir] + cluster_args + self.extra_args,
            stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("engine exited during start-up:\n" + self.log())
            try:
                if self.get("/v1/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(poll_s)
        raise RuntimeError("engine did not answer within %.0f s:\n%s" % (timeout, self.log()))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stop(self, sig=None):
        if self.signal_stop(sig):
            self.wait_stopped()

    def signal_stop(self, sig=None):
        """Sends sig (SIGTERM by default) if the engine runs; whether it did."""
        if not self.proc or self.proc.poll() is not None:
            return False
        self.proc.send_signal(sig or signal.SIGTERM)
        return True

    def wait_stopped(self):
        """Waits up to 20 s for the engine to exit, then kills it."""
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
        if self.tls:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.tls)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
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


class SignedEngine(Engine):
    """An Engine whose helper requests (start-up health checks, create,
    invoke) are signed (AWS SigV4) with credentials=(key, secret), by the
    Python client's signer."""

    def __init__(self, *args, credentials, **kwargs):
        super().__init__(*args, **kwargs)
        self.credentials = credentials

    def request(self, method, path, body=None, headers=None, timeout=120):
        import hashlib
        from gust import transport  # python/ is on the path (conftest.py)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else (body or b"")
        headers = dict(headers or {})
        host = f"{self.host}:{self.port}"
        headers["Host"] = host
        headers.update(transport.sign(self.credentials, method, path, host,
                                      hashlib.sha256(data).hexdigest(), {}))
        return super().request(method, path, data, headers, timeout)

    @classmethod
    def requiring(cls, state_dir, key, secret, extra_args=()):
        """A SignedEngine (not started) whose `gust up` requires (key, secret)."""
        return cls(state_dir, credentials=(key, secret),
                   extra_args=["--access-key", key, "--secret-key", secret] + list(extra_args))


NOBODY = 65534


def private_copy():
    """The binaries and the runtime where an unprivileged user can reach them
    (the checkout may sit under a 0700 home)."""
    top = tempfile.mkdtemp(prefix="gust-rootless-")
    os.chmod(top, 0o755)
    for name in ("gust", "gust-sandbox-init", "_gust_zygote.so"):
        if os.path.exists(os.path.join(GUST_BIN, name)):  # the module: unless built without
            shutil.copy2(os.path.join(GUST_BIN, name), os.path.join(top, name))
    shutil.copytree(os.path.join(REPO, "runtimes", "python"), os.path.join(top, "runtime"),
                    ignore=shutil.ignore_patterns("tests", "__pycache__"))
    # The client library, where the engine looks for it beside the runtime
    # (runtime/../python/gust): map tasks may import it (test_channel.py).
    shutil.copytree(os.path.join(REPO, "python", "gust"), os.path.join(top, "python", "gust"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", top], check=True)
    return top


@contextlib.contextmanager
def rootless_engine(extra_args=(), env=None, wrap=(), engine_class=None, prepare=None):
    """An engine run by nobody (rootless isolation) from a private copy of the
    build (under the command prefix wrap, e.g. prlimit, if given); on exit
    stops it and asserts it left no process of nobody behind. engine_class: an
    Engine subclass to start; prepare(state_dir): called before the start,
    while the state dir is still the test's to fill (files are then chowned
    to nobody)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start an engine as another user")
    top = private_copy()
    state = os.path.join(top, "state")
    os.makedirs(state)
    if prepare:
        prepare(state)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", state], check=True)
    eng = (engine_class or Engine)(
        state, gust=os.path.join(top, "gust"),
        run_as=list(wrap) + ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                             "--clear-groups"],
        env=dict({"GUST_RUNTIME_DIR": os.path.join(top, "runtime"), "HOME": state},
                 **(env or {})),
        extra_args=list(extra_args))
    eng.start()
    try:
        yield eng
    finally:
        eng.stop()
        leftovers = subprocess.run(["pgrep", "-u", str(NOBODY), "-f", state],
                                   capture_output=True, text=True).stdout.split()
        shutil.rmtree(top, ignore_errors=True)
    assert leftovers == [], "processes left behind by the rootless engine: %s" % leftovers


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def descendants(pid):
    out, todo = [], children(pid)
    while todo:
        out += todo
        todo = [c for p in todo for c in children(p)]
    return out


def wait_settled(pid, quiet_s=0.5, limit_s=15.0):
    """Waits until the count of processes under pid has not changed for
    quiet_s (a zygote's pool refilled, killed sandboxes gone), at most limit_s."""
    deadline = time.time() + limit_s
    last, since = len(descendants(pid)), time.time()
    while time.time() < deadline:
        time.sleep(0.05)
        now = len(descendants(pid))
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet_s:
            return


def gust_cgroups(port):
    """The sandbox cgroups an engine on port holds (full isolation; none rootless)."""
    found = []
    for ctrl in ("memory", "pids", "cpu"):
        root = f"/sys/fs/cgroup/{ctrl}/gust-{port}"
        if os.path.isdir(root):
            found += [f"{ctrl}/{d}" for d in os.listdir(root)
                      if os.path.isdir(os.path.join(root, d))]
    return found


def status_field(pid, field):
    """A field of /proc/<pid>/status, e.g. VmHWM (kB as int) or Uid (text); None if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    value = line.split(":", 1)[1].strip()
                    return int(value.split()[0]) if value.endswith("kB") else value
    except OSError:
        return None
    return None


def _mounts(pid):
    """Mount points and sources of pid's mount namespace (ids left out: they differ per read)."""
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = set()
    for line in lines:
        fields = line.split()
        sep = fields.index("-")
        out.add((fields[4], fields[sep + 1], fields[sep + 2]))  # mount point, fs type, source
    return out


def _describe(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        cmd = "?"
    return f"{pid} {status_field(pid, 'State')} {cmd}"


class Leaks:
    """What an engine holds outside its own memory: the processes under it
    (zygote, pool, sandboxes and theirs), its open fds, its sandbox cgroups,
    and the mounts of the host and of every mount namespace below it.
    snapshot() before a case; assert_none_since(before) after the case's
    sandboxes are gone waits for each to return to the snapshot."""

    def __init__(self, engine):
        self.engine = engine

    def snapshot(self, settle=False):
        pid = self.engine.proc.pid
        if settle:
            wait_settled(pid)
        procs = descendants(pid)
        return {
            "processes": len(procs),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "cgroups": sorted(gust_cgroups(self.engine.port)),
            # The host's, as the engine's state dir shows in them; and each
            # namespace below the engine by the pid seen in it (zygote, pool).
            "host_mounts": sorted(m for m in _mounts("self") if self.engine.state_dir in m[0]),
            "ns_mounts": {p: _mounts(p) for p in procs},
        }

    def assert_none_since(self, before, limit_s=20.0):
        deadline = time.time() + limit_s
        while True:
            assert self.engine.proc.poll() is None, "engine died:\n" + self.engine.log()
            now = self.snapshot()
            problems = []
            if now["processes"] > before["processes"]:
                tree = [_describe(p) for p in descendants(self.engine.proc.pid)]
                problems.append(f"processes {before['processes']} -> {now['processes']}: {tree}")
            if now["fds"] > before["fds"]:
                fd_dir = f"/proc/{self.engine.proc.pid}/fd"
                targets = []
                for fd in os.listdir(fd_dir):
                    try:
                        targets.append(os.readlink(os.path.join(fd_dir, fd)))
                    except OSError:
                        pass
                problems.append(f"fds {before['fds']} -> {now['fds']}: {sorted(targets)}")
            if set(now["cgroups"]) - set(before["cgroups"]):
                problems.append(f"cgroups {before['cgroups']} -> {now['cgroups']}")
            if set(now["host_mounts"]) - set(before["host_mounts"]):
                problems.append(f"host mounts {before['host_mounts']} -> {now['host_mounts']}")
            for p, mounts in before["ns_mounts"].items():
                after = now["ns_mounts"].get(p)
                if mounts is not None and after is not None and after - mounts:
                    problems.append(f"mounts new in the namespace of {_describe(p)}: "
                                    f"{sorted(after - mounts)}")
            if not problems:
                return
            if time.time() > deadline:
                raise AssertionError("leaked: " + "; ".join(problems))
            time.sleep(0.1)


def state_usage(engine):
    """Bytes of the files under the engine's state dir (what an unzip or a
    sandbox writing to the host would fill)."""
    total = 0
    for root, _, files in os.walk(engine.state_dir):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def canary_latency(engine, name, calls=5):
    """Median seconds of `calls` invocations of the function name (which
    returns 'alive'), asserting each answered."""
    times = []
    for _ in range(calls):
        t0 = time.monotonic()
        status, _, data = engine.invoke(name, {})
        times.append(time.monotonic() - t0)
        assert status == 200 and json.loads(data) == "alive", (status, data)
    return statistics.median(times)
