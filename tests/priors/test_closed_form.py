"""The likelihood term's derivatives in closed form (closed_form_lik) give the rows the Hessian-vector path gives
(CLOSED_FORM off: quad_lik's surrogate for every key), on the family it covers; outside it nothing changes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.models import SingleTaskGP
from botorch.models.transforms import Normalize
from gpytorch.kernels import MaternKernel, PeriodicKernel, RBFKernel, ScaleKernel
from gpytorch.priors import GammaPrior

import gpviz.priors.derivatives as derivatives_module
import gpviz.priors.pull as pull_module
from gpviz.priors.factories import with_priors
from gpviz.priors.pull import prior_pull

from .test_quad import (NUMBERS, RTOL, data, fixed_noise, jitter_members, max_rel, pull_with_and_without,
                         record_calls)


def loo(kernel, n: int = 9, d: int = 3, seed: int = 0, priors: bool = True):
    """A batched LOO SingleTaskGP with ``kernel(batch, d)``, distinct values in every member."""
    folds = gen_loo_cv_folds(*data(n, d=d, seed=seed))
    batch = folds.train_X.shape[:-2]

    def make(train_X, train_Y):
        return SingleTaskGP(train_X, train_Y, covar_module=kernel(batch, d))

    model = (with_priors(make, lengthscale=GammaPrior(3.0, 6.0)) if priors else make)(folds.train_X, folds.train_Y)
    jitter_members(model, seed=seed)
    return model


def scaled(base):
    return lambda batch, d: ScaleKernel(base(batch, d), batch_shape=batch, outputscale_prior=GammaPrior(2.0, 0.15))


def matern(nu, ard=True):
    return lambda batch, d: MaternKernel(nu=nu, ard_num_dims=d if ard else None, batch_shape=batch)


def normalize_matern():
    X, Y = data(9, seed=4)
    model = SingleTaskGP(3 * X - 1, Y, covar_module=scaled(matern(2.5))(torch.Size([]), 3),
                         input_transform=Normalize(d=3))
    jitter_members(model, seed=4)
    return model


COVERED = {
    "loo_matern52_ard": lambda: loo(scaled(matern(2.5))),
    "loo_matern15_ard": lambda: loo(scaled(matern(1.5)), seed=1),
    "loo_matern05_ard": lambda: loo(scaled(matern(0.5)), seed=2),
    "loo_rbf_ard": lambda: loo(scaled(lambda b, d: RBFKernel(ard_num_dims=d, batch_shape=b)), seed=3),
    "fixed_noise_normalize": fixed_noise,  # train_Yvar and Normalize
    "normalize_matern": normalize_matern,
}


#: One lengthscale: GPyTorch's kernels run MaternCovariance / RBFCovariance when no input requires grad, whose
#: backward is not differentiated again correctly (the Hessian-vector path's lengthscale curvature was 2-3x
#: off until mll_terms passed inputs that require grad); both paths are also checked against finite
#: differences of log_prob.
ONE_LENGTHSCALE = {
    "loo_matern52_one_lengthscale": lambda: loo(scaled(matern(2.5, ard=False)), seed=5),
    "loo_rbf_one_lengthscale_bare": lambda: loo(lambda b, d: RBFKernel(batch_shape=b), seed=6),
}


class SubMatern(MaternKernel):
    """A subclass: its forward could differ, so the exact class check sends it to the Hessian-vector path."""


OUTSIDE = {
    "periodic": lambda: loo(scaled(lambda b, d: PeriodicKernel(ard_num_dims=d, batch_shape=b)), n=7, seed=7,
                            priors=False),
    "matern_subclass": lambda: loo(scaled(lambda b, d: SubMatern(nu=2.5, ard_num_dims=d, batch_shape=b)), seed=8),
}


@pytest.fixture
def spy(monkeypatch):
    """How many keys closed_form_lik covered, one entry per call."""
    return record_calls(monkeypatch, pull_module, "closed_form_lik", len)


def both_paths(model, monkeypatch):
    return pull_with_and_without(model, monkeypatch, "CLOSED_FORM")


def assert_same_rows(a, b, name):
    assert list(a.key) == list(b.key) and list(a.verdict) == list(b.verdict)
    for col in NUMBERS:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=col)
        # atol 0: every compared derivative is far from 0 at these values (no cancellation to absorb)
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=0, err_msg=f"{name}: {col}")
    worst = max(max_rel(a[c].to_numpy(), b[c].to_numpy()) for c in ("d_log_lik", "curv_lik"))
    print(f"{name}: max relative difference {worst:.1e}")


@pytest.mark.parametrize("name", list(COVERED))
def test_closed_form_rows_equal_the_hvp_rows(name, spy, monkeypatch):
    model = COVERED[name]()
    closed, hvp = both_paths(model, monkeypatch)
    n_keys = closed.key.nunique()
    assert spy[0] == n_keys  # the closed form covered every key (the CLOSED_FORM-off pull covers none)
    assert spy[1:] == [0]
    assert_same_rows(closed, hvp, name)
    assert (closed.curv_lik != 0).all() and (closed.d_log_lik != 0).any()


@pytest.mark.parametrize("name", list(OUTSIDE))
def test_outside_the_family_falls_back(name, spy, monkeypatch):
    model = OUTSIDE[name]()
    closed, hvp = both_paths(model, monkeypatch)
    assert spy == [0, 0]
    for col in NUMBERS:
        np.testing.assert_array_equal(closed[col].to_numpy(), hvp[col].to_numpy(), err_msg=col)


def test_a_wrong_closed_form_is_caught_by_the_gradient_check(spy, monkeypatch):
    """A closed form whose gradient disagrees with the term's backward pass is not used: the same rows as without."""
    model = COVERED["loo_matern52_ard"]()
    original = derivatives_module._radial

    def off(kind, rho):
        k0, p, h2, h1 = original(kind, rho)
        return k0, p * (1 + 1e-4), h2, h1

    monkeypatch.setattr(derivatives_module, "_radial", off)
    closed, hvp = both_paths(model, monkeypatch)
    assert spy == [0, 0]
    for col in NUMBERS:
        np.testing.assert_array_equal(closed[col].to_numpy(), hvp[col].to_numpy(), err_msg=col)
    assert math.isfinite(float(closed.curv_lik.abs().max()))


@pytest.mark.parametrize("name", list(ONE_LENGTHSCALE))
def test_one_lengthscale(name, spy, monkeypatch):
    model = ONE_LENGTHSCALE[name]()
    closed, hvp = both_paths(model, monkeypatch)
    assert spy[0] == closed.key.nunique() and spy[1:] == [0]
    assert_same_rows(closed, hvp, name)  # the lengthscale's curvature too: both paths differentiate twice right
    is_ls = closed.key.str.contains("lengthscale").to_numpy()
    kern = getattr(model.covar_module, "base_kernel", model.covar_module)
    model.train()

    def lik(ls):
        with torch.no_grad():
            kern.lengthscale = ls
            X = model.train_inputs[0]
            return (model.likelihood(model(X), X).log_prob(model.train_targets) / X.shape[-2]).reshape(-1)

    ls0, h = kern.lengthscale.detach().clone(), 1e-4
    step = ls0.reshape(-1) * h
    fd = -(lik(ls0 * (1 + h)) - 2 * lik(ls0) + lik(ls0 * (1 - h))) / step ** 2
    kern.lengthscale = ls0
    np.testing.assert_allclose(closed.curv_lik[is_ls].to_numpy(), fd.numpy(), rtol=1e-5)
    np.testing.assert_allclose(hvp.curv_lik[is_ls].to_numpy(), fd.numpy(), rtol=1e-5)


def test_one_lengthscale_outside_the_family_has_the_right_curvature():
    """A linear mean puts the model outside the closed form: the Hessian-vector path alone, checked against
    finite differences (it was 2-3x off for one lengthscale before its inputs required grad)."""
    from gpytorch.means import LinearMean

    X, Y = data(9, seed=7)
    model = SingleTaskGP(X, Y, covar_module=RBFKernel(), mean_module=LinearMean(3))
    jitter_members(model, seed=7)
    pull = prior_pull(model)
    ls = pull[pull.key.str.contains("lengthscale")]
    kern = model.covar_module
    model.train()

    def lik(value):
        with torch.no_grad():
            kern.lengthscale = value
            return float(model.likelihood(model(X), X).log_prob(model.train_targets)) / X.shape[-2]

    ls0, h = float(kern.lengthscale), 1e-4
    fd = -(lik(ls0 * (1 + h)) - 2 * lik(ls0) + lik(ls0 * (1 - h))) / (ls0 * h) ** 2
    kern.lengthscale = ls0
    np.testing.assert_allclose(ls.curv_lik.to_numpy(), [fd], rtol=1e-5)
