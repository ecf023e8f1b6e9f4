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
