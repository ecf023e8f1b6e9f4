"""Full-Hessian MAP numbers and the escape probe, against references computed without gpviz.

References: a refit of the same data with the lengthscale prior removed (a hand-built BoTorch model),
central finite differences of GPyTorch's own marginal log likelihood and priors, and refits of a
hand-written MAP loss with the prior raised to the power 0.98 and 1.02 (scipy L-BFGS from the MAP).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import scipy.optimize
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import RBFKernel
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
import gpviz.datasets
from gpviz.priors.pull import prior_pull
from gpviz.priors.sweep_pull import sweep_prior_pull
from gpviz.priors.verdicts import FREE, VERDICTS


def _fit(X, y):
    model = SingleTaskGP(X, y)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(mll)
    return model, mll


def _without_lengthscale_prior(model, X, y):
    """The same model with the lengthscale prior removed (bound kept), refit from the MAP."""
    d = X.shape[-1]
    kernel = RBFKernel(ard_num_dims=d, lengthscale_constraint=GreaterThan(2.5e-2, transform=None))
    bare = SingleTaskGP(X, y, covar_module=kernel)
    bare.load_state_dict(model.state_dict(), strict=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(ExactMarginalLogLikelihood(bare.likelihood, bare))
    return bare.covar_module.lengthscale.detach().reshape(-1)


@pytest.mark.parametrize("seed,n,d,noise", [(0, 60, 6, 0.3), (1, 60, 6, 0.5), (2, 40, 5, 0.3), (3, 40, 5, 0.3)])
def test_a_lengthscale_only_its_prior_keeps_finite_is_never_free(seed, n, d, noise):
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    X = torch.rand(n, d, dtype=torch.float64)
    if d == 6:  # 3 of 6 inputs matter
        f = torch.sin(6 * X[:, 0]) + torch.cos(4 * X[:, 1]) + X[:, 2] ** 2
    else:  # 3 of 5
        f = torch.sin(5 * X[:, 0]) + X[:, 1] * X[:, 2]
    y = (f + noise * torch.randn(n, dtype=torch.float64)).unsqueeze(-1)
    model, mll = _fit(X, y)
    fitted = model.covar_module.lengthscale.detach().reshape(-1)
    bare = _without_lengthscale_prior(model, X, y)
    escaped = torch.nonzero(bare / fitted >= 100).reshape(-1).tolist()
    assert escaped, "the reference must contain a lengthscale the prior alone keeps finite"
    pull = prior_pull(mll).set_index("key")
    for j in escaped:
        row = pull.loc[f"covar_module.lengthscale[{j}]"]
        assert row["verdict"] != FREE, (j, float(fitted[j]), float(bare[j]), row.to_dict())
    # and the inputs that matter, which keep their lengthscale without the prior, are free
    assert (pull.loc["covar_module.lengthscale[0]", "verdict"] == FREE)


def _small_model():
    torch.set_num_threads(1)
    torch.manual_seed(4)
    X = torch.rand(25, 2, dtype=torch.float64)
    y = (torch.sin(5 * X[:, 0]) + 0.3 * X[:, 1] + 0.1 * torch.randn(25, dtype=torch.float64)).unsqueeze(-1)
    return _fit(X, y)


def _terms_of_u(model, mll, u: torch.Tensor):
    """(log likelihood / n, Σ log prior / n) of GPyTorch's own MLL at u = (log ℓ0, log ℓ1, log noise, constant)."""
    m = model
    m.covar_module.lengthscale = torch.exp(u[:2]).reshape(1, 2)
    m.likelihood.noise = torch.exp(u[2:3])
    m.mean_module.constant = u[3]
    m.train()
    X = m.train_inputs[0]
    out = m(X)
    lik = m.likelihood(out, X).log_prob(m.train_targets) / X.shape[0]
    prior = sum(p.log_prob(c(mod)).sum() for _, mod, p, c, _ in m.named_priors()) / X.shape[0]
    return float(lik), float(prior)


def _fd_hessian(fun, u0: np.ndarray, h: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Central finite differences: gradient and Hessian of ``fun`` (returns a pair; both of each)."""
    p = len(u0)
    G = np.zeros((2, p))
    H = np.zeros((2, p, p))
    f0 = np.array(fun(u0))
    for i in range(p):
        e = np.zeros(p)
        e[i] = h
        G[:, i] = (np.array(fun(u0 + e)) - np.array(fun(u0 - e))) / (2 * h)
        H[:, i, i] = (np.array(fun(u0 + e)) - 2 * f0 + np.array(fun(u0 - e))) / h ** 2
        for j in range(i):
            f = np.zeros(p)
            f[j] = h
            H[:, i, j] = H[:, j, i] = (np.array(fun(u0 + e + f)) - np.array(fun(u0 + e - f))
                                       - np.array(fun(u0 - e + f)) + np.array(fun(u0 - e - f))) / (4 * h * h)
    return G, H


def _u0(model) -> np.ndarray:
    return np.concatenate([np.log(model.covar_module.lengthscale.detach().numpy().reshape(-1)),
                           np.log(model.likelihood.noise.detach().numpy().reshape(-1)),
                           model.mean_module.constant.detach().numpy().reshape(-1)])


def test_full_hessian_numbers_match_finite_differences_of_gpytorch():
    model, mll = _small_model()
    pull = prior_pull(mll).set_index("key")  # before the probe below moves the values
    u0 = _u0(model)
    ref = copy.deepcopy(model)
    with torch.no_grad():
        G, H = _fd_hessian(lambda u: _terms_of_u(ref, None, torch.as_tensor(u)), u0)
    A_l, A_p = -H[0], -H[1]
    A = A_l + A_p
    cov = np.linalg.inv(A)
    n = 25
    keys = ["covar_module.lengthscale[0]", "covar_module.lengthscale[1]", "likelihood.noise_covar.noise",
            "mean_module.constant"]
    np.testing.assert_allclose(pull.loc[keys, "post_sd"], np.sqrt(np.diag(cov) / n), rtol=1e-3)
    np.testing.assert_allclose(pull.loc[keys, "dmap_dalpha"], cov @ G[1], rtol=1e-3, atol=1e-6)
    share = np.diag(cov @ A_p @ cov) / np.diag(cov)
    np.testing.assert_allclose(pull.loc[keys, "precision_share"], share, rtol=1e-3, atol=1e-6)
    assert list(pull.loc[keys, "coord"]) == ["log", "log", "log", "linear"]


def test_dmap_dalpha_matches_refits_with_the_prior_raised_to_a_power():
    model, mll = _small_model()
    pull = prior_pull(mll).set_index("key")
    u0 = _u0(model)
    ref = copy.deepcopy(model)

    def refit(alpha: float) -> np.ndarray:
        def loss(u):
            ut = torch.as_tensor(u, dtype=torch.float64).requires_grad_(True)
            m = ref
            ls = torch.exp(ut[:2]).reshape(1, 2)
            noise = torch.exp(ut[2:3])
            m.train()
            X = m.train_inputs[0]
            # the same terms with the values as functions of u (non-enforced GreaterThan: raw == value)
            del m.covar_module.raw_lengthscale
            m.covar_module.raw_lengthscale = ls
            del m.likelihood.noise_covar.raw_noise
            m.likelihood.noise_covar.raw_noise = noise
            del m.mean_module.raw_constant
            m.mean_module.raw_constant = ut[3]
            lik = m.likelihood(m(X), X).log_prob(m.train_targets)
            prior = sum(p.log_prob(c(mod)).sum() for _, mod, p, c, _ in m.named_priors())
            f = -(lik + alpha * prior)
            (g,) = torch.autograd.grad(f, ut)
            return float(f.detach()), g.numpy()
        res = scipy.optimize.minimize(loss, u0, jac=True, method="L-BFGS-B", options={"gtol": 1e-11, "ftol": 1e-15})
        return res.x

    lo, hi = refit(0.98), refit(1.02)
    keys = ["covar_module.lengthscale[0]", "covar_module.lengthscale[1]", "likelihood.noise_covar.noise",
            "mean_module.constant"]
    np.testing.assert_allclose(pull.loc[keys, "dmap_dalpha"], (hi - lo) / 0.04, rtol=0.05, atol=2e-3)


@pytest.mark.slow
def test_a_mixed_model_sweep_is_judged_with_its_categorical_parts():
    """MixedSingleTaskGP: a categorical kernel's lengthscale nothing curves (singular Hessian) must not stop the
    verdicts; every continuous lengthscale gets a probe and a verdict (the sweep's folds stacked as members)."""
    torch.set_num_threads(1)
    data = gpviz.datasets.hyperparameter_landscape(n=30, seed=0)

    def mixed(train_X, train_Y):
        return MixedSingleTaskGP(train_X, train_Y, cat_dims=[train_X.shape[-1] - 1])

    sweep = gpviz.cv_sweep(mixed, data.X, data.Y, sizes=[12], repeats=1, progress=False)
    pull = sweep_prior_pull(sweep)
    continuous = pull[pull.label.str.match(r"lengthscale\[x[0-8]\]")]
    assert len(continuous) == 18 * 12
    assert continuous.escape_gain.notna().all()
    assert continuous.verdict.isin(list(VERDICTS)).all()
