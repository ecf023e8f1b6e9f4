"""Trace summaries against hand-computed numbers: waste over known work, and the cap on the steps a page shows."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gpviz.trace.summary import summarize, timesteps_to_show


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
