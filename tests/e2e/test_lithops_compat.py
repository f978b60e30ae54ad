"""gust.lithops (issue 13): Lithops code runs on gust with one changed line,
`import lithops` -> `from gust import lithops`. Each test is one behaviour of
Lithops' API that gust.FunctionExecutor has differently, run on real
sandboxes of the session's engine. Lithops' own test files run with
`make test-lithops` (tests/compat/run_lithops_tests.py).

Functions are pickled by value (as in test_map.py) so that a cold sandbox
does not import this file and pytest.
"""

import socket
import sys
import time

import cloudpickle
import pytest

import gust
from gust import lithops

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Deliberate(Exception):
    """The exception the retried functions raise."""


def add(x, y):
    return x + y


def total(a, b, c=0, *args, d, e=5, **kwargs):
    return [a, b, c, d, e, list(args), kwargs]


def decorated(f):
    def wrapper(*args, **kwargs):  # no functools.wraps: Lithops' own test case
        return f(*args, **kwargs)
    return wrapper


def nap(seconds):
    time.sleep(seconds)
    return seconds


def always_fails(x):
    raise Deliberate("input %r fails every time" % (x,))


def fails_until(x, until):
    if time.time() < until:
        time.sleep(0.2)
        raise Deliberate("too early for %r" % (x,))
    return x


def interfaces(_):
    return sorted(name for _, name in socket.if_nameindex())


def map_inside(n):
    inner = lithops.FunctionExecutor()      # in the sandbox: the engine through its channel
    inner.map(add, [(i, 0) for i in range(n)])
    return inner.get_result()


def return_futures(n):
    return lithops.FunctionExecutor().map(add, [(i, 1) for i in range(n)])


@pytest.fixture
def fexec(engine):
    return lithops.FunctionExecutor(config={"gust": {"url": engine.url, "concurrency": 4,
                                                     "show_progress": False}})


def test_constructor_takes_lithops_arguments(engine, caplog):
    caplog.set_level("DEBUG", logger="gust.lithops")
    config = lithops.config.default_config(config_data={"aws_lambda": {"runtime_memory": 512}},
                                           config_overwrite={"lithops": {"backend": "aws_lambda",
                                                                         "log_level": "DEBUG"}})
    fexec = lithops.FunctionExecutor(config=config, backend="aws_lambda", storage="aws_s3",
                                     runtime="python311", region="eu-west-1", max_workers=3,
                                     runtime_timeout=30, log_level="INFO", url=engine.url)
    options = fexec.gust_executor._core.config
    assert (options["memory"], options["concurrency"], options["timeout"]) == (512, 3, 30)
    ignored = " ".join(r.getMessage() for r in caplog.records)
    assert "runtime='python311'" in ignored and "backend='aws_lambda'" in ignored
    # Lithops' name wins over the config, as in Lithops.
    fexec = lithops.FunctionExecutor(config=config, runtime_memory=1024, url=engine.url)
    assert fexec.gust_executor._core.config["memory"] == 1024
    with pytest.raises(TypeError, match="runtime_memroy"):
        lithops.FunctionExecutor(runtime_memroy=512, url=engine.url)
    with pytest.raises(TypeError, match="unknown config's gust option"):
        lithops.FunctionExecutor(config={"gust": {"colour": "red"}})


def test_get_result_returns_what_was_not_read(fexec):
    fexec.call_async(add, (1, 2))
    assert fexec.get_result() == 3                      # one call_async: a bare value
    fexec.map(add, [(1, 1), (2, 2)])
    fexec.map(add, [(3, 3)])
    assert fexec.get_result() == [2, 4, 6]              # both maps, not the call_async again
    assert fexec.get_result() == []                     # nothing left unread
    fs = fexec.map(add, [(5, 5)])
    assert fexec.get_result(fs) == [10]                 # the last call a map: a list
    assert fexec.get_result(fs[0]) == [10]
    assert fexec.get_result() == [10]                   # get_result(fs) does not mark read


def test_map_reduce_result_is_the_reducers(fexec):
    fs = fexec.map_reduce(add, [(1, 2), (3, 4)], sum)
    assert len(fs) == 3 and fs[0]._produce_output is False
    assert fexec.get_result() == 10
    assert fexec.get_result(fs) == 10
    assert [f.result() for f in fs] == [3, 7, 10]


def reduce_with(results, scale, offset=0):
    return sum(results) * scale + offset


def test_map_reduce_extra_args_reduce(fexec):
    """Lithops appends a tuple after the results and passes a dict as keywords."""
    fexec.map_reduce(add, [(1, 2), (3, 4)], reduce_with, extra_args_reduce=(10,))
    assert fexec.get_result() == 100
    fexec.map_reduce(add, [(1, 2)], reduce_with, extra_args_reduce={"scale": 2, "offset": 1})
    assert fexec.get_result() == 7
    with pytest.raises(TypeError, match="extra_args_reduce must be a tuple, list or dict, not int"):
        fexec.map_reduce(add, [(1, 2)], reduce_with, extra_args_reduce=3)


def test_futures_have_lithops_properties(fexec, engine):
    f = fexec.call_async(nap, 1.0)
    assert f.done is False and f.running and not f.ready and not f.error
    assert fexec.get_result() == 1.0
    assert f.done is True and f.ready and f.success and not f.running and not f.error
    stats = f.stats
    assert stats["worker_start_tstamp"] == stats["task_start"] is not None
    assert stats["host_submit_tstamp"] <= stats["worker_func_end_tstamp"]
    bad = fexec.call_async(always_fails, 1)
    lithops.wait(bad, throw_except=False)
    assert bad.done and bad.error and not bad.ready
    with pytest.raises(Deliberate):
        bad.status()
    # gust's own futures keep concurrent.futures' methods.
    with gust.Executor(url=engine.url) as pool:
        own = pool.submit(nap, 0)
        assert own.result() == 0 and own.done() is True


def test_iterdata_rules(fexec):
    calls = [
        {"a": 1, "b": 2, "d": 3},                                   # keyword arguments
        {"args": (1, 2, 3, 4), "d": 5},                             # *args by its name
        {"a": 1, "b": 2, "d": 3, "kwargs": {"f": 6}, "e": 7},       # **kwargs by its name
    ]
    expected = [[1, 2, 0, 3, 5, [], {}], [1, 2, 3, 5, 5, [4], {}],
                [1, 2, 0, 3, 7, [], {"f": 6}]]
    assert fexec.get_result(fexec.map(total, calls)) == expected
    # Through a wrapper of (*args, **kwargs), as Lithops' decorator test.
    assert fexec.get_result(fexec.map(decorated(total), calls)) == expected
    # A list, range or set is the items; a tuple or any other value one item.
    assert fexec.get_result(fexec.map(add, [(1, 2), (3, 4)])) == [3, 7]
    assert sorted(fexec.get_result(fexec.map(str, {1, 2}))) == ["1", "2"]
    assert fexec.get_result(fexec.map(add, (1, 2))) == [3]
    assert fexec.get_result(fexec.map(add, range(2), extra_args=(10,))) == [10, 11]
    assert fexec.get_result(fexec.map(add, [1], extra_args={"y": 5})) == [6]
    env = fexec.call_async(lambda k: __import__("os").environ.get(k), "GUST_T",
                           extra_env={"GUST_T": "set"})
    assert env.result() == "set"
    with pytest.raises(NotImplementedError, match="storage"):
        fexec.map(add, ["s3://bucket/"], obj_chunk_size=1024)


def test_retrying_executor_retries_a_function_that_raises(fexec):
    with lithops.RetryingFunctionExecutor(fexec) as retrying:
        fs = retrying.map(always_fails, [0, 1], retries=2)
        done, pending = retrying.wait(fs, throw_except=False)
        assert not pending and [f.failure_count for f in done] == [3, 3]
        with pytest.raises(Deliberate):
            done[0].result()
        with pytest.raises(Deliberate):
            retrying.wait(retrying.map(always_fails, [2], retries=0))
        # A call that fails while too early, then succeeds: retried until it does.
        until = time.time() + 1.0
        fs = retrying.map(fails_until, [(7, until)], retries=50)
        done, pending = retrying.wait(fs)
        assert done[0].result() == 7 and not pending
    attempts = [f for f in fexec.futures if f.gust_future.job_id and f.done]
    assert len(attempts) >= 3 + 3 + 1 + 1 + done[0].failure_count


def test_task_uses_lithops(fexec):
    """Lithops inside Lithops: a task maps with gust.lithops, and a task that
    returns its futures gives their results (the sandbox channel)."""
    fexec.map(map_inside, [1, 2])
    assert fexec.get_result() == [[0], [0, 1]]
    f = fexec.call_async(return_futures, 3)
    assert fexec.get_result() == [1, 2, 3]
    assert f.futures and f.result() == [1, 2, 3]


def test_network_is_on_by_default(fexec, engine):
    """Lambda gives functions the internet, and Lithops code assumes it
    (docs/COMPAT.md); gust's own executor keeps it off."""
    assert fexec.gust_executor._core.config["network"] is True
    with_network = fexec.call_async(interfaces, 0).result()
    own = gust.FunctionExecutor(url=engine.url)
    without = own.get_result(own.call_async(interfaces, 0))
    assert without == ["lo"] and len(with_network) > 1


def test_module_layout(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("lithops:\n  backend: localhost\n  retries: 4\nlocalhost:\n  max_workers: 2\n")
    data = lithops.config.load_yaml_config(str(path))
    assert lithops.config.load_yaml_config(str(tmp_path / "missing")) == {}
    config = lithops.config.default_config(config_data=data,
                                           config_overwrite={"backend": {"runtime": "x"}})
    assert config["lithops"]["retries"] == 4 and config["localhost"]["runtime"] == "x"
    assert lithops.config.extract_storage_config(config) == {"backend": "gust", "gust": {}}
    obj = lithops.storage.utils.CloudObject("gust", "bucket", "key")
    assert str(obj) == "<CloudObject at gust://bucket/key>"
    assert lithops.utils.sizeof_fmt(1536) == "1.5KiB"
    assert lithops.utils.split_object_url("s3://b/d/k") == ("s3", "b", "d/", "k")
    assert list(lithops.utils.iterchunks([1, 2, 3], 2)) == [[1, 2], [3]]
    assert lithops.utils.is_lithops_worker() is False
    assert (lithops.ALWAYS, lithops.ANY_COMPLETED, lithops.ALL_COMPLETED) == (0, -1, 100)
    with pytest.raises(NotImplementedError, match="storage"):
        lithops.Storage()
    from gust.lithops.executors import LocalhostExecutor
    assert LocalhostExecutor is lithops.FunctionExecutor


def test_wait_return_when(fexec):
    fs = fexec.map(nap, [0, 0, 3])
    done, not_done = lithops.wait(fs, return_when=lithops.ANY_COMPLETED)
    assert done and len(done) + len(not_done) == 3
    done, not_done = lithops.wait(fs, return_when=60)          # 60%: 2 of 3
    assert len(done) >= 2
    done, not_done = fexec.wait(fs, return_when=lithops.ALL_COMPLETED)
    assert len(done) == 3 and not not_done
    assert lithops.get_result(fs) == [0, 0, 3]
    with pytest.raises(ValueError, match="return_when"):
        lithops.wait(fs, return_when="soon")
