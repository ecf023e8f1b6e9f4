"""The derivatives behind a prior pull: the MLL split into its data and prior terms, and their first
and second derivatives per parameter element, for every batch member at once.

Members of a batched model are independent, so one gradient of a summed term gives
every member's gradient, and one Hessian-vector product per parameter element gives
that element's curvature in every member. For an exact GP the likelihood term is
differentiated through an exact second-order surrogate (:func:`quad_lik`) whose graph
holds no Cholesky. A univariate prior on a parameter's own value needs no such pass:
its Hessian in the value space is diagonal. For the commonest exact GPs (SingleTaskGP, a
(Scale)Matern or RBF kernel) :func:`closed_form_lik` needs no autograd pass per element at all.

Longer than most modules (about 600 lines): the three ways of taking the likelihood term's
derivatives (Hessian-vector products, the quad_lik surrogate, the closed form) share their
checks and fall back to each other, and are compared by the tests, so they live together.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import gpytorch
import numpy as np
import torch
from botorch.models import SingleTaskGP
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import MaternKernel, RBFKernel, ScaleKernel
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood, GaussianLikelihood
from gpytorch.likelihoods.noise_models import FixedGaussianNoise, HomoskedasticNoise
from gpytorch.means import ConstantMean, ZeroMean
from gpytorch.mlls import ExactMarginalLogLikelihood, MarginalLogLikelihood
from linear_operator import settings as lo_settings
from linear_operator.utils.cholesky import psd_safe_cholesky
from linear_operator.utils.errors import NanError, NotPSDError
from linear_operator.utils.warnings import NumericalWarning

from gpviz.errors import UnsupportedError
from gpviz.seeding import seeded
from gpviz.values.keys import ParamInfo, member_values, parse_key
from gpviz.values.tensors import to_numpy

#: Differentiate an exact MLL's likelihood term through :func:`quad_lik` where it applies
#: (False: through ``log_prob`` itself, one Hessian-vector product through the Cholesky per element).
QUAD_LIK = True

#: Take an exact GP's likelihood derivatives in closed form where :func:`closed_form_lik` covers the model
#: (False: every key through :func:`derivatives`, i.e. quad_lik's surrogate and one Hessian-vector product each).
CLOSED_FORM = True


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
    marg: Any = None  # an exact MLL's marginal likelihood(model(X), *params) (None otherwise)
    params: tuple = ()  # the (transformed) train inputs the likelihood and the kernel were given
    added: int = 0  # how many added loss terms lik holds


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


def likelihood_params(model, inputs: tuple) -> tuple:
    """The extra arguments BoTorch's loss closure hands the likelihood: the training inputs, input-transformed.

    BoTorch transforms inputs in ``forward`` while training and passes the transformed
    inputs to the likelihood as extra params (``botorch.optim.closures``); a model
    without ``transform_inputs`` passes them as they are.
    """
    transform = getattr(model, "transform_inputs", None)
    return tuple(transform(X=t) for t in inputs) if callable(transform) else inputs


def mll_terms(mll: MarginalLogLikelihood, n_members: int, infos: dict, surrogate: bool = True) -> Terms:
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
    (``Terms.quad``; ``surrogate=False``: never, e.g. for values or first derivatives only). For other MLL
    classes the likelihood term is
    ``total - Σ log prior / n``.
    """
    model = mll.model
    # Inputs that require grad: without, GPyTorch's RBF and Matern kernels with one lengthscale compute through
    # their own autograd functions (RBFCovariance, MaternCovariance), whose backward is not differentiated
    # again correctly, and a Hessian-vector product gave that lengthscale's curvature 2-3x off. The inputs'
    # own gradient is never asked for; the values are the training inputs, as BoTorch's closure passes them.
    inputs = tuple(t.detach().requires_grad_(True) if t.is_floating_point() else t for t in model.train_inputs)
    targets = model.train_targets
    params = likelihood_params(model, inputs)
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
        q = quad_lik(marg, targets, log_lik) if QUAD_LIK and surrogate else None
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
    return Terms(flat[0], flat[1], flat[2], int(num_data), fast, quad, marg if exact else None, params,
                 len(added) if exact else 0)


def plain_cholesky(A0: torch.Tensor) -> torch.Tensor | None:
    """linear_operator's ``psd_safe_cholesky`` of ``A0`` (``[*batch, n, n]``), or None where it would add jitter.

    With jitter, log_prob's factor is not of ``A0`` itself, so no closed form built on ``A0`` is its term.
    Warnings other than the jitter notice are passed on.
    """
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
        return None
    return L


def gaussian_solve(A0: torch.Tensor, r0: torch.Tensor):
    """``(α, A0⁻¹, ℓ0)`` of a Gaussian log likelihood from one jitter-free Cholesky of ``A0``, or None.

    Args:
        A0: ``[*batch, n, n]`` covariance (constant).
        r0: ``[*batch, n, 1]`` residual ``y - m`` (constant).

    Returns:
        ``α = A0⁻¹ r0`` (``[*batch, n, 1]``), ``A0⁻¹`` (``[*batch, n, n]``) and
        ``ℓ0 = -½ r0ᵀα - ½ log|A0| - n/2 log 2π`` (``[*batch]``); None where :func:`plain_cholesky` is.
    """
    L = plain_cholesky(A0)
    if L is None:
        return None
    n = A0.shape[-1]
    with torch.no_grad():
        alpha = torch.cholesky_solve(r0, L)
        a_inv = torch.cholesky_inverse(L)
        l0 = (-0.5 * (r0 * alpha).sum((-2, -1)) - L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
              - 0.5 * n * math.log(2 * math.pi))
    return alpha, a_inv, l0


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
    solved = gaussian_solve(A0, r0.unsqueeze(-1))
    if solved is None:
        return None  # jitter: log_prob's factor is not of A0 itself
    alpha, a_inv, l0 = solved
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


def _radial(kind, rho: torch.Tensor):
    """``(K0, P, H2, H1)`` of a stationary kernel, each ``[*batch, n, n]``: for the inputs sharing a lengthscale
    ℓ, with ``q`` their squared scaled differences, ``ℓ A_ℓ / s = P q`` and ``ℓ² A_ℓℓ / s = q (H2 q + H1)``.

    ``rho`` is the scaled distance as the kernel computed it (RBF: its square); dq/dℓ = -2q/ℓ and
    dρ/dℓ = -q/(ρℓ). The coefficients depend on ρ only, so they are made once for all lengthscales
    (a 24-input ARD kernel reads them 24 times). Where ρ = 0 (the diagonal) they are 0, as autograd
    takes the derivatives through GPyTorch's clamped distance.
    """
    if kind == "rbf":
        k0 = torch.exp(-0.5 * rho)  # rho is ρ² here, as postprocess_rbf takes it
        return k0, k0, k0, -3 * k0
    nz = rho > 0
    rs = torch.where(nz, rho, torch.ones_like(rho))  # 1 on the diagonal: no 0/0 (masked below)
    c = math.sqrt(2 * kind)
    e = torch.exp(-c * rho)
    if kind == 0.5:
        k0 = e
        p, h2, h1 = e / rs, e / rs ** 2 + e / rs ** 3, -3 * e / rs
    elif kind == 1.5:
        k0 = (c * rho + 1) * e
        p, h2, h1 = 3 * e, 3 * c * e / rs, -9 * e
    else:  # 2.5
        lin = 1 + c * rho
        k0 = (lin + 5.0 / 3.0 * rho ** 2) * e
        p, h2, h1 = 5.0 / 3.0 * lin * e, 25.0 / 3.0 * e, -5 * lin * e
    zero = torch.zeros_like(rho)
    return k0, torch.where(nz, p, zero), torch.where(nz, h2, zero), torch.where(nz, h1, zero)


def _family(model, marg):
    """``(kind, base kernel, scale kernel or None, learned noise)`` when :func:`closed_form_lik` covers the model.

    Exact class checks (``type(x) is``): a subclass may change what its forward computes.
    """
    if type(model) is not SingleTaskGP or type(marg) is not MultivariateNormal:
        return None
    covar = model.covar_module
    scale = covar if type(covar) is ScaleKernel else None
    base = covar.base_kernel if scale is not None else covar
    if type(base) is MaternKernel and float(base.nu) in (0.5, 1.5, 2.5):
        kind = float(base.nu)
    elif type(base) is RBFKernel:
        kind = "rbf"
    else:
        return None
    if covar.active_dims is not None or base.active_dims is not None:
        return None
    lik = model.likelihood
    if type(lik) is GaussianLikelihood and type(lik.noise_covar) is HomoskedasticNoise:
        learned = True
    elif (type(lik) is FixedNoiseGaussianLikelihood and type(lik.noise_covar) is FixedGaussianNoise
          and lik.second_noise_covar is None):
        learned = False
    else:
        return None
    if type(model.mean_module) not in (ConstantMean, ZeroMean):
        return None
    transform = getattr(model, "input_transform", None)
    if transform is not None and any(True for _ in transform.parameters()):
        return None  # a learned transform moves the kernel's inputs: its derivatives are not here
    return kind, base, scale, learned


def closed_form_lik(mll, terms: Terms, infos: dict, elements: dict, batch: torch.Size, shared: set
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """key -> (first, second) raw-space derivative of ``terms.lik`` per member, in closed form, for the keys it covers.

    For a SingleTaskGP with a (ScaleKernel of a) Matern 1/2, 3/2, 5/2 or RBF kernel (ARD
    or one lengthscale), a Gaussian (homoskedastic) or fixed-noise likelihood and a
    constant or zero mean, one Cholesky of the marginal covariance ``A`` gives every
    element's derivatives of ``ℓ = -½ rᵀA⁻¹r - ½ log|A| + c`` with analytic ``A_i = ∂A/∂θi``,
    ``A_ii``, ``m_i = ∂mean/∂θi``, ``α = A⁻¹r``, ``w = A_i α + m_i``::

        dℓ/dθi   = ½ αᵀA_iα - ½ tr(A⁻¹A_i) + αᵀm_i
        d²ℓ/dθi² = -wᵀA⁻¹w + ½ tr(A⁻¹A_iA⁻¹A_i) + ½ αᵀA_iiα - ½ tr(A⁻¹A_ii)

    (noise: A_σ = I; outputscale: A_s = K0; constant mean: m = 1), then the chain rule
    through each constraint. No autograd pass per element: the Hessian-vector products
    this replaces cost ~8x as much. The kernel's distances are GPyTorch's own
    (``covar_dist`` on the inputs scaled as its forward scales them) and ``A`` is the
    marginal's own matrix, so the factor is of the matrix log_prob factors.

    Nothing is returned (the caller differentiates ``terms.lik`` itself) when
    :data:`CLOSED_FORM` is off, the model is outside that family, the Cholesky would need
    jitter, the closed-form value differs from the likelihood term's, or its gradient
    from one backward pass of ``terms.lik`` (a check that it is the same function). A
    parameter shared by all members, or not shaped one per member, is left out (the
    caller's path differentiates it).

    Args:
        mll: The exact MLL whose terms these are (``terms = mll_terms(mll, ...)``, train mode).
        terms: Its :class:`Terms` (with ``marg`` and ``params``).
        infos: (path, name) -> :class:`ParamInfo` of the reported parameters.
        elements: key -> element index, as for :func:`derivatives`.
        batch: The model's batch shape (members flattened in its order).
        shared: The (path, name) of parameters with fewer members than the batch.

    Returns:
        key -> (first, second) derivatives (each ``[n_members]``, divided by n like the MLL).
    """
    if not CLOSED_FORM or terms.marg is None or terms.added or not terms.lik.requires_grad:
        return {}
    if lo_settings.trace_mode.on() or any(pk[0].startswith("input_transform") for pk in infos):
        return {}
    model, marg = mll.model, terms.marg
    fam = _family(model, marg)
    if fam is None or len(terms.params) != 1:
        return {}
    kind, base, scale, learned = fam
    n = int(marg.event_shape.numel())
    if n > gpytorch.settings.max_cholesky_size.value():
        return {}
    with torch.no_grad():
        X = terms.params[0].detach()  # [*b, n, d]: the inputs the kernel was given
        mb = marg.batch_shape
        targets = model.train_targets
        mean = marg.mean.detach()
        if targets.shape != mean.shape or X.shape[-2] != n:
            return {}
        A = marg.covariance_matrix.detach()  # [*mb, n, n]
        solved = gaussian_solve(A, (targets - mean).unsqueeze(-1))
        if solved is None:
            return {}
        alpha, a_inv, l0 = solved
        num = terms.num_data
        tol = torch.finfo(l0.dtype).eps ** 0.5
        if l0.numel() != terms.lik.numel() or not torch.allclose(
                l0.reshape(-1) / num, terms.lik.detach(), rtol=tol, atol=tol):
            return {}
        ell = base.lengthscale.detach()  # [*kb, 1, 1 or d]
        n_ell = ell.shape[-1]
        if n_ell not in (1, X.shape[-1]):
            return {}
        # the scaled inputs and their distances as the kernel's forward computes them (same rounding)
        if kind == "rbf":
            Z = X.div(ell)
            rho = base.covar_dist(Z, Z, square_dist=True)
        else:
            Z = (X - X.mean(dim=-2, keepdim=True)).div(ell)
            rho = base.covar_dist(Z, Z)
        s = scale.outputscale.detach() if scale is not None else torch.ones((), dtype=A.dtype)
        s = s.view(*s.shape, 1, 1)
        rho = rho.expand(A.shape)

        def derivs(Ai, Aii=None, mi=None):
            """Value-space (dℓ/dθ, d²ℓ/dθ²), each [*mb], for one element's A_i [*mb, n, n], A_ii, m_i [*mb, n, 1]."""
            Aa = Ai @ alpha if Ai is not None else torch.zeros_like(alpha)
            w = Aa if mi is None else Aa + mi
            g = 0.5 * (alpha * Aa).sum((-2, -1))
            h = -(w * (a_inv @ w)).sum((-2, -1))
            if mi is not None:
                g = g + (alpha * mi).sum((-2, -1))
            if Ai is not None:
                B = a_inv @ Ai
                g = g - 0.5 * B.diagonal(dim1=-2, dim2=-1).sum(-1)  # tr(A⁻¹ A_i), from the product made anyway
                h = h + 0.5 * (B * B.transpose(-2, -1)).sum((-2, -1))
            if Aii is not None:
                h = h + 0.5 * (alpha * (Aii @ alpha)).sum((-2, -1)) - 0.5 * (a_inv * Aii).sum((-2, -1))
            return g, h

        value = {}  # (path, name) -> value-space (G, H), each shaped like the value
        kpath = "covar_module.base_kernel" if scale is not None else "covar_module"
        gs, hs = [], []
        zt = Z.transpose(-2, -1)  # [*, d, n]: one input's scaled column per row
        k0, p_coef, h2_coef, h1_coef = _radial(kind, rho)
        for j in range(n_ell):
            if n_ell == 1:
                q = rho if kind == "rbf" else rho ** 2  # every input shares ℓ: q is the whole squared distance
            else:
                zj = zt[..., j, :]
                q = (zj.unsqueeze(-1) - zj.unsqueeze(-2)) ** 2
            q = q.expand(A.shape)
            lj = ell[..., 0, j].reshape(*ell.shape[:-2], 1, 1)
            g, h = derivs((s / lj) * (p_coef * q), (s / lj ** 2) * (q * (h2_coef * q + h1_coef)))
            gs.append(g)
            hs.append(h)
        value[(kpath, "lengthscale")] = (torch.stack(gs, -1).unsqueeze(-2), torch.stack(hs, -1).unsqueeze(-2))
        if scale is not None:
            value[("covar_module", "outputscale")] = derivs(k0.expand(A.shape))
        if learned:
            g, h = derivs(torch.eye(n, dtype=A.dtype, device=A.device).expand(A.shape))
            value[("likelihood.noise_covar", "noise")] = (g.unsqueeze(-1), h.unsqueeze(-1))
        if type(model.mean_module) is ConstantMean:
            value[("mean_module", "constant")] = derivs(None, mi=torch.ones_like(alpha))
        raw_space = {}
        for pk, (G, H) in value.items():
            info = infos.get(pk)
            if info is None or pk in shared or tuple(info.raw.shape) != tuple(info.value().shape):
                continue
            if G.numel() != info.raw.numel() or G.shape[: len(mb)] != mb:
                continue
            G, H = G.reshape(info.raw.shape), H.reshape(info.raw.shape)
            t1, t2 = transform_derivs(info)
            raw_space[pk] = (G * t1 / num, (H * t1 ** 2 + G * t2) / num)
    if not raw_space:
        return {}
    # the check that this is the term's own function: its gradient from one backward pass
    pks = list(raw_space)
    grads = torch.autograd.grad(terms.lik.sum(), [infos[pk].raw for pk in pks], retain_graph=True,
                                allow_unused=True)
    scale_g = max(float(g.abs().max()) if g is not None else 0.0 for g in grads) + 1e-300
    for pk, g in zip(pks, grads):
        g = torch.zeros_like(infos[pk].raw) if g is None else g.detach()
        if not torch.allclose(raw_space[pk][0], g, rtol=1e-6, atol=1e-9 * scale_g):
            return {}
    out = {}
    for key, index in elements.items():
        path, name, _ = parse_key(key)
        if (path, name) in raw_space:
            info = infos[(path, name)]
            G, H = raw_space[(path, name)]
            out[key] = (to_numpy(element(info, G, index, batch)), to_numpy(element(info, H, index, batch)))
    return out


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


def prior_std(prior) -> torch.Tensor | None:
    """Each element's prior standard deviation (of the value itself; the prior's batch shape), None without
    a closed form."""
    try:
        return torch.as_tensor(prior.stddev).detach().to(torch.float64)
    except Exception:  # noqa: BLE001 - priors without a closed-form standard deviation
        return None


def log_std(prior) -> torch.Tensor | None:
    """Each element's standard deviation of ``log θ`` under a prior on positive values (the prior's batch shape).

    Closed forms: LogNormal(μ, σ) → σ; Gamma(a, b) → √ψ′(a) (the trigamma function).
    Other priors: from 4096 draws under a fixed seed (NaN where fewer than 2 draws are
    positive; None if the prior cannot sample).
    """
    name = type(prior).__name__
    try:
        if name == "LogNormalPrior":
            return torch.as_tensor(prior.scale).detach().to(torch.float64).clone()
        if name == "GammaPrior":
            a = torch.as_tensor(prior.concentration).detach().to(torch.float64)
            return torch.sqrt(torch.special.polygamma(1, a))
        with seeded(0):
            draws = prior.sample(torch.Size([4096])).detach().double()
        logs = torch.where(draws > 0, torch.log(draws.clamp_min(1e-300)), torch.full_like(draws, math.nan))
        count = (draws > 0).sum(0)
        mean = torch.nansum(logs, 0) / count.clamp_min(1)
        var = torch.nansum((logs - mean) ** 2, 0) / (count - 1).clamp_min(1)
        return torch.where(count > 1, var.sqrt(), torch.full_like(var, math.nan))
    except Exception:  # noqa: BLE001 - a prior that cannot say: no distance in standard deviations
        return None
