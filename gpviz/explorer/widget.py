"""The explorer widget: an anywidget whose front end (``static/explore.js``) drags the expression's numbers.

The front end sets the ``request`` trait (``{"seq", "key", "value"}`` or ``{"seq", "reset": true}``);
:class:`Explorer` applies it to its :class:`~gpviz.explorer.state.ExploreState` and sends back
``values``, ``metrics``, ``curves`` and ``near`` (the slices, drawn in ``slice_units``: original units where the
model's own transforms invert) and ``error`` (the reason a value was refused), and
``done`` (the ``seq`` it answered, so the page knows which drag the numbers belong to).

Each parameter's chart is gpviz.js's own (``window.gpviz.chart``, the dot chart of a model page): the widget's
front end is gpviz.js followed by explore.js, and ``charts`` carries what a model page's spec holds for each key
(its axis, prior mode, bounds: :func:`gpviz.html.figure.spec_of` of the fitted model's view) with every member's
fitted value; the page moves the explored member's dot, drags it along the axis, and rings its fitted value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from importlib import resources
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import torch
import traitlets
from IPython.display import display

from gpviz.errors import InputError, KeyMismatchError
from gpviz.explorer.snapshot import snapshot_html
from gpviz.explorer.records import OriginalUnits, SliceGeometry
from gpviz.explorer.state import ExploreState
from gpviz.html.figure import spec_of
from gpviz.html.svg import param_chart
from gpviz.view.adapters import model_view
from gpviz.view.records import AxisView, AxisKind, ViewData
from gpviz.tree.nodes import Part
from gpviz.tree.printer import to_text

#: Torch and BLAS threads of one update (set, metrics, slices).
UPDATE_THREADS = 1
#: Significant digits (of each array's largest magnitude) the slices are sent with.
DRAWN_DIGITS = 5
#: Marks a parameter's place in the printed expression; no printed text contains it.
_MARK = "\x00"


def _static(name: str) -> str:
    return resources.files("gpviz.static").joinpath(name).read_text("utf-8")


def _charts(expr) -> tuple[dict, ViewData]:
    """What gpviz.js's ``chart`` draws for each key, as a model page's spec holds it (JSON-ready), and the view.

    Returns:
        ``{"axes": [...], "params": {key: meta}, "values": {key: [each member's value]}}``: the axes and the per-key
        metadata of :func:`gpviz.html.figure.spec_of`, the values of the snapshot's rows (one per member, in order);
        and the model page's :class:`~gpviz.view.records.ViewData` they come from (the static pictures' records).
    """
    view = model_view(expr)
    spec = spec_of(view)
    values = {k: [float(v) for v in view.frame.values[k]] for k in view.params}
    return json.loads(json.dumps({"axes": spec["axes"], "params": spec["params"], "values": values})), view


def _static_charts(charts: dict, view: ViewData, labels: dict[str, str],
                   fitted: dict[str, float] | None = None) -> list[tuple[str, str, str]]:
    """Each parameter's static picture (:func:`gpviz.html.svg.param_chart`, the model page's) at ``charts``' values.

    ``fitted`` (key -> the explored member's fitted value) is drawn as a hollow grey ring, as the live widget does.

    Returns:
        ``(key, label, data URI)`` per key, on the axes the page draws (``charts["axes"]``, ends rounded as sent).
    """
    axes = [AxisView(AxisKind(a["kind"]), a["lo"], a["hi"], a["role"], a["bounded"]) for a in charts["axes"]]
    out = []
    for key, meta in charts["params"].items():
        values = np.asarray(charts["values"][key], np.float64)
        chart = param_chart(values, axes[meta["axis"]], view.params[key], single_row=values.size == 1,
                            label=labels.get(key, key), ghost=(fitted or {}).get(key))
        out.append((key, labels.get(key, key), chart.data_uri()))
    return out


def _segments(expr) -> list[dict]:
    """The printed expression as text pieces and parameter keys, section by section.

    Returns:
        ``[{"text": ...}, {"key": ...}, ...]``, the text holding the section titles and line breaks.
    """
    out: list[dict] = []
    keys = list(expr.keys)
    for sec in expr.sections:
        if sec.part is Part.task_correlation:
            continue  # printed as a correlation matrix, not as its parameters
        out.append({"text": f"{sec.title}{' (' + sec.note + ')' if sec.note else ''}:\n"})
        # a key's position stands in for it: about as wide as the number shown there, so lines break alike
        body = to_text(sec.body, lambda p: f"{_MARK}{keys.index(p.key)}{_MARK}", 84)
        for i, piece in enumerate(("    " + body.replace("\n", "\n    ") + "\n").split(_MARK)):
            if piece:
                out.append({"key": keys[int(piece)]} if i % 2 else {"text": piece})
    return out


def _drawn(a: np.ndarray) -> list[float]:
    """``a`` as a list at :data:`DRAWN_DIGITS` significant digits of its largest magnitude (JSON-ready).

    A slice is drawn 180 px wide: what the rounding moves is far below a pixel, and the message of one
    update (10 slices of 41 points) is less than half as long as with every float's 17 digits.
    """
    top = float(np.max(np.abs(a))) if a.size else 0.0
    if not np.isfinite(top) or top == 0.0:
        return a.tolist()
    return np.round(a, DRAWN_DIGITS - 1 - int(np.floor(np.log10(top)))).tolist()


def _curves(geo: SliceGeometry, mean: np.ndarray, sd: np.ndarray, names: Sequence[str],
            units: OriginalUnits | None) -> list[dict]:
    """One record per input: its slice's ``x``, ``mean``, ``lower`` and ``upper`` as lists (JSON-ready, as drawn:
    in original units where ``units`` is given)."""
    x = units.x if units is not None else geo.rows[np.arange(geo.rows.shape[0]), geo.col]
    scale, offset = (units.y_scale, units.y_offset) if units is not None else (1.0, 0.0)
    out = []
    for j, name in enumerate(names):
        at = geo.col == j
        m, s = mean[at] * scale + offset, sd[at] * scale
        out.append({"input": str(name), "x": _drawn(x[at]), "mean": _drawn(m), "lower": _drawn(m - 2 * s),
                    "upper": _drawn(m + 2 * s)})
    return out


def _near(geo: SliceGeometry, names: Sequence[str], units: OriginalUnits | None) -> list[dict]:
    """Per input: the training points near its slice, in the units the slices are drawn in."""
    out = []
    for j, (name, (xs, ys, ds), rows) in enumerate(zip(names, geo.near, geo.near_index)):
        if units is not None:
            xs, ys = units.train[rows, j], ys * units.y_scale + units.y_offset
        out.append({"input": str(name), "x": _drawn(xs), "y": _drawn(ys), "distance": _drawn(ds)})
    return out


class Explorer(anywidget.AnyWidget):
    """A model's expression whose numbers are dragged; metrics and slices follow, computed on a copy.

    Under the expression, each parameter's chart is gpviz.js's (the model page's dot chart, from the same spec
    data, ``charts``): the explored member's dot is dragged along the axis like its number, its fitted value stays
    as a hollow ring, and a batched model's other members are the other dots.

    Attributes:
        state: The :class:`~gpviz.explorer.state.ExploreState` the widget drives.
    """

    # gpviz.js first (it sets window.gpviz, whose `chart` draws every parameter's chart), then the widget's module
    _esm = _static("gpviz.js") + "\n" + _static("explore.js")
    _css = _static("gpviz.css") + "\n" + _static("explore.css")

    title = traitlets.Unicode("").tag(sync=True)
    segments: traitlets.List[dict] = traitlets.List().tag(sync=True)
    params: traitlets.List[dict] = traitlets.List().tag(sync=True)  # per key: key, label, fitted, lower, upper (None: unbounded)
    charts = traitlets.Dict().tag(sync=True)  # what gpviz.js's chart draws: axes, per-key meta, each member's values
    values = traitlets.Dict().tag(sync=True)
    metrics = traitlets.Dict().tag(sync=True)
    fitted_metrics = traitlets.Dict().tag(sync=True)
    curves: traitlets.List[dict] = traitlets.List().tag(sync=True)  # per input: x, mean, lower, upper (the slices)
    near: traitlets.List[dict] = traitlets.List().tag(sync=True)  # per input: x, y, distance of the training points near its slice
    slice_units = traitlets.Unicode("model units").tag(sync=True)  # the units the slices are drawn in
    error = traitlets.Unicode("").tag(sync=True)
    members = traitlets.Int(1).tag(sync=True)
    member_label = traitlets.Unicode("members").tag(sync=True)
    member = traitlets.Int(0).tag(sync=True)  # the batch member explored (flat, as i_model); the page switches it
    request = traitlets.Dict().tag(sync=True)
    done = traitlets.Int(-1).tag(sync=True)

    def __init__(self, obj: object, feature_names: Sequence[str] | None = None, point: Sequence[float] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._display: Any = None  # the IPython display handle of the output the widget was shown in
        self.state = ExploreState(obj, feature_names=feature_names, point=point)
        expr = self.state.expr
        self.title = f"{expr.title or type(expr.module).__name__}: Gaussian process"
        self.segments = _segments(expr)
        self.charts, self._view = _charts(expr)
        self._drawn: dict[str, list[float]] = {}  # key -> every member's value the charts draw
        self.members = self.state.members
        self.member_label = expr.member_label or "members"
        self._show_member()
        self.observe(self._on_request, names="request")
        self.observe(self._on_member, names="member")

    def _show_member(self) -> None:
        labels = self.state.expr.labels
        self.params = [self._param(k, labels[k]) for k in self.state.keys]
        self.fitted_metrics = self.state.fitted_metrics.as_dict()
        self._publish()

    def _on_member(self, change) -> None:
        try:
            self.state.select(change["new"])
        except InputError as e:
            self.error = str(e)
            return
        self.error = ""
        self._show_member()
        self._refresh_snapshot()

    def _param(self, key: str, label: str) -> dict:
        lower, upper = self.state.bounds(key)
        return {"key": key, "label": label, "fitted": self.state.fitted_values[key],
                "lower": lower if np.isfinite(lower) else None, "upper": upper if np.isfinite(upper) else None}

    def _publish(self) -> None:
        # one thread: the matrices of a drag are small (n = 100: 100 x 100), and extra threads lose more to
        # contention than they gain (bench_explore.py: 5-10x slower with 2 threads on a loaded 2-core machine).
        # torch's own setting only: threadpoolctl (gpviz.threads) reads the process's libraries on every call,
        # 8 ms of an update, and the update's work is torch's
        old = torch.get_num_threads()
        torch.set_num_threads(UPDATE_THREADS)
        try:
            geo, mean, sd = self.state.slice_moments()
            metrics = self.state.metrics().as_dict()
        finally:
            torch.set_num_threads(old)
        for key, v in self.state.values.items():  # the explored member's slot: its charts' dots (a copy: not synced)
            self._drawn_values(key)[self.state.member] = v
        with self.hold_sync():  # one message to the page per update
            self.values = self.state.values
            self.metrics = metrics
            units = self.state.original_units()
            self.slice_units = "original units" if units is not None else "model units"
            self.curves = _curves(geo, mean, sd, self.state.feature_names, units)
            self.near = _near(geo, self.state.feature_names, units)

    def _drawn_values(self, key: str) -> list[float]:
        """Every member's value of ``key`` as the charts draw it (fitted, or as last set while explored)."""
        if key not in self._drawn:
            self._drawn[key] = list(self.charts["values"][key])
        return self._drawn[key]

    def _on_request(self, change) -> None:
        req: dict[str, Any] = change["new"] or {}
        try:
            if req.get("reset"):
                self.state.reset()
            else:
                self.state.set(str(req.get("key")), req.get("value", math.nan))
            self.error = ""
            self._publish()
        except (InputError, KeyMismatchError) as e:
            self.error = str(e)
        finally:  # the page sends its next value when this one is answered, whatever happened to it
            self.done = int(req.get("seq", -1))
            if req.get("final"):  # a drag ended, a value typed, a reset: the saved picture follows
                self._refresh_snapshot()

    # --- the static picture beside the widget, for where no kernel runs it ---

    def snapshot(self) -> str:
        """The explorer's current state as static HTML (what a saved notebook shows without a kernel)."""
        charts = {**self.charts, "values": {k: self._drawn_values(k) for k in self.charts["params"]}}
        return snapshot_html(self.title, self.segments, self.params, self.values, self.metrics, self.fitted_metrics,
                             self.curves, self.near, self.slice_units,
                             _static_charts(charts, self._view, self.state.expr.labels,
                                            self.state.fitted_values))

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:  # None: the widget was closed
            bundle[0]["text/html"] = self.snapshot()  # beside the widget view: front ends without the widget show it
        return bundle

    def _bundle(self) -> tuple[dict, dict]:
        """The output's data (widget view, text, static picture) and metadata."""
        return self._repr_mimebundle_() or ({}, {})

    def _ipython_display_(self) -> None:
        # displayed with a display id, so each later state replaces the saved picture in the same output
        data, metadata = self._bundle()
        if self._display is None:
            self._display = display(data, metadata=metadata, raw=True, display_id=True)
        else:
            display(data, metadata=metadata, raw=True, display_id=self._display.display_id)

    def _refresh_snapshot(self) -> None:
        if self._display is not None:
            data, metadata = self._bundle()
            self._display.update(data, metadata=metadata, raw=True)

    def set(self, key: str, value: float) -> None:
        """Sets one parameter (a key of ``model_expr(model).keys``) and recomputes what the page shows.

        Raises:
            KeyMismatchError: for an unknown key.
            InputError: for a value that is not finite or lies outside its constraint.
        """
        self.state.set(key, value)
        self._publish()
        self._refresh_snapshot()

    def reset(self) -> None:
        """Puts every parameter back at its fitted value."""
        self.state.reset()
        self._publish()
        self._refresh_snapshot()

    @property
    def slices(self) -> pd.DataFrame:
        """Posterior mean ± 2 sd along each input through the slice point: ``input, x, mean, lower, upper``."""
        return self.state.slices().curves


def explore(model_or_mll_or_client: object, feature_names: Sequence[str] | None = None,
            point: Sequence[float] | None = None) -> Explorer:
    """A widget showing the model's expression whose numbers can be dragged; metrics and slices follow.

    Everything is computed on a deep copy: the model passed in is never changed.

    Args:
        model_or_mll_or_client: An exact BoTorch/GPyTorch model, its MLL, or an Ax object holding one.
        feature_names: Names of the input columns.
        point: ``d`` values in the model's input space the slices go through (default: the best observed point).

    Returns:
        An :class:`Explorer` (an ``anywidget.AnyWidget``).

    Raises:
        UnsupportedError: for a model list, an approximate, fully Bayesian, multi-task, Kronecker multi-task,
            higher-order or pairwise model, naming its class and what the explorer supports.
    """
    return Explorer(model_or_mll_or_client, feature_names=feature_names, point=point)


__all__ = ["Explorer", "explore"]
