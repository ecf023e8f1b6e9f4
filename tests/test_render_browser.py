"""Rendered pages in a real headless Chromium: drawn placeholders, true log axes, negatives, bands, timeline, injection."""

from __future__ import annotations

import importlib
import math
import re
import urllib.parse

import gpytorch.kernels as gk
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
from gpviz.html import svg as S  # noqa: E402
from gpviz.html.encode import encode_column  # noqa: E402
from tests.html.test_svg import dot_centres  # noqa: E402
from tests.extras import need

pytestmark = pytest.mark.browser

INJECTION = "</script><script>window.__pwned=1</script>"
TEMPLATE = "b`${window.__pwned=2}`"

ALL_DRAWN = """() => [...document.querySelectorAll('.gpviz-param')].map(e => ({
    key: e.dataset.key, drawn: e.dataset.drawn, points: +e.dataset.points, flags: e.dataset.flags,
    canvas: !!e.querySelector('canvas'), text: e.innerText}))"""

# RGBA of the canvas pixel under row i's dot (CSS px -> device px).
PIXEL = """([key, i]) => {
    const el = document.querySelector(`.gpviz-param[data-key="${key}"]`), c = el.querySelector('canvas');
    const dpr = c.width / parseFloat(c.style.width);
    const d = c.getContext('2d').getImageData(Math.round(el.gpvizXs[i] * dpr), Math.round(el.gpvizYs[i] * dpr), 1, 1).data;
    return Array.from(d);
}"""


def _xs(page, key):
    return page.eval(f"Array.from(document.querySelector('.gpviz-param[data-key=\"{key}\"]').gpvizXs)")


def _is_dot(rgba):
    r, g, b, a = rgba
    return a > 200 and b > r + 40  # blue dot over the grey strip


def _data(n=8, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    return X, torch.sin(3 * X[:, :1]) + 0.1 * torch.randn(n, 1, generator=g, dtype=torch.float64)


def _check_page(loaded, n_placeholders=None):
    assert loaded.console_errors == []
    rows = loaded.eval(ALL_DRAWN)
    assert rows and all(r["drawn"] == "1" and r["canvas"] for r in rows), rows
    if n_placeholders is not None:
        assert len(rows) == n_placeholders
    assert loaded.eval("window.__pwned") is None
    return rows


def test_single_model_log_axis_negative_mean_and_injection(tmp_path, open_page):
    X, Y = _data()
    model = SingleTaskGP(X, Y, covar_module=gk.ScaleKernel(gk.MaternKernel(ard_num_dims=3)))
    with torch.no_grad():
        model.covar_module.base_kernel.lengthscale = torch.tensor([[0.1, 1.0, 10.0]])
        model.mean_module.constant.fill_(-0.7)
    fig = gpviz.render(model, feature_names=["a", INJECTION, TEMPLATE], title="single " + INJECTION)
    loaded = open_page(fig.save(tmp_path / "single.html"), screenshot="render_single.png")
    rows = _check_page(loaded, len(gpviz.model_expr(model).keys))
    assert all(r["points"] == 1 for r in rows)
    text = loaded.eval("document.body.innerText")
    assert INJECTION in text and TEMPLATE in text  # shown as text, not run

    # log axis: pixel positions linear in log10(value)
    keys = [f"covar_module.base_kernel.lengthscale[{i}]" for i in range(3)]
    x = [_xs(loaded, k)[0] for k in keys]
    assert x[0] < x[1] < x[2]
    assert (x[1] - x[0]) == pytest.approx(x[2] - x[1], abs=0.5)
    axis = fig.spec["axes"][fig.spec["params"][keys[0]]["axis"]]
    px_per_decade = 150 / (math.log10(axis["hi"]) - math.log10(axis["lo"]))
    assert x[1] - x[0] == pytest.approx(px_per_decade, abs=0.5)
    for k in keys:
        assert _is_dot(loaded.page.evaluate(PIXEL, [k, 0]))

    # the negative mean is drawn left of zero, inside the plot
    mean = "mean_module.constant"
    mx = _xs(loaded, mean)[0]
    ax = fig.spec["axes"][fig.spec["params"][mean]["axis"]]
    zero_x = 8 + (0 - ax["lo"]) / (ax["hi"] - ax["lo"]) * 150
    assert 8 <= mx < zero_x - 10
    assert _is_dot(loaded.page.evaluate(PIXEL, [mean, 0]))
    assert "-0.7" in loaded.eval(f"document.querySelector('.gpviz-param[data-key=\"{mean}\"]').innerText")


@pytest.mark.slow
def test_batched_loo_folds_one_dot_per_fold(tmp_path, open_page):
    X, Y = _data(n=8, d=2)
    folds = gen_loo_cv_folds(X, Y)
    model = SingleTaskGP(folds.train_X, folds.train_Y)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    fig = gpviz.render(model)
    loaded = open_page(fig.save(tmp_path / "batch.html"), screenshot="render_batch.png")
    rows = _check_page(loaded, len(gpviz.model_expr(model).keys))
    assert all(r["points"] == 8 for r in rows), rows
    summary = loaded.eval("Object.values(window.gpvizSummary)[0]")
    assert summary["mode"] == "batch" and summary["drawn"] == summary["placeholders"]
    frame = gpviz.parameters(model)
    key = "covar_module.lengthscale[0]"
    xs = _xs(loaded, key)
    # same order on screen as in value (a log axis is monotone)
    assert np.all(np.diff(np.array(xs)[np.argsort(frame[key].to_numpy())]) >= -1e-6)
    drawn = sum(_is_dot(loaded.page.evaluate(PIXEL, [key, i])) for i in range(8))
    assert drawn >= 6  # overlapping translucent dots may blend


def test_configuration_list_has_labelled_bands_top_to_bottom(tmp_path, open_page):
    rows, sizes = [], [6, 10, 14]
    for c, n in enumerate(sizes):
        # three repeats of one size as one batched model; values spread as fits would spread them
        Xs, Ys = zip(*(_data(n=n, d=2, seed=10 * c + r) for r in range(3)))
        m = SingleTaskGP(torch.stack(Xs), torch.stack(Ys))
        g = torch.Generator().manual_seed(c)
        with torch.no_grad():
            m.covar_module.lengthscale = 0.2 * (c + 1) * torch.exp(torch.randn(3, 1, 2, generator=g))
            m.mean_module.constant.copy_(torch.randn(m.mean_module.constant.shape, generator=g))
        rows.append(gpviz.parameters(m).assign(i_config=c))
    frame = pd.concat(rows, ignore_index=True)
    expr = gpviz.model_expr(m)
    fig = R.render_frame(expr, frame, info=gpviz.parameters(m, long=True), title="sizes",
                         config_labels=[f"n = {n}" for n in sizes])
    loaded = open_page(fig.save(tmp_path / "configs.html"), screenshot="render_configs.png")
    out = _check_page(loaded, len(expr.keys))
    assert all(r["points"] == 9 for r in out)
    band = fig.spec["configs"]["band"]
    assert band >= 4
    labels = loaded.eval("""() => { const e = document.querySelector('.gpviz-param .gpviz-band-labels');
        return {lines: e.innerText.split('\\n'), height: e.getBoundingClientRect().height,
                canvas: e.parentNode.querySelector('canvas').getBoundingClientRect().height}; }""")
    assert labels["lines"] == ["n = 6", "n = 10", "n = 14"]  # one line per band, top to bottom
    assert labels["height"] == labels["canvas"] == 3 * band
    key = "covar_module.lengthscale[0]"
    ys = loaded.eval(f"Array.from(document.querySelector('.gpviz-param[data-key=\"{key}\"]').gpvizYs)")
    assert ys == [band * (c + 0.5) for c in range(3) for _ in range(3)]  # config c in band c, top to bottom
    assert loaded.eval(f"document.querySelector('.gpviz-param[data-key=\"{key}\"] canvas').style.height") \
        == f"{3 * band}px"


def test_timeline_plays_sorted_steps_from_an_unsorted_frame(tmp_path, open_page):
    expr = gpviz.kernel_expr(gk.ScaleKernel(gk.RBFKernel()))
    ks = list(expr.keys)
    steps = range(12)
    frame = pd.DataFrame([{"i_timestep": t, "i_model": 0, ks[0]: 1.0 + t, ks[1]: 0.1 * (t + 1)} for t in steps])
    frame = frame.sample(frac=1.0, random_state=0)  # rows2prose would sort this column in place
    fig = R.render_frame(expr, frame, title="timeline")
    loaded = open_page(fig.save(tmp_path / "timeline.html"), screenshot="render_timeline.png")
    _check_page(loaded, 2)
    value = f"document.querySelector('.gpviz-param[data-key=\"{ks[0]}\"] .gpviz-value').innerText"
    assert loaded.eval("document.querySelector('.gpviz-figure').dataset.step") == "11"
    assert loaded.eval(value) == "12"
    assert loaded.eval("document.querySelectorAll('input[type=range]').length") == 1
    loaded.eval("document.querySelector('.timeState')._r2pState.selectTimestep(3)")
    assert loaded.eval(value) == "4" and loaded.eval(
        "document.querySelector('.gpviz-figure').dataset.step") == "3"
    # scrub with rows2prose's slider: the step, the values and the slider's label follow
    loaded.eval("(() => { const s = document.querySelector('input[type=range]'); s.value = 5; "
                "s.dispatchEvent(new Event('input')); })()")
    assert loaded.eval("document.querySelector('.gpviz-figure').dataset.step") == "5" and loaded.eval(value) == "6"
    assert loaded.eval("document.querySelector('.slider_text').innerText") == "Step 5"
    loaded.eval("document.querySelector('.timeState')._r2pState.selectTimestep(11)")
    # replay from the start with rows2prose's own control (the restart button shows at the last step)
    loaded.page.locator(".slider_container_container > span:visible").click()
    loaded.page.wait_for_timeout(700)
    step, shown = loaded.eval(f"[document.querySelector('.gpviz-figure').dataset.step, {value}]")  # one read
    assert 1 <= int(step) <= 11
    assert shown == str(int(step) + 1)
    assert loaded.console_errors == []


def test_bad_values_are_drawn_and_flagged(tmp_path, open_page):
    expr = gpviz.kernel_expr(gk.ScaleKernel(gk.RBFKernel(ard_num_dims=3)))
    ks = list(expr.keys)
    frame = pd.DataFrame({ks[0]: [np.nan, 1.0, 2.0], ks[1]: [0.0, -1.0, np.inf], ks[2]: [-np.inf, 0.5, 2.0],
                          ks[3]: [np.nan] * 3})
    loaded = open_page(R.render_frame(expr, frame, title="bad values").save(tmp_path / "bad.html"),
                       screenshot="render_bad_values.png")
    rows = {r["key"]: r for r in _check_page(loaded, 4)}
    assert rows[ks[0]]["flags"] == "nan:1" and "1 NaN" in rows[ks[0]]["text"]
    assert rows[ks[1]]["flags"] == "inf:1,nonpos:2" and "\u2264 0" in rows[ks[1]]["text"]
    assert rows[ks[1]]["points"] == 3  # red markers at the edges
    assert rows[ks[2]]["flags"] == "inf:1"
    assert rows[ks[3]]["flags"] == "nan:3"
    assert "flagged values" in loaded.eval("document.body.innerText")

    empty = open_page(R.render_frame(expr, frame.iloc[:0]).save(tmp_path / "empty.html"),
                      screenshot="render_empty.png")
    rows = _check_page(empty, 4)
    assert all(r["points"] == 0 and "empty" in r["flags"] and "no values" in r["text"] for r in rows)


def test_several_figures_on_one_notebook_page(tmp_path, open_page):
    X, Y = _data()
    a = gpviz.render(SingleTaskGP(X, Y))
    folds = gen_loo_cv_folds(X, Y)
    b = gpviz.render(SingleTaskGP(folds.train_X, folds.train_Y))
    # what a notebook shows: each output self-contained, the same figure possibly twice
    body = "\n".join([a._repr_html_(), b._repr_html_(), a._repr_html_()])
    path = tmp_path / "notebook.html"
    path.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{body}</body></html>',
                    encoding="utf-8")
    loaded = open_page(path, screenshot="render_notebook.png")
    _check_page(loaded)
    figs = loaded.eval("[...document.querySelectorAll('.gpviz-figure')].map(f => [f.id, f.dataset.drawn])")
    assert len(figs) == 3 and len({f[0] for f in figs}) == 3 and all(f[1] == "1" for f in figs)


def test_config_labels_and_keys_are_text_not_code(tmp_path, open_page):
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    frame = pd.DataFrame({"i_config": [0, 0, 1, 1], k: [0.5, 0.7, 1.5, 2.0]})
    fig = R.render_frame(expr, frame, config_labels=[INJECTION, TEMPLATE], title=TEMPLATE)
    loaded = open_page(fig.save(tmp_path / "labels.html"), screenshot="render_injection_labels.png")
    _check_page(loaded, 1)
    lines = loaded.eval("document.querySelector('.gpviz-band-labels').innerText.split('\\n')")
    assert lines == [INJECTION, TEMPLATE]
    assert TEMPLATE in loaded.eval("document.querySelector('.gpviz-title').innerText")


@pytest.mark.slow
def test_notebook_outputs_draw_and_live_figure_updates_in_place(tmp_path, open_page):
    nbformat = need("nbformat", "test")
    nbclient = need("nbclient", "test")
    cells = [
        """
import torch, pandas as pd, numpy as np
from botorch.models import SingleTaskGP
import gpytorch.kernels as gk
import gpviz
torch.set_default_dtype(torch.float64)
X = torch.rand(8, 2, generator=torch.Generator().manual_seed(0)); Y = X.sum(-1, keepdim=True)
gpviz.render(SingleTaskGP(X, Y))
""",
        """
expr = gpviz.kernel_expr(gk.RBFKernel())
(k,) = expr.keys
from gpviz.html.live import LiveFigure
live = LiveFigure(expr, title="live")
for t in range(1, 4):
    live.update(pd.DataFrame({"i_timestep": np.arange(t), "i_model": 0, k: np.arange(t) + 1.0}))
from gpviz.rendering import render_frame
fig = live.finish(render_frame(
    expr, pd.DataFrame({"i_timestep": np.arange(5), "i_model": 0, k: np.arange(5) + 1.0}), title="live"))
""",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    htmls = [o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", [])
             if o.get("output_type") in ("display_data", "execute_result") and "text/html" in o.get("data", {})]
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    assert len(htmls) == 2  # the figure (with gpviz's scripts); the live figure, updated in place (with the time control)
    assert "var VERSION = " in htmls[0] and "var VERSION = " not in htmls[1] and "var r2p = (function" in htmls[1]
    path = tmp_path / "notebook_outputs.html"
    path.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>' + "\n".join(htmls)
                    + "</body></html>", encoding="utf-8")
    loaded = open_page(path, screenshot="render_notebook_live.png")
    _check_page(loaded, 4 + 1)  # two lengthscales, noise, mean; the live kernel's lengthscale
    summaries = loaded.eval("Object.values(window.gpvizSummary).map(s => [s.mode, s.step])")
    assert ["timeline", 4] in summaries  # the finished frame, not an intermediate one


def test_timeline_of_configurations_animates_bands(tmp_path, open_page):
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    rows = [{"i_timestep": t, "i_config": c, "i_model": m, k: (1 + t) * (1 + c) * (1 + 0.1 * m)}
            for t in range(4) for c in range(2) for m in range(3)]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=1)
    fig = R.render_frame(expr, frame, config_labels=["small", "large"])
    loaded = open_page(fig.save(tmp_path / "timeline_configs.html"), screenshot="render_timeline_configs.png")
    (row,) = _check_page(loaded, 1)
    assert row["points"] == 6
    band = fig.spec["configs"]["band"]
    ys = loaded.eval("Array.from(document.querySelector('.gpviz-param').gpvizYs)")
    assert ys == [band * 0.5] * 3 + [band * 1.5] * 3
    loaded.eval("document.querySelector('.timeState')._r2pState.selectTimestep(0)")
    xs0 = loaded.eval("Array.from(document.querySelector('.gpviz-param').gpvizXs)")
    loaded.eval("document.querySelector('.timeState')._r2pState.selectTimestep(3)")
    xs3 = loaded.eval("Array.from(document.querySelector('.gpviz-param').gpvizXs)")
    assert all(b > a for a, b in zip(xs0, xs3))  # values grow with the step
    assert loaded.console_errors == []


def test_hovering_a_dot_rings_that_member_everywhere(tmp_path, open_page):
    expr = gpviz.kernel_expr(gk.ScaleKernel(gk.RBFKernel()))
    ks = list(expr.keys)
    frame = pd.DataFrame({"i_model": [0, 1, 2, 3], ks[0]: [0.5, 1.0, 2.0, 4.0], ks[1]: [4.0, 2.0, 1.0, 0.5]})
    loaded = open_page(R.render_frame(expr, frame).save(tmp_path / "hover.html"))
    _check_page(loaded, 2)
    box = loaded.page.locator(f'.gpviz-param[data-key="{ks[0]}"] canvas').bounding_box()
    x, y = _xs(loaded, ks[0])[2], loaded.eval(f"document.querySelector('.gpviz-param[data-key=\"{ks[0]}\"]').gpvizYs[2]")
    rings = "[...document.querySelectorAll('.gpviz-param')].map(e => e.gpvizHighlight).join()"
    loaded.page.mouse.move(box["x"] + x, box["y"] + y)
    loaded.page.wait_for_function(f"{rings} === '2,2'", timeout=5000)  # redrawn at the next frame
    assert "member 2" in loaded.eval("document.querySelector('.gpviz-hover').innerText")
    # the hover names what a dot is
    loaded = open_page(R.render_frame(expr, frame, member_label="MCMC samples").save(tmp_path / "hover_mcmc.html"))
    loaded.page.mouse.move(box["x"] + x, box["y"] + y)
    loaded.page.wait_for_function(f"{rings} === '2,2'", timeout=5000)
    assert "MCMC sample 2" in loaded.eval("document.querySelector('.gpviz-hover').innerText")
    loaded.page.mouse.move(1, 1)
    loaded.page.wait_for_function(f"{rings} === '-1,-1'", timeout=5000)
    assert loaded.console_errors == []


def test_parse_columns_override_and_base64_fallback(tmp_path, open_page):
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    loaded = open_page(R.render_frame(expr, pd.DataFrame({k: [1.0]})).save(tmp_path / "parse.html"))
    _check_page(loaded, 1)
    assert loaded.eval("window.r2p === undefined && window.d3 === undefined")  # no trace: no rows2prose header
    trace = R.render_frame(expr, pd.DataFrame({k: [1.0, 2.0], "i_timestep": [0, 1]}))
    loaded = open_page(trace.save(tmp_path / "parse_trace.html"))
    assert loaded.eval("window.r2p.parseColumns === window.gpviz.parseColumns")
    assert loaded.eval("window.d3 === undefined")  # the time control runs on the r2p bundle's own d3
    _check_page(loaded, 1)
    # the table-driven fallback (browsers without Uint8Array.fromBase64) matches atob byte for byte
    mismatches = loaded.eval("""() => {
        const bad = [];
        for (let n = 0; n < 70; n++) {
            const bytes = Uint8Array.from({length: n}, (_, i) => (i * 73 + n * 11) % 256);
            const s = btoa(String.fromCharCode(...bytes));
            const got = window.gpviz.decodeBase64Fallback(s);
            if (got.length !== n || got.some((b, i) => b !== bytes[i])) bad.push(n);
        }
        return bad; }""")
    assert mismatches == []
    cols = {"a": encode_column(np.array([1.5, -2.0, np.nan])), "b": encode_column(np.array([3, 4], dtype=np.int32))}
    parsed = loaded.page.evaluate("c => { const t = window.gpviz.parseColumns(c); "
                                  "return [Array.from(t.a).map(String), Array.from(t.b)]; }", cols)
    assert parsed == [["1.5", "-2", "NaN"], [3, 4]]


def test_a_bound_inside_the_axis_is_drawn_dashed(tmp_path, open_page):
    X, Y = _data()
    model = SingleTaskGP(X, Y)
    with torch.no_grad():
        model.likelihood.noise = torch.tensor([1.2e-4])
    fig = gpviz.render(model, verdicts=False)
    key = "likelihood.noise_covar.noise"
    p = fig.spec["params"][key]
    axis = fig.spec["axes"][p["axis"]]
    x = 8 + (math.log10(p["lower"]) - math.log10(axis["lo"])) / (math.log10(axis["hi"]) - math.log10(axis["lo"])) * 150
    loaded = open_page(fig.save(tmp_path / "bound.html"))
    _check_page(loaded)
    red = loaded.page.evaluate("""([key, x]) => {
        const c = document.querySelector(`.gpviz-param[data-key="${key}"] canvas`);
        const dpr = c.width / parseFloat(c.style.width);
        let best = 0;
        for (let dx = -1; dx <= 1; dx++) {
            const d = c.getContext('2d').getImageData(Math.floor(x * dpr) + dx, 0, 1, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] > 150 && d[i + 1] < 120 && d[i + 3] > 100) n++;
            best = Math.max(best, n);
        }
        return [best, c.height];
    }""", [key, x])
    assert 0 < red[0] < red[1]  # dashed: red in part of the column, not all of it
    assert "lower bound: 1.00e-4" in loaded.eval(f"document.querySelector('.gpviz-param[data-key=\"{key}\"] .gpviz-chart').title")


# --------------------------------------------------------------------------- static charts (no JavaScript)

STATIC = """() => [...document.querySelectorAll('.gpviz-param')].map(e => ({
    key: e.dataset.key,
    pictures: [...e.querySelectorAll('img.gpviz-static')].filter(
        i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0).length}))"""


def _static_figures():
    """Figures of every mode: a snapshot, a batch, a configuration list and a fit trace."""
    X, Y = _data(n=8, d=2)
    single = SingleTaskGP(X, Y)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(single.likelihood, single))
    folds = gen_loo_cv_folds(X, Y)
    batch = SingleTaskGP(folds.train_X, folds.train_Y)
    mll = ExactMarginalLogLikelihood(batch.likelihood, batch)
    with gpviz.trace_fit(mll, feature_names=["a", "b"]) as tracer:
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 15}})
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    configs = R.render_frame(expr, pd.DataFrame({"i_config": [0, 0, 1, 1, 2], "i_model": [0, 1, 0, 1, 0],
                                                 k: [0.1, 0.2, 1.0, 2.0, 5.0]}),
                             config_labels=["n = 10", "n = 20", "n = 40"])
    return [gpviz.render(single, feature_names=["a", "b"]), gpviz.render(batch, feature_names=["a", "b"]),
            configs, tracer.render()]


@pytest.mark.slow
def test_repr_html_without_javascript_shows_one_static_chart_per_parameter_element(tmp_path, browser, artifacts):
    figures = _static_figures()
    path = tmp_path / "static.html"
    path.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
                    + "\n".join(f._repr_html_() for f in figures) + "</body></html>", encoding="utf-8")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1300, "height": 900})
    try:
        page = context.new_page()
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(artifacts / "render_static_no_js.png"), full_page=True)
        rows = page.evaluate(STATIC)
        keys = [k for f in figures for k in f.keys]
        assert [r["key"] for r in rows] == keys  # every parameter element of every figure ...
        assert all(r["pictures"] == 1 for r in rows), rows  # ... shows exactly one static chart
        text = page.inner_text("body")
        assert "NaN" not in text and "Static view" in text  # all values are finite; the hint is there
        assert page.evaluate("document.querySelectorAll('.gpviz-figure[data-drawn]').length") == 0
    finally:
        context.close()


@pytest.mark.slow
def test_scripts_replace_the_static_charts_with_dots_at_the_same_places(tmp_path, open_page):
    figures = _static_figures()
    batch = figures[1]
    key = batch.keys[0]
    picture = re.search(r'data-key="' + re.escape(key) + r'"><img class="gpviz-static" src="data:image/svg\+xml,'
                        r'([^"]+)"', batch.fragment()).group(1)
    svg = urllib.parse.unquote(picture)
    # dots are drawn in the plot's own coordinates (its group is translated past the axis label), as on the canvas
    static_xs = sorted(x for d in re.findall(r"<path d='([^']*h0)'/>", svg) for x, _ in dot_centres(d))
    path = tmp_path / "scripts.html"
    path.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
                    + "\n".join(f._repr_html_() for f in figures) + "</body></html>", encoding="utf-8")
    loaded = open_page(path)
    _check_page(loaded, sum(len(f.keys) for f in figures))
    assert loaded.eval("document.querySelectorAll('img.gpviz-static, .gpviz-static-note').length") == 0
    drawn_xs = sorted(loaded.eval(f"Array.from(document.querySelectorAll('.gpviz-figure')[1]"
                                  f".querySelector('.gpviz-param[data-key=\"{key}\"]').gpvizXs)"))
    assert len(static_xs) == batch.spec["n_rows"] and len(drawn_xs) == len(static_xs)
    assert max(abs(a - b) for a, b in zip(static_xs, drawn_xs)) <= 0.26  # same pixel (half-pixel grid)
    # the numbers beside the charts read the same in both forms
    js = loaded.eval("[0, 0.0123, 1.5, 123.4, 12345, 2e-5, -0.5, 0.00633].map(v => window.gpviz.fmt(v))")
    assert js == [S.fmt_axis(v) for v in (0, 0.0123, 1.5, 123.4, 12345, 2e-5, -0.5, 0.00633)]
