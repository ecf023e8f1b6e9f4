"""Parameter snapshots: a model's constrained parameter values as a dataframe, keyed like its expression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from gpytorch.kernels import Kernel

from gpviz.errors import InputError
from gpviz.models.expr import ModelExpr, model_expr
from gpviz.models.families import is_gp_model, unwrap_model
from gpviz.models.sources import source_of
from gpviz.tree.labels import expression_labels
from gpviz.values.bounds import at_bounds
from gpviz.values.columns import I_MODEL
from gpviz.values.keys import member_block, param_info, parse_key, resolve
from gpviz.values.prior_info import prior_mode, prior_params, priors_by_param
from gpviz.values.tensors import to_numpy
from gpviz.values.units import check_units, to_units
from gpviz.walk.expr import KernelExpr, kernel_expr


def expression_of(obj, feature_names=None):
    """The expression for a model, kernel, MLL, or an expression passed through.

    Raises:
        InputError: for anything else, naming the type received.
    """
    if isinstance(obj, (KernelExpr, ModelExpr)):
        return obj
    if source_of(obj) is not None:  # an Ax Client, GenerationStrategy, adapter...
        return model_expr(obj, feature_names)
    obj = unwrap_model(obj)
    if isinstance(obj, Kernel):
        return kernel_expr(obj, feature_names)
    if is_gp_model(obj):  # exact, approximate, multi-task, higher-order GPs and model lists
        return model_expr(obj, feature_names)
    raise InputError(f"expected a GPyTorch/BoTorch model, kernel or MLL, got {type(obj).__module__}."
                     f"{type(obj).__name__}")

def _space(role: str, expr) -> str:
    out_space = getattr(expr, "output_space", "outputs")
    in_space = getattr(expr, "input_space", "inputs")
    if role in ("lengthscale", "period"):
        return in_space
    if role in ("outputscale", "noise", "mean"):
        return out_space
    return ""


def parameters(obj, long: bool = False, feature_names=None, units: str = "model") -> pd.DataFrame:
    """The constrained parameter values of a model or kernel.

    Values are read under ``torch.no_grad()``, detached, on the CPU; the model is
    left exactly as found.

    Args:
        obj: A BoTorch/GPyTorch model, kernel, MLL, or an expression from
            :func:`gpviz.model_expr` / :func:`gpviz.kernel_expr`.
        long: Return the tidy frame (one row per key and batch member with raw
            value, constraint, bounds, prior and units) instead of the wide one.
        feature_names: Passed to the expression builder.
        units: ``"model"`` (the model's own space) or ``"original"`` (lengthscales
            × input range, noise/outputscale × σ², mean × σ + μ; see :mod:`gpviz.units`).

    Returns:
        Wide: one row per batch member, ``i_model`` (int32) then one float64
        column per expression key, in the expression's key order; ``attrs["labels"]``
        maps each key to its readable label (``lengthscale[log_lr]``). Long: one row per
        key and member, the ``label`` column beside the stable ``key``.
    """
    check_units(units)
    expr = expression_of(obj, feature_names)
    root = expr.module
    batch = torch.Size(expr.batch_shape)
    n = int(batch.numel())
    keys = list(expr.keys)
    roles = expr.roles
    # one group per parameter tensor: one constraint transform and one prior look-up for all its elements
    # (a 1,000-D ARD lengthscale is one transform, not 1,000; its prior mode is computed once)
    groups: dict[tuple[str, str], list[tuple[str, tuple[int, ...]]]] = {}
    for key in keys:
        path, name, index = parse_key(key)
        groups.setdefault((path, name), []).append((key, index))
    priors = priors_by_param(root) if long else {}
    values: dict[str, np.ndarray] = {}
    facts: dict[str, dict] = {}
    for (path, name), items in groups.items():
        info = param_info(resolve(root, path), name, batch)
        indices = [index for _, index in items]
        block = to_numpy(member_block(info, indices, batch).reshape(n, len(items)))
        for j, (key, _) in enumerate(items):
            values[key] = block[:, j].astype(np.float64)
        if not long:
            continue
        raws = to_numpy(member_block(info, indices, batch, raw=True).reshape(n, len(items)))
        c = info.constraint
        lower, upper = info.bounds()
        prior = priors.get((path, name))
        shared = {
            "module": path, "parameter": name, "constraint": type(c).__name__ if c is not None else "none",
            "lower": lower, "upper": upper,
            "enforced": bool(getattr(c, "enforced", False)) if c is not None else False,
            "prior": type(prior).__name__ if prior is not None else "none",
            "prior_params": prior_params(prior) if prior is not None else "",
            "prior_mode": prior_mode(prior) if prior is not None else float("nan"),
        }
        for j, (key, index) in enumerate(items):
            facts[key] = {**shared, "index": ",".join(str(i) for i in index), "raw": raws[:, j].astype(np.float64)}
    labels = expression_labels(expr)
    if not long:
        wide = to_units(expr, pd.DataFrame({I_MODEL: np.arange(n, dtype=np.int32), **{k: values[k] for k in keys}}),
                        units)[0]
        wide.attrs["labels"] = {k: labels.get(k, k) for k in keys}
        return wide

    def per_key(name, dtype=object):  # one value per key, repeated for its n member rows
        return np.repeat(np.array([facts[k][name] for k in keys], dtype=dtype), n)

    role = [roles.get(k, facts[k]["parameter"]) for k in keys]
    value = np.concatenate([values[k] for k in keys]) if keys else np.zeros(0)
    lower, upper = per_key("lower", np.float64), per_key("upper", np.float64)
    at = np.zeros(len(value), bool)
    for k, (lo, hi) in enumerate(zip(lower[::n] if n else [], upper[::n] if n else [])):
        at[k * n:(k + 1) * n] = at_bounds(value[k * n:(k + 1) * n], lo, hi)
    df = pd.DataFrame({
        "key": np.repeat(np.array(keys, dtype=object), n),
        "label": np.repeat(np.array([labels.get(k, k) for k in keys], dtype=object), n), "module": per_key("module"),
        "parameter": per_key("parameter"), "index": per_key("index"),
        I_MODEL: np.tile(np.arange(n, dtype=np.int32), len(keys)),
        "role": np.repeat(np.array(role, dtype=object), n),
        "raw": np.concatenate([facts[k]["raw"] for k in keys]) if keys else np.zeros(0), "value": value,
        "constraint": per_key("constraint"), "lower": lower, "upper": upper,
        "enforced": per_key("enforced", bool), "at_bound": at,
        "prior": per_key("prior"), "prior_params": per_key("prior_params"),
        "prior_mode": per_key("prior_mode", np.float64),
        "space": np.repeat(np.array([_space(r, expr) for r in role], dtype=object), n),
    })
    return to_units(expr, df, units)[0]
