"""The trace's frame store: one row per member per committed optimizer step, and the dense frames made from it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gpviz.values.columns import ACTIVE, ELAPSED, I_ATTEMPT, I_MODEL, I_TIMESTEP, LOSS, STEP

class EventStore:
    """Append-only event store: one row per member per committed optimizer step.

    Rows go into preallocated chunks of ``chunk`` rows; appending never copies
    earlier rows, so memory grows linearly with the number of steps.
    """

    INT_FIELDS = ("t", "seg", "step", "member")
    FLOAT_FIELDS = ("loss", "elapsed", "evaluation")

    def __init__(self, n_values: int, chunk: int = 4096):
        self.n_values = int(n_values)
        self.chunk = int(chunk)
        self._chunks: list[dict[str, np.ndarray]] = []
        self._fill = 0  # rows used in the last chunk
        self.n = 0

    def _new_chunk(self) -> None:
        c = {k: np.empty(self.chunk, np.int32) for k in self.INT_FIELDS}
        c.update({k: np.full(self.chunk, np.nan) for k in self.FLOAT_FIELDS})
        c["values"] = np.full((self.chunk, self.n_values), np.nan)  # NaN until written
        self._chunks.append(c)
        self._fill = 0

    def append(self, t: int, seg: int, step: int, members, loss, elapsed: float, evaluation: float,
               values: np.ndarray) -> None:
        """Adds one row per member; ``loss`` and ``values`` (``members x n_values``) align with ``members``."""
        members = np.atleast_1d(np.asarray(members, np.int32))
        loss = np.broadcast_to(np.asarray(loss, np.float64), members.shape)
        values = np.asarray(values, np.float64).reshape(len(members), self.n_values)
        done = 0
        while done < len(members):
            if not self._chunks or self._fill == self.chunk:
                self._new_chunk()
            c = self._chunks[-1]
            k = min(len(members) - done, self.chunk - self._fill)
            sl = slice(self._fill, self._fill + k)
            c["t"][sl], c["seg"][sl], c["step"][sl] = t, seg, step
            c["member"][sl] = members[done:done + k]
            c["loss"][sl] = loss[done:done + k]
            c["elapsed"][sl], c["evaluation"][sl] = elapsed, evaluation
            c["values"][sl] = values[done:done + k]
            self._fill += k
            done += k
            self.n += k

    def append_one(self, t: int, seg: int, step: int, member: int, loss: float, elapsed: float,
                   evaluation: float, values: np.ndarray | None) -> None:
        """Adds a single row (the per-member batched path calls this once per member step)."""
        if not self._chunks or self._fill == self.chunk:
            self._new_chunk()
        c = self._chunks[-1]
        k = self._fill
        c["t"][k] = t
        c["seg"][k] = seg
        c["step"][k] = step
        c["member"][k] = member
        c["loss"][k] = loss
        c["elapsed"][k] = elapsed
        c["evaluation"][k] = evaluation
        if values is not None:  # else filled later by set_values (deferred transform)
            c["values"][k] = values
        self._fill = k + 1
        self.n += 1

    def append_block(self, t: int, seg: int, step: int, member_start: int, n: int, elapsed: float,
                     evaluation: float) -> None:
        """Adds rows for members ``member_start .. member_start + n - 1``; loss and values come later."""
        done = 0
        while done < n:
            if not self._chunks or self._fill == self.chunk:
                self._new_chunk()
            c = self._chunks[-1]
            k = min(n - done, self.chunk - self._fill)
            sl = slice(self._fill, self._fill + k)
            c["t"][sl], c["seg"][sl], c["step"][sl] = t, seg, step
            c["member"][sl] = np.arange(member_start + done, member_start + done + k)
            c["elapsed"][sl], c["evaluation"][sl] = elapsed, evaluation
            self._fill += k
            done += k
            self.n += k

    def set_loss(self, rows: np.ndarray, loss: np.ndarray) -> None:
        """Writes the losses of earlier appended rows."""
        self._scatter("loss", rows, loss)

    def set_values(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Writes the value rows of earlier appended rows (numbers from :attr:`n` order)."""
        self._scatter("values", rows, values)

    def _scatter(self, column: str, rows: np.ndarray, data: np.ndarray) -> None:
        """``column[rows] = data`` across the chunks the rows fall in."""
        rows = np.asarray(rows, np.int64)
        which, at = np.divmod(rows, self.chunk)
        for ci in np.unique(which):
            sel = which == ci
            self._chunks[int(ci)][column][at[sel]] = data[sel]

    @property
    def nbytes(self) -> int:
        """Bytes held by the chunks."""
        return sum(a.nbytes for c in self._chunks for a in c.values())

    def arrays(self) -> dict[str, np.ndarray]:
        """The rows recorded so far, one array per field (copies)."""
        if not self._chunks:
            out = {k: np.empty(0, np.int32) for k in self.INT_FIELDS}
            out.update({k: np.empty(0, np.float64) for k in self.FLOAT_FIELDS})
            out["values"] = np.empty((0, self.n_values), np.float64)
            return out
        parts = [{k: a[: (self._fill if i == len(self._chunks) - 1 else self.chunk)] for k, a in c.items()}
                 for i, c in enumerate(self._chunks)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def dense_frames(ev: dict[str, np.ndarray], n_members: int, keys, initial: np.ndarray | None,
                 seg_attempt: np.ndarray) -> pd.DataFrame:
    """Events -> the wide frame: every member at every timestep.

    A member that did not step at a timestep (converged, or a sub-model not being
    fit yet) keeps its last recorded values and loss there, with ``active`` False;
    before its first step it shows ``initial`` values and a NaN loss.

    Args:
        ev: From :meth:`EventStore.arrays`.
        n_members: Members of the model (all groups).
        keys: Parameter keys (columns of ``ev["values"]``).
        initial: ``n_members x len(keys)`` values before the first step, or None (NaN).
        seg_attempt: i_attempt of each segment.
    """
    keys = list(keys)
    n_ev = len(ev["t"])
    if n_ev == 0:
        df = pd.DataFrame({I_TIMESTEP: np.empty(0, np.int32), I_ATTEMPT: np.empty(0, np.int32),
                           STEP: np.empty(0, np.int32), I_MODEL: np.empty(0, np.int32),
                           LOSS: np.empty(0), ACTIVE: np.empty(0, bool), ELAPSED: np.empty(0)})
        for k in keys:
            df[k] = np.empty(0)
        return df
    T = int(ev["t"].max()) + 1
    M = int(n_members)
    idx = np.full((T, M), -1, np.int64)
    idx[ev["t"], ev["member"]] = np.arange(n_ev)
    active = idx >= 0
    # per member, events are appended in step order, so a running max forward-fills
    ff = np.maximum.accumulate(idx, axis=0)
    # the segment (and so step and attempt) of each timestep
    t_seg = np.full(T, -1, np.int64)
    t_step = np.zeros(T, np.int64)
    t_elapsed = np.full(T, np.nan)
    t_seg[ev["t"]] = ev["seg"]
    t_step[ev["t"]] = ev["step"]
    np.fmax.at(t_elapsed, ev["t"], ev["elapsed"])
    flat = ff.reshape(-1)
    have = flat >= 0
    n_rows = T * M
    values = np.full((n_rows, len(keys)), np.nan)
    values[have] = ev["values"][flat[have]]
    loss = np.full(n_rows, np.nan)
    loss[have] = ev["loss"][flat[have]]
    if initial is not None and (~have).any():
        members = np.tile(np.arange(M), T)
        values[~have] = initial[members[~have]]
    elapsed = np.repeat(t_elapsed, M)
    own = idx.reshape(-1) >= 0
    elapsed[own] = ev["elapsed"][idx.reshape(-1)[own]]
    seg = np.repeat(t_seg, M)
    attempt = np.where(seg >= 0, np.asarray(seg_attempt, np.int64)[np.clip(seg, 0, None)], 0)
    data = {
        I_TIMESTEP: np.repeat(np.arange(T, dtype=np.int32), M),
        I_ATTEMPT: attempt.astype(np.int32),
        STEP: np.repeat(t_step, M).astype(np.int32),
        I_MODEL: np.tile(np.arange(M, dtype=np.int32), T),
        LOSS: loss,
        ACTIVE: active.reshape(-1),
        ELAPSED: elapsed,
    }
    df = pd.DataFrame(data)
    if keys:
        df = pd.concat([df, pd.DataFrame(values, columns=keys)], axis=1)
    return df


# --------------------------------------------------------------------------------------
# Reading every key of every member at once
