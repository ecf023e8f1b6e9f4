"""Validating a wide parameter frame for drawing: every key a column, numbers in int32/float64, rows sorted.

Rows are sorted here (by step, then configuration, then member), never in the
browser: rows2prose's timelines sorted the step column in place, which showed
wrong values at each step of an unsorted frame.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from gpviz.errors import InputError, KeyMismatchError
from gpviz.values.columns import I_CONFIG, I_MODEL, I_TIMESTEP, INDEX_COLUMNS
from gpviz.view.records import FrameData, FrameMode


MODES = tuple(FrameMode)

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



MAX_CONFIGS = 500  # bands of at least MIN_BAND_PX: a taller canvas stops being a chart


def _config_labels(config_labels: Sequence[str] | Mapping[int, str] | None, n: int) -> tuple[str, ...]:
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


def _float_columns(frame: pd.DataFrame, keys: list[str]) -> dict[str, np.ndarray]:
    """:func:`_float_column` of every key; plain float/int columns in one conversion (1,000 keys: one copy)."""
    kinds = {str(c): dt.kind for c, dt in zip(frame.columns, frame.dtypes)}  # not frame[k] per key: ~20 µs each
    plain = [k for k in keys if kinds.get(k) in ("f", "i", "u")]
    out = {}
    if plain:
        block = frame[plain].to_numpy(dtype=np.float64)
        out = {k: block[:, j].copy() for j, k in enumerate(plain)}
    for k in keys:
        if k not in out:
            out[k] = _float_column(frame, k)
    return {k: out[k] for k in keys}


def prepare_frame(keys: Sequence[str], frame: pd.DataFrame,
                  config_labels: Sequence[str] | Mapping[int, str] | None = None) -> FrameData:
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
    # A copy without attrs (the constructor does not carry them; ``copy()`` deep-copies them, and pandas
    # copies them again on every column access: parameters()' labels, one per key, made each of 1,000
    # columns cost a 1,000-entry copy). Drawing needs only the columns.
    frame = pd.DataFrame(frame, copy=True)
    frame.attrs = {}
    frame.columns = [str(c) for c in frame.columns]
    wanted = set(keys) | set(INDEX_COLUMNS)
    dupes = sorted({c for c in frame.columns[frame.columns.duplicated()] if c in wanted})
    if dupes:
        raise InputError(f"frame has several columns named {dupes[0]!r}; expected one")
    n = len(frame)
    index = {c: _int_column(frame, c) for c in INDEX_COLUMNS if c in frame.columns}
    values = _float_columns(frame, list(dict.fromkeys(keys)))

    if I_TIMESTEP in index:
        mode = FrameMode.TIMELINE
    elif I_CONFIG in index:
        mode = FrameMode.CONFIGS
    else:
        mode = FrameMode.SNAPSHOT if n == 1 else FrameMode.BATCH

    # Sort rows here (stable), never in JS: by step, then config, then member.
    order_keys = [index[c] for c in (I_MODEL, I_CONFIG, I_TIMESTEP) if c in index]
    order = np.lexsort(order_keys) if order_keys else np.arange(n)
    values = {k: v[order] for k, v in values.items()}
    index = {c: v[order] for c, v in index.items()}

    i_config: np.ndarray | None = None
    labels: tuple[str, ...] = ()
    if I_CONFIG in index:
        i_config = index[I_CONFIG]
        if len(i_config) and i_config.min() < 0:
            raise InputError(f"column {I_CONFIG!r} holds {i_config.min()}; expected 0, 1, ... (one per configuration)")
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
    if mode != FrameMode.TIMELINE:  # a timeline's rows of one step are its members in order
        row_members = [int(m) for m in index[I_MODEL]] if I_MODEL in index else list(range(n))
        if i_config is not None and I_MODEL not in index:  # members count within each configuration
            row_members = [int(j) for j in pd.Series(i_config).groupby(i_config).cumcount()]
    return FrameData(mode, values, n, members, i_config, labels, steps, starts, row_members)
