"""Argument normalisation (Lithops' rules) and the byte formats of docs/MAP.md."""

import json
import struct

import pytest

from fake_engine import decode_submit_body, encode_result
from gust import args, wire


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
    assert args.normalize_iterdata(two, [1, 2], extra_args=(10,)) == [((1,), {}), ((2,), {})]
    assert args.normalize_iterdata(two, [1], extra_args={"b": 3}) == [((1,), {})]
    with pytest.raises(TypeError, match="extra_args must be"):
        args.normalize_iterdata(two, [1], extra_args=5)


def test_apply_extra_args():
    assert args.apply_extra_args((1,), {}, (2,)) == ((1, 2), {})
    assert args.apply_extra_args((1,), {"x": 1}, {"y": 2}) == ((1,), {"x": 1, "y": 2})
    assert args.apply_extra_args((1,), {}, None) == ((1,), {})


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


def test_results_decoder_handles_split_frames():
    statuses = ["ok", "error", "cancelled", "ok", "ok"]
    frames = [(i + 1, i, statuses[i],
               {"attempts": 1, "t_done": 1.5, "cold": i == 0, "sandbox": "sb-%d" % i},
               b"d" * i) for i in range(5)]
    stream = b"".join(encode_result(*f) for f in frames)
    dec = wire.ResultDecoder()
    got = []
    for i in range(0, len(stream), 7):
        got += dec.feed(stream[i:i + 7])
    assert dec.pending == 0
    assert [(seq, index, status, data) for seq, index, status, _, data in got] == \
        [(seq, index, status, data) for seq, index, status, _, data in frames]
    # Every field comes back: the binary ones (unset timestamps as None) and the JSON's.
    seq, index, status, meta, _ = got[1]
    assert meta == {"seq": 2, "index": 1, "status": "error", "attempts": 1, "cold": False,
                    "t_start": None, "t_setup": None, "t_done": 1.5, "t_queued": None,
                    "t_finished": None, "sandbox": "sb-1"}
    assert got[0][3]["cold"] is True


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
    with pytest.raises(ValueError, match="ends inside a frame"):
        wire.decode_results(stream[:-1])


def test_results_unknown_status_raises():
    stream = bytearray(encode_result(1, 0, "ok", {}, b""))
    stream[12] = 7
    with pytest.raises(ValueError, match="unknown status 7"):
        wire.decode_results(bytes(stream))
