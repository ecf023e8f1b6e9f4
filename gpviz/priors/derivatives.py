"""The derivatives behind a prior pull: the MLL split into its data and prior terms, and their first
and second derivatives per parameter element, for every batch member at once.

Members of a batched model are independent, so one gradient of a summed term gives
every member's gradient, and one Hessian-vector product per parameter element gives
that element's curvature in every member. A univariate prior on a parameter's own
value needs no such pass: its Hessian in the value space is diagonal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gpytorch
import numpy as np
import torch
from gpytorch.distributions import MultivariateNormal
from gpytorch.mlls import ExactMarginalLogLikelihood, MarginalLogLikelihood

from gpviz.errors import UnsupportedError
from gpviz.values.keys import ParamInfo, member_values, parse_key
from gpviz.values.tensors import to_numpy


@dataclass
class Terms:
    """The MLL split in two, per batch member (flattened), each already divided by n like the MLL.

    ``slow_prior`` holds the priors that are differentiated through the raw
    parameters (a prior on anything but one parameter's own elements);
    ``fast`` the priors differentiated elementwise in the value space instead.
    """

    lik: torch.Tensor  # n_members
    slow_prior: torch.Tensor  # n_members
    total: torch.Tensor  # n_members: the MLL's own value
    num_data: int
    fast: dict  # (path, name) -> [(prior, theta)]: priors scored elementwise on one parameter's value


def elementwise_target(name: str, module, prior, closure, infos: dict):
    """``(path, value name)`` when a named prior scores one reported parameter elementwise, else None.

    Elementwise means: the closure returns exactly the parameter's constrained value
    and ``log_prob`` keeps its shape (a univariate prior), so the prior's Hessian in
    the value space is diagonal and two autograd passes give every element's
    curvature at once.
    """
    path, _, prior_name = name.rpartition(".")
    if not prior_name.endswith("_prior"):
        return None
    target = (path, prior_name[: -len("_prior")])
    info = infos.get(target)
    if info is None:
        return None
    with torch.no_grad():
        theta = closure(module)
        value = info.value()
        if not isinstance(theta, torch.Tensor) or theta.shape != value.shape or not torch.equal(theta, value):
            return None
        try:
            lp = prior.log_prob(theta)
        except Exception:  # noqa: BLE001 - the slow path scores it as the MLL does
            return None
    return target if lp.shape == theta.shape else None


def mll_terms(mll: MarginalLogLikelihood, n_members: int, infos: dict) -> Terms:
    """Evaluates the MLL the way BoTorch's loss closure does, and its two terms separately.

    The prior term is summed exactly as ``ExactMarginalLogLikelihood`` sums it
    (``model.named_priors()``, no deduplication; a prior on a parameter shared by all
    members is added to every member's term). For an exact MLL (observation NaN policy
    "ignore") the likelihood's marginal is built once: its ``log_prob(y)`` plus the added
    loss terms is the likelihood term, and the same ``log_prob`` plus the added loss
    terms and the priors, in GPyTorch's order, divided by n, is the MLL's total
    (bit for bit what ``mll(out, y, *params)`` returns, without a second Cholesky).
    For other MLL classes the likelihood term is ``total - Σ log prior / n``.
    """
    model = mll.model
    inputs = tuple(model.train_inputs)
    targets = model.train_targets
    transform = getattr(model, "transform_inputs", None)
    # BoTorch transforms inputs in forward while training and passes the transformed
    # inputs to the likelihood as extra params (botorch.optim.closures).
    params = tuple(transform(X=t) for t in inputs) if callable(transform) else inputs
    out = model(*inputs)
    num_data = out.event_shape.numel()
    exact = (type(mll) is ExactMarginalLogLikelihood and isinstance(out, MultivariateNormal)
             and gpytorch.settings.observation_nan_policy.value() == "ignore")
    if exact:
        # ExactMarginalLogLikelihood.forward: the marginal's log_prob, then the added loss
        # terms, then each prior (below), then / n
        marg = mll.likelihood(out, *params)
        log_lik = marg.log_prob(targets)
        added = [term.loss(*params) for term in model.added_loss_terms()]
        total = log_lik
        for a in added:
            total = total.add(a)
    else:
        total = mll(out, targets, *params)
    prior, slow = torch.zeros_like(total), torch.zeros_like(total)
    fast: dict = {}
    ndim = total.ndim
    for name, module, pr, closure, _setting in model.named_priors():
        term = pr.log_prob(closure(module))
        summed = term.reshape(*term.shape[:ndim], -1).sum(-1)
        prior = prior + summed
        if exact:
            total = total + summed
        target = elementwise_target(name, module, pr, closure, infos)
        if target is None:
            slow = slow + summed
        else:
            fast.setdefault(target, []).append(pr)
    if exact:
        total = total / num_data
        lik = log_lik
        for a in added:
            lik = lik + a
        lik = lik / num_data
    else:
        lik = total - prior / num_data
    slow = slow / num_data
    shape = torch.broadcast_shapes(total.shape, slow.shape, lik.shape)
    if int(shape.numel()) != n_members:
        raise UnsupportedError(f"the MLL of {type(model).__name__} returns shape {list(shape)}, but the model has "
                               f"{n_members} batch members: prior_pull needs one MLL value per member")
    flat = [t.expand(shape).reshape(-1) for t in (lik, slow, total)]
    return Terms(flat[0], flat[1], flat[2], int(num_data), fast)


def fast_prior_derivs(terms: Terms, infos: dict) -> dict:
    """(path, name) -> (d log prior / dθ, d² log prior / dθ²) per element (value-shaped), divided by n.

    The priors of ``terms.fast`` are univariate and score the value itself, so the
    summed log density separates per element: the gradient of the sum is each
    element's derivative, and the gradient of the summed gradient each element's
    second derivative (a diagonal Hessian), for every member and element in two passes.
    """
    out = {}
    for target, priors in terms.fast.items():
        theta = infos[target].value().detach().clone().requires_grad_(True)
        with torch.enable_grad():
            lp = sum(p.log_prob(theta).sum() for p in priors)
            (d1,) = torch.autograd.grad(lp, theta, create_graph=True)
            d2 = torch.autograd.grad(d1.sum(), theta, allow_unused=True)[0] if d1.requires_grad else None
        d2 = torch.zeros_like(theta) if d2 is None else d2
        out[target] = (d1.detach() / terms.num_data, d2.detach() / terms.num_data)
    return out


def transform_derivs(info: ParamInfo) -> tuple[torch.Tensor, torch.Tensor]:
    """dθ/draw and d²θ/draw² elementwise (raw-shaped); (1, 0) when raw == value."""
    c = info.constraint
    raw = info.raw.detach()
    if c is None or not getattr(c, "enforced", True):
        # BoTorch's GreaterThan(lb, transform=None): not enforced, raw == value
        return torch.ones_like(raw), torch.zeros_like(raw)
    r = raw.clone().requires_grad_(True)
    with torch.enable_grad():
        d1 = torch.autograd.grad(c.transform(r).sum(), r, create_graph=True)[0]
        d2 = torch.autograd.grad(d1.sum(), r, allow_unused=True)[0] if d1.requires_grad else None
    return d1.detach(), (d2.detach() if d2 is not None else torch.zeros_like(raw))


def element(info: ParamInfo, tensor: torch.Tensor, index: tuple[int, ...], batch: torch.Size) -> torch.Tensor:
    """One element of a raw-shaped tensor for every batch member (flattened)."""
    view = ParamInfo(info.module, info.name, info.raw_name, tensor.detach(), None, info.member_ndim, info.elem_shape)
    return member_values(view, index, batch).reshape(-1)


def pick(info: ParamInfo, tensor: torch.Tensor, index: tuple[int, ...]) -> torch.Tensor:
    """Sum over members of one element of a raw-shaped tensor (keeps the graph)."""
    members = tensor.shape[: info.member_ndim]
    return tensor.reshape(tuple(members) + (-1,))[..., info.flat_index(index)].sum()


def derivatives(term: torch.Tensor, infos: dict, elements: dict, batch: torch.Size, shared: set
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """key -> (first, second) derivative of ``term`` in raw space, per member (flattened).

    Members of a batched model are independent, so the gradient of the summed
    term separates per member; a parameter shared across members gets one
    backward pass per member instead.
    """
    n = int(batch.numel())
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if not term.requires_grad:  # e.g. no priors at all: the term is a constant
        for key in elements:
            out[key] = (np.zeros(n), np.zeros(n))
        return out
    own = [pk for pk in infos if pk not in shared]
    if own:
        raws = [infos[pk].raw for pk in own]
        grads = torch.autograd.grad(term.sum(), raws, create_graph=True, allow_unused=True)
        for pk, g in zip(own, grads):
            info = infos[pk]
            for key, index in elements.items():
                if (parse_key(key)[0], parse_key(key)[1]) != pk:
                    continue
                if g is None or not g.requires_grad:
                    gz = torch.zeros_like(info.raw) if g is None else g
                    out[key] = (to_numpy(element(info, gz, index, batch)), np.zeros(n))
                    continue
                h = torch.autograd.grad(pick(info, g, index), info.raw, retain_graph=True, allow_unused=True)[0]
                h = torch.zeros_like(info.raw) if h is None else h
                out[key] = (to_numpy(element(info, g, index, batch)), to_numpy(element(info, h, index, batch)))
    for pk in shared:
        info = infos[pk]
        keys = [k for k in elements if (parse_key(k)[0], parse_key(k)[1]) == pk]
        first = {k: np.zeros(n) for k in keys}
        second = {k: np.zeros(n) for k in keys}
        for i in range(n):
            g = torch.autograd.grad(term[i], info.raw, create_graph=True, retain_graph=True, allow_unused=True)[0]
            if g is None:
                continue
            for k in keys:
                index = elements[k]
                first[k][i] = float(element(info, g, index, batch)[i])
                if g.requires_grad:
                    h = torch.autograd.grad(pick(info, g, index), info.raw, retain_graph=True, allow_unused=True)[0]
                    if h is not None:
                        second[k][i] = float(element(info, h, index, batch)[i])
        for k in keys:
            out[k] = (first[k], second[k])
    return out


def is_positive(prior, lower: float) -> bool:
    """A positive parameter: its constraint's lower bound, or its prior's support, is >= 0."""
    if lower >= 0:
        return True
    bound = getattr(getattr(prior, "support", None), "lower_bound", None)
    try:
        return bound is not None and float(bound) >= 0
    except (TypeError, ValueError):  # a tensor-valued bound
        return False


def first_value(t) -> float:
    return float(torch.as_tensor(t).reshape(-1)[0])


def prior_std(prior) -> float:
    """The prior's standard deviation (of the value itself), NaN without a closed form."""
    try:
        return first_value(prior.stddev)
    except Exception:  # noqa: BLE001 - priors without a closed-form standard deviation
        return float("nan")


def log_std(prior) -> float:
    """The standard deviation of ``log θ`` under a prior on positive values.

    Closed forms: LogNormal(μ, σ) → σ; Gamma(a, b) → √ψ′(a) (the trigamma function).
    Other priors: from 4096 draws under a fixed seed (NaN if the prior cannot sample).
    """
    name = type(prior).__name__
    try:
        if name == "LogNormalPrior":
            return first_value(prior.scale)
        if name == "GammaPrior":
            return math.sqrt(float(torch.special.polygamma(1, torch.as_tensor(first_value(prior.concentration),
                                                                                dtype=torch.float64))))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            draws = prior.sample(torch.Size([4096])).reshape(4096, -1)[:, 0].double()
        draws = draws[draws > 0]
        return float(torch.log(draws).std()) if draws.numel() > 1 else float("nan")
    except Exception:  # noqa: BLE001 - a prior that cannot say: no distance in standard deviations
        return float("nan")
