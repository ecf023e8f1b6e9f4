"""Parameter snapshots: a model's constrained parameter values as a dataframe, keyed like its expression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from gpytorch.kernels import Kernel

from gpviz.errors import InputError
from gpviz.models.expr import ModelExpr, model_expr
from gpviz.models.families import is_gp_model, unwrap_model
from gpviz.values.bounds import at_bound
from gpviz.values.columns import I_MODEL
from gpviz.values.keys import ParamInfo, member_values, param_info, parse_key, resolve
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
        column per expression key, in the expression's key order.
    """
    check_units(units)
    expr = expression_of(obj, feature_names)
    root = expr.module
    batch = torch.Size(expr.batch_shape)
    n = int(batch.numel())
    roles = expr.roles
    priors = priors_by_param(root) if long else {}
    wide: dict[str, np.ndarray] = {I_MODEL: np.arange(n, dtype=np.int32)}
    rows = []
    with torch.no_grad():
        infos: dict[tuple[str, str], ParamInfo] = {}
        for key in expr.keys:
            path, name, index = parse_key(key)
            if (path, name) not in infos:
                infos[(path, name)] = param_info(resolve(root, path), name, batch)
            info = infos[(path, name)]
            vals = to_numpy(member_values(info, index, batch).reshape(-1))
            wide[key] = vals.astype(np.float64)
            if not long:
                continue
            raw_info = ParamInfo(info.module, info.name, info.raw_name, info.raw, None, info.member_ndim,
                                 info.elem_shape)
            raws = to_numpy(member_values(raw_info, index, batch).reshape(-1))
            c = info.constraint
            lower, upper = info.bounds()
            prior = priors.get((path, name))
            for i in range(n):
                rows.append({
                    "key": key, "module": path, "parameter": name,
                    "index": ",".join(str(j) for j in index), I_MODEL: i,
                    "role": roles.get(key, name),
                    "raw": float(raws[i]), "value": float(vals[i]),
                    "constraint": type(c).__name__ if c is not None else "none",
                    "lower": lower, "upper": upper,
                    "enforced": bool(getattr(c, "enforced", False)) if c is not None else False,
                    "at_bound": at_bound(float(vals[i]), lower, upper),
                    "prior": type(prior).__name__ if prior is not None else "none",
                    "prior_params": prior_params(prior) if prior is not None else "",
                    "prior_mode": prior_mode(prior) if prior is not None else float("nan"),
                    "space": _space(roles.get(key, name), expr),
                })
    if long:
        cols = ["key", "module", "parameter", "index", I_MODEL, "role", "raw", "value", "constraint", "lower",
                "upper", "enforced", "at_bound", "prior", "prior_params", "prior_mode", "space"]
        df = pd.DataFrame(rows, columns=cols)
        df[I_MODEL] = df[I_MODEL].astype(np.int32)
        return to_units(expr, df, units)[0]
    return to_units(expr, pd.DataFrame(wide), units)[0]
