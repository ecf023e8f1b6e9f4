"""Parameter snapshots: a model's constrained parameter values as a dataframe, keyed like its expression."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from gpytorch.kernels import Kernel

from gpviz.errors import InputError
from gpviz.models.expr import ModelExpr, model_expr
from gpviz.models.families import is_gp_model, unwrap_model
from gpviz.models.sources import source_of
from gpviz.tree.labels import expression_labels
from gpviz.tree.nodes import Role
from gpviz.values.bounds import at_bounds
from gpviz.values.columns import I_MODEL
from gpviz.values.keys import member_block, param_info, parse_key, resolve
from gpviz.values.prior_info import prior_block, priors_by_param
from gpviz.values.tensors import to_numpy
from gpviz.values.units import reading_units, to_units
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
    measured_in = Role.of_parameter(str(role)).measured_in
    return {"inputs": expr.input_space, "outputs": expr.output_space}.get(measured_in or "", "")


def _check_feature_names(entry: str, feature_names) -> None:
    """Refuses a bool where names belong: ``parameters(model, True)`` once meant ``long=True``."""
    if isinstance(feature_names, bool):
        raise InputError(f"{entry}: feature_names={feature_names!r} is a bool, expected a list of input names "
                         f"(or a DataFrame of inputs); the long frame is asked for by keyword: long=True")


def parameters(obj: object, feature_names: Sequence[str] | pd.DataFrame | None = None, *, long: bool = False,
               units: str | None = None) -> pd.DataFrame:
    """The constrained parameter values of a model or kernel.

    Values are read under ``torch.no_grad()``, detached, on the CPU; the model is
    left exactly as found.

    Args:
        obj: A BoTorch/GPyTorch model, kernel, MLL, or an expression from
            :func:`gpviz.model_expr` / :func:`gpviz.kernel_expr`.
        feature_names: Names of the input columns, passed to the expression builder
            (the second positional argument, as in every entry point).
        long: Return the tidy frame (one row per key and batch member with raw
            value, constraint, bounds, prior and units) instead of the wide one.
            Keyword only.
        units: ``"model"`` (the model's own space) or ``"original"`` (lengthscales
            × input range, noise/outputscale × σ², mean × σ + μ; see :mod:`gpviz.values.units`).
            Default ``None``: the expression's own units (model units, or original for an
            expression built with ``model_expr(..., units="original")``).

    Raises:
        InputError: ``feature_names`` is a bool (``long`` is keyword only), an unknown
            ``units``, or ``obj`` is not a model, kernel, MLL or expression.

    Returns:
        Wide: one row per batch member, ``i_model`` (int32) then one float64
        column per expression key, in the expression's key order; ``attrs["labels"]``
        maps each key to its readable label (``lengthscale[log_lr]``). Long: one row per
        key and member, the ``label`` column beside the stable ``key``.
    """
    _check_feature_names("gpviz.parameters", feature_names)
    expr, units = reading_units(expression_of(obj, feature_names), units)
    snap = _Snapshot(expr, long)
    return snap.long(units) if long else snap.wide(units)


def parameter_frames(obj, feature_names=None, units: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(parameters(obj), parameters(obj, long=True))`` from one reading of the model (a view needs both)."""
    _check_feature_names("gpviz.parameter_frames", feature_names)
    expr, units = reading_units(expression_of(obj, feature_names), units)
    snap = _Snapshot(expr, True)
    return snap.wide(units), snap.long(units)


class _Snapshot:
    """One reading of an expression's parameters: a ``members x keys`` block of values, and per key
    what the long frame says of it (raw values, constraint, bounds, prior).

    One group per parameter tensor: one constraint transform and one prior look-up for
    all its elements (a 1,000-D ARD lengthscale is one transform, not 1,000; its prior
    modes are computed in one tensor operation, each element its own).
    """

    def __init__(self, expr, long: bool):
        self.expr = expr
        root = expr.module
        batch = torch.Size(expr.batch_shape)
        n = self.n = int(batch.numel())
        keys = self.keys = list(expr.keys)
        groups: dict[tuple[str, str], list[int]] = {}
        parsed = [parse_key(k) for k in keys]
        for j, (path, name, _) in enumerate(parsed):
            groups.setdefault((path, name), []).append(j)
        priors = priors_by_param(root) if long else {}
        self.values = np.zeros((n, len(keys)), np.float64)
        # the long frame's blocks: empty (0 rows) for a reading of the wide frame only
        rows = n if long else 0
        self.raws = np.zeros((rows, len(keys)), np.float64)
        # each member's and element's own prior (vector and batched hyperparameters differ per element)
        self.modes = np.full((rows, len(keys)), np.nan)
        self.prior_texts = np.full((rows, len(keys)), "", dtype=object)
        self.has_long = long
        self.shared: list[dict] = [{}] * len(keys)  # per key: the facts its whole tensor shares
        for (path, name), cols in groups.items():
            info = param_info(resolve(root, path), name, batch)
            indices = [parsed[j][2] for j in cols]
            self.values[:, cols] = to_numpy(member_block(info, indices, batch).reshape(n, len(cols)))
            if not long:
                continue
            self.raws[:, cols] = to_numpy(member_block(info, indices, batch, raw=True).reshape(n, len(cols)))
            c = info.constraint
            lower, upper = info.bounds()
            prior = priors.get((path, name))
            shared = {
                "module": path, "parameter": name, "constraint": type(c).__name__ if c is not None else "none",
                "lower": lower, "upper": upper,
                "enforced": bool(getattr(c, "enforced", False)) if c is not None else False,
                "prior": type(prior).__name__ if prior is not None else "none",
            }
            if prior is not None:
                self.modes[:, cols], self.prior_texts[:, cols] = prior_block(prior, info, indices, batch)
            for j in cols:
                self.shared[j] = shared
        self.index = [",".join(str(i) for i in index) for _, _, index in parsed]
        self.labels = expression_labels(expr)

    def wide(self, units: str) -> pd.DataFrame:
        # one float block, not one array per key: a 1,000-key frame is built (and later copied) as one
        wide = pd.DataFrame(self.values, columns=self.keys, copy=True)
        wide.insert(0, I_MODEL, np.arange(self.n, dtype=np.int32))
        wide = to_units(self.expr, wide, units)[0]
        wide.attrs["labels"] = {k: self.labels.get(k, k) for k in self.keys}
        return wide

    def long(self, units: str) -> pd.DataFrame:
        if not self.has_long:
            raise ValueError("this reading was made for the wide frame only (_Snapshot(expr, long=False))")
        keys, n, expr = self.keys, self.n, self.expr

        def per_key(name, dtype=object):  # one value per key, repeated for its n member rows
            return np.repeat(np.array([f[name] for f in self.shared], dtype=dtype), n)

        roles = expr.roles
        role = [roles.get(k, f["parameter"]) for k, f in zip(keys, self.shared)]
        value = self.values.T.reshape(-1)  # key-major: every member of the first key, then the next
        lower, upper = per_key("lower", np.float64), per_key("upper", np.float64)
        df = pd.DataFrame({
            "key": np.repeat(np.array(keys, dtype=object), n),
            "label": np.repeat(np.array([self.labels.get(k, k) for k in keys], dtype=object), n),
            "module": per_key("module"), "parameter": per_key("parameter"),
            "index": np.repeat(np.array(self.index, dtype=object), n),
            I_MODEL: np.tile(np.arange(n, dtype=np.int32), len(keys)),
            "role": np.repeat(np.array(role, dtype=object), n),
            "raw": self.raws.T.reshape(-1), "value": value,
            "constraint": per_key("constraint"), "lower": lower, "upper": upper,
            "enforced": per_key("enforced", bool), "at_bound": at_bounds(value, lower, upper),
            "prior": per_key("prior"), "prior_params": self.prior_texts.T.reshape(-1),
            "prior_mode": self.modes.T.reshape(-1),
            "space": np.repeat(np.array([_space(r, expr) for r in role], dtype=object), n),
        })
        return to_units(expr, df, units)[0]
