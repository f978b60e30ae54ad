"""Futures resolved by hand: wait/as_completed semantics, error re-raising,
engine-side task errors, cancelled tasks, undecodable results."""

import concurrent.futures as cf
import threading
import time

import cloudpickle
import pytest

import gust
from gust.futures import ResponseFuture, decode_error


def ok(index, value, seq=1):
    return {"seq": seq, "index": index, "status": "ok", "t_start": 1.0, "t_setup": 1.5,
            "t_done": 2.0, "cold": True, "sandbox": "sb-1", "attempts": 1}, cloudpickle.dumps(value)


def remote_error(exc, tb="Traceback (most recent call last):\n  File \"job.py\", line 3\n"):
    return {"seq": 1, "index": 0, "status": "error", "error_type": type(exc).__name__,
            "error_message": str(exc)}, cloudpickle.dumps((exc, tb))


class FakeJob:
    def __init__(self):
        self.cancelled = []

    def cancel_tasks(self, indexes):
        self.cancelled += list(indexes)


def test_result_and_stats():
    f = ResponseFuture(None, 0, host_submit=0.5)
    f.resolve(*ok(0, {"a": [1, 2]}))
    assert f.done() and f.result() == {"a": [1, 2]}
    assert f.stats["host_submit"] == 0.5 and f.stats["task_start"] == 1.0
    assert f.stats["setup_done"] == 1.5 and f.stats["task_done"] == 2.0
    assert f.stats["result_returned"] >= 2.0 and f.stats["cold"] is True
    assert f.stats["sandbox"] == "sb-1"


def test_remote_exception_keeps_type_and_traceback():
    f = ResponseFuture(None, 0)
    f.resolve(*remote_error(KeyError("missing")))
    with pytest.raises(KeyError) as info:
        f.result()
    assert isinstance(info.value.__cause__, gust.RemoteTraceback)
    assert "job.py" in str(info.value.__cause__)
    assert "job.py" in info.value.remote_traceback
    assert f.result(throw_except=False) is None
    assert isinstance(f.exception(), KeyError) and f.error


def test_engine_side_errors_map_to_task_errors():
    for etype, cls in [("Sandbox.Timedout", gust.TaskTimeoutError),
                       ("Runtime.OutOfMemory", gust.TaskOutOfMemoryError),
                       ("Runtime.ExitError", gust.TaskExitError),
                       ("Something.Else", gust.TaskError)]:
        exc = decode_error({"status": "error", "error_type": etype, "error_message": "m",
                            "attempts": 3}, b"", index=4)
        assert type(exc) is cls
        assert etype in str(exc) and "task 4" in str(exc) and "3 attempts" in str(exc)


def test_undecodable_result_is_a_clear_error():
    f = ResponseFuture(None, 2)
    f.resolve({"seq": 1, "index": 2, "status": "ok"}, b"\x80\x04\x95garbage")
    with pytest.raises(gust.ResultDecodeError, match="task 2.*cannot be unpickled"):
        f.result()


def test_result_needing_a_missing_module():
    # a pickle referring to a module that does not exist on the client
    data = b"cno_such_mod_xyz\nf\n."  # protocol 0: GLOBAL no_such_mod_xyz.f
    f = ResponseFuture(None, 0)
    f.resolve({"seq": 1, "index": 0, "status": "ok"}, data)
    with pytest.raises(gust.ResultDecodeError, match="no_such_mod_xyz"):
        f.result()


def test_cancelled_status_cancels_the_future():
    f = ResponseFuture(None, 0)
    f.resolve({"seq": 1, "index": 0, "status": "cancelled"}, b"")
    assert f.cancelled()
    assert cf.wait([f], timeout=0).done == {f}


def test_user_cancel_tells_the_job_and_wakes_waiters():
    job = FakeJob()
    f = ResponseFuture(job, 3)
    assert f.cancel()
    assert job.cancelled == [3]
    assert cf.wait([f], timeout=0).done == {f}
    f.resolve(*ok(3, 1))  # a late result is ignored
    assert f.cancelled()


def test_as_completed_and_wait_with_hand_resolved_futures():
    fs = [ResponseFuture(None, i) for i in range(4)]

    def resolve_later():
        for i in (2, 0, 3, 1):
            time.sleep(0.01)
            fs[i].resolve(*ok(i, i * 10, seq=i + 1))
    threading.Thread(target=resolve_later).start()
    order = [f.index for f in cf.as_completed(fs, timeout=5)]
    assert order == [2, 0, 3, 1]
    assert gust.get_all_results(fs) == [0, 10, 20, 30]


def test_gust_wait_modes():
    fs = [ResponseFuture(None, i) for i in range(3)]
    done, not_done = gust.wait(fs, return_when=gust.ALWAYS)
    assert not done and len(not_done) == 3
    fs[1].resolve(*ok(1, "x"))
    done, not_done = gust.wait(fs, return_when=gust.ANY_COMPLETED, timeout=1)
    assert done == {fs[1]} and len(not_done) == 2
    t0 = time.monotonic()
    done, not_done = gust.wait(fs, return_when=gust.ALL_COMPLETED, timeout=0.2)
    assert 0.15 < time.monotonic() - t0 < 2 and len(not_done) == 2
    with pytest.raises(cf.TimeoutError, match="2 of 3 tasks unfinished"):
        gust.get_all_results(fs, timeout=0.05)
    with pytest.raises(ValueError, match="return_when"):
        gust.wait(fs, return_when="SOMETIMES")


def test_result_timeout():
    with pytest.raises(cf.TimeoutError):
        ResponseFuture(None, 0).result(timeout=0.01)


def test_non_exception_error_payload():
    f = ResponseFuture(None, 0)
    f.resolve({"seq": 1, "index": 0, "status": "error"}, cloudpickle.dumps(("not exc", "tb")))
    with pytest.raises(RuntimeError, match="non-exception"):
        f.result()
