"""Reading every key of every member of a model being fit, and the records of what is traced: the groups
(``bind``: an MLL's groups, keys and starting values), the runs (``Timeline``: which optimizer run, attempt
and timestep a step belongs to)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from gpytorch.mlls import MarginalLogLikelihood, SumMarginalLogLikelihood

from gpviz.errors import InputError
from gpviz.models.expr import ModelExpr, model_expr
from gpviz.models.families import model_batch_shape
from gpviz.trace.store import EventStore
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
        self._cache_version: tuple | None = None
        self._cache: np.ndarray | None = None

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

    mll: MarginalLogLikelihood
    model: torch.nn.Module
    expr: ModelExpr | None          # None: a model gpviz cannot draw (its loss is still traced)
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
class Timeline:
    """The optimizer runs recorded so far and where the next step goes: the recording's state machine.

    A new :class:`Segment` starts when another group steps, another attempt of
    BoTorch's fallback loop begins, a member's step count restarts, or an optimizer
    run was announced (``run_start``, the evaluation count when it began).
    """

    segments: list = field(default_factory=list)
    current: Segment | None = None
    next_t: int = 0                 # the first timestep not recorded yet
    evals: int = 0                  # evaluations counted at the MLL (context form), all groups
    run_start: int | None = None
    t0: float | None = None         # time.perf_counter() when tracing began

    def segment(self, g: int, attempt: int | None, restart: bool) -> Segment:
        """The segment a step of group ``g`` in ``attempt`` belongs to (a new one where a run starts)."""
        seg = self.current
        new = (seg is None or seg.group != g or (attempt is not None and attempt != seg.attempt) or restart
               or (self.run_start is not None))
        if not new and seg is not None:  # (not new: there is a current segment)
            return seg
        if attempt is not None:
            i_attempt = int(attempt) - 1
        elif seg is not None and seg.group == g:
            i_attempt = seg.i_attempt + 1
        else:
            i_attempt = 0
        start = self.run_start if self.run_start is not None else self.evals
        seg = Segment(g, attempt, i_attempt, self.next_t, start)
        self.run_start = None
        self.segments.append(seg)
        self.current = seg
        return seg

    def reached(self, t: int) -> None:
        """Timestep ``t`` holds a committed step."""
        if t >= self.next_t:
            self.next_t = t + 1

    def start_clock(self) -> None:
        """Starts the elapsed-time clock, once."""
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since tracing began."""
        return time.perf_counter() - (self.t0 if self.t0 is not None else time.perf_counter())


@dataclass
class Binding:
    """The MLL a recorder traces and what was read from it when bound."""

    mll: MarginalLogLikelihood
    groups: list[Group]     # one Group per model fit (the model, or each sub-model of a ModelListGP)
    by_id: dict[int, int | None]  # id(an MLL being fit) -> its group (None: the sum of a model list's MLLs)
    keys: tuple[str, ...]   # every group's keys, in first-seen order: the value columns
    expr: ModelExpr | None  # the first drawable group's expression
    store: EventStore
    initial: np.ndarray     # members x keys, before the first step


def bind(mll, feature_names) -> Binding:
    """Reads an MLL's groups, keys and starting values.

    Raises:
        InputError: if ``mll`` is not a gpytorch ``MarginalLogLikelihood``.
    """
    if not isinstance(mll, MarginalLogLikelihood):
        raise InputError(f"FitTracer expects a gpytorch MarginalLogLikelihood (e.g. ExactMarginalLogLikelihood),"
                         f" got {type(mll).__module__}.{type(mll).__name__}")
    subs = list(mll.mlls) if isinstance(mll, SumMarginalLogLikelihood) and hasattr(mll, "mlls") else [mll]
    exprs: list[ModelExpr | None] = []
    for s in subs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exprs.append(model_expr(s.model, feature_names))
        except Exception:  # a model gpviz cannot draw: its loss is still traced
            exprs.append(None)
    keys: list[str] = []
    for e in exprs:
        for k in (e.keys if e is not None else ()):
            if k not in keys:
                keys.append(k)
    col = {k: i for i, k in enumerate(keys)}
    offset, groups = 0, []
    for s, e in zip(subs, exprs):
        batch = torch.Size(e.batch_shape) if e is not None else model_batch_shape(s.model)
        n = max(int(batch.numel()), 1)
        reader = ValueReader(s.model, e.keys, [col[k] for k in e.keys], batch) if e is not None else None
        groups.append(Group(s, s.model, e, reader, offset, n))
        offset += n
    by_id: dict[int, int | None] = {id(g.mll): i for i, g in enumerate(groups)}
    by_id.setdefault(id(mll), 0 if len(groups) == 1 else None)
    initial = np.vstack([read_group(g, len(keys)) for g in groups])
    return Binding(mll, groups, by_id, tuple(keys), next((e for e in exprs if e is not None), None),
                   EventStore(len(keys)), initial)


def read_group(grp: Group, n_keys: int) -> np.ndarray:
    """A group's current values, ``members x keys`` (NaN for a model gpviz cannot draw)."""
    if grp.reader is None:
        return np.full((grp.n, n_keys), np.nan)
    return grp.reader.read(n_keys)


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
