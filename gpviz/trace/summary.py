"""Summary statistics of a trace: when each member converged, how much work the fit did, which steps a page shows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gpviz.values.columns import I_MODEL

#: The player advances one step per 200 ms: 300 timesteps play in one minute.
MAX_TIMESTEPS = 300
#: Budget for the frame data inlined in an animated page (base64 adds a third).
MAX_PAGE_DATA_BYTES = 6_000_000


def summarize(ev: dict, groups, segments, loss_tol: float = 1e-3, param_rtol: float = 1e-2) -> pd.DataFrame:
    """Per member: when it converged by its own criterion, and how much work the fit did.

    A member has converged at the first step from which on its loss stays within
    ``loss_tol`` of its final loss and every parameter within ``param_rtol``
    (relative, floored at 1e-3 in absolute terms) of its final value. Only the
    final attempt of each model counts for convergence; evaluations of failed
    attempts count as computed.

    Args:
        ev: The tracer's events (:meth:`gpviz.trace.store.Recorder.arrays`).
        groups: The traced groups (:class:`gpviz.trace.reader.Group`).
        segments: The optimizer runs (:class:`gpviz.trace.reader.Segment`).
        loss_tol: Absolute loss tolerance of the convergence criterion.
        param_rtol: Relative parameter tolerance of the convergence criterion.

    Returns:
        One row per member: ``i_model, steps, converged_step, converged_evaluation,
        evaluations`` (batch evaluations it was computed in, all attempts),
        ``final_loss``. ``attrs`` holds the batch totals: ``evaluations``,
        ``member_evaluations_computed``, ``member_evaluations_needed``, ``waste``
        (computed / needed).
    """
    rows = []
    total_evals = 0.0
    computed = 0.0
    for gi, grp in enumerate(groups):
        segs = [i for i, s in enumerate(segments) if s.group == gi]
        # counted at the MLL (context form), else the optimizer's own counts per run
        g_evals = float(grp.evals) if grp.evals else float(sum(segments[i].max_evaluation for i in segs))
        total_evals += g_evals
        computed += g_evals * grp.n
        last = segs[-1] if segs else None
        for m in range(grp.n):
            member = grp.offset + m
            sel = np.flatnonzero((ev["seg"] == last) & (ev["member"] == member)) if last is not None else []
            steps = len(sel)
            conv_step, conv_eval, final = math.nan, math.nan, math.nan
            if steps:
                order = sel[np.argsort(ev["step"][sel], kind="stable")]
                loss = ev["loss"][order]
                vals = ev["values"][order]
                final = float(loss[-1])
                with np.errstate(invalid="ignore"):
                    ok_loss = np.abs(loss - loss[-1]) <= loss_tol
                    scale = np.maximum(np.abs(vals[-1]), 1e-3)
                    ok_par = np.all((np.abs(vals - vals[-1]) <= param_rtol * scale) | np.isnan(vals[-1]), axis=1)
                ok = (ok_loss | np.isnan(loss[-1])) & ok_par
                bad = np.flatnonzero(~ok)
                k = int(bad[-1]) + 1 if len(bad) else 0
                conv_step = int(ev["step"][order[k]])
                conv_eval = float(ev["evaluation"][order[k]])
            rows.append({I_MODEL: member, "steps": steps, "converged_step": conv_step,
                         "converged_evaluation": conv_eval, "evaluations": g_evals, "final_loss": final})
    df = pd.DataFrame(rows, columns=[I_MODEL, "steps", "converged_step", "converged_evaluation", "evaluations",
                                     "final_loss"])
    needed = float(df["converged_evaluation"].sum()) if len(df) else 0.0
    df.attrs.update({
        "evaluations": total_evals,
        "member_evaluations_computed": computed,
        "member_evaluations_needed": needed,
        "waste": computed / needed if needed > 0 else math.nan,
    })
    return df

    # ----- views -------------------------------------------------------------------------------


def timesteps_to_show(n_timesteps: int, segments, n_members: int, n_keys: int, max_timesteps: int = MAX_TIMESTEPS,
                      max_bytes: int = MAX_PAGE_DATA_BYTES) -> np.ndarray:
    """Timesteps an animated page shows: evenly spaced, always with the first and last and
    every retry boundary (first and last step of each attempt).

    Args:
        n_timesteps: Timesteps recorded.
        segments: The optimizer runs (their first and last steps are kept).
        n_members: Members drawn per step.
        n_keys: Parameter keys drawn per member.
        max_timesteps: At most this many steps.
        max_bytes: And at most this many bytes of frame data.

    Returns:
        Sorted timestep numbers.
    """
    T = int(n_timesteps)
    if T == 0:
        return np.empty(0, np.int64)
    per_step = max(n_members * (n_keys + 2) * 8, 1)
    cap = max(2, min(int(max_timesteps), int(max_bytes // per_step)))
    must = {0, T - 1}
    for s in segments:
        must.add(s.base)
        must.add(s.base + max(s.last_step, 1) - 1)
    must = np.array(sorted(t for t in must if 0 <= t < T))
    if T <= cap:
        return np.arange(T)
    even = np.round(np.linspace(0, T - 1, max(cap - len(must), 2))).astype(np.int64)
    return np.unique(np.concatenate([must, even]))
