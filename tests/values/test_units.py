"""Units: values in the model's own space or converted back to the data's units, per batch member."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import botorch.models as bm
from botorch.fit import fit_gpytorch_mll
from botorch.models.transforms import Normalize, Standardize
from gpytorch.kernels import RBFKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.errors import InputError
from gpviz.values.units import DataUnits, InputUnit, OutputUnit, to_units, unit_plan, with_data_units

from tests.models.test_zoo import _data


# --------------------------------------------------------------------------- #
# Units                                                                       #
# --------------------------------------------------------------------------- #


def test_units_option_is_validated_with_the_choices_listed():
    m = bm.SingleTaskGP(*_data())
    with pytest.raises(InputError, match=r"unknown units: 'si' \(must be one of \['model', 'original'\]\)"):
        gpviz.parameters(m, units="si")


def test_original_units_scale_each_lengthscale_by_its_input_range_and_outputs_by_sigma():
    X, Y = _data(n=12, d=3)
    X = X * torch.tensor([1.0, 10.0, 100.0]) + 5.0
    Y = 50.0 * Y + 7.0
    m = bm.SingleTaskGP(X, Y, covar_module=ScaleKernel(RBFKernel(ard_num_dims=3)),
                        input_transform=Normalize(3), outcome_transform=Standardize(1))
    m.eval()  # the transforms have learned their ranges and moments
    rng = (X.max(0).values - X.min(0).values).numpy()
    sd, mu = Y.std().item(), Y.mean().item()
    model = gpviz.parameters(m)
    orig = gpviz.parameters(m, units="original")
    for i in range(3):
        k = f"covar_module.base_kernel.lengthscale[{i}]"
        assert orig[k][0] == pytest.approx(model[k][0] * rng[i], rel=1e-12)
    assert orig["covar_module.outputscale"][0] == pytest.approx(model["covar_module.outputscale"][0] * sd**2)
    assert orig["likelihood.noise_covar.noise"][0] == pytest.approx(model["likelihood.noise_covar.noise"][0] * sd**2)
    assert orig["mean_module.constant"][0] == pytest.approx(model["mean_module.constant"][0] * sd + mu)
    long = gpviz.parameters(m, long=True, units="original")
    row = long[long.key == "covar_module.base_kernel.lengthscale[2]"].iloc[0]
    assert row.value == pytest.approx(orig["covar_module.base_kernel.lengthscale[2]"][0])
    assert row.space == "original inputs" and row.lower == pytest.approx(
        gpviz.parameters(m, long=True).set_index("key").loc["covar_module.base_kernel.lengthscale[2]", "lower"]
        * rng[2])
    assert long.set_index("key").loc["likelihood.noise_covar.noise", "space"] == "original outputs"
    _, labels = to_units(gpviz.model_expr(m), gpviz.parameters(m), "original")
    assert labels == {"Covariance kernel": "original inputs, original outputs",
                      "When comparing a point to itself, add noise": "original outputs",
                      "Mean": "original outputs"}
    page = gpviz.render(m, units="original").html()
    assert "original inputs, original outputs" in page


def test_quantities_without_an_exact_conversion_keep_model_units_and_say_why():
    X, Y = _data(n=12, d=2)
    X = X * torch.tensor([1.0, 10.0])
    m = bm.SingleTaskGP(X, Y, covar_module=RBFKernel(), input_transform=Normalize(2))  # one shared lengthscale
    m.eval()
    plan = unit_plan(gpviz.model_expr(m))
    assert "covar_module.lengthscale" not in plan.conversions
    assert plan.reasons["covar_module.lengthscale"] == "one lengthscale is shared by inputs of different ranges"
    assert plan.labels["Covariance kernel"].startswith("normalized inputs (lengthscales not converted)")
    # a default SingleTaskGP has no outputscale: its kernel stays in standardized units, labelled so
    m2 = bm.SingleTaskGP(*_data())
    labels = unit_plan(gpviz.model_expr(m2)).labels
    assert labels["Covariance kernel"] == ("original inputs; kernel scale in standardized outputs "
                                           "(no outputscale to multiply by σ²)")
    assert labels["When comparing a point to itself, add noise"] == "original outputs"


def test_batched_multi_output_models_convert_each_member_with_its_own_output_sigma():
    X, Y = _data(n=12)
    Y2 = torch.cat([Y, 100 * Y + 3], -1)
    m = bm.SingleTaskGP(X, Y2)
    m.eval()
    sd = Y2.std(0).numpy()
    model, orig = gpviz.parameters(m), gpviz.parameters(m, units="original")
    k = "likelihood.noise_covar.noise"
    assert np.allclose(orig[k].to_numpy(), model[k].to_numpy() * sd**2, rtol=1e-12)


def test_model_list_converts_each_output_with_its_own_transforms():
    X, Y = _data(n=12)
    m = bm.ModelListGP(
        bm.SingleTaskGP(X, Y, covar_module=ScaleKernel(RBFKernel(ard_num_dims=3))),
        bm.SingleTaskGP(3 * X, 1000 * Y + 5, covar_module=ScaleKernel(RBFKernel(ard_num_dims=3)),
                        input_transform=Normalize(3)))
    m.eval()
    model, orig = gpviz.parameters(m).iloc[0], gpviz.parameters(m, units="original").iloc[0]
    sd0, sd1 = Y.std().item(), (1000 * Y).std().item()
    k0, k1 = "models.0.likelihood.noise_covar.noise", "models.1.likelihood.noise_covar.noise"
    assert orig[k0] == pytest.approx(model[k0] * sd0**2) and orig[k1] == pytest.approx(model[k1] * sd1**2)
    ls = "models.{}.covar_module.base_kernel.lengthscale[1]"
    rng1 = (3 * X[:, 1]).max().item() - (3 * X[:, 1]).min().item()
    assert orig[ls.format(0)] == model[ls.format(0)]  # no input transform: already original
    assert orig[ls.format(1)] == pytest.approx(model[ls.format(1)] * rng1)
    _, labels = to_units(gpviz.model_expr(m, outputs=["a", "b"]), gpviz.parameters(m), "original")
    assert labels["b: Covariance kernel"] == labels["a: Covariance kernel"] == "original inputs, original outputs"


def test_loo_folds_convert_each_member_with_its_own_fold_ranges_and_moments():
    from botorch.cross_validation import gen_loo_cv_folds

    X, Y = _data(n=6, d=2)
    folds = gen_loo_cv_folds(X * torch.tensor([1.0, 10.0]), 7 * Y + 2)
    m = bm.SingleTaskGP(folds.train_X, folds.train_Y, input_transform=Normalize(2, batch_shape=torch.Size([6])))
    m.eval()
    model, orig = gpviz.parameters(m), gpviz.parameters(m, units="original")
    coef = m.input_transform.coefficient[:, 0, 1].numpy()
    assert len(set(np.round(coef, 9))) > 1  # the folds really have different ranges
    k = "covar_module.lengthscale[1]"
    assert np.allclose(orig[k].to_numpy(), model[k].to_numpy() * coef, rtol=1e-12)
    n = "likelihood.noise_covar.noise"
    var = (m.outcome_transform.stdvs[:, 0, 0] ** 2).numpy()
    assert np.allclose(orig[n].to_numpy(), model[n].to_numpy() * var, rtol=1e-12)


def test_to_units_converts_every_row_of_a_trace_by_its_member():
    X, Y = _data(n=12)
    m = bm.SingleTaskGP(X, torch.cat([Y, 10 * Y], -1), input_transform=Normalize(3))
    m.eval()
    expr = gpviz.model_expr(m)
    wide = gpviz.parameters(m)
    trace = pd.concat([wide.assign(i_timestep=t) for t in range(3)], ignore_index=True)
    conv, _ = gpviz.to_units(expr, trace, "original")
    once = gpviz.parameters(m, units="original")
    for t in range(3):
        step = conv[conv.i_timestep == t].drop(columns="i_timestep").reset_index(drop=True)
        pd.testing.assert_frame_equal(step, once)
    assert not trace.equals(conv) and gpviz.to_units(expr, trace, "model")[0] is trace


def _fit(model):
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    fit_gpytorch_mll(mll)
    model.eval()
    return model


@pytest.mark.slow
def test_original_units_equal_a_fit_on_raw_data():
    """The same model fit on normalized/standardized data and on raw data lands on the same optimum.

    No priors (they are not scale-invariant), matching initial values, a kernel
    with an outputscale and a constant mean: the two likelihoods differ only by
    a constant, so the optima map onto each other exactly.
    """
    g = torch.Generator().manual_seed(3)
    n, d = 16, 2
    Xr = torch.rand(n, d, generator=g, dtype=torch.float64) * torch.tensor([2.0, 30.0]) + torch.tensor([1.0, -5.0])
    Yr = (torch.sin(2.0 * Xr[:, :1]) + torch.cos(Xr[:, 1:] / 6.0)) * 40.0 + 300.0
    Yr = Yr + 4.0 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    rng = Xr.max(0).values - Xr.min(0).values
    sd, mu = Yr.std().item(), Yr.mean().item()

    def kernel():
        return ScaleKernel(RBFKernel(ard_num_dims=d))

    a = bm.SingleTaskGP(Xr, Yr, covar_module=kernel(), input_transform=Normalize(d),
                        outcome_transform=Standardize(1))
    b = bm.SingleTaskGP(Xr, Yr, covar_module=kernel(), outcome_transform=None)
    for m in (a, b):  # no priors: both fits optimize the same likelihood up to a change of units
        for _, module, _prior, _c, _s in list(m.named_priors()):
            module._priors.clear()
        assert not list(m.named_priors())
    with torch.no_grad():
        a.covar_module.base_kernel.lengthscale = torch.tensor([[0.3, 0.3]])
        a.covar_module.outputscale = torch.tensor(1.0)
        a.likelihood.noise = torch.tensor([0.05])
        a.mean_module.constant.fill_(0.0)
        b.covar_module.base_kernel.lengthscale = torch.tensor([[0.3, 0.3]]) * rng
        b.covar_module.outputscale = torch.tensor(sd**2)
        b.likelihood.noise = torch.tensor([0.05 * sd**2])
        b.mean_module.constant.fill_(mu)
    _fit(a)
    _fit(b)
    orig = gpviz.parameters(a, units="original").iloc[0]
    raw = gpviz.parameters(b).iloc[0]
    for i in range(d):
        k = f"covar_module.base_kernel.lengthscale[{i}]"
        assert orig[k] == pytest.approx(raw[k], rel=1e-3), k  # measured: agree to ~1e-5
    assert orig["likelihood.noise_covar.noise"] == pytest.approx(raw["likelihood.noise_covar.noise"], rel=1e-3)
    assert orig["covar_module.outputscale"] == pytest.approx(raw["covar_module.outputscale"], rel=1e-3)
    assert orig["mean_module.constant"] == pytest.approx(raw["mean_module.constant"], rel=1e-3)
    # and the model-unit values really differ (the test would catch a missing conversion)
    model = gpviz.parameters(a).iloc[0]
    assert model["covar_module.base_kernel.lengthscale[1]"] < 0.2 * raw["covar_module.base_kernel.lengthscale[1]"]


# --------------------------------------------------------------------------- #
# Data transformed outside the model (DataUnits, e.g. by Ax)                  #
# --------------------------------------------------------------------------- #


def _model():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(10, 3, generator=g) * torch.tensor([5.0, 1.0, 2.0])
    Y = 10 * X.sum(-1, keepdim=True) + 3
    m = bm.SingleTaskGP(X, Y, input_transform=Normalize(3), outcome_transform=Standardize(1))
    m.eval()
    return m


def test_data_units_compose_with_normalize_and_standardize():
    m = _model()
    data = DataUnits((InputUnit(2.0, "decades of a"), InputUnit(None, "", "b is logit-scaled"), InputUnit(1.0)),
                     (OutputUnit("y", 3.0, 1.0),), "inputs as Ax transforms them", "outputs standardized by Ax", "Ax")
    expr = with_data_units(gpviz.model_expr(m, ["log10(a)", "logit(b)", "c"]), data)
    assert {s.title: s.note for s in expr.sections}["Mean"] == "standardized outputs"  # the model's own, kept
    plan = unit_plan(expr)
    coef = m.input_transform.coefficient.reshape(-1).numpy()
    sigma_m = float(m.outcome_transform.stdvs.reshape(-1)[0])
    mu_m = float(m.outcome_transform.means.reshape(-1)[0])
    wide = gpviz.parameters(expr)
    out, labels = to_units(expr, wide, "original")
    ls = [k for k in expr.keys if "lengthscale" in k]
    np.testing.assert_allclose(out[ls[0]], wide[ls[0]] * coef[0] * 2.0, rtol=1e-12)
    np.testing.assert_allclose(out[ls[1]], wide[ls[1]])  # no linear conversion: unchanged, and said why
    assert plan.reasons[ls[1]] == "b is logit-scaled"
    np.testing.assert_allclose(out[ls[2]], wide[ls[2]] * coef[2], rtol=1e-12)
    assert plan.conversions[ls[0]].space == "decades of a"
    noise, mean = "likelihood.noise_covar.noise", "mean_module.constant"
    np.testing.assert_allclose(out[noise], wide[noise] * (3.0 * sigma_m) ** 2, rtol=1e-12)
    np.testing.assert_allclose(out[mean], 3.0 * (sigma_m * wide[mean] + mu_m) + 1.0, rtol=1e-12)
    assert "lengthscales not converted" in labels["Covariance kernel"]


def test_data_output_space_replaces_plain_outputs():
    g = torch.Generator().manual_seed(1)
    X = torch.rand(8, 2, generator=g)
    m = bm.SingleTaskGP(X, X.sum(-1, keepdim=True), outcome_transform=None)
    data = DataUnits((InputUnit(1.0), InputUnit(4.0)), (OutputUnit("y", 2.0, -1.0),), "", "outputs standardized by Ax",
                     "Ax")
    expr = with_data_units(gpviz.model_expr(m), data)
    notes = {s.title: s.note for s in expr.sections}
    assert notes["Mean"] == "outputs standardized by Ax" and notes["Covariance kernel"] == "inputs"
    wide = gpviz.parameters(expr)
    out, labels = to_units(expr, wide, "original")
    np.testing.assert_allclose(out["mean_module.constant"], 2.0 * wide["mean_module.constant"] - 1.0, rtol=1e-12)
    np.testing.assert_allclose(out["covar_module.lengthscale[1]"], 4.0 * wide["covar_module.lengthscale[1]"],
                               rtol=1e-12)
    assert labels["Mean"] == "original outputs"


def test_a_frame_with_more_members_than_the_model_is_refused_not_clipped():
    from botorch.cross_validation import gen_loo_cv_folds

    X, Y = _data(n=4, d=2)
    folds = gen_loo_cv_folds(X, 7 * Y + 2)
    m = bm.SingleTaskGP(folds.train_X, folds.train_Y)  # 4 members, each its own Standardize
    m.eval()
    expr = gpviz.model_expr(m)
    wide = gpviz.parameters(m)
    five = pd.concat([wide, wide.iloc[[3]].assign(i_model=4)], ignore_index=True)  # a fifth member it never had
    with pytest.raises(InputError, match=r"i_model=4, but the model's transforms give 4 member\(s\)"):
        to_units(expr, five, "original")
    long = gpviz.parameters(m, long=True)
    with pytest.raises(InputError, match=r"i_model=4, but the model's transforms give 4 member\(s\)"):
        to_units(expr, long.assign(i_model=long["i_model"] + 1), "original")
    # the four it has convert as each member's own transform says: y = sigma * c + mu (hand formula)
    ot = m.outcome_transform
    want = (m.mean_module.constant.reshape(-1) * ot.stdvs.reshape(-1) + ot.means.reshape(-1)).detach().numpy()
    got = to_units(expr, wide, "original")[0]["mean_module.constant"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
