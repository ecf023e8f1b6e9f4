"""Scores: the scaling curve's reference: predict each held-out point by its fold's training mean (and variance)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from botorch.models import SingleTaskGP
from matplotlib.image import imread

import gpviz
from gpviz.charts import figure_to_png, reference_label
from gpviz.sweep.cells import DEFAULT_METRICS
from gpviz.sweep.scores import baseline_scores


@pytest.fixture(scope="module")
def sweep():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(20, 2, generator=g)
    Y = torch.sin(6 * X[:, :1]) + 0.05 * torch.randn(20, 1, generator=g)
    return gpviz.cv_sweep(lambda a, b: SingleTaskGP(a, b), X, Y, sizes=[4, 6], repeats=2, progress=False,
                          fit_kwargs={"optimizer_kwargs": {"options": {"maxiter": 5}}})


def expected(sweep, size, repeat):
    """MSE and NLPD of the training mean / variance, fold by fold, written out independently."""
    p = sweep.predictions
    y = p[(p["size"] == size) & (p.i_repeat == repeat)].sort_values("i_model").y_true.to_numpy()
    mse, nlpd = [], []
    for i in range(len(y)):
        rest = np.delete(y, i)
        m, v = rest.mean(), rest.var(ddof=1)
        mse.append((y[i] - m) ** 2)
        nlpd.append(0.5 * math.log(2 * math.pi * v) + (y[i] - m) ** 2 / (2 * v))
    return np.mean(mse), np.mean(nlpd)


def test_reference_scores_are_the_training_mean_and_variance(sweep):
    ref = sweep.reference_scores
    assert len(ref) == len(sweep.sizes) * sweep.repeats
    for _, row in ref.iterrows():
        mse, nlpd = expected(sweep, row["size"], row.i_repeat)
        assert row.mse == pytest.approx(mse, rel=1e-12) and row.nlpd == pytest.approx(nlpd, rel=1e-12)
    assert baseline_scores(sweep.predictions, DEFAULT_METRICS).equals(ref)


@pytest.mark.parametrize("metric", ["mse", "nlpd"])
def test_the_reference_line_is_drawn_dashed_at_its_value(sweep, metric):
    fig = sweep.plot(metric)
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.lines if ln.get_gid() == "gpviz-reference"]
    assert line.get_linestyle() == "--" and line.get_label() == f"reference: {reference_label(metric)}"
    # the documented value: the curve's centre statistic over repeats of the per-cell reference, one statistic
    # for the whole chart (geometric mean only if every score and reference value of the metric is > 0)
    col = 0 if metric == "mse" else 1
    per_cell = {s: [expected(sweep, s, r)[col] for r in range(sweep.repeats)] for s in sweep.sizes}
    every = np.concatenate([sweep.scores[metric].to_numpy(), np.ravel(list(per_cell.values()))])
    geometric = bool((every > 0).all())
    centre = [math.exp(np.mean(np.log(v))) if geometric else np.mean(v) for v in per_cell.values()]
    np.testing.assert_allclose(line.get_ydata(), centre, rtol=1e-12)
    # the image: the line's grey at the pixel where the line passes through (size, value) at the first size
    png = imread(io.BytesIO(figure_to_png(fig)))
    x, y = ax.transData.transform((sweep.sizes[0], centre[0]))
    h = png.shape[0]
    scale = png.shape[1] / fig.bbox.width
    row, colpx = int(round(h - y * scale)), int(round(x * scale))
    patch = png[row - 3: row + 4, colpx: colpx + 12, :3]  # a dash starts at the first size
    grey = np.abs(patch - 0.35).max(axis=-1) < 0.08
    assert grey.sum() >= 4, patch
    assert (fig.axes[0].get_legend() is not None
            and reference_label(metric) in [t.get_text().split(": ", 1)[-1] for t in ax.get_legend().get_texts()])
