"""Rendering: a model's expression with every parameter drawn inline, as an offline HTML page or a notebook figure.

This is the ONLY module that imports rows2prose (0.1.0). It keeps rows2prose's
r2p bundle and its time control for fit traces (pages without a trace carry no
rows2prose code at all, trace pages no global d3.min.js: see :func:`header_html`),
and neutralizes each of its known defects before it can reach a user:

- ``rows2prose.web`` imports ``pkg_resources`` (gone in setuptools >= 81, and a
  deprecation warning before that): :func:`rows2prose_web` imports it with a tiny
  stand-in module in ``sys.modules`` for the duration of the import only.
- Its timelines sort the ``i_timestep`` column *in place*: frames are sorted by
  ``(i_timestep, i_model)`` here, step offsets are computed here, and JS gets a
  fresh list of timesteps, never a shared column buffer.
- Its distribution views place points linearly on "log" axes, draw nothing for
  negative values, have no markers and 2 px unlabelled bands: gpviz draws each
  parameter with its own small canvas view (``static/gpviz.js``).
- bool/float16/string/nullable/category columns kill its block and int64 wraps
  around: every column is cast (or dropped) before encoding; integers that do not
  fit int32 are refused.
- A ``data-key`` missing from the frame kills its block: every placeholder key is
  checked here (:class:`~gpviz.errors.KeyMismatchError` names it); extra columns
  are dropped.
- ``uuid1`` element ids and no ``<meta charset>``: ids are content hashes (or a
  fixed ``element_id``), pages declare UTF-8.
- Slow base64 decoding: a figure's columns travel as ONE base64 text in a
  non-executed ``<script type="application/octet-stream">`` inside its container
  (:func:`pack_columns`), decoded once with ``Uint8Array.fromBase64`` (or a
  table-driven fallback); ``r2p.parseColumns`` is replaced too. Float columns
  travel as float32 when that loses nothing visible, halving the payload.

User strings are escaped in one place: :func:`escape_html` for HTML text and
attributes, :func:`js_string` (and the JSON payload writer it shares) for
scripts.

Hooks a drawn page exposes (for tests and tools; no user strings): each
``.gpviz-param`` placeholder gets ``data-drawn="1"``, ``data-points`` (dots
drawn), ``data-flags`` (``nan:1,inf:2,nonpos:1,empty``) and the JS arrays
``el.gpvizXs`` / ``el.gpvizYs`` (dot centres in CSS px from the canvas' top
left, one per row); the container gets ``data-drawn`` (and ``data-step`` for a
trace); ``window.gpvizSummary[container id]`` holds mode, counts, flagged keys,
the highlighted member and mount timings.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html as _html
import importlib.resources
import itertools
import json
import math
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from gpviz.errors import InputError, KeyMismatchError, UnsupportedError
from gpviz.expr import Param, fmt_number, layout

I_MODEL, I_CONFIG, I_TIMESTEP = "i_model", "i_config", "i_timestep"
INDEX_COLUMNS = (I_MODEL, I_CONFIG, I_TIMESTEP)
MODES = ("snapshot", "batch", "configs", "timeline")

# Positive, scale-like quantities: drawn on a log axis (pixel position linear in log10(value)).
LOG_ROLES = frozenset({"lengthscale", "outputscale", "noise", "period", "variance", "alpha", "scale",
                       "frequency", "task_var"})
# Signed quantities: a linear axis that shows negatives (and zero).
SIGNED_ROLES = frozenset({"mean", "constant_mean", "bias", "task_factor"})
HELD = "held by prior"

LAYOUT_WIDTH = 110  # characters per code line
LEAF_CHARS = {"snapshot": 32, "batch": 28, "configs": 36, "timeline": 32}  # a chart's width in characters
MAX_BAND_PX, MIN_BAND_PX, CONFIGS_PX = 12, 4, 192

_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_DISPLAYS = itertools.count(1)  # unique ids for notebook displays of the same figure


# --------------------------------------------------------------------------- #
# Escaping: the one place user strings are made safe                          #
# --------------------------------------------------------------------------- #


def escape_html(s) -> str:
    """Escapes text for HTML element content and quoted attribute values (``& < > " '``)."""
    return _html.escape(str(s), quote=True)


# Characters that must not appear literally in a script: "<" ends </script> and opens <!--,
# "`" and "$" matter inside template literals, U+2028/9 end lines in old JS engines.
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", ord("`"): "\\u0060",
                   ord("$"): "\\u0024", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(obj) -> str:
    """A JSON text that is also a JS expression safe to inline in ``<script>`` (any nesting of str/num/list/dict).

    Raises:
        InputError: for NaN/inf numbers (send ``None``) or non-JSON objects.
    """
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot write {type(obj).__name__} into a page: {exc}") from None
    return text.translate(_SCRIPT_ESCAPES)


def js_string(s) -> str:
    """A JS string literal (with its quotes) for ``s``, safe inside ``<script>`` and template literals."""
    return script_json(str(s))


def _num(x) -> float | None:
    """A finite float for JSON, or ``None``."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _round6(x) -> float | None:
    x = _num(x)
    return None if x is None else float(f"{x:.6g}")


def _round_axis(axis: dict) -> tuple[float, float]:
    """Axis ends to 6 digits unless that moves an end by more than 0.1% of the axis (then exact)."""
    lo, hi = float(axis["lo"]), float(axis["hi"])
    rlo, rhi = float(f"{lo:.6g}"), float(f"{hi:.6g}")
    if axis["kind"] == "log":
        span = math.log10(hi) - math.log10(lo)
        moved = max(abs(math.log10(rlo) - math.log10(lo)), abs(math.log10(rhi) - math.log10(hi)))
    else:
        span, moved = hi / 2 - lo / 2, max(abs(rlo - lo), abs(rhi - hi)) / 2
    return (rlo, rhi) if rlo < rhi and moved <= 1e-3 * span else (lo, hi)


# --------------------------------------------------------------------------- #
# rows2prose import and page assets                                           #
# --------------------------------------------------------------------------- #

_MISSING = object()


def _resource_string(package: str, resource_name: str) -> bytes:
    """``pkg_resources.resource_string`` on top of ``importlib.resources``."""
    node = importlib.resources.files(package)
    for part in re.split(r"[\\/]+", resource_name):
        if part:
            node = node.joinpath(part)
    return node.read_bytes()


@functools.lru_cache(maxsize=None)
def rows2prose_web() -> types.ModuleType:
    """``rows2prose.web``, imported without ``pkg_resources``.

    rows2prose 0.1.0 does ``from pkg_resources import resource_string``: an
    ImportError on setuptools >= 81 and a DeprecationWarning before. A stand-in
    module sits in ``sys.modules["pkg_resources"]`` only while rows2prose is
    imported; whatever was there before is restored.

    Raises:
        UnsupportedError: if rows2prose is not installed or fails to import.
    """
    shim = types.ModuleType("pkg_resources")
    shim.__doc__ = "gpviz's stand-in for pkg_resources.resource_string (importlib.resources)"
    shim.resource_string = _resource_string
    saved = sys.modules.get("pkg_resources", _MISSING)
    sys.modules["pkg_resources"] = shim
    try:
        import rows2prose.web as web
    except Exception as exc:  # noqa: BLE001 - any import failure means no renderer
        raise UnsupportedError(f"gpviz renders with rows2prose==0.1.0, which failed to import: "
                               f"{type(exc).__name__}: {exc}") from exc
    finally:
        if saved is _MISSING:
            sys.modules.pop("pkg_resources", None)
        else:
            sys.modules["pkg_resources"] = saved
    return web


def _static(name: str) -> str:
    text = importlib.resources.files("gpviz").joinpath("static").joinpath(name).read_text("utf-8")
    if "</script" in text.lower() or "</style" in text.lower():  # would end the inline block early
        raise UnsupportedError(f"gpviz/static/{name} contains a closing tag and cannot be inlined")
    return text


_D3_START, _R2P_START = "// https://d3js.org", "var r2p = (function"


def rows2prose_header() -> str:
    """rows2prose's header without its copy of d3.min.js (280 KB), when it can be cut out cleanly.

    The r2p bundle carries the d3 pieces it uses; only the global ``d3`` is dropped,
    which gpviz.js does without (see its ``oneNodeSelection``). If rows2prose's
    header does not look as expected, it is returned whole.
    """
    header = rows2prose_web().header_content()
    i = header.find(_D3_START)
    j = header.find(_R2P_START, i)
    if i < 0 or j < 0 or header.count(_D3_START) != 1:
        return header
    return header[:i] + header[j:]


@functools.lru_cache(maxsize=None)
def header_html(time: bool = True) -> str:
    """Everything a page needs once: rows2prose's bundle (if ``time``), then gpviz's CSS and JS (which patch it).

    Only an animated fit trace uses rows2prose (its time control): other pages
    leave out its header entirely, and trace pages leave out its copy of
    d3.min.js (:func:`rows2prose_header`): 420 KB and ~60 ms of script parsing
    per page load less. ``time=True`` (the default) is what a page that may show
    a trace needs (live notebook figures).
    """
    gpviz_assets = f"<style>\n{_static('gpviz.css')}</style>\n<script>\n{_static('gpviz.js')}</script>\n"
    return (rows2prose_header() + "\n" + gpviz_assets) if time else gpviz_assets


# --------------------------------------------------------------------------- #
# Frames: validate, cast, sort, encode                                        #
# --------------------------------------------------------------------------- #

_I32 = np.iinfo(np.int32)


def _int_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """An index column as int64, checked to be whole numbers that fit int32 (the browser's width)."""
    s = frame[name]
    dt = s.dtype
    if isinstance(dt, pd.CategoricalDtype):
        raise InputError(f"column {name!r} is categorical; expected integers (pass labels via config_labels)")
    if pd.api.types.is_integer_dtype(dt):
        if s.isna().any():
            raise InputError(f"column {name!r} has missing values; expected an integer in every row")
        arr = s.to_numpy(dtype=np.int64)
    elif pd.api.types.is_bool_dtype(dt) or pd.api.types.is_float_dtype(dt):
        f = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(f) | (f != np.round(f))
        if bad.any():
            raise InputError(f"column {name!r} holds {f[bad][0]!r}; expected whole numbers")
        if len(f) and (f.min() < _I32.min or f.max() > _I32.max):
            arr = np.array([f.min() if f.min() < _I32.min else f.max()], dtype=np.float64)
        else:
            arr = f.astype(np.int64)
    else:
        raise InputError(f"column {name!r} has dtype {dt}; expected integers")
    if len(arr) and (arr.min() < _I32.min or arr.max() > _I32.max):
        worst = arr.max() if arr.max() > _I32.max else arr.min()
        raise InputError(f"column {name!r} holds {worst:.0f}, outside the int32 range the browser reads "
                         f"(int64 would wrap around)")
    return arr


def _float_column(frame: pd.DataFrame, key: str) -> np.ndarray:
    """A parameter column as float64 whatever its dtype (bool, float16, nullable, numeric strings, category)."""
    s = frame[key]
    if isinstance(s, pd.DataFrame):
        raise InputError(f"frame has {s.shape[1]} columns named {key!r}; expected one")
    dt = s.dtype
    try:
        if isinstance(dt, pd.CategoricalDtype):
            s = s.astype(object)
            dt = s.dtype
        if pd.api.types.is_complex_dtype(dt):
            raise TypeError("complex values")
        if pd.api.types.is_bool_dtype(dt) or pd.api.types.is_numeric_dtype(dt):
            return s.to_numpy(dtype=np.float64, na_value=np.nan)
        return pd.to_numeric(s, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise InputError(f"column {key!r} has dtype {dt} with non-numeric values ({exc}); expected numbers") from None


def _encode(arr: np.ndarray) -> dict:
    """``{"type", "data"}`` for the browser: little-endian float32 when exact enough, else float64 / int32."""
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float64, copy=False)
        finite = arr[np.isfinite(arr) & (arr != 0)]
        # float32 keeps 7 significant digits (charts show 3); only its range can lose information
        if not len(finite) or (np.abs(finite).min() >= 1e-35 and np.abs(finite).max() <= 1e35):
            arr = arr.astype("<f4")
        else:
            arr = arr.astype("<f8")
    elif arr.dtype.kind in "iub":
        arr = arr.astype("<i4")
    else:
        raise InputError(f"cannot send a column of dtype {arr.dtype} to the browser")
    return {"type": "float32" if arr.dtype.itemsize == 4 and arr.dtype.kind == "f" else
            ("float64" if arr.dtype.kind == "f" else "int32"),
            "data": base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")}


_ITEMSIZE = {"float32": 4, "float64": 8, "int32": 4}


def pack_columns(columns: Mapping[str, dict]) -> tuple[str, dict]:
    """All encoded columns as ONE base64 text, and where each column sits in it.

    The page carries the text in a non-executed ``<script type="application/octet-stream">``:
    the HTML parser only scans it for ``</script`` (fast), where a string literal in
    the mount script would go through the JS parser (~10x slower per MB), and the
    browser decodes one base64 text instead of one per column. Each column starts
    at a multiple of 8 bytes, so typed arrays can view the decoded buffer in place.

    Args:
        columns: name -> ``{"type", "data"}`` (base64) as in :attr:`Figure.spec`.

    Returns:
        ``(base64 text, {name: {"type", "offset" (bytes), "length" (elements)}})``.
    """
    buf, layout, offset = bytearray(), {}, 0
    for name, col in columns.items():
        raw = base64.b64decode(col["data"])
        layout[name] = {"type": col["type"], "offset": offset, "length": len(raw) // _ITEMSIZE[col["type"]]}
        buf += raw + b"\0" * (-len(raw) % 8)
        offset = len(buf)
    return base64.b64encode(bytes(buf)).decode("ascii"), layout


@dataclass
class _Data:
    """A validated frame: mode, sorted float columns per key, index columns, step offsets."""

    mode: str
    values: dict[str, np.ndarray]
    n_rows: int
    members: int
    i_config: np.ndarray | None
    config_labels: tuple[str, ...]
    steps: list[int]
    step_starts: list[int]
    row_members: list[int] | None = None


MAX_CONFIGS = 500  # bands of at least MIN_BAND_PX: a taller canvas stops being a chart


def _config_labels(config_labels, n: int) -> tuple[str, ...]:
    """One label per configuration 0..n-1 (more labels than configurations add empty bands)."""
    if config_labels is None:
        labels = tuple(f"config {i}" for i in range(n))
    elif isinstance(config_labels, Mapping):
        labels = tuple(str(config_labels.get(i, f"config {i}")) for i in range(n))
    elif isinstance(config_labels, str) or not isinstance(config_labels, Sequence):
        raise InputError(f"config_labels must be a list of labels or a mapping i_config -> label, "
                         f"got {type(config_labels).__name__}")
    else:
        labels = tuple(str(x) for x in config_labels)
        if len(labels) < n:
            raise InputError(f"config_labels has {len(labels)} labels but i_config goes up to {n - 1}")
    if len(labels) > MAX_CONFIGS:
        raise InputError(f"{len(labels)} configurations (i_config up to {len(labels) - 1}); at most {MAX_CONFIGS} "
                         f"bands can be drawn")
    return labels


def prepare_frame(keys: Sequence[str], frame, config_labels=None) -> _Data:
    """Validates and normalizes a wide parameter frame for drawing.

    Args:
        keys: Placeholder keys of the expression; each must be a column.
        frame: ``i_model`` (optional) and one numeric column per key, plus optionally
            ``i_config`` (0..C-1) or ``i_timestep``. Other columns are dropped.
        config_labels: Labels of the configurations (list or mapping).

    Returns:
        The sorted float64 value columns and what the browser needs to index them.

    Raises:
        KeyMismatchError: a key has no column (the message names it).
        InputError: a column cannot be read as numbers, or an index does not fit int32.
    """
    if isinstance(frame, Mapping):
        frame = pd.DataFrame(dict(frame))
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame of parameter values, got {type(frame).__name__}")
    columns = set(map(str, frame.columns))
    missing = [k for k in keys if k not in columns]
    if missing:
        raise KeyMismatchError(
            f"frame has no column for parameter key {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + f"; every key of the expression needs a column. Columns: {sorted(columns)[:12]}")
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    wanted = set(keys) | set(INDEX_COLUMNS)
    dupes = sorted({c for c in frame.columns[frame.columns.duplicated()] if c in wanted})
    if dupes:
        raise InputError(f"frame has several columns named {dupes[0]!r}; expected one")
    n = len(frame)
    index = {c: _int_column(frame, c) for c in INDEX_COLUMNS if c in frame.columns}
    values = {k: _float_column(frame, k) for k in dict.fromkeys(keys)}

    if I_TIMESTEP in index:
        mode = "timeline"
    elif I_CONFIG in index:
        mode = "configs"
    else:
        mode = "snapshot" if n == 1 else "batch"

    # Sort rows here (stable), never in JS: by step, then config, then member.
    order_keys = [index[c] for c in (I_MODEL, I_CONFIG, I_TIMESTEP) if c in index]
    order = np.lexsort(order_keys) if order_keys else np.arange(n)
    values = {k: v[order] for k, v in values.items()}
    index = {c: v[order] for c, v in index.items()}

    i_config, labels = None, ()
    if I_CONFIG in index:
        i_config = index[I_CONFIG]
        if len(i_config) and i_config.min() < 0:
            raise InputError(f"column 'i_config' holds {i_config.min()}; expected 0, 1, ... (one per configuration)")
        labels = _config_labels(config_labels, int(i_config.max()) + 1 if len(i_config) else 0)
    steps: list[int] = []
    starts: list[int] = []
    if I_TIMESTEP in index:
        ts = index[I_TIMESTEP]
        uniq, first = np.unique(ts, return_index=True)
        steps = [int(t) for t in uniq]
        starts = [int(i) for i in first] + [n]
    if I_MODEL in index:
        members = int(len(np.unique(index[I_MODEL])))
    elif steps:
        members = int(max(np.diff(starts))) if n else 0
    else:
        members = n
    row_members = None
    if mode != "timeline":  # a timeline's rows of one step are its members in order
        row_members = [int(m) for m in index[I_MODEL]] if I_MODEL in index else list(range(n))
        if i_config is not None and I_MODEL not in index:  # members count within each configuration
            row_members = [int(j) for j in pd.Series(i_config).groupby(i_config).cumcount()]
    return _Data(mode, values, n, members, i_config, labels, steps, starts, row_members)


# --------------------------------------------------------------------------- #
# Axes and markers                                                            #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Meta:
    """What gpviz knows about one parameter besides its values."""

    role: str
    lower: float | None = None
    upper: float | None = None
    prior: float | None = None
    held: bool = False
    verdict: str = ""


def _info_meta(info, keys: Sequence[str], roles: Mapping[str, str]) -> dict[str, _Meta]:
    """Per key: bounds, prior mode and verdict from a long frame like ``parameters(model, long=True)``."""
    metas = {k: _Meta(roles.get(k, "value")) for k in keys}
    if info is None:
        return metas
    if not isinstance(info, pd.DataFrame) or "key" not in info.columns:
        raise InputError(f"info must be a DataFrame with a 'key' column (like gpviz.parameters(model, long=True)), "
                         f"got {type(info).__name__}")
    wanted = set(keys)
    for key, rows in info.groupby(info["key"].astype(str), sort=False):
        if key not in wanted:
            continue

        def first(col):
            if col not in rows.columns:
                return None
            vals = [_num(v) for v in rows[col]]
            vals = [v for v in vals if v is not None]
            return vals[0] if vals else None

        verdicts = [str(v) for v in rows["verdict"]] if "verdict" in rows.columns else []
        verdict = HELD if HELD in verdicts else (verdicts[0] if verdicts else "")
        metas[key] = _Meta(roles.get(key, str(rows["role"].iloc[0]) if "role" in rows.columns else "value"),
                           first("lower"), first("upper"), first("prior_mode"), HELD in verdicts, verdict)
    return metas


def _at_bound(v: np.ndarray, b: float | None) -> bool:
    if b is None:
        return False
    return bool(np.any(np.abs(v[np.isfinite(v)] - b) <= 1e-4 * max(abs(b), 1e-8)))


def _axis_kind(meta: _Meta) -> tuple[str, bool]:
    """``("log" | "linear", bounded)`` for one parameter."""
    bounded = meta.lower is not None and meta.upper is not None
    if bounded:
        return ("log" if meta.role in LOG_ROLES and meta.lower > 0 else "linear"), True
    if meta.role in LOG_ROLES:
        return "log", False
    if meta.role not in SIGNED_ROLES and meta.lower is not None and meta.lower >= 0:
        return "log", False  # a positive-constrained parameter of a role gpviz does not know
    return "linear", False


_MAX = float(np.finfo(np.float64).max)
_LOG_MIN, _LOG_MAX = -307.0, 308.25  # log10 of the normal float64 range


def _log_domain(vals: np.ndarray, refs: list[float]) -> tuple[float, float]:
    pts = np.concatenate([vals[np.isfinite(vals) & (vals > 0)], [r for r in refs if r > 0 and math.isfinite(r)]])
    if not len(pts):
        return 0.1, 10.0
    l0, l1 = math.log10(pts.min()), math.log10(pts.max())
    if l1 - l0 < 1.0:  # at least one decade, centred on the data
        mid = (l0 + l1) / 2
        l0, l1 = mid - 0.5, mid + 0.5
    pad = 0.06 * (l1 - l0)
    l0, l1 = l0 - pad, l1 + pad
    # stay inside float64: values near 1e-308 or 1e308 must not overflow the axis
    if l1 > _LOG_MAX:
        l0, l1 = min(l0, _LOG_MAX - 1.0), _LOG_MAX
    if l0 < _LOG_MIN:
        l0, l1 = _LOG_MIN, max(l1, _LOG_MIN + 1.0)
    return 10 ** l0, 10 ** l1


def _linear_domain(vals: np.ndarray, refs: list[float]) -> tuple[float, float]:
    pts = np.concatenate([vals[np.isfinite(vals)], [r for r in refs if math.isfinite(r)]])
    if not len(pts):
        return -1.0, 1.0
    lo, hi = float(pts.min()), float(pts.max())
    half_span = hi / 2 - lo / 2  # halves: hi - lo overflows for values near +-1.8e308
    # show zero (the sign of a mean matters) unless it would squash the data
    if lo > 0 and lo / 2 <= 2 * max(half_span, 1e-12):
        lo = 0.0
    elif hi < 0 and -hi / 2 <= 2 * max(half_span, 1e-12):
        hi = 0.0
    if hi == lo:
        width = max(abs(lo) * 0.5, 1.0)
        lo, hi = lo - width, hi + width
    pad = 0.08 * (hi / 2 - lo / 2) * 2
    lo, hi = max(lo - pad, -_MAX), min(hi + pad, _MAX)
    return lo, hi


def _axes(data: _Data, metas: Mapping[str, _Meta], ranges: Mapping[str, Sequence[float]] | None = None):
    """Shared axes (one per role and kind, or per bounds) and per-key drawing metadata.

    ``ranges``: key -> (lo, hi) each axis must cover (an axis is widened to the
    union of its keys' ranges, never narrowed: no value is pushed off the axis).
    """
    groups: dict[tuple, list[str]] = {}
    kinds: dict[str, tuple[str, bool]] = {}
    for key, meta in metas.items():
        kind, bounded = _axis_kind(meta)
        kinds[key] = (kind, bounded)
        gid = (kind, meta.role) + ((meta.lower, meta.upper) if bounded else ())
        groups.setdefault(gid, []).append(key)
    axes, params = [], {}
    for gid, keys in groups.items():
        kind, bounded = kinds[keys[0]]
        vals = np.concatenate([data.values[k] for k in keys]) if keys else np.zeros(0)
        refs = [m.prior for m in (metas[k] for k in keys) if m.prior is not None]
        marks = {k: (_at_bound(data.values[k], metas[k].lower), _at_bound(data.values[k], metas[k].upper))
                 for k in keys}
        for k in keys:
            if marks[k][0]:
                refs.append(metas[k].lower)
            if marks[k][1]:
                refs.append(metas[k].upper)
        if bounded:
            lo, hi = metas[keys[0]].lower, metas[keys[0]].upper
            inside = vals[np.isfinite(vals)]
            if kind == "log":
                inside = inside[inside > 0]
            lo = min([lo] + ([float(inside.min())] if len(inside) else []))
            hi = max([hi] + ([float(inside.max())] if len(inside) else []))
            if hi <= lo:
                lo, hi = (lo / 10, min(hi * 10, _MAX)) if kind == "log" else (max(lo - 1, -_MAX), min(hi + 1, _MAX))
        elif kind == "log":
            lo, hi = _log_domain(vals, refs)
        else:
            lo, hi = _linear_domain(vals, refs)
        for k in keys:
            if ranges and k in ranges:
                ends = [float(e) for e in ranges[k] if _num(e) is not None and (kind != "log" or float(e) > 0)]
                if ends:
                    lo, hi = min([lo] + ends), max([hi] + ends)
        label = gid[1]
        axes.append({"kind": kind, "lo": float(lo), "hi": float(hi), "role": label, "bounded": bounded})
        for k in keys:
            m = metas[k]
            params[k] = {"axis": len(axes) - 1, "role": m.role, "prior": m.prior, "lower": m.lower,
                         "upper": m.upper, "mark_lower": marks[k][0], "mark_upper": marks[k][1], "held": m.held}
    return axes, params


def _bad_values(data: _Data, axes, params) -> dict[str, str]:
    """key -> short description of NaN / inf / non-positive-on-log values (for the page's warning)."""
    out = {}
    for k, v in data.values.items():
        axis = axes[params[k]["axis"]]
        parts = []
        if np.isnan(v).any():
            parts.append(f"{int(np.isnan(v).sum())} NaN")
        if np.isinf(v).any():
            parts.append(f"{int(np.isinf(v).sum())} inf")
        if axis["kind"] == "log" and (v[np.isfinite(v)] <= 0).any():
            parts.append(f"{int((v[np.isfinite(v)] <= 0).sum())} \u2264 0 on a log axis")
        if parts:
            out[k] = ", ".join(parts)
    if data.n_rows == 0:
        out.update({k: "no values" for k in data.values})
    return out


# --------------------------------------------------------------------------- #
# HTML                                                                        #
# --------------------------------------------------------------------------- #

_STR_RE = re.compile(r"('(?:[^'\\]|\\.)*')")


def _code_html(text: str) -> str:
    """Escaped code text with quoted strings (feature names) tinted."""
    parts = _STR_RE.split(text)
    return "".join(f'<span class="gpviz-str">{escape_html(p)}</span>' if i % 2 else escape_html(p)
                   for i, p in enumerate(parts) if p)


def _css_token(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(s)) or "value"


def _placeholder(p: Param, spec_param: dict, axis: dict, fallback: str) -> str:
    classes = ["gpviz-param", f"gpviz-role-{_css_token(spec_param['role'])}", f"gpviz-axis-{axis['kind']}"]
    if spec_param["held"]:
        classes.append("gpviz-held")
    return (f'<span class="{" ".join(classes)}" data-key="{escape_html(p.key)}">'
            f"{escape_html(fallback)}</span>")


def _fallback_text(v: np.ndarray) -> str:
    """What a placeholder shows before (or without) JavaScript."""
    if len(v) == 1:
        return fmt_number(float(v[0]))
    finite = v[np.isfinite(v)]
    if not len(finite):
        return f"[{len(v)} values]"
    return f"[{fmt_number(float(np.median(finite)))} median of {len(v)}]"


def _sections(expr) -> list[tuple[str, str, object]]:
    """(title, note, tree) for each part of the expression."""
    secs = getattr(expr, "sections", None)
    if secs:
        return [(s.title, s.note, s.body) for s in secs]
    return [("Kernel", "", expr.tree)]


def _bound_on_axis(p: dict, axis: dict) -> bool:
    """Whether gpviz.js draws a dashed bound line for ``p`` (a bound inside a non-Interval axis, no value at it)."""
    if axis["bounded"]:
        return False
    for b, at in ((p["lower"], p["mark_lower"]), (p["upper"], p["mark_upper"])):
        if b is not None and not at and axis["lo"] <= b <= axis["hi"] and (axis["kind"] != "log" or b > 0):
            return True
    return False


def _legend(spec: dict, has_bad: bool, judged: bool = False) -> str:
    one = escape_html(spec.get("member", "member"))
    items = ['<span><span class="gpviz-swatch gpviz-swatch-dot"></span>'
             + ("value" if spec["mode"] == "snapshot" else f"one dot per {one}") + "</span>"]
    params = spec["params"].values()
    if any(p["prior"] is not None for p in params):
        items.append('<span><span class="gpviz-swatch gpviz-swatch-prior"></span>prior mode</span>')
    if any(p["mark_lower"] or p["mark_upper"] for p in params):
        items.append('<span><span class="gpviz-swatch gpviz-swatch-bound"></span>'
                     "constraint bound a value sits at (those values red)</span>")
    if any(_bound_on_axis(p, spec["axes"][p["axis"]]) for p in params):
        items.append('<span><span class="gpviz-swatch gpviz-swatch-bound-dash"></span>constraint bound</span>')
    if any(p["held"] for p in params):
        items.append('<span title="gpviz.prior_pull: the prior, not the data, sets the value">'
                     '<span class="gpviz-swatch gpviz-swatch-held"></span>held by prior</span>')
    elif judged:
        items.append('<span class="gpviz-legend-noheld">gpviz.prior_pull: no parameter held by its prior</span>')
    if has_bad:
        items.append('<span><span class="gpviz-swatch gpviz-swatch-flag">\u26a0 \u25b6</span>'
                     "NaN, inf or \u2264 0 on a log axis (drawn at the edge)</span>")
    axes = []
    for ax in spec["axes"]:
        scale = "log" if ax["kind"] == "log" else "linear"
        bounds = " (its bounds)" if ax["bounded"] else ""
        axes.append(f"{escape_html(ax['role'])}: {scale}{bounds}")
    if axes:
        items.append(f'<span>axes: {"; ".join(dict.fromkeys(axes))}</span>')
    if spec["mode"] != "snapshot":
        items.append(f'<span>hover a dot to ring its {one} in every chart <b class="gpviz-hover"></b></span>')
    return '<div class="gpviz-legend">' + "".join(items) + "</div>"


def _singular(label: str) -> str:
    """"MCMC samples" -> "MCMC sample", "outputs" -> "output" (the last word loses its plural s)."""
    return label[:-1] if label.endswith("s") and not label.endswith("ss") else label


def _member_label(expr, member_label: str | None) -> str:
    """What a dot is, plural ("members", "MCMC samples", "outputs", "leave-one-out folds")."""
    label = member_label if member_label is not None else getattr(expr, "member_label", None)
    label = " ".join(str(label).split()) if label else ""
    return label or "members"


def _subtitle(data: _Data, label: str = "members") -> str:
    one = _singular(label)
    if data.mode == "snapshot":
        return "one model: each parameter's value on its own axis"
    if data.mode == "batch":
        return f"batch of {data.n_rows} {label}: one dot per {one}"
    if data.mode == "configs":
        return (f"{len(data.config_labels)} configurations, one labelled band each, top to bottom; "
                f"one dot per {one}")
    bands = (f"{len(data.config_labels)} configurations (one labelled band each) \u00d7 "
             if data.i_config is not None else "")
    return (f"fit trace: {len(data.steps)} steps; {bands}{data.members} {label if data.members != 1 else one}; "
            f"play, pause or scrub")


def _inner_html(expr, data: _Data, spec: dict, title: str | None, extra_html: str, judged: bool = False,
                label: str = "members") -> str:
    parts = []
    if title:
        parts.append(f'<div class="gpviz-title">{escape_html(title)}</div>')
    parts.append(f'<div class="gpviz-subtitle">{escape_html(_subtitle(data, label))}</div>')
    bad = spec.get("bad", {})
    if data.n_rows == 0:
        parts.append('<div class="gpviz-warning">\u26a0 no values to draw yet (the frame has no rows)</div>')
    elif bad:
        listed = "; ".join(f"{k}: {v}" for k, v in list(bad.items())[:8]) + ("; ..." if len(bad) > 8 else "")
        parts.append(f'<div class="gpviz-warning">\u26a0 flagged values: {escape_html(listed)}</div>')
    parts.append(_legend(spec, bool(bad) and data.n_rows > 0, judged))
    if data.mode == "timeline":
        parts.append('<div class="gpviz-time"></div><span class="gpviz-time-state"></span>')
    leaf_chars = LEAF_CHARS[data.mode]
    for sec_title, note, tree in _sections(expr):
        tokens = layout(tree, lambda p: "#" * leaf_chars, LAYOUT_WIDTH)
        code = []
        for t in tokens:
            if isinstance(t, Param):
                sp = spec["params"][t.key]
                code.append(_placeholder(t, sp, spec["axes"][sp["axis"]], _fallback_text(data.values[t.key])))
            else:
                code.append(_code_html(t))
        note_html = f' <span class="gpviz-note">({escape_html(note)})</span>' if note else ""
        parts.append(f'<div class="gpviz-section"><div class="gpviz-section-title">{escape_html(sec_title)}'
                     f'{note_html}</div><pre class="gpviz-code">{"".join(code)}</pre></div>')
    if extra_html:
        parts.append(f'<div class="gpviz-extra">{extra_html}</div>')  # trusted: made by gpviz itself
    return "\n".join(parts)


class Page:
    """A displayable gpviz page: ``.html()`` (standalone, offline), ``._repr_html_()``, ``.save(path)``.

    Subclasses give :meth:`_body` (the page content; ``suffix`` makes element ids
    unique per notebook display) and optionally :meth:`_head` (extra ``<head>``
    content, e.g. a ``<style>``). The page assets (:func:`header_html`) come once.
    """

    title: str = "gpviz"
    _what = "figure"  # named in the message of a display that failed

    def _animated(self) -> bool:
        """Whether the page shows a fit trace (and so needs rows2prose's time control)."""
        return True

    def _head(self) -> str:
        return ""

    def _body(self, suffix: str = "") -> str:
        raise NotImplementedError

    def html(self) -> str:
        """A standalone page (UTF-8, everything inline, works offline)."""
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                f"<title>{escape_html(self.title or 'gpviz')}</title>\n{header_html(self._animated())}{self._head()}"
                "</head>\n<body>\n"
                f"{self._body()}</body>\n</html>\n")

    def _repr_html_(self) -> str:
        """Notebook display: self-contained (assets inline, no network) with ids unique on the page."""
        try:
            return header_html(self._animated()) + self._head() + self._body(f"-d{next(_DISPLAYS)}")
        except Exception as exc:  # noqa: BLE001 - a display must never break a notebook
            return f"<pre>gpviz could not display this {self._what}: {escape_html(type(exc).__name__)}: " \
                   f"{escape_html(exc)}</pre>"

    def save(self, path) -> Path:
        """Writes :meth:`html` to ``path`` (parent folders are created) and returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html(), encoding="utf-8")
        return path


class Figure(Page):
    """A rendered expression: ``.html()`` (standalone offline page), ``._repr_html_()``, ``.save(path)``.

    Attributes:
        element_id: Id of the figure's container (a content hash unless fixed).
        spec: What the browser receives (mode, axes, per-key metadata, encoded columns).
        keys: Placeholder keys, in print order.
        columns: Columns sent to the browser: the keys, plus ``i_config`` for a configuration list.
        title: The page title.
    """

    def __init__(self, inner_html: str, spec: dict, element_id: str, title: str):
        self._inner = inner_html
        self.spec = spec
        self._blob, layout = pack_columns(spec["columns"])
        self._spec_json = script_json({**spec, "columns": layout, "packed": True})
        self.element_id = element_id
        self.title = title
        self.keys = tuple(spec["params"])
        self.columns = tuple(spec["columns"])

    @property
    def mode(self) -> str:
        """``snapshot``, ``batch``, ``configs`` or ``timeline``."""
        return self.spec["mode"]

    def fragment(self, element_id: str | None = None) -> str:
        """The figure's container and mount script, without the page assets (see :func:`header_html`)."""
        eid = element_id or self.element_id
        mount = (f"<script>(function(){{var s={self._spec_json};"
                 f"var f=function(){{window.gpviz.mountById({js_string(eid)},s);}};"
                 "if(window.gpviz&&window.gpviz.mountById){f();}"
                 "else{(window.gpvizQueue=window.gpvizQueue||[]).push(f);}})();</script>")
        # the data: base64 in a script the browser does not run (see pack_columns), inside the container
        data = f'<script type="application/octet-stream" class="gpviz-data">{self._blob}</script>'
        return f'<div class="gpviz-figure" id="{escape_html(eid)}">\n{self._inner}\n{data}\n</div>\n{mount}\n'

    def _body(self, suffix: str = "") -> str:
        return self.fragment(self.element_id + suffix)

    def _animated(self) -> bool:
        return self.mode == "timeline"

    def __repr__(self) -> str:
        return (f"<gpviz.Figure {self.mode}: {len(self.keys)} parameters, {self.spec['n_rows']} rows, "
                f"id {self.element_id}>")


# --------------------------------------------------------------------------- #
# Entry points                                                                #
# --------------------------------------------------------------------------- #


def _check_id(element_id) -> str:
    if not isinstance(element_id, str) or not _ID_RE.match(element_id):
        raise InputError(f"element_id must start with a letter and hold only letters, digits, '-' and '_' "
                         f"(at most 64), got {element_id!r}")
    return element_id


def _build(expr, frame, *, info=None, title=None, config_labels=None, extra_html="",
           member_label=None, axis_ranges=None) -> tuple[str, dict]:
    keys = tuple(expr.keys)
    roles = dict(expr.roles)
    data = prepare_frame(keys, frame, config_labels)
    metas = _info_meta(info, keys, roles)
    if axis_ranges is not None and not isinstance(axis_ranges, Mapping):
        raise InputError(f"axis_ranges must map parameter keys to (lo, hi), got {type(axis_ranges).__name__}")
    axes, params = _axes(data, metas, axis_ranges)
    columns = {k: _encode(data.values[k]) for k in keys}
    configs = None
    if data.i_config is not None:
        columns[I_CONFIG] = _encode(data.i_config.astype(np.int32))
        c = len(data.config_labels)
        configs = {"column": I_CONFIG, "labels": list(data.config_labels),
                   "band": int(max(MIN_BAND_PX, min(MAX_BAND_PX, CONFIGS_PX // max(c, 1))))}
    spec = {
        "v": 1, "mode": data.mode, "n_rows": data.n_rows, "members": data.members,
        "member": _singular(_member_label(expr, member_label)),  # what a dot is, in the hover text
        # axis ends and prior modes to 6 digits: invisible on a 150 px axis, and the same bytes on every libm
        "axes": [{**ax, **dict(zip(("lo", "hi"), _round_axis(ax)))} for ax in axes],
        "params": {k: {**p, "prior": _round6(p["prior"]), "lower": _num(p["lower"]), "upper": _num(p["upper"])}
                   for k, p in params.items()},
        "configs": configs,
        "steps": data.steps, "step_starts": data.step_starts, "step_prefix": "Step",
        "row_members": data.row_members,
        "bad": _bad_values(data, axes, params),
        "columns": columns,
    }
    judged = any(m.verdict for m in metas.values())  # info carried verdicts: say so even when none is held
    inner = _inner_html(expr, data, spec, title, extra_html or "", judged, _member_label(expr, member_label))
    return inner, spec


def render_frame(expr, frame, *, info=None, title=None, config_labels=None, extra_html: str = "",
                 element_id: str | None = None, member_label: str | None = None,
                 axis_ranges: Mapping[str, Sequence[float]] | None = None) -> Figure:
    """Draws a parameter frame inside an expression.

    The view follows the columns: ``i_timestep`` -> animated fit trace (rows2prose's
    time control); ``i_config`` -> one labelled band per configuration, top to
    bottom; several rows -> one dot per batch member; one row -> a snapshot.

    Args:
        expr: A :class:`~gpviz.walk.KernelExpr` or :class:`~gpviz.model.ModelExpr`.
        frame: Wide DataFrame: ``i_model`` and one numeric column per ``expr.keys``
            (more columns are dropped), optionally ``i_config`` (0..C-1) or
            ``i_timestep``.
        info: Optional long frame like ``gpviz.parameters(model, long=True)``
            (``key``, ``lower``, ``upper``, ``prior_mode``, optional ``verdict``):
            draws prior modes and bounds, tints parameters "held by prior".
        title: Page and figure title.
        config_labels: Labels of the configurations (list, or mapping i_config -> label).
        extra_html: Trusted HTML made by gpviz (e.g. a chart image), placed below.
        element_id: A fixed container id for reproducible output (default: a
            hash of the content, so the same input gives identical bytes).
        member_label: What a dot is, plural ("leave-one-out folds"); default the
            expression's ``member_label`` ("MCMC samples", "outputs", "members").
        axis_ranges: key -> ``(lo, hi)`` the key's axis must cover: figures given
            the same ranges put the same value at the same position (e.g. stacked
            sweeps in :func:`gpviz.compare`). Axes are widened, never narrowed.

    Returns:
        A :class:`Figure`.

    Raises:
        KeyMismatchError: a placeholder key has no column in ``frame``.
        InputError: unreadable columns, bad ``config_labels``, ``info`` or ``element_id``.
    """
    if not hasattr(expr, "keys") or not hasattr(expr, "tree"):
        raise InputError(f"render_frame expects an expression from gpviz.model_expr / kernel_expr, "
                         f"got {type(expr).__name__}")
    inner, spec = _build(expr, frame, info=info, title=title, config_labels=config_labels, extra_html=extra_html,
                         member_label=member_label, axis_ranges=axis_ranges)
    if element_id is None:
        digest = hashlib.sha256((inner + "\0" + script_json(spec)).encode("utf-8")).hexdigest()
        element_id = f"gpviz-{digest[:12]}"
    return Figure(inner, spec, _check_id(element_id), title or "gpviz")


# --------------------------------------------------------------------------- #
# Verdicts: which parameters a prior holds                                    #
# --------------------------------------------------------------------------- #

#: render() runs gpviz.prior_pull only below these sizes (its curvature costs a backward pass per element
#: through the Cholesky: ~1 s at 200 points x 8 elements, ~13 s at 1000 x 12); above, it draws no verdicts.
PULL_MAX_POINTS = 500
PULL_MAX_ELEMENTS = 400  # parameter elements x batch members
#: A parameter is tinted when prior_pull holds it in at least this share of the members (of some group).
HELD_MAJORITY = 0.5


def key_verdicts(pull: pd.DataFrame, by: str | None = None) -> dict[str, str]:
    """One verdict per key from :func:`gpviz.prior_pull` rows: the rule every view tints by.

    A key is ``held by prior`` when at least :data:`HELD_MAJORITY` (half) of its rows
    are held, within some group of ``by`` (e.g. ``"size"`` for a sweep: half the
    folds of one dataset size suffice) or over all rows when ``by`` is None (the
    members of a batch); otherwise ``at bound`` if any row sits on a bound, else
    ``free``.

    Args:
        pull: Rows with ``key`` and ``verdict`` (and ``by``).
        by: Column grouping the rows, or None.

    Returns:
        key -> verdict, for every key in ``pull``.
    """
    if pull is None or len(pull) == 0 or "key" not in pull.columns or "verdict" not in pull.columns:
        return {}
    held = pull["verdict"].astype(str).eq(HELD)
    groups = [pull["key"].astype(str)] + ([pull[by]] if by is not None and by in pull.columns else [])
    share = held.groupby(groups, sort=False).mean()
    if share.index.nlevels > 1:
        share = share.groupby(level=0, sort=False).max()
    bound = pull["verdict"].astype(str).eq("at bound").groupby(pull["key"].astype(str), sort=False).any()
    return {k: HELD if share[k] >= HELD_MAJORITY else ("at bound" if bound.get(k, False) else "free")
            for k in share.index}


def with_verdicts(info: pd.DataFrame, verdicts: Mapping[str, str]) -> pd.DataFrame:
    """``info`` (a long frame with ``key``) with a ``verdict`` column from :func:`key_verdicts` (keys missing: "")."""
    info = info.copy()
    info["verdict"] = [verdicts.get(str(k), "") for k in info["key"]]
    return info


def _pull_cost(expr) -> tuple[int, int] | None:
    """(training points, parameter elements x members) of a model expression, or None if not an exact GP."""
    from gpviz.model import is_gp_model

    model = getattr(expr, "module", None)
    if model is None or not is_gp_model(model):
        return None
    subs = list(getattr(model, "models", None) or [model])
    points = 0
    for sub in subs:
        # fully Bayesian (MCMC) models: their samples are not MAP fits, and BoTorch's .train() on them DROPS the
        # samples (covar_module becomes None), which prior_pull's train()/eval() round trip would trigger
        if hasattr(sub, "pyro_model") or "FullyBayesian" in type(sub).__name__:
            return None
        inputs = getattr(sub, "train_inputs", None)
        if not inputs:
            return None
        points = max(points, int(inputs[0].shape[-2]))
    members = int(np.prod(tuple(getattr(expr, "batch_shape", ())) or (1,)))
    return points, len(expr.keys) * members


def model_verdicts(expr, force: bool = False) -> dict[str, str]:
    """:func:`key_verdicts` of ``prior_pull`` on the model behind ``expr``, or ``{}``.

    Never raises: a model prior_pull cannot analyse (a kernel alone, no training
    data, an approximate GP, any error) gets no verdicts, and so does a model above
    :data:`PULL_MAX_POINTS` / :data:`PULL_MAX_ELEMENTS` unless ``force``.
    """
    import warnings

    cost = _pull_cost(expr)
    if cost is None or (not force and (cost[0] > PULL_MAX_POINTS or cost[1] > PULL_MAX_ELEMENTS)):
        return {}
    try:
        from gpviz.priors import prior_pull

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return key_verdicts(prior_pull(expr.module))
    except Exception:  # noqa: BLE001 - verdicts are an extra: the figure is drawn without them
        return {}


def _default_title(expr) -> str:
    module = getattr(expr, "module", None)
    name = type(module).__name__ if module is not None else "model"
    n = int(np.prod(tuple(getattr(expr, "batch_shape", ())) or (1,)))
    return f"{name}" + (f" \u2014 batch of {n} {_member_label(expr, None)}" if n > 1 else "")


def render(obj, feature_names=None, units: str = "model", *, title: str | None = None,
           element_id: str | None = None, verdicts: bool | None = None) -> Figure:
    """Renders a model, kernel, MLL or expression, or anything with a ``.render()`` method.

    A model with one member is drawn as a snapshot (its values); a batched
    model (CV folds, MCMC samples) with one dot per member. Prior modes and
    constraint bounds come from the model itself; a GP with training data also
    gets :func:`gpviz.prior_pull` verdicts (parameters held by their prior in at
    least half the members are tinted, see :func:`key_verdicts`).

    Args:
        obj: A BoTorch/GPyTorch model, kernel, MLL or gpviz expression; or an
            object with ``.render()`` (a fit tracer, a sweep), which is called.
        feature_names: Names of the input columns.
        units: ``"model"``: values as the model stores them (labelled with their
            space, e.g. "standardized outputs"); ``"original"``: converted back to
            the data's units where an exact conversion exists (see :mod:`gpviz.units`).
        title: Figure title (default: the model's class and batch size).
        element_id: Fixed container id for reproducible output.
        verdicts: ``None`` (default): prior_pull verdicts when the model is small
            enough to analyse quickly (:data:`PULL_MAX_POINTS`, :data:`PULL_MAX_ELEMENTS`);
            ``True``: whatever the size; ``False``: none. A model prior_pull cannot
            analyse is drawn without verdicts, never an error.

    Raises:
        InputError: unknown ``units`` or an object gpviz cannot render.
    """
    import torch

    from gpviz.params import expression_of, parameters
    from gpviz.walk import Expr

    from gpviz import units as _units

    _units.check_units(units)
    if isinstance(obj, Figure):
        return obj
    if not isinstance(obj, (torch.nn.Module, Expr)) and callable(getattr(obj, "render", None)):
        return obj.render()
    expr = expression_of(obj, feature_names)
    frame = parameters(expr)
    info = parameters(expr, long=True)
    if verdicts is not False:
        found = model_verdicts(expr, force=bool(verdicts))
        if found:
            info = with_verdicts(info, found)
    if units != "model":
        frame, labels = _units.to_units(expr, frame, units)
        info, _ = _units.to_units(expr, info, units)
        expr = _units.relabel(expr, labels)
    return render_frame(expr, frame, info=info, title=title or _default_title(expr), element_id=element_id)


class LiveFigure:
    """A figure that updates in place in a notebook while a model fits.

    The page assets are displayed once; each :meth:`update` replaces only the
    figure (its container and data). The caller throttles updates. Outside a
    notebook nothing is displayed and updates only keep the latest figure.

    Args:
        expr: The expression whose parameters are drawn.
        info, title, config_labels: As for :func:`render_frame`.
        element_id: Fixed container id (default: a per-process counter).
        display: Set ``False`` to never display (e.g. in scripts and tests).
    """

    def __init__(self, expr, *, info=None, title=None, config_labels=None, element_id: str | None = None,
                 display: bool = True):
        self.expr = expr
        self.info = info
        self.title = title
        self.config_labels = config_labels
        self.element_id = _check_id(element_id) if element_id is not None else f"gpviz-live-{next(_DISPLAYS)}"
        self.figure: Figure | None = None
        self.updates = 0
        self._display = display
        self._handle = None
        self._ipd = None

    def _figure(self, frame) -> Figure:
        return render_frame(self.expr, frame, info=self.info, title=self.title, config_labels=self.config_labels,
                            element_id=self.element_id)

    def _show(self, fig: Figure) -> None:
        if not self._display:
            return
        if self._ipd is None:
            try:  # imported here: gpviz never imports IPython at import time
                from IPython import get_ipython
                import IPython.display as ipd
            except ImportError:
                self._display = False
                return
            shell = get_ipython()
            if shell is None or getattr(shell, "kernel", None) is None:  # plain Python or a terminal IPython:
                self._display = False                                    # no frontend that renders HTML
                return
            self._ipd = ipd
            ipd.display(ipd.HTML(header_html()))
        html = self._ipd.HTML(fig.fragment())
        if self._handle is None:
            self._handle = self._ipd.display(html, display_id=True)
        else:
            self._handle.update(html)

    def update(self, frame) -> Figure:
        """Redraws with ``frame`` (a wide frame, e.g. the tracer's frames so far)."""
        self.figure = self._figure(frame)
        self.updates += 1
        self._show(self.figure)
        return self.figure

    def finish(self, frame) -> Figure:
        """The last update; returns the final :class:`Figure` (save it with ``.save(path)``)."""
        return self.update(frame)

    def _repr_html_(self) -> str:
        return self.figure._repr_html_() if self.figure is not None else "<i>gpviz: no data yet</i>"


class _CallableModule(types.ModuleType):
    """Lets ``gpviz.render(obj)`` render while ``gpviz.render.render_frame`` stays the module's.

    ``gpviz/__init__`` re-exports this module as ``render``; a plain function of
    the same name would shadow the submodule (``import gpviz.render as r`` and
    ``gpviz.render.escape_html`` would then give the function).
    """

    def __call__(self, obj, feature_names=None, units: str = "model", **kwargs) -> Figure:
        return render(obj, feature_names, units, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["Figure", "Page", "LiveFigure", "escape_html", "js_string", "render", "render_frame", "rows2prose_web",
           "header_html", "prepare_frame", "script_json"]
