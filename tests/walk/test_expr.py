"""Kernel expressions: evaluate refuses inputs that would give a silent wrong value."""

from __future__ import annotations

import gpytorch.kernels as gk
import pytest
import torch
from botorch.models import SingleTaskGP

import gpviz
from gpviz.errors import InputError


def _x(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --------------------------------------------------------------------------- #
# No silent wrong value from evaluate                                       #
# --------------------------------------------------------------------------- #


def test_inputs_wider_than_the_features_are_refused():
    expr = gpviz.kernel_expr(gk.RBFKernel(ard_num_dims=2).double())
    with pytest.raises(InputError, match=r"x1 has 3 columns .*expects 2"):
        expr.evaluate(_x(4, 3))
    model_expr = gpviz.model_expr(SingleTaskGP(_x(8, 2), _x(8, 1)))
    with pytest.raises(InputError, match=r"x2 has 3 columns .*expects 2"):
        model_expr.evaluate(_x(4, 2), _x(4, 3))


def test_active_dims_past_the_input_are_refused():
    expr = gpviz.kernel_expr(gk.RBFKernel(active_dims=[3]).double())
    with pytest.raises(InputError, match="at least 4"):
        expr.evaluate(_x(4, 2))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_or_boolean_inputs_are_refused(dtype):
    expr = gpviz.kernel_expr(gk.ScaleKernel(gk.RBFKernel()).double())
    with pytest.raises(InputError, match=f"dtype {dtype}; expected a floating-point"):
        expr.evaluate((_x(4, 2) * 3).to(dtype))


def test_batch_shapes_that_do_not_broadcast_are_refused():
    expr = gpviz.kernel_expr(gk.RBFKernel(batch_shape=torch.Size([3])).double())
    with pytest.raises(InputError, match=r"batch shapes do not broadcast: x1 \[2\]"):
        expr.evaluate(_x(4, 2).expand(2, 4, 2))


def test_wrong_length_feature_names_on_a_non_ard_kernel_are_refused():
    kernel = gk.RBFKernel().double()
    expr = gpviz.kernel_expr(kernel, ["only_one"])  # the kernel itself does not fix its width
    with pytest.raises(InputError, match="x1 has 3 columns .*expects 1"):
        expr.evaluate(_x(4, 3))  # was an RBF over one of the three columns, 0.43 off
    with pytest.raises(InputError, match="1 names but SingleTaskGP has 3 input features"):
        gpviz.model_expr(SingleTaskGP(_x(8, 3), _x(8, 1)), ["only_one"])
