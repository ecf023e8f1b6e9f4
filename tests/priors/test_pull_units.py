"""prior_pull takes the shared options: units= converts like render/parameters; anything else is an InputError."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Normalize
from botorch.models.transforms.outcome import Standardize
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.errors import InputError


@pytest.fixture(scope="module")
def transformed():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(16, 2, generator=g, dtype=torch.float64) * torch.tensor([1.0, 10.0], dtype=torch.float64)
    Y = 50 + 20 * torch.sin(4 * X[:, :1]) + 3 * torch.cos(X[:, 1:] / 2)
    model = SingleTaskGP(X, Y, input_transform=Normalize(d=2), outcome_transform=Standardize(m=1))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model, Y


def test_prior_pull_in_original_units_by_hand(transformed):
    model, Y = transformed
    base = gpviz.prior_pull(model).set_index("key")
    orig = gpviz.prior_pull(model, units="original").set_index("key")
    coef = model.input_transform.coefficient.reshape(-1).tolist()  # each input's range (Normalize)
    sd, mu = float(Y.std()), float(Y.mean())                          # Standardize's σ and μ
    scale = {"covar_module.lengthscale[0]": coef[0], "covar_module.lengthscale[1]": coef[1],
             "likelihood.noise_covar.noise": sd ** 2, "mean_module.constant": sd}
    for key, s in scale.items():
        o = mu if key == "mean_module.constant" else 0.0
        assert orig.loc[key, "value"] == pytest.approx(base.loc[key, "value"] * s + o, rel=1e-9)
        assert orig.loc[key, "d_log_lik"] == pytest.approx(base.loc[key, "d_log_lik"] / s, rel=1e-9)
        assert orig.loc[key, "curv_prior"] == pytest.approx(base.loc[key, "curv_prior"] / s ** 2, rel=1e-9)
        for col in ("raw", "ratio", "prior_share", "verdict"):
            assert orig.loc[key, col] == base.loc[key, col] or (np.isnan(orig.loc[key, col])
                                                               and np.isnan(base.loc[key, col]))
    # a prior mode in original units is the one parameters(units="original") and the page show
    long = gpviz.parameters(model, long=True, units="original").set_index("key")
    np.testing.assert_allclose(orig.loc[list(scale), "prior_mode"], long.loc[list(scale), "prior_mode"], rtol=1e-12)
    # a log distance is a ratio: the same in any units
    ls = "covar_module.lengthscale[0]"
    assert orig.loc[ls, "distance"] == pytest.approx(base.loc[ls, "distance"], rel=1e-9)


def test_prior_pull_options_are_typed_errors(transformed):
    model, _ = transformed
    with pytest.raises(InputError, match="units"):
        gpviz.prior_pull(model, units="data")
    with pytest.raises(InputError, match=r"prior_pull\(\) does not take title="):
        gpviz.prior_pull(model, title="x")
    with pytest.raises(InputError, match="unknown option 'unit'; did you mean 'units'"):
        gpviz.prior_pull(model, unit="original")


def test_prior_pull_of_an_ax_client_in_original_units():
    pytest.importorskip("ax")
    from tests.test_ax import attach_trials, new_client, run_trials

    logging.getLogger("ax").setLevel(logging.WARNING)
    client = new_client()
    run_trials(client, 5)
    attach_trials(client, 4, seed=1)
    run_trials(client, 1)
    orig = gpviz.prior_pull(client, units="original").set_index("key")  # main: TypeError
    long = gpviz.parameters(client, long=True, units="original").set_index("key")
    np.testing.assert_allclose(orig.loc[long.index, "value"], long["value"], rtol=1e-9)
