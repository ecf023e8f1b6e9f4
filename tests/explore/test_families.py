"""Which BoTorch model classes the explorer works on (metrics equal BoTorch's and GPyTorch's) and which it refuses.

A refusal is gpviz's own ``UnsupportedError`` naming the class and what the explorer supports, raised by
``gpviz.explore`` before any BoTorch or GPyTorch call could fail inside it: never a foreign exception.
"""

from __future__ import annotations

import copy

import pytest
import torch
import botorch.models as bm
from gpytorch.likelihoods import GaussianLikelihood

from botorch.models.contextual_multioutput import LCEMGP

import gpviz
from gpviz.errors import UnsupportedError
from gpviz.explorer.state import ExploreState
from tests.explore.test_state import _close, _references
from tests.models.test_zoo import _build, _latent_kronecker, _with_task, _data

WORKS = ["SingleTaskGP", "SingleTaskMultiFidelityGP", "MixedSingleTaskGP", "AdditiveMapSaasSingleTaskGP",
         "EnsembleMapSaasSingleTaskGP"]
REFUSED = {"MultiTaskGP": "task indices", "KroneckerMultiTaskGP": "Kronecker", "HigherOrderGP": "tensor per input",
           "PairwiseGP": "not a GPyTorch ExactGP", "PairwiseLaplaceMarginalLogLikelihood": "not a GPyTorch ExactGP",
           "ModelListGP": "not one GP model", "ModelList": "not one GP model",
           "SingleTaskVariationalGP": "not an exact GP", "ApproximateGPyTorchModel": "not an exact GP",
           "LatentKroneckerGP": "not an exact GP"}


@pytest.mark.parametrize("name", WORKS)
def test_each_supported_class_scores_as_botorch_and_gpytorch_do(name):
    model = _build(name)[0]
    reference = copy.deepcopy(model)  # the hand copy, scored without gpviz
    w = ExploreState(model)
    member = 0 if w.members > 1 else None
    ref = _references(reference, member)
    m = w.fitted_metrics
    _close(m.log_likelihood, ref["ll"])
    _close(m.complexity, ref["complexity"])
    _close(m.map_objective, ref["map"])
    _close(m.loo_mse, ref["mse"])
    _close(m.loo_nlpd, ref["nlpd"])
    assert set(m.log_prior) == set(ref["priors"])
    for k, v in ref["priors"].items():
        _close(m.log_prior[k], v)
    w.slices()  # and its slices are drawn


def _refused(name: str) -> object:
    return _latent_kronecker()[0] if name == "LatentKroneckerGP" else _build(name)[0]


@pytest.mark.parametrize("name", list(REFUSED))
def test_each_unsupported_class_is_refused_by_gpviz_explore_with_its_name(name):
    model = _refused(name)
    cls = type(model.model if name == "PairwiseLaplaceMarginalLogLikelihood" else model).__name__
    for call in (gpviz.explore, ExploreState):
        with pytest.raises(UnsupportedError) as info:
            call(model)
        text = str(info.value)
        assert f"does not support {cls} (" in text and REFUSED[name] in text
        assert "SingleTaskGP" in text and "MixedSingleTaskGP" in text  # what it supports


def test_multitask_gp_with_its_task_column_is_refused_not_crashed():
    """The reported crash: BoTorch's "Task indices must be provided" from inside the explorer."""
    X, Y = _data(n=12)
    model = bm.MultiTaskGP(_with_task(X), Y, task_feature=-1)
    with pytest.raises(UnsupportedError, match=r"does not support MultiTaskGP \(botorch\.models\.multitask"):
        gpviz.explore(model)
    # its subclass LCEMGP shares the refusal through BoTorch's multitask base class
    with pytest.raises(UnsupportedError, match="does not support LCEMGP"):
        gpviz.explore(LCEMGP(_with_task(X, tasks=(0, 1, 2)), Y, task_feature=-1))


class _Broken(GaussianLikelihood):
    """A likelihood that fails in GPyTorch's own call: the explorer's checks cannot see it coming."""

    def marginal(self, function_dist, *params, **kwargs):
        raise ValueError("no marginal here")


def test_a_foreign_error_while_scoring_becomes_a_typed_refusal_naming_the_class_and_the_cause():
    X, Y = _data()
    model = bm.SingleTaskGP(X, Y, likelihood=_Broken())
    with pytest.raises(UnsupportedError, match=r"SingleTaskGP .*ValueError: no marginal here") as info:
        gpviz.explore(model)
    assert isinstance(info.value.__cause__, ValueError)
