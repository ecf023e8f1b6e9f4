"""Raw optimizer states kept at each step and turned into constrained values in bulk.

The context form's markers hand over the optimizer's raw state (scipy's copy of
``x``, torch's live parameters, a batched member's state array). Transforming it
at every step would cost one constraint transform per parameter per step, so the
recorder keeps a copy and a *layout* (where each key's raw element sits in that
state), and :meth:`RawStates.materialize` transforms all pending steps at once,
one transform per parameter.
"""

from __future__ import annotations

import numpy as np
import torch

from gpviz import hooks
from gpviz.trace.reader import ValueReader
from gpviz.trace.store import EventStore
from gpviz.values.tensors import to_numpy


def member_loss(n: int, mll_value: torch.Tensor) -> np.ndarray:
    """Each of ``n`` members' loss (negative MLL) from an MLL output: one value per member, or one shared."""
    v = to_numpy((-mll_value.detach()).reshape(-1))
    if v.size == n:
        return v
    if v.size == 1:
        return np.full(n, float(v[0]) / n if n > 1 else float(v[0]))
    return np.full(n, np.nan)


class RawStates:
    """Pending raw states (row, layout, state copy, evaluation output, rows) and the layouts they refer to.

    Attributes:
        layouts: Per layout: ``[(positions, columns, constraint, device)]``.
        pending: Steps whose values (and losses) are not written yet.
        written: Bumped whenever earlier rows get their values (a cached frame is then stale).
    """

    def __init__(self):
        self.layouts: list = []
        self.pending: list = []
        self.written = 0
        self.joint: tuple | None = None  # (run key, layout index) of the current joint run

    def joint_layout(self, key, reader: ValueReader | None, params) -> int | None:
        """The layout of the joint run ``key`` (one group, one parameter dict), computed once per run."""
        if self.joint is not None and self.joint[0] == key:
            return self.joint[1]
        index = None
        if reader is not None and isinstance(params, dict):
            parts = reader.positions(params)
            if parts is not None:
                self.layouts.append(parts)
                index = len(self.layouts) - 1
        self.joint = (key, index)
        return index

    def batched_layout(self, reader: ValueReader | None, closure) -> int | None:
        """Where each key's raw element sits in a member's state vector of BoTorch's batched closure."""
        layout = hooks.batched_closure_layout(closure)
        if reader is None or layout is None:
            return None
        params, sizes, batch = layout
        offsets, off = {}, 0
        for name, p in params.items():
            offsets[id(p)] = (off, int(sizes[name]))
            off += int(sizes[name])
        parts = []
        for info, flat, cols in reader.parts:
            o = offsets.get(id(info.raw))
            if o is None or info.member_ndim != len(batch) or int(np.prod(info.elem_shape)) != o[1]:
                return None  # e.g. a fixed parameter: read the model instead
            parts.append(((o[0] + to_numpy(flat, np.int64))[None, :], cols, info.constraint, info.raw.device))
        self.layouts.append(parts)
        return len(self.layouts) - 1

    def add(self, row: int, layout: int, state: np.ndarray, output, n: int, limit: int) -> bool:
        """Keeps one step's raw state; True when ``limit`` steps are pending (time to materialize)."""
        self.pending.append((row, layout, state, output, n))
        return len(self.pending) >= limit

    def materialize(self, store: EventStore, n_keys: int) -> None:
        """Writes every pending step's constrained values and losses into ``store``.

        Raises whatever a transform raises; the pending steps are dropped first (their rows keep NaN).
        """
        pending, self.pending = self.pending, []
        if not pending:
            return
        self.written += 1  # rows already read into a cached frame change now
        by_layout: dict[int, list] = {}
        for entry in pending:
            by_layout.setdefault(entry[1], []).append(entry)
        for layout, items in by_layout.items():
            nrows = items[0][4]
            rows = (np.array([e[0] for e in items], np.int64)[:, None] + np.arange(nrows)).reshape(-1)
            X = np.stack([e[2] for e in items])
            vals = np.full((len(rows), n_keys), np.nan)
            with torch.no_grad():
                for pos, cols, constraint, device in self.layouts[layout]:
                    # on the parameter's device: its constraint's bounds live there (CPU values and CUDA
                    # bounds do not combine); the values leave the device only through to_numpy
                    raw = torch.from_numpy(np.ascontiguousarray(X[:, pos].reshape(len(rows), len(cols))))
                    raw = raw.to(device)
                    v = constraint.transform(raw) if constraint is not None else raw
                    vals[:, cols] = to_numpy(v)
            store.set_values(rows, vals)
            outs = [e[3] for e in items]
            if outs[0] is not None:
                store.set_loss(rows, np.concatenate([member_loss(nrows, o) for o in outs]))
