"""The explorer's records: what one set of parameter values scores, and the slices drawn through one point.

Data only (numbers, arrays, frames): :mod:`gpviz.explorer.state` computes them, the widget and its static
picture send and draw them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


@dataclass(frozen=True)
class Metrics:
    """What one set of parameter values scores, for one batch member, in model units.

    Attributes:
        log_likelihood: GPyTorch's marginal log probability of the training targets,
            ``log N(y | m, K + σ²I)``, summed over the ``n`` points (not divided by ``n``
            as ``ExactMarginalLogLikelihood`` is).
        data_fit: ``-½ (y - m)ᵀ (K + σ²I)⁻¹ (y - m)``.
        complexity: ``-½ log |K + σ²I|``.
        constant: ``-n/2 log 2π`` (the three terms sum to ``log_likelihood``).
        log_prior: Prior name (``covar_module.lengthscale_prior``) -> its log density, summed over elements.
        log_prior_total: The sum of ``log_prior``.
        map_objective: ``log_likelihood + log_prior_total`` (``n`` times the MLL BoTorch maximizes).
        loo_mse: Mean squared error of BoTorch's ``efficient_loo_cv`` predictions.
        loo_nlpd: Their mean negative log predictive density (with observation noise).
    """

    log_likelihood: float
    data_fit: float
    complexity: float
    constant: float
    log_prior: dict[str, float]
    log_prior_total: float
    map_objective: float
    loo_mse: float
    loo_nlpd: float

    def as_dict(self) -> dict:
        """The metrics as plain Python numbers (JSON-ready; a non-finite value becomes ``None``)."""
        out = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            out[name] = {k: _finite(x) for k, x in v.items()} if isinstance(v, dict) else _finite(v)
        return out


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class Slices:
    """Posterior slices through one point, in model units.

    Attributes:
        curves: One row per input and grid point: ``input``, ``x``, ``mean``, ``lower``,
            ``upper`` (mean ± 2 sd of the latent function).
        points: The training points near each slice: ``input``, ``x``, ``y``, ``distance``
            (the largest distance over the other inputs, as a share of each one's range).
        point: The point the slices go through, one value per input.
    """

    curves: pd.DataFrame
    points: pd.DataFrame
    point: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class SliceGeometry:
    """One member's slice grid and the training points near it: fixed by the data, kept across value changes.

    Attributes:
        rows: ``g x d`` grid points (model space): the slice point with one input varied per block of rows.
        col: ``g`` indices of the input each row varies.
        near: Per input, the nearby training points' ``x``, ``y`` and ``distance`` arrays.
        near_index: Per input, those points' rows in the training data.
        point: The point the slices go through.
        grid: ``rows`` as a tensor of the model's dtype and device.
    """

    rows: np.ndarray
    col: np.ndarray
    near: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    near_index: tuple[np.ndarray, ...]
    point: tuple[float, ...]
    grid: torch.Tensor


@dataclass(frozen=True, eq=False)
class OriginalUnits:
    """One member's slices in the data's units (the model's own transforms undone).

    Attributes:
        x: ``g`` grid values of the input each slice row varies, in original units.
        train: ``n x d`` training inputs in original units (the near points' positions).
        y_scale: ``σ``: an output in model units ``y`` reads ``σ y + μ``.
        y_offset: ``μ``.
    """

    x: np.ndarray
    train: np.ndarray
    y_scale: float
    y_offset: float


__all__ = ["Metrics", "OriginalUnits", "SliceGeometry", "Slices"]
