"""A tqdm progress bar (done / running / failed) shown while waiting on futures,
by default when a person is watching: stdout and stderr are terminals, or the
code runs in a Jupyter kernel (where they are not terminals, but the cell's
output is watched). In Jupyter the bar is tqdm's notebook widget when
ipywidgets is installed, else tqdm's text bar, which the notebook also draws."""

from __future__ import annotations

import concurrent.futures as cf
import importlib.util
import sys
import time
from typing import Any, Sequence


def in_jupyter() -> bool:
    """True inside a Jupyter (ipykernel) kernel. Looks only at modules already
    loaded: a script that never imported IPython must not pay for importing it
    (nor have it imported behind its back)."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if get_ipython is None:
        return False
    try:
        shell = get_ipython()
    except Exception:  # noqa: B902 -- a broken shell is not a notebook
        return False
    # ZMQInteractiveShell is ipykernel's shell (notebooks, JupyterLab, VS Code);
    # TerminalInteractiveShell (plain `ipython`) has terminals, seen below.
    return shell is not None and (type(shell).__name__ == "ZMQInteractiveShell"
                                  or getattr(shell, "kernel", None) is not None)


def interactive() -> bool:
    """True when a person is watching: both stdout and stderr are terminals,
    or this is a Jupyter kernel."""
    try:
        if sys.stderr.isatty() and sys.stdout.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    return in_jupyter()


def bar_class() -> Any:
    """tqdm's notebook bar in Jupyter when ipywidgets is there (its widget
    needs it), else tqdm's text bar; None without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    if in_jupyter() and importlib.util.find_spec("ipywidgets") is not None:
        try:
            from tqdm.notebook import tqdm as notebook_tqdm
            return notebook_tqdm
        except ImportError:
            pass
    return tqdm


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
            tqdm = bar_class()
            if tqdm is None:
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
