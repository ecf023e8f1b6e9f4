"""The comparison page's HTML: scores, then each parameter's charts side by side (one column per sweep), then
each sweep's priors and verdicts side by side.

The parameter grid is one row per parameter and one column per sweep, every chart of a
row on the same axis: two priors compare at a glance. Each sweep is still one
:class:`~gpviz.html.figure.Figure` (its own spec and data, mounted by gpviz.js); its
container is ``display: contents``, so its placeholders are cells of the page's grid,
placed by row and column.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import Mapping

import pandas as pd

from gpviz.html.below import note_html
from gpviz.html.figure import Figure, band_height_px, chart_placeholder, spec_of, static_chart, summary_html
from gpviz.html.page import Page
from gpviz.markup import Markup, escape_html
from gpviz.priors.verdicts import VERDICTS
from gpviz.tree.nodes import Param, iter_nodes
from gpviz.values.columns import SIZE
from gpviz.view.ranges import shared_ranges as view_ranges
from gpviz.view.records import FrameMode, VerdictSummary, ViewData

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
  border: 1px solid #e4e4e4; padding: 6px 10px; margin: 4px 0 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
.gpviz-compare .gpviz-cmp-held { background: rgba(255, 170, 0, 0.22); }
.gpviz-compare .gpviz-cmp-wrap { container-type: inline-size; }
.gpviz-compare .gpviz-cmp-grid { padding-bottom: 4px; }
.gpviz-compare .gpviz-cmp-grid > .gpviz-figure { display: contents; }
.gpviz-compare .gpviz-cmp-head { position: sticky; top: 0; z-index: 2; background: #fff; font-weight: 600;
  font-size: 12px; padding: 4px 0; border-bottom: 1px solid #ccc; align-self: stretch; max-width: 208px; }
.gpviz-compare .gpviz-cmp-head .gpviz-hover { display: block; font-weight: normal; color: #b35900; font-size: 11px;
  min-height: 14px; }
.gpviz-compare .gpviz-cmp-section { font-weight: 600; font-size: 12px; margin-top: 6px; border-bottom: 1px solid #eee; }
.gpviz-compare .gpviz-cmp-label { font-family: Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 11px;
  max-width: 150px; overflow-wrap: anywhere; }
/* a chart's cell as tall as its chart: no line box around the inline chart (as gpviz.css does for .gpviz-cell) */
.gpviz-compare .gpviz-cmp-cell > .gpviz-param { display: flex; padding: 0; }
/* band labels of one width: every canvas of a column starts at the same x (a bold held label is wider) */
.gpviz-compare .gpviz-cmp-cell .gpviz-band-labels { min-width: 40px; box-sizing: border-box; }
.gpviz-compare .gpviz-cmp-missing { color: #999; font-size: 12px; }
.gpviz-compare .gpviz-cmp-columns { display: grid; column-gap: 22px; align-items: start; }
.gpviz-compare .gpviz-cmp-columns > div { min-width: 0; overflow-x: auto; }
.gpviz-compare .gpviz-cmp-legend { color: #555; font-size: 12px; margin: 4px 0 8px; }
.gpviz-compare .gpviz-verdicts { font-size: 12px; margin: 6px 0; }
.gpviz-compare .gpviz-cmp-column .gpviz-sweep-mode, .gpviz-compare .gpviz-cmp-column .gpviz-sweep-notes {
  font-size: 12px; }
.gpviz-compare .gpviz-verdict-note { color: #555; margin-bottom: 4px; }
.gpviz-compare .gpviz-verdict-sentences { margin: 4px 0 8px 18px; padding: 0; }
.gpviz-compare .gpviz-verdict-table { font-size: 11px; }
.gpviz-compare .gpviz-verdict-table .gpviz-verdict-key { text-align: left; font-family: monospace; }
.gpviz-compare .gpviz-verdict-cell { cursor: help; }
.gpviz-compare .gpviz-verdict-table td, .gpviz-compare .gpviz-cmp-verdicts td { white-space: nowrap; }
/* The one-panel grid is written in style attributes (an untrusted notebook keeps those and drops <style>);
   a wide page's two panels override them from here, hence !important. */
@container (min-width: WIDEpx) {
  .gpviz-compare .gpviz-cmp-grid { grid-template-columns: var(--cols2) !important; }
  .gpviz-compare .gpviz-cmp-at { grid-row: var(--r2) !important; grid-column: var(--c2) !important; }
  .gpviz-compare .gpviz-cmp-section.gpviz-cmp-at { grid-column: var(--c2) / span var(--span) !important; }
  .gpviz-compare .gpviz-cmp-wide { display: block !important; } }
"""


def shared_ranges(figures) -> dict[str, tuple[float, float]]:
    """key -> (lowest lo, highest hi) of the key's axis over ``figures`` (for ``render_frame(axis_ranges=...)``),
    read from the view each was drawn from (:func:`gpviz.view.ranges.shared_ranges`)."""
    return view_ranges(f.view for f in figures)


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.4g}"


def scores_html(table: pd.DataFrame, labels: list[str], metric: str) -> Markup:
    """The metric per size and sweep, each sweep's centre compared with the first's.

    The header names the centre statistic (``table["center_kind"]``, one for all); the
    comparison is the ratio of centres when they are geometric means of positive values,
    else their difference (a ratio of means of values of either sign means nothing).
    """
    kinds = table["center_kind"].unique().tolist() if "center_kind" in table.columns else []
    kind = str(kinds[0]) if len(kinds) == 1 else "centre"
    ratio = kind == "geometric mean" and "ratio_to_first" in table.columns
    column, what = (("ratio_to_first", "ratio {lb} / {first}") if ratio
                    else ("diff_to_first", "difference {lb} \u2212 {first}"))
    head = "".join(f"<th>{escape_html(lb)}<br>{escape_html(metric)} {escape_html(kind)} [10th, 90th]</th>"
                   for lb in labels)
    compare_head = "".join(f"<th>{escape_html(what.format(lb=lb, first=labels[0]))}</th>" for lb in labels[1:])
    rows = []
    for size, grp in table.groupby(SIZE, sort=True):
        by = grp.set_index("label")
        cells = "".join(
            f"<td>{_fmt(by.loc[lb, 'center'])} [{_fmt(by.loc[lb, 'low'])}, {_fmt(by.loc[lb, 'high'])}]</td>"
            if lb in by.index else "<td>–</td>" for lb in labels)
        compared = "".join(f"<td>{_fmt(by.loc[lb, column])}</td>" if lb in by.index and column in by.columns
                           else "<td>–</td>" for lb in labels[1:])
        rows.append(f"<tr><td>{int(size)}</td>{cells}{compared}</tr>")
    return Markup(f'<table class="gpviz-cmp-scores"><tr><th>n</th>{head}{compare_head}</tr>{"".join(rows)}</table>')


def paired_html(paired: pd.DataFrame, metric: str) -> Markup:
    """The paired per-repeat comparison (:func:`gpviz.comparing.paired_differences`) as a table; empty if none.

    One row per size, one column per paired sweep: the geometric mean of its per-repeat
    ratios to the first sweep (or the mean of its differences), their 10th and 90th
    percentiles, and in how many repeats it is lower.
    """
    if paired is None or paired.empty:
        return Markup()
    labels = list(dict.fromkeys(paired["label"]))
    first = str(paired["reference"].iloc[0])
    ratio = paired["statistic"].iloc[0] == "ratio"
    what = ("{lb} / {first} per repeat: geometric mean [10th, 90th]; lower in" if ratio
            else "{lb} \u2212 {first} per repeat: mean [10th, 90th]; lower in")
    head = "".join(f"<th>{escape_html(what.format(lb=lb, first=first))}</th>" for lb in labels)
    rows = []
    for size, grp in paired.groupby(SIZE, sort=True):
        by = grp.set_index("label")
        cells = "".join(
            f'<td data-label="{escape_html(lb)}" data-center="{by.loc[lb, "center"]:.6g}">'
            f"{_fmt(by.loc[lb, 'center'])} [{_fmt(by.loc[lb, 'low'])}, {_fmt(by.loc[lb, 'high'])}]; "
            f"{int(by.loc[lb, 'lower'])} of {int(by.loc[lb, 'repeats'])}</td>"
            if lb in by.index else "<td>\u2013</td>" for lb in labels)
        rows.append(f"<tr><td>{int(size)}</td>{cells}</tr>")
    lead = (f"Paired by repeat: these sweeps share their subsets (the same rows at each size and repeat), so each "
            f"repeat's held-out {metric} is compared with the first sweep's on the same points.")
    return Markup(f'<div class="gpviz-cmp-lead">{escape_html(lead)}</div><table class="gpviz-cmp-paired"><tr>'
                  f'<th>n</th>{head}</tr>{"".join(rows)}</table>')


def priors_html(described: list[tuple[str, str]]) -> Markup:
    """A sweep's priors written out, one ``path ~ Prior(params)`` per line."""
    lines = [f"{path} ~ {desc}" for path, desc in described]
    body = "\n".join(lines) if lines else "(no priors: every parameter is fitted by the data alone)"
    return Markup(f'<div class="gpviz-cmp-priors" title="priors">{escape_html(body)}</div>')


def verdict_counts_html(table: pd.DataFrame | None) -> Markup:
    """Every verdict that occurs, counted over all parameter elements and folds per size.

    Args:
        table: :func:`gpviz.priors.verdicts.verdict_table` of a sweep's pull (None or empty: nothing).

    Returns:
        A table, one row per verdict that occurs at some size ("never moved", "held at prior mode",
        "set by prior", "at bound", "free"), a cell "k (p%)" per size (the header gives the elements x
        folds judged); empty when not judged.
    """
    if table is None or len(table) == 0:
        return Markup()
    columns = {"free": "free", "never moved": "never_moved", "held at prior mode": "held", "set by prior": "set", "at bound": "at_bound"}
    per_size = table.groupby(SIZE, sort=True)[["members", *columns.values()]].sum()
    head = "".join(f'<th title="{int(m)} parameter elements x folds judged">n = {int(s)} (of {int(m)})</th>'
                   for s, m in zip(per_size.index, per_size["members"]))
    rows = []
    for verdict in VERDICTS:
        counts = per_size[columns[str(verdict)]]
        if not counts.any():  # a verdict that never occurs takes no row
            continue
        cells = "".join(f'<td data-count="{int(k)}" data-members="{int(m)}">{int(k)} ({k / m:.0%})</td>'
                        for k, m in zip(counts, per_size["members"]))
        rows.append(f'<tr data-verdict="{escape_html(verdict)}"><td class="gpviz-cmp-key">{escape_html(verdict)}'
                    f"</td>{cells}</tr>")
    return Markup('<table class="gpviz-cmp-verdicts"><tr><th class="gpviz-cmp-key">verdict: parameter elements '
                  f'x folds</th>{head}</tr>{"".join(rows)}</table>')


def sweep_notes_html(view: ViewData, table: pd.DataFrame | None) -> Markup:
    """A sweep's notes (how its cells were fitted, cells not drawn), its verdicts in words (the note and sentences
    of :func:`gpviz.html.figure.summary_html`), every verdict's counts (:func:`verdict_counts_html`), and the held
    shares per key and size folded away (the grid's band tints show them; the table gives the numbers)."""
    out = Markup("".join(note_html(n) for n in view.notes))
    if view.summary is not None:
        out += Markup(summary_html(replace(view.summary, rows=()), view.labels))
    out += verdict_counts_html(table)
    if view.summary is not None and view.summary.rows:
        held = summary_html(VerdictSummary("", (), view.summary.sizes, view.summary.rows), view.labels)
        # the table alone: its empty note line dropped (the note is said once, above)
        held = held.replace('<div class="gpviz-verdict-note"></div>', "", 1)
        out += Markup('<details class="gpviz-cmp-held-table"><summary style="cursor:pointer;font-size:12px">'
                      "held at the prior's mode, per parameter and size: the share of folds (and of repeats)"
                      f"</summary>{held}</details>")
    return out


#: Up to this many sweeps, a wide page (its grid at least WIDE_PX) puts the parameters in two panels side by side,
#: the first half of the rows left and the second right: the page is half as tall again.
TWO_PANELS_UP_TO, WIDE_PX = 2, 1200


@dataclass(frozen=True)
class GridLayout:
    """Where each row of the comparison's grid lies (row 1 holds the sweeps' headings).

    The rows are section headings and parameters, in print order. One panel: row ``2 + i``
    for entry ``i``. Two panels (a wide page, few sweeps): entries from ``split`` on go to
    a second panel to the right, from row 2 again.

    Attributes:
        entries: ``("section", title)`` or ``("key", key)``, in the first sweep's print order (keys
            only later sweeps have come after, in their section).
        params: key -> its :class:`~gpviz.tree.nodes.Param` node.
        labels: key -> its readable label (the first view that has it).
        sweeps: Sweeps side by side (columns per panel: a label column, then one per sweep).
        split: The first entry of the second panel (``len(entries)``: one panel only).
    """

    entries: tuple[tuple[str, str], ...]
    params: Mapping[str, Param]
    labels: Mapping[str, str]
    sweeps: int
    split: int

    def at(self, entry: int, column: int) -> str:
        """The inline style placing ``column`` (0: the labels, ``1..sweeps``: a sweep) of entry ``entry``
        (-1: the headings): the one-panel place, and the two-panel one as CSS variables the page's
        container query picks."""
        row1 = 1 if entry < 0 else entry + 2
        second = entry >= self.split
        row2 = 1 if entry < 0 else (entry - self.split + 2 if second else entry + 2)
        col2 = column + 1 + (self.sweeps + 1 if second else 0)
        return f"grid-row:{row1};grid-column:{column + 1};--r2:{row2};--c2:{col2}"

    def second_heading(self, column: int) -> str:
        """The style of ``column``'s heading over the second panel (shown on a wide page only)."""
        return f"display:none;grid-row:1;grid-column:{column + 1};--r2:1;--c2:{column + self.sweeps + 2}"

    def columns_css(self) -> str:
        """The grid's own style: the one-panel column template, and the two-panel one as a CSS variable."""
        one = f"max-content repeat({self.sweeps}, max-content)"
        two = f"{one} {one}" if self.split < len(self.entries) else one
        return (f"display:grid;column-gap:10px;row-gap:4px;align-items:center;grid-template-columns:{one};"
                f"--cols2:{two}")

    @property
    def rows(self) -> dict[str, int]:
        """key -> its entry index."""
        return {v: i for i, (kind, v) in enumerate(self.entries) if kind == "key"}


def grid_layout(views: Mapping[str, ViewData]) -> GridLayout:
    """One row per parameter key over every view, grouped under its expression section's title (and note)."""
    grouped: dict[str, dict[str, Param]] = {}
    labels: dict[str, str] = {}
    for view in views.values():
        for sec in view.sections:
            # the section's note says its units ("original inputs; ..."): part of its heading
            mine = grouped.setdefault(f"{sec.title} ({sec.note})" if sec.note else sec.title, {})
            for node in iter_nodes(sec.tree):
                if isinstance(node, Param) and node.key in view.params and node.key not in mine:
                    mine[node.key] = node
                    labels.setdefault(node.key, view.labels.get(node.key, node.key))
    entries: list[tuple[str, str]] = []
    params: dict[str, Param] = {}
    for title, keys in grouped.items():
        keys = {k: p for k, p in keys.items() if k not in params}  # a key printed in two sections: its first
        if not keys:
            continue
        entries.append(("section", title))
        for key, node in keys.items():
            entries.append(("key", key))
            params[key] = node
    split = len(entries)
    if len(views) <= TWO_PANELS_UP_TO and len(params) > 1:
        split = (len(entries) + 1) // 2
        if entries[split - 1][0] == "section":  # never a heading alone at the bottom of the first panel
            split -= 1
    return GridLayout(tuple(entries), params, labels, len(views), split)


def _breakable(label: str) -> str:
    """A label escaped, with a line break opportunity before its ``[``: ``lengthscale`` over ``[log_lr]``."""
    return escape_html(label).replace("[", "<wbr>[")


def _cell(style: str, content: str, css_class: str = "gpviz-cmp-cell") -> str:
    return f'<div class="{css_class} gpviz-cmp-at" style="{style}">{content}</div>'


def column_figure(view: ViewData, layout: GridLayout, column: int, heading: str, extra: str = "") -> Figure:
    """A sweep's :class:`~gpviz.html.figure.Figure` whose parts are cells of its column of the grid.

    Its heading (with the hover line gpviz.js fills: the fold under the pointer) sits in
    row 1 (again over the second panel); each parameter's chart in its key's row; a key
    the sweep's model lacks says so. ``extra``: HTML gpviz made that goes inside the figure
    without a place in the grid (the held-out rows, :func:`gpviz.html.below.heldout_html`).
    """
    band_px = band_height_px(len(view.frame.config_labels), len(view.params))
    cells = [_cell(layout.at(-1, column), f'{escape_html(heading)}<b class="gpviz-hover"></b>', "gpviz-cmp-head")]
    if layout.split < len(layout.entries):  # the second panel's heading: shown on a wide page only
        cells.append(_cell(layout.second_heading(column), escape_html(heading), "gpviz-cmp-head gpviz-cmp-wide"))
    for key, entry in layout.rows.items():
        if key not in view.params:
            cells.append(_cell(layout.at(entry, column), "not in this sweep's model", "gpviz-cmp-cell gpviz-cmp-missing"))
            continue
        pv = view.params[key]
        cells.append(_cell(layout.at(entry, column), chart_placeholder(
            layout.params[key], pv, view.axes[pv.axis], static_chart(view, key, band_px), view.labels.get(key, ""))))
    return Figure("\n".join(cells) + str(extra), spec_of(view), None, view.title or "gpviz", view)


def side_by_side(views: Mapping[str, ViewData], extras: Mapping[str, str] | None = None
                 ) -> tuple[dict[str, Figure], Markup]:
    """Each sweep's figure as one column of the grid, and the grid itself (headings, section rows, labels).

    Args:
        views: label -> the sweep's view, axes already shared
            (:func:`gpviz.view.ranges.with_ranges`).
        extras: label -> HTML inside that sweep's figure (see :func:`column_figure`).

    Returns:
        ``(label -> Figure, the grid's opening tag and its own cells)``: the figures' fragments
        and a closing ``</div>`` follow.
    """
    layout = grid_layout(views)
    extras = extras or {}
    figures = {label: column_figure(view, layout, i + 1, label, extras.get(label, ""))
               for i, (label, view) in enumerate(views.items())}
    cells = [_cell(layout.at(-1, 0), "parameter", "gpviz-cmp-head")]
    if layout.split < len(layout.entries):
        cells.append(_cell(layout.second_heading(0), "parameter", "gpviz-cmp-head gpviz-cmp-wide"))
    for i, (kind, value) in enumerate(layout.entries):
        if kind == "section":
            span = layout.sweeps + 1
            cells.append(_cell(f"{layout.at(i, 0)};grid-column:1 / span {span};--span:{span}", escape_html(value),
                               "gpviz-cmp-section"))
        else:
            cells.append(f'<div class="gpviz-cmp-label gpviz-cmp-at" title="{escape_html(value)}" '
                         f'data-key="{escape_html(value)}" style="{layout.at(i, 0)}">'
                         f"{_breakable(layout.labels[value])}</div>")
    grid = f'<div class="gpviz-cmp-grid" style="{layout.columns_css()}">'
    return figures, Markup(grid + "\n".join(cells))


def _legend(figures: Mapping[str, Figure]) -> Markup:
    views = [f.view for f in figures.values() if f.view is not None]
    member = views[0].member if views else "member"
    tinted = any(b is not None and b.held for v in views for p in v.params.values() for b in (p.bands or ()))
    held = ('<span style="background:rgba(255,170,0,0.35);padding:0 6px">&nbsp;</span> a size band tinted by the '
            "share of its folds held at the prior's mode (hover a band label for the counts). " if tinted else "")
    return Markup(
        '<div class="gpviz-cmp-legend">One row per parameter, one column per sweep; every chart of a row on the same '
        f'axis. <span style="color:#1f5fbf">\u25cf</span> one dot per {escape_html(member)}, one labelled band per '
        'dataset size; <span style="color:#1a9a3a;font-weight:700">|</span> prior mode; '
        '<span style="color:#d62728;font-weight:700">|</span> constraint bound (values on it red). '
        f"{held}Hover a dot to ring its {escape_html(member)} in every chart of its sweep.</div>")


class ComparisonFigure(Page):
    """The comparison page: ``.html()`` (standalone, offline), ``._repr_html_()``, ``.save(path)``.

    Attributes:
        labels: Sweep labels, in the order given.
        figures: label -> the sweep's parameter :class:`~gpviz.html.figure.Figure` (one column of the
            side-by-side grid; none for a sweep whose every cell failed).
        chart: The matplotlib figure with every sweep's scaling curve.
        scores: :func:`gpviz.sweep.scores.score_table` of the sweeps: its ``center_kind`` column
            (and ``attrs["center"]``) names the one centre statistic of every sweep and size;
            ``ratio_to_first`` only for geometric means (else NaN), ``diff_to_first`` always.
        pulls: label -> :func:`gpviz.priors.sweep_pull.sweep_prior_pull` rows (empty if not computed).
        paired: :func:`gpviz.comparing.paired_differences` of the sweeps that share their subsets (empty if none).
        gaps: :func:`gpviz.comparing.optimism_gaps` of the sweeps: ``(refit label, fixed label, gap)`` per
            pair of a refit and a ``refit=False`` sweep of the same cells, each drawn on the page (both
            curves, their ratio per size, a table and a sentence); empty if none.
        title: Page title.
    """

    def __init__(self, title: str, lead_html: str, figures: dict, sections: dict, chart, scores: pd.DataFrame,
                 pulls: dict, grid_cells: str = "", verdicts: dict | None = None, paired: pd.DataFrame | None = None,
                 gaps: list | None = None):
        self.title = title
        self._lead = lead_html
        self.figures = figures
        self._sections = sections
        self._grid = grid_cells
        self._verdicts = verdicts or {}
        self.chart = chart
        self.scores = scores
        self.pulls = pulls
        self.paired = paired if paired is not None else pd.DataFrame()
        self.gaps = list(gaps or [])
        self.labels = list(sections)
        digest = hashlib.sha256("".join(f.element_id for f in figures.values()).encode()).hexdigest()[:10]
        self._ids = {lb: f"gpviz-cmp{i}-{digest}" for i, lb in enumerate(self.labels)}

    _what = "comparison"

    def _animated(self) -> bool:
        return any(f.mode == FrameMode.TIMELINE for f in self.figures.values())

    def _head(self) -> str:
        return f"<style>{_PAGE_CSS.replace('WIDEpx', f'{WIDE_PX}px')}</style>\n"

    def _columns(self, parts: Mapping[str, str]) -> str:
        """One column per sweep (its label, then its part), side by side."""
        cols = "".join(f'<div class="gpviz-cmp-column"><div class="gpviz-cmp-colhead" style="font-weight:600">'
                       f'{escape_html(lb)}</div>{parts.get(lb, "")}</div>' for lb in self.labels)
        return (f'<div class="gpviz-cmp-columns" style="grid-template-columns:repeat({len(self.labels)}, '
                f'minmax(0, 1fr))">{cols}</div>')

    def _body(self, suffix: str = "") -> str:
        parts = [f'<div class="gpviz-compare"><h1>{escape_html(self.title)}</h1>', self._lead,
                 "<h2>Priors</h2>", self._columns(self._sections)]
        if self.figures:
            parts.append("<h2>Parameters, side by side</h2>")
            parts.append(_legend(self.figures))
            parts.append('<div class="gpviz-cmp-wrap">')
            parts.append(self._grid)
            for label, fig in self.figures.items():
                # the figure's own box goes: its cells are the grid's (inline, for an untrusted notebook too)
                parts.append(fig.fragment(self._ids[label] + suffix).replace(
                    '<div class="gpviz-figure"', '<div class="gpviz-figure" style="display:contents"', 1))
            parts.append("</div></div>")
        if any(self._verdicts.values()):
            parts.append("<h2>Verdicts</h2>")
            parts.append(self._columns(self._verdicts))
        parts.append("</div>")
        return "\n".join(parts) + "\n"

    def __repr__(self) -> str:
        return f"<gpviz.ComparisonFigure: {len(self.labels)} sweeps {self.labels}>"
