"""Summary statistics of a trace: when each member converged, how much work the fit did, which steps a page shows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gpviz.errors import InputError
from gpviz.values.columns import I_MODEL
from gpviz.words import plural

#: Steps a live notebook view keeps while the fit runs (it is redrawn up to 4 times a second);
#: the finished page keeps every step (its values at display precision, see gpviz.html.compact).
MAX_TIMESTEPS = 300


def summarize(ev: dict, groups, segments, loss_tol: float = 1e-3, param_rtol: float = 1e-2) -> pd.DataFrame:
    """Per member: when it converged by its own criterion, and how much work the fit did.

    A member has converged at the first step from which on its loss stays within
    ``loss_tol`` of its final loss and every parameter within ``param_rtol``
    (relative, floored at 1e-3 in absolute terms) of its final value. Only the
    final attempt of each model counts for convergence; evaluations of failed
    attempts count as computed.

    Args:
        ev: The tracer's events (:meth:`gpviz.trace.store.EventStore.arrays`).
        groups: The traced groups (:class:`gpviz.trace.reader.Group`).
        segments: The optimizer runs (:class:`gpviz.trace.reader.Segment`).
        loss_tol: Absolute loss tolerance of the convergence criterion.
        param_rtol: Relative parameter tolerance of the convergence criterion.

    Returns:
        One row per member: ``i_model, steps, converged_step, converged_evaluation,
        evaluations`` (batch evaluations it was computed in, all attempts),
        ``final_loss``. ``attrs`` holds the batch totals: ``evaluations``,
        ``member_evaluations_computed``, ``member_evaluations_needed``, ``waste``
        (computed / needed, over the members whose converged evaluation is known: a
        member without one, e.g. no step recorded or no evaluation count, is neither
        computed nor needed work there, never "needed nothing"; NaN when none is known)
        ``members_unknown`` (how many members the waste leaves out), and the criterion's
        ``loss_tol`` and ``param_rtol``.
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
            sel = (np.flatnonzero((ev["seg"] == last) & (ev["member"] == member)) if last is not None
                   else np.empty(0, np.int64))
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
    known = df["converged_evaluation"].notna().to_numpy() & df["evaluations"].notna().to_numpy()
    needed = float(df["converged_evaluation"].to_numpy()[known].sum())
    computed_known = float(df["evaluations"].to_numpy()[known].sum())
    df.attrs.update({
        "evaluations": total_evals,
        "member_evaluations_computed": computed,
        "member_evaluations_needed": needed,
        "waste": computed_known / needed if needed > 0 else math.nan,
        "members_unknown": int((~known).sum()),
        "loss_tol": float(loss_tol), "param_rtol": float(param_rtol),
    })
    return df

def summary_line(summary: pd.DataFrame, ended: bool = True) -> str:
    """The convergence and waste figures of :func:`summarize` in one line, as a fit's page states them.

    Args:
        summary: From :func:`summarize` (``FitTracer.summary()``).
        ended: Whether the fit has ended (else the figures are "so far").

    Returns:
        The line; empty for a trace without steps.
    """
    steps = summary["converged_step"].dropna()
    if summary.empty or steps.empty:
        return ""
    a = summary.attrs
    lo, hi, med = int(steps.min()), int(steps.max()), float(steps.median())
    when = f"step {lo}" if lo == hi else f"steps {lo}\u2013{hi} (median {med:g})"
    n, settled = len(summary), len(steps)
    who = "every member" if settled == n else f"{settled} of {n} members"
    line = (f"{'So far: ' if not ended else ''}Convergence: {who} settled by {when} of at most "
            f"{int(summary['steps'].max())} (loss within {a.get('loss_tol', 1e-3):g} and each parameter within "
            f"{a.get('param_rtol', 1e-2):.0%} of its final value). Work: {a['evaluations']:,.0f} evaluations, {a['member_evaluations_computed']:,.0f} "
            f"member-evaluations computed where {a['member_evaluations_needed']:,.0f} were needed")
    waste = a.get("waste", math.nan)
    line += f": waste {waste:.2f}\u00d7" if math.isfinite(waste) else ": waste unknown"
    unknown = int(a.get("members_unknown", 0))
    if unknown:
        line += f" ({plural(unknown, 'member')} without a converged evaluation left out)"
    return line + "."

    # ----- views -------------------------------------------------------------------------------


def check_max_timesteps(max_timesteps) -> int | None:
    """``max_timesteps`` as None (every step) or an int >= 2 (the first and the last step).

    Raises:
        InputError: for anything else, naming the value received.
    """
    if max_timesteps is None:
        return None
    try:
        cap = int(max_timesteps)
    except (TypeError, ValueError, OverflowError):
        cap = None
    if isinstance(max_timesteps, bool) or cap is None or cap != max_timesteps or cap < 2:
        raise InputError(f"max_timesteps must be None (every step) or a whole number >= 2, got {max_timesteps!r}")
    return cap


def timesteps_to_show(n_timesteps: int, segments, max_timesteps: int | None = None) -> np.ndarray:
    """Timesteps an animated page shows: every one (``max_timesteps=None``), or at most ``max_timesteps``
    evenly spaced, always with the first and last and every retry boundary (first and last step of
    each attempt) that fits: the cap holds even when there are more boundaries than it allows.

    Args:
        n_timesteps: Timesteps recorded.
        segments: The optimizer runs (their first and last steps are kept).
        max_timesteps: None, or at most this many steps (a whole number >= 2).

    Returns:
        Sorted timestep numbers.

    Raises:
        InputError: a ``max_timesteps`` that is not None or a whole number >= 2.
    """
    T = int(n_timesteps)
    cap = check_max_timesteps(max_timesteps)
    if T == 0:
        return np.empty(0, np.int64)
    if cap is None:
        return np.arange(T)
    boundaries = {0, T - 1}
    for s in segments:
        boundaries.add(s.base)
        boundaries.add(s.base + max(s.last_step, 1) - 1)
    must = np.array(sorted(t for t in boundaries if 0 <= t < T), dtype=np.int64)
    if T <= cap:
        return np.arange(T)
    if len(must) >= cap:  # more retry boundaries than the cap: evenly among them, the first and last step kept
        return np.unique(must[np.round(np.linspace(0, len(must) - 1, cap)).astype(np.int64)])
    # fill the room left with evenly spaced other steps: exactly cap steps in all
    others = np.setdiff1d(np.arange(T, dtype=np.int64), must)
    room = cap - len(must)
    even = others[np.round(np.linspace(0, len(others) - 1, room)).astype(np.int64)] if room else others[:0]
    return np.unique(np.concatenate([must, even]))
