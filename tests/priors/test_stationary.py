"""The stationary family's batched likelihood (gpviz.priors.stationary) against GPyTorch's own ``log_prob``, each
draw's values set into the model one at a time; and the families it leaves to GPyTorch."""

from __future__ import annotations

import copy

import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, PeriodicKernel, RBFKernel, ScaleKernel
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
from gpytorch.means import ZeroMean
from gpytorch.mlls import ExactMarginalLogLikelihood

from gpviz.priors.stationary import StationaryLik, stationary_lik


def _data(n=15, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(4 * X[:, :1]) + X[:, 1:2] + 0.1 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


def _sampled(model):
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _draws(model, size, seed=1):
    """``size`` random constrained values of every trainable parameter, around the model's own (x 0.3 to 3)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, raw in _sampled(model).items():
        owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        value = getattr(owner, name.rsplit(".", 1)[-1].removeprefix("raw_")).detach()
        if name.endswith("constant"):
            out[name] = value + torch.randn(size, *raw.shape, generator=g, dtype=value.dtype)
        else:
            out[name] = value * torch.exp(torch.randn(size, *raw.shape, generator=g, dtype=value.dtype))
    return out


def _gpytorch_log_lik(model, values, i):
    """GPyTorch's ``likelihood(model(X)).log_prob(y)`` with draw ``i``'s values set into a copy of the model."""
    m = copy.deepcopy(model)
    for name, v in values.items():
        owner_path, attr = name.rsplit(".", 1)
        owner = m.get_submodule(owner_path)
        con = getattr(owner, attr + "_constraint", None)
        with torch.no_grad():
            getattr(owner, attr).copy_(con.inverse_transform(v[i]) if con is not None else v[i])
    m.train()
    X = m.train_inputs[0]
    with torch.no_grad():
        return float(m.likelihood(m(X), m.transform_inputs(X)).log_prob(m.train_targets))


def _models():
    X, Y = _data()
    yield "default-rbf", SingleTaskGP(X, Y)
    for nu in (0.5, 1.5, 2.5):
        yield f"scale-matern-{nu}", SingleTaskGP(
            X, Y, covar_module=ScaleKernel(MaternKernel(nu=nu, ard_num_dims=3)))
    yield "one-lengthscale-zero-mean", SingleTaskGP(X, Y, covar_module=ScaleKernel(RBFKernel()),
                                                    mean_module=ZeroMean())
    yield "fixed-noise", SingleTaskGP(X, Y, train_Yvar=torch.full_like(Y, 0.01))


@pytest.mark.parametrize("label, model", list(_models()), ids=[m[0] for m in _models()])
def test_batched_log_lik_equals_gpytorchs_log_prob(label, model):
    model.train()
    fast = stationary_lik(model, _sampled(model))
    assert isinstance(fast, StationaryLik), label
    values = _draws(model, 40)
    got = fast(values)
    assert got.shape == (40,)
    for i in range(0, 40, 7):
        want = _gpytorch_log_lik(model, values, i)
        assert float(got[i]) == pytest.approx(want, rel=1e-9, abs=1e-9), (label, i)


@pytest.mark.parametrize("nu", [None, 0.5, 2.5])
def test_the_differentiated_path_has_the_same_values_and_finite_difference_gradients(nu):
    X, Y = _data()
    covar = ScaleKernel(MaternKernel(nu=nu, ard_num_dims=3) if nu else RBFKernel(ard_num_dims=3))
    model = SingleTaskGP(X, Y, covar_module=covar)
    model.train()
    fast = stationary_lik(model, _sampled(model))
    values = _draws(model, 4)
    plain = fast(values)
    name = "covar_module.base_kernel.raw_lengthscale"
    ell = values[name].clone().requires_grad_(True)
    got = fast({**values, name: ell})
    assert torch.allclose(got.detach(), plain, rtol=1e-12, atol=0)
    (grad,) = torch.autograd.grad(got.sum(), ell)
    h = 1e-6
    for j in range(3):
        step = torch.zeros_like(ell)
        step[..., j] = h * values[name][..., j]
        fd = (fast({**values, name: values[name] + step}) - fast({**values, name: values[name] - step})) / (2 * step[:, 0, j])
        assert torch.allclose(grad[:, 0, j], fd, rtol=1e-5, atol=1e-6), (j, grad[:, 0, j], fd)


def test_a_chunk_smaller_than_the_draws_gives_the_same_numbers(monkeypatch):
    import gpviz.priors.stationary as stationary

    X, Y = _data(n=30)
    model = SingleTaskGP(X, Y)
    model.train()
    fast = stationary_lik(model, _sampled(model))
    values = _draws(model, 50)
    whole = fast(values)
    monkeypatch.setattr(stationary, "CHUNK_BYTES", 30 * 30 * 8 * 7)  # 7 draws per Cholesky call
    assert fast.chunk() == 7
    assert torch.allclose(fast(values), whole, rtol=1e-12, atol=0)


@pytest.mark.filterwarnings("ignore:Very small noise")
def test_a_fixed_noise_below_gpytorchs_floor_is_raised_to_it_as_gpytorch_does():
    X, Y = _data()
    model = SingleTaskGP(X, Y, train_Yvar=torch.full_like(Y, 1e-9))  # GPyTorch adds 1e-6 instead
    model.train()
    values = _draws(model, 2)
    want = _gpytorch_log_lik(model, values, 0)
    fast = stationary_lik(model, _sampled(model))
    assert float(fast(values)[0]) == pytest.approx(want, rel=1e-9)


def test_covariances_the_plain_cholesky_refuses_are_nan():
    X, Y = _data()
    model = SingleTaskGP(X, Y)
    model.train()
    fast = stationary_lik(model, _sampled(model))
    values = _draws(model, 3)
    values["likelihood.noise_covar.raw_noise"] = torch.tensor([[0.1], [-5.0], [0.1]], dtype=X.dtype)
    got = fast(values)
    assert torch.isnan(got).tolist() == [False, True, False]


def test_families_left_to_gpytorch():
    X, Y = _data()
    periodic = SingleTaskGP(X, Y, covar_module=ScaleKernel(PeriodicKernel()))
    batched = SingleTaskGP(torch.stack([X, X]), torch.stack([Y, Y]))
    noise_model = SingleTaskGP(X, Y, likelihood=FixedNoiseGaussianLikelihood(torch.full((15,), 0.01),
                                                                                 learn_additional_noise=True))
    for model in (periodic, batched, noise_model):
        model.train()
        assert stationary_lik(model, _sampled(model)) is None, type(model.covar_module)


def test_a_draw_the_stationary_path_refuses_is_evaluated_by_gpytorch():
    """posterior._evaluate: a NaN row of the stationary path gets GPyTorch's own log_prob, the other rows its own."""
    from gpviz.models.expr import model_expr
    from gpviz.priors import posterior
    from gpviz.values.keys import param_info, parse_key, resolve

    X, Y = _data()
    model = SingleTaskGP(X, Y)
    model.train()
    keys = list(model_expr(model).keys)
    infos = {parse_key(k)[:2]: param_info(resolve(model, parse_key(k)[0]), parse_key(k)[1], torch.Size())
             for k in keys}
    coords = posterior.coordinates(ExactMarginalLogLikelihood(model.likelihood, model), keys, infos, torch.Size())
    u = torch.randn(4, sum(c.size for c in coords), dtype=X.dtype, generator=torch.Generator().manual_seed(0)) * 0.3
    plain = posterior.Density(model, 1)
    fast = stationary_lik(model, {c.name: c.info.raw for c in coords})
    refusing = lambda values: torch.where(torch.arange(4) == 2, torch.nan, fast(values))  # noqa: E731
    with torch.no_grad():
        want = posterior._evaluate(plain, coords, u)
        got = posterior._evaluate(posterior.Density(model, 1, refusing), coords, u)
        mixed = posterior._evaluate(posterior.Density(model, 1, fast), coords, u)
    for w, g, m in zip(want, got, mixed):
        assert torch.allclose(g, w, rtol=1e-9) and torch.allclose(m, w, rtol=1e-9)
