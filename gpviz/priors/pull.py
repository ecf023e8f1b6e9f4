"""Prior pull: which parameters a model's priors hold, per parameter element and batch member.

:func:`prior_pull` splits the gradient of a BoTorch/GPyTorch marginal log
likelihood into its two terms, the data's (log likelihood) and the priors'
(log prior), per parameter element and batch member, and says which parameters
sit where the prior put them rather than where the data would take them.
:func:`gpviz.priors.sweep_pull.sweep_prior_pull` does it for every cell of a sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood, MarginalLogLikelihood, SumMarginalLogLikelihood

from gpviz.errors import InputError, UnsupportedError
from gpviz.models.expr import model_expr
from gpviz.models.families import family_of, is_fully_bayesian, model_batch_shape, sub_models
from gpviz.models.sources import source_of
from gpviz.options import reject_unknown
from gpviz.priors.derivatives import (closed_form_lik, derivatives, element, fast_prior_derivs, is_positive, log_std, mll_terms,
                                      prior_std, transform_derivs)
from gpviz.priors.escape import escape_gain
from gpviz.priors.hessian import MapHessian, map_hessian, map_numbers
from gpviz.priors.verdicts import NEAR_LOG, NEAR_STD, classify, uninformed
from gpviz.tree.labels import expression_labels
from gpviz.values.columns import I_MODEL
from gpviz.values.keys import ParamInfo, member_values, param_info, parse_key, resolve
from gpviz.values.prior_info import element_params, per_element, prior_modes, priors_by_param
from gpviz.values.tensors import to_numpy
from gpviz.values.bounds import at_bounds
from gpviz.values.units import check_units, convert_long

COLUMNS = ["key", "label", I_MODEL, "value", "raw", "lower", "upper", "trainable", "prior", "prior_params",
           "prior_mode", "distance", "distance_space", "distance_sd", "d_log_prior", "d_log_lik", "ratio", "curv_prior",
           "curv_lik", "prior_share", "coord", "precision_share", "post_sd", "distance_post_sd", "dmap_dalpha",
           "dmap_dalpha_sd", "escape_gain", "verdict"]


def _as_mll(obj) -> MarginalLogLikelihood:
    if isinstance(obj, MarginalLogLikelihood):
        return obj
    fam = family_of(obj)  # None for anything that is not a GP model
    if fam is not None and fam.holds_models and hasattr(obj, "likelihood"):
        # a bare ModelListGP: the SumMarginalLogLikelihood BoTorch fits it with (one sub-model at a time)
        return SumMarginalLogLikelihood(obj.likelihood, obj)
    if isinstance(obj, torch.nn.Module) and hasattr(obj, "likelihood") and hasattr(obj, "train_inputs"):
        # a bare exact GP: the MLL BoTorch's fit_gpytorch_mll would be given
        return ExactMarginalLogLikelihood(obj.likelihood, obj)
    raise InputError(f"prior_pull expects a marginal log likelihood (e.g. ExactMarginalLogLikelihood) or an exact "
                     f"GP model, got {type(obj).__module__}.{type(obj).__name__}")


def prior_pull(mll: Any, feature_names: Sequence[str] | None = None, *, units: str = "model",
               **options: Any) -> pd.DataFrame:
    """How hard each parameter's prior pulls on it, compared with the data, and the verdict that follows.

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
    ``curv = -d²(term)/dθ²``, and the prior's share of the restoring force::

        prior_share = max(curv_prior, 0) / (max(curv_prior, 0) + max(curv_lik, 0))

    (NaN when both are <= 0: nothing holds the value), taken in ``log θ`` for a positive parameter
    (``coord`` "log": there BoTorch's LogNormal and Gamma priors are concave; in θ a LogNormal is convex
    above exp(μ + 1 - σ²) and its share read 0 exactly where it does all the work). The verdict uses the
    full Hessian's ``precision_share`` where defined, and the escape probe (what the data alone would do
    100x away), see :func:`gpviz.priors.verdicts.classify`. The distance to the prior's
    mode is ``log θ - log mode`` for a positive parameter (``distance_space`` "log")
    and ``θ - mode`` otherwise ("linear"); ``distance_sd`` is that distance in prior
    standard deviations (of ``log θ``, or of θ). :func:`gpviz.priors.verdicts.classify` turns these numbers
    into one of :data:`~gpviz.priors.verdicts.VERDICTS`: ``at bound`` (on a finite constraint bound), else
    ``never moved`` (a prior, and the likelihood's gradient and curvature ~0 against the prior's: the data
    carries no information about it, :func:`gpviz.priors.verdicts.uninformed`), else ``held at prior mode`` (``prior_share > 0.5`` and within a factor 2 of the mode,
    or 1 prior standard deviation for a real-valued parameter), ``set by prior``
    (``prior_share > 0.5``, away from the mode), or ``free``.

    Cost: every member is judged at once. Each batch member's MLL depends only on its
    own parameters, so one gradient of the summed likelihood term gives every
    member's gradient, and one Hessian-vector product per parameter element gives
    that element's curvature in every member. For a SingleTaskGP with a (Scale)Matern or
    RBF kernel, Gaussian or fixed noise and a constant or zero mean, no such product
    runs: one Cholesky gives every element's first and second derivative of the
    likelihood term in closed form (:func:`gpviz.priors.derivatives.closed_form_lik`,
    checked against one backward pass). For other exact GPs the products run through
    the log likelihood's exact second-order surrogate around the current values (one
    Cholesky, none differentiated; the same gradient and Hessian there, see
    :func:`gpviz.priors.derivatives.quad_lik`), otherwise through the Cholesky.
    The priors' curvatures need no such pass: a univariate prior on a parameter's own
    value is differentiated elementwise in two passes for all elements.

    The model's parameters, modes and ``requires_grad`` flags are left as found
    (fixed parameters are differentiated too, and reported with ``trainable``
    False); no ``.grad`` is written.

    Args:
        mll: A marginal log likelihood (``ExactMarginalLogLikelihood``; for a
            ``ModelListGP`` its ``SumMarginalLogLikelihood``, each sub-model on its
            own) or an exact GP model (an exact MLL is built around it), or an Ax
            ``Client`` / ``GenerationStrategy`` / ``TorchAdapter`` (its surrogate model).
        feature_names: Passed to :func:`gpviz.model_expr`: they name the ``label`` column
            (keys do not depend on them).
        units: ``"model"`` or ``"original"`` (as ``render(units=...)``; an Ax ``Client``'s through Ax's
            transforms too): ``value``, bounds, ``prior_mode``, a linear ``distance`` become ``s θ + o``,
            derivatives ``/ s`` and curvatures ``/ s²``; the rest is unit-free.

    Returns:
        One row per parameter element (in ``model_expr(model).keys`` order) per batch
        member (members in flattened batch order within each key), columns:
        ``key``, ``label`` (what people read: ``lengthscale[log_lr]``), ``i_model``,
        ``value``, ``raw``, ``lower``, ``upper``, ``trainable``,
        ``prior`` (class name or "none"), ``prior_params``, ``prior_mode``,
        ``distance``, ``distance_space``, ``distance_sd``, ``d_log_prior``,
        ``d_log_lik`` (per-datum derivatives w.r.t. θ), ``ratio``
        (``|d_log_prior| / |d_log_lik|``), ``curv_prior``, ``curv_lik``,
        ``prior_share`` (the diagonal share, in ``coord``), ``coord`` (``"log"``: the numbers that follow
        are in ``log θ``, a positive parameter; ``"linear"``: in θ), the full-Hessian numbers of
        :mod:`gpviz.priors.hessian` (``precision_share``, ``post_sd``, ``distance_post_sd``: from the
        prior's mode in posterior standard deviations, ``dmap_dalpha`` and ``dmap_dalpha_sd``: the MAP's
        move per unit of the prior's power, in ``coord`` and in posterior sds; NaN for fixed elements,
        elements on a bound and parameters shared by members), ``escape_gain`` (nats;
        :func:`gpviz.priors.escape.escape_gain`), ``verdict``. A model without priors gives rows with prior
        "none", zero prior derivatives and only ``free`` / ``at bound`` verdicts.

    Raises:
        InputError: if ``mll`` is neither an MLL nor an exact GP model, ``units`` is not
            "model" or "original", or an option prior_pull does not take is given (``title=``...).
        UnsupportedError: if the MLL does not return one value per batch member, or the
            model is fully Bayesian (SAAS: MCMC samples, no MLL fit).
    """
    reject_unknown("prior_pull", options, ("mll", "feature_names", "units"))
    check_units(units)
    if source_of(mll) is not None:  # an Ax Client...: the surrogate's model, named from the search space
        expr = model_expr(mll, feature_names)  # knows the data's transforms outside the model (units)
        pull = _pull(expr.module, [f.name for f in expr.features] if expr.features is not None else None)
        return pull if units == "model" else _in_units(expr, pull)
    pull = _pull(mll, feature_names)
    return pull if units == "model" else _in_units(model_expr(_as_mll(mll).model, feature_names), pull)


def expression_pull(expr) -> pd.DataFrame:
    """:func:`prior_pull` of the model behind an already built model expression, in model units.

    The expression's keys and labels are used as they are: the model is not walked again
    (``render(model)`` walks it once, for the page and the verdicts together).
    """
    return _pull(expr.module, None, expr)


def _in_units(expr, pull: pd.DataFrame) -> pd.DataFrame:
    """A prior_pull frame in original units: each row through its key's and member's affine map ``θ' = s θ + o``."""
    # the map convert_long applies to each row, read off by converting 0 and 1 (one rule for every frame)
    probe = convert_long(expr, pd.DataFrame({"key": pull["key"], I_MODEL: pull[I_MODEL], "value": 1.0, "lower": 0.0}))
    offset = probe["lower"].to_numpy(dtype=np.float64)
    scale = probe["value"].to_numpy(dtype=np.float64) - offset
    out = convert_long(expr, pull)  # value, lower, upper, prior_mode
    with np.errstate(divide="ignore", invalid="ignore"):
        for col in ("d_log_prior", "d_log_lik"):
            out[col] = pull[col].to_numpy(dtype=np.float64) / scale
        for col in ("curv_prior", "curv_lik"):
            out[col] = pull[col].to_numpy(dtype=np.float64) / scale ** 2
    linear = (pull["distance_space"] == "linear").to_numpy()
    out.loc[linear, "distance"] = pull.loc[linear, "distance"].to_numpy(dtype=np.float64) * scale[linear]
    return out


def _pull(mll, feature_names, expr=None) -> pd.DataFrame:
    """:func:`prior_pull` in the model's own units (``expr``: the model's expression when already built)."""
    mll = _as_mll(mll)
    model = mll.model
    if is_fully_bayesian(model):
        # their MCMC samples are not fitted by the MLL, and BoTorch drops them on
        # model.train(): refuse before touching the model
        raise UnsupportedError(f"prior_pull needs a model fit by maximizing its MLL; {type(model).__name__} is "
                               f"fully Bayesian (MCMC samples): read its priors with gpviz.parameters(model, "
                               f"long=True) instead")
    fam = family_of(model)
    if fam is not None and fam.pull_refusal:
        raise UnsupportedError(f"prior_pull cannot judge a {type(model).__name__}: {fam.pull_refusal}; read its "
                               f"priors with gpviz.parameters(model, long=True) instead")
    if fam is not None and fam.holds_models:
        return _model_list_pull(model, sub_models(model), feature_names, expr)
    if expr is None:
        expr = model_expr(model, feature_names)
    batch = torch.Size(model_batch_shape(model))
    n = int(batch.numel())
    keys = list(expr.keys)
    labels = expression_labels(expr)
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
            terms = mll_terms(mll, n, infos)
            fast = fast_prior_derivs(terms, infos)
            d_slow = derivatives(terms.slow_prior, infos, elements, batch, shared)
            # the closed form for the keys it covers; the surrogate's Hessian-vector products for the rest
            d_lik = closed_form_lik(mll, terms, infos, elements, batch, shared)
            rest = {k: i for k, i in elements.items() if k not in d_lik}
            if rest or not elements:
                left = {parse_key(k)[:2] for k in rest}
                d_lik.update(derivatives(terms.lik, {pk: infos[pk] for pk in infos if pk in left}, rest, batch,
                                         shared & left))
            # every pair of elements of every member (a parameter shared by members would couple their blocks)
            own = {k: i for k, i in elements.items() if parse_key(k)[:2] not in shared}
            full = map_hessian(terms, {pk: infos[pk] for pk in infos if pk not in shared}, own, batch,
                               {k for k in own if _positive(infos[parse_key(k)[:2]], priors.get(parse_key(k)[:2]))})
            judged = _judged(full, infos, flags, batch)
            probe = [j for j, k in enumerate(full.keys) if full.log[j] and parse_key(k)[:2] in priors]
            gain = escape_gain(mll, {pk: infos[pk] for pk in infos if pk not in shared}, full, probe, judged, batch)
    finally:
        for pk, r in raws.items():
            r.requires_grad_(flags[pk])
        # the model's own train(mode) first: BoTorch swaps original and transformed
        # train inputs on train()/eval(); then each module's own flag as it was
        model.train(model_training)
        for m, was_training in modes:
            m.training = was_training
    numbers = map_numbers(full, judged)
    column = {k: j for j, k in enumerate(full.keys)}
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    for key in keys:
        path, name, index = parse_key(key)
        info = infos[(path, name)]
        r1, r2 = transform_derivs(info)
        t1, t2 = to_numpy(element(info, r1, index, batch)), to_numpy(element(info, r2, index, batch))
        values = to_numpy(member_values(info, index, batch).reshape(-1))
        lower, upper = info.bounds()
        prior = priors.get((path, name))
        positive = prior is not None and is_positive(prior, lower)
        log_coord = _positive(info, prior)
        # each element and member its own prior (vector and batched hyperparameters broadcast as
        # torch.distributions does against the parameter's shape)
        if prior is None:
            mode, sd, texts = np.full(n, np.nan), np.full(n, np.nan), [""] * n
        else:
            mode, sd, texts = _prior_elements(info, prior, positive, index, batch)
        with np.errstate(divide="ignore", invalid="ignore"):
            # chain rule: df/dθ = (df/dr) / θ'(r); d²f/dθ² = f''(r)/θ'² - f'(r) θ''/θ'³
            gl = d_lik[key][0] / t1
            cl = -(d_lik[key][1] / t1 ** 2 - d_lik[key][0] * t2 / t1 ** 3)
            gp = d_slow[key][0] / t1
            cp = -(d_slow[key][1] / t1 ** 2 - d_slow[key][0] * t2 / t1 ** 3)
            if (path, name) in fast:
                f1, f2 = fast[(path, name)]
                gp = gp + to_numpy(element(info, f1, index, batch))
                cp = cp - to_numpy(element(info, f2, index, batch))
            if prior is None or not np.isfinite(mode).any():
                dist, space = np.full(n, np.nan), ""
                near = np.zeros(n, dtype=bool)
            elif positive:
                space = "log"
                dist = np.where((values > 0) & (mode > 0), np.log(np.abs(values)) - np.log(np.maximum(mode, 1e-300)),
                                np.nan)
                near = np.isfinite(dist) & (np.abs(dist) <= NEAR_LOG)
            else:
                space = "linear"
                dist = values - mode
                near = np.isfinite(sd) & (np.abs(dist) <= NEAR_STD * sd)
            cp, cl = cp + 0.0, cl + 0.0  # -0.0 (no curvature) reads as 0
            ratio = np.where(gl != 0, np.abs(gp) / np.abs(gl), np.where(gp != 0, np.inf, np.nan))
            # the diagonal share in the judged coordinate: u = log θ for a positive parameter, where
            # -d²f/du² = θ² curv_θ - θ f'(θ) (BoTorch's LogNormal is convex in θ above exp(μ + 1 - σ²) ~ 1.4,
            # concave in log θ everywhere: in θ its share read 0 exactly where the prior does all the work)
            up, ul = (cp, cl) if not log_coord else (values ** 2 * cp - values * gp, values ** 2 * cl - values * gl)
            pos_p, pos_l = np.where(up > 0, up, 0.0), np.where(ul > 0, ul, 0.0)
            share = np.where(pos_p + pos_l > 0, pos_p / (pos_p + pos_l), np.nan)
            dist_sd = np.where(np.isfinite(sd) & (sd > 0), dist / sd, np.nan)
            j = column.get(key)
            nan = np.full(n, np.nan)
            full_share = numbers.precision_share[:, j] if j is not None else nan
            post_sd = numbers.post_sd[:, j] if j is not None else nan
            dmap = numbers.dmap_dalpha[:, j] if j is not None else nan
            u_mode = (np.log(np.where(mode > 0, mode, np.nan)) if log_coord else mode) if prior is not None else nan
            u_val = np.log(np.where(values > 0, values, np.nan)) if log_coord else values
            dist_post = np.where(post_sd > 0, (u_val - u_mode) / post_sd, np.nan)
            escape = gain[:, j] if j is not None else nan
            # the data's gradient in the judged coordinate (d/d log θ = θ d/dθ): with its curvature ~0 against
            # the prior's, the element never moved from where the optimizer started (the prior's mode)
            silent = uninformed(values * gl if log_coord else gl, ul, up)
        verdict = classify(values, lower, upper, prior is not None, dist, near,
                           np.where(np.isfinite(full_share), full_share, share), escape, silent)
        part = {
            "key": [key] * n, "label": [labels.get(key, key)] * n, I_MODEL: np.arange(n), "value": values,
            "raw": to_numpy(element(info, info.raw, index, batch)), "lower": np.full(n, lower),
            "upper": np.full(n, upper), "trainable": np.full(n, bool(flags[(path, name)])),
            "prior": [type(prior).__name__ if prior is not None else "none"] * n,
            "prior_params": texts, "prior_mode": mode, "distance": dist, "distance_space": [space] * n,
            "distance_sd": dist_sd, "d_log_prior": gp, "d_log_lik": gl, "ratio": ratio, "curv_prior": cp,
            "curv_lik": cl, "prior_share": share, "coord": ["log" if log_coord else "linear"] * n,
            "precision_share": full_share, "post_sd": post_sd, "distance_post_sd": dist_post, "dmap_dalpha": dmap,
            "dmap_dalpha_sd": np.where(post_sd > 0, dmap / post_sd, np.nan), "escape_gain": escape, "verdict": verdict,
        }
        for c in COLUMNS:
            cols[c].append(np.asarray(part[c]))
    df = pd.DataFrame({c: np.concatenate(v) if v else np.zeros(0) for c, v in cols.items()}, columns=COLUMNS)
    df[I_MODEL] = df[I_MODEL].astype(np.int32)
    df["trainable"] = df["trainable"].astype(bool)
    for c in ("key", "label", "prior", "prior_params", "distance_space", "coord", "verdict"):
        df[c] = df[c].astype(object)
    return df


def _positive(info: ParamInfo, prior) -> bool:
    """Whether an element is judged in ``log θ``: a positive parameter (its constraint's lower bound or its
    prior's support >= 0) whose every value is > 0."""
    lower = info.bounds()[0]
    return (is_positive(prior, lower) if prior is not None else lower >= 0) and bool((info.value() > 0).all())


def _judged(full: MapHessian, infos: dict, flags: dict, batch: torch.Size) -> np.ndarray:
    """``[m, p]``: the elements that enter each member's Laplace posterior: trainable and not on a bound."""
    out = np.zeros(full.grad_lik.shape, dtype=bool)
    for j, key in enumerate(full.keys):
        path, name, index = parse_key(key)
        info = infos[(path, name)]
        lower, upper = info.bounds()
        values = to_numpy(member_values(info, index, batch).reshape(-1))
        out[:, j] = bool(flags[(path, name)]) & ~at_bounds(values, lower, upper)
    return out


def _prior_elements(info: ParamInfo, prior, positive: bool, index: tuple[int, ...], batch: torch.Size
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One element's prior mode, spread (of log θ for a positive parameter, else of θ) and description,
    for every batch member (flattened), each from its own hyperparameters."""
    shape = info.raw.shape
    mode = to_numpy(element(info, prior_modes(prior, shape), index, batch))
    sd = to_numpy(element(info, per_element(log_std(prior) if positive else prior_std(prior), shape), index, batch))
    where = torch.arange(int(shape.numel()), dtype=torch.float64).reshape(shape)
    texts = element_params(prior, shape)
    return mode, sd, [texts[int(i)] for i in to_numpy(element(info, where, index, batch), dtype=np.int64)]


def _model_list_pull(model, subs, feature_names, whole=None) -> pd.DataFrame:
    """A ModelListGP: each sub-model on its own (a SumMarginalLogLikelihood adds their exact MLLs); ``whole``: the
    list's expression when already built."""
    frames = []
    for i, sub in enumerate(subs):
        if not hasattr(sub, "likelihood") or not hasattr(sub, "train_inputs"):
            raise UnsupportedError(f"prior_pull: sub-model {i} of {type(model).__name__} is a "
                                   f"{type(sub).__name__}, not an exact GP")
        pull = prior_pull(ExactMarginalLogLikelihood(sub.likelihood, sub))
        frames.append(pull.assign(key=f"models.{i}." + pull["key"]))
    out = pd.concat(frames, ignore_index=True)
    if whole is None:
        whole = model_expr(model, feature_names)
    order = {k: j for j, k in enumerate(whole.keys)}
    out = out[out["key"].isin(order)]
    out["label"] = out["key"].map(expression_labels(whole))  # unique over the whole list (models.0 vs models.1)
    out = out.iloc[np.lexsort((out[I_MODEL].to_numpy(), out["key"].map(order).to_numpy()))].reset_index(drop=True)
    out[I_MODEL] = out[I_MODEL].astype(np.int32)
    return out


# -- verdicts of a whole sweep --------------------------------------------------------------------------------------
