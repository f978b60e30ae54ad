"""A tqdm progress bar (done / running / failed) shown while waiting on futures,
only when stderr is a terminal unless asked for explicitly."""

import sys
import time


def interactive():
    """True when both stdout and stderr are terminals (a person is watching)."""
    try:
        return sys.stderr.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Context manager; update() refreshes the bar from the futures' states and
    (about once a second) the engine's running count of each job."""

    def __init__(self, fs, show=None):
        self.fs = fs
        self.show = interactive() if show is None else bool(show)
        self.bar = None
        self._running = {}
        self._last_status = 0.0

    @property
    def active(self):
        return self.bar is not None

    def __enter__(self):
        if self.show and self.fs and not all(f.done() for f in self.fs):
            try:
                from tqdm import tqdm
            except ImportError:
                return self
            self.bar = tqdm(total=len(self.fs), unit="task", file=sys.stderr, leave=False,
                            dynamic_ncols=True)
            self.update()
        return self

    def update(self):
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
            for job in {getattr(f, "job", None) for f in self.fs} - {None}:
                try:
                    self._running[job] = int(job.status().get("Running", 0))
                except Exception:  # noqa: B902 -- the bar must never break a wait
                    pass
        self.bar.n = done
        self.bar.set_postfix(running=sum(self._running.values()), failed=failed, refresh=False)
        self.bar.refresh()

    def __exit__(self, *exc):
        if self.bar is not None:
            self.update()
            self.bar.close()
            self.bar = None
