"""The fit page's loss chart in a real headless Chromium: drawn by gpviz.js, cursor follows the step,
hovering a line rings that member's dots and hovering a dot highlights its line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.html.compact import MAX_SHIFT_PX, PLOT_W, decode_compact

pytestmark = pytest.mark.browser

N = 6


@pytest.fixture(scope="module")
def tracer():
    g = torch.Generator().manual_seed(3)
    X = torch.rand(N, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1]) + 0.05 * torch.randn(N, 1, generator=g, dtype=torch.float64)
    folds = gen_loo_cv_folds(X, Y)
    torch.manual_seed(1)
    model = SingleTaskGP(folds.train_X, folds.train_Y)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with gpviz.trace_fit(mll, feature_names=["x0", "x1"]) as tr:
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 40}})
    return tr


LOSS = "document.querySelector('.gpviz-loss')"
FIG = "document.querySelector('.gpviz-figure')"


def test_loss_cursor_follows_the_step_and_lines_ring_dots(tracer, tmp_path, open_page):
    fig = tracer.render()
    assert fig.spec["loss"]["members"] == N
    assert "loss per member against" not in fig.html()  # the page draws the loss itself, no PNG of it
    loaded = open_page(fig.save(tmp_path / "fit.html"), screenshot="fit_loss_chart.png")
    assert loaded.console_errors == []
    assert loaded.eval(f"{LOSS}.dataset.drawn") == "1"
    assert loaded.eval("document.querySelectorAll('.gpviz-param[data-drawn=\"1\"]').length") == len(fig.keys)
    # the fit page has its notation key too: exactly the functions of a SingleTaskGP's expression
    fns = loaded.eval("Array.from(document.querySelectorAll('.gpviz-notation li')).map(e => e.dataset.fn)")
    assert sorted(fns) == ["compare", "norm_l2", "rbf"]
    steps = fig.spec["steps"]
    xs = []
    for i in (0, len(steps) // 2, len(steps) - 1):
        loaded.eval(f"{FIG}.gpvizShowStep({i})")
        assert loaded.eval(f"{LOSS}.dataset.cursorStep") == str(steps[i])
        xs.append(loaded.eval(f"{LOSS}.gpvizCursorX"))
    assert xs[0] < xs[1] < xs[2]  # the cursor's pixel position moves with the step
    # the cursor element itself moved on screen
    left = loaded.eval(f"{LOSS}.querySelector('.gpviz-loss-cursor').getBoundingClientRect().left")
    loaded.eval(f"{FIG}.gpvizShowStep(0)")
    assert loaded.eval(f"{LOSS}.querySelector('.gpviz-loss-cursor').getBoundingClientRect().left") < left

    # hover member 2's line with a real mouse: its dots ring in every parameter chart
    page = loaded.page
    member = 2
    t_mid = steps[len(steps) // 2]
    pt = loaded.eval(f"(function(){{var b={LOSS}.querySelector('canvas').getBoundingClientRect();"
                     f"var p={LOSS}.gpvizPoint({member},{t_mid});return [b.left+p.x,b.top+p.y];}})()")
    page.mouse.move(pt[0], pt[1])
    page.wait_for_timeout(100)
    hl = loaded.eval(f"{LOSS}.dataset.highlight")
    assert hl != "-1"
    rings = loaded.eval("Array.from(document.querySelectorAll('.gpviz-param')).map(e => e.gpvizHighlight)")
    assert rings and set(rings) == {int(hl)}
    # the line picked is the one passing nearest the pointer: member 2 unless another line lies within a pixel
    p_hl = loaded.eval(f"{LOSS}.gpvizPoint({hl},{t_mid})")
    assert abs(p_hl["y"] - (pt[1] - loaded.eval(f"{LOSS}.querySelector('canvas').getBoundingClientRect().top"))) <= 1.5

    # and back: hovering a dot highlights its member's loss line
    page.mouse.move(0, 0)
    page.wait_for_timeout(100)
    assert loaded.eval(f"{LOSS}.dataset.highlight") == "-1"
    key = fig.keys[0]
    el = f"document.querySelector('.gpviz-param[data-key=\"{key}\"]')"
    dot = loaded.eval(f"(function(){{var e={el},c=e.querySelector('canvas').getBoundingClientRect();"
                      f"return [c.left+e.gpvizXs[4],c.top+e.gpvizYs[4]];}})()")
    page.mouse.move(dot[0], dot[1])
    page.wait_for_timeout(100)
    got = loaded.eval(f"{el}.gpvizHighlight")
    assert got >= 0
    assert loaded.eval(f"{LOSS}.dataset.highlight") == str(got)
    assert loaded.console_errors == []


def test_converged_members_are_in_the_spec(tracer):
    spec = tracer.render().spec["loss"]
    summ = tracer.summary()
    assert sum(c is not None for c in spec["converged"]) == int(summ["converged_step"].notna().sum())


def test_loss_points_travel_in_their_own_payload(tracer):
    """Every recorded loss, decoded as the page decodes it: steps and members exact, losses within a
    twentieth of a pixel of the chart's loss range (the parameter columns have another length)."""
    fig = tracer.render()
    got = decode_compact(fig.loss.text, fig.loss.layout)
    series = tracer.loss_series()
    np.testing.assert_array_equal(got["t"], series["t"])
    np.testing.assert_array_equal(got["m"], series["m"])
    span = series["v"].max() - series["v"].min()
    assert np.abs(got["v"] - series["v"]).max() <= MAX_SHIFT_PX / PLOT_W * span
    assert 'class="gpviz-loss-data"' in fig.html()
