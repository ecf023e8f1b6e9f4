"""gpviz.with_priors(client, ...): the Ax client's own model specification with other priors, on a real Ax Client.

References computed without gpviz: the model Ax fitted (its class, transforms, kernel and priors, read off
``client``'s generation strategy), and BoTorch's own ``batch_cross_validation`` on the same trials.
"""

from __future__ import annotations

import logging
import pickle

import cloudpickle
import pytest
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.errors import InputError

from tests.ax_helpers import attach_trials, new_client, require_ax, run_trials

require_ax()

pytestmark = pytest.mark.slow

LOOSE = GammaPrior(1.125, 0.375)


@pytest.fixture(scope="module")
def client():
    """A real Client: 5 initialization trials, one trial from Ax's BoTorch node (its fit), 4 more by hand."""
    logging.getLogger("ax").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    c = new_client("priors")
    run_trials(c, 6)
    attach_trials(c, 4, seed=1)
    return c


def _ax_model(client):
    """The BoTorch model Ax fitted, read from Ax's own objects (not through gpviz)."""
    return client._generation_strategy.adapter.generator.surrogate.model


def _module_types(module) -> list[tuple[str, type]]:
    """Every submodule's name and class, priors and the outcome transform left out (Ax standardizes outside)."""
    return [(name, type(m)) for name, m in module.named_modules()
            if not name.endswith("_prior") and "outcome_transform" not in name]


def test_the_factory_builds_axs_model_with_the_new_prior(client):
    loose = gpviz.with_priors(client, lengthscale=LOOSE)
    ax_model = _ax_model(client)
    problem = loose.problem
    assert problem.metric == "loss" and problem.trial_indices == tuple(range(10))
    model = loose(problem.X, problem.Y)
    # Ax's model class, kernel, likelihood and input transform, module for module
    assert type(model) is type(ax_model)
    assert _module_types(model) == _module_types(ax_model)
    assert type(model.input_transform) is type(ax_model.input_transform)
    torch.testing.assert_close(model.input_transform.bounds, ax_model.input_transform.bounds)
    # the new prior is the one registered on the kernel; every other prior is Ax's
    priors = {name: prior for name, _, prior, _, _ in model.named_priors()}
    ax_priors = {name: prior for name, _, prior, _, _ in ax_model.named_priors()}
    assert set(priors) == set(ax_priors)
    ls = priors["covar_module.lengthscale_prior"]
    assert isinstance(ls, GammaPrior) and ls is not LOOSE
    assert float(ls.concentration) == 1.125 and float(ls.rate) == 0.375
    assert type(ax_priors["covar_module.lengthscale_prior"]).__name__ == "LogNormalPrior"
    for name, prior in ax_priors.items():
        if name != "covar_module.lengthscale_prior":
            assert type(priors[name]) is type(prior)
            for attr in ("loc", "scale"):
                torch.testing.assert_close(getattr(priors[name], attr), getattr(prior, attr))
    # the model's own log prior of its lengthscale is the new prior's density
    value = model.covar_module.lengthscale
    torch.testing.assert_close(ls.log_prob(value), torch.distributions.Gamma(1.125, 0.375).log_prob(value))
    assert "Ax surrogate of 'loss'" in repr(loose) and "GammaPrior(concentration=1.125" in repr(loose)


def test_botorch_batch_cross_validation_accepts_it_and_cv_sweep_agrees(client):
    from botorch.cross_validation import batch_cross_validation, gen_loo_cv_folds

    loose = gpviz.with_priors(client, lengthscale=LOOSE)
    problem = loose.problem
    cv = batch_cross_validation(model_cls=loose, mll_cls=ExactMarginalLogLikelihood,
                                cv_folds=gen_loo_cv_folds(problem.X[:9], problem.Y[:9]))
    assert isinstance(cv.model.covar_module.lengthscale_prior, GammaPrior)
    sweep = gpviz.cv_sweep(loose, sizes=[6, 9], order="trials", progress=False, folds="batched")
    assert (sweep.scores["status"] == "ok").all()
    assert sweep.trial_indices == problem.trial_indices
    pred = sweep.predictions[sweep.predictions["size"] == 9]
    torch.testing.assert_close(torch.tensor(pred["pred_mean"].to_numpy()), cv.posterior.mean.reshape(-1),
                               rtol=1e-4, atol=1e-5)
    # the same trials as the client's own sweep, other priors: other fitted lengthscales
    own = gpviz.cv_sweep(client, sizes=[6, 9], order="trials", progress=False, folds="batched")
    torch.testing.assert_close(torch.tensor(own.predictions["y_true"].to_numpy()),
                               torch.tensor(sweep.predictions["y_true"].to_numpy()))
    key = "covar_module.lengthscale[0]"
    assert not torch.allclose(torch.tensor(own.parameters[key].to_numpy()),
                              torch.tensor(sweep.parameters[key].to_numpy()))
    # compare() takes both sweeps and writes out each one's priors
    html = gpviz.compare({"Ax's priors": own, "loose": sweep}, pull_repeats=0).html()
    assert "GammaPrior" in html and "LogNormalPrior" in html
    # the factory keeps the client's units: in original units lr's lengthscale is in decades, on both sweeps,
    # the cell model's own lengthscale times lr's log10 range (Ax's search space: 1e-4 .. 1e-1, 3 decades)
    assert sweep.data_units is not None and sweep.data_units == own.data_units
    page = gpviz.compare({"Ax's priors": own, "loose": sweep}, pull_repeats=0, units="original").html()
    assert "lengthscale in decades of lr" in page  # the grid's section heading, shared by both columns
    from gpviz.view.adapters import sweep_in_units, sweep_info

    expr = sweep.expression()
    converted = sweep_in_units(sweep, expr, sweep_info(sweep, expr), "original")[0]
    model = sweep.models(9, 0)  # batched: one member per fold
    ls = model.covar_module.lengthscale.detach()[..., 0].reshape(-1).numpy()
    got = converted[converted["size"] == 9].sort_values("i_model")[key].to_numpy()
    torch.testing.assert_close(torch.tensor(got), torch.tensor(ls * 3.0), rtol=1e-9, atol=0)


def test_it_pickles_for_workers_and_is_checked(client):
    loose = gpviz.with_priors(client, lengthscale=LOOSE)
    problem = loose.problem
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
        again = loads(dumps(loose))
        assert again.__qualname__ == loose.__qualname__
        torch.testing.assert_close(again.problem.X, problem.X)
        assert isinstance(again(problem.X, problem.Y).covar_module.lengthscale_prior, GammaPrior)
    with pytest.raises(InputError, match="'nope'"):
        gpviz.with_priors(client, lengthscale=LOOSE, metric="nope")
    with pytest.raises(InputError, match="metric='loss'"):
        gpviz.with_priors(lambda X, Y: None, lengthscale=LOOSE, metric="loss")
    with pytest.raises(InputError, match="metric 'loss'"):
        gpviz.cv_sweep(loose, sizes=[6], order="trials", metric="other", progress=False)
    with pytest.raises(gpviz.GpvizError, match="outputscale"):  # Ax's default kernel has no ScaleKernel
        gpviz.with_priors(client, outputscale=GammaPrior(2.0, 0.15))
    fresh = new_client("no-model")
    with pytest.raises(InputError, match="no generation strategy|no fitted BoTorch model"):
        gpviz.with_priors(fresh, lengthscale=LOOSE)
