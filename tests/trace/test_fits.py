"""trace_fits: every fit_gpytorch_mll call inside a block, whoever builds the MLL, with no extra evaluation."""

from __future__ import annotations

import warnings

import numpy as np
import torch

import gpviz
from gpviz import hooks
from gpviz.errors import TracerWarning


def test_trace_fits_adds_no_evaluations():
    """The same fit, traced by trace_fits or not, evaluates the MLL equally often and ends at the same values."""
    import copy

    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from gpytorch.mlls import ExactMarginalLogLikelihood

    from gpviz.sweep.cells import _count_evaluations

    g = torch.Generator().manual_seed(1)
    X = torch.rand(12, 3, generator=g)
    fresh = SingleTaskGP(X, torch.cos(5 * X).sum(-1, keepdim=True))
    runs = []
    for traced in (False, True):
        model = copy.deepcopy(fresh)
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        count = _count_evaluations(mll)
        torch.manual_seed(0)
        if traced:
            with gpviz.trace_fits() as fits:
                fit_gpytorch_mll(mll)
            assert len(fits) == 1 and fits[0].mll is mll
        else:
            fit_gpytorch_mll(mll)
        mll.__dict__.pop("forward", None)
        runs.append((count[0], gpviz.parameters(model)))
    assert runs[0][0] == runs[1][0] > 0
    np.testing.assert_array_equal(runs[0][1].to_numpy(), runs[1][1].to_numpy())


def test_trace_fits_sees_batch_cross_validation_and_leaves_botorch_as_found():
    import botorch.fit as bf
    from botorch.cross_validation import batch_cross_validation, gen_loo_cv_folds
    from botorch.models import SingleTaskGP
    from gpytorch.mlls import ExactMarginalLogLikelihood

    before = (bf._fit_fallback, bf._fit_fallback_approximate)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(8, 2, generator=g)
    Y = torch.sin(4 * X).sum(-1, keepdim=True)
    with gpviz.trace_fits() as outer:
        with gpviz.trace_fits() as inner:
            batch_cross_validation(SingleTaskGP, ExactMarginalLogLikelihood, gen_loo_cv_folds(X, Y))
    assert (bf._fit_fallback, bf._fit_fallback_approximate) == before
    assert len(inner) == 1 and list(outer) == list(inner)
    assert inner[0].n_members == 8 and len(inner[0].frames) > 8


def test_trace_fits_traces_a_model_list_one_sub_model_at_a_time():
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import ModelListGP, SingleTaskGP
    from gpytorch.mlls import SumMarginalLogLikelihood

    g = torch.Generator().manual_seed(2)
    X = torch.rand(8, 2, generator=g)
    models = ModelListGP(SingleTaskGP(X, X.sum(-1, keepdim=True)), SingleTaskGP(X, X.prod(-1, keepdim=True)))
    with gpviz.trace_fits() as fits:
        fit_gpytorch_mll(SumMarginalLogLikelihood(models.likelihood, models))
    assert [t.mll.model for t in fits] == list(models.models)
    for tracer, model in zip(fits, models.models):
        last = tracer.frames[tracer.frames["i_timestep"] == tracer.frames["i_timestep"].max()]
        keys = list(tracer.keys)
        np.testing.assert_array_equal(last[keys].to_numpy(), gpviz.parameters(model)[keys].to_numpy())


def test_trace_fits_without_botorchs_entry_points_fits_untraced(monkeypatch):
    """A BoTorch that moved _fit_fallback: one warning naming it, no tracer, the same fit."""
    import botorch.fit as bf
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from gpytorch.mlls import ExactMarginalLogLikelihood

    monkeypatch.setattr(hooks, "MISSING", {"fit_fallback_entry"})
    monkeypatch.setattr(hooks, "_CHECKED", None)
    X = torch.rand(6, 2, generator=torch.Generator().manual_seed(3))
    model = SingleTaskGP(X, X.sum(-1, keepdim=True))
    before = bf._fit_fallback
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with gpviz.trace_fits() as fits:
            assert bf._fit_fallback is before
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    assert list(fits) == []
    assert any(issubclass(w.category, TracerWarning) and "_fit_fallback" in str(w.message) for w in caught)
    hooks._CHECKED = None
