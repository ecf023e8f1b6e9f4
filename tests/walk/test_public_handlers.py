"""gpviz.handlers is all a kernel handler's author imports: a handler written from it alone matches its kernel."""

from __future__ import annotations

import gpytorch
import torch

import gpviz.handlers as public
from gpviz.handlers import Call, Div, Neg, Role, Vector, register_kernel
from gpviz.testing import assert_expr_matches_kernel
from gpviz.walk.registry import HANDLERS


class _Laplace(gpytorch.kernels.Kernel):
    """k = exp(-Σ_d |x1_d - x2_d| / ℓ): a kernel gpviz ships no handler for."""

    has_lengthscale = True

    def forward(self, x1, x2, diag=False, **params):
        return torch.exp(-torch.cdist(x1, x2, p=1) / self.lengthscale)


def test_every_public_name_is_importable():
    for name in public.__all__:
        assert getattr(public, name) is not None, name


def test_a_handler_written_from_the_public_module_matches_its_kernel():
    @register_kernel(_Laplace)
    def handle(module, path, walk):
        (ls,) = walk.params(module, path, "lengthscale", Role.lengthscale)
        diffs = Vector(tuple(walk.compare(f) for f in walk.features_for(None)))
        return Call("exp", (Neg(Div(Call("norm_l1", (diffs,)), ls)),))

    try:
        kernel = _Laplace()
        kernel.lengthscale = 0.7
        x = torch.rand(5, 3, dtype=torch.float64)
        assert_expr_matches_kernel(kernel.double(), x, feature_names=["a", "b", "c"])
    finally:
        HANDLERS.pop(_Laplace, None)
