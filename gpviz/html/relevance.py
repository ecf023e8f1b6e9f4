"""A model page's relevance table: its inputs ranked by lengthscale as a fraction of the input's training range.

Inline styles on every part (an untrusted notebook keeps style attributes, drops ``<style>``).
"""

from __future__ import annotations

from gpviz.markup import escape_html
from gpviz.values.relevance import Relevance

#: What the table's fraction means, above it.
CAPTION = ("Inputs ranked by relevance: each lengthscale as a fraction of its input's training range (model input "
           "space; the same in original units). Small: the function changes along the input; many times 1: "
           "nearly constant along it. A choice parameter's one-hot columns are read together (its smallest).")
_CELL = "padding:1px 8px;text-align:right;border-bottom:1px solid #eee"


def _num(x: float) -> str:
    return f"{x:.3g}"


def relevance_html(rows: tuple[Relevance, ...]) -> str:
    """The table (trusted HTML; input names escaped), or "" when there is nothing to rank."""
    if not rows:
        return ""
    head = "".join(f'<th style="{_CELL};font-weight:600">{h}</th>' for h in
                   ("rank", "input", "lengthscale / range", "lengthscale", "range", "columns"))
    body = []
    for i, r in enumerate(rows):
        body.append(f'<tr class="gpviz-relevance-row" data-input="{escape_html(r.input)}">'
                    f'<td style="{_CELL}">{i + 1}</td>'
                    f'<td style="{_CELL};text-align:left" title="{escape_html(", ".join(r.keys))}">'
                    f"{escape_html(r.input)}</td>"
                    f'<td style="{_CELL};font-weight:600">{_num(r.fraction)}</td><td style="{_CELL}">'
                    f'{_num(r.lengthscale)}</td><td style="{_CELL}">{_num(r.input_range)}</td>'
                    f'<td style="{_CELL}">{len(r.columns)}</td></tr>')
    return (f'<div class="gpviz-relevance" style="margin:8px 0;font-size:12px;color:#333">'
            f'<div style="color:#555;margin-bottom:3px">{escape_html(CAPTION)}</div>'
            f'<table style="border-collapse:collapse">{"<tr>" + head + "</tr>"}{"".join(body)}</table></div>')
