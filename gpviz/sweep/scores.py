"""Scores: the "predict the training mean" reference of a sweep, and the metric per dataset size for each sweep
side by side, compared with the first (one centre statistic for all)."""

from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from gpviz.charts import GEOMETRIC_MEAN, center_kind, score_bands
from gpviz.sweep.cells import STATUS_OK
from gpviz.values.columns import I_CONFIG, I_REPEAT, SIZE


def score_table(sweeps: Mapping, metric: str = "mse", center: str | None = None) -> pd.DataFrame:
    """Per dataset size and sweep: the centre and 10th/90th percentile of ``metric``, compared with the first sweep.

    Every sweep and size uses one centre statistic (``center``, or decided once over all
    the sweeps by :func:`gpviz.charts.center_kind`: the geometric mean only when every
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
    table = pd.concat(frames, ignore_index=True).sort_values(["size", "order"], kind="stable")
    first = table["size"].map(table[table["order"] == 0].set_index("size")["center"])
    table["diff_to_first"] = table["center"] - first
    # a ratio of arithmetic means of values of either sign (an NLPD) has no meaning: -0.1 / 0.05
    table["ratio_to_first"] = table["center"] / first if center == GEOMETRIC_MEAN else math.nan
    out = table[["size", "label", "low", "center", "high", "n_ok", "center_kind", "ratio_to_first",
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
        per metric, and ``status`` ("ok"), so :func:`gpviz.charts.score_bands` reads it
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
