"""gust.lithops.objects' parts that need no engine: Lithops' chunking of
objects into byte ranges (chunk_ranges), the newline rule that gives each
line to exactly one chunk, read block by block (chunk_lines), items bound to
a function's parameters, and object URLs partitioned in the client and
loaded as their tasks load them, from a real HTTP server (range_server)."""
import io
import math
import random

import pytest
from range_server import FileServer

from gust.lithops import objects
from gust.lithops.storage.utils import CloudObjectUrl


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


def url_partition(urls, chunk_size=None, chunk_number=None, newline="\n", network=True):
    """objects.partition of obj URLs (no storage: URLs need none)."""
    return objects.partition(None, [{"obj": u} for u in urls], chunk_size, chunk_number,
                             newline, network)


def loaded(tasks):
    """{url: the bytes its tasks read, in order}, each task loaded as in its sandbox."""
    out = {}
    for task in tasks:
        obj = task["obj"]
        objects.load(None, obj)
        out[obj.url] = out.get(obj.url, b"") + obj.data_stream.read()
        obj.data_stream.close()
    return out


def test_url_parts_are_lithops_and_cover_every_line_once():
    rnd = random.Random(7)
    big = b"".join(b"w" * rnd.randrange(0, 900) + b"\n" for _ in range(900))  # > 2 thresholds
    files = {"big.txt": big, "small.txt": b"one two\nthree\n"}
    with FileServer(files) as server:
        urls = [server.url("big.txt"), server.url("small.txt")]
        for kwargs in ({}, {"chunk_size": 100_000}, {"chunk_number": 3},
                       {"chunk_size": 70_000, "newline": None}):
            tasks, parts, buckets = url_partition(urls + [CloudObjectUrl(urls[0])], **kwargs)
            want = [objects.chunk_ranges(len(big), kwargs.get("chunk_size"),
                                         kwargs.get("chunk_number"), kwargs.get("newline", "\n")),
                    objects.chunk_ranges(len(files["small.txt"]), kwargs.get("chunk_size"),
                                         kwargs.get("chunk_number"), kwargs.get("newline", "\n"))]
            want.append(want[0])
            assert parts == [len(w) for w in want] and buckets == set()
            objs = [t["obj"] for t in tasks]
            assert all(isinstance(o, CloudObjectUrl) for o in objs)
            assert [(o.data_byte_range, o.chunk_size) for o in objs] == sum(want, [])
            assert [(o.part, o.total_parts) for o in objs[:parts[0]]] == \
                [(n, parts[0]) for n in range(1, parts[0] + 1)]
            whole = {urls[0]: big, urls[1]: files["small.txt"]}
            assert loaded(tasks[:parts[0] + parts[1]]) == whole, kwargs
        # One HEAD per distinct URL per partition, in the client; the tasks GET with Range.
        heads = [r for r in server.requests if r[0] == "HEAD"]
        assert len(heads) == 4 * 2 and {r[2] for r in heads} == {None}
        assert any(r[0] == "GET" and r[2] == "bytes=0-%d" % (100_000 + objects.CHUNK_THRESHOLD)
                   for r in server.requests)
        # A loaded chunk's data_byte_range is its own bytes (Lithops' jobrunner).
        tasks, _, _ = url_partition([urls[0]], chunk_size=100_000)
        objects.load(None, tasks[1]["obj"])
        assert tasks[1]["obj"].data_byte_range == (99_999, 199_998)


def test_url_servers_gust_lithops_refuses_or_reads_whole():
    data = b"".join(b"line %d\n" % i for i in range(30_000))
    # No Accept-Ranges: one task reading the whole URL, whatever the chunking (as Lithops).
    with FileServer({"f": data}, accept_ranges=False) as server:
        tasks, parts, _ = url_partition([server.url("f")], chunk_number=4)
        assert parts == [1] and tasks[0]["obj"].data_byte_range is None
        assert loaded(tasks) == {server.url("f"): data}
    # No Content-Length: nothing to size the tasks by (Lithops makes none, silently).
    with FileServer({"f": data}, content_length=False) as server:
        with pytest.raises(ValueError, match="no Content-Length") as e:
            url_partition([server.url("f")])
        assert server.url("f") in str(e.value)
    # Accept-Ranges said, Range ignored: each chunk would read the whole file.
    with FileServer({"f": data}, honour_range=False) as server:
        tasks, parts, _ = url_partition([server.url("f")], chunk_number=2)
        assert parts == [2]
        with pytest.raises(OSError, match="not 206") as e:
            objects.load(None, tasks[0]["obj"])
        assert server.url("f") in str(e.value)
        # Missing: the HEAD's status, named with the URL; in a task, the GET's.
        with pytest.raises(ValueError, match="HEAD request failed.*404") as e:
            url_partition([server.url("missing")])
        assert server.url("missing") in str(e.value)
        obj = CloudObjectUrl(server.url("missing"))
        with pytest.raises(OSError, match="GET failed.*404"):
            objects.load(None, obj)
        # Without network the task could not fetch it: refused before any request.
        before = len(server.requests)
        with pytest.raises(ValueError, match="network=False") as e:
            url_partition(["x/y", server.url("f")], network=False)
        assert server.url("f") in str(e.value) and len(server.requests) == before
    # A bucket whose name starts with "http" is a bucket, a local path still refused.
    assert not objects.is_url("httpdata/key") and objects.is_url("HTTPS://h/k")
    with pytest.raises(ValueError, match="not local paths"):
        url_partition(["/tmp/data.txt"])
