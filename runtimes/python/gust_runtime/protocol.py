"""Frame codec of the gust runtime protocol (docs/RUNTIME_PROTOCOL.md).

Every frame is an 8-byte header followed by `length` bytes of body:

    u32 length (little endian) | u8 type | u8 flags (0) | u16 reserved (0)

`Connection` reads and writes frames on the sandbox's control socket (fd 3).
It is built for the warm-invoke hot path: one recv_into a preallocated buffer
usually brings in the header and the whole body at once, and a reply is one
sendall. Only one frame is in flight per direction at a time (the engine never
pipelines), so no locking and no queueing.
"""

import socket
import struct

# Frame types. Engine -> runtime: below 10. Runtime -> engine: 10 and up.
# New frame types (e.g. a map worker's MAP_CHUNK) are added here and to the
# dispatch table in invoke.Runtime; the loop itself does not change.
INVOKE = 1
RESUME = 2  # more input for a streaming invocation (empty body: no more)
READY = 10
INIT_ERROR = 11
RESULT = 12
ERROR = 13
YIELD = 14  # partial output of a streaming invocation; the engine answers RESUME

HEADER = struct.Struct("<IBBH")
HEADER_BYTES = HEADER.size  # 8
U32 = struct.Struct("<I")

# Largest frame body accepted from the engine: a 6 MB payload plus its meta
# and slack (same bound as kMaxFrameBody in src/runtime/protocol.h).
MAX_BODY = 6 * 1024 * 1024 + 64 * 1024

# Frames up to this size are read into the connection's reusable buffer; larger
# ones get a buffer of their own. (Zero-filling it is one page fault per 4 KB
# in a sandbox forked on demand: 64 KB keeps that at 16.)
_BUFFER_BYTES = 64 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame, or hung up mid-frame."""


# A receive buffer allocated ahead of time by prewarm() (in a pre-forked
# sandbox, before it is assigned): zero-filling it is 16 page faults.
_spare_buffer = None


def prewarm():
    """Allocates the next Connection's buffer and exercises the socket paths."""
    global _spare_buffer
    if _spare_buffer is None:
        _spare_buffer = bytearray(_BUFFER_BYTES)
    a, b = socket.socketpair()
    try:
        a.setblocking(True)
        b.sendall(b"w")
        a.recv_into(memoryview(bytearray(8)))
    finally:
        a.close()
        b.close()


class Connection:
    """A framed, blocking connection over a stream socket fd (owned)."""

    __slots__ = ("_sock", "_buf", "_view", "_start", "_end")

    def __init__(self, fd):
        self._sock = socket.socket(fileno=fd)
        self._sock.setblocking(True)
        global _spare_buffer
        if _spare_buffer is not None:
            self._buf, _spare_buffer = _spare_buffer, None
        else:
            self._buf = bytearray(_BUFFER_BYTES)
        self._view = memoryview(self._buf)
        # Unconsumed bytes are self._buf[self._start:self._end].
        self._start = 0
        self._end = 0

    def fileno(self):
        return self._sock.fileno()

    def close(self):
        self._view.release()
        self._sock.close()

    def _fill(self, end, need):
        """recv_into the buffer from `end` until it holds `need` bytes; returns the new end."""
        recv_into = self._sock.recv_into
        view = self._view
        while end < need:
            n = recv_into(view[end:])
            if n == 0:
                return -1
            end += n
        return end

    def read_frame(self):
        """Returns (type, body) or None on a clean EOF between frames.

        body is a memoryview that stays valid only until the next read_frame.
        Raises ProtocolError on EOF inside a frame or an oversize body.
        """
        start, end = self._start, self._end
        if start:
            # Move leftover bytes (only if the peer pipelined) to the front.
            if start != end:
                self._buf[: end - start] = self._buf[start:end]
            end -= start
            start = 0
        if end < HEADER_BYTES:
            got = self._fill(end, HEADER_BYTES)
            if got < 0:
                self._start = self._end = 0
                if end == 0:
                    return None
                raise ProtocolError("control socket closed inside a frame header")
            end = got
        length, ftype, _flags, _reserved = HEADER.unpack_from(self._buf, 0)
        if length > MAX_BODY:
            raise ProtocolError(
                "frame body of %d bytes exceeds the maximum of %d" % (length, MAX_BODY))
        need = HEADER_BYTES + length
        if need <= _BUFFER_BYTES:
            if end < need:
                end = self._fill(end, need)
                if end < 0:
                    raise ProtocolError("control socket closed inside a frame body")
            self._start, self._end = (0, 0) if end == need else (need, end)
            return ftype, self._view[HEADER_BYTES:need]
        # A big frame: its own buffer, the already-received prefix copied in.
        body = bytearray(length)
        have = end - HEADER_BYTES
        body[:have] = self._buf[HEADER_BYTES:end]
        mv = memoryview(body)
        recv_into = self._sock.recv_into
        while have < length:
            n = recv_into(mv[have:])
            if n == 0:
                raise ProtocolError("control socket closed inside a frame body")
            have += n
        self._start = self._end = 0
        return ftype, mv

    def write_frame(self, ftype, body=b""):
        """Sends one frame; body is bytes-like."""
        header = HEADER.pack(len(body), ftype, 0, 0)
        if len(body) <= 65536:
            # One syscall; the copy of a small body is cheaper than a second send.
            self._sock.sendall(header + body)
        else:
            self._sock.sendall(header)
            self._sock.sendall(body)


def encode_frame(ftype, body=b""):
    """Header + body as bytes (for clients and tests)."""
    return HEADER.pack(len(body), ftype, 0, 0) + bytes(body)


def encode_invoke(meta_json, payload):
    """Body of an INVOKE frame: u32 meta length, meta JSON bytes, raw payload."""
    return U32.pack(len(meta_json)) + meta_json + payload
