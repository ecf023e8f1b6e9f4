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

def encode_column(arr: np.ndarray) -> dict:
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
        mag = np.abs(block)
        usable = np.isfinite(block) & (block != 0)
        with np.errstate(invalid="ignore"):
            small = (usable & (mag < 1e-35)).any(axis=0)
            large = (usable & (mag > 1e35)).any(axis=0)
        for j, name in enumerate(names):
            arr = block[:, j].astype("<f8" if small[j] or large[j] else "<f4")
            out[name] = {"type": "float32" if arr.dtype.itemsize == 4 else "float64",
                         "data": base64.b64encode(arr.tobytes()).decode("ascii")}
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
