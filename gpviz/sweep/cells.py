"""One cell of a cross-validation sweep: a subset of one size, its leave-one-out folds fit as one batch.

A cell's result depends only on ``(seed, size, repeat)`` and the inputs: its subset
comes from :func:`subset_rows` (a seeded random draw, :func:`subset_indices`, or the
first n rows for ``order="trials"``), its torch seed from :func:`cell_seed`.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models.gpytorch import BatchedMultiOutputGPyTorchModel
from botorch.optim.fit import fit_gpytorch_mll_scipy
from gpytorch.mlls import ExactMarginalLogLikelihood

from gpviz.errors import GpvizWarning, InputError
from gpviz.seeding import seeded
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


def check_order(order, repeats: int) -> str:
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


def cell_model(make_model, X: torch.Tensor, Y: torch.Tensor, rows: np.ndarray, torch_seed: int,
               state: Mapping | None = None):
    """The one way a cell's model is rebuilt: its factory on the cell's folds, under the cell's seed, then its state.

    :meth:`gpviz.Sweep.models` and the verdicts of :func:`gpviz.priors.sweep_pull.sweep_prior_pull`
    both rebuild cells through this, so a model judged is the model the sweep shows.

    Args:
        make_model: The sweep's factory, ``(train_X, train_Y) -> model`` on ``n x (n-1) x d`` folds.
        X: ``N x d`` data.
        Y: ``N x m`` data.
        rows: The cell's ``n`` rows (:func:`subset_rows`).
        torch_seed: The cell's seed (:func:`cell_seed`): a factory that draws initial values draws the fit's draws.
        state: The fitted model's ``state_dict``; ``None`` gives the unfitted model (train mode).

    Returns:
        The model, batch shape ``n``, in eval mode when a state was loaded.
    """
    idx = torch.as_tensor(rows, device=X.device)
    folds = gen_loo_cv_folds(X[idx], Y[idx])
    with seeded(torch_seed):
        model = make_model(folds.train_X, folds.train_Y)
    if state is not None:
        model.load_state_dict(state)
        model.eval()
    return model


# -- argument checks -----------------------------------------------------------------------

_FLOATS = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _float_dtype(value) -> torch.dtype | None:
    """The float32/float64 dtype of a tensor, array or DataFrame (None for anything else: ints, lists)."""
    if isinstance(value, torch.Tensor):
        return value.dtype if value.dtype in (torch.float32, torch.float64) else None
    if isinstance(value, pd.DataFrame):
        kinds = set(value.dtypes)
        return _FLOATS.get(kinds.pop()) if len(kinds) == 1 else None
    return _FLOATS.get(getattr(value, "dtype", None))


def _as_tensor(name: str, value, dtype: torch.dtype) -> torch.Tensor:
    """``value`` as a tensor: a tensor as it is; an array or DataFrame copied, keeping its float dtype.

    float64 data stays float64 (and float32 stays float32) whatever torch's default dtype
    is, as a tensor passed in would; anything else (integers, lists) becomes ``dtype``.
    """
    if isinstance(value, torch.Tensor):
        return value
    own = _float_dtype(value)
    if isinstance(value, (pd.DataFrame, pd.Series)):
        value = value.to_numpy()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a tensor or numeric array, got {type(value).__name__}") from exc
    return torch.tensor(arr, dtype=own or dtype)  # a copy: the caller's array stays theirs


def _check_data(X, Y) -> tuple[torch.Tensor, torch.Tensor]:
    dx, dy = _float_dtype(X), _float_dtype(Y)
    # data that is not float (integers, lists) follows the other's float dtype, else torch's default
    X = _as_tensor("X", X, dx or dy or torch.get_default_dtype())
    Y = _as_tensor("Y", Y, dx or dy or torch.get_default_dtype())
    if X.dim() != 2:
        raise InputError(f"X must be 2-D (n x d), got shape {list(X.shape)}")
    if Y.dim() == 1:
        Y = Y.unsqueeze(-1)
    if Y.dim() != 2:
        raise InputError(f"Y must be n or n x m, got shape {list(Y.shape)}")
    if Y.shape[0] != X.shape[0]:
        raise InputError(f"X and Y must have the same number of rows: X has shape {list(X.shape)}, "
                         f"Y has shape {list(Y.shape)}")
    if not X.is_floating_point() or not Y.is_floating_point():
        raise InputError(f"X and Y must be floating point, got {X.dtype} and {Y.dtype}")
    for name, t in (("X", X), ("Y", Y)):
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise InputError(f"{name} must be finite: {int(bad.sum())} non-finite value(s), first in row {row} "
                             f"({t[row].tolist()})")
    if dx is not None and dy is not None and dx != dy:
        raise InputError(f"X and Y must share one float dtype, got X in {dx} and Y in {dy}: convert one "
                         f"(e.g. Y.astype(X.dtype)); BoTorch refuses a model of mixed dtypes")
    return X, Y


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {int(value)}")
    return int(value)


def _check_sizes(sizes, num_points: int) -> tuple[int, ...]:
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = [sizes]
    try:
        raw = list(sizes)
    except TypeError as exc:
        raise InputError(f"sizes must be a list of integers, got {sizes!r}") from exc
    if not raw:
        raise InputError("sizes must name at least one dataset size, got an empty list")
    out = []
    for s in raw:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise InputError(f"sizes must be integers, got {s!r} in {raw!r}")
        s = int(s)
        if s < 3:
            raise InputError(f"dataset size {s} is too small: leave-one-out needs at least 3 points")
        if s > num_points:
            raise InputError(f"dataset size {s} is larger than the data ({num_points} rows)")
        out.append(s)
    if len(set(out)) != len(out):
        raise InputError(f"sizes must be distinct, got {raw!r}")
    return tuple(sorted(out))


def _check_metrics(metrics) -> dict[str, Callable]:
    out = dict(DEFAULT_METRICS)
    if metrics is None:
        return out
    if not isinstance(metrics, Mapping):
        raise InputError(f"metrics must be a dict name -> f(y_true, pred_mean, pred_var), got "
                         f"{type(metrics).__name__}")
    reserved = set(SCORE_COLUMNS) | set(SCORE_TAIL)
    for name, fn in metrics.items():
        if not isinstance(name, str) or not name or name in reserved:
            raise InputError(f"metric name {name!r} must be a non-empty string other than {sorted(reserved)}")
        if not callable(fn):
            raise InputError(f"metric {name!r} must be callable (y_true, pred_mean, pred_var) -> float, "
                             f"got {type(fn).__name__}")
        out[name] = fn
    return out




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
    state: dict | None = field(default=None, repr=False)
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


def run_cell(make_model, X: torch.Tensor, Y: torch.Tensor, rows: np.ndarray, *, i_config: int, i_repeat: int,
             mll_cls=ExactMarginalLogLikelihood, fit_kwargs: Mapping | None = None,
             observation_noise: bool = True, keep_model: bool = False) -> Cell:
    """Fits the leave-one-out folds of one subset as a batch and predicts each held-out point.

    Mirrors ``botorch.cross_validation.batch_cross_validation``: folds from
    ``gen_loo_cv_folds``, one batched model, ``fit_gpytorch_mll``, posterior at the
    held-out points.

    Args:
        make_model: ``(train_X, train_Y) -> model`` with ``train_X`` of shape
            ``n x (n-1) x d`` and ``train_Y`` of shape ``n x (n-1) x m``.
        X: ``N x d`` data.
        Y: ``N x m`` data.
        rows: The ``n`` rows of the subset.
        i_config: Size index (recorded).
        i_repeat: Repeat index (recorded).
        mll_cls: Marginal log likelihood class, called as ``mll_cls(likelihood, model)``.
        fit_kwargs: Keyword arguments of ``fit_gpytorch_mll``.
        observation_noise: Predict noisy observations (as the NLPD needs) rather than
            the latent function; the means are the same either way.
        keep_model: Keep the fitted model on the cell.

    Returns:
        A :class:`Cell`; a failure anywhere is recorded in ``status``/``error``, never raised.
    """
    n = len(rows)
    cell = Cell(i_config, n, i_repeat)
    idx = torch.as_tensor(rows, device=X.device)
    mll = None
    count = [0]
    try:
        folds = gen_loo_cv_folds(X[idx], Y[idx])
        t0 = time.perf_counter()
        try:
            model = make_model(folds.train_X, folds.train_Y)
            cell.refusal = batch_refusal(model, n, folds.train_X.shape, fit_kwargs)
            if cell.refusal:  # checked before the fit: it would fail, here and in every other cell
                cell.status, cell.error = STATUS_FAILED, cell.refusal
                return cell
            mll = mll_cls(model.likelihood, model)
            mll.to(folds.train_X)
            count = _count_evaluations(mll)
            fit_gpytorch_mll(mll, **dict(fit_kwargs or {}))
        finally:
            cell.fit_seconds = time.perf_counter() - t0
            cell.evaluations = count[0]
            if mll is not None:
                mll.__dict__.pop("forward", None)  # the model goes back to the user untouched
        with torch.no_grad():
            post = model.posterior(folds.test_X, observation_noise=observation_noise)
            mean = post.mean.detach().cpu().to(torch.float64)          # n x 1 x m
            var = post.variance.detach().cpu().to(torch.float64)       # n x 1 x m
        y = folds.test_Y.detach().cpu().to(torch.float64)              # n x 1 x m
        m = y.shape[-1]
        cell.predictions = pd.DataFrame({
            I_MODEL: np.repeat(np.arange(n, dtype=np.int32), m),
            "index": np.repeat(rows.astype(np.int64), m),
            "i_output": np.tile(np.arange(m, dtype=np.int32), n),
            "y_true": to_numpy(y.reshape(-1)),
            "pred_mean": to_numpy(mean.reshape(-1)),
            "pred_var": to_numpy(var.reshape(-1)),
        })
        cell.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if keep_model:
            cell.model = model
    except Exception as exc:  # one failed cell must not end a long sweep
        cell.status, cell.error = STATUS_FAILED, f"{type(exc).__name__}: {exc}"
        return cell
    try:
        cell.parameters = parameters(model)
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


def batch_refusal(model, n: int, train_shape, fit_kwargs: Mapping | None) -> str:
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
            f"batch_shape=train_X.shape[:-2]). (A fold-by-fold mode for factories that are not batch-aware "
            f"will come; the sweep stopped at its first cell, before fitting it.)")


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


def fit_cell(job: CellJob, seed: int, i_config: int, size: int, i_repeat: int) -> Cell:
    """Fits one cell exactly the same way wherever it runs (this process, a worker, a cluster).

    The result depends only on ``(seed, size, i_repeat)`` and the job: the rows come from
    :func:`subset_rows` (with the job's ``order``), torch's generators are seeded with
    :func:`cell_seed` (BoTorch's retries redraw parameters from their priors) and
    restored afterwards (:func:`gpviz.seeding.seeded`: the CPU's and every initialized CUDA device's), the default
    dtype and torch's thread count (which changes reduction order) are set for the fit and
    restored afterwards (:func:`gpviz.threads.torch_threads`, which limits BLAS too).
    """
    rows = subset_rows(job.X.shape[0], size, i_repeat, seed, job.order)
    old_dtype = torch.get_default_dtype()
    try:
        torch.set_default_dtype(job.dtype)
        with torch_threads(job.threads), seeded(cell_seed(seed, size, i_repeat)):
            return run_cell(job.make_model, job.X, job.Y, rows, i_config=i_config, i_repeat=i_repeat,
                            mll_cls=job.mll_cls, fit_kwargs=job.fit_kwargs,
                            observation_noise=job.observation_noise)
    finally:
        torch.set_default_dtype(old_dtype)
