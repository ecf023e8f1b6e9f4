"""parameters() and units, each against a reference computed without gpviz.

- wide and long frames of a batched model against the model's own tensors, member by member,
  and the long frame's bounds against the constraint objects;
- original units against BoTorch's own posterior in original units: far from the data
  (where the data no longer inform it), BoTorch's untransformed posterior mean is the
  constant mean in original units, its variance the outputscale, its observation noise
  the noise, and the correlation of two nearby far points ``exp(-½ Σ (Δ_d / ℓ_d)²)`` with
  each lengthscale in original units; and against the raw data's range and moments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Normalize
from botorch.models.transforms.outcome import Standardize
from gpytorch.constraints import Interval
from gpytorch.kernels import RBFKernel, ScaleKernel

import gpviz

RANGES, OFFSETS = torch.tensor([2.0, 30.0]), torch.tensor([1.0, -5.0])
LS_MODEL, OUTPUTSCALE, NOISE, CONST = [0.3, 0.7], 1.5, 0.05, 0.2


def _raw_data(n=12, seed=3):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=g, dtype=torch.float64) * RANGES + OFFSETS
    Y = 40.0 * torch.sin(X[:, :1]) + 0.1 * X[:, 1:] + 300.0
    return X, Y


def _transformed_model():
    X, Y = _raw_data()
    m = SingleTaskGP(X, Y, covar_module=ScaleKernel(RBFKernel(ard_num_dims=2)), input_transform=Normalize(2),
                     outcome_transform=Standardize(1))
    with torch.no_grad():
        m.covar_module.base_kernel.lengthscale = torch.tensor([LS_MODEL])
        m.covar_module.outputscale = torch.tensor(OUTPUTSCALE)
        m.likelihood.noise = torch.tensor([NOISE])
        m.mean_module.constant.fill_(CONST)
    m.eval()
    return m, X, Y


def test_original_units_equal_the_raw_data_range_and_moments_times_the_models_own_values():
    m, X, Y = _transformed_model()
    orig = gpviz.parameters(m, units="original").iloc[0]
    rng = (X.max(0).values - X.min(0).values).numpy()
    sd, mu = float(Y.std()), float(Y.mean())  # Standardize: unbiased sd
    ls = m.covar_module.base_kernel.lengthscale.detach().reshape(-1).numpy()
    for j in range(2):
        assert orig[f"covar_module.base_kernel.lengthscale[{j}]"] == pytest.approx(ls[j] * rng[j], rel=1e-12)
    assert orig["covar_module.outputscale"] == pytest.approx(float(m.covar_module.outputscale.detach()) * sd ** 2, rel=1e-12)
    assert orig["likelihood.noise_covar.noise"] == pytest.approx(float(m.likelihood.noise.detach()) * sd ** 2, rel=1e-12)
    assert orig["mean_module.constant"] == pytest.approx(float(m.mean_module.constant.detach()) * sd + mu, rel=1e-12)


def test_original_units_equal_botorchs_posterior_far_from_the_data():
    m, X, Y = _transformed_model()
    orig = gpviz.parameters(m, units="original").iloc[0]
    ls = np.array([orig[f"covar_module.base_kernel.lengthscale[{j}]"] for j in range(2)])
    # 60 normalized units beyond the data on both inputs (the data's influence is exp(-60²/2/0.7²) = 0),
    # and a second point half a lengthscale (in original units, by hand) away on each input
    far = X.max(0).values + 60.0 * RANGES
    delta = torch.tensor([0.5 * ls[0], 0.25 * ls[1]])
    pts = torch.stack([far, far + delta])
    with torch.no_grad():
        post = m.posterior(pts)  # BoTorch untransforms Standardize: original outputs
        mean = post.mean.detach().reshape(-1).numpy()
        cov = post.mvn.covariance_matrix.detach().reshape(2, 2).numpy()
        noisy_var = m.posterior(pts, observation_noise=True).variance.detach().reshape(-1).numpy()
    np.testing.assert_allclose(mean, [orig["mean_module.constant"]] * 2, rtol=1e-10)
    np.testing.assert_allclose(np.diag(cov), [orig["covar_module.outputscale"]] * 2, rtol=1e-9)
    corr = math.exp(-0.5 * (0.5 ** 2 + 0.25 ** 2))
    assert cov[0, 1] == pytest.approx(orig["covar_module.outputscale"] * corr, rel=1e-9)
    np.testing.assert_allclose(noisy_var,
                               [orig["covar_module.outputscale"] + orig["likelihood.noise_covar.noise"]] * 2,
                               rtol=1e-9)


def test_batched_wide_and_long_frames_are_each_members_own_tensors_and_constraints():
    batch = torch.Size([3])
    g = torch.Generator().manual_seed(0)
    X = torch.rand(3, 6, 2, generator=g, dtype=torch.float64)
    Y = torch.rand(3, 6, 1, generator=g, dtype=torch.float64)
    covar = ScaleKernel(RBFKernel(ard_num_dims=2, batch_shape=batch,
                                  lengthscale_constraint=Interval(0.05, 4.0)), batch_shape=batch)
    m = SingleTaskGP(X, Y, covar_module=covar)
    with torch.no_grad():
        covar.base_kernel.raw_lengthscale.copy_(torch.randn(3, 1, 2, generator=g, dtype=torch.float64))
        covar.raw_outputscale.copy_(torch.randn(3, generator=g, dtype=torch.float64))
        m.likelihood.noise_covar.raw_noise.copy_(torch.rand(3, 1, generator=g, dtype=torch.float64) * 0.1 + 1e-3)
        m.mean_module.raw_constant.copy_(torch.randn(3, generator=g, dtype=torch.float64))
    wide = gpviz.parameters(m)
    long = gpviz.parameters(m, long=True).set_index(["key", "i_model"])
    c = covar.base_kernel.raw_lengthscale_constraint
    raw_ls = covar.base_kernel.raw_lengthscale.detach()
    # Interval's transform, written out: lower + (upper - lower) * sigmoid(raw)
    ls = 0.05 + (4.0 - 0.05) * torch.sigmoid(raw_ls)
    os_ = torch.nn.functional.softplus(covar.raw_outputscale.detach())
    assert wide["i_model"].tolist() == [0, 1, 2]
    for i in range(3):
        for j in range(2):
            key = f"covar_module.base_kernel.lengthscale[{j}]"
            assert wide[key][i] == pytest.approx(float(ls[i, 0, j]), rel=1e-12)
            row = long.loc[(key, i)]
            assert row["raw"] == float(raw_ls[i, 0, j])
            assert row["value"] == pytest.approx(float(ls[i, 0, j]), rel=1e-12)
            assert row["lower"] == float(c.lower_bound) == 0.05 and row["upper"] == float(c.upper_bound) == 4.0
            assert row["constraint"] == "Interval" and bool(row["enforced"])
        assert wide["covar_module.outputscale"][i] == pytest.approx(float(os_[i]), rel=1e-12)
        assert wide["likelihood.noise_covar.noise"][i] == pytest.approx(
            float(m.likelihood.noise_covar.raw_noise.detach()[i, 0]), rel=1e-12)  # GreaterThan: raw == value
        assert wide["mean_module.constant"][i] == float(m.mean_module.raw_constant.detach()[i])


def test_at_bound_against_the_constraints_own_bounds():
    batch = torch.Size([2])
    X = torch.rand(2, 5, 1, dtype=torch.float64)
    covar = ScaleKernel(RBFKernel(batch_shape=batch, lengthscale_constraint=Interval(0.1, 2.0)), batch_shape=batch)
    m = SingleTaskGP(X, X.sin(), covar_module=covar)
    lower = float(m.likelihood.noise_covar.raw_noise_constraint.lower_bound)
    with torch.no_grad():
        m.likelihood.noise_covar.raw_noise.copy_(torch.tensor([[lower], [10 * lower]]))
        covar.base_kernel.lengthscale = torch.tensor([[[1.0]], [[1.0]]])
    long = gpviz.parameters(m, long=True).set_index(["key", "i_model"])
    assert bool(long.loc[("likelihood.noise_covar.noise", 0), "at_bound"])
    assert not bool(long.loc[("likelihood.noise_covar.noise", 1), "at_bound"])
    assert not long.loc["covar_module.base_kernel.lengthscale", "at_bound"].any()


# --------------------------------------------------------------------------- #
# The printed expression, run as the README's notation key defines it          #
# --------------------------------------------------------------------------- #

def _notation(x1: np.ndarray, x2: np.ndarray, names):
    """The README's "Reading the notation" key, written out in numpy (not gpviz's evaluator)."""
    col = {n: i for i, n in enumerate(names)}
    return {
        "compare": lambda f: x1[:, col[f]][:, None] - x2[:, col[f]][None, :],
        "dot": lambda *fs: sum(np.outer(x1[:, col[f]], x2[:, col[f]]) for f in fs),
        "norm_l2": lambda xs: np.sqrt(sum(a ** 2 for a in xs)),
        "norm_l1": lambda xs: sum(np.abs(a) for a in xs),
        "sum": lambda xs: sum(xs), "prod": lambda xs: math.prod(xs), "mean": lambda xs: sum(xs) / len(xs),
        "exp": np.exp, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "abs": np.abs, "π": math.pi,
        "rbf": lambda r: np.exp(-r ** 2 / 2),
        "matern_05": lambda r: np.exp(-r),
        "matern_15": lambda r: (1 + math.sqrt(3) * r) * np.exp(-math.sqrt(3) * r),
        "matern_25": lambda r: (1 + math.sqrt(5) * r + 5 / 3 * r ** 2) * np.exp(-math.sqrt(5) * r),
        "rq": lambda r, alpha: (1 + r ** 2 / (2 * alpha)) ** -alpha,
    }


def _kernels():
    from gpytorch.kernels import LinearKernel, MaternKernel, PeriodicKernel, RQKernel

    return {
        "scale_matern52_ard": ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=2)),
        "matern12_ard": MaternKernel(nu=0.5, ard_num_dims=2),
        "matern32_shared": MaternKernel(nu=1.5),
        "rbf_plus_periodic": ScaleKernel(RBFKernel(active_dims=[0])) + ScaleKernel(PeriodicKernel(active_dims=[1])),
        "rbf_times_linear": RBFKernel(active_dims=[0]) * LinearKernel(active_dims=[1]),
        "rq_ard": RQKernel(ard_num_dims=2),
    }


@pytest.mark.parametrize("name", sorted(_kernels()))
def test_the_printed_expression_run_as_the_notation_says_is_gpytorchs_kernel_matrix(name):
    """What a user reads, to its printed precision (3 significant digits), is GPyTorch's kernel(x1, x2)."""
    kernel = _kernels()[name].double()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in kernel.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    names = ["a", "b"]
    text = str(gpviz.kernel_expr(kernel, names))
    x1 = torch.rand(5, 2, generator=g, dtype=torch.float64)
    x2 = torch.rand(4, 2, generator=g, dtype=torch.float64)
    with torch.no_grad():
        want = kernel(x1, x2).to_dense().numpy()
    got = eval(compile("(" + text + ")", "<printed>", "eval"), {"__builtins__": {}},  # noqa: S307 - our own text
               _notation(x1.numpy(), x2.numpy(), names))
    np.testing.assert_allclose(np.broadcast_to(got, want.shape), want, rtol=1e-2, atol=1e-3 * np.abs(want).max(),
                               err_msg=text)
