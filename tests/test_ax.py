"""gpviz on the models Ax fits: a real Ax Client, its surrogate named and scaled from the experiment."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import gpviz
from gpviz.errors import InputError
from gpviz.priors import verdicts
from tests.sweep.scale import assert_same_sweep

from tests.ax_helpers import (LAYERS, LR, MOMENTUM, NAMES, OPTIMIZERS, attach_trials, loss,  # noqa: F401
                               new_client, require_ax, run_trials)

require_ax()

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ax_run():
    """One real Ax experiment, shared by this module: 5 initialization trials (center + Sobol), one trial
    Ax's BoTorch node generates, 9 more completed trials, then one traced ``get_next_trials`` (its fit
    sees all 15 completed trials: 10 past Sobol)."""
    logging.getLogger("ax").setLevel(logging.WARNING)
    client = new_client()
    run_trials(client, 5)
    run_trials(client, 1)           # the first BoTorch fit and candidate
    attach_trials(client, 9, seed=1)
    with gpviz.trace_fits(feature_names=client) as fits:
        client.get_next_trials(max_trials=1)
    return SimpleNamespace(client=client, fits=fits, expr=gpviz.model_expr(client))


def _adapter(client):
    return client._generation_strategy.adapter


# --------------------------------------------------------------------------- #
# Names                                                                       #
# --------------------------------------------------------------------------- #

def test_the_printed_expression_names_every_parameter(ax_run):
    text = str(ax_run.expr)
    for name in NAMES:
        assert f"compare('{name}')" in text
    assert "x0" not in text and "optimizer_OH_PARAM" not in text
    assert "metric loss" in text.splitlines()[0] and "Ax Client 'tune'" in text.splitlines()[0]
    assert [f.name for f in ax_run.expr.features] == NAMES


def test_parameters_columns_equal_the_expression_keys(ax_run):
    frame = gpviz.parameters(ax_run.client)
    assert list(frame.columns) == ["i_model", *ax_run.expr.keys]
    long = gpviz.parameters(ax_run.client, long=True)
    assert list(dict.fromkeys(long["key"])) == list(ax_run.expr.keys)


def test_every_ax_object_gives_the_same_model(ax_run):
    client = ax_run.client
    strategy = client._generation_strategy
    adapter = strategy.adapter
    for obj in (strategy, adapter, adapter.generator, adapter.generator.surrogate):
        expr = gpviz.model_expr(obj)
        assert expr.module is ax_run.expr.module
        assert expr.keys == ax_run.expr.keys
    assert [f.name for f in gpviz.model_expr(strategy).features] == NAMES
    assert [f.name for f in gpviz.model_expr(adapter).features] == NAMES
    # without the adapter there are no transforms to read: Ax's own column names, no conversion claimed
    bare = gpviz.model_expr(adapter.generator.surrogate)
    assert [f.name for f in bare.features][:3] == ["lr", "momentum", "layers"]
    assert [f.name for f in bare.features][3:] == ["optimizer[one-hot 0]", "optimizer[one-hot 1]",
                                                    "optimizer[one-hot 2]"]


def test_the_expression_evaluates_to_the_surrogates_kernel(ax_run):
    model = ax_run.expr.module
    assert model is _adapter(ax_run.client).botorch_model
    x = model.train_inputs[0]
    assert x.dtype == torch.float64 and x.shape == (15, 6)
    with torch.no_grad():
        expected = model.covar_module(x, x).to_dense()
        got = ax_run.expr.evaluate(x, x)
    assert torch.allclose(got, expected, atol=1e-8, rtol=0)


# --------------------------------------------------------------------------- #
# Units                                                                       #
# --------------------------------------------------------------------------- #

def test_original_units_lengthscales_agree_with_the_search_space_bounds(ax_run):
    model_units = gpviz.parameters(ax_run.client)
    original = gpviz.parameters(ax_run.client, units="original")
    keys = ax_run.expr.keys
    ls = model_units[list(keys[:6])].to_numpy()[0]
    # by hand: BoTorch's Normalize spans each column's search-space range; lr is searched in log10
    ranges = [math.log10(LR[1]) - math.log10(LR[0]), MOMENTUM[1] - MOMENTUM[0], LAYERS[1] - LAYERS[0], 1, 1, 1]
    np.testing.assert_allclose(original[list(keys[:6])].to_numpy()[0], ls * np.array(ranges), rtol=1e-12)
    # outputs: Ax standardized the losses before the model saw them (y' = (y - mean) / std)
    ys = np.array([loss(t.arm.parameters) for t in ax_run.client._experiment.trials.values()
                   if t.status.is_completed])
    assert len(ys) == 15
    mean, std = ys.mean(), ys.std(ddof=1)
    noise_key = "likelihood.noise_covar.noise"
    mean_key = "mean_module.constant"
    np.testing.assert_allclose(original[noise_key], model_units[noise_key] * std**2, rtol=1e-6)
    np.testing.assert_allclose(original[mean_key], model_units[mean_key] * std + mean, rtol=1e-6)


def test_every_view_says_which_units_it_uses(ax_run):
    expr = ax_run.expr
    notes = {s.title: s.note for s in expr.sections}
    assert notes["Covariance kernel"] == "normalized inputs, after Ax's transforms"
    assert notes["Mean"] == "outputs standardized by Ax"
    _, labels = gpviz.to_units(expr, gpviz.parameters(expr), "original")
    # a lengthscale on a log-scaled parameter is in decades, never shown as if linear
    assert "log10(lr): lengthscale in decades of lr" in labels["Covariance kernel"]
    assert labels["Mean"] == "original outputs"
    long = gpviz.parameters(ax_run.client, long=True, units="original")
    space = dict(zip(long["key"], long["space"]))
    assert space["covar_module.lengthscale[0]"] == "decades of lr"
    assert space["covar_module.lengthscale[1]"] == "original inputs"


def test_prior_pull_reads_the_surrogate(ax_run):
    pull = gpviz.prior_pull(ax_run.client)
    assert list(dict.fromkeys(pull["key"])) == list(ax_run.expr.keys)
    assert set(pull["verdict"]) <= {verdicts.FREE, verdicts.HELD, verdicts.SET, verdicts.AT_BOUND}


# --------------------------------------------------------------------------- #
# Fits Ax makes                                                               #
# --------------------------------------------------------------------------- #

def test_trace_fits_records_the_fit_ax_made(ax_run):
    fits = ax_run.fits
    assert len(fits) >= 1
    model = ax_run.expr.module
    mine = [t for t in fits if t.mll.model is model]
    assert len(mine) == 1
    tracer = mine[0]
    frames = tracer.frames
    assert frames["i_timestep"].nunique() > 3
    last = frames[frames["i_timestep"] == frames["i_timestep"].max()]
    now = gpviz.parameters(model)
    keys = list(ax_run.expr.keys)
    np.testing.assert_array_equal(last[keys].to_numpy(), now[keys].to_numpy())
    # the tracer took the client's expression when the block ended: names and Ax's units
    assert [f.name for f in tracer.expr.features] == NAMES
    assert tracer.summary()["steps"].iloc[0] >= 1


# --------------------------------------------------------------------------- #
# The experiment over time                                                    #
# --------------------------------------------------------------------------- #

def test_cv_sweep_refits_the_client_in_trial_order(ax_run):
    sweep = gpviz.cv_sweep(ax_run.client, sizes=[5, 8], repeats=1, order="trials", progress=False)
    assert list(sweep.scores["status"]) == ["ok", "ok"]
    assert sweep.subsets[(0, 0)].tolist() == list(range(5)) and sweep.subsets[(1, 0)].tolist() == list(range(8))
    assert sweep.trial_indices == tuple(sorted(sweep.trial_indices)) and len(sweep.trial_indices) == 15
    assert sweep.feature_names == NAMES
    # the surrogate's own specification: same class, kernel and input transform as Ax's model
    model, ax_model = sweep.model, ax_run.expr.module
    assert type(model) is type(ax_model) and type(model.covar_module) is type(ax_model.covar_module)
    assert torch.equal(model.input_transform.coefficient.reshape(-1, 6)[0],
                       ax_model.input_transform.coefficient.reshape(6))
    assert set(sweep.expression().keys) == set(ax_run.expr.keys)
    assert sweep.parameters.groupby("size").size().to_dict() == {5: 5, 8: 8}
    # the factory refitting Ax's specification travels to worker processes and fits the same there, bit for bit
    assert_same_sweep(sweep, gpviz.cv_sweep(ax_run.client, sizes=[5, 8], order="trials", progress=False, workers=2))
    with pytest.raises(InputError, match="repeats=1"):
        gpviz.cv_sweep(ax_run.client, sizes=[5], repeats=2, order="trials")
    with pytest.raises(InputError, match="pass no X or Y"):
        gpviz.cv_sweep(ax_run.client, torch.zeros(3, 6), torch.zeros(3, 1), sizes=[3])


def test_refit_false_over_trials_is_botorchs_efficient_loo_cv_and_says_what_it_is(ax_run):
    """cv_sweep(client, order="trials", refit=False): the cheap reconstruction of an experiment already run."""
    from botorch.cross_validation import efficient_loo_cv
    from botorch.fit import fit_gpytorch_mll

    sweep = gpviz.cv_sweep(ax_run.client, sizes=[6, 15], order="trials", refit=False, progress=False)
    assert list(sweep.scores["status"]) == ["ok", "ok"] and sweep.mode == "fixed"
    problem = gpviz.ax.cv_problem(ax_run.client)
    # the reference without gpviz: Ax's specification on the first 15 trials, fitted, BoTorch's closed-form LOO
    model = problem.make_model(problem.X, problem.Y)
    mll = problem.mll_cls(model.likelihood, model)
    fit_gpytorch_mll(mll)
    cv = efficient_loo_cv(model, observation_noise=True)
    pred = sweep.predictions[sweep.predictions["size"] == 15]
    np.testing.assert_allclose(pred["pred_mean"].to_numpy(), cv.posterior.mean.reshape(-1).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pred["y_true"].to_numpy(), problem.Y.reshape(-1).numpy())
    # the page says what the rows are: the experiment, the metric, the first n trials in the order Ax ran them
    for text in (sweep.mode_note, sweep.render(verdicts=False).html()):
        assert "Ax Client 'tune'" in text.replace("&#x27;", "'").replace("&#39;", "'")
        assert "metric loss, 15 completed trials" in text
        assert "n = the first n trials in the order Ax ran them" in text


def test_an_ax_sweep_in_original_units_converts_through_axs_transforms(ax_run):
    """The sweep's lengthscale of the log-scaled lr, in decades of lr: the cell model's own lengthscale times
    the parameter's range as Ax's transforms leave it (read off Ax's search space and its Log / UnitX transform
    objects), as the single-model page converts it, and said in the same words."""
    from gpviz.view.adapters import sweep_in_units, sweep_info

    sweep = gpviz.cv_sweep(ax_run.client, sizes=[8, 15], order="trials", refit=False, progress=False)
    transforms = _adapter(ax_run.client).transforms
    logged = set(transforms["Log"].transform_parameters)
    assert logged == {"lr"}
    unit_x = transforms["UnitX"].bounds if "UnitX" in transforms else {}  # Ax 1.3's default has none
    span = {}
    for name, p in ax_run.client._experiment.search_space.parameters.items():
        if name in ("lr", "momentum", "layers"):
            lo, hi = (math.log10(p.lower), math.log10(p.upper)) if name in logged else (p.lower, p.upper)
            ux = unit_x.get(name)
            span[name] = (hi - lo) * ((ux[1] - ux[0]) / (hi - lo) if ux else 1.0)
    assert span["lr"] == pytest.approx(3.0) and span["layers"] == pytest.approx(7.0)
    expr = sweep.expression()
    params, info, shown = sweep_in_units(sweep, expr, sweep_info(sweep, expr), "original")
    for size in sweep.sizes:
        model = sweep.models(size, 0)  # the cell's own BoTorch model: its lengthscales, nothing of gpviz's
        ls = model.covar_module.lengthscale.detach().reshape(-1).numpy()
        got = params[params["size"] == size].iloc[0]
        for d, name in enumerate(["lr", "momentum", "layers"]):
            assert got[f"covar_module.lengthscale[{d}]"] == pytest.approx(ls[d] * span[name], rel=1e-9)
    space = dict(zip(info["key"], info["space"]))
    assert space["covar_module.lengthscale[0]"] == "decades of lr"
    assert space["covar_module.lengthscale[1]"] == "original inputs"
    assert "log10(lr): lengthscale in decades of lr" in shown.sections[0].note
    assert expr.sections[0].note == "normalized inputs, after Ax's transforms"
    html = sweep.render(units="original", verdicts=False).html()
    assert "decades of lr" in html and "original outputs" in html
    # model units: the sweep's own numbers, untouched
    model_params, _, _ = sweep_in_units(sweep, expr, sweep_info(sweep, expr), "model")
    assert model_params is sweep.parameters


# --------------------------------------------------------------------------- #
# Several metrics                                                             #
# --------------------------------------------------------------------------- #

def _two_metric_client(missing: set[int]):
    """Objective ``loss`` and tracking metric ``time`` (absent on the trials in ``missing``), fitted by
    ``GenerationStrategy.fit`` (Ax's public way to fit without generating a candidate)."""
    client = new_client("two")
    client.configure_tracking_metrics(["time"])
    rng = np.random.default_rng(3)
    for i in range(8):
        trials = client.get_next_trials(max_trials=1) if i < 5 else {}
        if not trials:
            p = {"lr": float(10 ** rng.uniform(-4, -1)), "momentum": float(rng.uniform(*MOMENTUM)),
                 "layers": int(rng.integers(1, 9)), "optimizer": OPTIMIZERS[i % 3]}
            trials = {client.attach_trial(parameters=p): p}
        for index, p in trials.items():
            data = {"loss": loss(p)}
            if index not in missing:
                data["time"] = 0.3 * p["layers"] + p["momentum"]
            client.complete_trial(index, raw_data=data)
    client._generation_strategy.fit(client._experiment)
    return client


def test_several_metrics_say_which_metric_is_which():
    # every trial has both metrics: Ax fits one batched model, one member per metric
    batched = gpviz.model_expr(_two_metric_client(missing=set()))
    assert type(batched.module).__name__ == "SingleTaskGP" and tuple(batched.batch_shape) == (2,)
    assert batched.member_names == ("loss", "time") and "metrics loss, time" in batched.title
    assert "batch of 2 metrics: loss, time; values of loss" in batched.text().splitlines()[0]
    wide = gpviz.parameters(batched)
    out = gpviz.to_units(batched, wide, "original")[0]
    ratio = (out["likelihood.noise_covar.noise"] / wide["likelihood.noise_covar.noise"]).to_numpy()
    assert ratio[0] != ratio[1]  # each metric converts with its own σ²
    # 'time' missing on two trials: no block design, so Ax fits a ModelListGP, one group of sections per metric
    client = _two_metric_client(missing={5, 6})
    listed = gpviz.model_expr(client)
    assert type(listed.module).__name__ == "ModelListGP" and listed.outputs == ("loss", "time")
    titles = [s.title for s in listed.sections]
    assert "loss: Covariance kernel" in titles and "time: Mean" in titles
    assert all(s.note == "normalized inputs, after Ax's transforms" for s in listed.sections
               if s.title.endswith("Covariance kernel"))
    pull = gpviz.prior_pull(client)
    assert set(pull["key"]) == set(listed.keys)


# --------------------------------------------------------------------------- #
# Before Ax has a model                                                       #
# --------------------------------------------------------------------------- #

def test_a_client_with_no_fitted_model_is_an_input_error():
    client = new_client("early")
    with pytest.raises(InputError, match="no generation strategy yet"):
        gpviz.model_expr(client)
    run_trials(client, 2)
    for call in (gpviz.model_expr, gpviz.parameters, gpviz.render, gpviz.prior_pull):
        with pytest.raises(InputError, match=r"no fitted BoTorch model yet.*about 3 more completed trial"):
            call(client)
    with pytest.raises(InputError, match="no fitted BoTorch model"):
        gpviz.cv_sweep(client, sizes=[3])


def test_gpviz_imports_without_ax_and_never_imports_it():
    code = ("import sys\n"
            "import gpviz\n"
            "assert not any(m == 'ax' or m.startswith('ax.') for m in sys.modules), 'gpviz imported Ax'\n"
            "sys.modules['ax'] = None\n"  # now Ax cannot be imported at all
            "from gpviz.ax import is_ax_object\n"
            "assert not is_ax_object(1)\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


# --------------------------------------------------------------------------- #
# In a browser                                                                #
# --------------------------------------------------------------------------- #

ALL_PARAMS = """() => [...document.querySelectorAll('.gpviz-param')].map(e => ({
    key: e.dataset.key, drawn: e.dataset.drawn, canvas: !!e.querySelector('canvas')}))"""


@pytest.mark.browser
def test_the_page_loads_in_chromium_with_every_chart_drawn(ax_run, tmp_path, open_page):
    for units in ("model", "original"):
        fig = gpviz.render(ax_run.client, units=units)
        loaded = open_page(fig.save(tmp_path / f"ax_{units}.html"), screenshot=f"ax_model_{units}.png")
        assert loaded.console_errors == []
        rows = loaded.eval(ALL_PARAMS)
        assert {r["key"] for r in rows} == set(ax_run.expr.keys)
        assert all(r["drawn"] == "1" and r["canvas"] for r in rows), rows
        text = loaded.eval("document.body.innerText")
        assert "compare('log10(lr)')" in text and "compare('optimizer=adam')" in text
        assert "Ax Client 'tune'" in text
        if units == "original":
            assert "decades of lr" in text and "original outputs" in text
        else:
            assert "outputs standardized by Ax" in text


@pytest.mark.browser
def test_the_traced_fit_page_loads(ax_run, tmp_path, open_page):
    fig = ax_run.fits[-1].render()
    loaded = open_page(fig.save(tmp_path / "ax_fit.html"), screenshot="ax_fit.png")
    assert loaded.console_errors == []
    rows = loaded.eval(ALL_PARAMS)
    assert rows and all(r["drawn"] == "1" for r in rows)
