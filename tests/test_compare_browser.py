"""compare(): two prior settings side by side, checked as data and as a page in a real headless Chromium."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.html.comparison import ComparisonFigure
from gpviz.sweep.scores import score_table
from gpviz.values.prior_info import describe_priors
from gpviz.errors import InputError
from gpviz.priors.sweep_pull import load_member_values, sweep_prior_pull
from gpviz.priors.verdicts import HELD, verdict_table
from html import escape

pytestmark = pytest.mark.slow  # two real cv_sweeps (about 40 s of CPU)

SIZES, REPEATS = (6, 10), 2
STRONG, LOOSE = "Gamma(3, 6) <b>strong</b>", "Gamma(1.125, 0.375) loose"

DRAWN = """() => [...document.querySelectorAll('.gpviz-figure')].map(f => ({
    id: f.id,
    params: [...f.querySelectorAll('.gpviz-param')].map(e => ({key: e.dataset.key, drawn: e.dataset.drawn,
        points: +e.dataset.points, held: e.classList.contains('gpviz-held'), canvas: !!e.querySelector('canvas')}))}))"""

# Counts green (prior-mode) pixels in the canvas columns around CSS x of figure `fig`, parameter `key`.
GREEN_COLUMN = """([fig, key, x]) => {
    const el = document.querySelectorAll('.gpviz-figure')[fig].querySelector(`.gpviz-param[data-key="${key}"]`);
    const c = el.querySelector('canvas'), dpr = c.width / parseFloat(c.style.width);
    let best = 0;  // the 1.5 px line covers one or two device columns around x: take the greenest
    for (let dx = -1; dx <= 1; dx++) {
        const d = c.getContext('2d').getImageData(Math.floor(x * dpr) + dx, 0, 1, c.height).data;
        let green = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 120 && d[i] < 90 && d[i + 2] < 110 && d[i + 3] > 200) green++;
        best = Math.max(best, green);
    }
    return best;
}"""


def scale_matern(train_X, train_Y):
    batch = train_X.shape[:-2]
    return SingleTaskGP(train_X, train_Y, covar_module=ScaleKernel(
        MaternKernel(nu=2.5, ard_num_dims=train_X.shape[-1], batch_shape=batch), batch_shape=batch))


@pytest.fixture(scope="module")
def sweeps():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(20, 4, generator=g)  # x2, x3 irrelevant
    Y = (torch.sin(6 * X[:, 0]) + 4 * (X[:, 1] - 0.5) ** 2).unsqueeze(-1)
    return {
        STRONG: gpviz.cv_sweep(gpviz.with_priors(scale_matern, lengthscale=GammaPrior(3.0, 6.0)), X, Y,
                               sizes=list(SIZES), repeats=REPEATS, progress=False),
        LOOSE: gpviz.cv_sweep(gpviz.with_priors(scale_matern, lengthscale=GammaPrior(1.125, 0.375)), X, Y,
                              sizes=list(SIZES), repeats=REPEATS, progress=False),
    }


FEATURES = ["temp", "pressure", "speed", "noise_level"]

# per figure, key -> the held share each size band's label carries (null: not judged)
BANDS = """() => [...document.querySelectorAll('.gpviz-figure')].map(f => Object.fromEntries(
    [...f.querySelectorAll('.gpviz-param')].map(e => [e.dataset.key, [...e.querySelectorAll('.gpviz-band-label')]
        .map(l => l.dataset.held === undefined ? null : [+l.dataset.held, l.title])])))"""

# the orange share of the pixels of band `band` of figure `fig`'s chart of `key` (the strip's own grey is not)
BAND_TINT = """([fig, key, band]) => {
    const el = document.querySelectorAll('.gpviz-figure')[fig].querySelector(`.gpviz-param[data-key="${key}"]`);
    const c = el.querySelector('canvas'), dpr = c.width / parseFloat(c.style.width);
    const h = c.height / el.querySelectorAll('.gpviz-band-label').length;
    const d = c.getContext('2d').getImageData(Math.floor(10 * dpr), Math.floor((band + 0.1) * h), Math.floor(20 * dpr),
                                            1).data;
    let orange = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 2] < 215 && d[i] - d[i + 2] > 25) orange++;
    return orange / (d.length / 4);
}"""


@pytest.fixture(scope="module")
def figure(sweeps):
    return gpviz.compare(sweeps, feature_names=FEATURES)


def test_rebuilt_cell_models_carry_the_fitted_values(sweeps):
    sweep = sweeps[STRONG]
    pull = sweep_prior_pull(sweep, repeats=1)
    assert set(pull["size"]) == set(SIZES)
    keys = list(sweep.expression().keys)
    for size in SIZES:
        at = pull[pull["size"] == size]
        assert list(dict.fromkeys(at.key)) == keys and len(at) == size * len(keys)
        fitted = sweep.parameters[(sweep.parameters["size"] == size) & (sweep.parameters["i_repeat"] == 0)]
        for key in keys:
            np.testing.assert_allclose(at[at.key == key].sort_values("i_model").value, fitted[key], rtol=1e-9)


def test_load_member_values_round_trip():
    from botorch.cross_validation import gen_loo_cv_folds

    g = torch.Generator().manual_seed(3)
    X, Y = torch.rand(5, 2, generator=g), torch.rand(5, 1, generator=g)
    folds = gen_loo_cv_folds(X, Y)
    model = scale_matern(folds.train_X, folds.train_Y)
    target = gpviz.parameters(model)
    for k in target.columns[1:]:
        target[k] = target[k] * (1.5 + 0.1 * np.arange(len(target)))
    load_member_values(model, {k: target[k].to_numpy() for k in target.columns[1:]})
    np.testing.assert_allclose(gpviz.parameters(model).to_numpy(), target.to_numpy(), rtol=1e-9)
    with pytest.raises(InputError, match="3 values for a model with 5 batch members"):
        load_member_values(model, {"covar_module.outputscale": [1.0, 2.0, 3.0]})


def test_compare_measures_the_two_priors(sweeps, figure):
    assert isinstance(figure, ComparisonFigure) and figure.labels == [STRONG, LOOSE]
    table = score_table(sweeps)
    assert list(table["size"]) == [6, 6, 10, 10] and list(table["label"]) == [STRONG, LOOSE] * 2
    assert (table[table.label == STRONG].ratio_to_first == 1).all()
    assert np.isfinite(table["center"]).all()
    # the strong prior holds more lengthscales than the loose one at the smallest size
    held = {}
    for label, pull in figure.pulls.items():
        ls = pull[pull.key.str.contains("lengthscale") & (pull["size"] == SIZES[0])]
        held[label] = ls.verdict.eq(HELD).mean()
    # (the verdict rule is the priors module's: its full-Hessian rule holds about half the loose folds at n = 6)
    assert held[STRONG] >= 0.5 and held[LOOSE] < held[STRONG] - 0.25, held
    path, text = describe_priors(sweeps[LOOSE].model)[0]
    assert path == "covar_module.base_kernel.lengthscale"
    assert text.startswith("GammaPrior(concentration=1.125, rate=0.375)")  # (then its mode, where one is said)


def test_a_sweep_whose_cells_all_failed_is_reported_not_raised(sweeps):
    def broken(train_X, train_Y):
        raise RuntimeError("no model <b>here</b>")

    X = torch.rand(8, 2, dtype=torch.float64)
    with pytest.warns(gpviz.errors.GpvizWarning):
        bad = gpviz.cv_sweep(broken, X, X[:, :1], sizes=[4], repeats=1, progress=False)
    fig = gpviz.compare({STRONG: sweeps[STRONG], "broken": bad})
    html = fig.html()
    assert fig.labels == [STRONG, "broken"] and list(fig.figures) == [STRONG]
    assert "Every cell of this sweep failed" in html and "no model &lt;b&gt;here&lt;/b&gt;" in html


def test_compare_judges_in_workers_and_on_dask_with_the_same_page(sweeps, figure, dask_client):
    for kw in ({"workers": 2}, {"executor": dask_client}):
        fig = gpviz.compare(sweeps, feature_names=FEATURES, **kw)
        for label in sweeps:
            pd.testing.assert_frame_equal(fig.pulls[label], figure.pulls[label])
        assert fig.html() == figure.html()


def test_compare_errors(sweeps):
    with pytest.raises(InputError, match="empty"):
        gpviz.compare({})
    with pytest.raises(InputError, match="dict"):
        gpviz.compare([sweeps[STRONG]])
    with pytest.raises(InputError, match="not a sweep"):
        gpviz.compare({"a": sweeps[STRONG], "b": "a string"})
    with pytest.raises(InputError, match="labels must be non-empty strings"):
        gpviz.compare({3: sweeps[STRONG]})
    with pytest.raises(InputError, match="unknown metric 'r2'"):
        gpviz.compare(sweeps, metric="r2")
    with pytest.raises(InputError, match="workers must be an integer >= 1, got 0"):
        gpviz.compare(sweeps, workers=0)
    with pytest.raises(InputError, match="executor must be"):
        gpviz.compare(sweeps, executor="localhost:8786")


@pytest.mark.browser
def test_comparison_page_in_chromium(figure, sweeps, tmp_path, open_page):
    html = figure.html()
    assert "<b>strong</b>" not in html and "&lt;b&gt;strong&lt;/b&gt;" in html  # labels escaped
    assert "covar_module.base_kernel.lengthscale ~ GammaPrior(concentration=3, rate=6)" in html
    assert "GammaPrior(concentration=1.125, rate=0.375)" in html
    loaded = open_page(figure.save(tmp_path / "compare.html"), screenshot="compare_page.png")
    assert loaded.console_errors == []
    figs = loaded.eval(DRAWN)
    assert len(figs) == 2 and figs[0]["id"] != figs[1]["id"]
    keys = list(sweeps[STRONG].expression().keys)
    for fig in figs:
        assert [p["key"] for p in fig["params"]] == keys
        assert all(p["drawn"] == "1" and p["canvas"] for p in fig["params"])
        assert all(p["points"] == REPEATS * sum(SIZES) for p in fig["params"])
    legend = loaded.eval("document.querySelector('.gpviz-cmp-legend').innerText")
    assert "prior mode" in legend and "held at the prior's mode" in legend
    # every size band of every parameter carries its share held at the prior's mode: the table's share
    bands = loaded.eval(BANDS)
    for i, label in enumerate([STRONG, LOOSE]):
        table = verdict_table(figure.pulls[label])
        assert set(table.repeats) == {REPEATS}  # every repeat judged
        for key in keys:
            shares = [b[0] for b in bands[i][key]]
            expected = table[table.key == key].sort_values("size").held_share.tolist()
            assert shares == pytest.approx(expected, abs=1e-6), (label, key)
        # a tinted band is orange on the canvas, an untinted one is not; its label's hover gives the counts
        held = [(k, j) for k in keys for j, b in enumerate(bands[i][k]) if b[0] >= 0.5]
        free = [(k, j) for k in keys for j, b in enumerate(bands[i][k]) if b[0] == 0]
        for k, j in held[:3]:
            assert loaded.page.evaluate(BAND_TINT, [i, k, j]) > 0.5, (label, k, j)
            assert "held at the prior's mode in" in bands[i][k][j][1] and f"of {REPEATS} repeats" in bands[i][k][j][1]
        for k, j in free[:3]:
            assert loaded.page.evaluate(BAND_TINT, [i, k, j]) < 0.05, (label, k, j)
    strong_held = sum(b[0] for k in keys if "lengthscale" in k for b in bands[0][k])
    loose_held = sum(b[0] for k in keys if "lengthscale" in k for b in bands[1][k])
    assert strong_held > loose_held
    # the summary: one sentence per parameter group, naming the features; a note on what was judged
    text = loaded.eval("[...document.querySelectorAll('.gpviz-verdict-sentences li')].map(e => e.innerText)")
    lengthscales = [t for t in text if t.startswith(("covar_module.base_kernel.lengthscale:", "lengthscale"))]
    assert len(lengthscales) == 2 and all(any(f in t for f in FEATURES) for t in lengthscales), text
    notes = loaded.eval("[...document.querySelectorAll('.gpviz-verdict-note')].map(e => e.innerText)")
    assert len(notes) == 2 and all("every fold of every repeat" in n for n in notes)
    # the prior mode (1/3) is drawn as a green line on each lengthscale's log axis
    key = "covar_module.base_kernel.lengthscale[2]"
    for i, label in enumerate([STRONG, LOOSE]):
        spec = figure.figures[label].spec
        axis = spec["axes"][spec["params"][key]["axis"]]
        assert axis["kind"] == "log"
        x = 8 + (math.log10(1 / 3) - math.log10(axis["lo"])) / (math.log10(axis["hi"]) - math.log10(axis["lo"])) * 150
        assert loaded.page.evaluate(GREEN_COLUMN, [i, key, x]) > 10, (label, x, axis)
    img = loaded.eval("(() => { const i = document.querySelector('.gpviz-compare img'); "
                      "return [i.complete, i.naturalWidth, i.alt]; })()")
    assert img[0] and img[1] > 300 and "vs" in img[2]
    assert len(loaded.eval("[...document.querySelectorAll('.gpviz-cmp-scores tr')].map(r => r.innerText)")) == 3


def test_stacked_views_share_each_parameter_axis(figure, sweeps):
    specs = [figure.figures[label].spec for label in (STRONG, LOOSE)]
    for key in sweeps[STRONG].expression().keys:
        a, b = (s["axes"][s["params"][key]["axis"]] for s in specs)
        assert (a["kind"], a["lo"], a["hi"]) == (b["kind"], b["lo"], b["hi"]), key
        for s, sweep in zip(specs, (sweeps[STRONG], sweeps[LOOSE])):  # every fold of both sweeps fits on it
            vals = sweep.parameters[key]
            assert a["lo"] <= vals.min() and vals.max() <= a["hi"], key


def test_notebook_display(figure):
    a, b = figure._repr_html_(), figure._repr_html_()
    ids = [f"{i}-d" for i in figure._ids.values()]
    assert all(i in a for i in ids) and a != b  # unique element ids per display


@pytest.mark.browser
def test_a_comparison_without_verdicts_says_so_and_shows_none(sweeps, tmp_path, open_page):
    fig = gpviz.compare(sweeps, feature_names=FEATURES, pull_repeats=0)
    loaded = open_page(fig.save(tmp_path / "compare_skipped.html"))
    assert loaded.console_errors == []
    notes = loaded.eval("[...document.querySelectorAll('.gpviz-verdict-note')].map(e => e.innerText)")
    assert notes == ["Verdicts not computed: compare(pull_repeats=0) was asked for."] * 2
    text = loaded.eval("document.body.innerText")
    assert "held at the prior" not in text and "leave the prior" not in text
    bands = loaded.eval(BANDS)
    assert all(b is None for fig_bands in bands for key_bands in fig_bands.values() for b in key_bands)
    assert loaded.eval("document.querySelectorAll('.gpviz-verdict-sentences, .gpviz-verdict-table').length") == 0


# per chart: its sweep's column (the figure), its key, the canvas box, its tick row (shown, with labels), and the
# label cell of its row
GRID = """() => [...document.querySelectorAll('.gpviz-figure')].map((f, i) => [...f.querySelectorAll('.gpviz-param')]
    .map(e => { const c = e.querySelector('canvas').getBoundingClientRect(), row = e.querySelector('.gpviz-tick-row');
        const label = document.querySelector(`.gpviz-cmp-label[data-key="${e.dataset.key}"]`).getBoundingClientRect();
        const rb = row.getBoundingClientRect();
        return {fig: i, key: e.dataset.key, top: c.top, bottom: c.bottom, left: c.left, right: c.right,
                ticks: row.dataset.ticks, tickText: row.innerText.trim(), tickH: rb.height,
                tickShown: getComputedStyle(row).visibility === 'visible',
                labelMid: (label.top + label.bottom) / 2, labelRight: label.right}; }))"""


def _check_grid(charts, keys):
    """Every key: one chart per sweep in one row (same top), each sweep its own column to the right of the labels."""
    a, b = ({c["key"]: c for c in col} for col in charts)
    assert list(a) == keys and list(b) == keys
    for key in keys:
        assert abs(a[key]["top"] - b[key]["top"]) < 0.5 and abs(a[key]["bottom"] - b[key]["bottom"]) < 0.5, key
        assert a[key]["top"] - 8 <= a[key]["labelMid"] <= a[key]["bottom"] + 8, key  # the label beside its charts
        assert a[key]["labelRight"] <= a[key]["left"] and a[key]["right"] < b[key]["left"], key
        for c in (a[key], b[key]):  # tick labels under every chart, not only under the last of a stack
            assert c["tickShown"] and c["tickH"] > 0 and c["tickText"], (key, c)
    return a, b


@pytest.mark.browser
def test_side_by_side_grid_in_chromium(figure, sweeps, tmp_path, open_page, artifacts):
    path = figure.save(tmp_path / "compare_grid.html")
    keys = list(sweeps[STRONG].expression().keys)
    for width, panels in ((1400, 2), (900, 1)):
        loaded = open_page(path, screenshot=f"compare_side_by_side_{width}.png", width=width)
        assert loaded.console_errors == []
        assert loaded.eval("[...document.querySelectorAll('.gpviz-param')].every(e => e.dataset.drawn === '1')")
        a, b = _check_grid(loaded.eval(GRID), keys)
        # columns: within a panel every chart of a sweep starts at the same x; a wide page has two panels
        lefts = sorted(c["left"] for c in a.values())
        columns = 1 + sum(later - earlier > 1 for earlier, later in zip(lefts, lefts[1:]))
        assert columns == panels and all(later - earlier < 0.5 or later - earlier > 100
                                         for earlier, later in zip(lefts, lefts[1:])), lefts
        tops = [a[k]["top"] for k in keys]
        if panels == 1:
            assert tops == sorted(tops)  # print order, top to bottom
        else:  # the first half left, top to bottom; the rest right, from the top again
            split = [i for i in range(1, len(keys)) if tops[i] < tops[i - 1]]
            assert len(split) == 1 and tops[:split[0]] == sorted(tops[:split[0]])
        grid = loaded.eval("(() => { const g = document.querySelector('.gpviz-cmp-grid'); "
                           "return [g.scrollWidth, g.clientWidth]; })()")
        assert grid[0] <= grid[1] + 1, grid  # nothing sticks out of the page
        heads = loaded.eval("[...document.querySelectorAll('.gpviz-cmp-head')].filter(h => h.offsetParent)"
                            ".map(h => [h.getBoundingClientRect().left, h.firstChild.textContent])"
                            ".sort((x, y) => x[0] - y[0]).map(h => h[1])")
        assert heads == (["parameter", STRONG, LOOSE] * panels if panels == 1 else
                         ["parameter", STRONG, LOOSE, "parameter", STRONG, LOOSE]), heads


@pytest.mark.browser
def test_hovering_a_dot_names_its_fold_in_its_sweeps_heading(figure, tmp_path, open_page):
    loaded = open_page(figure.save(tmp_path / "compare_hover.html"))
    # a mousemove at the first dot of the second sweep's first chart, dispatched on its canvas; the ring and the
    # heading's line are drawn on the next animation frame
    loaded.page.evaluate("""() => new Promise(done => { const e = document.querySelectorAll('.gpviz-figure')[1]
        .querySelector('.gpviz-param'), c = e.querySelector('canvas'), r = c.getBoundingClientRect();
        c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + e.gpvizXs[0], clientY: r.top + e.gpvizYs[0],
                                                     bubbles: true}));
        requestAnimationFrame(() => requestAnimationFrame(done)); })""")
    hover = loaded.eval("[...document.querySelectorAll('.gpviz-figure')].map(f => f.querySelector('.gpviz-hover')"
                        ".textContent)")
    assert hover[0] == "" and hover[1].startswith("\u25ef n = 6, leave-one-out fold"), hover


def test_every_verdict_that_occurs_is_counted_on_the_page(figure):
    import re

    html = figure.html()
    for label, pull in figure.pulls.items():
        got = {}
        part = html.split(f'<div class="gpviz-cmp-colhead" style="font-weight:600">{escape(label)}</div>')[-1]
        table = part[part.index('<table class="gpviz-cmp-verdicts">'):part.index("</table>", part.index(
            '<table class="gpviz-cmp-verdicts">'))]
        for verdict, cells in re.findall(r'<tr data-verdict="([^"]+)">(.*?)</tr>', table):
            got[verdict] = [(int(k), int(m)) for k, m in re.findall(r'data-count="(\d+)" data-members="(\d+)"', cells)]
        # the reference: the pull's own rows counted with pandas, every verdict that occurs at some size
        counts = pull.groupby(["verdict", "size"]).size().unstack(fill_value=0).reindex(columns=list(SIZES),
                                                                                       fill_value=0)
        members = pull.groupby("size").size().reindex(list(SIZES)).tolist()
        assert set(got) == {str(v) for v in counts.index}, (label, got)
        for verdict, row in counts.iterrows():
            assert got[str(verdict)] == list(zip(row.tolist(), members)), (label, verdict)


@pytest.mark.browser
def test_hovering_a_dot_of_a_comparison_shows_the_row_its_fold_held_out(figure, sweeps, tmp_path, open_page):
    loaded = open_page(figure.save(tmp_path / "compare_heldout.html"))
    X = sweeps[LOOSE].X.numpy()
    for i, label in enumerate([STRONG, LOOSE]):
        sweep = sweeps[label]
        # the page's dot order: size, then repeat, then fold; each fold held out its subset's row
        expected = [int(r) for c in range(len(SIZES)) for rep in range(REPEATS) for r in sweep.subsets[(c, rep)]]
        xs, ys = loaded.page.evaluate(f"""() => {{ const e = document.querySelectorAll('.gpviz-figure')[{i}]
            .querySelectorAll('.gpviz-param')[2]; return [Array.from(e.gpvizXs), Array.from(e.gpvizYs)]; }}""")
        j = next(j for j in range(len(xs))
                 if all((xs[k] - xs[j]) ** 2 + (ys[k] - ys[j]) ** 2 >= 9 for k in range(len(xs)) if k != j))
        # a mousemove at the dot's centre, dispatched on its canvas (headless Chromium hands the browser's own
        # pointer events to a page on its next frame, drawn only when something changed)
        tip = loaded.page.evaluate("""([i, j]) => { const e = document.querySelectorAll('.gpviz-figure')[i]
            .querySelectorAll('.gpviz-param')[2], c = e.querySelector('canvas'), r = c.getBoundingClientRect();
            c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + e.gpvizXs[j], clientY: r.top + e.gpvizYs[j],
                                                         bubbles: true}));
            const t = document.querySelectorAll('.gpviz-figure')[i].querySelector('.gpviz-heldout-tip');
            return [t.dataset.index, t.textContent, t.style.display]; }""", [i, j])
        assert tip[2] == "block" and int(tip[0]) == expected[j], (label, j, tip)
        shown = dict(part.split(" = ") for part in tip[1].split(": ", 2)[2].split(", "))
        assert list(shown) == FEATURES
        np.testing.assert_allclose([float(shown[n]) for n in FEATURES], X[expected[j]], rtol=1e-3)
    assert loaded.console_errors == []
