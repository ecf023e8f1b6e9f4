""""Why here?" profiles against direct evaluation: each grid value set by hand on a deep copy of the model, then
GPyTorch's ExactMarginalLogLikelihood (times n) and each prior's own log_prob, no gpviz code in the reference."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.errors import InputError
from gpviz.priors.profiles import PROFILE_MAX_WORK, PROFILE_POINTS, grid_of, model_profiles, profile_work, profiles


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(n=20, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1]) + 0.05 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


def _fitted(**kw):
    X, Y = _data()
    model = SingleTaskGP(X, Y, **kw)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model


def _direct(model, set_value, member_count):
    """(mll x n, total log prior) per member after ``set_value(copy)``: GPyTorch's own calls only."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        set_value(m)
        m.train()
        mll = ExactMarginalLogLikelihood(m.likelihood, m)
        out = m(*m.train_inputs)
        total = mll(out, m.train_targets, *m.train_inputs) * m.train_targets.shape[-1]
        prior = sum(p.log_prob(c(mod)).reshape(member_count, -1).sum(-1) if member_count > 1
                    else p.log_prob(c(mod)).sum() for _, mod, p, c, _ in m.named_priors())
    return np.atleast_1d(total.numpy()), np.atleast_1d(torch.as_tensor(prior).numpy())


def test_profiles_equal_gpytorchs_mll_and_priors_at_values_set_by_hand():
    model = _fitted(covar_module=ScaleKernel(MaternKernel(ard_num_dims=2, lengthscale_prior=GammaPrior(3.0, 6.0))))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    key = "covar_module.base_kernel.lengthscale[1]"
    noise = "likelihood.noise_covar.noise"
    got = profiles(model, {key: (0.05, 5.0, True), noise: (1e-4, 0.5, True)}, points=9)
    assert set(got) == {key, noise}
    p = got[key]
    assert p.grid.shape == (9,) and p.log_likelihood.shape == (1, 9)
    np.testing.assert_allclose(p.grid, np.logspace(math.log10(0.05), math.log10(5.0), 9), rtol=1e-12)
    for j, v in enumerate(p.grid):
        def put(m, v=v):
            ls = m.covar_module.base_kernel.lengthscale.clone()
            ls[..., 1] = v
            m.covar_module.base_kernel.lengthscale = ls
        total, prior = _direct(model, put, 1)
        assert p.log_likelihood[0, j] + p.log_prior[0, j] == pytest.approx(total[0], rel=1e-9, abs=1e-9)
        assert p.log_prior[0, j] == pytest.approx(prior[0], rel=1e-9, abs=1e-9)
    # only this element's prior term moves along its axis: Gamma(3, 6)'s own log density, by hand
    a, b = 3.0, 6.0
    hand = (a - 1) * np.log(p.grid) - b * p.grid
    np.testing.assert_allclose(np.diff(p.log_prior[0]), np.diff(hand), rtol=1e-9, atol=1e-9)
    q = got[noise]
    for j, v in enumerate(q.grid[::4]):
        total, _ = _direct(model, lambda m, v=v: setattr(m.likelihood, "noise", torch.tensor([v])), 1)
        assert q.log_posterior[0, 4 * j] == pytest.approx(total[0], rel=1e-9)
    # the user's model is never changed
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_batched_model_gives_each_member_its_own_profile():
    X, Y = _data()
    Xb, Yb = torch.stack([X[:15], X[5:]]), torch.stack([Y[:15], Y[5:]])
    model = SingleTaskGP(Xb, Yb)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    key = "covar_module.lengthscale[0]"
    p = profiles(model, {key: (0.05, 3.0, True)}, points=5)[key]
    assert p.log_likelihood.shape == (2, 5)
    for j, v in enumerate(p.grid):
        def put(m, v=v):
            ls = m.covar_module.lengthscale.clone()
            ls[..., 0] = v
            m.covar_module.lengthscale = ls
        total, prior = _direct(model, put, 2)
        np.testing.assert_allclose(p.log_posterior[:, j], total, rtol=1e-9)
        np.testing.assert_allclose(p.log_prior[:, j], prior, rtol=1e-9)
    assert not np.allclose(p.log_likelihood[0], p.log_likelihood[1])  # different data, different curves


def test_a_value_held_by_its_prior_peaks_between_the_prior_mode_and_the_likelihood():
    # an irrelevant input (Y depends on x0 only): its likelihood keeps rising with the lengthscale, so the
    # posterior's peak along it is where the prior stops it, and the fitted value sits at that peak
    model = _fitted()
    key = "covar_module.lengthscale[1]"
    value = float(model.covar_module.lengthscale.detach()[0, 1])
    p = profiles(model, {key: (value / 20, value * 20, True)}, points=81)[key]
    post, lik = p.log_posterior[0], p.log_likelihood[0]
    assert p.grid[np.argmax(post)] == pytest.approx(value, rel=0.1)
    assert lik[-1] >= lik.max() - 0.5  # flat or rising at the far end: the data do not stop it
    assert p.grid[np.argmax(lik)] > 2 * value


def test_cost_rule_grid_and_refusals():
    model = _fitted()
    expr = gpviz.model_expr(model)
    work = profile_work(expr)
    assert work == 20.0**3 * len(expr.keys) * PROFILE_POINTS and work < PROFILE_MAX_WORK
    got = model_profiles(expr, {"covar_module.lengthscale[0]": (0.1, 1.0, True)})
    assert list(got) == ["covar_module.lengthscale[0]"] and got.note == ""
    np.testing.assert_allclose(grid_of(-1.0, 1.0, False, 5), [-1, -0.5, 0, 0.5, 1])
    with pytest.raises(InputError, match=r"positive.*-1"):
        grid_of(-1.0, 1.0, True)
    with pytest.raises(InputError, match="hi > lo"):
        grid_of(1.0, 1.0, False)
    with pytest.raises(InputError, match="exact GP"):
        profiles(model.covar_module, {})
    # a kernel alone: profiles do not apply, no note
    assert profile_work(gpviz.kernel_expr(MaternKernel())) is None
