"""The exact log likelihood of many hyperparameter draws of a stationary-kernel SingleTaskGP at once, from
squared distances computed once.

An ARD kernel depends on its lengthscales only through ``q = Σ_j D_j / ℓ_j²``, ``D_j`` being input ``j``'s
squared differences: stacking the ``D_j`` once (``d x n²``), every draw's ``q`` is one row of a matrix product,
and the kernel, the noise's diagonal, one Cholesky and one triangular solve give ``log N(y | c, s k(q) + σ² I)``.
GPyTorch builds each draw's matrix through its lazy tensors instead (the distances again per draw, a dense sum,
a contiguous copy): 3-4x the Cholesky's own cost on 100 points. The family is the one
:func:`gpviz.priors.derivatives.closed_form_lik` covers (``_family``: a SingleTaskGP with a (Scale)Matern 1/2, 3/2,
5/2 or RBF kernel, Gaussian or fixed noise, a constant or zero mean, no learned input transform), and
:func:`stationary_lik` returns ``None`` outside it, or where a sampled parameter is not one of these modules' own;
the caller then evaluates GPyTorch's ``log_prob`` itself. The priors are always evaluated by GPyTorch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from gpytorch.means import ConstantMean

from gpviz.priors.derivatives import _family, likelihood_params

#: Evaluate the covered family's draws here (False: GPyTorch's ``log_prob`` for every draw, e.g. to compare).
STATIONARY = True

#: Bytes of kernel matrices one chunk of draws may hold (a chunk's ``C x n x n`` blocks stay near the cache).
CHUNK_BYTES = 1 << 21


@dataclass(frozen=True)
class StationaryLik:
    """``log p(y | θ)`` of a stationary-kernel exact GP at a batch of constrained values.

    Attributes:
        kind: ``"rbf"`` or the Matern ν (0.5, 1.5, 2.5).
        sq: ``d_ℓ x n²`` each lengthscale's squared input differences (``d_ℓ = 1``: all inputs share one).
        targets: ``n`` the (transformed) training targets.
        fixed: name -> the value of a parameter that is not sampled (``lengthscale``, ``outputscale``, ``noise``,
            ``constant``), shaped as the draws' values would be (leading draw dimension of 1).
        names: raw parameter name under the model -> which of the four it is.
        below: flat indices (into ``n x n``) of the pairs below the diagonal; ``sq_below``: ``sq``'s columns there.
    """

    kind: Any
    sq: torch.Tensor
    targets: torch.Tensor
    fixed: dict
    names: dict
    below: torch.Tensor
    sq_below: torch.Tensor

    @property
    def n(self) -> int:
        """Training points."""
        return int(self.targets.shape[-1])

    def chunk(self) -> int:
        """Draws per Cholesky call: the kernel blocks within :data:`CHUNK_BYTES`, between 1 and 256."""
        per = self.n * self.n * self.targets.element_size()
        return max(1, min(256, CHUNK_BYTES // per))

    def __call__(self, values: dict) -> torch.Tensor:
        """``C`` log likelihoods (``NaN`` where the covariance is not positive definite) at the draws' values.

        The draws are taken :meth:`chunk` at a time: a batched Cholesky of 100 x 100 matrices ran at 42 µs per
        matrix in chunks of 32 and 53 µs in chunks of 256 (one thread), the larger blocks falling out of cache.

        Args:
            values: raw parameter name -> ``C x *raw_shape`` constrained values of each sampled parameter.
        """
        got = {self.names[name]: v for name, v in values.items()}
        size = next(iter(values.values())).shape[0]
        v = {name: t.expand(size, *t.shape[1:]) for name, t in {**self.fixed, **got}.items()}
        step = min(self.chunk(), size)
        # one zeroed block for every chunk: only its lower triangle and diagonal are written, and a fresh
        # allocation of this size costs page faults comparable to the kernel's exp
        buffer = torch.zeros(step, self.n, self.n, dtype=self.targets.dtype)
        return torch.cat([self._block({name: t[i: i + step] for name, t in v.items()}, buffer)
                          for i in range(0, size, step)])

    def _kernel(self, q: torch.Tensor) -> torch.Tensor:
        """The unit-scale kernel at the scaled squared distances ``q`` (any shape)."""
        if self.kind == "rbf":
            return torch.exp(-0.5 * q)
        rho = q.clamp_min(1e-30).sqrt()  # GPyTorch's clamp: a finite gradient on the diagonal
        e = torch.exp(-math.sqrt(2 * self.kind) * rho)
        if self.kind == 0.5:
            return e
        if self.kind == 1.5:
            return (1 + math.sqrt(3) * rho) * e
        return (1 + math.sqrt(5) * rho + 5.0 / 3.0 * q) * e

    def _block(self, v: dict, buffer: torch.Tensor) -> torch.Tensor:
        """The log likelihoods of one chunk of draws (every value with the chunk's leading dimension); ``buffer``:
        at least as many ``n x n`` matrices, zero above the diagonal."""
        ell = v["lengthscale"].reshape(v["lengthscale"].shape[0], -1)  # C x d_ℓ
        size = ell.shape[0]
        scale = v["outputscale"].reshape(-1, 1) if "outputscale" in v else None
        noise = v["noise"].reshape(size, -1).expand(size, self.n)
        if torch.is_grad_enabled() and any(t.requires_grad for t in v.values()):
            # differentiated (the mode's search): the full matrix, as the Cholesky's backward reads both triangles
            k = self._kernel(((ell ** -2) @ self.sq).reshape(-1, self.n, self.n))
            if scale is not None:
                k = k * scale.unsqueeze(-1)
            k = k + torch.diag_embed(noise)
        else:
            # the Cholesky reads the lower triangle only: the kernel at the n(n-1)/2 pairs below the diagonal
            # (half the exp of the full matrix), the diagonal (k = 1 there) written directly
            low = self._kernel((ell ** -2) @ self.sq_below)
            if scale is not None:
                low = low * scale
            k = buffer[:size]
            k.view(size, -1)[:, self.below] = low
            diag = noise + (scale if scale is not None else 1.0)
            k.diagonal(dim1=-2, dim2=-1).copy_(diag)
        r = self.targets - v["constant"].reshape(-1, 1) if "constant" in v else self.targets.expand(size, -1)
        chol, info = torch.linalg.cholesky_ex(k)
        a = torch.linalg.solve_triangular(chol, r.unsqueeze(-1), upper=False).squeeze(-1)
        log_lik = (-0.5 * (a * a).sum(-1) - chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
                   - 0.5 * self.n * math.log(2 * math.pi))
        return torch.where(info == 0, log_lik, torch.full_like(log_lik, math.nan))

def stationary_lik(model: Any, sampled: dict) -> StationaryLik | None:
    """The :class:`StationaryLik` of an unbatched model in the covered family, or ``None``.

    Args:
        model: The model, in train mode (its forward input-transforms the training inputs).
        sampled: raw parameter name under the model -> its raw tensor, for every sampled parameter.
    """
    if not STATIONARY or list(model.added_loss_terms()) or len(model.train_inputs) != 1:
        return None
    with torch.no_grad():
        inputs = tuple(model.train_inputs)
        (X,) = likelihood_params(model, inputs)
        marg = model.likelihood(model(*inputs), *likelihood_params(model, inputs))
        fam = _family(model, marg)
        targets = model.train_targets
        if fam is None or X.ndim != 2 or targets.ndim != 1 or marg.batch_shape != torch.Size():
            return None
        kind, base, scale, learned = fam
        roles = {id(base.raw_lengthscale): "lengthscale"}
        fixed = {"lengthscale": base.lengthscale.detach().reshape(1, -1)}
        if scale is not None:
            roles[id(scale.raw_outputscale)] = "outputscale"
            fixed["outputscale"] = scale.outputscale.detach().reshape(1)
        noise_covar = model.likelihood.noise_covar
        if learned:
            roles[id(noise_covar.raw_noise)] = "noise"
        # the noise as the likelihood's forward adds it (a fixed noise below 1e-6 is raised to it there)
        fixed["noise"] = noise_covar(X).diagonal(dim1=-2, dim2=-1).reshape(1, -1) if not learned \
            else noise_covar.noise.detach().reshape(1, -1)
        mean = model.mean_module
        if type(mean) is ConstantMean:
            roles[id(mean.raw_constant)] = "constant"
            fixed["constant"] = mean.constant.detach().reshape(1)
        names = {}
        for name, raw in sampled.items():
            if id(raw) not in roles:
                return None  # a parameter this formula does not read: GPyTorch's own path
            names[name] = roles[id(raw)]
        n_ell = fixed["lengthscale"].shape[-1]
        if n_ell not in (1, X.shape[-1]) or fixed["noise"].shape[-1] not in (1, X.shape[-2]):
            return None
        diff = (X.unsqueeze(-2) - X.unsqueeze(-3)) ** 2  # n x n x d
        sq = diff.sum(-1, keepdim=True) if n_ell == 1 else diff
        sq = sq.reshape(-1, sq.shape[-1]).T.contiguous()
        i, j = torch.tril_indices(len(X), len(X), offset=-1)
        below = i * len(X) + j
    return StationaryLik(kind, sq, targets.detach(), fixed, names, below, sq[:, below].contiguous())
