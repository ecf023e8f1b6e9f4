"""to_numpy: the one door from tensors to numpy leaves the tensor as it was and refuses tensors without values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpviz.errors import InputError
from gpviz.values.tensors import to_numpy


def test_a_parameter_that_requires_grad_is_read_detached_and_copied():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    out = to_numpy(p)
    out[0] = 99.0  # the copy is the caller's: the parameter is untouched
    assert p.requires_grad and p.detach().tolist() == [1.0, 2.0]
    assert out.dtype == np.float64


def test_float32_bfloat16_and_integer_tensors():
    assert to_numpy(torch.tensor([1.5], dtype=torch.float32)).dtype == np.float64
    assert to_numpy(torch.tensor([1.5], dtype=torch.bfloat16)).tolist() == [1.5]
    ints = to_numpy(torch.arange(3), dtype=None)
    assert ints.dtype == np.int64 and ints.tolist() == [0, 1, 2]


def test_a_meta_tensor_is_a_typed_error_naming_its_shape():
    with pytest.raises(InputError, match=r"a tensor of shape \[2, 3\] is on the .meta. device"):
        to_numpy(torch.empty(2, 3, device="meta"))


def test_parameters_of_a_model_on_the_meta_device_are_refused_not_crashed():
    import gpviz
    from gpytorch.kernels import RBFKernel

    k = RBFKernel().to("meta")
    with pytest.raises(InputError, match="meta"):
        gpviz.parameters(k)
