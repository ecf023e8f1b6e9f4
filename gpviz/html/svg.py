"""Static charts: each parameter's dot plot as a small SVG picture, drawn in Python, for where scripts do not run.

A notebook opened untrusted (JupyterLab runs no script of an output it did not
produce or that is not signed), a static notebook viewer, or a page opened with
JavaScript disabled shows these pictures in place of the interactive charts;
``gpviz.js`` replaces them when it mounts. The geometry follows ``gpviz.js``
(``makeScale``, ``place``, the strip and marker colours): a value sits at the
same pixel in both.

The picture travels as ``<img src="data:image/svg+xml,...">``: JupyterLab's
sanitizer keeps ``<img>`` with a data URI (it drops inline ``<svg>`` and every
``<style>``), and an SVG image never runs anything.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from gpviz.markup import escape_html, svg_data_uri
from gpviz.view.records import PROFILE_DROP, AxisKind, AxisView, ParamView

PLOT_W, EDGE, ROW_H = 150, 8, 14  # CSS px, as in gpviz.js
PROFILE_H = 18  # CSS px of a chart's "why here?" band under its strip, as in gpviz.js
PROFILE_COLORS = {"ll": "#4a90d9", "lp": "#1a9a3a", "sum": "#222222"}  # as gpviz.js draws them
COLORS = {"strip": "#e6e6e6", "strip_alt": "#f3f3f3", "dot": "#1f5fbf", "bad": "#d62728", "prior": "#1a9a3a",
          "tick": "#c4c4c4", "zero": "#8a8a8a", "held": "#ffd98a", "held_edge": "#c87800", "text": "#777",
          "ghost": "#7a7a7a"}
AXIS_FONT, VALUE_FONT, BAND_FONT = 10, 12, 9
CHAR_W = 0.6  # width of one character in font-size units (sans-serif digits, a safe overestimate)
MAX_COPIES = 4  # dots drawn at the same half pixel: more copies would not darken the spot further


def fmt_axis(v: float) -> str:
    """An axis-end number as ``gpviz.js``'s ``fmt`` writes it (2 significant digits, exponent outside 1e-3..1e4)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        mant, exp = f"{v:.1e}".split("e")
        return f"{mant.replace('.0', '') if mant.endswith('.0') else mant}e{int(exp)}"
    return _trim(f"{v:.{3 if a >= 100 else 2}g}")


def fmt_value(v: float) -> str:
    """A value as ``gpviz.js``'s ``fmtValue`` writes it (3 significant digits)."""
    if not math.isfinite(v):
        return fmt_axis(v)
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        mant, exp = f"{v:.2e}".split("e")
        return f"{mant}e{int(exp)}"
    return _trim(f"{v:.3g}")


def _trim(s: str) -> str:
    """``%g`` text without an exponent where JS's ``parseFloat(toPrecision)`` would print none (e.g. 1.2e+02 -> 120)."""
    return repr(float(s)).removesuffix(".0") if "e" in s else s


@dataclass(frozen=True)
class Chart:
    """One static chart: the SVG text, its size in CSS px and a plain-words summary (alt text).

    Attributes:
        segments: The ``<svg>`` document (XML text, user strings escaped) in parts; ``svg`` joins them.
        width, height: Its size in CSS px.
        summary: What it shows in words ("0.254", "median 0.25 of 10 (0.1 .. 0.9)", "1 NaN").
        flags: The flag counts, as ``gpviz.js`` reports them (``{"nan": 1, ...}``, zeros left out).
    """

    segments: tuple[str, ...]
    width: float
    height: float
    summary: str
    flags: dict

    @property
    def svg(self) -> str:
        return "".join(self.segments)

    def data_uri(self) -> str:
        """The picture as a ``data:image/svg+xml`` URI (:func:`gpviz.markup.svg_data_uri`).

        Encoded segment by segment: percent-encoding is per character, so the parts every
        chart of an axis shares (strip, ticks, prior mark; ~80% of the text) are encoded
        once per page, not once per chart.
        """
        return "data:image/svg+xml," + "".join(_encoded(seg) for seg in self.segments)


@functools.lru_cache(maxsize=4096)
def _encoded(segment: str) -> str:
    return svg_data_uri(segment).removeprefix("data:image/svg+xml,")


def _scale(axis: AxisView):
    """Value -> x in CSS px from the picture's plot origin (``gpviz.js``'s ``makeScale``)."""
    if axis.kind == AxisKind.LOG:
        l0, l1 = math.log10(axis.lo), math.log10(axis.hi)
        span = (l1 - l0) or 1.0
        return lambda v: EDGE + (math.log10(v) - l0) / span * PLOT_W
    a = axis.lo / 2
    span = (axis.hi / 2 - a) or 1.0
    return lambda v: EDGE + (v / 2 - a) / span * PLOT_W


def _place(v: float, axis: AxisView, scale) -> tuple[float, str]:
    """``(x, kind)`` as ``gpviz.js``'s ``place``: kind ok / nan / inf / nonpos / out (drawn at an edge)."""
    if math.isnan(v):
        return math.nan, "nan"
    if math.isinf(v):
        return (EDGE + PLOT_W + EDGE / 2 if v > 0 else EDGE / 2), "inf"
    if axis.kind == AxisKind.LOG and v <= 0:
        return EDGE / 2, "nonpos"
    x = scale(v)
    if x < EDGE - 0.5:
        return EDGE / 2, "out"
    if x > EDGE + PLOT_W + 0.5:
        return EDGE + PLOT_W + EDGE / 2, "out"
    return x, "ok"


def _at_bound(v: float, b) -> bool:
    return b is not None and abs(v - b) <= 1e-4 * max(abs(b), 1e-8)


def _n(x: float) -> str:
    """A coordinate with at most one decimal (sub-pixel precision is invisible)."""
    s = "%.1f" % x
    return s[:-2] if s[-2:] == ".0" else s


def _text_w(text: str, size: float) -> float:
    return len(text) * size * CHAR_W


@functools.lru_cache(maxsize=1024)
def nice_ticks(axis: AxisView, want: int = 4) -> tuple[float, ...]:
    """A few round values inside an axis, as ``gpviz.js``'s ``niceTicks`` picks them (its tick lines and labels).

    Decades on a wide log axis (1, 3 or 1, 2, 5 times a power of ten on a narrower one), multiples of 1, 2 or 5
    times a power of ten on a linear one; each to 6 significant digits.
    """
    lo, hi = float(axis.lo), float(axis.hi)
    out: list[float] = []
    if not (hi > lo) or not (math.isfinite(lo) and math.isfinite(hi)):
        return ()
    if axis.kind == AxisKind.LOG:
        k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        mults = [1] if k1 - k0 >= 3 else ([1, 3] if k1 - k0 >= 2 else [1, 2, 5])
        stride = max(1, math.ceil((k1 - k0 + 1) / (want + 1)))
        for k in range(k0, k1 + 1):
            if len(mults) == 1 and (k - k0) % stride:
                continue
            for m in mults:
                v = m * 10.0 ** k if k < 309 else math.inf  # JS's Math.pow overflows to Infinity: out of range
                if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9):
                    out.append(float(f"{v:.6g}"))
        return tuple(out)
    raw = (hi / 2 - lo / 2) * 2 / want
    if not (math.isfinite(raw) and raw > 0):  # an axis spanning the whole float range: JS finds no tick either
        return ()
    p = 10.0 ** math.floor(math.log10(raw))
    step = p
    for f in (1, 2, 5, 10):
        step = f * p
        if f * p >= raw * 0.75:
            break
    if not math.isfinite(lo / step):
        return ()
    t = math.ceil(lo / step) * step
    while t <= hi + step * 1e-9 and len(out) < 20:
        out.append(0.0 if abs(t) < step * 1e-9 else float(f"{t:.6g}"))
        t += step
    return tuple(out)


@functools.lru_cache(maxsize=1024)
def _background(axis: AxisView, n_bands: int, bh: float, prior, lower, mark_lower: bool, upper, mark_upper: bool
                ) -> str:
    """A chart's strip(s), edges, ticks, prior mark and bound lines: the same for every chart of one axis
    with the same prior and bounds (the 1,000 lengthscales of an ARD model draw it once)."""
    scale = _scale(axis)
    plot_h = n_bands * bh
    g = []
    for i in range(n_bands):
        g.append(f"<rect x='{EDGE}' y='{i * bh}' width='{PLOT_W}' height='{bh}' "
                 f"fill='{COLORS['strip_alt'] if i % 2 else COLORS['strip']}'/>")
    g.append(f"<rect x='{EDGE - 1}' y='0' width='1' height='{plot_h}' fill='{COLORS['zero']}'/>"
             f"<rect x='{EDGE + PLOT_W}' y='0' width='1' height='{plot_h}' fill='{COLORS['zero']}'/>")
    for t in nice_ticks(axis):  # the tick lines gpviz.js draws
        g.append(f"<rect x='{_n(round(scale(t)))}' y='0' width='1' height='{plot_h}' fill='{COLORS['tick']}'/>")
    if axis.kind != AxisKind.LOG and axis.lo < 0 < axis.hi:
        g.append(f"<rect x='{_n(round(scale(0.0)))}' y='0' width='1' height='{plot_h}' fill='{COLORS['zero']}'/>")
    if prior is not None:
        px, kind = _place(float(prior), axis, scale)
        if kind == "ok":
            g.append(f"<rect x='{_n(px - 0.75)}' y='0' width='1.5' height='{plot_h}' fill='{COLORS['prior']}'/>"
                     f"<path d='M{_n(px - 3.5)} {plot_h}h7l-3.5 -4z' fill='{COLORS['prior']}'/>")
    for b, at in ((lower, mark_lower), (upper, mark_upper)):
        if b is None or (axis.bounded and not at):
            continue
        bx, kind = _place(float(b), axis, scale)
        if kind != "ok":
            continue
        if at:
            g.append(f"<rect x='{_n(bx - 1)}' y='0' width='2' height='{plot_h}' fill='{COLORS['bad']}'/>")
        else:
            g.append(f"<path d='M{math.floor(bx) + 0.5} 0v{plot_h}' stroke='{COLORS['bad']}' "
                     f"stroke-dasharray='2 2'/>")
    return "".join(g)


@functools.lru_cache(maxsize=1024)
def _frame(axis: AxisView, band_labels: tuple[str, ...] | None, bh: float):
    """Where a chart's parts go on one axis ([band labels | lo] plot [hi] [value] [flag]) and its axis texts:
    the same for every chart of the axis.

    Returns:
        ``(height, x_after, texts, g_open, value_at, base)``: the picture's height, where a value written
        beside starts, the SVG of the axis (and band) labels, the plot group's opening tag (translated to
        the plot's origin), the opening tag of a value written beside, and the y of the text baseline's middle.
    """
    lo_t, hi_t = fmt_axis(axis.lo), fmt_axis(axis.hi)
    texts = []
    if band_labels is not None:
        plot_h = len(band_labels) * bh
        x0 = min(120.0, max((_text_w(t, BAND_FONT) for t in band_labels), default=0) + 4)
        y_axis, height, y0 = plot_h + AXIS_FONT + 1, plot_h + AXIS_FONT + 3, 0
        right = x0 + PLOT_W + 2 * EDGE
        every = max(1, math.ceil(9 / bh))
        for i, t in enumerate(band_labels):
            if i % every == 0:
                texts.append(f"<text x='{_n(x0 - 3)}' y='{_n((i + 0.5) * bh + BAND_FONT * 0.35)}' "
                             f"font-size='{BAND_FONT}' text-anchor='end' fill='#444'>{escape_html(t)}</text>")
        # under every band group: the round values gpviz.js labels (never two touching), else the two ends
        scale, last_right, ticks = _scale(axis), -math.inf, []
        for value in nice_ticks(axis):
            x, text = scale(value), fmt_axis(value)
            half = len(text) * 3
            if x - half < last_right + 4:
                continue
            ticks.append(f"<text x='{_n(x0 + x)}' y='{_n(y_axis)}' font-size='{AXIS_FONT}' text-anchor='middle' "
                         f"fill='{COLORS['text']}'>{text}</text>")
            last_right = x + half
        texts.append("".join(ticks) if ticks else
                     f"<text x='{_n(x0 + 2)}' y='{_n(y_axis)}' font-size='{AXIS_FONT}' "
                     f"fill='{COLORS['text']}'>{lo_t}</text>"
                     f"<text x='{_n(right - 2)}' y='{_n(y_axis)}' font-size='{AXIS_FONT}' text-anchor='end' "
                     f"fill='{COLORS['text']}'>{hi_t}</text>")
        x_after = right + 3
    else:
        x0, height, y0, plot_h = _text_w(lo_t, AXIS_FONT) + 3, ROW_H + 2, 1, bh
        right = x0 + PLOT_W + 2 * EDGE
        mid = y0 + ROW_H / 2 + AXIS_FONT * 0.35
        texts.append(f"<text x='{_n(x0 - 3)}' y='{_n(mid)}' font-size='{AXIS_FONT}' text-anchor='end' "
                     f"fill='{COLORS['text']}'>{lo_t}</text>"
                     f"<text x='{_n(right + 3)}' y='{_n(mid)}' font-size='{AXIS_FONT}' "
                     f"fill='{COLORS['text']}'>{hi_t}</text>")
        x_after = right + 3 + _text_w(hi_t, AXIS_FONT) + 4
    base = (y0 + ROW_H / 2) if band_labels is None else plot_h / 2
    g_open = f"<g transform='translate({_n(x0)} {y0})'>"
    value_at = (f"<text x='{_n(x_after)}' y='{_n(base + VALUE_FONT * 0.35)}' font-size='{VALUE_FONT}' "
                f"font-weight='600' fill='#000'>")
    return height, x_after, "".join(texts), g_open, value_at, base


def _layers(where: dict[tuple[float, str], int], diameter: float) -> list[list[str]]:
    """Dots (x, band's y text) -> count as path layers: within a layer no two dots overlap.

    A layer is one ``<path>`` of ``Mx yh0`` pieces, the next dot of a band a relative ``mdx 0h0`` (~8 bytes
    a dot, where one element per dot took ~27 in the data URI). Greedy by x within each band: a copy goes
    to the first layer whose last dot in its band is at least a diameter to its left. Bands never overlap,
    so a layer holds dots of every band.
    """
    if len(where) == 1:  # one spot (a snapshot's one dot, or its copies): one layer per copy
        ((x, y_text), count), = where.items()
        return [[f"M{_n(x)} {y_text}h0"]] * count
    by_band: dict[str, list[float]] = {}
    for (x, y_text), count in where.items():
        by_band.setdefault(y_text, []).extend([x] * count)
    layers: list[list[str]] = []
    ends: list[tuple[str, float]] = []  # per layer: the band and x its path ends at
    for y_text, xs in by_band.items():
        last: list[float] = []  # per layer: x of its last dot in this band
        for x in sorted(xs):
            for k, lx in enumerate(last):
                if x - lx >= diameter:
                    last[k] = x
                    break
            else:
                k = len(last)
                last.append(x)
            if k == len(layers):
                layers.append([])
                ends.append(("", 0.0))
            band, at = ends[k]
            # the next dot of the same band moves right from the last one ("m3.5 0h0"): x values are half
            # pixels, so the steps are exact and the dot lands where an absolute move would put it
            layers[k].append(f"m{_n(x - at)} 0h0" if band == y_text else f"M{_n(x)} {y_text}h0")
            ends[k] = (y_text, x)
    return layers


def _profile_svg(param: ParamView, axis: AxisView, scale, top: float) -> str:
    """A chart's "why here?" band below its strip at ``top``: each member's log likelihood, log prior and their
    sum, each from its own peak down to :data:`~gpviz.view.records.PROFILE_DROP` below it, as gpviz.js draws it;
    the prior's mode and a bound a value sits at are drawn through the band."""
    prof = param.profile
    assert prof is not None
    g = [f"<rect x='{EDGE}' y='{_n(top)}' width='{PLOT_W}' height='{PROFILE_H}' fill='#f7f7f7'/>"]
    xs = [_place(float(v), axis, scale) for v in prof.x]
    members = prof.log_likelihood.shape[0]
    for j in range(members):
        ll, lp = prof.log_likelihood[j], prof.log_prior[j]
        for kind, v in (("ll", ll), ("lp", lp), ("sum", ll + lp)):
            ok = np.isfinite(v)
            if not ok.any():
                continue
            peak = float(np.nanmax(np.where(ok, v, np.nan)))
            if peak - float(np.nanmin(np.where(ok, v, np.nan))) < 1e-9:  # constant (no prior on this axis)
                continue
            d, pen = [], False
            for (x, where), value, good in zip(xs, v.tolist(), ok.tolist()):
                if not good or where != "ok":
                    pen = False
                    continue
                y = top + 2 + min(1.0, (peak - value) / PROFILE_DROP) * (PROFILE_H - 4)
                d.append(f"{'L' if pen else 'M'}{_n(round(x, 1))} {_n(round(y, 1))}")
                pen = True
            opacity = max(0.2, 1 / math.sqrt(members)) if members > 1 else (1.0 if kind == "sum" else 0.85)
            g.append(f"<path d='{''.join(d)}' fill='none' stroke='{PROFILE_COLORS[kind]}' stroke-width='1.2' "
                     f"stroke-opacity='{opacity:.2f}'/>")
    if param.prior is not None:
        px, where = _place(float(param.prior), axis, scale)
        if where == "ok":
            g.append(f"<rect x='{_n(px - 0.75)}' y='{_n(top)}' width='1.5' height='{PROFILE_H}' "
                     f"fill='{COLORS['prior']}'/>")
    for b, at in ((param.lower, param.mark_lower), (param.upper, param.mark_upper)):
        bx, where = _place(float(b), axis, scale) if b is not None and at else (0.0, "")
        if where == "ok":
            g.append(f"<rect x='{_n(bx - 1)}' y='{_n(top)}' width='2' height='{PROFILE_H}' fill='{COLORS['bad']}'/>")
    return "".join(g)


@functools.lru_cache(maxsize=256)
def _band_ys(n_bands: int, bh: float) -> tuple[tuple[float, str], ...]:
    """The y of each band's middle, and as the SVG writes it."""
    return tuple(((i + 0.5) * bh, _n((i + 0.5) * bh)) for i in range(n_bands))


def param_chart(values: np.ndarray, axis: AxisView, param: ParamView, *, bands: np.ndarray | None = None,
                band_labels: tuple[str, ...] = (), band_px: int = ROW_H, single_row: bool = False,
                label: str = "", ghost: float | None = None) -> Chart:
    """The static picture of one parameter: its strip (or bands), markers and one dot per row.

    Args:
        values: ``n`` values to draw (one step of a trace: its members; all rows otherwise).
        axis: The parameter's axis, as the browser receives it (ends rounded as in the figure's spec).
        param: The parameter's chart record (prior mode, bounds and their marks, held tint).
        bands: ``n`` band indices (``i_config``) or None for one strip.
        band_labels: One label per band (drawn left of the bands).
        band_px: Height of a band in CSS px.
        single_row: Whether the figure shows one model (larger dot, its value written beside).
        label: The parameter's label, leading the summary.
        ghost: A value drawn as a hollow grey ring in the first band, as the explorer's canvas draws the fitted
            value (``None``: no ring, the picture as without the argument). Drawn only where it lies on the axis.

    Returns:
        A :class:`Chart`.
    """
    values = np.asarray(values, np.float64).reshape(-1)
    n = len(values)
    n_bands = len(band_labels) if bands is not None else 1
    bh = band_px if bands is not None else ROW_H
    scale = _scale(axis)
    height, x_after, axis_texts, g_open, value_at, base = _frame(
        axis, tuple(band_labels) if bands is not None else None, bh)
    ys = _band_ys(n_bands, bh)

    parts = []
    g = [g_open,
         _background(axis, n_bands, bh, param.prior, param.lower, param.mark_lower, param.upper, param.mark_upper)]

    counts = {"nan": 0, "inf": 0, "nonpos": 0, "out": 0}
    alpha = 0.9 if n <= 1 else max(0.3, min(0.6, 4 / math.sqrt(n)))
    r = max(1.2, min(3.5 if single_row else 2.8, bh / 2 - 1))
    dots: dict[tuple[float, str], int] = {}
    red: dict[tuple[float, str], int] = {}
    marks = []
    shown = []
    for i, v in enumerate(values.tolist()):
        y, y_text = ys[int(bands[i]) if bands is not None else 0]
        x, kind = _place(v, axis, scale)
        if kind == "nan":
            counts["nan"] += 1
            continue
        if kind != "ok":
            counts[kind] += 1
            t = max(3.5, min(5.0, bh / 2))
            d = t if x > EDGE else -t  # the triangle points off the axis, at the edge the value is beyond
            marks.append(f"M{_n(x + d)} {_n(y)}L{_n(x - d)} {_n(y - t)}L{_n(x - d)} {_n(y + t)}z")
            continue
        shown.append(v)
        at = _at_bound(v, param.lower) or _at_bound(v, param.upper)
        key = (round(x * 2) / 2, y_text)
        into = red if at else dots
        into[key] = min(into.get(key, 0) + 1, MAX_COPIES)
    for color, where in ((COLORS["dot"], dots), (COLORS["bad"], red)):
        if where:
            # each dot a zero-length round-capped stroke ("Mx yh0"); dots that overlap sit in different paths,
            # so they darken each other as on the canvas (one path is painted once, its own overlaps not)
            g.append(f"<g stroke='{color}' stroke-width='{_n(2 * r)}' stroke-linecap='round' "
                     f"stroke-opacity='{alpha:.2f}'>"
                     + "".join(f"<path d='{''.join(layer)}'/>" for layer in _layers(where, 2 * r)) + "</g>")
    if marks:
        g.append(f"<path d='{''.join(marks)}' fill='{COLORS['bad']}'/>")
    ghost_x, ghost_kind = _place(float(ghost), axis, scale) if ghost is not None else (math.nan, "none")
    if ghost_kind == "ok":  # gpviz.js: a 1.5 px ring of radius 3..4.5 px (half the band) at the band's middle
        g.append(f"<circle class='gpx-ghost' cx='{_n(ghost_x)}' cy='{ys[0][1]}' r='{_n(max(3.0, min(4.5, bh / 2)))}' "
                 f"fill='none' stroke='{COLORS['ghost']}' stroke-width='1.5'/>")
    if param.profile is not None and bands is None:
        g.append(_profile_svg(param, axis, scale, bh))
        height += PROFILE_H
    g.append("</g>")
    parts += g

    texts = [axis_texts]
    vt = fmt_value(float(values[0])) if n == 1 else ""
    if n == 1:
        texts.append(f"{value_at}{vt}</text>")
        x_after += _text_w(vt, VALUE_FONT) + 6
    flags = []
    if counts["nan"]:
        flags.append(f"{counts['nan']} NaN")
    if counts["inf"]:
        flags.append(f"{counts['inf']} inf")
    if counts["nonpos"]:
        flags.append(f"{counts['nonpos']} \u2264 0 on log axis")
    if counts["out"]:
        flags.append(f"{counts['out']} off axis")
    if n == 0:
        flags.append("no values")
    if flags:
        ft = "\u26a0 " + ", ".join(flags)
        texts.append(f"<text x='{_n(x_after)}' y='{_n(base + 11 * 0.35)}' font-size='11' font-weight='600' "
                     f"fill='{COLORS['bad']}'>{escape_html(ft)}</text>")
        x_after += _text_w(ft, 11) + 4
    width = math.ceil(x_after)
    if param.held:  # gpviz.css tints a held parameter's placeholder; here the picture carries the tint
        parts.insert(0, f"<rect x='0.5' y='0.5' width='{width - 1}' height='{_n(height - 1)}' rx='3' "
                        f"fill='{COLORS['held']}' stroke='{COLORS['held_edge']}' stroke-opacity='0.6'/>")
    head = (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{math.ceil(height)}' "
            f"viewBox='0 0 {width} {math.ceil(height)}' font-family='Helvetica,Arial,sans-serif'>")
    segments = (head, *parts, *texts, "</svg>")

    if n == 1:
        summary = vt
    elif shown:
        s = sorted(shown)
        summary = (f"median {fmt_value(s[len(s) // 2])} of {n} ({fmt_value(s[0])} .. {fmt_value(s[-1])})")
    else:
        summary = f"{n} values"
    if flags:
        summary += "; " + ", ".join(flags)
    if ghost_kind == "ok" and ghost is not None:
        summary += f"; fitted {fmt_value(float(ghost))}"
    if param.held:
        summary += "; held by prior"
    return Chart(segments, width, math.ceil(height), f"{label}: {summary}" if label else summary,
                 {k: c for k, c in counts.items() if c})
