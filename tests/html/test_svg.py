"""Static charts: SVG pictures at the page's geometry, flags only for values that have them, text escaped."""

from __future__ import annotations

import dataclasses
import math
import re
import urllib.parse
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from gpviz.html import figure as F
from gpviz.html import svg as S
from gpviz.markup import svg_data_uri
from gpviz.view.records import AxisView, ParamView

LOG = AxisView("log", 0.01, 100.0, "lengthscale", False)
LIN = AxisView("linear", -2.0, 2.0, "mean", False)
PLAIN = ParamView("k", "lengthscale", 0, None, None, None, False, False, False)
SVG_NS = "{http://www.w3.org/2000/svg}"


def dot_centres(d: str) -> list[tuple[float, float]]:
    """The dots of a layer's path: ``Mx yh0`` absolute, ``mdx dyh0`` relative to the previous dot."""
    out, x, y = [], 0.0, 0.0
    for cmd, a, b in re.findall(r"([Mm])([-\d.]+) ([-\d.]+)h0", d):
        x, y = (float(a), float(b)) if cmd == "M" else (x + float(a), y + float(b))
        out.append((x, y))
    assert len(out) == d.count("h0"), d  # every piece of the path is a dot
    return out


def _dots(chart: S.Chart) -> list[tuple[float, float, str]]:
    """(x, y, colour) of every dot, in the picture's own coordinates (the plot group's translation added)."""
    root = ET.fromstring(chart.svg)
    group = root.find(f"{SVG_NS}g")
    dx, dy = map(float, re.match(r"translate\(([-\d.]+) ([-\d.]+)\)", group.get("transform")).groups())
    out = []
    for g in group.findall(f"{SVG_NS}g[@stroke-linecap='round']"):  # the dot groups
        for path in g.findall(f"{SVG_NS}path"):  # a layer of dots, none overlapping another of its layer
            out += [(x + dx, y + dy, g.get("stroke")) for x, y in dot_centres(path.get("d"))]
    return out, dx


def _expected_x(v: float, axis: AxisView) -> float:
    """Where gpviz.js puts ``v``: 8 px of edge, then 150 px, linear in log10(v) on a log axis."""
    if axis.kind == "log":
        a, b, v = math.log10(axis.lo), math.log10(axis.hi), math.log10(v)
    else:
        a, b = axis.lo, axis.hi
    return 8 + (v - a) / (b - a) * 150


@pytest.mark.parametrize("axis,values", [(LOG, [0.02, 0.5, 1.0, 7.0, 90.0]), (LIN, [-1.9, -0.3, 0.0, 1.2])])
def test_dots_sit_where_the_interactive_chart_puts_them(axis, values):
    chart = S.param_chart(np.array(values), axis, PLAIN)
    dots, x0 = _dots(chart)
    assert len(dots) == len(values) and chart.flags == {}
    for (x, _, colour), v in zip(sorted(dots), sorted(values)):
        assert abs(x - x0 - _expected_x(v, axis)) <= 0.26 and colour == S.COLORS["dot"]  # half-pixel grid
    ET.fromstring(chart.svg)  # well-formed XML
    assert "NaN" not in chart.svg and "NaN" not in chart.summary


def test_only_values_that_are_not_finite_or_not_on_the_axis_are_flagged():
    values = np.array([float("nan"), float("inf"), -1.0, 1e6, 1.0])
    chart = S.param_chart(values, LOG, PLAIN)
    assert chart.flags == {"nan": 1, "inf": 1, "nonpos": 1, "out": 1}
    assert "1 NaN" in chart.svg and "1 inf" in chart.svg and "off axis" in chart.svg
    assert chart.svg.count("<path d='M") >= 2 and len(_dots(chart)[0]) == 1  # edge triangles, one dot
    healthy = S.param_chart(np.array([1.0, 2.0]), LOG, PLAIN)
    assert healthy.flags == {} and "\u26a0" not in healthy.svg
    empty = S.param_chart(np.array([]), LOG, PLAIN)
    assert "no values" in empty.svg and "no values" in empty.summary


def test_single_value_is_written_beside_its_chart_and_markers_are_drawn():
    param = dataclasses.replace(PLAIN, prior=1.0, lower=0.05, mark_lower=True, held=True)
    chart = S.param_chart(np.array([0.05]), LOG, param, single_row=True, label="noise")
    assert ">0.05</text>" in chart.svg and chart.summary == "noise: 0.05; held by prior"
    assert S.COLORS["prior"] in chart.svg and S.COLORS["held"] in chart.svg  # prior line, held tint
    dots, _ = _dots(chart)
    assert [c for *_, c in dots] == [S.COLORS["bad"]]  # a value at its bound is red


def test_bands_are_labelled_top_to_bottom_and_labels_are_escaped():
    labels = ("n = 10", "<b>n & 20</b>")
    chart = S.param_chart(np.array([1.0, 2.0, 3.0]), LOG, PLAIN,
                          bands=np.array([0, 1, 1]), band_labels=labels, band_px=12)
    root = ET.fromstring(chart.svg)
    texts = [t.text for t in root.iter(f"{SVG_NS}text")]
    assert texts[:2] == list(labels) and "<b>" not in chart.svg
    ys = sorted({y for _, y, _ in _dots(chart)[0]})
    assert ys == [6.0, 18.0]  # band centres, top to bottom


def test_axis_numbers_read_like_the_interactive_charts():
    assert [S.fmt_axis(v) for v in (0.0, 0.0123, 1.5, 123.4, 12345.0, 2e-5, -0.5)] == \
        ["0", "0.012", "1.5", "123", "1.2e4", "2e-5", "-0.5"]
    assert [S.fmt_value(v) for v in (0.00633, 1234.5, 2e-5, 150000.0)] == ["0.00633", "1230", "2.00e-5", "1.50e5"]


def test_data_uri_round_trips_and_needs_no_more_escaping():
    svg = "<svg xmlns='http://www.w3.org/2000/svg'><text>a & b \"c\" #1 100% \u2264 \u26a0</text></svg>"
    uri = svg_data_uri(svg)
    assert uri.startswith("data:image/svg+xml,") and uri.isascii()
    assert not set('"&<>#') & set(uri[len("data:image/svg+xml,"):])
    assert urllib.parse.unquote(uri[len("data:image/svg+xml,"):]) == svg


def test_every_placeholder_of_a_figure_carries_one_static_chart():
    import gpytorch.kernels as gk
    import torch

    import gpviz

    k = gk.ScaleKernel(gk.RBFKernel(ard_num_dims=3, batch_shape=torch.Size([4])), batch_shape=torch.Size([4]))
    html = gpviz.render(k, feature_names=["a", "b", "c"]).fragment()
    spans = re.findall(r'<span class="gpviz-param[^"]*"(?: data-label="[^"]*")? data-key="([^"]+)">(.*?)</span>', html)
    assert len(spans) == 4 and all(inner.count('<img class="gpviz-static"') == 1 for _, inner in spans)
    assert "NaN" not in re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert F.STATIC_NOTE.split(":")[0] in html


def test_data_uri_by_segment_equals_encoding_the_whole_picture():
    # band labels and values with characters a URI must encode (%, #, quotes, <, non-ASCII)
    labels = ("n = 10 % #1", "it's <b>", "\u03bb = 2")
    for values, bands in (([0.3], None), ([1.0, np.nan, np.inf, 0.2], np.array([0, 1, 2, 2]))):
        chart = S.param_chart(np.array(values), LOG, PLAIN, bands=bands, band_labels=labels if bands is not None
                              else (), band_px=6, single_row=bands is None)
        assert chart.data_uri() == svg_data_uri(chart.svg)
    # the cached strip of one axis is never reused for another
    other = AxisView("log", 0.5, 2000.0, "lengthscale", False)
    a, b = S.param_chart(np.array([1.0]), LOG, PLAIN), S.param_chart(np.array([1.0]), other, PLAIN)
    assert a.svg != b.svg and ">2000<" in b.svg and ">2000<" not in a.svg and ">100<" in a.svg


def test_overlapping_dots_sit_in_different_layers_so_they_darken_each_other():
    rng = np.random.default_rng(3)
    values = np.concatenate([np.full(6, 1.0), 1.0 + 0.01 * rng.random(20), 10 ** rng.uniform(-1.5, 1.5, 60)])
    bands = rng.integers(0, 3, len(values))
    bands[:6] = 0  # six copies of one value in one band
    chart = S.param_chart(values, LOG, PLAIN, bands=bands, band_labels=("a", "b", "c"), band_px=12)
    root = ET.fromstring(chart.svg)
    group = next(g for g in root.iter(f"{SVG_NS}g") if g.get("stroke-linecap") == "round")
    diameter = float(group.get("stroke-width"))
    layers = [dot_centres(p.get("d")) for p in group.findall(f"{SVG_NS}path")]
    assert len(layers) >= S.MAX_COPIES  # the six copies: MAX_COPIES of them drawn, each in its own layer
    for layer in layers:
        for i, (x, y) in enumerate(layer):
            assert all(abs(x - x2) >= diameter - 1e-9 for x2, y2 in layer[i + 1:] if y2 == y)
    # every value is drawn, up to MAX_COPIES at one half pixel of one band
    scale = S._scale(LOG)
    spots: dict = {}
    for v, b in zip(values, bands):
        key = (round(scale(v) * 2) / 2, b)
        spots[key] = spots.get(key, 0) + 1
    assert sum(len(layer) for layer in layers) == sum(min(c, S.MAX_COPIES) for c in spots.values())


def _ghosts(chart: S.Chart) -> list[tuple[float, float, float, str]]:
    """(x, y, r, stroke) of every ghost ring, in the picture's own coordinates."""
    root = ET.fromstring(chart.svg)
    group = root.find(f"{SVG_NS}g")
    dx, dy = map(float, re.match(r"translate\(([-\d.]+) ([-\d.]+)\)", group.get("transform")).groups())
    return [(float(c.get("cx")) + dx, float(c.get("cy")) + dy, float(c.get("r")), c.get("stroke"))
            for c in group.iter(f"{SVG_NS}circle") if c.get("class") == "gpx-ghost"]


@pytest.mark.parametrize("axis,values,ghost", [(LOG, [0.5, 7.0], 0.03), (LIN, [-1.0, 1.5], 0.7)])
def test_a_ghost_value_is_a_hollow_grey_ring_where_the_axis_puts_it(axis, values, ghost):
    chart = S.param_chart(np.array(values), axis, PLAIN, ghost=ghost)
    (x, y, r, stroke), = _ghosts(chart)
    _, x0 = _dots(chart)
    assert abs(x - x0 - _expected_x(ghost, axis)) <= 0.05  # one decimal
    # gpviz.js: radius max(3, min(4.5, band / 2)) at the middle of the (14 px) strip, grey #7a7a7a, no fill
    root = ET.fromstring(chart.svg)
    dy = float(re.match(r"translate\([-\d.]+ ([-\d.]+)\)", root.find(f"{SVG_NS}g").get("transform")).group(1))
    assert y - dy == 7.0 and r == 4.5 and stroke == "#7a7a7a"
    assert "fill='none'" in chart.svg.split("gpx-ghost", 1)[1].split("/>", 1)[0]
    assert "fitted" in chart.summary


def test_without_a_ghost_the_picture_is_byte_identical_and_a_ghost_off_the_axis_is_not_drawn():
    plain = S.param_chart(np.array([0.5, 7.0]), LOG, PLAIN)
    assert S.param_chart(np.array([0.5, 7.0]), LOG, PLAIN, ghost=None).svg == plain.svg
    assert "circle" not in plain.svg
    for off in (1e6, -1.0, math.nan):  # beyond the axis, not positive on a log axis, NaN
        assert S.param_chart(np.array([0.5, 7.0]), LOG, PLAIN, ghost=off).svg == plain.svg
