"""gpviz.hooks: every internal verified; a moved one warns once, names itself, and the fit stays exactly the same."""

from __future__ import annotations

import copy
import warnings

import botorch
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz import hooks
from gpviz.errors import TracerWarning


@pytest.fixture(autouse=True)
def _fresh_hooks(monkeypatch):
    """Each test sees the hook check run anew (and leaves MISSING as it found it)."""
    monkeypatch.setattr(hooks, "MISSING", set())
    monkeypatch.setattr(hooks, "_CHECKED", None)
    yield
    hooks._CHECKED = None


def _data(n=6, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(3 * X).sum(-1, keepdim=True)
    return X, Y


def _models():
    """A single model (joint scipy path) and a batch of leave-one-out folds (batched path)."""
    X, Y = _data()
    folds = gen_loo_cv_folds(X, Y)
    return {"single": SingleTaskGP(X, Y), "batched": SingleTaskGP(folds.train_X, folds.train_Y)}


def _fit(model, traced: bool, **fit_kwargs):
    model = copy.deepcopy(model)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    torch.manual_seed(0)
    if traced:
        with gpviz.trace_fit(mll) as tracer:
            fit_gpytorch_mll(mll, **fit_kwargs)
    else:
        tracer = None
        fit_gpytorch_mll(mll, **fit_kwargs)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, tracer


def test_every_hook_point_is_found_in_the_installed_botorch():
    status = hooks.check_hooks()
    assert set(status) == {p.key for p in hooks.HOOKS}
    assert all(status.values()), {k: v for k, v in status.items() if not v}


@pytest.mark.parametrize("key", [p.key for p in hooks.HOOKS])
def test_a_moved_hook_warns_once_and_the_fit_is_unchanged(key):
    hooks.MISSING.add(key)
    point = next(p for p in hooks.HOOKS if p.key == key)
    for name, model in _models().items():
        expected, _ = _fit(model, traced=False)
        hooks._CHECKED = None  # a new process: the check runs (and warns) again
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got, tracer = _fit(model, traced=True)
        moved = [w for w in caught if issubclass(w.category, TracerWarning)]
        assert len(moved) == 1, [str(w.message) for w in moved]
        text = str(moved[0].message)
        assert f"{point.module}.{point.attr}" in text and point.lost in text
        assert f"botorch {botorch.__version__}" in text
        for k in expected:  # identical parameters: the fit ran untouched
            assert torch.equal(expected[k], got[k]), (name, k)
        # what is still recorded: losses and values at every evaluation the fit made
        assert tracer.error is None
        frames = tracer.frames
        assert len(frames) > 0 and frames["loss"].notna().any(), (name, key)


def test_the_warning_comes_once_per_process_not_per_fit():
    hooks.MISSING.add("torch_minimize")
    model = _models()["single"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(model, traced=True)
        _fit(model, traced=True)
    assert sum(issubclass(w.category, TracerWarning) for w in caught) == 1


def test_patches_are_restored_exactly_whatever_order_tracers_exit():
    import botorch.optim.batched_lbfgs_b as batched
    import botorch.optim.core as core
    import botorch.optim.fit as fit

    originals = (core.minimize_with_timeout, batched.fmin_l_bfgs_b_batched, fit.torch_minimize)
    X, Y = _data()
    m1, m2 = SingleTaskGP(X, Y), SingleTaskGP(X, Y)
    t1 = gpviz.trace_fit(ExactMarginalLogLikelihood(m1.likelihood, m1))
    t2 = gpviz.trace_fit(ExactMarginalLogLikelihood(m2.likelihood, m2))
    t1.__enter__()
    t2.__enter__()
    assert core.minimize_with_timeout is not originals[0]
    t1.__exit__(None, None, None)  # the outer one first
    assert core.minimize_with_timeout is not originals[0]  # t2 still traces
    t2.__exit__(None, None, None)
    assert (core.minimize_with_timeout, batched.fmin_l_bfgs_b_batched, fit.torch_minimize) == originals
    assert hooks.active_listeners() == ()


def test_fit_context_outside_a_fit_is_empty():
    ctx = hooks.fit_context()
    assert ctx.mll is None and ctx.attempt is None and ctx.member is None
