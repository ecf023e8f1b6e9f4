"""Whole-model expressions of BoTorch's default models: sections, units, truthfulness, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.models import MixedSingleTaskGP, MultiTaskGP, SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from gpytorch.likelihoods.noise_models import HeteroskedasticNoise
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.errors import GpvizWarning, InputError
from gpviz.tree.nodes import Opaque, Part, iter_nodes
from gpviz.tree.printer import fmt_number
from gpviz.walk.walker import Walker


def _data(n=10, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(3 * X[:, :1]) + 0.1 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


def _models():
    X, Y = _data()
    Xt = torch.cat([X, (torch.arange(10) % 2).double().unsqueeze(-1)], -1)
    Xc = torch.cat([X, (torch.arange(10) % 3).double().unsqueeze(-1)], -1)
    folds = gen_loo_cv_folds(X, Y)
    return {
        "single": SingleTaskGP(X, Y),
        "single_normalized": SingleTaskGP(X, Y, input_transform=Normalize(3)),
        "loo_batch": SingleTaskGP(folds.train_X, folds.train_Y),
        "two_outputs": SingleTaskGP(X, torch.cat([Y, -Y], -1)),
        "multitask": MultiTaskGP(Xt, Y, task_feature=-1),
        "mixed": MixedSingleTaskGP(Xc, Y, cat_dims=[3]),
    }


@pytest.mark.parametrize("name", sorted(_models()))
def test_default_models_covariance_is_truthful(name):
    model = _models()[name]
    e = gpviz.model_expr(model, strict=True)
    assert not [n for n in iter_nodes(e.tree) if isinstance(n, Opaque)]
    d = model.train_inputs[0].shape[-1]
    g = torch.Generator().manual_seed(3)
    x1 = torch.rand(5, d, generator=g, dtype=torch.float64)
    x2 = torch.rand(4, d, generator=g, dtype=torch.float64)
    if name in ("multitask", "mixed"):
        x1[:, -1] = torch.tensor([0.0, 1, 0, 1, 0]) * (1 if name == "multitask" else 2)
        x2[:, -1] = torch.tensor([1.0, 0, 1, 1])
    with torch.no_grad():
        for a, b in ((x1, x1), (x1, x2)):
            torch.testing.assert_close(e.evaluate(a, b), model.covar_module(a, b).to_dense(), atol=1e-8, rtol=0)


def test_sections_units_and_text():
    X, Y = _data()
    model = SingleTaskGP(X, Y, input_transform=Normalize(3))
    e = gpviz.model_expr(model, feature_names=["lr", "epochs", "wd"])
    titles = [s.title for s in e.sections]
    assert titles == ["Covariance kernel", "When comparing a point to itself, add noise", "Mean"]
    assert e.sections[0].note == "normalized inputs"
    assert e.sections[1].note == e.sections[2].note == "standardized outputs"
    assert e.keys == ("covar_module.lengthscale[0]", "covar_module.lengthscale[1]", "covar_module.lengthscale[2]",
                      "likelihood.noise_covar.noise", "mean_module.constant")
    text = str(e)
    assert text.startswith("SingleTaskGP: Gaussian process\nCovariance kernel (normalized inputs):\n    rbf(")
    assert "compare('epochs') / " in text


def test_batched_model_one_tree_values_per_member():
    X, Y = _data()
    folds = gen_loo_cv_folds(X, Y)
    model = SingleTaskGP(folds.train_X, folds.train_Y)
    with torch.no_grad():
        model.covar_module.raw_lengthscale.copy_(torch.linspace(0.1, 2.0, 10 * 3).reshape(10, 1, 3))
    e = gpviz.model_expr(model)
    assert tuple(e.batch_shape) == (10,)
    assert "batch of 10 members" in str(e)
    frame = gpviz.parameters(model)
    assert list(frame.columns) == ["i_model", *e.keys] and len(frame) == 10
    assert frame["covar_module.lengthscale[2]"].nunique() == 10


def test_mll_is_accepted_and_model_left_as_found():
    X, Y = _data()
    model = SingleTaskGP(X, Y)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    e = gpviz.model_expr(mll)
    str(e)
    gpviz.parameters(mll, long=True)
    assert model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("bad", [torch.nn.Linear(2, 1), object(), "SingleTaskGP"])
def test_not_a_model_names_the_type(bad):
    with pytest.raises(InputError, match=type(bad).__name__):
        gpviz.model_expr(bad)


def test_feature_names_must_match_model_inputs():
    X, Y = _data()
    with pytest.raises(InputError, match="2 names but SingleTaskGP has 3 input features"):
        gpviz.model_expr(SingleTaskGP(X, Y), feature_names=["a", "b"])


def test_import_prints_no_warning_with_newest_setuptools():
    code = "import gpviz; gpviz.kernel_expr"
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == "" and plain.stderr == ""
    # with every warning shown, none is issued from gpviz's own files (the stack's own deprecations
    # may be): judged by each warning's origin file, not by a substring of printed paths, which
    # would flag a clone folder named "gpviz" that only appears in a venv path
    record = (
        "import warnings, json\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import gpviz; gpviz.kernel_expr\n"
        "print(json.dumps([[w.filename, str(w.message)] for w in caught]))\n")
    loud = subprocess.run([sys.executable, "-c", record], capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0, loud.stderr
    package = Path(gpviz.__file__).resolve().parent
    caught = json.loads(loud.stdout)
    ours = [(f, m) for f, m in caught if Path(f).resolve().is_relative_to(package)]
    assert ours == [], ours
    assert not [m for _, m in caught if "pkg_resources" in m]
    import setuptools

    assert int(setuptools.__version__.split(".")[0]) >= 81  # the venv really has the newest setuptools


# --------------------------------------------------------------------------- #
# transform_inputs: the model's input transform, applied on request         #
# --------------------------------------------------------------------------- #


def _x(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_transform_inputs_applies_the_models_normalize_and_the_default_does_not():
    X = _x(10, 2) * torch.tensor([10.0, 200.0]) + 5
    model = SingleTaskGP(X, X[:, :1].sin(), input_transform=Normalize(d=2)).eval()
    expr = gpviz.model_expr(model)
    x_raw = X[:4]
    with torch.no_grad():
        want = model.covar_module(model.input_transform(x_raw)).to_dense()
        torch.testing.assert_close(expr.evaluate(x_raw, transform_inputs=True), want, atol=1e-8, rtol=0)
        torch.testing.assert_close(expr.evaluate(model.input_transform(x_raw)), want, atol=1e-8, rtol=0)
    assert model.input_transform.training is False  # the mode is left as found
    model.train()
    expr.evaluate(x_raw, transform_inputs=True)
    assert model.input_transform.training is True
    assert "transform_inputs=True" in type(expr).evaluate.__doc__ and "default ``False``" in \
        type(expr).evaluate.__doc__
    with pytest.raises(InputError, match="no input_transform"):
        gpviz.model_expr(SingleTaskGP(_x(8, 2), _x(8, 1))).evaluate(_x(3, 2), transform_inputs=True)


# -- an unreadable noise is said, never dropped ------------------------------------------------------------------

def test_an_unreadable_noise_is_a_warning_and_a_noted_section_not_a_silent_omission(monkeypatch):
    X = torch.rand(6, 2, dtype=torch.float64)
    model = SingleTaskGP(X, X.sum(-1, keepdim=True))
    params = Walker.params

    def broken(self, module, path, name, role=None):  # a deliberately broken reader: the noise cannot be read
        if name == "noise":
            raise RuntimeError("constraint lost")
        return params(self, module, path, name, role)

    monkeypatch.setattr(Walker, "params", broken)
    with pytest.warns(GpvizWarning, match=r"noise of GaussianLikelihood at likelihood could not be read "
                                          r"\(RuntimeError: constraint lost\)"):
        expr = gpviz.model_expr(model)
    (noise,) = [s for s in expr.sections if s.part == Part.noise]
    assert noise.note == "not read: RuntimeError: constraint lost"
    assert "not read: RuntimeError: constraint lost" in str(expr)
    with pytest.warns(GpvizWarning):
        page = gpviz.render(model, verdicts=False).html()
    assert "not read: RuntimeError: constraint lost" in page
    with pytest.raises(RuntimeError, match="constraint lost"):
        gpviz.model_expr(model, strict=True)  # strict (tests): raised, not noted
    monkeypatch.undo()
    # a heteroskedastic noise (no raw_noise) is a model of x, as before: no warning
    het = SingleTaskGP(X, X.sum(-1, keepdim=True))
    het.likelihood.noise_covar = HeteroskedasticNoise(SingleTaskGP(X, X.sum(-1, keepdim=True)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GpvizWarning)
        assert "HeteroskedasticNoise(x)" in str(gpviz.model_expr(het))


# -- the printed expression in original units ---------------------------------------------------------------------

def test_model_expr_in_original_units_prints_values_converted_with_the_models_own_transforms():
    g = torch.Generator().manual_seed(3)
    X = 10 + 40 * torch.rand(12, 2, generator=g, dtype=torch.float64)  # inputs in [10, 50]
    Y = 5 + 3 * torch.sin(X[:, :1] / 8)
    model = SingleTaskGP(X, Y, input_transform=Normalize(d=2), outcome_transform=Standardize(m=1))
    with torch.no_grad():
        model.covar_module.lengthscale = torch.tensor([[0.3, 0.7]], dtype=torch.float64)
        model.likelihood.noise = torch.tensor([0.02], dtype=torch.float64)
        model.mean_module.constant.fill_(0.25)
    model.eval()
    # BoTorch's own numbers: Normalize's range, Standardize's moments
    rng = (model.input_transform.bounds[1] - model.input_transform.bounds[0]).detach()
    sd, mu = float(model.outcome_transform.stdvs.reshape(-1)[0]), float(model.outcome_transform.means.reshape(-1)[0])
    want = {"covar_module.lengthscale[0]": 0.3 * float(rng[0]), "covar_module.lengthscale[1]": 0.7 * float(rng[1]),
            "likelihood.noise_covar.noise": 0.02 * sd ** 2, "mean_module.constant": 0.25 * sd + mu}
    expr = gpviz.model_expr(model, ["a", "b"], units="original")
    text = str(expr)
    assert expr.units == "original" and "original inputs" in text and "original outputs" in text
    for key, value in want.items():
        assert expr.values()[key] == pytest.approx(value, rel=1e-12)
        assert fmt_number(value) in text
    plain = str(gpviz.model_expr(model, ["a", "b"]))
    assert fmt_number(0.3) in plain and fmt_number(want["covar_module.lengthscale[0]"]) not in plain
    # one option, one meaning: parameters and pages of such an expression are in original units too
    pd.testing.assert_frame_equal(gpviz.parameters(expr), gpviz.parameters(model, ["a", "b"], units="original"))
    assert (gpviz.render(expr, verdicts=False, element_id="e").html()
            == gpviz.render(gpviz.model_expr(model, ["a", "b"]), units="original", verdicts=False,
                            element_id="e").html())
    # an explicit units="model" is honoured (was drawn in original units: the default could not be told apart)
    plain_expr = gpviz.model_expr(model, ["a", "b"])
    pd.testing.assert_frame_equal(gpviz.parameters(expr, units="model"), gpviz.parameters(plain_expr))
    assert gpviz.parameters(expr, units="model")["covar_module.lengthscale[0]"].iloc[0] == pytest.approx(0.3)
    assert (gpviz.render(expr, units="model", verdicts=False, element_id="e").html()
            == gpviz.render(plain_expr, verdicts=False, element_id="e").html())
    with pytest.raises(InputError, match="computed in the model's units"):
        expr.evaluate(X[:3])
    with pytest.raises(InputError, match=r"unknown units: 'data' \(must be one of \['model', 'original'\]\)"):
        gpviz.model_expr(model, units="data")
