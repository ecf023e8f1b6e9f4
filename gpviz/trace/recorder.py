"""The recorder: what BoTorch's fit talks to while a fit is traced (not public; users hold a ``FitTracer``).

It records the same frames through two doors:

* the context form (``with gpviz.trace_fit(mll)``): for the duration it wraps the MLL
  instance's ``forward`` (gpytorch's ``Module.__call__`` calls ``forward`` directly, so
  torch hooks would not fire) and is installed as a :class:`gpviz.hooks.Listener`: the
  patches in :mod:`gpviz.hooks` call its ``hook_*`` methods with a zero-cost iteration
  marker from BoTorch's three minimizers; both are undone in :meth:`TraceRecorder.exit`.
  No closure evaluation is added: BoTorch's own callback re-evaluates the closure on
  the joint scipy path, this marker does not.
* the callback form (:meth:`TraceRecorder.on_callback`): BoTorch's ``cb(parameters,
  result)`` on the joint path and scipy's ``cb(xk)`` on the per-member batched path.

Which member called back, which attempt of BoTorch's fallback loop is running and
how many evaluations a member has had come from :func:`gpviz.hooks.fit_context`
(the batched path's callback carries no member index). Everything it does is
contained: its own first error is warned once (``TracerWarning``), it stops
recording, and the fit goes on. Rows go into :class:`gpviz.trace.store.EventStore`,
the runs into :class:`gpviz.trace.reader.Timeline`, raw states into
:class:`gpviz.trace.layouts.RawStates`; :meth:`TraceRecorder.result` freezes them into
a :class:`gpviz.trace.result.FitTrace`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch

from gpviz import hooks
from gpviz.errors import InputError, TracerWarning
from gpviz.trace.layouts import RawStates, member_loss
from gpviz.trace.reader import BatchedRun, Binding, Group, Timeline, bind, read_group
from gpviz.trace.result import FitTrace
from gpviz.trace.store import EventStore
from gpviz.values.tensors import to_numpy


def _unwrap_forward(mll, wrapper) -> None:
    """Takes one recorder's ``forward`` wrapper off an MLL, wherever it sits in the chain.

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


@dataclass
class Run:
    """The optimizer run in progress, as the hooks announced it."""

    ctx: hooks.FitContext
    closure: object = None
    batched: BatchedRun | None = None  # the batched path's member lookup, found at its first marker


class TraceRecorder:
    """Records every optimizer step of every member of one MLL's fit (see the module docstring).

    Args:
        mll: The MLL to trace, or None (callback form: bound to the MLL being fit at the first step).
        feature_names: Names of the input columns, for the expression.

    Attributes:
        binding: What was read from the MLL when bound (None until then).
        timeline: The optimizer runs and timesteps recorded.
        raw: Raw states waiting to be turned into values.
        ended: ``time.time()`` when the traced fit ended (the ``with`` block or ``finish``), else None.
        error: The recorder's own first exception, if it hit one (it stopped recording; the fit went on).
        on_step: Called after each committed step (the live view), or None.
    """

    def __init__(self, mll=None, feature_names=None):
        self.feature_names = feature_names
        self.binding: Binding | None = None
        self.timeline = Timeline()
        self.raw = RawStates()
        self.ended: float | None = None
        self.error: BaseException | None = None
        self.on_step = None
        self._run = Run(hooks.FitContext())
        self._restore: list = []          # (mll, forward wrapper) installed by enter()
        self._in_context = False
        self._per_evaluation = False      # record at every evaluation (a BoTorch path without a marker)
        if mll is not None:
            self.bind(mll)

    def bind(self, mll) -> None:
        """Binds to ``mll`` (see :func:`gpviz.trace.reader.bind`); raw states of an earlier binding are dropped."""
        self.binding = bind(mll, self.feature_names)
        self.raw = RawStates()
        self._run.batched = None

    @property
    def _bound(self) -> Binding:
        """The binding, where a step is recorded (every such path binds first; an error there is contained)."""
        if self.binding is None:
            raise RuntimeError("the recorder is not bound to an MLL")
        return self.binding

    @property
    def in_context(self) -> bool:
        """Whether the context form is recording now."""
        return self._in_context

    @property
    def rows(self) -> int:
        """Rows recorded so far."""
        return self.binding.store.n if self.binding is not None else 0

    def _group_of(self, mll) -> int | None:
        return self.binding.by_id.get(id(mll)) if mll is not None and self.binding is not None else None

    def _read(self, g: int) -> np.ndarray:
        return read_group(self._bound.groups[g], len(self._bound.keys))

    # ----- containment -----------------------------------------------------------------

    def guard(self, fn, *args):
        """Runs ``fn(*args)`` unless stopped; the recorder's own exceptions never reach the fit."""
        if self.error is not None:
            return None
        try:
            return fn(*args)
        except Exception as e:  # contained by design: a tracer bug must not abort the fit
            self.fail(e)
            return None

    def fail(self, e: BaseException) -> None:
        """Stops recording after the recorder's own error ``e``; warns once, at the first."""
        if self.error is not None:
            return
        self.error = e
        warnings.warn(f"gpviz fit tracer stopped recording after its own error ({type(e).__name__}: {e}); "
                      f"the fit continues untouched, {self.rows} rows were kept", TracerWarning, stacklevel=3)

    # ----- context form ------------------------------------------------------------------

    def enter(self) -> None:
        """Starts the context form: wraps each MLL's ``forward`` and installs the hooks' listener.

        Raises:
            InputError: without an MLL, or when this recorder is already recording in a ``with`` block.
        """
        if self.binding is None:
            raise InputError("trace_fit needs the MLL to trace: gpviz.trace_fit(mll)")
        if self._in_context:
            raise InputError("this FitTracer is already tracing (nested `with` on the same tracer)")
        self._in_context = True
        self.ended = None
        self.timeline.start_clock()
        # where a patch point moved, record at every evaluation instead of every optimizer step
        self._per_evaluation = bool(hooks.missing_patches())
        for g in self.binding.groups:
            self._wrap_forward(g)
        hooks.install(self)

    def exit(self) -> None:
        """Ends the context form: the hooks and every ``forward`` wrapper are undone, whatever happened."""
        try:
            hooks.uninstall(self)
        finally:
            for mll, wrapper in reversed(self._restore):
                _unwrap_forward(mll, wrapper)
            self._restore = []
            self._in_context = False
            for g in self._bound.groups:
                g.pending = None
            self.ended = time.time()

    def _wrap_forward(self, g: Group) -> None:
        mll = g.mll
        had = "forward" in mll.__dict__
        recorder = self

        def forward(*args, **kwargs):
            try:
                # looked up at call time: a recorder that exits out of order relinks the chain
                out = forward.__dict__["__wrapped__"](*args, **kwargs)
            except BaseException:
                if recorder.error is None:
                    g.pending, g.pending_failed, g.fresh = None, True, True
                    g.evals += 1
                    recorder.timeline.evals += 1
                raise
            if recorder.error is None:
                try:
                    g.pending = out.detach() if isinstance(out, torch.Tensor) else None
                    g.pending_failed, g.fresh = False, True
                    g.evals += 1
                    recorder.timeline.evals += 1
                    if recorder._per_evaluation and not hooks.in_marked_run():
                        # a BoTorch path gpviz cannot mark (gpviz.hooks warned): every evaluation is a step
                        recorder._on_joint_step(hooks.FitContext(), None)
                except Exception as e:  # contained
                    recorder.fail(e)
            return out

        # function attributes (set through __dict__: mypy declares none on a function)
        forward.__dict__.update(__wrapped__=mll.forward,  # bound method (or another recorder's wrapper already there)
                                _gpviz_had=had, _gpviz_tracer=recorder)
        mll.__dict__["forward"] = forward
        self._restore.append((mll, forward))

    # ----- the Listener protocol: what gpviz.hooks calls during a traced fit ----------------

    def hook_matches(self, ctx: hooks.FitContext) -> bool:
        """Whether the optimizer run starting now fits this recorder's MLL (or one of its sub-MLLs)."""
        return ctx.mll is not None and self._group_of(ctx.mll) is not None

    def hook_reset_run(self, closure) -> None:
        """An optimizer run starts somewhere: forget the last run's member layout."""
        self._run.batched = None
        self._run.closure = closure

    def hook_begin_run(self, ctx: hooks.FitContext, closure) -> None:
        """An optimizer run of this recorder's MLL starts."""
        self.timeline.run_start = self.timeline.evals
        self._run.ctx = ctx

    def hook_scipy_step(self, xk) -> None:
        """Joint scipy L-BFGS-B: one step of all members (``xk``: a copy of the state)."""
        self.guard(self._on_joint_step, self._run.ctx, None, xk)

    def hook_batched_step(self, result) -> None:
        """Batched L-BFGS-B: one member's new iterate (scipy's live ``OptimizeResult``)."""
        self.guard(self._on_batched_marker, result)

    def hook_torch_step(self, parameters, result) -> None:
        """``fit_gpytorch_mll_torch``: one step (BoTorch's live parameters and ``OptimizationResult``)."""
        self.guard(self._on_joint_step, self._run.ctx, result, None, parameters)

    # ----- callback form -------------------------------------------------------------------

    def on_callback(self, args: tuple, kwargs: dict) -> None:
        """One call of ``FitTracer.callback``: BoTorch's ``(parameters, result)`` or scipy's ``(xk)``.

        Does nothing inside the context form (which records already) or once stopped.
        """
        if self._in_context or self.error is not None:
            return
        try:
            ctx = hooks.fit_context()
            if self.binding is None:
                if ctx.mll is None:
                    raise InputError("FitTracer() without an MLL could not find the MLL being fit; "
                                     "pass it: FitTracer(mll)")
                self.bind(ctx.mll)
            self.timeline.start_clock()
            result = args[1] if len(args) >= 2 else kwargs.get("result")
            if result is not None and hasattr(result, "step") and hasattr(result, "fval"):
                self._on_joint_step(ctx, result)
            elif ctx.member is not None:
                self._on_member_step(ctx)
            else:
                self._on_joint_step(ctx, None)
        except Exception as e:  # contained by design
            self.fail(e)

    # ----- recording -------------------------------------------------------------------------

    def _resolve_group(self, ctx: hooks.FitContext) -> int | None:
        g = self._group_of(ctx.mll)
        if g is not None:
            return g
        b = self._bound
        if ctx.mll is not None:
            if b.store.n == 0 and len(b.groups) == 1 and not self._in_context:
                # FitTracer(mll) passed to a fit of another MLL (batch_cross_validation builds its own): follow it
                self.bind(ctx.mll)
                return 0
            return None
        pending = [i for i, grp in enumerate(b.groups) if grp.fresh]
        if len(pending) == 1:
            return pending[0]
        return 0 if len(b.groups) == 1 else None

    def _committed(self, t: int, live: bool = True) -> None:
        self.timeline.reached(t)
        if live and self.on_step is not None:
            self.on_step()

    def _on_joint_step(self, ctx: hooks.FitContext, result, x=None, parameters=None) -> None:
        """All members of a group took one (joint) optimizer step.

        In the context form the marker hands over the optimizer's state (scipy's copy of
        ``x``, or torch's live ``parameters``) and the last evaluation's output: both are
        kept as they are and turned into values and losses in bulk later.
        """
        g = self._resolve_group(ctx)
        if g is None:
            return
        grp, tl = self._bound.groups[g], self.timeline
        if self._in_context and grp.pending is not None and (x is not None or parameters is not None):
            key = (g, id(parameters) if parameters is not None else id(self._run.closure))
            params = parameters if parameters is not None else getattr(self._run.closure, "parameters", None)
            layout = self.raw.joint_layout(key, grp.reader, params)
            if layout is not None:
                if x is None:
                    x = to_numpy(torch.cat([p.detach().reshape(-1) for p in parameters.values()]))
                self._joint_fast(g, grp, ctx, result, layout, np.asarray(x, np.float64))
                return
        step = int(result.step) if result is not None else (int(ctx.scipy_step) if ctx.scipy_step else None)
        seg = tl.current
        restart = bool(seg is not None and seg.group == g and step is not None and step <= seg.last_step
                       and tl.run_start is None)
        seg = tl.segment(g, ctx.attempt, restart)
        if step is None:
            step = seg.last_step + 1
        # loss per member: the evaluation at this point (context form), BoTorch's fval (one member)
        # or, for a batched model on the joint path in the callback form, a no-grad evaluation
        if self._in_context and grp.pending is not None:
            loss = member_loss(grp.n, grp.pending)
        elif result is not None and grp.n == 1:
            loss = np.array([float(result.fval)])
        elif self._in_context:
            loss = np.full(grp.n, np.nan)
        else:
            with torch.no_grad():
                loss = member_loss(grp.n, -hooks.loss_closure(grp.mll)())
        if self._in_context:
            evaluation = float(tl.evals - seg.eval_start)
        elif ctx.scipy_evals is not None:
            evaluation = float(ctx.scipy_evals)
        elif result is not None and ctx.scipy_step is None:
            evaluation = float(step)  # torch_minimize: one evaluation per step
        else:
            evaluation = math.nan
        t = seg.base + step - 1
        self._bound.store.append(t, len(tl.segments) - 1, step, np.arange(grp.offset, grp.offset + grp.n), loss,
                                  tl.elapsed(), evaluation, self._read(g))
        seg.last_step = max(seg.last_step, step)
        seg.max_evaluation = max(seg.max_evaluation, evaluation) if not math.isnan(evaluation) else seg.max_evaluation
        grp.fresh = False
        self._committed(t)

    def _joint_fast(self, g: int, grp: Group, ctx: hooks.FitContext, result, layout: int, x: np.ndarray) -> None:
        tl, store = self.timeline, self._bound.store
        step = int(result.step) if result is not None else None
        seg = tl.segment(g, ctx.attempt, False)
        if step is None:
            step = seg.last_step + 1
        t = seg.base + step - 1
        row = store.n
        store.append_block(t, len(tl.segments) - 1, step, grp.offset, grp.n, tl.elapsed(),
                           float(tl.evals - seg.eval_start))
        full = self.raw.add(row, layout, x, grp.pending, grp.n, limit=2000)
        if step > seg.last_step:
            seg.last_step = step
        grp.fresh = False
        if full:
            self.materialize()
        self._committed(t)

    def _on_batched_marker(self, res) -> None:
        """Context form, batched path: scipy's live result of one member's new iterate."""
        run = self._run.batched
        i = run.index.get(id(getattr(res, "x", None))) if run is not None else None
        if run is None or i is None:  # (no run: no index either)
            ctx = hooks.fit_context()
            if ctx.member is None or ctx.states is None:
                # BoTorch's batched frame moved (gpviz.hooks warned once): no member index, so record
                # every member at each evaluation instead (values from the model, losses from the MLL)
                g = self._resolve_group(ctx)
                if g is not None and self._bound.groups[g].fresh:
                    self._on_joint_step(ctx, None)
                return
            g = self._group_of(ctx.mll) if ctx.mll is not None else self._resolve_group(ctx)
            run = BatchedRun(g, ctx.attempt, ctx.states, {id(st.x): k for k, st in enumerate(ctx.states)})
            if g is not None:
                run.layout = self.raw.batched_layout(self._bound.groups[g].reader, self._run.closure)
            self._run.batched = run
            i = ctx.member
        if run.group is None:
            return  # another MLL's fit
        st = run.states[i]
        if run.layout is None:
            self._committed(self._commit_member(run.group, run.attempt, i, float(st.f), int(st.n_iterations),
                                                float(st.fun_calls)))
            return
        # fast path: keep a copy of the member's raw state; constraint transforms run in bulk later
        # the row's raw state joins the pending list before the live view may read (in on_step):
        # a read in between would see the row with its values not yet written (NaN)
        row = self._bound.store.n
        t = self._commit_member(run.group, run.attempt, i, float(st.f), int(st.n_iterations), float(st.fun_calls),
                                read=False)
        if self.raw.add(row, run.layout, st.x.copy(), None, 1, limit=20000):
            self.materialize()
        self._committed(t)

    def _on_member_step(self, ctx: hooks.FitContext) -> None:
        """Callback form, batched path: one member took a step of its own L-BFGS-B."""
        if ctx.member is None or ctx.member_loss is None or ctx.member_step is None:
            raise RuntimeError("batched L-BFGS-B callback without its optimizer frame (unknown BoTorch version)")
        g = self._resolve_group(ctx)
        if g is None:
            return
        evaluation = float(ctx.member_evals) if ctx.member_evals is not None else math.nan
        t = self._commit_member(g, ctx.attempt, ctx.member, ctx.member_loss, int(ctx.member_step), evaluation)
        self._committed(t)

    def _commit_member(self, g: int, attempt, member: int, loss: float, step: int, evaluation: float,
                       read: bool = True) -> int:
        """Records one member's step; returns its timestep (the caller commits it)."""
        grp, tl = self._bound.groups[g], self.timeline
        if member >= grp.n:
            raise RuntimeError(f"member {member} out of range for a batch of {grp.n}")
        seg = tl.current
        restart = bool(seg is not None and seg.group == g and tl.run_start is None
                       and step <= seg.member_steps.get(member, 0))
        seg = tl.segment(g, attempt, restart)
        t = seg.base + step - 1
        self._bound.store.append_one(t, len(tl.segments) - 1, step, grp.offset + member, loss, tl.elapsed(),
                                      evaluation, self._read(g)[member] if read else None)
        seg.member_steps[member] = step
        if step > seg.last_step:
            seg.last_step = step
        if evaluation > seg.max_evaluation:
            seg.max_evaluation = evaluation
        return t

    # ----- the result ----------------------------------------------------------------------------

    def materialize(self) -> None:
        """Writes the values and losses of every pending raw state (their rows keep NaN if this fails)."""
        if self.binding is None:
            return
        try:
            self.raw.materialize(self.binding.store, len(self.binding.keys))
        except Exception as e:  # contained: those rows keep NaN values
            self.fail(e)

    def version(self) -> tuple:
        """Changes whenever :meth:`result` would differ (after pending states are materialized)."""
        self.materialize()
        b = self.binding
        return (id(b), self.rows, self.raw.written, len(self.timeline.segments), self.timeline.next_t,
                self.timeline.evals, self.ended, id(b.expr) if b is not None else None)

    def result(self) -> FitTrace:
        """The trace as recorded now, frozen: copies of the rows, the runs and the groups."""
        self.materialize()
        b = self.binding
        events = b.store.arrays() if b is not None else EventStore(0).arrays()
        for a in events.values():
            a.flags.writeable = False
        initial = None
        if b is not None:
            initial = b.initial.copy()
            initial.flags.writeable = False
        segments = tuple(replace(s, member_steps=dict(s.member_steps)) for s in self.timeline.segments)
        groups = tuple(replace(g, pending=None) for g in b.groups) if b is not None else ()
        return FitTrace(b.expr if b is not None else None, b.keys if b is not None else (), events, segments,
                        groups, initial, self.timeline.next_t, self.ended, self.feature_names)
