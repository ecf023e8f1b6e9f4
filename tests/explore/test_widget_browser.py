"""The explorer's front end (explore.js) in headless Chromium, driving the real Explorer through a test model object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from botorch.models import SingleTaskGP

import gpviz
from gpviz.explorer.widget import explore

pytestmark = [pytest.mark.browser, pytest.mark.slow]
JS = Path(gpviz.__file__).parent / "static" / "explore.js"
CSS = Path(gpviz.__file__).parent / "static" / "explore.css"
SYNCED = ["title", "segments", "params", "values", "metrics", "fitted_metrics", "curves", "near", "slice_units",
          "error", "done",
          "members", "member_label", "member", "request"]

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
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))

    def py_request(changed: str) -> str:
        d = json.loads(changed)  # the traits the page sets, applied as a kernel applies a comm message
        w.member = d["member"]
        w.request = d["request"]
        return json.dumps({k: getattr(w, k) for k in SYNCED})

    page.expose_function("py_request", py_request)
    page.set_content(f"<style>{CSS.read_text()}</style><div id='root'></div>")
    page.evaluate(HOST, [JS.read_text(), {k: getattr(w, k) for k in SYNCED}])
    return page


def test_dragging_a_number_sets_it_in_python_and_the_page_shows_the_new_metrics(browser, artifacts):
    model = _model()
    w = explore(model, feature_names=["a", "b"])
    fitted = dict(w.values)
    errors = []

    page = _host(browser, w, errors)
    key = "covar_module.lengthscale[1]"
    num = page.locator(f".gpx-num[data-key='{key}']")
    box = num.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    for dx in (10, 30, 60):
        page.mouse.move(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2)
        page.wait_for_timeout(50)
    page.mouse.up()
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
