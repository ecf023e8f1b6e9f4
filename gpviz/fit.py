"""Fit tracer: every optimizer step of every batch member of a ``fit_gpytorch_mll`` call, as frames.

Two forms record the same frames:

* ``with gpviz.trace_fit(mll) as tracer: fit_gpytorch_mll(mll)`` records at the
  evaluations the fit makes anyway. For the duration it wraps the MLL instance's
  ``forward`` (gpytorch's ``Module.__call__`` calls ``forward`` directly, so torch
  hooks would not fire) and passes a zero-cost iteration marker to BoTorch's
  three minimizers (``minimize_with_timeout``, ``fmin_l_bfgs_b_batched``,
  ``torch_minimize``); both are restored in a ``finally``. No closure evaluation is
  added: BoTorch's own callback re-evaluates the closure on the joint scipy path,
  this marker does not.
* ``tracer = gpviz.FitTracer(mll)`` and ``optimizer_kwargs={"callback": tracer.callback}``
  (also through ``batch_cross_validation(..., fit_args=...)``, where ``mll`` may be
  left out: the tracer binds to the MLL being fit). ``.callback`` accepts BoTorch's
  ``cb(parameters, result)`` on the joint path and scipy's ``cb(xk)`` on the
  per-member batched L-BFGS-B path.

Which member called back, which attempt of ``_fit_fallback`` is running and how
many evaluations a member has had are read from the optimizer's own stack frames
(the batched path's callback carries no member index). Everything the tracer does
is contained: its own errors are warned once (``TracerWarning``) and never reach
the fit.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from gpviz.errors import InputError, TracerWarning
from gpviz.keys import param_info, parse_key, resolve

I_TIMESTEP, I_ATTEMPT, STEP, I_MODEL, LOSS, ACTIVE, ELAPSED = (
    "i_timestep", "i_attempt", "step", "i_model", "loss", "active", "elapsed")
META_COLUMNS = (I_TIMESTEP, I_ATTEMPT, STEP, I_MODEL, LOSS, ACTIVE, ELAPSED)

#: The player advances one step per 200 ms: 300 timesteps play in one minute.
MAX_TIMESTEPS = 300
#: Budget for the frame data inlined in an animated page (base64 adds a third).
MAX_PAGE_DATA_BYTES = 6_000_000
#: At most this many live updates per second in a notebook.
LIVE_UPDATES_PER_SECOND = 4.0


# --------------------------------------------------------------------------------------
# Where are we in BoTorch's fit? (code objects of the functions whose frames we read)
# --------------------------------------------------------------------------------------

def _code(module: str, name: str):
    try:
        mod = __import__(module, fromlist=[name])
        return getattr(mod, name).__code__
    except Exception:  # another BoTorch/scipy version: that piece of context is unknown
        return None


_FIT_FALLBACK_CODE = _code("botorch.fit", "_fit_fallback")
_BATCHED_LBFGSB_CODE = _code("botorch.optim.batched_lbfgs_b", "_minimize_lbfgsb")
_SCIPY_LBFGSB_CODE = _code("scipy.optimize._lbfgsb_py", "_minimize_lbfgsb")
_FIT_CODES = {c for c in (_code("botorch.optim.fit", "fit_gpytorch_mll_scipy"),
                          _code("botorch.optim.fit", "fit_gpytorch_mll_torch"),
                          _code("botorch.optim.fit", "_fit_gpytorch_mll_scipy_independent")) if c is not None}


@dataclass
class _FitContext:
    """What the stack says about the optimizer call in progress."""

    mll: object = None
    attempt: int | None = None
    member: int | None = None        # batched L-BFGS-B: the member calling back
    member_loss: float | None = None
    member_step: int | None = None
    member_evals: int | None = None
    scipy_step: int | None = None    # joint scipy L-BFGS-B: iterations and evaluations so far
    scipy_evals: int | None = None
    states: list | None = None       # batched L-BFGS-B: the per-member optimizer states


def _fit_context(max_depth: int = 80) -> _FitContext:
    ctx = _FitContext()
    f = sys._getframe(1)
    depth = 0
    while f is not None and depth < max_depth:
        code = f.f_code
        if code is _BATCHED_LBFGSB_CODE and ctx.member is None:
            loc = f.f_locals
            i, states = loc.get("i"), loc.get("states")
            if i is not None and states is not None:
                s = states[int(i)]
                ctx.member = int(i)
                ctx.member_loss = float(s.f)
                ctx.member_step = int(s.n_iterations)
                ctx.member_evals = int(s.fun_calls)
                ctx.states = states
        elif code is _SCIPY_LBFGSB_CODE and ctx.scipy_step is None:
            loc = f.f_locals
            ctx.scipy_step = loc.get("n_iterations")
            ctx.scipy_evals = getattr(loc.get("sf"), "nfev", None)
        elif code is _FIT_FALLBACK_CODE:
            loc = f.f_locals
            ctx.attempt = loc.get("attempt")
            if ctx.mll is None:
                ctx.mll = loc.get("mll")
            break
        elif code in _FIT_CODES and ctx.mll is None:
            ctx.mll = f.f_locals.get("mll")
        f = f.f_back
        depth += 1
    return ctx


# --------------------------------------------------------------------------------------
# Storage: chunked numpy arrays, O(steps), no per-step DataFrame work
# --------------------------------------------------------------------------------------

class _Recorder:
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
                   evaluation: float, values: np.ndarray) -> None:
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
        ev: From :meth:`_Recorder.arrays`.
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
# --------------------------------------------------------------------------------------

class _Reader:
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
                out[:, cols] = self._gather(info, info.value(), flat).detach().to("cpu", torch.float64).numpy()
        self._cache_version, self._cache = v, out
        return out

    def _gather(self, info, val: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """``members x len(flat)``: the keyed elements of a tensor shaped like the raw parameter."""
        members = tuple(val.shape[: info.member_ndim])
        picked = val.reshape(members + (-1,)).index_select(-1, flat.to(val.device))
        picked = picked.reshape(members + (1,) * (len(self.batch) - len(members)) + (len(flat),))
        return picked.expand(tuple(self.batch) + (len(flat),)).reshape(self.n, len(flat))

    def positions(self, parameters: dict) -> list | None:
        """Where each keyed element sits in BoTorch's flat state vector of ``parameters``
        (the parameters' views concatenated in order): ``[(members x cols positions, cols,
        constraint)]``, or None if a keyed parameter is not optimized."""
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
            parts.append((self._gather(info, index, flat).numpy() + o, cols, info.constraint))
        return parts


@dataclass
class _Group:
    """One model being fit: the model itself, or one sub-model of a ModelListGP."""

    mll: object
    model: object
    expr: object
    reader: _Reader | None
    offset: int
    n: int
    pending: torch.Tensor | None = None  # the last evaluation's output (detached)
    pending_failed: bool = False
    fresh: bool = False                  # an evaluation not yet committed as a joint step
    evals: int = 0                       # evaluations counted at the MLL (context form)


@dataclass
class _Segment:
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
class _BatchedRun:
    """A per-member batched L-BFGS-B run seen by the context form: which member owns which state.

    scipy hands the marker the member's live ``OptimizeResult`` whose ``x`` *is* that
    member's state array, so after one stack walk per run a dict lookup finds the member.
    """

    group: int | None
    attempt: int | None
    states: list
    index: dict
    layout: int | None = None  # index into FitTracer._layouts: raw state -> key columns


# --------------------------------------------------------------------------------------
# Zero-cost iteration markers for the context-manager form
# --------------------------------------------------------------------------------------

_PATCH_LOCK = threading.RLock()
_ACTIVE: list["FitTracer"] = []
_ORIGINALS: dict[str, tuple[object, str, object]] = {}


def _active_for(ctx: _FitContext, fresh_only: bool = True) -> list["FitTracer"]:
    """Tracers of the MLL being fit; outside a BoTorch fit (no MLL on the stack), those whose MLL
    was just evaluated (an acquisition optimization inside the ``with`` block is not a fit step)."""
    out = []
    for tr in list(_ACTIVE):
        if ctx.mll is not None:
            if tr._group_of(ctx.mll) is not None:
                out.append(tr)
        elif fresh_only and tr._has_fresh():
            out.append(tr)
    return out


_LOCAL = threading.local()  # per thread: tracers of each optimizer run in progress (innermost last)


def _runs() -> list[list["FitTracer"]]:
    runs = getattr(_LOCAL, "runs", None)
    if runs is None:
        runs = _LOCAL.runs = []
    return runs


def _begin_run(closure=None) -> list["FitTracer"]:
    """An optimizer run starts: one stack walk finds the MLL and attempt, for the whole run."""
    ctx = _fit_context()
    mine = _active_for(ctx, fresh_only=False)
    for tr in list(_ACTIVE):
        tr._batched_run = None
        tr._run_closure = closure
    for tr in mine:
        tr._begin_run(ctx)
    return mine


@contextlib.contextmanager
def _run(closure=None):
    mine = _begin_run(closure)
    runs = _runs()
    runs.append(mine)
    try:
        yield
    finally:
        runs.pop()


def _current() -> list["FitTracer"]:
    runs = _runs()
    return runs[-1] if runs else []


def _mark_scipy(xk=None) -> None:
    for tr in _current():
        tr._guard(tr._on_joint_step, tr._run_ctx, None, xk)


def _mark_batched(res) -> None:
    for tr in _current():
        tr._guard(tr._on_batched_marker, res)


def _mark_torch(parameters, result) -> None:
    for tr in _current():
        tr._guard(tr._on_joint_step, tr._run_ctx, result, None, parameters)


def _chain_x(user_cb):
    """A scipy-style ``cb(xk)`` that marks the step, then calls the user's callback (if any)."""
    def cb(xk):
        _mark_scipy(np.copy(xk))  # scipy reuses its x buffer
        if user_cb is not None:
            return user_cb(xk)
        return None
    return cb


def _patched_minimize_with_timeout(*args, **kwargs):
    orig = _ORIGINALS["minimize_with_timeout"][2]
    try:
        bound = inspect.signature(orig).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
    except TypeError:  # let the original report its own argument error
        return orig(*args, **kwargs)
    if arguments.get("method") not in (None, "L-BFGS-B"):
        return orig(*args, **kwargs)  # other scipy methods: per-evaluation accounting only
    arguments["callback"] = _chain_x(arguments.get("callback"))
    with _run(arguments.get("fun")):
        return orig(**arguments)


def _patched_fmin_l_bfgs_b_batched(*args, **kwargs):
    orig = _ORIGINALS["fmin_l_bfgs_b_batched"][2]
    try:  # scipy's private helper: if a scipy release moves it, run the fit untouched
        from scipy.optimize._optimize import _wrap_callback
    except ImportError:
        return orig(*args, **kwargs)

    user = kwargs.get("callback")
    wrapped_user = _wrap_callback(user) if user is not None else None

    def cb(intermediate_result):  # this exact parameter name makes scipy pass the live OptimizeResult
        _mark_batched(intermediate_result)
        if wrapped_user is not None:
            return wrapped_user(intermediate_result)
        return None

    kwargs["callback"] = cb
    with _run(kwargs.get("func", args[0] if args else None)):
        return orig(*args, **kwargs)


def _patched_torch_minimize(*args, **kwargs):
    orig = _ORIGINALS["torch_minimize"][2]
    user = kwargs.get("callback")

    def cb(parameters, result):
        _mark_torch(parameters, result)
        if user is not None:
            return user(parameters, result)
        return None

    kwargs["callback"] = cb
    with _run():
        return orig(*args, **kwargs)


_PATCHES = (
    ("minimize_with_timeout", "botorch.optim.core", _patched_minimize_with_timeout),
    ("fmin_l_bfgs_b_batched", "botorch.optim.batched_lbfgs_b", _patched_fmin_l_bfgs_b_batched),
    ("torch_minimize", "botorch.optim.fit", _patched_torch_minimize),
)


def _install(tracer: "FitTracer") -> None:
    with _PATCH_LOCK:
        if not _ACTIVE:
            for name, module, patched in _PATCHES:
                try:
                    mod = __import__(module, fromlist=[name])
                    _ORIGINALS[name] = (mod, name, getattr(mod, name))
                    setattr(mod, name, patched)
                except Exception:  # an older/newer BoTorch: that path falls back to per-evaluation frames
                    continue
        _ACTIVE.append(tracer)


def _uninstall(tracer: "FitTracer") -> None:
    with _PATCH_LOCK:
        if tracer in _ACTIVE:
            _ACTIVE.remove(tracer)
        if not _ACTIVE:
            for name, (mod, attr, orig) in list(_ORIGINALS.items()):
                setattr(mod, attr, orig)
            _ORIGINALS.clear()


# --------------------------------------------------------------------------------------
# The tracer
# --------------------------------------------------------------------------------------

class FitTracer:
    """Records every optimizer step of every batch member of a model fit.

    Use it as a context manager (``gpviz.trace_fit(mll)``; no extra model
    evaluations) or pass :attr:`callback` to ``fit_gpytorch_mll`` through
    ``optimizer_kwargs={"callback": tracer.callback}``.

    Args:
        mll: The marginal log likelihood that will be fit. May be ``None`` in the
            callback form (e.g. inside ``batch_cross_validation``): the tracer then
            binds to the MLL being fit at the first step.
        feature_names: Names of the input columns, for the expression.

    Attributes:
        keys: Parameter keys recorded (columns of :attr:`frames`).
        error: The tracer's own first exception, if it hit one (the fit went on).
    """

    def __init__(self, mll=None, feature_names=None):
        self._mll = None
        self._feature_names = feature_names
        self._groups: list[_Group] = []
        self._by_id: dict[int, int] = {}
        self.keys: tuple[str, ...] = ()
        self.expr = None
        self._rec: _Recorder | None = None
        self._segments: list[_Segment] = []
        self._seg: _Segment | None = None
        self._next_t = 0
        self._evals = 0
        self._run_start: int | None = None
        self._t0: float | None = None
        self._initial: np.ndarray | None = None
        self._frames_cache: tuple[int, pd.DataFrame] | None = None
        self._in_context = False
        self._restore: list = []
        self._warned = False
        self._disabled = False
        self.error: BaseException | None = None
        self._live = None
        self._live_last = 0.0
        self._foreign_warned = False
        self._batched_run: _BatchedRun | None = None
        self._run_closure = None
        self._run_ctx = _FitContext()
        self._joint_layout_key = None
        self._joint_layout_index = None
        self._layouts: list = []
        self._raw_pending: list = []  # (row, layout index, raw state copy): transformed in bulk later
        if mll is not None:
            self._bind(mll)

    # ----- binding -------------------------------------------------------------------

    def _bind(self, mll) -> None:
        from gpytorch.mlls import MarginalLogLikelihood, SumMarginalLogLikelihood

        if not isinstance(mll, MarginalLogLikelihood):
            raise InputError(f"FitTracer expects a gpytorch MarginalLogLikelihood (e.g. ExactMarginalLogLikelihood),"
                             f" got {type(mll).__module__}.{type(mll).__name__}")
        from gpviz.model import model_batch_shape, model_expr

        subs = list(mll.mlls) if isinstance(mll, SumMarginalLogLikelihood) and hasattr(mll, "mlls") else [mll]
        exprs = []
        for s in subs:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    exprs.append(model_expr(s.model, self._feature_names))
            except Exception:  # a model gpviz cannot draw: its loss is still traced
                exprs.append(None)
        keys: list[str] = []
        for e in exprs:
            for k in (e.keys if e is not None else ()):
                if k not in keys:
                    keys.append(k)
        self._mll = mll
        self.keys = tuple(keys)
        self.expr = next((e for e in exprs if e is not None), None)
        col = {k: i for i, k in enumerate(keys)}
        offset = 0
        self._groups = []
        for s, e in zip(subs, exprs):
            batch = torch.Size(e.batch_shape) if e is not None else model_batch_shape(s.model)
            n = max(int(batch.numel()), 1)
            reader = _Reader(s.model, e.keys, [col[k] for k in e.keys], batch) if e is not None else None
            self._groups.append(_Group(s, s.model, e, reader, offset, n))
            offset += n
        self._by_id = {id(g.mll): i for i, g in enumerate(self._groups)}
        self._by_id.setdefault(id(mll), 0 if len(self._groups) == 1 else None)
        self._rec = _Recorder(len(keys))
        self._raw_pending, self._layouts, self._batched_run = [], [], None
        self._joint_layout_key = self._joint_layout_index = None
        self._initial = np.vstack([self._read(i) for i in range(len(self._groups))])

    @property
    def n_members(self) -> int:
        """Members traced: batch members, or sub-models of a ModelListGP."""
        return sum(g.n for g in self._groups)

    def _group_of(self, mll) -> int | None:
        return self._by_id.get(id(mll)) if mll is not None else None

    def _has_fresh(self) -> bool:
        return any(g.fresh for g in self._groups)

    def _read(self, g: int) -> np.ndarray:
        grp = self._groups[g]
        if grp.reader is None:
            return np.full((grp.n, len(self.keys)), np.nan)
        return grp.reader.read(len(self.keys))

    # ----- containment -----------------------------------------------------------------

    def _guard(self, fn, *args):
        """Runs a recording step; the tracer's own exceptions never reach the fit."""
        if self._disabled:
            return None
        try:
            return fn(*args)
        except Exception as e:  # contained by design: a tracer bug must not abort the fit
            self._fail(e)
            return None

    def _fail(self, e: BaseException) -> None:
        self._disabled = True
        self.error = e
        if not self._warned:
            self._warned = True
            warnings.warn(f"gpviz fit tracer stopped recording after its own error ({type(e).__name__}: {e}); "
                          f"the fit continues untouched, {self._rec.n if self._rec else 0} rows were kept",
                          TracerWarning, stacklevel=3)

    # ----- context-manager form ----------------------------------------------------------

    def __enter__(self) -> "FitTracer":
        if self._mll is None:
            raise InputError("trace_fit needs the MLL to trace: gpviz.trace_fit(mll)")
        if self._in_context:
            raise InputError("this FitTracer is already tracing (nested `with` on the same tracer)")
        self._in_context = True
        if self._t0 is None:
            self._t0 = time.perf_counter()
        for i, g in enumerate(self._groups):
            self._wrap_forward(i, g)
        _install(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            _uninstall(self)
        finally:
            for mll, had, old in reversed(self._restore):
                if had:
                    mll.__dict__["forward"] = old
                else:
                    mll.__dict__.pop("forward", None)
            self._restore = []
            self._in_context = False
            for g in self._groups:
                g.pending = None
            if self._live is not None:
                self._guard(self._finish_live)
        return False  # exceptions in the fit (KeyboardInterrupt too) propagate; frames stay

    def _wrap_forward(self, i: int, g: _Group) -> None:
        mll = g.mll
        had = "forward" in mll.__dict__
        old = mll.__dict__.get("forward")
        orig = mll.forward  # bound method (or an instance attribute already there)
        tracer = self

        def forward(*args, **kwargs):
            try:
                out = orig(*args, **kwargs)
            except BaseException:
                if not tracer._disabled:
                    g.pending, g.pending_failed, g.fresh = None, True, True
                    g.evals += 1
                    tracer._evals += 1
                raise
            if not tracer._disabled:
                try:
                    g.pending = out.detach() if isinstance(out, torch.Tensor) else None
                    g.pending_failed, g.fresh = False, True
                    g.evals += 1
                    tracer._evals += 1
                except Exception as e:  # contained
                    tracer._fail(e)
            return out

        forward.__wrapped__ = orig
        mll.__dict__["forward"] = forward
        self._restore.append((mll, had, old))

    def _begin_run(self, ctx: _FitContext) -> None:
        self._run_start = self._evals
        self._run_ctx = ctx

    # ----- callback form -------------------------------------------------------------------

    def callback(self, *args, **kwargs):
        """Optimizer callback for ``optimizer_kwargs={"callback": tracer.callback}``.

        Accepts BoTorch's ``cb(parameters, result)`` (joint path: single models,
        MultiTaskGP, custom closures, ``fit_gpytorch_mll_torch``) and scipy's
        ``cb(xk)`` (per-member batched L-BFGS-B of batched models). Inside the
        context-manager form it does nothing (that form already records).
        """
        if self._in_context or self._disabled:
            return None
        try:
            ctx = _fit_context()
            if self._mll is None:
                if ctx.mll is None:
                    raise InputError("FitTracer() without an MLL could not find the MLL being fit; "
                                     "pass it: FitTracer(mll)")
                self._bind(ctx.mll)
            if self._t0 is None:
                self._t0 = time.perf_counter()
            result = args[1] if len(args) >= 2 else kwargs.get("result")
            if result is not None and hasattr(result, "step") and hasattr(result, "fval"):
                self._on_joint_step(ctx, result)
            elif ctx.member is not None:
                self._on_member_step(ctx)
            else:
                self._on_joint_step(ctx, None)
        except Exception as e:  # contained by design
            self._fail(e)
        return None

    # ----- recording -------------------------------------------------------------------------

    def _resolve_group(self, ctx: _FitContext) -> int | None:
        g = self._group_of(ctx.mll)
        if g is not None:
            return g
        if ctx.mll is not None:
            if not self._foreign_warned and self._rec is not None and self._rec.n == 0 and len(self._groups) == 1 \
                    and not self._in_context:
                # FitTracer(mll) passed to a fit of another MLL (batch_cross_validation builds its own): follow it
                self._bind(ctx.mll)
                return 0
            return None
        pending = [i for i, grp in enumerate(self._groups) if grp.fresh]
        if len(pending) == 1:
            return pending[0]
        return 0 if len(self._groups) == 1 else None

    def _segment(self, g: int, attempt: int | None, restart: bool) -> _Segment:
        seg = self._seg
        new = (seg is None or seg.group != g or (attempt is not None and attempt != seg.attempt) or restart
               or (self._run_start is not None))
        if new:
            if attempt is not None:
                i_attempt = int(attempt) - 1
            elif seg is not None and seg.group == g:
                i_attempt = seg.i_attempt + 1
            else:
                i_attempt = 0
            start = self._run_start if self._run_start is not None else self._evals
            seg = _Segment(g, attempt, i_attempt, self._next_t, start)
            self._run_start = None
            self._segments.append(seg)
            self._seg = seg
        return seg

    def _elapsed(self) -> float:
        return time.perf_counter() - (self._t0 if self._t0 is not None else time.perf_counter())

    def _on_joint_step(self, ctx: _FitContext, result, x=None, parameters=None) -> None:
        """All members of a group took one (joint) optimizer step.

        In the context form the marker hands over the optimizer's state (scipy's copy of
        ``x``, or torch's live ``parameters``) and the last evaluation's output: both are
        kept as they are and turned into values and losses in bulk later.
        """
        g = self._resolve_group(ctx)
        if g is None:
            return
        grp = self._groups[g]
        if self._in_context and grp.pending is not None and (x is not None or parameters is not None):
            layout = self._joint_layout(g, parameters)
            if layout is not None:
                if x is None:
                    x = torch.cat([p.detach().reshape(-1) for p in parameters.values()]).to(
                        "cpu", torch.float64).numpy()
                self._joint_fast(g, grp, ctx, result, layout, np.asarray(x, np.float64))
                return
        step = int(result.step) if result is not None else (int(ctx.scipy_step) if ctx.scipy_step else None)
        seg = self._seg
        restart = bool(seg is not None and seg.group == g and step is not None and step <= seg.last_step
                       and self._run_start is None)
        seg = self._segment(g, ctx.attempt, restart)
        if step is None:
            step = seg.last_step + 1
        # loss per member: the evaluation at this point (context form), BoTorch's fval (one member)
        # or, for a batched model on the joint path in the callback form, a no-grad evaluation
        if self._in_context and grp.pending is not None:
            loss = self._member_loss(grp, grp.pending)
        elif result is not None and grp.n == 1:
            loss = np.array([float(result.fval)])
        elif self._in_context:
            loss = np.full(grp.n, np.nan)
        else:
            from botorch.optim.closures import get_loss_closure

            with torch.no_grad():
                loss = self._member_loss(grp, -get_loss_closure(grp.mll)())
        if self._in_context:
            evaluation = float(self._evals - seg.eval_start)
        elif ctx.scipy_evals is not None:
            evaluation = float(ctx.scipy_evals)
        elif result is not None and ctx.scipy_step is None:
            evaluation = float(step)  # torch_minimize: one evaluation per step
        else:
            evaluation = math.nan
        t = seg.base + step - 1
        values = self._read(g)
        self._rec.append(t, len(self._segments) - 1, step, np.arange(grp.offset, grp.offset + grp.n), loss,
                         self._elapsed(), evaluation, values)
        seg.last_step = max(seg.last_step, step)
        seg.max_evaluation = max(seg.max_evaluation, evaluation) if not math.isnan(evaluation) else seg.max_evaluation
        self._next_t = max(self._next_t, t + 1)
        grp.fresh = False
        self._after_commit()

    def _joint_layout(self, g: int, parameters) -> int | None:
        """The state layout of the current run (computed once per run)."""
        key = (g, id(parameters) if parameters is not None else id(self._run_closure))
        if self._joint_layout_key == key:
            return self._joint_layout_index
        params = parameters if parameters is not None else getattr(self._run_closure, "parameters", None)
        reader = self._groups[g].reader
        index = None
        if reader is not None and isinstance(params, dict):
            parts = reader.positions(params)
            if parts is not None:
                self._layouts.append(parts)
                index = len(self._layouts) - 1
        self._joint_layout_key, self._joint_layout_index = key, index
        return index

    def _joint_fast(self, g: int, grp: _Group, ctx: _FitContext, result, layout: int, x: np.ndarray) -> None:
        step = int(result.step) if result is not None else None
        seg = self._segment(g, ctx.attempt, False)
        if step is None:
            step = seg.last_step + 1
        t = seg.base + step - 1
        row = self._rec.n
        self._rec.append_block(t, len(self._segments) - 1, step, grp.offset, grp.n, self._elapsed(),
                               float(self._evals - seg.eval_start))
        self._raw_pending.append((row, layout, x, grp.pending, grp.n))
        if step > seg.last_step:
            seg.last_step = step
        if t >= self._next_t:
            self._next_t = t + 1
        grp.fresh = False
        if len(self._raw_pending) >= 2000:
            self._materialize()
        if self._live is not None:
            self._after_commit()

    def _on_batched_marker(self, res) -> None:
        """Context form, batched path: scipy's live result of one member's new iterate."""
        run = self._batched_run
        i = run.index.get(id(getattr(res, "x", None))) if run is not None else None
        if i is None:
            ctx = _fit_context()
            if ctx.member is None or ctx.states is None:
                raise RuntimeError("batched L-BFGS-B step without its optimizer frame (unknown BoTorch version)")
            g = self._group_of(ctx.mll) if ctx.mll is not None else self._resolve_group(ctx)
            run = _BatchedRun(g, ctx.attempt, ctx.states, {id(st.x): k for k, st in enumerate(ctx.states)})
            if g is not None:
                run.layout = self._layout(g, self._run_closure)
            self._batched_run = run
            i = ctx.member
        if run.group is None:
            return  # another MLL's fit
        st = run.states[i]
        if run.layout is None:
            self._commit_member(run.group, run.attempt, i, float(st.f), int(st.n_iterations), float(st.fun_calls))
            return
        # fast path: keep a copy of the member's raw state; constraint transforms run in bulk later
        row = self._rec.n
        self._commit_member(run.group, run.attempt, i, float(st.f), int(st.n_iterations), float(st.fun_calls),
                            read=False)
        self._raw_pending.append((row, run.layout, st.x.copy(), None, 1))
        if len(self._raw_pending) >= 20000:
            self._materialize()

    def _layout(self, g: int, closure) -> int | None:
        """Where each key's raw element sits in a member's state vector of BoTorch's batched closure."""
        reader = self._groups[g].reader
        params = getattr(closure, "parameters", None)
        sizes = getattr(closure, "_trailing_sizes", None)
        batch = getattr(closure, "batch_shape", None)
        if reader is None or not isinstance(params, dict) or not isinstance(sizes, dict) or batch is None:
            return None
        offsets, off = {}, 0
        for name, p in params.items():
            offsets[id(p)] = (off, int(sizes[name]))
            off += int(sizes[name])
        parts = []
        for info, flat, cols in reader.parts:
            o = offsets.get(id(info.raw))
            if o is None or info.member_ndim != len(batch) or int(np.prod(info.elem_shape)) != o[1]:
                return None  # e.g. a fixed parameter: read the model instead
            parts.append(((o[0] + flat.numpy())[None, :], cols, info.constraint))
        self._layouts.append(parts)
        return len(self._layouts) - 1

    def _materialize(self) -> None:
        """Turns pending raw optimizer states into constrained values (one transform per parameter
        for all pending steps) and pending evaluation outputs into losses."""
        pending, self._raw_pending = self._raw_pending, []
        if not pending:
            return
        try:
            self._materialize_entries(pending)
        except Exception as e:  # contained: those rows keep NaN values
            self._fail(e)

    def _materialize_entries(self, pending: list) -> None:
        by_layout: dict[int, list] = {}
        for entry in pending:
            by_layout.setdefault(entry[1], []).append(entry)
        for layout, items in by_layout.items():
            nrows = items[0][4]
            rows = (np.array([e[0] for e in items], np.int64)[:, None] + np.arange(nrows)).reshape(-1)
            X = np.stack([e[2] for e in items])
            vals = np.full((len(rows), len(self.keys)), np.nan)
            with torch.no_grad():
                for pos, cols, constraint in self._layouts[layout]:
                    raw = torch.from_numpy(np.ascontiguousarray(X[:, pos].reshape(len(rows), len(cols))))
                    v = constraint.transform(raw) if constraint is not None else raw
                    vals[:, cols] = v.detach().to("cpu", torch.float64).numpy()
            self._rec.set_values(rows, vals)
            outs = [e[3] for e in items]
            if outs[0] is not None:
                grp_like = _Group(None, None, None, None, 0, nrows)
                loss = np.concatenate([self._member_loss(grp_like, o) for o in outs])
                self._rec.set_loss(rows, loss)

    def _on_member_step(self, ctx: _FitContext) -> None:
        """Callback form, batched path: one member took a step of its own L-BFGS-B."""
        if ctx.member is None:
            raise RuntimeError("batched L-BFGS-B callback without its optimizer frame (unknown BoTorch version)")
        g = self._resolve_group(ctx)
        if g is None:
            return
        evaluation = float(ctx.member_evals) if ctx.member_evals is not None else math.nan
        self._commit_member(g, ctx.attempt, ctx.member, ctx.member_loss, int(ctx.member_step), evaluation)

    def _commit_member(self, g: int, attempt, member: int, loss: float, step: int, evaluation: float,
                       read: bool = True) -> None:
        grp = self._groups[g]
        if member >= grp.n:
            raise RuntimeError(f"member {member} out of range for a batch of {grp.n}")
        seg = self._seg
        restart = bool(seg is not None and seg.group == g and self._run_start is None
                       and step <= seg.member_steps.get(member, 0))
        seg = self._segment(g, attempt, restart)
        t = seg.base + step - 1
        self._rec.append_one(t, len(self._segments) - 1, step, grp.offset + member, loss, self._elapsed(),
                             evaluation, self._read(g)[member] if read else None)
        seg.member_steps[member] = step
        if step > seg.last_step:
            seg.last_step = step
        if evaluation > seg.max_evaluation:
            seg.max_evaluation = evaluation
        if t >= self._next_t:
            self._next_t = t + 1
        if self._live is not None:
            self._after_commit()

    @staticmethod
    def _member_loss(grp: _Group, mll_value: torch.Tensor) -> np.ndarray:
        v = (-mll_value.detach()).reshape(-1).to("cpu", torch.float64).numpy()
        if v.size == grp.n:
            return v
        if v.size == 1:
            return np.full(grp.n, float(v[0]) / grp.n if grp.n > 1 else float(v[0]))
        return np.full(grp.n, np.nan)

    # ----- results ---------------------------------------------------------------------------

    def _segment_attempts(self) -> np.ndarray:
        return np.array([s.i_attempt for s in self._segments], np.int64)

    @property
    def frames(self) -> pd.DataFrame:
        """Every member at every recorded step: ``i_timestep, i_attempt, step, i_model, loss, active,
        elapsed`` then one float64 column per key (constrained values).

        ``i_timestep`` (0, 1, ...) is monotonic over attempts and sub-models;
        ``i_attempt`` is 0 for BoTorch's first attempt, 1 for the first retry (which
        resamples from the priors), ...; ``step`` restarts at 1 in each attempt
        (BoTorch's count); ``i_model`` is the batch member (or the sub-model of a
        ModelListGP); ``loss`` is the member's negative MLL; ``active`` is False for a
        member that is no longer being optimized (it keeps its last values and loss);
        ``elapsed`` is seconds since tracing began.
        """
        if self._rec is None:
            return dense_frames(_Recorder(0).arrays(), 0, (), None, np.empty(0))
        self._materialize()
        n = self._rec.n
        if self._frames_cache is not None and self._frames_cache[0] == n:
            return self._frames_cache[1].copy()
        df = dense_frames(self._rec.arrays(), self.n_members, self.keys, self._initial, self._segment_attempts())
        self._frames_cache = (n, df)
        return df.copy()

    def _events(self) -> dict[str, np.ndarray]:
        if self._rec is not None:
            self._materialize()
        return self._rec.arrays() if self._rec is not None else _Recorder(0).arrays()

    def summary(self, loss_tol: float = 1e-3, param_rtol: float = 1e-2) -> pd.DataFrame:
        """Per member: when it converged by its own criterion, and how much work the fit did.

        A member has converged at the first step from which on its loss stays within
        ``loss_tol`` of its final loss and every parameter within ``param_rtol``
        (relative, floored at 1e-3 in absolute terms) of its final value. Only the
        final attempt of each model counts for convergence; evaluations of failed
        attempts count as computed.

        Returns:
            One row per member: ``i_model, steps, converged_step, converged_evaluation,
            evaluations`` (batch evaluations it was computed in, all attempts),
            ``final_loss``. ``attrs`` holds the batch totals: ``evaluations``,
            ``member_evaluations_computed``, ``member_evaluations_needed``, ``waste``
            (computed / needed).
        """
        ev = self._events()
        rows = []
        total_evals = 0.0
        computed = 0.0
        for gi, grp in enumerate(self._groups):
            segs = [i for i, s in enumerate(self._segments) if s.group == gi]
            # counted at the MLL (context form), else the optimizer's own counts per run
            g_evals = float(grp.evals) if grp.evals else float(sum(self._segments[i].max_evaluation for i in segs))
            total_evals += g_evals
            computed += g_evals * grp.n
            last = segs[-1] if segs else None
            for m in range(grp.n):
                member = grp.offset + m
                sel = np.flatnonzero((ev["seg"] == last) & (ev["member"] == member)) if last is not None else []
                steps = len(sel)
                conv_step, conv_eval, final = math.nan, math.nan, math.nan
                if steps:
                    order = sel[np.argsort(ev["step"][sel], kind="stable")]
                    loss = ev["loss"][order]
                    vals = ev["values"][order]
                    final = float(loss[-1])
                    with np.errstate(invalid="ignore"):
                        ok_loss = np.abs(loss - loss[-1]) <= loss_tol
                        scale = np.maximum(np.abs(vals[-1]), 1e-3)
                        ok_par = np.all((np.abs(vals - vals[-1]) <= param_rtol * scale) | np.isnan(vals[-1]), axis=1)
                    ok = (ok_loss | np.isnan(loss[-1])) & ok_par
                    bad = np.flatnonzero(~ok)
                    k = int(bad[-1]) + 1 if len(bad) else 0
                    conv_step = int(ev["step"][order[k]])
                    conv_eval = float(ev["evaluation"][order[k]])
                rows.append({I_MODEL: member, "steps": steps, "converged_step": conv_step,
                             "converged_evaluation": conv_eval, "evaluations": g_evals, "final_loss": final})
        df = pd.DataFrame(rows, columns=[I_MODEL, "steps", "converged_step", "converged_evaluation", "evaluations",
                                         "final_loss"])
        needed = float(df["converged_evaluation"].sum()) if len(df) else 0.0
        df.attrs.update({
            "evaluations": total_evals,
            "member_evaluations_computed": computed,
            "member_evaluations_needed": needed,
            "waste": computed / needed if needed > 0 else math.nan,
        })
        return df

    # ----- views -------------------------------------------------------------------------------

    def plot(self, ax=None):
        """Loss per member against the timestep (matplotlib, headless-safe).

        Each member's line stops where it stopped being optimized; a dot marks where
        it converged by its own criterion (:meth:`summary`); dashed lines mark retries.

        Returns:
            The matplotlib ``Figure``.
        """
        from gpviz.charts import new_figure

        fig = ax.figure if ax is not None else new_figure(7.0, 4.0)
        ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
        ev = self._events()
        summ = self.summary() if len(ev["t"]) else None
        n = self.n_members
        cmap = _colormap(n)
        for m in range(n):
            sel = np.flatnonzero(ev["member"] == m)
            if not len(sel):
                continue
            order = sel[np.argsort(ev["t"][sel], kind="stable")]
            ax.plot(ev["t"][order], ev["loss"][order], lw=1.0, color=cmap(m), alpha=0.8)
            if summ is not None:
                row = summ.iloc[m]
                if not math.isnan(row["converged_step"]):
                    last = self._segments[int(ev["seg"][order[-1]])] if self._segments else None
                    if last is not None:
                        t = last.base + int(row["converged_step"]) - 1
                        hit = order[ev["t"][order] == t]
                        if len(hit):
                            ax.plot([t], [ev["loss"][hit[0]]], "o", ms=3, color=cmap(m))
        for s in self._segments[1:]:
            ax.axvline(s.base - 0.5, color="0.5", ls="--", lw=0.8)
        ax.set_xlabel("timestep (optimizer steps, all attempts)")
        ax.set_ylabel("loss (negative MLL)")
        ax.set_title(f"Loss per member ({n} member{'s' if n != 1 else ''})")
        return fig

    def timesteps_to_show(self, max_timesteps: int = MAX_TIMESTEPS, max_bytes: int = MAX_PAGE_DATA_BYTES) -> np.ndarray:
        """Timesteps an animated page shows: evenly spaced, always with the first and last and
        every retry boundary (first and last step of each attempt)."""
        T = self._next_t
        if T == 0:
            return np.empty(0, np.int64)
        per_step = max(self.n_members * (len(self.keys) + 2) * 8, 1)
        cap = max(2, min(int(max_timesteps), int(max_bytes // per_step)))
        must = {0, T - 1}
        for s in self._segments:
            must.add(s.base)
            must.add(s.base + max(s.last_step, 1) - 1)
        must = np.array(sorted(t for t in must if 0 <= t < T))
        if T <= cap:
            return np.arange(T)
        even = np.round(np.linspace(0, T - 1, max(cap - len(must), 2))).astype(np.int64)
        return np.unique(np.concatenate([must, even]))

    def render_frame(self, max_timesteps: int = MAX_TIMESTEPS) -> pd.DataFrame:
        """The decimated frame an animated page shows: ``i_timestep`` (the same numbers as in
        :attr:`frames`), ``i_model`` and the expression's keys, sorted by step then member."""
        fr = self.frames
        keys = list(self.expr.keys) if self.expr is not None else []
        if not len(fr):
            return self._initial_frame()
        keep = self.timesteps_to_show(max_timesteps)
        sub = fr[fr[I_TIMESTEP].isin(keep)]
        out = pd.DataFrame({I_TIMESTEP: sub[I_TIMESTEP].to_numpy(np.int32), I_MODEL: sub[I_MODEL].to_numpy(np.int32)})
        for k in keys:
            out[k] = sub[k].to_numpy(np.float64)
        return out

    def _initial_frame(self) -> pd.DataFrame:
        """Before the first step: the values the fit starts from, as timestep 0."""
        keys = list(self.expr.keys) if self.expr is not None else []
        n = self.n_members
        out = pd.DataFrame({I_TIMESTEP: np.zeros(n, np.int32), I_MODEL: np.arange(n, dtype=np.int32)})
        col = {k: i for i, k in enumerate(self.keys)}
        init = self._initial if self._initial is not None else np.full((n, len(self.keys)), np.nan)
        for k in keys:
            out[k] = init[:, col[k]]
        return out

    def render(self, max_timesteps: int = MAX_TIMESTEPS, title: str | None = None, loss_chart: bool = True,
               verdicts: bool | None = None):
        """The animated page: the model's expression with one dot per member per parameter,
        stepping through the fit (play, pause, scrub).

        Each chart marks the prior mode and the bounds a value sits at. Parameters that
        :func:`gpviz.prior_pull` judges held by their prior at the model's current values
        (the last step, once the fit is done) in at least half the members are tinted;
        ``verdicts``: ``None`` when the model is small enough (see
        :func:`gpviz.render.model_verdicts`), ``True`` always, ``False`` never.

        Frames are decimated to at most ``max_timesteps`` (and a page-size budget),
        keeping the first, the last and every retry boundary; :attr:`frames` keeps all.

        Returns:
            A ``gpviz.render.Figure``.
        """
        from gpviz import render as R

        if self.expr is None:
            raise InputError("nothing to render: the tracer has no model expression (no MLL bound yet)")
        frame = self.render_frame(max_timesteps)
        info = self._info(verdicts)
        extra = ""
        if loss_chart and len(frame):
            from gpviz.charts import figure_to_img

            extra = figure_to_img(self.plot(), alt="loss per member against the optimizer step")
        shown = int(frame[I_TIMESTEP].nunique()) if len(frame) else 0
        title = title or (f"Fit of {type(self._groups[0].model).__name__}: {self.n_members} member(s), "
                          f"{self._next_t} timesteps ({shown} shown), {len(self._segments)} run(s)")
        return R.render_frame(self.expr, frame, info=info, title=title, extra_html=extra)

    def _info(self, verdicts: bool | None = None):
        """Bounds and prior modes per key, and prior_pull's verdicts on the model as it is now (the last step).

        Verdicts follow :func:`gpviz.render.model_verdicts` (skipped for big models, never an error).
        """
        try:
            from gpviz.params import parameters

            info = parameters(self.expr, long=True)
        except Exception:
            return None
        if verdicts is not False:
            from gpviz.render import model_verdicts, with_verdicts

            found = model_verdicts(self.expr, force=bool(verdicts))
            if found:
                info = with_verdicts(info, found)
        return info

    def _repr_html_(self) -> str:
        try:
            return self.render()._repr_html_()
        except Exception as e:  # a display must never break a notebook
            from gpviz.render import escape_html

            return f"<pre>{escape_html(repr(self))}: {escape_html(type(e).__name__)}: {escape_html(e)}</pre>"

    def __repr__(self) -> str:
        return (f"<FitTracer: {self.n_members} member(s), {len(self.keys)} keys, {self._next_t} timesteps, "
                f"{len(self._segments)} run(s)>")

    # ----- live view ----------------------------------------------------------------------------

    def show(self, display: bool = True):
        """Shows the fit in a notebook: live while it runs (at most 4 updates per second),
        then a final static view when the ``with`` block ends.

        Call it inside ``with gpviz.trace_fit(mll) as tracer:`` before fitting (or
        before passing :attr:`callback`); after a fit it displays the finished page.

        Returns:
            The ``gpviz.render.LiveFigure`` (live) or the final ``Figure``.
        """
        from gpviz import render as R

        if self.expr is None:
            raise InputError("nothing to show: bind the tracer to an MLL first (FitTracer(mll))")
        if self._in_context or self._rec is None or self._rec.n == 0:
            self._live = R.LiveFigure(self.expr, info=self._info(verdicts=False), display=display,
                                      title=f"Fitting {type(self._groups[0].model).__name__}")
            self._live_last = time.perf_counter()
            self._live.update(self.render_frame())
            return self._live
        fig = self.render()
        if display:
            try:
                from IPython import get_ipython
                from IPython.display import display as ipy_display

                if get_ipython() is not None:
                    ipy_display(fig)
            except ImportError:
                pass
        return fig

    def _after_commit(self) -> None:
        if self._live is None:
            return
        now = time.perf_counter()
        if now - self._live_last < 1.0 / LIVE_UPDATES_PER_SECOND:
            return
        self._live_last = now
        self._live.update(self.render_frame())

    def finish(self):
        """Ends a live view started by :meth:`show` (the ``with`` form does this itself).

        Returns:
            The final ``Figure``, or ``None`` if no live view was running.
        """
        return self._guard(self._finish_live)

    def _finish_live(self):
        live, self._live = self._live, None
        if live is not None:
            return live.finish(self.render_frame())
        return None


def _colormap(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return lambda i: cmap(i / max(n - 1, 1))


def trace_fit(mll, feature_names=None) -> FitTracer:
    """Traces a fit without changing it: ``with gpviz.trace_fit(mll) as tracer: fit_gpytorch_mll(mll)``.

    Records at the evaluations the fit makes anyway (no extra model evaluations;
    the fit ends at the same parameters), through every BoTorch path: single
    models, per-member batched L-BFGS-B, the joint path, ``fit_gpytorch_mll_torch``,
    MultiTaskGP, ModelListGP, and retries. An interrupted fit keeps its frames.

    Args:
        mll: The marginal log likelihood about to be fit.
        feature_names: Names of the input columns, for the expression.

    Returns:
        A :class:`FitTracer`, to be used as a context manager.
    """
    return FitTracer(mll, feature_names=feature_names)


# --------------------------------------------------------------------------------------
# Comparing ways to fit the same cross-validation folds
# --------------------------------------------------------------------------------------

class FitModeTable(pd.DataFrame):
    """The table of :func:`compare_fit_modes` (a DataFrame) with a :meth:`chart`."""

    @property
    def _constructor(self):
        return pd.DataFrame  # derived frames are plain DataFrames

    def chart(self):
        """Bar charts of member-evaluations and wall time per fit mode (matplotlib ``Figure``)."""
        from gpviz.charts import new_figure

        fig = new_figure(8.0, 3.2)
        ax1, ax2 = fig.subplots(1, 2)
        names = [str(i) for i in self.index]
        colors = ["#4c72b0", "#dd8452", "#55a868"][: len(names)]
        ax1.bar(names, self["member_evaluations"].to_numpy(float), color=colors)
        ax1.set_ylabel("member-evaluations")
        ax1.set_title("Work: GP evaluations x members")
        for i, v in enumerate(self["member_evaluations"].to_numpy(float)):
            ax1.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=8)
        ax2.bar(names, self["wall_time_s"].to_numpy(float), color=colors)
        ax2.set_ylabel("seconds")
        ax2.set_title("Wall time")
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", labelsize=8)
        return fig


FIT_MODES = ("batched", "joint", "separate")


def compare_fit_modes(make_model, X, Y, *, modes=FIT_MODES, optimizer_kwargs=None) -> FitModeTable:
    """Fits the same leave-one-out folds three ways and reports the work each took.

    (a) ``batched``: one batched model, BoTorch's default path (one L-BFGS-B per
    member, every member computed in every evaluation); (b) ``joint``: the same
    batched model, one optimizer on the summed loss (``closure_kwargs={}``);
    (c) ``separate``: one model per fold, fit in turn.

    Args:
        make_model: ``make_model(train_X, train_Y) -> model`` (e.g. ``SingleTaskGP``);
            called with ``n x (n-1) x d`` folds for (a)/(b) and ``(n-1) x d`` for (c).
        X: ``n x d`` inputs.
        Y: ``n x 1`` outputs.
        modes: A subset of ``("batched", "joint", "separate")``.
        optimizer_kwargs: Passed to every ``fit_gpytorch_mll`` call (e.g. ``{"options": {"maxiter": 50}}``).

    Returns:
        A DataFrame indexed by mode: ``fits, evaluations`` (model evaluations; one
        batched evaluation computes every member), ``member_evaluations``,
        ``wall_time_s``, ``mean_final_loss``, ``waste`` (member-evaluations computed /
        needed by each member's own convergence). ``.chart()`` draws it.

    Raises:
        InputError: for unknown modes or inputs of the wrong shape.
    """
    from botorch.cross_validation import gen_loo_cv_folds
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    bad = [m for m in modes if m not in FIT_MODES]
    if bad:
        raise InputError(f"unknown fit mode(s) {bad} (must be among {list(FIT_MODES)})")
    if not isinstance(X, torch.Tensor) or not isinstance(Y, torch.Tensor) or X.dim() != 2 or Y.dim() != 2 \
            or X.shape[0] != Y.shape[0]:
        raise InputError(f"X and Y must be tensors of shapes n x d and n x 1, got "
                         f"{list(getattr(X, 'shape', []))} and {list(getattr(Y, 'shape', []))}")
    folds = gen_loo_cv_folds(X, Y)
    n = int(X.shape[0])
    okw = dict(optimizer_kwargs or {})
    rows = {}

    def run(model, **fit_kw):
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with trace_fit(mll) as tr:
                fit_gpytorch_mll(mll, optimizer_kwargs=dict(okw) if okw else None, **fit_kw)
        return tr, time.perf_counter() - start

    for mode in modes:
        if mode in ("batched", "joint"):
            model = make_model(folds.train_X, folds.train_Y)
            tr, secs = run(model, **({"closure_kwargs": {}} if mode == "joint" else {}))
            s = tr.summary()
            rows[mode] = {"fits": 1, "evaluations": s.attrs["evaluations"],
                          "member_evaluations": s.attrs["member_evaluations_computed"], "wall_time_s": secs,
                          "mean_final_loss": float(s["final_loss"].mean()), "waste": s.attrs["waste"]}
        else:
            evals = computed = needed = secs = 0.0
            losses = []
            for i in range(n):
                tr, dt = run(make_model(folds.train_X[i], folds.train_Y[i]))
                s = tr.summary()
                evals += s.attrs["evaluations"]
                computed += s.attrs["member_evaluations_computed"]
                needed += s.attrs["member_evaluations_needed"]
                secs += dt
                losses.append(float(s["final_loss"].mean()))
            rows[mode] = {"fits": n, "evaluations": evals, "member_evaluations": computed, "wall_time_s": secs,
                          "mean_final_loss": float(np.mean(losses)),
                          "waste": computed / needed if needed else math.nan}
    table = FitModeTable(pd.DataFrame.from_dict(rows, orient="index"))
    table.index.name = "mode"
    return table
