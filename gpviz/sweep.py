"""Leave-one-out cross-validation sweeps across dataset sizes: scores, fitted parameters and their pictures."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import numbers
import os
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from gpytorch.mlls import ExactMarginalLogLikelihood

from gpviz.errors import GpvizWarning, InputError

I_CONFIG, I_REPEAT, I_MODEL, SIZE = "i_config", "i_repeat", "i_model", "size"
STATUS_OK, STATUS_FAILED = "ok", "failed"
CACHE_FORMAT = 1
_MANIFEST = "manifest.json"
# pandas < 3 parses CSV floats with a fast parser that can be off by an ulp; pandas 3 parses
# exactly by default and deprecates the option
_ROUND_TRIP = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


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


def cell_seed(seed: int, size: int, i_repeat: int) -> int:
    """The torch seed one (size, repeat) cell fits under; like its rows, it depends on nothing else."""
    return int(np.random.default_rng([int(seed), int(size), int(i_repeat), 1]).integers(2**62))


# -- argument checks -----------------------------------------------------------------------

def _as_tensor(name: str, value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (pd.DataFrame, pd.Series)):
        value = value.to_numpy()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a tensor or numeric array, got {type(value).__name__}") from exc
    return torch.tensor(arr, dtype=torch.get_default_dtype())  # a copy: the caller's array stays theirs


def _check_data(X, Y) -> tuple[torch.Tensor, torch.Tensor]:
    X = _as_tensor("X", X)
    Y = _as_tensor("Y", Y)
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


def _fingerprint(X: torch.Tensor, Y: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in (X, Y):
        a = t.detach().cpu().contiguous()
        h.update(f"{list(a.shape)}|{a.dtype}|".encode())
        h.update(a.numpy().tobytes())
    return h.hexdigest()[:16]


def factory_fingerprint(make_model, depth: int = 0) -> str:
    """What the cache knows a model factory by.

    Its module and name and, where Python exposes them, its code, constants,
    defaults, closure values and ``functools.partial`` arguments: two lambdas share
    a name, not a fingerprint. Objects may add state through a ``fingerprint()``
    method (``with_priors`` factories give their priors at full precision).
    """
    h = hashlib.sha256()
    obj = make_model
    if isinstance(obj, functools.partial):
        h.update(factory_fingerprint(obj.func, depth + 1).encode())
        h.update(repr((obj.args, sorted(obj.keywords.items()))).encode())
        return h.hexdigest()[:16]
    h.update(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}".encode())
    own = getattr(obj, "fingerprint", None)
    if callable(own):
        h.update(str(own()).encode())
    code = getattr(obj, "__code__", None)
    if code is not None:
        h.update(code.co_code)
        h.update(repr((code.co_consts, code.co_names, getattr(obj, "__defaults__", None),
                       getattr(obj, "__kwdefaults__", None))).encode())
        for cell in getattr(obj, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            h.update((factory_fingerprint(value, depth + 1) if callable(value) and depth < 4
                      else repr(value)).encode())
    return h.hexdigest()[:16]


# -- one cell ------------------------------------------------------------------------------

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
            "y_true": y.reshape(-1).numpy(),
            "pred_mean": mean.reshape(-1).numpy(),
            "pred_var": var.reshape(-1).numpy(),
        })
        if keep_model:
            cell.model = model
    except Exception as exc:  # one failed cell must not end a long sweep
        cell.status, cell.error = STATUS_FAILED, f"{type(exc).__name__}: {exc}"
        return cell
    try:
        from gpviz.params import parameters

        cell.parameters = parameters(model)
    except Exception as exc:  # the scores stand even if the parameters cannot be read
        cell.error = f"parameters not read: {type(exc).__name__}: {exc}"
    return cell


# -- the on-disk cache ---------------------------------------------------------------------

class CellCache:
    """Finished cells on disk: one folder per cell, written to a temporary folder then renamed.

    A rename is atomic, so a cell folder is either complete or absent, whatever
    interrupts the run (Ctrl-C, a crash, a full disk).
    """

    def __init__(self, root, manifest: dict):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cache_dir {str(self.root)!r} cannot be created: {exc}") from exc
        path = self.root / _MANIFEST
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except ValueError as exc:
                raise InputError(f"cache_dir {str(self.root)!r} has an unreadable {_MANIFEST}: {exc}") from exc
            diff = {k: (old.get(k), v) for k, v in manifest.items() if old.get(k) != v}
            if diff:
                what = ", ".join(f"{k}: cached {a!r}, now {b!r}" for k, (a, b) in diff.items())
                raise InputError(f"cache_dir {str(self.root)!r} holds cells of another sweep ({what}); "
                                 f"use another cache_dir or delete it")
        else:
            self._write_text(path, json.dumps(manifest, indent=1, sort_keys=True))

    def _write_text(self, path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def folder(self, seed: int, size: int, i_repeat: int) -> Path:
        return self.root / f"seed{seed}_n{size}_r{i_repeat}"

    def load(self, seed: int, i_config: int, size: int, i_repeat: int) -> Cell | None:
        """The cached cell, or ``None`` when it has not finished before."""
        folder = self.folder(seed, size, i_repeat)
        if not (folder / "cell.json").exists():
            return None
        meta = json.loads((folder / "cell.json").read_text())
        preds = pd.read_csv(folder / "predictions.csv", **_ROUND_TRIP,
                            dtype={I_MODEL: np.int32, "i_output": np.int32, "index": np.int64})
        params = None
        if (folder / "parameters.csv").exists():
            params = pd.read_csv(folder / "parameters.csv", **_ROUND_TRIP)
            params[I_MODEL] = params[I_MODEL].astype(np.int32)
            for c in params.columns[1:]:
                params[c] = params[c].astype(np.float64)
        return Cell(i_config, size, i_repeat, status=STATUS_OK, error=meta.get("error", ""),
                    fit_seconds=float(meta["fit_seconds"]), evaluations=int(meta["evaluations"]),
                    predictions=preds, parameters=params, cached=True)

    def store(self, seed: int, cell: Cell) -> None:
        """Writes a finished cell atomically (failed cells are not stored: a rerun retries them)."""
        final = self.folder(seed, cell.size, cell.i_repeat)
        tmp = self.root / f".tmp-{final.name}-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            # pandas writes floats with repr precision: a cached cell reads back bit for bit
            cell.predictions.to_csv(tmp / "predictions.csv", index=False)
            if cell.parameters is not None:
                cell.parameters.to_csv(tmp / "parameters.csv", index=False)
            (tmp / "cell.json").write_text(json.dumps({
                "size": cell.size, "i_repeat": cell.i_repeat, "seed": seed, "fit_seconds": cell.fit_seconds,
                "evaluations": cell.evaluations, "error": cell.error}))
            try:
                os.rename(tmp, final)
            except OSError:  # another run finished the same cell first: keep its copy
                if not (final / "cell.json").exists():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


# -- the sweep -----------------------------------------------------------------------------

# The scaling curve goes beside the expression: the figure becomes a two-column grid, every
# part of the expression in the first (as wide as its code), the chart in the second. The chart's
# cell has zero height so it stretches no row of the code; min-height keeps the page below clear.
# Scoped with :has() to figures holding a sweep chart; without :has() (or on a narrow screen) the
# chart shows below the expression.
_BESIDE_CSS = """<style>
.gpviz-figure:has(> .gpviz-extra > .gpviz-sweep-chart) {
  display: grid; grid-template-columns: minmax(0, max-content) minmax(420px, 1fr); column-gap: 28px;
  align-items: start;
  min-height: 470px; }
.gpviz-figure:has(> .gpviz-extra > .gpviz-sweep-chart) > * { grid-column: 1; }
.gpviz-figure:has(> .gpviz-extra > .gpviz-sweep-chart) > .gpviz-extra {
  grid-column: 2; grid-row: 1 / span 40; height: 0; overflow: visible; }
.gpviz-figure .gpviz-sweep-chart img { max-width: min(100%, 680px); height: auto; }
@media (max-width: 1100px) {
  .gpviz-figure:has(> .gpviz-extra > .gpviz-sweep-chart) { display: block; min-height: 0; }
  .gpviz-figure:has(> .gpviz-extra > .gpviz-sweep-chart) > .gpviz-extra { height: auto; } }
</style>"""


class Sweep:
    """The result of :func:`cv_sweep`.

    Attributes:
        scores: One row per (size, repeat): ``i_config``, ``size``, ``i_repeat``, one
            column per metric (``mse``, ``mae``, ``nlpd`` and any added), ``fit_seconds``
            (building and fitting the batched model), ``evaluations`` (closure
            evaluations of the batched fit, all attempts), ``status``
            ("ok"/"failed"), ``error`` (text, empty when none) and ``cached`` (read
            from ``cache_dir`` instead of fitted).
        parameters: Fitted constrained parameters, one row per fold of every repeat at
            every size: ``i_config``, ``size``, ``i_repeat``, ``i_model`` (the fold: the
            batch member; for a multi-output model one member per fold and output,
            ``i_model = fold * m + output``), then one float64 column per key of the
            model's expression. Failed cells have no rows.
        predictions: One row per held-out point: ``i_config``, ``size``, ``i_repeat``,
            ``i_model`` (fold), ``index`` (row of X), ``i_output``, ``y_true``,
            ``pred_mean``, ``pred_var``.
        subsets: ``(i_config, i_repeat) -> rows of X`` used by each cell.
        sizes: Dataset sizes, ascending (``i_config`` indexes them).
        repeats: Random subsets per size.
        seed: Seed of the subset draws.
        metrics: Names of the metric columns.
    """

    def __init__(self, *, scores, parameters, predictions, subsets, sizes, repeats, seed, metrics,
                 make_model, X, Y, model=None):
        self.scores: pd.DataFrame = scores
        self.parameters: pd.DataFrame = parameters
        self.predictions: pd.DataFrame = predictions
        self.subsets: dict[tuple[int, int], np.ndarray] = subsets
        self.sizes: tuple[int, ...] = sizes
        self.repeats: int = repeats
        self.seed: int = seed
        self.metrics: tuple[str, ...] = metrics
        self._make_model = make_model
        self._X, self._Y = X, Y
        self._model = model
        self.feature_names: list[str] | None = None  # the columns of X when it was a DataFrame

    def __repr__(self) -> str:
        failed = int((self.scores["status"] != STATUS_OK).sum())
        return (f"<Sweep: sizes {list(self.sizes)} x {self.repeats} repeats, seed {self.seed}, "
                f"{len(self.scores)} cells ({failed} failed)>")

    @property
    def model(self):
        """A model of the sweep, for its expression: the last one fitted, or one built unfitted."""
        if self._model is None:
            rows = subset_indices(self._X.shape[0], self.sizes[0], 0, self.seed)
            idx = torch.as_tensor(rows, device=self._X.device)
            folds = gen_loo_cv_folds(self._X[idx], self._Y[idx])
            self._model = self._make_model(folds.train_X, folds.train_Y)
        return self._model

    def expression(self, feature_names=None):
        """The model's expression (structure only; the sweep's values come from :attr:`parameters`)."""
        from gpviz.model import model_expr

        return model_expr(self.model, feature_names if feature_names is not None else self.feature_names)

    def summary(self, metric: str = "mse"):
        """Per size: the 10th/90th percentile and centre of ``metric`` across repeats, with counts."""
        from gpviz.charts import score_bands

        return score_bands(self.scores, metric)

    def plot(self, metric: str = "mse", **kwargs):
        """The scaling curve (matplotlib Figure): see :func:`gpviz.charts.scaling_curve`."""
        from gpviz.charts import scaling_curve

        return scaling_curve(self.scores, metric, **kwargs)

    def frame(self, one_fold_per_repeat: bool = False, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """The parameters as ``render_frame`` takes them: ``i_config``, ``i_model`` (a dot), key columns.

        Args:
            one_fold_per_repeat: Keep only the first fold of each repeat (one dot per
                repeat, one dot per repeat) instead of every fold.
            keys: Key columns to keep (default: every key column).
        """
        p = self.parameters
        if one_fold_per_repeat:
            p = p[p[I_MODEL] == 0]
        key_cols = list(keys) if keys is not None else [c for c in p.columns
                                                         if c not in (I_CONFIG, SIZE, I_REPEAT, I_MODEL)]
        p = p.sort_values([I_CONFIG, I_REPEAT, I_MODEL], kind="stable")
        out = pd.DataFrame({
            I_CONFIG: p[I_CONFIG].to_numpy(dtype=np.int32),
            # rows2prose draws one dot per i_model within a band: number the dots of a band
            I_MODEL: p.groupby(I_CONFIG).cumcount().to_numpy(dtype=np.int32),
        })
        for k in key_cols:
            out[k] = p[k].to_numpy(dtype=np.float64)
        return out

    def info(self, expr=None) -> pd.DataFrame:
        """One row per key (bounds, prior mode) for the renderer; ``at_bound`` if any fold sits on a bound."""
        from gpviz.params import at_bound, parameters

        expr = expr if expr is not None else self.expression()
        long = parameters(expr, long=True).drop_duplicates("key").reset_index(drop=True)
        flags = []
        for _, row in long.iterrows():
            vals = self.parameters[row["key"]].dropna() if row["key"] in self.parameters else []
            flags.append(any(at_bound(float(v), row["lower"], row["upper"]) for v in vals))
        long["at_bound"] = flags
        return long

    @staticmethod
    def member_label(one_fold_per_repeat: bool = False) -> str:
        """What a dot of the sweep's view is: a leave-one-out fold, or a repeat (its first fold)."""
        return "repeats" if one_fold_per_repeat else "leave-one-out folds"

    def verdict_info(self, expr=None, verdicts: bool | None = None, repeats: int | None = 1) -> pd.DataFrame:
        """:meth:`info` with a ``verdict`` per key from prior_pull of the first ``repeats`` repeats.

        The rule is :meth:`render`'s.

        Returns :meth:`info` unchanged when ``verdicts`` is False, the sweep is too big
        for the automatic analysis, or the analysis fails (with a GpvizWarning).
        """
        from gpviz.render import PULL_MAX_ELEMENTS, PULL_MAX_POINTS, key_verdicts, with_verdicts

        expr = expr if expr is not None else self.expression()
        info = self.info(expr)
        biggest = max(self.sizes) if self.sizes else 0
        # one LOO batch per size: `biggest` members of `biggest - 1` points (0.06 s for 14 x 5 elements here)
        small = biggest <= PULL_MAX_POINTS and biggest * len(expr.keys) <= 5 * PULL_MAX_ELEMENTS
        if verdicts is False or (verdicts is None and not small):
            return info
        from gpviz.priors import sweep_prior_pull

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pull = sweep_prior_pull(self, repeats=repeats)
        except Exception as exc:  # the page stands without verdicts
            warnings.warn(f"gpviz: prior_pull failed on the sweep ({type(exc).__name__}: {exc}); the page shows no "
                          f"held-by-prior verdicts", GpvizWarning, stacklevel=3)
            return info
        return with_verdicts(info, key_verdicts(pull, by=SIZE))

    def render(self, one_fold_per_repeat: bool = False, *, metric: str = "mse", feature_names=None,
               title: str | None = None, verdicts: bool | None = None):
        """The model's expression with one labelled band per dataset size, beside the scaling curve.

        Each chart marks the prior mode and the bounds a fold sits at. With verdicts,
        :func:`gpviz.priors.sweep_prior_pull` analyses the folds of the first repeat at
        every size, and a parameter is tinted "held by prior" when its prior holds it in
        at least half the folds of some size (:func:`gpviz.render.key_verdicts` with
        ``by="size"``: the tint says "at some size, the prior sets this value").

        Args:
            one_fold_per_repeat: One dot per repeat (its first fold) instead of one per fold.
            metric: The metric of the scaling curve.
            feature_names: Names of the input columns.
            title: Page title.
            verdicts: ``None`` (default): prior_pull verdicts when every size is at most
                :data:`gpviz.render.PULL_MAX_POINTS` points and the folds of the largest
                size hold at most 5 x ``PULL_MAX_ELEMENTS`` parameter elements (each size
                rebuilds one batched model, nothing is refitted); ``True``: always;
                ``False``: none. A failing analysis warns and draws no verdicts.

        Returns:
            A gpviz Figure (``.html()``, ``.save(path)``, ``_repr_html_``).

        Raises:
            InputError: if no cell of the sweep finished.
        """
        from gpviz.charts import figure_to_img
        from gpviz.render import render_frame

        if self.parameters.empty:
            raise InputError("the sweep has no fitted parameters to render: every cell failed "
                             f"({self.scores['error'].iloc[0] if len(self.scores) else 'no cells'})")
        expr = self.expression(feature_names)
        frame = self.frame(one_fold_per_repeat, keys=list(expr.keys))
        chart = self.plot(metric)
        img = figure_to_img(chart, alt=f"scaling curve: leave-one-out {metric} per dataset size",
                            css_class="gpviz-sweep-curve")
        per = "first fold of each repeat" if one_fold_per_repeat else "every fold of every repeat"
        title = title or (f"Leave-one-out sweep: {type(self.model).__name__}, n = "
                          f"{', '.join(str(s) for s in self.sizes)}, {self.repeats} repeats ({per})")
        return render_frame(expr, frame, info=self.verdict_info(expr, verdicts), title=title,
                            config_labels=[f"n = {s}" for s in self.sizes],
                            member_label=self.member_label(one_fold_per_repeat),
                            extra_html=f'{_BESIDE_CSS}<div class="gpviz-sweep-chart">{img}</div>')

    def _repr_html_(self) -> str:
        try:
            return self.render()._repr_html_()
        except Exception as exc:  # a display must never break a notebook: show the scores instead
            from gpviz.render import escape_html

            return (f"<div><b>{escape_html(repr(self))}</b> (not drawn: {escape_html(type(exc).__name__)}: "
                    f"{escape_html(exc)})</div>" + self.scores.to_html(index=False, escape=True))


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
    if not callable(make_model):
        raise InputError(f"make_model must be callable (train_X, train_Y) -> model, got {type(make_model).__name__}")
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
    return Sweep(scores=scores, parameters=parameters, predictions=predictions, subsets=subsets, sizes=sizes,
                 repeats=repeats, seed=seed, metrics=tuple(metric_fns), make_model=make_model, X=X, Y=Y,
                 model=model)


__all__ = ["cv_sweep", "Sweep", "run_cell", "subset_indices", "DEFAULT_METRICS", "mse", "mae", "nlpd"]
