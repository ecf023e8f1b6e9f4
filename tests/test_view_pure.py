"""The view layer is pure: records hold data, and each page is made once (imports: tests/test_structure.py).

Counts the work a page costs by patching the class that does it: walks of a model
(``Walker`` instances) per ``render(model)``, figures built per ``compare()``.
"""

from __future__ import annotations

import dataclasses

import torch
from botorch.models import SingleTaskGP

import gpviz
import gpviz.html.figure as html_figure
import gpviz.walk.walker as walker
from gpviz.view.records import Note, ViewData


def test_view_records_hold_no_markup():
    annotations = " ".join(str(f.type) for f in dataclasses.fields(ViewData))
    assert "Markup" not in annotations and "extra" not in {f.name for f in dataclasses.fields(ViewData)}
    assert dataclasses.fields(Note)[1].type in (str, "str")


def _count(monkeypatch, cls) -> dict:
    seen = {"n": 0}
    init = cls.__init__

    def counting(self, *args, **kwargs):
        seen["n"] += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", counting)
    return seen


def _data(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return X, torch.sin(6 * X[:, :1]) + 0.05 * torch.randn(n, 1, generator=g, dtype=torch.float64)


def test_render_of_a_model_walks_it_once(monkeypatch):
    model = SingleTaskGP(*_data())
    walks = _count(monkeypatch, walker.Walker)
    fig = gpviz.render(model, verdicts=True)
    assert fig.view.judged  # the verdicts were computed, on the page's own expression
    assert walks["n"] == 1


def test_compare_builds_each_figure_once(monkeypatch):
    X, Y = _data(10)
    fit = {"optimizer_kwargs": {"options": {"maxiter": 15}}}
    sweeps = {label: gpviz.cv_sweep(lambda tx, ty: SingleTaskGP(tx, ty), X * scale, Y, [5, 8], 1, progress=False,
                                    fit_kwargs=fit)
              for label, scale in (("a", 1.0), ("b", 4.0))}
    built = _count(monkeypatch, html_figure.Figure)
    page = gpviz.compare(sweeps, pull_repeats=0)
    assert built["n"] == len(sweeps)
    # stacked views share each key's axis
    for key in page.figures["a"].keys:
        axes = [f.spec["axes"][f.spec["params"][key]["axis"]] for f in page.figures.values()]
        assert {(a["lo"], a["hi"]) for a in axes} == {(axes[0]["lo"], axes[0]["hi"])}
