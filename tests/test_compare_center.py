"""One centre statistic per comparison: every sweep, size, curve and reference line of a comparison share it.

References are hand-computed with numpy (np.mean, exp(mean(log))), never with gpviz's own bands.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.models import SingleTaskGP

import gpviz
from gpviz.charts import compare_scaling_curves, scaling_curve, score_bands
from gpviz.errors import InputError
from gpviz.html.comparison import scores_html
from gpviz.sweep.scores import score_table

# two near-identical NLPD distributions; the first has one value <= 0 (NLPD often is)
NLPD_A = [-0.05, 0.4, 0.5, 0.45]
NLPD_B = [0.02, 0.38, 0.52, 0.44]


class _Sweep:
    def __init__(self, values, metric="nlpd"):
        self.scores = pd.DataFrame({"i_config": [0, 0, 1, 1], "size": [5, 5, 9, 9], "i_repeat": [0, 1, 0, 1],
                                    metric: values, "status": ["ok"] * 4})


def _by_size(values):
    return [np.asarray(values[:2]), np.asarray(values[2:])]


def test_nlpd_with_a_negative_value_compares_arithmetic_means_by_their_difference():
    table = score_table({"a": _Sweep(NLPD_A), "b": _Sweep(NLPD_B)}, "nlpd")
    assert (table.center_kind == "mean").all() and table.attrs["center"] == "mean"
    a, b = table[table.label == "a"], table[table.label == "b"]
    np.testing.assert_allclose(a.center, [np.mean(v) for v in _by_size(NLPD_A)], rtol=1e-12)
    # main took b's geometric mean (all b > 0) over a's arithmetic mean: 8.8x apart at n = 5
    np.testing.assert_allclose(b.center, [np.mean(v) for v in _by_size(NLPD_B)], rtol=1e-12)
    np.testing.assert_allclose(b.diff_to_first,
                               [np.mean(vb) - np.mean(va) for va, vb in zip(_by_size(NLPD_A), _by_size(NLPD_B))],
                               rtol=1e-9)
    assert table.ratio_to_first.isna().all()  # a ratio of means of either sign means nothing


def test_positive_values_compare_geometric_means_by_their_ratio():
    mse_a, mse_b = [1.0, 4.0, 0.5, 0.125], [2.0, 2.0, 0.25, 0.25]
    table = score_table({"a": _Sweep(mse_a, "mse"), "b": _Sweep(mse_b, "mse")}, "mse")
    assert (table.center_kind == "geometric mean").all()
    gm = [np.exp(np.mean(np.log(v))) for v in _by_size(mse_b)]
    ga = [np.exp(np.mean(np.log(v))) for v in _by_size(mse_a)]
    np.testing.assert_allclose(table[table.label == "b"].ratio_to_first, np.divide(gm, ga), rtol=1e-12)
    np.testing.assert_allclose(table[table.label == "b"].diff_to_first, np.subtract(gm, ga), rtol=1e-12)


def test_score_bands_refuses_a_geometric_mean_of_non_positive_values():
    with pytest.raises(InputError, match="needs every nlpd > 0"):
        score_bands(_Sweep(NLPD_A).scores, "nlpd", center="geometric mean")
    with pytest.raises(InputError, match="center must be one of"):
        score_bands(_Sweep(NLPD_B).scores, "nlpd", center="median")


def _line(ax, label):
    return next(line for line in ax.get_lines() if line.get_label() == label)


def test_chart_curves_and_reference_share_one_statistic():
    fig = compare_scaling_curves({"a": _Sweep(NLPD_A).scores, "b": _Sweep(NLPD_B).scores}, "nlpd")
    ax = fig.axes[0]
    np.testing.assert_allclose(_line(ax, "b").get_ydata(), [np.mean(v) for v in _by_size(NLPD_B)], rtol=1e-12)
    assert ax.get_yscale() == "linear"
    # one sweep's curve with a reference that has a value <= 0: the curve's centre is the mean too
    ref = _Sweep([-0.2, 0.9, 0.8, 0.7]).scores
    ax = scaling_curve(_Sweep(NLPD_B).scores, "nlpd", reference=ref, label="b").axes[0]
    np.testing.assert_allclose(_line(ax, "b").get_ydata(), [np.mean(v) for v in _by_size(NLPD_B)], rtol=1e-12)


def test_scores_html_names_the_statistic_and_shows_a_difference_not_a_ratio():
    table = score_table({"a": _Sweep(NLPD_A), "b": _Sweep(NLPD_B)}, "nlpd")
    html = str(scores_html(table, ["a", "b"], "nlpd"))
    assert "difference b \u2212 a" in html and "ratio" not in html and "nlpd mean" in html
    diff = np.mean(NLPD_B[:2]) - np.mean(NLPD_A[:2])
    assert f"<td>{diff:.4g}</td>" in html


@pytest.fixture(scope="module")
def small_sweep():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(10, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1])
    return gpviz.cv_sweep(lambda tx, ty: SingleTaskGP(tx, ty), X, Y, [5], 2, progress=False,
                          fit_kwargs={"optimizer_kwargs": {"options": {"maxiter": 10}}})


def test_compare_page_and_scores_say_which_statistic(small_sweep):
    a, b = copy.copy(small_sweep), copy.copy(small_sweep)
    a.scores = small_sweep.scores.assign(nlpd=[-0.05, 0.4])
    b.scores = small_sweep.scores.assign(nlpd=[0.02, 0.38])
    a.reference_scores = b.reference_scores = None
    fig = gpviz.compare({"a": a, "b": b}, "nlpd", pull_repeats=0)
    assert (fig.scores.center_kind == "mean").all()
    row = fig.scores[fig.scores.label == "b"].iloc[0]
    assert row.center == pytest.approx(np.mean([0.02, 0.38])) and np.isnan(row.ratio_to_first)
    assert row.diff_to_first == pytest.approx(np.mean([0.02, 0.38]) - np.mean([-0.05, 0.4]))
    page = fig.html()
    assert "the line is the mean over repeats" in page and "difference b \u2212 a" in page
