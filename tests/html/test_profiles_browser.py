""""Why here?" profiles on model pages, in a real headless Chromium and in the static pictures.

The curves' numbers are checked against GPyTorch in tests/priors/test_profiles.py; here: every chart of a fitted
model gets its band, the page draws each curve (no console error), the peaks the page reports sit where the
model's own likelihood and priors peak (re-evaluated here on a deep copy, no gpviz code), and the page says when
profiles are skipped.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior
from botorch.models.transforms.input import Normalize

import gpviz
import gpviz.rendering as R
from gpviz.html import svg as S
from gpviz.priors import profiles as P

pytestmark = pytest.mark.browser

PROFILES = """() => [...document.querySelectorAll('.gpviz-param')].map(e => ({
    key: e.dataset.key, drawn: e.dataset.drawn, curves: +(e.dataset.profile || 0),
    peaks: e.gpvizProfile ? e.gpvizProfile.peaks : null,
    height: e.querySelector('canvas').getBoundingClientRect().height,
    title: e.querySelector('.gpviz-chart').getAttribute('title')}))"""


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(3)
    X = torch.rand(25, 3, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1]) + 0.05 * torch.randn(25, 1, generator=g, dtype=torch.float64)
    model = SingleTaskGP(X, Y, covar_module=ScaleKernel(MaternKernel(ard_num_dims=3,
                                                                     lengthscale_prior=GammaPrior(3.0, 6.0))))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model


def _direct_sum(model, x: float) -> float:
    """MLL x n with lengthscale[2] set to x on a deep copy: GPyTorch's own numbers."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        ls = m.covar_module.base_kernel.lengthscale.clone()
        ls[..., 2] = x
        m.covar_module.base_kernel.lengthscale = ls
        m.train()
        mll = ExactMarginalLogLikelihood(m.likelihood, m)
        return float(mll(m(*m.train_inputs), m.train_targets) * m.train_targets.shape[-1])


def test_every_chart_of_a_fitted_model_draws_its_profiles(fitted, tmp_path, open_page):
    fig = gpviz.render(fitted, feature_names=["a", "b", "c"])
    loaded = open_page(fig.save(tmp_path / "profiles.html"), screenshot="render_profiles.png")
    assert loaded.console_errors == []
    rows = loaded.eval(PROFILES)
    keys = gpviz.model_expr(fitted).keys
    assert [r["key"] for r in rows] == list(keys)
    by_key = {r["key"]: r for r in rows}
    for r in rows:
        assert r["drawn"] == "1"
        assert r["height"] == S.ROW_H + S.PROFILE_H
        # the mean and the outputscale have no prior here: their log prior is constant and not drawn
        unguarded = r["key"] in ("mean_module.constant", "covar_module.outputscale")
        assert r["curves"] == (2 if unguarded else 3), r
        assert "why here" in r["title"]
    # the irrelevant input c: the page's peak of the sum is GPyTorch's, found here on the page's own grid
    c = by_key["covar_module.base_kernel.lengthscale[2]"]
    axis = fig.spec["axes"][fig.spec["params"][c["key"]]["axis"]]
    grid = np.logspace(np.log10(axis["lo"]), np.log10(axis["hi"]), P.PROFILE_POINTS)
    direct = [_direct_sum(fitted, float(x)) for x in grid]
    peak = {p["kind"]: p["x"] for p in c["peaks"]}
    assert peak["sum"] == pytest.approx(grid[int(np.argmax(direct))], rel=1e-5)
    # the prior Gamma(3, 6) peaks at its mode (a - 1) / b = 1/3: the grid point nearest to it
    assert peak["lp"] == pytest.approx(grid[int(np.argmin(np.abs(np.log(grid / (1 / 3)))))], rel=1e-5)
    text = loaded.eval("document.body.innerText")
    assert "Why here?" in text and "log likelihood (blue)" in text


def test_static_pictures_carry_the_band_and_profiles_can_be_turned_off(fitted):
    fig = gpviz.render(fitted, element_id="p1")
    html = fig.fragment()
    heights = {int(h) for h in re.findall(r'class="gpviz-static"[^>]*height="(\d+)"', html)}
    assert heights == {S.ROW_H + 2 + S.PROFILE_H}
    bare = gpviz.render(fitted, element_id="p1", profiles=False).fragment()
    assert {int(h) for h in re.findall(r'class="gpviz-static"[^>]*height="(\d+)"', bare)} == {S.ROW_H + 2}
    assert '"profile"' not in bare and "Why here" not in bare


def test_the_page_says_when_profiles_are_skipped(fitted, monkeypatch):
    monkeypatch.setattr(P, "PROFILE_MAX_WORK", 10.0)
    skipped = gpviz.render(fitted).fragment()
    assert '"profile"' not in skipped
    assert "profiles not computed: 25 training points x 6 parameter elements is above the cost limit" in skipped
    assert '"profile"' in gpviz.render(fitted, profiles=True).fragment()  # asked for: whatever the cost
    with pytest.raises(gpviz.GpvizError, match="profiles"):
        gpviz.render(gpviz.FitTracer(ExactMarginalLogLikelihood(fitted.likelihood, fitted)), profiles=True)
    assert R.render is gpviz.render


def test_an_original_units_page_draws_profiles_on_its_own_axis():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(4)
    X = torch.rand(20, 2, generator=g, dtype=torch.float64) * torch.tensor([10.0, 1.0], dtype=torch.float64)
    Y = torch.sin(0.6 * X[:, :1]) + 0.05 * torch.randn(20, 1, generator=g, dtype=torch.float64)
    model = SingleTaskGP(X, Y, input_transform=Normalize(2))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    fig = gpviz.render(model, units="original", verdicts=False)
    key = "covar_module.lengthscale[0]"
    spec = fig.spec["params"][key]
    axis = fig.spec["axes"][spec["axis"]]
    x = np.array(spec["profile"]["x"])
    assert x[0] == pytest.approx(axis["lo"], rel=1e-5) and x[-1] == pytest.approx(axis["hi"], rel=1e-5)
    total = np.array(spec["profile"]["ll"][0]) + np.array(spec["profile"]["lp"][0])
    coef = float(model.input_transform.coefficient[0, 0])  # original lengthscale = model lengthscale x coefficient

    def direct(x_orig: float) -> float:
        m = copy.deepcopy(model)
        with torch.no_grad():
            ls = m.covar_module.lengthscale.clone()
            ls[..., 0] = x_orig / coef
            m.covar_module.lengthscale = ls
            m.train()
            mll = ExactMarginalLogLikelihood(m.likelihood, m)
            return float(mll(m(*m.train_inputs), m.train_targets) * m.train_targets.shape[-1])

    i, j = 3, 20  # the page's differences along its own axis are GPyTorch's (to the spec's 0.001 rounding)
    assert total[j] - total[i] == pytest.approx(direct(x[j]) - direct(x[i]), abs=5e-3)
