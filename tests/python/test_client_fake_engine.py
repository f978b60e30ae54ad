"""The whole client against the in-process fake engine (fake_engine.py): what it
sends (HEAD before PUT, one POST per map, chunked body, header fields), results
as real objects, engine death, version checks, reattach."""

import concurrent.futures as cf
import os
import sys
import threading

import pytest

import gust
from gust import engine as engine_mod
from gust import job as job_mod
from fake_engine import FakeEngine


@pytest.fixture
def fake():
    eng = FakeEngine().start()
    yield eng
    eng.stop()
    engine_mod._transports.pop(eng.url, None)


def square(x):
    return x * x


def test_map_square(fake):
    ex = gust.default_executor(url=fake.url)
    fs = ex.map(square, range(20))
    assert ex.get_result(fs) == [x * x for x in range(20)]
    posts = [r for r in fake.requests if r[0] == "POST"]
    assert len(posts) == 1, "one request for the whole map"
    assert posts[0][2].get("Transfer-Encoding") == "chunked"
    assert posts[0][2].get("Content-Type") == "application/x-gust-job"
    header = fake.jobs["job-1"]["header"]
    assert header["python"]["executable"] == sys.executable
    assert header["retries"] == 2 and header["memory"] == 256


def test_code_uploaded_once_head_before_put(fake):
    ex = gust.FunctionExecutor(url=fake.url)
    job_mod._known_blobs.pop(fake.url, None)
    ex.get_result(ex.map(square, [1, 2]))
    ex.get_result(ex.map(square, [3]))
    methods = [(m, p.split("/")[2]) for m, p, _ in fake.requests if p.startswith("/v1/blobs")]
    assert methods == [("HEAD", "blobs"), ("PUT", "blobs")]


def test_extra_args_closure_and_kwargs(fake):
    offset = 100
    with gust.FunctionExecutor(url=fake.url) as ex:
        fs = ex.map(lambda a, b, c=0: a + b + c + offset, [(1, 2), {"a": 1, "b": 1, "c": 1}])
        assert ex.get_result(fs) == [103, 103]
        fs = ex.map(lambda a, b: a * b, [1, 2, 3], extra_args=(10,))
        assert ex.get_result(fs) == [10, 20, 30]


def test_empty_iterdata_sends_nothing(fake):
    ex = gust.FunctionExecutor(url=fake.url)
    assert ex.map(square, []) == []
    assert not [r for r in fake.requests if r[0] in ("POST", "PUT")]


def test_unpicklable_argument_fails_before_submit(fake):
    ex = gust.FunctionExecutor(url=fake.url)
    with pytest.raises(gust.SerializationError, match="task 1 .*lock"):
        ex.map(square, [1, threading.Lock()])
    assert not [r for r in fake.requests if r[0] == "POST"]


def test_remote_exception_reraised(fake):
    def fail(x):
        raise ValueError("bad %d" % x)
    ex = gust.FunctionExecutor(url=fake.url)
    f = ex.call_async(fail, 3)
    with pytest.raises(ValueError, match="bad 3") as info:
        f.result(timeout=10)
    assert "fail" in info.value.remote_traceback


def test_concurrent_futures_executor(fake):
    with gust.Executor(url=fake.url) as ex:
        fs = [ex.submit(pow, 2, i) for i in range(5)]
        assert sorted(f.result() for f in cf.as_completed(fs, timeout=30)) == [1, 2, 4, 8, 16]
        assert list(ex.map(square, [1, 2, 3], timeout=30)) == [1, 4, 9]
        assert all(isinstance(f, cf.Future) for f in fs)


def test_map_reduce(fake):
    ex = gust.FunctionExecutor(url=fake.url)
    f = ex.map_reduce(square, range(5), sum)
    assert ex.get_result(f) == 30


def test_an_engine_on_another_python_runs_the_map_in_the_clients(fake):
    """The engine's own Python differing from the client's is no refusal: the
    header names the client's environment, where the map runs."""
    fake.python = "3.12.1 (main)" if sys.version_info[:2] != (3, 12) else "3.11.2 (main)"
    ex = gust.FunctionExecutor(url=fake.url)
    assert ex.get_result(ex.map(square, [3])) == [9]
    assert fake.environments == [{
        "executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix,
        "version": "%d.%d.%d" % sys.version_info[:3]}]


def test_engine_death_fails_futures(fake, monkeypatch):
    monkeypatch.setattr(job_mod, "ENGINE_GRACE_S", 0.3)
    ex = gust.FunctionExecutor(url=fake.url)
    import time
    fs = ex.map(time.sleep, [2])
    time.sleep(0.2)
    fake.kill()
    with pytest.raises(gust.EngineUnavailableError, match="stopped answering while job"):
        fs[0].result(timeout=60)


def test_get_job_reattaches(fake):
    ex = gust.FunctionExecutor(url=fake.url)
    fs = ex.map(square, range(6))
    ex.get_result(fs)
    job = gust.get_job(fs[0].job_id, url=fake.url)
    assert job.results(timeout=30) == [x * x for x in range(6)]


def test_plot_writes_two_pngs(fake, tmp_path):
    ex = gust.FunctionExecutor(url=fake.url)
    fs = ex.map(square, range(10))
    ex.get_result(fs)
    paths = ex.plot(fs, str(tmp_path / "fig"))
    assert all(os.path.getsize(p) > 1000 for p in paths)


def test_explicit_url_not_running_is_a_clear_error():
    with pytest.raises(gust.EngineUnavailableError, match="no gust engine answers at"):
        gust.FunctionExecutor(url="http://127.0.0.1:9")


def test_client_python_is_the_interpreter_as_run(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/home/u/venv/bin/python")
    assert engine_mod.client_python()["executable"] == "/home/u/venv/bin/python"
    monkeypatch.setattr(sys, "executable", "")  # embedded Pythons may not know theirs
    with pytest.raises(gust.EngineError, match="no absolute sys.executable"):
        engine_mod.client_python()


def test_find_gust_binary_prefers_env(tmp_path, monkeypatch):
    binary = tmp_path / "gust"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("GUST_BIN", str(tmp_path))
    assert engine_mod.find_gust_binary() == str(binary)


def test_resolve_url(monkeypatch):
    monkeypatch.delenv("GUST_URL", raising=False)
    assert engine_mod.resolve_url() == ("http://127.0.0.1:7700", False)
    monkeypatch.setenv("GUST_URL", "http://h:1/")
    assert engine_mod.resolve_url() == ("http://h:1", True)
    assert engine_mod.resolve_url("http://x:2") == ("http://x:2", True)


def test_joblib_backend(fake):
    import joblib
    gust.register_joblib()
    with joblib.parallel_backend("gust", url=fake.url, workers=4):
        out = joblib.Parallel(n_jobs=-1)(joblib.delayed(square)(i) for i in range(10))
    assert out == [i * i for i in range(10)]
    assert any(r[0] == "POST" for r in fake.requests)


def test_joblib_gridsearch_matches_local(fake):
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    X, y = load_iris(return_X_y=True)
    grid = {"n_neighbors": list(range(1, 9))}
    local = GridSearchCV(KNeighborsClassifier(), grid, cv=3).fit(X, y)
    gust.register_joblib()
    with joblib.parallel_backend("gust", url=fake.url):
        remote = GridSearchCV(KNeighborsClassifier(), grid, cv=3, n_jobs=-1).fit(X, y)
    assert remote.best_params_ == local.best_params_


def test_default_executor_starts_a_local_engine(tmp_path, monkeypatch):
    """No URL configured and nothing answering: `$GUST_BIN/gust up -d` is run
    once, and later executors reuse the engine it started."""
    import signal
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = tmp_path / "server.py"
    server.write_text(
        "import http.server, json, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = json.dumps({'status': 'ok'}).encode()\n"
        "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers(); self.wfile.write(body)\n"
        "    def log_message(self, *a): pass\n"
        "http.server.HTTPServer(('127.0.0.1', %d), H).serve_forever()\n" % port)
    log = tmp_path / "calls.log"
    pidfile = tmp_path / "server.pid"
    script = tmp_path / "gust"
    script.write_text("#!/bin/sh\necho \"$@\" >> %s\n%s %s >/dev/null 2>&1 &\necho $! > %s\n"
                      % (log, sys.executable, server, pidfile))
    script.chmod(0o755)
    monkeypatch.setenv("GUST_BIN", str(tmp_path))
    monkeypatch.delenv("GUST_URL", raising=False)
    monkeypatch.setattr(engine_mod, "DEFAULT_URL", "http://127.0.0.1:%d" % port)
    try:
        ex1 = gust.default_executor()
        ex2 = gust.default_executor()
        assert ex1.url == ex2.url == "http://127.0.0.1:%d" % port
        assert log.read_text().split("\n")[0] == "up -d"
        assert len(log.read_text().strip().split("\n")) == 1, "started once, then reused"
    finally:
        engine_mod._transports.pop("http://127.0.0.1:%d" % port, None)
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGTERM)


def test_progress_bar_when_asked(fake, capsys):
    import time
    ex = gust.FunctionExecutor(url=fake.url, show_progress=True)
    fs = ex.map(time.sleep, [0.3, 0.3])
    assert ex.get_result(fs) == [None, None]
    err = capsys.readouterr().err
    assert "task" in err and "failed=0" in err


def test_progress_quiet_when_not_a_terminal(fake, capsys):
    ex = gust.FunctionExecutor(url=fake.url)
    ex.get_result(ex.map(square, range(3)))
    assert capsys.readouterr().err == ""


def test_submit_survives_a_closed_keep_alive_connection(fake):
    """The engine may close an idle kept-alive connection: the next request
    (here the chunked POST of a map) is retried once on a fresh connection."""
    ex = gust.FunctionExecutor(url=fake.url)
    ex.get_result(ex.map(square, [1]))
    for sock in list(fake.connections):  # the server side hangs up every connection
        try:
            sock.shutdown(2)
        except OSError:
            pass
    assert ex.get_result(ex.map(square, [2, 3])) == [4, 9]


def test_code_lost_by_the_engine_is_uploaded_again(fake):
    ex = gust.FunctionExecutor(url=fake.url)
    ex.get_result(ex.map(square, [1]))
    fake.blobs.clear()  # e.g. the engine restarted on a fresh state dir
    assert ex.get_result(ex.map(square, [2])) == [4]
    assert [m for m, p, _ in fake.requests if p.startswith("/v1/blobs")][-1] == "PUT"


def test_get_job_unknown_id(fake):
    with pytest.raises(gust.EngineError, match="HTTP 404"):
        gust.get_job("job-nope", url=fake.url)


def test_task_over_6_mb_is_refused_before_submit(fake):
    ex = gust.FunctionExecutor(url=fake.url)
    with pytest.raises(gust.SerializationError, match=r"task 1 is \d+ bytes pickled, over"):
        ex.map(len, [b"x", b"x" * (7 << 20)])
    assert not [r for r in fake.requests if r[0] == "POST"]


def test_a_python_the_engine_refuses_is_a_version_mismatch(fake, monkeypatch):
    """An engine refusing the client's Python (before 3.9) answers
    PythonVersionMismatchException: the client raises VersionMismatchError."""
    old = dict(engine_mod.client_python(), version="3.8.18")
    monkeypatch.setattr(job_mod, "client_python", lambda: old)
    ex = gust.FunctionExecutor(url=fake.url)
    with pytest.raises(gust.VersionMismatchError, match="not supported: maps run in CPython 3.9"):
        ex.map(square, [1])


def test_executor_submits_in_a_loop_become_one_job(fake):
    with gust.Executor(url=fake.url) as ex:
        fs = [ex.submit(square, i) for i in range(200)]
        assert [f.result(timeout=30) for f in fs] == [i * i for i in range(200)]
    posts = [r for r in fake.requests if r[0] == "POST" and r[1] == "/v1/jobs"]
    assert len(posts) <= 3, len(posts)
    assert len({f.job_id for f in fs}) == len(posts)


def test_executor_submit_errors_raise_at_submit(fake):
    with gust.Executor(url=fake.url) as ex:
        with pytest.raises(gust.SerializationError, match="arguments"):
            ex.submit(square, threading.Lock())
        f = ex.submit(square, 3)
        cancelled = ex.submit(square, 4)
        assert cancelled.cancel()
        assert f.result(timeout=30) == 9
        assert cancelled.cancelled()


def test_engine_of_another_gust_version_is_refused_before_submit():
    """An engine speaking another map protocol (an older gust: no map_protocol
    in /v1/health) would misread this client's jobs: refused with a message."""
    for theirs in (None, 1, 3):
        eng = FakeEngine(map_protocol=theirs).start()
        try:
            ex = gust.FunctionExecutor(url=eng.url, show_progress=False)
            with pytest.raises(gust.EngineError, match="map protocol .* this client 4"):
                ex.map(abs, [1])
            assert not [r for r in eng.requests if r[0] == "POST"]
        finally:
            eng.stop()


def test_futures_pickle_as_job_and_index(fake):
    """A future unpickled elsewhere (a task's result, here the same process)
    is a future of the same task on this process's engine, sharing one poller
    per job, and reads its result from the engine."""
    import pickle
    ex = gust.FunctionExecutor(url=fake.url)
    fs = ex.map(square, range(4))
    copies = pickle.loads(pickle.dumps(fs))
    assert [c.job_id for c in copies] == [f.job_id for f in fs]
    assert copies[0].job is copies[3].job is not fs[0].job
    assert [c.result(timeout=30) for c in copies] == [0, 1, 4, 9]
    assert gust.get_all_results(copies) == [0, 1, 4, 9]
    with pytest.raises(TypeError, match="only once its job is submitted"):
        pickle.dumps(gust.ResponseFuture(None, 0))


def _imports_missing(x):
    import gust_no_such_package_xyz  # noqa: F401 -- the import is the test
    return x


def test_a_tasks_import_error_names_the_environment(fake):
    """A package missing from the environment the task ran in (the client's):
    the ImportError says where to install it."""
    ex = gust.FunctionExecutor(url=fake.url)
    with pytest.raises(ModuleNotFoundError) as e:
        ex.get_result(ex.map(_imports_missing, [1]))
    assert "gust_no_such_package_xyz" in str(e.value)
    assert "the task ran in the Python environment %s" % sys.prefix in str(e.value)
    assert e.value.name == "gust_no_such_package_xyz"


def test_bucket_grants_go_in_the_job_header(fake):
    ex = gust.FunctionExecutor(url=fake.url, buckets=["data"])
    ex.get_result(ex.map(square, [1]))
    assert fake.jobs["job-1"]["header"]["Buckets"] == ["data"]
    ex.get_result(ex.map(square, [2], buckets=["inp:ro", "out", "inp:ro"]))
    assert fake.jobs["job-2"]["header"]["Buckets"] == ["inp:ro", "out"]
    ex.get_result(ex.map_reduce(square, [3], sum, buckets=["red"]))
    assert [fake.jobs[j]["header"]["Buckets"] for j in ("job-3", "job-4")] == [["red"], ["red"]]
    plain = gust.FunctionExecutor(url=fake.url)
    plain.get_result(plain.map(square, [1]))
    assert "Buckets" not in fake.jobs["job-5"]["header"]  # none asked: the header as before
    with pytest.raises(TypeError, match="list of bucket names"):
        ex.map(square, [1], buckets="data")
    with pytest.raises(ValueError, match="'Data:rx' is not a bucket grant"):
        ex.map(square, [1], buckets=["Data:rx"])
    assert len(fake.jobs) == 5  # refused before anything was submitted
