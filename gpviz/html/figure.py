"""A figure's HTML: the expression as code with one chart placeholder per parameter, its legend and its data.

Reads a :class:`~gpviz.view.records.ViewData` and writes what ``static/gpviz.js``
mounts: the container, the placeholders (``.gpviz-param`` with ``data-key``), the
spec (axes, per-key metadata, step offsets) and the packed columns.

Hooks a drawn page exposes (for tests and tools; no user strings): each
``.gpviz-param`` placeholder gets ``data-drawn="1"``, ``data-points`` (dots
drawn), ``data-flags`` (``nan:1,inf:2,nonpos:1,empty``) and the JS arrays
``el.gpvizXs`` / ``el.gpvizYs`` (dot centres in CSS px from the canvas' top
left, one per row); the container gets ``data-drawn`` (and ``data-step`` for a
trace); ``window.gpvizSummary[container id]`` holds mode, counts, flagged keys,
the highlighted member and mount timings.

A fit trace (``timeline``) carries its values at display precision
(:mod:`gpviz.html.compact`: 4 significant digits, delta coded over steps,
deflated), so every step of every member fits on the page; each placeholder
then also gets ``el.gpvizValues`` (the values drawn, as decoded), and the
container ``gpvizShowStep(i)``, ``gpvizSetSpeed(s)``, ``data-speed`` and
``data-steps`` (the player's speed control). Other figures carry float32
(float64 where float32 would lose range).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re

from typing import Mapping

import numpy as np

from gpviz.errors import InputError
from gpviz.html.below import below_html
from gpviz.html.code import code_block_html, code_html, code_lines, notation_html
from gpviz.html.compact import CompactData, encode_compact
from gpviz.html.encode import encode_column, encode_columns, pack_columns
from gpviz.html.header import legend_html, styled as _cls, subtitle
from gpviz.markup import escape_html, js_string, script_json
from gpviz.html.page import Page
from gpviz.html.relevance import relevance_html
from gpviz.html.svg import param_chart
from gpviz.tree.nodes import Param
from gpviz.tree.printer import layout
from gpviz.values.columns import I_CONFIG
from gpviz.view.axes import finite_or_none
from gpviz.view.records import (AxisKind, AxisView, FrameData, FrameMode, LossData, ParamView, ProfileCurves,
                                Sensitivity, VerdictSummary, ViewData)

LAYOUT_WIDTH = 110  # characters per code line
# a chart's width in characters
LEAF_CHARS = {FrameMode.SNAPSHOT: 32, FrameMode.BATCH: 28, FrameMode.CONFIGS: 30, FrameMode.TIMELINE: 32}
MAX_BAND_PX, MIN_BAND_PX, CONFIGS_PX = 12, 4, 192
#: With more charts than this, bands are at most COMPACT_BAND_PX tall: a 48-lengthscale model stays a few
#: screens long (one band per size still reads).
MANY_CHARTS, COMPACT_BAND_PX = 20, 5

_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def check_id(element_id: object) -> str:
    """Validates a container id.

    Raises:
        InputError: unless it starts with a letter and holds at most 64 letters, digits, '-' and '_'.
    """
    if not isinstance(element_id, str) or not _ID_RE.match(element_id):
        raise InputError(f"element_id must start with a letter and hold only letters, digits, '-' and '_' "
                         f"(at most 64), got {element_id!r}")
    return element_id


def _round6(x) -> float | None:
    x = finite_or_none(x)
    return None if x is None else float(f"{x:.6g}")


def _round_axis(axis: AxisView) -> tuple[float, float]:
    """Axis ends to 6 digits unless that moves an end by more than 0.1% of the axis (then exact)."""
    lo, hi = float(axis.lo), float(axis.hi)
    rlo, rhi = float(f"{lo:.6g}"), float(f"{hi:.6g}")
    if axis.kind == AxisKind.LOG:
        span = math.log10(hi) - math.log10(lo)
        moved = max(abs(math.log10(rlo) - math.log10(lo)), abs(math.log10(rhi) - math.log10(hi)))
    else:
        span, moved = hi / 2 - lo / 2, max(abs(rlo - lo), abs(rhi - hi)) / 2
    return (rlo, rhi) if rlo < rhi and moved <= 1e-3 * span else (lo, hi)


# --------------------------------------------------------------------------- #
# HTML pieces                                                                 #
# --------------------------------------------------------------------------- #


def _css_token(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(s)) or "value"


def chart_placeholder(p: Param, view: ParamView, axis: AxisView, static: str, label: str = "") -> str:
    """A chart's placeholder: its static picture (trusted HTML made here) until gpviz.js draws the chart."""
    classes = ["gpviz-param", f"gpviz-role-{_css_token(view.role)}", f"gpviz-axis-{axis.kind}"]
    if view.held:
        classes.append("gpviz-held")
    if view.never_moved:
        classes.append("gpviz-never-moved")
    # the readable label travels as an (escaped) attribute: user strings stay out of scripts
    named = f' data-label="{escape_html(label)}"' if label else ""
    return f'<span class="{" ".join(classes)}"{named} data-key="{escape_html(p.key)}">{static}</span>'


#: Shown until gpviz.js mounts the figure (which removes it): where scripts do not run, how to get the live view.
STATIC_NOTE = ("Static view: scripts did not run here, so these charts are pictures of the last values. "
               "For the interactive view (hover, play, scrub) trust the notebook (JupyterLab: command palette "
               "\u25b8 Trust Notebook) or open the page saved with fig.save(\"figure.html\").")
#: Replaces STATIC_NOTE when scripts run but gpviz.js never reached the page (its output is not shown here).
MISSING_NOTE = ("Static view: gpviz's scripts are in another output of this notebook that is not shown here. "
                "Rerun this cell to draw the interactive view.")


def _static_rows(data: FrameData) -> slice:
    """The rows a static chart shows: a trace's last step (where the interactive view opens), else all."""
    if data.mode == FrameMode.TIMELINE and data.steps:
        return slice(data.step_starts[-2], data.step_starts[-1])
    return slice(0, data.n_rows)


def static_chart(view: ViewData, key: str, band_px: int) -> str:
    """A placeholder's static form: an ``<img>`` of its chart (see :mod:`gpviz.html.svg`), replaced by gpviz.js."""
    data, pv = view.frame, view.params[key]
    rows = _static_rows(data)
    chart = param_chart(data.values[key][rows], _rounded(view.axes[pv.axis]), pv,
                        bands=data.i_config[rows] if data.i_config is not None else None,
                        band_labels=data.config_labels if data.i_config is not None else (),
                        band_px=band_px, single_row=data.members == 1, label=view.labels.get(key, key))
    text = escape_html(chart.summary)
    return (f'<img class="gpviz-static" src="{chart.data_uri()}" width="{chart.width}" '
            f'height="{chart.height}" alt="{text}" title="{text}" style="vertical-align:middle">')


@functools.lru_cache(maxsize=256)  # asked once per chart; an ARD model's 1,000 charts share one axis
def _rounded(axis: AxisView) -> AxisView:
    """The axis as the browser receives it (ends rounded to 6 digits where that is invisible)."""
    lo, hi = _round_axis(axis)
    return AxisView(axis.kind, lo, hi, axis.role, axis.bounded)


def inner_html(view: ViewData, extra_html: str = "") -> str:
    """The figure's content (title, subtitle, warnings, legend, the expression with placeholders, what goes below).

    ``extra_html``: the caller's HTML below the rest (a :class:`~gpviz.markup.Markup` as it is, a plain
    string escaped).
    """
    data = view.frame
    parts = []
    if view.title:
        parts.append(f'<div {_cls("gpviz-title")}>{escape_html(view.title)}</div>')
    parts.append(f'<div {_cls("gpviz-subtitle")}>{escape_html(subtitle(data, view.members, view.member))}</div>')
    bad = view.flagged
    if data.n_rows == 0:
        parts.append(f'<div {_cls("gpviz-warning")}>\u26a0 no values to draw yet (the frame has no rows)</div>')
    elif bad:
        listed = "; ".join(f"{k}: {v}" for k, v in list(bad.items())[:8]) + ("; ..." if len(bad) > 8 else "")
        parts.append(f'<div {_cls("gpviz-warning")}>\u26a0 flagged values: {escape_html(listed)}</div>')
    for text in view.warnings:
        parts.append(f'<div {_cls("gpviz-warning")}>\u26a0 {escape_html(text)}</div>')
    parts.append(legend_html(view, bool(bad) and data.n_rows > 0, tuple(_rounded(a) for a in view.axes)))
    parts.append(f'<div {_cls("gpviz-static-note")}>{escape_html(STATIC_NOTE)}</div>')
    if data.mode == FrameMode.TIMELINE:
        parts.append('<div class="gpviz-time"></div><span class="gpviz-time-state"></span>')
    if data.mode == FrameMode.TIMELINE and view.loss is not None:
        parts.append('<div class="gpviz-loss"></div>')  # drawn by gpviz.js from spec["loss"]
    parts.append(notation_html(view.notation))
    key = dict(view.notation)
    leaf_chars = LEAF_CHARS[data.mode]
    band_px = band_height_px(len(data.config_labels), len(view.params))
    memo: dict[str, str] = {}
    for sec in view.sections:
        cl = code_lines(layout(sec.tree, lambda p: "#" * leaf_chars, LAYOUT_WIDTH))

        def token_html(t: str | Param) -> str:
            if isinstance(t, Param):
                pv = view.params[t.key]
                return chart_placeholder(t, pv, view.axes[pv.axis], static_chart(view, t.key, band_px),
                                    view.labels.get(t.key, ""))
            return code_html(t, key, memo)

        code = code_block_html(cl, token_html, LEAF_CHARS[FrameMode.CONFIGS])
        note_html = f' <span {_cls("gpviz-note")}>({escape_html(sec.note)})</span>' if sec.note else ""
        # every section folds (a <details>, open): a long kernel can be put away to read the noise and mean
        parts.append(f'<details {_cls("gpviz-section")} open><summary {_cls("gpviz-section-title")}>'
                     f'{escape_html(sec.title)}{note_html}</summary><pre class="gpviz-code">{code}</pre></details>')
    if view.summary is not None:
        parts.append(summary_html(view.summary, view.labels))
    if view.relevance:
        parts.append(relevance_html(view.relevance))
    below = below_html(view.notes, view.curve, extra_html, view.influence, view.labels)
    if below:
        parts.append(f'<div class="gpviz-extra">{below}</div>')  # Markup: built by gpviz itself
    return "\n".join(parts)


def summary_html(summary: VerdictSummary, labels: Mapping[str, str] | None = None) -> str:
    """The verdicts in words: the note, one sentence per parameter group, and the held share per key and size.

    A row is named by its label (``lengthscale[log_lr]``; the key is its hover text and
    ``data-key``). A table cell reads "51% (2/4)": the share of the folds at that size
    held at the prior's mode, and the repeats in which most folds are; its hover gives
    every count.
    """
    labels = labels or {}
    parts = [f'<div class="gpviz-verdicts"><div class="gpviz-verdict-note">{escape_html(summary.note)}</div>']
    if summary.sentences:
        parts.append('<ul class="gpviz-verdict-sentences">'
                     + "".join(f"<li>{escape_html(t)}</li>" for t in summary.sentences) + "</ul>")
    if summary.rows:
        head = "".join(f"<th>n = {int(s)}</th>" for s in summary.sizes)
        rows = []
        for key, bands in summary.rows:
            cells = []
            for b in bands:
                if b is None:
                    cells.append("<td>\u2013</td>")
                    continue
                alpha = 0.10 + 0.45 * b.share if b.share > 0 else 0.0
                cells.append(f'<td class="gpviz-verdict-cell" data-held="{b.share:.6g}" '
                             f'title="{escape_html(b.text)}" style="background: rgba(255, 170, 0, {alpha:.3f})">'
                             f"{b.share:.0%} ({b.repeats_held}/{b.repeats})</td>")
            rows.append(f'<tr><td class="gpviz-verdict-key" data-key="{escape_html(key)}" title="{escape_html(key)}">'
                        f'{escape_html(labels.get(key, key))}</td>{"".join(cells)}</tr>')
        parts.append('<table class="gpviz-verdict-table"><tr><th class="gpviz-verdict-key">held at the prior\'s '
                     f'mode: share of folds (repeats)</th>{head}</tr>{"".join(rows)}</table>')
    parts.append("</div>")
    return "".join(parts)


def _bands_spec(bands) -> list | None:
    """Per configuration ``[share, hover text]`` or None, for gpviz.js (None when the key has no bands)."""
    if not bands:
        return None
    return [[round(b.share, 6), b.text] if b is not None else None for b in bands]


def _profile_spec(profile: ProfileCurves) -> dict:
    """A chart's "why here?" curves for gpviz.js: the grid, then per member the log likelihood and the log prior,
    each as its drop below its own peak to 0.001 (None where not finite): gpviz.js draws each curve down to a fixed
    drop below its peak, so differences keep their digits however large the log likelihood is."""
    def below_peak(a: np.ndarray) -> list:
        top = np.nanmax(a) if np.isfinite(a).any() else 0.0
        return [round(float(v - top), 3) if np.isfinite(v) else None for v in a]
    return {"x": [float(f"{v:.6g}") for v in profile.x], "ll": [below_peak(r) for r in profile.log_likelihood],
            "lp": [below_peak(r) for r in profile.log_prior]}


def _psense_spec(s: Sensitivity) -> list:
    """``[prior, likelihood, diagnosis, pareto k, threshold]`` for gpviz.js (hover text and the chart's badge)."""
    return [float(f"{s.prior:.3g}"), float(f"{s.likelihood:.3g}"), s.diagnosis, float(f"{s.pareto_k:.2g}"),
            s.threshold]


def band_height_px(n_configs: int, n_charts: int) -> int:
    """Height of one configuration's band in CSS px: the stack stays near CONFIGS_PX tall, and a figure
    of more than MANY_CHARTS charts keeps bands at most COMPACT_BAND_PX (a 48-lengthscale model stays a
    few screens long; one band per size still reads)."""
    top = COMPACT_BAND_PX if n_charts > MANY_CHARTS else MAX_BAND_PX
    return int(max(MIN_BAND_PX, min(top, CONFIGS_PX // max(n_configs, 1))))


def spec_of(view: ViewData) -> dict:
    """What the browser receives: mode, axes, per-key metadata, step offsets and the encoded columns."""
    data = view.frame
    columns = encode_columns({k: data.values[k] for k in view.params})
    configs = None
    if data.i_config is not None:
        columns[I_CONFIG] = encode_column(data.i_config.astype(np.int32))
        configs = {"column": I_CONFIG, "labels": list(data.config_labels),
                   "band": band_height_px(len(data.config_labels), len(view.params))}
    return {
        "v": 1, "mode": data.mode, "n_rows": data.n_rows, "members": data.members,
        "member": view.member,  # what a dot is, in the hover text
        # axis ends and prior modes to 6 digits: invisible on a 150 px axis, and the same bytes on every libm
        "axes": [{"kind": ax.kind, "lo": lo, "hi": hi, "role": ax.role, "bounded": ax.bounded}
                 for ax in view.axes for lo, hi in [_round_axis(ax)]],
        "params": {k: {"axis": p.axis, "role": p.role, "prior": _round6(p.prior), "lower": finite_or_none(p.lower),
                       "upper": finite_or_none(p.upper), "mark_lower": p.mark_lower, "mark_upper": p.mark_upper,
                       "held": p.held, **({"never": True} if p.never_moved else {}),
                       **({"bands": _bands_spec(p.bands)} if p.bands else {}),
                       **({"profile": _profile_spec(p.profile)} if p.profile is not None else {}),
                       **({"psense": _psense_spec(p.sensitivity)} if p.sensitivity is not None else {})}
                   for k, p in view.params.items()},
        "configs": configs,
        "steps": data.steps, "step_starts": data.step_starts, "step_prefix": "Step",
        "row_members": data.row_members,
        # names of the members when they are named outputs (hover text: "output 'yield'")
        "member_names": list(view.member_names) if view.member_names else None,
        "bad": view.flagged,
        "columns": columns,
        "loss": _loss_spec(view.loss) if view.loss is not None else None,
    }


def _loss_spec(loss: LossData) -> dict:
    """A fit's loss chart as gpviz.js draws it into ``.gpviz-loss`` (its points travel in :func:`loss_data`)."""
    return {"t": "t", "v": "v", "m": "m", "members": int(loss.members), "retries": [int(t) for t in loss.retries],
            "converged": [None if c is None else int(c) for c in loss.converged],
            "label": "Loss (negative MLL) per member: the red line is the step shown; a ring marks where a "
                     "member converged; hover a line to ring its dots", "x_label": "timestep"}


def loss_data(loss: LossData) -> CompactData:
    """The loss chart's points (timestep, loss, member per point) as their own compact payload.

    They have another length than the parameter columns (every recorded evaluation), so they travel
    beside them: integers exactly, the loss with the fewest significant digits that move no point of
    the chart by more than :data:`gpviz.html.compact.MAX_SHIFT_PX` over its whole loss range.
    """
    v = np.asarray(loss.v, np.float64)
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    axis = {"kind": AxisKind.LINEAR, "lo": lo, "hi": hi if hi > lo else lo + 1.0}
    return encode_compact({"t": np.asarray(loss.t, np.int64), "v": v, "m": np.asarray(loss.m, np.int64)},
                          axes={"v": axis})


class Figure(Page):
    """A rendered expression: ``.html()`` (standalone offline page), ``._repr_html_()``, ``.save(path)``.

    Attributes:
        element_id: Id of the figure's container (a content hash unless fixed).
        spec: What the browser receives (mode, axes, per-key metadata, encoded columns).
        keys: Placeholder keys, in print order.
        columns: Columns sent to the browser: the keys, plus ``i_config`` for a configuration list.
        title: The page title.
        view: The :class:`~gpviz.view.records.ViewData` it was drawn from.
        compact: What a fit trace's page carries instead of :attr:`spec`'s exact columns
            (:class:`~gpviz.html.compact.CompactData`), or None.
        loss: The loss chart's points (:func:`loss_data`), or None.
    """

    def __init__(self, inner_html: str, spec: dict, element_id: str | None, title: str, view: ViewData | None = None,
                 compact: CompactData | None = None, loss: CompactData | None = None):
        self._inner = inner_html
        self.spec = spec
        self.compact = compact
        self.loss = loss
        sent = {**spec, "loss": {**spec["loss"], "columns": loss.layout}} if loss is not None else spec
        if compact is not None:  # a fit trace: values at display precision, deflated (gpviz.html.compact)
            self._blob = compact.text
            self._spec_json = script_json({**sent, "columns": compact.layout, "packed": "compact"})
        else:
            self._blob, packed = pack_columns(spec["columns"])
            self._spec_json = script_json({**sent, "columns": packed, "packed": True})
        if element_id is None:  # a hash of what the page carries: the same figure gets the same id
            digest = hashlib.sha256()
            for part in (inner_html, self._spec_json, self._blob, loss.text if loss is not None else ""):
                digest.update(part.encode("utf-8"))  # piece by piece: no joined copy of a 2 MB page
                digest.update(b"\0")
            element_id = f"gpviz-{digest.hexdigest()[:12]}"
        self.element_id = check_id(element_id)
        self.title = title
        self.keys = tuple(spec["params"])
        self.columns = tuple(spec["columns"])
        self.view = view

    @property
    def mode(self) -> str:
        """``snapshot``, ``batch``, ``configs`` or ``timeline``."""
        return self.spec["mode"]

    def fragment(self, element_id: str | None = None) -> str:
        """The figure's container and mount script, without the page assets.

        The assets are :func:`gpviz.html.assets.header_html`.

        The mount script draws at once if the page has gpviz.js (and, for a trace,
        rows2prose's time control), else queues itself for when they arrive (a
        later notebook output, see :mod:`gpviz.html.notebook`). If they never do, the
        static charts stay and the note under the legend says to rerun the cell.
        """
        eid = element_id or self.element_id
        time = "true" if self._animated() else "false"
        mount = (f"<script>(function(){{var s={self._spec_json},id={js_string(eid)},t={time};"
                 "function go(){if(!window.gpviz||!window.gpviz.mountById||(t&&!window.r2p))return false;"
                 "window.gpviz.mountById(id,s);return true;}"
                 "if(!go()){(window.gpvizQueue=window.gpvizQueue||[]).push(go);"
                 "setTimeout(function(){var c=document.getElementById(id),"
                 "n=c&&!c.gpvizMounted&&c.querySelector('.gpviz-static-note');"
                 f"if(n)n.textContent={js_string(MISSING_NOTE)};}},5000);}}}})();</script>")
        # the data: base64 in a script the browser does not run (see pack_columns), inside the container
        data = f'<script type="application/octet-stream" class="gpviz-data">{self._blob}</script>'
        if self.loss is not None:
            data += f'\n<script type="application/octet-stream" class="gpviz-loss-data">{self.loss.text}</script>'
        return f'<div class="gpviz-figure" id="{escape_html(eid)}">\n{self._inner}\n{data}\n</div>\n{mount}\n'

    def _body(self, suffix: str = "") -> str:
        return self.fragment(self.element_id + suffix)

    def _animated(self) -> bool:
        return self.mode == FrameMode.TIMELINE

    def __repr__(self) -> str:
        return (f"<gpviz.Figure {self.mode}: {len(self.keys)} parameters, {self.spec['n_rows']} rows, "
                f"id {self.element_id}>")


def compact_of(view: ViewData, spec: dict) -> CompactData:
    """A timeline's columns at display precision, deltas along each member's steps (see :mod:`gpviz.html.compact`).

    Each column is checked against the axis the page draws it on (``spec["axes"]``, the rounded ends)
    and its bounds, so positions, flags and red at-bound dots survive the rounding.
    """
    data = view.frame
    counts = np.diff(data.step_starts) if data.steps else np.zeros(0, np.int64)
    grid = (len(data.steps), int(counts[0])) if len(counts) and (counts == counts[0]).all() else None
    columns = {k: data.values[k] for k in view.params}
    if data.i_config is not None:
        columns[I_CONFIG] = data.i_config.astype(np.int32)
    params = spec["params"]
    return encode_compact(columns, grid=grid, axes={k: spec["axes"][params[k]["axis"]] for k in view.params},
                          bounds={k: (params[k]["lower"], params[k]["upper"]) for k in view.params})


def figure(view: ViewData, element_id: str | None = None, extra_html: str = "") -> Figure:
    """The :class:`Figure` of a view (its id a hash of the content unless ``element_id`` is given).

    ``extra_html``: HTML placed below the expression (see :func:`inner_html`).
    """
    inner, spec = inner_html(view, extra_html), spec_of(view)
    loss = loss_data(view.loss) if view.loss is not None else None
    compact = compact_of(view, spec) if view.frame.mode == FrameMode.TIMELINE else None
    return Figure(inner, spec, element_id, view.title or "gpviz", view, compact, loss)
