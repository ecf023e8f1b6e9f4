"""Every step of every member on the page, in a real headless Chromium: the values drawn at the first,
a middle and the last step agree with ``tracer.frames`` to 4 significant digits; flags survive; the
player's speed control."""

from __future__ import annotations

import importlib
import re

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
R = importlib.import_module("gpviz.rendering")
from gpviz.trace.reader import Segment
from gpviz.trace.tracer import FitTracer

pytestmark = pytest.mark.browser

FIGURE = "document.querySelector('.gpviz-figure')"
NUMBER = r"-?(?:\d+\.?\d*(?:e-?\d+)?|inf|NaN)"


def within_4_digits(shown, exact) -> np.ndarray:
    """Half a unit in the 4th significant digit of the exact value."""
    shown, exact = np.asarray(shown, float), np.asarray(exact, float)
    unit = 10.0 ** (np.floor(np.log10(np.abs(exact))) - 3)
    return np.abs(shown - exact) <= 0.5 * unit * (1 + 1e-12)


def drawn(loaded, key: str) -> np.ndarray:
    return np.array(loaded.eval(f"Array.from(document.querySelector('.gpviz-param[data-key=\"{key}\"]').gpvizValues)"),
                    dtype=float)


def tooltip(loaded, key: str) -> str:
    return loaded.eval(f"document.querySelector('.gpviz-param[data-key=\"{key}\"] .gpviz-chart').title")


@pytest.fixture(scope="module")
def traced():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(10, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1]) + 0.5 * X[:, 1:] + 0.05 * torch.randn(10, 1, generator=g, dtype=torch.float64)
    folds = gen_loo_cv_folds(X, Y)
    torch.manual_seed(1)
    model = SingleTaskGP(folds.train_X, folds.train_Y)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with gpviz.trace_fit(mll, feature_names=["x0", "x1"]) as tracer:
        fit_gpytorch_mll(mll)
    return tracer


def test_every_step_page_draws_the_traced_values(traced, tmp_path, open_page):
    fig = traced.render(loss_chart=False)
    frames = traced.frames
    steps = fig.spec["steps"]
    assert steps == sorted(frames["i_timestep"].unique().tolist())  # every step, no decimation
    assert fig.compact is not None  # values at display precision (gpviz.html.compact)
    loaded = open_page(fig.save(tmp_path / "every_step.html"), screenshot="trace_every_step.png")
    assert loaded.console_errors == []
    assert loaded.eval(f"{FIGURE}.dataset.step") == str(steps[-1])
    keys = list(traced.expr.keys)
    members = traced.n_members
    for i in (0, len(steps) // 2, len(steps) - 1):
        loaded.eval(f"{FIGURE}.gpvizShowStep({i})")
        assert loaded.eval(f"{FIGURE}.dataset.step") == str(steps[i])
        rows = frames[frames["i_timestep"] == steps[i]].sort_values("i_model")
        for key in keys:
            got, want = drawn(loaded, key), rows[key].to_numpy()
            assert len(got) == members
            assert within_4_digits(got, want).all(), f"{key} at step {steps[i]}: {got} vs {want}"
            # the hover text prints what was drawn: min, median, max to 4 significant digits
            found = re.search(rf"values: min ({NUMBER}), median ({NUMBER}), max ({NUMBER})", tooltip(loaded, key))
            assert found, tooltip(loaded, key)
            ordered = np.sort(want)
            printed = [float(x) for x in found.groups()]
            assert within_4_digits(printed, [ordered[0], ordered[len(ordered) // 2], ordered[-1]]).all(), found.groups()
    assert loaded.console_errors == []


def test_flagged_values_stay_flagged_in_a_compact_trace(tmp_path, open_page):
    import gpytorch.kernels as gk

    expr = gpviz.kernel_expr(gk.ScaleKernel(gk.RBFKernel(ard_num_dims=2)))
    ks = list(expr.keys)  # outputscale, lengthscale[0], lengthscale[1]: log axes
    steps, members = 40, 3
    t = np.repeat(np.arange(steps), members)
    m = np.tile(np.arange(members), steps)
    base = 1.0 + 0.01 * t + 0.1 * m
    frame = pd.DataFrame({"i_timestep": t, "i_model": m, ks[0]: base, ks[1]: base * 2, ks[2]: base / 3})
    last = frame["i_timestep"] == steps - 1
    frame.loc[last & (frame["i_model"] == 0), ks[0]] = np.nan
    frame.loc[last & (frame["i_model"] == 1), ks[1]] = np.inf
    frame.loc[last & (frame["i_model"] == 2), ks[1]] = -0.5  # <= 0 on a log axis
    frame.loc[last & (frame["i_model"] == 2), ks[2]] = 0.0
    fig = R.render_frame(expr, frame, title="flags")
    assert fig.compact is not None
    loaded = open_page(fig.save(tmp_path / "flags.html"))
    assert loaded.console_errors == []
    flags = lambda k: loaded.eval(f"document.querySelector('.gpviz-param[data-key=\"{k}\"]').dataset.flags")
    assert (flags(ks[0]), flags(ks[1]), flags(ks[2])) == ("nan:1", "inf:1,nonpos:1", "nonpos:1")
    got = drawn(loaded, ks[1])
    assert got[1] == np.inf and got[2] == -0.5
    loaded.eval(f"{FIGURE}.gpvizShowStep(0)")
    assert (flags(ks[0]), flags(ks[1]), flags(ks[2])) == ("", "", "")


def long_tracer(steps: int, members: int = 60, d: int = 28) -> FitTracer:
    """A real 60-fold SingleTaskGP's tracer (30 keys) with ``steps`` recorded steps: each member moves
    a little per step until its own convergence step, then stays (as L-BFGS-B members do)."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(members, d, generator=g, dtype=torch.float64)
    folds = gen_loo_cv_folds(X, X.sum(-1, keepdim=True))
    model = SingleTaskGP(folds.train_X, folds.train_Y)
    tracer = FitTracer(ExactMarginalLogLikelihood(model.likelihood, model))
    base = tracer._recorder.binding.initial
    rng = np.random.default_rng(0)
    stop = rng.integers(steps // 10, steps, members)
    stop[0] = steps  # one member crawls to the end
    values = base.copy()
    for t in range(steps):
        moving = t < stop
        values[moving] *= np.exp(rng.normal(0.0, 0.003, values[moving].shape))
        tracer._recorder.binding.store.append(t, 0, t + 1, np.arange(members), rng.random(members), 0.01 * t, t + 1.0, values.copy())
    tracer._recorder.timeline.segments.append(Segment(0, 1, 0, 0, 0, last_step=steps))
    tracer._recorder.timeline.next_t = steps
    return tracer


def test_a_long_fit_keeps_every_step_and_plays_at_a_chosen_speed(tmp_path, open_page):
    steps = 1000
    tracer = long_tracer(steps)
    fig = tracer.render(loss_chart=False)
    assert fig.spec["steps"] == list(range(steps))
    assert len(tracer.render(max_timesteps=50, loss_chart=False).spec["steps"]) <= 50  # an explicit cap still works
    path = fig.save(tmp_path / "long.html")
    values = steps * tracer.n_members * len(tracer.expr.keys)
    assert path.stat().st_size / values < 1.5  # page bytes per traced value, everything included
    loaded = open_page(path)
    assert loaded.console_errors == []
    frames = tracer.frames
    assert loaded.eval(f"{FIGURE}.dataset.speed") == "5"  # 1,000 steps in 40 s at 5 slider units a second
    key = tracer.expr.keys[3]
    loaded.eval("document.querySelector('.timeState')._r2pState.selectTimestep(12.5)")  # slider units x speed
    assert loaded.eval(f"{FIGURE}.dataset.step") == "62"
    assert loaded.eval("document.querySelector('.slider_text').innerText") == "Step 62"
    for i in (0, 617, steps - 1):
        loaded.eval(f"{FIGURE}.gpvizShowStep({i})")
        want = frames[frames["i_timestep"] == i].sort_values("i_model")
        for k in (tracer.expr.keys[0], key, tracer.expr.keys[-1]):
            assert within_4_digits(drawn(loaded, k), want[k].to_numpy()).all(), (k, i)
    # the speed control: a <select> beside the slider
    loaded.page.select_option(".gpviz-speed select", "1")
    assert loaded.eval(f"{FIGURE}.dataset.speed") == "1"
    assert loaded.eval(f"{FIGURE}.dataset.step") == str(steps - 1)  # changing speed keeps the step shown
    loaded.eval("document.querySelector('.timeState')._r2pState.selectTimestep(12.5)")
    assert loaded.eval(f"{FIGURE}.dataset.step") == "12"
    loaded.page.select_option(".gpviz-speed select", "50")
    loaded.eval(f"{FIGURE}.gpvizShowStep(0)")
    loaded.page.locator(".slider_container_container > span:visible").click()  # play
    loaded.page.wait_for_timeout(800)
    assert int(loaded.eval(f"{FIGURE}.dataset.step")) >= 50  # 250 steps a second at 50x
    assert loaded.console_errors == []
