"""How events, results and errors become bytes in a sandbox: a fast JSON codec
with json's exact results and messages, and Lambda's error document (its
errorType strings, the stack trace without the runtime's frames).

Stateless apart from the C encoder's circular-reference table; the runtime
runs one invocation at a time, so nothing here is thread-safe.
"""

from __future__ import annotations

import json
import os
import traceback

# typing only for the type checker: the runtime does not import it (import
# time in every sandbox that does not preload it).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))  # .../gust_runtime
_RUNTIME_PREFIX = _RUNTIME_DIR + os.sep

# errorType strings of Lambda's Python runtime.
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"


class Fault(Exception):
    """An error the runtime reports with a fixed errorType (Runtime.*, Function.*)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


# ---------------------------------------------------------------- JSON

# json.loads/json.dumps spend most of their time (1-2 us per call on a slow VM)
# in Python-level wrappers around the C scanner/encoder. The hot path calls the
# C functions directly and falls back to the full functions for anything
# unusual, so results and error messages stay exactly json's. (typeshed does
# not declare these C-level attributes.)
_scan_once = json.decoder.JSONDecoder().scan_once  # type: ignore[attr-defined]
_encoder_markers: dict[int, Any] = {}  # circular-reference detection, as json.dumps does
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode = (_c_make_encoder(_encoder_markers, json.JSONEncoder().default,
                             json.encoder.encode_basestring_ascii,  # type: ignore[attr-defined]
                             None, ": ", ", ", False, False, True)
             if _c_make_encoder is not None else None)


def json_decode(data: bytes | bytearray | memoryview) -> Any:
    """json.loads for a bytes-like UTF-8 document."""
    try:
        text = str(data, "utf-8")
    except UnicodeDecodeError:
        return json.loads(bytes(data))  # other encodings, or json's own error
    try:
        obj, end = _scan_once(text, 0)
    except Exception:  # noqa: B902 -- let json.loads raise its proper error
        return json.loads(text)
    if end != len(text):
        return json.loads(text)  # surrounding whitespace or trailing data
    return obj


def json_encode(obj: Any) -> bytes:
    """json.dumps(obj).encode() (ensure_ascii, ', ' and ': ' separators, NaN allowed)."""
    if _c_encode is None:
        return json.dumps(obj).encode()
    try:
        return "".join(_c_encode(obj, 0)).encode()
    except BaseException:  # noqa: B902 -- re-raised after the clean-up
        _encoder_markers.clear()  # a failed encode may leave entries behind
        raise


# ---------------------------------------------------------------- errors

def make_error(message: str | None, error_type: str | None, stack_trace: list[str] | None,
               request_id: str = "") -> dict[str, Any]:
    """The error document, in the field order Lambda returns it."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack_trace or [],
    }


def _is_runtime_frame(filename: str) -> bool:
    # co_filename keeps the path the module was imported by ("x/../gust_runtime").
    return os.path.abspath(filename).startswith(_RUNTIME_PREFIX)


def _is_import_machinery(filename: str) -> bool:
    return filename.startswith("<frozen importlib") or filename.endswith(
        os.sep + "importlib" + os.sep + "__init__.py")


def format_stack_trace(tb: Any) -> list[str]:
    """Lambda's stackTrace: one string per user frame, runtime frames removed.

    Frames are reduced to (file, line, function, source) tuples before
    formatting, as awslambdaric does, so Python 3.11's caret lines (^^^^) do
    not appear. Leading importlib frames (an exception raised while importing
    the handler module) are dropped too.
    """
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)
              if not _is_runtime_frame(f.filename)]
    i = 0
    while i < len(frames) and _is_import_machinery(frames[i][0]):
        i += 1
    # format_list takes plain tuples too (typeshed says FrameSummary only).
    return traceback.format_list(frames[i:])  # type: ignore[arg-type]


def error_from_exception(exc: BaseException, request_id: str = "") -> dict[str, Any]:
    """The error document of an exception: a Fault's own errorType and trace,
    else the exception's class name and its stack trace."""
    if isinstance(exc, Fault):
        return make_error(exc.message, exc.error_type, exc.trace, request_id)
    return make_error(str(exc), type(exc).__name__, format_stack_trace(exc.__traceback__),
                      request_id)
