"""Every BoTorch model family: expressions, parameter frames, rendered pages, units and feature names."""

from __future__ import annotations

import html
import inspect
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import botorch.models as bm

import gpviz
from gpviz.errors import InputError, UnsupportedError
from gpviz.tree.nodes import Param, TaskCovar, iter_nodes
from gpviz.models.expr import KroneckerModelExpr, ModelListExpr
from gpviz.models.families import unwrap_model

from tests.extras import required
from tests.models.saas import HAS_JAX, SAAS_NAMES, fitted_saas


def _data(n=10, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(3 * X).sum(-1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


def _with_task(X, tasks=(0, 5, 9)):
    t = torch.tensor([tasks[i % len(tasks)] for i in range(X.shape[0])], dtype=X.dtype)
    return torch.cat([X[:, :-1], t.unsqueeze(-1)], -1)


def _with_cat(X, levels=3):
    c = (torch.arange(X.shape[0]) % levels).to(X.dtype)
    return torch.cat([X[:, :-1], c.unsqueeze(-1)], -1)


def _page_text(page: str) -> str:
    """The visible code of a page: tags stripped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


# --------------------------------------------------------------------------- #
# The zoo: every class exported by botorch.models                             #
# --------------------------------------------------------------------------- #

def _build(name):
    """(model, x1, x2, covariance modules to compare with) for a class name of botorch.models."""
    X, Y = _data()
    Y2 = torch.cat([Y, -Y + 0.3 * X[:, :1]], -1)
    x1, x2 = X[:4], X[5:8]
    if name == "SingleTaskGP":
        m = bm.SingleTaskGP(X, Y)
    elif name == "SingleTaskMultiFidelityGP":
        m = bm.SingleTaskMultiFidelityGP(X, Y, data_fidelities=[2])
    elif name == "MixedSingleTaskGP":
        X, x1, x2 = _with_cat(X), _with_cat(X)[:4], _with_cat(X)[5:8]
        m = bm.MixedSingleTaskGP(X, Y, cat_dims=[2])
    elif name == "HigherOrderGP":
        m = bm.HigherOrderGP(X, torch.randn(10, 2, 3, generator=torch.Generator().manual_seed(1)))
        return m, x1, x2, lambda a, b: m.covar_modules[0](a, b).to_dense()
    elif name == "AdditiveMapSaasSingleTaskGP":
        m = bm.AdditiveMapSaasSingleTaskGP(X, Y)
    elif name == "EnsembleMapSaasSingleTaskGP":
        m = bm.EnsembleMapSaasSingleTaskGP(X, Y, num_taus=4)
    elif name == "ModelListGP":
        m = bm.ModelListGP(bm.SingleTaskGP(X, Y), bm.SingleTaskGP(X, Y2))
        return m, x1, x2, lambda a, b: torch.stack(
            [s.covar_module(a, b).to_dense().expand(2, a.shape[0], b.shape[0]) for s in m.models])
    elif name == "ModelList":
        m = bm.ModelList(bm.SingleTaskGP(X, Y), bm.SingleTaskGP(X, Y2[:, 1:]))
        return m, x1, x2, lambda a, b: torch.stack([s.covar_module(a, b).to_dense() for s in m.models])
    elif name == "KroneckerMultiTaskGP":
        m = bm.KroneckerMultiTaskGP(X, Y2)
    elif name == "MultiTaskGP":
        Xt = _with_task(X)
        m = bm.MultiTaskGP(Xt, Y, task_feature=-1)
        # the covariance module sees task indices (0, 1, 2), not task values
        x1 = torch.cat([X[:4, :2], torch.tensor([[0.0], [1], [2], [1]])], -1)
        x2 = torch.cat([X[5:8, :2], torch.tensor([[2.0], [0], [1]])], -1)
    elif name == "PairwiseGP":
        m = bm.PairwiseGP(X, torch.tensor([[0, 1], [2, 3], [4, 1]]))
    elif name == "PairwiseLaplaceMarginalLogLikelihood":
        gp = bm.PairwiseGP(X, torch.tensor([[0, 1], [2, 3], [4, 1]]))
        m = bm.PairwiseLaplaceMarginalLogLikelihood(gp.likelihood, gp)
        return m, x1, x2, lambda a, b: gp.covar_module(a, b).to_dense()
    elif name in ("SingleTaskVariationalGP", "ApproximateGPyTorchModel"):
        cls = getattr(bm, name)
        m = cls(train_X=X, train_Y=Y, inducing_points=4) if name == "SingleTaskVariationalGP" else cls(
            train_X=X, train_Y=Y)
        return m, x1, x2, lambda a, b: m.model.covar_module(a, b).to_dense()
    else:
        raise KeyError(name)
    return m, x1, x2, lambda a, b: m.covar_module(a, b).to_dense()


GP_CLASSES = ["SingleTaskGP", "SingleTaskMultiFidelityGP", "MixedSingleTaskGP", "HigherOrderGP",
              "AdditiveMapSaasSingleTaskGP", "EnsembleMapSaasSingleTaskGP", "ModelListGP", "ModelList",
              "KroneckerMultiTaskGP", "MultiTaskGP", "PairwiseGP", "PairwiseLaplaceMarginalLogLikelihood",
              "SingleTaskVariationalGP", "ApproximateGPyTorchModel"]
# Exported classes that are not Gaussian processes: no covariance kernel to show, so
# model_expr / parameters refuse them with an InputError naming the class.
NOT_GP = {
    # f(x) = a + x b: a deterministic affine map (no kernel, no noise)
    "AffineDeterministicModel": lambda: bm.AffineDeterministicModel(torch.ones(3, 1)),
    # f(x) = any user callable
    "GenericDeterministicModel": lambda: bm.GenericDeterministicModel(lambda X: X.sum(-1, keepdim=True)),
    # the posterior mean of another model as a deterministic function (show the wrapped GP instead)
    "PosteriorMeanModel": lambda: bm.PosteriorMeanModel(bm.SingleTaskGP(*_data())),
    # a cost model: fixed_cost + fidelity weights (no learned parameters)
    "AffineFidelityCostModel": lambda: bm.AffineFidelityCostModel({2: 1.0}),
}


def test_the_zoo_covers_every_class_botorch_models_exports():
    exported = {n for n in bm.__all__ if inspect.isclass(getattr(bm, n))}
    assert exported == set(GP_CLASSES) | set(NOT_GP), (
        f"new: {exported - set(GP_CLASSES) - set(NOT_GP)}, gone: {set(GP_CLASSES) | set(NOT_GP) - exported}")


@pytest.mark.parametrize("name", GP_CLASSES)
def test_every_gp_class_gives_a_truthful_expression_frames_and_a_page(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BoTorch's input-scaling warnings on random data
        model, x1, x2, covar = _build(name)
        expr = gpviz.model_expr(model, strict=True)
        wide = gpviz.parameters(model)
        long = gpviz.parameters(model, long=True)
        page = gpviz.render(model).html()
    assert list(wide.columns) == ["i_model", *expr.keys]
    assert len(wide) == int(torch.Size(expr.batch_shape).numel())
    assert set(long["key"]) == set(expr.keys)
    assert wide[list(expr.keys)].notna().all().all()
    assert page.count('class="gpviz-param') == sum(1 for n in iter_nodes(expr.tree) if isinstance(n, Param))
    # truthful: the tree alone reproduces the covariance module (opaque parts delegate to their module)
    with torch.no_grad():
        want = covar(x1, x2)
        got = expr.evaluate(x1, x2)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-8, rtol=0), (got - want).abs().max()
    # the text names the class and shows every section
    text = expr.text()
    assert type(unwrap_model(model)).__name__ in text
    for sec in expr.sections:
        assert sec.title in text


@pytest.mark.parametrize("name", GP_CLASSES)
def test_feature_names_from_a_dataframe_reach_every_family(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, x1, _, _ = _build(name)
        frame = pd.DataFrame(x1.numpy(), columns=["alpha", "beta", "gamma"])
        expr = gpviz.model_expr(model, frame)
        text = expr.text(width=400)
    for f in ("x0", "x1", "x2"):
        assert f"'{f}'" not in text
    if not expr.opaque:  # an opaque kernel shows its parameters, not its features
        assert "compare('alpha')" in text and "compare('beta')" in text
    assert "'gamma'" in text  # the multi-fidelity GP's fidelity column too (x1['gamma'])


@pytest.mark.parametrize("name", sorted(NOT_GP))
def test_models_that_are_not_gps_are_refused_by_name(name):
    model = NOT_GP[name]()
    with pytest.raises(InputError, match=name):
        gpviz.model_expr(model)
    with pytest.raises(InputError, match=name):
        gpviz.parameters(model)


def test_no_kernel_is_opaque_in_the_zoo():
    # the multi-fidelity GP's LinearTruncatedFidelityKernel was the last opaque one
    opaque = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in GP_CLASSES:
            opaque[name] = gpviz.model_expr(_build(name)[0]).opaque
    assert {k: v for k, v in opaque.items() if v} == {}


# --------------------------------------------------------------------------- #
# Families                                                                    #
# --------------------------------------------------------------------------- #


def test_fixed_noise_shows_train_yvar_and_has_no_noise_key():
    X, Y = _data()
    m = bm.SingleTaskGP(X, Y, train_Yvar=torch.full_like(Y, 0.01))
    expr = gpviz.model_expr(m)
    assert "train_Yvar[i]" in expr.text()
    assert not [k for k in expr.keys if "noise" in k]


def test_canary_botorch_has_no_heteroskedastic_single_task_gp():
    """A fact about BoTorch, not gpviz: if the class returns, the zoo must classify it."""
    # BoTorch removed it (#2616); nothing to support, and the zoo test would see it come back.
    assert not hasattr(bm, "HeteroskedasticSingleTaskGP")


def test_multitask_gp_names_tasks_from_their_values_and_has_per_task_noise():
    X, Y = _data()
    Xt = _with_task(X, (0, 5, 9))
    names = pd.DataFrame(Xt.numpy(), columns=["temp", "time", "site"])
    m = bm.MultiTaskGP(Xt, Y, task_feature=-1)
    expr = gpviz.model_expr(m, names)
    (tc,) = [n for n in iter_nodes(expr.tree) if isinstance(n, TaskCovar)]
    assert tc.tasks == ("0", "5", "9") and tc.name == "site"
    text = expr.text()
    assert "x1['site'], x2['site']" in text and "unit_task='0'" in text
    assert "per_task([" in text and "x['site']" in text
    assert [k for k in expr.keys if "noise" in k] == [f"likelihood.noise_covar.noise[{i}]" for i in range(3)]
    named = gpviz.model_expr(m, names, tasks=["Berlin", "Oslo", "Rome"])
    assert "unit_task='Berlin'" in named.text()
    corr = named.task_correlation()
    assert list(corr.index) == ["Berlin", "Oslo", "Rome"] and list(corr.columns) == ["Berlin", "Oslo", "Rome"]
    assert np.allclose(np.diag(corr.to_numpy()), 1.0)
    C = m.covar_module.kernels[1].covar_matrix.to_dense().detach()
    d = C.diagonal().sqrt()
    assert np.allclose(corr.to_numpy(), (C / d[:, None] / d[None, :]).numpy(), atol=1e-12)


def test_lcemgp_task_covariance_outside_the_kernel_is_marked_and_columns_shift():
    from botorch.models.contextual_multioutput import LCEMGP

    X, Y = _data(n=12)
    X[:, 0] = (torch.arange(12) % 3).to(X)  # the task column first: the kernel sees columns 1, 2 as 0, 1
    m = LCEMGP(X, Y, task_feature=0)
    with torch.no_grad():
        m.covar_module.lengthscale = torch.tensor([[0.2, 3.0]])
    expr = gpviz.model_expr(m, ["site", "a", "b"], strict=True)
    text = expr.text()
    assert "compare('a') / 0.2" in text and "compare('b') / 3" in text
    assert "LCEMGP.task_covar_module(x1['site'], x2['site'])" in text and "not shown" in text
    x = X[:, 1:]
    assert torch.allclose(expr.evaluate(x[:4], x[5:8]), m.covar_module(x[:4], x[5:8]).to_dense(), atol=1e-10)


def test_kronecker_multitask_evaluates_interleaved_like_multitask_kernel():
    X, Y = _data()
    m = bm.KroneckerMultiTaskGP(X, torch.cat([Y, 2 * Y], -1))
    expr = gpviz.model_expr(m, ["a", "b", "c"])
    assert isinstance(expr, KroneckerModelExpr)
    got = expr.evaluate(X[:4], X[:3])
    assert got.shape == (8, 6)
    assert torch.allclose(got, m.covar_module(X[:4], X[:3]).to_dense(), atol=1e-10)
    assert "x1['task'], x2['task']" in expr.text()
    assert "likelihood.task_noises[1]" in expr.keys and "likelihood.noise" in expr.keys


def test_model_list_one_section_group_per_named_output_with_members_per_submodel():
    X, Y = _data()
    m = bm.ModelListGP(bm.SingleTaskGP(X, Y), bm.SingleTaskGP(X, torch.cat([Y, -Y], -1)))
    expr = gpviz.model_expr(m, ["a", "b", "c"], outputs=["yield", "cost"])
    assert isinstance(expr, ModelListExpr)
    assert [s.title for s in expr.sections][:3] == [
        "yield: Covariance kernel", "yield: When comparing a point to itself, add noise", "yield: Mean"]
    assert any(s.title.startswith("cost: ") for s in expr.sections)
    assert all(k.startswith(("models.0.", "models.1.")) for k in expr.keys)
    assert "models.0.covar_module.lengthscale[2]" in expr.keys
    wide = gpviz.parameters(m)
    assert len(wide) == 2  # the second sub-model has two outputs; the first broadcasts over them
    assert wide["models.0.likelihood.noise_covar.noise"].nunique() == 1
    assert np.allclose(wide["models.1.likelihood.noise_covar.noise"],
                       m.models[1].likelihood.noise.detach().reshape(-1).numpy())
    assert torch.allclose(expr.evaluate(X[:3], output=1), m.models[1].covar_module(X[:3]).to_dense())
    with pytest.raises(InputError, match="outputs has 1 names but ModelListGP has 2 outputs"):
        gpviz.model_expr(m, outputs=["only"])
    with pytest.raises(InputError, match="output 5 out of range"):
        expr.evaluate(X[:3], output=5)


def test_model_list_of_incompatible_batches_is_refused_with_the_shapes_and_mll_is_unwrapped():
    from gpytorch.mlls import SumMarginalLogLikelihood

    from gpviz.errors import UnsupportedError

    X, Y = _data()
    m = bm.ModelListGP(bm.SingleTaskGP(X, torch.cat([Y, Y], -1)), bm.SingleTaskGP(X, torch.cat([Y, Y, Y], -1)))
    with pytest.raises(UnsupportedError, match=r"batch shapes \[\[2\], \[3\]\], which do not broadcast"):
        gpviz.model_expr(m)
    ok = bm.ModelListGP(bm.SingleTaskGP(X, Y), bm.SingleTaskGP(X, 2 * Y))
    mll = SumMarginalLogLikelihood(ok.likelihood, ok)
    assert gpviz.model_expr(mll).keys == gpviz.model_expr(ok).keys
    assert list(gpviz.parameters(mll).columns) == ["i_model", *gpviz.model_expr(ok).keys]


def test_variational_gp_summarizes_variational_parameters_instead_of_keying_them():
    X, Y = _data(n=30)
    m = bm.SingleTaskVariationalGP(X, Y, inducing_points=8)
    expr = gpviz.model_expr(m)
    assert not [k for k in expr.keys if "variational" in k or "inducing" in k]
    assert "model.covar_module.lengthscale[0]" in expr.keys and "likelihood.noise_covar.noise" in expr.keys
    assert "over 8 learned inducing points" in expr.text()
    assert expr.sections[-1].title == "Variational posterior (summarized)"


def test_mixed_model_with_dataframe_names_carries_them_through_active_dims():
    X, Y = _data()
    Xc = _with_cat(X)
    frame = pd.DataFrame(Xc.numpy(), columns=["lr", "momentum", "optimizer"])
    m = bm.MixedSingleTaskGP(Xc, Y, cat_dims=[2])
    expr = gpviz.model_expr(m, frame)
    text = expr.text(width=200)
    assert "differ('optimizer')" in text and "compare('lr')" in text and "compare('momentum')" in text
    assert "compare('optimizer')" not in text and "x0" not in text
    # the same names through parameters() and through the rendered page
    assert list(gpviz.parameters(m, feature_names=frame).columns) == ["i_model", *expr.keys]
    page = gpviz.render(m, feature_names=frame).html()
    assert "differ('optimizer')" in _page_text(page) and "compare('lr')" in _page_text(page)
    with pytest.raises(InputError, match="2 names but MixedSingleTaskGP has 3 input features"):
        gpviz.model_expr(m, ["a", "b"])


@pytest.mark.slow
@pytest.mark.skipif(not HAS_JAX and not required(), reason="jax and numpyro (the `fully-bayesian` extra) are not installed")
def test_saas_fully_bayesian_members_are_mcmc_samples():
    m, X = fitted_saas()
    expr = gpviz.model_expr(m, SAAS_NAMES)
    assert expr.member_label == "MCMC samples" and tuple(expr.batch_shape) == (2,)
    assert "2 MCMC samples" in expr.text()
    wide = gpviz.parameters(m)
    assert len(wide) == 2
    ls = m.covar_module.base_kernel.lengthscale.detach().reshape(2, 4).numpy()
    assert np.allclose(wide[[f"covar_module.base_kernel.lengthscale[{i}]" for i in range(4)]].to_numpy(), ls)
    assert torch.allclose(expr.evaluate(X[:4], X[5:8]), m.covar_module(X[:4], X[5:8]).to_dense(), atol=1e-8)
    assert gpviz.render(m).html().count('class="gpviz-param') == len(expr.keys)


@pytest.mark.skipif(not HAS_JAX and not required(), reason="the fully-bayesian extra (jax, numpyro) is not installed")
def test_prior_pull_refuses_a_fully_bayesian_model_and_leaves_it_intact():
    from gpviz.errors import UnsupportedError

    m, X = fitted_saas()
    before = m.covar_module(X[:3], X[:3]).to_dense().detach().clone()
    with pytest.raises(UnsupportedError, match="SaasFullyBayesianSingleTaskGP is fully Bayesian"):
        gpviz.prior_pull(m)
    assert m.covar_module is not None  # BoTorch drops MCMC samples on model.train()
    torch.testing.assert_close(m.covar_module(X[:3], X[:3]).to_dense().detach(), before)


# --------------------------------------------------------------------------- #
# LatentKroneckerGP (botorch.models.latent_kronecker_gp, not exported)        #
# --------------------------------------------------------------------------- #

def _latent_kronecker():
    """Built as its docstring shows: ``LatentKroneckerGP(train_X, train_T, train_Y)``, with missing entries."""
    from botorch.models.latent_kronecker_gp import LatentKroneckerGP

    X, _ = _data(n=6, d=2)
    T = torch.linspace(0, 1, 4, dtype=torch.float64).unsqueeze(-1)
    Y = torch.sin(3 * X[:, :1] + 2 * T.T)
    Y[1, 2] = Y[4, 0] = float("nan")  # what the model exists for: a grid with holes
    model = LatentKroneckerGP(X, T, Y)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model, X


def test_latent_kronecker_gp_is_a_kernel_over_x_times_a_kernel_over_t_with_its_own_values():
    model, X = _latent_kronecker()
    expr = gpviz.model_expr(model, ["a", "b"], strict=True)
    wide = gpviz.parameters(model)
    page = gpviz.render(model).html()
    titles = [s.title for s in expr.sections]
    assert titles[:2] == ["Covariance kernel", "Times, over the grid t"] and "Mean" in titles
    text = expr.text(width=400)
    assert "compare('a')" in text and "compare('b')" in text and "compare('t')" in text
    # the values are the model's own, read from its modules by hand
    with torch.no_grad():
        expected = {"covar_module_X.lengthscale[0]": model.covar_module_X.lengthscale[0, 0],
                    "covar_module_X.lengthscale[1]": model.covar_module_X.lengthscale[0, 1],
                    "covar_module_T.outputscale": model.covar_module_T.outputscale,
                    "covar_module_T.base_kernel.lengthscale": model.covar_module_T.base_kernel.lengthscale[0, 0],
                    "likelihood.noise_covar.noise": model.likelihood.noise[0]}
    # one key per parameter element of the model (named_parameters: 2 + 1 + 1 + 1 elements)
    assert sum(p.numel() for _, p in model.named_parameters()) == len(expected)
    assert list(wide.columns) == ["i_model", *expected]
    for key, want in expected.items():
        assert wide.loc[0, key] == pytest.approx(float(want), rel=1e-12, abs=0), key
        assert f'data-key="{key}"' in page
    # the covariance section is the model's kernel over x (GPyTorch's own matrix)
    with torch.no_grad():
        torch.testing.assert_close(expr.evaluate(X[:3], X[3:]), model.covar_module_X(X[:3], X[3:]).to_dense(),
                                   atol=1e-10, rtol=0)
    # prior_pull's curvature of its likelihood disagreed with finite differences: a typed refusal, never numbers
    with pytest.raises(UnsupportedError, match="cannot judge a LatentKroneckerGP"):
        gpviz.prior_pull(model)
