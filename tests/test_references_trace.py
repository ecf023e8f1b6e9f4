"""The fit tracer's numbers, each against a reference computed without gpviz.

- values at every step: BoTorch's own callback (joint path: ``cb(parameters, result)`` reading
  the model's constrained values; batched path: scipy's iterate ``xk`` of each member);
- the loss at every step: ``-ExactMarginalLogLikelihood(model(X), y)`` evaluated here at the
  values the frame records, member by member;
- evaluations: the model's ``forward`` calls in training mode, counted here;
- ``summary()``: evaluations and member-evaluations from that count, final losses from the
  MLL, the convergence step from the documented criterion written out in numpy, waste as
  computed / needed;
- ``compare_fit_modes``: the same counts and losses for each mode, from the factory's models.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz

N, D = 8, 2
LS = [f"covar_module.lengthscale[{j}]" for j in range(D)]
NOISE, CONST = "likelihood.noise_covar.noise", "mean_module.constant"


def _data(n=N, d=D, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1]) + 0.5 * X[:, 1:] + 0.05 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


def _count_training_forwards(model) -> list[int]:
    """Counts the model's forward calls made in training mode (the MLL's evaluations; not predictions)."""
    calls = [0]
    orig = model.forward

    def forward(*a, **k):
        if model.training:
            calls[0] += 1
        return orig(*a, **k)

    model.forward = forward
    return calls


def _neg_mll(model) -> np.ndarray:
    """-ExactMarginalLogLikelihood per member, evaluated here on the model's current values."""
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    mll.train()
    with torch.no_grad():
        out = model(*model.train_inputs)
        return (-mll(out, model.train_targets, *model.train_inputs)).reshape(-1).numpy()


def _set_values(model, row_values: dict, members: np.ndarray) -> None:
    """Sets a default SingleTaskGP's values (GreaterThan constraints are not enforced: raw == value)."""
    with torch.no_grad():
        for j, k in enumerate(LS):
            model.covar_module.raw_lengthscale[..., 0, j] = torch.as_tensor(row_values[k][members])
        model.likelihood.noise_covar.raw_noise[..., 0] = torch.as_tensor(row_values[NOISE][members])
        model.mean_module.raw_constant[...] = torch.as_tensor(row_values[CONST][members]).reshape(
            model.mean_module.raw_constant.shape)


def _single():
    torch.manual_seed(1)
    m = SingleTaskGP(*_data())
    assert not m.covar_module.raw_lengthscale_constraint.enforced
    return m


def _batched():
    torch.manual_seed(1)
    folds = gen_loo_cv_folds(*_data())
    return SingleTaskGP(folds.train_X, folds.train_Y)


def test_joint_path_every_step_equals_botorchs_callback():
    model = _single()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    seen = []

    def callback(parameters, result):
        seen.append((int(result.step), float(result.fval),
                     *model.covar_module.lengthscale.detach().reshape(-1).tolist(),
                     float(model.likelihood.noise.detach().reshape(-1)[0]),
                     float(model.mean_module.constant.detach().reshape(-1)[0])))

    with gpviz.trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll, optimizer_kwargs={"callback": callback})
    fr = tracer.frames
    assert len(seen) > 5 and len(fr) == len(seen)
    ref = np.array(seen)
    np.testing.assert_array_equal(fr["step"].to_numpy(), ref[:, 0])
    np.testing.assert_allclose(fr["loss"].to_numpy(), ref[:, 1], rtol=1e-12)
    np.testing.assert_allclose(fr[LS + [NOISE, CONST]].to_numpy(), ref[:, 2:], rtol=1e-12, atol=1e-15)


def test_batched_path_every_step_equals_scipys_iterates():
    """scipy calls back ``cb(xk)`` once per member per iteration, with no member index and in the order members
    finish their iteration; xk is the member's noise, constant, lengthscales (raw == value) in the MLL's parameter
    order. Every iterate is one active frame row, bit for bit, and each member's iterates come in step order."""
    model = _batched()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    assert [n for n, _ in mll.named_parameters()] == ["likelihood.noise_covar.raw_noise",
                                                       "model.mean_module.raw_constant",
                                                       "model.covar_module.raw_lengthscale"]
    xs = []
    with gpviz.trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll, optimizer_kwargs={"callback": lambda xk: xs.append(tuple(np.asarray(xk, float)))})
    fr = tracer.frames
    active = fr[fr["active"]]
    rows = {tuple(v): (int(m), int(s)) for v, m, s in zip(active[[NOISE, CONST] + LS].to_numpy(),
                                                         active["i_model"], active["step"])}
    assert len(rows) == len(active) == len(xs) > N  # one distinct row per iterate
    matched = [rows.get(x) for x in xs]
    assert None not in matched, "an iterate of scipy's is not in the frames"
    per_member: dict[int, list[int]] = {}
    for m, s in matched:
        per_member.setdefault(m, []).append(s)
    assert sorted(per_member) == list(range(N))
    for m, s in per_member.items():
        assert s == list(range(1, len(s) + 1)), m
    steps = [len(per_member[m]) for m in range(N)]
    assert tracer.summary()["steps"].tolist() == steps


@pytest.mark.parametrize("make", [_single, _batched], ids=["single", "batched"])
def test_loss_at_every_recorded_step_is_the_negative_mll_at_the_recorded_values(make):
    model = make()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with gpviz.trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll)
    fr = tracer.frames
    final = _neg_mll(model)  # the fitted model, as BoTorch left it
    last = fr[fr["i_timestep"] == fr["i_timestep"].max()]
    np.testing.assert_allclose(last["loss"].to_numpy(), final, rtol=1e-10)
    n = tracer.n_members
    steps = sorted(fr["i_timestep"].unique())
    for t in {steps[0], steps[len(steps) // 3], steps[2 * len(steps) // 3], steps[-1]}:
        rows = fr[fr["i_timestep"] == t].sort_values("i_model")
        values = {k: rows[k].to_numpy() for k in LS + [NOISE, CONST]}
        _set_values(model, values, np.arange(n))
        np.testing.assert_allclose(rows["loss"].to_numpy(), _neg_mll(model), rtol=1e-9, err_msg=f"step {t}")


def _converged_step(loss: np.ndarray, vals: np.ndarray, steps: np.ndarray, loss_tol=1e-3, param_rtol=1e-2) -> int:
    """The documented criterion, written out: the first step from which on the loss stays within loss_tol of the
    final loss and every value within param_rtol (floored at 1e-3 absolute) of its final value."""
    scale = np.maximum(np.abs(vals[-1]), 1e-3)
    ok = (np.abs(loss - loss[-1]) <= loss_tol) & np.all(np.abs(vals - vals[-1]) <= param_rtol * scale, axis=1)
    first = len(ok)
    while first > 0 and ok[first - 1]:
        first -= 1
    return int(steps[first])


@pytest.mark.parametrize("make", [_single, _batched], ids=["single", "batched"])
def test_summary_counts_losses_convergence_and_waste_against_independent_counts(make):
    model = make()
    calls = _count_training_forwards(model)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with gpviz.trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll)
    evaluations = calls[0]
    n = tracer.n_members
    s = tracer.summary()
    assert s.attrs["evaluations"] == evaluations > 5
    assert (s["evaluations"] == evaluations).all()
    assert s.attrs["member_evaluations_computed"] == evaluations * n
    np.testing.assert_allclose(s["final_loss"].to_numpy(), _neg_mll(model), rtol=1e-10)
    fr = tracer.frames
    keys = list(tracer.keys)
    for m in range(n):
        rows = fr[(fr["i_model"] == m) & fr["active"]].sort_values("step")
        want = _converged_step(rows["loss"].to_numpy(), rows[keys].to_numpy(), rows["step"].to_numpy())
        assert s.loc[s["i_model"] == m, "converged_step"].item() == want, m
    conv = s["converged_evaluation"].to_numpy()
    assert (conv >= 1).all() and (conv <= evaluations).all()
    assert s.attrs["member_evaluations_needed"] == conv.sum()
    assert s.attrs["waste"] == pytest.approx(evaluations * n / conv.sum(), rel=1e-12)


def test_compare_fit_modes_work_and_losses_equal_counts_at_the_models():
    X, Y = _data(n=5)
    built = []

    def make(train_X, train_Y):
        m = SingleTaskGP(train_X, train_Y)
        built.append((m, _count_training_forwards(m)))
        return m

    okw = {"options": {"maxiter": 15}}
    table = gpviz.compare_fit_modes(make, X, Y, optimizer_kwargs=okw, runs=1)
    # modes take turns in FIT_MODES order on the first run: batched, joint, then one model per fold
    assert list(table.index) == ["batched", "joint", "separate"] and len(built) == 2 + 5
    (mb, cb), (mj, cj), separate = built[0], built[1], built[2:]
    assert table.loc["batched", "evaluations"] == cb[0] and table.loc["joint", "evaluations"] == cj[0]
    assert table.loc["separate", "evaluations"] == sum(c[0] for _, c in separate)
    assert table.loc["batched", "member_evaluations"] == cb[0] * 5
    assert table.loc["joint", "member_evaluations"] == cj[0] * 5
    assert table.loc["separate", "member_evaluations"] == sum(c[0] for _, c in separate)
    assert list(table["fits"]) == [1, 1, 5]
    assert table.loc["batched", "mean_final_loss"] == pytest.approx(float(_neg_mll(mb).mean()), rel=1e-9)
    assert table.loc["joint", "mean_final_loss"] == pytest.approx(float(_neg_mll(mj).mean()), rel=1e-9)
    assert table.loc["separate", "mean_final_loss"] == pytest.approx(
        float(np.mean([_neg_mll(m)[0] for m, _ in separate])), rel=1e-9)
    fewest = table["member_evaluations"].min()
    np.testing.assert_allclose(table["work_vs_fewest"], table["member_evaluations"] / fewest, rtol=1e-12)
