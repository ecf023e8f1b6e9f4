"""prior_sensitivity against references computed without gpviz: ArviZ's own ``psense_summary`` on independent NUTS
draws (NumPyro) of the same posterior, written in jax; hand cases for the CJS distance and the diagnosis."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import RBFKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.means import ZeroMean
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior

from gpviz.errors import InputError, UnsupportedError
from gpviz.priors.sensitivity import CONFLICT, STRONG_PRIOR, cjs_distance, diagnose, prior_sensitivity
from tests.extras import need


def _data(n=10, seed=3):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 1, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X) + 0.2 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


def gamma_model():
    """An RBF lengthscale and a noise, each under a Gamma prior, no mean, on 10 points (2 parameters)."""
    X, Y = _data()
    return SingleTaskGP(X, Y, covar_module=RBFKernel(lengthscale_prior=GammaPrior(3.0, 6.0)), mean_module=ZeroMean(),
                        likelihood=GaussianLikelihood(noise_prior=GammaPrior(1.1, 0.05)), outcome_transform=None)


def default_model():
    """BoTorch's default SingleTaskGP (its LogNormal priors, Standardize, a constant mean) on 10 points."""
    X, Y = _data(seed=5)
    return SingleTaskGP(X, Y)


def _jax_log_densities(model):
    """The model's log likelihood and log prior as jax functions of (lengthscale, noise, constant), written
    from the formulas (RBF kernel, Gaussian noise, Gamma / LogNormal densities), not through GPyTorch."""
    import jax.numpy as jnp
    from jax.scipy.special import gammaln

    X = jnp.asarray(model.train_inputs[0].detach().numpy()[:, 0])
    y = jnp.asarray(model.train_targets.detach().numpy())

    def log_lik(ls, noise, const):
        K = jnp.exp(-0.5 * (X[:, None] - X[None, :]) ** 2 / ls ** 2) + noise * jnp.eye(len(X))
        L = jnp.linalg.cholesky(K)
        a = jnp.linalg.solve(L, y - const)
        return -0.5 * a @ a - jnp.log(jnp.diag(L)).sum() - 0.5 * len(X) * jnp.log(2 * jnp.pi)

    def log_density(prior, x):
        if isinstance(prior, GammaPrior):
            a, b = float(prior.concentration), float(prior.rate)
            return a * jnp.log(b) - gammaln(a) + (a - 1) * jnp.log(x) - b * x
        mu, s = float(prior.loc), float(prior.scale)  # LogNormal
        return -jnp.log(x * s * jnp.sqrt(2 * jnp.pi)) - (jnp.log(x) - mu) ** 2 / (2 * s ** 2)

    ls_prior = model.covar_module.lengthscale_prior
    noise_prior = model.likelihood.noise_covar.noise_prior

    def log_prior(ls, noise):
        return log_density(ls_prior, ls) + log_density(noise_prior, noise)

    return log_lik, log_prior


def nuts_reference(model, *, has_const: bool, seed=1, draws=20000):
    """ArviZ's psense_summary on NumPyro NUTS draws of the model's posterior: ``{label: (prior, likelihood)}``."""
    jax = need("jax", "fully-bayesian")
    need("numpyro", "fully-bayesian")
    azb = need("arviz_base", "arviz")
    psense = need("arviz_stats.psense", "arviz")
    need("xarray_einstats", "arviz")
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)  # float32 Cholesky of a 1e-4 noise moved the reference by 20%
    try:
        return _nuts_reference(model, has_const, seed, draws, azb, psense)
    finally:
        jax.config.update("jax_enable_x64", x64)


def _nuts_reference(model, has_const, seed, draws, azb, psense):
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS

    log_lik, log_prior = _jax_log_densities(model)
    ls_lo = float(model.covar_module.raw_lengthscale_constraint.lower_bound)
    nz_lo = float(model.likelihood.noise_covar.raw_noise_constraint.lower_bound)

    def unpack(u):
        return ls_lo + jnp.exp(u[0]), nz_lo + jnp.exp(u[1]), (u[2] if has_const else 0.0)

    def potential(u):
        ls, noise, const = unpack(u)
        return -(log_lik(ls, noise, const) + log_prior(ls, noise) + u[0] + u[1])  # Jacobians of the exp maps

    dim = 3 if has_const else 2
    mcmc = MCMC(NUTS(potential_fn=potential), num_warmup=1000, num_samples=draws // 2, num_chains=2,
                chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), init_params=jnp.zeros((2, dim)))
    u = np.asarray(mcmc.get_samples(group_by_chain=True))  # chains x draws x dim
    ls, noise, const = (np.asarray(t) for t in jax.vmap(jax.vmap(unpack))(jnp.asarray(u)))
    ll = np.asarray(jax.vmap(jax.vmap(log_lik))(jnp.asarray(ls), jnp.asarray(noise), jnp.asarray(const)
                                                  if has_const else jnp.zeros_like(jnp.asarray(ls))))
    lp = np.asarray(jax.vmap(jax.vmap(log_prior))(jnp.asarray(ls), jnp.asarray(noise)))
    post = {"lengthscale": ls, "noise": noise}
    if has_const:
        post["constant"] = const
    tree = azb.from_dict({"posterior": post, "log_likelihood": {"y": ll[..., None]}, "log_prior": {"theta": lp}})
    summary = psense.psense_summary(tree, round_to=6)
    return {name: (float(summary.loc[name, "prior"]), float(summary.loc[name, "likelihood"])) for name in post}


def _close(ours, ref, rel=0.4, abs_=0.01):
    """Within Monte Carlo error. The CJS derivative is noisy on heavy-tailed marginals (its normalization is the
    CDF's integral over the draws' range, set by the few largest draws): on the Gamma model's noise, ArviZ on 4,000
    NUTS draws gave a likelihood sensitivity of 0.91-1.28 over four seeds and 1.22 on 40,000, gpviz 1.04-1.40 over
    three seeds of 20,000; on BoTorch's default model both agree within 5%. So 40% of the larger, plus a floor
    for values near zero."""
    return abs(ours - ref) <= rel * max(ours, ref) + abs_


@pytest.mark.slow
@pytest.mark.parametrize("make, has_const", [(gamma_model, False), (default_model, True)],
                         ids=["gamma-priors", "botorch-default"])
def test_prior_sensitivity_agrees_with_arviz_on_nuts_draws(make, has_const):
    model = make()
    from botorch.fit import fit_gpytorch_mll

    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    ref = nuts_reference(model, has_const=has_const)
    ours = prior_sensitivity(model, draws=20000).set_index("key")
    keys = {"lengthscale": "covar_module.lengthscale", "noise": "likelihood.noise_covar.noise",
            "constant": "mean_module.constant"}
    assert set(ours.index) == {keys[name] for name in ref}
    for label, (prior, lik) in ref.items():
        row = ours.loc[keys[label]]
        assert _close(row["prior"], prior), (label, "prior", row["prior"], prior)
        assert _close(row["likelihood"], lik), (label, "likelihood", row["likelihood"], lik)
        clear = all(abs(v - 0.05) > 0.02 for v in (prior, lik))
        if clear:  # the same diagnosis where the reference is clear of the threshold
            assert row["diagnosis"] == diagnose(prior, lik), (label, row["diagnosis"], prior, lik)
        assert row["pareto_k"] < 0.7 and row["draws"] == 20000


def test_cjs_distance_by_hand():
    # two draws at 0 and 1; base weights 1/2, 1/2; scaled 1/4, 3/4: ECDFs on [0, 1) are 1/2 and 1/4
    p, q = 0.5, 0.25
    m = 0.5 * (p + q)
    pq = p * math.log2(p / m) + 0.5 / math.log(2) * (q - p)
    qp = q * math.log2(q / m) + 0.5 / math.log(2) * (p - q)
    want = math.sqrt((max(pq, 0) + max(qp, 0)) / (p + q))
    got = cjs_distance(np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([0.75, 0.25]))
    assert got == pytest.approx(want, rel=1e-12)
    assert cjs_distance(np.array([0.0, 1.0, 2.0]), np.ones(3), np.ones(3)) == 0.0


def test_cjs_distance_matches_arviz_on_equal_base_weights():
    diag = need("arviz_stats.base.diagnostics", "arviz")
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=500), rng.uniform(0.5, 1.5, size=500)
    w = w / w.sum()
    assert cjs_distance(x, np.ones(500), w) == pytest.approx(diag._DiagnosticsBase._cjs_dist(x, w), rel=1e-10)


def test_diagnosis_labels():
    assert diagnose(0.06, 0.2) == CONFLICT
    assert diagnose(0.06, 0.01) == STRONG_PRIOR
    assert diagnose(0.01, 0.2) == ""


def test_prior_sensitivity_rows_bounds_and_model_left_as_found():
    model = gamma_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.eval()
    df = prior_sensitivity(model, draws=300, seed=2)
    assert list(df["label"]) == ["lengthscale[x0]", "noise"] and set(df["i_model"]) == {0}
    assert (df["draws"] == 300).all() and (df["prior"] >= 0).all() and (df["likelihood"] >= 0).all()
    assert not model.training  # the model's mode, and every value, as found
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n])
    again = prior_sensitivity(model, draws=300, seed=2)
    assert np.array_equal(df[["prior", "likelihood"]].to_numpy(), again[["prior", "likelihood"]].to_numpy())


def test_batched_members_each_their_own_posterior():
    X, Y = _data()
    Xb, Yb = torch.stack([X, X]), torch.stack([Y, -3 * Y])
    batched = SingleTaskGP(Xb, Yb, outcome_transform=None)
    df = prior_sensitivity(batched, draws=2000)
    assert set(df["i_model"]) == {0, 1} and len(df) == 2 * 3
    # each member against the same model on its own data alone: the same posterior up to Monte Carlo error
    for m in (0, 1):
        single = SingleTaskGP(Xb[m], Yb[m], outcome_transform=None)
        one = prior_sensitivity(single, draws=2000).set_index("key")
        mine = df[df["i_model"] == m].set_index("key")
        assert (abs(mine.loc[one.index, "mean"] - one["mean"]) <= 0.1 * one["sd"]).all(), (mine, one)
        assert (abs(mine.loc[one.index, "sd"] / one["sd"] - 1) <= 0.25).all(), (mine, one)  # the noise: long-tailed


def test_refusals():
    with pytest.raises(InputError, match="draws"):
        prior_sensitivity(gamma_model(), draws=10)
    with pytest.raises((InputError, UnsupportedError)):
        prior_sensitivity(object())
