"""The optimism gap on a single sweep page: a refit sweep's page given the same cells fitted with fixed
hyperparameters (refit=False); the sentence's numbers against numpy on the two sweeps' own scores, and the section
drawn in Chromium."""

from __future__ import annotations

import re

import numpy as np
import pytest

import gpviz
from gpviz.errors import InputError
from tests.sweep.scale import FIT, make_data, matern

SIZES, REPEATS, SEED = [5, 8], 3, 4


@pytest.fixture(scope="module")
def pair():
    X, Y = make_data(n=14)
    run = lambda **kw: gpviz.cv_sweep(matern, X, Y, SIZES, REPEATS, seed=kw.pop("seed", SEED),  # noqa: E731
                                      progress=False, fit_kwargs=FIT, **kw)
    return run(), run(refit=False), run(seed=SEED + 1, refit=False)


def _geometric_means(sweep) -> list[float]:
    s = sweep.scores
    return [float(np.exp(np.log(s.loc[s["size"] == n, "mse"].to_numpy()).mean())) for n in SIZES]


def test_the_gap_sentence_is_the_ratio_of_geometric_means_by_hand(pair):
    refit, fixed, _ = pair
    html = refit.render(gap=fixed, verdicts=False).html()
    ratios = np.divide(_geometric_means(fixed), _geometric_means(refit))
    sentence = re.search(r'class="gpviz-gap-sentence"[^>]*>(.*?)</div>', html).group(1)
    assert [f"{r:.2f}x at n = {n}" in sentence for n, r in zip(SIZES, ratios)] == [True] * len(SIZES), sentence
    # the table's numbers: the geometric means themselves
    rows = [dict(re.findall(r'data-(\w+)="([^"]+)"', tr)) for tr in re.findall(r"<tr( data-[^>]+)>", html)]
    got = {int(r["size"]): (float(r["fixed"]), float(r["refit"])) for r in rows if "refit" in r}
    assert sorted(got) == SIZES
    for n, gf, gr in zip(SIZES, _geometric_means(fixed), _geometric_means(refit)):
        assert got[n] == pytest.approx((gf, gr), rel=1e-12)
    # either sweep's page: the same section
    other = fixed.render(gap=refit, verdicts=False).html()
    assert re.search(r'class="gpviz-gap-sentence"[^>]*>(.*?)</div>', other).group(1) == sentence
    # a refit sweep's dots are folds, each with the row it held out (hover); a fixed sweep's are repeats
    assert 'class="gpviz-heldout"' in html and 'class="gpviz-heldout"' not in other


def test_bad_gap_arguments_are_typed_errors(pair):
    refit, fixed, other_seed = pair
    with pytest.raises(InputError, match="both have refit=True"):
        refit.render(gap=refit)
    with pytest.raises(InputError, match="same cells"):
        refit.render(gap=other_seed)
    with pytest.raises(InputError, match="got str"):
        refit.render(gap="fixed")


@pytest.mark.browser
def test_the_gap_section_is_drawn_in_chromium(pair, tmp_path, open_page):
    refit, fixed, _ = pair
    loaded = open_page(refit.render(gap=fixed, verdicts=False).save(tmp_path / "gap.html"),
                       screenshot="sweep_gap.png")
    assert loaded.console_errors == []
    assert loaded.eval("[...document.querySelectorAll('.gpviz-param')].every(e => e.dataset.drawn === '1')")
    img = loaded.eval("""(() => { const i = document.querySelector('.gpviz-gap img');
        const r = i.getBoundingClientRect(); return [i.complete, i.naturalWidth, r.width, r.height, i.alt]; })()""")
    assert img[0] and img[1] > 300 and img[2] > 300 and img[3] > 200 and "optimism gap" in img[4]
    sentence = loaded.eval("document.querySelector('.gpviz-gap-sentence').innerText")
    ratios = np.divide(_geometric_means(fixed), _geometric_means(refit))
    assert all(f"{r:.2f}x at n = {n}" in sentence for n, r in zip(SIZES, ratios)), sentence
    rows = loaded.eval("[...document.querySelectorAll('.gpviz-gap tbody tr')].map(r => r.innerText)")
    assert len(rows) == len(SIZES)


def _gap_rows(html: str) -> dict[int, tuple[float, float]]:
    rows = [dict(re.findall(r'data-(\w+)="([^"]+)"', tr)) for tr in re.findall(r"<tr( data-[^>]+)>", html)]
    return {int(r["size"]): (float(r["fixed"]), float(r["refit"])) for r in rows if "refit" in r}


def test_the_comparison_page_draws_the_gap_against_numpy(pair):
    refit, fixed, other_seed = pair
    page = gpviz.compare({"refit folds": refit, "closed form": fixed, "other seed": other_seed}, pull_repeats=0)
    # one pair: the other seed's cells are not the refit sweep's, so it has no gap
    assert [(a, b) for a, b, _ in page.gaps] == [("refit folds", "closed form")]
    ratios = np.divide(_geometric_means(fixed), _geometric_means(refit))
    np.testing.assert_allclose(page.gaps[0][2]["ratio"].to_numpy(), ratios, rtol=1e-12)
    html = page.html()
    assert html.count('class="gpviz-gap"') == 1 and html.count('class="gpviz-gap-chart"') == 1
    got = _gap_rows(html)
    assert sorted(got) == SIZES
    for n, gf, gr in zip(SIZES, _geometric_means(fixed), _geometric_means(refit)):
        assert got[n] == pytest.approx((gf, gr), rel=1e-12)
    sentence = re.search(r'class="gpviz-gap-sentence"[^>]*>(.*?)</div>', html).group(1)
    assert all(f"{r:.2f}x at n = {n}" in sentence for n, r in zip(SIZES, ratios)), sentence
    assert "closed form" in sentence and "refit folds" in sentence
    # no refit=False sweep, no gap section
    plain = gpviz.compare({"a": refit, "b": other_seed}, pull_repeats=0)
    assert plain.gaps == [] and 'class="gpviz-gap"' not in plain.html()


@pytest.mark.browser
def test_the_comparison_gap_is_drawn_in_chromium(pair, tmp_path, open_page):
    refit, fixed, _ = pair
    page = gpviz.compare({"refit": refit, "fixed": fixed}, pull_repeats=0)
    loaded = open_page(page.save(tmp_path / "compare_gap.html"), screenshot="compare_gap.png")
    assert loaded.console_errors == []
    img = loaded.eval("""(() => { const i = document.querySelector('.gpviz-gap img');
        const r = i.getBoundingClientRect(); return [i.complete, i.naturalWidth, r.width, r.height, i.alt]; })()""")
    assert img[0] and img[1] > 300 and img[2] > 300 and img[3] > 200 and "optimism gap" in img[4]
    rows = loaded.eval("[...document.querySelectorAll('.gpviz-gap tbody tr')].map(r => r.innerText)")
    ratios = np.divide(_geometric_means(fixed), _geometric_means(refit))
    assert len(rows) == len(SIZES)
    for row, n, r in zip(rows, SIZES, ratios):
        cells = row.split()
        assert int(cells[0]) == n and float(cells[-1]) == pytest.approx(r, rel=5e-3), row
