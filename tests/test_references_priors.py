"""prior_pull's numbers, each against a reference computed without gpviz.

Every column a user reads is recomputed here from GPyTorch/torch alone: the two terms of
``ExactMarginalLogLikelihood`` (the likelihood's ``log_prob`` of the training targets, and
torch.distributions' own ``prior.log_prob`` of the constrained value), differentiated by
central finite differences in the constrained value θ; the prior facts by hand formulas
(LogNormal mode ``exp(μ - σ²)``, sd of ``log θ`` = σ; BoTorch's documented default priors).
``tests/priors/test_pull.py`` checks the *sum* of the two curvatures against the MLL's; here
each term's gradient and curvature is checked on its own, and so are ``ratio`` and
``prior_share``, which follow from them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior

import gpviz


def _data(n=10, d=2, seed=3):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X[:, :1]) + 0.3 * X[:, 1:] + 0.05 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


# (module path, parameter name, flat element index) of every element the tests judge
def _elements(model):
    out = []
    for path, module, name in _param_modules(model):
        for i in range(getattr(module, name).numel()):
            out.append((path, module, name, i))
    return out


def _param_modules(model):
    """(path, module, name) of each parameter with a value property, read from the model itself."""
    found = []
    for path, module in model.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            name = pname[4:] if pname.startswith("raw_") else pname
            found.append((path, module, name))
    return found


def _get(module, name, i) -> float:
    return float(getattr(module, name).detach().reshape(-1)[i])


def _set(module, name, i, value: float) -> None:
    """Sets one element's constrained value through the model's own constraint (GPyTorch, not gpviz)."""
    raw_name = f"raw_{name}"
    if hasattr(module, raw_name):
        raw = getattr(module, raw_name)
        c = module.constraint_for_parameter_name(raw_name)
        v = torch.tensor(value, dtype=raw.dtype)
        r = c.inverse_transform(v) if c is not None and c.enforced else v
    else:
        raw, r = getattr(module, name), torch.tensor(value)
    with torch.no_grad():
        raw.view(-1)[i] = r


def _terms(model) -> tuple[float, float]:
    """(log likelihood / n, Σ log prior / n): the two terms of ExactMarginalLogLikelihood, from GPyTorch alone."""
    X, y = model.train_inputs[0], model.train_targets
    n = y.shape[-1]
    model.train()
    with torch.no_grad():
        lik = float(model.likelihood(model(X)).log_prob(y)) / n
        prior = 0.0
        for _name, module, p, closure, _setting in model.named_priors():
            prior += float(p.log_prob(closure(module)).sum())
    return lik, prior / n


def _fd(model, module, name, i):
    """Central first and second differences of each term in θ (second ones with a wider step)."""
    v = _get(module, name, i)
    h1, h2 = 1e-5 * max(abs(v), 1e-2), 1e-3 * max(abs(v), 1e-1)
    out = {}
    for h in (h1, h2):
        for s in (-1, 0, 1):
            _set(module, name, i, v + s * h)
            out[(h, s)] = _terms(model)
    _set(module, name, i, v)
    grad = [(out[(h1, 1)][t] - out[(h1, -1)][t]) / (2 * h1) for t in (0, 1)]
    curv = [-(out[(h2, 1)][t] - 2 * out[(h2, 0)][t] + out[(h2, -1)][t]) / h2 ** 2 for t in (0, 1)]
    return grad, curv


def _default_model_off_optimum():
    X, Y = _data()
    model = SingleTaskGP(X, Y)  # LogNormal priors on lengthscale and noise, raw == value (GreaterThan)
    with torch.no_grad():
        model.covar_module.lengthscale = torch.tensor([[0.25, 1.7]])
        model.likelihood.noise = torch.tensor([0.03])
    return model


def _matern_gamma_model():
    X, Y = _data(n=8, d=2, seed=5)
    covar = ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=2, lengthscale_prior=GammaPrior(3.0, 6.0)),
                        outputscale_prior=GammaPrior(2.0, 0.15))  # softplus Positive(): θ != raw
    model = SingleTaskGP(X, Y, covar_module=covar)
    with torch.no_grad():
        model.covar_module.base_kernel.lengthscale = torch.tensor([[0.4, 0.9]])
        model.covar_module.outputscale = torch.tensor(1.3)
        model.likelihood.noise = torch.tensor([0.02])
    return model


def _key(path: str, name: str, i: int, numel: int) -> str:
    base = f"{path}.{name}" if path else name
    return f"{base}[{i}]" if numel > 1 else base


@pytest.mark.parametrize("make", [_default_model_off_optimum, _matern_gamma_model], ids=["default", "matern_gamma"])
def test_each_terms_gradient_and_curvature_ratio_and_prior_share_equal_finite_differences(make):
    model = make()
    pull = gpviz.prior_pull(ExactMarginalLogLikelihood(model.likelihood, model)).set_index("key")
    checked = 0
    for path, module, name, i in _elements(model):
        key = _key(path, name, i, getattr(module, name).numel())
        if key not in pull.index:
            continue
        row = pull.loc[key]
        (g_lik, g_prior), (c_lik, c_prior) = _fd(model, module, name, i)
        assert row["value"] == pytest.approx(_get(module, name, i), rel=1e-12), key
        gs = max(abs(g_lik), abs(g_prior), 1e-3)
        assert row["d_log_lik"] == pytest.approx(g_lik, rel=1e-4, abs=1e-6 * gs), key
        assert row["d_log_prior"] == pytest.approx(g_prior, rel=1e-4, abs=1e-6 * gs), key
        cs = max(abs(c_lik), abs(c_prior), 1e-2)
        assert row["curv_lik"] == pytest.approx(c_lik, rel=5e-3, abs=1e-4 * cs), key
        assert row["curv_prior"] == pytest.approx(c_prior, rel=5e-3, abs=1e-4 * cs), key
        # ratio and prior_share as the docstring defines them, from the reference derivatives
        if abs(g_lik) > 1e-6:
            assert row["ratio"] == pytest.approx(abs(g_prior) / abs(g_lik), rel=1e-3), key
        # prior_share in the judged coordinate: u = log θ for a positive parameter, where -d²f/du² = θ² c - θ g
        theta = _get(module, name, i)
        if row["coord"] == "log":
            c_prior, c_lik = theta ** 2 * c_prior - theta * g_prior, theta ** 2 * c_lik - theta * g_lik
            cs = max(abs(c_lik), abs(c_prior), 1e-2)
        p, q = max(c_prior, 0.0), max(c_lik, 0.0)
        if p + q > 1e-6 * cs:
            assert row["prior_share"] == pytest.approx(p / (p + q), rel=1e-3, abs=1e-6), key
        checked += 1
    assert checked == len(pull)  # every row of the pull was recomputed


def test_lognormal_mode_distance_and_distance_sd_are_botorchs_documented_default_priors():
    """Default SingleTaskGP: lengthscale ~ LogNormal(√2 + ½ log d, √3), noise ~ LogNormal(-4, 1) (BoTorch's
    documented defaults); mode exp(μ - σ²), distance log θ - log mode, distance_sd that over σ."""
    model = _default_model_off_optimum()
    d = 2
    pull = gpviz.prior_pull(model).set_index("key")
    long = gpviz.parameters(model, long=True).set_index("key")
    cases = {
        "covar_module.lengthscale[0]": (math.sqrt(2) + 0.5 * math.log(d), math.sqrt(3), 0.25),
        "covar_module.lengthscale[1]": (math.sqrt(2) + 0.5 * math.log(d), math.sqrt(3), 1.7),
        "likelihood.noise_covar.noise": (-4.0, 1.0, 0.03),
    }
    for key, (mu, s, value) in cases.items():
        mode = math.exp(mu - s * s)
        row = pull.loc[key]
        assert row["prior"] == "LogNormalPrior" and long.loc[key, "prior"] == "LogNormalPrior"
        assert row["value"] == pytest.approx(value, rel=1e-9)
        assert row["prior_mode"] == pytest.approx(mode, rel=1e-6), key  # priors are float32 in BoTorch
        assert long.loc[key, "prior_mode"] == pytest.approx(mode, rel=1e-6), key
        assert row["distance_space"] == "log"
        assert row["distance"] == pytest.approx(math.log(value) - math.log(mode), rel=1e-6, abs=1e-9), key
        assert row["distance_sd"] == pytest.approx((math.log(value) - math.log(mode)) / s, rel=1e-6), key
    # the constant mean has no prior: nothing about a prior is reported
    c = pull.loc["mean_module.constant"]
    assert c["prior"] == "none" and math.isnan(c["prior_mode"]) and c["d_log_prior"] == 0.0


def test_value_raw_bounds_and_trainable_are_the_models_own():
    model = _matern_gamma_model()
    model.covar_module.raw_outputscale.requires_grad_(False)
    try:
        pull = gpviz.prior_pull(model).set_index("key")
    finally:
        model.covar_module.raw_outputscale.requires_grad_(True)
    k = model.covar_module.base_kernel
    c = k.raw_lengthscale_constraint
    for i in range(2):
        row = pull.loc[f"covar_module.base_kernel.lengthscale[{i}]"]
        assert row["raw"] == float(k.raw_lengthscale.detach()[0, i])
        assert row["value"] == pytest.approx(float(torch.nn.functional.softplus(k.raw_lengthscale.detach()[0, i])), rel=1e-12)
        assert row["lower"] == float(c.lower_bound) and row["upper"] == float(c.upper_bound)
        assert bool(row["trainable"])
    assert not bool(pull.loc["covar_module.outputscale", "trainable"])
    nc = model.likelihood.noise_covar.raw_noise_constraint
    assert pull.loc["likelihood.noise_covar.noise", "lower"] == pytest.approx(float(nc.lower_bound))
