"""The at-bound rule: when a value sits on its constraint's bound (one place for every view and verdict)."""

from __future__ import annotations

import numpy as np

#: A value within this share of a bound's scale (floored at 1e-8) sits on the bound.
AT_BOUND_RTOL = 1e-4


def at_bound(value: float, lower: float, upper: float, rtol: float = AT_BOUND_RTOL) -> bool:
    """Whether ``value`` sits on a finite constraint bound (within ``rtol`` of the bound's scale)."""
    return bool(at_bounds(np.asarray([value], np.float64), lower, upper, rtol)[0])


def at_bounds(values: np.ndarray, lower, upper, rtol: float = AT_BOUND_RTOL) -> np.ndarray:
    """Elementwise :func:`at_bound` of an array (``None``, NaN or infinite bounds never match; NaN never sits on one).

    Args:
        values: Any shape.
        lower, upper: A bound each, or an array of bounds broadcasting against ``values``
            (e.g. one per column of a ``members x keys`` block), or None.
    """
    values = np.asarray(values, np.float64)
    out = np.zeros(values.shape, bool)
    for b in (lower, upper):
        if b is None:
            continue
        b = np.asarray(b, np.float64)
        finite = np.isfinite(b)
        if not finite.any():
            continue
        with np.errstate(invalid="ignore"):
            out |= (np.abs(values - b) <= rtol * np.maximum(np.abs(b), 1e-8)) & finite
    return out
