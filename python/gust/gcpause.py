"""gc_paused(): the cyclic garbage collector held off while the client does
bulk work of its own (pickling a map's arguments, building its futures,
routing a body of results).

Why: a 10,000-task map allocates tens of thousands of container objects in
a few milliseconds; with the collector on, those allocations trigger
collections that walk every live object of the user's process (a full one
over 200k objects costs ~30 ms, more than the whole map's client work). The
work paused here creates no reference cycles of its own, so nothing is left
for the collector that it would have freed.

Thread-safe: the pause is counted across threads (the results poller and
the caller's thread may pause at once); the collector is re-enabled when the
last pause ends, and only if it was enabled when the first began (a user
who disabled it keeps it disabled).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """A context manager: the cyclic GC is off inside it (see the module docstring)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
