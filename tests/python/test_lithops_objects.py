"""gust.lithops.objects' pure parts: Lithops' chunking of objects into byte
ranges (chunk_ranges), the newline rule that gives each line to exactly one
chunk, read block by block (chunk_lines), and items bound to a function's
parameters."""
import io
import math
import random

import pytest

from gust.lithops import objects


def chunks_of(data, chunk_size=None, chunk_number=None, newline="\n", block=7):
    """Every chunk's bytes, as the tasks would read them (in blocks of 7 bytes
    here, so that lines and newlines straddle blocks)."""
    out = []
    for byte_range, size in objects.chunk_ranges(len(data), chunk_size, chunk_number, newline):
        if byte_range is None:
            out.append(data)
            continue
        first, last = byte_range
        f = io.BytesIO(data[first:last + 1])
        out.append(b"".join(objects.chunk_lines(f, first > 0, size, newline, block)))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_every_line_goes_to_exactly_one_chunk(seed):
    rnd = random.Random(seed)
    lines = [b"w" * rnd.randrange(0, 300) + b"\n" for _ in range(rnd.randrange(1, 400))]
    data = b"".join(lines)
    for chunk_size in (50, 301, 1000, len(data)):
        assert b"".join(chunks_of(data, chunk_size=chunk_size)) == data
    for n in (1, 2, 3, 7):
        parts = chunks_of(data, chunk_number=n)
        assert b"".join(parts) == data
        assert all(p == b"" or p.endswith(b"\n") for p in parts)
    crlf = data.replace(b"\n", b"\r\n")  # a newline of two bytes
    for chunk_size in (40, 333):
        assert b"".join(chunks_of(crlf, chunk_size=chunk_size, newline="\r\n")) == crlf
        assert b"".join(chunks_of(crlf, chunk_size=chunk_size, newline="\r\n",
                                  block=1 << 16)) == crlf


def test_counts_and_ranges_are_lithops():
    # Lithops' counts: ceil(size / chunk_size) parts, or chunk_number parts.
    size = 1_000_003
    assert len(objects.chunk_ranges(size, 64_000, None, "\n")) == math.ceil(size / 64_000)
    assert len(objects.chunk_ranges(size, None, 3, "\n")) == 3
    parts = objects.chunk_ranges(300_000, 100_000, None, "\n")
    assert parts == [((0, 100_000 + objects.CHUNK_THRESHOLD), 100_000),
                     ((99_999, 200_000 + objects.CHUNK_THRESHOLD), 100_000),
                     ((199_999, 299_999), 100_000)]
    assert objects.chunk_ranges(300_000, 100_000, None, None)[1] == ((100_000, 199_999), 100_000)
    assert objects.chunk_ranges(10, None, None, "\n") == [(None, 10)]
    assert objects.chunk_ranges(1, 100, None, "\n") == []  # as Lithops: too small to split
    # A last line without a newline stays in the last chunk.
    assert b"".join(chunks_of(b"a\nbb\nccc", chunk_size=3)) == b"a\nbb\nccc"


def test_items_bind_to_parameters_without_storage_and_id():
    def f(obj, extra=1, storage=None, id=None):
        return obj
    assert objects.item_dicts(f, ["b/k", ("b/k", 2), {"obj": "x", "extra": 3}]) == [
        {"obj": "b/k"}, {"obj": "b/k", "extra": 2}, {"obj": "x", "extra": 3}]
    with pytest.raises(TypeError, match="item 0"):
        objects.item_dicts(f, [(1, 2, 3)])
    assert objects.needs_wrapping(f) and not objects.needs_wrapping(lambda x: x)
