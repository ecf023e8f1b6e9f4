"""Per-element priors: each element and batch member its own mode, spread, distance and verdict.

References are computed without gpviz: the modes by hand formula ((a-1)/b for Gamma,
exp(μ - σ²) for LogNormal) checked against torch.distributions' own log_prob being
maximal there (central finite differences), the spreads from scipy's trigamma.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.special
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Normalize
from gpytorch.kernels import RBFKernel, ScaleKernel
from gpytorch.priors import GammaPrior, LogNormalPrior, NormalPrior

import gpviz
from gpviz.values.prior_info import element_params, prior_mode, prior_modes, prior_params
from gpviz.view.build import facts_from_info

A, B = [3.0, 1.5], [6.0, 1.0]
HAND = [(a - 1) / b for a, b in zip(A, B)]  # 1/3 and 0.5


def vector_gamma():
    return GammaPrior(torch.tensor(A, dtype=torch.float64), torch.tensor(B, dtype=torch.float64))


def log_prob_slope(prior, x: torch.Tensor, h: float = 1e-5) -> torch.Tensor:
    """d/dx of each element's own log density at ``x`` (central differences; torch's log_prob, not gpviz)."""
    return (prior.log_prob(x + h) - prior.log_prob(x - h)) / (2 * h)


def test_vector_gamma_and_lognormal_modes_are_each_elements_own():
    g = vector_gamma()
    modes = prior_modes(g, (1, 2))
    assert modes.shape == (1, 2)
    np.testing.assert_allclose(modes.reshape(-1).tolist(), HAND, rtol=1e-12)
    slope = log_prob_slope(g, modes)  # log_prob is maximal at each element's own mode
    assert slope.abs().max() < 1e-6
    assert log_prob_slope(g, modes * 1.01).lt(0).all() and log_prob_slope(g, modes * 0.99).gt(0).all()

    mu, s = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64), torch.tensor([0.5, 0.2, 1.0], dtype=torch.float64)
    ln = LogNormalPrior(mu, s)
    modes = prior_modes(ln, (3,))
    np.testing.assert_allclose(modes.tolist(), [math.exp(m - v * v) for m, v in zip(mu.tolist(), s.tolist())],
                               rtol=1e-12)
    assert log_prob_slope(ln, modes).abs().max() < 1e-5
    # a single number for a whole vector prior is only given where all elements share it
    assert math.isnan(prior_mode(g)) and prior_mode(GammaPrior(3.0, 6.0)) == pytest.approx(1 / 3)


def test_batched_prior_broadcasts_against_the_parameter_like_torch_distributions():
    # per member concentration (2 x 1 x 1) and per element rate (2,): a 2 x 1 x 2 lengthscale
    g = GammaPrior(torch.tensor([[[3.0]], [[1.5]]], dtype=torch.float64), torch.tensor(B, dtype=torch.float64))
    modes = prior_modes(g, (2, 1, 2))
    expected = [[(a - 1) / b for b in B] for a in (3.0, 1.5)]
    np.testing.assert_allclose(modes.reshape(2, 2).tolist(), expected, rtol=1e-12)
    assert log_prob_slope(g, modes).abs().max() < 1e-6
    assert element_params(g, (2, 1, 2)) == ["concentration=3, rate=6", "concentration=3, rate=1",
                                            "concentration=1.5, rate=6", "concentration=1.5, rate=1"]
    # a prior with more elements than the parameter has no one prior per element: no mode, not element 0's
    assert torch.isnan(prior_modes(vector_gamma(), (1, 1))).all()


def test_prior_params_describes_vectors_with_their_shape():
    assert prior_params(vector_gamma()) == "concentration=[3.0, 1.5], rate=[6.0, 1.0]"
    assert prior_params(GammaPrior(torch.tensor([[2.0], [4.0]]), 1.0)) == "concentration=[[2.0], [4.0]], rate=1"
    assert prior_params(GammaPrior(3.0, 6.0)) == "concentration=3, rate=6"
    long = prior_params(GammaPrior(torch.linspace(1, 2, 100), 1.0))
    assert "100 values from 1 to 2" in long and len(long) < 80


def ard_model(batch=torch.Size(), prior=None, transform=False):
    torch.manual_seed(0)
    X = torch.rand(*batch, 12, 2, dtype=torch.float64) * torch.tensor([1.0, 10.0], dtype=torch.float64)
    Y = torch.sin(X[..., :1])
    kernel = ScaleKernel(RBFKernel(ard_num_dims=2, batch_shape=batch, lengthscale_prior=prior or vector_gamma()),
                         batch_shape=batch)
    tf = Normalize(d=2, batch_shape=batch) if transform else None
    return SingleTaskGP(X, Y, covar_module=kernel, input_transform=tf)


def ls_rows(frame):
    return frame[frame.key.str.contains("lengthscale")].sort_values(["key", "i_model"])


def test_long_frame_prior_columns_are_per_element():
    model = ard_model()
    long = ls_rows(gpviz.parameters(model, long=True))
    np.testing.assert_allclose(long.prior_mode, HAND, rtol=1e-12)
    assert long.prior_params.tolist() == ["concentration=3, rate=6", "concentration=1.5, rate=1"]


def test_long_frame_in_original_units_scales_each_elements_own_mode():
    model = ard_model(transform=True)
    model.eval()  # Normalize learns its coefficients on the training inputs
    coef = model.input_transform.coefficient.reshape(-1).tolist()
    long = ls_rows(gpviz.parameters(model, long=True, units="original"))
    np.testing.assert_allclose(long.prior_mode, [m * c for m, c in zip(HAND, coef)], rtol=1e-9)


def test_prior_pull_lengthscale_at_its_own_mode_is_at_distance_zero():
    model = ard_model()
    with torch.no_grad():
        model.covar_module.base_kernel.lengthscale = torch.tensor([[HAND[0], HAND[1]]], dtype=torch.float64)
    pull = ls_rows(gpviz.prior_pull(model))
    np.testing.assert_allclose(pull.prior_mode, HAND, rtol=1e-12)
    np.testing.assert_allclose(pull.distance, [0.0, 0.0], atol=1e-12)  # main said 0.405 for element 1
    assert pull.prior_params.tolist() == ["concentration=3, rate=6", "concentration=1.5, rate=1"]
    # distance in standard deviations of log θ: √ψ′(a) per element (scipy's trigamma)
    with torch.no_grad():
        model.covar_module.base_kernel.lengthscale = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    pull = ls_rows(gpviz.prior_pull(model))
    expected = [math.log(1.0 / m) / math.sqrt(scipy.special.polygamma(1, a)) for m, a in zip(HAND, A)]
    np.testing.assert_allclose(pull.distance_sd, expected, rtol=1e-9)


def test_prior_pull_batched_prior_gives_each_member_its_own_mode_and_verdict():
    batch = torch.Size([2])
    prior = GammaPrior(torch.tensor([[[3.0]], [[1.5]]], dtype=torch.float64), torch.tensor(B, dtype=torch.float64))
    model = ard_model(batch, prior)
    modes = [[(a - 1) / b for b in B] for a in (3.0, 1.5)]  # member x element
    with torch.no_grad():
        model.covar_module.base_kernel.lengthscale = torch.tensor(modes, dtype=torch.float64).unsqueeze(-2)
    pull = gpviz.prior_pull(model)
    ls = pull[pull.key.str.contains("lengthscale")]
    for (key, member), row in ls.set_index(["key", "i_model"]).iterrows():
        j = int(key[-2])
        assert row.prior_mode == pytest.approx(modes[member][j], rel=1e-12)
        assert abs(row.distance) < 1e-12
    long = gpviz.parameters(model, long=True)
    lsl = long[long.key.str.contains("lengthscale")].set_index(["key", "i_model"])
    np.testing.assert_allclose(lsl.loc[ls.set_index(["key", "i_model"]).index, "prior_mode"],
                               ls.prior_mode, rtol=1e-12)


def test_chart_marks_each_elements_own_mode_and_none_where_members_differ():
    model = ard_model()
    keys = [k for k in gpviz.model_expr(model).keys if "lengthscale" in k]
    facts = facts_from_info(gpviz.parameters(model, long=True), keys, {})
    assert [facts[k].prior_mode for k in keys] == pytest.approx(HAND, rel=1e-12)
    # members with different modes: no single mark (main drew member 0's mode for all)
    info = pd.DataFrame({"key": [keys[0]] * 2, "prior_mode": [HAND[0], HAND[1]]})
    assert facts_from_info(info, keys[:1], {})[keys[0]].prior_mode is None


def test_normal_prior_per_element_mode_and_linear_distance():
    # a real-valued parameter: the mean constant, with a Normal prior; distance in prior sds of θ
    model = ard_model()
    model.mean_module.register_prior("constant_prior", NormalPrior(torch.tensor(0.5, dtype=torch.float64),
                                                               torch.tensor(2.0, dtype=torch.float64)), "constant")
    with torch.no_grad():
        model.mean_module.constant.fill_(1.5)
    row = gpviz.prior_pull(model).set_index("key").loc["mean_module.constant"]
    assert row.prior_mode == pytest.approx(0.5) and row.distance == pytest.approx(1.0)
    assert row.distance_sd == pytest.approx(0.5)


def test_every_prior_is_described_with_its_mode_and_a_mode_below_the_bound_is_a_conflict():
    from gpytorch.constraints import GreaterThan

    from gpviz.values.prior_info import describe_prior, describe_priors, mode_conflicts

    # Ax's "looser" prior: LogNormal(2.387, 3) has its mode at exp(mu - sigma^2) = exp(2.387 - 9) ~ 0.0013,
    # below BoTorch's GreaterThan(2.5e-2) lengthscale constraint
    hand = math.exp(2.387 - 3.0**2)
    assert hand == pytest.approx(0.001343, rel=1e-3)
    kernel = RBFKernel(ard_num_dims=3, lengthscale_prior=LogNormalPrior(2.387, 3.0),
                       lengthscale_constraint=GreaterThan(2.5e-2))
    assert describe_prior(kernel.lengthscale_prior) == f"LogNormalPrior(loc=2.387, scale=3), mode {hand:.4g}"
    (conflict,) = mode_conflicts(kernel)
    assert conflict.parameter == "lengthscale" and conflict.elements == 3
    assert conflict.mode == pytest.approx(hand, rel=1e-12) and conflict.lower == pytest.approx(2.5e-2)
    assert "lies below its lower bound 0.025 (3 elements)" in str(conflict)
    # Gamma(3, 6)'s mode 1/3 lies inside: no conflict; a vector prior is described by its modes' range
    assert mode_conflicts(RBFKernel(lengthscale_prior=GammaPrior(3.0, 6.0))) == []
    assert describe_prior(vector_gamma()).endswith("modes 0.3333 .. 0.5")
    # a prior with no known mode is described without one; the model's list names each prior with its mode
    model = SingleTaskGP(torch.rand(5, 2, dtype=torch.float64), torch.rand(5, 1, dtype=torch.float64))
    described = dict(describe_priors(model))
    noise = math.exp(-4.0 - 1.0)  # BoTorch's LogNormal(-4, 1) noise prior
    assert described["likelihood.noise_covar.noise"].endswith(f"mode {noise:.4g}")
    assert all("mode " in text for text in described.values())
