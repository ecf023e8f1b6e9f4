"""The explorer's metrics against GPyTorch's and BoTorch's own calls on a copy whose values are set by hand."""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from botorch.cross_validation import efficient_loo_cv
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.transforms import Normalize
from botorch.optim.closures import get_loss_closure
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.operators import DiagLinearOperator

import gpviz
from gpviz.errors import InputError, KeyMismatchError, UnsupportedError
from gpviz.explorer.state import ExploreState

REL = 1e-6


def _data(batch=()):
    g = torch.Generator().manual_seed(3)
    X = torch.rand(*batch, 16, 3, generator=g, dtype=torch.float64)
    Y = torch.sin(3 * X).sum(-1, keepdim=True) + 0.05 * torch.randn(*batch, 16, 1, generator=g, dtype=torch.float64)
    return X, Y


def _default():
    return SingleTaskGP(*_data())


def _matern():
    X, Y = _data()
    return SingleTaskGP(X, Y, covar_module=ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=3)))


def _mixed():
    X, Y = _data()
    X = torch.cat([X[:, :2], (X[:, 2:] * 3).floor()], dim=-1)  # a 3-level category in the last column
    return MixedSingleTaskGP(X, Y, cat_dims=[2])


def _batched():
    return SingleTaskGP(*_data(batch=(3,)))


class InputNoise(GaussianLikelihood):
    """A user's heteroskedastic likelihood: the noise grows along the first input it is handed.

    Without inputs (BoTorch's ``efficient_loo_cv`` passes none) it is the homoskedastic noise.
    """

    def marginal(self, function_dist, *params, **kwargs):
        if not params:
            return super().marginal(function_dist, **kwargs)
        x = params[0] if torch.is_tensor(params[0]) else params[0][0]  # GPyTorch's prediction hands one list
        noise = self.noise * (1 + x[..., 0])
        return MultivariateNormal(function_dist.mean, function_dist.lazy_covariance_matrix + DiagLinearOperator(noise))


def _normalized():
    """Inputs in [5, 8] normalized by the model: the likelihood must be handed them normalized, as BoTorch does."""
    X, Y = _data()
    return SingleTaskGP(5 + 3 * X, Y, likelihood=InputNoise(), input_transform=Normalize(3))


def _normalized_default():
    X, Y = _data()
    return SingleTaskGP(5 + 3 * X, Y, input_transform=Normalize(3))


MODELS = {"default": _default, "matern": _matern, "mixed": _mixed, "batched": _batched,
          "normalized": _normalized, "normalized_default": _normalized_default}
_KEY = re.compile(r"^(?P<path>.*)\.(?P<name>\w+)(?:\[(?P<i>\d+)\])?$")


def _set_by_hand(model, key: str, value: float, member: int | None) -> None:
    """GPyTorch's own setter (``module.initialize``) on the full value tensor with one element changed."""
    m = _KEY.match(key)
    module = model.get_submodule(m.group("path"))
    full = getattr(module, m.group("name")).detach().clone()
    block = full[member] if member is not None else full
    block.view(-1)[int(m.group("i") or 0)] = value
    module.initialize(**{m.group("name"): full})


def _new_value(key: str, value: float) -> float:
    return value + 0.3 if key.endswith("constant") else value * 1.7


def _references(model, member: int | None):
    """Log likelihood, per-prior log densities, MAP objective and LOO MSE/NLPD by GPyTorch and BoTorch.

    The MAP objective is BoTorch's own loss closure (what ``fit_gpytorch_mll`` minimizes: minus the MLL, divided by
    ``n``, per batch member), so the likelihood is given the inputs as BoTorch gives them (input-transformed).
    """
    pick = (lambda t: t[member]) if member is not None else (lambda t: t)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with torch.no_grad():
        mll.train()
        y = model.train_targets
        n = y.shape[-1]
        map_objective = -float(pick(get_loss_closure(mll)())) * n
        X = model.train_inputs
        out = model.likelihood(model(*X), *(model.transform_inputs(X=t) for t in X))
        ll = float(pick(out.log_prob(y)))
        complexity = -0.5 * float(torch.logdet(pick(out.covariance_matrix)))
        priors = {name: float(pick(prior.log_prob(closure(module))).sum())
                  for name, module, prior, closure, _ in model.named_priors()}
        model.eval()
        res = efficient_loo_cv(model, untransform=False)
        mean, var, obs = (pick(t).reshape(-1) for t in (res.posterior.mean, res.posterior.variance, res.observed_Y))
        mse = float(((mean - obs) ** 2).mean())
        nlpd = float(-torch.distributions.Normal(mean, var.sqrt()).log_prob(obs).mean())
    return dict(ll=ll, complexity=complexity, priors=priors, map=map_objective, mse=mse, nlpd=nlpd)


def _close(a, b):
    assert a == pytest.approx(b, rel=REL, abs=1e-9)


@pytest.mark.parametrize("name", list(MODELS))
def test_metrics_equal_gpytorch_and_botorch_at_values_set_by_hand(name):
    model = MODELS[name]()
    member = 1 if name == "batched" else None
    before = {k: v.clone() for k, v in model.state_dict().items()}
    w = ExploreState(model)
    if member is not None:  # a batched model: the member is switched after the first one was explored
        w.set("likelihood.noise_covar.noise", 0.2)
        w.select(member)
    ref = copy.deepcopy(model)
    for key, value in w.values.items():
        new = _new_value(key, value)
        w.set(key, new)
        _set_by_hand(ref, key, new, member)
        assert w.values[key] == pytest.approx(new, rel=1e-12)
    got, want = w.metrics(), _references(ref, member)
    assert got.log_likelihood != pytest.approx(w.fitted_metrics.log_likelihood, rel=1e-3)  # the values did move
    _close(got.log_likelihood, want["ll"])
    _close(got.complexity, want["complexity"])
    _close(got.data_fit + got.complexity + got.constant, got.log_likelihood)
    assert set(got.log_prior) == set(want["priors"]) and got.log_prior
    for k in got.log_prior:
        _close(got.log_prior[k], want["priors"][k])
    _close(got.map_objective, got.log_likelihood + sum(want["priors"].values()))
    _close(got.map_objective, want["map"])
    _close(got.loo_mse, want["mse"])
    _close(got.loo_nlpd, want["nlpd"])
    # the fitted (here: as built) metrics are the reference's before any value moved
    fitted = _references(copy.deepcopy(model), member)
    _close(w.fitted_metrics.log_likelihood, fitted["ll"])
    _close(w.fitted_metrics.loo_mse, fitted["mse"])
    # the user's model is never changed
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_reset_returns_the_fitted_values_and_metrics():
    model = _matern()
    w = ExploreState(model)
    fitted = dict(w.values)
    for key, value in fitted.items():
        w.set(key, _new_value(key, value))
    assert w.metrics().log_likelihood != pytest.approx(w.fitted_metrics.log_likelihood)
    w.reset()
    assert w.values == pytest.approx(fitted, rel=1e-12)
    assert w.metrics() == w.fitted_metrics


def test_an_mll_is_explored_through_its_model_and_left_unchanged():
    model = _default()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    w = ExploreState(mll)
    w.set("covar_module.lengthscale[0]", 2.0)
    assert float(model.covar_module.lengthscale.detach()[0, 0]) != 2.0
    assert w.values["covar_module.lengthscale[0]"] == pytest.approx(2.0)


def test_other_members_keep_their_values():
    model = _batched()
    w = ExploreState(model, member=2)
    w.set("likelihood.noise_covar.noise", 0.5)
    noise = w.model.likelihood.noise.detach().reshape(-1)
    assert float(noise[2]) == pytest.approx(0.5) and float(noise[0]) == pytest.approx(float(
        model.likelihood.noise.reshape(-1)[0]))
    w.select(0)
    assert w.values["likelihood.noise_covar.noise"] == pytest.approx(float(model.likelihood.noise.reshape(-1)[0]))


def test_bad_keys_and_values_are_refused_with_the_reason():
    w = ExploreState(_default())
    with pytest.raises(KeyMismatchError, match="unknown parameter key 'covar_module.outputscale'"):
        w.set("covar_module.outputscale", 1.0)
    with pytest.raises(InputError, match=r"outside its constraint's bounds"):
        w.set("covar_module.lengthscale[0]", -1.0)
    with pytest.raises(InputError, match="finite"):
        w.set("likelihood.noise_covar.noise", math.nan)
    with pytest.raises(InputError, match="expected a number"):
        w.set("likelihood.noise_covar.noise", "big")
    with pytest.raises(InputError, match="member must be"):
        w.select(1)
    with pytest.raises(UnsupportedError, match="one exact GP"):
        ExploreState(gpviz.model_expr)


def test_keys_are_the_expression_keys():
    model = _mixed()
    assert tuple(ExploreState(model).values) == gpviz.model_expr(model).keys


def test_slices_are_the_posterior_along_each_input_through_the_best_point():
    model = _default()
    w = ExploreState(model, feature_names=["a", "b", "c"])
    s = w.slices()
    X, y = model.train_inputs[0], model.train_targets
    best = X[int(torch.argmax(y))]
    assert s.point == pytest.approx(best.tolist())
    assert list(s.curves["input"].unique()) == ["a", "b", "c"]
    # one grid row of input b, rebuilt by hand and predicted by BoTorch's posterior (model units: no outcome transform)
    row = s.curves[s.curves["input"] == "b"].iloc[7]
    x = best.clone()
    x[1] = row["x"]
    model.eval()
    post = model.posterior(x[None], observation_noise=False)
    mean, sd = float(post.mean), float(post.variance.sqrt())
    # the model standardizes outcomes: posterior() untransforms, the slices stay in model units
    tf = model.outcome_transform
    mean_m, sd_m = (mean - float(tf.means)) / float(tf.stdvs), sd / float(tf.stdvs)
    _close(row["mean"], mean_m)
    _close(row["upper"] - row["lower"], 4 * sd_m)
    assert (s.points["distance"] <= 0.2).all() and len(s.points) >= 3  # the best point lies on every slice
    with pytest.raises(InputError, match="point has 2 values"):
        ExploreState(model, point=[0.1, 0.2]).slices()


def test_a_category_is_sliced_at_its_levels_and_a_continuous_input_on_a_grid():
    w = ExploreState(_mixed())
    curves = w.slices().curves
    assert sorted(curves[curves["input"] == "x2"]["x"]) == [0.0, 1.0, 2.0]
    assert (curves["input"] == "x0").sum() == 41


@pytest.mark.parametrize("name", list(MODELS))
def test_slices_equal_gpytorch_prediction_at_values_set_by_hand(name):
    """Every slice row against GPyTorch's own exact prediction (``model(x)`` in eval mode: latent, model units)."""
    model = MODELS[name]()
    member = 2 if name == "batched" else None
    w = ExploreState(model, member=member or 0)
    ref = copy.deepcopy(model)
    for key, value in w.values.items():
        new = _new_value(key, value)
        w.set(key, new)
        _set_by_hand(ref, key, new, member)
    s = w.slices()
    grid = torch.tensor(_grid(s, w.feature_names), dtype=torch.float64)
    ref.eval()
    lead = tuple(ref.train_inputs[0].shape[:-2])
    with torch.no_grad():
        post = ref(grid.expand(lead + tuple(grid.shape)))
    mean, sd = post.mean, post.variance.sqrt()
    if member is not None:
        mean, sd = mean[member], sd[member]
    assert s.curves["mean"].to_numpy() == pytest.approx(mean.numpy(), rel=1e-6, abs=1e-9)
    assert (s.curves["upper"] - s.curves["lower"]).to_numpy() == pytest.approx(4 * sd.numpy(), rel=1e-6, abs=1e-9)


def _grid(s, names) -> list[list[float]]:
    """The slice rows rebuilt from the slice point: one input replaced by each grid value."""
    rows = []
    for name, x in zip(s.curves["input"], s.curves["x"]):
        row = list(s.point)
        row[list(names).index(name)] = x
        rows.append(row)
    return rows
