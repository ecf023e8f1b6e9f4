"""What the data alone would do to each positive parameter: the likelihood a factor of 100 away, where it pushes.

A curvature at the MAP is local: a lengthscale whose likelihood alone keeps rising
towards infinity (an input the data does not use) still has a curved likelihood where
the prior stopped it. :func:`escape_gain` looks further: for each positive element it
moves the value a factor :data:`ESCAPE_FACTOR` in the direction the likelihood's
gradient pushes it (clipped to the constraint's bound), lets the other parameters
re-adjust by one safeguarded Newton step, and reports how much the log likelihood gains
there, in nats. A gain >= 0 says the data alone prefers a value 100x away (or on the
bound) to the MAP's: what holds the value is the prior.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gpviz.priors.derivatives import element, mll_terms
from gpviz.priors.hessian import MapHessian
from gpviz.values.keys import ParamInfo, member_values, parse_key
from gpviz.values.tensors import to_numpy

#: How far the probe moves a positive value (a factor in θ; for lengthscales of inputs scaled to the unit cube,
#: 100x the fitted value is as good as dropping the input).
ESCAPE_FACTOR = 100.0
#: The largest move of another element's coordinate in the probe's re-adjustment (a factor e³ ~ 20 in θ).
MAX_STEP = 3.0


def _set_element(info: ParamInfo, index: tuple[int, ...], values: torch.Tensor) -> None:
    """Writes one element's constrained value for every member (``values``: one per member) into the raw tensor."""
    c = info.constraint
    raw = c.inverse_transform(values) if c is not None else values
    members = tuple(info.raw.shape[: info.member_ndim])
    flat = info.raw.data.view(members + (-1,))
    flat[..., info.flat_index(index)] = raw.reshape(members).to(flat.dtype)


def _probe_values(info: ParamInfo, index: tuple[int, ...], batch: torch.Size, values: torch.Tensor) -> None:
    _set_element(info, index, values.reshape(batch) if len(batch) else values.reshape(()))


def escape_gain(mll, infos: dict[tuple[str, str], ParamInfo], full: MapHessian, probe: list[int],
                judged: np.ndarray, batch: torch.Size) -> np.ndarray:
    """``[m, p]``: log likelihood (nats, not per datum) a factor :data:`ESCAPE_FACTOR` away minus at the MAP.

    For each probed element j: its value moved a factor :data:`ESCAPE_FACTOR` in the direction
    the likelihood's gradient pushes it (clipped to the constraint's bound), then the others
    re-adjusted by one Newton step of the likelihood's gradient there, measured with the MAP's
    posterior precision ``A`` (``A₋ⱼ⁻¹ g``, each coordinate at most :data:`MAX_STEP`: the data alone
    would move them too, as a refit without the prior does; ``A`` >= the data's own precision, so the
    step is the cautious one), kept only where the likelihood, evaluated there, is higher.

    Args:
        mll: The MLL (train mode, raws requiring grad; its parameters are restored before returning).
        infos: (path, name) -> :class:`ParamInfo`, one per member for every key's parameter.
        full: The MAP's :class:`~gpviz.priors.hessian.MapHessian` (its keys, gradients, ``draw_du``).
        probe: Column indices of ``full.keys`` to probe (positive elements with a prior).
        judged: ``[m, p]`` the elements that move (trainable, off their bounds).
        batch: The model's batch shape.

    Returns:
        The gain per member and key of ``full``; NaN where not probed or the probe failed.
    """
    m, p = full.grad_lik.shape
    n = full.num_data
    out = np.full((m, p), np.nan)
    if not probe:
        return out
    A = -(full.hess_lik + full.hess_prior)
    pks = list(dict.fromkeys(parse_key(k)[:2] for k in full.keys))
    with torch.no_grad():
        base = to_numpy(mll_terms(mll, m, infos, surrogate=False).lik) * n
    for j in probe:
        path, name, index = parse_key(full.keys[j])
        info = infos[(path, name)]
        lower, upper = info.bounds()
        theta = member_values(info, index, batch).reshape(-1).to(info.raw.dtype)
        up = torch.as_tensor(full.grad_lik[:, j] > 0)
        far = torch.where(up, theta * ESCAPE_FACTOR, theta / ESCAPE_FACTOR)
        far = far.clamp(min=lower if math.isfinite(lower) else None, max=upper if math.isfinite(upper) else None)
        saved = {pk: infos[pk].raw.detach().clone() for pk in pks}
        try:
            with torch.no_grad():
                _probe_values(info, index, batch, far)
            with torch.enable_grad():
                lik = mll_terms(mll, m, infos, surrogate=False).lik
                grads = dict(zip(pks, torch.autograd.grad(lik.sum(), [infos[pk].raw for pk in pks],
                                                          allow_unused=True)))
            coord = to_numpy(lik.detach()) * n - base
            g = np.zeros((m, p))
            for i, key in enumerate(full.keys):
                kpath, kname, kindex = parse_key(key)
                gi = grads[(kpath, kname)]
                if gi is not None:
                    g[:, i] = to_numpy(element(infos[(kpath, kname)], gi, kindex, batch))
            g = g * full.draw_du  # per datum, in u
            step = np.zeros((m, p))
            for i in range(m):
                sel = np.flatnonzero(judged[i] & (np.arange(p) != j) & np.isfinite(g[i]))
                if len(sel):
                    # a pseudo-inverse: a direction nothing curves (an element the MLL does not read) takes no step
                    step[i, sel] = np.linalg.pinv(A[i][np.ix_(sel, sel)], rcond=1e-10, hermitian=True) @ g[i, sel]
            # a trust region: no coordinate moves more than MAX_STEP (the quadratic model is the MAP's)
            step = np.clip(np.nan_to_num(step), -MAX_STEP, MAX_STEP)
            out[:, j] = coord  # the value moved alone; below, the others re-adjusted where that helps the data
            with torch.no_grad():
                for i, key in enumerate(full.keys):
                    if i == j or not step[:, i].any():
                        continue
                    kpath, kname, kindex = parse_key(key)
                    kinfo = infos[(kpath, kname)]
                    now = member_values(kinfo, kindex, batch).reshape(-1).to(kinfo.raw.dtype)
                    d = torch.as_tensor(step[:, i], dtype=now.dtype)
                    _probe_values(kinfo, kindex, batch, now * torch.exp(d) if full.log[i] else now + d)
                moved = to_numpy(mll_terms(mll, m, infos, surrogate=False).lik) * n - base
            out[:, j] = np.fmax(coord, moved)
        except Exception:  # noqa: BLE001 - a far value whose Cholesky fails says nothing: NaN, the caller falls back
            pass
        finally:
            with torch.no_grad():
                for pk, r in saved.items():
                    infos[pk].raw.data.copy_(r)
    return out
