"""Draws from a GP's hyperparameter posterior p(θ | y) ∝ p(y | θ) Π p(θ): Laplace-proposal importance sampling
with Pareto smoothing, every batch member its own posterior.

The density is GPyTorch's own: the exact marginal likelihood ``likelihood(model(X)).log_prob(y)`` (plus any
added loss terms) and every registered prior's ``log_prob`` on the constrained value, summed as
``ExactMarginalLogLikelihood`` sums them. Draws are made in unconstrained coordinates ``u`` of each trainable
element (``θ = lower + exp(u)`` above a lower bound, a scaled sigmoid between two bounds, ``u`` itself without
bounds), so the constraint's bounds always hold; the density in ``u`` carries the Jacobian ``log |dθ/du|``.
BoTorch's non-enforced ``GreaterThan`` constraints (raw == value, the bound kept by the optimizer) get the same
coordinates as enforced ones: the bound is a property of the parameter, not of its raw tensor.

The proposal is a multivariate Student-t (5 degrees of freedom: heavier tails than the posterior's, which keeps the
importance weights bounded) centred at the posterior mode in ``u`` with the inverse negative Hessian as its scale.
The importance weights are Pareto-smoothed (Vehtari, Simpson, Gelman, Yao & Gabry, "Pareto smoothed importance
sampling", JMLR 25, 2024); their tail shape ``k̂`` says how far the draws can be trusted (below 0.7: reliable).

An unbatched SingleTaskGP with a (Scale)Matern or RBF kernel has its draws' likelihood evaluated by
:mod:`gpviz.priors.stationary` (the same numbers, from squared distances made once; 2.5-3x faster on 100 points
and 10 inputs); every other model through GPyTorch's ``log_prob``, all draws of a chunk in one batched call.
"""

from __future__ import annotations

from typing import Any

import math
from dataclasses import dataclass

import numpy as np
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood
from scipy.optimize import minimize
from scipy.special import gammaln

from gpviz.errors import UnsupportedError
from gpviz.priors.derivatives import likelihood_params
from gpviz.priors.stationary import StationaryLik, stationary_lik
from gpviz.values.keys import ParamInfo, parse_key
from gpviz.values.tensors import to_numpy

#: Degrees of freedom of the Student-t proposal.
PROPOSAL_DF = 5.0


@dataclass(frozen=True)
class Coordinate:
    """One sampled raw tensor: where it lives and how its unconstrained coordinates map to its value.

    Attributes:
        name: Its name under the model (``covar_module.raw_lengthscale``), as ``functional_call`` takes it.
        info: The parameter's :class:`ParamInfo`.
        lower: The constraint's lower bound on the value (``-inf`` where none).
        upper: Its upper bound (``inf`` where none).
        members: ``numel`` ints: the batch member each element of the raw tensor belongs to.
        offset: Where the tensor's elements start in the flat vector ``u``.
    """

    name: str
    info: ParamInfo
    lower: float
    upper: float
    members: np.ndarray
    offset: int

    @property
    def size(self) -> int:
        """How many elements the raw tensor holds."""
        return int(self.info.raw.numel())

    def value(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The constrained values and ``log |dθ/du|`` of the unconstrained coordinates ``u`` (``numel``)."""
        lo, hi = self.lower, self.upper
        if math.isfinite(lo) and math.isfinite(hi):
            s = torch.sigmoid(u)
            return lo + (hi - lo) * s, math.log(hi - lo) + torch.nn.functional.logsigmoid(u) \
                + torch.nn.functional.logsigmoid(-u)
        if math.isfinite(lo):
            return lo + torch.exp(u), u
        if math.isfinite(hi):
            return hi - torch.exp(u), u
        return u, torch.zeros_like(u)

    def coordinates(self, value: torch.Tensor) -> torch.Tensor:
        """The unconstrained coordinates of constrained values (``numel``), kept just inside the bounds."""
        lo, hi = self.lower, self.upper
        # a value fitted onto its bound (the optimizer's box) has no finite coordinate: start just inside it
        tiny = 1e-8 * max(1.0, abs(lo) if math.isfinite(lo) else abs(hi) if math.isfinite(hi) else 1.0)
        if math.isfinite(lo) and math.isfinite(hi):
            s = ((value - lo) / (hi - lo)).clamp(1e-8, 1 - 1e-8)
            return torch.log(s) - torch.log1p(-s)
        if math.isfinite(lo):
            return torch.log((value - lo).clamp_min(tiny))
        if math.isfinite(hi):
            return torch.log((hi - value).clamp_min(tiny))
        return value.clone()


class Density(torch.nn.Module):
    """The log likelihood and log prior of an exact GP, per batch member, as one module ``functional_call`` can
    evaluate at any raw parameters (``forward() -> (log_lik, log_prior)``, each ``n_members``).

    It holds the model alone, not the MLL: an ``ExactMarginalLogLikelihood`` reaches the likelihood twice
    (``mll.likelihood`` and ``mll.model.likelihood``), and ``functional_call`` then swaps the tied parameter in
    twice and back once, leaving the model with the draws' batch of noises.
    """

    def __init__(self, model: torch.nn.Module, n_members: int, fast: StationaryLik | None = None):
        super().__init__()
        self.model = model
        self.n_members = n_members
        self.fast = fast

    def forward(self, prior_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log_lik, log_prior)``, each ``n_members``: the two terms of ``n x MLL``, summed as GPyTorch sums.

        Args:
            prior_only: Evaluate the priors alone (``log_lik`` is then zeros): :data:`fast` computes the
                likelihood.
        """
        model: Any = self.model  # a GPyTorch model: its attributes are modules and tensors mypy cannot tell apart
        if prior_only:
            log_prior = self.log_prior(model, 1)
            return torch.zeros_like(log_prior), log_prior
        inputs: tuple[torch.Tensor, ...] = tuple(model.train_inputs)
        params = likelihood_params(model, inputs)
        out = model(*inputs)
        marg = model.likelihood(out, *params)
        # a mean without batch dimensions (ZeroMean) leaves the marginal's loc without the draws' batch
        # dimension its covariance has: the targets carry it instead
        shape = torch.broadcast_shapes(marg.loc.shape[:-1], marg.lazy_covariance_matrix.shape[:-2])
        targets = model.train_targets
        log_lik = marg.log_prob(targets.expand(*torch.broadcast_shapes(shape, targets.shape[:-1]), targets.shape[-1]))
        for term in model.added_loss_terms():
            log_lik = log_lik + term.loss(*params)
        log_prior = self.log_prior(model, log_lik.ndim)
        shape = torch.broadcast_shapes(log_lik.shape, log_prior.shape)
        return log_lik.expand(shape).reshape(-1), log_prior.expand(shape).reshape(-1)

    @staticmethod
    def log_prior(model: Any, ndim: int) -> torch.Tensor:
        """``Σ log p(θ)`` over ``model.named_priors()``, each prior's terms summed past the leading ``ndim``."""
        log_prior: torch.Tensor | float = 0.0
        for _name, module, prior, closure, _setting in model.named_priors():
            lp = prior.log_prob(closure(module))
            log_prior = log_prior + lp.reshape(*lp.shape[:ndim], -1).sum(-1)
        return torch.as_tensor(log_prior)


@dataclass(frozen=True)
class PosteriorDraws:
    """Importance-weighted draws of every batch member's hyperparameter posterior.

    Attributes:
        values: key -> ``n_draws x n_members`` constrained values.
        log_lik: ``n_draws x n_members`` log likelihood ``log p(y | θ)`` of each draw.
        log_prior: ``n_draws x n_members`` log prior ``Σ log p(θ)`` of each draw.
        log_weights: ``n_draws x n_members`` raw importance log weights (target minus proposal, unsmoothed).
        smoothed: ``n_draws x n_members`` Pareto-smoothed log weights, normalized per member (logsumexp 0).
        pareto_k: ``n_members`` the tail shape k̂ of each member's weights.
        ess: ``n_members`` the effective sample size of each member's smoothed weights.
    """

    values: dict
    log_lik: np.ndarray
    log_prior: np.ndarray
    log_weights: np.ndarray
    smoothed: np.ndarray
    pareto_k: np.ndarray
    ess: np.ndarray

    @property
    def n_draws(self) -> int:
        """How many draws each member has."""
        return int(self.log_lik.shape[0])


def _gpd_fit(x: np.ndarray) -> tuple[float, float]:
    """Shape k and scale σ of a generalized Pareto fitted to exceedances ``x`` (ascending, > 0).

    Zhang & Stephens (2009) empirical Bayes estimate, with the weakly informative prior on k of Vehtari et al.
    (PSIS, appendix C): ``k ← (n k + 10 · 0.5) / (n + 10)``.
    """
    n = len(x)
    prior_bs, prior_k = 3.0, 10.0
    m = 30 + int(math.sqrt(n))
    b = 1 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))
    b = b / (prior_bs * x[int(n / 4 + 0.5) - 1]) + 1 / x[-1]
    k = np.log1p(-b[:, None] * x).mean(axis=1)
    log_lik = n * (np.log(-b / k) - k - 1)
    w = np.exp(log_lik - log_lik.max())
    w = w / w.sum()
    b_hat = float((b * w).sum())
    k = float(np.log1p(-b_hat * x).mean())
    sigma = -k / b_hat
    k = (n * k + prior_k * 0.5) / (n + prior_k)
    return k, sigma


def psis(log_weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed log importance weights (normalized, logsumexp 0) and the tail shape k̂.

    The ``M = min(S / 5, 3 √S)`` largest weights are replaced by the expected order statistics of a generalized
    Pareto fitted to them (truncated at the largest raw weight). Args: ``log_weights``: ``S``.
    """
    lw = np.asarray(log_weights, dtype=float).copy()
    s = lw.size
    lw = lw - lw.max()
    m = int(min(0.2 * s, 3 * math.sqrt(s)))
    k = math.inf
    if m >= 5:
        order = np.argsort(lw)
        tail = order[-m:]
        cutoff = lw[order[-m - 1]]
        exceed = np.exp(lw[tail]) - math.exp(cutoff)
        if np.all(exceed > 0) and np.ptp(exceed) > 0:
            k, sigma = _gpd_fit(exceed)
            if math.isfinite(k):
                p = (np.arange(1, m + 1) - 0.5) / m
                q = sigma / k * np.expm1(-k * np.log1p(-p)) if abs(k) > 1e-12 else -sigma * np.log1p(-p)
                lw[tail] = np.minimum(np.log(q + math.exp(cutoff)), 0.0)
        else:
            k = 0.0  # a flat tail: nothing to smooth
    top = lw.max()
    lw = lw - (top + math.log(np.exp(lw - top).sum()))
    return lw, float(k)


def coordinates(mll, keys, infos: dict, batch: torch.Size) -> list[Coordinate]:
    """The sampled raw tensors: every trainable parameter among ``keys``, each element tagged with its member.

    Raises:
        UnsupportedError: a parameter shared by several batch members (their posteriors would not be independent).
    """
    names = {id(p): n for n, p in mll.model.named_parameters()}
    n = int(batch.numel())
    coords, offset, seen = [], 0, set()
    for key in keys:
        path, name, _ = parse_key(key)
        if (path, name) in seen:
            continue
        seen.add((path, name))
        info = infos[(path, name)]
        if not info.raw.requires_grad or id(info.raw) not in names:
            continue  # fixed parameters are data, not posterior unknowns
        lead = int(torch.Size(info.raw.shape[: info.member_ndim]).numel())
        if lead != n:
            raise UnsupportedError(f"{key} is shared by the model's {n} batch members: prior_sensitivity samples "
                                   f"each member's posterior on its own")
        per = int(info.raw.numel()) // max(lead, 1)
        members = np.repeat(np.arange(lead), per)
        lower, upper = info.bounds()
        coords.append(Coordinate(names[id(info.raw)], info, lower, upper, members, offset))
        offset += int(info.raw.numel())
    return coords


def _evaluate(density: Density, coords: list[Coordinate], u: torch.Tensor):
    """``(log_lik, log_prior, log_jacobian)``, each ``C x n_members``, at the flat coordinates ``u`` (``C x D``).

    The ``C`` points are one batch for GPyTorch: each raw tensor gets a leading dimension of size ``C``, which the
    kernel, mean, likelihood and priors broadcast like any other batch dimension (one Cholesky call for all).
    """
    size = u.shape[0]
    params, values, log_jac = {}, {}, torch.zeros(size, density.n_members, dtype=u.dtype)
    for c in coords:
        value, lj = c.value(u[:, c.offset: c.offset + c.size])
        value = values[c.name] = value.reshape(size, *c.info.raw.shape)
        con: Any = c.info.constraint
        params["model." + c.name] = con.inverse_transform(value) if con is not None else value
        log_jac = log_jac.index_add(1, torch.as_tensor(c.members), lj)
    if density.fast is None:
        log_lik, log_prior = torch.func.functional_call(density, params, ())
        return log_lik.reshape(size, -1), log_prior.reshape(size, -1), log_jac
    _, log_prior = torch.func.functional_call(density, params, (True,))
    log_lik = density.fast(values)
    bad = torch.isnan(log_lik)
    if bad.any():
        # a covariance the plain Cholesky refuses: GPyTorch's own evaluation, draw by draw (its jitter; a draw it
        # refuses too gets zero weight, as on GPyTorch's path)
        slow = log_lik.clone()
        for row in torch.nonzero(bad).flatten().tolist():
            try:
                slow[row] = torch.func.functional_call(density, {k: v[row: row + 1] for k, v in params.items()},
                                                       ())[0].reshape(())
            except (RuntimeError, ValueError):
                slow[row] = -math.inf
        log_lik = slow
    return log_lik.reshape(size, -1), log_prior.expand(size).reshape(size, -1), log_jac


def _gradients(density: Density, coords: list[Coordinate], u: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The log density (``C``, summed over members) and its gradient (``C x D``) at each row of ``u``."""
    ut = torch.as_tensor(u, dtype=dtype).requires_grad_(True)
    lik, pri, lj = _evaluate(density, coords, ut)
    total = (lik + pri + lj).sum(-1)
    (g,) = torch.autograd.grad(total.sum(), ut)
    return to_numpy(total.detach()).astype(float), to_numpy(g).astype(float)


def _mode_and_scale(density: Density, coords: list[Coordinate], u0: np.ndarray, dtype):
    """The posterior mode in ``u`` and, per member, its elements and the Cholesky-like factor of the inverse
    negative Hessian there (``{member: (indices, d_m x d_m)}``)."""
    def neg(u_np):
        f, g = _gradients(density, coords, u_np[None, :], dtype)
        return -float(f[0]), -g[0]

    mode = minimize(neg, u0, jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
    members = np.concatenate([c.members for c in coords])
    # the Hessian by central differences of autograd gradients, all 2D points in one batch (GPyTorch's RBF and
    # Matern autograd functions are not differentiated twice correctly); members are independent, so it is
    # block diagonal
    d, h = len(mode), 1e-4
    steps = np.concatenate([np.eye(d), -np.eye(d)]) * h
    _, g = _gradients(density, coords, mode[None, :] + steps, dtype)
    hess = -(g[:d] - g[d:]).T / (2 * h)
    hess = 0.5 * (hess + hess.T)
    scales = {}
    for m in np.unique(members):
        idx = np.flatnonzero(members == m)
        vals, vecs = np.linalg.eigh(hess[np.ix_(idx, idx)])
        # a flat or non-concave direction (a parameter the data and prior hardly constrain): a wide proposal there
        vals = np.maximum(vals, 1e-2)
        scales[int(m)] = (idx, vecs @ np.diag(vals ** -0.5))
    return mode, scales


def _densities(density: Density, coords: list[Coordinate], u: np.ndarray, dtype):
    """``(log_lik, log_prior, log_jacobian)``, each ``S x n_members``, at every draw ``u`` (``S x D``), in chunks;
    a chunk that fails (a draw whose covariance is not positive definite) is evaluated draw by draw, and a failing
    draw gets ``-inf`` (zero weight)."""
    n = density.n_members
    # the stationary path splits its chunk for the Cholesky itself: a larger one only spreads the priors' and
    # the call's fixed cost
    chunk = 2048 if density.fast is not None else 256
    out = [np.full((len(u), n), -np.inf) for _ in range(3)]
    with torch.no_grad():
        for start in range(0, len(u), chunk):
            rows = [range(start, min(start + chunk, len(u)))]
            while rows:
                r = rows.pop()
                try:
                    res = _evaluate(density, coords, torch.as_tensor(u[r.start: r.stop], dtype=dtype))
                except (RuntimeError, ValueError):
                    if len(r) > 1:
                        rows.extend(range(i, i + 1) for i in r)
                    continue
                for o, t in zip(out, res):
                    o[r.start: r.stop] = to_numpy(t)
    return out


def _draw(centre: np.ndarray, scales: dict, n: int, draws: int, rng: np.random.Generator):
    """``draws`` proposal draws (``draws x D``) and their log density per member (``draws x n``): for each member a
    multivariate Student-t with :data:`PROPOSAL_DF` degrees of freedom, ``centre`` and its scale factor."""
    u = np.repeat(centre[None, :], draws, axis=0)
    log_q = np.zeros((draws, n))
    nu = PROPOSAL_DF
    for m, (idx, scale) in scales.items():
        dm = len(idx)
        z = rng.standard_normal((draws, dm))
        g = rng.chisquare(nu, size=draws) / nu
        u[:, idx] += (z @ scale.T) / np.sqrt(g)[:, None]
        quad = (z ** 2).sum(1) / g
        log_det = float(np.linalg.slogdet(scale)[1])
        log_q[:, m] = (gammaln((nu + dm) / 2) - gammaln(nu / 2) - dm / 2 * math.log(nu * math.pi) - log_det
                       - (nu + dm) / 2 * np.log1p(quad / nu))
    return u, log_q


#: Draws of the pilot round whose weighted moments adapt the proposal (at most the draws asked for).
PILOT_DRAWS = 2000


def sample_posterior(mll, keys, infos: dict, batch: torch.Size, draws: int, seed: int) -> PosteriorDraws:
    """Importance-weighted draws of each member's posterior (see the module's docstring).

    Args:
        mll: An ``ExactMarginalLogLikelihood``; its model's parameters are left as found.
        keys: The expression's parameter keys; ``infos``: ``(path, name) -> ParamInfo`` for each.
        batch: The model's batch shape. ``draws``: draws per member. ``seed``: the proposal's seed.

    Raises:
        UnsupportedError: an MLL other than ``ExactMarginalLogLikelihood``, or shared members' parameters.
    """
    if type(mll) is not ExactMarginalLogLikelihood:
        raise UnsupportedError(f"prior_sensitivity needs an exact GP's ExactMarginalLogLikelihood, got "
                               f"{type(mll).__name__}")
    n = int(batch.numel())
    coords = coordinates(mll, keys, infos, batch)
    if not coords:
        raise UnsupportedError("the model has no trainable parameter: its posterior has nothing to sample")
    dtype = coords[0].info.raw.dtype
    # one member: the stationary family's likelihood from squared distances made once (GPyTorch's otherwise)
    fast = stationary_lik(mll.model, {c.name: c.info.raw for c in coords}) if n == 1 else None
    density = Density(mll.model, n, fast)
    u0 = np.concatenate([to_numpy(c.coordinates(c.info.value().reshape(-1))).astype(float) for c in coords])
    mode, scales = _mode_and_scale(density, coords, u0, dtype)
    rng = np.random.default_rng(seed)
    # the pilot round only estimates the adapted proposal's centre and scale (moments): PILOT_DRAWS suffice, and
    # every draw costs one Cholesky of the n x n covariance
    u, log_q = _draw(mode, scales, n, min(draws, PILOT_DRAWS), rng)
    log_lik, log_prior, log_jac = _densities(density, coords, u, dtype)
    # one round of adaptation: the t's centre and scale from the weighted draws' own mean and covariance, which
    # see a skewed or long-tailed direction the mode's curvature misses (an irrelevant input's lengthscale:
    # k̂ 0.58-0.80 with the Laplace scale alone, 30 points x 3 inputs)
    lw = log_lik + log_prior + log_jac - log_q
    centre, adapted = mode.copy(), {}
    for m, (idx, scale) in scales.items():
        w = np.exp(psis(np.where(np.isfinite(lw[:, m]), lw[:, m], -1e300))[0])
        mean = w @ u[:, idx]
        cov = ((u[:, idx] - mean) * w[:, None]).T @ (u[:, idx] - mean)
        vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
        if np.all(np.isfinite(vals)) and vals.min() > 0:
            centre[idx], scale = mean, vecs @ np.diag(np.sqrt(vals))
        adapted[m] = (idx, scale)
    u, log_q = _draw(centre, adapted, n, draws, rng)
    log_lik, log_prior, log_jac = _densities(density, coords, u, dtype)
    values = {}
    with torch.no_grad():
        for c in coords:
            val, _ = c.value(torch.as_tensor(u[:, c.offset: c.offset + c.size], dtype=dtype))
            values[c.name] = to_numpy(val).reshape(draws, -1)
    lw = log_lik + log_prior + log_jac - log_q
    lw[~np.isfinite(lw)] = -np.inf
    smoothed = np.empty_like(lw)
    ks, ess = np.empty(n), np.empty(n)
    for m in range(n):
        smoothed[:, m], ks[m] = psis(np.where(np.isfinite(lw[:, m]), lw[:, m], -1e300))
        w = np.exp(smoothed[:, m])
        ess[m] = 1.0 / (w ** 2).sum()
    return PosteriorDraws(_by_key(values, coords, keys, infos, batch), log_lik, log_prior, lw, smoothed, ks, ess)


def _by_key(values: dict, coords: list[Coordinate], keys, infos: dict, batch: torch.Size) -> dict:
    """key -> ``n_draws x n_members`` from each raw tensor's ``n_draws x numel`` values."""
    by_name = {c.name: c for c in coords}
    n = int(batch.numel())
    out = {}
    for key in keys:
        path, name, index = parse_key(key)
        info = infos[(path, name)]
        hit = [c for c in by_name.values() if c.info.raw is info.raw]
        if not hit:
            continue
        block = values[hit[0].name].reshape(-1, n, int(info.raw.numel()) // n)
        out[key] = block[:, :, info.flat_index(index)]
    return out


def resample(weights: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` equally weighted draws from weighted ones: systematic resampling, then shuffled.

    Shuffled because ArviZ reads draw order as chain order: copies of one draw side by side would look like an
    autocorrelated chain and shrink the effective sample size its Pareto smoothing uses.

    Args:
        weights: ``S`` normalized weights.
    """
    cdf = np.cumsum(weights)
    idx = np.searchsorted(cdf, (rng.uniform() + np.arange(size)) / size * cdf[-1])
    return rng.permutation(np.minimum(idx, len(weights) - 1))
