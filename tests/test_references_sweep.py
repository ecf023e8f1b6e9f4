"""cv_sweep's and compare's numbers, each against a reference computed without gpviz.

The held-out scores are recomputed with numpy from BoTorch's own ``batch_cross_validation``
on the same subset (not from ``sweep.predictions``, which gpviz makes); the "predict the
training mean" reference scores from BoTorch's ``gen_loo_cv_folds`` training targets; the
``evaluations`` column by counting the factory's models' forward calls; ``Sweep.summary``
and the comparison table by numpy percentiles and means of the scores.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.cross_validation import batch_cross_validation, gen_loo_cv_folds
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.sweep.identity import building_for_identity
from gpviz.sweep.scores import score_table

SIZES, REPEATS = (5, 7), 2
FIT = {"optimizer_kwargs": {"options": {"maxiter": 30}}}


def _data(n=16, d=2, seed=4):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.cos(2 * X[:, :1]) + X[:, 1:] + 0.01 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


class Counting:
    """A SingleTaskGP factory that counts each built model's forward calls in training mode (the fit's evaluations)."""

    def __init__(self):
        self.calls: list[list[int]] = []

    def __call__(self, train_X, train_Y):
        m = SingleTaskGP(train_X, train_Y)
        if building_for_identity():  # folds="auto" builds once to choose how folds are fitted: not a cell
            return m
        calls = [0]
        orig = m.forward

        def forward(*a, **k):
            if m.training:
                calls[0] += 1
            return orig(*a, **k)

        m.forward = forward
        self.calls.append(calls)
        return m


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def counted(data):
    X, Y = data
    factory = Counting()
    sweep = gpviz.cv_sweep(factory, X, Y, sizes=list(SIZES), repeats=REPEATS, seed=0, progress=False,
                           observation_noise=True, fit_kwargs=FIT)
    return sweep, factory


def _botorch_scores(X, Y, rows, observation_noise=True):
    folds = gen_loo_cv_folds(X[rows], Y[rows])
    cv = batch_cross_validation(SingleTaskGP, ExactMarginalLogLikelihood, folds, fit_args=FIT,
                                observation_noise=observation_noise)
    y = cv.observed_Y.reshape(-1).numpy()
    mean = cv.posterior.mean.detach().reshape(-1).numpy()
    var = cv.posterior.variance.detach().reshape(-1).numpy()
    err = y - mean
    return {"mse": np.mean(err ** 2), "mae": np.mean(np.abs(err)),
            "nlpd": np.mean(0.5 * np.log(2 * np.pi * var) + err ** 2 / (2 * var))}


def test_scores_equal_numpy_formulas_on_botorchs_batch_cross_validation(counted, data):
    X, Y = data
    sweep, _ = counted
    s = sweep.scores
    assert (s["status"] == "ok").all(), s["error"].tolist()
    for (i_config, i_repeat), rows in sweep.subsets.items():
        ref = _botorch_scores(X, Y, rows)
        row = s[(s.i_config == i_config) & (s.i_repeat == i_repeat)].iloc[0]
        for metric, value in ref.items():
            assert row[metric] == pytest.approx(value, rel=1e-7), (i_config, i_repeat, metric)


def test_evaluations_column_equals_the_forward_calls_of_each_cells_model(counted):
    sweep, factory = counted
    s = sweep.scores
    assert len(factory.calls) == len(s)  # one model per cell, built in cell order in this process
    counts = [c[0] for c in factory.calls]
    assert min(counts) > 1
    assert s["evaluations"].tolist() == counts


def test_reference_scores_are_the_training_mean_and_variance_of_botorchs_folds(counted, data):
    X, Y = data
    sweep, _ = counted
    ref = sweep.reference_scores
    for (i_config, i_repeat), rows in sweep.subsets.items():
        folds = gen_loo_cv_folds(X[rows], Y[rows])
        train = folds.train_Y[..., 0].numpy()  # n x (n-1)
        test = folds.test_Y.reshape(-1).numpy()
        m, v = train.mean(-1), train.var(-1, ddof=1)
        row = ref[(ref.i_config == i_config) & (ref.i_repeat == i_repeat)].iloc[0]
        assert row["mse"] == pytest.approx(np.mean((test - m) ** 2), rel=1e-12)
        assert row["mae"] == pytest.approx(np.mean(np.abs(test - m)), rel=1e-12)
        assert row["nlpd"] == pytest.approx(np.mean(0.5 * np.log(2 * np.pi * v) + (test - m) ** 2 / (2 * v)),
                                            rel=1e-12)


@pytest.mark.parametrize("metric", ["mse", "mae"])
def test_summary_is_numpys_percentiles_and_geometric_mean(counted, metric):
    sweep, _ = counted
    summary = sweep.summary(metric)
    assert summary["size"].tolist() == list(SIZES)
    for _, row in summary.iterrows():
        v = sweep.scores.loc[sweep.scores["size"] == row["size"], metric].to_numpy()
        assert row["low"] == pytest.approx(np.percentile(v, 10), rel=1e-12)
        assert row["high"] == pytest.approx(np.percentile(v, 90), rel=1e-12)
        assert row["center"] == pytest.approx(math.exp(np.mean(np.log(v))), rel=1e-12)


@pytest.mark.parametrize("metric", ["mse", "nlpd"])
def test_comparison_centres_ratios_and_differences_are_numpys(counted, data, metric):
    """Two sweeps that differ only in their fit budget, per size: the geometric mean with ratios when every value
    of both sweeps is > 0, else the arithmetic mean with differences only (no ratio), from numpy on their scores."""
    X, Y = data
    sweep, _ = counted
    other = gpviz.cv_sweep(SingleTaskGP, X, Y, sizes=list(SIZES), repeats=REPEATS, seed=0, progress=False,
                           observation_noise=True, fit_kwargs={"optimizer_kwargs": {"options": {"maxiter": 3}}})
    table = score_table({"a": sweep, "b": other}, metric).set_index(["size", "label"])
    positive = bool((sweep.scores[metric] > 0).all() and (other.scores[metric] > 0).all())
    assert positive == (metric == "mse")  # the data make some NLPDs negative: both branches are exercised

    def centre(s, size):
        v = s.scores.loc[s.scores["size"] == size, metric].to_numpy()
        return math.exp(np.mean(np.log(v))) if positive else float(np.mean(v))

    for size in SIZES:
        a, b = centre(sweep, size), centre(other, size)
        assert table.loc[(size, "a"), "center"] == pytest.approx(a, rel=1e-12)
        assert table.loc[(size, "b"), "center"] == pytest.approx(b, rel=1e-12)
        assert table.loc[(size, "b"), "diff_to_first"] == pytest.approx(b - a, rel=1e-12, abs=1e-15)
        if positive:
            assert table.loc[(size, "b"), "ratio_to_first"] == pytest.approx(b / a, rel=1e-12)
            assert table.loc[(size, "a"), "ratio_to_first"] == pytest.approx(1.0)
        else:
            assert math.isnan(table.loc[(size, "b"), "ratio_to_first"])
