"""What a sandbox's output looks like: Lambda's root logger
('[LEVEL]\\t<time>Z\\t<request id>\\t<message>') with the current request id,
line-buffered stdout/stderr, and the flush before every reply.

The handler's print() goes straight to fd 1 (a pipe the engine drains); the
runtime never captures it, it only makes stdout line-buffered and flushes both
streams before every reply, so the output precedes the frame. One invocation
runs at a time: `current_request_id` is a plain module global.
"""

import logging
import os
import sys
import time

# The request id the log records carry; set by the invoke loop.
current_request_id = ""


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = current_request_id
        return True


class _StdoutHandler(logging.Handler):
    """Writes to whatever sys.stdout is at the time (the handler may replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record))
        except Exception:  # noqa: B902 -- logging must never break an invocation
            self.handleError(record)


_logging_installed = False


def setup_logging() -> None:
    """The root logger Lambda installs: '[LEVEL]\\t<time>Z\\t<request id>\\t<message>'."""
    global _logging_installed
    if _logging_installed:  # prepare() may have done it already
        return
    _logging_installed = True
    logging.Formatter.converter = time.gmtime
    handler = _StdoutHandler()
    handler.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
        "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(_RequestIdFilter())
    logging.getLogger().addHandler(handler)


def apply_log_level() -> None:
    """The function's AWS_LAMBDA_LOG_LEVEL, if any (the handler is installed
    before the function's environment is known: in the zygote or a pool child)."""
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging._nameToLevel:  # pylint: disable=protected-access
        logging.getLogger().setLevel(level)


def reconfigure_streams() -> None:
    """print() lands in the engine's pipe line by line, like Lambda's unbuffered stdout."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if not stream.line_buffering:
                stream.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
        except (AttributeError, ValueError):
            pass


def flush_output() -> None:
    """Flushes stdout and stderr (before a reply frame); never raises."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: B902 -- a closed/broken stream must not stop the reply
            pass
