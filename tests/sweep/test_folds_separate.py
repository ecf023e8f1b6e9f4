"""cv_sweep(folds=...): folds fitted one by one for factories that are not batch-aware, and the auto choice.

References: each fold fitted by hand, one model per fold, with ``fit_gpytorch_mll`` on
``gen_loo_cv_folds``' folds, and BoTorch's own ``batch_cross_validation`` for batched folds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.errors import InputError
from gpviz.priors.sweep_pull import sweep_prior_pull
from gpviz.sweep.runner import cv_sweep
from gpviz.view.adapters import sweep_in_units, sweep_info
from tests.sweep.scale import FIT, REPEATS, SIZES, assert_same_sweep, make_data, matern

HEAD = ["i_config", "size", "i_repeat"]


def plain(train_X, train_Y):
    """A factory as users write it: no batch_shape anywhere (fails as a batch of folds)."""
    return SingleTaskGP(train_X, train_Y, covar_module=ScaleKernel(MaternKernel(ard_num_dims=train_X.shape[-1])))


@pytest.fixture(scope="module")
def separate():
    X, Y = make_data()
    return X, Y, cv_sweep(plain, X, Y, SIZES, REPEATS, seed=2, progress=False, fit_kwargs=FIT)


def _folds_by_hand(factory, X, Y, rows):
    """Each leave-one-out fold fitted as its own model: (means, variances, parameter frame with i_model = fold)."""
    folds = gen_loo_cv_folds(X[rows], Y[rows])
    means, variances, params = [], [], []
    for i in range(len(rows)):
        model = factory(folds.train_X[i], folds.train_Y[i])
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model), **FIT)
        model.eval()
        with torch.no_grad():
            post = model.posterior(folds.test_X[i], observation_noise=True)
        means.append(float(post.mean.detach()))
        variances.append(float(post.variance.detach()))
        params.append(gpviz.parameters(model).assign(i_model=i))
    return np.array(means), np.array(variances), pd.concat(params, ignore_index=True)


def test_auto_fits_a_factory_without_batch_shapes_fold_by_fold_with_no_failed_cell(separate):
    X, Y, sw = separate
    assert sw.mode == "separate" and "batch shape" in sw.mode_note
    assert (sw.scores["status"] == "ok").all() and (sw.scores["error"] == "").all()
    for (i_config, i_repeat), rows in sw.subsets.items():
        means, variances, params = _folds_by_hand(plain, X, Y, torch.as_tensor(rows))
        pred = sw.predictions[(sw.predictions["i_config"] == i_config) & (sw.predictions["i_repeat"] == i_repeat)]
        np.testing.assert_allclose(pred["pred_mean"], means, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(pred["pred_var"], variances, rtol=1e-6)
        cell = sw.parameters[(sw.parameters["i_config"] == i_config) & (sw.parameters["i_repeat"] == i_repeat)]
        pd.testing.assert_frame_equal(cell.drop(columns=HEAD).reset_index(drop=True), params[cell.columns[3:]],
                                      rtol=1e-6, check_dtype=False)


def test_batched_and_separate_folds_give_the_same_scores_and_parameters():
    X, Y = make_data()
    auto = cv_sweep(matern, X, Y, SIZES, REPEATS, seed=2, progress=False, fit_kwargs=FIT)
    assert auto.mode == "batched" and "one batched model" in auto.mode_note
    one_by_one = cv_sweep(matern, X, Y, SIZES, REPEATS, seed=2, progress=False, fit_kwargs=FIT, folds="separate")
    assert one_by_one.mode == "separate"
    metrics = list(auto.metrics)
    pd.testing.assert_frame_equal(auto.scores[HEAD + metrics], one_by_one.scores[HEAD + metrics], rtol=1e-5)
    pd.testing.assert_frame_equal(auto.parameters, one_by_one.parameters, rtol=1e-5, atol=1e-8)
    pd.testing.assert_frame_equal(auto.predictions, one_by_one.predictions, rtol=1e-5, atol=1e-8)


def test_models_of_a_separate_cell_are_its_fold_models(separate):
    X, Y, sw = separate
    models = sw.models(SIZES[-1], 1)
    rows = sw.subsets[(len(SIZES) - 1, 1)]
    assert isinstance(models, list) and len(models) == SIZES[-1]
    cell = sw.parameters[(sw.parameters["size"] == SIZES[-1]) & (sw.parameters["i_repeat"] == 1)]
    for i, model in enumerate(models):
        assert torch.equal(model.train_inputs[0], X[np.delete(rows, i)])  # fold i left out rows[i]
        mine = cell[cell["i_model"] == i].drop(columns=HEAD).assign(i_model=0).reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, gpviz.parameters(model), check_exact=True, check_dtype=False)
    assert not isinstance(sw.model, list)  # the expression's model: one fold


def test_a_separate_sweep_is_judged_fold_by_fold_and_its_page_says_how_it_was_fitted(separate):
    X, Y, sw = separate
    pull = sweep_prior_pull(sw)
    assert len(pull) and set(pull["i_model"]) == set(range(SIZES[-1]))
    models = sw.models(SIZES[0], 0)
    alone = gpviz.prior_pull(models[2])
    mine = pull[(pull["size"] == SIZES[0]) & (pull["i_repeat"] == 0) & (pull["i_model"] == 2)]
    assert mine["key"].tolist() == alone["key"].tolist()
    np.testing.assert_allclose(mine["value"], alone["value"], rtol=1e-12)
    html = sw.render().html()
    assert "fits each fold as its own model" in html


def test_folds_batched_still_refuses_a_factory_without_batch_shapes_and_names_separate():
    X, Y = make_data()
    with pytest.raises(InputError, match=r"without that batch shape.*folds='separate'"):
        cv_sweep(plain, X, Y, [4], 1, progress=False, fit_kwargs=FIT, folds="batched")


@pytest.mark.slow
def test_separate_folds_in_workers_and_from_the_cache_are_the_in_process_sweep(separate, tmp_path):
    X, Y, sw = separate
    par = cv_sweep(plain, X, Y, SIZES, REPEATS, seed=2, progress=False, fit_kwargs=FIT, workers=2,
                   cache_dir=tmp_path)
    assert_same_sweep(sw, par, cached=[False] * len(par.scores))
    again = cv_sweep(plain, X, Y, SIZES, REPEATS, seed=2, progress=False, fit_kwargs=FIT, cache_dir=tmp_path)
    assert_same_sweep(sw, again, cached=[True] * len(again.scores))
    assert isinstance(again.models(SIZES[0], 0), list)


def test_original_units_convert_each_separate_fold_with_its_own_transforms_as_the_batched_folds():
    X, Y = make_data()
    Y = 10.0 + 5.0 * Y  # each fold's Standardize has its own scale
    batched = cv_sweep(matern, X, Y, [5], 2, seed=2, progress=False, fit_kwargs=FIT, folds="batched")
    one_by_one = cv_sweep(matern, X, Y, [5], 2, seed=2, progress=False, fit_kwargs=FIT, folds="separate")
    converted = []
    for sw in (batched, one_by_one):
        expr = sw.expression()
        params, _, _ = sweep_in_units(sw, expr, sweep_info(sw, expr), "original")
        assert not np.allclose(params["covar_module.outputscale"], sw.parameters["covar_module.outputscale"])
        converted.append(params)
    pd.testing.assert_frame_equal(converted[0], converted[1], rtol=1e-5, atol=1e-8)
