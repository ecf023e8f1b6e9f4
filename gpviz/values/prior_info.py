"""What a parameter's prior says: its mode, a short description, and which prior guards which parameter."""

from __future__ import annotations

import math

import torch

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


def describe_priors(model) -> list[tuple[str, str]]:
    """(parameter path, ``PriorClass(params)``) for every prior of a model: covariance, then noise, then mean."""
    out = []
    for name, _module, prior, _closure, _setting in model.named_priors():
        path, _, prior_name = name.rpartition(".")
        target = f"{path}.{prior_name[: -len('_prior')]}" if prior_name.endswith("_prior") else name
        out.append((target.lstrip("."), f"{type(prior).__name__}({prior_params(prior)})"))
    # in the order the expression prints its sections: covariance, noise, mean
    rank = {"covar_module": 0, "likelihood": 1, "mean_module": 2}
    return sorted(out, key=lambda item: rank.get(item[0].split(".")[0], 3))
