"""The likelihood term's curvature through quad_lik's surrogate equals the Hessian-vector products through the
Cholesky (the former path, QUAD_LIK off), on the models it applies to; elsewhere the former path runs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.models import KroneckerMultiTaskGP, MultiTaskGP, SingleTaskGP
from botorch.models.transforms import Normalize
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import MaternKernel, RBFKernel, ScaleKernel
from gpytorch.means import LinearMean
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior, LogNormalPrior, NormalPrior
from linear_operator import to_linear_operator
from linear_operator.utils.warnings import NumericalWarning

import gpviz.priors.derivatives as derivatives_module
from gpviz.models.families import model_batch_shape
from gpviz.priors.derivatives import mll_terms, quad_lik
from gpviz.priors.factories import with_priors
from gpviz.priors.pull import prior_pull
from gpviz.values.keys import param_info, parse_key, resolve
from gpviz.models.expr import model_expr

NUMBERS = ["value", "raw", "d_log_prior", "d_log_lik", "ratio", "curv_prior", "curv_lik", "prior_share",
           "distance", "distance_sd"]
RTOL = 1e-10


def f(X: torch.Tensor) -> torch.Tensor:
    return (torch.sin(6 * X[..., 0]) + 4 * (X[..., 1] - 0.5) ** 2 + 0.5 * X[..., -1]).unsqueeze(-1)


def data(n: int, d: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g)
    return X, f(X) + 0.05 * torch.randn(n, 1, generator=g)


def jitter_members(model, seed: int = 0, scale: float = 0.2) -> None:
    """Distinct values in every batch member (multiplicative: a raw value that is the value stays positive)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.mul_(torch.exp(scale * torch.randn(p.shape, generator=g)))


def scale_matern(train_X, train_Y):
    batch = train_X.shape[:-2]
    covar = ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=train_X.shape[-1], batch_shape=batch),
                        batch_shape=batch, outputscale_prior=GammaPrior(2.0, 0.15))
    return SingleTaskGP(train_X, train_Y, covar_module=covar)


def loo_matern():
    """A batched LOO SingleTaskGP, ScaleKernel(Matern 5/2 ARD), lengthscale and outputscale priors (with_priors)."""
    folds = gen_loo_cv_folds(*data(9))
    make = with_priors(scale_matern, lengthscale=LogNormalPrior(math.sqrt(2) + 0.5 * math.log(3), math.sqrt(3)))
    model = make(folds.train_X, folds.train_Y)
    jitter_members(model, seed=1)
    return model


def loo_rbf():
    folds = gen_loo_cv_folds(*data(7, d=2, seed=2))
    batch = folds.train_X.shape[:-2]
    model = SingleTaskGP(folds.train_X, folds.train_Y, covar_module=ScaleKernel(
        RBFKernel(ard_num_dims=2, batch_shape=batch, lengthscale_prior=GammaPrior(3.0, 6.0)), batch_shape=batch))
    jitter_members(model, seed=2)
    return model


def fixed_noise():
    """FixedNoiseGaussianLikelihood (train_Yvar), a Normalize input transform, default priors."""
    X, Y = data(10, seed=3)
    Yvar = 0.01 + 0.02 * torch.rand(10, 1, generator=torch.Generator().manual_seed(3))
    model = SingleTaskGP(5 * X + 1, Y, train_Yvar=Yvar, input_transform=Normalize(d=3))
    with torch.no_grad():
        model.covar_module.lengthscale = torch.tensor([[0.4, 0.9, 1.7]])
    return model


def linear_mean():
    """A non-constant mean (LinearMean: δ = r(θ) - r0 moves with its weights), two outputs (a batch of two)."""
    X, Y = data(10, seed=4)
    Y2 = torch.cat([Y, Y ** 2 - 1], -1)
    model = SingleTaskGP(X, Y2, mean_module=LinearMean(3, batch_shape=torch.Size([2])))
    with torch.no_grad():
        model.mean_module.weights.copy_(torch.tensor([[[0.5], [-1.0], [0.2]], [[0.1], [0.3], [-0.4]]]))
        model.mean_module.bias.copy_(torch.tensor([[0.1], [-0.2]]))
    model.mean_module.register_prior("bias_prior", NormalPrior(0.0, 1.0), "bias")
    return model


def multi_task():
    """BoTorch's MultiTaskGP: one Gaussian marginal over all tasks' points (an IndexKernel), so quad applies."""
    X, Y = data(10, seed=5)
    task = torch.randint(0, 2, (10, 1), generator=torch.Generator().manual_seed(5)).to(X)
    return MultiTaskGP(torch.cat([X, task], -1), Y, task_feature=3)


MODELS = {"loo_matern": loo_matern, "loo_rbf": loo_rbf, "fixed_noise": fixed_noise, "linear_mean": linear_mean,
          "multi_task": multi_task}


def record_calls(monkeypatch, owner, name: str, what) -> list:
    """Replaces ``derivatives.<name>`` where ``owner`` looks it up by a wrapper; ``what(result)`` per call."""
    calls = []
    original = getattr(derivatives_module, name)

    def recording(*args):
        out = original(*args)
        calls.append(what(out))
        return out

    monkeypatch.setattr(owner, name, recording)
    return calls


def pull_with_and_without(model, monkeypatch, flag: str):
    """``prior_pull`` rows with the faster path on, and with ``derivatives.<flag>`` off (the former path)."""
    fast = prior_pull(model)
    with monkeypatch.context() as m:
        m.setattr(derivatives_module, flag, False)
        former = prior_pull(model)
    return fast, former


@pytest.fixture
def spy(monkeypatch):
    """Whether quad_lik gave a surrogate, one entry per call."""
    return record_calls(monkeypatch, derivatives_module, "quad_lik", lambda q: q is not None)


def both_paths(model, monkeypatch):
    return pull_with_and_without(model, monkeypatch, "QUAD_LIK")


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    both = np.isfinite(a) & np.isfinite(b) & ((a != 0) | (b != 0))
    return float(np.max(np.abs(a[both] - b[both]) / np.abs(b[both]), initial=0.0))


@pytest.mark.parametrize("name", list(MODELS))
def test_quad_rows_equal_the_hvp_rows(name, spy, monkeypatch):
    model = MODELS[name]()
    quad, hvp = both_paths(model, monkeypatch)
    assert spy == [True]  # the surrogate ran once (the QUAD_LIK-off pull does not call it)
    assert list(quad.key) == list(hvp.key) and list(quad.verdict) == list(hvp.verdict)
    for col in NUMBERS:
        a, b = quad[col].to_numpy(), hvp[col].to_numpy()
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=col)
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=0, err_msg=col)
    worst = max(max_rel(quad[c].to_numpy(), hvp[c].to_numpy()) for c in ("d_log_lik", "curv_lik"))
    print(f"{name}: max relative difference {worst:.1e}")
    assert (quad.curv_lik != 0).any() and (quad.d_log_lik != 0).any()


def _terms(model, quad: bool, monkeypatch):
    batch = torch.Size(model_batch_shape(model))
    infos = {}
    for key in model_expr(model).keys:
        path, name, _ = parse_key(key)
        infos.setdefault((path, name), param_info(resolve(model, path), name, batch))
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    mll.train()
    for info in infos.values():
        info.raw.requires_grad_(True)
    with monkeypatch.context() as m, torch.enable_grad():
        m.setattr(derivatives_module, "QUAD_LIK", quad)
        return mll, mll_terms(mll, int(batch.numel()), infos)


@pytest.mark.parametrize("name", ["loo_matern", "fixed_noise", "linear_mean"])
def test_values_stay_the_exact_ones(name, monkeypatch):
    """lik is log_prob's value bit for bit, total is mll(out, y, *params)'s (one marginal, no second Cholesky)."""
    model = MODELS[name]()
    mll, quad = _terms(model, True, monkeypatch)
    _, hvp = _terms(model, False, monkeypatch)
    assert quad.quad and not hvp.quad
    assert torch.equal(quad.lik.detach(), hvp.lik.detach())
    params = tuple(model.transform_inputs(X=t) for t in model.train_inputs)
    with torch.no_grad():
        closure = mll(model(*model.train_inputs), model.train_targets, *params).reshape(-1)
        lik = model.likelihood(model(*model.train_inputs), *params).log_prob(model.train_targets).reshape(-1)
    assert torch.equal(quad.total, closure) and torch.equal(hvp.total, closure)
    assert torch.equal(quad.lik.detach(), lik / quad.num_data)


def test_surrogate_value_is_the_log_likelihood():
    model = loo_matern()
    model.train()
    with torch.no_grad():
        marg = model.likelihood(model(*model.train_inputs), *model.train_inputs)
        log_lik = marg.log_prob(model.train_targets)
        q = quad_lik(marg, model.train_targets, log_lik)
    assert q is not None and q.shape == log_lik.shape == torch.Size([9])
    np.testing.assert_allclose(q.numpy(), log_lik.numpy(), rtol=1e-12)
    # against the closed form, not via GPyTorch: -½ rᵀA⁻¹r - ½ log|A| - n/2 log 2π
    with torch.no_grad():
        A, r = marg.covariance_matrix, model.train_targets - marg.mean
        n = r.shape[-1]
        ref = (-0.5 * (r.unsqueeze(-2) @ torch.linalg.solve(A, r.unsqueeze(-1))).reshape(-1)
               - 0.5 * torch.logdet(A) - 0.5 * n * math.log(2 * math.pi))
    np.testing.assert_allclose(q.numpy(), ref.numpy(), rtol=1e-10)


def test_kronecker_multi_task_falls_back(spy, monkeypatch):
    """A MultitaskMultivariateNormal marginal: no surrogate, the Cholesky path, the same rows as with QUAD_LIK off."""
    X, Y = data(8, d=2, seed=6)
    model = KroneckerMultiTaskGP(X, torch.cat([Y, -Y], -1))
    _, terms = _terms(model, True, monkeypatch)
    assert not terms.quad
    quad, hvp = both_paths(model, monkeypatch)
    assert spy == [False, False]  # _terms and the quad pull each asked; both times it declined
    for col in NUMBERS:
        np.testing.assert_array_equal(quad[col].to_numpy(), hvp[col].to_numpy(), err_msg=col)


def test_jitter_and_unusual_marginals_fall_back():
    """A covariance that needs jitter, or a likelihood value q does not reproduce: None, and no jitter warning."""
    g = torch.Generator().manual_seed(7)
    v = torch.randn(2, 6, 1, generator=g)
    singular = v @ v.mT  # rank one
    mean = torch.zeros(2, 6)
    y = torch.randn(2, 6, generator=g)
    marg = MultivariateNormal(mean, to_linear_operator(singular))  # lazy: torch's constructor would factor it
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumericalWarning)
        assert quad_lik(marg, y, torch.zeros(2)) is None
    pd = MultivariateNormal(mean, to_linear_operator(singular + torch.eye(6)))
    log_lik = pd.log_prob(y)
    assert quad_lik(pd, y, log_lik) is not None
    assert quad_lik(pd, y, log_lik + 1e-3) is None  # the value disagrees: not the term GPyTorch differentiates
    assert quad_lik(pd, y[:, :5], log_lik) is None  # targets not shaped like the mean
