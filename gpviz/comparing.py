"""Comparing cross-validation sweeps on one page: one scaling chart, paired per-repeat scores, then each parameter's
charts side by side (one column per sweep), each sweep's priors and verdicts; and the optimism gap of a refit and a
``refit=False`` sweep of the same cells, on a comparison or on a sweep's own page.

``gpviz.compare`` is the function :func:`compare` (this module is ``gpviz.comparing``: an entry
point never shadows its module); it compares *sweeps* (for example two prior settings of the same
model), not two models.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from gpviz.charts import BAND_PERCENTILES, GEOMETRIC_MEAN, center_kind, compare_scaling_curves, figure_to_img
from gpviz.errors import InputError
from gpviz.html.comparison import (ComparisonFigure, paired_html, priors_html, scores_html, shared_ranges,
                                   side_by_side, sweep_notes_html)
from gpviz.html.below import gap_html, heldout_html
from gpviz.markup import Markup, escape_html
from gpviz.priors.judge import sweep_verdicts
from gpviz.sweep.cells import FIXED
from gpviz.sweep.influence import heldout_points
from gpviz.sweep.result import Sweep
from gpviz.sweep.scores import score_table
from gpviz.values.columns import I_REPEAT, SIZE
from gpviz.sweep.workers import TaskExecutor, check_parallel
from gpviz.values.prior_info import describe_priors
from gpviz.values.units import check_units
from gpviz.view.adapters import sweep_view
from gpviz.view.ranges import shared_ranges as view_ranges, with_ranges

__all__ = ["compare", "ComparisonFigure", "score_table", "describe_priors", "shared_ranges", "paired_differences",
           "optimism_gaps", "shares_subsets", "gap_section"]


def _check_sweeps(sweeps) -> dict:
    if not isinstance(sweeps, Mapping):
        raise InputError(f"compare expects a dict {{label: sweep}} of cv_sweep results, got {type(sweeps).__name__}")
    if not sweeps:
        raise InputError("compare needs at least one sweep, got an empty dict")
    out = {}
    for label, sweep in sweeps.items():
        if not isinstance(label, str) or not label.strip():
            raise InputError(f"compare: labels must be non-empty strings, got {label!r}")
        if not isinstance(sweep, Sweep):
            raise InputError(f"compare: {label!r} is a {type(sweep).__name__}, not a sweep from gpviz.cv_sweep")
        out[label] = sweep
    return out


def _same_cells(a: Sweep, b: Sweep) -> bool:
    """Whether two sweeps drew the same rows for the same (size, repeat): the same data, seed and order."""
    return (a.seed == b.seed and a.order == b.order and a.X.shape == b.X.shape and a.Y.shape == b.Y.shape
            and torch.equal(a.X, b.X) and torch.equal(a.Y, b.Y))


def shares_subsets(a: Sweep, b: Sweep) -> bool:
    """Whether two sweeps held out the same points: the same data, and at every (size, repeat) both ran, the same
    rows (read from each sweep's own ``subsets``, whatever seed or order drew them)."""
    if a.X.shape != b.X.shape or a.Y.shape != b.Y.shape or not (torch.equal(a.X, b.X) and torch.equal(a.Y, b.Y)):
        return False
    rows_a = {(a.sizes[c], r): rows for (c, r), rows in a.subsets.items()}
    rows_b = {(b.sizes[c], r): rows for (c, r), rows in b.subsets.items()}
    common = rows_a.keys() & rows_b.keys()
    return bool(common) and all(np.array_equal(rows_a[k], rows_b[k]) for k in common)


#: Columns of :func:`paired_differences`.
PAIRED_COLUMNS = ["label", "reference", SIZE, "repeats", "statistic", "center", "low", "high", "lower"]


def paired_differences(sweeps: Mapping[str, Sweep], metric: str = "mse", center: str | None = None
                       ) -> pd.DataFrame:
    """Each sweep against the first, repeat by repeat, where the two share their subsets (:func:`shares_subsets`).

    Two sweeps of the same rows are paired: repeat ``r`` at size ``n`` held out the same
    points in both, so the per-repeat comparison is free of the subsets' own spread
    (which makes two sweeps' bands overlap even when one is better on every subset).
    One statistic for the whole comparison (``center``, :func:`gpviz.charts.center_kind`):
    with the geometric mean, the per-repeat *ratio* (this sweep's metric over the first's)
    and its geometric mean; with the mean, the per-repeat *difference* and its mean.

    Args:
        sweeps: ``{label: sweep}``, the first the reference.
        metric: The metric compared (lower is better).
        center: ``"geometric mean"`` or ``"mean"`` (None: decided over the sweeps' scores).

    Returns:
        One row per (paired sweep, size) with at least one repeat finished in both:
        ``label``, ``reference`` (the first label), ``size``, ``repeats`` (pairs),
        ``statistic`` (``"ratio"`` or ``"difference"``), ``center`` (geometric mean of the
        ratios or mean of the differences), ``low`` and ``high`` (their 10th and 90th
        percentiles) and ``lower`` (repeats where this sweep's metric is below the first's).
        Empty when no sweep shares the first one's subsets.
    """
    labels = list(sweeps)
    if center is None:
        center = center_kind([s.scores for s in sweeps.values()], metric)
    first = sweeps[labels[0]]
    ratio = center == GEOMETRIC_MEAN
    out = []
    for label in labels[1:]:
        sweep = sweeps[label]
        if not shares_subsets(first, sweep):
            continue
        both = _ok_scores(first, metric).merge(_ok_scores(sweep, metric), on=[SIZE, I_REPEAT], suffixes=("_a", "_b"))
        for size, grp in both.groupby(SIZE, sort=True):
            a, b = grp["v_a"].to_numpy(np.float64), grp["v_b"].to_numpy(np.float64)
            per = b / a if ratio else b - a
            mid = float(np.exp(np.mean(np.log(per)))) if ratio else float(np.mean(per))
            lo, hi = np.percentile(per, BAND_PERCENTILES)
            out.append((label, labels[0], int(size), len(per), "ratio" if ratio else "difference", mid, float(lo),
                        float(hi), int((b < a).sum())))
    return pd.DataFrame(out, columns=PAIRED_COLUMNS)


def _ok_scores(sweep: Sweep, metric: str) -> pd.DataFrame:
    """``size``, ``i_repeat`` and the metric as ``v``, for the cells that finished with a finite value."""
    s = sweep.scores
    v = pd.to_numeric(s[metric], errors="coerce")
    keep = s["status"].eq("ok") & np.isfinite(v)
    return pd.DataFrame({SIZE: s[SIZE][keep].astype(int), I_REPEAT: s[I_REPEAT][keep].astype(int), "v": v[keep]})


def optimism_gaps(sweeps: Mapping[str, Sweep], metric: str = "mse", center: str | None = None
                  ) -> list[tuple[str, str, pd.DataFrame]]:
    """Each ``refit=False`` sweep against the first refit sweep of the same cells: the optimism gap per size.

    Fixed hyperparameters (BoTorch's ``efficient_loo_cv``) leave the fitted hyperparameters
    as the full subset set them; refitting each fold shows what leaving a point out really
    costs. Pairs are sweeps of the same data, seed and order (so the same rows per cell).

    Args:
        sweeps: ``{label: sweep}``.
        metric: The metric compared (lower is better: an error or a negative log density).
        center: The centre statistic (as :func:`gpviz.sweep.scores.score_table`; None decides it).

    Returns:
        ``(refit label, fixed label, gap)`` per pair; ``gap`` has one row per size both hold:
        ``size``, ``refit`` and ``fixed`` (the centres), ``ratio`` (fixed over refit; NaN
        unless the centre is the geometric mean) and ``diff`` (fixed minus refit).
    """
    out = []
    for fixed_label, fixed in sweeps.items():
        if fixed.refit:
            continue
        refit_label = next((lb for lb, s in sweeps.items() if s.refit and _same_cells(s, fixed)), None)
        if refit_label is None:
            continue
        table = score_table({refit_label: sweeps[refit_label], fixed_label: fixed}, metric, center=center)
        mine = table[table["label"] == fixed_label].set_index(SIZE)
        theirs = table[table["label"] == refit_label].set_index(SIZE)
        sizes = [s for s in mine.index if s in theirs.index]
        gap = pd.DataFrame({SIZE: sizes, "refit": theirs.loc[sizes, "center"].to_numpy(),
                            "fixed": mine.loc[sizes, "center"].to_numpy(),
                            "ratio": mine.loc[sizes, "ratio_to_first"].to_numpy(),
                            "diff": mine.loc[sizes, "diff_to_first"].to_numpy()})
        out.append((refit_label, fixed_label, gap))
    return out


def gap_sentence(refit_label: str, fixed_label: str, gap: pd.DataFrame, metric: str) -> str:
    """One sentence: where fixed hyperparameters look better than refitting (optimistic), and by how much."""
    ratios = gap["ratio"].notna().all() and len(gap)
    per = ", ".join(f"{r:.2f}x at n = {n}" if ratios else f"{d:+.3g} at n = {n}"
                    for n, r, d in zip(gap[SIZE], gap["ratio"], gap["diff"]))
    what = "over the refit one" if ratios else "minus the refit one"
    optimistic = gap[gap["diff"] < 0]
    if optimistic.empty:
        verdict = "not optimistic at any size compared"
    else:
        worst = optimistic.loc[optimistic["diff"].idxmin()] if not ratios else \
            optimistic.loc[optimistic["ratio"].idxmin()]
        by = f"{worst['ratio']:.2f}x" if ratios else f"{worst['diff']:+.3g}"
        verdict = (f"optimistic (a lower held-out {metric} than refitting) at n = "
                   f"{', '.join(str(int(n)) for n in optimistic[SIZE])}, most at n = {int(worst[SIZE])} ({by})")
    return (f"Optimism gap: {fixed_label!r} keeps each cell's full-data hyperparameters (refit=False, closed-form "
            f"leave-one-out), {refit_label!r} refits every fold; its {metric} {what}: {per}; fixed "
            f"hyperparameters are {verdict}.")


def gap_section(sweep: Sweep, other, metric: str = "mse") -> Markup:
    """A sweep page's optimism-gap section for ``sweep`` and ``other``: one refit, the other ``refit=False``.

    Args:
        sweep: The sweep whose page it is.
        other: The same cells fitted the other way (same data, seed and order).
        metric: The metric compared.

    Returns:
        Both scaling curves and their ratio per size, a table and :func:`gap_sentence`
        (:func:`gpviz.html.below.gap_html`).

    Raises:
        InputError: if ``other`` is not a sweep, both or neither are ``refit=False``, their
            cells differ, or ``metric`` is not a column of both sweeps' scores.
    """
    if not isinstance(other, Sweep):
        raise InputError(f"gap= expects the same cells' sweep fitted the other way (refit=False for a refit sweep), "
                         f"got {type(other).__name__}")
    if sweep.refit == other.refit:
        raise InputError(f"gap= needs one refit sweep and one refit=False sweep of the same cells; both have "
                         f"refit={sweep.refit}")
    if not _same_cells(sweep, other):
        raise InputError("gap= needs a sweep of the same cells (the same data, seed and order), so each fold "
                         f"holds out the same point; got seeds {sweep.seed} and {other.seed}, orders "
                         f"{sweep.order!r} and {other.order!r}, data {tuple(sweep.X.shape)} and {tuple(other.X.shape)}")
    for s in (sweep, other):
        if metric not in s.scores.columns:
            raise InputError(f"gap=: unknown metric {metric!r} (scores have {list(s.metrics)})")
    refit, fixed = (sweep, other) if sweep.refit else (other, sweep)
    pair = {"refit": refit, "fixed": fixed}
    center = center_kind([refit.scores, fixed.scores], metric)
    [(a, b, gap)] = optimism_gaps(pair, metric, center)
    return gap_html(refit.scores, fixed.scores, gap, metric, gap_sentence(a, b, gap, metric), ("refit", "fixed"),
                    center)


def compare(sweeps: Mapping, metric: str = "mse", *, one_fold_per_repeat: bool = False,
            feature_names: Sequence[str] | None = None, title: str | None = None, pull_repeats: int | None = None,
            workers: int = 1, executor: TaskExecutor | None = None, units: str = "model") -> ComparisonFigure:
    """One page comparing cross-validation sweeps, e.g. two prior settings (their scaling curves on one chart).

    The page shows every sweep's scaling curve on one chart and a table of the
    metric per size compared with the first sweep (one centre statistic for all, decided
    once: the geometric mean when every value of every sweep is > 0, with ratios; else
    the mean, with differences; the page and ``scores["center_kind"]`` say which). Sweeps
    that share the first one's subsets (the same rows at each size and repeat) are also
    compared repeat by repeat (:func:`paired_differences`). Then each parameter's charts
    side by side, one row per parameter and one column per sweep, on one axis per row
    (two panels of rows on a wide page), with prior modes and bounds marked, each size
    band tinted by the share of its folds that :func:`gpviz.prior_pull` holds at the
    prior's mode (every fold of every repeat by default); hovering a dot shows the data
    row its fold held out. Last, per sweep side by side: its priors, how its cells were
    fitted, one sentence per parameter group saying where it leaves the mode, a table of
    the held shares and the count of every verdict that occurs per size. A ``refit=False``
    sweep given with a refit sweep of the same cells (same data, seed, order) gets the
    optimism gap below the scores (:func:`optimism_gaps`, as on a sweep's own page): both
    scaling curves and their ratio per size (a chart and a table), and one sentence on its
    metric over the refit one per size and where fixed hyperparameters look better than
    refitting; the pairs are the page's ``gaps``.

    Args:
        sweeps: ``{label: sweep}`` from :func:`gpviz.cv_sweep`, in display order
            (the first is the reference of the ratios).
        metric: The metric compared (``mse``, ``mae``, ``nlpd`` or a custom one).
        one_fold_per_repeat: One dot per repeat (its first fold) instead of one per fold.
        feature_names: Names of the input columns.
        title: Page title.
        pull_repeats: Repeats per size whose fitted models are judged by
            ``prior_pull`` (``None``, the default: all; ``0``: skip the verdicts, and
            the page says so).
        workers: Worker processes that judge the verdicts (1: this process), as in
            :func:`gpviz.cv_sweep`; the page is the same either way.
        executor: A ``concurrent.futures.Executor`` or a ``dask.distributed.Client`` that
            judges them instead (e.g. the one the sweeps ran on).
        units: ``"model"`` or ``"original"``: each sweep's cells converted with their own
            transforms, as in ``Sweep.render(units=...)``.

    Returns:
        A :class:`~gpviz.html.comparison.ComparisonFigure`.

    Raises:
        InputError: if ``sweeps`` is not a non-empty dict of sweeps with string labels,
            ``metric`` is not a column of the sweeps' scores, or the parallel arguments are
            bad (as in :func:`gpviz.cv_sweep`).
    """
    sweeps = _check_sweeps(sweeps)
    workers, executor, _ = check_parallel(workers, executor, None)
    check_units(units)
    labels = list(sweeps)
    for label, sweep in sweeps.items():
        if metric not in sweep.scores.columns:
            raise InputError(f"compare: unknown metric {metric!r} for {label!r} (scores have {list(sweep.metrics)})")
    references = {lb: s.reference_scores for lb, s in sweeps.items()}
    # one centre statistic for every curve, reference line and table cell, decided once over all of them
    center = center_kind([s.scores for s in sweeps.values()] + list(references.values()), metric)
    chart = compare_scaling_curves({lb: s.scores for lb, s in sweeps.items()}, metric, references=references,
                                   center=center)
    table = score_table(sweeps, metric, center=center)
    paired = paired_differences(sweeps, metric, center)
    gaps = optimism_gaps(sweeps, metric, center)
    # each refit / refit=False pair: both curves and their ratio per size, the table and the sentence
    gap_sections = [gap_html(sweeps[a].scores, sweeps[b].scores, gap, metric, gap_sentence(a, b, gap, metric),
                             (a, b), center) for a, b, gap in gaps]
    sections, pulls, views, verdicts, heldout = {}, {}, {}, {}, {}
    for label, sweep in sweeps.items():
        if sweep.parameters.empty:  # every cell failed: say so, and show the others
            first_error = sweep.scores["error"].iloc[0] if len(sweep.scores) else "no cells"
            sections[label] = Markup(f'<div class="gpviz-cmp-lead">Every cell of this sweep failed, so there are no '
                                     f'fitted parameters to show (first error: {escape_html(first_error)}).</div>')
            pulls[label] = pd.DataFrame()
            continue
        expr = sweep.expression(feature_names)
        judgement = sweep_verdicts(sweep, expr, None if pull_repeats is None or pull_repeats > 0 else False,
                                   repeats=pull_repeats, workers=workers, executor=executor)
        if not judgement.judged and pull_repeats == 0:
            judgement = replace(judgement, note="Verdicts not computed: compare(pull_repeats=0) was asked for.")
        pulls[label] = judgement.pull if judgement.pull is not None else pd.DataFrame()
        sections[label] = priors_html(describe_priors(sweep.model))
        # the grid's headings carry the label: no second title inside the figure, no curve beside it
        views[label] = sweep_view(sweep, expr, judgement, one_fold_per_repeat, title="", chart=False, units=units)
        verdicts[label] = sweep_notes_html(views[label], judgement.table)
        if sweep.mode != FIXED:  # each dot a fold: hovering it shows the row it held out (gpviz.js)
            names = list(feature_names or sweep.feature_names or [f"x{j}" for j in range(sweep.X.shape[-1])])
            heldout[label] = heldout_html(heldout_points(sweep.parameters, sweep.subsets, sweep.X, names,
                                                         one_fold_per_repeat), names)
    # side by side, compared by position: each key's axis spans every sweep's axis for that key (from the
    # views' own axes); each sweep's figure is one column of the grid, drawn once
    ranges = view_ranges(views.values())
    figures, grid = side_by_side({label: with_ranges(view, ranges) for label, view in views.items()}, heldout)
    title = title or "Comparison: " + " vs ".join(labels)
    img = figure_to_img(chart, alt=f"leave-one-out {metric} per dataset size: " + " vs ".join(labels))
    why = ("every value is > 0, so sweeps are compared by their ratio" if center == GEOMETRIC_MEAN else
           f"some {metric} value is \u2264 0 (or none is finite), so no geometric mean: sweeps are compared by "
           f"their difference")
    lead = (Markup(f'<div class="gpviz-cmp-lead">Leave-one-out cross-validation, held-out {escape_html(metric)} per '
                   f'dataset size: the line is the {escape_html(center)} over repeats, the same statistic for every '
                   f'sweep and size ({escape_html(why)}); the band the 10th to 90th percentile.</div>')
            + img + scores_html(table, labels, metric) + paired_html(paired, metric)
            + Markup("".join(f'<div class="gpviz-cmp-gap">{g}</div>' for g in gap_sections)))
    return ComparisonFigure(title, lead, figures, sections, chart, table, pulls, grid, verdicts, paired, gaps)
