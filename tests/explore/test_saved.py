"""A saved notebook shows the explorer's last state without a kernel: executed by nbclient, exported by nbconvert
(no widget state saved, so the static picture beside the widget view is what the page shows), opened in Chromium."""

from __future__ import annotations

import json
import math
import re
import urllib.parse

import pytest
import torch
from botorch.models import SingleTaskGP

from gpviz.explorer.snapshot import fmt, snapshot_html
from gpviz.explorer.state import ExploreState
from gpviz.explorer.widget import explore
from tests.browser_helpers import watch_errors
from tests.extras import need
from tests.test_notebooks import kernel_manager_factory  # noqa: F401  (a fixture)

KEY = "covar_module.lengthscale[1]"
MODEL = """import torch
from botorch.models import SingleTaskGP
g = torch.Generator().manual_seed(5)
X = torch.rand(14, 2, generator=g, dtype=torch.float64)
model = SingleTaskGP(X, torch.sin(4 * X).sum(-1, keepdim=True))
"""


def _model() -> SingleTaskGP:
    scope: dict = {}
    exec(MODEL, scope)  # the same model as the notebook's cell
    return scope["model"]


def test_the_bundle_holds_the_widget_view_and_a_static_picture_of_the_current_state():
    w = explore(_model(), feature_names=["a", "b"])
    w.set(KEY, 0.9)
    data, _ = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    html = data["text/html"]
    assert f'data-key="{KEY}" data-value="0.9"' in html
    # the LOO MSE row shows Python's value now and the fitted one
    row = re.search(r'<tr data-metric="loo_mse">(.*?)</tr>', html).group(1)
    assert fmt(w.metrics["loo_mse"]) in row and fmt(w.fitted_metrics["loo_mse"]) in row
    assert html.count('class="gpx-slice"') == 2 and "<svg" not in html  # images: kept by an untrusted JupyterLab
    assert "<script" not in html and "<style" not in html



def _chart_uris(html: str) -> dict[str, str]:
    """key -> the data URI of its chart picture, as the saved picture carries them."""
    return dict(re.findall(r'<img class="gpx-param-chart" data-key="([^"]*)" alt="[^"]*" src="([^"]*)"', html))

def test_the_picture_draws_each_parameters_chart_at_its_value_now():
    w = explore(_model(), feature_names=["a", "b"])
    fitted = dict(w.values)
    w.set(KEY, 0.9)
    html = w.snapshot()
    charts = _chart_uris(html)
    assert set(charts) == set(fitted)
    for key, uri in charts.items():
        assert uri.startswith("data:image/svg+xml,")
        svg = urllib.parse.unquote(uri.split(",", 1)[1])
        # the one dot (a round-capped zero-length stroke) from the strip's left end, as the axis maps the value
        strip = float(re.search(r"<rect x='([\d.]+)' y='0' width='150'", svg).group(1))
        dots = re.findall(r"<path d='M([\d.]+) [\d.]+h0'/>", svg)
        axis = w.charts["axes"][w.charts["params"][key]["axis"]]
        v = 0.9 if key == KEY else fitted[key]
        share = ((math.log10(v) - math.log10(axis["lo"])) / (math.log10(axis["hi"]) - math.log10(axis["lo"]))
                 if axis["kind"] == "log" else (v - axis["lo"]) / (axis["hi"] - axis["lo"]))
        assert len(dots) == 1 and float(dots[0]) - strip == pytest.approx(150 * share, abs=0.5), key


def test_the_picture_escapes_what_it_prints():
    html = snapshot_html("<b>t</b>", [{"text": "<x>"}, {"key": "k"}], [{"key": "k", "label": "k", "fitted": 1.0}],
                         {"k": 2.0}, {}, {}, [], [])
    assert "<b>" not in html and "&lt;x&gt;" in html and 'data-value="2.0"' in html


def test_fmt_matches_the_pages_numbers():
    # explore.js: Number(v.toPrecision(4)).toString(), toExponential(3) outside [1e-3, 1e5)
    assert [fmt(v) for v in (0.29824, 1.0, 12345.6, 2e-5, -3.5e7, 0.0, None)] == [
        "0.2982", "1", "12350", "2.000e-5", "-3.500e+7", "0", "–"]


@pytest.mark.slow
@pytest.mark.browser
def test_a_saved_notebook_shows_the_last_state_without_a_kernel(kernel_manager_factory, browser, artifacts,  # noqa: F811
                                                                 tmp_path):
    nbformat = need("nbformat", "test")
    nbclient = need("nbclient", "test")
    nbconvert = need("nbconvert", "test")
    cells = [MODEL + "from gpviz.explorer.widget import explore\nw = explore(model, feature_names=['a', 'b'])\nw",
             f"w.set({KEY!r}, 0.9)"]  # a later cell changes the value: the first cell's output follows
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    # as JupyterLab saves by default: outputs without the widgets' state (with it, nbconvert's page would load the
    # widget manager from a CDN instead of showing the picture)
    nbclient.NotebookClient(nb, km=kernel_manager_factory(), kernel_name="gpviz-nb", timeout=120,
                            store_widget_state=False, resources={"metadata": {"path": str(tmp_path)}}).execute()
    nbformat.write(nb, tmp_path / "saved.ipynb")
    saved = nbformat.read(tmp_path / "saved.ipynb", as_version=4)
    html, _ = nbconvert.HTMLExporter().from_notebook_node(saved)
    page_path = tmp_path / "saved.html"
    page_path.write_text(html, encoding="utf-8")

    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors = watch_errors(page)
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page.goto(page_path.as_uri())
    num = page.locator(f".gpx-static .gpx-num[data-key='{KEY}']")
    assert num.count() == 1 and float(num.get_attribute("data-value")) == 0.9 and num.inner_text() == "0.9"
    # the LOO MSE shown is what Python computes at that value, on the same model
    state = ExploreState(_model(), feature_names=["a", "b"])
    state.set(KEY, 0.9)
    shown = page.locator(".gpx-static tr[data-metric='loo_mse'] td").nth(1).inner_text()
    assert float(shown) == pytest.approx(state.metrics().loo_mse, rel=1e-3)
    assert float(shown) != pytest.approx(state.fitted_metrics.loo_mse, rel=1e-3)
    assert page.locator(".gpx-static img.gpx-slice").count() == 2
    assert all(page.locator(".gpx-static img.gpx-slice").evaluate_all("els => els.map(e => e.naturalWidth > 0)"))
    page.screenshot(path=str(artifacts / "explore_saved.png"), full_page=True)
    # offline: only nbconvert's own template assets (MathJax, require.js from a CDN) fail to load, nothing of ours
    assert all(u.startswith("https://cdnjs.cloudflare.com/") for u in failed), failed
    assert [e for e in errors if e != "Failed to load resource: net::ERR_FAILED"] == [], errors
    assert len(errors) <= len(failed)
    page.close()
    json.dumps(saved)  # the saved notebook is plain JSON


def test_the_picture_keeps_each_fitted_value_as_a_ring_where_the_axis_puts_it():
    w = explore(_model(), feature_names=["a", "b"])
    fitted = dict(w.values)
    w.set(KEY, 0.9)
    html = w.snapshot()
    charts = _chart_uris(html)
    for key, uri in charts.items():
        svg = urllib.parse.unquote(uri.split(",", 1)[1])
        strip = float(re.search(r"<rect x='([\d.]+)' y='0' width='150'", svg).group(1))
        rings = re.findall(r"<circle class='gpx-ghost' cx='([\d.]+)' cy='([\d.]+)' r='[\d.]+' fill='none'", svg)
        axis = w.charts["axes"][w.charts["params"][key]["axis"]]
        v = fitted[key]  # the value the model came with, not the one set
        share = ((math.log10(v) - math.log10(axis["lo"])) / (math.log10(axis["hi"]) - math.log10(axis["lo"]))
                 if axis["kind"] == "log" else (v - axis["lo"]) / (axis["hi"] - axis["lo"]))
        assert len(rings) == 1 and float(rings[0][0]) - strip == pytest.approx(150 * share, abs=0.06), key
        assert float(rings[0][1]) == 7.0  # the middle of the 14 px strip
        if key == KEY:  # the dot moved away from the ring
            dot = float(re.search(r"<path d='M([\d.]+) [\d.]+h0'/>", svg).group(1))
            assert abs(dot - float(rings[0][0])) > 1
