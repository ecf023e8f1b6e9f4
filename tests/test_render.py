"""Rendering without a browser: imports, key/column agreement, casting, sorting, escaping, axes, determinism."""

from __future__ import annotations

import importlib
import base64
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import gpytorch.kernels as gk
import numpy as np
import pandas as pd
import pytest
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from gpytorch.constraints import Interval

import gpviz
from gpviz.priors.verdicts import HELD
R = importlib.import_module("gpviz.rendering")
from gpviz.errors import InputError, KeyMismatchError, VerdictWarning
from gpviz.html.compact import decode_compact
from tests.golden_pages import GOLDEN, golden_figure

INJECTION = "</script><script>window.__pwned=1</script>"
TEMPLATE = "b`${window.__pwned=2}`"


def _data(n=8, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    return X, torch.sin(3 * X[:, :1]) + 0.1 * torch.randn(n, 1, generator=g, dtype=torch.float64)


def _zoo():
    X, Y = _data()
    folds = gen_loo_cv_folds(X, Y)
    Xc = torch.cat([X, (torch.arange(8) % 3).double().unsqueeze(-1)], -1)
    return {
        "default": SingleTaskGP(X, Y),
        "scale_matern": SingleTaskGP(X, Y, covar_module=gk.ScaleKernel(gk.MaternKernel(ard_num_dims=3))),
        "loo_folds": SingleTaskGP(folds.train_X, folds.train_Y),
        "mixed": MixedSingleTaskGP(Xc, Y, cat_dims=[3]),
        "kernel_only": gk.ScaleKernel(gk.RBFKernel(ard_num_dims=2) + gk.PeriodicKernel()),
    }


class _Keys(HTMLParser):
    def __init__(self):
        super().__init__()
        self.keys = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "gpviz-param" in (a.get("class") or "").split():
            self.keys.append(a["data-key"])


def placeholder_keys(html: str) -> list[str]:
    p = _Keys()
    p.feed(html)
    return p.keys


def page_spec(html: str) -> dict:
    """The JSON the page's mount script hands to the browser, its columns read back from the data element."""
    m = re.search(r"var s=(\{.*?\}),id=", html, re.S)
    assert m, "no mount script with a data payload"
    spec = json.loads(m.group(1))
    if spec.get("packed") == "compact":  # a fit trace: read back at display precision (gpviz.html.compact)
        blobs = re.findall(r'<script type="application/octet-stream" class="gpviz-data">([A-Za-z0-9+/=]*)</script>',
                           html)
        assert len(blobs) == 1, "one data element per figure"
        cols = decode_compact(blobs[0], spec["columns"])
        spec["columns"] = {k: {"type": "float64" if v.dtype.kind == "f" else "int32", "data": base64.b64encode(
            v.astype("<f8" if v.dtype.kind == "f" else "<i4").tobytes()).decode()} for k, v in cols.items()}
    elif spec.get("packed"):
        blobs = re.findall(r'<script type="application/octet-stream" class="gpviz-data">([A-Za-z0-9+/=]*)</script>',
                           html)
        assert len(blobs) == 1, "one data element per figure"
        raw = base64.b64decode(blobs[0])
        size = {"float32": 4, "float64": 8, "int32": 4}
        spec["columns"] = {k: {"type": c["type"], "data": base64.b64encode(
            raw[c["offset"]:c["offset"] + c["length"] * size[c["type"]]]).decode()} for k, c in spec["columns"].items()}
    return spec


def decode(col: dict) -> np.ndarray:
    dtype = {"float32": "<f4", "float64": "<f8", "int32": "<i4"}[col["type"]]
    return np.frombuffer(base64.b64decode(col["data"]), dtype=dtype)


# --------------------------------------------------------------------------- imports


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_imports_warn_nothing_and_rows2prose_needs_no_pkg_resources():
    # One subprocess (importing torch costs seconds). `-W error` on the whole stack fails inside
    # linear_operator (torch.jit.script is deprecated in torch 2.13), so the stack is imported
    # first and gpviz's own imports, and rows2prose's, run with every warning an error.
    r = _run("""
        import warnings
        warnings.simplefilter("ignore")
        import torch, gpytorch, botorch, pandas, setuptools
        warnings.resetwarnings()
        warnings.simplefilter("error")
        import sys, gpviz, gpviz.rendering
        assert "rows2prose" not in sys.modules and "IPython" not in sys.modules, sorted(sys.modules)
        import types
        assert isinstance(gpviz.render, types.FunctionType)  # a function, no module class swap
        assert isinstance(gpviz.compare, types.FunctionType) and gpviz.rendering.__name__ == "gpviz.rendering"
        from gpviz.rendering import LiveFigure, escape_html, render_frame  # the module's names stay importable
        assert callable(render_frame) and callable(escape_html) and LiveFigure.__module__ == "gpviz.html.live"

        assert int(setuptools.__version__.split(".")[0]) >= 81  # no pkg_resources in this venv
        assert "pkg_resources" not in sys.modules
        from gpviz.html import assets
        web = assets.rows2prose_web()
        assert "pkg_resources" not in sys.modules and web.__name__ == "rows2prose.web"
        assert len(web.header_content()) > 400000  # d3 and the r2p bundle, read without pkg_resources
        sentinel = type(sys)("pkg_resources")  # whatever was there before is put back
        sys.modules["pkg_resources"] = sentinel
        assets.rows2prose_web.cache_clear()
        del sys.modules["rows2prose.web"], sys.modules["rows2prose"]
        assets.rows2prose_web()
        assert sys.modules["pkg_resources"] is sentinel
    """)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr


# --------------------------------------------------------------------------- keys and columns


@pytest.mark.parametrize("name", sorted(_zoo()))
def test_every_placeholder_has_a_column_and_no_extra_columns(name):
    model = _zoo()[name]
    fig = gpviz.render(model)
    html = fig.html()
    keys = placeholder_keys(html)
    spec = page_spec(html)
    expr = gpviz.model_expr(model) if name != "kernel_only" else gpviz.kernel_expr(model)
    assert set(keys) == set(expr.keys) and keys
    assert set(spec["columns"]) == set(keys)  # nothing else travels (i_model is implicit in row order)
    assert set(spec["params"]) == set(keys)
    n = int(np.prod(tuple(expr.batch_shape) or (1,)))
    assert spec["n_rows"] == n and spec["mode"] == ("snapshot" if n == 1 else "batch")
    for k in keys:
        np.testing.assert_allclose(decode(spec["columns"][k]), gpviz.parameters(model)[k].to_numpy(), rtol=1e-6)


def test_missing_key_raises_naming_it_and_extra_columns_are_dropped():
    model = _zoo()["default"]
    expr = gpviz.model_expr(model)
    frame = gpviz.parameters(model)
    with pytest.raises(KeyMismatchError, match=re.escape("'mean_module.constant'")):
        R.render_frame(expr, frame.drop(columns=["mean_module.constant"]))
    extra = frame.assign(loss=1.0, i_attempt=0, note="x")
    fig = R.render_frame(expr, extra)
    assert set(fig.columns) == set(expr.keys)


def test_config_list_sends_i_config_and_labels():
    expr = gpviz.model_expr(_zoo()["default"])
    rows = [{"i_config": c, "i_model": r, **{k: 0.5 + c + r for k in expr.keys}} for c in range(3) for r in range(4)]
    fig = R.render_frame(expr, pd.DataFrame(rows), config_labels=["n = 10", "n = 20", INJECTION])
    spec = page_spec(fig.html())
    assert set(spec["columns"]) == set(expr.keys) | {"i_config"}
    assert spec["configs"]["labels"] == ["n = 10", "n = 20", INJECTION]
    assert spec["configs"]["band"] >= 4
    assert list(decode(spec["columns"]["i_config"])) == [0] * 4 + [1] * 4 + [2] * 4
    assert INJECTION not in fig.html()  # only its escaped forms


# --------------------------------------------------------------------------- casting and sorting


def test_unsupported_dtypes_are_cast_before_encoding():
    expr = gpviz.kernel_expr(gk.ScaleKernel(gk.RBFKernel(ard_num_dims=3)))
    ks = list(expr.keys)  # outputscale, lengthscale[0..2]
    frame = pd.DataFrame({
        ks[0]: pd.array([1.5, None, 2.0], dtype="Float64"),     # nullable with NA
        ks[1]: np.array([0.5, 1.0, 2.0], dtype=np.float16),
        ks[2]: pd.Categorical([0.1, 0.2, 0.1]),
        ks[3]: ["1e-3", "2", "3.5"],                            # numeric strings
        "i_model": np.array([0, 1, 2], dtype=np.int64),
        "flag": [True, False, True],                            # an extra bool column: dropped
        "label": pd.Series(["a", "b", "c"], dtype="string"),    # extra string column: dropped
    })
    spec = R.render_frame(expr, frame).spec
    assert set(spec["columns"]) == set(ks)
    assert all(c["type"] in ("float32", "float64") for c in spec["columns"].values())
    v0 = decode(spec["columns"][ks[0]])
    assert v0[0] == 1.5 and math.isnan(v0[1])
    np.testing.assert_allclose(decode(spec["columns"][ks[3]]), [1e-3, 2, 3.5], rtol=1e-6)
    assert "1 NaN" in spec["bad"][ks[0]]


def test_bool_values_and_non_numeric_strings():
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    assert list(decode(R.render_frame(expr, pd.DataFrame({k: [True, False]})).spec["columns"][k])) == [1.0, 0.0]
    with pytest.raises(InputError, match=re.escape(repr(k))):
        R.render_frame(expr, pd.DataFrame({k: ["fast", "slow"]}))


def test_int64_index_that_would_wrap_is_refused():
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    ok = pd.DataFrame({k: [1.0, 2.0], "i_timestep": np.array([0, 2**31 - 1], dtype=np.int64)})
    assert R.render_frame(expr, ok).spec["steps"] == [0, 2**31 - 1]
    bad = pd.DataFrame({k: [1.0, 2.0], "i_timestep": np.array([0, 2**31], dtype=np.int64)})
    with pytest.raises(InputError, match="2147483648.*int32"):
        R.render_frame(expr, bad)
    with pytest.raises(InputError, match="i_config"):
        R.render_frame(expr, pd.DataFrame({k: [1.0], "i_config": [-1]}))
    with pytest.raises(InputError, match="i_model.*whole numbers"):
        R.render_frame(expr, pd.DataFrame({k: [1.0], "i_model": [0.5]}))


def test_timeline_rows_are_sorted_by_step_then_member_in_python():
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    rows = [{"i_timestep": t, "i_model": m, k: 10.0 * t + m} for t in (5, 1, 3) for m in (2, 0, 1)]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=3)
    spec = R.render_frame(expr, frame).spec
    assert spec["mode"] == "timeline"
    assert spec["steps"] == [1, 3, 5] and spec["step_starts"] == [0, 3, 6, 9]
    assert list(decode(spec["columns"][k])) == [10, 11, 12, 30, 31, 32, 50, 51, 52]
    assert "i_timestep" not in spec["columns"]  # JS never gets (nor sorts) the step column
    assert list(frame[k]) != sorted(frame[k])  # the caller's frame was not touched
    assert frame.index.tolist() != list(range(9))


def test_float32_only_when_it_loses_nothing_visible():
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    assert R.render_frame(expr, pd.DataFrame({k: [1e-4, 3.0, np.nan, np.inf]})).spec["columns"][k]["type"] == "float32"
    tiny = R.render_frame(expr, pd.DataFrame({k: [1e-40, 3.0]})).spec["columns"][k]
    assert tiny["type"] == "float64" and decode(tiny)[0] == 1e-40


# --------------------------------------------------------------------------- escaping


def test_escape_html_and_js_string():
    assert R.escape_html(INJECTION) == "&lt;/script&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;"
    assert R.escape_html("a\"b'c&") == "a&quot;b&#x27;c&amp;"
    for s in (INJECTION, TEMPLATE, "line\u2028sep", "quote\"'\\"):
        lit = R.js_string(s)
        assert json.loads(lit) == s
        assert not any(c in lit for c in "<>`$\u2028")


def test_user_strings_are_escaped_everywhere():
    X, Y = _data()
    model = SingleTaskGP(X, Y)
    fig = gpviz.render(model, feature_names=["ok", INJECTION, TEMPLATE], title=INJECTION)
    html = fig.html()
    assert INJECTION not in html
    assert R.escape_html(INJECTION) in html  # the title and the feature name, as text
    assert R.escape_html(TEMPLATE) in html  # backticks are harmless in HTML text...
    scripts = re.findall(r"<script>(.*?)</script>", fig.fragment(), re.S)
    assert scripts and not any("`" in s or "${" in s or "__pwned" in s for s in scripts)  # ...and absent from JS
    with pytest.raises(InputError, match="element_id"):
        R.render_frame(gpviz.model_expr(model), gpviz.parameters(model), element_id='x" onload="alert(1)')


# --------------------------------------------------------------------------- axes and markers


def test_axis_kinds_log_linear_and_bounded():
    X, Y = _data()
    k = gk.ScaleKernel(gk.MaternKernel(ard_num_dims=3))
    k.base_kernel.register_constraint("raw_lengthscale", Interval(0.01, 4.0))
    model = SingleTaskGP(X, Y, covar_module=k)
    with torch.no_grad():
        model.mean_module.constant.fill_(-0.7)
        model.covar_module.base_kernel.lengthscale = torch.tensor([[0.1, 1.0, 4.0]])
    spec = gpviz.render(model).spec
    axis = {k: spec["axes"][p["axis"]] for k, p in spec["params"].items()}
    mean = axis["mean_module.constant"]
    assert mean["kind"] == "linear" and mean["lo"] < -0.7 < 0 < mean["hi"]
    assert axis["likelihood.noise_covar.noise"]["kind"] == "log"
    assert axis["covar_module.outputscale"]["kind"] == "log"
    ls = axis["covar_module.base_kernel.lengthscale[0]"]
    assert ls["bounded"] and ls["kind"] == "log" and (ls["lo"], ls["hi"]) == pytest.approx((0.01, 4.0))
    assert spec["params"]["covar_module.base_kernel.lengthscale[2]"]["mark_upper"]  # sits at 4.0
    assert "constraint bound" in gpviz.render(model).html()


def test_prior_mode_bound_and_held_markers_from_info():
    X, Y = _data()
    model = SingleTaskGP(X, Y)
    with torch.no_grad():
        model.likelihood.noise_covar.raw_noise.fill_(1e-4)  # at BoTorch's lower bound
    expr = gpviz.model_expr(model)
    info = gpviz.parameters(model, long=True)
    info["verdict"] = np.where(info["key"].str.contains("lengthscale"), HELD, "free")
    fig = R.render_frame(expr, gpviz.parameters(model), info=info)
    p = fig.spec["params"]
    noise = p["likelihood.noise_covar.noise"]
    assert noise["mark_lower"] and noise["lower"] == pytest.approx(1e-4)
    assert noise["prior"] == pytest.approx(math.exp(-4 - 1))  # LogNormal(-4, 1) mode
    assert p["covar_module.lengthscale[0]"]["held"] and not noise["held"]
    html = fig.html()
    assert html.count("gpviz-held") >= 3 + 1  # three placeholders and the legend swatch
    assert "held at the prior's mode" in html and "prior mode" in html


def test_sections_titles_and_notes_are_on_the_page():
    X, Y = _data()
    html = gpviz.render(SingleTaskGP(X, Y)).html()
    assert "Covariance kernel" in html and "standardized outputs" in html and "Mean" in html


# --------------------------------------------------------------------------- bad values


def test_bad_values_are_flagged_never_a_crash():
    expr = gpviz.kernel_expr(gk.ScaleKernel(gk.RBFKernel(ard_num_dims=2)))
    ks = list(expr.keys)
    frame = pd.DataFrame({ks[0]: [np.nan, 1.0, 2.0], ks[1]: [0.0, -1.0, np.inf], ks[2]: [-np.inf, 1.0, 2.0]})
    fig = R.render_frame(expr, frame)
    bad = fig.spec["bad"]
    assert "1 NaN" in bad[ks[0]]
    assert "1 inf" in bad[ks[1]] and "2 \u2264 0" in bad[ks[1]]
    assert "1 inf" in bad[ks[2]]
    assert "flagged values" in fig.html()
    empty = R.render_frame(expr, frame.iloc[:0])
    assert empty.spec["n_rows"] == 0 and set(empty.spec["bad"]) == set(ks)
    all_nan = R.render_frame(expr, pd.DataFrame({k: [np.nan] for k in ks}))
    assert all(math.isfinite(a["lo"]) and math.isfinite(a["hi"]) for a in all_nan.spec["axes"])


# --------------------------------------------------------------------------- figures


def test_deterministic_bytes_with_fixed_or_default_id(tmp_path):
    model = _zoo()["loo_folds"]
    a = gpviz.render(model, element_id="fig-1").html()
    b = gpviz.render(model, element_id="fig-1").html()
    assert a == b and 'id="fig-1"' in a
    assert gpviz.render(model).html() == gpviz.render(model).html()
    assert gpviz.render(model).element_id != gpviz.render(_zoo()["default"]).element_id
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-", a)  # no uuid1


def test_page_is_standalone_utf8_and_save_returns_path(tmp_path):
    fig = gpviz.render(_zoo()["default"])
    html = fig.html()
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(?!data:)", html)  # nothing fetched
    # the columns travel as base64 text and are decoded by the page's own script (nothing fetched)
    assert "r2p.parseColumns" in html and "fromBase64" in html
    out = fig.save(tmp_path / "sub" / "fig.html")
    assert out == tmp_path / "sub" / "fig.html" and out.read_text(encoding="utf-8") == html


def test_repr_html_is_self_contained_with_unique_ids():
    fig = gpviz.render(_zoo()["default"])
    one, two = fig._repr_html_(), fig._repr_html_()
    ids = [re.search(r'class="gpviz-figure" id="([^"]+)"', h).group(1) for h in (one, two)]
    assert ids[0] != ids[1] and all(i.startswith(fig.element_id) for i in ids)
    assert "var r2p" not in one and "d3js.org" not in one and "window.gpviz" in one  # no trace: no rows2prose
    trace = R.render_frame(gpviz.model_expr(_zoo()["default"]), gpviz.parameters(_zoo()["default"]).assign(
        i_timestep=0))
    assert "var r2p" in trace._repr_html_() and "var r2p" in trace.html()
    # the r2p bundle without d3 (280 KB): ~150 KB of r2p and ~53 KB of gpviz.js (profiles and diagnosis drawn since)
    assert "d3js.org" not in trace.html() and len(R.header_html(time=True)) < 210_000


def test_render_dispatch_and_units():
    class Traced:
        def render(self):
            return "rendered"

    assert gpviz.render(Traced()) == "rendered"
    model = _zoo()["default"]
    fig = gpviz.render(model)
    assert gpviz.render(fig) is fig
    from gpytorch.mlls import ExactMarginalLogLikelihood

    for same in (ExactMarginalLogLikelihood(model.likelihood, model), gpviz.model_expr(model)):
        assert gpviz.render(same).html() == fig.html()
    with pytest.raises(InputError, match=r"unknown units: 'furlongs' \(must be one of \["):
        gpviz.render(_zoo()["default"], units="furlongs")
    with pytest.raises(InputError, match="str"):
        gpviz.render("a model")
    with pytest.raises(InputError, match="render_frame expects an expression"):
        R.render_frame(_zoo()["default"], pd.DataFrame())


def test_live_figure_outside_a_notebook_keeps_the_latest_figure():
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    live = R.LiveFigure(expr, title="fit")
    for t in range(3):
        live.update(pd.DataFrame({"i_timestep": list(range(t + 1)), "i_model": 0, k: np.arange(t + 1) + 1.0}))
    assert live.figure.element_id == live.element_id and live.figure.spec["steps"] == [0, 1, 2]
    final = R.render_frame(expr, pd.DataFrame({"i_timestep": [0, 1, 2, 3], "i_model": 0, k: [1.0, 2, 3, 4]}))
    assert live.finish(final) is final and live.figure is final and live.updates == 4 and live.finished
    with pytest.raises(InputError, match="has finished"):
        live.update(pd.DataFrame({"i_timestep": [0], "i_model": 0, k: [1.0]}))
    with pytest.raises(InputError, match="expects the final gpviz Figure, got DataFrame"):
        R.LiveFigure(expr).finish(pd.DataFrame())


def test_duplicate_columns_are_refused_naming_them():
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    frame = pd.concat([pd.DataFrame({k: [1.0]}), pd.DataFrame({k: [2.0]})], axis=1)
    with pytest.raises(InputError, match=re.escape(f"several columns named {k!r}")):
        R.render_frame(expr, frame)


def test_extreme_values_never_overflow_the_axes():
    X, Y = _data()
    expr = gpviz.model_expr(SingleTaskGP(X, Y))
    big = np.finfo(np.float64).max
    frame = pd.DataFrame({k: [1e-300, 1e300] for k in expr.keys})
    frame["mean_module.constant"] = [-big, big]
    spec = R.render_frame(expr, frame).spec
    assert all(math.isfinite(a["lo"]) and math.isfinite(a["hi"]) and a["lo"] < a["hi"] for a in spec["axes"])
    assert all(c["type"] == "float64" for c in spec["columns"].values())  # float32 would flush 1e-300 to 0


from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

_FUZZ_EXPR = gpviz.model_expr(SingleTaskGP(*_data(d=2)))
_value_arrays = hnp.arrays(np.float64, st.integers(0, 6),
                           elements=st.floats(allow_nan=True, allow_infinity=True, width=64))


@given(values=st.lists(_value_arrays, min_size=4, max_size=4), mode=st.sampled_from(["batch", "configs", "timeline"]),
       seed=st.integers(0, 2**16))
def test_any_values_render_or_fail_typed(values, mode, seed):
    n = min(len(v) for v in values)
    frame = pd.DataFrame({k: v[:n] for k, v in zip(_FUZZ_EXPR.keys, values)})
    rng = np.random.default_rng(seed)
    if mode == "configs":
        frame["i_config"] = rng.integers(0, 3, n)
    elif mode == "timeline":
        frame["i_timestep"] = rng.integers(-5, 5, n)
    fig = R.render_frame(_FUZZ_EXPR, frame)  # never raises for numeric input
    spec = page_spec(fig.html())
    assert all(math.isfinite(a["lo"]) and math.isfinite(a["hi"]) and a["lo"] < a["hi"] for a in spec["axes"])
    assert all(a["lo"] > 0 for a in spec["axes"] if a["kind"] == "log")
    for k in _FUZZ_EXPR.keys:
        assert len(decode(spec["columns"][k])) == n


def test_config_labels_validation():
    expr = gpviz.kernel_expr(gk.RBFKernel())
    (k,) = expr.keys
    frame = pd.DataFrame({"i_config": [0, 1], k: [1.0, 2.0]})
    assert R.render_frame(expr, frame, config_labels={1: "big"}).spec["configs"]["labels"] == ["config 0", "big"]
    assert R.render_frame(expr, frame, config_labels=["a", "b", "c"]).spec["configs"]["labels"] == ["a", "b", "c"]
    for bad, match in ((3, "int"), ("ab", "str"), (["only one"], "1 labels but i_config goes up to 1")):
        with pytest.raises(InputError, match=match):
            R.render_frame(expr, frame, config_labels=bad)
    with pytest.raises(InputError, match="at most 500"):
        R.render_frame(expr, pd.DataFrame({"i_config": [0, 10**6], k: [1.0, 2.0]}))


def test_original_units_convert_values_bounds_and_labels():
    from botorch.models.transforms import Normalize

    X, Y = _data()
    model = SingleTaskGP(10 * X, 100 * Y, input_transform=Normalize(3))
    model_units = gpviz.render(model).spec
    original = gpviz.render(model, units="original")
    html = original.html()
    assert "(original outputs)" in html and "(standardized outputs)" not in html  # section notes
    noise = "likelihood.noise_covar.noise"
    sigma2 = decode(original.spec["columns"][noise])[0] / decode(model_units["columns"][noise])[0]
    assert sigma2 > 100  # outputs were scaled by 100: noise by about 100**2 times their variance
    assert original.spec["params"][noise]["lower"] == pytest.approx(model_units["params"][noise]["lower"] * sigma2,
                                                                    rel=1e-5)


def test_fragment_matches_golden_file():
    """Same input, same bytes, across processes; the page is rewritten only by scripts/update_golden.py."""
    before = GOLDEN.stat().st_mtime_ns
    text = golden_figure().fragment()
    assert placeholder_keys(text) and set(placeholder_keys(text)) == set(page_spec(text)["columns"])
    assert text == GOLDEN.read_text(encoding="utf-8")
    assert GOLDEN.stat().st_mtime_ns == before


# --------------------------------------------------------------------------- prior_pull verdicts in render()


def _held_fit():
    """Gamma(3, 6) lengthscales on 8 inputs, 2 relevant, 8 points: prior_pull holds the irrelevant ones."""
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from gpytorch.priors import GammaPrior

    g = torch.Generator().manual_seed(0)
    X = torch.rand(8, 8, generator=g)
    Y = (torch.sin(6 * X[:, 0]) + 4 * (X[:, 1] - 0.5) ** 2).unsqueeze(-1) + 0.01 * torch.randn(8, 1, generator=g)
    covar = gk.ScaleKernel(gk.MaternKernel(nu=2.5, ard_num_dims=8, lengthscale_prior=GammaPrior(3.0, 6.0)),
                           outputscale_prior=GammaPrior(2.0, 0.15))
    model = SingleTaskGP(X, Y, covar_module=covar)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model


def test_render_of_a_fitted_model_tints_what_prior_pull_holds():
    model = _held_fit()
    pull = gpviz.prior_pull(model)
    held = set(pull.key[pull.verdict == HELD])
    assert held, "fixture: prior_pull should hold some lengthscales"
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    fig = gpviz.render(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # left as found
    p = fig.spec["params"]
    assert {k for k, m in p.items() if m["held"]} == held
    assert all(m["prior"] is not None for k, m in p.items() if "lengthscale" in k)
    html = fig.html()
    assert 'class="gpviz-swatch gpviz-swatch-held"' in html and "held at the prior's mode" in html
    assert html.count("gpviz-param gpviz-held") + html.count(" gpviz-held\"") >= len(held)
    # verdicts=False: the same page without tints; a kernel alone has no data, so no verdicts (and no error)
    assert not any(m["held"] for m in gpviz.render(model, verdicts=False).spec["params"].values())
    kfig = gpviz.render(model.covar_module)
    assert not any(m["held"] for m in kfig.spec["params"].values()) and "prior_pull" not in kfig.html()


def test_render_verdicts_rule_and_containment():
    # the rule: held in at least half the members of some group
    pull = pd.DataFrame({"key": ["a"] * 4 + ["b"] * 4 + ["c"] * 2,
                         "size": [8, 8, 40, 40] * 2 + [8, 8],
                         "verdict": [HELD, HELD, "free", "free",
                                     HELD, "free", "free", "free", "at bound", "free"]})
    assert R.key_verdicts(pull) == {"a": HELD, "b": "free", "c": "at bound"}
    assert R.key_verdicts(pull, by="size") == {"a": HELD, "b": HELD, "c": "at bound"}
    assert R.key_verdicts(pd.DataFrame()) == {}
    # a model without priors: prior_pull runs, holds nothing, and the legend says so
    X, Y = _data()
    plain = SingleTaskGP(X, Y, covar_module=gk.RBFKernel(ard_num_dims=3),
                         likelihood=__import__("gpytorch").likelihoods.GaussianLikelihood())
    html = gpviz.render(plain).html()
    assert "no parameter held at its prior's mode" in html and 'class="gpviz-swatch gpviz-swatch-held"' not in html
    # a model prior_pull cannot analyse (training targets of the wrong shape): drawn, without verdicts, and the
    # page and a VerdictWarning say why (never a silent omission)
    broken = SingleTaskGP(X, Y)
    broken.train_targets = torch.zeros(3)
    with pytest.warns(VerdictWarning, match="prior_pull failed"):
        fig = gpviz.render(broken)
    assert fig.spec["params"] and "Verdicts not computed: prior_pull failed (RuntimeError" in fig.html()


def test_pages_name_what_a_dot_is():
    X, Y = _data()
    two = SingleTaskGP(X, torch.cat([Y, -Y], -1))  # a batch of 2 outputs
    fig = gpviz.render(two, verdicts=False)
    html = fig.html()
    assert "batch of 2 outputs: one dot per output" in html and "one dot per member" not in html
    assert fig.spec["member"] == "output" and "\u2014 batch of 2 outputs" in fig.title
    expr = gpviz.model_expr(_zoo()["loo_folds"])
    expr.member_label = "MCMC samples"  # what model_expr says for a fully Bayesian model
    frame = gpviz.parameters(expr)
    html = R.render_frame(expr, frame).html()
    assert "batch of 8 MCMC samples: one dot per MCMC sample" in html and "ring its MCMC sample" in html
    html = R.render_frame(expr, frame, member_label="leave-one-out folds").html()
    assert "one dot per leave-one-out fold" in html
    trace = frame.assign(i_timestep=0)
    assert "1 steps; 8 MCMC samples;" in R.render_frame(expr, trace).html()
    # a plain batch keeps the old words
    assert "one dot per member" in R.render_frame(gpviz.model_expr(_zoo()["loo_folds"]), frame).html()


def test_axis_ranges_widen_axes_so_two_figures_share_positions():
    expr = gpviz.kernel_expr(gk.ScaleKernel(gk.RBFKernel()))
    ks = list(expr.keys)
    a = R.render_frame(expr, pd.DataFrame({"i_model": [0, 1], ks[0]: [0.5, 1.0], ks[1]: [0.2, 0.3]}))
    b = R.render_frame(expr, pd.DataFrame({"i_model": [0, 1], ks[0]: [5.0, 9.0], ks[1]: [1e-3, 2e-3]}))
    assert a.spec["axes"] != b.spec["axes"]
    from gpviz.html.comparison import shared_ranges

    ranges = shared_ranges([a, b])
    frames = [pd.DataFrame({"i_model": [0, 1], ks[0]: [0.5, 1.0], ks[1]: [0.2, 0.3]}),
              pd.DataFrame({"i_model": [0, 1], ks[0]: [5.0, 9.0], ks[1]: [1e-3, 2e-3]})]
    a2, b2 = (R.render_frame(expr, f, axis_ranges=ranges) for f in frames)
    for k in ks:
        ax_a, ax_b = (f.spec["axes"][f.spec["params"][k]["axis"]] for f in (a2, b2))
        assert (ax_a["lo"], ax_a["hi"]) == (ax_b["lo"], ax_b["hi"])
        both = np.concatenate([f[k].to_numpy() for f in frames])
        assert ax_a["lo"] <= both.min() and ax_a["hi"] >= both.max()
    # widened, never narrowed; non-positive ends are ignored on a log axis; bad types are refused
    narrow = R.render_frame(expr, frames[1], axis_ranges={ks[0]: (6.0, 7.0), ks[1]: (-1.0, 0.0)})
    assert narrow.spec["axes"] == b.spec["axes"]
    with pytest.raises(InputError, match="axis_ranges must map"):
        R.render_frame(expr, frames[0], axis_ranges=[(0, 1)])


def test_figure_and_comparison_share_one_page_class(tmp_path):
    from gpviz.html.comparison import ComparisonFigure

    assert issubclass(ComparisonFigure, R.Page) and issubclass(R.Figure, R.Page)
    assert "html" not in vars(ComparisonFigure) and "save" not in vars(ComparisonFigure)
    fig = gpviz.render(_zoo()["kernel_only"], element_id="pg")
    page = fig.html()
    assert page.startswith("<!DOCTYPE html>") and page.count(R.header_html(time=False)) == 1
    assert page.endswith(f"<body>\n{fig.fragment()}</body>\n</html>\n")
    assert fig.save(tmp_path / "a" / "p.html").read_text(encoding="utf-8") == page
    shown = fig._repr_html_()
    assert shown.startswith(R.header_html(time=False)) and 'id="pg-d' in shown


def test_a_bound_inside_the_axis_is_marked_even_when_no_value_sits_at_it():
    X, Y = _data()
    model = SingleTaskGP(X, Y)
    with torch.no_grad():
        model.likelihood.noise = torch.tensor([1.2e-4])  # BoTorch's lower bound is 1e-4: on the axis, not touched
    fig = gpviz.render(model, verdicts=False)
    noise = fig.spec["params"]["likelihood.noise_covar.noise"]
    axis = fig.spec["axes"][noise["axis"]]
    assert not noise["mark_lower"] and axis["lo"] <= noise["lower"] <= axis["hi"]
    assert 'class="gpviz-swatch gpviz-swatch-bound-dash"' in fig.html()
    with torch.no_grad():
        model.likelihood.noise = torch.tensor([0.5])  # far from the bound: nothing to mark
    assert 'class="gpviz-swatch gpviz-swatch-bound-dash"' not in gpviz.render(model, verdicts=False).html()
