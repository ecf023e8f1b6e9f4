"""Reading every key of every member of a model being fit, and the records of the groups and runs being traced."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from gpviz.values.keys import expand_members, param_info, parse_key, resolve
from gpviz.values.tensors import to_numpy

class ValueReader:
    """Reads the constrained values of all keys of one model, all members, in a few tensor ops.

    Values are grouped by parameter so one ``constraint.transform`` serves all of a
    parameter's keys; the result is cached on the parameters' version counters.
    """

    def __init__(self, model, keys, columns, batch_shape: torch.Size):
        self.batch = torch.Size(batch_shape)
        self.n = max(int(self.batch.numel()), 1)
        self.n_columns = len(columns)
        groups: dict[tuple[str, str], list] = {}
        for key, col in zip(keys, columns):
            path, name, index = parse_key(key)
            groups.setdefault((path, name), []).append((col, index))
        self.parts = []
        for (path, name), items in groups.items():
            info = param_info(resolve(model, path), name, self.batch)
            flat = [info.flat_index(index) for _, index in items]
            self.parts.append((info, torch.tensor(flat, dtype=torch.long), np.array([c for c, _ in items])))
        self._cache_version = None
        self._cache = None

    def version(self):
        return tuple(p[0].raw._version for p in self.parts)

    def read(self, n_columns: int) -> np.ndarray:
        """``members x n_columns`` float64 (NaN in columns this model has no key for)."""
        v = self.version()
        if v == self._cache_version and self._cache is not None:
            return self._cache
        out = np.full((self.n, n_columns), np.nan)
        with torch.no_grad():
            for info, flat, cols in self.parts:
                out[:, cols] = to_numpy(self._gather(info, info.value(), flat))
        self._cache_version, self._cache = v, out
        return out

    def _gather(self, info, val: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """``members x len(flat)``: the keyed elements of a tensor shaped like the raw parameter."""
        members = tuple(val.shape[: info.member_ndim])
        picked = val.reshape(members + (-1,)).index_select(-1, flat.to(val.device))
        return expand_members(picked, info.member_ndim, self.batch, f"parameter {info.name!r}").reshape(
            self.n, len(flat))

    def positions(self, parameters: dict) -> list | None:
        """Where each keyed element sits in BoTorch's flat state vector of ``parameters``
        (the parameters' views concatenated in order): ``[(members x cols positions, cols,
        constraint, device)]`` (the device the parameter and its constraint's bounds live on),
        or None if a keyed parameter is not optimized."""
        offsets, off = {}, 0
        for p in parameters.values():
            offsets[id(p)] = off
            off += p.numel()
        parts = []
        for info, flat, cols in self.parts:
            o = offsets.get(id(info.raw))
            if o is None:
                return None
            index = torch.arange(info.raw.numel()).reshape(info.raw.shape)
            parts.append((to_numpy(self._gather(info, index, flat), np.int64) + o, cols, info.constraint,
                          info.raw.device))
        return parts


@dataclass
class Group:
    """One model being fit: the model itself, or one sub-model of a ModelListGP."""

    mll: object
    model: object
    expr: object
    reader: ValueReader | None
    offset: int
    n: int
    pending: torch.Tensor | None = None  # the last evaluation's output (detached)
    pending_failed: bool = False
    fresh: bool = False                  # an evaluation not yet committed as a joint step
    evals: int = 0                       # evaluations counted at the MLL (context form)


@dataclass
class Segment:
    """One optimizer run of one group: an attempt."""

    group: int
    attempt: int | None
    i_attempt: int
    base: int               # i_timestep of step 1
    eval_start: int         # evaluations counted (context form) before the run
    last_step: int = 0
    member_steps: dict = field(default_factory=dict)
    max_evaluation: float = 0.0


@dataclass
class BatchedRun:
    """A per-member batched L-BFGS-B run seen by the context form: which member owns which state.

    scipy hands the marker the member's live ``OptimizeResult`` whose ``x`` *is* that
    member's state array, so after one stack walk per run a dict lookup finds the member.
    """

    group: int | None
    attempt: int | None
    states: list
    index: dict
    layout: int | None = None  # index into the tracer's layouts: raw state -> key columns


# --------------------------------------------------------------------------------------
# Zero-cost iteration markers for the context-manager form
