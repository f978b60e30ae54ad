"""Pywren's map figure: a per-task timeline (host submit, task start, setup
done, task done, result returned) and a histogram of task durations."""

from __future__ import annotations

import concurrent.futures as cf
import os
from typing import Any, Iterable


def _stats_rows(fs: Iterable[cf.Future[Any]]) -> list[dict[str, Any]]:
    stats = (getattr(f, "stats", None) for f in fs)
    rows = [s for s in stats if s and s.get("task_done")]
    if not rows:
        raise ValueError("no finished task has timing stats to plot")
    return rows


def plot(fs: Iterable[cf.Future[Any]], dst: str | None = None) -> tuple[str, str]:
    """Writes <dst>_timeline.png and <dst>_histogram.png (dst defaults to
    ./gust_plot) and returns the two paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _stats_rows(fs)
    origin = min(r.get("host_submit") or r["task_start"] for r in rows)
    dst = dst or "gust_plot"
    base = dst[:-4] if dst.endswith(".png") else dst
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    series = [("host submit", "host_submit", "tab:gray"), ("task start", "task_start", "tab:blue"),
              ("setup done", "setup_done", "tab:orange"), ("task done", "task_done", "tab:green"),
              ("result returned", "result_returned", "tab:red")]

    fig, ax = plt.subplots(figsize=(8, 5))
    for label, key, color in series:
        xs = [r[key] - origin for r in rows if r.get(key)]
        ys = [i for i, r in enumerate(rows) if r.get(key)]
        ax.scatter(xs, ys, s=8, label=label, color=color)
    ax.set_xlabel("time since the first submit (s)")
    ax.set_ylabel("task")
    ax.set_title("gust map: %d tasks" % len(rows))
    ax.legend(loc="lower right")
    timeline = base + "_timeline.png"
    fig.tight_layout()
    fig.savefig(timeline, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    durations = [r["task_done"] - r["task_start"] for r in rows if r.get("task_start")]
    totals = [r["result_returned"] - r["host_submit"] for r in rows
              if r.get("result_returned") and r.get("host_submit")]
    ax.hist(durations, bins=30, alpha=0.7, label="task running (start -> done)")
    if totals:
        ax.hist(totals, bins=30, alpha=0.5, label="end to end (submit -> result)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("tasks")
    ax.legend()
    histogram = base + "_histogram.png"
    fig.tight_layout()
    fig.savefig(histogram, dpi=100)
    plt.close(fig)
    return timeline, histogram
