"""The animated fit page in a real headless Chromium: loads cleanly, steps, and draws the traced values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.priors.verdicts import HELD
from gpviz.html.compact import MAX_SHIFT_PX

pytestmark = pytest.mark.browser

N = 8
EDGE, PLOT_W = 8.0, 150.0  # the page's axis geometry (gpviz.js): CSS px


@pytest.fixture(scope="module")
def traced():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(N, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1]) + 0.5 * X[:, 1:] + 0.05 * torch.randn(N, 1, generator=g, dtype=torch.float64)
    folds = gen_loo_cv_folds(X, Y)
    torch.manual_seed(1)
    model = SingleTaskGP(folds.train_X, folds.train_Y)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with gpviz.trace_fit(mll, feature_names=["x0", "x1"]) as tracer:
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 30}})
    return tracer


def expected_x(value: float, axis: dict) -> float:
    """Where the page puts ``value`` on ``axis`` (linear or true log10)."""
    if axis["kind"] == "log":
        a, b, v = math.log10(axis["lo"]), math.log10(axis["hi"]), math.log10(value)
    else:
        a, b, v = axis["lo"], axis["hi"], value
    return EDGE + (v - a) / ((b - a) or 1.0) * PLOT_W


def test_animated_fit_page_steps_through_the_traced_values(traced, tmp_path, open_page):
    tracer = traced
    fig = tracer.render()
    assert fig.mode == "timeline"
    path = fig.save(tmp_path / "fit.html")
    assert path.stat().st_size < 10e6
    loaded = open_page(path, screenshot="fit_trace.png")
    assert loaded.console_errors == []
    steps = fig.spec["steps"]
    frames = tracer.frames
    assert steps == sorted(frames["i_timestep"].unique().tolist())  # short fit: no decimation
    figure = "document.querySelector('.gpviz-figure')"
    assert loaded.eval(f"{figure}.dataset.step") == str(steps[-1])  # opens at the end of the fit
    keys = list(tracer.expr.keys)

    def xs(key):
        return loaded.eval(f"Array.from(document.querySelector('.gpviz-param[data-key=\"{key}\"]').gpvizXs)")

    at_end = {k: xs(k) for k in keys}
    for i in (0, len(steps) // 2, len(steps) - 1):
        loaded.eval(f"document.querySelector('.timeState')._r2pState.selectTimestep({i})")
        assert loaded.eval(f"{figure}.dataset.step") == str(steps[i])
        rows = frames[frames["i_timestep"] == steps[i]].sort_values("i_model")
        for key in keys:
            got = xs(key)
            assert len(got) == N  # one dot per member
            axis = fig.spec["axes"][fig.spec["params"][key]["axis"]]
            want = [expected_x(v, axis) for v in rows[key]]
            # a trace travels at display precision: dots within MAX_SHIFT_PX of the exact values' positions
            np.testing.assert_allclose(got, want, atol=MAX_SHIFT_PX, err_msg=f"{key} at step {steps[i]}")
    # stepping changed the drawn positions: the start differs from the end for a learned parameter
    loaded.eval("document.querySelector('.timeState')._r2pState.selectTimestep(0)")
    assert any(not np.allclose(xs(k), at_end[k]) for k in keys)
    assert loaded.console_errors == []


def test_long_fits_are_decimated_for_the_page(traced, tmp_path, open_page):
    fig = traced.render(max_timesteps=5)
    steps = fig.spec["steps"]
    frames = traced.frames
    assert len(steps) <= 5 and steps[0] == 0 and steps[-1] == frames["i_timestep"].max()
    loaded = open_page(fig.save(tmp_path / "fit_decimated.html"))
    assert loaded.console_errors == []
    loaded.eval("document.querySelector('.timeState')._r2pState.selectTimestep(1)")
    assert loaded.eval("document.querySelector('.gpviz-figure').dataset.step") == str(steps[1])


def test_fit_page_marks_prior_modes_and_tints_what_prior_pull_holds_at_the_end(traced, tmp_path, open_page):
    from gpviz.priors.verdicts import key_verdicts

    expected = {k for k, v in key_verdicts(gpviz.prior_pull(traced.mll)).items() if v == HELD}
    assert expected, "fixture: the default noise prior holds the LOO folds' noise"
    fig = traced.render(loss_chart=False)
    params = fig.spec["params"]
    assert {k for k, p in params.items() if p["held"]} == expected
    assert all(p["prior"] is not None for k, p in params.items() if "lengthscale" in k or "noise" in k)
    assert all(p["lower"] is not None for k, p in params.items() if "lengthscale" in k or "noise" in k)
    assert not any(p["held"] for p in traced.render(loss_chart=False, verdicts=False).spec["params"].values())
    loaded = open_page(fig.save(tmp_path / "fit_held.html"), screenshot="fit_trace_held.png")
    assert loaded.console_errors == []
    tinted = loaded.eval("[...document.querySelectorAll('.gpviz-param.gpviz-held')].map(e => e.dataset.key)")
    assert set(tinted) == expected
    assert loaded.eval("!!document.querySelector('.gpviz-legend .gpviz-swatch-held')")
    assert loaded.eval("!!document.querySelector('.gpviz-legend .gpviz-swatch-prior')")
