"""What a figure shows below its expression: the view's notes, a sweep's scaling curve, the caller's HTML.

The view layer hands these on as data (:class:`~gpviz.view.records.Note` text, a
:class:`~gpviz.view.records.CurveData`'s scores); here they get their markup, their
look and, for the curve, their matplotlib picture (:mod:`gpviz.charts`).
"""

from __future__ import annotations

from gpviz.charts import figure_to_img, scaling_curve
from gpviz.markup import Markup, as_html, element
from gpviz.view.records import CurveData, Note, NoteKind

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


def below_html(notes=(), curve: CurveData | None = None, extra_html="") -> Markup:
    """The notes, then the curve, then ``extra_html`` (a :class:`~gpviz.markup.Markup` as it is, any other
    string escaped); empty when there is none of them."""
    out = Markup()
    for note in notes:
        out += note_html(note)
    if curve is not None:
        out += curve_html(curve)
    if extra_html:
        out += as_html(extra_html)
    return out
