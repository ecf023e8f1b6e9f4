"""Fit tracer: every BoTorch 0.18 fit path traced with a real fit_gpytorch_mll, at no cost to the fit."""

from __future__ import annotations

import gc
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.cross_validation import batch_cross_validation, gen_loo_cv_folds
from botorch.exceptions.warnings import OptimizationWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, MultiTaskGP, SingleTaskGP
from botorch.optim.closures import get_loss_closure_with_grads
from botorch.optim.fit import fit_gpytorch_mll_scipy, fit_gpytorch_mll_torch
from botorch.optim.utils import get_parameters
from gpytorch.mlls import ExactMarginalLogLikelihood, SumMarginalLogLikelihood
from linear_operator.utils.errors import NotPSDError

import botorch.optim.batched_lbfgs_b as batched_lbfgs_b
import botorch.optim.core as optim_core
import botorch.optim.fit as optim_fit
import gpviz
import gpytorch.kernels as gk
from gpviz.errors import OpaqueKernelWarning
from gpviz.walk import walker as walk_module
from gpviz.errors import TracerWarning
from gpviz.trace.store import EventStore, dense_frames
import gpviz.trace.live as live_module
from gpviz.trace.tracer import FitTracer, trace_fit
from gpviz.values.columns import TRACE_COLUMNS as META_COLUMNS
from tests.devices import DEVICES
from tests.extras import need

N, D = 8, 2
MAXITER = {"options": {"maxiter": 25}}


def data(n=N, d=D, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g)
    Y = torch.sin(6 * X[:, :1]) + 0.5 * X[:, 1:2] + 0.05 * torch.randn(n, 1, generator=g)
    return X, Y


def make_mll(kind: str):
    torch.manual_seed(1)
    X, Y = data()
    if kind == "single":
        m = SingleTaskGP(X, Y)
    elif kind == "batched":
        folds = gen_loo_cv_folds(X, Y)
        m = SingleTaskGP(folds.train_X, folds.train_Y)
    elif kind == "multitask":
        Xt = torch.cat([X, (torch.arange(N) % 2).unsqueeze(-1).to(X)], -1)
        m = MultiTaskGP(Xt, Y, task_feature=-1)
    elif kind == "list":
        m = ModelListGP(SingleTaskGP(X, Y), SingleTaskGP(X, Y ** 2))
        return SumMarginalLogLikelihood(m.likelihood, m)
    else:
        raise ValueError(kind)
    return ExactMarginalLogLikelihood(m.likelihood, m)


def count_evaluations(mll) -> list[int]:
    """Counts closure evaluations at the GP model(s), independently of the tracer (which wraps the MLL)."""
    models = list(mll.model.models) if hasattr(mll.model, "models") else [mll.model]
    counts = [0] * len(models)
    for i, m in enumerate(models):
        orig = m.forward

        def fw(*a, _i=i, _orig=orig, **k):
            counts[_i] += 1
            return _orig(*a, **k)

        m.__dict__["forward"] = fw
    return counts


def state(mll) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in mll.state_dict().items() if v.dtype.is_floating_point}


def max_diff(a, b) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a) if a else 0.0


class StepSpy:
    """Records the optimizer's own iteration counts: results of every optimizer run."""

    def __init__(self, monkeypatch):
        self.joint: list[int] = []       # result.step of each joint-path run
        self.members: list[list[int]] = []  # per-member nit of each batched run
        orig_fmin = batched_lbfgs_b.fmin_l_bfgs_b_batched

        def fmin(*a, **k):
            xs, fs, results = orig_fmin(*a, **k)
            self.members.append([int(r["nit"]) for r in results])
            return xs, fs, results

        monkeypatch.setattr(batched_lbfgs_b, "fmin_l_bfgs_b_batched", fmin)

    def optimizer(self, base=fit_gpytorch_mll_scipy):
        def opt(mll, **kw):
            res = base(mll, **kw)
            self.joint.append(int(res.step))
            return res
        return opt


def fit_both(kind: str, fit_kwargs: dict, spy_monkeypatch=None):
    """Fits twice from the same start, untraced then traced (context form)."""
    mll0 = make_mll(kind)
    c0 = count_evaluations(mll0)
    fit_gpytorch_mll(mll0, **fit_kwargs)
    mll1 = make_mll(kind)
    c1 = count_evaluations(mll1)
    with trace_fit(mll1) as tracer:
        fit_gpytorch_mll(mll1, **fit_kwargs)
    return mll0, c0, mll1, c1, tracer


def check_frames_layout(tracer):
    fr = tracer.frames
    assert list(fr.columns[: len(META_COLUMNS)]) == list(META_COLUMNS)
    assert list(fr.columns[len(META_COLUMNS):]) == list(tracer.keys)
    assert fr["active"].dtype == bool
    ts = fr["i_timestep"].to_numpy()
    assert (np.diff(ts) >= 0).all()
    # every timestep holds every member, in member order
    T = fr["i_timestep"].nunique()
    assert len(fr) == T * tracer.n_members
    assert (fr["i_model"].to_numpy() == np.tile(np.arange(tracer.n_members), T)).all()
    return fr


# ------------------------------------------------------------------------------------ paths

def test_single_model_default_path(monkeypatch):
    spy = StepSpy(monkeypatch)
    kw = {"optimizer": spy.optimizer()}
    mll0, c0, mll1, c1, tracer = fit_both("single", kw)
    assert max_diff(state(mll0), state(mll1)) <= 1e-12
    assert c0 == c1 and c1[0] > 0
    fr = check_frames_layout(tracer)
    assert spy.joint[0] == spy.joint[1]
    assert len(fr) == spy.joint[1] and fr["active"].all()
    assert (fr["step"].to_numpy() == np.arange(1, len(fr) + 1)).all()
    assert (fr["i_attempt"] == 0).all()
    # the last frame holds the fitted parameters (read independently with gpviz.parameters)
    final = gpviz.parameters(mll1.model)
    for k in tracer.keys:
        assert fr[k].iloc[-1] == pytest.approx(final[k].iloc[0], rel=1e-12, abs=1e-12)
    assert fr["loss"].notna().all() and (np.diff(fr["elapsed"].to_numpy()) >= 0).all()
    assert tracer.error is None


def test_batched_default_path_per_member_steps(monkeypatch):
    spy = StepSpy(monkeypatch)
    mll0, c0, mll1, c1, tracer = fit_both("batched", {})
    assert max_diff(state(mll0), state(mll1)) <= 1e-12
    assert c0 == c1
    assert len(spy.members) == 2 and spy.members[0] == spy.members[1]
    nit = spy.members[1]
    fr = check_frames_layout(tracer)
    assert tracer.n_members == N
    active = fr[fr["active"]].groupby("i_model").size().reindex(range(N), fill_value=0).to_list()
    assert active == nit  # one frame per member per iteration of its own L-BFGS-B
    assert fr["i_timestep"].nunique() == max(nit)
    # a converged member keeps its final values, inactive, until the batch ends
    last = fr[fr["i_timestep"] == fr["i_timestep"].max()]
    final = gpviz.parameters(mll1.model)
    for k in tracer.keys:
        np.testing.assert_allclose(last[k].to_numpy(), final[k].to_numpy(), rtol=1e-12, atol=1e-12)
    quick = int(np.argmin(nit))
    rows = fr[fr["i_model"] == quick]
    assert (rows["active"].to_numpy() == (rows["step"].to_numpy() <= nit[quick])).all()


def test_batched_default_path_callback_form_matches_context_form(monkeypatch):
    mll_a = make_mll("batched")
    with trace_fit(mll_a) as ctx_tracer:
        fit_gpytorch_mll(mll_a)
    mll_b = make_mll("batched")
    tracer = FitTracer(mll_b)
    fit_gpytorch_mll(mll_b, optimizer_kwargs={"callback": tracer.callback})
    assert max_diff(state(mll_a), state(mll_b)) <= 1e-12
    a, b = ctx_tracer.frames, tracer.frames
    assert a.shape == b.shape
    for c in ["i_timestep", "i_attempt", "step", "i_model", "active", *tracer.keys]:
        np.testing.assert_array_equal(a[c].to_numpy(), b[c].to_numpy())
    np.testing.assert_allclose(a["loss"].to_numpy(), b["loss"].to_numpy(), rtol=1e-10)
    # the per-member batched path calls back scipy-style cb(xk), with no member index:
    # a BoTorch-style 2-argument callback aborts that fit
    with pytest.raises(TypeError):
        fit_gpytorch_mll(make_mll("batched"), optimizer_kwargs={"callback": lambda parameters, result: None})


def test_batched_path_softplus_constraints_match_the_model():
    """Raw member states recorded on the batched path are transformed like the model's own (softplus)."""
    from gpytorch.kernels import RBFKernel, ScaleKernel

    X, Y = data()
    folds = gen_loo_cv_folds(X, Y)
    batch = torch.Size([N])

    def make():
        torch.manual_seed(2)
        covar = ScaleKernel(RBFKernel(ard_num_dims=D, batch_shape=batch), batch_shape=batch)
        m = SingleTaskGP(folds.train_X, folds.train_Y, covar_module=covar)
        return ExactMarginalLogLikelihood(m.likelihood, m)

    mll_a = make()
    with trace_fit(mll_a) as ctx_tracer:
        fit_gpytorch_mll(mll_a, optimizer_kwargs=MAXITER)
    mll_b = make()
    cb_tracer = FitTracer(mll_b)
    fit_gpytorch_mll(mll_b, optimizer_kwargs={"callback": cb_tracer.callback, **MAXITER})
    a, b = ctx_tracer.frames, cb_tracer.frames
    keys = list(ctx_tracer.keys)
    assert any("outputscale" in k for k in keys)
    np.testing.assert_allclose(a[keys].to_numpy(), b[keys].to_numpy(), rtol=1e-12, atol=1e-12)
    last = a[a["i_timestep"] == a["i_timestep"].max()]
    final = gpviz.parameters(mll_a.model)
    np.testing.assert_allclose(last[keys].to_numpy(), final[keys].to_numpy(), rtol=1e-12, atol=1e-12)


def test_batch_cross_validation_without_an_mll():
    X, Y = data()
    folds = gen_loo_cv_folds(X, Y)
    tracer = FitTracer()
    res = batch_cross_validation(SingleTaskGP, ExactMarginalLogLikelihood, folds,
                                 fit_args={"optimizer_kwargs": {"callback": tracer.callback}})
    fr = check_frames_layout(tracer)
    assert tracer.n_members == N and tracer.error is None
    last = fr[fr["i_timestep"] == fr["i_timestep"].max()]
    final = gpviz.parameters(res.model)
    for k in tracer.keys:
        np.testing.assert_allclose(last[k].to_numpy(), final[k].to_numpy(), rtol=1e-12)


def _custom_closure(mll):
    return get_loss_closure_with_grads(mll, parameters=get_parameters(mll, requires_grad=True))


@pytest.mark.parametrize("path", ["closure_kwargs", "custom_closure", "torch"])
def test_joint_paths(path, monkeypatch):
    spy = StepSpy(monkeypatch)
    if path == "torch":
        kw = {"optimizer": spy.optimizer(fit_gpytorch_mll_torch), "optimizer_kwargs": {"step_limit": 30}}
    else:
        kw = {"optimizer": spy.optimizer(), "optimizer_kwargs": MAXITER}
        if path == "closure_kwargs":
            kw["closure_kwargs"] = {}
    mlls, counts, tracers = [], [], []
    for traced in (False, True):
        mll = make_mll("batched")
        if path == "custom_closure":
            kw["closure"] = _custom_closure(mll)
        c = count_evaluations(mll)
        if traced:
            with trace_fit(mll) as tracer:
                fit_gpytorch_mll(mll, **kw)
            tracers.append(tracer)
        else:
            fit_gpytorch_mll(mll, **kw)
        mlls.append(mll)
        counts.append(c)
    assert max_diff(state(mlls[0]), state(mlls[1])) <= 1e-12
    assert counts[0] == counts[1]
    assert spy.members == []  # no per-member batched run: the joint path
    tracer = tracers[0]
    fr = check_frames_layout(tracer)
    assert fr["i_timestep"].nunique() == spy.joint[1] == spy.joint[0]
    assert fr["active"].all()
    # joint loss: the members' losses add up to the optimizer's objective
    assert fr["loss"].notna().all()


def test_joint_path_callback_form():
    mll = make_mll("single")
    tracer = FitTracer(mll)
    res = []

    def opt(m, **kw):
        r = fit_gpytorch_mll_scipy(m, **kw)
        res.append(r)
        return r

    fit_gpytorch_mll(mll, optimizer=opt, optimizer_kwargs={"callback": tracer.callback})
    fr = check_frames_layout(tracer)
    assert len(fr) == res[0].step
    assert fr["loss"].iloc[-1] == pytest.approx(res[0].fval, rel=1e-9)


def test_multitask_gp(monkeypatch):
    spy = StepSpy(monkeypatch)
    kw = {"optimizer": spy.optimizer(), "optimizer_kwargs": MAXITER}
    mll0, c0, mll1, c1, tracer = fit_both("multitask", kw)
    assert max_diff(state(mll0), state(mll1)) <= 1e-12
    assert c0 == c1
    fr = check_frames_layout(tracer)
    assert len(fr) == spy.joint[1]
    assert any("covar_factor" in k for k in tracer.keys)


def test_model_list_gp_sub_models_in_turn(monkeypatch):
    spy = StepSpy(monkeypatch)
    kw = {"optimizer": spy.optimizer(), "optimizer_kwargs": MAXITER}
    mll0, c0, mll1, c1, tracer = fit_both("list", kw)
    assert max_diff(state(mll0), state(mll1)) <= 1e-12
    assert c0 == c1
    fr = check_frames_layout(tracer)
    assert tracer.n_members == 2
    steps0, steps1 = spy.joint[2], spy.joint[3]
    act = fr[fr["active"]]
    assert (act.groupby("i_model").size().to_list()) == [steps0, steps1]
    # sub-model 1 is fit after sub-model 0: its steps come later, and it shows its start values before
    t0 = act[act["i_model"] == 0]["i_timestep"]
    t1 = act[act["i_model"] == 1]["i_timestep"]
    assert t0.max() < t1.min()
    assert fr[(fr["i_model"] == 1) & (fr["i_timestep"] < t1.min())]["loss"].isna().all()
    assert (act.groupby("i_model")["step"].min() == 1).all()


# ------------------------------------------------------------------------ retries and failures

def test_retry_on_the_joint_path_splits_attempts(monkeypatch):
    """A closure that fails (NotPSDError) mid-way through the first attempt: BoTorch retries."""
    spy = StepSpy(monkeypatch)
    mll = make_mll("single")
    inner = _custom_closure(mll)
    calls = {"n": 0}

    def closure(**kw):
        calls["n"] += 1
        if calls["n"] == 8:
            raise NotPSDError("forced failure in attempt 1")
        return inner(**kw)

    with trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll, closure=closure, optimizer=spy.optimizer(), optimizer_kwargs=MAXITER)
    fr = check_frames_layout(tracer)
    assert set(fr["i_attempt"]) == {0, 1}
    a0, a1 = fr[fr["i_attempt"] == 0], fr[fr["i_attempt"] == 1]
    assert a0["i_timestep"].max() < a1["i_timestep"].min()
    assert a1["step"].iloc[0] == 1 and a0["step"].iloc[0] == 1
    assert len(a1) == spy.joint[-1]  # the successful attempt's own iteration count
    assert len(a0) >= 1


def test_retry_on_the_batched_path_splits_attempts(monkeypatch):
    """An OptimizationWarning in the first attempt makes BoTorch resample from the priors and refit."""
    spy = StepSpy(monkeypatch)
    mll = make_mll("batched")
    seen = {"n": 0}

    def failing(xk):
        seen["n"] += 1
        if seen["n"] == 3:
            warnings.warn("forced retry", OptimizationWarning)

    with trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll, optimizer_kwargs={"callback": failing, **MAXITER})
    assert len(spy.members) == 2
    fr = check_frames_layout(tracer)
    assert sorted(set(fr["i_attempt"])) == [0, 1]
    for attempt, nit in enumerate(spy.members):
        rows = fr[(fr["i_attempt"] == attempt) & fr["active"]]
        assert rows.groupby("i_model").size().reindex(range(N), fill_value=0).to_list() == nit
    first_of_2 = fr[fr["i_attempt"] == 1]["i_timestep"].min()
    assert (fr[fr["i_timestep"] == first_of_2]["step"] == 1).all()
    # the render keeps every retry boundary
    keep = tracer.timesteps_to_show(max_timesteps=4)
    assert {0, first_of_2 - 1, first_of_2, fr["i_timestep"].max()} <= set(keep.tolist())


def test_max_timesteps_is_none_or_a_whole_number_of_at_least_two():
    from gpviz.errors import InputError
    from gpviz.trace.summary import timesteps_to_show

    assert timesteps_to_show(10, [], None).tolist() == list(range(10))
    assert timesteps_to_show(10, [], 1e5).tolist() == list(range(10))  # a float that is a whole number
    capped = timesteps_to_show(10, [], 3).tolist()
    assert len(capped) <= 3 and capped[0] == 0 and capped[-1] == 9
    for bad in (1, 2.5, "300", True, -4):
        with pytest.raises(InputError, match="max_timesteps must be None"):
            timesteps_to_show(10, [], bad)


def test_interrupted_fit_keeps_its_frames():
    mll = make_mll("batched")
    before = dict(mll.__dict__)
    seen = {"n": 0}

    def interrupt(xk):
        seen["n"] += 1
        if seen["n"] == 3 * N:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with trace_fit(mll) as tracer:
            fit_gpytorch_mll(mll, optimizer_kwargs={"callback": interrupt})
    fr = tracer.frames
    assert int(fr["active"].sum()) >= 3 * N - 1
    # the MLL and BoTorch are left as found
    assert "forward" not in mll.__dict__ and mll.__dict__.keys() == before.keys()
    assert optim_core.minimize_with_timeout.__module__ == "botorch.optim.utils.timeout"
    assert batched_lbfgs_b.fmin_l_bfgs_b_batched.__module__ == "botorch.optim.batched_lbfgs_b"
    assert optim_fit.torch_minimize.__module__ == "botorch.optim.core"


def test_a_tracer_bug_does_not_abort_the_fit(monkeypatch):
    mll0 = make_mll("batched")
    fit_gpytorch_mll(mll0, optimizer_kwargs=MAXITER)
    mll1 = make_mll("batched")
    tracer = trace_fit(mll1)
    calls = {"n": 0}
    real = tracer._recorder.binding.store.append_one

    def broken(*args):  # a deliberately broken recorder: the third row raises
        calls["n"] += 1
        if calls["n"] > 2:
            raise ZeroDivisionError("tracer bug")
        return real(*args)

    monkeypatch.setattr(tracer._recorder.binding.store, "append_one", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tracer:
            fit_gpytorch_mll(mll1, optimizer_kwargs=MAXITER)
    assert max_diff(state(mll0), state(mll1)) <= 1e-12
    tw = [w for w in caught if issubclass(w.category, TracerWarning)]
    assert len(tw) == 1 and "ZeroDivisionError" in str(tw[0].message)
    assert not issubclass(TracerWarning, OptimizationWarning)
    assert isinstance(tracer.error, ZeroDivisionError)
    assert tracer.frames["active"].sum() == 2  # the rows recorded before the bug are kept


def test_callback_form_errors_are_contained():
    mll = make_mll("single")
    tracer = FitTracer(mll)
    tracer._recorder.binding.groups = []  # deliberately broken tracer state
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_gpytorch_mll(mll, optimizer_kwargs={"callback": tracer.callback, **MAXITER})
    assert not mll.training  # the fit succeeded
    assert sum(issubclass(w.category, TracerWarning) for w in caught) == 1


def test_not_an_mll_is_a_typed_error():
    with pytest.raises(gpviz.GpvizError, match="MarginalLogLikelihood.*SingleTaskGP"):
        FitTracer(make_mll("single").model)
    with pytest.raises(gpviz.GpvizError, match="trace_fit"):
        with FitTracer():
            pass


# ----------------------------------------------------------------------------------- storage

def test_storage_60_members_2000_steps_30_parameters_under_100_mb():
    """Synthetic recorder at the issue's size: chunked arrays, O(steps), no DataFrame per step."""
    members, steps, keys = 60, 2000, [f"p[{i}]" for i in range(30)]
    rec = EventStore(len(keys))
    rng = np.random.default_rng(0)
    row = rng.random((members, len(keys)))
    for t in range(steps):  # the joint path: all members each step
        rec.append(t, 0, t + 1, np.arange(members), rng.random(members), 0.01 * t, t + 1.0, row)
    assert rec.n == members * steps
    assert rec.nbytes < 100e6
    # chunked: appends never reallocate earlier rows
    assert len(rec._chunks) == math.ceil(members * steps / rec.chunk)
    fr = dense_frames(rec.arrays(), members, keys, None, np.array([0]))
    assert len(fr) == members * steps
    assert fr.memory_usage(deep=True).sum() < 100e6
    assert fr["active"].all() and fr["i_timestep"].iloc[-1] == steps - 1


def test_page_of_a_long_wide_fit_keeps_every_step_and_stays_small(tmp_path):
    """60 members x 2,000 steps x 30 parameters (synthetic steps on a real 60-fold model, every value moving
    by up to 10% at every step: the worst case for compact frame data): the page keeps every step and stays
    under 10 MB; an explicit cap keeps at most that many steps."""
    from gpviz.trace.reader import Segment as _Segment

    members, steps, d = 60, 2000, 28
    g = torch.Generator().manual_seed(0)
    X = torch.rand(members, d, generator=g)
    Y = X.sum(-1, keepdim=True)
    folds = gen_loo_cv_folds(X, Y)
    model = SingleTaskGP(folds.train_X, folds.train_Y)
    tracer = FitTracer(ExactMarginalLogLikelihood(model.likelihood, model))
    assert len(tracer.keys) == 30 and tracer.n_members == members
    base = tracer._recorder.binding.initial
    rng = np.random.default_rng(0)
    for t in range(steps):
        tracer._recorder.binding.store.append(t, 0, t + 1, np.arange(members), rng.random(members), 0.01 * t, t + 1.0,
                           base * (1.0 + 0.1 * rng.random(base.shape)))
    tracer._recorder.timeline.segments.append(_Segment(0, 1, 0, 0, 0, last_step=steps))
    tracer._recorder.timeline.next_t = steps
    assert tracer.render_frame()["i_timestep"].unique().tolist() == list(range(steps))
    shown = tracer.render_frame(max_timesteps=300)["i_timestep"].unique()
    assert len(shown) <= 300 and shown[0] == 0 and shown[-1] == steps - 1
    path = tracer.render(loss_chart=False).save(tmp_path / "long.html")
    assert path.stat().st_size < 10e6


def test_dense_frames_carry_converged_members_forward():
    rec = EventStore(1)
    # member 0 steps twice, member 1 three times (batched path)
    for t, m, v in [(0, 0, 1.0), (0, 1, 10.0), (1, 0, 2.0), (1, 1, 11.0), (2, 1, 12.0)]:
        rec.append(t, 0, t + 1, [m], -v, 0.0, t + 1.0, np.array([[v]]))
    fr = dense_frames(rec.arrays(), 2, ["k"], np.array([[0.5], [5.0]]), np.array([0]))
    last = fr[fr["i_timestep"] == 2]
    assert last["k"].to_list() == [2.0, 12.0] and last["active"].to_list() == [False, True]
    assert last["loss"].to_list() == [-2.0, -12.0]


# -------------------------------------------------------------------------- summary and views

def test_summary_accounts_waste_on_the_batched_path():
    mll = make_mll("batched")
    with trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll)
    s = tracer.summary()
    assert list(s["i_model"]) == list(range(N))
    assert (s["converged_step"] <= s["steps"]).all() and (s["converged_step"] >= 1).all()
    assert (s["converged_evaluation"] <= s["evaluations"]).all()
    evaluations = s.attrs["evaluations"]
    assert evaluations == s["evaluations"].iloc[0]
    assert s.attrs["member_evaluations_computed"] == evaluations * N
    assert s.attrs["member_evaluations_needed"] == s["converged_evaluation"].sum()
    assert s.attrs["waste"] > 1.0  # converged members are still computed
    # a member converges at the latest at its last step; looser tolerances converge earlier
    loose = tracer.summary(loss_tol=1.0, param_rtol=10.0)
    assert (loose["converged_step"] <= s["converged_step"]).all()


def test_plot_draws_one_loss_line_per_member():
    mll = make_mll("batched")
    with trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll, optimizer_kwargs=MAXITER)
    fig = tracer.plot()
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    assert len(lines) == N
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_decimates_but_keeps_first_and_last(tmp_path):
    mll = make_mll("batched")
    with trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll, optimizer_kwargs=MAXITER)
    T = tracer.frames["i_timestep"].nunique()
    frame = tracer.render_frame(max_timesteps=6)
    shown = sorted(frame["i_timestep"].unique())
    assert shown[0] == 0 and shown[-1] == T - 1 and len(shown) <= 6
    assert list(frame.columns) == ["i_timestep", "i_model", *tracer.expr.keys]
    fig = tracer.render(max_timesteps=6)
    assert fig.mode == "timeline"
    path = fig.save(tmp_path / "fit.html")
    assert path.stat().st_size < 10e6


def test_live_view_outside_a_notebook_updates_and_finishes():
    mll = make_mll("batched")
    with trace_fit(mll) as tracer:
        live = tracer.show(display=False)
        fit_gpytorch_mll(mll, optimizer_kwargs=MAXITER)
    assert live.updates >= 2  # the start view and the final one at least
    assert live.figure is not None and live.figure.mode == "timeline"
    assert tracer._live.shown is None


@pytest.mark.slow
def test_compare_fit_modes_reports_work_of_each_mode():
    X, Y = data(n=6)
    table = gpviz.compare_fit_modes(SingleTaskGP, X, Y, optimizer_kwargs={"options": {"maxiter": 40}})
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == ["batched", "joint", "separate"]
    assert table.loc["separate", "fits"] == 6 and table.loc["batched", "fits"] == 1
    assert table.loc["batched", "member_evaluations"] == table.loc["batched", "evaluations"] * 6
    assert table.loc["joint", "member_evaluations"] >= table.loc["batched", "member_evaluations"]
    assert (table["wall_time_s"] > 0).all()
    fig = table.chart()
    assert len(fig.axes) == 2
    with pytest.raises(gpviz.GpvizError, match="unknown fit mode"):
        gpviz.compare_fit_modes(SingleTaskGP, X, Y, modes=("batched", "sideways"))


# -------------------------------------------------------------------------------- notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "trace_fit_live.ipynb"


@pytest.mark.slow
def test_live_notebook_executes_without_errors(tmp_path):
    nbformat = need("nbformat", "test")
    nbclient = need("nbclient", "test")
    need("ipykernel", "test")
    from jupyter_client.kernelspec import KernelSpecManager

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "stored with outputs"
    # a kernelspec that runs this interpreter (the venv), wherever the tests run
    spec_dir = tmp_path / "kernels" / "gpviz-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        '{"argv": [%s, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "gpviz test", '
        '"language": "python"}' % ('"' + sys.executable.replace("\\", "\\\\") + '"'))
    from jupyter_client.manager import KernelManager

    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    km = KernelManager(kernel_name="gpviz-test", kernel_spec_manager=ksm)
    client = nbclient.NotebookClient(nb, km=km, timeout=300, kernel_name="gpviz-test",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert any("gpviz-figure" in o["data"]["text/html"] for o in html)
    updates = [o for o in outputs if o.get("output_type") in ("display_data", "update_display_data")]
    assert updates
    gc.collect()


# --------------------------------------------------------------------------- #
# Opaque children traced; tracers exited in any order                       #
# --------------------------------------------------------------------------- #


def _x(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class DoubledKernel(gk.Kernel):
    """A user kernel gpviz has no handler for, wrapping a kernel it knows: k = 2 k_base."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x1, x2, **params):
        return 2 * self.base(x1, x2, **params).to_dense()


def test_unknown_kernel_warning_says_what_is_shown_and_its_children_are_kept_in_the_fit_trace():
    X = _x(12, 2)
    Y = torch.sin(6 * X[:, :1])
    model = SingleTaskGP(X, Y, covar_module=DoubledKernel(gk.RBFKernel(ard_num_dims=2)))
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    walk_module._WARNED_OPAQUE.clear()  # the warning comes once per class and process
    with pytest.warns(OpaqueKernelWarning, match=r"all 2 parameter elements of its subtree.*not its formula"):
        expr = gpviz.model_expr(model)
    assert {"covar_module.base.lengthscale[0]", "covar_module.base.lengthscale[1]"} <= set(expr.keys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with gpviz.trace_fit(mll) as tracer:
            fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 5}})
    lengthscale = tracer.frames["covar_module.base.lengthscale[0]"]
    assert lengthscale.notna().all() and lengthscale.nunique() > 1  # traced, and it moved


@pytest.mark.parametrize("order", ["inner first", "outer first"])
def test_tracers_exited_in_any_order_restore_the_mll(order):
    X = _x(10, 2)
    model = SingleTaskGP(X, torch.sin(5 * X[:, :1]))
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    outer, inner = gpviz.FitTracer(mll), gpviz.FitTracer(mll)
    outer.__enter__()
    inner.__enter__()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 3}})
    first, second = (inner, outer) if order == "inner first" else (outer, inner)
    first.__exit__(None, None, None)
    rows = {id(t): len(t.frames) for t in (outer, inner)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 3}})
    assert len(first.frames) == rows[id(first)]  # the exited tracer stopped counting
    assert len(second.frames) > rows[id(second)]  # the one still open kept counting
    second.__exit__(None, None, None)
    assert "forward" not in mll.__dict__  # exactly as found
    rows = {id(t): len(t.frames) for t in (outer, inner)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 3}})
    assert {id(t): len(t.frames) for t in (outer, inner)} == rows


# -------------------------------------------------------------------------------- live view: no race


def _read_at_every_evaluation(mll, reads: list, tracer_box: list) -> None:
    """Wraps the MLL's forward (the tracer wraps this wrapper) so that the live view and the frames are
    read in the middle of every closure evaluation, between the optimizer's steps and members' commits."""
    orig = mll.forward

    def forward(*args, **kwargs):
        tracer = tracer_box[0] if tracer_box else None
        if tracer is not None and tracer._recorder.rows:
            live = tracer.live_frame()
            reads.append((tracer.n_timesteps, live, tracer.frames, tracer._live.shown.figure.spec["bad"]))
        return orig(*args, **kwargs)

    mll.forward = forward


@pytest.mark.parametrize("kind", ["batched", "single"])
def test_live_reads_between_and_during_steps_never_flag_what_the_frames_do_not(kind, monkeypatch):
    monkeypatch.setattr(live_module, "LIVE_UPDATES_PER_SECOND", float("inf"))  # a live update at every commit
    mll = make_mll(kind)
    reads, box = [], []
    _read_at_every_evaluation(mll, reads, box)
    with trace_fit(mll) as tracer:
        box.append(tracer)
        live = tracer.show(display=False)
        fit_gpytorch_mll(mll, optimizer_kwargs=MAXITER)
    frames = tracer.frames
    keys = list(tracer.expr.keys)
    assert not frames[keys].isna().any().any()  # the traced values have no NaN ...
    assert len(reads) > 10 and live.updates > 10
    for next_t, shown, seen, bad in reads:
        assert bad == {}  # ... so no live figure may flag one
        assert not shown[keys].isna().any().any() and not seen[keys].isna().any().any()
        if next_t < 2:  # no completed timestep yet: the live view shows the values the fit starts from
            continue
        # the live view shows completed timesteps only: the newest may still be filling
        assert shown["i_timestep"].max() <= next_t - 2
        if kind == "single":  # one member: a completed step never changes (batched members may lag a step)
            final = frames[frames["i_timestep"].isin(shown["i_timestep"].unique())]
            np.testing.assert_array_equal(shown[keys].to_numpy(), final[keys].to_numpy())
    assert live.figure.spec["bad"] == {} and tracer.render().spec["bad"] == {}


def test_live_figure_ends_as_the_tracers_own_page(monkeypatch):
    monkeypatch.setattr(live_module, "LIVE_UPDATES_PER_SECOND", float("inf"))
    mll = make_mll("batched")
    with trace_fit(mll) as tracer:
        live = tracer.show(display=False)
        assert "(live)" in live.figure.title and "fit ended" not in live.figure.title
        fit_gpytorch_mll(mll, optimizer_kwargs=MAXITER)
    final, again = live.figure, tracer.render()
    assert live.finished and tracer.ended is not None
    # the same page by construction: verdicts, tints, flags, values, title (saying when the fit ended)
    assert final.spec == again.spec and final._inner == again._inner and final.title == again.title
    assert "fit ended" in final.title and "(live)" not in final._inner
    # counted in words: "4 members, 1 optimizer run", never "member(s)" (the title and the repr)
    n = tracer.n_members
    assert f"{n} members, " in final.title and "1 optimizer run" in final.title and "(s)" not in final.title
    assert repr(tracer).startswith(f"<FitTracer: {n} members, ") and "(s)" not in repr(tracer)
    assert [p["held"] for p in final.spec["params"].values()] == [p["held"] for p in again.spec["params"].values()]


@pytest.mark.parametrize("device", DEVICES)
def test_batched_fast_path_values_are_the_models_own_on_every_device(device):
    """The fast path transforms raw optimizer states with the model's constraints, on the model's device."""
    X, Y = (t.to(device) for t in data())
    folds = gen_loo_cv_folds(X, Y)
    batch = torch.Size([N])
    torch.manual_seed(2)
    covar = gk.ScaleKernel(gk.RBFKernel(ard_num_dims=D, batch_shape=batch), batch_shape=batch)
    model = SingleTaskGP(folds.train_X, folds.train_Y, covar_module=covar)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll, optimizer_kwargs=MAXITER)
    frames = tracer.frames
    last = frames[frames["i_timestep"] == frames["i_timestep"].max()].sort_values("i_model")
    with torch.no_grad():  # the fitted model's own values, member by member, read from its modules
        expected = {"covar_module.outputscale": model.covar_module.outputscale.reshape(N)}
        for j in range(D):
            expected[f"covar_module.base_kernel.lengthscale[{j}]"] = model.covar_module.base_kernel.lengthscale[:, 0, j]
    for key, want in expected.items():
        got = last[key].to_numpy()
        assert np.isfinite(frames[key].to_numpy()).all(), key
        np.testing.assert_allclose(got, want.cpu().double().numpy(), rtol=1e-10, atol=1e-12, err_msg=key)


# ------------------------------------------------------------------------- the three parts


def test_the_public_tracer_shows_no_listener_methods_and_its_result_is_frozen():
    """The hooks talk to the recorder; users hold FitTracer (no ``hook_*``) and get a frozen FitTrace."""
    import dataclasses

    from gpviz.trace.recorder import TraceRecorder
    from gpviz.trace.result import FitTrace

    mll = make_mll("single")
    with trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll, optimizer_kwargs=MAXITER)
    assert not [n for n in dir(tracer) if n.startswith("hook_")]
    assert {n for n in dir(TraceRecorder) if n.startswith("hook_")} >= {"hook_matches", "hook_scipy_step"}
    trace = tracer.trace
    assert isinstance(trace, FitTrace) and trace is tracer.trace  # built once for a finished fit
    with pytest.raises(dataclasses.FrozenInstanceError):
        trace.n_timesteps = 0
    with pytest.raises(ValueError):
        trace.events["loss"][0] = 0.0  # read-only copies: the recorder cannot change a trace either
    pd.testing.assert_frame_equal(trace.frames, tracer.frames)
    pd.testing.assert_frame_equal(trace.summary(), tracer.summary())
    assert trace.render().spec == tracer.render().spec


def test_a_users_own_callback_beside_the_tracers_follows_botorchs_contract():
    """BoTorch's ``callback(parameters, OptimizationResult)``: the tracer's and the user's, from one function."""
    mll = make_mll("single")
    tracer, seen = FitTracer(mll), []

    def cb(parameters, result):
        tracer.callback(parameters, result)
        seen.append(int(result.step))

    fit_gpytorch_mll(mll, optimizer_kwargs={"callback": cb, **MAXITER})
    assert seen and tracer.n_timesteps == max(seen)
    # in the context form a user's callback in optimizer_kwargs is still called, after the tracer's marker
    mll, seen = make_mll("single"), []
    with trace_fit(mll) as traced:
        fit_gpytorch_mll(mll, optimizer_kwargs={"callback": lambda p, r: seen.append(int(r.step)), **MAXITER})
    assert seen and traced.n_timesteps >= len(seen)
