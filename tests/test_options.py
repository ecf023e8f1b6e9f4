"""One option set: feature_names, units, tasks, outputs, title mean the same at every entry point that
takes them; an option that does not apply, or an unknown one, is an InputError (never a TypeError)."""

from __future__ import annotations

import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, MultiTaskGP, SingleTaskGP
from botorch.models.transforms import Normalize
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.errors import InputError


def _data(n=12, d=2, m=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = 5.0 + 20.0 * torch.rand(n, d, generator=g, dtype=torch.float64)  # not unit-scaled: units matter
    Y = torch.cat([torch.sin(X[:, :1] / 4) * (j + 1) * 10 + 100 * j for j in range(m)], -1)
    return X, Y


def test_render_takes_tasks_and_outputs():
    X, Y = _data(m=2)
    fig = gpviz.render(SingleTaskGP(X, Y), outputs=["yield", "cost"], feature_names=["a", "b"], verdicts=False)
    assert fig.spec["member_names"] == ["yield", "cost"]  # the dots are named outputs in the hover text
    Xt = torch.cat([X, (torch.arange(len(X)) % 2).to(X).unsqueeze(-1)], -1)
    mt = MultiTaskGP(Xt, Y[:, :1], task_feature=2)
    labels = gpviz.render(mt, tasks=["lab", "field"], feature_names=["a", "b", "site"], verdicts=False).view.labels
    assert {"task_covar.v[lab]", "task_covar.v[field]"} <= set(labels.values())  # task names in the labels
    ml = ModelListGP(SingleTaskGP(X, Y[:, :1]), SingleTaskGP(X, Y[:, 1:]))
    assert "yield" in gpviz.render(ml, outputs=["yield", "cost"], verdicts=False).html()


@pytest.mark.parametrize("bad, match", [
    (dict(tasks=["a", "b"]), "no tasks"),
    (dict(outputs=["a"]), "one output"),
    (dict(unit="original"), "did you mean 'units'"),
    (dict(colour="red"), "unknown option 'colour'"),
])
def test_render_rejects_options_that_do_not_apply_with_input_error(bad, match):
    X, Y = _data()
    with pytest.raises(InputError, match=match):
        gpviz.render(SingleTaskGP(X, Y), **bad)


def test_model_expr_rejects_view_options_and_kernels_reject_tasks():
    X, Y = _data()
    model = SingleTaskGP(X, Y)
    assert gpviz.model_expr(model, units="original").units == "original"  # the printed expression takes units too
    with pytest.raises(InputError, match="unknown units: 'raw'"):
        gpviz.model_expr(model, units="raw")
    with pytest.raises(InputError, match="does not take title="):
        gpviz.model_expr(model, title="x")
    with pytest.raises(InputError, match="kernel"):
        gpviz.render(model.covar_module, tasks=["a"])
    with pytest.raises(InputError, match="outputs must be"):
        gpviz.model_expr(SingleTaskGP(*_data(m=2)), outputs="yield")
    fig = gpviz.render(model, verdicts=False)
    with pytest.raises(InputError, match="finished Figure"):
        gpviz.render(fig, title="again")


def test_fit_tracer_render_takes_the_same_options_and_render_passes_them_on():
    X, Y = _data()
    model = SingleTaskGP(X, Y, input_transform=Normalize(d=2))
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with gpviz.trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 10}})
    fig = tracer.render(feature_names=["width", "depth"], units="original", title="traced", verdicts=False)
    html = fig.html()
    assert "&#x27;width&#x27;" in html and "original inputs" in html and fig.title == "traced"
    assert fig.view.labels[next(k for k in fig.keys if "lengthscale" in k)] == "lengthscale[width]"
    again = gpviz.render(tracer, feature_names=["width", "depth"], units="original", title="traced", verdicts=False)
    assert again.spec == fig.spec
    with pytest.raises(InputError, match="no tasks"):
        tracer.render(tasks=["a"])
    with pytest.raises(InputError, match="unknown option"):
        tracer.render(unitz="original")
    with pytest.raises(InputError, match="FitTracer.render.. does not take element_id="):
        gpviz.render(tracer, element_id="x")


def test_render_of_a_sweep_passes_the_options_its_render_takes_and_names_the_rest():
    X, Y = _data(n=8)
    sweep = gpviz.cv_sweep(SingleTaskGP, X, Y, sizes=[5], repeats=1, progress=False,
                           fit_kwargs={"optimizer_kwargs": {"options": {"maxiter": 5}}})
    fig = gpviz.render(sweep, feature_names=["width", "depth"], title="named", verdicts=False)
    assert fig.title == "named" and "lengthscale[width]" in fig.view.labels.values()
    with pytest.raises(InputError, match=r"Sweep.render\(\) does not take tasks="):
        gpviz.render(sweep, tasks=["a"])
