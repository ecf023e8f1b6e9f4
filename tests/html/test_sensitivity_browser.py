"""render(model, sensitivity=True): the power-scaling diagnosis beside each chart, in a real headless Chromium.

The numbers are gpviz.prior_sensitivity's (checked against ArviZ on NUTS draws in tests/test_arviz.py); here the
page must show exactly those numbers on hover, the threshold named, a badge where a component counts, and a legend
that counts each diagnosis, with no console error.
"""

from __future__ import annotations

import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz

pytestmark = pytest.mark.browser

CHARTS = """() => [...document.querySelectorAll('.gpviz-param')].map(e => ({
    key: e.dataset.key, drawn: e.dataset.drawn,
    badge: (e.querySelector('.gpviz-psense') || {}).textContent || "",
    title: e.querySelector('.gpviz-chart').getAttribute('title')}))"""


def test_the_diagnosis_is_shown_beside_each_chart_with_its_numbers(tmp_path, open_page):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(5)
    X = torch.rand(20, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1]) + 0.05 * torch.randn(20, 1, generator=g, dtype=torch.float64)
    model = SingleTaskGP(X, Y)  # x1 irrelevant: only the prior keeps its lengthscale finite
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    reference = gpviz.prior_sensitivity(model)  # the same default draws and seed as the page
    fig = gpviz.render(model, sensitivity=True, profiles=False)
    bare = gpviz.render(model, profiles=False)  # only when asked for
    assert "gpviz-legend-psense" not in bare.html() and not any("psense" in p for p in bare.spec["params"].values())
    loaded = open_page(fig.save(tmp_path / "psense.html"), screenshot="render_sensitivity.png")
    assert loaded.console_errors == []
    rows = {r["key"]: r for r in loaded.eval(CHARTS)}
    assert set(rows) == set(reference["key"])
    for _, ref in reference.iterrows():
        r = rows[ref["key"]]
        assert r["drawn"] == "1"
        assert (f"prior {float(f'{ref.prior:.3g}'):g}, likelihood {float(f'{ref.likelihood:.3g}'):g} "
                f"(threshold 0.05)") in r["title"].replace("e-", "e-")
        if ref["diagnosis"]:
            assert r["badge"].endswith("prior-data conflict" if ref["diagnosis"] == "prior-data conflict"
                                       else "strong prior"), r
            assert ref["diagnosis"] in r["title"]
        else:
            assert r["badge"] == "" and "neither counts" in r["title"]
    legend = loaded.eval("document.querySelector('.gpviz-legend-psense').textContent")
    assert "threshold 0.05" in legend
    counts = reference["diagnosis"].replace("", "neither").value_counts()
    for diagnosis, n in counts.items():
        assert f"{n} {diagnosis}" in legend
