"""Argument normalisation (Lithops' rules) and the byte formats of docs/MAP.md:
the client's half against the fake engine's (fake_engine.py), and results
bodies through the client's real decoder (Job._take)."""

import json
import pickle
import struct

import pytest

from fake_engine import decode_submit_body, encode_result
from gust import args, executor, wire
from gust.errors import TaskExitError
from gust.job import Job


def one(x):
    return x


def two(a, b=0):
    return a, b


def kw_only(**kwargs):
    return kwargs


def test_plain_item_is_the_single_argument():
    assert args.normalize_item(one, 5) == ((5,), {})


def test_tuple_and_list_are_positional_when_they_bind():
    assert args.normalize_item(two, (1, 2)) == ((1, 2), {})
    assert args.normalize_item(two, [1, 2]) == ((1, 2), {})
    assert args.normalize_item(one, (7,)) == ((7,), {})


def test_list_that_does_not_bind_is_one_argument():
    # Pywren's scrape_batch(batch) over a list of batches
    assert args.normalize_item(one, [1, 2, 3]) == (([1, 2, 3],), {})


def test_dict_is_kwargs_when_keys_name_parameters():
    assert args.normalize_item(two, {"a": 1, "b": 2}) == ((), {"a": 1, "b": 2})
    assert args.normalize_item(kw_only, {"z": 1}) == ((), {"z": 1})


def test_dict_keys_naming_var_parameters_unpack_them():
    # Lithops' worker: {"args": ...} fills *args, {"kwargs": ...} **kwargs, by their names.
    def total(a, b, c=0, *rest, d, **options):
        return a

    def wrapper(*args, **kwargs):
        return total(*args, **kwargs)
    assert args.normalize_item(total, {"rest": (1, 2, 3, 4), "d": 5}) == ((1, 2, 3, 4), {"d": 5})
    assert args.normalize_item(total, {"a": 1, "b": 2, "d": 3, "options": {"f": 6}}) == (
        (), {"a": 1, "b": 2, "d": 3, "f": 6})
    assert args.normalize_item(wrapper, {"args": (1, 2), "kwargs": {"d": 3}, "e": 4}) == (
        (1, 2), {"d": 3, "e": 4})
    # A value of another type is no unpacking: the key stays a keyword.
    assert args.normalize_item(wrapper, {"args": 7}) == ((), {"args": 7})


def test_dict_not_naming_parameters_is_one_argument():
    # the article: train_model(hyperparams) over [{"n_neighbors": k}]
    def train_model(hyperparams):
        return hyperparams
    assert args.normalize_item(train_model, {"n_neighbors": 3}) == (({"n_neighbors": 3},), {})


def need_two(a, b):
    return a, b


def test_item_that_fits_nothing_names_function_and_item():
    with pytest.raises(TypeError, match=r"need_two\(a, b\).*\(1, 2, 3\)"):
        args.normalize_item(need_two, (1, 2, 3))


def test_extra_args_are_checked_against_the_signature():
    assert args.normalize_item(two, 1, extra_args=(10,)) == ((1,), {})
    assert args.normalize_item(two, 1, extra_args={"b": 3}) == ((1,), {})
    with pytest.raises(TypeError, match="cannot call need_two"):
        args.normalize_item(need_two, 1, extra_args={"c": 3})
    # What FunctionExecutor.map pickles: every item's (args, kwargs), extra_args apart;
    # (2, 3) + (10,) would not bind two(a, b), so that tuple is the single argument.
    tasks = executor.pickle_items(two, [1, (2,), (2, 3)], extra_args=(10,))
    assert [pickle.loads(t) for t in tasks] == [((1,), {}), ((2,), {}), (((2, 3),), {})]
    with pytest.raises(TypeError, match="extra_args must be"):
        executor.pickle_items(two, [1], extra_args=5)


def test_builtin_without_signature_uses_plain_rules():
    assert args.normalize_item(max, (1, 2)) == ((1, 2), {})


def test_submit_body_round_trip_in_blocks():
    header = {"code": "ab" * 32, "python": "3.11", "memory": 256}
    tasks = [bytes([i]) * (i * 1000) for i in range(50)]
    blocks = list(wire.iter_submit_body(header, tasks, block_size=4096))
    assert len(blocks) > 1
    body = b"".join(blocks)
    assert body.index(b"\n") == len(json.dumps(header, separators=(",", ":"))), "one header line"
    got_header, got_tasks = decode_submit_body(body)
    assert got_header == header and got_tasks == tasks


def test_submit_body_truncated_is_detected():
    body = b"".join(wire.iter_submit_body({"code": "x"}, [b"abcdef"]))
    with pytest.raises(ValueError, match="truncated"):
        decode_submit_body(body[:-2])


def take(n_tasks, body):
    """A results body through the client's decoder: the futures of a job of
    n_tasks (not polling: no engine) resolved from it."""
    job = Job(None, "job-1", n_tasks)  # _take needs no transport
    job._take(body)
    return job


def test_results_body_resolves_futures_in_any_order():
    statuses = ["ok", "error", "cancelled", "ok", "ok"]
    frames = [(i + 1, i, statuses[i],
               {"attempts": 1, "t_done": 1.5, "cold": i == 0, "sandbox": "sb-%d" % i,
                "error_type": "Runtime.ExitError" if statuses[i] == "error" else None},
               pickle.dumps(i * 10) if statuses[i] == "ok" else b"")
              for i in (4, 0, 2, 1, 3)]
    job = take(5, b"".join(encode_result(*f) for f in frames))
    assert job.after == 5
    fs = job.futures
    assert [fs[i].result(0) for i in (0, 3, 4)] == [0, 30, 40]
    assert fs[2].cancelled()
    with pytest.raises(TaskExitError):
        fs[1].result(0)
    # Every field comes back: the binary ones (unset timestamps as None) and the JSON's.
    stats = fs[1].stats
    assert {k: stats[k] for k in ("task_start", "task_done", "attempts", "cold", "sandbox",
                                  "status")} == {"task_start": None, "task_done": 1.5,
                                                 "attempts": 1, "cold": False,
                                                 "sandbox": "sb-1", "status": "error"}
    assert fs[0].stats["cold"] is True


def test_result_frame_layout():
    """The 72-byte head of docs/MAP.md, then the meta JSON and the data."""
    frame = encode_result(9, 4, "error", {"t_start": 1.25, "t_queued": 0.5, "attempts": 3,
                                          "cold": True, "error_type": "KeyError"}, b"xy")
    head = struct.unpack_from("<QIIdddddIIII", frame, 0)
    meta = b'{"error_type":"KeyError"}'
    assert head == (9, 4, 1, 1.25, 0.0, 0.0, 0.5, 0.0, 3, 1, len(meta), 2)
    assert frame[72:] == meta + b"xy"
    assert wire.result_meta(frame, 0)["error_type"] == "KeyError"


def test_results_truncated_body_raises():
    stream = encode_result(1, 0, "ok", {}, b"abc")
    with pytest.raises(ValueError, match="ends inside result 1"):
        take(1, stream[:-1])
    with pytest.raises(ValueError, match="ends inside a frame header"):
        take(1, stream[:40])


def test_results_unknown_status_raises():
    stream = bytearray(encode_result(1, 0, "ok", {}, b""))
    stream[12] = 7
    with pytest.raises(ValueError, match="unknown status 7"):
        take(1, bytes(stream))
