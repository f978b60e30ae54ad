"""Lithops' wait and get_result (lithops.wait) over gust's futures.

Lithops' return_when is a percentage of done futures: ALWAYS (0), any
(ANY_COMPLETED, -1), all (ALL_COMPLETED, 100) or any integer between. gust's
own constants (gust.ALL_COMPLETED...) are accepted too. Both functions take
gust.lithops futures, gust futures or any concurrent.futures.Future, and
return gust.lithops futures for the first. Thread-safe: they only wait.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import time
from typing import Any

from .. import futures as gustfut
from .future import ResponseFuture, as_list, resolve_nested, returns_futures, unwrap

ALWAYS = 0
ANY_COMPLETED = -1
ALL_COMPLETED = 100

# Accepted for Lithops' signatures; the engine streams results, no polling.
THREADPOOL_SIZE = 64
WAIT_DUR_SEC = 1


def needed(return_when: Any, n: int) -> int:
    """How many of n futures must be done for return_when; ValueError for
    something that is neither Lithops' percentage nor gust's constant."""
    if return_when in (gustfut.ALWAYS,):
        return 0
    if return_when in (gustfut.ANY_COMPLETED,):
        return min(1, n)
    if return_when in (gustfut.ALL_COMPLETED,):
        return n
    if isinstance(return_when, int) and not isinstance(return_when, bool):
        if return_when == ANY_COMPLETED:
            return min(1, n)
        if 0 <= return_when <= 100:
            return math.ceil(n * return_when / 100)
    raise ValueError("return_when must be ALWAYS (0), ANY_COMPLETED (-1), ALL_COMPLETED (100) "
                     "or a percentage of done futures, not %r" % (return_when,))


def wait(fs: Any, throw_except: bool = True, return_when: Any = ALL_COMPLETED,
         download_results: bool = False, timeout: float | None = None,
         threadpool_size: int = THREADPOOL_SIZE, wait_dur_sec: float | None = None,
         show_progressbar: bool = True, **ignored: Any) -> tuple[list[Any], list[Any]]:
    """Waits for the futures fs (one, or an iterable) as Lithops' wait.

    return_when: ALL_COMPLETED (the default), ANY_COMPLETED, ALWAYS, or a
    percentage of fs that must be done. timeout: seconds (None, the
    default: no limit); when it passes, the state so far is returned.
    throw_except: True (the default) raises the exception of the first
    failed future among the done ones (in fs's order). show_progressbar:
    True shows gust's bar when stdout and stderr are terminals.
    download_results, threadpool_size and wait_dur_sec are accepted for
    Lithops' signature (results come with the state on gust).

    Returns (done, not_done), two lists in fs's order. Raises ValueError
    for another return_when."""
    futs = as_list(fs)
    inner = [unwrap(f) for f in futs]
    want = needed(return_when, len(futs))
    show = None if show_progressbar else False
    deadline = None if timeout is None else time.monotonic() + timeout
    if want >= len(futs):
        gustfut.wait(inner, gustfut.ALL_COMPLETED, timeout, show_progress=show)
    while want and sum(f.done() for f in inner) < want:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        pending = [f for f in inner if not f.done()]
        gustfut.wait(pending, gustfut.ANY_COMPLETED, left, show_progress=False)
    done = [f for f, g in zip(futs, inner) if g.done()]
    not_done = [f for f, g in zip(futs, inner) if not g.done()]
    if throw_except:
        for f in done:
            g = unwrap(f)
            if not g.cancelled() and g.exception(0) is not None:
                raise g.exception(0)
    return done, not_done


def get_result(fs: Any, throw_except: bool = True, timeout: float | None = None,
               threadpool_size: int = THREADPOOL_SIZE, wait_dur_sec: float | None = None,
               show_progressbar: bool = True, **ignored: Any) -> Any:
    """The results of fs: one future gives its value, an iterable of them a
    list in the same order. throw_except: True (the default) raises the first
    failed call's exception, False gives None for it. timeout: seconds to
    wait for all (None: no limit). A call that returned futures gives their
    results. Raises concurrent.futures.TimeoutError when some are unfinished
    after timeout."""
    single = isinstance(fs, (ResponseFuture, cf.Future))
    futs = as_list(fs)
    values = gustfut.get_all_results([unwrap(f) for f in futs], timeout=timeout,
                                     throw_except=throw_except,
                                     show_progress=None if show_progressbar else False)
    for i, value in enumerate(values):
        if returns_futures(value):  # the call mapped and returned its futures
            values[i] = resolve_nested(value, throw_except)
    return values[0] if single else values
