"""Building a page's view data: an expression and its values become one :class:`~gpviz.view.records.ViewData`.

This is the one place where a frame, what is known about each parameter
(:class:`~gpviz.view.records.ParamFacts`) and the expression's sections meet; the
HTML layer only reads the result. :func:`facts_from_info` turns a long parameter
frame (``gpviz.parameters(model, long=True)``, optionally with a ``verdict``
column) into facts once, at the door.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from gpviz.errors import InputError
from gpviz.tree.nodes import Role
from gpviz.tree.notation import notation
from gpviz.view.axes import chart_views, finite_or_none
from gpviz.view.frame import prepare_frame
from gpviz.view.records import (HELD, CurveData, LossData, Note, ParamFacts, PrintedSection, VerdictSummary,
                                ViewData)
from gpviz.walk.expr import Expr


def facts_from_info(info: pd.DataFrame | None, keys: Sequence[str], roles: Mapping[str, str]) -> dict[str, ParamFacts]:
    """Per key: role, bounds, prior mode and verdict from a long frame like ``parameters(model, long=True)``.

    Args:
        info: ``None``, or a DataFrame with ``key`` and any of ``lower``, ``upper``,
            ``prior_mode``, ``verdict``, ``role`` (the first finite value per key counts; a
            prior mode only where all the key's finite modes agree: a batched prior whose
            members' modes differ draws no one mark for all; a key is held when any of its
            rows is).
        keys: The expression's keys, in order.
        roles: key -> role from the expression (wins over the frame's ``role``).

    Raises:
        InputError: if ``info`` is not such a frame.
    """
    if info is None:
        return {k: ParamFacts(Role.of_parameter(str(roles.get(k, "value")))) for k in keys}
    if not isinstance(info, pd.DataFrame) or "key" not in info.columns:
        raise InputError(f"info must be a DataFrame with a 'key' column (like gpviz.parameters(model, long=True)), "
                         f"got {type(info).__name__}")
    key_col = info["key"].astype(str).to_numpy()
    order = list(dict.fromkeys(keys))
    code = pd.Index(order).get_indexer(key_col)  # hashed: a 1,000-key frame is not sorted (np.isin would)
    mask = code >= 0
    rows, by = info[mask], code[mask]
    if not len(rows):
        return facts_from_info(None, keys, roles)
    present, first_row = np.unique(by, return_index=True)  # each key's first row

    def first(col: str) -> dict:  # key code -> its first finite value (for all keys at once, not one per key)
        if col not in rows.columns:
            return {}
        vals = rows[col].to_numpy()
        if vals.dtype.kind not in "fiu":
            vals = pd.to_numeric(rows[col], errors="coerce").to_numpy()
        vals = vals.astype(np.float64)
        finite = np.flatnonzero(np.isfinite(vals))
        codes, at = np.unique(by[finite], return_index=True)  # np.unique keeps each code's first position
        return dict(zip(codes.tolist(), vals[finite[at]].tolist()))

    def agreed(col: str) -> dict:  # key code -> the one finite value all its rows share; None where they differ
        if col not in rows.columns:
            return {}
        vals = pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=np.float64)
        finite = np.isfinite(vals)
        grouped = pd.Series(vals[finite]).groupby(by[finite])
        lo, hi = grouped.min(), grouped.max()
        same = np.isclose(lo.to_numpy(), hi.to_numpy(), rtol=1e-9, atol=0.0)
        return {int(c): (float(v) if ok else None) for c, v, ok in zip(lo.index, lo.to_numpy(), same)}

    # a batched prior gives each member its own mode: one mark per key only where all members share it
    # (never the first member's mode drawn for all)
    lower, upper, prior = first("lower"), first("upper"), agreed("prior_mode")
    verdicts = rows["verdict"].astype(str).to_numpy() if "verdict" in rows.columns else None
    held = (np.bincount(by, weights=(verdicts == HELD), minlength=len(order)) > 0) if verdicts is not None else None
    role_col = rows["role"].to_numpy() if "role" in rows.columns else None
    found = {}
    for c, r in zip(present.tolist(), first_row.tolist()):
        key = order[c]
        verdict = (HELD if held[c] else str(verdicts[r])) if verdicts is not None and held is not None else ""
        role = roles.get(key, str(role_col[r]) if role_col is not None else "value")
        found[key] = ParamFacts(Role.of_parameter(str(role)), finite_or_none(lower.get(c)),
                                finite_or_none(upper.get(c)), finite_or_none(prior.get(c)), verdict)
    return {k: found[k] if k in found else ParamFacts(Role.of_parameter(str(roles.get(k, "value")))) for k in keys}


def singular(label: str) -> str:
    """"MCMC samples" -> "MCMC sample", "outputs" -> "output" (the last word loses its plural s)."""
    return label[:-1] if label.endswith("s") and not label.endswith("ss") else label


def members_label(expr: Expr, member_label: str | None = None) -> str:
    """What a dot is, plural ("members", "MCMC samples", "outputs", "leave-one-out folds")."""
    label = member_label if member_label is not None else expr.member_label
    label = " ".join(str(label).split()) if label else ""
    return label or "members"


def sections_of(expr: Expr) -> tuple[PrintedSection, ...]:
    """The expression's parts as the page prints them (a kernel expression is one "Kernel" part)."""
    if expr.sections:
        return tuple(PrintedSection(s.title, s.note, s.body) for s in expr.sections)
    return (PrintedSection("Kernel", "", expr.tree),)


def build_view(expr: Expr, frame: pd.DataFrame, facts: Mapping[str, ParamFacts] | None = None, *,
               title: str | None = None, config_labels: Sequence[str] | Mapping[int, str] | None = None,
               notes: Sequence[Note] = (), curve: CurveData | None = None, member_label: str | None = None,
               axis_ranges: Mapping[str, Sequence[float]] | None = None, summary: VerdictSummary | None = None,
               loss: Mapping | None = None) -> ViewData:
    """The view data of ``expr`` drawn with the values in ``frame``.

    Args:
        expr: A kernel or model expression.
        frame: Wide frame: one column per ``expr.keys`` (see :func:`gpviz.view.frame.prepare_frame`).
        facts: key -> :class:`ParamFacts` (default: the expression's roles only).
        title: Figure title.
        config_labels: Labels of the configurations.
        notes: Lines of text below the expression (:class:`~gpviz.view.records.Note`).
        curve: A sweep's scaling curve to draw beside the expression, or None.
        member_label: What a dot is, plural (default: the expression's).
        axis_ranges: key -> (lo, hi) its axis must cover.
        summary: The verdicts in words (a :class:`~gpviz.view.records.VerdictSummary`), or None.
        loss: A fit's loss series (:meth:`gpviz.FitTracer.loss_series`) for the loss chart, or None.

    Raises:
        KeyMismatchError: a key has no column in ``frame``.
        InputError: unreadable columns, bad labels or ranges.
    """
    keys = tuple(expr.keys)
    if facts is None:
        facts = facts_from_info(None, keys, dict(expr.roles))
    if axis_ranges is not None and not isinstance(axis_ranges, Mapping):
        raise InputError(f"axis_ranges must map parameter keys to (lo, hi), got {type(axis_ranges).__name__}")
    data = prepare_frame(keys, frame, config_labels)
    roles = dict(expr.roles)
    facts = {k: facts.get(k) or ParamFacts(Role.of_parameter(str(roles.get(k, "value")))) for k in dict.fromkeys(keys)}
    axes, params = chart_views(data, facts, axis_ranges)
    plural = members_label(expr, member_label)
    names = expr.member_names
    return ViewData(sections_of(expr), data, axes, params, singular(plural), plural, title,
                    # verdicts were computed: say so even if none held
                    judged=any(f.verdict or f.bands for f in facts.values()),
                    notes=tuple(notes), curve=curve, summary=summary,
                    labels=expr.labels, notation=tuple(notation(expr.section_trees())),
                    loss=LossData(**loss) if loss is not None else None,
                    member_names=tuple(names) if names else None)
