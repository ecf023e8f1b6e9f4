"""The comparison page's HTML: tables of scores, priors and held shares, then each sweep's figure on shared axes."""

from __future__ import annotations

import hashlib
import math

import pandas as pd

from gpviz.markup import Markup, escape_html
from gpviz.html.page import Page
from gpviz.values.columns import SIZE
from gpviz.view.ranges import shared_ranges as view_ranges
from gpviz.view.records import FrameMode

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


def priors_html(described: list[tuple[str, str]]) -> Markup:
    """A sweep's priors written out, one ``path ~ Prior(params)`` per line."""
    lines = [f"{path} ~ {desc}" for path, desc in described]
    body = "\n".join(lines) if lines else "(no priors: every parameter is fitted by the data alone)"
    return Markup(f'<div class="gpviz-cmp-priors" title="priors">{escape_html(body)}</div>')


class ComparisonFigure(Page):
    """The comparison page: ``.html()`` (standalone, offline), ``._repr_html_()``, ``.save(path)``.

    Attributes:
        labels: Sweep labels, in the order given.
        figures: label -> the sweep's parameter :class:`~gpviz.html.figure.Figure` (none for a sweep
            whose every cell failed).
        chart: The matplotlib figure with every sweep's scaling curve.
        scores: :func:`gpviz.sweep.scores.score_table` of the sweeps: its ``center_kind`` column
            (and ``attrs["center"]``) names the one centre statistic of every sweep and size;
            ``ratio_to_first`` only for geometric means (else NaN), ``diff_to_first`` always.
        pulls: label -> :func:`gpviz.priors.sweep_pull.sweep_prior_pull` rows (empty if not computed).
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
        return any(f.mode == FrameMode.TIMELINE for f in self.figures.values())

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
