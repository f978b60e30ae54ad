"""Byte formats of docs/MAP.md: the job submission body and the results stream.

Submit body: one JSON header line ending in "\\n", then per task a u32 LE length
followed by the task bytes (pickle of (args, kwargs)).

Results body: per result u64 seq + u32 index + u32 status (0 ok, 1 error,
2 cancelled) + u32 meta length + meta JSON + u32 data length + data, all little
endian. The meta JSON (timestamps, sandbox, attempts, errors) is parsed only
when someone looks at it. Kept free of I/O so the unit tests can check both
directions.
"""

import json
import struct

U32 = struct.Struct("<I")

# The largest task the engine accepts (a synchronous invoke's payload limit).
MAX_TASK_BYTES = 6 * 1024 * 1024


def encode_header(header):
    """The submit body's first line: compact JSON, no newline inside, "\\n" at the end."""
    line = json.dumps(header, separators=(",", ":"), sort_keys=True)
    return line.encode("utf-8") + b"\n"


def encode_task(task_bytes):
    """One task frame: u32 LE length + bytes."""
    return U32.pack(len(task_bytes)) + task_bytes


def iter_submit_body(header, tasks, block_size=256 * 1024):
    """Yields the submit body in blocks of about `block_size` bytes, so a map of
    100k tasks streams (chunked transfer encoding) instead of being built whole."""
    buf = bytearray(encode_header(header))
    for task in tasks:
        buf += U32.pack(len(task))
        buf += task
        if len(buf) >= block_size:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


class SubmitBody:
    """The submit body as a re-iterable object: http.client streams it with
    chunked encoding, and a retry (stale keep-alive connection) iterates anew."""

    def __init__(self, header, tasks, block_size=256 * 1024):
        self.header = header
        self.tasks = tasks
        self.block_size = block_size

    def __iter__(self):
        return iter_submit_body(self.header, self.tasks, self.block_size)


def decode_submit_body(body):
    """(header dict, [task bytes]) from a submit body; the inverse of iter_submit_body.
    Used by tests and by anyone checking what the client sends."""
    newline = body.index(b"\n")
    header = json.loads(body[:newline])
    tasks = []
    pos = newline + 1
    while pos < len(body):
        if pos + 4 > len(body):
            raise ValueError("truncated task length at byte %d" % pos)
        (n,) = U32.unpack_from(body, pos)
        pos += 4
        if pos + n > len(body):
            raise ValueError("truncated task at byte %d: %d bytes announced, %d left"
                             % (pos, n, len(body) - pos))
        tasks.append(bytes(body[pos:pos + n]))
        pos += n
    return header, tasks


RESULT_HEAD = struct.Struct("<QIII")  # seq, index, status, meta length
STATUS_NAMES = ("ok", "error", "cancelled")
_STATUS_CODES = {name: code for code, name in enumerate(STATUS_NAMES)}


def encode_result(seq, index, status, meta=None, data=b""):
    """One result frame, as the engine sends it (meta: a dict or JSON bytes)."""
    if not isinstance(meta, (bytes, bytearray)):
        meta = json.dumps(meta or {}, separators=(",", ":")).encode("utf-8")
    return (RESULT_HEAD.pack(seq, index, _STATUS_CODES[status], len(meta)) + meta
            + U32.pack(len(data)) + data)


def parse_meta(raw, seq=None, index=None, status=None):
    """The meta dict of a result (its JSON object, with seq/index/status added)."""
    meta = json.loads(raw) if raw else {}
    if not isinstance(meta, dict):
        raise ValueError("result meta is not a JSON object: %r" % (bytes(raw[:80]),))
    if seq is not None:
        meta["seq"] = seq
    if index is not None:
        meta["index"] = index
    if status is not None:
        meta["status"] = status
    return meta


class ResultDecoder:
    """Incremental decoder of the results stream.

    feed(bytes) returns the complete results seen so far as
    (seq, index, status name, meta JSON bytes, data bytes); a partial frame
    stays buffered until the rest arrives. `pending` is the number of buffered
    bytes (non-zero at the end of a response = truncated).
    """

    def __init__(self):
        self._rest = b""

    @property
    def pending(self):
        return len(self._rest)

    def feed(self, data):
        buf = self._rest + bytes(data) if self._rest else bytes(data)
        out = []
        n = len(buf)
        pos = 0
        head = RESULT_HEAD.unpack_from
        u32 = U32.unpack_from
        names = STATUS_NAMES
        while n - pos >= 20:
            seq, index, status, meta_len = head(buf, pos)
            meta_end = pos + 20 + meta_len
            if n < meta_end + 4:
                break
            (data_len,) = u32(buf, meta_end)
            end = meta_end + 4 + data_len
            if n < end:
                break
            if status >= len(names):
                raise ValueError("result %d has unknown status %d" % (seq, status))
            out.append((seq, index, names[status], buf[pos + 20:meta_end],
                        buf[meta_end + 4:end]))
            pos = end
        self._rest = buf[pos:]
        return out


def decode_results(body):
    """All results of one complete response body; raises ValueError if truncated."""
    dec = ResultDecoder()
    out = dec.feed(body)
    if dec.pending:
        raise ValueError("results body ends inside a frame (%d bytes left over)" % dec.pending)
    return out
