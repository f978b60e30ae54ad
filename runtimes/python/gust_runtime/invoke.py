"""The invoke loop of a sandbox (docs/RUNTIME_PROTOCOL.md): read a frame,
dispatch on its type. INVOKE decodes the event, calls handler(event,
context), encodes the result, flushes stdout/stderr and sends RESULT or
ERROR; a streaming invocation trades YIELD/RESUME frames meanwhile. EOF on
the control socket ends the loop.

One invocation at a time, in the sandbox's only thread.
"""

from __future__ import annotations

import json
import os
import sys

from . import logs, protocol
from .codec import (MARSHAL_ERROR, RESPONSE_TOO_LARGE, UNMARSHAL_ERROR, Fault,
                    error_from_exception, json_decode, json_encode)
from .context import LambdaContext

# typing only for the type checker: the runtime does not import it (import
# time in every sandbox that does not preload it).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

# Response payload limit of a synchronous invoke, as Lambda enforces it.

MAX_RESPONSE_BYTES = 6291556

# Rootless engines limit memory with RLIMIT_DATA instead of a cgroup: there a
# MemoryError means the function hit its memory size, and the sandbox ends
# with this exit code, which the engine reports as Runtime.OutOfMemory (as a
# cgroup OOM kill would be). None: MemoryError is an ordinary exception.
# Set by bootstrap.run from the sandbox's config.
oom_exit_code: int | None = None


def exit_if_out_of_memory(exc: BaseException) -> None:
    """Ends the sandbox with oom_exit_code if exc is a MemoryError and one is set."""
    if oom_exit_code is None or not isinstance(exc, MemoryError):
        return
    try:
        sys.stderr.write("MemoryError: the function reached its memory size (RLIMIT_DATA)\n")
        logs.flush_output()
    finally:
        os._exit(oom_exit_code)


class Runtime:
    """The invoke loop of one sandbox: reads frames and dispatches them by type.

    `dispatch` maps a frame type to a method taking the body (a memoryview). A
    map worker adds its own frame types here without touching the loop.
    """

    def __init__(self, conn: protocol.Connection, handler: Callable[[Any, Any], Any]) -> None:
        self.conn = conn
        self.handler = handler
        self.dispatch: dict[int, Callable[[memoryview], None]] = {
            protocol.INVOKE: self.on_invoke}

    def loop(self) -> int:
        """Serves frames until the engine closes the socket (returns 0) or sends
        a frame type nobody handles (returns 2)."""
        read_frame = self.conn.read_frame
        dispatch = self.dispatch
        while True:
            frame = read_frame()
            if frame is None:
                return 0  # the engine closed the control socket: clean exit
            ftype, body = frame
            on_frame = dispatch.get(ftype)
            if on_frame is None:
                sys.stderr.write("gust runtime: unexpected frame type %d\n" % ftype)
                logs.flush_output()
                return 2
            on_frame(body)

    def on_invoke(self, body: memoryview) -> None:
        """One invocation: RESULT or ERROR back; ProtocolError for a malformed frame."""
        try:
            (meta_len,) = protocol.U32.unpack_from(body, 0)
            meta = json_decode(body[4:4 + meta_len])
            if not isinstance(meta, dict):
                raise ValueError("meta is not a JSON object")
        except Exception as e:  # noqa: B902 -- a broken INVOKE is the engine's bug
            raise protocol.ProtocolError("malformed INVOKE frame: %s" % e) from None
        request_id = meta.get("request_id", "")
        logs.current_request_id = request_id
        try:
            context = LambdaContext(request_id, meta.get("deadline_ms", 0),
                                    meta.get("invoked_function_arn"),
                                    meta.get("client_context"))
            payload = body[4 + meta_len:]
            if meta.get("stream"):
                context.gust_yield = self.exchange
            event: Any
            if meta.get("raw_event"):
                event = bytes(payload)  # map jobs: the handler decodes its own bytes
            elif payload:
                try:
                    event = json_decode(payload)
                except Exception as e:  # noqa: B902 -- also UnicodeDecodeError
                    raise Fault(UNMARSHAL_ERROR,
                                "Unable to unmarshal input: {}".format(e)) from None
            else:
                event = {}  # Lambda substitutes {} for an empty payload
            result = self.handler(event, context)
            if isinstance(result, (bytes, bytearray)):
                out = bytes(result)  # raw bytes pass through, as in awslambdaric
            else:
                try:
                    out = json_encode(result)
                except Exception as e:  # noqa: B902 -- TypeError, ValueError (circular)...
                    raise Fault(MARSHAL_ERROR, "Unable to marshal response: {}".format(e)) from None
            if len(out) > MAX_RESPONSE_BYTES:
                raise Fault(RESPONSE_TOO_LARGE,
                            "Response payload size exceeded maximum allowed payload size "
                            "({} bytes).".format(MAX_RESPONSE_BYTES))
        except Exception as e:  # noqa: B902 -- every handler failure becomes an ERROR frame
            exit_if_out_of_memory(e)
            error = error_from_exception(e, request_id)
            logs.flush_output()
            self.conn.write_frame(protocol.ERROR, json.dumps(error).encode())
            return
        logs.flush_output()
        self.conn.write_frame(protocol.RESULT, out)

    def exchange(self, output: bytes) -> bytes | None:
        """A streaming invocation's round trip (docs/RUNTIME_PROTOCOL.md):
        sends partial output (YIELD) and returns the next input (RESUME), or
        None when the engine has no more."""
        self.conn.write_frame(protocol.YIELD, output)
        frame = self.conn.read_frame()
        if frame is None:
            raise protocol.ProtocolError("the engine closed the control socket while a "
                                         "streaming invocation waited for input")
        ftype, body = frame
        if ftype != protocol.RESUME:
            raise protocol.ProtocolError("expected RESUME after YIELD, got frame type %d" % ftype)
        return bytes(body) if len(body) else None
