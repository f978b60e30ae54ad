"""End-to-end tests of map jobs (issue 3): the python/gust client against a real
engine (the `engine` fixture of conftest.py), tasks running in real sandboxes
through gust_runtime.map_worker.

The functions below are pickled by value (register_pickle_by_value): pickled by
reference, every cold sandbox would import this file, hence pytest (~0.3 s of
CPU each). Shipping a module by reference is tested with a small local module.
Executors use concurrency=8 to keep the tests' sandbox count small; the width
tests below use the engine's default.
"""

import concurrent.futures as cf
import http.client
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import cloudpickle
import pytest

import gust

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class MapTestError(Exception):
    """A user exception type the client must re-raise as itself."""


def square(x):
    return x * x


def add(a, b, c=0):
    return a + b + c


def fail_on_odd(x):
    if x % 2:
        raise MapTestError("odd input %d" % x)
    return x


def sleep_then(x):
    time.sleep(x)
    return x


def train_model(hyperparams):
    """The article's hyperparameter search: one fitted classifier per setting."""
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier
    X, y = load_iris(return_X_y=True)
    return KNeighborsClassifier(**hyperparams).fit(X, y)


@pytest.fixture
def ex(engine):
    return gust.FunctionExecutor(url=engine.url, show_progress=False, concurrency=8)


def test_health_reports_runtime_python(engine):
    python = engine.health().get("python", "")
    # "3.11" or "3.11.2 (main, ...)": the client compares major.minor
    assert python.split()[0].split(".")[:2] == ["%d" % v for v in sys.version_info[:2]], python


def test_map_square_100(ex):
    fs = ex.map(square, range(100))
    assert ex.get_result(fs) == [x * x for x in range(100)]
    assert len({f.job_id for f in fs}) == 1, "one job for the whole map"
    stats = fs[0].stats
    for key in ("host_submit", "task_start", "setup_done", "task_done", "result_returned"):
        assert isinstance(stats[key], float), (key, stats)
    assert stats["host_submit"] <= stats["result_returned"]
    assert stats["task_start"] <= stats["setup_done"] <= stats["task_done"]
    assert stats["sandbox"] and isinstance(stats["cold"], bool)


def test_pywren_names(engine):
    pwex = gust.default_executor(url=engine.url)
    futures = pwex.map(square, [0, 1, 2, 3, 4, 5])
    assert gust.get_all_results(futures) == [0, 1, 4, 9, 16, 25]
    done, not_done = gust.wait(futures, return_when=gust.ALWAYS)
    assert len(done) == 6 and not not_done


def test_closures_lambdas_kwargs_extra_args(ex):
    offset = 1000
    assert ex.get_result(ex.map(lambda x: x + offset, [1, 2])) == [1001, 1002]
    assert ex.get_result(ex.map(add, [(1, 2), {"a": 1, "b": 2, "c": 3}])) == [3, 6]
    assert ex.get_result(ex.map(add, [1, 2], extra_args=(10,))) == [11, 12]
    assert ex.get_result(ex.map(add, [(1, 2)], extra_args={"c": 100})) == [103]
    assert ex.get_result(ex.call_async(lambda: "no args", ())) == "no args"


def test_local_module_is_shipped(ex, tmp_path, monkeypatch):
    name = "gust_e2e_local_%d" % os.getpid()
    (tmp_path / (name + ".py")).write_text(textwrap.dedent("""
        import os

        def where(x):
            return (x * 2, os.path.dirname(__file__))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    try:
        results = ex.get_result(ex.map(module.where, [1, 2]))
        assert [r[0] for r in results] == [2, 4]
        assert results[0][1] != str(tmp_path), "ran from the bundle, not the client's dir"
    finally:
        sys.modules.pop(name, None)


def test_results_are_real_objects(ex):
    all_hyperparams = [{"n_neighbors": k} for k in range(1, 9)]
    models = ex.get_result(ex.map(train_model, all_hyperparams, memory=512))
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    assert [m.n_neighbors for m in models] == list(range(1, 9))
    assert models[0].score(X, y) == 1.0


def test_remote_exception_keeps_type_and_traceback(ex):
    fs = ex.map(fail_on_odd, [0, 1, 2])
    assert fs[0].result() == 0 and fs[2].result() == 2
    with pytest.raises(MapTestError, match="odd input 1") as info:
        fs[1].result()
    assert "fail_on_odd" in info.value.remote_traceback
    assert isinstance(info.value.__cause__, gust.RemoteTraceback)
    assert fs[1].result(throw_except=False) is None


def test_concurrent_futures_as_completed(engine):
    with gust.Executor(url=engine.url, concurrency=8) as pool:
        fs = {pool.submit(sleep_then, d): d for d in (0.6, 0.3, 0.0)}
        order = [fs[f] for f in cf.as_completed(fs, timeout=120)]
        assert sorted(order) == [0.0, 0.3, 0.6]
        assert order[0] == 0.0
        assert list(pool.map(add, [1, 2], [10, 20], timeout=120)) == [11, 22]
        done, not_done = cf.wait(list(fs), timeout=0)
        assert len(done) == 3


def test_joblib_gridsearch_matches_local(engine):
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    X, y = load_iris(return_X_y=True)
    grid = {"n_neighbors": list(range(1, 9)), "weights": ["uniform", "distance"]}
    local = GridSearchCV(KNeighborsClassifier(), grid, cv=3).fit(X, y)
    gust.register_joblib()
    with joblib.parallel_backend("gust", url=engine.url, workers=4, memory=512):
        remote = GridSearchCV(KNeighborsClassifier(), grid, cv=3, n_jobs=-1).fit(X, y)
    assert remote.best_params_ == local.best_params_
    assert remote.best_score_ == pytest.approx(local.best_score_)


def test_get_job_reattaches(ex, engine):
    fs = ex.map(square, range(10))
    ex.get_result(fs)
    job = gust.get_job(fs[0].job_id, url=engine.url)
    assert job.n_tasks == 10
    assert job.results(timeout=60) == [x * x for x in range(10)]
    assert job.status()["State"] == "done"


def test_empty_iterdata(ex):
    assert ex.map(square, []) == []
    assert ex.get_result([]) == []


def test_unpicklable_argument_is_named_before_submit(ex):
    before = len(ex.jobs)
    with pytest.raises(gust.SerializationError, match="task 2"):
        ex.map(square, [1, 2, threading.Lock()])
    assert len(ex.jobs) == before


def test_task_over_6_mb_is_refused_before_submit(ex):
    before = len(ex.jobs)
    with pytest.raises(gust.SerializationError, match="task 0 is .* over"):
        ex.map(len, [b"x" * (7 << 20)])
    assert len(ex.jobs) == before


def test_unpicklable_function(ex):
    lock = threading.Lock()
    with pytest.raises(gust.SerializationError, match="function"):
        ex.map(lambda x: lock, [1])


def test_task_timeout_is_a_task_error(ex):
    fs = ex.map(sleep_then, [0, 5], timeout=1, retries=0, chunksize=1)
    assert fs[0].result(timeout=120) == 0
    with pytest.raises(gust.TaskTimeoutError, match="Sandbox.Timedout"):
        fs[1].result(timeout=120)


def test_engine_rejects_other_python_version(engine):
    body = json.dumps({"code": "0" * 64, "python": "3.99"}).encode() + b"\n"
    body += b"\x01\x00\x00\x00x"  # one (dummy) task: the version is checked first
    conn = http.client.HTTPConnection("127.0.0.1", engine.port, timeout=30)
    conn.request("POST", "/v1/jobs", body, {"Content-Type": "application/x-gust-job"})
    resp = conn.getresponse()
    text = resp.read().decode()
    assert resp.status == 400 and "3.99" in text, (resp.status, text)


def test_plot(ex, tmp_path):
    fs = ex.map(square, range(20))
    ex.get_result(fs)
    for path in ex.plot(fs, str(tmp_path / "map")):
        assert os.path.getsize(path) > 1000


def test_engine_dying_mid_map_is_reported(tmp_path, monkeypatch):
    from gust_e2e import Engine
    from gust import job as job_mod
    monkeypatch.setattr(job_mod, "ENGINE_GRACE_S", 1.0)
    eng = Engine(tmp_path / "dying").start()
    try:
        ex = gust.FunctionExecutor(url=eng.url, show_progress=False, concurrency=4)
        fs = ex.map(sleep_then, [30, 30])
        time.sleep(1.0)
        eng.stop(signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(gust.EngineUnavailableError, match="stopped answering"):
            fs[0].result(timeout=60)
        assert time.monotonic() - t0 < 30
    finally:
        eng.stop()
        # A SIGKILLed engine leaves its nftables table (src/sandbox/loopback_guard.h); a
        # stale one would close the loopback to later engines' --network-host-access sandboxes.
        subprocess.run(["nft", "delete", "table", "inet", "gust_%d" % eng.port],
                       capture_output=True)


def allocate_mb(mb):
    block = bytearray(mb * 1024 * 1024)
    return len(block)


def test_task_over_memory_is_a_task_error(ex):
    fs = ex.map(allocate_mb, [1, 600], memory=128, retries=1, chunksize=1)
    assert fs[0].result(timeout=120) == 1024 * 1024
    with pytest.raises(gust.TaskOutOfMemoryError, match="Runtime.OutOfMemory") as info:
        fs[1].result(timeout=120)
    assert info.value.attempts == 2, "retried once on a fresh sandbox"


def test_result_that_cannot_be_unpickled_here(ex, tmp_path, monkeypatch):
    name = "gust_e2e_remote_only_%d" % os.getpid()
    (tmp_path / (name + ".py")).write_text("class Thing:\n    pass\n\n"
                                           "def make(x):\n    return Thing()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    fs = ex.map(module.make, [1])
    assert type(fs[0].result(timeout=60)).__name__ == "Thing"
    # Fetch the stored result again, through a reattached job, once the module
    # is gone from this process: the sandbox had it (shipped), the client not.
    sys.modules.pop(name, None)
    sys.path.remove(str(tmp_path))
    os.remove(tmp_path / (name + ".py"))
    job = gust.get_job(fs[0].job_id, url=ex.url)
    with pytest.raises(gust.ResultDecodeError, match=name):
        job.futures[0].result(timeout=60)


def test_cancel_pending_tasks(ex):
    fs = ex.map(sleep_then, [0.5, 0.5, 0.5, 0.5], concurrency=1, chunksize=1)
    assert fs[3].cancel()
    assert fs[3].cancelled()
    assert ex.get_result(fs[:3]) == [0.5, 0.5, 0.5]
    status = fs[0].job.status()
    assert status["Cancelled"] == 1, status


def test_large_map_streams(ex):
    n = 100_000
    t0 = time.monotonic()
    fs = ex.map(abs, range(-n, 0))
    results = ex.get_result(fs, timeout=600)
    assert results[0] == n and results[-1] == 1 and len(results) == n
    print("100k tasks end to end: %.2f s" % (time.monotonic() - t0))


def exit_on_one(x):
    if x == 1:
        os._exit(3)
    return x


def test_crashing_task_fails_alone(ex):
    """A sandbox crash takes the whole chunk down: its tasks are retried alone
    on fresh sandboxes; only the crashing one ends as TaskExitError."""
    fs = ex.map(exit_on_one, [0, 1, 2, 3], chunksize=4, retries=1)
    assert [fs[i].result(timeout=120) for i in (0, 2, 3)] == [0, 2, 3]
    with pytest.raises(gust.TaskExitError, match="Runtime.ExitError"):
        fs[1].result(timeout=120)


def busy(ms):
    end = time.process_time() + ms / 1000.0
    while time.process_time() < end:
        pass
    return ms


def test_io_bound_map_goes_wide(engine):
    """Tasks that sleep leave the CPU idle: the engine adds sandboxes while the
    queue would outwait a cold start (60 x 0.5 s on 2 sandboxes would take 15 s)."""
    ex = gust.FunctionExecutor(url=engine.url, show_progress=False)
    t0 = time.monotonic()
    fs = ex.map(sleep_then, [0.5] * 60)
    assert ex.get_result(fs, timeout=120) == [0.5] * 60
    elapsed = time.monotonic() - t0
    sandboxes = {f.stats["sandbox"] for f in fs}
    assert len(sandboxes) >= 10, sandboxes
    assert elapsed < 10, elapsed


def test_cpu_bound_map_stays_near_the_cores(engine):
    """A CPU-bound map gets about one sandbox per core, not one per task."""
    ex = gust.FunctionExecutor(url=engine.url, show_progress=False)
    fs = ex.map(busy, [20] * 60)
    assert ex.get_result(fs, timeout=120) == [20] * 60
    sandboxes = {f.stats["sandbox"] for f in fs}
    assert len(sandboxes) <= (os.cpu_count() or 1) + 2, sandboxes


def blob(n):
    return b"x" * n


def test_big_results_travel_in_parts(ex):
    """Four 3 MB results in one chunk: the worker sends its answer in parts
    (each frame to the engine stays under 6 MB)."""
    fs = ex.map(blob, [3 << 20] * 4, chunksize=4)
    assert [len(r) for r in ex.get_result(fs, timeout=120)] == [3 << 20] * 4


def test_result_over_6_mb_is_that_tasks_error(ex):
    fs = ex.map(blob, [10, 7 << 20], chunksize=2)
    assert fs[0].result(timeout=60) == b"x" * 10
    with pytest.raises(gust.TaskError, match="Map.ResultTooLarge.*over the limit"):
        fs[1].result(timeout=60)


def test_unused_map_functions_and_their_code_are_collected(tmp_path):
    """A job's results and the gust-map-* functions no job used go after the
    job TTL, with their code; a later map of the same function uploads the
    code again and works."""
    from gust_e2e import Engine
    eng = Engine(tmp_path / "gc", extra_args=["--job-ttl", "2s"]).start()
    try:
        ex = gust.FunctionExecutor(url=eng.url, show_progress=False, concurrency=2)
        fs = ex.map(square, [3])
        assert ex.get_result(fs) == [9]
        name = fs[0].job.function
        digest = ex.jobs[0].code_digest

        def functions():
            return [f["FunctionName"] for f in
                    json.loads(eng.get("/2015-03-31/functions")[1])["Functions"]]
        assert name in functions()
        deadline = time.monotonic() + 30
        while name in functions() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert name not in functions()
        # The job's results went at its TTL too.
        status, body = eng.get("/v1/jobs/" + fs[0].job_id)
        assert status == 404, body
        conn = http.client.HTTPConnection("127.0.0.1", eng.port, timeout=10)
        conn.request("HEAD", "/v1/blobs/" + digest)
        assert conn.getresponse().status == 404
        # This client still believes the code is on the engine: the engine says
        # CodeNotUploadedException and the client uploads it again.
        assert ex.get_result(ex.map(square, [4])) == [16]
    finally:
        eng.stop()
