"""Which held-out point moved each parameter: a leave-one-out fold's value against its cell's full-data fit.

A refit leave-one-out cell of ``n`` points fits ``n`` models of ``n - 1`` points. Fold
``i`` leaves out row ``rows[i]``; its fitted parameters, set against one model fitted on
all ``n`` points (the same factory under the same cell seed, a batch of one), say how far
that one point moved each parameter: the point's *influence* on it. The full-data fits
are the only new fits; the folds' values are the sweep's own.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from botorch.fit import fit_gpytorch_mll

from gpviz.seeding import seeded
from gpviz.values.columns import I_CONFIG, I_MODEL, I_REPEAT, SIZE
from gpviz.values.parameters import parameters
from gpviz.values.tensors import to_numpy

#: The influence frame's columns before the key, the values and the point's features.
INFLUENCE_COLUMNS = [I_CONFIG, SIZE, I_REPEAT, I_MODEL, "index", "key", "fold_value", "full_value", "shift",
                     "rel_shift"]


def full_fit(make_model, X: torch.Tensor, Y: torch.Tensor, rows: np.ndarray, torch_seed: int, mll_cls,
             fit_kwargs: Mapping | None = None, batched: bool = True):
    """One model of the cell's ``n`` points, built and fitted as the cell's folds were.

    A factory of batched folds (``n x (n-1) x d``) is handed the cell's points as a
    batch of one (``1 x n x d``); one whose folds were fitted one by one
    (``folds="separate"``) gets them as they are (``n x d``). Built under the cell's seed
    (a factory or a retry that draws values draws the same), fitted by
    ``fit_gpytorch_mll`` with the sweep's arguments.

    Args:
        make_model: The sweep's factory.
        X: ``N x d`` data.
        Y: ``N x m`` data.
        rows: The cell's ``n`` rows.
        torch_seed: The cell's seed (:func:`gpviz.sweep.cells.cell_seed`).
        mll_cls: Marginal log likelihood class, ``mll_cls(likelihood, model)``.
        fit_kwargs: Keyword arguments of ``fit_gpytorch_mll``.
        batched: Whether the sweep's folds were one batched model.

    Returns:
        The fitted model (batch shape ``1`` when ``batched``), in eval mode.
    """
    idx = torch.as_tensor(rows, device=X.device)
    x, y = (X[idx].unsqueeze(0), Y[idx].unsqueeze(0)) if batched else (X[idx], Y[idx])
    with seeded(torch_seed):
        model = make_model(x, y)
        mll = mll_cls(model.likelihood, model)
        mll.to(X)
        fit_gpytorch_mll(mll, **dict(fit_kwargs or {}))
    model.eval()
    return model


def cell_influence(fold_params: pd.DataFrame, full_params: pd.DataFrame, rows: np.ndarray, X: torch.Tensor,
                   feature_names: Sequence[str]) -> pd.DataFrame:
    """One cell's influence rows: every fold and key, the fold's value against the full-data fit's.

    Args:
        fold_params: The cell's rows of ``Sweep.parameters`` (``i_model`` and key columns);
            a multi-output model's member ``i_model = fold * m + output``.
        full_params: :func:`gpviz.values.parameters.parameters` of the full-data model
            (``m`` members: one per output, or one).
        rows: The cell's ``n`` rows (fold ``i`` held out ``rows[i]``).
        X: ``N x d`` data.
        feature_names: The ``d`` names the point's row is given under.

    Returns:
        One row per (fold member, key): :data:`INFLUENCE_COLUMNS` then one column per feature.
        ``rel_shift`` is ``shift / |full_value|`` (NaN where the full value is 0).
    """
    keys = [c for c in full_params.columns if c != I_MODEL and c in fold_params.columns]
    m = len(full_params)
    members = fold_params[I_MODEL].to_numpy(np.int64)
    full = full_params.sort_values(I_MODEL)[keys].to_numpy(np.float64)[members % m]  # members x keys
    fold = fold_params[keys].to_numpy(np.float64)
    point = rows[members // m]
    k = len(keys)
    full_flat, fold_flat = full.reshape(-1), fold.reshape(-1)
    shift = fold_flat - full_flat
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(full_flat != 0, shift / np.abs(full_flat), np.nan)
    out = pd.DataFrame({
        I_MODEL: np.repeat(members, k).astype(np.int32),
        "index": np.repeat(point, k).astype(np.int64),
        "key": np.tile(np.array(keys, dtype=object), len(members)),
        "fold_value": fold_flat, "full_value": full_flat, "shift": shift, "rel_shift": rel,
    })
    x = to_numpy(X[torch.as_tensor(np.repeat(point, k), device=X.device)].to(torch.float64))
    for j, name in enumerate(feature_names):
        out[name] = x[:, j]
    return out


def influence_frame(parts: list[tuple[int, int, int, pd.DataFrame]], feature_names: Sequence[str]) -> pd.DataFrame:
    """The cells' influence rows in one frame, led by ``i_config``, ``size``, ``i_repeat``.

    Args:
        parts: ``(i_config, size, i_repeat, rows of cell_influence)`` per cell.
        feature_names: The feature columns (kept on an empty frame).
    """
    if not parts:
        return pd.DataFrame(columns=INFLUENCE_COLUMNS + list(feature_names))
    frames = [p.assign(**{I_CONFIG: np.int32(c), SIZE: np.int32(s), I_REPEAT: np.int32(r)})
              for c, s, r, p in parts]
    return pd.concat(frames, ignore_index=True)[INFLUENCE_COLUMNS + list(feature_names)]


def top_influence(frame: pd.DataFrame, per_key: int = 3) -> pd.DataFrame:
    """The most influential points per key: the ``per_key`` rows of largest ``|rel_shift|`` (``|shift|`` on ties).

    Args:
        frame: From :meth:`gpviz.Sweep.influence`.
        per_key: Rows kept per key.

    Returns:
        Those rows, keys in their first-seen order, largest first within a key.
    """
    if frame.empty:
        return frame
    ranked = frame.assign(_rank=frame["rel_shift"].abs().fillna(-1.0), _abs=frame["shift"].abs())
    ranked = ranked.sort_values(["_rank", "_abs"], ascending=False, kind="stable")
    order = {k: i for i, k in enumerate(pd.unique(frame["key"]))}
    top = ranked.groupby("key", sort=False).head(per_key)
    top = top.assign(_key=top["key"].map(order)).sort_values("_key", kind="stable")
    return top.drop(columns=["_rank", "_abs", "_key"]).reset_index(drop=True)


def influence_of(make_model, X, Y, cells: Mapping[tuple[int, int], tuple[int, np.ndarray, int]],
                 fold_params: pd.DataFrame, feature_names: Sequence[str], mll_cls, fit_kwargs: Mapping | None,
                 full_params: dict, batched: bool = True) -> pd.DataFrame:
    """Every cell's influence rows; the full-data fits are read from (and added to) ``full_params``.

    Args:
        make_model, X, Y: The sweep's factory and data.
        cells: ``(i_config, i_repeat) -> (size, rows, torch seed)`` of each finished cell.
        fold_params: ``Sweep.parameters``.
        feature_names: Names of the ``d`` columns of ``X``.
        mll_cls: Marginal log likelihood class.
        fit_kwargs: ``fit_gpytorch_mll`` arguments.
        full_params: ``(i_config, i_repeat) -> parameters of its full-data fit``: the
            sweep's cache, filled here with the fits it lacks.
        batched: Whether the folds were one batched model (see :func:`full_fit`).
    """
    parts = []
    for (i_config, i_repeat), (size, rows, torch_seed) in sorted(cells.items()):
        mine = fold_params[(fold_params[I_CONFIG] == i_config) & (fold_params[I_REPEAT] == i_repeat)]
        if mine.empty:  # the fold values could not be read: nothing to set against
            continue
        if (i_config, i_repeat) not in full_params:
            model = full_fit(make_model, X, Y, rows, torch_seed, mll_cls, fit_kwargs, batched)
            full_params[(i_config, i_repeat)] = parameters(model)
        parts.append((i_config, size, i_repeat,
                      cell_influence(mine, full_params[(i_config, i_repeat)], rows, X, feature_names)))
    return influence_frame(parts, feature_names)


def heldout_points(parameters: pd.DataFrame, subsets: Mapping[tuple[int, int], np.ndarray], X: torch.Tensor,
                   feature_names: Sequence[str], one_fold_per_repeat: bool = False) -> pd.DataFrame:
    """The point each fold of a refit sweep held out, one row per dot of its page, in the page's row order.

    Fold ``i`` of cell ``(i_config, i_repeat)`` left out row ``subsets[cell][i]``; a model of
    ``m`` outputs has ``m`` members per fold (``i_model = fold * m + output``).

    Args:
        parameters: ``Sweep.parameters`` (``i_config``, ``i_repeat``, ``i_model``).
        subsets: ``Sweep.subsets``: the rows of each cell.
        X: ``N x d`` data.
        feature_names: The ``d`` names the point's row is given under.
        one_fold_per_repeat: The page draws each repeat's first fold only.

    Returns:
        ``i_config``, ``i_repeat``, ``i_model``, ``index`` (the held-out row of ``X``) and one
        column per feature, sorted as ``Sweep.frame`` sorts its rows (config, repeat, member).
    """
    p = parameters[[I_CONFIG, I_REPEAT, I_MODEL]]
    if one_fold_per_repeat:
        p = p[p[I_MODEL] == 0]
    p = p.sort_values([I_CONFIG, I_REPEAT, I_MODEL], kind="stable")
    per_cell = parameters.groupby([I_CONFIG, I_REPEAT]).size()  # members of each cell: folds x outputs
    index = np.empty(len(p), dtype=np.int64)
    for j, (c, r, member) in enumerate(zip(p[I_CONFIG], p[I_REPEAT], p[I_MODEL])):
        rows = subsets[(int(c), int(r))]
        index[j] = rows[int(member) // (int(per_cell[(c, r)]) // len(rows))]
    out = pd.DataFrame({I_CONFIG: p[I_CONFIG].to_numpy(np.int32), I_REPEAT: p[I_REPEAT].to_numpy(np.int32),
                        I_MODEL: p[I_MODEL].to_numpy(np.int32), "index": index})
    x = to_numpy(X[torch.as_tensor(index, device=X.device)].to(torch.float64)) if len(index) else \
        np.zeros((0, len(feature_names)))
    for j, name in enumerate(feature_names):
        out[name] = x[:, j]
    return out
