"""Tick labels under every band group: each chart of a grid of charts (an ARD model's lengthscales, one band per
size) has its own labelled tick row in Chromium, and the static picture labels the same values gpviz.js does."""

from __future__ import annotations

import re
import urllib.parse

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.models import SingleTaskGP

import gpviz
import gpviz.rendering as R

pytestmark = pytest.mark.browser

ROWS = """() => [...document.querySelectorAll('.gpviz-param')].map(e => {
    const row = e.querySelector('.gpviz-tick-row'), box = row.getBoundingClientRect();
    return {key: e.dataset.key, ticks: row.dataset.ticks, text: row.innerText.trim(), h: box.height,
            shown: getComputedStyle(row).visibility === 'visible'}; })"""


def _banded_figure():
    model = SingleTaskGP(torch.rand(8, 12, dtype=torch.float64), torch.rand(8, 1, dtype=torch.float64))
    expr = gpviz.model_expr(model)
    rng = np.random.default_rng(0)
    rows = [{"i_config": c, "i_model": i, **{k: float(np.exp(rng.normal())) for k in expr.keys}}
            for c in range(4) for i in range(5)]
    return R.render_frame(expr, pd.DataFrame(rows), info=gpviz.parameters(model, long=True),
                          config_labels=["n=10", "n=20", "n=40", "n=80"], element_id="ticks")


def test_every_band_group_of_a_grid_has_its_own_tick_labels(tmp_path, open_page):
    fig = _banded_figure()
    html = fig.html()
    assert 'class="gpviz-run"' in html  # the lengthscales are laid out as a grid of charts
    loaded = open_page(fig.save(tmp_path / "ticks.html"), screenshot="render_ticks.png")
    assert loaded.console_errors == []
    rows = loaded.eval(ROWS)
    assert len(rows) == len(fig.spec["params"])
    for r in rows:
        assert r["shown"] and r["h"] > 0 and r["text"], r
    # the static pictures label the values the script labels, chart by chart
    pictures = re.findall(r'<span class="gpviz-param[^"]*"[^>]*data-key="([^"]+)"><img class="gpviz-static" '
                          r'src="data:image/svg\+xml,([^"]+)"', html)
    assert len(pictures) == len(rows)
    by_key = {r["key"]: r for r in rows}
    for key, uri in pictures:
        svg = urllib.parse.unquote(uri)
        labels = re.findall(r"<text [^>]*text-anchor='middle'[^>]*>([^<]+)</text>", svg)
        drawn = by_key[key]["text"].split()
        assert labels == drawn, (key, labels, drawn)
