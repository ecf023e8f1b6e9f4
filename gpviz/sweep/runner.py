"""Running a sweep: every (size, repeat) cell, from the cache where it is there, into one :class:`Sweep`."""

from __future__ import annotations

import math
import os
from dataclasses import replace
import warnings
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from botorch.models.model import Model
from gpytorch.mlls import MarginalLogLikelihood

from gpviz._factory import check_factory
from gpviz.errors import GpvizWarning, InputError
from gpviz.sweep.cache import sweep_cache
from gpviz.sweep.cells import (FIXED, PREDICTION_COLUMNS, SCORE_COLUMNS, SCORE_TAIL, STATUS_FAILED, STATUS_OK, Cell,
                               CellJob, cell_seed, check_order, choose_folds, subset_rows)
from gpviz.sweep.checks import check_data, check_folds, check_int, check_metrics, check_sizes
from gpviz.sweep.inputs import sweep_input
from gpviz.sweep.progress import SweepProgress
from gpviz.sweep.result import Sweep
from gpviz.sweep.scores import baseline_scores
from gpviz.sweep.workers import CellRunner, TaskExecutor, check_parallel
from gpviz.values.columns import I_CONFIG, I_MODEL, I_REPEAT, SIZE
from gpviz.words import plural

def cv_sweep(make_model: Callable[[torch.Tensor, torch.Tensor], Model] | object,  # or a model source (Ax Client)
             X: torch.Tensor | np.ndarray | pd.DataFrame | None = None,
             Y: torch.Tensor | np.ndarray | pd.DataFrame | pd.Series | None = None,
             sizes: int | Sequence[int] | None = None, repeats: int = 1, seed: int = 0,
             metrics: Mapping | None = None, cache_dir: str | os.PathLike[str] | None = None, progress: bool = True, *,
             fit_kwargs: Mapping | None = None, mll_cls: type[MarginalLogLikelihood] | None = None,
             observation_noise: bool = True, workers: int = 1, executor: TaskExecutor | None = None,
             threads: int | None = 1, order: str = "random", metric: str | None = None,
             refit: bool = True, folds: str = "auto") -> Sweep:
    """Leave-one-out cross-validation at several dataset sizes, repeated on random subsets.

    For each size ``n`` and repeat, draws ``n`` rows of the data (seeded), builds the
    ``n`` leave-one-out folds with ``gen_loo_cv_folds``, fits them as one batched model
    with ``fit_gpytorch_mll`` and predicts each held-out point, as BoTorch's
    ``batch_cross_validation`` does, with one difference: held-out points are predicted
    as noisy observations by default (``observation_noise=True``, where
    ``batch_cross_validation`` defaults to ``False``, the latent function), because the
    NLPD scores observations; means, MSE and MAE are the same either way, and
    ``observation_noise=False`` gives ``batch_cross_validation``'s default variances.
    Cells are independent: they run in this process,
    in ``workers`` processes or on an ``executor`` (a Dask cluster), with the same result.

    Args:
        make_model: ``(train_X, train_Y) -> model``: builds a batched BoTorch model from
            ``n x (n-1) x d`` inputs and ``n x (n-1) x m`` outputs (e.g. ``SingleTaskGP``);
            or an Ax ``Client`` / ``GenerationStrategy`` / ``TorchAdapter`` with a
            fitted surrogate, and no ``X``/``Y``: its completed trials (after Ax's
            input transforms, raw metric values) refit with the surrogate's own
            model specification, each fold standardizing its outputs as Ax does.
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
        order: ``"random"`` (seeded random subsets) or ``"trials"``: size n takes the
            first n rows, in order (an Ax experiment's trials in the order Ax ran
            them), so the sweep shows how the model moved as the experiment went on;
            ``repeats`` must then be 1.
        metric: For an Ax object, the metric to model (default: the surrogate's first).
        cache_dir: Folder keeping every finished cell; a rerun (or a run after Ctrl-C)
            reads finished cells instead of refitting them. Failed cells are retried.
            Sweeps with other data, factories or fit arguments keep their cells apart in
            the same folder; damaged cells are refit with a :class:`~gpviz.errors.CacheWarning`.
        progress: Show a progress bar over cells (with an ETA weighted by cell size).
        fit_kwargs: Keyword arguments of ``fit_gpytorch_mll`` (e.g. ``optimizer_kwargs``).
        mll_cls: Marginal log likelihood class (default: ``ExactMarginalLogLikelihood``,
            or the Ax model configuration's).
        observation_noise: Predict noisy observations (the default: the NLPD is about
            observations) instead of the latent function. Means do not depend on it.
            BoTorch's ``batch_cross_validation`` defaults to ``False``: pass ``False``
            for its predictive variances.
        workers: Worker processes on this machine (a ``concurrent.futures`` process pool);
            ``1`` fits in this process. The factory, data and fit arguments are sent with
            cloudpickle, so lambdas and closures work.
        executor: A ``concurrent.futures.Executor`` or a ``dask.distributed.Client`` to
            run the cells on instead (e.g. a Dask cluster); not with ``workers``.
        threads: torch threads while a cell fits, here or in a worker (default 1: small
            GP fits run faster on one thread per process, and a fixed count keeps results
            identical everywhere); ``None`` leaves torch's setting.
        refit: ``True`` (default): refit the model on every leave-one-out fold. ``False``:
            each cell fits one model on its ``n`` points (the same rows as the refit cell of
            the same seed, size and repeat, under the same cell seed) and takes its ``n``
            leave-one-out predictions in closed form at those hyperparameters, as BoTorch's
            ``efficient_loo_cv`` (in the data's units): about ``n`` times cheaper, and
            optimistic where refitting would move the hyperparameters (few points). The
            factory is then called on ``n x d`` / ``n x m`` data; one dot per repeat.
        folds: How refit folds are fitted: ``"batched"`` (one model of batch shape ``n``
            on ``n x (n-1) x d`` folds), ``"separate"`` (each fold its own model, the
            factory called on ``(n-1) x d`` / ``(n-1) x m``: any factory), or ``"auto"``
            (default): batched when the factory's model built on the first cell's folds
            carries their batch shape, separate otherwise. :attr:`Sweep.mode` says which
            was taken. Same scores and parameters either way, to numerical tolerance.

    Returns:
        A :class:`Sweep` with ``scores``, ``parameters``, ``predictions``, ``models()``,
        ``plot()`` and ``render()``.

    Raises:
        InputError: for a size above the number of rows or below 3, mismatched X/Y
            shapes, non-finite data, a bad ``repeats``/``seed``/``metrics``/``workers``/
            ``executor``/``order``/``refit``/``folds``, a factory that cannot be sent to workers,
            with ``folds="batched"`` a factory whose model does not carry the folds' batch shape
            (found at the first cell, before its fit: it would fail every cell), a
            ``cache_dir`` that cannot be written, or an Ax object with no fitted model.
    """
    given = sweep_input(make_model, X, Y, metric=metric, mll_cls=mll_cls)
    factory, mll_cls, feature_names = given.make_model, given.mll_cls, given.feature_names
    check_factory(factory)
    if sizes is None:
        raise InputError("cv_sweep needs sizes=[...], the dataset sizes to cross-validate at")
    X, Y = check_data(given.X, given.Y)
    sizes = check_sizes(sizes, X.shape[0])
    repeats = check_int("repeats", repeats, 1)
    order = check_order(order, repeats)
    seed = check_int("seed", seed, 0)
    metric_fns = check_metrics(metrics)
    mode, refit = check_folds(folds, refit)
    workers, executor, threads = check_parallel(workers, executor, threads)
    job = CellJob(factory, X, Y, mll_cls, dict(fit_kwargs) if fit_kwargs else None, bool(observation_noise),
                  torch.get_default_dtype(), threads, order)
    why = ("refit=False: one model per cell fitted on its n points; its n leave-one-out predictions taken in closed "
           "form at those hyperparameters (BoTorch's efficient_loo_cv), without refitting" if mode == FIXED else
           f"folds={folds!r}: each cell's folds fitted " + ("as one batched model" if mode == "batched" else
                                                           "one by one, each its own model"))
    if mode is None:  # folds="auto": decided once, on the first cell's folds, before any fit
        first_rows = subset_rows(X.shape[0], sizes[0], 0, seed, order)
        mode, why = choose_folds(job, first_rows, cell_seed(seed, sizes[0], 0))
    job = replace(job, mode=mode)
    if given.about:  # an Ax experiment: the page says which rows each size took
        why = why.rstrip(".") + (f". Rows: the trials of {given.about}; " + (
            "n = the first n trials in the order Ax ran them." if order == "trials" else
            "n = n of those trials drawn at random (seeded)."))
    cache = None
    if cache_dir is not None:
        if not isinstance(cache_dir, (str, os.PathLike)):
            raise InputError(f"cache_dir must be a path, got {type(cache_dir).__name__}")
        cache = sweep_cache(cache_dir, job)  # keyed on the model the factory builds, by content

    grid = [(i_config, size, i_repeat) for i_config, size in enumerate(sizes) for i_repeat in range(repeats)]
    cells: dict[tuple[int, int], Cell] = {}
    bar = SweepProgress(len(grid), progress, workers)

    def finish(cell: Cell) -> None:
        for category, message in cell.warnings:
            warnings.warn(f"{message} [cell n={cell.size}, repeat {cell.i_repeat}, in a worker]", category,
                          stacklevel=4)
        cell.warnings = []
        if cell.refusal:  # the factory's model cannot be fitted as a batch: every cell would fail alike
            raise InputError(cell.refusal)
        if cell.status == STATUS_OK and not cell.cached and cache is not None:
            try:
                cache.store(seed, cell)
            except OSError as exc:  # a full disk must not cost the fitted cells
                warnings.warn(f"gpviz.cv_sweep: could not cache the cell n={cell.size}, repeat {cell.i_repeat} "
                              f"({exc}); it is kept in memory and the sweep goes on", GpvizWarning, stacklevel=4)
        elif cell.status != STATUS_OK:
            warnings.warn(f"gpviz.cv_sweep: the cell n={cell.size}, repeat {cell.i_repeat} failed "
                          f"({cell.error}); the sweep goes on", GpvizWarning, stacklevel=4)
        cell.model = None
        cells[(cell.i_config, cell.i_repeat)] = cell
        bar.done(cell)

    try:
        todo = []
        for i_config, size, i_repeat in grid:
            cell = cache.load(seed, i_config, size, i_repeat) if cache is not None else None
            if cell is None:
                todo.append((i_config, size, i_repeat))
            else:
                finish(cell)
        if workers > 1 or executor is not None:
            # the biggest cells first: the last cells to finish are small ones, so workers idle least
            todo.sort(key=lambda c: (-c[1], c[2]))
        bar.start([size for _, size, _ in todo])
        CellRunner(job, seed, finish, workers, executor).run(todo)
    except KeyboardInterrupt as exc:
        if hasattr(exc, "add_note"):  # Python >= 3.11: say what was kept
            done = sum(c.status == STATUS_OK for c in cells.values())
            exc.add_note(f"gpviz.cv_sweep interrupted after {len(cells)} of {len(grid)} cells; "
                         + (f"{plural(done, 'finished cell')} kept in {str(cache_dir)!r}: rerun the same call to "
                            f"resume" if cache is not None else
                            f"{plural(done, 'finished cell')} lost: pass cache_dir= to keep finished cells"))
        raise
    finally:
        bar.close()
    subsets = {(i_config, i_repeat): subset_rows(X.shape[0], size, i_repeat, seed, order)
               for i_config, size, i_repeat in grid}
    return _assemble([cells[(c[0], c[2])] for c in grid], subsets, sizes, repeats, seed, metric_fns,
                     factory, X, Y, feature_names=feature_names, order=order, trial_indices=given.trial_indices,
                     mode=mode, mode_note=why, fit_kwargs=job.fit_kwargs, mll_cls=mll_cls, cache=cache,
                     data_units=given.data_units)


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


def _assemble(cells, subsets, sizes, repeats, seed, metric_fns, make_model, X, Y, **inputs) -> Sweep:
    """The :class:`Sweep` of the finished cells; ``inputs`` are its fields that describe the data and the fit
    (``feature_names``, ``order``, ``trial_indices``, ``mode``, ``mode_note``, ``fit_kwargs``, ``mll_cls``, ``cache``,
    ``data_units``)."""
    score_rows, param_frames, pred_frames = [], [], []
    states = {(c.i_config, c.i_repeat): c.state for c in cells if c.status == STATUS_OK and c.state is not None}
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
    return Sweep(scores=scores, parameters=parameters, predictions=predictions, subsets=subsets, sizes=sizes,
                 repeats=repeats, seed=seed, metrics=tuple(metric_fns), make_model=make_model, X=X, Y=Y,
                 states=states, reference_scores=baseline_scores(predictions, metric_fns), **inputs)

