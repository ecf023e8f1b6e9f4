"""The derivatives behind a prior pull: the MLL split into its data and prior terms, and their first
and second derivatives per parameter element, for every batch member at once.

Members of a batched model are independent, so one gradient of a summed term gives
every member's gradient, and one Hessian-vector product per parameter element gives
that element's curvature in every member. For an exact GP the likelihood term is
differentiated through an exact second-order surrogate (:func:`quad_lik`) whose graph
holds no Cholesky. A univariate prior on a parameter's own value needs no such pass:
its Hessian in the value space is diagonal.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import gpytorch
import numpy as np
import torch
from gpytorch.distributions import MultivariateNormal
from gpytorch.mlls import ExactMarginalLogLikelihood, MarginalLogLikelihood
from linear_operator import settings as lo_settings
from linear_operator.utils.cholesky import psd_safe_cholesky
from linear_operator.utils.errors import NanError, NotPSDError
from linear_operator.utils.warnings import NumericalWarning

from gpviz.errors import UnsupportedError
from gpviz.values.keys import ParamInfo, member_values, parse_key
from gpviz.values.tensors import to_numpy

#: Differentiate an exact MLL's likelihood term through :func:`quad_lik` where it applies
#: (False: through ``log_prob`` itself, one Hessian-vector product through the Cholesky per element).
QUAD_LIK = True


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
    quad: bool = False  # lik is differentiated through quad_lik's surrogate (its value is log_prob's)


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
    Where :func:`quad_lik` applies (and :data:`QUAD_LIK` is on) the likelihood term
    keeps that value but is differentiated through its exact second-order surrogate
    (``Terms.quad``). For other MLL classes the likelihood term is
    ``total - Σ log prior / n``.
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
    quad = False
    if exact:
        total = total / num_data
        lik = log_lik
        q = quad_lik(marg, targets, log_lik) if QUAD_LIK else None
        if q is not None:
            # the exact value; the derivatives (first and second, at this θ) are q's
            lik, quad = log_lik.detach() + (q - q.detach()), True
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
    return Terms(flat[0], flat[1], flat[2], int(num_data), fast, quad)


def quad_lik(marg, targets: torch.Tensor, log_lik: torch.Tensor) -> torch.Tensor | None:
    """The Gaussian log likelihood's second-order Taylor model around the current θ0, or None.

    Differentiating ``log_prob`` twice (one Hessian-vector product per parameter element)
    runs backward through the Cholesky and its triangular solves twice. Instead, with
    ``A`` the marginal covariance, ``r = y - m`` the residual, and ``A0⁻¹``,
    ``α = A0⁻¹ r0``, ``ℓ0`` from one Cholesky of ``A0 = A(θ0)`` (all constants)::

        q(θ) = ℓ0 + ½ αᵀΔα - ½ ⟨A0⁻¹, Δ⟩ - αᵀδ - ½ (Δα - δ)ᵀ A0⁻¹ (Δα - δ) + ¼ tr(A0⁻¹ Δ A0⁻¹ Δ),
        Δ = A(θ) - A0,  δ = r(θ) - r0,

    the expansion of ``ℓ(A, r) = -½ rᵀA⁻¹r - ½ log|A| - n/2 log 2π`` to second order in
    ``(Δ, δ)``. Δ and δ are exactly 0 at θ0 (``A - A.detach()``), so q has exactly ℓ's
    value, gradient and Hessian there (chain rule through ``A(θ)`` and ``r(θ)``), while
    its graph holds only the kernel, the mean and batched products with the fixed
    ``A0⁻¹``: no Cholesky is differentiated.

    Only where that is exactly the term GPyTorch differentiates: a plain
    ``MultivariateNormal`` marginal (not multi-task), evaluated by Cholesky (at most
    ``max_cholesky_size`` points), factored by linear_operator's ``psd_safe_cholesky``
    without jitter, and q's value equal to ``log_lik`` (to √eps). Otherwise None: the
    caller differentiates ``log_lik`` itself.

    Args:
        marg: The likelihood's marginal ``likelihood(model(X), *params)``, in the graph.
        targets: The training targets ``y``, shaped like ``marg.mean`` (``[*batch, n]``).
        log_lik: ``marg.log_prob(targets)`` (``[*batch]``), to check q's value against.

    Returns:
        q per batch member (``[*batch]``, not divided by n), or None.
    """
    if type(marg) is not MultivariateNormal or lo_settings.trace_mode.on():
        return None
    n = int(marg.event_shape.numel())
    if n > gpytorch.settings.max_cholesky_size.value():  # log_prob runs iterative solvers there
        return None
    mean = marg.mean  # [*batch, n]
    if targets.shape != mean.shape or log_lik.shape != mean.shape[:-1]:
        return None
    A = marg.covariance_matrix  # [*batch, n, n], dense, in the graph
    r = targets - mean
    if A.shape != r.shape + (n,):
        return None
    A0, r0 = A.detach(), r.detach()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            L = psd_safe_cholesky(A0)
        except (NotPSDError, NanError):
            L = None
    for w in caught:  # pass on what is not the jitter notice
        if not issubclass(w.category, NumericalWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if L is None or any(issubclass(w.category, NumericalWarning) for w in caught):
        return None  # jitter: log_prob's factor is not of A0 itself
    with torch.no_grad():
        alpha = torch.cholesky_solve(r0.unsqueeze(-1), L)  # [*batch, n, 1]
        a_inv = torch.cholesky_inverse(L)  # [*batch, n, n]
        l0 = (-0.5 * (r0.unsqueeze(-1) * alpha).sum((-2, -1)) - L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
              - 0.5 * n * math.log(2 * math.pi))  # [*batch]
    delta_a = A - A0  # exactly 0, with A's derivatives
    delta_r = (r - r0).unsqueeze(-1)  # [*batch, n, 1]
    da = delta_a @ alpha
    w = da - delta_r
    m = a_inv @ delta_a
    q = (l0 + 0.5 * (alpha * da).sum((-2, -1)) - 0.5 * (a_inv * delta_a).sum((-2, -1))
         - (alpha * delta_r).sum((-2, -1)) - 0.5 * (w * (a_inv @ w)).sum((-2, -1))
         + 0.25 * (m * m.transpose(-2, -1)).sum((-2, -1)))
    tol = torch.finfo(q.dtype).eps ** 0.5
    if not torch.allclose(q.detach(), log_lik.detach(), rtol=tol, atol=tol * n):
        return None
    return q


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
