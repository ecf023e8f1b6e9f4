"""Running a sweep: every (size, repeat) cell, from the cache where it is there, into one :class:`Sweep`."""

from __future__ import annotations

import math
import os
import warnings
from typing import Mapping

import numpy as np
import pandas as pd
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood

from gpviz._factory import check_factory
from gpviz.errors import GpvizWarning, InputError
from gpviz.sweep.cache import CACHE_FORMAT, CellCache, _fingerprint, factory_fingerprint
from gpviz.sweep.cells import (PREDICTION_COLUMNS, SCORE_COLUMNS, SCORE_TAIL, STATUS_FAILED,
                               STATUS_OK, Cell, _check_data, _check_int, _check_metrics, _check_sizes, cell_seed,
                               run_cell, subset_indices)
from gpviz.sweep.result import Sweep
from gpviz.sweep.scores import baseline_scores
from gpviz.values.columns import I_CONFIG, I_MODEL, I_REPEAT, SIZE

def cv_sweep(make_model, X, Y, sizes, repeats: int, seed: int = 0, metrics: Mapping | None = None,
             cache_dir=None, progress: bool = True, *, fit_kwargs: Mapping | None = None,
             mll_cls=ExactMarginalLogLikelihood, observation_noise: bool = True) -> Sweep:
    """Leave-one-out cross-validation at several dataset sizes, repeated on random subsets.

    For each size ``n`` and repeat, draws ``n`` rows of the data (seeded), builds the
    ``n`` leave-one-out folds with ``gen_loo_cv_folds``, fits them as one batched model
    with ``fit_gpytorch_mll`` and predicts each held-out point, exactly as BoTorch's
    ``batch_cross_validation`` does.

    Args:
        make_model: ``(train_X, train_Y) -> model``: builds a batched BoTorch model from
            ``n x (n-1) x d`` inputs and ``n x (n-1) x m`` outputs (e.g. ``SingleTaskGP``).
        X: ``N x d`` inputs (tensor, array or DataFrame; a DataFrame's columns name the
            features in :meth:`Sweep.render`).
        Y: ``N`` or ``N x m`` outputs.
        sizes: Dataset sizes (each 3..N); run and shown in ascending order.
        repeats: Random subsets per size (>= 1).
        seed: Seed of the subset draws; a cell's subset depends only on
            ``(seed, size, repeat)``.
        metrics: Extra or replacing metrics, ``name -> f(y_true, pred_mean, pred_var) ->
            float`` on 1-D float64 numpy arrays (one entry per held-out point and output).
            ``mse``, ``mae`` and ``nlpd`` are always computed unless replaced.
        cache_dir: Folder keeping every finished cell; a rerun (or a run after Ctrl-C)
            reads finished cells instead of refitting them. Failed cells are retried.
        progress: Show a tqdm progress bar over cells.
        fit_kwargs: Keyword arguments of ``fit_gpytorch_mll`` (e.g. ``optimizer_kwargs``).
        mll_cls: Marginal log likelihood class.
        observation_noise: Predict noisy observations (the default: the NLPD is about
            observations) instead of the latent function. Means do not depend on it.

    Returns:
        A :class:`Sweep` with ``scores``, ``parameters``, ``predictions``, ``plot()`` and
        ``render()``.

    Raises:
        InputError: for a size above the number of rows or below 3, mismatched X/Y
            shapes, non-finite data, a bad ``repeats``/``seed``/``metrics``, or a
            ``cache_dir`` holding another sweep.
    """
    check_factory(make_model)
    feature_names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    X, Y = _check_data(X, Y)
    sizes = _check_sizes(sizes, X.shape[0])
    repeats = _check_int("repeats", repeats, 1)
    seed = _check_int("seed", seed, 0)
    metric_fns = _check_metrics(metrics)
    cache = None
    if cache_dir is not None:
        if not isinstance(cache_dir, (str, os.PathLike)):
            raise InputError(f"cache_dir must be a path, got {type(cache_dir).__name__}")
        cache = CellCache(cache_dir, {
            "format": CACHE_FORMAT, "data": _fingerprint(X, Y),
            "make_model": getattr(make_model, "__qualname__", type(make_model).__name__),
            "make_model_fingerprint": factory_fingerprint(make_model),
            "fit_kwargs": repr(sorted((fit_kwargs or {}).items())),
            "mll_cls": getattr(mll_cls, "__qualname__", str(mll_cls)),
            "observation_noise": bool(observation_noise)})

    try:  # tqdm.auto's notebook bar needs ipywidgets and warns without it
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm

    cells: list[Cell] = []
    subsets: dict[tuple[int, int], np.ndarray] = {}
    model = None
    bar = tqdm(total=len(sizes) * repeats, desc="cv_sweep", unit="cell", disable=not progress, leave=True)
    try:
        for i_config, size in enumerate(sizes):
            for i_repeat in range(repeats):
                rows = subset_indices(X.shape[0], size, i_repeat, seed)
                subsets[(i_config, i_repeat)] = rows
                bar.set_postfix_str(f"n={size} repeat {i_repeat + 1}/{repeats}", refresh=False)
                cell = cache.load(seed, i_config, size, i_repeat) if cache is not None else None
                if cell is None:
                    # BoTorch's retries redraw parameters from their priors with torch's global
                    # generator: seed it per cell (and restore the user's state afterwards) so a
                    # cell fits the same whether it runs fresh, after others, or after a resume.
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(cell_seed(seed, size, i_repeat))
                        cell = run_cell(make_model, X, Y, rows, i_config=i_config, i_repeat=i_repeat,
                                        mll_cls=mll_cls, fit_kwargs=fit_kwargs,
                                        observation_noise=observation_noise, keep_model=True)
                    if cell.status == STATUS_OK:
                        model, cell.model = cell.model, None  # keep one model alive, not all
                        if cache is not None:
                            try:
                                cache.store(seed, cell)
                            except OSError as exc:  # a full disk must not cost the fitted cells
                                warnings.warn(f"gpviz.cv_sweep: could not cache the cell n={size}, repeat "
                                              f"{i_repeat} ({exc}); it is kept in memory and the sweep goes on",
                                              GpvizWarning, stacklevel=2)
                    else:
                        warnings.warn(f"gpviz.cv_sweep: the cell n={size}, repeat {i_repeat} failed "
                                      f"({cell.error}); the sweep goes on", GpvizWarning, stacklevel=2)
                cells.append(cell)
                bar.update(1)
    except KeyboardInterrupt as exc:
        if hasattr(exc, "add_note"):  # Python >= 3.11: say what was kept
            done = sum(c.status == STATUS_OK for c in cells)
            exc.add_note(f"gpviz.cv_sweep interrupted after {len(cells)} of {len(sizes) * repeats} cells; "
                         + (f"the finished cells are kept in {str(cache_dir)!r}: rerun the same call to resume"
                            if cache is not None else
                            f"{done} finished cell(s) are lost: pass cache_dir= to keep finished cells"))
        raise
    finally:
        bar.close()
    sweep = _assemble(cells, subsets, sizes, repeats, seed, metric_fns, make_model, X, Y, model)
    sweep.feature_names = feature_names
    return sweep


def _stack(frames: list[tuple[Cell, pd.DataFrame]], first: list[str]) -> pd.DataFrame:
    """All cells' rows in one frame led by int32 ``i_config``, ``size``, ``i_repeat`` (one concat)."""
    head = [I_CONFIG, SIZE, I_REPEAT]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=np.int32 if c in head or c.startswith("i_") else np.float64)
                             for c in head + first})
    body = pd.concat([f for _, f in frames], ignore_index=True)
    lengths = [len(f) for _, f in frames]
    out = {c: np.repeat(np.array([getattr(cell, c) for cell, _ in frames], dtype=np.int32), lengths) for c in head}
    rest = first + [c for c in body.columns if c not in first]
    out.update({c: body[c].to_numpy() for c in rest})
    return pd.DataFrame(out)


def _assemble(cells, subsets, sizes, repeats, seed, metric_fns, make_model, X, Y, model) -> Sweep:
    score_rows, param_frames, pred_frames = [], [], []
    for c in cells:
        row = {I_CONFIG: c.i_config, SIZE: c.size, I_REPEAT: c.i_repeat}
        status, error = c.status, c.error
        for name, fn in metric_fns.items():
            value = math.nan
            if status == STATUS_OK:
                p = c.predictions
                try:
                    value = float(fn(p["y_true"].to_numpy(), p["pred_mean"].to_numpy(), p["pred_var"].to_numpy()))
                except Exception as exc:  # a user's metric bug marks the cell, it does not end the sweep
                    status, error = STATUS_FAILED, f"metric {name!r} raised {type(exc).__name__}: {exc}"
            row[name] = value
        row.update(fit_seconds=c.fit_seconds, evaluations=c.evaluations, status=status, error=error,
                   cached=c.cached)
        score_rows.append(row)
        if c.predictions is not None:
            pred_frames.append((c, c.predictions))
        if c.parameters is not None and status == STATUS_OK:
            param_frames.append((c, c.parameters))
    scores = pd.DataFrame(score_rows, columns=SCORE_COLUMNS + list(metric_fns) + SCORE_TAIL)
    for col in (I_CONFIG, SIZE, I_REPEAT):
        scores[col] = scores[col].astype(np.int32)
    scores["evaluations"] = scores["evaluations"].astype(np.int64)
    scores["cached"] = scores["cached"].astype(bool)
    parameters = _stack(param_frames, [I_MODEL])
    predictions = _stack(pred_frames, PREDICTION_COLUMNS[3:])
    if I_MODEL in parameters.columns:
        parameters[I_MODEL] = parameters[I_MODEL].astype(np.int32)
    sweep = Sweep(scores=scores, parameters=parameters, predictions=predictions, subsets=subsets, sizes=sizes,
                  repeats=repeats, seed=seed, metrics=tuple(metric_fns), make_model=make_model, X=X, Y=Y,
                  model=model)
    sweep.reference_scores = baseline_scores(predictions, metric_fns)
    return sweep

