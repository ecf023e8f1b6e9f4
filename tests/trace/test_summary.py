"""Trace summaries against hand-computed numbers: waste over known work, and the cap on the steps a page shows."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood
from hypothesis import given, settings
from hypothesis import strategies as st

import gpviz
from gpviz.markup import escape_html
from gpviz.trace.summary import summarize, summary_line, timesteps_to_show


def _events(evaluation_of_member_1):
    """One group of 2 members, one optimizer run, 3 steps each; member 0 settles at step 2 (evaluation 4)."""
    steps = np.array([1, 2, 3, 1, 2, 3])
    return {"seg": np.zeros(6, np.int64), "member": np.array([0, 0, 0, 1, 1, 1]), "step": steps,
            "loss": np.array([5.0, 1.0, 1.0, 5.0, 1.0, 1.0]),
            "values": np.array([[3.0], [2.0], [2.0], [3.0], [2.0], [2.0]]),
            "evaluation": np.array([2.0, 4.0, 6.0, *evaluation_of_member_1])}


GROUP = SimpleNamespace(evals=10, n=2, offset=0)
SEGMENT = SimpleNamespace(group=0, max_evaluation=10, base=0, last_step=3)


def test_waste_by_hand_and_a_member_without_evaluation_counts_is_not_zero_work():
    # both known: computed 10 + 10 member-evaluations, needed 4 + 4 -> waste 20 / 8
    s = summarize(_events([2.0, 4.0, 6.0]), [GROUP], [SEGMENT])
    assert s["converged_evaluation"].tolist() == [4.0, 4.0] and s["converged_step"].tolist() == [2, 2]
    assert s.attrs["waste"] == 20 / 8 and s.attrs["members_unknown"] == 0
    # member 1's evaluations unknown (NaN): it must not count as 'needed nothing' (that gave 20 / 4 = 5)
    s = summarize(_events([math.nan] * 3), [GROUP], [SEGMENT])
    assert math.isnan(s["converged_evaluation"].iloc[1])
    assert s.attrs["waste"] == 10 / 4 and s.attrs["members_unknown"] == 1
    assert s.attrs["member_evaluations_computed"] == 20 and s.attrs["member_evaluations_needed"] == 4
    # nothing known: no waste figure at all
    none = summarize({k: v[3:] if k != "member" else v[3:] - 1 for k, v in _events([math.nan] * 3).items()},
                     [SimpleNamespace(evals=10, n=1, offset=0)], [SEGMENT])
    assert math.isnan(none.attrs["waste"]) and none.attrs["members_unknown"] == 1


@settings(max_examples=300, deadline=None)
@given(T=st.integers(1, 400), cap=st.integers(2, 60),
       runs=st.lists(st.tuples(st.integers(0, 399), st.integers(0, 50)), max_size=80))
def test_timesteps_to_show_never_exceed_the_cap_and_keep_the_ends(T, cap, runs):
    segments = [SimpleNamespace(base=b, last_step=n) for b, n in runs]
    keep = timesteps_to_show(T, segments, cap)
    assert len(keep) <= cap
    assert np.all(np.diff(keep) > 0) and keep[0] == 0 and keep[-1] == T - 1 and keep[-1] < T
    must = {0, T - 1} | {t for s in segments for t in (s.base, s.base + max(s.last_step, 1) - 1) if 0 <= t < T}
    if T <= cap:
        assert keep.tolist() == list(range(T))
    elif len(must) <= cap:
        assert must <= set(keep.tolist()) and len(keep) == cap  # every boundary, and the room filled


def test_the_fit_page_states_convergence_and_waste_with_an_independent_evaluation_count():
    torch.manual_seed(0)
    X = torch.rand(8, 2, dtype=torch.float64)
    folds = gen_loo_cv_folds(X, torch.sin(4 * X).sum(-1, keepdim=True))
    model = SingleTaskGP(folds.train_X, folds.train_Y)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    calls = [0]
    forward = model.forward

    def counted(*args, **kwargs):  # counted at the model, independently of the tracer (which wraps the MLL)
        calls[0] += 1
        return forward(*args, **kwargs)

    model.forward = counted
    with gpviz.trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll)
    del model.forward
    s = tracer.summary()
    # one batched evaluation computes all 8 folds: 8 x the evaluations, against what each needed
    assert s.attrs["evaluations"] == calls[0] and s.attrs["member_evaluations_computed"] == 8 * calls[0]
    needed = s["converged_evaluation"].sum()
    line = summary_line(s)
    steps = s["converged_step"]
    assert line.startswith(f"Convergence: every member settled by steps {int(steps.min())}\u2013"
                           f"{int(steps.max())} (median {float(steps.median()):g}) of at most "
                           f"{int(s['steps'].max())} (loss within 0.001 and each parameter within 1% of its final")
    assert (f"Work: {calls[0]:,} evaluations, {8 * calls[0]:,} member-evaluations computed where {needed:,.0f} "
            f"were needed: waste {8 * calls[0] / needed:.2f}\u00d7.") in line
    page = tracer.render().html()
    assert escape_html(line) in page
    assert summary_line(s.iloc[:0]) == ""
