"""Side-by-side comparison of cross-validation sweeps: one scaling chart, then each sweep's parameters and priors."""

from __future__ import annotations

import hashlib
import math
import sys
import types
import warnings
from typing import Mapping

import numpy as np
import pandas as pd

from gpviz.errors import GpvizWarning, InputError
from gpviz.render import Page, escape_html

_PAGE_CSS = """
.gpviz-compare { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
  max-width: 1300px; margin: 0 auto; padding: 12px 18px; }
.gpviz-compare h1 { font-size: 20px; margin: 6px 0 4px; }
.gpviz-compare h2 { font-size: 16px; margin: 26px 0 6px; padding-top: 10px; border-top: 2px solid #ccc; }
.gpviz-compare .gpviz-cmp-lead { color: #555; font-size: 13px; margin: 2px 0 10px; }
.gpviz-compare table { border-collapse: collapse; font-size: 12px; margin: 6px 0 12px; }
.gpviz-compare th, .gpviz-compare td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
.gpviz-compare th { background: #f4f4f4; }
.gpviz-compare td.gpviz-cmp-key, .gpviz-compare th.gpviz-cmp-key { text-align: left; font-family: monospace; }
.gpviz-compare .gpviz-cmp-priors { font-family: monospace; font-size: 12px; background: #fafafa;
  border: 1px solid #e4e4e4; padding: 6px 10px; margin: 4px 0 10px; white-space: pre-wrap; }
.gpviz-compare .gpviz-cmp-held { background: rgba(255, 170, 0, 0.22); }
"""


def _check_sweeps(sweeps) -> dict:
    if not isinstance(sweeps, Mapping):
        raise InputError(f"compare expects a dict {{label: sweep}} of cv_sweep results, got {type(sweeps).__name__}")
    if not sweeps:
        raise InputError("compare needs at least one sweep, got an empty dict")
    out = {}
    for label, sweep in sweeps.items():
        if not isinstance(label, str) or not label.strip():
            raise InputError(f"compare: labels must be non-empty strings, got {label!r}")
        missing = [a for a in ("scores", "parameters", "sizes", "frame", "info", "expression")
                   if not hasattr(sweep, a)]
        if missing:
            raise InputError(f"compare: {label!r} is a {type(sweep).__name__}, not a sweep from gpviz.cv_sweep "
                             f"(it has no {', '.join(missing)})")
        out[label] = sweep
    return out


def score_table(sweeps: Mapping, metric: str = "mse") -> pd.DataFrame:
    """Per dataset size and sweep: the centre and 10th/90th percentile of ``metric``, and the ratio of centres.

    Returns:
        One row per (size, label): ``size``, ``label``, ``low``, ``center``, ``high``,
        ``n_ok``, and ``ratio_to_first`` (this sweep's centre over the first sweep's at
        that size; < 1 means smaller than the first).
    """
    from gpviz.charts import score_bands

    frames = [score_bands(sweep.scores, metric).assign(label=label, order=i)
              for i, (label, sweep) in enumerate(sweeps.items())]
    table = pd.concat(frames, ignore_index=True).sort_values(["size", "order"], kind="stable")
    first = table[table["order"] == 0].set_index("size")["center"]
    table["ratio_to_first"] = table["center"] / table["size"].map(first)
    return table[["size", "label", "low", "center", "high", "n_ok", "ratio_to_first"]].reset_index(drop=True)


def describe_priors(model) -> list[tuple[str, str]]:
    """(parameter path, ``PriorClass(params)``) for every prior of a model: covariance, then noise, then mean."""
    from gpviz.params import prior_params

    out = []
    for name, _module, prior, _closure, _setting in model.named_priors():
        path, _, prior_name = name.rpartition(".")
        target = f"{path}.{prior_name[: -len('_prior')]}" if prior_name.endswith("_prior") else name
        out.append((target.lstrip("."), f"{type(prior).__name__}({prior_params(prior)})"))
    # in the order the expression prints its sections: covariance, noise, mean
    rank = {"covar_module": 0, "likelihood": 1, "mean_module": 2}
    return sorted(out, key=lambda item: rank.get(item[0].split(".")[0], 3))


def _verdict_info(info: pd.DataFrame, pull: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``info`` with a per-key ``verdict``: held by prior when at least half the folds of some size are held
    (:func:`gpviz.render.key_verdicts` with ``by="size"``, the rule of ``Sweep.render`` too)."""
    from gpviz.priors import AT_BOUND, FREE, held_fractions
    from gpviz.render import key_verdicts, with_verdicts

    if pull is None or pull.empty:
        info = info.copy()
        info["verdict"] = np.where(info.get("at_bound", False), AT_BOUND, FREE)
        return info, None
    return with_verdicts(info, key_verdicts(pull, by="size")), held_fractions(pull)


def shared_ranges(figures) -> dict[str, tuple[float, float]]:
    """key -> (lowest lo, highest hi) of the key's axis over ``figures`` (for ``render_frame(axis_ranges=...)``)."""
    out: dict[str, tuple[float, float]] = {}
    for fig in figures:
        for key, p in fig.spec["params"].items():
            ax = fig.spec["axes"][p["axis"]]
            lo, hi = out.get(key, (ax["lo"], ax["hi"]))
            out[key] = (min(lo, ax["lo"]), max(hi, ax["hi"]))
    return out


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.4g}"


def _scores_html(table: pd.DataFrame, labels: list[str], metric: str) -> str:
    from gpviz.render import escape_html

    head = "".join(f"<th>{escape_html(lb)}<br>{escape_html(metric)} [10th, 90th]</th>" for lb in labels)
    ratio_head = "".join(f"<th>ratio {escape_html(lb)} / {escape_html(labels[0])}</th>" for lb in labels[1:])
    rows = []
    for size, grp in table.groupby("size", sort=True):
        by = grp.set_index("label")
        cells = "".join(
            f"<td>{_fmt(by.loc[lb, 'center'])} [{_fmt(by.loc[lb, 'low'])}, {_fmt(by.loc[lb, 'high'])}]</td>"
            if lb in by.index else "<td>–</td>" for lb in labels)
        ratios = "".join(f"<td>{_fmt(by.loc[lb, 'ratio_to_first'])}</td>" if lb in by.index else "<td>–</td>"
                         for lb in labels[1:])
        rows.append(f"<tr><td>{int(size)}</td>{cells}{ratios}</tr>")
    return (f'<table class="gpviz-cmp-scores"><tr><th>n</th>{head}{ratio_head}</tr>{"".join(rows)}</table>')


def _priors_html(model) -> str:
    from gpviz.render import escape_html

    lines = [f"{path} ~ {desc}" for path, desc in describe_priors(model)]
    body = "\n".join(lines) if lines else "(no priors: every parameter is fitted by the data alone)"
    return f'<div class="gpviz-cmp-priors" title="priors">{escape_html(body)}</div>'


def _held_html(fractions: pd.DataFrame | None, n_repeats: int) -> str:
    from gpviz.render import escape_html

    if fractions is None:
        return ""
    shown = fractions[(fractions > 0).any(axis=1)]
    if shown.empty:
        return '<div class="gpviz-cmp-lead">prior_pull: no parameter is held by its prior in any fold.</div>'
    head = "".join(f"<th>n = {int(s)}</th>" for s in shown.columns)
    rows = []
    for key, row in shown.iterrows():
        cells = "".join(
            f'<td class="{"gpviz-cmp-held" if v >= 0.5 else ""}">{v:.0%}</td>' if math.isfinite(v) else "<td>–</td>"
            for v in row.to_numpy(dtype=float))
        rows.append(f'<tr><td class="gpviz-cmp-key">{escape_html(key)}</td>{cells}</tr>')
    what = "the first repeat" if n_repeats == 1 else f"the first {n_repeats} repeats"
    return (f'<div class="gpviz-cmp-lead">Share of folds (of {escape_html(what)} per size) that '
            f'<code>gpviz.prior_pull</code> judges <b>held by prior</b> (the prior supplies most of the curvature '
            f'and the value sits near its mode); parameters held in at least half the folds of some size are '
            f'tinted in the view below.</div><table class="gpviz-cmp-heldtable"><tr><th class="gpviz-cmp-key">parameter</th>'
            f'{head}</tr>{"".join(rows)}</table>')


class ComparisonFigure(Page):
    """The comparison page: ``.html()`` (standalone, offline), ``._repr_html_()``, ``.save(path)``.

    Attributes:
        labels: Sweep labels, in the order given.
        figures: label -> the sweep's parameter :class:`gpviz.render.Figure` (none for a sweep
            whose every cell failed).
        chart: The matplotlib figure with every sweep's scaling curve.
        scores: :func:`score_table` of the sweeps.
        pulls: label -> :func:`gpviz.priors.sweep_prior_pull` rows (empty if not computed).
        title: Page title.
    """

    def __init__(self, title: str, lead_html: str, figures: dict, sections: dict, chart, scores: pd.DataFrame,
                 pulls: dict):
        self.title = title
        self._lead = lead_html
        self.figures = figures
        self._sections = sections
        self.chart = chart
        self.scores = scores
        self.pulls = pulls
        self.labels = list(sections)
        digest = hashlib.sha256("".join(f.element_id for f in figures.values()).encode()).hexdigest()[:10]
        self._ids = {lb: f"gpviz-cmp{i}-{digest}" for i, lb in enumerate(self.labels)}

    _what = "comparison"

    def _animated(self) -> bool:
        return any(f.mode == "timeline" for f in self.figures.values())

    def _head(self) -> str:
        return f"<style>{_PAGE_CSS}</style>\n"

    def _body(self, suffix: str = "") -> str:
        parts = [f'<div class="gpviz-compare"><h1>{escape_html(self.title)}</h1>', self._lead]
        for label in self.labels:
            parts.append(f"<h2>{escape_html(label)}</h2>")
            parts.append(self._sections[label])
            if label in self.figures:
                parts.append(self.figures[label].fragment(self._ids[label] + suffix))
        parts.append("</div>")
        return "\n".join(parts) + "\n"

    def __repr__(self) -> str:
        return f"<gpviz.ComparisonFigure: {len(self.labels)} sweeps {self.labels}>"


def compare(sweeps: Mapping, metric: str = "mse", *, one_fold_per_repeat: bool = False, feature_names=None,
            title: str | None = None, pull_repeats: int | None = 1) -> ComparisonFigure:
    """One page comparing cross-validation sweeps, e.g. two prior settings (their scaling curves on one chart).

    The page shows every sweep's scaling curve on one chart and a table of the
    metric per size with the ratio to the first sweep; then, for each sweep, its
    priors written out, a table of how often :func:`gpviz.prior_pull` judges each
    parameter held by its prior, and its parameter view (one band per size) with
    prior modes and bounds marked and held parameters tinted.

    Args:
        sweeps: ``{label: sweep}`` from :func:`gpviz.cv_sweep`, in display order
            (the first is the reference of the ratios).
        metric: The metric compared (``mse``, ``mae``, ``nlpd`` or a custom one).
        one_fold_per_repeat: One dot per repeat (its first fold) instead of one per fold.
        feature_names: Names of the input columns.
        title: Page title.
        pull_repeats: Repeats per size whose fitted models are analysed by
            ``prior_pull`` (``None``: all; ``0``: skip the verdicts).

    Returns:
        A :class:`ComparisonFigure`.

    Raises:
        InputError: if ``sweeps`` is not a non-empty dict of sweeps with string labels,
            or ``metric`` is not a column of the sweeps' scores.
    """
    from gpviz.charts import compare_scaling_curves, figure_to_img
    from gpviz.priors import sweep_prior_pull
    from gpviz.render import escape_html, render_frame

    sweeps = _check_sweeps(sweeps)
    labels = list(sweeps)
    for label, sweep in sweeps.items():
        if metric not in sweep.scores.columns:
            raise InputError(f"compare: unknown metric {metric!r} for {label!r} (scores have "
                             f"{[c for c in sweep.metrics] if hasattr(sweep, 'metrics') else list(sweep.scores)})")
    chart = compare_scaling_curves({lb: s.scores for lb, s in sweeps.items()}, metric)
    table = score_table(sweeps, metric)
    figures, sections, pulls, views = {}, {}, {}, {}
    for label, sweep in sweeps.items():
        if sweep.parameters.empty:  # every cell failed: say so, and show the others
            first_error = sweep.scores["error"].iloc[0] if len(sweep.scores) else "no cells"
            sections[label] = (f'<div class="gpviz-cmp-lead">Every cell of this sweep failed, so there are no '
                               f'fitted parameters to show (first error: {escape_html(first_error)}).</div>')
            pulls[label] = pd.DataFrame()
            continue
        expr = sweep.expression(feature_names)
        frame = sweep.frame(one_fold_per_repeat, keys=list(expr.keys))
        pull = None
        if pull_repeats is None or pull_repeats > 0:
            try:
                pull = sweep_prior_pull(sweep, repeats=pull_repeats)
            except Exception as exc:  # the comparison stands without verdicts
                warnings.warn(f"gpviz.compare: prior_pull failed for {label!r} ({type(exc).__name__}: {exc}); "
                              f"the page shows no verdicts for it", GpvizWarning, stacklevel=2)
        pulls[label] = pull if pull is not None else pd.DataFrame()
        info, fractions = _verdict_info(sweep.info(expr), pull)
        n_rep = sweep.repeats if pull_repeats is None else min(pull_repeats, sweep.repeats)
        sections[label] = _priors_html(sweep.model) + _held_html(fractions, n_rep)
        # the section heading carries the label: no second title inside the figure
        views[label] = dict(expr=expr, frame=frame, info=info, config_labels=[f"n = {s}" for s in sweep.sizes],
                            member_label=sweep.member_label(one_fold_per_repeat)
                            if hasattr(sweep, "member_label") else None)
        figures[label] = render_frame(**views[label])
    # stacked views are compared by position: each key's axis spans every sweep's axis for that key
    ranges = shared_ranges(figures.values())
    figures = {label: render_frame(**views[label], axis_ranges=ranges) for label in figures}
    title = title or "Comparison: " + " vs ".join(labels)
    img = figure_to_img(chart, alt=f"leave-one-out {metric} per dataset size: " + " vs ".join(labels))
    lead = (f'<div class="gpviz-cmp-lead">Leave-one-out cross-validation, held-out {escape_html(metric)} per '
            f'dataset size: the line is the geometric mean over repeats (the mean for a metric that can be negative), the band the 10th to 90th '
            f'percentile.</div>{img}{_scores_html(table, labels, metric)}')
    return ComparisonFigure(title, lead, figures, sections, chart, table, pulls)


__all__ = ["compare", "ComparisonFigure", "score_table", "describe_priors", "shared_ranges"]


class _CallableModule(types.ModuleType):
    """Lets ``gpviz.compare(sweeps)`` work even where the submodule shadows the function on the package."""

    def __call__(self, sweeps, *args, **kwargs) -> ComparisonFigure:
        return compare(sweeps, *args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
