"""Feature names everywhere a parameter is named, and the notation key, in a real headless Chromium.

One small sweep (2 sizes, 1 repeat, a tight lengthscale prior so the verdict table has rows) serves
the sweep page, the comparison page and the notation checks; one browser page loads each file.
"""

from __future__ import annotations

import re

import pytest
import torch
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from gpytorch.kernels import RBFKernel
from gpytorch.priors import LogNormalPrior

import gpviz

pytestmark = pytest.mark.browser

NAMES = ["log_lr", "log_wd", "dropout"]
DIGIT_LABEL = re.compile(r"lengthscale\[\d")
TABLE_ROWS = ("Array.from(document.querySelectorAll('table.gpviz-verdict-table td.gpviz-verdict-key'))"
              ".map(e => [e.textContent, e.dataset.key])")
HOVER = ("Array.from(document.querySelectorAll('.gpviz-param .gpviz-chart'))"
         ".map(e => e.getAttribute('title'))")


def _make(train_X, train_Y):
    # a tight lengthscale prior: lengthscales are held by it, so the page has a verdict table
    kernel = RBFKernel(ard_num_dims=train_X.shape[-1], batch_shape=train_X.shape[:-2],
                       lengthscale_prior=LogNormalPrior(0.0, 0.05))
    return SingleTaskGP(train_X, train_Y, covar_module=kernel)


@pytest.fixture(scope="module")
def sweep():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(14, 3, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X[:, :1]) + 0.05 * torch.randn(14, 1, generator=g, dtype=torch.float64)
    return gpviz.cv_sweep(_make, X, Y, sizes=[6, 10], repeats=1, seed=0, progress=False,
                          fit_kwargs={"optimizer_kwargs": {"options": {"maxiter": 30}}})


def _drawn(loaded, fig_count: int = 1) -> None:
    """No console error, every chart of the page drawn."""
    assert loaded.console_errors == []
    n = loaded.eval("document.querySelectorAll('.gpviz-param').length")
    assert n > 0 and loaded.eval("document.querySelectorAll('.gpviz-param[data-drawn=\"1\"]').length") == n
    assert loaded.eval("document.querySelectorAll('.gpviz-figure[data-drawn=\"1\"]').length") == fig_count


def test_sweep_and_comparison_pages_name_features_in_tables_and_hover_text(sweep, tmp_path, open_page):
    fig = sweep.render(feature_names=NAMES, verdicts=True)
    loaded = open_page(fig.save(tmp_path / "sweep.html"), screenshot="sweep_names.png")
    _drawn(loaded)
    rows = loaded.eval(TABLE_ROWS)
    assert rows, "the sweep page has a verdict table"
    labels = {text for text, _ in rows}
    assert labels & {f"lengthscale[{n}]" for n in NAMES}
    assert not any(DIGIT_LABEL.search(t) for t in labels)
    assert all(key and key != text for text, key in rows)  # the stable key stays in data-key (and the hover)
    tips = loaded.eval(HOVER)
    firsts = {t.split("\n")[0].split(" = ")[0] for t in tips}
    assert {f"lengthscale[{n}]" for n in NAMES} <= firsts
    assert not any(DIGIT_LABEL.search(t) for t in tips)
    # names left, charts right: the three lengthscale charts start at one x whatever the name's length
    lefts = loaded.eval("Array.from(document.querySelectorAll('.gpviz-param[data-label^=\"lengthscale\"] canvas'))"
                        ".map(e => e.getBoundingClientRect().left)")
    assert len(lefts) == len(NAMES) and max(lefts) - min(lefts) < 1.0

    page = gpviz.compare({"tight": sweep, "again": sweep}, feature_names=NAMES)
    loaded = open_page(page.save(tmp_path / "cmp.html"), screenshot="compare_names.png")
    _drawn(loaded, fig_count=2)
    rows = loaded.eval(TABLE_ROWS)
    assert rows and not any(DIGIT_LABEL.search(text) for text, _ in rows)
    assert {text for text, _ in rows} & {f"lengthscale[{n}]" for n in NAMES}
    assert not any(DIGIT_LABEL.search(t) for t in loaded.eval(HOVER))


def test_every_page_has_a_notation_key_of_exactly_its_functions(sweep, tmp_path, open_page):
    g = torch.Generator().manual_seed(1)
    X = torch.rand(12, 3, generator=g, dtype=torch.float64)
    X[:, 2] = torch.randint(0, 3, (12,), generator=g).to(X)
    Y = X[:, :1] + 0.1 * torch.randn(12, 1, generator=g, dtype=torch.float64)
    pages = {
        "single": (gpviz.render(SingleTaskGP(X, Y), feature_names=["a", "b", "c"]), ["rbf", "norm_l2", "compare"]),
        "mixed": (gpviz.render(MixedSingleTaskGP(X, Y, cat_dims=[2]), feature_names=["a", "b", "opt"]),
                  ["* s", "rbf", "norm_l2", "compare", "exp", "mean", "differ"]),
        "sweep": (sweep.render(feature_names=NAMES, verdicts=False), ["rbf", "norm_l2", "compare"]),
    }
    for name, (fig, want) in pages.items():
        loaded = open_page(fig.save(tmp_path / f"{name}.html"), screenshot=f"notation_{name}.png")
        _drawn(loaded)
        got = loaded.eval("Array.from(document.querySelectorAll('.gpviz-notation li')).map(e => e.dataset.fn)")
        assert sorted(got) == sorted(want), name
        # the key is collapsible, and every function name in the code explains itself on hover
        assert loaded.eval("document.querySelector('details.gpviz-notation') !== null")
        spans = loaded.eval("Array.from(document.querySelectorAll('.gpviz-code .gpviz-fn'))"
                            ".map(e => [e.textContent, e.getAttribute('title')])")
        lines = loaded.eval("Object.fromEntries(Array.from(document.querySelectorAll('.gpviz-notation li'))"
                            ".map(e => [e.dataset.fn, e.textContent]))")
        assert spans
        for text, title in spans:
            assert title == lines[text]
        code = loaded.eval("Array.from(document.querySelectorAll('.gpviz-code')).map(e => e.textContent).join(' ')")
        for fn in want:
            if fn != "* s":
                assert fn + "(" in code, (name, fn)  # listed functions are used ...
        for fn in ("matern_25", "task_covar", "dot", "per_task"):
            assert fn not in got  # ... and unused ones are not listed
