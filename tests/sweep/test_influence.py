"""Sweep.influence against a fold-versus-full computation made by hand: the folds fitted by BoTorch's own
leave-one-out folds, the full model fitted on the cell's points, each with fit_gpytorch_mll."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
import gpviz.errors
from gpviz.sweep.cells import cell_seed, subset_rows
from gpviz.sweep.influence import top_influence
from tests.sweep.scale import FIT, make_data

SIZES = [5, 7]


@pytest.fixture(scope="module")
def sweep():
    X, Y = make_data()
    frame = pd.DataFrame(X.numpy(), columns=["temp", "time"])
    return gpviz.cv_sweep(SingleTaskGP, frame, Y, SIZES, repeats=1, seed=3, progress=False, fit_kwargs=FIT)


def _fit(train_X, train_Y, seed):
    torch.manual_seed(seed)
    model = SingleTaskGP(train_X, train_Y)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model), **FIT)
    return model


def _by_hand(size: int):
    """Each fold's lengthscales and noise minus the full-data fit's, by hand."""
    X, Y = make_data()
    rows = subset_rows(X.shape[0], size, 0, 3)
    seed = cell_seed(3, size, 0)
    folds = gen_loo_cv_folds(X[rows], Y[rows])
    fold_model = _fit(folds.train_X, folds.train_Y, seed)
    full_model = _fit(X[rows].unsqueeze(0), Y[rows].unsqueeze(0), seed)
    ls = lambda m: m.covar_module.lengthscale.detach().reshape(-1, 2).numpy()  # noqa: E731
    noise = lambda m: m.likelihood.noise.detach().reshape(-1).numpy()  # noqa: E731
    return rows, ls(fold_model) - ls(full_model), noise(fold_model) - noise(full_model), X[rows].numpy()


@pytest.mark.parametrize("i_config", [0, 1])
def test_influence_is_each_fold_against_the_full_fit_by_hand(sweep, i_config):
    size = SIZES[i_config]
    rows, ls_shift, noise_shift, x = _by_hand(size)
    inf = sweep.influence(fit_kwargs=FIT)
    cell = inf[inf["i_config"] == i_config]
    ls_keys = sorted(k for k in cell["key"].unique() if "lengthscale" in k)
    noise_key = next(k for k in cell["key"].unique() if "noise" in k)
    assert len(ls_keys) == 2
    assert np.abs(ls_shift).max() > 1e-3  # the points do move the fit: a zero shift would prove nothing
    for j, key in enumerate(ls_keys):
        got = cell[cell["key"] == key].sort_values("i_model")
        np.testing.assert_allclose(got["shift"].to_numpy(), ls_shift[:, j], rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(got["index"].to_numpy(), rows)
        np.testing.assert_allclose(got[["temp", "time"]].to_numpy(), x)
        np.testing.assert_allclose(got["fold_value"] - got["full_value"], got["shift"])
    got = cell[cell["key"] == noise_key].sort_values("i_model")
    np.testing.assert_allclose(got["shift"].to_numpy(), noise_shift, rtol=1e-6, atol=1e-12)
    # the fold values are the sweep's own
    p = sweep.parameters[sweep.parameters["i_config"] == i_config].sort_values("i_model")
    np.testing.assert_array_equal(got["fold_value"].to_numpy(), p[noise_key].to_numpy())


def test_the_sweeps_own_fit_arguments_by_default(sweep):
    assert sweep.fit_kwargs == FIT
    pd.testing.assert_frame_equal(sweep.influence(), sweep.influence(fit_kwargs=FIT))


def test_folds_fitted_one_by_one_set_against_an_ordinary_full_fit_by_hand():
    X, Y = make_data()
    separate = gpviz.cv_sweep(SingleTaskGP, X, Y, [5], seed=3, progress=False, fit_kwargs=FIT, folds="separate")
    assert separate.mode == "separate"
    inf = separate.influence()
    rows = subset_rows(X.shape[0], 5, 0, 3)
    full = _fit(X[rows], Y[rows], cell_seed(3, 5, 0))  # an ordinary model of the n points, not a batch
    ls = full.covar_module.lengthscale.detach().reshape(-1).numpy()
    keys = sorted(k for k in inf["key"].unique() if "lengthscale" in k)
    for j, key in enumerate(keys):
        got = inf[inf["key"] == key].sort_values("i_model")
        np.testing.assert_allclose(got["full_value"].to_numpy(), ls[j], rtol=1e-6)
        np.testing.assert_array_equal(got["fold_value"].to_numpy(),
                                      separate.parameters.sort_values("i_model")[key].to_numpy())
        np.testing.assert_array_equal(got["index"].to_numpy(), rows)


def test_a_fixed_sweep_has_no_influence():
    X, Y = make_data()
    fixed = gpviz.cv_sweep(SingleTaskGP, X, Y, [5], seed=3, progress=False, fit_kwargs=FIT, refit=False)
    with pytest.raises(gpviz.errors.InputError, match="refit=False"):
        fixed.influence()


def test_full_fits_are_kept_on_the_sweep(sweep, monkeypatch):
    first = sweep.influence(fit_kwargs=FIT)
    calls = []
    monkeypatch.setattr("gpviz.sweep.influence.fit_gpytorch_mll", lambda *a, **k: calls.append(1))
    again = sweep.influence(fit_kwargs=FIT)
    assert calls == []
    pd.testing.assert_frame_equal(first, again)
    sweep.influence(fit_kwargs={})  # other fit arguments: their own fits
    assert len(calls) == len(SIZES)


def test_top_influence_takes_the_largest_relative_shifts():
    frame = pd.DataFrame({"key": ["a"] * 4 + ["b"] * 2, "shift": [1.0, -5.0, 2.0, 0.1, 3.0, -4.0],
                          "rel_shift": [0.1, -0.5, 0.2, 0.01, 0.3, -0.4]})
    top = top_influence(frame, per_key=2)
    assert top["key"].tolist() == ["a", "a", "b", "b"]
    assert top["shift"].tolist() == [-5.0, 2.0, -4.0, 3.0]


def test_the_page_lists_the_most_influential_points_only_when_asked(sweep):
    plain = sweep.render(verdicts=False).html()
    assert "gpviz-influence" not in plain
    inf = sweep.influence(fit_kwargs=FIT)
    html = sweep.render(verdicts=False, influence=inf).html()
    assert html.count('class="gpviz-influence"') == 1
    assert html.replace(html[html.index('<div class="gpviz-influence"'):], "") != ""


@pytest.mark.browser
def test_the_influence_table_is_drawn_in_chromium(sweep, tmp_path, open_page):
    inf = sweep.influence(fit_kwargs=FIT)
    path = tmp_path / "influence.html"
    sweep.render(verdicts=False, influence=inf).save(path)
    page = open_page(path, screenshot="sweep_influence.png")
    assert page.console_errors == []
    head = page.eval("[...document.querySelectorAll('.gpviz-influence thead th')].map(th => th.textContent)")
    assert head == ["parameter", "cell", "held-out point (row: features)", "all n points", "without it", "shift"]
    assert "<th" not in page.eval("document.querySelector('.gpviz-influence').textContent")
    rows = page.eval("""[...document.querySelectorAll('.gpviz-influence tbody tr')].map(tr => ({
        key: tr.dataset.key, index: +tr.dataset.index, h: tr.getBoundingClientRect().height,
        cells: [...tr.children].map(td => td.textContent)}))""")
    keys = list(pd.unique(inf["key"]))
    assert sorted({r["key"] for r in rows}) == sorted(keys)
    assert len(rows) == 3 * len(keys)  # three points per parameter, each a visible row
    assert all(r["h"] > 0 for r in rows)
    # each key's first row is the point of largest relative shift, with its row by feature name
    for key in keys:
        first = next(r for r in rows if r["key"] == key)
        mine = inf[inf["key"] == key]
        best = mine.loc[mine["rel_shift"].abs().idxmax()]
        assert first["index"] == int(best["index"])
        assert f"temp = {best['temp']:.4g}" in first["cells"][2] and f"time = {best['time']:.4g}" in first["cells"][2]
        assert first["cells"][5] == f"{100 * best['rel_shift']:+.1f}%"
