"""cv_sweep(refit=False): one model per cell, its leave-one-out predictions in closed form (BoTorch's efficient_loo_cv).

References are computed without gpviz's cell code: the cell's model fitted by hand with
``fit_gpytorch_mll`` on the cell's rows, then ``botorch.cross_validation.efficient_loo_cv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.cross_validation import efficient_loo_cv
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.comparing import gap_sentence, optimism_gaps
from gpviz.errors import InputError
from gpviz.sweep.cache import sweep_identity
from gpviz.sweep.cells import nlpd
from gpviz.sweep.runner import cv_sweep
from tests.sweep.scale import FIT, REPEATS, SIZES, assert_same_sweep, make_data, matern

try:
    from tests.test_ax import ax_run  # noqa: F401 - test_ax's real Ax experiment, as a fixture here
except pytest.skip.Exception:  # no Ax installed: only the Ax test below is skipped, not this module
    @pytest.fixture
    def ax_run():
        pytest.skip("ax-platform (the `ax` extra) is not installed")

SEED = 3


@pytest.fixture(scope="module")
def fixed():
    X, Y = make_data()
    Y = 50.0 + 20.0 * Y  # far from standardized: scores must come back in the data's units
    return X, Y, cv_sweep(matern, X, Y, SIZES, REPEATS, seed=SEED, progress=False, fit_kwargs=FIT, refit=False)


def _by_hand(X, Y, rows, observation_noise=True):
    """The cell by hand: the factory on the cell's rows, fit_gpytorch_mll, BoTorch's efficient_loo_cv."""
    model = matern(X[rows], Y[rows])
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model), **FIT)
    model.eval()
    cv = efficient_loo_cv(model, observation_noise=observation_noise)
    post = cv.posterior
    return model, post.mean.detach().reshape(-1), post.variance.detach().reshape(-1), cv.observed_Y.reshape(-1)


def test_every_fixed_cell_scores_as_efficient_loo_cv_on_a_model_fitted_by_hand(fixed):
    X, Y, sw = fixed
    assert sw.mode == "fixed" and sw.refit is False and "efficient_loo_cv" in sw.mode_note
    assert (sw.scores["status"] == "ok").all()
    for (i_config, i_repeat), rows in sw.subsets.items():
        _, mean, var, observed = _by_hand(X, Y, torch.as_tensor(rows))
        pred = sw.predictions[(sw.predictions["i_config"] == i_config) & (sw.predictions["i_repeat"] == i_repeat)]
        np.testing.assert_allclose(pred["y_true"], observed.numpy(), rtol=1e-10)   # the data's units
        np.testing.assert_allclose(pred["y_true"], Y[rows, 0].numpy(), rtol=1e-12)
        np.testing.assert_allclose(pred["pred_mean"], mean.detach().numpy(), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(pred["pred_var"], var.detach().numpy(), rtol=1e-6)
        score = sw.scores[(sw.scores["i_config"] == i_config) & (sw.scores["i_repeat"] == i_repeat)].iloc[0]
        assert score["mse"] == pytest.approx(float(((observed - mean) ** 2).mean()), rel=1e-6)
        assert score["nlpd"] == pytest.approx(nlpd(observed.numpy(), mean.detach().numpy(), var.detach().numpy()),
                                              rel=1e-6)
        assert 40 < pred["pred_mean"].mean() < 80  # not standardized units


def test_the_models_of_a_fixed_sweep_are_the_cells_full_data_fits_and_give_its_scores(fixed):
    X, Y, sw = fixed
    for (i_config, i_repeat), rows in sw.subsets.items():
        model = sw.models(sw.sizes[i_config], i_repeat)
        assert torch.equal(model.train_inputs[0], X[rows].to(model.train_inputs[0]))  # n x d: all the cell's rows
        cv = efficient_loo_cv(model)
        pred = sw.predictions[(sw.predictions["i_config"] == i_config) & (sw.predictions["i_repeat"] == i_repeat)]
        np.testing.assert_allclose(pred["pred_mean"], cv.posterior.mean.reshape(-1).detach().numpy(), rtol=1e-10)
        hand, *_ = _by_hand(X, Y, torch.as_tensor(rows))
        cell = sw.parameters[(sw.parameters["i_config"] == i_config) & (sw.parameters["i_repeat"] == i_repeat)]
        pd.testing.assert_frame_equal(cell.drop(columns=["i_config", "size", "i_repeat"]).reset_index(drop=True),
                                      gpviz.parameters(hand), rtol=1e-6)


def test_a_fixed_cell_takes_the_rows_of_the_refit_cell_and_one_dot_per_repeat(fixed):
    X, Y, sw = fixed
    refit = cv_sweep(matern, X, Y, SIZES, REPEATS, seed=SEED, progress=False, fit_kwargs=FIT)
    assert refit.mode == "batched" and refit.refit
    assert sw.subsets.keys() == refit.subsets.keys()
    for cell, rows in sw.subsets.items():
        np.testing.assert_array_equal(rows, refit.subsets[cell])
    cols = ["i_config", "i_repeat", "i_model", "index"]
    pd.testing.assert_frame_equal(sw.predictions[cols], refit.predictions[cols])
    assert len(sw.parameters) == len(SIZES) * REPEATS and (sw.parameters["i_model"] == 0).all()
    assert len(refit.parameters) == sum(SIZES) * REPEATS
    # the closed form keeps the full-data hyperparameters, so its folds predict at least as well here
    assert sw.scores["mse"].mean() <= refit.scores["mse"].mean() * 1.5


def test_order_trials_and_latent_variances_work_as_for_refit_sweeps():
    X, Y = make_data()
    sw = cv_sweep(matern, X, Y, [5, 7], 1, progress=False, fit_kwargs=FIT, refit=False, order="trials",
                  observation_noise=False)
    for (i_config, _), rows in sw.subsets.items():
        np.testing.assert_array_equal(rows, np.arange(sw.sizes[i_config]))
        _, mean, var, _ = _by_hand(X, Y, torch.as_tensor(rows), observation_noise=False)
        pred = sw.predictions[sw.predictions["i_config"] == i_config]
        np.testing.assert_allclose(pred["pred_var"], var.detach().numpy(), rtol=1e-6, atol=1e-12)


def test_refit_enters_the_cache_identity_and_a_rerun_reads_the_fixed_cells(tmp_path, fixed):
    X, Y, sw = fixed
    refit_id = sweep_identity(X, Y, matern, FIT, ExactMarginalLogLikelihood, True)
    fixed_id = sweep_identity(X, Y, matern, FIT, ExactMarginalLogLikelihood, True, mode="fixed")
    assert fixed_id["refit"] is False and "refit" not in refit_id
    assert {k: v for k, v in fixed_id.items() if k not in ("refit", "model")} == \
        {k: v for k, v in refit_id.items() if k != "model"}
    first = cv_sweep(matern, X, Y, SIZES, REPEATS, seed=SEED, progress=False, fit_kwargs=FIT, refit=False,
                     cache_dir=tmp_path)
    assert_same_sweep(sw, first, cached=[False] * len(first.scores))
    again = cv_sweep(matern, X, Y, SIZES, REPEATS, seed=SEED, progress=False, fit_kwargs=FIT, refit=False,
                     cache_dir=tmp_path)
    assert_same_sweep(sw, again, cached=[True] * len(again.scores))
    pd.testing.assert_frame_equal(gpviz.parameters(again.models(SIZES[-1], 1)),
                                  gpviz.parameters(sw.models(SIZES[-1], 1)), check_exact=True)
    # a refit sweep in the same folder is another namespace: nothing of the fixed cells is read
    refit = cv_sweep(matern, X, Y, SIZES, REPEATS, seed=SEED, progress=False, fit_kwargs=FIT, cache_dir=tmp_path)
    assert not refit.scores["cached"].any()
    assert len(list(tmp_path.glob("sweep-*"))) == 2


@pytest.mark.slow
def test_workers_and_dask_give_the_in_process_fixed_sweep(fixed, dask_client):
    X, Y, sw = fixed
    par = cv_sweep(matern, X, Y, SIZES, REPEATS, seed=SEED, progress=False, fit_kwargs=FIT, refit=False, workers=2)
    assert_same_sweep(sw, par)
    on_dask = cv_sweep(matern, X, Y, SIZES, REPEATS, seed=SEED, progress=False, fit_kwargs=FIT, refit=False,
                       executor=dask_client)
    assert_same_sweep(sw, on_dask)


def test_the_sweep_page_says_the_folds_were_taken_in_closed_form(fixed):
    *_, sw = fixed
    html = sw.render(verdicts=True).html()
    assert "closed form" in html and "efficient_loo_cv" in html


@pytest.mark.parametrize("kwargs, match", [
    (dict(refit=False, folds="separate"), r"folds='separate' chooses how refit folds are fitted.*refit=False"),
    (dict(refit="no"), r"refit must be True .* or False"),
    (dict(folds="one"), r"unknown folds: 'one'"),
])
def test_bad_refit_and_folds_are_refused(kwargs, match):
    X, Y = make_data()
    with pytest.raises(InputError, match=match):
        cv_sweep(SingleTaskGP, X, Y, [4], 1, progress=False, **kwargs)


# -- the optimism gap: a fixed sweep against a refit sweep of the same cells, in compare() ------------------------

def test_the_optimism_gap_is_the_ratio_of_the_two_sweeps_geometric_means_per_size(fixed):
    X, Y, sw = fixed
    refit = cv_sweep(matern, X, Y, SIZES, REPEATS, seed=SEED, progress=False, fit_kwargs=FIT)
    other_seed = cv_sweep(matern, X, Y, SIZES, REPEATS, seed=SEED + 1, progress=False, fit_kwargs=FIT)
    [(refit_label, fixed_label, gap)] = optimism_gaps({"other seed": other_seed, "refit": refit, "fixed": sw})
    assert (refit_label, fixed_label) == ("refit", "fixed")  # the pair with the same rows, not another seed's
    for row in gap.itertuples():
        geo = {name: float(np.exp(np.log(s.scores.loc[s.scores["size"] == row.size, "mse"]).mean()))
               for name, s in (("refit", refit), ("fixed", sw))}
        assert row.refit == pytest.approx(geo["refit"], rel=1e-12)
        assert row.fixed == pytest.approx(geo["fixed"], rel=1e-12)
        assert row.ratio == pytest.approx(geo["fixed"] / geo["refit"], rel=1e-12)
    sentence = gap_sentence(refit_label, fixed_label, gap, "mse")
    assert all(f"{r:.2f}x at n = {n}" in sentence for n, r in zip(gap["size"], gap["ratio"]))
    html = gpviz.compare({"refit": refit, "fixed": sw}, pull_repeats=0).html()
    assert "Optimism gap" in html and f"{gap['ratio'].iloc[0]:.2f}x at n = {SIZES[0]}" in html
    assert "Optimism gap" not in gpviz.compare({"refit": refit, "other seed": other_seed}, pull_repeats=0).html()


@pytest.mark.slow
def test_an_ax_client_in_trial_order_with_refit_false_scores_as_efficient_loo_cv_on_its_cell_models(ax_run):
    sw = cv_sweep(ax_run.client, sizes=[5, 8], order="trials", progress=False, refit=False)
    assert list(sw.scores["status"]) == ["ok", "ok"] and sw.mode == "fixed"
    assert sw.parameters.groupby("size").size().to_dict() == {5: 1, 8: 1}  # one model per cell
    for i_config, size in enumerate(sw.sizes):
        model = sw.models(size, 0)
        assert model.train_inputs[0].shape[-2] == size  # the first `size` trials, all of them
        cv = efficient_loo_cv(model)  # Ax's model standardizes Y: BoTorch untransforms to the metric's units
        pred = sw.predictions[sw.predictions["i_config"] == i_config]
        np.testing.assert_allclose(pred["pred_mean"], cv.posterior.mean.reshape(-1).detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(pred["y_true"], cv.observed_Y.reshape(-1).numpy(), rtol=1e-10)
    assert_same_sweep(sw, cv_sweep(ax_run.client, sizes=[5, 8], order="trials", progress=False, refit=False,
                                   workers=2))
