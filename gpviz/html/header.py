"""A figure's header: its subtitle and legend, and the inline look of its text parts.

Legend swatches and text parts carry their look in style attributes as well as gpviz.css's classes: a notebook
opened untrusted drops every ``<style>`` but keeps style attributes, so the header still reads as it does with
the stylesheet.
"""

from __future__ import annotations

from collections import Counter

from gpviz.markup import escape_html
from gpviz.priors.sensitivity import CONFLICT, STRONG_PRIOR
from gpviz.priors.verdicts import VERDICTS
from gpviz.view.axes import bound_on_axis
from gpviz.view.records import AxisKind, AxisView, FrameData, FrameMode, ViewData


_SWATCH_STYLES = {
    "dot": "width:8px;height:8px;border-radius:4px;background:#1f5fbf;opacity:0.7",
    "prior": "width:2px;height:12px;background:#1a9a3a",
    "bound": "width:3px;height:12px;background:#d62728",
    "bound-dash": "width:1px;height:12px;background:repeating-linear-gradient(#d62728 0 2px, transparent 2px 4px)",
    "held": "width:14px;height:12px;background:rgba(255, 170, 0, 0.30);border:1px solid rgba(200, 120, 0, 0.6)",
    "never": "width:14px;height:12px;background:rgba(128, 128, 128, 0.22);border:1px solid rgba(110, 110, 110, 0.55)",
}
#: The hover text of a "never moved" parameter (its legend item and its chart).
NEVER_MOVED_TEXT = "the data carries no information about it: the optimizer left it where it started"
_TEXT_STYLES = {
    "gpviz-title": "font-size:17px;font-weight:600;margin:4px 0 2px 0",
    "gpviz-subtitle": "color:#666;margin:0 0 6px 0",
    "gpviz-warning": "color:#b00020;margin:4px 0",
    "gpviz-legend": "color:#555;font-size:12px;margin:4px 0 8px 0",
    "gpviz-legend-item": "margin-right:14px;white-space:nowrap",
    "gpviz-section": "margin:10px 0 4px 0",
    "gpviz-section-title": "font-weight:600;cursor:pointer",
    "gpviz-note": "font-weight:normal;color:#666;font-style:italic",
    "gpviz-static-note": "color:#666;font-style:italic;font-size:12px",
}


ORDER = {str(v): i for i, v in enumerate(VERDICTS)}


def styled(name: str) -> str:
    """``class="name" style="..."``: a text part's class and its inline look."""
    return f'class="{name}" style="{_TEXT_STYLES[name]}"'


def _swatch(kind: str) -> str:
    return (f'<span class="gpviz-swatch gpviz-swatch-{kind}" style="display:inline-block;vertical-align:middle;'
            f'margin-right:4px;{_SWATCH_STYLES[kind]}"></span>')


def legend_html(view: ViewData, has_bad: bool, shown: tuple[AxisView, ...]) -> str:
    """The legend: what a dot, a green line, a red bar, a tint mean on this page, the verdicts, the axes' scales.

    Args:
        view: The page's view.
        has_bad: Some values are flagged (the legend explains the edge triangles).
        shown: The view's axes as the browser receives them (ends rounded).
    """
    def item(inner: str, extra: str = "") -> str:  # inner: trusted HTML made here
        return f'<span {styled("gpviz-legend-item")}{extra}>{inner}</span>'

    one = escape_html(view.member)
    mode = view.frame.mode
    items = [item(_swatch("dot") + ("value" if mode == FrameMode.SNAPSHOT else f"one dot per {one}"))]
    params = view.params.values()
    if any(p.prior is not None for p in params):
        items.append(item(_swatch("prior") + "prior mode"))
    if any(p.mark_lower or p.mark_upper for p in params):
        items.append(item(_swatch("bound") + "constraint bound a value sits at (those values red)"))
    if any(bound_on_axis(p, shown[p.axis]) for p in params):
        items.append(item(_swatch("bound-dash") + "constraint bound"))
    banded = any(p.bands and any(b is not None and b.held for b in p.bands) for p in params)
    why = ' title="gpviz.prior_pull: the prior, not the data, sets the value, near its mode"'
    counts = Counter(str(p.verdict) for p in params if p.verdict)
    # every verdict that occurs, counted over the charts (one per parameter element), in the verdicts' own order
    told = ", ".join(f"{counts[v]} {v}" for v in sorted(counts, key=lambda v: (ORDER.get(v, len(ORDER)), v)))
    if banded:
        items.append(item(_swatch("held") + "held at the prior's mode (a band's tint: the share of its folds)", why))
    elif any(p.held for p in params):
        items.append(item(_swatch("held") + "held at the prior's mode", why))
    elif view.judged:
        items.append(item('<span class="gpviz-legend-noheld">gpviz.prior_pull: no parameter held at its prior\'s '
                          "mode</span>"))
    if any(p.never_moved for p in params):
        items.append(item(_swatch("never") + "never moved", f' title="gpviz.prior_pull: {NEVER_MOVED_TEXT}"'))
    if counts and not banded:
        items.append(item(f'<span class="gpviz-legend-verdicts">gpviz.prior_pull verdicts: {escape_html(told)}'
                          "</span>", why))
    sens = [p.sensitivity for p in params if p.sensitivity is not None]
    if sens:
        found = Counter(x.diagnosis or "neither" for x in sens)
        said = ", ".join(f"{found[d]} {d}" for d in (CONFLICT, STRONG_PRIOR, "neither") if found[d])
        items.append(item(f'<span class="gpviz-legend-psense">gpviz.prior_sensitivity (power-scaling, threshold '
                          f'{sens[0].threshold:g}): {escape_html(said)}</span>',
                          ' title="Kallioinen et al. 2024, as ArviZ psense: hover a chart for its numbers"'))
    if has_bad:
        items.append(item('<span class="gpviz-swatch gpviz-swatch-flag" style="color:#d62728;font-weight:600">'
                          "\u26a0 \u25b6</span>NaN, inf or \u2264 0 on a log axis (drawn at the edge)"))
    axes = []
    for ax in view.axes:
        scale = "log" if ax.kind == AxisKind.LOG else "linear"
        bounds = " (its bounds)" if ax.bounded else ""
        axes.append(f"{escape_html(ax.role)}: {scale}{bounds}")
    if axes:
        items.append(item(f'axes: {"; ".join(dict.fromkeys(axes))}'))
    if mode != FrameMode.SNAPSHOT:
        items.append(item(f'hover a dot to ring its {one} in every chart <b class="gpviz-hover"></b>'))
    return f'<div {styled("gpviz-legend")}>' + "".join(items) + "</div>"


def subtitle(data: FrameData, label: str, one: str) -> str:
    """What the page's charts are, in one line (one model, a batch, configurations, a fit trace)."""
    if data.mode == FrameMode.SNAPSHOT:
        return "one model: each parameter's value on its own axis"
    if data.mode == FrameMode.BATCH:
        return f"batch of {data.n_rows} {label}: one dot per {one}"
    if data.mode == FrameMode.CONFIGS:
        return (f"{len(data.config_labels)} configurations, one labelled band each, top to bottom; "
                f"one dot per {one}")
    bands = (f"{len(data.config_labels)} configurations (one labelled band each) \u00d7 "
             if data.i_config is not None else "")
    return (f"fit trace: {len(data.steps)} steps; {bands}{data.members} {label if data.members != 1 else one}; "
            f"play, pause or scrub")
