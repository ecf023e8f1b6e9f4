"""One cell of a cross-validation sweep: a subset of one size and its leave-one-out predictions.

A cell is fitted in one of three ways (:data:`MODES`): its folds as one batched model
(``"batched"``), each fold as its own model (``"separate"``), or one model on all its
points whose leave-one-out predictions are taken in closed form at those hyperparameters
(``"fixed"``, ``cv_sweep(refit=False)``, as BoTorch's ``efficient_loo_cv``).
A cell's result depends only on ``(seed, size, repeat)`` and the inputs: its subset
comes from :func:`subset_rows` (a seeded random draw, :func:`subset_indices`, or the
first n rows for ``order="trials"``), its torch seed from :func:`cell_seed`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from botorch.cross_validation import efficient_loo_cv, gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models.gpytorch import BatchedMultiOutputGPyTorchModel
from botorch.optim.fit import fit_gpytorch_mll_scipy
from gpytorch.mlls import ExactMarginalLogLikelihood

from gpviz.errors import GpvizWarning, InputError
from gpviz.seeding import seeded
from gpviz.sweep.identity import identity_build
from gpviz.threads import torch_threads
from gpviz.values.columns import I_CONFIG, I_MODEL, I_REPEAT, SIZE
from gpviz.values.parameters import parameters
from gpviz.values.tensors import to_numpy

STATUS_OK, STATUS_FAILED = "ok", "failed"

def mse(y_true: np.ndarray, pred_mean: np.ndarray, pred_var: np.ndarray) -> float:
    """Mean squared error of the held-out predictions."""
    return float(np.mean((y_true - pred_mean) ** 2))


def mae(y_true: np.ndarray, pred_mean: np.ndarray, pred_var: np.ndarray) -> float:
    """Mean absolute error of the held-out predictions."""
    return float(np.mean(np.abs(y_true - pred_mean)))


def nlpd(y_true: np.ndarray, pred_mean: np.ndarray, pred_var: np.ndarray) -> float:
    """Mean negative log predictive density of the held-out points under Gaussian predictions."""
    var = np.maximum(pred_var, np.finfo(float).tiny)
    return float(np.mean(0.5 * np.log(2 * math.pi * var) + (y_true - pred_mean) ** 2 / (2 * var)))


#: Metrics every sweep computes; ``cv_sweep(metrics=...)`` adds to (or overrides) these.
DEFAULT_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "mse": mse, "mae": mae, "nlpd": nlpd}

SCORE_COLUMNS = [I_CONFIG, SIZE, I_REPEAT]  # then metrics, then the bookkeeping below
SCORE_TAIL = ["fit_seconds", "evaluations", "status", "error", "cached"]
PREDICTION_COLUMNS = [I_CONFIG, SIZE, I_REPEAT, I_MODEL, "index", "i_output", "y_true", "pred_mean", "pred_var"]


def subset_indices(num_points: int, size: int, i_repeat: int, seed: int) -> np.ndarray:
    """The rows of the data used by one (size, repeat) cell: sorted, without replacement.

    The draw depends only on ``(seed, size, i_repeat)``, not on the other sizes or the
    order cells run in, so adding sizes or repeats to a cached sweep reuses its cells.

    Returns:
        ``size`` sorted int64 row indices into the ``num_points`` rows.
    """
    rng = np.random.default_rng([int(seed), int(size), int(i_repeat)])
    return np.sort(rng.choice(num_points, size=size, replace=False)).astype(np.int64)


#: How ``cv_sweep`` picks each cell's rows: seeded random subsets, or the first n rows (trial order).
ORDERS = ("random", "trials")


def check_order(order: str, repeats: int) -> str:
    """Validates ``order``.

    Raises:
        InputError: an unknown order, or ``order="trials"`` with more than one repeat
            (every repeat would be the same subset).
    """
    if order not in ORDERS:
        raise InputError(f"unknown order: {order!r} (must be one of {list(ORDERS)})")
    if order == "trials" and repeats != 1:
        raise InputError(f"order='trials' takes the first n rows, the same subset for every repeat: use repeats=1, "
                         f"got repeats={repeats}")
    return order


def subset_rows(num_points: int, size: int, i_repeat: int, seed: int, order: str = "random") -> np.ndarray:
    """The rows of one cell: :func:`subset_indices` for ``order="random"``, the first ``size`` rows for "trials".

    With ``order="trials"`` the data's row order is time (an Ax experiment's completed
    trials in the order Ax ran them): size n is the model as it could be fit after
    the first n trials.

    Returns:
        ``size`` sorted int64 row indices.
    """
    if order == "trials":
        return np.arange(size, dtype=np.int64)
    return subset_indices(num_points, size, i_repeat, seed)


def cell_seed(seed: int, size: int, i_repeat: int) -> int:
    """The torch seed one (size, repeat) cell fits under; like its rows, it depends on nothing else."""
    return int(np.random.default_rng([int(seed), int(size), int(i_repeat), 1]).integers(2**62))


#: How a cell is fitted: its folds as one batch, each fold alone, or one full-data model (folds in closed form).
BATCHED, SEPARATE, FIXED = "batched", "separate", "fixed"
MODES = (BATCHED, SEPARATE, FIXED)
#: ``cv_sweep(folds=...)``: ``"auto"`` takes the batched path when the factory's model carries the folds' batch shape.
FOLDS = ("auto", BATCHED, SEPARATE)


def fold_seed(torch_seed: int, i_fold: int) -> int:
    """The torch seed fold ``i_fold`` of a ``"separate"`` cell is built and fitted under (from the cell's seed)."""
    return int(np.random.default_rng([int(torch_seed), int(i_fold), 2]).integers(2**62))


def build_cell(make_model: Callable[..., Any], X: torch.Tensor, Y: torch.Tensor, rows: np.ndarray, torch_seed: int,
               mode: str = BATCHED):
    """The unfitted model(s) of one cell, as its fit builds them.

    Args:
        make_model: The sweep's factory ``(train_X, train_Y) -> model``.
        X: ``N x d`` data.
        Y: ``N x m`` data.
        rows: The cell's ``n`` rows (:func:`subset_rows`).
        torch_seed: The cell's seed (:func:`cell_seed`).
        mode: ``"batched"``: the factory on the ``n x (n-1) x d`` folds under the cell's seed;
            ``"separate"``: on each ``(n-1) x d`` fold under its :func:`fold_seed`;
            ``"fixed"``: on the ``n x d`` rows under the cell's seed.

    Returns:
        One model, or for ``"separate"`` a list of ``n`` models (fold ``i`` left out ``rows[i]``).
    """
    idx = torch.as_tensor(rows, device=X.device)
    if mode == FIXED:
        with seeded(torch_seed):
            return make_model(X[idx], Y[idx])
    folds = gen_loo_cv_folds(X[idx], Y[idx])
    if mode == SEPARATE:
        models = []
        for i in range(len(rows)):
            with seeded(fold_seed(torch_seed, i)):
                models.append(make_model(folds.train_X[i], folds.train_Y[i]))
        return models
    with seeded(torch_seed):
        return make_model(folds.train_X, folds.train_Y)


def cell_model(make_model, X: torch.Tensor, Y: torch.Tensor, rows: np.ndarray, torch_seed: int,
               state=None, mode: str = BATCHED):
    """The one way a cell's model is rebuilt: :func:`build_cell` under the cell's seed, then its fitted state.

    :meth:`gpviz.Sweep.models` and the verdicts of :func:`gpviz.priors.sweep_pull.sweep_prior_pull`
    both rebuild cells through this, so a model judged is the model the sweep shows.

    Args:
        make_model: The sweep's factory, ``(train_X, train_Y) -> model``.
        X: ``N x d`` data.
        Y: ``N x m`` data.
        rows: The cell's ``n`` rows (:func:`subset_rows`).
        torch_seed: The cell's seed (:func:`cell_seed`): a factory that draws initial values draws the fit's draws.
        state: The fitted model's ``state_dict`` (a list of ``n``, one per fold, for ``"separate"``); ``None``
            gives the unfitted model (train mode).
        mode: How the cell was fitted (:data:`MODES`).

    Returns:
        ``"batched"``: the model, batch shape ``n``; ``"fixed"``: the model of the ``n`` points;
        ``"separate"``: a list of ``n`` fold models. In eval mode when a state was loaded.
    """
    built = build_cell(make_model, X, Y, rows, torch_seed, mode)
    if state is not None:
        for model, one in zip(built if mode == SEPARATE else [built], state if mode == SEPARATE else [state]):
            model.load_state_dict(one)
            model.eval()
    return built


@dataclass
class Cell:
    """The outcome of one (size, repeat) cell: held-out predictions and fitted parameters."""

    i_config: int
    size: int
    i_repeat: int
    status: str = STATUS_OK
    error: str = ""
    fit_seconds: float = math.nan
    evaluations: int = 0
    predictions: pd.DataFrame | None = None  # index, i_model, i_output, y_true, pred_mean, pred_var
    parameters: pd.DataFrame | None = None   # i_model + one float column per key
    cached: bool = False
    model: object = field(default=None, repr=False)
    # the fitted model's state_dict (CPU tensors): with the factory and the cell's folds it rebuilds the model
    state: dict | list[dict] | None = field(default=None, repr=False)  # one per fold for mode "separate"
    # (category, message) of the warnings a worker's fit raised, for the caller to show
    warnings: list = field(default_factory=list, repr=False)
    # why the factory's model cannot be fitted as a batch (:func:`batch_refusal`): the sweep stops with an
    # InputError instead of failing every cell alike
    refusal: str = ""


def _count_evaluations(mll) -> list[int]:
    """Counts closure evaluations by wrapping the instance's ``forward``.

    gpytorch's ``Module.__call__`` calls ``self.forward`` directly, so torch hooks never
    fire on an MLL; an instance attribute shadows the class method for this mll only.
    """
    count = [0]
    forward = mll.forward

    def counting_forward(*args, **kwargs):
        count[0] += 1
        return forward(*args, **kwargs)

    mll.forward = counting_forward
    return count


def _fit(model, mll_cls, like: torch.Tensor, fit_kwargs: Mapping | None) -> int:
    """Fits one model with ``fit_gpytorch_mll``; returns the closure evaluations counted (all attempts)."""
    mll = mll_cls(model.likelihood, model)
    mll.to(like)
    count = _count_evaluations(mll)
    try:
        fit_gpytorch_mll(mll, **dict(fit_kwargs or {}))
    finally:
        mll.__dict__.pop("forward", None)  # the model goes back to the user untouched
    return count[0]


def _held_out(model, test_X: torch.Tensor, observation_noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior mean and variance at held-out points, float64 on the CPU (``... x 1 x m`` each)."""
    with torch.no_grad():
        post = model.posterior(test_X, observation_noise=observation_noise)
        return post.mean.detach().cpu().to(torch.float64), post.variance.detach().cpu().to(torch.float64)


def _closed_form(model, observation_noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """BoTorch's ``efficient_loo_cv`` on a fitted model: its ``n`` leave-one-out means and variances in the data's
    units (its outcome transform undone), ``n x 1 x m`` each, float64 on the CPU."""
    model.eval()
    with torch.no_grad():
        # a GPyTorchPosterior (a TransformedPosterior under a nonlinear outcome transform): both have mean, variance
        post: Any = efficient_loo_cv(model, observation_noise=observation_noise).posterior
        return post.mean.detach().cpu().to(torch.float64), post.variance.detach().cpu().to(torch.float64)


def _member_rows(frames: list[pd.DataFrame], first: int = 0) -> pd.DataFrame:
    """The parameter frames of a cell's fold models ``first, first + 1, ...`` as one, ``i_model = fold * members
    + member``."""
    members = len(frames[0])
    out = pd.concat(frames, ignore_index=True)
    out[I_MODEL] = (np.repeat(np.arange(first, first + len(frames)), [len(f) for f in frames]) * members
                    + out[I_MODEL].to_numpy()).astype(np.int32)
    return out


def run_cell(make_model: Callable[..., Any], X: torch.Tensor, Y: torch.Tensor, rows: np.ndarray, *, i_config: int,
             i_repeat: int, mll_cls: type = ExactMarginalLogLikelihood, fit_kwargs: Mapping | None = None,
             observation_noise: bool = True, keep_model: bool = False, mode: str = BATCHED,
             torch_seed: int = 0, fold_range: tuple[int, int] | None = None) -> Cell:
    """Fits one subset's leave-one-out cell and predicts each held-out point.

    ``"batched"`` mirrors ``botorch.cross_validation.batch_cross_validation``: folds from
    ``gen_loo_cv_folds``, one batched model, ``fit_gpytorch_mll``, posterior at the
    held-out points. ``"separate"`` fits each fold as its own model (under its
    :func:`fold_seed`), for factories that are not batch-aware. ``"fixed"`` fits one model
    on the ``n`` points and takes the ``n`` leave-one-out predictions at its
    hyperparameters in closed form (``botorch.cross_validation.efficient_loo_cv``).

    Args:
        make_model: ``(train_X, train_Y) -> model``: on ``n x (n-1) x d`` / ``n x (n-1) x m`` folds
            (batched), ``(n-1) x d`` / ``(n-1) x m`` (separate) or ``n x d`` / ``n x m`` (fixed).
        X: ``N x d`` data.
        Y: ``N x m`` data.
        rows: The ``n`` rows of the subset.
        i_config: Size index (recorded).
        i_repeat: Repeat index (recorded).
        mll_cls: Marginal log likelihood class, called as ``mll_cls(likelihood, model)``.
        fit_kwargs: Keyword arguments of ``fit_gpytorch_mll``.
        observation_noise: Predict noisy observations (as the NLPD needs) rather than
            the latent function; the means are the same either way.
        keep_model: Keep the fitted model (a list of fold models for ``"separate"``) on the cell.
        mode: How the cell is fitted (:data:`MODES`).
        torch_seed: The cell's seed; only ``"separate"`` reads it (each fold's :func:`fold_seed`), the
            caller seeds the other modes.
        fold_range: ``"separate"`` only: fit folds ``lo <= i < hi`` alone, a piece of the cell that
            ``gpviz.sweep.workers`` runs in its own task (predictions, parameters and states of those folds,
            numbered as in the whole cell); ``None``: every fold.

    Returns:
        A :class:`Cell`; a failure anywhere is recorded in ``status``/``error``, never raised.
    """
    n = len(rows)
    lo, hi = fold_range if (mode == SEPARATE and fold_range is not None) else (0, n)
    cell = Cell(i_config, n, i_repeat)
    idx = torch.as_tensor(rows, device=X.device)
    try:
        folds = gen_loo_cv_folds(X[idx], Y[idx])
        t0 = time.perf_counter()
        try:
            if mode == SEPARATE:
                models, means, variances = [], [], []
                for i in range(lo, hi):  # each fold under its own seed: a piece fits as in the whole cell
                    with seeded(fold_seed(torch_seed, i)):
                        model = make_model(folds.train_X[i], folds.train_Y[i])
                        cell.evaluations += _fit(model, mll_cls, folds.train_X, fit_kwargs)
                    mean, var = _held_out(model, folds.test_X[i], observation_noise)  # 1 x m each
                    models.append(model)
                    means.append(mean)
                    variances.append(var)
                mean, var = torch.stack(means), torch.stack(variances)  # n x 1 x m
            elif mode == FIXED:
                models = make_model(X[idx], Y[idx])
                cell.evaluations += _fit(models, mll_cls, X, fit_kwargs)
                mean, var = _closed_form(models, observation_noise)
            else:
                models = make_model(folds.train_X, folds.train_Y)
                cell.refusal = batch_refusal(models, n, folds.train_X.shape, fit_kwargs)
                if cell.refusal:  # checked before the fit: it would fail, here and in every other cell
                    cell.status, cell.error = STATUS_FAILED, cell.refusal
                    return cell
                cell.evaluations += _fit(models, mll_cls, folds.train_X, fit_kwargs)
                mean, var = _held_out(models, folds.test_X, observation_noise)
        finally:
            cell.fit_seconds = time.perf_counter() - t0
        y = folds.test_Y[lo:hi].detach().cpu().to(torch.float64)       # (hi - lo) x 1 x m
        m = y.shape[-1]
        cell.predictions = pd.DataFrame({
            I_MODEL: np.repeat(np.arange(lo, hi, dtype=np.int32), m),
            "index": np.repeat(rows[lo:hi].astype(np.int64), m),
            "i_output": np.tile(np.arange(m, dtype=np.int32), hi - lo),
            "y_true": to_numpy(y.reshape(-1)),
            "pred_mean": to_numpy(mean.reshape(-1)),
            "pred_var": to_numpy(var.reshape(-1)),
        })
        each: list[Any] = models if mode == SEPARATE else [models]
        states = [{k: v.detach().cpu().clone() for k, v in one.state_dict().items()} for one in each]
        cell.state = states if mode == SEPARATE else states[0]
        if keep_model:
            cell.model = models
    except Exception as exc:  # one failed cell must not end a long sweep
        cell.status, cell.error = STATUS_FAILED, f"{type(exc).__name__}: {exc}"
        return cell
    try:
        cell.parameters = (_member_rows([parameters(one) for one in models], lo) if mode == SEPARATE
                           else parameters(models))
    except Exception as exc:  # the scores stand even if the parameters cannot be read; the pages say so
        cell.error = f"parameters not read: {type(exc).__name__}: {exc}"
        warnings.warn(f"gpviz.cv_sweep: the parameters of the cell n={n}, repeat {i_repeat} could not be read "
                      f"({type(exc).__name__}: {exc}); its scores count, its folds are not drawn (the sweep's "
                      f"pages say so)", GpvizWarning, stacklevel=2)
    return cell


def _unbatched_parameters(model, n: int) -> list[str]:
    """The parameters of a fold-batched model that do not lead with the folds' batch size ``n``.

    BoTorch fits a batched model's members independently (a batched L-BFGS-B), one
    optimizer state per member: every parameter must carry the batch shape. One that
    does not (a kernel built without ``batch_shape=``) fails that fit in every cell.
    """
    return [f"{name} (shape {list(p.shape)})" for name, p in model.named_parameters()
            if p.dim() == 0 or p.shape[0] != n]


def _joint_fit(fit_kwargs: Mapping | None) -> bool:
    """Whether ``fit_gpytorch_mll`` takes its joint path for these arguments (one summed loss, no per-member state).

    A passed closure, ``closure_kwargs`` or an optimizer other than the default scipy one
    fit all members as one problem, where parameters shared by the folds are allowed.
    """
    kw = dict(fit_kwargs or {})
    return (kw.get("closure") is not None or bool(kw.get("closure_kwargs"))
            or kw.get("optimizer", fit_gpytorch_mll_scipy) is not fit_gpytorch_mll_scipy)


def batch_refusal(model: object, n: int, train_shape: torch.Size, fit_kwargs: Mapping | None) -> str:
    """Why a factory's model cannot be fitted as the folds' batch (``""`` when it can, or when not checked).

    Only the structural mismatch is named: a batched BoTorch model of the ``n`` folds
    (``model.batch_shape`` leads with ``n``) fitted on BoTorch's per-member path with a
    parameter that does not lead with ``n`` fails that fit in every cell of the sweep,
    with one BoTorch shape error each. Other models and joint fits are not checked.

    Args:
        model: The model the factory built on the folds.
        n: The number of folds (the subset's size).
        train_shape: The folds' ``train_X`` shape, ``n x (n-1) x d`` (for the message).
        fit_kwargs: The sweep's ``fit_gpytorch_mll`` arguments.
    """
    if not isinstance(model, BatchedMultiOutputGPyTorchModel) or _joint_fit(fit_kwargs):
        return ""
    if tuple(model.batch_shape)[:1] != (n,):
        return ""
    bad = _unbatched_parameters(model, n)
    if not bad:
        return ""
    shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
    return (f"cv_sweep: the model make_model built on the n={n} leave-one-out folds (train_X of shape "
            f"{list(train_shape)}: one batch member per fold) has parameters without that batch shape [{n}]: "
            f"{shown}. BoTorch fits each fold's parameters separately, so this fails every cell. Pass "
            f"batch_shape=train_X.shape[:-2] to every kernel, mean and likelihood the factory builds, e.g. "
            f"ScaleKernel(MaternKernel(ard_num_dims=d, batch_shape=train_X.shape[:-2]), "
            f"batch_shape=train_X.shape[:-2]), or fit each fold as its own model: folds='separate' (what the "
            f"default folds='auto' chooses for it). The sweep stopped at its first cell, before fitting it.")


def choose_folds(job: CellJob, rows: np.ndarray, torch_seed: int) -> tuple[str, str]:
    """What ``folds="auto"`` takes: the batched path when the factory's model of ``rows``' folds carries their
    batch shape, the separate one otherwise; with why, in words.

    Builds (never fits) the batched model under the job's default dtype and ``torch_seed``, the caller's
    generators restored (:func:`gpviz.seeding.seeded`), inside :func:`gpviz.sweep.identity.identity_build`
    (a build that is not a fit, which a factory with side effects may skip them for).

    Returns:
        ``(mode, why)``: ``"batched"`` or ``"separate"``, and one sentence.
    """
    idx = torch.as_tensor(rows, device=job.X.device)
    folds = gen_loo_cv_folds(job.X[idx], job.Y[idx])
    old_dtype = torch.get_default_dtype()
    try:
        torch.set_default_dtype(job.dtype)
        with seeded(torch_seed), identity_build():
            model = job.make_model(folds.train_X, folds.train_Y)
    except Exception as exc:  # a factory that cannot build on batched folds may build on one fold
        return SEPARATE, (f"folds='auto' fits each fold as its own model: make_model raised on the batched folds "
                          f"({type(exc).__name__}: {exc})")
    finally:
        torch.set_default_dtype(old_dtype)
    bad = batch_refusal(model, len(rows), folds.train_X.shape, job.fit_kwargs)
    if bad:
        first = _unbatched_parameters(model, len(rows))[0]
        return SEPARATE, (f"folds='auto' fits each fold as its own model: the factory's model does not carry the "
                          f"folds' batch shape (e.g. {first})")
    return BATCHED, ("folds='auto' fits each cell's folds as one batched model (the factory's model carries their "
                     "batch shape)")


@dataclass(frozen=True)
class CellJob:
    """What every cell of one sweep needs besides its (seed, size, repeat): sent once to each worker."""

    make_model: Callable
    X: torch.Tensor
    Y: torch.Tensor
    mll_cls: type
    fit_kwargs: Mapping | None
    observation_noise: bool
    dtype: torch.dtype   # torch's default dtype in the caller: factories build priors and constants in it
    threads: int | None  # torch and BLAS threads while a cell fits (None: leave the process's setting)
    order: str = "random"  # how each cell's rows are picked (:data:`ORDERS`)
    mode: str = BATCHED  # how each cell is fitted (:data:`MODES`)


def fit_cell(job: CellJob, seed: int, i_config: int, size: int, i_repeat: int,
             fold_range: tuple[int, int] | None = None) -> Cell:
    """Fits one cell exactly the same way wherever it runs (this process, a worker, a cluster), in the job's mode.

    The result depends only on ``(seed, size, i_repeat)`` and the job: the rows come from
    :func:`subset_rows` (with the job's ``order``), torch's generators are seeded with
    :func:`cell_seed` (BoTorch's retries redraw parameters from their priors) and
    restored afterwards (:func:`gpviz.seeding.seeded`: the CPU's and every initialized CUDA device's), the default
    dtype and torch's thread count (which changes reduction order) are set for the fit and
    restored afterwards (:func:`gpviz.threads.torch_threads`, which limits BLAS too).
    ``fold_range``: a ``"separate"`` cell's folds ``lo <= i < hi`` alone (see :func:`run_cell`).
    """
    rows = subset_rows(job.X.shape[0], size, i_repeat, seed, job.order)
    old_dtype = torch.get_default_dtype()
    try:
        torch.set_default_dtype(job.dtype)
        with torch_threads(job.threads), seeded(cell_seed(seed, size, i_repeat)):
            return run_cell(job.make_model, job.X, job.Y, rows, i_config=i_config, i_repeat=i_repeat,
                            mll_cls=job.mll_cls, fit_kwargs=job.fit_kwargs,
                            observation_noise=job.observation_noise, mode=job.mode,
                            torch_seed=cell_seed(seed, size, i_repeat), fold_range=fold_range)
    finally:
        torch.set_default_dtype(old_dtype)
