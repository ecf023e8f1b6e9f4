"""The MAP's full Hessian, split into the data's and the priors' terms, and the numbers read off it.

Where :mod:`gpviz.priors.derivatives` gives each element's own (diagonal) curvature,
this module takes every pair: one Hessian-vector product per parameter element gives
that element's column for every batch member at once (members are independent, so the
Hessian of the summed term is block diagonal, one block per member).

Coordinates: ``u = log θ`` for a positive parameter (a lengthscale, outputscale,
noise: where BoTorch's LogNormal and Gamma priors are concave, so their curvature never
vanishes where they do all the work), ``u = θ`` otherwise (a constant mean). Per batch
member, with ``A_l = -∇²_u log p(y | θ) / n`` and ``A_p = -∇²_u Σ log p(θ) / n`` over the
trainable elements that are not on a bound, and ``A = A_l + A_p`` (the Laplace
approximation's posterior precision, per datum):

* ``precision_share``: the prior's share of element i's marginal posterior precision,
  correlations included, as power-scaling sees it: with ``A(α) = A_l + α A_p`` (the prior
  raised to the power α) and ``v_i(α) = [A(α)⁻¹]_ii`` the marginal variance (the others
  integrated out), ``-d log v_i / dα`` at α = 1, i.e. ``[A⁻¹ A_p A⁻¹]_ii / [A⁻¹]_ii``
  (clipped to [0, 1]). For one parameter it is ``P / (L + P)``, the prior's share of the
  precision; with correlations it never needs ``A_l⁻¹``, so a direction the data alone does
  not hold (``A_l`` indefinite or singular there) does not make every element's share 1;
* ``post_sd``: the Laplace posterior standard deviation of ``u_i``, ``sqrt([A⁻¹]_ii / n)``;
* ``dmap_dalpha``: ``du_i/dα`` of the MAP when the prior is raised to the power α
  (at α = 1, implicit function theorem: ``A⁻¹ ∇_u log p(θ) / n``, the others moving too).

The two are the Laplace approximation's answer to power-scaling the prior (Kallioinen et al.
2024): under α the marginal of ``u_i`` moves its centre by ``dmap_dalpha`` (``dmap_dalpha_sd``
posterior standard deviations) and its log standard deviation by ``-precision_share / 2`` per unit α.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpviz.priors.derivatives import Terms, element, pick, transform_derivs
from gpviz.values.keys import ParamInfo, member_values, parse_key
from gpviz.values.tensors import to_numpy


@dataclass(frozen=True)
class MapHessian:
    """Both terms' gradient and Hessian in the chosen coordinates, per batch member.

    Attributes:
        keys: The p elements, in column order.
        log: ``[p]`` whether each element's coordinate is ``log θ`` (else ``θ``).
        grad_lik, grad_prior: ``[m, p]`` per-datum gradients of the two terms in those coordinates.
        hess_lik, hess_prior: ``[m, p, p]`` their per-datum Hessians.
        num_data: n (the terms are divided by it, as the MLL is).
        draw_du: ``[m, p]`` d raw / d u of each element (the chain rule's first factor).
    """

    keys: tuple[str, ...]
    log: np.ndarray
    grad_lik: np.ndarray
    grad_prior: np.ndarray
    hess_lik: np.ndarray
    hess_prior: np.ndarray
    num_data: int
    draw_du: np.ndarray


def prior_term(terms: Terms, infos: dict) -> torch.Tensor:
    """The summed (over members) per-datum log prior, with its graph to the raw parameters."""
    total = terms.slow_prior.sum()
    for target, priors in terms.fast.items():
        if target not in infos:  # a parameter shared by members: not in the Hessian (it couples the blocks)
            continue
        info = infos[target]
        value = info.constraint.transform(info.raw) if info.constraint is not None else info.raw  # with its graph
        for p in priors:
            total = total + p.log_prob(value).sum() / terms.num_data
    return total


def _raw_hessian(term: torch.Tensor, infos: dict, keys: list[str], elements: dict, batch: torch.Size
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Raw-space ``([m, p] gradient, [m, p, p] Hessian)`` of ``term`` (summed over members)."""
    m, p = int(batch.numel()), len(keys)
    grad, hess = np.zeros((m, p)), np.zeros((m, p, p))
    if not term.requires_grad:
        return grad, hess
    pks = list(dict.fromkeys(parse_key(k)[:2] for k in keys))
    raws = [infos[pk].raw for pk in pks]
    gs = dict(zip(pks, torch.autograd.grad(term, raws, create_graph=True, allow_unused=True)))
    for j, key in enumerate(keys):
        pk = parse_key(key)[:2]
        g = gs[pk]
        if g is None:
            continue
        grad[:, j] = to_numpy(element(infos[pk], g, elements[key], batch))
        if not g.requires_grad:
            continue
        # one Hessian-vector product: the element in every member at once gives its column in every member
        cols = torch.autograd.grad(pick(infos[pk], g, elements[key]), raws, retain_graph=True, allow_unused=True)
        by = dict(zip(pks, cols))
        for i, other in enumerate(keys):
            h = by[parse_key(other)[:2]]
            if h is not None:
                hess[:, i, j] = to_numpy(element(infos[parse_key(other)[:2]], h, elements[other], batch))
    return grad, hess


def map_hessian(terms: Terms, infos: dict[tuple[str, str], ParamInfo], elements: dict[str, tuple[int, ...]],
                batch: torch.Size, log_keys: set[str]) -> MapHessian:
    """Gradients and Hessians of ``terms.lik`` and of the log prior, per member, in ``u`` coordinates.

    The raw-space derivatives (autograd; the likelihood through ``terms.lik``'s graph,
    :func:`gpviz.priors.derivatives.quad_lik`'s surrogate where it applies) are taken to
    ``u`` by the chain rule: with ``a = draw/du`` and ``b = d²raw/du²`` per element,
    ``H_u = a aᵀ ∘ H_raw + diag(b ∘ g_raw)`` and ``g_u = a ∘ g_raw``.

    Args:
        terms: :func:`gpviz.priors.derivatives.mll_terms` of the MLL (train mode, raws requiring grad).
        infos: (path, name) -> :class:`ParamInfo`; every element's parameter has one per member
            (a parameter shared by members is not passed: it would couple the blocks).
        elements: key -> element index.
        batch: The model's batch shape.
        log_keys: The keys whose coordinate is ``log θ``.

    Returns:
        A :class:`MapHessian` over ``elements``' keys in their order.
    """
    keys = list(elements)
    gl, hl = _raw_hessian(terms.lik.sum(), infos, keys, elements, batch)
    gp, hp = _raw_hessian(prior_term(terms, infos), infos, keys, elements, batch)
    m, p = int(batch.numel()), len(keys)
    a, b = np.zeros((m, p)), np.zeros((m, p))
    log = np.array([k in log_keys for k in keys], dtype=bool)
    for j, key in enumerate(keys):
        path, name, index = parse_key(key)
        info = infos[(path, name)]
        d1, d2 = transform_derivs(info)
        t1, t2 = to_numpy(element(info, d1, index, batch)), to_numpy(element(info, d2, index, batch))
        theta = to_numpy(member_values(info, index, batch).reshape(-1))
        with np.errstate(divide="ignore", invalid="ignore"):
            if log[j]:  # raw -> θ = t(raw) -> u = log θ: draw/du = θ/t', d²raw/du² = θ/t' - θ² t''/t'³
                a[:, j], b[:, j] = theta / t1, theta / t1 - theta ** 2 * t2 / t1 ** 3
            else:  # u = θ: draw/dθ = 1/t', d²raw/dθ² = -t''/t'³
                a[:, j], b[:, j] = 1.0 / t1, -t2 / t1 ** 3

    def to_u(g, h):
        hu = a[:, :, None] * a[:, None, :] * h
        idx = np.arange(p)
        hu[:, idx, idx] += b * g
        return a * g, hu

    (gl_u, hl_u), (gp_u, hp_u) = to_u(gl, hl), to_u(gp, hp)
    return MapHessian(tuple(keys), log, gl_u, gp_u, hl_u, hp_u, terms.num_data, a)


@dataclass(frozen=True)
class MapNumbers:
    """What the full Hessian says of each element, per member (each ``[m, p]``, NaN where not judged).

    Attributes:
        precision_share: The prior's share of the marginal posterior precision (module docstring).
        post_sd: Laplace posterior standard deviation of the coordinate ``u``.
        dmap_dalpha: ``du/dα`` of the MAP per unit change of the prior's power α.
        definite: ``[m]`` whether the posterior precision ``A`` was positive definite over the judged elements.
    """

    precision_share: np.ndarray
    post_sd: np.ndarray
    dmap_dalpha: np.ndarray
    definite: np.ndarray


def map_numbers(h: MapHessian, judged: np.ndarray) -> MapNumbers:
    """The module docstring's numbers from a :class:`MapHessian`.

    Args:
        h: The Hessians.
        judged: ``[m, p]`` bool: the elements that enter each member's posterior (trainable, not
            on a bound, finite derivatives); the others are held fixed (conditioned on) and get NaN.

    Returns:
        A :class:`MapNumbers`.
    """
    m, p = h.grad_lik.shape
    share, sd, dmap = (np.full((m, p), np.nan) for _ in range(3))
    definite = np.zeros(m, dtype=bool)
    for i in range(m):
        sel = np.flatnonzero(judged[i] & np.isfinite(h.grad_prior[i]) & np.isfinite(h.grad_lik[i])
                             & np.isfinite(h.hess_lik[i]).all(0) & np.isfinite(h.hess_prior[i]).all(0))
        if not len(sel):
            continue
        A_l = -h.hess_lik[i][np.ix_(sel, sel)]
        A_p = -h.hess_prior[i][np.ix_(sel, sel)]
        A = 0.5 * (A_l + A_l.T + A_p + A_p.T)
        if not np.isfinite(A).all():
            continue
        w, V = np.linalg.eigh(A)
        # positive definite, and not numerically singular (a direction nothing curves: an element the MLL does not
        # depend on, e.g. a categorical kernel's lengthscale GPyTorch never reads)
        definite[i] = bool(w.min() > 1e-10 * max(float(np.abs(w).max()), 1e-300))
        if not definite[i]:
            continue  # not a maximum along some direction: no Laplace posterior (NaN, the caller falls back)
        cov = (V / w) @ V.T
        var = np.diag(cov)
        # -d log var_i / dα of A(α) = A_l + α A_p at α = 1: [A⁻¹ A_p A⁻¹]_ii / [A⁻¹]_ii
        with np.errstate(divide="ignore", invalid="ignore"):
            share[i, sel] = np.clip(np.diag(cov @ (0.5 * (A_p + A_p.T)) @ cov) / var, 0.0, 1.0)
        sd[i, sel] = np.sqrt(var / h.num_data)
        dmap[i, sel] = cov @ h.grad_prior[i][sel]
    return MapNumbers(share, sd, dmap, definite)
