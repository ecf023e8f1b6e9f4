"""Scores: the band of a metric per dataset size (one centre statistic, decided once over everything compared),
the "predict the training mean" reference of a sweep, and each sweep's metric per size compared with the first."""

from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from gpviz.errors import InputError
from gpviz.sweep.cells import STATUS_OK
from gpviz.values.columns import I_CONFIG, I_REPEAT, SIZE


#: Percentiles of the band drawn around the centre line.
BAND_PERCENTILES = (10.0, 90.0)


def _geometric_mean(values: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(values))))


#: The two centre statistics of a band: the geometric mean (every value > 0) or the arithmetic mean.
GEOMETRIC_MEAN, MEAN = "geometric mean", "mean"
CENTERS = (GEOMETRIC_MEAN, MEAN)


def _ok_values(scores: pd.DataFrame, metric: str) -> tuple[pd.Series, pd.Series]:
    """(the metric as numbers, which rows count: status ok and finite)."""
    if metric not in scores.columns:
        raise InputError(f"unknown metric {metric!r}: scores has {[c for c in scores.columns]}")
    ok = scores["status"].eq("ok") if "status" in scores.columns else pd.Series(True, index=scores.index)
    vals = pd.to_numeric(scores[metric], errors="coerce")
    return vals, ok & np.isfinite(vals)


def center_kind(frames: Iterable[pd.DataFrame | None], metric: str = "mse") -> str:
    """The one centre statistic for every band drawn from ``frames`` together, decided once.

    The geometric mean when every counted value of every frame is > 0 (errors spread
    over decades), else the arithmetic mean (e.g. a negative log density in any one of
    them): curves, reference lines and tables compared with each other share it, so no
    geometric mean is ever set against an arithmetic one.

    Args:
        frames: Score frames (``Sweep.scores``, reference scores; None entries are skipped).
        metric: The metric column.

    Returns:
        :data:`GEOMETRIC_MEAN` or :data:`MEAN`.
    """
    seen = False
    for frame in frames:
        if frame is None or metric not in getattr(frame, "columns", ()):
            continue
        vals, counted = _ok_values(frame, metric)
        if bool((vals[counted] <= 0).any()):
            return MEAN
        seen = seen or bool(counted.any())
    return GEOMETRIC_MEAN if seen else MEAN


def score_bands(scores: pd.DataFrame, metric: str = "mse",
                percentiles: tuple[float, float] = BAND_PERCENTILES, center: str | None = None) -> pd.DataFrame:
    """Per dataset size: low and high percentile and centre of a metric across repeats.

    The centre is one statistic for every size: the geometric mean when every value
    is positive (errors spread over decades), the arithmetic mean otherwise (e.g. a
    negative log density), unless ``center`` fixes it (to share it with other frames:
    see :func:`center_kind`).

    Args:
        scores: ``Sweep.scores``: columns ``size``, ``status`` and the metric.
        metric: The metric column.
        percentiles: (low, high) percentiles of the band.
        center: ``"geometric mean"``, ``"mean"`` or None (decided from ``scores``).

    Returns:
        One row per size, ascending: ``size``, ``low``, ``center``, ``high``,
        ``n_ok`` (finite values used), ``n_failed``, and ``center_kind``
        ("geometric mean" or "mean").

    Raises:
        InputError: if ``metric`` is not a column of ``scores``, ``center`` is not one of
            :data:`CENTERS`, or it is the geometric mean of values not all > 0.
    """
    vals, finite = _ok_values(scores, metric)
    ok = scores["status"].eq("ok") if "status" in scores.columns else pd.Series(True, index=scores.index)
    if center is None:
        center = center_kind([scores], metric)
    if center not in CENTERS:
        raise InputError(f"center must be one of {list(CENTERS)}, got {center!r}")
    positive = center == GEOMETRIC_MEAN
    if positive and bool((vals[finite] <= 0).any()):
        raise InputError(f"center={center!r} needs every {metric} > 0, but the smallest is "
                         f"{float(vals[finite].min()):.4g}: use center='mean'")
    rows = []
    for size, idx in scores.groupby(SIZE, sort=True).groups.items():
        v = vals.loc[idx][finite.loc[idx]].to_numpy(dtype=float)
        n_failed = int((~ok.loc[idx]).sum())
        if v.size == 0:
            rows.append((int(size), math.nan, math.nan, math.nan, 0, n_failed))
            continue
        lo, hi = np.percentile(v, percentiles)
        mid = _geometric_mean(v) if positive else float(np.mean(v))
        rows.append((int(size), float(lo), mid, float(hi), int(v.size), n_failed))
    out = pd.DataFrame(rows, columns=[SIZE, "low", "center", "high", "n_ok", "n_failed"])
    out["center_kind"] = center
    return out


def score_table(sweeps: Mapping, metric: str = "mse", center: str | None = None) -> pd.DataFrame:
    """Per dataset size and sweep: the centre and 10th/90th percentile of ``metric``, compared with the first sweep.

    Every sweep and size uses one centre statistic (``center``, or decided once over all
    the sweeps by :func:`center_kind`: the geometric mean only when every
    value of every sweep is > 0, else the arithmetic mean), so centres compare like with
    like. A ratio of centres means something only for positive values: it is given when
    the centre is the geometric mean, and NaN otherwise (use the difference).

    Args:
        sweeps: ``{label: sweep}`` (anything with a ``scores`` frame), the first the reference.
        metric: The metric compared.
        center: ``"geometric mean"``, ``"mean"`` or None (decided over all sweeps).

    Returns:
        One row per (size, label): ``size``, ``label``, ``low``, ``center``, ``high``,
        ``n_ok``, ``center_kind`` (the statistic, the same in every row),
        ``ratio_to_first`` (this sweep's centre over the first sweep's at that size;
        < 1 means smaller than the first; NaN unless the centre is the geometric mean)
        and ``diff_to_first`` (this sweep's centre minus the first's). ``attrs["center"]``
        names the statistic too.
    """
    if center is None:
        center = center_kind([sweep.scores for sweep in sweeps.values()], metric)
    frames = [score_bands(sweep.scores, metric, center=center).assign(label=label, order=i)
              for i, (label, sweep) in enumerate(sweeps.items())]
    table = pd.concat(frames, ignore_index=True).sort_values([SIZE, "order"], kind="stable")
    first = table[SIZE].map(table[table["order"] == 0].set_index(SIZE)["center"])
    table["diff_to_first"] = table["center"] - first
    # a ratio of arithmetic means of values of either sign (an NLPD) has no meaning: -0.1 / 0.05
    table["ratio_to_first"] = table["center"] / first if center == GEOMETRIC_MEAN else math.nan
    out = table[[SIZE, "label", "low", "center", "high", "n_ok", "center_kind", "ratio_to_first",
                 "diff_to_first"]].reset_index(drop=True)
    out.attrs["center"] = center
    return out


def baseline_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """The "predict the training mean" reference of every held-out point.

    Fold ``i`` of a leave-one-out cell trains on the cell's other ``n - 1`` points:
    its reference prediction of the held-out point is their mean
    ``ȳ₋ᵢ = (Σⱼ yⱼ - yᵢ) / (n - 1)``, with variance their sample variance
    ``s²₋ᵢ = (Σⱼ yⱼ² - yᵢ² - (n - 1) ȳ₋ᵢ²) / (n - 2)`` (per output). Fed to a metric,
    this gives the error of a model that learned nothing but the mean: the MSE of
    predicting the training mean, and the NLPD of the Gaussian N(ȳ₋ᵢ, s²₋ᵢ).

    Args:
        predictions: ``Sweep.predictions`` (``i_config``, ``i_repeat``, ``i_output``, ``y_true``, ...).

    Returns:
        ``predictions`` with ``pred_mean`` and ``pred_var`` replaced by the reference's.
    """
    out = predictions.copy()
    if out.empty:
        return out
    cell = [out[I_CONFIG], out[I_REPEAT], out["i_output"]]
    y = out["y_true"].astype(np.float64)
    n = y.groupby(cell).transform("size").to_numpy(dtype=np.float64)
    total = y.groupby(cell).transform("sum").to_numpy()
    squares = (y ** 2).groupby(cell).transform("sum").to_numpy()
    yv = y.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (total - yv) / (n - 1)
        var = (squares - yv ** 2 - (n - 1) * mean ** 2) / (n - 2)
    out["pred_mean"] = mean
    out["pred_var"] = np.maximum(var, 0.0)
    return out


def baseline_scores(predictions: pd.DataFrame, metrics: Mapping[str, Callable]) -> pd.DataFrame:
    """Every metric of the "predict the training mean" reference, per cell (see :func:`baseline_predictions`).

    Returns:
        One row per cell with predictions: ``i_config``, ``size``, ``i_repeat``, one column
        per metric, and ``status`` ("ok"), so :func:`score_bands` reads it
        like ``Sweep.scores``.
    """
    base = baseline_predictions(predictions)
    rows = []
    for (i_config, size, i_repeat), p in base.groupby([I_CONFIG, SIZE, I_REPEAT], sort=True):
        row = {I_CONFIG: int(i_config), SIZE: int(size), I_REPEAT: int(i_repeat), "status": STATUS_OK}
        for name, fn in metrics.items():
            try:
                row[name] = float(fn(p["y_true"].to_numpy(), p["pred_mean"].to_numpy(), p["pred_var"].to_numpy()))
            except Exception:  # noqa: BLE001 - a user's metric that cannot score the reference: no line for it
                row[name] = math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=[I_CONFIG, SIZE, I_REPEAT] + list(metrics) + ["status"])
