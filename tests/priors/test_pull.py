"""prior_pull: gradients of the MLL's two terms against finite differences, verdicts, and with_priors."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
import gpytorch.priors
from gpytorch.kernels import MaternKernel, RBFKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior, LogNormalPrior, NormalPrior

import gpviz
from gpviz.errors import InputError, UnsupportedError
from gpviz.values.keys import param_info, parse_key, resolve
from gpviz.priors.factories import with_priors
from gpviz.priors.pull import prior_pull
from gpviz.priors.sweep_pull import PullJob, _stacked_model, load_member_values, sweep_prior_pull
from gpviz.priors.verdicts import AT_BOUND, FREE, HELD

D = 8


def f_two_of_eight(X: torch.Tensor) -> torch.Tensor:
    """Depends on inputs 0 and 1 only; the other six are irrelevant."""
    return (torch.sin(6 * X[:, 0]) + 4 * (X[:, 1] - 0.5) ** 2).unsqueeze(-1)


def data(n: int, seed: int = 0, d: int = D):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g)
    return X, f_two_of_eight(X) + 0.01 * torch.randn(n, 1, generator=g)


def scale_matern(d: int = D, ls_prior=None, batch_shape=torch.Size()):
    return ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=d, lengthscale_prior=ls_prior, batch_shape=batch_shape),
                       outputscale_prior=GammaPrior(2.0, 0.15), batch_shape=batch_shape)


def mll_members(mll) -> torch.Tensor:
    """The MLL's own value per batch member, evaluated as BoTorch's loss closure does."""
    model = mll.model
    mll.train()
    with torch.no_grad():
        out = model(*model.train_inputs)
        return mll(out, model.train_targets, *(model.transform_inputs(X=t) for t in model.train_inputs)).reshape(-1)


def log_prior(model, n_data: int) -> float:
    """Σ log prior / n of a non-batched model, from the closed-form densities (not via named_priors)."""
    total = 0.0
    with torch.no_grad():
        for module in model.modules():
            for attr in ("lengthscale", "outputscale", "noise"):
                prior = getattr(module, f"{attr}_prior", None)
                if prior is None:
                    continue
                v = getattr(module, attr)
                if isinstance(prior, GammaPrior):
                    a, b = float(prior.concentration), float(prior.rate)
                    lp = a * math.log(b) - math.lgamma(a) + (a - 1) * torch.log(v) - b * v
                elif isinstance(prior, LogNormalPrior):
                    mu, s = float(prior.loc), float(prior.scale)
                    lp = -torch.log(v) - math.log(s * math.sqrt(2 * math.pi)) - (torch.log(v) - mu) ** 2 / (2 * s * s)
                else:
                    raise AssertionError(type(prior))
                total += float(lp.sum())
    return total / n_data


def set_value(model, key: str, value: float) -> None:
    """Sets one element of a non-batched model to a constrained value (through the inverse transform)."""
    path, name, index = parse_key(key)
    info = param_info(resolve(model, path), name, torch.Size())
    c = info.constraint
    with torch.no_grad():
        r = c.inverse_transform(torch.tensor(value)) if c is not None and c.enforced else torch.tensor(value)
        info.raw.view(-1)[info.flat_index(index)] = r


def fd_check(mll, keys, rel: float = 1e-3):
    """Finite differences (in θ) of the MLL and of the closed-form prior term vs prior_pull (member 0)."""
    model = mll.model
    pull = prior_pull(mll)
    n_data = model.train_targets.shape[-1]
    for key in keys:
        row = pull[pull.key == key].iloc[0]
        v = row.value
        h = 1e-5 * max(abs(v), 1e-3)
        vals, wide = {}, {}
        h2 = 1e-3 * max(abs(v), 0.1)  # second differences need a wider step than roundoff allows at h
        for s in (-1, 0, 1):
            set_value(model, key, v + s * h)
            vals[s] = (mll_members(mll)[0].item(), log_prior(model, n_data))
            set_value(model, key, v + s * h2)
            wide[s] = mll_members(mll)[0].item()
        set_value(model, key, v)
        d_total = (vals[1][0] - vals[-1][0]) / (2 * h)
        d_prior = (vals[1][1] - vals[-1][1]) / (2 * h)
        curv_total = -(wide[1] - 2 * wide[0] + wide[-1]) / h2 ** 2
        scale = max(abs(d_total), abs(row.d_log_prior), 1e-6)
        assert row.d_log_prior == pytest.approx(d_prior, rel=rel, abs=1e-7 * scale + 1e-9), key
        # the two terms add up to the MLL's own gradient
        assert row.d_log_prior + row.d_log_lik == pytest.approx(d_total, rel=rel, abs=1e-6 * scale + 1e-9), key
        assert row.d_log_lik == pytest.approx(d_total - d_prior, rel=5 * rel, abs=1e-5 * scale + 1e-8), key
        cscale = max(abs(curv_total), abs(row.curv_prior), 1.0)
        assert row.curv_prior + row.curv_lik == pytest.approx(curv_total, rel=2e-2, abs=2e-3 * cscale), key
    return pull


@pytest.fixture(scope="module")
def small_gamma_fit():
    """Legacy BoTorch prior Gamma(3, 6) on a Scale-Matern kernel, 8 inputs (2 relevant), only 8 points."""
    X, Y = data(8, seed=0)
    model = SingleTaskGP(X, Y, covar_module=scale_matern(ls_prior=GammaPrior(3.0, 6.0)))
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    fit_gpytorch_mll(mll)
    return mll


def test_keys_and_rows_match_model_expr(small_gamma_fit):
    pull = prior_pull(small_gamma_fit)
    keys = list(gpviz.model_expr(small_gamma_fit.model).keys)
    assert list(dict.fromkeys(pull.key)) == keys
    assert len(pull) == len(keys)
    assert pull.i_model.dtype == np.int32
    assert set(pull.verdict) <= {HELD, AT_BOUND, FREE}
    ls = pull[pull.key.str.contains("lengthscale")]
    assert (ls.prior == "GammaPrior").all() and ls.prior_params.str.contains("concentration=3").all()
    assert ls.prior_mode.to_numpy() == pytest.approx(np.full(D, 1 / 3))
    assert ls.distance.to_numpy() == pytest.approx(np.log(ls.value.to_numpy() * 3))


def test_gradients_match_finite_differences_softplus(small_gamma_fit):
    """Softplus Positive() constraints: the chain rule through the transform, plus a prior on every term."""
    mll = small_gamma_fit
    keys = list(gpviz.model_expr(mll.model).keys)
    state = {k: v.clone() for k, v in mll.model.state_dict().items()}
    try:
        fd_check(mll, keys)
    finally:
        mll.model.load_state_dict(state)


def test_gradients_match_finite_differences_default_model_off_optimum():
    """Default SingleTaskGP: non-enforced GreaterThan (raw == value), LogNormal priors, away from the optimum."""
    X, Y = data(10, seed=3, d=3)
    model = SingleTaskGP(X, Y)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    assert not model.covar_module.raw_lengthscale_constraint.enforced
    with torch.no_grad():
        model.covar_module.lengthscale = torch.tensor([[0.3, 1.2, 2.5]])
        model.likelihood.noise = torch.tensor([0.05])
    pull = fd_check(mll, list(gpviz.model_expr(model).keys))
    row = pull[pull.key == "covar_module.lengthscale[0]"].iloc[0]
    assert row.raw == row.value  # not enforced: raw is the value
    # off the optimum the gradients do not cancel
    assert abs(row.d_log_prior + row.d_log_lik) > 1e-3


def test_held_by_prior_with_little_data(small_gamma_fit):
    pull = prior_pull(small_gamma_fit)
    ls = pull[pull.key.str.contains("lengthscale")]
    irrelevant = ls[ls.key.str.extract(r"\[(\d)\]")[0].astype(int) >= 2]
    assert (irrelevant.verdict == HELD).all(), irrelevant[["key", "value", "prior_share", "verdict"]]
    assert (irrelevant.distance.abs() < math.log(2)).all()
    assert (irrelevant.prior_share > 0.5).all()
    # at a fitted optimum the two gradients nearly cancel: their ratio is ~1 whatever the prior's strength
    assert np.median(ls.ratio) == pytest.approx(1.0, abs=0.3)


def test_free_with_loose_prior_and_more_data():
    X, Y = data(48, seed=1)
    model = SingleTaskGP(X, Y, covar_module=scale_matern(ls_prior=GammaPrior(1.125, 0.375)))
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    fit_gpytorch_mll(mll)
    pull = prior_pull(mll)
    ls = pull[pull.key.str.contains("lengthscale")]
    index = ls.key.str.extract(r"\[(\d)\]")[0].astype(int)
    relevant, irrelevant = ls[index < 2], ls[index >= 2]
    assert (relevant.verdict == FREE).all(), relevant[["key", "value", "prior_share", "verdict"]]
    assert (relevant.prior_share < 0.5).all()
    # the six inputs f ignores: the data alone would take their lengthscales 100x further (their likelihood there
    # is at least as high, escape_gain > -3 nats): the loose prior is what keeps them finite, never "free"
    assert (irrelevant.verdict != FREE).all(), irrelevant[["key", "value", "escape_gain", "verdict"]]


def test_model_without_priors_gives_no_prior_rows():
    X, Y = data(10, seed=2, d=2)
    model = SingleTaskGP(X, Y, covar_module=RBFKernel(ard_num_dims=2), likelihood=GaussianLikelihood())
    assert not list(model.named_priors())
    pull = prior_pull(ExactMarginalLogLikelihood(model.likelihood, model))
    assert len(pull) == len(gpviz.model_expr(model).keys)
    assert (pull.prior == "none").all()
    assert (pull.d_log_prior == 0).all() and (pull.curv_prior == 0).all()
    assert HELD not in set(pull.verdict)
    assert np.isfinite(pull.d_log_lik).all()


def test_fixed_parameters_and_model_left_as_found():
    X, Y = data(10, seed=4, d=2)
    model = SingleTaskGP(X, Y)
    model.covar_module.raw_lengthscale.requires_grad_(False)
    model.eval()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    mll.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pull = prior_pull(mll)
    assert not model.covar_module.raw_lengthscale.requires_grad
    assert model.likelihood.noise_covar.raw_noise.requires_grad
    assert not model.training and not mll.training and not model.covar_module.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    ls = pull[pull.key.str.contains("lengthscale")]
    assert (~ls.trainable).all() and pull[~pull.key.str.contains("lengthscale")].trainable.all()
    assert np.isfinite(ls.d_log_lik).all() and (ls.d_log_lik != 0).any()


def test_at_bound_verdict():
    X, Y = data(10, seed=5, d=2)
    model = SingleTaskGP(X, Y)  # noise: GreaterThan(1e-4), not enforced
    with torch.no_grad():
        model.likelihood.noise_covar.raw_noise.fill_(1e-4)
    pull = prior_pull(model)  # a bare model is accepted: an exact MLL is built around it
    row = pull[pull.key == "likelihood.noise_covar.noise"].iloc[0]
    assert row.verdict == AT_BOUND and row.lower == pytest.approx(1e-4)


def test_batched_loo_members_match_separate_models():
    """Gradients of the summed batched loss separate per member: compare with each fold built on its own."""
    X, Y = data(6, seed=6, d=2)
    folds = gen_loo_cv_folds(X, Y)
    batched = SingleTaskGP(folds.train_X, folds.train_Y, covar_module=scale_matern(
        d=2, ls_prior=GammaPrior(3.0, 6.0), batch_shape=torch.Size([6])))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # distinct values per member
        batched.covar_module.base_kernel.lengthscale = 0.2 + torch.rand(6, 1, 2, generator=g)
        batched.likelihood.noise = 0.01 + 0.1 * torch.rand(6, 1, generator=g)
    pull = prior_pull(ExactMarginalLogLikelihood(batched.likelihood, batched))
    assert len(pull) == 6 * len(gpviz.model_expr(batched).keys)
    for i in (0, 3, 5):
        single = SingleTaskGP(folds.train_X[i], folds.train_Y[i], covar_module=scale_matern(
            d=2, ls_prior=GammaPrior(3.0, 6.0)))
        with torch.no_grad():
            for name, p in single.named_parameters():
                p.copy_(dict(batched.named_parameters())[name][i])
        ref = prior_pull(ExactMarginalLogLikelihood(single.likelihood, single))
        mine = pull[pull.i_model == i].reset_index(drop=True)
        assert list(mine.key) == list(ref.key)
        for col in ("value", "d_log_prior", "d_log_lik", "curv_prior", "curv_lik"):
            np.testing.assert_allclose(mine[col], ref[col], rtol=1e-6, atol=1e-9, err_msg=col)


def test_shared_parameter_in_batched_model():
    """A parameter shared by all members (a non-batched kernel in a batched GP) gets per-member gradients."""
    from gpytorch.distributions import MultivariateNormal
    from gpytorch.means import ConstantMean
    from gpytorch.models import ExactGP

    class Shared(ExactGP):
        def __init__(self, x, y):
            super().__init__(x, y, GaussianLikelihood(batch_shape=torch.Size([3])))
            self.mean_module = ConstantMean(batch_shape=torch.Size([3]))
            self.covar_module = ScaleKernel(RBFKernel(lengthscale_prior=GammaPrior(3.0, 6.0)),
                                            batch_shape=torch.Size([3]))

        def forward(self, x):
            return MultivariateNormal(self.mean_module(x), self.covar_module(x))

    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 7, 1, generator=g)
    y = torch.sin(5 * x[..., 0]) + torch.arange(3.0).unsqueeze(-1)
    model = Shared(x, y)
    pull = prior_pull(ExactMarginalLogLikelihood(model.likelihood, model))
    ls = pull[pull.key == "covar_module.base_kernel.lengthscale"]
    assert len(ls) == 3 and ls.value.nunique() == 1
    assert ls.d_log_lik.nunique() == 3  # different data per member
    # each member's MLL counts the shared prior once: the same prior gradient for every member
    assert ls.d_log_prior.to_numpy() == pytest.approx(np.full(3, ls.d_log_prior.iloc[0]))
    # summed over members, the lik gradients equal the gradient of the summed loss
    model.train()
    out = model(*model.train_inputs)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    total = mll(out, model.train_targets).sum()
    raw = model.covar_module.base_kernel.raw_lengthscale
    (g_raw,) = torch.autograd.grad(total, raw)
    dtheta = torch.sigmoid(raw).item()  # softplus'
    assert (ls.d_log_lik.sum() + ls.d_log_prior.sum()) == pytest.approx(g_raw.item() / dtheta, rel=1e-6)


# -- with_priors ---------------------------------------------------------------------------------------------------

def default_model(X, Y):
    return SingleTaskGP(X, Y)


def scale_matern_model(X, Y):
    return SingleTaskGP(X, Y, covar_module=ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=X.shape[-1])))


def test_with_priors_default_single_task_gp():
    X, Y = data(10, d=3)
    make = with_priors(default_model, lengthscale=GammaPrior(3.0, 6.0), noise=GammaPrior(1.1, 0.05))
    a, b = default_model(X, Y), make(X, Y)
    assert type(a) is type(b) and type(a.covar_module) is type(b.covar_module)
    sa, sb = a.state_dict(), b.state_dict()
    params_a = {k: v for k, v in sa.items() if "prior" not in k}
    params_b = {k: v for k, v in sb.items() if "prior" not in k}
    assert params_a.keys() == params_b.keys()
    assert all(torch.equal(params_a[k], params_b[k]) for k in params_a)
    lp = b.covar_module.lengthscale_prior
    assert isinstance(lp, GammaPrior) and float(lp.concentration) == 3.0 and lp.concentration.dtype == torch.float64
    assert isinstance(b.likelihood.noise_covar.noise_prior, GammaPrior)
    assert isinstance(a.covar_module.lengthscale_prior, LogNormalPrior)  # the original factory is untouched
    pull = prior_pull(b)
    assert pull[pull.key.str.contains("lengthscale")].prior.eq("GammaPrior").all()
    assert "lengthscale ~ GammaPrior(concentration=3" in make.describe()
    # cv_sweep's cache keys sweeps on __qualname__: other priors, another key
    other = with_priors(default_model, lengthscale=GammaPrior(1.125, 0.375))
    assert make.__qualname__ != other.__qualname__ and make.__qualname__.startswith("default_model[")
    with pytest.raises(UnsupportedError, match="no ScaleKernel"):
        with_priors(default_model, outputscale=GammaPrior(2.0, 0.15))(X, Y)


def test_with_priors_scale_matern_and_fit():
    X, Y = data(12, d=3)
    make = with_priors(scale_matern_model, lengthscale=GammaPrior(1.125, 0.375), outputscale=GammaPrior(2.0, 0.15))
    m = make(X, Y)
    assert float(m.covar_module.base_kernel.lengthscale_prior.rate) == 0.375
    assert float(m.covar_module.outputscale_prior.concentration) == 2.0
    names = [n for n, *_ in m.named_priors()]
    assert names.count("covar_module.base_kernel.lengthscale_prior") == 1
    a, b = make(X, Y), make(X, Y)
    assert a.covar_module.base_kernel.lengthscale_prior is not b.covar_module.base_kernel.lengthscale_prior
    mll = ExactMarginalLogLikelihood(m.likelihood, m)
    fit_gpytorch_mll(mll)
    pull = prior_pull(mll)
    assert pull[pull.key.str.contains("lengthscale")].prior_params.str.contains("rate=0.375").all()


def test_with_priors_errors():
    X, Y = data(6, d=2)
    with pytest.raises(InputError, match="float"):
        with_priors(default_model, lengthscale=3.0)
    with pytest.raises(InputError, match="Gamma"):
        with_priors(default_model, lengthscale=torch.distributions.Gamma(3.0, 6.0))
    with pytest.raises(InputError, match="at least one"):
        with_priors(default_model)
    with pytest.raises(InputError, match="callable"):
        with_priors("SingleTaskGP", lengthscale=GammaPrior(3.0, 6.0))
    bad = with_priors(default_model, lengthscale=GammaPrior(torch.ones(5), torch.ones(5)))
    with pytest.raises(InputError, match="lengthscale"):
        bad(X, Y)
    with pytest.raises(InputError, match="expects a marginal log likelihood"):
        prior_pull("not a model")
    # a prior of another family than Gamma is taken as it is, not only checked for its type
    normal = NormalPrior(0.0, 1.0)
    m = with_priors(default_model, noise=normal)(X, Y)
    assert m.likelihood.noise_covar.noise_prior is not normal  # each build gets its own copy
    assert float(m.likelihood.noise_covar.noise_prior.loc) == 0.0 and float(m.likelihood.noise_covar.noise_prior.scale) == 1.0


def test_input_transform_model_matches_finite_differences():
    """With a Normalize input transform, the terms are evaluated as BoTorch's loss closure does."""
    from botorch.models.transforms import Normalize

    X, Y = data(9, seed=7, d=2)
    model = SingleTaskGP(5 * X + 1, Y, input_transform=Normalize(d=2))
    fd_check(ExactMarginalLogLikelihood(model.likelihood, model), list(gpviz.model_expr(model).keys))


def test_model_list_and_multi_output():
    from botorch.models import ModelListGP
    from gpytorch.mlls import SumMarginalLogLikelihood

    X, Y = data(8, seed=8, d=2)
    Y2 = torch.cat([Y, -Y ** 2], -1)
    listed = ModelListGP(SingleTaskGP(X, Y), SingleTaskGP(X, -Y ** 2))
    pull = prior_pull(SumMarginalLogLikelihood(listed.likelihood, listed))
    assert list(dict.fromkeys(pull.key)) == list(gpviz.model_expr(listed).keys)
    alone = prior_pull(listed.models[1])
    second = pull[pull.key.str.startswith("models.1.")].reset_index(drop=True)
    np.testing.assert_allclose(second.d_log_lik, alone.d_log_lik, rtol=1e-9)
    # a two-output SingleTaskGP is batched over outputs: one row per output member
    multi = prior_pull(SingleTaskGP(X, Y2))
    assert set(multi.i_model) == {0, 1}
    assert list(dict.fromkeys(multi.key)) == list(gpviz.model_expr(SingleTaskGP(X, Y2)).keys)


def test_eval_mode_model_with_input_transform_predicts_the_same_afterwards():
    """BoTorch swaps transformed/original train inputs on train()/eval(): the model must come back intact."""
    from botorch.models.transforms import Normalize

    X, Y = data(9, seed=9, d=2)
    model = SingleTaskGP(5 * X + 1, Y, input_transform=Normalize(d=2))
    model.eval()
    Xt = 5 * torch.rand(4, 2, generator=torch.Generator().manual_seed(1)) + 1
    with torch.no_grad():
        before = model.posterior(Xt).mean.clone()
    inputs = model.train_inputs[0].clone()
    prior_pull(model)
    assert not model.training
    assert torch.equal(model.train_inputs[0], inputs)
    with torch.no_grad():
        assert torch.allclose(model.posterior(Xt).mean, before, rtol=0, atol=1e-10)


# -- every fold of every repeat of a sweep ---------------------------------------------------------------------------

def scale_rbf(train_X, train_Y):
    batch = train_X.shape[:-2]
    return SingleTaskGP(train_X, train_Y, covar_module=ScaleKernel(
        RBFKernel(ard_num_dims=train_X.shape[-1], batch_shape=batch, lengthscale_prior=GammaPrior(3.0, 6.0)),
        batch_shape=batch, outputscale_prior=GammaPrior(2.0, 0.15)))


@pytest.fixture(scope="module")
def sweep():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(24, 2, generator=g)
    Y = torch.sin(6 * X[:, :1]) + 0.05 * torch.randn(24, 1, generator=g)
    return gpviz.cv_sweep(scale_rbf, X, Y, sizes=[4, 7], repeats=3, progress=False,
                          fit_kwargs={"optimizer_kwargs": {"options": {"maxiter": 20}}})


def test_sweep_verdicts_cover_every_fold_of_every_repeat_and_equal_a_per_member_loop(sweep):
    pull = sweep_prior_pull(sweep)
    keys = list(sweep.expression().keys)
    # the repeats of a size were judged as one stacked model (the vectorized path under test)
    job = PullJob(sweep.make_model, sweep.X, sweep.Y, sweep.subsets, sweep.parameters, tuple(keys), None)
    assert _stacked_model(job, 1, [0, 1, 2]) is not None
    assert len(pull) == sum(len(keys) * size * sweep.repeats for size in sweep.sizes)
    assert set(pull.i_repeat) == set(range(sweep.repeats))
    loop_rows = []
    for i_config, size in enumerate(sweep.sizes):
        for r in range(sweep.repeats):
            folds = gen_folds(sweep, i_config, r)
            cell = sweep.parameters[(sweep.parameters.i_config == i_config) & (sweep.parameters.i_repeat == r)]
            for i in range(size):  # one model per fold, not batched
                model = scale_rbf(folds.train_X[i], folds.train_Y[i])
                row = cell[cell.i_model == i]
                load_member_values(model, {k: row[k].to_numpy() for k in keys})
                one = prior_pull(model).assign(i_config=i_config, size=size, i_repeat=r, i_model=i)
                loop_rows.append(one)
    loop = pd.concat(loop_rows, ignore_index=True)
    index = ["i_config", "i_repeat", "key", "i_model"]
    mine, ref = pull.set_index(index).sort_index(), loop.set_index(index).sort_index()
    assert mine.index.equals(ref.index)
    assert list(mine.verdict) == list(ref.verdict)
    for col in ("value", "d_log_prior", "d_log_lik", "curv_prior", "curv_lik", "prior_share", "distance_sd"):
        a, b = mine[col].to_numpy(float), ref[col].to_numpy(float)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.nanmax(np.abs(b)), equal_nan=True, err_msg=col)


def test_sweep_prior_pull_gives_the_same_rows_in_workers_and_on_a_dask_cluster(sweep, dask_client):
    here = sweep_prior_pull(sweep)
    pd.testing.assert_frame_equal(sweep_prior_pull(sweep, workers=2), here)
    pd.testing.assert_frame_equal(sweep_prior_pull(sweep, executor=dask_client), here)
    # one repeat per size: each cell is judged on its own, in workers too
    pd.testing.assert_frame_equal(sweep_prior_pull(sweep, repeats=1, workers=2), sweep_prior_pull(sweep, repeats=1))


def test_sweep_prior_pull_parallel_arguments_are_checked(sweep):
    with pytest.raises(InputError, match="workers must be"):
        sweep_prior_pull(sweep, workers=0)
    with pytest.raises(InputError, match="not both"):
        sweep_prior_pull(sweep, workers=2, executor=object())
    with pytest.raises(InputError, match="executor must be"):
        sweep_prior_pull(sweep, executor=object())


def gen_folds(sweep, i_config, i_repeat):
    idx = torch.as_tensor(sweep.subsets[(i_config, i_repeat)])
    return gen_loo_cv_folds(sweep.X[idx], sweep.Y[idx])


def test_sweep_prior_pull_arguments(sweep):
    assert set(sweep_prior_pull(sweep, repeats=1).i_repeat) == {0}
    assert sweep_prior_pull(sweep, repeats=0).empty
    with pytest.raises(InputError, match="repeats must be None"):
        sweep_prior_pull(sweep, repeats=-1)
    with pytest.raises(InputError, match="expects a gpviz Sweep"):
        sweep_prior_pull("not a sweep")


def test_label_column_names_the_features_and_stays_unique_over_a_model_list():
    X, Y = data(8, seed=8, d=2)
    pull = prior_pull(SingleTaskGP(X, Y), feature_names=["log_lr", "dropout"])
    assert list(pull.columns[:2]) == ["key", "label"]
    assert set(pull.loc[pull.key.str.contains("lengthscale"), "label"]) == {"lengthscale[log_lr]",
                                                                            "lengthscale[dropout]"}
    from botorch.models import ModelListGP
    from gpytorch.mlls import SumMarginalLogLikelihood

    listed = ModelListGP(SingleTaskGP(X, Y), SingleTaskGP(X, -Y ** 2))
    both = prior_pull(SumMarginalLogLikelihood(listed.likelihood, listed), feature_names=["log_lr", "dropout"])
    per_key = both.drop_duplicates("key")
    assert per_key["label"].is_unique and not per_key["label"].str.contains(r"lengthscale\[\d").any()


def test_sweep_label_column_follows_the_sweeps_feature_names(sweep):
    named = copy.copy(sweep)  # the module's sweep stays unnamed
    named.feature_names = ["log_lr", "dropout"]
    pull = sweep_prior_pull(named, repeats=1)
    labels = set(pull.loc[pull.key.str.contains("lengthscale"), "label"])
    assert labels == {"lengthscale[log_lr]", "lengthscale[dropout]"}
    assert set(sweep_prior_pull(sweep, repeats=1)["label"]) >= {"lengthscale[x0]", "lengthscale[x1]"}


def _noisy_factory(train_X, train_Y):
    """Observation noise drawn at build time (a buffer, not a parameter): the cell's seed decides it."""
    return SingleTaskGP(train_X, train_Y, train_Yvar=1e-3 + 0.05 * torch.rand_like(train_Y))


def test_a_cell_judged_alone_is_the_model_sweep_models_rebuilds():
    """sweep_prior_pull rebuilds a cell as Sweep.models does (factory under the cell's seed, then its state).

    The factory draws its noise when it builds: rebuilt without the cell's seed (only the
    fitted parameter values loaded), the judged model had another noise than the fitted one.
    """
    X, Y = data(12, seed=3)
    sweep = gpviz.cv_sweep(_noisy_factory, X, Y, sizes=[6], repeats=2, seed=0, progress=False,
                           fit_kwargs={"optimizer_kwargs": {"options": {"maxiter": 30}}})
    pulled = sweep_prior_pull(sweep)
    for r in range(2):
        model = sweep.models(6, r)
        want = prior_pull(model).sort_values(["key", "i_model"]).reset_index(drop=True)
        got = pulled[pulled["i_repeat"] == r].sort_values(["key", "i_model"]).reset_index(drop=True)
        for col in ("value", "d_log_lik", "curv_lik", "curv_prior"):
            np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), rtol=1e-9, atol=1e-12,
                                       err_msg=f"repeat {r}, {col}")
