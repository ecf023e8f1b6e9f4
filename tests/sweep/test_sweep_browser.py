"""The sweep page in a real headless Chromium: a labelled band per size, every placeholder drawn, curve beside."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.models import SingleTaskGP

import gpviz
from gpviz.rendering import Figure

pytestmark = pytest.mark.browser

SIZES, REPEATS = (6, 10, 14), 2

PLACEHOLDERS = """() => [...document.querySelectorAll('.gpviz-param')].map(e => ({
    key: e.dataset.key, drawn: e.dataset.drawn, points: +e.dataset.points, canvas: !!e.querySelector('canvas'),
    labels: [...e.querySelectorAll('.gpviz-band-label')].map(l => l.innerText.trim()),
    tops: [...e.querySelectorAll('.gpviz-band-label')].map(l => l.getBoundingClientRect().top)}))"""

CHART = """() => { const img = document.querySelector('.gpviz-sweep-chart img');
    const code = [...document.querySelectorAll('.gpviz-code')].map(c => c.getBoundingClientRect());
    const r = img.getBoundingClientRect();
    return {loaded: img.complete && img.naturalWidth > 0, width: r.width, left: r.left, top: r.top,
            bottom: r.bottom, alt: img.alt, codeRight: Math.max(...code.map(c => c.right)),
            codeTop: Math.min(...code.map(c => c.top)), codeBottom: Math.max(...code.map(c => c.bottom))}; }"""


@pytest.fixture(scope="module")
def sweep():
    g = torch.Generator().manual_seed(2)
    X = torch.rand(30, 3, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1, keepdim=True) + 0.05 * torch.randn(30, 1, generator=g, dtype=torch.float64)
    return gpviz.cv_sweep(SingleTaskGP, X, Y, sizes=list(SIZES), repeats=REPEATS, seed=0, progress=False)


def _check(loaded, sweep, dots_per_band):
    assert loaded.console_errors == []
    rows = loaded.eval(PLACEHOLDERS)
    keys = list(sweep.expression().keys)
    assert [r["key"] for r in rows] == keys  # every key once, in expression order
    for r in rows:
        assert r["drawn"] == "1" and r["canvas"], r
        assert r["points"] == sum(dots_per_band), r
        assert r["labels"] == [f"n = {s}" for s in SIZES], r  # one labelled band per size
        assert r["tops"] == sorted(r["tops"])  # top to bottom, smallest size first
    return rows


def test_sweep_page_draws_every_fold_in_one_band_per_size(sweep, tmp_path, open_page, artifacts):
    fig = sweep.render()
    assert isinstance(fig, Figure) and fig.mode == "configs"
    assert fig.spec["configs"]["labels"] == ["n = 6", "n = 10", "n = 14"]
    loaded = open_page(fig.save(tmp_path / "sweep.html"), screenshot="sweep_page.png")
    _check(loaded, sweep, [REPEATS * s for s in SIZES])
    chart = loaded.eval(CHART)
    assert chart["loaded"] and chart["width"] > 300 and "scaling curve" in chart["alt"]
    # beside the expression on a wide screen: right of the code, starting at its height
    assert chart["left"] >= chart["codeRight"] and chart["top"] < chart["codeBottom"]
    (artifacts / "sweep_page_chart.png").write_bytes(sweep.plot()._repr_png_())


def test_one_fold_per_repeat_and_narrow_screen(sweep, tmp_path, open_page):
    fig = sweep.render(one_fold_per_repeat=True, metric="mae")
    loaded = open_page(fig.save(tmp_path / "sweep_one.html"), screenshot="sweep_page_narrow.png", width=900)
    _check(loaded, sweep, [REPEATS] * len(SIZES))
    chart = loaded.eval(CHART)
    assert chart["loaded"] and "mae" in chart["alt"]
    assert chart["top"] >= chart["codeBottom"]  # too narrow to sit beside: below the expression
    assert chart["width"] <= 900


def test_sweep_displays_through_render_and_in_notebooks(sweep):
    fig = gpviz.render(sweep)
    assert isinstance(fig, Figure) and fig.spec["n_rows"] == REPEATS * sum(SIZES)
    html = sweep._repr_html_()
    assert 'class="gpviz-figure"' in html and "gpviz-sweep-chart" in html and "data:image/png;base64," in html


BANDS = """() => Object.fromEntries([...document.querySelectorAll('.gpviz-param')].map(e => [e.dataset.key,
    [...e.querySelectorAll('.gpviz-band-label')].map(l => l.dataset.held === undefined ? null : +l.dataset.held)]))"""


def test_sweep_page_tints_each_size_band_by_its_held_share(sweep, tmp_path, open_page):
    from gpviz.priors.sweep_pull import sweep_prior_pull
    from gpviz.priors.verdicts import verdict_table

    table = verdict_table(sweep_prior_pull(sweep))
    assert (table.held > 0).any(), "fixture: the default noise prior holds the noise at these sizes"
    fig = sweep.render()
    assert not any(p["held"] for p in fig.spec["params"].values())  # a tint per band, not per parameter
    assert all("bands" not in p for p in sweep.render(verdicts=False).spec["params"].values())
    loaded = open_page(fig.save(tmp_path / "sweep_held.html"), screenshot="sweep_page_held.png")
    assert loaded.console_errors == []
    bands = loaded.eval(BANDS)
    for key, shares in bands.items():  # every repeat judged: the shares of the verdict table
        expected = table[table.key == key].sort_values("size").held_share.tolist()
        assert shares == pytest.approx(expected, abs=1e-6), key  # sent to 6 digits
    legend = loaded.eval("document.querySelector('.gpviz-legend').innerText")
    assert "held at the prior's mode" in legend and "prior mode" in legend
    note = loaded.eval("document.querySelector('.gpviz-verdict-note').innerText")
    assert "every fold of every repeat" in note
    skipped = open_page(sweep.render(verdicts=False).save(tmp_path / "sweep_skipped.html"))
    assert skipped.eval("document.querySelector('.gpviz-verdict-note').innerText") == (
        "Verdicts not computed: render(verdicts=False) was asked for.")


# dispatches a mousemove at dot `j` of chart `i` (on its canvas, which bubbles to the page) and reads the box
HOVER_DOT = """([i, j]) => { const e = document.querySelectorAll('.gpviz-param')[i], c = e.querySelector('canvas');
    const r = c.getBoundingClientRect();
    c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + e.gpvizXs[j], clientY: r.top + e.gpvizYs[j],
                                                 bubbles: true}));
    const t = e.closest('.gpviz-figure').querySelector('.gpviz-heldout-tip');
    return t && t.style.display !== 'none' ? [t.dataset.index, t.textContent] : null; }"""


def _heldout_order(sweep, one_fold_per_repeat=False):
    """The held-out row of each dot in the page's order (size, then repeat, then fold), from the sweep's subsets."""
    out = []
    for i_config in range(len(sweep.sizes)):
        for r in range(sweep.repeats):
            rows = sweep.subsets[(i_config, r)]
            out += [int(rows[0])] if one_fold_per_repeat else [int(i) for i in rows]
    return out


@pytest.mark.parametrize("one_fold_per_repeat", [False, True])
def test_hovering_a_dot_shows_the_row_its_fold_held_out(sweep, tmp_path, open_page, one_fold_per_repeat):
    names = ["temp", "pressure", "time"]
    fig = sweep.render(one_fold_per_repeat=one_fold_per_repeat, feature_names=names, verdicts=False)
    loaded = open_page(fig.save(tmp_path / "sweep_hover.html"))
    expected = _heldout_order(sweep, one_fold_per_repeat)
    el = loaded.page.locator(".gpviz-param").nth(1)
    el.scroll_into_view_if_needed()
    xs, ys = loaded.page.evaluate("""() => { const e = document.querySelectorAll('.gpviz-param')[1];
        return [Array.from(e.gpvizXs), Array.from(e.gpvizYs)]; }""")
    assert len(xs) == len(expected)
    # dots far enough from every other dot that the pointer picks them: the first, the last, one in the middle
    picks = [j for j in (0, len(xs) // 2, len(xs) - 1)
             if all((xs[k] - xs[j]) ** 2 + (ys[k] - ys[j]) ** 2 >= 9 for k in range(len(xs)) if k != j)]
    assert picks, "fixture: every dot overlaps another"
    X = sweep.X.numpy()
    for j in picks:
        # the pointer on dot j: a mousemove at its centre, dispatched on the canvas (the browser's own pointer
        # events reach a page on its next frame, which headless Chromium draws only when something changed)
        tip = loaded.page.evaluate(HOVER_DOT, [1, j])
        assert tip is not None, j
        index = int(tip[0])
        assert index == expected[j]  # the row this fold left out, from the sweep's own subsets
        shown = dict(part.split(" = ") for part in tip[1].split(": ", 2)[2].split(", "))
        assert list(shown) == names
        np.testing.assert_allclose([float(shown[n]) for n in names], X[index], rtol=1e-3)  # the data's row
    loaded.eval("document.body.dispatchEvent(new MouseEvent('mousemove', {clientX: 1, clientY: 1, bubbles: true}))")
    assert loaded.eval("document.querySelector('.gpviz-heldout-tip').style.display") == "none"  # off a dot: gone
    assert loaded.console_errors == []
