"""Sweep.models and Sweep.model: the fitted model of every cell, from a fit or from the cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Normalize

import gpviz
from gpviz.errors import GpvizWarning, InputError
from gpviz.sweep.runner import cv_sweep
from gpviz.view.adapters import sweep_in_units, sweep_info
from tests.sweep.scale import FIT, KEYS, REPEATS, SIZES

# -- fitted models of every cell ---------------------------------------------------------------------------------

def test_models_of_cells_from_a_fit_and_from_the_cache_are_the_fitted_models(tmp_path, data, reference):
    X, Y = data
    fitted = reference["stgp"]
    cv_sweep(SingleTaskGP, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT, cache_dir=tmp_path)
    cached = cv_sweep(SingleTaskGP, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT,
                      cache_dir=tmp_path)
    assert cached.scores["cached"].all()
    for sweep in (fitted, cached):
        for (i_config, i_repeat), rows in sweep.subsets.items():
            size = SIZES[i_config]
            model = sweep.models(size, i_repeat)
            assert model.train_inputs[0].shape == (size, size - 1, 2) and not model.training
            p = sweep.parameters
            want = p[(p.i_config == i_config) & (p.i_repeat == i_repeat)].drop(columns=KEYS).reset_index(drop=True)
            pd.testing.assert_frame_equal(gpviz.parameters(model), want, check_exact=True)
            # the rebuilt model predicts the held-out points as the fitted one did (to the last bits of rounding)
            pr = sweep.predictions
            cell = pr[(pr.i_config == i_config) & (pr.i_repeat == i_repeat)]
            test_X = X[torch.as_tensor(rows)].unsqueeze(1)
            with torch.no_grad():
                post = model.posterior(test_X, observation_noise=True)
            np.testing.assert_allclose(post.mean.reshape(-1).numpy(), cell["pred_mean"].to_numpy(), rtol=1e-12)
        # sweep.model is a fitted model (the last cell's), the same from a fit and from the cache
        pd.testing.assert_frame_equal(gpviz.parameters(sweep.model), gpviz.parameters(sweep.models(6, 1)))
    assert sweep.models(6, 1) is not sweep.models(6, 1)  # a new model per call: the caller may change it


def test_models_says_which_cell_is_missing(data):
    X, Y = data

    def fail_at_5(tx, ty):
        if tx.shape[0] == 5:
            raise RuntimeError("no model at n=5")
        return SingleTaskGP(tx, ty)

    with pytest.warns(GpvizWarning, match="n=5, repeat 0 failed"):
        sw = cv_sweep(fail_at_5, X, Y, [4, 5], 1, progress=False, fit_kwargs=FIT)
    with pytest.raises(InputError, match="cell n=5, repeat 0 has no fitted model.*no model at n=5"):
        sw.models(5, 0)
    with pytest.raises(InputError, match=r"size 7 is not one of the sweep's sizes \[4, 5\]"):
        sw.models(7, 0)
    with pytest.raises(InputError, match=r"repeat must be an integer in 0..0, got 1"):
        sw.models(4, 1)
    assert sw.models(4, 0).train_inputs[0].shape[0] == 4
    assert gpviz.parameters(sw.model).equals(gpviz.parameters(sw.models(4, 0)))  # the last cell that finished


def test_a_sweep_in_original_units_converts_each_cell_with_its_own_transforms():
    g = torch.Generator().manual_seed(0)
    X = 10 + 40 * torch.rand(14, 2, generator=g, dtype=torch.float64)  # inputs in [10, 50]: Normalize matters
    Y = torch.sin(X[:, :1] / 8) + 0.05 * torch.randn(14, 1, generator=g, dtype=torch.float64)

    def make(tx, ty):
        return SingleTaskGP(tx, ty, input_transform=Normalize(d=2, batch_shape=tx.shape[:-2]))

    sw = cv_sweep(make, X, Y, [5, 7], 2, progress=False, fit_kwargs=FIT)
    expr = sw.expression(["a", "b"])
    params, info, shown = sweep_in_units(sw, expr, sweep_info(sw, expr), "original")
    lengths = [k for k in expr.keys if "lengthscale" in k]
    assert len(lengths) == 2
    for (i_config, i_repeat), cell in sw.parameters.groupby(["i_config", "i_repeat"]):
        model = sw.models(sw.sizes[i_config], i_repeat)
        bounds = model.input_transform.bounds  # size x 2 x d: each fold's own training range
        for j, key in enumerate(lengths):
            expected = (model.covar_module.lengthscale[:, 0, j] * (bounds[:, 1, j] - bounds[:, 0, j])).detach()
            got = params.loc[cell.index].sort_values("i_model")[key].to_numpy()
            np.testing.assert_allclose(got, expected.numpy(), rtol=1e-9)
        # the mean through each fold's own Standardize: y = sigma * c + mu
        ot = model.outcome_transform
        expected = (model.mean_module.constant.reshape(-1) * ot.stdvs.reshape(-1) + ot.means.reshape(-1)).detach()
        got = params.loc[cell.index].sort_values("i_model")["mean_module.constant"].to_numpy()
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-9)
    # the folds' ranges differ, so one scale for the whole sweep would be wrong
    assert sw.models(5, 0).input_transform.bounds.unique(dim=0).shape[0] > 1
    # the page draws them in those units and says so; model units stay the default
    page = sw.render(units="original", verdicts=False).html()
    assert [s.note for s in expr.sections] == ["normalized inputs", "standardized outputs", "standardized outputs"]
    assert [s.note.split(";")[0] for s in shown.sections] == ["original inputs", "original outputs", "original outputs"]
    assert page != sw.render(verdicts=False).html() and "(original inputs;" in page
    assert gpviz.render(sw, units="original", verdicts=False).html() == page
    with pytest.raises(InputError, match="units"):
        sw.render(units="data")


def test_an_option_a_sweep_page_does_not_take_is_an_input_error(reference):
    with pytest.raises(InputError, match="tasks"):
        reference["stgp"].render(tasks=["a", "b"])
    with pytest.raises(InputError, match="did you mean 'metric'"):
        reference["stgp"].render(metrc="mse")


# -- what a dot is -------------------------------------------------------------------------------------------------

def test_sweep_and_comparison_pages_name_their_dots_folds_or_repeats(reference):
    sw = reference["stgp"]
    assert sw.member_label() == "leave-one-out folds" and sw.member_label(True) == "repeats"
    folds = sw.render(verdicts=False).html()
    assert "one dot per leave-one-out fold" in folds and "one dot per member" not in folds
    repeats = sw.render(one_fold_per_repeat=True, verdicts=False).html()
    assert "one dot per repeat" in repeats and "one dot per member" not in repeats
    cmp = gpviz.compare({"a": sw, "b": reference["loose"]}, pull_repeats=0).html()
    assert "one dot per leave-one-out fold" in cmp and "one dot per member" not in cmp
    cmp = gpviz.compare({"a": sw}, pull_repeats=0, one_fold_per_repeat=True).html()
    assert "one dot per repeat" in cmp and "one dot per member" not in cmp
