"""The explorer's Python side: a copy of the user's model whose parameter values are set by hand, and what follows.

:class:`ExploreState` deep-copies an exact GP model (or the model of an MLL or of an
Ax object), so the user's model is never changed, and recomputes with the copy's own
GPyTorch and BoTorch calls, for one batch member: the marginal log likelihood (data fit
and complexity terms), each prior's log density, their sum (the MAP objective
BoTorch's fit maximizes, times ``n``), BoTorch's ``efficient_loo_cv`` MSE and NLPD, and
posterior slices along each input through one point. Everything is in model units: the
model's (transformed) inputs and outcomes, the space its parameters live in;
:meth:`ExploreState.original_units` says how the slices read in the data's units where the
model's own transforms invert. The records it returns live in :mod:`gpviz.explorer.records`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from botorch.cross_validation import efficient_loo_cv
from botorch.models.gpytorch import MultiTaskGPyTorchModel
from botorch.models.multitask import KroneckerMultiTaskGP
from botorch.models.transforms.outcome import Standardize
from gpytorch.distributions import MultivariateNormal
from gpytorch.mlls import MarginalLogLikelihood
from gpytorch.models import ExactGP

from gpviz.errors import GpvizError, InputError, KeyMismatchError, UnsupportedError
from gpviz.explorer.records import Metrics, OriginalUnits, SliceGeometry, Slices
from gpviz.models.expr import ModelExpr, model_expr
from gpviz.models.families import HIGHER_ORDER, family_of, model_batch_shape
from gpviz.models.sources import source_of
from gpviz.ax import resolve as ax_resolve
from gpviz.priors.derivatives import likelihood_params
from gpviz.values.keys import ParamInfo, param_info, parse_key, resolve
from gpviz.values.tensors import to_numpy

#: Points of each slice's grid (an input with few distinct integer training values, e.g. a category, uses those).
SLICE_POINTS = 41
#: An input with at most this many distinct training values, all integers, is sliced at those values only.
FEW_VALUES = 12
#: A training point is drawn beside a slice when every other input lies within this share of its range.
NEAR_SHARE = 0.2
_LOG_2PI = math.log(2 * math.pi)


def _model_of(obj: object) -> tuple[Any, MarginalLogLikelihood | None, list[str] | None]:
    """The model inside ``obj``, the MLL it came in (or ``None``) and the names its source gives its inputs."""
    if isinstance(obj, MarginalLogLikelihood):
        return obj.model, obj, None
    if source_of(obj) is not None:
        held = ax_resolve(obj)
        return held.model, None, list(held.feature_names)
    return obj, None, None


#: What the explorer works on, as its refusals say it.
SUPPORTED = ("one exact GP with one output per batch member and its training data: SingleTaskGP (batched or "
             "multi-output included), SingleTaskMultiFidelityGP, MixedSingleTaskGP, the MAP SAAS models, or a "
             "custom GPyTorch ExactGP; its MLL or an Ax object holding one")


def _class_name(model: object) -> str:
    return f"{type(model).__name__} ({type(model).__module__}.{type(model).__qualname__})"


def _refusal(model: object) -> str | None:
    """Why the explorer cannot recompute ``model``'s likelihood and leave-one-out scores, or ``None``."""
    fam = family_of(model)
    if fam is None:
        return "it is not a GP model gpviz knows"
    if fam.holds_models:
        return "it is not one GP model (a model list: explore each of its models instead)"
    if fam.fully_bayesian:
        return "its members are MCMC samples, not one fit"
    if not fam.exact:
        return "it is not an exact GP (its likelihood is not a Gaussian marginal likelihood)"
    if fam is HIGHER_ORDER:
        return "its outputs are a tensor per input (a Kronecker likelihood that leave-one-out does not cover)"
    if isinstance(model, MultiTaskGPyTorchModel):
        return "its likelihood and leave-one-out need the task column handed separately (task indices)"
    if isinstance(model, KroneckerMultiTaskGP):
        return "its outputs share one Kronecker-structured likelihood (leave-one-out does not cover it)"
    if not isinstance(model, ExactGP):
        return "it is not a GPyTorch ExactGP (e.g. a PairwiseGP's Laplace likelihood)"
    if not getattr(model, "train_inputs", None):
        return "it has no training data"
    if isinstance(model.train_inputs[0], tuple):
        return "it has auxiliary inputs (efficient leave-one-out needs one input tensor)"
    return None


def _check_exact(model) -> None:
    why = _refusal(model)
    if why is not None:
        raise UnsupportedError(f"gpviz.explore does not support {_class_name(model)}: {why}. "
                               f"The explorer supports {SUPPORTED}")


class ExploreState:
    """A copy of a fitted model whose parameters can be set, with its metrics and slices.

    Args:
        obj: An exact BoTorch/GPyTorch model, its MLL, or an Ax object holding one.
        feature_names: Names of the input columns (default: the source's, or ``x0, x1, ...``).
        point: The point the slices go through, ``d`` values in the model's input space
            (after its input transform); default: the best observed training point.
        member: Which batch member (flat index, as ``i_model``) is explored.

    Raises:
        UnsupportedError: for a model list, an approximate, fully Bayesian, multi-task, Kronecker multi-task,
            higher-order or pairwise model (the message names the class and what the explorer supports).
        InputError: for a ``point`` of the wrong length or a ``member`` out of range.
    """

    #: The explored member's metrics at its fitted values (set by :meth:`select`).
    fitted_metrics: Metrics

    def __init__(self, obj: object, feature_names: Sequence[str] | None = None,
                 point: Sequence[float] | None = None, member: int = 0) -> None:
        model, mll, names = _model_of(obj)
        _check_exact(model)
        # one deepcopy of the MLL keeps the model and likelihood it shares with it as one
        # read as Any: mypy cannot tell a GPyTorch module's tensors from its submodules (train_inputs, likelihood)
        self.model: Any = copy.deepcopy(mll).model if mll is not None else copy.deepcopy(model)
        self.expr: ModelExpr = model_expr(self.model, feature_names if feature_names is not None else names)
        self.batch_shape = torch.Size(model_batch_shape(self.model))
        self.members = int(self.batch_shape.numel())
        self.keys: tuple[str, ...] = tuple(self.expr.keys)
        d = int(self.model.train_inputs[0].shape[-1])
        given = list(feature_names if feature_names is not None else names or [])
        self.feature_names = given if len(given) == d else [f"x{i}" for i in range(d)]
        self._user_point = point
        self.member = 0
        # each member's values as first seen: a reset goes back to them after other members were played with
        self._fitted: dict[int, dict[str, float]] = {}
        self._geometries: dict[int, SliceGeometry] = {}
        self._units: dict[int, OriginalUnits | None] = {}
        self.fitted_values: dict[str, float] = {}
        try:
            self.select(member)
        except GpvizError:
            raise
        except Exception as e:  # a model the checks above let through but BoTorch/GPyTorch cannot score
            raise UnsupportedError(f"gpviz.explore cannot compute the likelihood or leave-one-out scores of "
                                   f"{_class_name(model)} ({type(e).__name__}: {e}). The explorer supports "
                                   f"{SUPPORTED}") from e

    # --- batch members ---

    def select(self, member: int) -> None:
        """Explores batch member ``member`` (its fitted values become the reference and the starting point).

        Raises:
            InputError: if ``member`` is not one of the model's members.
        """
        if not (isinstance(member, (int, np.integer)) and 0 <= member < self.members):
            raise InputError(f"member must be an integer in [0, {self.members}), got {member!r}")
        self.member = int(member)
        first = self.member not in self._fitted
        if first:
            self._fitted[self.member] = {k: self._read(k) for k in self.keys}
        self.fitted_values = dict(self._fitted[self.member])
        current = self.values
        self.reset()  # the fitted metrics are computed at the fitted values, then the member's values come back
        self.fitted_metrics = self.metrics()
        for k, v in current.items():
            self._write(k, v)

    # --- values ---

    def _info(self, key: str) -> tuple[ParamInfo, tuple[int, ...]]:
        if key not in self.keys:
            raise KeyMismatchError(f"unknown parameter key {key!r}; the model's keys are: {', '.join(self.keys)}")
        path, name, index = parse_key(key)
        return param_info(resolve(self.model, path), name, self.batch_shape), index

    def _slot(self, info: ParamInfo) -> tuple[int, ...]:
        """The leading index of the explored member in ``info``'s raw tensor (a shared parameter has none)."""
        if info.member_ndim == 0:
            return ()
        lead = np.unravel_index(self.member, tuple(self.batch_shape))
        return tuple(int(i) for i in lead[: info.member_ndim])

    def _read(self, key: str) -> float:
        info, index = self._info(key)
        block = info.value()[self._slot(info)].reshape(-1)
        return float(block[info.flat_index(index)])

    @property
    def values(self) -> dict[str, float]:
        """Key -> the explored member's constrained value, in model units."""
        return {k: self._read(k) for k in self.keys}

    def bounds(self, key: str) -> tuple[float, float]:
        """The ``(lower, upper)`` bounds of ``key``'s constraint (infinite where there is none)."""
        return self._info(key)[0].bounds()

    def set(self, key: str, value: float) -> None:
        """Sets one parameter element of the explored member to a constrained value.

        Raises:
            KeyMismatchError: for a key the model does not have.
            InputError: for a value that is not a finite number or lies outside the
                constraint's bounds (a value on an enforced bound has no raw value).
        """
        info, index = self._info(key)
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{key}: expected a number, got {value!r}") from None
        if not math.isfinite(v):
            raise InputError(f"{key}: expected a finite number, got {v}")
        lower, upper = info.bounds()
        c = info.constraint
        enforced = c is not None and getattr(c, "enforced", True)
        inside = (lower < v < upper) if enforced else (lower <= v <= upper)
        if not inside:
            raise InputError(f"{key} = {v:g} is outside its constraint's bounds ({lower:g}, {upper:g})")
        if not self._write(key, v):
            raise InputError(f"{key} = {v:g} has no finite raw value under {type(c).__name__}")

    def reset(self) -> None:
        """Puts every parameter of the explored member back at its fitted value."""
        for k, v in self.fitted_values.items():
            self._write(k, v)

    def _write(self, key: str, value: float) -> bool:
        """Writes a constrained value into the explored member's raw element; ``False`` (nothing written) if its raw
        value is not finite. Unchecked against the bounds: a value read from the model may sit exactly on one."""
        info, index = self._info(key)
        with torch.no_grad():
            t = torch.tensor(value, dtype=info.raw.dtype, device=info.raw.device)
            c = info.constraint
            raw = c.inverse_transform(t) if c is not None and getattr(c, "enforced", True) else t
            if not bool(torch.isfinite(raw)):
                return False
            members = tuple(info.raw.shape[: info.member_ndim])
            info.raw.data.view(members + (-1,))[self._slot(info) + (info.flat_index(index),)] = raw
        return True

    # --- what follows from the values ---

    def _pick(self, t: torch.Tensor) -> torch.Tensor:
        """The explored member's part of a ``batch_shape x ...`` tensor (a tensor without the batch is shared)."""
        nb = len(self.batch_shape)
        if nb and t.dim() >= nb and tuple(t.shape[:nb]) == tuple(self.batch_shape):
            return t.reshape((-1,) + tuple(t.shape[nb:]))[self.member]
        return t

    def _log_prior(self) -> dict[str, float]:
        out = {}
        for name, module, prior, closure, _ in self.model.named_priors():
            lp = prior.log_prob(closure(module))
            out[name] = float(self._pick(lp).sum())
        return out

    def _loo(self) -> tuple[float, float]:
        res = efficient_loo_cv(self.model, observation_noise=True, untransform=False)
        posterior: Any = res.posterior  # a GPyTorchPosterior (no outcome untransform asked for)
        mean = posterior.mean  # batch_shape x n x 1 x m (m = outputs; a multi-output model's members)
        var = posterior.variance
        y = res.observed_Y
        if self.model.num_outputs > 1:  # the outputs are the members: move them to the front
            mean, var, y = (t.movedim(-1, 0).squeeze(-1) for t in (mean, var, y))
        mean, var, y = (self._pick(t).reshape(-1) for t in (mean, var, y))
        mse = float(((mean - y) ** 2).mean())
        nlpd = float(0.5 * (_LOG_2PI + var.log() + (y - mean) ** 2 / var).mean())
        return mse, nlpd

    def metrics(self) -> Metrics:
        """The likelihood, priors, MAP objective and leave-one-out scores at the current values."""
        model = self.model
        with torch.no_grad():
            model.train()  # the likelihood as BoTorch's fit sees it: the input transform applied in forward
            inputs = model.train_inputs
            # BoTorch's loss closure hands the likelihood the input-transformed inputs (a likelihood whose noise
            # depends on the inputs scores differently on the raw ones)
            out = model.likelihood(model(*inputs), *likelihood_params(model, inputs))
            y = model.train_targets
            log_lik = float(self._pick(out.log_prob(y)))
            fit, complexity, const = self._terms(out, y)
            priors = self._log_prior()
            model.eval()  # efficient_loo_cv reads the transformed training inputs of an evaluated model
            mse, nlpd = self._loo()
        total = float(sum(priors.values()))
        return Metrics(log_likelihood=log_lik, data_fit=fit, complexity=complexity, constant=const, log_prior=priors,
                       log_prior_total=total, map_objective=log_lik + total, loo_mse=mse, loo_nlpd=nlpd)

    def _terms(self, out: MultivariateNormal, y: torch.Tensor) -> tuple[float, float, float]:
        cov = self._pick(out.covariance_matrix).double()
        r = (self._pick(y) - self._pick(out.mean)).double().reshape(-1, 1)
        chol = torch.linalg.cholesky(cov)
        z = torch.linalg.solve_triangular(chol, r, upper=False)
        n = r.shape[0]
        return float(-0.5 * (z**2).sum()), float(-chol.diagonal().log().sum()), -0.5 * n * _LOG_2PI

    def _train_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """The explored member's training inputs (``n x d``, model space) and targets (``n``); the model in eval mode."""
        self.model.eval()
        x = self.model.train_inputs[0]
        y = self.model.train_targets
        if self.model.num_outputs > 1 and y.dim() >= 2:
            y = y.reshape(-1, y.shape[-1])[self.member]
            x = x.reshape(-1, *x.shape[-2:])[self.member] if x.dim() > 2 else x
        else:
            x, y = self._pick(x), self._pick(y)
        return to_numpy(x).reshape(-1, x.shape[-1]), to_numpy(y).reshape(-1)

    def point(self) -> np.ndarray:
        """The point the slices go through: the one given, or the best observed training point of the member.

        Raises:
            InputError: if the given point does not have one value per input.
        """
        x, y = self._train_xy()
        if self._user_point is None:
            return x[int(np.argmax(y))]
        p = np.asarray(self._user_point, dtype=np.float64).reshape(-1)
        if p.size != x.shape[1]:
            raise InputError(f"point has {p.size} values; the model has {x.shape[1]} inputs")
        return p

    def _geometry(self) -> SliceGeometry:
        """The explored member's slice grid and near points: they depend on the data, never on the values."""
        cached = self._geometries.get(self.member)
        if cached is not None:
            return cached
        x, y = self._train_xy()
        p = self.point()
        d = x.shape[1]
        lo, hi = x.min(0), x.max(0)
        span = np.where(hi > lo, hi - lo, 1.0)
        grids = []
        for j in range(d):
            distinct = np.unique(x[:, j])
            levels = distinct.size <= FEW_VALUES and np.all(distinct == np.round(distinct))  # categories, ordinals
            grids.append(distinct if levels else np.linspace(lo[j], hi[j], SLICE_POINTS))
        rows = np.concatenate([np.repeat(p[None, :], g.size, 0) for g in grids])
        col = np.concatenate([np.full(g.size, j) for j, g in enumerate(grids)])
        rows[np.arange(rows.shape[0]), col] = np.concatenate(grids)
        dev = np.abs(x - p) / span  # n x d
        near, near_index = [], []
        for j in range(d):
            others = np.delete(dev, j, axis=1)
            dist = others.max(1) if others.size else np.zeros(len(x))
            keep = dist <= NEAR_SHARE
            near.append((x[keep, j], y[keep], dist[keep]))
            near_index.append(np.flatnonzero(keep))
        ref = self.model.train_inputs[0]
        geo = SliceGeometry(rows=rows, col=col, near=tuple(near), near_index=tuple(near_index),
                            point=tuple(float(v) for v in p),
                             grid=torch.as_tensor(rows, dtype=ref.dtype, device=ref.device))
        self._geometries[self.member] = geo
        return geo

    def slice_moments(self) -> tuple[SliceGeometry, np.ndarray, np.ndarray]:
        """The slice grid with the latent posterior's mean and sd on it, each ``g`` values (model units).

        One pass: the model's prior on the training and grid inputs together, one Cholesky of the training block
        (noise added by the model's own likelihood), then the mean and the variances only (no covariance between
        grid points). A model whose prior does not split that way is predicted by GPyTorch point by point.
        """
        geo = self._geometry()
        with torch.no_grad():
            self.model.eval()  # model-space (transformed) training inputs; forward adds no transform
            try:
                mean, var = self._closed_form(geo.grid)
            except (RuntimeError, NotImplementedError, ValueError):  # incl. a Cholesky that failed
                mean, var = self._predicted(geo.grid)
        m = to_numpy(mean).reshape(-1)
        return geo, m, np.sqrt(np.clip(to_numpy(var).reshape(-1), 0, None))

    def _closed_form(self, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior mean and variance at ``grid`` (``g x d``) from one Cholesky of the explored member."""
        model = self.model
        xt = model.train_inputs[0]  # lead x n x d
        n, g = xt.shape[-2], grid.shape[0]
        lead = tuple(xt.shape[:-2])
        both = torch.cat([xt, grid.expand(lead + tuple(grid.shape))], dim=-2)
        prior = model.forward(both)
        if not isinstance(prior, MultivariateNormal) or prior.event_shape != torch.Size([n + g]):
            raise NotImplementedError("a prior that is not one MultivariateNormal over the inputs")
        cov = prior.lazy_covariance_matrix
        train = MultivariateNormal(prior.mean[..., :n], cov[..., :n, :n])
        # in eval mode the training inputs are already transformed: handed on as GPyTorch's prediction hands
        # them (one list), not transformed a second time
        noisy = model.likelihood(train, list(model.train_inputs))
        column = self.member if lead and int(np.prod(lead)) == self.members else 0

        def one(t: torch.Tensor) -> torch.Tensor:  # the explored member's block of a ``lead x ...`` tensor
            return t.reshape((-1,) + tuple(t.shape[len(lead):]))[column] if lead else t

        c = one(noisy.covariance_matrix)
        r = (one(model.train_targets) - one(noisy.mean)).unsqueeze(-1)
        k_gx = one(cov[..., n:, :n].to_dense())  # g x n
        k_gg = one(cov[..., n:, n:].diagonal(dim1=-2, dim2=-1))
        chol = torch.linalg.cholesky(c)
        alpha = torch.cholesky_solve(r, chol)
        v = torch.linalg.solve_triangular(chol, k_gx.transpose(-1, -2), upper=False)
        return one(prior.mean[..., n:]) + (k_gx @ alpha).squeeze(-1), k_gg - (v**2).sum(-2)

    def _predicted(self, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """GPyTorch's own prediction at ``grid``: each grid point its own batch of one, ahead of the model's batch."""
        ref = self.model.train_inputs[0]
        lead = tuple(ref.shape[:-2])
        g = grid.shape[0]
        grid = grid.reshape((g,) + (1,) * len(lead) + (1, grid.shape[-1])).expand((g,) + lead + (1, grid.shape[-1]))
        post = self.model(grid)
        column = self.member if lead else 0
        return tuple(t.reshape(g, -1)[:, column] for t in (post.mean, post.variance))  # type: ignore[return-value]

    def original_units(self) -> OriginalUnits | None:
        """How the explored member's slices read in the data's units, through the model's own transforms.

        Inputs through the input transform's ``untransform`` (e.g. ``Normalize``), outputs through a
        ``Standardize`` outcome transform (``y = σ y_model + μ``). ``None`` where the model has neither, or where
        they do not invert (then the slices stay in model units). Transforms applied outside the model (Ax's) are
        not read here.
        """
        if self.member in self._units:
            return self._units[self.member]
        geo = self._geometry()
        x, y = self._train_xy()
        ref = self.model.train_inputs[0]
        rows, train = geo.rows, x
        scale, offset = 1.0, 0.0
        converted = False
        tf = getattr(self.model, "input_transform", None)
        with torch.no_grad():
            if tf is not None and callable(getattr(tf, "untransform", None)):
                try:
                    back = [tf.untransform(torch.as_tensor(a, dtype=ref.dtype, device=ref.device)) for a in (rows, x)]
                    rows, train = (to_numpy(self._pick(b) if b.dim() > 2 else b) for b in back)
                    converted = True
                except (NotImplementedError, RuntimeError, ValueError):
                    rows, train = geo.rows, x
            out = getattr(self.model, "outcome_transform", None)
            if isinstance(out, Standardize):
                means, stdvs = (to_numpy(t).reshape(-1) for t in (out.means, out.stdvs))
                at = self.member if means.size == self.members else 0 if means.size == 1 else None
                if at is not None:
                    scale, offset, converted = float(stdvs[at]), float(means[at]), True
        units = None
        if converted and rows.shape == geo.rows.shape and train.shape == x.shape:
            units = OriginalUnits(x=rows[np.arange(rows.shape[0]), geo.col], train=train, y_scale=scale,
                                  y_offset=offset)
        self._units[self.member] = units
        return units

    def slices(self) -> Slices:
        """Posterior mean ± 2 sd of the latent function along each input through :meth:`point`."""
        geo, m, sd = self.slice_moments()
        names = np.asarray(self.feature_names, dtype=object)
        curves = pd.DataFrame({"input": names[geo.col], "x": geo.rows[np.arange(geo.rows.shape[0]), geo.col],
                               "mean": m, "lower": m - 2 * sd, "upper": m + 2 * sd})
        near = [pd.DataFrame({"input": self.feature_names[j], "x": xs, "y": ys, "distance": ds})
                for j, (xs, ys, ds) in enumerate(geo.near)]
        return Slices(curves=curves, points=pd.concat(near, ignore_index=True), point=geo.point)


__all__ = ["ExploreState"]
