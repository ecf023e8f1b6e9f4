"""The explorer as static HTML: what a saved notebook shows where no kernel runs the widget.

An output holding the widget also holds this picture of its current state (``text/html``
beside anywidget's view): the expression with the values as they stand (moved ones in red),
each parameter's chart as the model page's static picture (:func:`gpviz.html.svg.param_chart`, the
geometry of gpviz.js's chart) at the values now, the metrics now and fitted, and the slices as SVG
images. Front ends that cannot show the widget (nbconvert's HTML without saved widget state, GitHub,
an untrusted JupyterLab notebook) show it instead. Only inline styles and ``<img src="data:...">``: an untrusted
JupyterLab output strips ``<style>`` and ``<svg>`` but keeps those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from gpviz.markup import Markup, escape_html, svg_data_uri

#: The metrics rows, as the page lists them (explore.js's METRICS).
ROWS = (("log_likelihood", "log likelihood"), ("data_fit", "  data fit"), ("complexity", "  complexity"),
        ("log_prior_total", "log prior"), ("map_objective", "log lik + log prior (MAP)"),
        ("loo_mse", "LOO MSE"), ("loo_nlpd", "LOO NLPD"))
_W, _H, _PAD = 180, 90, 4


def fmt(v: float | None) -> str:
    """A number as the page shows it: 4 significant digits, exponent outside [1e-3, 1e5) (explore.js's ``fmt``)."""
    if v is None or not math.isfinite(v):
        return "–"
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        mantissa, exp = f"{v:.3e}".split("e")
        return f"{mantissa}e{'+' if int(exp) >= 0 else '-'}{abs(int(exp))}"
    return f"{float(f'{v:.4g}'):.12g}"


def _slice_svg(curve: Mapping, near: Mapping | None) -> str:
    """One slice (band, mean, nearby points) as an SVG text, the geometry of explore.js's ``sliceChart``."""
    xs = list(curve["x"]) + (list(near["x"]) if near else [])
    ys = list(curve["lower"]) + list(curve["upper"]) + (list(near["y"]) if near else [])
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)

    def sx(x: float) -> float:
        return _PAD + (_W - 2 * _PAD) * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5)

    def sy(y: float) -> float:
        return _H - _PAD - (_H - 2 * _PAD) * ((y - y0) / (y1 - y0) if y1 > y0 else 0.5)

    band = [(sx(x), sy(u)) for x, u in zip(curve["x"], curve["upper"])]
    band += [(sx(x), sy(lo)) for x, lo in reversed(list(zip(curve["x"], curve["lower"])))]
    mean = " ".join(f"{sx(x):.1f},{sy(m):.1f}" for x, m in zip(curve["x"], curve["mean"]))
    dots = "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="#222"/>'
                   for x, y in zip(near["x"], near["y"])) if near else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}">'
            f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in band)}" fill="#1f5fbf" fill-opacity="0.15"/>'
            f'<polyline points="{mean}" fill="none" stroke="#1f5fbf" stroke-width="1.5"/>{dots}</svg>')


def snapshot_html(title: str, segments: Sequence[Mapping], params: Sequence[Mapping], values: Mapping[str, float],
                  metrics: Mapping, fitted_metrics: Mapping, curves: Sequence[Mapping],
                  near: Sequence[Mapping], slice_units: str = "model units",
                  param_charts: Sequence[tuple[str, str, str]] = ()) -> Markup:
    """The explorer's state as one static HTML block (the widget's synced traits, as the page receives them).

    Args:
        title: The widget's title.
        segments: The printed expression: ``{"text": ...}`` and ``{"key": ...}`` pieces.
        params: Per key: ``key``, ``label``, ``fitted``.
        values: Key -> the value now.
        metrics: The metrics now (``Metrics.as_dict``).
        fitted_metrics: The metrics at the fitted values.
        curves: Per input: ``input``, ``x``, ``mean``, ``lower``, ``upper`` (the slices).
        near: Per input: ``input``, ``x``, ``y`` of the training points near its slice.
        slice_units: The units the slices are drawn in ("original units" or "model units").
        param_charts: Per parameter ``(key, label, data URI of its chart's picture)``, drawn under the expression.

    Returns:
        A ``<div class="gpx-static">`` whose numbers carry ``data-key`` and ``data-value`` as the live page's do.
    """
    fitted = {p["key"]: p["fitted"] for p in params}
    code = []
    for seg in segments:
        if "text" in seg:
            code.append(escape_html(seg["text"]))
            continue
        key = seg["key"]
        moved = values[key] != fitted[key]
        color = "#b3261e" if moved else "#1f5fbf"
        code.append(f'<span class="gpx-num" data-key="{escape_html(key)}" data-value="{values[key]!r}" '
                    f'style="color:{color}">{escape_html(fmt(values[key]))}</span>')
    rows = [("", "now", "fitted", "")]
    for name, text in ROWS:
        rows.append((text, fmt(metrics.get(name)), fmt(fitted_metrics.get(name)), name))
        if name == "log_prior_total":
            for prior, v in (metrics.get("log_prior") or {}).items():
                rows.append((f"  {prior}", fmt(v), fmt((fitted_metrics.get("log_prior") or {}).get(prior)), ""))
    cell = 'style="padding:1px 10px 1px 0;white-space:pre;text-align:left"'
    trs = []
    for text, now, then, name in rows:
        attr = f' data-metric="{name}"' if name else ""
        trs.append(f"<tr{attr}>" + "".join(f"<td {cell}>{escape_html(c)}</td>" for c in (text, now, then)) + "</tr>")
    table = "".join(trs)
    label_cell = 'style="font-family:ui-monospace,monospace;font-size:12px;padding-right:10px;text-align:left"'
    params_rows = "".join(
        f'<tr><td {label_cell}>{escape_html(label)}</td><td style="text-align:left">'
        f'<img class="gpx-param-chart" data-key="{escape_html(key)}" alt="{escape_html(label)}" '
        f'src="{uri}" style="vertical-align:middle"></td></tr>'  # a data URI: percent-encoded already
        for key, label, uri in param_charts)
    by_input = {n["input"]: n for n in near}
    charts = "".join(
        f'<div style="display:inline-block;margin-right:10px;font-size:12px">{escape_html(c["input"])}<br>'
        f'<img class="gpx-slice" alt="slice along {escape_html(c["input"])}" '
        f'src="{svg_data_uri(_slice_svg(c, by_input.get(c["input"])))}"></div>' for c in curves)
    return Markup(
        '<div class="gpx-static" style="font-family:system-ui,sans-serif;font-size:13px">'
        f'<div style="font-weight:600">{escape_html(title)}</div>'
        '<div style="color:#666">a snapshot of the explorer: run the cell to drag its numbers</div>'
        '<pre style="font-family:ui-monospace,monospace;background:#f7f7f9;padding:8px;line-height:1.6">'
        f'{"".join(code)}</pre><table class="gpx-param-charts">{params_rows}</table>'
        f'<table class="gpx-metrics">{table}</table>'
        f'<div style="color:#444;font-size:12px">posterior mean ± 2 sd along each input, the others held at one '
        f'point ({escape_html(slice_units)})</div><div>{charts}</div></div>')


__all__ = ["ROWS", "fmt", "snapshot_html"]
