"""Tests of gust_runtime.map_worker: the handler run directly on a temporary
directory standing in for /var/task (LAMBDA_TASK_ROOT points at it).

Run with: /usr/bin/python3 -m pytest runtimes/python/tests
"""

import json
import os
import struct
import sys
import time

import cloudpickle
import pytest

from gust_runtime import map_worker


def encode_chunk(tasks):
    """[(index, args, kwargs)] -> the chunk payload the engine sends."""
    out = [struct.pack("<I", len(tasks))]
    for index, args, kwargs in tasks:
        data = cloudpickle.dumps((args, kwargs))
        out.append(struct.pack("<II", index, len(data)) + data)
    return b"".join(out)


def decode_answer(payload):
    """[(meta, data)] of an answer: meta is the entry's JSON object (empty for
    a task that returned) plus its binary fields: index, status, timestamps."""
    count, _exec_us = struct.unpack_from("<II", payload, 0)
    pos, out = 8, []
    for _ in range(count):
        index, status, t_start, t_setup, t_done, n, m = struct.unpack_from("<IIdddII", payload,
                                                                           pos)
        pos += 40
        meta = json.loads(payload[pos:pos + n]) if n else {}
        assert (status == 0) == (n == 0), "a returned task has no meta, a failed one has"
        meta.update(index=index, status=("ok", "error")[status], t_start=t_start,
                    t_setup=t_setup, t_done=t_done)
        out.append((meta, payload[pos + n:pos + n + m]))
        pos += n + m
    assert pos == len(payload)
    return out


@pytest.fixture
def task_root(tmp_path, monkeypatch):
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    map_worker._cache.clear()
    yield tmp_path
    map_worker._cache.clear()


def install(root, func, extra_args=None, files=None):
    job = root / "_gust_job"
    job.mkdir(exist_ok=True)
    (job / "function.pkl").write_bytes(cloudpickle.dumps(func))
    if extra_args is not None:
        (job / "extra_args.pkl").write_bytes(cloudpickle.dumps(extra_args))
    for name, text in (files or {}).items():
        (root / name).write_text(text)


def test_runs_each_task_and_keeps_indexes(task_root):
    install(task_root, lambda x: x * x)
    t0 = time.time()
    answer = decode_answer(map_worker.handler(encode_chunk([(7, (3,), {}), (9, (4,), {})]), None))
    assert [m["index"] for m, _ in answer] == [7, 9]
    assert [cloudpickle.loads(d) for _, d in answer] == [9, 16]
    for meta, _ in answer:
        assert meta["status"] == "ok"
        assert t0 <= meta["t_start"] <= meta["t_setup"] <= meta["t_done"] <= time.time()


def test_kwargs_and_extra_args_tuple(task_root):
    install(task_root, lambda a, b, c=0, d=0: (a, b, c, d), extra_args=(5,))
    answer = decode_answer(map_worker.handler(encode_chunk([(0, (1,), {"c": 2})]), None))
    assert cloudpickle.loads(answer[0][1]) == (1, 5, 2, 0)


def test_extra_args_dict_updates_kwargs(task_root):
    install(task_root, lambda a, scale=1: a * scale, extra_args={"scale": 10})
    answer = decode_answer(map_worker.handler(encode_chunk([(0, (2,), {})]), None))
    assert cloudpickle.loads(answer[0][1]) == 20


def test_function_exception_is_the_task_result(task_root):
    def boom(x):
        if x == 1:
            raise KeyError("no such key %d" % x)
        return x

    install(task_root, boom)
    answer = decode_answer(map_worker.handler(encode_chunk([(0, (0,), {}), (1, (1,), {})]), None))
    assert answer[0][0]["status"] == "ok"
    meta, data = answer[1]
    assert meta["status"] == "error" and meta["error_type"] == "KeyError"
    assert "no such key 1" in meta["error_message"]
    exc, tb_text = cloudpickle.loads(data)
    assert isinstance(exc, KeyError)
    assert "boom" in tb_text and "raise KeyError" in tb_text
    assert "run_task" not in tb_text  # the worker's own frames are trimmed


def test_failed_task_names_its_item_once(task_root):
    def f(x, y=0):
        raise ValueError("bad")

    install(task_root, f)
    answer = decode_answer(map_worker.handler(encode_chunk(
        [(4, ("x" * 200,), {}), (5, (1,), {"y": 2})]), None))
    exc, tb_text = cloudpickle.loads(answer[0][1])
    note = "gust: task 4 failed; its argument: '" + "x" * 76 + "..."  # 80 chars
    assert exc.__notes__ == [note]
    assert "gust: task" not in tb_text  # added after the remote text: printed once
    exc, _ = cloudpickle.loads(answer[1][1])
    assert exc.__notes__ == ["gust: task 5 failed; its arguments: 1, y=2"]


def test_unpicklable_exception_becomes_runtime_error(task_root):
    class Odd(Exception):
        def __init__(self, a, b):  # pickling re-calls __init__ with one arg: fails on load
            super().__init__(a)
            self.b = b

    def f(x):
        raise Odd("odd", lambda: None)

    install(task_root, f)
    meta, data = decode_answer(map_worker.handler(encode_chunk([(0, (1,), {})]), None))[0]
    exc, tb_text = cloudpickle.loads(data)
    assert meta["error_type"] == "Odd"
    assert isinstance(exc, RuntimeError) and "Odd" in str(exc)
    assert "raise Odd" in tb_text


def test_unpicklable_return_value_is_an_error(task_root):
    install(task_root, lambda x: (i for i in range(x)))
    meta, data = decode_answer(map_worker.handler(encode_chunk([(0, (1,), {})]), None))[0]
    assert meta["status"] == "error"
    exc, _ = cloudpickle.loads(data)
    assert "generator" in str(exc)


def test_function_is_loaded_once_per_sandbox(task_root):
    calls = []
    install(task_root, lambda x: x + 1)
    real_loads = cloudpickle.loads

    def counting_loads(data, *a, **kw):
        calls.append(len(data))
        return real_loads(data, *a, **kw)

    cloudpickle.loads = counting_loads
    try:
        for _ in range(3):
            map_worker.handler(encode_chunk([(0, (1,), {})]), None)
    finally:
        cloudpickle.loads = real_loads
    # exactly one function unpickle (tasks go through the C unpickler)
    assert len(calls) == 1
    assert len(map_worker._cache) == 1


def test_new_code_replaces_the_cache(task_root):
    install(task_root, lambda x: "old")
    map_worker.handler(encode_chunk([(0, (1,), {})]), None)
    os.remove(task_root / "_gust_job" / "function.pkl")
    install(task_root, lambda x: "new")
    answer = decode_answer(map_worker.handler(encode_chunk([(0, (1,), {})]), None))
    assert cloudpickle.loads(answer[0][1]) == "new"


def test_local_module_of_the_bundle_is_importable(task_root):
    install(task_root, lambda x: __import__("mw_local_helper").triple(x),
            files={"mw_local_helper.py": "def triple(x):\n    return 3 * x\n"})
    try:
        answer = decode_answer(map_worker.handler(encode_chunk([(0, (2,), {})]), None))
        assert cloudpickle.loads(answer[0][1]) == 6
    finally:
        sys.modules.pop("mw_local_helper", None)
        if str(task_root) in sys.path:
            sys.path.remove(str(task_root))


@pytest.mark.parametrize("payload", [b"", b"\x01\x00\x00\x00", b"\x01\x00\x00\x00" + b"\x00" * 4
                                     + b"\x09\x00\x00\x00abc", b"\x00\x00\x00\x00xx"])
def test_malformed_chunk_raises(task_root, payload):
    install(task_root, lambda x: x)
    with pytest.raises(ValueError):
        map_worker.handler(payload, None)


def test_empty_chunk(task_root):
    install(task_root, lambda x: x)
    assert decode_answer(map_worker.handler(struct.pack("<I", 0), None)) == []


def test_no_heavy_imports_at_module_level():
    import subprocess
    code = ("import sys; sys.path.insert(0, %r); import gust_runtime.map_worker; "
            "print('cloudpickle' in sys.modules)"
            % os.path.join(os.path.dirname(__file__), ".."))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class StreamContext:
    """A context as the runtime gives a streaming invocation: gust_yield sends an
    answer to the 'engine' and returns its next chunk (None: no more)."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.answers = []

    def gust_yield(self, answer):
        self.answers.append(answer)
        return self.chunks.pop(0) if self.chunks else None


def test_streaming_pulls_chunks_until_none(task_root):
    install(task_root, lambda x: x + 100)
    ctx = StreamContext([encode_chunk([(1, (1,), {})]),
                         encode_chunk([(2, (2,), {}), (3, (3,), {})])])
    final = map_worker.handler(encode_chunk([(0, (0,), {})]), ctx)
    assert decode_answer(final) == []  # everything went back through gust_yield
    got = [[(m["index"], cloudpickle.loads(d)) for m, d in decode_answer(a)] for a in ctx.answers]
    assert got == [[(0, 100)], [(1, 101)], [(2, 102), (3, 103)]]


def test_big_answers_go_back_in_parts(task_root, monkeypatch):
    monkeypatch.setattr(map_worker, "PART_BYTES", 1000)
    install(task_root, lambda n: b"x" * n)
    chunk = encode_chunk([(i, (600,), {}) for i in range(5)])
    engine_said = []

    class Ctx(StreamContext):
        def gust_yield(self, answer):
            self.answers.append(answer)
            # Mid-chunk the engine answers "go on" (an empty chunk); at the end: no more.
            n = sum(len(decode_answer(a)) for a in self.answers)
            reply = struct.pack("<I", 0) if n < 5 else None  # an empty chunk: go on
            engine_said.append(reply)
            return reply

    ctx = Ctx([])
    map_worker.handler(chunk, ctx)
    sizes = [len(decode_answer(a)) for a in ctx.answers]
    assert sum(sizes) == 5 and len(sizes) > 1, sizes
    assert all(len(a) < 1000 + 700 for a in ctx.answers)


def test_result_over_the_limit_is_that_tasks_error(task_root, monkeypatch):
    monkeypatch.setattr(map_worker, "MAX_RESULT_BYTES", 1000)
    install(task_root, lambda n: b"x" * n)
    answer = decode_answer(map_worker.handler(encode_chunk([(0, (10,), {}), (1, (5000,), {})]),
                                              None))
    assert answer[0][0]["status"] == "ok"
    meta, data = answer[1]
    assert meta["status"] == "error" and meta["error_type"] == "Map.ResultTooLarge"
    assert "bytes pickled, over the limit of 1000" in meta["error_message"] and data == b""


class MainLike:
    """A class the client defined in __main__ (here: pretend so)."""


MainLike.__module__ = "__main__"


def test_values_the_c_pickler_cannot_carry_go_through_cloudpickle(task_root):
    install(task_root, lambda kind: (lambda y: y * 3) if kind == "lambda" else MainLike())
    answer = decode_answer(map_worker.handler(
        encode_chunk([(0, ("lambda",), {}), (1, ("main",), {})]), None))
    assert cloudpickle.loads(answer[0][1])(2) == 6
    assert type(cloudpickle.loads(answer[1][1])).__name__ == "MainLike"
    # Plain data uses the C pickler: no cloudpickle frames in it.
    assert b"cloudpickle" not in map_worker.dumps({"a": [1, 2.5, "x"]})


def test_answers_report_the_time_spent_on_their_tasks(task_root):
    install(task_root, lambda s: time.sleep(s) or s)
    answer = map_worker.handler(encode_chunk([(0, (0.05,), {})]), None)
    _count, exec_us = struct.unpack_from("<II", answer, 0)
    assert 50_000 <= exec_us < 5_000_000


NO_NETWORK_PROBE = """
import errno, socket, urllib.error, urllib.request
from gust_runtime import map_worker
cases = [urllib.error.URLError(OSError(errno.ENETUNREACH, "Network is unreachable")),
         ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
         socket.gaierror(-3, "Temporary failure in name resolution"),
         ValueError("not about the network")]
for exc in cases:
    map_worker.note_no_network(exc)
    map_worker.note_no_network(exc)  # noted once
    print(len(getattr(exc, "__notes__", [])))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace (unshare -n)")
def test_network_failures_are_noted_only_without_network():
    import subprocess
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(map_worker.__file__)))
    without = subprocess.run(["unshare", "-n", sys.executable, "-c", NO_NETWORK_PROBE], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
    assert without == ["1", "1", "1", "0"]
    # In the host's namespace (a networked sandbox) no failure gets the note.
    host = subprocess.run([sys.executable, "-c", NO_NETWORK_PROBE], env=env,
                          capture_output=True, text=True, check=True).stdout.split()
    assert host == ["0", "0", "0", "0"]


def test_missing_cloudpickle_names_the_environment(task_root, monkeypatch):
    install(task_root, abs)
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # as if not installed
    with pytest.raises(ImportError) as info:
        map_worker.load_function(str(task_root))
    message = str(info.value)
    assert "cloudpickle is missing from the Python environment " + sys.prefix in message
    assert sys.executable in message and "install cloudpickle there" in message
