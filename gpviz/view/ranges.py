"""Axes shared by stacked views: each key's axis spans every view's axis for that key.

A comparison stacks several sweeps' views and reads them by position, so a key's
axis must be the same in all of them. The ranges come from the views themselves
(:class:`~gpviz.view.records.AxisView` ends), and widening a view changes its axes
only: each figure is drawn once, from its widened view.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Mapping, Sequence

from gpviz.view.axes import finite_or_none
from gpviz.view.records import AxisKind, ViewData


def cover(kind: str, lo: float, hi: float, keys: Iterable[str], ranges: Mapping[str, Sequence[float]] | None
          ) -> tuple[float, float]:
    """An axis's ends widened (never narrowed) to cover its keys' ``ranges``; a non-positive end is ignored on a
    log axis (as ``build_view(axis_ranges=...)`` widens)."""
    for k in keys:
        if ranges and k in ranges:
            ends = [float(e) for e in ranges[k] if finite_or_none(e) is not None and (kind != AxisKind.LOG or float(e) > 0)]
            if ends:
                lo, hi = min([lo] + ends), max([hi] + ends)
    return lo, hi


def shared_ranges(views: Iterable[ViewData]) -> dict[str, tuple[float, float]]:
    """key -> (lowest lo, highest hi) of the key's axis over ``views``."""
    out: dict[str, tuple[float, float]] = {}
    for view in views:
        for key, p in view.params.items():
            ax = view.axes[p.axis]
            lo, hi = out.get(key, (ax.lo, ax.hi))
            out[key] = (min(lo, ax.lo), max(hi, ax.hi))
    return out


def with_ranges(view: ViewData, ranges: Mapping[str, Sequence[float]]) -> ViewData:
    """``view`` with each axis widened to cover its keys' ``ranges``.

    Bound marks and flags do not depend on an axis's ends, so only the axes change: the
    result equals the view built with ``axis_ranges=ranges``.
    """
    keys: dict[int, list[str]] = {}
    for key, p in view.params.items():
        keys.setdefault(p.axis, []).append(key)
    axes = []
    for i, ax in enumerate(view.axes):
        lo, hi = cover(ax.kind, ax.lo, ax.hi, keys.get(i, ()), ranges)
        axes.append(replace(ax, lo=float(lo), hi=float(hi)))
    return replace(view, axes=tuple(axes))
