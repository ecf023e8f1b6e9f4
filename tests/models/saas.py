"""One tiny NUTS fit of a SaasFullyBayesianSingleTaskGP, shared by the model and browser tests.

NUTS here is mostly JAX compile time (~30-50 s on the shared 2-core CI machine),
so it runs once per session: warmup 16, 8 samples, thinning 4 (2 MCMC samples kept).
"""

from __future__ import annotations

import functools
import warnings

import torch

try:
    import jax  # noqa: F401
    import numpyro  # noqa: F401

    HAS_JAX = True
except ImportError:  # the `fully-bayesian` extra is not installed
    HAS_JAX = False

SAAS_NAMES = ("a", "b", "c", "d")


@functools.lru_cache(maxsize=1)
def fitted_saas():
    """``(model, X)``: a fitted SAAS model on 12 points in 4-D with 2 MCMC samples (do not modify it)."""
    from botorch.fit import fit_fully_bayesian_model_nuts
    from botorch.models.fully_bayesian import SaasFullyBayesianSingleTaskGP

    g = torch.Generator().manual_seed(0)
    X = torch.rand(12, 4, generator=g, dtype=torch.float64)
    Y = torch.sin(3 * X).sum(-1, keepdim=True) + 0.1 * torch.randn(12, 1, generator=g, dtype=torch.float64)
    model = SaasFullyBayesianSingleTaskGP(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_fully_bayesian_model_nuts(model, warmup_steps=16, num_samples=8, thinning=4, max_tree_depth=3,
                                      disable_progbar=True)
    return model, X
