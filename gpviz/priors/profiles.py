""""Why here?" profiles: the log likelihood, the log prior and their sum along one parameter element's axis.

For each parameter element of an exact GP, every other parameter stays at its fitted
value while this one runs over a grid (the chart's axis, in model units). Three curves
per element and batch member answer "why is the value here?" at a glance:

- a flat likelihood and a value at a bound: nothing in the data holds it there;
- the sum's peak on the prior's side of the likelihood's peak: the prior pulled it;
- two peaks of the sum: a second mode the optimizer might have found instead.

The numbers are GPyTorch's own: the log likelihood is
``model.likelihood(model(*train_inputs), *train_inputs).log_prob(train_targets)`` (the
exact marginal log likelihood times n, priors left out) and the log prior is the sum
of every prior's ``log_prob`` reduced to the batch members as
``ExactMarginalLogLikelihood`` reduces it, both on a deep copy of the model (the
user's model is never changed). A grid point costs one Cholesky of the training
covariance, so :func:`model_profiles` computes them by default only below a cost limit
(:data:`PROFILE_MAX_WORK`, like the verdicts' rule in :mod:`gpviz.priors.judge`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from gpytorch.models import ExactGP

from gpviz.errors import InputError, KeyMismatchError, VerdictWarning
from gpviz.models.families import is_fully_bayesian, model_batch_shape, training_points, unwrap_model
from gpviz.values.keys import ParamInfo, param_info, parse_key, resolve
from gpviz.values.tensors import to_numpy

#: Grid points per element (a curve on a 150 px axis: a point every 6 px).
PROFILE_POINTS = 25
#: Profiles are computed by default only when (training points)^3 x (grid evaluations) stays below this (n = 500
#: allows 6 elements) ...
PROFILE_MAX_WORK = 2e10
#: ... and at most this many grid evaluations (16 elements: a 10-input ARD model with its outputscale, noise and
#: mean). Each is one GPyTorch forward pass and log_prob, whose fixed cost dominates below a few hundred points:
#: 15-30 ms each measured under a load of 11 on 2 cores (n = 30 to 400), a few ms on an idle core.
PROFILE_MAX_EVALS = 400


@dataclass(frozen=True, eq=False)
class Profile:
    """One parameter element's profiles, every batch member along the same grid.

    Attributes:
        key: The parameter key.
        grid: ``(g,)`` constrained values in model units, increasing (points the constraint refuses are left out).
        log_likelihood: ``(members, g)`` GPyTorch's exact log marginal likelihood (summed over points).
        log_prior: ``(members, g)`` the sum of every prior's log density (a constant where no prior guards the key).
    """

    key: str
    grid: np.ndarray
    log_likelihood: np.ndarray
    log_prior: np.ndarray

    @property
    def log_posterior(self) -> np.ndarray:
        """``(members, g)`` their sum: the MAP objective times n along the axis."""
        return self.log_likelihood + self.log_prior


class ModelProfiles(dict):
    """key -> :class:`Profile` (a plain dict to read), and ``note``: why some or all are missing.

    Attributes:
        note: One line for the page ("" when every profile was computed).
    """

    def __init__(self, profiles=(), note: str = ""):
        super().__init__(profiles)
        self.note = note


def profile_work(expr, points: int = PROFILE_POINTS) -> float | None:
    """(training points)^3 x grid evaluations of ``expr``'s model, or None when profiles do not apply.

    They apply to one exact GP with training data (not a model list, an approximate or a
    fully Bayesian model, whose samples a ``train()`` round trip would drop).
    """
    model = unwrap_model(expr.module)
    if not isinstance(model, ExactGP) or is_fully_bayesian(model):
        return None
    n = training_points(model)
    if n is None:
        return None
    return float(n) ** 3 * len(expr.keys) * points


def grid_of(lo: float, hi: float, log: bool, points: int = PROFILE_POINTS) -> np.ndarray:
    """``points`` values from ``lo`` to ``hi``: evenly spaced in log10 on a log axis, else linearly.

    Raises:
        InputError: for an empty or non-finite range, or a log range that is not positive.
    """
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise InputError(f"a profile's range must be finite with hi > lo, got ({lo!r}, {hi!r})")
    if log:
        if lo <= 0:
            raise InputError(f"a log axis' range must be positive, got ({lo!r}, {hi!r})")
        return np.logspace(math.log10(lo), math.log10(hi), points)
    return np.linspace(lo, hi, points)


def profiles(model, ranges: Mapping[str, tuple[float, float, bool]], points: int = PROFILE_POINTS
             ) -> dict[str, Profile]:
    """The log likelihood and log prior along each key's grid, the other parameters at their values.

    Args:
        model: An exact GPyTorch/BoTorch GP (or its MLL), with training data.
        ranges: key -> ``(lo, hi, log)``: the range in model units and whether its grid is log-spaced.
        points: Grid points per key.

    Returns:
        key -> :class:`Profile`, in the order of ``ranges``.

    Raises:
        InputError: for a model that is not one exact GP with training data, or a bad range.
        KeyMismatchError: for a key the model does not have.
    """
    model = unwrap_model(model)
    if not isinstance(model, ExactGP) or not model.train_inputs:
        raise InputError(f"profiles need one exact GP with training data, got {type(model).__name__}")
    work = copy.deepcopy(model)  # the user's model is never changed
    batch = torch.Size(model_batch_shape(work))
    out = {}
    with torch.no_grad():
        work.train()  # as BoTorch's fit sees it: the input transform applied in forward
        for key, (lo, hi, log) in ranges.items():
            out[key] = _profile(work, key, grid_of(float(lo), float(hi), bool(log), points), batch)
    return out


def _profile(model, key: str, grid: np.ndarray, batch: torch.Size) -> Profile:
    path, name, index = parse_key(key)
    info = param_info(resolve(model, path), name, batch)
    if info.name != name:
        raise KeyMismatchError(f"{key!r} names no parameter of {type(model).__name__}")
    flat = info.flat_index(index)
    lower, upper = info.bounds()
    c = info.constraint
    enforced = c is not None and getattr(c, "enforced", True)
    # an enforced bound has no raw value: the grid stays strictly inside (the chart's axis may reach past it)
    grid = grid[(grid > lower) & (grid < upper)] if enforced else grid[(grid >= lower) & (grid <= upper)]
    members = int(batch.numel()) or 1
    view = info.raw.data.view(tuple(info.raw.shape[: info.member_ndim]) + (-1,))
    saved = view[..., flat].clone()
    ll = np.full((members, grid.size), math.nan)
    lp = np.full((members, grid.size), math.nan)
    try:
        for j, v in enumerate(grid):
            raw = _raw(info, float(v))
            if raw is None:
                continue
            view[..., flat] = raw  # every member at the same value: one call gives each member's profile
            ll[:, j], lp[:, j] = _terms(model, members)
    finally:
        view[..., flat] = saved
    keep = np.isfinite(ll).any(axis=0)
    return Profile(key, grid[keep], ll[:, keep], lp[:, keep])


def _raw(info: ParamInfo, value: float) -> torch.Tensor | None:
    t = torch.tensor(value, dtype=info.raw.dtype, device=info.raw.device)
    c = info.constraint
    raw = c.inverse_transform(t) if c is not None and getattr(c, "enforced", True) else t
    return raw if bool(torch.isfinite(raw)) else None


def _per_member(t: torch.Tensor, members: int) -> np.ndarray:
    """A log density of the model's batch shape (or a scalar shared by all members) as ``(members,)``."""
    a = to_numpy(t.detach().to(torch.float64)).reshape(-1)
    return np.broadcast_to(a, (members,)) if a.size == 1 else a


def _terms(model, members: int) -> tuple[np.ndarray, np.ndarray]:
    """(log likelihood, log prior) per member at the model's current values."""
    inputs = model.train_inputs
    try:
        out = model.likelihood(model(*inputs), *inputs)
        ll = _per_member(out.log_prob(model.train_targets), members)
    except Exception:  # noqa: BLE001 - a value whose covariance is not positive definite: no point there
        return np.full(members, math.nan), np.full(members, math.nan)
    ndim = out.batch_shape.__len__()
    lp = torch.zeros(out.batch_shape, dtype=torch.float64)
    for _name, module, prior, closure, _setting in model.named_priors():
        term = prior.log_prob(closure(module)).to(torch.float64)
        # reduced to the batch members exactly as ExactMarginalLogLikelihood adds its priors
        lp = lp + term.reshape(*term.shape[:ndim], -1).sum(dim=-1)
    return ll, _per_member(lp, members)


def model_profiles(expr, ranges: Mapping[str, tuple[float, float, bool]], force: bool = False) -> ModelProfiles:
    """:func:`profiles` of the model behind ``expr`` when cheap (or ``force``), else none with a note.

    Never raises (a page stands without profiles): a model profiles do not apply to gets
    none and no note; one above :data:`PROFILE_MAX_WORK` a note saying how to ask; a failure
    a note and a :class:`~gpviz.errors.VerdictWarning`.
    """
    work = profile_work(expr)
    if work is None or not ranges:
        return ModelProfiles()
    if not force and (work > PROFILE_MAX_WORK or len(expr.keys) * PROFILE_POINTS > PROFILE_MAX_EVALS):
        n = training_points(unwrap_model(expr.module))
        return ModelProfiles(note=f'"Why here?" profiles not computed: {n} training points x {len(expr.keys)} '
                                  f"parameter elements is above the cost limit; render(model, profiles=True) "
                                  f"draws them.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ModelProfiles(profiles(expr.module, ranges))
    except Exception as exc:  # noqa: BLE001 - profiles are an extra: the page is drawn without them, and says so
        why = f"{type(exc).__name__}: {exc}"
    warnings.warn(f"gpviz: profiles failed on {type(expr.module).__name__} ({why}); the page shows none",
                  VerdictWarning, stacklevel=2)
    return ModelProfiles(note=f'"Why here?" profiles not computed: {why}.')


def converted_profiles(expr, ranges: Mapping[str, tuple[float, float, bool]], conversions: Mapping,
                       force: bool = False) -> ModelProfiles:
    """:func:`model_profiles` for a page in other units: ranges and grids through each key's linear conversion.

    Args:
        expr: The model-units expression.
        ranges: key -> ``(lo, hi, log)`` of the page's axes, in the page's units.
        conversions: key -> :class:`~gpviz.values.units.Conversion` (``shown = value x scale + offset``; a key
            without one is shown in model units). A key whose conversion differs between batch members or is
            not increasing gets no profile.
        force: As for :func:`model_profiles`.
    """
    linear = {}
    for key in ranges:
        c = conversions.get(key)
        if c is None:
            linear[key] = (1.0, 0.0)
            continue
        s, o = np.asarray(c.scale, dtype=np.float64), np.asarray(c.offset, dtype=np.float64)
        if s.size and np.allclose(s, s[0], rtol=1e-12) and np.allclose(o, o[0], rtol=1e-12) and s[0] > 0:
            linear[key] = (float(s[0]), float(o[0]))
    model_ranges = {k: ((lo - linear[k][1]) / linear[k][0], (hi - linear[k][1]) / linear[k][0], log)
                    for k, (lo, hi, log) in ranges.items() if k in linear}
    found = model_profiles(expr, model_ranges, force=force)
    return ModelProfiles({k: dataclasses.replace(p, grid=p.grid * linear[k][0] + linear[k][1])
                          for k, p in found.items()}, note=found.note)
