"""The fit tracer: every optimizer step of every batch member of a ``fit_gpytorch_mll`` call, as frames.

Two forms record the same frames:

* ``with gpviz.trace_fit(mll) as tracer: fit_gpytorch_mll(mll)`` records at the
  evaluations the fit makes anyway. For the duration it wraps the MLL instance's
  ``forward`` (gpytorch's ``Module.__call__`` calls ``forward`` directly, so torch
  hooks would not fire) and receives a zero-cost iteration marker from BoTorch's
  three minimizers through :mod:`gpviz.hooks`; both are restored in a ``finally``.
  No closure evaluation is added: BoTorch's own callback re-evaluates the closure
  on the joint scipy path, this marker does not.
* ``tracer = gpviz.FitTracer(mll)`` and ``optimizer_kwargs={"callback": tracer.callback}``
  (also through ``batch_cross_validation(..., fit_args=...)``, where ``mll`` may be
  left out: the tracer binds to the MLL being fit). ``.callback`` accepts BoTorch's
  ``cb(parameters, result)`` on the joint path and scipy's ``cb(xk)`` on the
  per-member batched L-BFGS-B path.

Which member called back, which attempt of BoTorch's fallback loop is running and
how many evaluations a member has had come from :func:`gpviz.hooks.fit_context`
(the batched path's callback carries no member index). Everything the tracer does
is contained: its own errors are warned once (``TracerWarning``) and never reach
the fit. The frame store is :mod:`gpviz.trace.store`, values are read by
:mod:`gpviz.trace.reader`; summary, plot and page are thin calls into
:mod:`gpviz.trace.summary`, :mod:`gpviz.trace.plot` and the page layer.

This module is longer than most (about 750 lines) because the recording state
machine — groups, segments (attempts), the three recording paths and their bulk
materialization — is one piece of logic over one set of state; split, its halves
would share every attribute.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pandas as pd
import torch
from gpytorch.mlls import MarginalLogLikelihood, SumMarginalLogLikelihood

from gpviz import display as _display
from gpviz import hooks
from gpviz.errors import InputError, TracerWarning
from gpviz.html.markup import escape_html
from gpviz.models.expr import model_expr
from gpviz.models.families import model_batch_shape
from gpviz.options import reject_unknown
from gpviz.trace.plot import loss_plot, loss_series
from gpviz.trace.reader import BatchedRun, Group, Segment, ValueReader
from gpviz.trace.store import Recorder, dense_frames
from gpviz.trace.summary import MAX_TIMESTEPS, summarize, timesteps_to_show
from gpviz.values.columns import I_MODEL, I_TIMESTEP
from gpviz.values.tensors import to_numpy
from gpviz.words import plural

#: At most this many live updates per second in a notebook.
LIVE_UPDATES_PER_SECOND = 4.0

def _unwrap_forward(mll, wrapper) -> None:
    """Takes one tracer's ``forward`` wrapper off an MLL, wherever it sits in the chain.

    Nested tracers wrap each other's wrappers. Exiting them in any order must
    leave the MLL exactly as found: the wrapper on top is replaced by what it
    wrapped (or the instance attribute removed, if there was none); a wrapper
    further down is skipped by relinking the one above it.
    """
    top = mll.__dict__.get("forward")
    if top is wrapper:
        if wrapper._gpviz_had:
            mll.__dict__["forward"] = wrapper.__wrapped__
        else:
            mll.__dict__.pop("forward", None)
        return
    above = top
    while getattr(above, "_gpviz_tracer", None) is not None:
        if above.__wrapped__ is wrapper:
            above.__wrapped__ = wrapper.__wrapped__
            above._gpviz_had = wrapper._gpviz_had
            return
        above = above.__wrapped__


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
        self._groups: list[Group] = []
        self._by_id: dict[int, int] = {}
        self.keys: tuple[str, ...] = ()
        self.expr = None
        self._rec: Recorder | None = None
        self._segments: list[Segment] = []
        self._seg: Segment | None = None
        self._next_t = 0
        self._evals = 0
        self._run_start: int | None = None
        self._t0: float | None = None
        self._initial: np.ndarray | None = None
        self._frames_cache: tuple[tuple[int, int], pd.DataFrame] | None = None
        self._written = 0  # bumped whenever earlier rows get their values (see _materialize)
        self._in_context = False
        self._restore: list = []
        self._warned = False
        self._disabled = False
        self.error: BaseException | None = None
        self._live = None
        self._live_last = 0.0
        self.ended: float | None = None  # time.time() when the traced fit ended (the `with` block or finish())
        self._foreign_warned = False
        self._batched_run: BatchedRun | None = None
        self._run_closure = None
        self._run_ctx = hooks.FitContext()
        self._joint_layout_key = None
        self._joint_layout_index = None
        self._layouts: list = []
        self._raw_pending: list = []  # (row, layout index, raw state copy): transformed in bulk later
        self._per_evaluation = False  # record at every evaluation (a BoTorch path without a marker)
        if mll is not None:
            self._bind(mll)

    # ----- binding -------------------------------------------------------------------

    def _bind(self, mll) -> None:
        if not isinstance(mll, MarginalLogLikelihood):
            raise InputError(f"FitTracer expects a gpytorch MarginalLogLikelihood (e.g. ExactMarginalLogLikelihood),"
                             f" got {type(mll).__module__}.{type(mll).__name__}")
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
            reader = ValueReader(s.model, e.keys, [col[k] for k in e.keys], batch) if e is not None else None
            self._groups.append(Group(s, s.model, e, reader, offset, n))
            offset += n
        self._by_id = {id(g.mll): i for i, g in enumerate(self._groups)}
        self._by_id.setdefault(id(mll), 0 if len(self._groups) == 1 else None)
        self._rec = Recorder(len(keys))
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
        self.ended = None
        if self._t0 is None:
            self._t0 = time.perf_counter()
        # where a patch point moved, record at every evaluation instead of every optimizer step
        self._per_evaluation = bool(hooks.missing_patches())
        for i, g in enumerate(self._groups):
            self._wrap_forward(i, g)
        hooks.install(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            hooks.uninstall(self)
        finally:
            for mll, wrapper in reversed(self._restore):
                _unwrap_forward(mll, wrapper)
            self._restore = []
            self._in_context = False
            for g in self._groups:
                g.pending = None
            self.ended = time.time()
            if self._live is not None:
                self._guard(self._finish_live)
        return False  # exceptions in the fit (KeyboardInterrupt too) propagate; frames stay

    def _wrap_forward(self, i: int, g: Group) -> None:
        mll = g.mll
        had = "forward" in mll.__dict__
        tracer = self

        def forward(*args, **kwargs):
            try:
                # looked up at call time: a tracer that exits out of order relinks the chain
                out = forward.__wrapped__(*args, **kwargs)
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
                    if tracer._per_evaluation and not hooks.in_marked_run():
                        # a BoTorch path gpviz cannot mark (gpviz.hooks warned): every evaluation is a step
                        tracer._on_joint_step(hooks.FitContext(), None)
                except Exception as e:  # contained
                    tracer._fail(e)
            return out

        forward.__wrapped__ = mll.forward  # bound method (or another tracer's wrapper already there)
        forward._gpviz_had = had
        forward._gpviz_tracer = tracer
        mll.__dict__["forward"] = forward
        self._restore.append((mll, forward))

    # ----- what gpviz.hooks calls during a traced fit ------------------------------------

    def hook_matches(self, ctx: hooks.FitContext) -> bool:
        """Whether the optimizer run starting now fits this tracer's MLL (or one of its sub-MLLs)."""
        return ctx.mll is not None and self._group_of(ctx.mll) is not None

    def hook_reset_run(self, closure) -> None:
        """An optimizer run starts somewhere: forget the last run's member layout."""
        self._batched_run = None
        self._run_closure = closure

    def hook_begin_run(self, ctx: hooks.FitContext, closure) -> None:
        """An optimizer run of this tracer's MLL starts."""
        self._run_start = self._evals
        self._run_ctx = ctx

    def hook_scipy_step(self, xk) -> None:
        """Joint scipy L-BFGS-B: one step of all members (``xk``: a copy of the state)."""
        self._guard(self._on_joint_step, self._run_ctx, None, xk)

    def hook_batched_step(self, result) -> None:
        """Batched L-BFGS-B: one member's new iterate (scipy's live ``OptimizeResult``)."""
        self._guard(self._on_batched_marker, result)

    def hook_torch_step(self, parameters, result) -> None:
        """``fit_gpytorch_mll_torch``: one step (BoTorch's live parameters and ``OptimizationResult``)."""
        self._guard(self._on_joint_step, self._run_ctx, result, None, parameters)

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
            ctx = hooks.fit_context()
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

    def _resolve_group(self, ctx: hooks.FitContext) -> int | None:
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

    def _segment(self, g: int, attempt: int | None, restart: bool) -> Segment:
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
            seg = Segment(g, attempt, i_attempt, self._next_t, start)
            self._run_start = None
            self._segments.append(seg)
            self._seg = seg
        return seg

    def _elapsed(self) -> float:
        return time.perf_counter() - (self._t0 if self._t0 is not None else time.perf_counter())

    def _on_joint_step(self, ctx: hooks.FitContext, result, x=None, parameters=None) -> None:
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
                    x = to_numpy(torch.cat([p.detach().reshape(-1) for p in parameters.values()]))
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
            with torch.no_grad():
                loss = self._member_loss(grp, -hooks.loss_closure(grp.mll)())
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

    def _joint_fast(self, g: int, grp: Group, ctx: hooks.FitContext, result, layout: int, x: np.ndarray) -> None:
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
            ctx = hooks.fit_context()
            if ctx.member is None or ctx.states is None:
                # BoTorch's batched frame moved (gpviz.hooks warned once): no member index, so record
                # every member at each evaluation instead (values from the model, losses from the MLL)
                g = self._resolve_group(ctx)
                if g is not None and self._groups[g].fresh:
                    self._on_joint_step(ctx, None)
                return
            g = self._group_of(ctx.mll) if ctx.mll is not None else self._resolve_group(ctx)
            run = BatchedRun(g, ctx.attempt, ctx.states, {id(st.x): k for k, st in enumerate(ctx.states)})
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
        # the row's raw state joins the pending list before the live view may read (in _after_commit):
        # a read in between would see the row with its values not yet written (NaN)
        row = self._rec.n
        self._commit_member(run.group, run.attempt, i, float(st.f), int(st.n_iterations), float(st.fun_calls),
                            read=False, live=False)
        self._raw_pending.append((row, run.layout, st.x.copy(), None, 1))
        if len(self._raw_pending) >= 20000:
            self._materialize()
        if self._live is not None:
            self._after_commit()

    def _layout(self, g: int, closure) -> int | None:
        """Where each key's raw element sits in a member's state vector of BoTorch's batched closure."""
        reader = self._groups[g].reader
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
        self._layouts.append(parts)
        return len(self._layouts) - 1

    def _materialize(self) -> None:
        """Turns pending raw optimizer states into constrained values (one transform per parameter
        for all pending steps) and pending evaluation outputs into losses."""
        pending, self._raw_pending = self._raw_pending, []
        if not pending:
            return
        self._written += 1  # rows already read into a cached frame change now
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
                for pos, cols, constraint, device in self._layouts[layout]:
                    # on the parameter's device: its constraint's bounds live there (CPU values and CUDA
                    # bounds do not combine); the values leave the device only through to_numpy
                    raw = torch.from_numpy(np.ascontiguousarray(X[:, pos].reshape(len(rows), len(cols))))
                    raw = raw.to(device)
                    v = constraint.transform(raw) if constraint is not None else raw
                    vals[:, cols] = to_numpy(v)
            self._rec.set_values(rows, vals)
            outs = [e[3] for e in items]
            if outs[0] is not None:
                grp_like = Group(None, None, None, None, 0, nrows)
                loss = np.concatenate([self._member_loss(grp_like, o) for o in outs])
                self._rec.set_loss(rows, loss)

    def _on_member_step(self, ctx: hooks.FitContext) -> None:
        """Callback form, batched path: one member took a step of its own L-BFGS-B."""
        if ctx.member is None:
            raise RuntimeError("batched L-BFGS-B callback without its optimizer frame (unknown BoTorch version)")
        g = self._resolve_group(ctx)
        if g is None:
            return
        evaluation = float(ctx.member_evals) if ctx.member_evals is not None else math.nan
        self._commit_member(g, ctx.attempt, ctx.member, ctx.member_loss, int(ctx.member_step), evaluation)

    def _commit_member(self, g: int, attempt, member: int, loss: float, step: int, evaluation: float,
                       read: bool = True, live: bool = True) -> None:
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
        if live and self._live is not None:
            self._after_commit()

    @staticmethod
    def _member_loss(grp: Group, mll_value: torch.Tensor) -> np.ndarray:
        v = to_numpy((-mll_value.detach()).reshape(-1))
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
            return dense_frames(Recorder(0).arrays(), 0, (), None, np.empty(0))
        self._materialize()
        version = (self._rec.n, self._written)
        if self._frames_cache is not None and self._frames_cache[0] == version:
            return self._frames_cache[1].copy()
        df = dense_frames(self._rec.arrays(), self.n_members, self.keys, self._initial, self._segment_attempts())
        self._frames_cache = (version, df)
        return df.copy()

    def _events(self) -> dict[str, np.ndarray]:
        if self._rec is not None:
            self._materialize()
        return self._rec.arrays() if self._rec is not None else Recorder(0).arrays()


    # ----- the public face: thin calls into their own modules ------------------------------

    def summary(self, loss_tol: float = 1e-3, param_rtol: float = 1e-2) -> pd.DataFrame:
        """Per member: when it converged by its own criterion, and how much work the fit did.

        See :func:`gpviz.trace.summary.summarize` for the criterion and the columns.
        """
        return summarize(self._events(), self._groups, self._segments, loss_tol, param_rtol)

    def plot(self, ax=None):
        """Loss per member against the timestep (matplotlib ``Figure``; see :func:`gpviz.trace.plot.loss_plot`)."""
        return loss_plot(self._events(), self.summary(), self._segments, self.n_members, ax=ax)

    def loss_series(self) -> dict:
        """Every member's loss at every recorded step (see :func:`gpviz.trace.plot.loss_series`)."""
        ev = self._events()
        return loss_series(ev, self.summary() if len(ev["t"]) else None, self._segments, self.n_members)

    def timesteps_to_show(self, max_timesteps: int | None = None, end: int | None = None) -> np.ndarray:
        """Timesteps an animated page shows: all, or at most ``max_timesteps`` (see
        :func:`gpviz.trace.summary.timesteps_to_show`); only those before ``end`` if given."""
        last = self._next_t if end is None else max(0, min(int(end), self._next_t))
        return timesteps_to_show(last, self._segments, max_timesteps)

    def render_frame(self, max_timesteps: int | None = None, end: int | None = None) -> pd.DataFrame:
        """The frame an animated page shows: ``i_timestep`` (the same numbers as in :attr:`frames`),
        ``i_model`` and the expression's keys, sorted by step then member; every step, or at most
        ``max_timesteps`` of them.

        Args:
            max_timesteps: None (every step) or at most this many timesteps (see :meth:`timesteps_to_show`).
            end: Only timesteps before this one (the live view's completed steps).
        """
        fr = self.frames
        keys = list(self.expr.keys) if self.expr is not None else []
        keep = self.timesteps_to_show(max_timesteps, end=end)
        if not len(fr) or not len(keep):
            return self._initial_frame()
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

    @property
    def model_name(self) -> str:
        """Class name of the (first) model being traced."""
        return type(self._groups[0].model).__name__ if self._groups else "model"

    @property
    def n_timesteps(self) -> int:
        """Timesteps recorded so far (over all attempts and sub-models)."""
        return self._next_t

    @property
    def n_runs(self) -> int:
        """Optimizer runs recorded: attempts, and one per sub-model of a ModelListGP."""
        return len(self._segments)

    def render(self, max_timesteps: int | None = None, title: str | None = None, loss_chart: bool = True,
               verdicts: bool | None = None, *, feature_names=None, units: str = "model", tasks=None, outputs=None,
               **unknown):
        """The animated page: the model's expression with one dot per member per parameter,
        stepping through the fit (play, pause, scrub).

        Each chart marks the prior mode and the bounds a value sits at. Parameters that
        :func:`gpviz.prior_pull` judges held by their prior at the model's current values
        (the last step, once the fit is done) in at least half the members are tinted;
        ``verdicts``: ``None`` when the model is small enough (see
        :func:`gpviz.priors.verdicts.model_verdicts`), ``True`` always, ``False`` never.

        Every step of every member is on the page, its values at display precision (4
        significant digits, see :mod:`gpviz.html.compact`); the player's speed control makes
        1,000+ steps watchable. An explicit ``max_timesteps`` keeps at most that many steps,
        always the first, the last and every retry boundary; :attr:`frames` keeps every exact value.

        Args:
            max_timesteps: None (every step) or at most this many.
            title: Page title.
            loss_chart: Draw the loss chart (one line per member, a cursor at the step shown).
            verdicts: As above.
            feature_names, units, tasks, outputs: The options of :func:`gpviz.render`
                (``feature_names`` default: the tracer's own; see :mod:`gpviz.options`).

        Returns:
            A :class:`gpviz.html.figure.Figure`.

        Raises:
            InputError: for an unknown option or one that does not apply.
        """
        reject_unknown("FitTracer.render", unknown, ("max_timesteps", "title", "loss_chart", "verdicts",
                                                     "feature_names", "units", "tasks", "outputs"))
        if self.expr is None:
            raise InputError("nothing to render: the tracer has no model expression (no MLL bound yet)")
        expr = self.expr
        if feature_names is not None or tasks is not None or outputs is not None:
            expr = model_expr(self.expr.module, feature_names if feature_names is not None else self._feature_names,
                              tasks=tasks, outputs=outputs)
        return _display.render(self, max_timesteps=max_timesteps, title=title, loss_chart=loss_chart,
                               verdicts=verdicts, expr=expr, units=units)

    def _repr_html_(self) -> str:
        try:
            return self.render()._repr_html_()
        except Exception as e:  # a display must never break a notebook
            return f"<pre>{escape_html(repr(self))}: {escape_html(type(e).__name__)}: {escape_html(e)}</pre>"

    def __repr__(self) -> str:
        return (f"<FitTracer: {plural(self.n_members, 'member')}, {plural(len(self.keys), 'key')}, "
                f"{plural(self._next_t, 'timestep')}, {plural(len(self._segments), 'optimizer run')}>")

    # ----- live view ----------------------------------------------------------------------------

    def show(self, display: bool = True):
        """Shows the fit in a notebook, once: live while it runs (at most 4 updates per second),
        then, in the same output, :meth:`render` of the finished fit when the ``with`` block ends.

        Call it inside ``with gpviz.trace_fit(mll) as tracer:`` before fitting (or
        before passing :attr:`callback`); after a fit it displays the finished page.
        Either way the notebook gets one output: the returned live figure is not
        shown a second time when it is a cell's last value.

        Args:
            display: ``False``: never display (scripts, tests); the figure is still made.

        Returns:
            The live figure (``gpviz.html.live.LiveFigure``; its ``.figure`` is the figure shown now).
        """
        if self.expr is None:
            raise InputError("nothing to show: bind the tracer to an MLL first (FitTracer(mll))")
        live = self._in_context or self._rec is None or self._rec.n == 0
        shown = _display.show(self, live=live, display=display)
        if live:
            self._live = shown
            self._live_last = time.perf_counter()
        return shown

    def _after_commit(self) -> None:
        if self._live is None:
            return
        now = time.perf_counter()
        if now - self._live_last < 1.0 / LIVE_UPDATES_PER_SECOND:
            return
        self._live_last = now
        self._live.update(self.live_frame(), title=self.live_title())

    def live_frame(self) -> pd.DataFrame:
        """What the live view shows: the completed steps, every timestep but the last, which may still be filling.

        On the batched path members commit one at a time, so the newest timestep can
        hold some members' new values beside others' old ones; the live view waits
        until the next timestep begins. The final figure (:meth:`render`) shows all.
        """
        return self.render_frame(MAX_TIMESTEPS, end=self._next_t - 1)

    def live_title(self) -> str:
        """The live view's title: how far the fit has come."""
        return f"Fitting {self.model_name}: {max(self._next_t - 1, 0)} timesteps so far (live)"

    def finish(self):
        """Ends a live view started by :meth:`show` (the ``with`` form does this itself).

        Returns:
            The final ``Figure``, or ``None`` if no live view was running.
        """
        if self.ended is None and not self._in_context:
            self.ended = time.time()
        return self._guard(self._finish_live)

    def _finish_live(self):
        """Replaces the live view with :meth:`render` of the finished frames: the same page, by construction."""
        live, self._live = self._live, None
        if live is not None:
            return live.finish(self.render())
        return None


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
