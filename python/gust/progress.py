"""A tqdm progress bar (done / running / failed) shown while waiting on futures,
only when stderr is a terminal unless asked for explicitly."""

from __future__ import annotations

import concurrent.futures as cf
import sys
import time
from typing import Any, Sequence


def interactive() -> bool:
    """True when both stdout and stderr are terminals (a person is watching)."""
    try:
        return sys.stderr.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Context manager; update() refreshes the bar from the futures' states and
    (about once a second) the engine's running count of each job."""

    def __init__(self, fs: Sequence[cf.Future[Any]], show: bool | None = None) -> None:
        self.fs = fs
        self.show = interactive() if show is None else bool(show)
        self.bar: Any = None  # a tqdm bar while shown
        self._running: dict[Any, int] = {}
        self._last_status = 0.0

    @property
    def active(self) -> bool:
        return self.bar is not None

    def __enter__(self) -> Progress:
        if self.show and self.fs and not all(f.done() for f in self.fs):
            try:
                from tqdm import tqdm
            except ImportError:
                return self
            self.bar = tqdm(total=len(self.fs), unit="task", file=sys.stderr, leave=False,
                            dynamic_ncols=True)
            self.update()
        return self

    def update(self) -> None:
        if self.bar is None:
            return
        done = failed = 0
        for f in self.fs:
            if f.done():
                done += 1
                if f.cancelled() or f.exception(0) is not None:
                    failed += 1
        now = time.monotonic()
        if now - self._last_status >= 1.0:
            self._last_status = now
            for job in {j for j in (getattr(f, "job", None) for f in self.fs) if j is not None}:
                try:
                    self._running[job] = int(job.status().get("Running", 0))
                except Exception:  # noqa: B902 -- the bar must never break a wait
                    pass
        self.bar.n = done
        self.bar.set_postfix(running=sum(self._running.values()), failed=failed, refresh=False)
        self.bar.refresh()

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.update()
            self.bar.close()
            self.bar = None
