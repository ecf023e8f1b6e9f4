"""Which inputs matter: each lengthscale as a fraction of its input's training range, inputs ranked by it.

A stationary kernel's correlation along an input falls off over its lengthscale; an input whose lengthscale
is many times its training range hardly changes the prediction (the function is near constant along it),
one whose lengthscale is a small fraction of it does. The fraction is free of units (a lengthscale and a range
of the same column, both in the model's input space, or both in original units through any affine transform),
so inputs measured in decades, batch sizes and one-hot columns rank on one scale.

A choice parameter Ax encodes as one-hot columns (``<name>_OH_PARAM_<i>``) is read as one input: its most
relevant column (the smallest fraction) stands for it. A lengthscale shared by several columns counts for each
with that column's own range; an input divided by several lengthscales (additive kernels) takes its smallest
fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from gpviz.models.families import sub_models
from gpviz.tree.nodes import Compare, iter_nodes
from gpviz.values.keys import member_values, param_info, parse_key, resolve
from gpviz.values.tensors import to_numpy
from gpviz.values.units import length_keys
from gpviz.walk.expr import Expr

#: One-hot columns Ax adds are named ``<parameter>_OH_PARAM_<i>`` (see :mod:`gpviz.ax`).
ONE_HOT = "_OH_PARAM_"
COLUMNS = ["rank", "input", "columns", "fraction", "lengthscale", "input_range", "keys"]


@dataclass(frozen=True)
class Relevance:
    """One input's relevance.

    Attributes:
        input: Its name (a choice parameter's name for its one-hot columns).
        columns: The model's input columns it covers.
        fraction: Lengthscale over training range (median over batch members; the smallest over its columns).
        lengthscale: The lengthscale of that column (model units, median over members).
        input_range: That column's training range in the model's input space (median over members).
        keys: The parameter keys that divide it.
    """

    input: str
    columns: tuple[int, ...]
    fraction: float
    lengthscale: float
    input_range: float
    keys: tuple[str, ...]


def _model_inputs(model) -> np.ndarray:
    """The training inputs as the kernel sees them (after the input transform): ``members x n x d`` (float64)."""
    was = model.training
    try:
        model.eval()  # BoTorch swaps in the transformed training inputs on eval()
        x = model.train_inputs[0]
        return to_numpy(x.detach().to(torch.float64).reshape(-1, *x.shape[-2:]))
    finally:
        model.train(was)


def input_relevance(expr: Expr) -> list[Relevance]:
    """Every input a lengthscale divides, most relevant first (smallest lengthscale / training range).

    Args:
        expr: A :class:`~gpviz.models.expr.ModelExpr` of a model with training inputs (one model, not a list).

    Returns:
        One :class:`Relevance` per input (one-hot columns of a choice parameter together), sorted; empty when the
        model has no training inputs or no lengthscale over single input columns.
    """
    model = expr.module
    if len(sub_models(model)) != 1 or not getattr(model, "train_inputs", None):
        return []
    x = _model_inputs(model)
    span = x.max(axis=-2) - x.min(axis=-2)  # members x d
    names = {n.dim: n.name for n in iter_nodes(expr.covariance_tree()) if isinstance(n, Compare) and n.dim is not None}
    batch = torch.Size(expr.batch_shape)
    per_column: dict[int, list[tuple[float, float, float, str]]] = {}
    for key, dims in length_keys(expr.covariance_tree()).items():
        path, name, index = parse_key(key)
        values = to_numpy(member_values(param_info(resolve(model, path), name, batch), index, batch)).reshape(-1)
        for d in dims:
            if d is None or d >= span.shape[-1]:
                continue
            rng = np.broadcast_to(span[:, d], values.shape) if span.shape[0] in (1, values.size) else span[:1, d]
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = values / np.where(rng > 0, rng, np.nan)
            per_column.setdefault(d, []).append((float(np.nanmedian(frac)) if np.isfinite(frac).any() else np.inf,
                                                 float(np.median(values)), float(np.median(rng)), key))
    groups: dict[str, list[int]] = {}
    for d in sorted(per_column):
        label = names.get(d, f"x{d}")
        groups.setdefault(label.split(ONE_HOT)[0] if ONE_HOT in label else label, []).append(d)
    out = []
    for label, cols in groups.items():
        best = min((entry for d in cols for entry in per_column[d]), key=lambda e: e[0])
        keys = tuple(dict.fromkeys(e[3] for d in cols for e in per_column[d]))
        out.append(Relevance(label, tuple(cols), best[0], best[1], best[2], keys))
    return sorted(out, key=lambda r: (r.fraction, r.input))


def relevance_frame(expr: Expr) -> pd.DataFrame:
    """:func:`input_relevance` as a DataFrame (``rank`` from 1, the columns of :data:`COLUMNS`)."""
    rows = [{"rank": i + 1, "input": r.input, "columns": list(r.columns), "fraction": r.fraction,
             "lengthscale": r.lengthscale, "input_range": r.input_range, "keys": list(r.keys)}
            for i, r in enumerate(input_relevance(expr))]
    return pd.DataFrame(rows, columns=COLUMNS)
