"""Prior pull of a whole sweep: every fold of every repeat at every size, each size's repeats stacked into one model.

:func:`sweep_prior_pull` rebuilds each cell's fitted folds from the sweep's states,
stacks the repeats of a size into one batched model (up to :data:`STACK_BUDGET`
elements) and judges it with :func:`gpviz.priors.pull.prior_pull`, in this process or on
worker processes (:func:`gpviz.sweep.workers.map_tasks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from botorch.cross_validation import gen_loo_cv_folds
from gpytorch.mlls import ExactMarginalLogLikelihood

from gpviz.errors import InputError
from gpviz.models.families import model_batch_shape
from gpviz.priors.derivatives import likelihood_params
from gpviz.sweep.cells import BATCHED, cell_model
from gpviz.sweep.result import Sweep
from gpviz.sweep.workers import check_parallel, map_tasks
from gpviz.threads import default_dtype, torch_threads
from gpviz.tree.labels import expression_labels
from gpviz.values.columns import I_CONFIG, I_MODEL, I_REPEAT, SIZE
from gpviz.values.keys import param_info, parse_key, resolve
from gpviz.priors.pull import COLUMNS, prior_pull


def load_member_values(model, values) -> None:
    """Writes constrained values into a model's parameters, per batch member.

    Args:
        model: A GP model whose parameters are named by ``model_expr(model).keys``.
        values: key -> sequence of one value per batch member (flattened batch
            order, as in ``parameters(model)``), e.g. a wide parameter frame.

    Raises:
        InputError: if a key's values do not have one entry per batch member.
    """
    batch = torch.Size(model_batch_shape(model))
    n = int(batch.numel())
    with torch.no_grad():
        for key in values.keys() if hasattr(values, "keys") else values:
            if key == I_MODEL:
                continue
            vals = np.array(values[key], dtype=np.float64).reshape(-1)  # a copy: pandas arrays are read-only
            if vals.size != n:
                raise InputError(f"{key}: got {vals.size} values for a model with {n} batch members")
            path, name, index = parse_key(key)
            info = param_info(resolve(model, path), name, batch)
            v = torch.as_tensor(vals, dtype=info.raw.dtype, device=info.raw.device).reshape(batch)
            # a member-owned parameter takes its own member's value; a shared one the first member's
            lead = (slice(None),) * info.member_ndim + (0,) * (len(batch) - info.member_ndim)
            v = v[lead] if len(batch) else v
            c = info.constraint
            r = c.inverse_transform(v) if c is not None and getattr(c, "enforced", True) else v
            members = tuple(info.raw.shape[: info.member_ndim])
            info.raw.data.view(members + (-1,))[..., info.flat_index(index)] = r


#: A stacked model holds at most this many batch members x training points²: it bounds the memory of the
#: Hessian-vector products' graph (about 100 such tensors live at once, 8 bytes per element).
STACK_BUDGET = 1_000_000
SWEEP_COLUMNS = [I_CONFIG, SIZE, I_REPEAT] + COLUMNS


@dataclass(frozen=True)
class PullJob:
    """What judging a sweep's cells needs (sent once to each worker): its factory, data, subsets and fitted values."""

    make_model: Any  # a factory: a class BoTorch takes as model_cls, or a function (Sweep.make_model)
    X: torch.Tensor
    Y: torch.Tensor
    subsets: Mapping[tuple[int, int], np.ndarray]
    parameters: pd.DataFrame
    keys: tuple[str, ...]
    threads: int | None
    dtype: torch.dtype | None = None  # the caller's default dtype (factories build priors and constants in it)
    # (i_config, i_repeat) -> (torch seed, fitted state): a cell judged alone is rebuilt as Sweep.models rebuilds it
    cells: Mapping[tuple[int, int], tuple[int, Mapping | None]] = field(default_factory=dict)
    mode: str = BATCHED  # how the sweep fitted its cells (gpviz.sweep.cells.MODES): only batched folds stack


def _folds(job: PullJob, i_config: int, i_repeat: int):
    idx = torch.as_tensor(job.subsets[(i_config, i_repeat)], device=job.X.device)
    return gen_loo_cv_folds(job.X[idx], job.Y[idx])


def _cell_values(job: PullJob, i_config: int, i_repeat: int) -> dict[str, np.ndarray]:
    params = job.parameters
    cell = params[(params[I_CONFIG] == i_config) & (params[I_REPEAT] == i_repeat)].sort_values(I_MODEL)
    return {k: cell[k].to_numpy(dtype=np.float64) for k in job.keys}


def _cell_alone(job: PullJob, i_config: int, i_repeat: int):
    """One cell's fitted model on its own, rebuilt by :func:`gpviz.sweep.cells.cell_model` as ``Sweep.models`` does."""
    torch_seed, state = job.cells.get((i_config, i_repeat), (0, None))
    model = cell_model(job.make_model, job.X, job.Y, job.subsets[(i_config, i_repeat)], torch_seed, state, job.mode)
    if state is None and job.mode == BATCHED:  # no state kept (a sweep built by hand): its recorded parameter values
        load_member_values(model, _cell_values(job, i_config, i_repeat))
    return model


def _member_mll(model) -> torch.Tensor:
    """The MLL of every member (flattened), as BoTorch's loss closure evaluates it."""
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    mll.train()
    with torch.no_grad():
        inputs = tuple(model.train_inputs)
        return mll(model(*inputs), model.train_targets, *likelihood_params(model, inputs)).reshape(-1)


def _stacked_model(job: PullJob, i_config: int, repeats: list[int]):
    """One model whose batch holds the folds of several repeats of one size, with their fitted values.

    Every factory of a LOO sweep builds a model from ``n x (n-1) x d`` folds; given
    ``(R n) x (n-1) x d`` it builds the R cells' models side by side (members of a
    batch are independent), so one pass judges them all. Returns None when the
    factory does not build such a model (a fixed batch shape): the caller judges each
    cell on its own.
    """
    if job.mode != BATCHED:  # one full-data model per cell, or fold models that are not batch-aware
        return None
    folds = [_folds(job, i_config, r) for r in repeats]
    values = [_cell_values(job, i_config, r) for r in repeats]
    try:
        model = job.make_model(torch.cat([f.train_X for f in folds]), torch.cat([f.train_Y for f in folds]))
        load_member_values(model, {k: np.concatenate([v[k] for v in values]) for k in job.keys})
        per_cell = len(next(iter(values[0].values()))) if job.keys else 0
        # the check that stacking changed nothing: the first and last cell's MLL per member
        # equals that cell's own model's
        stacked = _member_mll(model)
        for j in {0, len(repeats) - 1}:
            alone = _cell_alone(job, i_config, repeats[j])
            mine = stacked[j * per_cell:(j + 1) * per_cell]
            if mine.shape != _member_mll(alone).shape or not torch.allclose(mine, _member_mll(alone), rtol=1e-9,
                                                                             atol=1e-12):
                return None
    except Exception:  # noqa: BLE001 - a factory that cannot stack: judged cell by cell instead
        return None
    return model, per_cell


def _judge_alone(model) -> pd.DataFrame:
    """:func:`prior_pull` of one cell's model, or of each fold model of a ``"separate"`` cell (``i_model = fold *
    members + member``, as the sweep's parameters number them)."""
    if not isinstance(model, list):
        return prior_pull(model)
    parts = [prior_pull(one) for one in model]
    members = int(parts[0][I_MODEL].max()) + 1
    for i, part in enumerate(parts):
        part[I_MODEL] = part[I_MODEL] + i * members
    out = pd.concat(parts, ignore_index=True)
    order = {k: j for j, k in enumerate(parts[0]["key"].unique())}  # by key (the expression's order), then fold
    return out.iloc[np.lexsort((out[I_MODEL].to_numpy(), out["key"].map(order).to_numpy()))].reset_index(drop=True)


def _judge_chunk(job: PullJob, i_config: int, size: int, chunk: list[int]) -> pd.DataFrame:
    """The prior_pull rows of some repeats of one size (stacked into one model where the factory allows), judged
    under the caller's default dtype and the job's threads (as :func:`gpviz.sweep.cells.fit_cell` fits)."""
    with torch_threads(job.threads), default_dtype(job.dtype):
        stacked = _stacked_model(job, i_config, chunk) if len(chunk) > 1 else None
        if stacked is not None:
            model, members = stacked
            pull = prior_pull(model)
            i_model = pull[I_MODEL].to_numpy()
            pull[I_MODEL] = (i_model % members).astype(np.int32)
            pull.insert(0, I_REPEAT, np.asarray(chunk, dtype=np.int32)[i_model // members])
            pull = pull.sort_values([I_REPEAT], kind="stable")
        else:
            parts = []
            for r in chunk:
                part = _judge_alone(_cell_alone(job, i_config, r))
                part.insert(0, I_REPEAT, np.int32(r))
                parts.append(part)
            pull = pd.concat(parts, ignore_index=True)
    pull.insert(0, SIZE, np.int32(size))
    pull.insert(0, I_CONFIG, np.int32(i_config))
    return pull


def sweep_prior_pull(sweep: Sweep, repeats: int | None = None, *, workers: int = 1, executor: Any = None,
                     threads: int | None = 1) -> pd.DataFrame:
    """:func:`prior_pull` verdicts for every fold of every repeat of a cross-validation sweep.

    Nothing is refitted: a cell judged on its own is rebuilt exactly as
    :meth:`gpviz.Sweep.models` rebuilds it (:func:`gpviz.sweep.cells.cell_model`: the
    factory on the cell's folds under the cell's seed, then its fitted state), so cells
    read from the cache are judged alike. The repeats of one size are stacked into one batched
    model (as many as :data:`STACK_BUDGET` allows) and judged in one
    :func:`prior_pull`; the result equals judging each fold on its own. A factory
    whose model cannot be stacked (checked: the stacked members' MLL must equal the
    cell's own model's) is judged cell by cell. The stacks are independent: they run
    in this process, in ``workers`` processes or on an ``executor``, with the same result.

    Args:
        sweep: A :class:`gpviz.sweep.result.Sweep` from :func:`gpviz.cv_sweep`.
        repeats: How many repeats per size to judge (default ``None``: all of them).
        workers: Worker processes on this machine (1: in this process).
        executor: A ``concurrent.futures.Executor`` or a ``dask.distributed.Client``
            (instead of ``workers``).
        threads: Torch and BLAS threads while judging, here or in a worker (default 1,
            as :func:`gpviz.cv_sweep`; ``None`` keeps the process's setting).

    Returns:
        The rows of :func:`prior_pull` (one per key and fold of each cell, ``i_model``
        the fold within its cell) with ``i_config``, ``size`` and ``i_repeat`` in front,
        ordered by size, repeat, key, fold. Failed cells are skipped.

    Raises:
        InputError: if ``sweep`` is not a gpviz sweep, ``repeats`` is not None or >= 0,
            or the parallel arguments are bad (see :func:`gpviz.cv_sweep`).
    """
    if not isinstance(sweep, Sweep):
        raise InputError(f"sweep_prior_pull expects a gpviz Sweep (from gpviz.cv_sweep), got {type(sweep).__name__}")
    if repeats is not None and (isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 0):
        raise InputError(f"sweep_prior_pull: repeats must be None (all) or an integer >= 0, got {repeats!r}")
    workers, executor, threads = check_parallel(workers, executor, threads)
    params = sweep.parameters
    keys = tuple(k for k in params.columns if k not in (I_CONFIG, SIZE, I_REPEAT, I_MODEL))
    n_rep = sweep.repeats if repeats is None else min(int(repeats), sweep.repeats)
    tasks = []
    for i_config, size in enumerate(sweep.sizes):
        done = set(int(r) for r in params.loc[params[I_CONFIG] == i_config, I_REPEAT])
        cells = [r for r in range(n_rep) if r in done and (i_config, r) in sweep.subsets]
        if not cells:
            continue
        per_cell = int(((params[I_CONFIG] == i_config) & (params[I_REPEAT] == cells[0])).sum())
        fit = max(1, STACK_BUDGET // max(1, per_cell * (int(size) - 1) ** 2))
        tasks += [(i_config, int(size), cells[i:i + fit]) for i in range(0, len(cells), fit)]
    if not tasks:
        return pd.DataFrame(columns=SWEEP_COLUMNS)
    judged = {(i_config, r) for i_config, _, chunk in tasks for r in chunk}
    states = {c: sweep.cell_state(*c)[1:] for c in judged}
    job = PullJob(sweep.make_model, sweep.X, sweep.Y, {c: sweep.subsets[c] for c in judged},
                  params[[(c, r) in judged for c, r in zip(params[I_CONFIG], params[I_REPEAT])]], keys, threads,
                  torch.get_default_dtype(), states, sweep.mode)
    frames = map_tasks(_judge_chunk, job, tasks, parts={"make_model": sweep.make_model},
                       caller="sweep_prior_pull", workers=workers, executor=executor)
    out = pd.concat(frames, ignore_index=True)
    if sweep.feature_names is not None:  # the label column by the sweep's feature names
        out["label"] = out["key"].map(expression_labels(sweep.expression())).fillna(out["key"])
    for c in (I_CONFIG, SIZE, I_REPEAT, I_MODEL):
        out[c] = out[c].astype(np.int32)
    return out
