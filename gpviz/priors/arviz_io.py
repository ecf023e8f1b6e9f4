"""A fitted GP's hyperparameter posterior as an ArviZ ``DataTree``: posterior draws named by label, with the
``log_prior`` and ``log_likelihood`` groups that ArviZ's ``psense`` / ``psense_summary`` and plots read.

ArviZ (``arviz-base``, the ``arviz`` extra) is imported only inside :func:`to_arviz`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gpviz.errors import InputError, UnsupportedError
from gpviz.priors.posterior import resample
from gpviz.priors.sensitivity import posterior_draws


def to_arviz(model_or_mll: torch.nn.Module, *, draws: int = 4000, importance_draws: int = 20000, seed: int = 0,
             feature_names: Sequence[str] | None = None) -> Any:
    """The model's hyperparameter posterior as an ArviZ ``DataTree``, as a Stan or PyMC fit would give it.

    Draws come from :func:`gpviz.prior_sensitivity`'s importance sampler (``importance_draws`` weighted draws,
    Pareto-smoothed) and are resampled to ``draws`` equally weighted ones in one chain, so ArviZ's functions,
    which expect MCMC draws, apply as they are. Fewer draws than the weighted ones' effective sample size avoids
    most repeated values.

    Args:
        model_or_mll: An exact GP or its ``ExactMarginalLogLikelihood``; left as found.
        draws: Equally weighted draws in the tree. ``importance_draws``: weighted draws they are taken from.
        seed: Seed of the proposal and of the resampling. ``feature_names``: input names for the labels.

    Returns:
        An ``xarray.DataTree`` (typed ``Any``: ArviZ is optional) with groups ``posterior`` (one variable per parameter element, named by its label;
        dims ``chain x draw``, plus ``i_model`` for a batched model), ``log_prior`` (``theta``: Σ log p(θ)) and
        ``log_likelihood`` (``y``: log p(y | θ), the GP's marginal likelihood, one joint term: its points are
        not independent). For a batched model run ArviZ per member (``coords={"i_model": m}``).

    Raises:
        UnsupportedError: ArviZ (``arviz-base``) is not installed. InputError: ``draws`` below 100.
    """
    try:
        import arviz_base
    except ImportError as exc:
        raise UnsupportedError(f"to_arviz needs ArviZ: pip install 'gpviz[arviz]' ({exc})") from exc
    if int(draws) < 100:
        raise InputError(f"draws must be at least 100, got {draws}")
    keys, labels, n, post = posterior_draws(model_or_mll, draws=importance_draws, seed=seed,
                                            feature_names=feature_names)
    rng = np.random.default_rng(seed)
    picks = np.stack([resample(np.exp(post.smoothed[:, m]), int(draws), rng) for m in range(n)], axis=1)

    def pick(block: np.ndarray) -> np.ndarray:
        """``chain(1) x draw [x i_model]`` from ``S x n_members``."""
        out = np.take_along_axis(block, picks, axis=0)[None]
        return out if n > 1 else out[..., 0]

    dims = {"i_model": ["i_model"]} if n > 1 else {}
    posterior = {labels.get(k, k): pick(post.values[k]) for k in keys}
    return arviz_base.from_dict(
        {"posterior": posterior, "log_prior": {"theta": pick(post.log_prior)},
         "log_likelihood": {"y": pick(post.log_lik)}},
        dims={**{name: ["i_model"] for name in posterior}, "theta": ["i_model"], "y": ["i_model"]} if dims else None)
