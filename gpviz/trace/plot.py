"""The loss chart of a trace: one line per member against the optimizer step (matplotlib, headless-safe)."""

from __future__ import annotations

import math

import matplotlib
import numpy as np

from gpviz.charts import new_figure


def _colormap(n: int):
    cmap = matplotlib.colormaps["viridis"]
    return lambda i: cmap(i / max(n - 1, 1))


def loss_plot(ev: dict, summary, segments, n_members: int, ax=None):
    """Loss per member against the timestep.

    Each member's line stops where it stopped being optimized; a dot marks where
    it converged by its own criterion (:func:`gpviz.trace.summary.summarize`);
    dashed lines mark retries.

    Args:
        ev: The tracer's events.
        summary: Its per-member summary.
        segments: Its optimizer runs.
        n_members: Members traced.
        ax: A matplotlib axes to draw into (default: a new figure).

    Returns:
        The matplotlib ``Figure``.
    """


    fig = ax.figure if ax is not None else new_figure(7.0, 4.0)
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    summ = summary if len(ev["t"]) else None
    n = n_members
    cmap = _colormap(n)
    for m in range(n):
        sel = np.flatnonzero(ev["member"] == m)
        if not len(sel):
            continue
        order = sel[np.argsort(ev["t"][sel], kind="stable")]
        ax.plot(ev["t"][order], ev["loss"][order], lw=1.0, color=cmap(m), alpha=0.8)
        if summ is not None:
            row = summ.iloc[m]
            if not math.isnan(row["converged_step"]):
                last = segments[int(ev["seg"][order[-1]])] if segments else None
                if last is not None:
                    t = last.base + int(row["converged_step"]) - 1
                    hit = order[ev["t"][order] == t]
                    if len(hit):
                        ax.plot([t], [ev["loss"][hit[0]]], "o", ms=3, color=cmap(m))
    for s in segments[1:]:
        ax.axvline(s.base - 0.5, color="0.5", ls="--", lw=0.8)
    ax.set_xlabel("timestep (optimizer steps, all attempts)")
    ax.set_ylabel("loss (negative MLL)")
    ax.set_title(f"Loss per member ({n} member{'s' if n != 1 else ''})")
    return fig
