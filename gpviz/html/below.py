"""What a figure shows below its expression: the view's notes, a sweep's scaling curve, the caller's HTML.

The view layer hands these on as data (:class:`~gpviz.view.records.Note` text, a
:class:`~gpviz.view.records.CurveData`'s scores); here they get their markup, their
look and, for the curve, their matplotlib picture (:mod:`gpviz.charts`).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import pandas as pd

from gpviz.charts import GEOMETRIC_MEAN, figure_to_img, optimism_gap_chart, scaling_curve
from gpviz.markup import Markup, as_html, element, join, script_json
from gpviz.view.records import CurveData, InfluenceTable, Note, NoteKind

# The scaling curve goes beside the expression: the figure becomes a two-column grid, every
# part of the expression in the first (as wide as its code), the chart in the second. The chart's
# cell has zero height so it stretches no row of the code; min-height keeps the page below clear.
# Scoped with :has() to figures holding a sweep chart; without :has() (or on a narrow screen) the
# chart shows below the expression. Sent with the chart it lays out: only pages with a scaling
# curve carry it.
BESIDE_CSS = Markup("""<style>
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
</style>""")

#: Each kind of note: its class and its inline look (kept by an untrusted notebook, which drops <style>).
NOTE_LOOKS = {
    NoteKind.fit_summary: ("gpviz-fit-summary", "margin:4px 0"),
    NoteKind.not_drawn: ("gpviz-sweep-notes", "color:#b35900;margin:4px 0"),
    NoteKind.about: ("gpviz-about", "color:#333;margin:4px 0"),
    NoteKind.fit_mode: ("gpviz-sweep-mode", "color:#555;margin:4px 0"),
}


def note_html(note: Note) -> Markup:
    """One note as a ``<div>`` of its kind (its text escaped)."""
    css_class, style = NOTE_LOOKS[note.kind]
    return element("div", note.text, class_=css_class, style=style)


def curve_html(curve: CurveData) -> Markup:
    """A sweep's scaling curve (with its dashed reference) as a PNG, laid out beside the expression."""
    chart = scaling_curve(curve.scores, curve.metric, reference=curve.reference)
    img = figure_to_img(chart, alt=f"scaling curve: leave-one-out {curve.metric} per dataset size",
                        css_class="gpviz-sweep-curve")
    return BESIDE_CSS + Markup('<div class="gpviz-sweep-chart">') + img + Markup("</div>")


def _num(x: float) -> str:
    return f"{x:.4g}"


def influence_html(table: InfluenceTable, labels: Mapping[str, str] | None = None) -> Markup:
    """A sweep's most influential points per parameter as a table (inline styles: an untrusted notebook keeps them).

    One row per point: the parameter (its label, the key as hover text), the cell, the
    point's row of the data by feature name, the full-data value, the value fitted without
    the point, and the shift in percent of the full-data value.
    """
    labels = labels or {}
    cell = "padding:1px 8px;text-align:left"
    head = join(element("th", h, style=cell) for h in
                   ("parameter", "cell", "held-out point (row: features)", "all n points", "without it", "shift"))
    body = Markup()
    for r in table.rows:
        point = f"row {r.index}: " + ", ".join(f"{n} = {_num(v)}" for n, v in r.point)
        shift = f"{100 * r.rel_shift:+.1f}%" if not math.isnan(r.rel_shift) else "\u2013"
        tds = [element("td", labels.get(r.key, r.key), title=r.key, style=cell),
               element("td", f"n = {r.size}, repeat {r.repeat}", style=cell),
               element("td", point, style=cell),
               element("td", _num(r.full), style=cell), element("td", _num(r.fold), style=cell),
               element("td", shift, style=cell)]
        body += element("tr", join(tds), data_key=r.key, data_index=str(r.index))
    caption = (f"Most influential points, up to {table.per_key} per parameter: each held-out point's leave-one-out "
               f"fold against its cell's fit on all n points (model units)")
    return element("div", element("div", caption, style="margin:8px 0 2px;font-weight:600")
                   + element("table", element("thead", element("tr", head)) + element("tbody", body),
                             style="border-collapse:collapse;font-size:12px"),
                   class_="gpviz-influence")


def gap_html(refit_scores: pd.DataFrame, fixed_scores: pd.DataFrame, gap: pd.DataFrame, metric: str,
             sentence: str, labels: tuple[str, str] = ("refit", "fixed"), center: str = GEOMETRIC_MEAN) -> Markup:
    """A sweep page's optimism-gap section: both scaling curves and their ratio per size, a table, one sentence.

    Args:
        refit_scores: The refit sweep's scores.
        fixed_scores: The ``refit=False`` sweep's scores (the same cells).
        gap: :func:`gpviz.comparing.optimism_gaps`' frame of the pair.
        metric: The metric compared.
        sentence: :func:`gpviz.comparing.gap_sentence` of the pair.
        labels: The two sweeps' names on the page, refit first.
        center: The centre statistic of both (ratios for the geometric mean, else differences).
    """
    chart = optimism_gap_chart(refit_scores, fixed_scores, gap, metric, labels=labels, center=center)
    img = figure_to_img(chart, alt=f"optimism gap: leave-one-out {metric} per size, refit and fixed "
                                   f"hyperparameters, and their ratio", css_class="gpviz-gap-chart")
    ratio = center == GEOMETRIC_MEAN
    cell = "padding:1px 8px;text-align:right"
    head = join(element("th", h, style=cell) for h in
                ("n", f"{labels[0]}: {metric} {center}", f"{labels[1]}: {metric} {center}",
                 "fixed / refit" if ratio else "fixed − refit"))
    body = Markup()
    for r in gap.itertuples():
        value = r.ratio if ratio else r.diff
        body += element("tr", join([element("td", str(int(r.size)), style=cell),
                                    element("td", _num(r.refit), style=cell), element("td", _num(r.fixed), style=cell),
                                    element("td", _num(value), style=cell)]),
                        data_size=str(int(r.size)), data_refit=repr(float(r.refit)), data_fixed=repr(float(r.fixed)))
    table = element("table", element("thead", element("tr", head)) + element("tbody", body),
                    style="border-collapse:collapse;font-size:12px;margin:4px 0")
    return element("div", element("div", "Optimism gap: the same cells with hyperparameters refitted per fold "
                                         "and fixed at each cell's full-data fit", style="margin:8px 0 2px;font-weight:600")
                   + img + table + element("div", sentence, class_="gpviz-gap-sentence", style="margin:4px 0"),
                   class_="gpviz-gap")


def heldout_html(points: pd.DataFrame, names: Sequence[str]) -> Markup:
    """Which data row each dot's fold held out, for gpviz.js: hovering a dot shows that row by feature name.

    Args:
        points: :func:`gpviz.sweep.influence.heldout_points`: one row per dot, in the page's row order.
        names: The feature columns of ``points``.

    Returns:
        A ``<script type="application/json" class="gpviz-heldout">`` the browser does not run:
        ``names``, ``index`` (the held-out row of each dot) and ``rows`` (each such row's values).
    """
    index = [int(i) for i in points["index"]]
    values = points[list(names)].to_numpy(float)
    rows = {str(i): [float(v) for v in values[j]] for j, i in enumerate(index)}
    payload = {"names": [str(n) for n in names], "index": index, "rows": rows}
    return Markup(f'<script type="application/json" class="gpviz-heldout">{script_json(payload)}</script>')


def below_html(notes: Sequence[Note] = (), curve: CurveData | None = None, extra_html: str = "",
               influence: InfluenceTable | None = None, labels: Mapping[str, str] | None = None) -> Markup:
    """The notes, then the curve, then the influence table (its keys labelled by ``labels``), then ``extra_html``
    (a :class:`~gpviz.markup.Markup` as it is, any other string escaped); empty when there is none of them."""
    out = Markup()
    for note in notes:
        out += note_html(note)
    if curve is not None:
        out += curve_html(curve)
    if influence is not None:
        out += influence_html(influence, labels)
    if extra_html:
        out += as_html(extra_html)
    return out
