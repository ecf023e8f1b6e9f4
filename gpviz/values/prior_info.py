"""What a parameter's prior says: its mode, a short description, and which prior guards which parameter.

A prior's hyperparameters may be vectors or batched (``GammaPrior(tensor([3., 1.5]),
tensor([6., 1.]))``, Ax's per-parameter ``lengthscale_prior_dict``, a batched model's
per-member priors). torch.distributions broadcasts them against the parameter's value
when it scores it, so each element of the parameter has its own prior: every fact here
is per element, broadcast the same way to the parameter's shape.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch.distributions import Distribution

from gpviz.errors import GpvizError
from gpviz.values.keys import ParamInfo, member_block, param_info
from gpviz.values.tensors import to_numpy

#: The hyperparameters of GPyTorch's univariate priors, in the order descriptions name them.
HYPERPARAMETERS = ("concentration", "rate", "loc", "scale", "concentration1", "concentration0", "low", "high")


def mode_tensor(prior: Distribution) -> torch.Tensor | None:
    """Each element's mode of a GPyTorch prior (the prior's own batch shape, float64; NaN where it has none).

    Gamma(a, b): ``(a - 1) / b`` (0 when a < 1); LogNormal(μ, σ): ``exp(μ - σ²)``;
    Normal: μ; HalfNormal, HalfCauchy: 0; Beta(a, b): ``(a - 1) / (a + b - 2)`` when a, b > 1.

    Returns:
        A tensor of the prior's batch shape, or None for a prior with no known mode.
    """
    name = type(prior).__name__

    def hyper(attr: str) -> torch.Tensor:
        return torch.as_tensor(getattr(prior, attr)).detach().to(torch.float64)

    try:
        if name == "GammaPrior":
            a, b = torch.broadcast_tensors(hyper("concentration"), hyper("rate"))
            return torch.where(a >= 1, (a - 1.0) / b, torch.zeros_like(a))
        if name == "LogNormalPrior":
            mu, s = torch.broadcast_tensors(hyper("loc"), hyper("scale"))
            return torch.exp(mu - s * s)
        if name == "NormalPrior":
            mu, _ = torch.broadcast_tensors(hyper("loc"), hyper("scale"))
            return mu.clone()
        if name in ("HalfNormalPrior", "HalfCauchyPrior"):
            return torch.zeros_like(hyper("scale"))
        if name == "BetaPrior":
            a, b = torch.broadcast_tensors(hyper("concentration1"), hyper("concentration0"))
            return torch.where((a > 1) & (b > 1), (a - 1.0) / (a + b - 2.0), torch.full_like(a, math.nan))
    except Exception:  # noqa: BLE001 - exotic prior parameterizations: no mode rather than a crash
        return None
    return None


def per_element(tensor: torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
    """A prior's per-element fact broadcast to a parameter's shape, as torch.distributions broadcasts.

    Args:
        tensor: A fact in the prior's batch shape (e.g. :func:`mode_tensor`), or None.
        shape: The parameter's (raw) shape, e.g. ``(*batch, 1, d)`` for ARD lengthscales.

    Returns:
        A float64 tensor of ``shape``: NaN everywhere when there is no fact, or when the
        prior's shape does not broadcast to the parameter's own (its log-probability
        would then sum over more elements than the parameter has: no element has one prior).
    """
    shape = torch.Size(shape)
    if tensor is None:
        return torch.full(shape, math.nan, dtype=torch.float64)
    tensor = torch.as_tensor(tensor).detach().to(torch.float64)
    try:
        if torch.broadcast_shapes(tensor.shape, shape) != shape:
            return torch.full(shape, math.nan, dtype=torch.float64)
    except RuntimeError:  # shapes that do not broadcast at all
        return torch.full(shape, math.nan, dtype=torch.float64)
    return tensor.expand(shape)


def prior_modes(prior: Distribution, shape: torch.Size) -> torch.Tensor:
    """Each element's prior mode for a parameter of ``shape`` (float64, NaN where unknown).

    Args:
        prior: A GPyTorch prior on the parameter's constrained value.
        shape: The parameter's shape (its raw tensor's shape).
    """
    return per_element(mode_tensor(prior), shape)


def prior_mode(prior: Distribution) -> float:
    """The mode of a GPyTorch prior whose hyperparameters are scalars (NaN if unknown or not one value).

    A prior with vector or batched hyperparameters has one mode per element: use
    :func:`prior_modes` with the parameter's shape. Here it is NaN unless all its
    elements share one mode (never element 0's mode for all).
    """
    modes = mode_tensor(prior)
    if modes is None or modes.numel() == 0:
        return float("nan")
    flat = modes.reshape(-1)
    return float(flat[0]) if bool((flat == flat[0]).all()) else float("nan")


def _fmt(t: torch.Tensor) -> str:
    t = t.detach().to(torch.float64)
    if t.numel() == 1 or bool((t == t.reshape(-1)[0]).all()):
        return f"{float(t.reshape(-1)[0]):.4g}"
    if t.numel() > 12:  # a 1,000-D vector: its shape and range, not a page of numbers
        return f"<{'x'.join(str(s) for s in t.shape)} values from {float(t.min()):.4g} to {float(t.max()):.4g}>"
    return str(_rounded(t.tolist()))


def _rounded(v):
    return [_rounded(x) for x in v] if isinstance(v, list) else float(f"{v:.4g}")


def prior_params(prior: Distribution) -> str:
    """A short ``name=value`` description of a prior's parameters.

    A hyperparameter that differs across elements is shown as its nested list (its
    shape visible: ``concentration=[3.0, 1.5]``, ``rate=[[6.0], [1.0]]``), a long one
    by its shape and range; one value shared by all elements as that value.
    """
    parts = []
    for n in HYPERPARAMETERS:
        if not hasattr(prior, n):
            continue
        try:
            parts.append(f"{n}={_fmt(torch.as_tensor(getattr(prior, n)))}")
        except Exception:  # noqa: BLE001 - a hyperparameter that is not numeric: left out of the description
            continue
    return ", ".join(parts)


def element_params(prior: Distribution, shape: torch.Size) -> list[str]:
    """Per element of a parameter of ``shape`` (row-major), the ``name=value`` description of its own prior.

    ``GammaPrior(tensor([3., 1.5]), tensor([6., 1.]))`` on a ``1 x 2`` lengthscale gives
    ``["concentration=3, rate=6", "concentration=1.5, rate=1"]``.
    """
    shape = torch.Size(shape)
    n = int(shape.numel())
    columns = []
    for name in HYPERPARAMETERS:
        if not hasattr(prior, name):
            continue
        try:
            t = torch.as_tensor(getattr(prior, name))
            values = per_element(t, shape).reshape(-1).tolist()
        except Exception:  # noqa: BLE001 - a hyperparameter that is not numeric: left out of the description
            continue
        if any(math.isnan(v) for v in values):  # not one value per element: the whole prior's description
            return [prior_params(prior)] * n
        columns.append([f"{name}={v:.4g}" for v in values])
    return [", ".join(parts) for parts in zip(*columns)] if columns else [""] * n


def prior_block(prior: Distribution, info: ParamInfo, indices, batch: torch.Size) -> tuple[np.ndarray, np.ndarray]:
    """Each member's and element's own prior mode and description, laid out like :func:`member_block`.

    Args:
        prior: The GPyTorch prior on the parameter ``info`` describes.
        info: From :func:`gpviz.values.keys.param_info`.
        indices: Squeezed element indices (k of them).
        batch: The root's batch shape.

    Returns:
        ``(modes, params)``: a ``(n_members, k)`` float64 array of modes (NaN where unknown)
        and a ``(n_members, k)`` object array of ``name=value`` descriptions.
    """
    shape = info.raw.shape
    n = int(torch.Size(batch).numel())
    modes = member_block(dataclasses.replace(info, raw=prior_modes(prior, shape), constraint=None), indices, batch,
                         raw=True)
    # which element of the parameter each (member, key) cell reads, by the same layout as its values
    where = torch.arange(int(shape.numel()), dtype=torch.float64).reshape(shape)
    at = member_block(dataclasses.replace(info, raw=where, constraint=None), indices, batch, raw=True)
    texts = np.array(element_params(prior, shape), dtype=object)
    return (to_numpy(modes.reshape(n, len(indices))),
            texts[to_numpy(at.reshape(n, len(indices)), dtype=np.int64)])


def priors_by_param(root: torch.nn.Module) -> dict[tuple[str, str], Distribution]:
    """(module path, value name) -> prior, from ``named_priors`` (``X_prior`` guards parameter ``X``)."""
    out: dict[tuple[str, str], Distribution] = {}
    named_priors = getattr(root, "named_priors", None)  # gpytorch.Module's
    if named_priors is None:  # a plain torch container (botorch ModelList): ask its children
        for child_name, child in root.named_children():
            for (path, value_name), prior in priors_by_param(child).items():
                out[(f"{child_name}.{path}" if path else child_name, value_name)] = prior
        return out
    for name, module, prior, _closure, _setting in named_priors():
        path, _, prior_name = name.rpartition(".")
        if prior_name.endswith("_prior"):
            out[(path, prior_name[: -len("_prior")])] = prior
    return out


def mode_text(prior: Distribution) -> str:
    """``mode 0.0013`` (every element's one mode), ``modes 0.333 .. 0.5`` (elements of their own), or ``""``."""
    modes = mode_tensor(prior)
    if modes is None or modes.numel() == 0 or bool(torch.isnan(modes).all()):
        return ""
    flat = modes.reshape(-1)
    if bool((flat == flat[0]).all()):
        return f"mode {float(flat[0]):.4g}"
    finite = flat[~torch.isnan(flat)]
    return f"modes {float(finite.min()):.4g} .. {float(finite.max()):.4g}"


def describe_prior(prior: Distribution) -> str:
    """``LogNormalPrior(loc=2.387, scale=3), mode 0.001289``: the prior, then its mode when it has one."""
    mode = mode_text(prior)
    return f"{type(prior).__name__}({prior_params(prior)})" + (f", {mode}" if mode else "")


@dataclasses.dataclass(frozen=True)
class ModeConflict:
    """A prior whose mode lies outside its parameter's constraint bounds (the prior pushes the value onto a bound).

    Attributes:
        parameter: The parameter's path (``covar_module.lengthscale``).
        prior: :func:`describe_prior` of its prior.
        mode: The mode furthest outside the bounds.
        lower: The constraint's lower bound (-inf when none).
        upper: The constraint's upper bound (inf when none).
        elements: How many of the parameter's elements have their mode outside.
    """

    parameter: str
    prior: str
    mode: float
    lower: float
    upper: float
    elements: int

    def __str__(self) -> str:
        side = f"below its lower bound {self.lower:.4g}" if self.mode < self.lower else \
            f"above its upper bound {self.upper:.4g}"
        many = f" ({self.elements} elements)" if self.elements > 1 else ""
        return (f"{self.parameter} ~ {self.prior}: the mode {self.mode:.4g} lies {side}{many}, so the prior pushes "
                f"the value onto the bound")


def mode_conflicts(root: torch.nn.Module) -> list[ModeConflict]:
    """Every prior of ``root`` whose mode (any element's own) lies outside its parameter's constraint bounds.

    A prior on something other than a parameter of its module (a function of several) is not checked.
    """
    out = []
    for (path, name), prior in priors_by_param(root).items():
        try:
            module = root.get_submodule(path) if path else root
            info = param_info(module, name)
        except (AttributeError, GpvizError):
            continue
        modes = prior_modes(prior, info.raw.shape)
        lower, upper = info.bounds()
        below, above = modes < lower, modes > upper  # NaN (no mode) is neither
        n = int((below | above).sum())
        if n:
            worst = float(modes[below].min()) if bool(below.any()) else float(modes[above].max())
            out.append(ModeConflict(f"{path}.{name}".lstrip("."), describe_prior(prior), worst, lower, upper, n))
    return out


def describe_priors(model) -> list[tuple[str, str]]:
    """(parameter path, ``PriorClass(params), mode m``) for every prior of a model: covariance, then noise, then
    mean (:func:`describe_prior`)."""
    out = []
    for name, _module, prior, _closure, _setting in model.named_priors():
        path, _, prior_name = name.rpartition(".")
        target = f"{path}.{prior_name[: -len('_prior')]}" if prior_name.endswith("_prior") else name
        out.append((target.lstrip("."), describe_prior(prior)))
    # in the order the expression prints its sections: covariance, noise, mean
    rank = {"covar_module": 0, "likelihood": 1, "mean_module": 2}
    return sorted(out, key=lambda item: rank.get(item[0].split(".")[0], 3))
