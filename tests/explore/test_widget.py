"""The Explorer's Python face: values, set, reset, metrics and slices as the page receives them; Ax clients."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.models import SingleTaskGP

import gpviz
from gpviz.errors import InputError
from gpviz.explorer.widget import Explorer, explore


def _model():
    g = torch.Generator().manual_seed(8)
    X = torch.rand(12, 2, generator=g, dtype=torch.float64)
    return SingleTaskGP(X, torch.cos(3 * X).sum(-1, keepdim=True))


def test_the_page_state_follows_set_and_reset_and_is_json():
    model = _model()
    w = explore(model, feature_names=["u", "v"])
    assert isinstance(w, Explorer)
    fitted = dict(w.values)
    before = w.metrics["loo_nlpd"]
    w.set("likelihood.noise_covar.noise", 0.3)
    assert w.values["likelihood.noise_covar.noise"] == pytest.approx(0.3)
    assert w.metrics["loo_nlpd"] == pytest.approx(w.state.metrics().loo_nlpd) and w.metrics["loo_nlpd"] != before
    assert w.fitted_metrics["loo_nlpd"] == pytest.approx(before)
    assert isinstance(w.slices, pd.DataFrame) and set(w.slices["input"]) == {"u", "v"}
    assert [c["input"] for c in w.curves] == ["u", "v"] and len(w.curves[0]["mean"]) == len(w.curves[0]["x"])
    json.dumps({k: getattr(w, k) for k in ("segments", "params", "values", "metrics", "curves", "near")})
    # every key the page can drag is printed in the expression
    assert {s["key"] for s in w.segments if "key" in s} == set(w.values)
    w.reset()
    assert w.values == pytest.approx(fitted) and w.metrics["loo_nlpd"] == pytest.approx(before)
    with pytest.raises(InputError):
        w.set("likelihood.noise_covar.noise", 0.0)


def test_a_refused_request_says_why_and_changes_nothing():
    w = explore(_model())
    values = dict(w.values)
    w.request = {"seq": 4, "key": "covar_module.lengthscale[0]", "value": float("nan")}
    assert "finite" in w.error and w.done == 4 and w.values == values
    w.request = {"seq": 5, "key": "covar_module.lengthscale[0]", "value": 2.0}
    assert w.error == "" and w.done == 5 and w.values["covar_module.lengthscale[0]"] == pytest.approx(2.0)


@pytest.mark.slow
def test_an_ax_client_is_explored_with_its_feature_names_and_left_unchanged():
    ax_test = pytest.importorskip("tests.test_ax")  # skips where the ax extra is not installed
    logging.getLogger("ax").setLevel(logging.WARNING)
    client = ax_test.new_client()
    ax_test.run_trials(client, 6)  # 5 initialization trials, then Ax fits its BoTorch model
    w = explore(client)
    assert [c["input"] for c in w.curves] == ax_test.NAMES
    model = client._generation_strategy.adapter.generator.surrogate.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(k for k in w.values if "lengthscale" in k)
    w.set(key, w.values[key] * 2)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():  # the fitted log likelihood is GPyTorch's on the surrogate itself
        model.train()
        out = model.likelihood(model(*model.train_inputs), *model.train_inputs)
        ll = float(out.log_prob(model.train_targets))
        model.eval()
    assert w.fitted_metrics["log_likelihood"] == pytest.approx(ll, rel=1e-6)


def test_explore_and_explorer_are_public():
    import gpviz

    assert gpviz.explore is explore and gpviz.Explorer is Explorer
    assert {"explore", "Explorer"} <= set(gpviz.__all__)


def test_the_slices_sent_to_the_page_are_the_slices_at_drawing_precision():
    w = explore(_model(), feature_names=["u", "v"])
    w.set("covar_module.lengthscale[0]", 0.7)
    full = w.slices  # model units; the page's: the outputs unstandardized (no input transform here)
    units = w.state.original_units()
    assert units is not None and w.slice_units == "original units"
    for curve in w.curves:
        part = full[full["input"] == curve["input"]]
        for col in ("x", "mean", "lower", "upper"):
            want = part[col].to_numpy() * (1 if col == "x" else units.y_scale) + (0 if col == "x" else units.y_offset)
            # 5 significant digits of the largest magnitude: far below a pixel of a 180 px chart
            assert abs(np.asarray(curve[col]) - want).max() <= 1e-4 * abs(want).max()
            assert len(json.dumps(curve[col])) < len(json.dumps(want.tolist()))


def test_the_page_draws_the_slices_in_original_units_where_the_models_transforms_invert():
    from botorch.models.transforms import Normalize

    g = torch.Generator().manual_seed(9)
    X = 5 + 3 * torch.rand(15, 2, generator=g, dtype=torch.float64)  # inputs in [5, 8], outputs around 40
    model = SingleTaskGP(X, 40 + torch.sin(X).sum(-1, keepdim=True), input_transform=Normalize(2))
    w = explore(model, feature_names=["u", "v"])
    w.set("covar_module.lengthscale[1]", 0.6)
    assert w.slice_units == "original units"
    full = w.slices  # model units: normalized inputs, standardized outputs
    assert full["x"].between(0, 1).all()
    # BoTorch's own posterior at the same points in the data's units (it transforms the inputs and untransforms
    # the outputs itself), on a copy given the same values
    ref = explore(model).state.model
    ref.covar_module.lengthscale = torch.tensor([[w.values["covar_module.lengthscale[0]"], 0.6]], dtype=torch.float64)
    ref.eval()
    point = ref.input_transform.untransform(torch.tensor([w.state.point()], dtype=torch.float64))[0]
    for j, curve in enumerate(w.curves):
        rows = point.repeat(len(curve["x"]), 1)
        rows[:, j] = torch.tensor(curve["x"], dtype=torch.float64)
        assert 5 <= min(curve["x"]) and max(curve["x"]) <= 8
        with torch.no_grad():
            post = ref.posterior(rows)
        mean, sd = post.mean.reshape(-1).numpy(), post.variance.sqrt().reshape(-1).numpy()
        assert np.asarray(curve["mean"]) == pytest.approx(mean, rel=1e-4)
        drawn = 2e-4 * np.abs(curve["upper"]).max()  # both ends sent at 5 significant digits of ~40
        assert np.asarray(curve["upper"]) - np.asarray(curve["lower"]) == pytest.approx(4 * sd, rel=1e-3, abs=drawn)
        near = next(n for n in w.near if n["input"] == curve["input"])
        assert set(np.round(near["y"], 2)) <= set(np.round((40 + torch.sin(X).sum(-1)).numpy(), 2))
    plain = explore(SingleTaskGP(X, 40 + torch.sin(X).sum(-1, keepdim=True), outcome_transform=None))
    assert plain.slice_units == "model units" and plain.state.original_units() is None


def test_the_charts_carry_the_model_pages_chart_data_and_the_models_own_values():
    g = torch.Generator().manual_seed(9)
    X = torch.rand(3, 10, 2, generator=g, dtype=torch.float64)
    model = SingleTaskGP(X, torch.sin(4 * X).sum(-1, keepdim=True))
    with torch.no_grad():
        model.likelihood.noise_covar.noise = torch.tensor([[0.01], [0.1], [0.5]], dtype=torch.float64)
        model.covar_module.lengthscale = torch.tensor([[[0.2, 2.0]], [[0.3, 3.0]], [[0.4, 4.0]]], dtype=torch.float64)
    w = explore(model)
    # what gpviz.js's chart is handed per key is what the model's page hands it (its spec's axes and metadata)
    page = gpviz.render(model, verdicts=False, profiles=False).spec
    assert w.charts["axes"] == json.loads(json.dumps(page["axes"]))
    assert w.charts["params"] == json.loads(json.dumps(page["params"]))
    # each member's value, read from the model's own tensors (one dot per member)
    assert w.charts["values"]["likelihood.noise_covar.noise"] == pytest.approx([0.01, 0.1, 0.5])
    ls = model.covar_module.lengthscale.detach()
    for j in range(2):
        assert w.charts["values"][f"covar_module.lengthscale[{j}]"] == pytest.approx(ls[:, 0, j].tolist())
    json.dumps(w.charts)
