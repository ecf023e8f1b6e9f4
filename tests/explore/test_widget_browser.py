"""The explorer's front end (explore.js) in headless Chromium, driving the real Explorer through a test model object."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from botorch.cross_validation import efficient_loo_cv
from botorch.models import SingleTaskGP

from gpviz.explorer.widget import explore
from tests.browser_helpers import drag_right, watch_errors

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SYNCED = ["title", "segments", "params", "charts", "values", "metrics", "fitted_metrics", "curves", "near",
          "slice_units", "error", "done", "members", "member_label", "member", "request"]

# anywidget's front-end contract (get/set/on/save_changes), with save_changes forwarding the request to Python
HOST = """
async ([src, state]) => {
  const listeners = {};
  window.__state = state;
  const model = {
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; },
    on: (ev, cb) => { (listeners[ev] = listeners[ev] || []).push(cb); },
    save_changes: async () => {
      // a slow kernel, when a test asks for one; every request the page sends, in order
      (window.__sent = window.__sent || []).push(state.request);
      if (window.__latency) await new Promise((r) => setTimeout(r, window.__latency));
      const back = JSON.parse(await window.py_request(JSON.stringify({ request: state.request, member: state.member })));
      // as Backbone's model.set: every attribute first, then the change events
      const changed = Object.keys(back).filter((k) => JSON.stringify(state[k]) !== JSON.stringify(back[k]));
      for (const k of changed) state[k] = back[k];
      for (const k of changed) for (const cb of listeners["change:" + k] || []) cb();
    },
  };
  const mod = await import(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
  mod.default.render({ model, el: document.getElementById("root") });
}
"""


def _model():
    g = torch.Generator().manual_seed(5)
    X = torch.rand(14, 2, generator=g, dtype=torch.float64)
    return SingleTaskGP(X, torch.sin(4 * X).sum(-1, keepdim=True))


def _host(browser, w, errors: list):
    """A page rendering explore.js with a model object whose ``save_changes`` hands the changed traits to ``w``."""
    page = browser.new_page(viewport={"width": 900, "height": 700})
    watch_errors(page, errors)

    def py_request(changed: str) -> str:
        d = json.loads(changed)  # the traits the page sets, applied as a kernel applies a comm message
        w.member = d["member"]
        w.request = d["request"]
        return json.dumps({k: getattr(w, k) for k in SYNCED})

    page.expose_function("py_request", py_request)
    # the widget's own module and CSS: gpviz.js + explore.js, gpviz.css + explore.css
    page.set_content(f"<!doctype html><style>{w._css}</style><div id='root'></div>")
    page.evaluate(HOST, [w._esm, {k: getattr(w, k) for k in SYNCED}])
    return page


def test_dragging_a_number_sets_it_in_python_and_the_page_shows_the_new_metrics(browser, artifacts):
    model = _model()
    w = explore(model, feature_names=["a", "b"])
    fitted = dict(w.values)
    errors = []

    page = _host(browser, w, errors)
    key = "covar_module.lengthscale[1]"
    num = page.locator(f".gpx-num[data-key='{key}']")
    drag_right(page, num, (10, 30, 60), 50)
    page.wait_for_function(f"window.__state.values['{key}'] !== {fitted[key]!r}")
    page.wait_for_timeout(300)  # the last throttled request
    assert w.values[key] > fitted[key] * 1.3  # dragged right: a positive value grows by a factor
    assert all(w.values[k] == fitted[k] for k in fitted if k != key)
    # the page's LOO MSE is what Python computes on its copy for that value
    ref = explore(model, feature_names=["a", "b"])
    ref.set(key, w.values[key])
    shown = page.locator(".gpx-metrics tr[data-metric='loo_mse'] td").nth(1).inner_text()
    assert float(shown) == pytest.approx(ref.metrics["loo_mse"], rel=1e-3)
    assert float(shown) != pytest.approx(w.fitted_metrics["loo_mse"], rel=1e-3)
    assert page.locator(f".gpx-num[data-key='{key}']").inner_text() != page.locator(
        ".gpx-num[data-key='covar_module.lengthscale[0]']").inner_text()
    assert page.locator(".gpx-slice").count() == 2
    page.screenshot(path=str(artifacts / "explore_drag.png"), full_page=True)

    # a typed value outside the constraint is refused with the reason; reset brings the fitted values back
    num.dblclick()
    page.fill(".gpx-input", "-2")
    page.press(".gpx-input", "Enter")
    page.wait_for_function("document.querySelector('.gpx-error').textContent.includes('outside')")
    page.click(".gpx-reset")
    page.wait_for_function(f"window.__state.values['{key}'] === {fitted[key]!r}")
    assert w.values == pytest.approx(fitted)
    assert not errors, errors
    page.close()


def test_switching_the_member_of_a_batched_model_shows_its_own_values_and_metrics(browser, artifacts):
    g = torch.Generator().manual_seed(6)
    X = torch.rand(3, 10, 2, generator=g, dtype=torch.float64)
    model = SingleTaskGP(X, torch.sin(4 * X).sum(-1, keepdim=True))
    with torch.no_grad():  # members that differ: each its own noise
        model.likelihood.noise_covar.noise = torch.tensor([[0.01], [0.1], [0.5]], dtype=torch.float64)
    w = explore(model)
    errors = []
    page = _host(browser, w, errors)
    key = "likelihood.noise_covar.noise"
    assert page.locator(f".gpx-num[data-key='{key}']").inner_text() == "0.01"
    page.select_option(".gpx-member", "2")
    page.wait_for_function(f"window.__state.values['{key}'] > 0.4")
    assert w.state.member == 2 and w.values[key] == pytest.approx(0.5)
    assert page.locator(f".gpx-num[data-key='{key}']").inner_text() == "0.5"
    shown = page.locator(".gpx-metrics tr[data-metric='log_likelihood'] td").nth(2).inner_text()
    assert float(shown) == pytest.approx(w.fitted_metrics["log_likelihood"], rel=1e-3)
    page.screenshot(path=str(artifacts / "explore_member.png"), full_page=True)
    assert not errors, errors
    page.close()


# --- each parameter's chart: gpviz.js's own, its dot dragged along the axis ---

CHART = ".gpx-params .gpviz-param[data-key='{}']"
# per chart: the values drawn, their CSS px, the ringed member, the ghost's px, the axis' round values (gpviz.js' hooks)
DRAWN = """(el) => ({values: Array.from(el.gpvizValues), xs: Array.from(el.gpvizXs), hl: el.gpvizHighlight,
                 ghost: el.gpvizGhostX, ticks: el.gpvizTicks, drawn: el.dataset.drawn, points: el.dataset.points})"""
# RGBA of a chart's canvas pixel at CSS px [x, y] (device pixel ratio 1)
PIXEL = "(el, [x, y]) => Array.from(el.querySelector('canvas').getContext('2d').getImageData(x, y, 1, 1).data)"
EDGE, PLOT_W = 8, 150  # a chart's plot: 150 CSS px from 8 px in (gpviz.js' geometry, html/svg.py's)


def _px(axis: dict, v: float) -> float:
    """Where a value sits on a chart's axis, in CSS px from the canvas' left edge: linear in log10 on a log axis."""
    if axis["kind"] == "log":
        lo, hi = math.log10(axis["lo"]), math.log10(axis["hi"])
        return EDGE + (math.log10(v) - lo) / (hi - lo) * PLOT_W
    return EDGE + (v - axis["lo"]) / (axis["hi"] - axis["lo"]) * PLOT_W


def _loo_mse(model, key_values: dict) -> float:
    """BoTorch's efficient_loo_cv MSE (model units) on a copy of ``model`` with the lengthscales set by hand."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        ls = m.covar_module.lengthscale.clone()
        for k, v in key_values.items():
            ls[..., int(k.split("[")[1].rstrip("]"))] = v
        m.covar_module.lengthscale = ls
        res = efficient_loo_cv(m, observation_noise=True, untransform=False)
        return float(((res.posterior.mean.reshape(-1) - res.observed_Y.reshape(-1)) ** 2).mean())


def test_every_parameter_is_drawn_by_gpviz_js_and_dragging_its_dot_sets_the_value_under_the_pointer(browser, artifacts):
    model = _model()
    w = explore(model, feature_names=["a", "b"])
    fitted = dict(w.values)
    errors = []
    page = _host(browser, w, errors)
    assert page.evaluate("typeof window.gpviz.chart") == "function"  # the widget's module brought gpviz.js

    # every parameter's chart, its one dot at the fitted value by the axis' own mapping, the ghost ring on it
    for key, meta in w.charts["params"].items():
        got = page.locator(CHART.format(key)).evaluate(DRAWN)
        assert got["drawn"] == "1" and got["points"] == "1" and got["values"] == [fitted[key]]
        axis = w.charts["axes"][meta["axis"]]
        assert got["xs"][0] == pytest.approx(_px(axis, fitted[key]), abs=1e-9)
        assert got["ghost"] == pytest.approx(got["xs"][0], abs=1e-9)
    assert page.locator(".gpx-params canvas").count() == len(fitted) == 4

    key = "covar_module.lengthscale[1]"
    el = page.locator(CHART.format(key))
    meta = w.charts["params"][key]
    axis = w.charts["axes"][meta["axis"]]
    assert axis["kind"] == "log"
    got = el.evaluate(DRAWN)
    # the chart's round values are grey lines at the px the axis mapping gives them (Python's, from the axis ends)
    assert len(got["ticks"]) >= 2
    for t in got["ticks"]:
        x = round(_px(axis, t))
        if abs(x - got["xs"][0]) > 6 and (meta["prior"] is None or abs(x - _px(axis, meta["prior"])) > 3):
            assert el.evaluate(PIXEL, [x, 1])[:3] == [0xc4, 0xc4, 0xc4], t

    # drag the dot onto the tick farthest from it: the value under the pointer goes to Python, throttled
    canvas = page.locator(f"{CHART.format(key)} canvas")
    box = canvas.bounding_box()
    y = box["y"] + box["height"] / 2
    target = max(got["ticks"], key=lambda t: abs(_px(axis, t) - got["xs"][0]))
    page.mouse.move(box["x"] + got["xs"][0], y)
    page.mouse.down()
    for f in (0.25, 0.5, 0.75, 1.0):
        page.mouse.move(box["x"] + got["xs"][0] + f * (_px(axis, target) - got["xs"][0]), y)
        page.wait_for_timeout(40)
    page.mouse.up()
    page.wait_for_function(f"window.__state.values['{key}'] !== {fitted[key]!r}")
    page.wait_for_timeout(400)  # the last throttled request
    page.wait_for_function(f"window.__state.done === {w.done}")
    # the value under the pointer: the tick's value, to within the half pixel a pointer position may be rounded by
    half_px = 0.5 / PLOT_W * (math.log10(axis["hi"]) - math.log10(axis["lo"]))
    assert abs(math.log10(w.values[key]) - math.log10(target)) <= half_px
    assert all(w.values[k] == fitted[k] for k in fitted if k != key)
    # the page's LOO MSE is BoTorch's efficient_loo_cv on a copy of the model with that value
    shown = page.locator(".gpx-metrics tr[data-metric='loo_mse'] td").nth(1).inner_text()
    assert float(shown) == pytest.approx(_loo_mse(model, {key: w.values[key]}), rel=1e-3)
    assert float(shown) != pytest.approx(w.fitted_metrics["loo_mse"], rel=1e-3)
    assert page.locator(f".gpx-num[data-key='{key}']").get_attribute("data-value") == repr(w.values[key])
    # the dot moved to the new value, the ghost stayed at the fitted one and is drawn there (a grey ring)
    after = el.evaluate(DRAWN)
    assert after["xs"][0] == pytest.approx(_px(axis, w.values[key]), abs=1e-9)
    assert after["ghost"] == pytest.approx(_px(axis, fitted[key]), abs=1e-9)
    assert abs(after["xs"][0] - after["ghost"]) > 20
    mid = round(box["height"] / 2 - 0.5)
    ring = [el.evaluate(PIXEL, [round(after["ghost"]) + dx, mid]) for dx in (-5, -4, 4, 5)]
    assert any(p[0] == p[1] == p[2] and p[0] < 190 for p in ring), ring  # grey, darker than the strip (#e6e6e6)
    page.screenshot(path=str(artifacts / "explore_chart_drag.png"), full_page=True)

    # reset: the dot is back on the ghost
    page.click(".gpx-reset")
    page.wait_for_function(f"window.__state.values['{key}'] === {fitted[key]!r}")
    back = el.evaluate(DRAWN)
    assert w.values == fitted and back["xs"][0] == pytest.approx(back["ghost"], abs=1e-9)
    assert not errors, errors
    page.close()


def test_a_batched_models_chart_rings_the_explored_member_among_the_others(browser):
    g = torch.Generator().manual_seed(6)
    X = torch.rand(3, 10, 2, generator=g, dtype=torch.float64)
    model = SingleTaskGP(X, torch.sin(4 * X).sum(-1, keepdim=True))
    noise = [0.01, 0.1, 0.5]
    with torch.no_grad():
        model.likelihood.noise_covar.noise = torch.tensor([[v] for v in noise], dtype=torch.float64)
    w = explore(model)
    errors = []
    page = _host(browser, w, errors)
    key = "likelihood.noise_covar.noise"
    el = page.locator(CHART.format(key))
    axis = w.charts["axes"][w.charts["params"][key]["axis"]]
    got = el.evaluate(DRAWN)
    assert got["values"] == pytest.approx(noise) and got["hl"] == 0
    assert got["xs"] == pytest.approx([_px(axis, v) for v in noise], abs=1e-6)
    page.select_option(".gpx-member", "2")
    page.wait_for_function(f"window.__state.values['{key}'] > 0.4")
    got = el.evaluate(DRAWN)
    assert got["hl"] == 2 and got["ghost"] == pytest.approx(_px(axis, 0.5), abs=1e-6)
    # member 2 set by hand on the page: its dot moves, the others stay, the ghost stays at its fitted value
    num = page.locator(f".gpx-num[data-key='{key}']")
    num.dblclick()
    page.fill(".gpx-input", "0.2")
    page.press(".gpx-input", "Enter")
    page.wait_for_function(f"window.__state.values['{key}'] === 0.2")
    got = el.evaluate(DRAWN)
    assert got["values"] == pytest.approx([0.01, 0.1, 0.2])
    assert got["xs"][2] == pytest.approx(_px(axis, 0.2), abs=1e-6)
    assert got["ghost"] == pytest.approx(_px(axis, 0.5), abs=1e-6)
    assert not errors, errors
    page.close()


def test_a_dot_drag_is_throttled_as_a_number_drag_one_request_in_flight_then_the_latest(browser):
    w = explore(_model(), feature_names=["a", "b"])
    fitted = dict(w.values)
    errors = []
    page = _host(browser, w, errors)
    page.evaluate("() => { window.__latency = 300; }")  # each answer takes 300 ms
    key = "covar_module.lengthscale[0]"
    axis = w.charts["axes"][w.charts["params"][key]["axis"]]
    box = page.locator(f"{CHART.format(key)} canvas").bounding_box()
    x0, y = box["x"] + _px(axis, fitted[key]), box["y"] + box["height"] / 2
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x0 + 50, y, steps=25)  # 25 pointer moves while the first request is answered
    page.mouse.up()
    page.wait_for_function("window.__sent.length && window.__sent.at(-1).final === true")
    page.wait_for_function(f"window.__state.done === window.__sent.at(-1).seq")
    sent = page.evaluate("window.__sent")
    # the first move went out at once, the moves meanwhile were dropped but the latest, the gesture's end last
    assert 2 <= len(sent) <= 4, sent
    assert [r["seq"] for r in sent] == list(range(1, len(sent) + 1))
    assert sent[-1]["value"] == w.values[key]
    lo, hi = math.log10(axis["lo"]), math.log10(axis["hi"])
    under = 10 ** (lo + (x0 + 50 - box["x"] - EDGE) / PLOT_W * (hi - lo))  # the value under the pointer at the end
    assert abs(math.log10(w.values[key]) - math.log10(under)) <= 0.5 / PLOT_W * (hi - lo)
    assert not errors, errors
    page.close()
