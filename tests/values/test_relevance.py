"""Inputs ranked by lengthscale over training range; references by hand: BoTorch's Normalize written out as
(x - lower) / (upper - lower), the ranges and fractions computed from the raw tensors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Normalize

import gpviz
from gpviz.values.relevance import input_relevance, relevance_frame

SCALES = torch.tensor([1.0, 10.0, 100.0, 1.0], dtype=torch.float64)
LS = [0.5, 2.0, 0.1, 5.0]


def _model(bounds=None, n=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 4, generator=g, dtype=torch.float64) * SCALES
    model = SingleTaskGP(X, torch.rand(n, 1, generator=g, dtype=torch.float64),
                         input_transform=Normalize(4, bounds=bounds))
    with torch.no_grad():
        model.covar_module.lengthscale = torch.tensor([LS], dtype=torch.float64)
    return model, X


def test_fraction_is_the_lengthscale_over_the_normalized_range_by_hand():
    bounds = torch.stack([torch.zeros(4), SCALES * 2]).to(torch.float64)  # fixed bounds: ranges below 1
    model, X = _model(bounds)
    lo, hi = bounds[0], bounds[1]
    by_hand = ((X - lo) / (hi - lo)).numpy()  # BoTorch's Normalize, written out
    span = by_hand.max(0) - by_hand.min(0)
    frac = np.array(LS) / span
    got = {r.input: r for r in input_relevance(gpviz.model_expr(model, ["a", "b", "c", "d"]))}
    for j, name in enumerate("abcd"):
        assert got[name].input_range == pytest.approx(span[j], rel=1e-12)
        assert got[name].fraction == pytest.approx(frac[j], rel=1e-12)
        # the same fraction in original units: lengthscale x (upper - lower) over the raw range
        raw = (X[:, j].max() - X[:, j].min()).item()
        assert got[name].fraction == pytest.approx(LS[j] * (hi[j] - lo[j]).item() / raw, rel=1e-12)
    assert [r.input for r in input_relevance(gpviz.model_expr(model, list("abcd")))] == \
        [n for _, n in sorted(zip(frac, "abcd"))]
    # the model is left as found (eval() swapped BoTorch's training inputs; train() again)
    assert model.training and torch.equal(model.train_inputs[0], X)


def test_a_choice_parameters_one_hot_columns_are_read_together():
    model, X = _model()  # learned bounds: every range is 1
    names = ["lr", "opt_OH_PARAM_0", "opt_OH_PARAM_1", "batch"]
    frame = relevance_frame(gpviz.model_expr(model, names))
    assert list(frame["input"]) == ["opt", "lr", "batch"]  # min(2, 0.1) = 0.1 < 0.5 < 5 (every range is 1)
    opt = frame.set_index("input").loc["opt"]
    assert opt["columns"] == [1, 2] and opt["fraction"] == pytest.approx(0.1, rel=1e-9)
    assert list(frame.sort_values("fraction")["input"]) == list(frame["input"])
    assert frame["fraction"].is_monotonic_increasing and list(frame["rank"]) == [1, 2, 3]


def test_batched_folds_give_the_median_over_members():
    g = torch.Generator().manual_seed(1)
    X = torch.rand(2, 8, 2, generator=g, dtype=torch.float64)
    X[1, :, 0] *= 0.5  # the second fold's first column spans half as much
    model = SingleTaskGP(X, torch.rand(2, 8, 1, generator=g, dtype=torch.float64))
    with torch.no_grad():
        model.covar_module.lengthscale = torch.tensor([[[0.3, 1.0]], [[0.3, 1.0]]], dtype=torch.float64)
    model.eval()
    Xm = model.train_inputs[0].detach().numpy()  # the transformed inputs BoTorch hands the kernel
    model.train()
    span = Xm.max(-2) - Xm.min(-2)
    got = {r.input: r for r in input_relevance(gpviz.model_expr(model))}
    assert got["x0"].fraction == pytest.approx(np.median(0.3 / span[:, 0]), rel=1e-12)


def test_model_page_shows_the_table_in_rank_order():
    model, _ = _model()
    html = gpviz.render(model, ["lr", "opt_OH_PARAM_0", "opt_OH_PARAM_1", "batch"], verdicts=False,
                        profiles=False).html()
    assert re.findall(r'gpviz-relevance-row" data-input="([^"]+)"', html) == ["opt", "lr", "batch"]
    assert "lengthscale / range" in html
