"""with_priors factories: BoTorch accepts them as a model class, and they pickle for sweep workers."""

from __future__ import annotations

import pickle

import cloudpickle
import pytest
import torch
from botorch.cross_validation import batch_cross_validation, gen_loo_cv_folds
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.priors.factories import PriorFactory
from gpviz.sweep.cache import factory_fingerprint


def default_model(train_X, train_Y):
    return SingleTaskGP(train_X, train_Y)


@pytest.mark.parametrize("make_model", [SingleTaskGP, default_model, lambda X, Y: SingleTaskGP(X, Y)],
                         ids=["class", "function", "lambda"])
def test_a_factory_runs_through_batch_cross_validation(make_model):
    factory = gpviz.with_priors(make_model, lengthscale=GammaPrior(3.0, 6.0))
    assert isinstance(factory, type) and isinstance(factory, PriorFactory)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(6, 2, generator=g)
    Y = X.sum(-1, keepdim=True)
    cv = batch_cross_validation(model_cls=factory, mll_cls=ExactMarginalLogLikelihood,
                                cv_folds=gen_loo_cv_folds(X, Y),
                                fit_args={"optimizer_kwargs": {"options": {"maxiter": 5}}})
    prior = cv.model.covar_module.lengthscale_prior
    assert isinstance(cv.model, SingleTaskGP) and isinstance(prior, GammaPrior)
    assert (float(prior.concentration), float(prior.rate)) == (3.0, 6.0)
    assert cv.posterior.mean.shape == (6, 1, 1)


def test_a_factory_pickles_and_keeps_its_priors_and_fingerprint():
    factory = gpviz.with_priors(default_model, lengthscale=GammaPrior(3.0, 6.0), noise=GammaPrior(1.1, 0.05))
    for back in (pickle.loads(pickle.dumps(factory)), cloudpickle.loads(cloudpickle.dumps(factory))):
        assert isinstance(back, PriorFactory) and back.make_model is default_model
        assert back.describe() == factory.describe() and back.__qualname__ == factory.__qualname__
        assert factory_fingerprint(back) == factory_fingerprint(factory)
        model = back(torch.rand(5, 2), torch.rand(5, 1))
        assert float(model.likelihood.noise_covar.noise_prior.rate) == pytest.approx(0.05)
    # a lambda travels with cloudpickle (as Dask sends it)
    lam = gpviz.with_priors(lambda X, Y: SingleTaskGP(X, Y), lengthscale=GammaPrior(3.0, 6.0))
    assert cloudpickle.loads(cloudpickle.dumps(lam)).describe() == lam.describe()
    # different priors, different fingerprints (the cache tells them apart)
    other = gpviz.with_priors(default_model, lengthscale=GammaPrior(3.0, 6.0), noise=GammaPrior(1.1, 0.06))
    assert factory_fingerprint(other) != factory_fingerprint(factory)
