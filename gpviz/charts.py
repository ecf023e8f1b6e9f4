"""Matplotlib charts: the cross-validation scaling curve, and figures as PNG bytes or embedded <img> tags.

Charts are built on ``matplotlib.figure.Figure`` with an Agg canvas, never through
``pyplot``: they work headless (no display, no GUI backend), leave pyplot's global
figure list alone (a notebook does not show them twice), and still display in a
notebook through ``_repr_png_``.
"""

from __future__ import annotations

import base64
import io
import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gpviz.errors import InputError
from gpviz.markup import Markup, escape_html
from gpviz.sweep.scores import BAND_PERCENTILES, CENTERS, GEOMETRIC_MEAN, MEAN, center_kind, score_bands
from gpviz.values.columns import SIZE
from gpviz.words import plural

def mpl_text(text) -> str:
    """User text (labels, titles, metric names) as matplotlib shows it literally.

    Matplotlib reads a pair of ``$`` as mathtext: ``"cost $5 and $6"`` is parsed
    as math (and ``\\``, ``_``, ``^`` inside it as commands), which raises or
    prints something else. An escaped ``\\$`` is a literal dollar and keeps all
    other characters literal, so every user string reaches a chart through here.
    """
    return str(text).replace("$", r"\$")


class ChartFigure(Figure):
    """A matplotlib ``Figure`` on an Agg canvas that shows itself in a notebook as a PNG."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        FigureCanvasAgg(self)  # attaches itself as self.canvas: renders with no display

    def _repr_png_(self) -> bytes:
        return figure_to_png(self)


def new_figure(width: float = 6.4, height: float = 4.0) -> ChartFigure:
    """A fresh headless figure (not registered with pyplot)."""
    return ChartFigure(figsize=(width, height), layout="constrained")


def figure_to_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure rendered as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_to_img(fig: Figure, alt: str = "chart", dpi: int = 110, css_class: str = "gpviz-chart") -> Markup:
    """An ``<img>`` tag holding the figure as a base64 PNG, for ``render_frame(extra_html=...)``.

    Args:
        fig: A matplotlib figure.
        alt: Alternative text (escaped here).
        dpi: Resolution of the PNG.
        css_class: CSS class of the tag.

    Returns:
        Trusted HTML (:class:`~gpviz.markup.Markup`): ``<img class=... alt=... src="data:image/png;base64,...">``.
    """
    data = base64.b64encode(figure_to_png(fig, dpi=dpi)).decode("ascii")
    width = int(round(fig.get_figwidth() * dpi))
    return Markup(f'<img class="{escape_html(css_class)}" alt="{escape_html(alt)}" width="{width}" '
                  f'style="max-width:100%;height:auto" src="data:image/png;base64,{data}">')


#: How the dashed reference line of a scaling curve is labelled, per metric.
REFERENCE_LABELS = {"mse": "predict the training mean", "mae": "predict the training mean",
                    "nlpd": "Gaussian with the training mean and variance"}


def reference_label(metric: str) -> str:
    """The legend text of the reference line for ``metric``."""
    return REFERENCE_LABELS.get(metric, "training mean and variance")


def draw_reference(ax, reference: pd.DataFrame, metric: str, color: str = "0.35", label: str | None = None,
                   center: str | None = None):
    """A dashed line through the centre (per size, as the curve's) of the reference scores; None if it has none.

    See :func:`gpviz.sweep.scores.baseline_scores`: per fold, the training mean (and, for the
    NLPD, the training variance) predicts the held-out point. ``center``: the curve's
    centre statistic (see :func:`center_kind`; None: decided from ``reference``).
    """
    if reference is None or metric not in getattr(reference, "columns", ()):
        return None
    bands = score_bands(reference, metric, center=center)
    bands = bands[bands["n_ok"] > 0]
    if bands.empty:
        return None
    line, = ax.plot(bands[SIZE], bands["center"], ls="--", lw=1.4, color=color, zorder=1.5,
                    label=mpl_text(label) if label else f"reference: {reference_label(metric)}")
    line.set_gid("gpviz-reference")
    return line


def plain_number(v: float, _pos=None) -> str:
    """A tick label as people write it: ``2``, ``0.01``, ``300``, ``1e-05`` (never ``4×10⁰``)."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    a = abs(v)
    if 1e-3 <= a < 1e5:
        return f"{v:.4g}"
    return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def plain_log_ticks(axis) -> None:
    """Log-axis ticks at 1, 2 and 5 times each decade (all of them on a narrow axis), in plain numbers.

    matplotlib's default labels only the decades (``10⁰``) and writes minor ticks
    as ``4×10⁰``; a scaling curve often spans less than one decade.
    """
    lo, hi = sorted(axis.get_view_interval())
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    subs = (1.0,) if decades > 4 else ((1.0, 2.0, 5.0) if decades > 1.2 else (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0))
    axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(plain_number))
    axis.set_minor_locator(ticker.LogLocator(base=10, subs=tuple(s for s in range(1, 10) if s not in subs)))
    axis.set_minor_formatter(ticker.NullFormatter())


#: Scaling curves are shown at about this size (inches at 110 dpi: 550 x 374 px) with text of at least
#: 10 pt (15 px at 110 dpi; ~13 px when the browser shrinks the picture to its 480 px minimum).
CURVE_SIZE = (5.0, 3.4)
CURVE_FONT = 10


def scaling_curve(scores: pd.DataFrame, metric: str = "mse", *, ax=None, log_y: bool | None = None,
                  label: str | None = None, title: str | None = None, color: str | None = None,
                  reference: pd.DataFrame | None = None, center: str | None = None) -> Figure:
    """The scaling curve of a cross-validation sweep: held-out error against dataset size.

    Per dataset size, a band from the 10th to the 90th percentile of the metric
    across repeats and a line through its geometric mean.

    Args:
        scores: ``Sweep.scores`` (columns ``size``, ``status`` and ``metric``).
        metric: Which metric to draw (``mse``, ``mae``, ``nlpd``, or a custom one).
        ax: Draw into this matplotlib Axes instead of a new figure (e.g. to overlay
            two sweeps).
        log_y: Logarithmic y axis; default: when every value is positive.
        label: Legend label of the centre line.
        title: Axes title; default names the metric.
        color: Line and band colour.
        reference: Scores of the "predict the training mean" reference
            (``Sweep.reference_scores``): drawn as a dashed grey line through their
            centre per size (the same centre as the curve's), labelled
            :func:`reference_label`. For the MSE it is the error of predicting each
            held-out point by the mean of its fold's training outputs; for the NLPD
            that of the Gaussian with the training mean and variance.
        center: The centre statistic, ``"geometric mean"`` or ``"mean"`` (default: decided
            once over ``scores`` and ``reference`` together, :func:`center_kind`).

    Returns:
        The matplotlib Figure drawn into.

    Raises:
        InputError: if ``metric`` is not a column of ``scores``, or ``center`` is bad.
    """
    center = center if center is not None else center_kind([scores, reference], metric)
    bands = score_bands(scores, metric, center=center)
    fig = ax.figure if ax is not None else new_figure(*CURVE_SIZE)
    ax = ax if ax is not None else fig.add_subplot()
    kind = bands["center_kind"].iloc[0] if len(bands) else "mean"
    if log_y is None:
        log_y = kind == "geometric mean"
    # a size whose repeats all failed stays NaN: the line and the band break there instead of
    # bridging it with an interpolation nobody measured
    lo_p, hi_p = BAND_PERCENTILES
    line, = ax.plot(bands[SIZE], bands["center"], marker="o", lw=2, color=color,
                    label=mpl_text(label) if label else f"{kind}")
    ok = (bands["n_ok"] > 0).to_numpy()
    ax.fill_between(bands[SIZE], bands["low"].fillna(0.0), bands["high"].fillna(0.0), where=ok,
                    alpha=0.25, color=line.get_color(), lw=0,
                    label=f"{lo_p:g}th–{hi_p:g}th percentile" if label is None else None)
    # the range at each measured size as a bar too: a size between two failed ones has no band
    ax.vlines(bands[SIZE][ok], bands["low"][ok], bands["high"][ok], color=line.get_color(), alpha=0.45, lw=1.5)
    draw_reference(ax, reference, metric, center=center)
    failed = bands[bands["n_failed"] > 0]
    for _, row in failed.iterrows():
        # a size whose repeats all failed has no centre: mark it at the bottom of the axes
        where = dict(xy=(row[SIZE], row["center"])) if row["n_ok"] else dict(
            xy=(row[SIZE], 0.02), xycoords=ax.get_xaxis_transform())
        ax.annotate(f"{int(row['n_failed'])} failed", **where, textcoords="offset points", xytext=(0, 8),
                    ha="center", fontsize=CURVE_FONT, color="#b00")
    if log_y:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    ax.set_xlabel("dataset size n (leave-one-out folds)", fontsize=CURVE_FONT)
    ax.set_ylabel(mpl_text(f"held-out {metric}"), fontsize=CURVE_FONT)
    ax.tick_params(labelsize=CURVE_FONT)
    ax.set_xticks(bands[SIZE].tolist())
    n_rep = int(scores.groupby(SIZE).size().max()) if len(scores) else 0
    ax.set_title(mpl_text(title if title is not None else
                          f"Leave-one-out {metric} per size ({plural(n_rep, 'repeat')} per size)"), fontsize=CURVE_FONT)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=CURVE_FONT - 1)
    if log_y:
        plain_log_ticks(ax.yaxis)  # again: the view interval is final now
    return fig


__all__ = ["ChartFigure", "mpl_text", "new_figure", "figure_to_png", "figure_to_img", "score_bands", "scaling_curve",
           "BAND_PERCENTILES", "draw_reference", "reference_label", "REFERENCE_LABELS"]


def compare_scaling_curves(scores_by_label, metric: str = "mse", *, title: str | None = None,
                           references=None, center: str | None = None) -> Figure:
    """Several sweeps' scaling curves on one chart (e.g. two prior settings).

    Args:
        scores_by_label: ``{label: Sweep.scores}``, drawn in order, one colour each.
        metric: The metric to draw.
        title: Axes title; default names the metric.
        references: ``{label: Sweep.reference_scores}``: dashed reference lines (one grey
            line when every sweep has the same, e.g. the same data and subsets; else
            one per sweep in its colour).
        center: The one centre statistic of every curve and line (default: decided once
            over every sweep and reference, :func:`center_kind`).

    Returns:
        A matplotlib Figure: per sweep, a centre line and its 10th–90th percentile band.

    Raises:
        InputError: if ``scores_by_label`` is empty or ``metric`` is not a column of a frame.
    """
    if not scores_by_label:
        raise InputError("compare_scaling_curves needs at least one {label: scores} entry, got none")
    fig = new_figure(*CURVE_SIZE)
    ax = fig.add_subplot()
    refs = {lb: r for lb, r in (references or {}).items() if r is not None and metric in r.columns}
    if center is None:  # one statistic for every curve and reference line of the chart, decided once
        center = center_kind(list(scores_by_label.values()) + list(refs.values()), metric)
    positive = center == GEOMETRIC_MEAN
    sizes: set[int] = set()
    for i, (label, scores) in enumerate(scores_by_label.items()):
        scaling_curve(scores, metric, ax=ax, label=str(label), color=f"C{i}", log_y=positive, center=center)
        sizes.update(int(s) for s in scores[SIZE].unique())
    centres = [score_bands(r, metric, center=center)[[SIZE, "center"]].to_numpy() for r in refs.values()]
    if centres and all(c.shape == centres[0].shape and np.allclose(c, centres[0], equal_nan=True) for c in centres):
        draw_reference(ax, next(iter(refs.values())), metric, center=center)
    else:
        for i, (label, ref) in enumerate(scores_by_label.items()):
            if label in refs:
                draw_reference(ax, refs[label], metric, color=f"C{i}",
                               label=f"{label}: {reference_label(metric)}", center=center)
    ax.legend(fontsize=8)
    lo_p, hi_p = BAND_PERCENTILES
    ax.set_xticks(sorted(sizes))
    ax.set_title(mpl_text(title if title is not None else
                          f"Leave-one-out {metric} per size (bands: {lo_p:g}th–{hi_p:g}th pct.)"), fontsize=CURVE_FONT)
    if positive:
        plain_log_ticks(ax.yaxis)
    return fig


__all__ += ["compare_scaling_curves", "center_kind", "GEOMETRIC_MEAN", "MEAN", "CENTERS"]


# -- the fit tracer's pictures (matplotlib, drawn where pages are made) --------------------------------

def _colormap(n: int):
    cmap = matplotlib.colormaps["viridis"]
    return lambda i: cmap(i / max(n - 1, 1))


def loss_plot(ev: dict, summary, segments, n_members: int, ax=None):
    """Loss per member against the timestep.

    Each member's line stops where it stopped being optimized; a dot marks where
    it converged by its own criterion (:func:`gpviz.trace.summary.summarize`);
    dashed lines mark retries.

    Args:
        ev: The tracer's events.
        summary: Its per-member summary.
        segments: Its optimizer runs.
        n_members: Members traced.
        ax: A matplotlib axes to draw into (default: a new figure).

    Returns:
        The matplotlib ``Figure``.
    """
    fig = ax.figure if ax is not None else new_figure(7.0, 4.0)
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    summ = summary if len(ev["t"]) else None
    n = n_members
    cmap = _colormap(n)
    for m in range(n):
        sel = np.flatnonzero(ev["member"] == m)
        if not len(sel):
            continue
        order = sel[np.argsort(ev["t"][sel], kind="stable")]
        ax.plot(ev["t"][order], ev["loss"][order], lw=1.0, color=cmap(m), alpha=0.8)
        if summ is not None:
            row = summ.iloc[m]
            if not math.isnan(row["converged_step"]):
                last = segments[int(ev["seg"][order[-1]])] if segments else None
                if last is not None:
                    t = last.base + int(row["converged_step"]) - 1
                    hit = order[ev["t"][order] == t]
                    if len(hit):
                        ax.plot([t], [ev["loss"][hit[0]]], "o", ms=3, color=cmap(m))
    for s in segments[1:]:
        ax.axvline(s.base - 0.5, color="0.5", ls="--", lw=0.8)
    ax.set_xlabel("timestep (optimizer steps, all attempts)")
    ax.set_ylabel("loss (negative MLL)")
    ax.set_title(f"Loss per member ({plural(n, 'member')})")
    return fig


def fit_modes_chart(table):
    """Bar charts of member-evaluations and wall time per fit mode of a :class:`gpviz.trace.modes.FitModeTable`.

    Returns:
        The matplotlib ``Figure``.
    """
    fig = new_figure(8.0, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    names = [str(i) for i in table.index]
    colors = ["#4c72b0", "#dd8452", "#55a868"][: len(names)]
    ax1.bar(names, table["member_evaluations"].to_numpy(float), color=colors)
    ax1.set_ylabel("member-evaluations")
    ax1.set_title("Work: GP evaluations x members")
    for i, v in enumerate(table["member_evaluations"].to_numpy(float)):
        ax1.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=8)
    med = table["wall_time_s"].to_numpy(float)
    spread = None
    if "wall_time_min" in table.columns:  # the spread over runs as an error bar
        spread = np.vstack([med - table["wall_time_min"].to_numpy(float), table["wall_time_max"].to_numpy(float) - med])
    ax2.bar(names, med, color=colors, yerr=spread, capsize=4)
    ax2.set_ylabel("seconds")
    runs = int(table["runs"].max()) if "runs" in table.columns and len(table) else 1
    ax2.set_title(f"Wall time, median of {plural(runs, 'run')}")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=8)
    return fig


def optimism_gap_chart(refit_scores: pd.DataFrame, fixed_scores: pd.DataFrame, gap: pd.DataFrame,
                       metric: str = "mse", *, labels: tuple[str, str] = ("refit", "fixed"),
                       center: str | None = None) -> Figure:
    """The optimism gap: a refit and a ``refit=False`` sweep's scaling curves, and their ratio per size below.

    Args:
        refit_scores: The refit sweep's ``Sweep.scores``.
        fixed_scores: The fixed-hyperparameter sweep's ``Sweep.scores`` (the same cells).
        gap: :func:`gpviz.comparing.optimism_gaps`' frame of the pair (``size``, ``ratio``, ``diff``).
        metric: The metric drawn.
        labels: The two curves' legend labels, refit first.
        center: The one centre statistic of both curves and the gap (None: decided over both).

    Returns:
        A matplotlib Figure: the curves on top; below, fixed over refit per size (geometric
        means) with a line at 1, or fixed minus refit (means) with a line at 0.
    """
    center = center if center is not None else center_kind([refit_scores, fixed_scores], metric)
    positive = center == GEOMETRIC_MEAN
    fig = new_figure(CURVE_SIZE[0], CURVE_SIZE[1] * 1.45)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    for i, (label, scores) in enumerate(zip(labels, (refit_scores, fixed_scores))):
        scaling_curve(scores, metric, ax=top, label=label, color=f"C{i}", log_y=positive, center=center,
                      title=f"Optimism gap: held-out {metric} refit vs fixed hyperparameters")
    top.set_xlabel("")
    column, level, what = (("ratio", 1.0, "fixed / refit") if positive else ("diff", 0.0, "fixed \u2212 refit"))
    bottom.axhline(level, color="0.4", lw=1, ls="--")
    bottom.plot(gap[SIZE], gap[column], marker="o", lw=2, color="C3")
    for n, v in zip(gap[SIZE], gap[column]):
        bottom.annotate(f"{v:.2f}" + ("x" if positive else ""), (n, v), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=CURVE_FONT - 1)
    bottom.set_ylabel(mpl_text(what), fontsize=CURVE_FONT)
    bottom.set_xlabel("dataset size n (leave-one-out folds)", fontsize=CURVE_FONT)
    bottom.tick_params(labelsize=CURVE_FONT)
    bottom.grid(True, alpha=0.3)
    bottom.set_xticks(gap[SIZE].tolist())
    return fig


__all__ += ["optimism_gap_chart"]
