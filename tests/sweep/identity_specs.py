"""Model factories written the ways users write them, each from a spec: (style, prior, nu), for the identity tests.

Imported by the tests and by the subprocesses they start, so both build the same factories.
"""

from __future__ import annotations

import functools

import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.priors import GammaPrior

STYLES = ("closure", "default", "object", "partial", "comprehension", "lambda", "nested")
PRIORS = ((3.0, 6.0), (1.125, 0.375))
NUS = (1.5, 2.5)


def matern_gp(tx, ty, prior, nu=2.5):
    """A SingleTaskGP with a Matern kernel whose lengthscale has ``prior``; keeps the folds' batch shape."""
    batch = tx.shape[:-2]
    return SingleTaskGP(tx, ty, covar_module=ScaleKernel(MaternKernel(
        nu=nu, ard_num_dims=tx.shape[-1], batch_shape=batch, lengthscale_prior=prior), batch_shape=batch))


class WithPrior:
    """A callable object holding its prior in a field."""

    def __init__(self, prior, nu=2.5):
        self.prior, self.nu = prior, nu

    def __call__(self, tx, ty):
        return matern_gp(tx, ty, self.prior, self.nu)


def factory(style: str, params: tuple, nu: float = 2.5):
    """A factory of the given style building ``matern_gp`` with ``GammaPrior(*params)`` and ``nu``."""
    prior = GammaPrior(*params)
    if style == "closure":
        def make(tx, ty):
            return matern_gp(tx, ty, prior, nu)
        return make
    if style == "default":
        def make_default(tx, ty, prior=prior, nu=nu):
            return matern_gp(tx, ty, prior, nu)
        return make_default
    if style == "object":
        return WithPrior(prior, nu)
    if style == "partial":
        return functools.partial(matern_gp, prior=prior, nu=nu)
    if style == "comprehension":
        def make_comp(tx, ty):
            priors = [GammaPrior(torch.tensor(c), torch.tensor(r)) for c, r in [params]]
            return matern_gp(tx, ty, priors[0], nu)
        return make_comp
    if style == "lambda":
        return lambda tx, ty: matern_gp(tx, ty, GammaPrior(*params), nu)
    if style == "nested":
        def make_nested(tx, ty):
            def kernel_prior():
                return GammaPrior(*params)
            return matern_gp(tx, ty, kernel_prior(), nu)
        return make_nested
    raise ValueError(style)
