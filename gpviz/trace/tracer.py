"""The fit tracer: every optimizer step of every batch member of a ``fit_gpytorch_mll`` call, as frames.

:class:`FitTracer` is the face users hold; it is thin. The work is done in three parts:

* the recorder (:mod:`gpviz.trace.recorder`, not public): what BoTorch's fit talks to,
  through :mod:`gpviz.hooks` (the context form) or :attr:`FitTracer.callback`;
* the result (:class:`gpviz.trace.result.FitTrace`, :attr:`FitTracer.trace`): frames,
  losses, summary, plot and page, frozen, built from the recorder's store once per state
  (once, for a finished fit);
* the live notebook view (:mod:`gpviz.trace.live`): what :meth:`FitTracer.show` drives.

Two forms record the same frames:

* ``with gpviz.trace_fit(mll) as tracer: fit_gpytorch_mll(mll)`` records at the
  evaluations the fit makes anyway (no extra closure evaluation). A callback of your own
  (``optimizer_kwargs={"callback": cb}``) is still called, after gpviz's marker, with
  what the optimizer passes it.
* ``tracer = gpviz.FitTracer(mll)`` and ``optimizer_kwargs={"callback": tracer.callback}``
  (also through ``batch_cross_validation(..., fit_args=...)``, where ``mll`` may be left
  out: the tracer binds to the MLL being fit).

The callback contract is BoTorch's (``botorch.optim.core``): ``callback(parameters,
result)`` with the live parameter dict and an ``OptimizationResult`` (``step``, ``fval``,
``status``, ``runtime``, ``message``), called after each optimizer step. The one path
that does not follow it is the per-member batched L-BFGS-B of a batched model, where
BoTorch hands the callback on to scipy: ``callback(xk)``. :attr:`FitTracer.callback`
takes both. To run your own callback beside the tracer's, call both from one function::

    def cb(parameters, result):
        tracer.callback(parameters, result)
        mine(parameters, result)

(or use the context form, which leaves ``optimizer_kwargs`` to you).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
import pandas as pd
from gpytorch.mlls import MarginalLogLikelihood

from gpviz import display as _display
from gpviz.errors import InputError
from gpviz.display import RenderedPage, Shown
from gpviz.markup import escape_html
from gpviz.models.expr import ModelExpr
from gpviz.options import reject_unknown
from gpviz.trace.live import LiveView, live_frame, live_title
from gpviz.trace.recorder import TraceRecorder
from gpviz.trace.result import RENDER_OPTIONS, FitTrace
from gpviz.words import plural

if TYPE_CHECKING:  # matplotlib is imported where pictures are made (gpviz.charts), not here
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure


class FitTracer:
    """Records every optimizer step of every batch member of a model fit.

    Use it as a context manager (``gpviz.trace_fit(mll)``; no extra model
    evaluations) or pass :attr:`callback` to ``fit_gpytorch_mll`` through
    ``optimizer_kwargs={"callback": tracer.callback}`` (the contract: BoTorch's
    ``callback(parameters, OptimizationResult)``; see :mod:`gpviz.trace.tracer`).
    What it recorded is :attr:`trace`, a frozen :class:`~gpviz.trace.result.FitTrace`;
    :attr:`frames`, :meth:`summary`, :meth:`render` ... read it.

    Args:
        mll: The marginal log likelihood that will be fit. May be ``None`` in the
            callback form (e.g. inside ``batch_cross_validation``): the tracer then
            binds to the MLL being fit at the first step.
        feature_names: Names of the input columns, for the expression.
    """

    def __init__(self, mll: MarginalLogLikelihood | None = None,
                 feature_names: Sequence[str] | pd.DataFrame | None = None):
        self._recorder = TraceRecorder(mll, feature_names)
        self._live = LiveView(lambda: self.trace)
        self._trace: tuple | None = None  # (recorder version, FitTrace)

    # ----- what was recorded -------------------------------------------------------------

    @property
    def trace(self) -> FitTrace:
        """The trace as recorded so far, frozen (the same object until the recording changes)."""
        version = self._recorder.version()
        if self._trace is None or self._trace[0] != version:
            self._trace = (version, self._recorder.result())
        return self._trace[1]

    @property
    def mll(self) -> MarginalLogLikelihood | None:
        """The MLL being traced (None until bound)."""
        b = self._recorder.binding
        return b.mll if b is not None else None

    @property
    def keys(self) -> tuple[str, ...]:
        """Parameter keys recorded (columns of :attr:`frames`)."""
        b = self._recorder.binding
        return b.keys if b is not None else ()

    @property
    def expr(self) -> ModelExpr | None:
        """The (first) model's expression, or None; may be replaced by one with the same keys (e.g. other names)."""
        b = self._recorder.binding
        return b.expr if b is not None else None

    @expr.setter
    def expr(self, expr: ModelExpr) -> None:
        if self._recorder.binding is None:
            raise InputError("this FitTracer has no MLL bound yet: it has no expression to replace")
        self._recorder.binding.expr = expr

    @property
    def error(self) -> BaseException | None:
        """The tracer's own first exception, if it hit one (it stopped recording; the fit went on)."""
        return self._recorder.error

    @property
    def ended(self) -> float | None:
        """``time.time()`` when the traced fit ended (the ``with`` block or :meth:`finish`), else None."""
        return self._recorder.ended

    @property
    def n_members(self) -> int:
        """Members traced: batch members, or sub-models of a ModelListGP."""
        b = self._recorder.binding
        return sum(g.n for g in b.groups) if b is not None else 0

    @property
    def n_timesteps(self) -> int:
        """Timesteps recorded so far (over all attempts and sub-models)."""
        return self._recorder.timeline.next_t

    @property
    def n_runs(self) -> int:
        """Optimizer runs recorded: attempts, and one per sub-model of a ModelListGP."""
        return len(self._recorder.timeline.segments)

    @property
    def model_name(self) -> str:
        """Class name of the (first) model being traced."""
        b = self._recorder.binding
        return type(b.groups[0].model).__name__ if b is not None and b.groups else "model"

    @property
    def frames(self) -> pd.DataFrame:
        """Every member at every recorded step (see :attr:`gpviz.trace.result.FitTrace.frames`); a copy."""
        return self.trace.frames

    def summary(self, loss_tol: float = 1e-3, param_rtol: float = 1e-2) -> pd.DataFrame:
        """Per member: when it converged by its own criterion, and how much work the fit did.

        See :func:`gpviz.trace.summary.summarize` for the criterion and the columns.
        """
        return self.trace.summary(loss_tol, param_rtol)

    def plot(self, ax: Axes | None = None) -> MplFigure:
        """Loss per member against the timestep (matplotlib ``Figure``; drawn by :func:`gpviz.charts.loss_plot`)."""
        return self.trace.plot(ax=ax)

    def loss_series(self) -> dict:
        """Every member's loss at every recorded step (see :func:`gpviz.trace.plot.loss_series`)."""
        return self.trace.loss_series()

    def timesteps_to_show(self, max_timesteps: int | None = None, end: int | None = None) -> np.ndarray:
        """Timesteps an animated page shows (see :meth:`gpviz.trace.result.FitTrace.timesteps_to_show`)."""
        return self.trace.timesteps_to_show(max_timesteps, end)

    def render_frame(self, max_timesteps: int | None = None, end: int | None = None) -> pd.DataFrame:
        """The frame an animated page shows (see :meth:`gpviz.trace.result.FitTrace.render_frame`)."""
        return self.trace.render_frame(max_timesteps, end)

    # ----- recording -----------------------------------------------------------------------

    def __enter__(self) -> "FitTracer":
        self._recorder.enter()
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        try:
            self._recorder.exit()
        finally:
            if self._live.shown is not None:
                self._recorder.guard(self._live.finish, self.render)
        return False  # exceptions in the fit (KeyboardInterrupt too) propagate; frames stay

    def callback(self, *args: object, **kwargs: object) -> None:
        """Optimizer callback for ``optimizer_kwargs={"callback": tracer.callback}``.

        Accepts BoTorch's ``cb(parameters, result)`` (joint path: single models,
        MultiTaskGP, custom closures, ``fit_gpytorch_mll_torch``) and scipy's
        ``cb(xk)`` (per-member batched L-BFGS-B of batched models). Inside the
        context-manager form it does nothing (that form already records).
        """
        self._recorder.on_callback(args, kwargs)

    # ----- pages ---------------------------------------------------------------------------

    def render(self, max_timesteps: int | None = None, title: str | None = None, loss_chart: bool = True,
               verdicts: bool | None = None, *, feature_names: Sequence[str] | pd.DataFrame | None = None,
               units: str = "model",
               tasks: Sequence[str] | None = None, outputs: Sequence[str] | None = None,
               **unknown: object) -> RenderedPage:
        """The animated page: the model's expression with one dot per member per parameter,
        stepping through the fit (play, pause, scrub).

        Each chart marks the prior mode and the bounds a value sits at. Parameters that
        :func:`gpviz.prior_pull` judges held by their prior at the model's current values
        (the last step, once the fit is done) in at least half the members are tinted;
        ``verdicts``: ``None`` when the model is small enough (see
        :func:`gpviz.priors.judge.model_verdicts`), ``True`` always, ``False`` never.

        Every step of every member is on the page, its values at display precision (4
        significant digits, see :mod:`gpviz.html.compact`); the player's speed control makes
        1,000+ steps watchable. An explicit ``max_timesteps`` keeps at most that many steps,
        always the first, the last and every retry boundary; :attr:`frames` keeps every exact value.

        Args:
            max_timesteps: None (every step) or at most this many.
            title: Page title.
            loss_chart: Draw the loss chart (one line per member, a cursor at the step shown).
            verdicts: As above.
            feature_names: Input names (default: the tracer's own); an option of
                :func:`gpviz.render`, as are the next three (see :mod:`gpviz.options`).
            units: ``"model"`` (the model's own space) or ``"original"`` (the data's units).
            tasks: Task names, for a multi-task model.
            outputs: Output names, for a model with several outputs.

        Returns:
            A :class:`gpviz.html.figure.Figure`.

        Raises:
            InputError: for an unknown option or one that does not apply.
        """
        reject_unknown("FitTracer.render", unknown, RENDER_OPTIONS)
        if self.expr is None:
            raise InputError("nothing to render: the tracer has no model expression (no MLL bound yet)")
        return self.trace.render(max_timesteps, title, loss_chart, verdicts, feature_names=feature_names,
                                 units=units, tasks=tasks, outputs=outputs)

    def _repr_html_(self) -> str:
        try:
            return self.render()._repr_html_()
        except Exception as e:  # a display must never break a notebook
            return f"<pre>{escape_html(repr(self))}: {escape_html(type(e).__name__)}: {escape_html(e)}</pre>"

    def __repr__(self) -> str:
        return (f"<FitTracer: {plural(self.n_members, 'member')}, {plural(len(self.keys), 'key')}, "
                f"{plural(self.n_timesteps, 'timestep')}, {plural(self.n_runs, 'optimizer run')}>")

    # ----- live view ----------------------------------------------------------------------------

    def show(self, display: bool = True) -> Shown:
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
        live = self._recorder.in_context or self._recorder.rows == 0
        shown = _display.show(self, live=live, display=display)
        if live:
            self._live.start(shown)
            self._recorder.on_step = self._live.step
        return shown

    def live_frame(self) -> pd.DataFrame:
        """What the live view shows: the completed steps (see :func:`gpviz.trace.live.live_frame`)."""
        return live_frame(self.trace)

    def live_title(self) -> str:
        """The live view's title: how far the fit has come."""
        return live_title(self.trace)

    def finish(self) -> RenderedPage | None:
        """Ends a live view started by :meth:`show` (the ``with`` form does this itself).

        Returns:
            The final ``Figure``, or ``None`` if no live view was running.
        """
        if self._recorder.ended is None and not self._recorder.in_context:
            self._recorder.ended = time.time()
        return self._recorder.guard(self._live.finish, self.render)


def trace_fit(mll: MarginalLogLikelihood, feature_names: Sequence[str] | pd.DataFrame | None = None) -> FitTracer:
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
