"""Original units through a ChainedInputTransform of Log10, affine and Normalize steps, checked by applying
BoTorch's own untransform by hand: a step of one lengthscale along a column in the model's input space, mapped
back to the data, spans the converted lengthscale (in decades on a logged column)."""

from __future__ import annotations

import pytest
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import AffineInputTransform, ChainedInputTransform, Log10, Normalize

import gpviz
from gpviz.values.units import unit_plan

LS = [0.3, 0.2, 0.7]


def _model(transform):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(12, 3, generator=g, dtype=torch.float64)
    X[:, 0] = 10 ** (3 * X[:, 0])      # 1 .. 1000: read in decades
    X[:, 1] = 50 * X[:, 1]             # 0 .. 50
    X[:, 2] = 4 + 2 * X[:, 2]          # 4 .. 6
    model = SingleTaskGP(X, torch.rand(12, 1, generator=g, dtype=torch.float64), input_transform=transform)
    with torch.no_grad():
        model.covar_module.lengthscale = torch.tensor([LS], dtype=torch.float64)
    return model


def test_a_chain_of_log10_affine_and_normalize_converts_as_botorchs_untransform():
    affine = AffineInputTransform(3, coefficient=torch.tensor([1.0, 1.0, 4.0], dtype=torch.float64),
                                  offset=torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    chain = ChainedInputTransform(log=Log10(indices=[0]), shift=affine, norm=Normalize(3))
    model = _model(chain)
    model.eval()  # BoTorch learns Normalize's bounds from the (logged, shifted) training inputs
    model.train()
    converted = gpviz.parameters(model, ["rate", "size", "temp"], units="original").iloc[0]
    tf = model.input_transform
    base = torch.full((1, 3), 0.4, dtype=torch.float64)  # a point in the model's input space
    for d, name in enumerate(["rate", "size", "temp"]):
        step = base.clone()
        step[0, d] += LS[d]
        xa, xb = tf.untransform(base), tf.untransform(step)  # BoTorch's own inverse of the whole chain
        by_hand = (torch.log10(xb[0, d]) - torch.log10(xa[0, d])) if d == 0 else (xb[0, d] - xa[0, d])
        assert converted[f"covar_module.lengthscale[{d}]"] == pytest.approx(float(by_hand), rel=1e-10), name
    plan = unit_plan(gpviz.model_expr(model, ["rate", "size", "temp"]))
    assert plan.conversions["covar_module.lengthscale[0]"].space == "decades of rate"
    assert plan.conversions["covar_module.lengthscale[1]"].space == "original inputs"
    assert not plan.reasons


def test_an_affine_step_before_a_log_step_is_left_in_model_units_with_the_reason():
    affine = AffineInputTransform(3, coefficient=torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64),
                                  offset=torch.zeros(3, dtype=torch.float64))
    model = _model(ChainedInputTransform(shift=affine, log=Log10(indices=[0])))
    plan = unit_plan(gpviz.model_expr(model))
    assert "before a Log10 step" in plan.reasons["covar_module.lengthscale[0]"]
    assert "covar_module.lengthscale[0]" not in plan.conversions
