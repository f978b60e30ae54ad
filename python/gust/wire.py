"""Byte formats of docs/MAP.md: the job submission body and the results stream.

Submit body: one JSON header line ending in "\\n", then per task a u32 LE length
followed by the task bytes (pickle of (args, kwargs)).

Results body: per result a fixed 72-byte head, u64 seq + u32 index + u32
status (0 ok, 1 error, 2 cancelled) + f64 t_start + f64 t_setup + f64 t_done +
f64 t_queued + f64 t_finished (epoch s, 0 = none) + u32 attempts + u32 flags
(bit 0: cold) + u32 meta length + u32 data length, then the meta JSON (the
strings: sandbox, request_id, error_type, error_message) and the data; all
little endian. A client routes a result by its head alone and reads the rest
only when someone looks at the task's stats. Kept free of I/O so the unit
tests can check it; the engine's half (reading a submit body, writing results)
is tests/python/fake_engine.py's.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Iterable, Iterator, Sequence

U32 = struct.Struct("<I")

# The largest task the engine accepts (a synchronous invoke's payload limit).
MAX_TASK_BYTES = 6 * 1024 * 1024


def encode_header(header: dict[str, Any]) -> bytes:
    """The submit body's first line: compact JSON, no newline inside, "\\n" at the end."""
    line = json.dumps(header, separators=(",", ":"), sort_keys=True)
    return line.encode("utf-8") + b"\n"


def iter_submit_body(header: dict[str, Any], tasks: Iterable[bytes],
                     block_size: int = 256 * 1024) -> Iterator[bytes]:
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

    def __init__(self, header: dict[str, Any], tasks: Sequence[bytes],
                 block_size: int = 256 * 1024) -> None:
        self.header = header
        self.tasks = tasks
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        return iter_submit_body(self.header, self.tasks, self.block_size)


RESULT_HEAD = struct.Struct("<QIIdddddIIII")
RESULT_HEAD_BYTES = RESULT_HEAD.size  # 72
# The head's fields a client routes by: seq, index, status, meta and data length.
RESULT_ROUTE = struct.Struct("<QII48xII")
STATUS_NAMES = ("ok", "error", "cancelled")


def result_meta(body: bytes, pos: int) -> dict[str, Any]:
    """Every field of the result whose frame starts at body[pos]: the meta JSON's
    members plus seq, index, status, the timestamps (None when unset),
    attempts and cold. ValueError if the frame or its JSON is malformed."""
    if len(body) - pos < RESULT_HEAD_BYTES:
        raise ValueError("result frame at byte %d is cut short" % pos)
    (seq, index, status, t_start, t_setup, t_done, t_queued, t_finished, attempts, flags,
     meta_len) = RESULT_HEAD.unpack_from(body, pos)[:11]
    start = pos + RESULT_HEAD_BYTES
    raw = body[start:start + meta_len]
    meta = json.loads(raw) if raw else {}
    if not isinstance(meta, dict):
        raise ValueError("result meta is not a JSON object: %r" % (bytes(raw[:80]),))
    meta.update(seq=seq, index=index,
                status=STATUS_NAMES[status] if status < len(STATUS_NAMES) else status,
                t_start=t_start or None, t_setup=t_setup or None, t_done=t_done or None,
                t_queued=t_queued or None, t_finished=t_finished or None,
                attempts=attempts, cold=bool(flags & 1))
    return meta
