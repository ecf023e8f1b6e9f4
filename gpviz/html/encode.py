"""Columns for the browser: typed arrays in one base64 text per figure, 8-byte aligned.

A figure's columns travel as ONE base64 text in a non-executed
``<script type="application/octet-stream">`` inside its container
(:func:`pack_columns`), decoded once with ``Uint8Array.fromBase64`` (or a
table-driven fallback) in ``gpviz.js``. Float columns travel as float32 when that
loses nothing visible, halving the payload.
"""

from __future__ import annotations

import base64
from typing import Mapping

import numpy as np

from gpviz.errors import InputError

#: float32 keeps 7 significant digits (charts show 3); only its range can lose information: a finite,
#: nonzero magnitude outside [F32_TINY, F32_HUGE] travels as float64.
F32_TINY, F32_HUGE = 1e-35, 1e35


def _needs_float64(values: np.ndarray, axis: int | None = None):
    """Whether float32 would lose a value's range (per column of a ``rows x columns`` block with ``axis=0``)."""
    mag = np.abs(values)
    with np.errstate(invalid="ignore"):
        return (np.isfinite(values) & (values != 0) & ((mag < F32_TINY) | (mag > F32_HUGE))).any(axis=axis)


def _encoded(arr: np.ndarray) -> dict:
    kind = {("f", 4): "float32", ("f", 8): "float64", ("i", 4): "int32"}[(arr.dtype.kind, arr.dtype.itemsize)]
    return {"type": kind, "data": base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")}


def encode_column(arr: np.ndarray) -> dict:
    """``{"type", "data"}`` for the browser: little-endian float32 when exact enough, else float64 / int32."""
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float64, copy=False)
        return _encoded(arr.astype("<f8" if _needs_float64(arr) else "<f4"))
    if arr.dtype.kind in "iub":
        return _encoded(arr.astype("<i4"))
    raise InputError(f"cannot send a column of dtype {arr.dtype} to the browser")


def encode_columns(columns: Mapping[str, np.ndarray]) -> dict[str, dict]:
    """:func:`encode_column` of every column; float columns of one length decided together.

    A 1,000-parameter snapshot is 1,000 one-row columns: their float32-or-float64 test
    runs once over a ``rows x columns`` block instead of once per column.
    """
    out: dict[str, dict] = {}
    floats: dict[int, list[str]] = {}
    for name, arr in columns.items():
        if arr.dtype.kind == "f" and arr.ndim == 1:
            floats.setdefault(len(arr), []).append(name)
    for names in floats.values():
        block = np.stack([columns[n] for n in names], axis=1).astype(np.float64, copy=False)
        wide = _needs_float64(block, axis=0)
        for j, name in enumerate(names):
            out[name] = _encoded(block[:, j].astype("<f8" if wide[j] else "<f4"))
    for name, arr in columns.items():
        if name not in out:
            out[name] = encode_column(arr)
    return {name: out[name] for name in columns}


_ITEMSIZE = {"float32": 4, "float64": 8, "int32": 4}


def pack_columns(columns: Mapping[str, dict]) -> tuple[str, dict]:
    """All encoded columns as ONE base64 text, and where each column sits in it.

    The page carries the text in a non-executed ``<script type="application/octet-stream">``:
    the HTML parser only scans it for ``</script`` (fast), where a string literal in
    the mount script would go through the JS parser (~10x slower per MB), and the
    browser decodes one base64 text instead of one per column. Each column starts
    at a multiple of 8 bytes, so typed arrays can view the decoded buffer in place.

    Args:
        columns: name -> ``{"type", "data"}`` (base64) as in :attr:`gpviz.html.figure.Figure.spec`.

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
