"""The result of a sweep: scores, fitted parameters and predictions per cell, and the frames its pictures draw."""

from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood

from gpviz import display
from gpviz.display import RenderedPage
from gpviz.errors import InputError
from gpviz.markup import escape_html
from gpviz.models.expr import ModelExpr, model_expr
from gpviz.options import reject_unknown
from gpviz.sweep.cache import CellCache
from gpviz.sweep.cells import BATCHED, FIXED, SEPARATE, STATUS_OK, cell_model, cell_seed, subset_rows
from gpviz.sweep.influence import influence_of
from gpviz.sweep.scores import score_bands
from gpviz.values.columns import I_CONFIG, I_MODEL, I_REPEAT, SIZE
from gpviz.values.units import DataUnits, check_units, with_data_units


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
        make_model: The factory each cell's model was built by: ``make_model(train_X, train_Y)``.
        X: The inputs, ``n x d`` (the sweep's subsets index its rows).
        Y: The outputs, ``n x m``.
        feature_names: The columns of ``X`` when it was a DataFrame (or the model source's), else ``None``.
        order: How each size took its rows: ``"random"`` subsets, or ``"trials"`` (the first ``n`` rows).
        trial_indices: An Ax experiment's trial of each row of ``X``, else ``None``.
        reference_scores: The metrics of the "predict the training mean" reference per cell
            (:func:`gpviz.sweep.scores.baseline_scores`), or ``None``.
        mode: How each cell was fitted: ``"batched"`` (its folds as one batched model),
            ``"separate"`` (each fold its own model) or ``"fixed"`` (``refit=False``: one model
            on the cell's points, its leave-one-out predictions in closed form).
        mode_note: Why, in one sentence (what ``folds="auto"`` found); the sweep page shows it.
        fit_kwargs: The ``fit_gpytorch_mll`` arguments every cell was fitted with (None: none).
        mll_cls: The marginal log likelihood class every cell was fitted with.
        cache: The cell cache the sweep ran with (``cache_dir``), or None; the sweep's verdicts are kept there.
        pulls: Repeats judged -> :func:`gpviz.priors.sweep_pull.sweep_prior_pull` rows, computed once.
        data_units: What was done to ``X`` (and ``Y``) before the factory saw them, for ``units="original"``
            (:class:`gpviz.values.units.DataUnits`): for an Ax source, Ax's ``Log`` / ``UnitX`` transforms
            (:func:`gpviz.ax.sweep_units`), so a log-scaled parameter's lengthscale is shown in decades;
            None: ``X`` and ``Y`` are the data's own.
    """

    scores: pd.DataFrame
    parameters: pd.DataFrame
    predictions: pd.DataFrame
    subsets: dict[tuple[int, int], np.ndarray]
    sizes: tuple[int, ...]
    repeats: int
    seed: int
    metrics: tuple[str, ...]
    make_model: object
    X: torch.Tensor
    Y: torch.Tensor
    feature_names: list[str] | None
    order: str
    trial_indices: tuple[int, ...] | None
    reference_scores: pd.DataFrame | None
    mode: str
    mode_note: str
    fit_kwargs: dict | None
    mll_cls: object
    cache: CellCache | None
    pulls: dict[int, pd.DataFrame]
    data_units: DataUnits | None
    _full_fits: dict

    def __init__(self, *, scores: pd.DataFrame, parameters: pd.DataFrame, predictions: pd.DataFrame,
                 subsets: dict[tuple[int, int], np.ndarray], sizes: tuple[int, ...], repeats: int, seed: int,
                 metrics: tuple[str, ...], make_model: Callable[..., Any], X: torch.Tensor, Y: torch.Tensor,
                 states: Mapping | None = None, feature_names: Sequence[str] | None = None,
                 order: str = "random", trial_indices: Sequence[int] | None = None,
                 reference_scores: pd.DataFrame | None = None, mode: str = BATCHED, mode_note: str = "",
                 fit_kwargs: Mapping | None = None, mll_cls: type | None = None, cache: CellCache | None = None,
                 data_units: DataUnits | None = None):
        self.scores = scores
        self.parameters = parameters
        self.predictions = predictions
        self.subsets = subsets
        self.sizes = sizes
        self.repeats = repeats
        self.seed = seed
        self.metrics = metrics
        self.make_model = make_model
        self.X, self.Y = X, Y
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.order = order
        self.trial_indices = tuple(trial_indices) if trial_indices is not None else None
        self.reference_scores = reference_scores
        self.mode, self.mode_note = mode, mode_note
        self.fit_kwargs = dict(fit_kwargs) if fit_kwargs else None
        self.mll_cls = mll_cls or ExactMarginalLogLikelihood
        self._states: dict = dict(states or {})  # (i_config, i_repeat) -> the fitted model's state_dict
        self._model: torch.nn.Module | None = None  # built once, by :attr:`model`
        # (mll_cls, fit arguments) -> {cell: its full-data fit's parameters}: :meth:`influence` fits each once
        self._full_fits: dict = {}
        #: The cell cache the sweep was run with (None: none): its verdicts are kept there too.
        self.cache = cache
        #: Repeats judged -> the prior_pull rows of every fold (:func:`gpviz.priors.judge.sweep_verdicts` judges
        #: once per sweep; render and compare read them again).
        self.pulls: dict[int, pd.DataFrame] = {}
        self.data_units = data_units

    def __repr__(self) -> str:
        failed = int((self.scores["status"] != STATUS_OK).sum())
        return (f"<Sweep: sizes {list(self.sizes)} x {self.repeats} repeats, seed {self.seed}, "
                f"{len(self.scores)} cells ({failed} failed)>")

    @property
    def refit(self) -> bool:
        """Whether each leave-one-out fold was refit (``False``: ``cv_sweep(refit=False)``, folds in closed form)."""
        return self.mode != "fixed"

    @property
    def model(self) -> torch.nn.Module:
        """A fitted model of the sweep (its last finished cell: largest size, last repeat), for its expression.

        Rebuilt by :meth:`models`, so it is the same whether the cell was fitted in this
        process, in a worker or read from the cache (for ``mode="separate"``, its first
        fold's model). A sweep whose every cell failed gives an unfitted model of the
        first cell (the expression's structure only).
        """
        if self._model is None:
            built: torch.nn.Module | list[torch.nn.Module]
            if self._states:
                i_config, i_repeat = max(self._states)
                built = self.models(self.sizes[i_config], i_repeat)
            else:
                built = self._build(0, 0)
            self._model = built[0] if isinstance(built, list) else built  # "separate": the first fold's model
        return self._model

    def _build(self, i_config: int, i_repeat: int, state: Mapping | None = None):
        """The cell's model through :func:`gpviz.sweep.cells.cell_model` (unfitted without ``state``)."""
        rows, torch_seed, _ = self.cell_state(i_config, i_repeat)
        return cell_model(self.make_model, self.X, self.Y, rows, torch_seed, state, self.mode)

    def cell_state(self, i_config: int, i_repeat: int) -> tuple[np.ndarray, int, Mapping | None]:
        """What rebuilds one cell (:func:`gpviz.sweep.cells.cell_model`): its rows, its torch seed, its fitted state.

        Returns:
            ``(rows, seed, state)``; ``state`` is ``None`` for a cell that failed.
        """
        size = self.sizes[i_config]
        return (subset_rows(self.X.shape[0], size, i_repeat, self.seed, self.order),
                cell_seed(self.seed, size, i_repeat), self._states.get((i_config, int(i_repeat))))

    def models(self, size: int, repeat: int) -> torch.nn.Module | list[torch.nn.Module]:
        """The fitted model of one cell: for ``mode="batched"`` one batched model (one member per
        leave-one-out fold), for ``"fixed"`` the one model of the cell's ``n`` points (whose
        closed-form leave-one-out predictions the cell scored), for ``"separate"`` a list of
        the ``n`` fold models (a factory that is not batch-aware cannot hold them in one).

        The sweep keeps each cell's ``state_dict`` (in memory and in ``cache_dir``); the
        model is rebuilt by the sweep's factory on the cell's folds and given that state,
        so nothing is refitted and a cached cell gives the model that was fitted. Each
        call returns a new model (in eval mode) that the caller may change.

        Args:
            size: The dataset size (one of :attr:`sizes`).
            repeat: The repeat index, ``0 .. repeats - 1``.

        Returns:
            The model (batched: batch shape ``size``, fold ``i`` held out row ``subsets[...][i]``),
            or for ``"separate"`` the list of ``size`` fold models in the same order.

        Raises:
            InputError: for a size or repeat not in the sweep, or a cell that failed.
        """
        if size not in self.sizes:
            raise InputError(f"sweep.models: size {size!r} is not one of the sweep's sizes {list(self.sizes)}")
        if isinstance(repeat, bool) or not isinstance(repeat, numbers.Integral) or not 0 <= repeat < self.repeats:
            raise InputError(f"sweep.models: repeat must be an integer in 0..{self.repeats - 1}, got {repeat!r}")
        i_config = self.sizes.index(size)
        state = self._states.get((i_config, int(repeat)))
        if state is None:
            row = self.scores[(self.scores[I_CONFIG] == i_config) & (self.scores[I_REPEAT] == repeat)]
            why = row["error"].iloc[0] if len(row) else "no such cell"
            raise InputError(f"sweep.models: the cell n={size}, repeat {repeat} has no fitted model (it failed: "
                             f"{why})")
        return self._build(i_config, int(repeat), state)

    def influence(self, *, fit_kwargs: Mapping | None = None, mll_cls: type | None = None) -> pd.DataFrame:
        """Which held-out point moved each parameter: every fold's value against its cell's full-data fit.

        Fold ``i`` of a cell left out row ``subsets[cell][i]``; its fitted value of each
        key, minus the value of one model fitted on all of the cell's ``n`` points (the
        same factory under the cell's seed, a batch of one: ``X[rows].unsqueeze(0)``), is
        that point's shift of the parameter. The full-data fits are made once per cell and
        kept on the sweep (a second call refits nothing).

        Args:
            fit_kwargs: ``fit_gpytorch_mll`` arguments of the full-data fits (default: the
                sweep's own, :attr:`fit_kwargs`).
            mll_cls: Marginal log likelihood class (default: the sweep's own, :attr:`mll_cls`).

        Returns:
            One row per cell, fold member and key: ``i_config``, ``size``, ``i_repeat``,
            ``i_model`` (the fold's member), ``index`` (the held-out row of ``X``), ``key``,
            ``fold_value``, ``full_value``, ``shift`` (fold minus full), ``rel_shift``
            (``shift / |full_value|``), then the held-out point's row, one column per
            feature name (``x0``, ``x1``, ... without names). Failed cells have no rows.

        Raises:
            InputError: for a ``refit=False`` sweep (its folds were never refit: nothing moved).
        """
        if self.mode == FIXED:
            raise InputError("sweep.influence: a refit=False sweep fits one model per cell and refits no fold, so "
                             "no held-out point moved a parameter; run cv_sweep(..., refit=True) for influence")
        mll = mll_cls or self.mll_cls
        fit_kwargs = self.fit_kwargs if fit_kwargs is None else fit_kwargs
        names = list(self.feature_names) if self.feature_names else [f"x{j}" for j in range(self.X.shape[-1])]
        cells = {}
        for i_config, i_repeat in self._states:
            rows, torch_seed, _ = self.cell_state(i_config, i_repeat)
            cells[(i_config, i_repeat)] = (self.sizes[i_config], rows, torch_seed)
        kept = self._full_fits.setdefault((mll, repr(sorted(dict(fit_kwargs or {}).items()))), {})
        return influence_of(self.make_model, self.X, self.Y, cells, self.parameters, names, mll, fit_kwargs,
                            kept, batched=self.mode != SEPARATE)

    def expression(self, feature_names: Sequence[str] | None = None) -> ModelExpr:
        """The model's expression (structure only; the sweep's values come from :attr:`parameters`), with the
        sweep's :attr:`data_units` (its sections say whose transforms the inputs went through)."""
        return self.with_units(model_expr(self.model, feature_names if feature_names is not None
                                          else self.feature_names))

    def with_units(self, expr: ModelExpr) -> ModelExpr:
        """``expr`` (of one of the sweep's models) with the sweep's :attr:`data_units`, or as it is without them."""
        return with_data_units(expr, self.data_units) if self.data_units is not None else expr

    def summary(self, metric: str = "mse") -> pd.DataFrame:
        """Per size: the 10th/90th percentile and centre of ``metric`` across repeats, with counts."""
        return score_bands(self.scores, metric)

    def plot(self, metric: str = "mse", **kwargs: Any) -> Any:
        """The scaling curve (matplotlib Figure) with its dashed reference: see :func:`gpviz.charts.scaling_curve`.

        Drawn by the page layer (:func:`gpviz.display.plot`): a sweep holds numbers, not pictures.
        """
        return display.plot(self, metric=metric, **kwargs)

    def frame(self, one_fold_per_repeat: bool = False, keys: Sequence[str] | None = None,
              parameters: pd.DataFrame | None = None) -> pd.DataFrame:
        """The parameters as ``render_frame`` takes them: ``i_config``, ``i_model`` (a dot), key columns.

        Args:
            one_fold_per_repeat: Keep only the first fold of each repeat (one dot per
                repeat) instead of every fold.
            keys: Key columns to keep (default: every key column).
            parameters: The sweep's parameters in other units (default: :attr:`parameters`).
        """
        p = self.parameters if parameters is None else parameters
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

    def cell_notes(self, limit: int = 5) -> tuple[str, ...]:
        """What a page must say of the cells it does not draw, one line each (empty when every cell is drawn).

        A failed cell has no scores and no parameters; a finished cell whose parameters
        could not be read keeps its scores (they count in the scaling curve and the
        summaries) but has no dots. Neither is ever left out silently.

        Args:
            limit: Cells named one by one; the rest are counted in a last line.
        """
        s = self.scores
        failed = s[s["status"] != STATUS_OK]
        unread = s[(s["status"] == STATUS_OK) & (s["error"].astype(str) != "")]
        lines = [f"n = {r.size}, repeat {r.i_repeat}: failed ({r.error}); no scores, no dots"
                 for r in failed.itertuples()]
        lines += [f"n = {r.size}, repeat {r.i_repeat}: {r.error}; its scores count, its folds are not drawn"
                  for r in unread.itertuples()]
        if len(lines) > limit:
            lines = lines[:limit] + [f"and {len(lines) - limit} more cells (sweep.scores['error'] says why)"]
        return tuple(lines)

    @staticmethod
    def member_label(one_fold_per_repeat: bool = False) -> str:
        """What a dot of the sweep's view is, plural: leave-one-out folds, or repeats (each its first fold)."""
        return "repeats" if one_fold_per_repeat else "leave-one-out folds"

    def render(self, one_fold_per_repeat: bool = False, *, metric: str = "mse",
               feature_names: Sequence[str] | None = None, units: str = "model", title: str | None = None,
               verdicts: bool | None = None, influence: bool | pd.DataFrame = False, gap: Sweep | None = None,
               **unknown: object) -> RenderedPage:
        """The model's expression with one labelled band per dataset size, beside the scaling curve.

        Each chart marks the prior mode and the bounds a fold sits at. By default
        :func:`gpviz.priors.sweep_pull.sweep_prior_pull` judges every fold of every repeat at
        every size: each size band of each parameter is tinted by the share of its folds
        held at the prior's mode (hover a band label for the counts), and the page says in
        one sentence per parameter group where each leaves the prior's mode, with a table
        of the held shares. Without verdicts the page says why in one line.

        Args:
            one_fold_per_repeat: One dot per repeat (its first fold) instead of one per fold.
            metric: The metric of the scaling curve.
            feature_names: Names of the input columns.
            units: ``"model"`` (the default: values as each fold's model stores them) or
                ``"original"``: each cell converted with its own model's transforms (every
                cell normalizes its own subset; see :mod:`gpviz.values.units`).
            title: Page title.
            verdicts: ``None`` or ``True`` (default): judge every fold (nothing is refitted:
                each size's repeats are rebuilt as one batched model with their fitted
                values); ``False``: none. A failing analysis warns and the page says so.
            influence: ``True``: list the most influential held-out points per parameter below
                the charts (:meth:`influence`); a frame from ``sweep.influence(...)``: that one;
                ``False`` (default): no list.
            gap: The same cells fitted the other way (a ``refit=False`` sweep of the same data,
                seed and order for a refit sweep, or the refit one for a fixed sweep): the page adds
                the optimism gap, both scaling curves and their ratio per size with one sentence
                (:func:`gpviz.comparing.gap_section`).

        Returns:
            A gpviz Figure (``.html()``, ``.save(path)``, ``_repr_html_``).

        Raises:
            InputError: if no cell of the sweep finished, for an unknown ``units``, an
                option a sweep's page does not take (e.g. ``tasks``), or a ``gap`` sweep that is
                not the same cells fitted the other way.
        """
        reject_unknown("Sweep.render", unknown, ["one_fold_per_repeat", "metric", "feature_names", "units", "title",
                                                 "verdicts", "influence", "gap"])
        if self.parameters.empty:
            raise InputError("the sweep has no fitted parameters to render: every cell failed "
                             f"({self.scores['error'].iloc[0] if len(self.scores) else 'no cells'})")
        check_units(units)
        if influence is True:
            influence = self.influence()
        return display.render(self, one_fold_per_repeat=one_fold_per_repeat, metric=metric,
                              feature_names=feature_names, units=units, title=title, verdicts=verdicts,
                              influence=None if influence is False else influence, gap=gap)

    def _repr_html_(self) -> str:
        try:
            return self.render()._repr_html_()
        except Exception as exc:  # a display must never break a notebook: show the scores instead
            return (f"<div><b>{escape_html(repr(self))}</b> (not drawn: {escape_html(type(exc).__name__)}: "
                    f"{escape_html(exc)})</div>" + self.scores.to_html(index=False, escape=True))
