"""The loss series of a trace: every member's loss at every recorded step, as data (drawn by gpviz.js and by
:func:`gpviz.charts.loss_plot`)."""

from __future__ import annotations

import math

import numpy as np


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
        by the summary's criterion (None if never; as :func:`gpviz.charts.loss_plot` marks it);
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
