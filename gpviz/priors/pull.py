"""Prior pull: which parameters a model's priors hold, per parameter element and batch member.

:func:`prior_pull` splits the gradient of a BoTorch/GPyTorch marginal log
likelihood into its two terms, the data's (log likelihood) and the priors'
(log prior), per parameter element and batch member, and says which parameters
sit where the prior put them rather than where the data would take them.
:func:`sweep_prior_pull` does it for every cell of a sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import gpytorch
import pandas as pd
import torch
from botorch.cross_validation import gen_loo_cv_folds
from gpytorch.mlls import ExactMarginalLogLikelihood, MarginalLogLikelihood

from gpviz.errors import InputError, UnsupportedError
from gpviz.models.expr import model_expr
from gpviz.models.families import MODEL_LIST, family_of, is_fully_bayesian, model_batch_shape, sub_models
from gpviz.priors.verdicts import AT_BOUND, FREE, HELD
from gpviz.sweep.result import Sweep
from gpviz.values.bounds import at_bound
from gpviz.values.columns import I_MODEL
from gpviz.values.keys import ParamInfo, member_values, param_info, parse_key, resolve
from gpviz.values.prior_info import prior_mode, prior_params, priors_by_param
from gpviz.values.tensors import to_numpy

NEAR_LOG = math.log(2.0)
#: A real-valued parameter is "near the mode" within this many prior standard deviations.
NEAR_STD = 1.0
#: The prior holds a parameter when it supplies more than this share of the local curvature.
HELD_SHARE = 0.5

COLUMNS = ["key", I_MODEL, "value", "raw", "lower", "upper", "trainable", "prior", "prior_params", "prior_mode",
           "distance", "distance_space", "d_log_prior", "d_log_lik", "ratio", "curv_prior", "curv_lik",
           "prior_share", "verdict"]


@dataclass
class _Terms:
    """The MLL split in two, per batch member (flattened), both already divided by n like the MLL."""

    lik: torch.Tensor  # n_members
    prior: torch.Tensor  # n_members
    total: torch.Tensor  # n_members: the MLL's own value


def _as_mll(obj) -> MarginalLogLikelihood:
    if isinstance(obj, MarginalLogLikelihood):
        return obj
    if isinstance(obj, torch.nn.Module) and hasattr(obj, "likelihood") and hasattr(obj, "train_inputs"):
        # a bare exact GP: the MLL BoTorch's fit_gpytorch_mll would be given
        return ExactMarginalLogLikelihood(obj.likelihood, obj)
    raise InputError(f"prior_pull expects a marginal log likelihood (e.g. ExactMarginalLogLikelihood) or an exact "
                     f"GP model, got {type(obj).__module__}.{type(obj).__name__}")


def _mll_terms(mll: MarginalLogLikelihood, n_members: int) -> _Terms:
    """Evaluates the MLL the way BoTorch's loss closure does, and its two terms separately.

    The prior term is summed exactly as ``ExactMarginalLogLikelihood._add_other_terms``
    sums it (``model.named_priors()``, no deduplication; a prior on a parameter
    shared by all members is added to every member's term). For an exact MLL the
    likelihood term is computed on its own (``likelihood(f).log_prob(y)`` plus added
    loss terms), so ``lik + prior == total`` is a check, not a definition; for other
    MLL classes it is ``total - prior``.
    """
    model = mll.model
    inputs = tuple(model.train_inputs)
    targets = model.train_targets
    transform = getattr(model, "transform_inputs", None)
    # BoTorch transforms inputs in forward while training and passes the transformed
    # inputs to the likelihood as extra params (botorch.optim.closures).
    params = tuple(transform(X=t) for t in inputs) if callable(transform) else inputs
    out = model(*inputs)
    total = mll(out, targets, *params)
    num_data = out.event_shape.numel()
    prior = torch.zeros_like(total)
    for _name, module, pr, closure, _setting in model.named_priors():
        term = pr.log_prob(closure(module))
        prior = prior + term.reshape(*term.shape[: total.ndim], -1).sum(-1)
    prior = prior / num_data
    if type(mll) is ExactMarginalLogLikelihood and gpytorch.settings.observation_nan_policy.value() == "ignore":
        lik = mll.likelihood(out, *params).log_prob(targets)
        for added in model.added_loss_terms():
            lik = lik + added.loss(*params)
        lik = lik / num_data
    else:
        lik = total - prior
    shape = torch.broadcast_shapes(total.shape, prior.shape, lik.shape)
    if int(shape.numel()) != n_members:
        raise UnsupportedError(f"the MLL of {type(model).__name__} returns shape {list(shape)}, but the model has "
                               f"{n_members} batch members: prior_pull needs one MLL value per member")
    return _Terms(lik.expand(shape).reshape(-1), prior.expand(shape).reshape(-1), total.expand(shape).reshape(-1))


def _transform_derivs(info: ParamInfo) -> tuple[torch.Tensor, torch.Tensor]:
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


def _elem(info: ParamInfo, tensor: torch.Tensor, index: tuple[int, ...], batch: torch.Size) -> torch.Tensor:
    """One element of a raw-shaped tensor for every batch member (flattened)."""
    view = ParamInfo(info.module, info.name, info.raw_name, tensor.detach(), None, info.member_ndim, info.elem_shape)
    return member_values(view, index, batch).reshape(-1)


def _pick(info: ParamInfo, tensor: torch.Tensor, index: tuple[int, ...]) -> torch.Tensor:
    """Sum over members of one element of a raw-shaped tensor (keeps the graph)."""
    members = tensor.shape[: info.member_ndim]
    return tensor.reshape(tuple(members) + (-1,))[..., info.flat_index(index)].sum()


def _derivatives(term: torch.Tensor, infos: dict, elements: dict, batch: torch.Size, shared: set
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
                    out[key] = (to_numpy(_elem(info, gz, index, batch)), np.zeros(n))
                    continue
                h = torch.autograd.grad(_pick(info, g, index), info.raw, retain_graph=True, allow_unused=True)[0]
                h = torch.zeros_like(info.raw) if h is None else h
                out[key] = (to_numpy(_elem(info, g, index, batch)), to_numpy(_elem(info, h, index, batch)))
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
                first[k][i] = float(_elem(info, g, index, batch)[i])
                if g.requires_grad:
                    h = torch.autograd.grad(_pick(info, g, index), info.raw, retain_graph=True, allow_unused=True)[0]
                    if h is not None:
                        second[k][i] = float(_elem(info, h, index, batch)[i])
        for k in keys:
            out[k] = (first[k], second[k])
    return out


def _is_positive(prior, lower: float) -> bool:
    """A positive parameter: its constraint's lower bound, or its prior's support, is >= 0."""
    if lower >= 0:
        return True
    bound = getattr(getattr(prior, "support", None), "lower_bound", None)
    try:
        return bound is not None and float(bound) >= 0
    except (TypeError, ValueError):  # a tensor-valued bound
        return False


def _prior_std(prior) -> float:
    try:
        return float(torch.as_tensor(prior.stddev).reshape(-1)[0])
    except Exception:  # priors without a closed-form standard deviation
        return float("nan")


def prior_pull(mll, feature_names=None) -> pd.DataFrame:
    """How hard each parameter's prior pulls on it, compared with the data.

    The MLL that BoTorch maximizes is ``(log likelihood + Σ log prior) / n``
    (GPyTorch's ``ExactMarginalLogLikelihood``). Both terms are reported with that
    same division by ``n`` (per datum), so ``d_log_lik + d_log_prior`` is exactly
    the MLL's own gradient, the one the optimizer follows; ratios and verdicts do
    not depend on the normalization. Derivatives are taken with respect to the
    constrained value θ (chain rule through the constraint's transform; for
    BoTorch's non-enforced ``GreaterThan`` constraints raw == value).

    At a fitted optimum the two gradients are equal and opposite (their ``ratio`` is
    about 1 whatever the prior's strength), so the verdict looks at what would
    happen if the parameter moved: the curvature each term contributes,
    ``curv = -d²(term)/dθ²``. ``prior_share = curv_prior / (curv_prior + curv_lik)``
    (negative curvatures counted as 0) is the prior's share of the restoring
    force; a parameter is ``held by prior`` when that share exceeds
    :data:`HELD_SHARE` and its value sits near the prior's mode (within a factor
    :data:`NEAR_LOG` in log space for positive parameters, :data:`NEAR_STD` prior
    standard deviations otherwise). ``at bound`` means the value sits on a finite
    constraint bound; everything else is ``free``.

    The model's parameters, modes and ``requires_grad`` flags are left as found
    (fixed parameters are differentiated too, and reported with ``trainable``
    False); no ``.grad`` is written.

    Args:
        mll: A marginal log likelihood (``ExactMarginalLogLikelihood``; for a
            ``ModelListGP`` its ``SumMarginalLogLikelihood``, each sub-model on its
            own) or an exact GP model (an exact MLL is built around it).
        feature_names: Passed to :func:`gpviz.model_expr` (keys do not depend on it).

    Returns:
        One row per parameter element (in ``model_expr(model).keys`` order) per batch
        member, columns: ``key``, ``i_model``, ``value``, ``raw``, ``lower``, ``upper``,
        ``trainable``, ``prior`` (class name or "none"), ``prior_params``,
        ``prior_mode``, ``distance`` (value - mode; in log space for positive
        parameters, see ``distance_space``), ``d_log_prior``, ``d_log_lik``
        (per-datum derivatives w.r.t. θ), ``ratio`` (``|d_log_prior| / |d_log_lik|``),
        ``curv_prior``, ``curv_lik``, ``prior_share``, ``verdict``. A model without
        priors gives rows with prior "none", zero prior derivatives and no "held by
        prior" verdict.

    Raises:
        InputError: if ``mll`` is neither an MLL nor an exact GP model.
        UnsupportedError: if the MLL does not return one value per batch member, or the
            model is fully Bayesian (SAAS: MCMC samples, no MLL fit).
    """
    mll = _as_mll(mll)
    model = mll.model
    if is_fully_bayesian(model):
        # their MCMC samples are not fitted by the MLL, and BoTorch drops them on
        # model.train(): refuse before touching the model
        raise UnsupportedError(f"prior_pull needs a model fit by maximizing its MLL; {type(model).__name__} is "
                               f"fully Bayesian (MCMC samples): read its priors with gpviz.parameters(model, "
                               f"long=True) instead")
    if family_of(model) is MODEL_LIST:
        return _model_list_pull(model, sub_models(model), feature_names)
    expr = model_expr(model, feature_names)
    batch = torch.Size(model_batch_shape(model))
    n = int(batch.numel())
    keys = list(expr.keys)
    priors = priors_by_param(model)
    infos: dict[tuple[str, str], ParamInfo] = {}
    elements: dict[str, tuple[int, ...]] = {}
    for key in keys:
        path, name, index = parse_key(key)
        if (path, name) not in infos:
            infos[(path, name)] = param_info(resolve(model, path), name, batch)
        elements[key] = index
    shared = {pk for pk, info in infos.items()
              if int(torch.Size(info.raw.shape[: info.member_ndim]).numel()) < n}
    raws = {pk: info.raw for pk, info in infos.items()}
    flags = {pk: r.requires_grad for pk, r in raws.items()}
    modes = [(m, m.training) for m in mll.modules()]
    model_training = model.training
    try:
        for r in raws.values():
            r.requires_grad_(True)
        mll.train()
        with torch.enable_grad():
            terms = _mll_terms(mll, n)
            d_prior = _derivatives(terms.prior, infos, elements, batch, shared)
            d_lik = _derivatives(terms.lik, infos, elements, batch, shared)
    finally:
        for pk, r in raws.items():
            r.requires_grad_(flags[pk])
        # the model's own train(mode) first: BoTorch swaps original and transformed
        # train inputs on train()/eval(); then each module's own flag as it was
        model.train(model_training)
        for m, was_training in modes:
            m.training = was_training
    rows = []
    for key in keys:
        path, name, index = parse_key(key)
        info = infos[(path, name)]
        t1, t2 = _transform_derivs(info)
        t1, t2 = to_numpy(_elem(info, t1, index, batch)), to_numpy(_elem(info, t2, index, batch))
        values = to_numpy(member_values(info, index, batch).reshape(-1))
        raw_vals = to_numpy(_elem(info, info.raw, index, batch))
        lower, upper = info.bounds()
        prior = priors.get((path, name))
        mode = prior_mode(prior) if prior is not None else float("nan")
        positive = prior is not None and _is_positive(prior, lower)
        std = _prior_std(prior) if prior is not None and not positive else float("nan")
        with np.errstate(divide="ignore", invalid="ignore"):
            # chain rule: df/dθ = (df/dr) / θ'(r); d²f/dθ² = f''(r)/θ'² - f'(r) θ''/θ'³
            gp = d_prior[key][0] / t1
            gl = d_lik[key][0] / t1
            cp = -(d_prior[key][1] / t1 ** 2 - d_prior[key][0] * t2 / t1 ** 3)
            cl = -(d_lik[key][1] / t1 ** 2 - d_lik[key][0] * t2 / t1 ** 3)
        for i in range(n):
            v = float(values[i])
            if prior is None or not math.isfinite(mode):
                dist, space, near = float("nan"), "", False
            elif positive:
                space = "log"
                dist = math.log(v) - math.log(mode) if v > 0 and mode > 0 else float("nan")
                near = math.isfinite(dist) and abs(dist) <= NEAR_LOG
            else:
                space = "linear"
                dist = v - mode
                near = math.isfinite(std) and abs(dist) <= NEAR_STD * std
            gpi, gli = float(gp[i]), float(gl[i])
            ratio = abs(gpi) / abs(gli) if gli != 0 else (math.inf if gpi != 0 else float("nan"))
            cpi, cli = float(cp[i]), float(cl[i])
            pos_p = cpi if math.isfinite(cpi) and cpi > 0 else 0.0
            pos_l = cli if math.isfinite(cli) and cli > 0 else 0.0
            share = pos_p / (pos_p + pos_l) if pos_p + pos_l > 0 else float("nan")
            if at_bound(v, lower, upper):
                verdict = AT_BOUND
            elif prior is not None and near and math.isfinite(share) and share > HELD_SHARE:
                verdict = HELD
            else:
                verdict = FREE
            rows.append({
                "key": key, I_MODEL: i, "value": v, "raw": float(raw_vals[i]), "lower": lower, "upper": upper,
                "trainable": bool(flags[(path, name)]),
                "prior": type(prior).__name__ if prior is not None else "none",
                "prior_params": prior_params(prior) if prior is not None else "",
                "prior_mode": mode, "distance": dist, "distance_space": space,
                "d_log_prior": gpi, "d_log_lik": gli, "ratio": ratio,
                "curv_prior": cpi, "curv_lik": cli, "prior_share": share, "verdict": verdict,
            })
    df = pd.DataFrame(rows, columns=COLUMNS)
    df[I_MODEL] = df[I_MODEL].astype(np.int32)
    return df


def _model_list_pull(model, subs, feature_names) -> pd.DataFrame:
    """A ModelListGP: each sub-model on its own (a SumMarginalLogLikelihood adds their exact MLLs)."""
    frames = []
    for i, sub in enumerate(subs):
        if not hasattr(sub, "likelihood") or not hasattr(sub, "train_inputs"):
            raise UnsupportedError(f"prior_pull: sub-model {i} of {type(model).__name__} is a "
                                   f"{type(sub).__name__}, not an exact GP")
        pull = prior_pull(ExactMarginalLogLikelihood(sub.likelihood, sub))
        frames.append(pull.assign(key=f"models.{i}." + pull["key"]))
    out = pd.concat(frames, ignore_index=True)
    order = {k: j for j, k in enumerate(model_expr(model, feature_names).keys)}
    out = out[out["key"].isin(order)]
    out = out.iloc[np.lexsort((out[I_MODEL].to_numpy(), out["key"].map(order).to_numpy()))].reset_index(drop=True)
    out[I_MODEL] = out[I_MODEL].astype(np.int32)
    return out


# -- verdicts of a whole sweep --------------------------------------------------------------------------------------

def load_member_values(model, values) -> None:
    """Writes constrained values into a model's parameters, per batch member.

    Args:
        model: A GP model whose parameters are named by ``model_expr(model).keys``.
        values: key -> sequence of one value per batch member (flattened batch
            order, as in ``parameters(model)``), e.g. a wide parameter frame.

    Raises:
        InputError: if a key's values do not have one entry per batch member.
    """
    batch = torch.Size(model_batch_shape(model))
    n = int(batch.numel())
    with torch.no_grad():
        for key in values.keys() if hasattr(values, "keys") else values:
            if key == I_MODEL:
                continue
            vals = np.array(values[key], dtype=np.float64).reshape(-1)  # a copy: pandas arrays are read-only
            if vals.size != n:
                raise InputError(f"{key}: got {vals.size} values for a model with {n} batch members")
            path, name, index = parse_key(key)
            info = param_info(resolve(model, path), name, batch)
            v = torch.as_tensor(vals, dtype=info.raw.dtype, device=info.raw.device).reshape(batch)
            # a member-owned parameter takes its own member's value; a shared one the first member's
            lead = (slice(None),) * info.member_ndim + (0,) * (len(batch) - info.member_ndim)
            v = v[lead] if len(batch) else v
            c = info.constraint
            r = c.inverse_transform(v) if c is not None and getattr(c, "enforced", True) else v
            members = tuple(info.raw.shape[: info.member_ndim])
            info.raw.data.view(members + (-1,))[..., info.flat_index(index)] = r


def sweep_prior_pull(sweep, repeats: int | None = 1) -> pd.DataFrame:
    """:func:`prior_pull` of the fitted models of a cross-validation sweep, per size and repeat.

    The sweep keeps fitted parameter values, not models: each cell's model is rebuilt
    with the sweep's own factory on the cell's folds and given the recorded values, so
    nothing is refitted.

    Args:
        sweep: A :class:`gpviz.sweep.result.Sweep` from :func:`gpviz.cv_sweep`.
        repeats: How many repeats per size to analyse (``None``: all of them).

    Returns:
        The rows of :func:`prior_pull` (one per key, fold and cell) with ``i_config``,
        ``size`` and ``i_repeat`` in front. Failed cells are skipped.
    """
    if not isinstance(sweep, Sweep):
        raise InputError(f"sweep_prior_pull expects a gpviz Sweep (from cv_sweep), got {type(sweep).__name__}")
    params = sweep.parameters
    frames = []
    n_rep = sweep.repeats if repeats is None else min(int(repeats), sweep.repeats)
    for i_config, size in enumerate(sweep.sizes):
        for i_repeat in range(n_rep):
            cell = params[(params["i_config"] == i_config) & (params["i_repeat"] == i_repeat)]
            rows = sweep.subsets.get((i_config, i_repeat))
            if cell.empty or rows is None:
                continue
            idx = torch.as_tensor(rows, device=sweep.X.device)
            folds = gen_loo_cv_folds(sweep.X[idx], sweep.Y[idx])
            model = sweep.make_model(folds.train_X, folds.train_Y)
            cell = cell.sort_values(I_MODEL)
            keys = [k for k in cell.columns if k not in ("i_config", "size", "i_repeat", I_MODEL)]
            load_member_values(model, {k: cell[k].to_numpy() for k in keys})
            pull = prior_pull(model)
            pull.insert(0, "i_repeat", np.int32(i_repeat))
            pull.insert(0, "size", np.int32(size))
            pull.insert(0, "i_config", np.int32(i_config))
            frames.append(pull)
    if not frames:
        return pd.DataFrame(columns=["i_config", "size", "i_repeat"] + COLUMNS)
    return pd.concat(frames, ignore_index=True)




# -- model factories with other priors -----------------------------------------------------------------------------
