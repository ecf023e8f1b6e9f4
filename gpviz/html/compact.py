"""Compact frame data: a figure's columns at display precision, delta coded over steps, deflated.

A fit trace of 60 members x 1,000 steps x 30 parameters is 1.8 million values:
7.2 MB as float32, 9.6 MB once base64 puts it in a page, and the browser's
time to read a page follows its bytes. The page never shows more than a few
significant digits, so values travel as what the page shows:

1. **Significant-digit codes.** Each float column is rounded to ``digits``
   significant decimal digits (4 by default: what the page prints; more only
   where its chart needs them, see below) and each rounded value is numbered
   in order: ``code = sign * (1 + (E - e0) * 9 * 10**(digits - 1) + m - 10**(digits - 1))``
   for ``|v| = m * 10**(E - digits + 1)`` with ``10**(digits-1) <= m < 10**digits``;
   ``0`` is code 0, ``+-inf`` and NaN get the reserved codes ``+-top`` and
   ``top + 1``. Codes grow with the value (on a log scale within each sign), so
   a parameter that moves a little moves its code a little. Integer columns
   (``i_config``) are their own codes.
2. **Deltas over steps.** In a timeline grid (steps x members, rows sorted by
   step then member) each member's codes are written as differences from the
   member's previous step, member after member: a member that has converged
   writes a run of zeros, which deflate reduces to almost nothing.
3. **Varints, then deflate.** Differences are zigzag-mapped (0, -1, 1, -2, ...
   -> 0, 1, 2, 3, ...) and written as little-endian base-128 varints; all
   columns are concatenated and deflated with zlib, which the browser inflates
   natively (``DecompressionStream("deflate")``, no JS library).

What the page draws agrees with the exact values: every value the page
decodes is the exact value rounded to (at least) 4 significant digits, and a
column gets more digits (up to :data:`MAX_DIGITS`, else it travels as exact
float64) until, for every value, the drawn position moves by at most
:data:`MAX_SHIFT_PX`, the flag the page shows (NaN, inf, <= 0 on a log axis,
off the axis) is the same, and "sits at a bound" (red dot) is the same.
Exact values stay in the frames the figure was made from (and their CSV
exports). :func:`decode_compact` is the Python mirror of ``gpviz.js``'s decoder
(tests compare the two).
"""

from __future__ import annotations

import base64
import math
import zlib
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from gpviz.errors import InputError
from gpviz.view.records import AxisKind

#: Significant digits every value keeps (the page prints 4).
DIGITS = 4
#: More digits than this and a column travels as exact float64 instead.
MAX_DIGITS = 7
#: A decoded value's dot may sit at most this far (CSS px) from the exact value's.
MAX_SHIFT_PX = 0.05
#: Codes stay below this (so deltas and their zigzag fit in 31 bits in the browser's arithmetic).
_CODE_LIMIT = 2 ** 29
#: Finite magnitudes outside this range travel as exact float64 (decimal scaling near the float64 limits is inexact).
_TINY, _HUGE = 1e-290, 1e290
#: The page's axis geometry (gpviz.js ``EDGE``, ``PLOT_W``): CSS px.
EDGE, PLOT_W = 8.0, 150.0
#: gpviz.js ``atBound``: a value within this share of a bound's scale sits at the bound.
BOUND_RTOL = 1e-4
ZLIB_LEVEL = 9

_POW10 = np.array([float(f"1e{k}") for k in range(0, 330)])  # correctly rounded, as JS Number("1e" + k)


@dataclass(frozen=True)
class CompactData:
    """A figure's columns as one deflated, base64 payload and the layout the browser decodes it with.

    Attributes:
        text: base64 of the zlib stream (what the page carries).
        layout: JSON-able: ``{"codec": "compact-1", "bytes": inflated length, "grid": [steps, members] | None,
            "columns": {name: {"codec": "sig" | "int" | "f64", "offset", "nbytes", "length", ...}}}``.
        values: Number of values carried (rows x columns).
    """

    text: str
    layout: dict
    values: int

    @property
    def bytes_per_value(self) -> float:
        """Payload characters in the page per value carried."""
        return len(self.text) / max(self.values, 1)


# --------------------------------------------------------------------------- #
# Values <-> significant-digit codes                                          #
# --------------------------------------------------------------------------- #


def _decimal(a: np.ndarray, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(E, m)`` with ``a ~= m * 10**(E - digits + 1)``, ``10**(digits-1) <= m < 10**digits``, for ``a > 0``."""
    e = np.floor(np.log10(a)).astype(np.int64)
    m = np.zeros(len(a), np.int64)
    for _ in range(3):  # log10 can be one off next to a power of ten; rounding can carry to 10**digits
        k = e - digits + 1
        scaled = np.where(k >= 0, a / _POW10[np.clip(k, 0, 329)], a * _POW10[np.clip(-k, 0, 329)])
        m = np.round(scaled).astype(np.int64)
        high, low = m >= 10 ** digits, m < 10 ** (digits - 1)
        if not (high.any() or low.any()):
            break
        e = e + high - low
    return e, m


def _from_decimal(e: np.ndarray, m: np.ndarray, digits: int) -> np.ndarray:
    """``m * 10**(e - digits + 1)`` as the browser computes it (exact power-of-ten table, one multiply or divide)."""
    k = e - digits + 1
    return np.where(k >= 0, m * _POW10[np.clip(k, 0, 329)], m / _POW10[np.clip(-k, 0, 329)])


def sig_codes(values: np.ndarray, digits: int = DIGITS) -> tuple[np.ndarray, dict] | None:
    """Codes of ``values`` rounded to ``digits`` significant digits (see the module docstring).

    Args:
        values: float64, shape ``(n,)``; NaN and +-inf allowed.
        digits: Significant decimal digits kept.

    Returns:
        ``(codes int64 (n,), {"digits", "e0", "top"})``, or None when the codes would not fit
        (a column spanning too many decades, or magnitudes near the float64 limits).
    """
    v = np.asarray(values, dtype=np.float64)
    a = np.abs(v)
    finite = np.isfinite(v)
    nonzero = finite & (a > 0)
    if nonzero.any() and (a[nonzero].min() < _TINY or a[nonzero].max() > _HUGE):
        return None
    per_decade = 9 * 10 ** (digits - 1)
    codes = np.zeros(len(v), np.int64)
    e0 = 0
    top = 1
    if nonzero.any():
        e, m = _decimal(a[nonzero], digits)
        e0 = int(e.min())
        top = (int(e.max()) - e0 + 1) * per_decade + 1
        if top + 1 >= _CODE_LIMIT:
            return None
        codes[nonzero] = np.sign(v[nonzero]).astype(np.int64) * ((e - e0) * per_decade + (m - 10 ** (digits - 1)) + 1)
    codes[np.isnan(v)] = top + 1
    codes[v == np.inf] = top
    codes[v == -np.inf] = -top
    return codes, {"digits": int(digits), "e0": e0, "top": int(top)}


def sig_values(codes: np.ndarray, meta: Mapping) -> np.ndarray:
    """The values of :func:`sig_codes` codes (float64): what the page draws and prints."""
    digits, e0, top = int(meta["digits"]), int(meta["e0"]), int(meta["top"])
    per_decade = 9 * 10 ** (digits - 1)
    c = np.asarray(codes, dtype=np.int64)
    mag = np.abs(c) - 1
    e = e0 + np.maximum(mag, 0) // per_decade
    m = np.maximum(mag, 0) % per_decade + 10 ** (digits - 1)
    out = np.sign(c) * _from_decimal(e, m, digits)
    out = np.where(c == 0, 0.0, out)
    out = np.where(c == top, np.inf, out)
    out = np.where(c == -top, -np.inf, out)
    return np.where(c == top + 1, np.nan, out)


def round_sig(values: np.ndarray, digits: int = DIGITS) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits, as the page carries them (NaN, inf kept)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    coded = sig_codes(v, digits)
    if coded is None:
        return v.copy()
    return sig_values(*coded)


# --------------------------------------------------------------------------- #
# What must survive: position, flag, at-bound                                 #
# --------------------------------------------------------------------------- #


def _kinds_and_x(v: np.ndarray, axis: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """gpviz.js ``place``: the flag of each value (0 ok, 1 nan, 2 inf, 3 <= 0 on log, 4 off axis) and its x (px)."""
    kind = np.zeros(len(v), np.int8)
    x = np.full(len(v), np.nan)
    kind[np.isnan(v)] = 1
    kind[np.isinf(v)] = 2
    finite = np.isfinite(v)
    if axis["kind"] == AxisKind.LOG:
        kind[finite & (v <= 0)] = 3
        ok = finite & (v > 0)
        l0, l1 = math.log10(axis["lo"]), math.log10(axis["hi"])
        span = (l1 - l0) or 1.0
        x[ok] = EDGE + (np.log10(v[ok]) - l0) / span * PLOT_W
    else:
        ok = finite
        a = axis["lo"] / 2
        span = (axis["hi"] / 2 - a) or 1.0
        x[ok] = EDGE + (v[ok] / 2 - a) / span * PLOT_W
    off = ok & ((x < EDGE - 0.5) | (x > EDGE + PLOT_W + 0.5))
    kind[off] = 4
    return kind, x


def _at_bound(v: np.ndarray, bound) -> np.ndarray:
    if bound is None or not math.isfinite(bound):
        return np.zeros(len(v), bool)
    with np.errstate(invalid="ignore"):
        return np.abs(v - bound) <= BOUND_RTOL * max(abs(bound), 1e-8)


def survives(exact: np.ndarray, shown: np.ndarray, axis: Mapping | None, bounds=(None, None)) -> bool:
    """Whether ``shown`` draws like ``exact`` on ``axis``: same flags, same at-bound, dots within MAX_SHIFT_PX."""
    if axis is None:
        return True
    k0, x0 = _kinds_and_x(exact, axis)
    k1, x1 = _kinds_and_x(shown, axis)
    if not np.array_equal(k0, k1):
        return False
    ok = k0 == 0
    if ok.any() and np.max(np.abs(x1[ok] - x0[ok])) > MAX_SHIFT_PX:
        return False
    return all(np.array_equal(_at_bound(exact, b), _at_bound(shown, b)) for b in bounds)


# --------------------------------------------------------------------------- #
# Streams: deltas over steps, zigzag, varints                                 #
# --------------------------------------------------------------------------- #


def _deltas(codes: np.ndarray, grid: tuple[int, int] | None) -> np.ndarray:
    """Differences along steps, member after member (grid), or along rows."""
    if grid is not None:
        s, m = grid
        q = codes.reshape(s, m).T  # member-major: each member's steps are contiguous
        return np.diff(q, axis=1, prepend=0).reshape(-1)
    return np.diff(codes, prepend=0)


def _undeltas(d: np.ndarray, grid: tuple[int, int] | None) -> np.ndarray:
    if grid is not None:
        s, m = grid
        return np.cumsum(d.reshape(m, s), axis=1).T.reshape(-1)
    return np.cumsum(d)


def _varints(d: np.ndarray) -> bytes:
    """Zigzag, then little-endian base-128 varints (vectorized)."""
    u = ((d << 1) ^ (d >> 63)).astype(np.uint64)
    n = np.ones(len(u), np.int64)
    for k in (7, 14, 21, 28):
        n += u >= (1 << k)
    out = np.zeros(int(n.sum()), np.uint8)
    pos = np.cumsum(n) - n
    for j in range(5):
        sel = n > j
        if not sel.any():
            break
        byte = (u[sel] >> np.uint64(7 * j)) & np.uint64(0x7F)
        more = (n[sel] > j + 1).astype(np.uint64) << np.uint64(7)
        out[pos[sel] + j] = (byte | more).astype(np.uint8)
    return out.tobytes()


def _read_varints(buf: bytes, count: int) -> np.ndarray:
    """Inverse of :func:`_varints` (Python mirror of the JS decoder)."""
    b = np.frombuffer(buf, dtype=np.uint8)
    last = np.flatnonzero(b < 0x80)
    if len(last) != count:
        raise InputError(f"compact column holds {len(last)} values, expected {count}")
    start = np.concatenate([[0], last[:-1] + 1])
    u = np.zeros(count, np.int64)
    for j in range(5):
        idx = start + j
        sel = idx <= last
        if not sel.any():
            break
        u[sel] |= (b[idx[sel]].astype(np.int64) & 0x7F) << (7 * j)
    return (u >> 1) ^ -(u & 1)


# --------------------------------------------------------------------------- #
# A figure's columns                                                          #
# --------------------------------------------------------------------------- #


def _column_codes(values: np.ndarray, axis, bounds) -> tuple[np.ndarray, dict] | None:
    """Codes with the fewest digits (>= DIGITS) that draw like the exact values, or None (send float64)."""
    for digits in range(DIGITS, MAX_DIGITS + 1):
        coded = sig_codes(values, digits)
        if coded is None:
            return None
        if survives(values, sig_values(*coded), axis, bounds):
            return coded
    return None


def encode_compact(columns: Mapping[str, np.ndarray], *, grid: tuple[int, int] | None = None,
                   axes: Mapping[str, Mapping] | None = None,
                   bounds: Mapping[str, tuple] | None = None) -> CompactData:
    """Encodes a figure's columns (all of one length, rows in page order).

    Args:
        columns: name -> values, shape ``(n,)``: float columns (parameter values) or integer
            columns (``i_config``, carried exactly).
        grid: ``(steps, members)`` when the rows are a full timeline grid sorted by step then
            member (``steps * members == n``): deltas run along each member's steps.
        axes: name -> the chart axis ``{"kind": "log" | "linear", "lo", "hi"}`` the column is
            drawn on; columns without one keep 4 significant digits.
        bounds: name -> ``(lower, upper)`` constraint bounds (None: none), whose "at bound"
            red dots must survive.

    Returns:
        The payload and its layout.

    Raises:
        InputError: columns of different lengths, a grid that does not match, or a column
            that is neither numbers nor integers.
    """
    lengths = {len(np.asarray(v).reshape(-1)) for v in columns.values()}
    if len(lengths) > 1:
        raise InputError(f"compact columns must share one length, got lengths {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    if grid is not None and (len(grid) != 2 or grid[0] * grid[1] != n or min(grid) < 1):
        raise InputError(f"grid {tuple(grid)} does not cover {n} rows (expected steps x members = rows)")
    axes, bounds = axes or {}, bounds or {}
    parts, layout, offset = [], {}, 0
    for name, raw in columns.items():
        arr = np.asarray(raw).reshape(-1)
        if arr.dtype.kind in "iub":
            codes, meta = arr.astype(np.int64), {"codec": "int"}
            if len(codes) and np.abs(codes).max() >= _CODE_LIMIT:
                raise InputError(f"integer column {name!r} holds {np.abs(codes).max()}, beyond +-2**29")
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
            coded = _column_codes(arr, axes.get(name), bounds.get(name, (None, None)))
            if coded is None:
                pad = -offset % 8  # a Float64Array view needs an 8-byte aligned offset
                parts.append(b"\0" * pad)
                offset += pad
                blob = arr.astype("<f8").tobytes()
                parts.append(blob)
                layout[name] = {"codec": "f64", "offset": offset, "nbytes": len(blob), "length": n}
                offset += len(blob)
                continue
            codes, sig = coded
            meta = {"codec": "sig", **sig}
        else:
            raise InputError(f"cannot send column {name!r} of dtype {arr.dtype} to the browser")
        blob = _varints(_deltas(codes, grid))
        parts.append(blob)
        layout[name] = {**meta, "offset": offset, "nbytes": len(blob), "length": n}
        offset += len(blob)
    stream = b"".join(parts)
    text = base64.b64encode(zlib.compress(stream, ZLIB_LEVEL)).decode("ascii")
    return CompactData(text, {"codec": "compact-1", "bytes": len(stream), "grid": list(grid) if grid else None,
                              "columns": layout}, n * len(layout))


def decode_compact(text: str, layout: Mapping) -> dict[str, np.ndarray]:
    """The columns :func:`encode_compact` wrote, as the browser decodes them (float64; int64 for "int").

    Raises:
        InputError: a payload that does not match its layout.
    """
    if layout.get("codec") != "compact-1":
        raise InputError(f"unknown compact codec {layout.get('codec')!r}; expected 'compact-1'")
    stream = zlib.decompress(base64.b64decode(text))
    if len(stream) != layout["bytes"]:
        raise InputError(f"compact payload inflates to {len(stream)} bytes, layout says {layout['bytes']}")
    grid = tuple(layout["grid"]) if layout.get("grid") else None
    out = {}
    for name, col in layout["columns"].items():
        blob = stream[col["offset"]:col["offset"] + col["nbytes"]]
        if col["codec"] == "f64":
            out[name] = np.frombuffer(blob, dtype="<f8").astype(np.float64)
            continue
        codes = _undeltas(_read_varints(blob, col["length"]), grid)
        out[name] = codes if col["codec"] == "int" else sig_values(codes, col)
    return out
