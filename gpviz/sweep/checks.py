"""The checks at the door of ``cv_sweep``: the data, sizes, repeats, metrics and how the folds are fitted."""

from __future__ import annotations

import numbers
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from gpviz.errors import InputError
from gpviz.sweep.cells import DEFAULT_METRICS, FIXED, FOLDS, SCORE_COLUMNS, SCORE_TAIL

_FLOATS = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _float_dtype(value) -> torch.dtype | None:
    """The float32/float64 dtype of a tensor, array or DataFrame (None for anything else: ints, lists)."""
    if isinstance(value, torch.Tensor):
        return value.dtype if value.dtype in (torch.float32, torch.float64) else None
    if isinstance(value, pd.DataFrame):
        kinds = set(value.dtypes)
        return _FLOATS.get(kinds.pop()) if len(kinds) == 1 else None
    return _FLOATS.get(getattr(value, "dtype", None))


def _as_tensor(name: str, value, dtype: torch.dtype) -> torch.Tensor:
    """``value`` as a tensor: a tensor as it is; an array or DataFrame copied, keeping its float dtype.

    float64 data stays float64 (and float32 stays float32) whatever torch's default dtype
    is, as a tensor passed in would; anything else (integers, lists) becomes ``dtype``.
    """
    if isinstance(value, torch.Tensor):
        return value
    own = _float_dtype(value)
    if isinstance(value, (pd.DataFrame, pd.Series)):
        value = value.to_numpy()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a tensor or numeric array, got {type(value).__name__}") from exc
    return torch.tensor(arr, dtype=own or dtype)  # a copy: the caller's array stays theirs


def check_data(X: object, Y: object) -> tuple[torch.Tensor, torch.Tensor]:
    dx, dy = _float_dtype(X), _float_dtype(Y)
    # data that is not float (integers, lists) follows the other's float dtype, else torch's default
    X = _as_tensor("X", X, dx or dy or torch.get_default_dtype())
    Y = _as_tensor("Y", Y, dx or dy or torch.get_default_dtype())
    if X.dim() != 2:
        raise InputError(f"X must be 2-D (n x d), got shape {list(X.shape)}")
    if Y.dim() == 1:
        Y = Y.unsqueeze(-1)
    if Y.dim() != 2:
        raise InputError(f"Y must be n or n x m, got shape {list(Y.shape)}")
    if Y.shape[0] != X.shape[0]:
        raise InputError(f"X and Y must have the same number of rows: X has shape {list(X.shape)}, "
                         f"Y has shape {list(Y.shape)}")
    if not X.is_floating_point() or not Y.is_floating_point():
        raise InputError(f"X and Y must be floating point, got {X.dtype} and {Y.dtype}")
    for name, t in (("X", X), ("Y", Y)):
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise InputError(f"{name} must be finite: {int(bad.sum())} non-finite value(s), first in row {row} "
                             f"({t[row].tolist()})")
    if dx is not None and dy is not None and dx != dy:
        raise InputError(f"X and Y must share one float dtype, got X in {dx} and Y in {dy}: convert one "
                         f"(e.g. Y.astype(X.dtype)); BoTorch refuses a model of mixed dtypes")
    return X, Y


def check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {int(value)}")
    return int(value)


def check_sizes(sizes, num_points: int) -> tuple[int, ...]:
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = [sizes]
    try:
        raw = list(sizes)
    except TypeError as exc:
        raise InputError(f"sizes must be a list of integers, got {sizes!r}") from exc
    if not raw:
        raise InputError("sizes must name at least one dataset size, got an empty list")
    out = []
    for s in raw:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise InputError(f"sizes must be integers, got {s!r} in {raw!r}")
        s = int(s)
        if s < 3:
            raise InputError(f"dataset size {s} is too small: leave-one-out needs at least 3 points")
        if s > num_points:
            raise InputError(f"dataset size {s} is larger than the data ({num_points} rows)")
        out.append(s)
    if len(set(out)) != len(out):
        raise InputError(f"sizes must be distinct, got {raw!r}")
    return tuple(sorted(out))


def check_metrics(metrics: Mapping[str, Callable] | None) -> dict[str, Callable]:
    out = dict(DEFAULT_METRICS)
    if metrics is None:
        return out
    if not isinstance(metrics, Mapping):
        raise InputError(f"metrics must be a dict name -> f(y_true, pred_mean, pred_var), got "
                         f"{type(metrics).__name__}")
    reserved = set(SCORE_COLUMNS) | set(SCORE_TAIL)
    for name, fn in metrics.items():
        if not isinstance(name, str) or not name or name in reserved:
            raise InputError(f"metric name {name!r} must be a non-empty string other than {sorted(reserved)}")
        if not callable(fn):
            raise InputError(f"metric {name!r} must be callable (y_true, pred_mean, pred_var) -> float, "
                             f"got {type(fn).__name__}")
        out[name] = fn
    return out


def check_folds(folds: str, refit: bool) -> tuple[str | None, bool]:
    """Validates ``folds`` and ``refit``: ``(mode, refit)``, the mode ``None`` while ``folds="auto"`` is undecided.

    Raises:
        InputError: an unknown ``folds``, a ``refit`` that is not a bool, or ``folds`` other than
            ``"auto"`` with ``refit=False`` (one model per cell: there are no folds to fit).
    """
    if not isinstance(refit, bool):
        raise InputError(f"refit must be True (refit every leave-one-out fold) or False (one model per cell, its "
                         f"folds in closed form), got {refit!r}")
    if folds not in FOLDS:
        raise InputError(f"unknown folds: {folds!r} (must be one of {list(FOLDS)})")
    if not refit:
        if folds != "auto":
            raise InputError(f"folds={folds!r} chooses how refit folds are fitted; refit=False fits one model per "
                             f"cell and takes its folds in closed form: leave folds='auto'")
        return FIXED, False
    return (None if folds == "auto" else folds), True
