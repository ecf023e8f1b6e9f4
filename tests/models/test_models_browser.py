"""Model-family pages in a real headless Chromium: no console errors, every placeholder drawn, sections named."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
import torch
import botorch.models as bm

import gpviz

pytestmark = pytest.mark.browser

from tests.extras import required
from tests.models.saas import HAS_JAX, SAAS_NAMES, fitted_saas

ALL_PARAMS = """() => [...document.querySelectorAll('.gpviz-param')].map(e => ({
    key: e.dataset.key, drawn: e.dataset.drawn, points: +e.dataset.points,
    canvas: !!e.querySelector('canvas')}))"""


def _data(n=12, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(3 * X).sum(-1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


def _check(loaded, expr, members: int):
    """Zero console errors; one drawn canvas per placeholder, one point per member; every key present."""
    assert loaded.console_errors == []
    rows = loaded.eval(ALL_PARAMS)
    assert rows, "no placeholders on the page"
    bad = [r for r in rows if r["drawn"] != "1" or not r["canvas"] or r["points"] != members]
    assert not bad, bad[:5]
    assert {r["key"] for r in rows} == set(expr.keys)
    return loaded.eval("document.body.innerText")


def test_model_list_page_has_one_named_group_per_output(tmp_path, open_page):
    X, Y = _data()
    m = bm.ModelListGP(bm.SingleTaskGP(X, Y), bm.SingleTaskGP(X, torch.cat([Y, -2 * Y], -1)))
    expr = gpviz.model_expr(m, ["temp", "time", "dose"], outputs=["yield", "cost"])
    fig = gpviz.render(expr, title="ModelListGP")
    loaded = open_page(fig.save(tmp_path / "list.html"), screenshot="models_model_list.png")
    text = _check(loaded, expr, members=2)
    assert "yield: Covariance kernel" in text and "cost: Mean" in text
    assert "compare('dose')" in text


def test_multitask_page_names_tasks_and_draws_the_task_covariance(tmp_path, open_page):
    X, Y = _data()
    Xt = torch.cat([X[:, :2], (torch.arange(12) % 3).to(X).unsqueeze(-1)], -1)
    m = bm.MultiTaskGP(Xt, Y, task_feature=-1)
    expr = gpviz.model_expr(m, ["temp", "time", "site"], tasks=["Berlin", "Oslo", "Rome"])
    fig = gpviz.render(expr, title="MultiTaskGP")
    loaded = open_page(fig.save(tmp_path / "multitask.html"), screenshot="models_multitask.png")
    text = _check(loaded, expr, members=1)
    assert "task_covar(" in text and "unit_task='Berlin'" in text and "x1['site'], x2['site']" in text
    assert "per_task(" in text
    # the task correlation matrix is readable as a table, tasks named, under the covariance
    corr = expr.task_correlation().round(3).to_string()
    assert "Task correlation" in text and corr.splitlines()[0].split() == ["Berlin", "Oslo", "Rome"]
    assert all(line.split()[0] in ("Berlin", "Oslo", "Rome") for line in corr.splitlines()[1:])
    assert corr.splitlines()[1] in text


def test_original_units_page_says_which_units(tmp_path, open_page):
    from botorch.models.transforms import Normalize, Standardize
    from gpytorch.kernels import RBFKernel, ScaleKernel

    X, Y = _data()
    m = bm.SingleTaskGP(10 * X, 100 * Y, covar_module=ScaleKernel(RBFKernel(ard_num_dims=3)),
                        input_transform=Normalize(3), outcome_transform=Standardize(1))
    m.eval()
    fig = gpviz.render(m, units="original")
    loaded = open_page(fig.save(tmp_path / "units.html"), screenshot="models_original_units.png")
    text = _check(loaded, gpviz.model_expr(m), members=1)
    assert "original inputs, original outputs" in text
    assert "normalized inputs" not in text and "standardized outputs" not in text


@pytest.mark.slow
@pytest.mark.skipif(not HAS_JAX and not required(), reason="jax and numpyro (the `fully-bayesian` extra) are not installed")
def test_saas_page_draws_the_mcmc_samples_at_each_parameter(tmp_path, open_page):
    m, X = fitted_saas()
    expr = gpviz.model_expr(m, pd.DataFrame(X.numpy(), columns=list(SAAS_NAMES)))
    fig = gpviz.render(expr, title="SAAS")
    loaded = open_page(fig.save(tmp_path / "saas.html"), screenshot="models_saas.png")
    text = _check(loaded, expr, members=2)
    assert "compare('d')" in text


def test_every_model_family_page_draws_every_placeholder(tmp_path, open_page):
    from tests.models.test_zoo import GP_CLASSES, _build  # the zoo of every botorch.models GP class

    for name in GP_CLASSES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _build(name)[0]
            expr = gpviz.model_expr(model)
            fig = gpviz.render(model, units="original")
        loaded = open_page(fig.save(tmp_path / f"{name}.html"))
        members = int(torch.Size(expr.batch_shape).numel())
        text = _check(loaded, expr, members=members)
        assert all(s.title in text for s in expr.sections), name
        loaded.page.close()
