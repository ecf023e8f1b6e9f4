"""The loss chart of a trace: one line per member against the optimizer step (matplotlib, headless-safe)."""

from __future__ import annotations

import math

import matplotlib
import numpy as np

from gpviz.charts import new_figure
from gpviz.words import plural


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
    ax.set_title(f"Loss per member ({plural(n, 'member')})")
    return fig


def loss_series(ev: dict, summary, segments, n_members: int) -> dict:
    """Every member's loss at every recorded step, for the page's loss chart (drawn by gpviz.js).

    Args:
        ev: The tracer's event arrays (``t``, ``member``, ``loss``, ``seg``).
        summary: The tracer's :meth:`summary` (its ``converged_step`` per member).
        segments: The tracer's optimizer runs (each with its ``base`` timestep).
        n_members: Members traced.

    Returns:
        ``t``, ``v``, ``m``: equal-length arrays (timestep, loss, member) sorted by member
        then timestep; ``members``; ``converged``: per member the timestep it converged at
        by the summary's criterion (None if never; as :func:`loss_plot` marks it);
        ``retries``: timesteps where a retry attempt starts.
    """
    t = np.asarray(ev["t"])
    order = np.lexsort((t, ev["member"])) if len(t) else np.zeros(0, np.int64)
    converged: list = [None] * n_members
    if len(t) and segments:
        for m, row in enumerate(summary.itertuples(index=False)):
            sel = np.flatnonzero(ev["member"] == m)
            if math.isnan(row.converged_step) or not len(sel):
                continue
            last = segments[int(ev["seg"][sel[np.argmax(t[sel])]])]
            converged[m] = int(last.base + int(row.converged_step) - 1)
    return {"t": t[order].astype(np.int64), "v": np.asarray(ev["loss"])[order].astype(np.float64),
            "m": np.asarray(ev["member"])[order].astype(np.int64), "members": int(n_members),
            "converged": tuple(converged), "retries": tuple(int(s.base) for s in segments[1:])}
