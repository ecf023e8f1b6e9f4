"""Parameter snapshots: a model's constrained parameter values as a dataframe, keyed like its expression."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from gpytorch.kernels import Kernel

from gpviz.errors import InputError
from gpviz.keys import ParamInfo, member_values, param_info, parse_key, resolve

I_MODEL = "i_model"


def expression_of(obj, feature_names=None):
    """The expression for a model, kernel, MLL, or an expression passed through.

    Raises:
        InputError: for anything else, naming the type received.
    """
    from gpviz.model import ModelExpr, is_gp_model, model_expr, unwrap_model
    from gpviz.walk import KernelExpr, kernel_expr

    if isinstance(obj, (KernelExpr, ModelExpr)):
        return obj
    obj = unwrap_model(obj)
    if isinstance(obj, Kernel):
        return kernel_expr(obj, feature_names)
    if is_gp_model(obj):  # exact, approximate, multi-task, higher-order GPs and model lists
        return model_expr(obj, feature_names)
    raise InputError(f"expected a GPyTorch/BoTorch model, kernel or MLL, got {type(obj).__module__}."
                     f"{type(obj).__name__}")


def at_bound(value: float, lower: float, upper: float, rtol: float = 1e-4) -> bool:
    """Whether ``value`` sits on a finite constraint bound (within ``rtol`` of the bound's scale)."""
    for b in (lower, upper):
        if math.isfinite(b) and abs(value - b) <= rtol * max(abs(b), 1e-8):
            return True
    return False


def prior_mode(prior) -> float:
    """The mode of a GPyTorch prior, in the parameter's constrained space (NaN if unknown)."""
    name = type(prior).__name__
    try:
        if name == "GammaPrior":
            a, b = float(prior.concentration.reshape(-1)[0]), float(prior.rate.reshape(-1)[0])
            return (a - 1.0) / b if a >= 1 else 0.0
        if name == "LogNormalPrior":
            mu, s = float(prior.loc.reshape(-1)[0]), float(prior.scale.reshape(-1)[0])
            return math.exp(mu - s * s)
        if name in ("NormalPrior", "HalfNormalPrior"):
            return float(prior.loc.reshape(-1)[0]) if name == "NormalPrior" else 0.0
        if name == "HalfCauchyPrior":
            return 0.0
        if name == "BetaPrior":
            a = float(prior.concentration1.reshape(-1)[0])
            b = float(prior.concentration0.reshape(-1)[0])
            return (a - 1.0) / (a + b - 2.0) if a > 1 and b > 1 else float("nan")
    except Exception:  # exotic prior parameterizations: no mode rather than a crash
        return float("nan")
    return float("nan")


def prior_params(prior) -> str:
    """A short ``name=value`` description of a prior's parameters."""
    names = [n for n in ("concentration", "rate", "loc", "scale", "concentration1", "concentration0",
                         "low", "high") if hasattr(prior, n)]
    parts = []
    for n in names:
        try:
            t = torch.as_tensor(getattr(prior, n)).reshape(-1)
            parts.append(f"{n}={float(t[0]):.4g}" if t.numel() == 1 or bool((t == t[0]).all())
                         else f"{n}={[round(float(v), 4) for v in t]}")
        except Exception:
            continue
    return ", ".join(parts)


def priors_by_param(root: torch.nn.Module) -> dict[tuple[str, str], object]:
    """(module path, value name) -> prior, from ``named_priors`` (``X_prior`` guards parameter ``X``)."""
    out = {}
    if not hasattr(root, "named_priors"):  # a plain torch container (botorch ModelList): ask its children
        for child_name, child in root.named_children():
            for (path, value_name), prior in priors_by_param(child).items():
                out[(f"{child_name}.{path}" if path else child_name, value_name)] = prior
        return out
    for name, module, prior, _closure, _setting in root.named_priors():
        path, _, prior_name = name.rpartition(".")
        if prior_name.endswith("_prior"):
            out[(path, prior_name[: -len("_prior")])] = prior
    return out


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
    from gpviz.units import check_units, to_units

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
            vals = member_values(info, index, batch).reshape(-1).numpy()
            wide[key] = vals.astype(np.float64)
            if not long:
                continue
            raw_info = ParamInfo(info.module, info.name, info.raw_name, info.raw, None, info.member_ndim,
                                 info.elem_shape)
            raws = member_values(raw_info, index, batch).reshape(-1).numpy()
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
