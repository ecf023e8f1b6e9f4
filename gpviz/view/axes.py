"""Axes and markers: which keys share an axis, its kind (log or linear) and range, and what each chart marks."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from gpviz.tree.nodes import Role
from gpviz.values.bounds import at_bounds
from gpviz.view.records import AxisKind, AxisView, FrameData, ParamFacts, ParamView


def finite_or_none(x) -> float | None:
    """A finite float for JSON, or ``None``."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _axis_kind(meta: ParamFacts) -> tuple[AxisKind, bool]:
    """``(kind, bounded)`` for one parameter."""
    role = Role.of_parameter(str(meta.role))  # what the role means: tree.nodes.Role, said once
    if meta.lower is not None and meta.upper is not None:  # bounded
        return (AxisKind.LOG if role.scale_like and meta.lower > 0 else AxisKind.LINEAR), True
    if role.scale_like:
        return AxisKind.LOG, False
    if not role.signed and meta.lower is not None and meta.lower >= 0:
        return AxisKind.LOG, False  # a positive-constrained parameter of a role gpviz does not know
    return AxisKind.LINEAR, False


_MAX = float(np.finfo(np.float64).max)
_LOG_MIN, _LOG_MAX = -307.0, 308.25  # log10 of the normal float64 range


def _log_domain(vals: np.ndarray, refs: list[float]) -> tuple[float, float]:
    pts = np.concatenate([vals[np.isfinite(vals) & (vals > 0)], [r for r in refs if r > 0 and math.isfinite(r)]])
    if not len(pts):
        return 0.1, 10.0
    l0, l1 = math.log10(pts.min()), math.log10(pts.max())
    if l1 - l0 < 1.0:  # at least one decade, centred on the data
        mid = (l0 + l1) / 2
        l0, l1 = mid - 0.5, mid + 0.5
    pad = 0.06 * (l1 - l0)
    l0, l1 = l0 - pad, l1 + pad
    # stay inside float64: values near 1e-308 or 1e308 must not overflow the axis
    if l1 > _LOG_MAX:
        l0, l1 = min(l0, _LOG_MAX - 1.0), _LOG_MAX
    if l0 < _LOG_MIN:
        l0, l1 = _LOG_MIN, max(l1, _LOG_MIN + 1.0)
    return 10 ** l0, 10 ** l1


def _linear_domain(vals: np.ndarray, refs: list[float]) -> tuple[float, float]:
    pts = np.concatenate([vals[np.isfinite(vals)], [r for r in refs if math.isfinite(r)]])
    if not len(pts):
        return -1.0, 1.0
    lo, hi = float(pts.min()), float(pts.max())
    half_span = hi / 2 - lo / 2  # halves: hi - lo overflows for values near +-1.8e308
    # show zero (the sign of a mean matters) unless it would squash the data
    if lo > 0 and lo / 2 <= 2 * max(half_span, 1e-12):
        lo = 0.0
    elif hi < 0 and -hi / 2 <= 2 * max(half_span, 1e-12):
        hi = 0.0
    if hi == lo:
        width = max(abs(lo) * 0.5, 1.0)
        lo, hi = lo - width, hi + width
    pad = 0.08 * (hi / 2 - lo / 2) * 2
    lo, hi = max(lo - pad, -_MAX), min(hi + pad, _MAX)
    return lo, hi


def chart_views(frame: FrameData, facts: Mapping[str, ParamFacts],
                ranges: Mapping[str, Sequence[float]] | None = None) -> tuple[tuple[AxisView, ...], dict[str, ParamView]]:
    """Shared axes (one per role and kind, or per bounds) and one :class:`ParamView` per key.

    Args:
        frame: The validated values.
        facts: key -> what is known about it besides its values, in key order.
        ranges: key -> (lo, hi) each axis must cover (an axis is widened to the
            union of its keys' ranges, never narrowed: no value is pushed off the axis).

    Returns:
        ``(axes, key -> chart)``.
    """
    groups: dict[tuple, list[str]] = {}
    kinds: dict[str, tuple[AxisKind, bool]] = {}
    for key, meta in facts.items():
        kind, bounded = _axis_kind(meta)
        kinds[key] = (kind, bounded)
        gid = (kind, meta.role) + ((meta.lower, meta.upper) if bounded else ())
        groups.setdefault(gid, []).append(key)
    axes: list[AxisView] = []
    params: dict[str, ParamView] = {}
    for gid, keys in groups.items():
        kind, bounded = kinds[keys[0]]
        # the group's values as one rows x keys block: bound marks and flags for all its keys at once
        # (a 1,000-D ARD model is one group of 1,000 lengthscales)
        block = np.stack([frame.values[k] for k in keys], axis=1)
        vals = block.T.reshape(-1)
        refs = [m.prior_mode for m in (facts[k] for k in keys) if m.prior_mode is not None]
        lowers, uppers = (np.array([np.nan if b is None else b for b in (getattr(facts[k], side) for k in keys)],
                                   np.float64) for side in ("lower", "upper"))
        mark_lo = np.asarray(at_bounds(block, lowers, None).any(axis=0))
        mark_hi = np.asarray(at_bounds(block, None, uppers).any(axis=0))
        marks = {k: (bool(mark_lo[j]), bool(mark_hi[j])) for j, k in enumerate(keys)}
        for k in keys:
            k_lo, k_hi = facts[k].lower, facts[k].upper  # a marked bound is never None (at_bounds)
            if marks[k][0] and k_lo is not None:
                refs.append(k_lo)
            if marks[k][1] and k_hi is not None:
                refs.append(k_hi)
        b_lo, b_hi = facts[keys[0]].lower, facts[keys[0]].upper
        lo: float
        hi: float
        if bounded and b_lo is not None and b_hi is not None:  # bounded: both are set (_axis_kind)
            lo, hi = b_lo, b_hi
            inside = vals[np.isfinite(vals)]
            if kind == AxisKind.LOG:
                inside = inside[inside > 0]
            lo = min([lo] + ([float(inside.min())] if len(inside) else []))
            hi = max([hi] + ([float(inside.max())] if len(inside) else []))
            if hi <= lo:
                lo, hi = (lo / 10, min(hi * 10, _MAX)) if kind == AxisKind.LOG else (max(lo - 1, -_MAX), min(hi + 1, _MAX))
        elif kind == AxisKind.LOG:
            lo, hi = _log_domain(vals, refs)
        else:
            lo, hi = _linear_domain(vals, refs)
        for k in keys:
            if ranges and k in ranges:
                ends = [float(e) for e in ranges[k] if finite_or_none(e) is not None and (kind != AxisKind.LOG or float(e) > 0)]
                if ends:
                    lo, hi = min([lo] + ends), max([hi] + ends)
        axis = AxisView(kind, float(lo), float(hi), str(gid[1]), bounded)
        axes.append(axis)
        flags = _flags(block, axis)
        for j, k in enumerate(keys):
            m = facts[k]
            params[k] = ParamView(k, str(m.role), len(axes) - 1, m.prior_mode, m.lower, m.upper, marks[k][0],
                                  marks[k][1], m.held and not m.bands, flags[j], m.bands, verdict=m.verdict)
    return tuple(axes), {k: params[k] for k in facts}


def _flags(block: np.ndarray, axis: AxisView) -> list[str]:
    """Per column of a ``rows x keys`` block: its NaN / inf / non-positive-on-log values in words
    (for the page's warning), or ""."""
    counts = [(np.isnan(block).sum(axis=0), "NaN"), (np.isinf(block).sum(axis=0), "inf")]
    if axis.kind == AxisKind.LOG:
        with np.errstate(invalid="ignore"):
            counts.append((((block <= 0) & np.isfinite(block)).sum(axis=0), "\u2264 0 on a log axis"))
    out = [""] * block.shape[1]
    for j in np.flatnonzero(np.any([c for c, _ in counts], axis=0)):
        out[j] = ", ".join(f"{int(c[j])} {what}" for c, what in counts if c[j])
    return out


def bound_on_axis(p: ParamView, axis: AxisView) -> bool:
    """Whether the page draws a dashed bound line for ``p`` (a bound inside a non-Interval axis, no value at it)."""
    if axis.bounded:
        return False
    for b, at in ((p.lower, p.mark_lower), (p.upper, p.mark_upper)):
        if b is not None and not at and axis.lo <= b <= axis.hi and (axis.kind != AxisKind.LOG or b > 0):
            return True
    return False
