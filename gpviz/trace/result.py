"""A recorded fit as a frozen result: frames, losses, summary, loss plot and page.

:class:`FitTrace` is built from a recorder's store (:meth:`gpviz.trace.recorder.TraceRecorder.result`):
once when a fit has finished, or once per new step for a view taken while it runs. It holds
copies (read-only arrays), so a trace taken earlier never changes while the fit goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from gpviz import display as _display
from gpviz.errors import InputError
from gpviz.markup import escape_html
from gpviz.models.expr import ModelExpr, model_expr
from gpviz.options import reject_unknown
from gpviz.trace.plot import loss_series
from gpviz.trace.store import dense_frames
from gpviz.trace.summary import summarize, timesteps_to_show
from gpviz.values.columns import I_MODEL, I_TIMESTEP
from gpviz.words import plural

if TYPE_CHECKING:  # matplotlib is imported where pictures are made (gpviz.charts), not here
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

#: The options :meth:`FitTrace.render` takes (``FitTracer.render`` takes the same).
RENDER_OPTIONS = ("max_timesteps", "title", "loss_chart", "verdicts", "feature_names", "units", "tasks", "outputs")


@dataclass(frozen=True, eq=False)
class FitTrace:
    """Every member at every recorded step of a fit; frozen (assigning an attribute raises).

    Attributes:
        expr: The (first) model's expression, or None (nothing bound, or a model gpviz cannot draw).
        keys: Parameter keys recorded (columns of :attr:`frames`).
        events: One row per member per committed step (:meth:`gpviz.trace.store.EventStore.arrays`), read-only.
        segments: The optimizer runs (:class:`gpviz.trace.reader.Segment` copies).
        groups: The models fit (:class:`gpviz.trace.reader.Group` copies: ``offset``, ``n``, ``evals``).
        initial: ``members x keys`` values before the first step (read-only), or None.
        n_timesteps: Timesteps recorded (over all attempts and sub-models).
        ended: ``time.time()`` when the traced fit ended, or None while it runs.
        feature_names: Names of the input columns the expression was made with.
    """

    expr: ModelExpr | None
    keys: tuple[str, ...]
    events: dict
    segments: tuple
    groups: tuple
    initial: np.ndarray | None
    n_timesteps: int
    ended: float | None
    feature_names: Sequence[str] | pd.DataFrame | None = None

    @cached_property
    def _frames(self) -> pd.DataFrame:
        """The dense frame, made once per trace (``cached_property`` writes the instance dict, not an attribute)."""
        attempts = np.array([s.i_attempt for s in self.segments], np.int64)
        return dense_frames(self.events, self.n_members, self.keys, self.initial, attempts)

    @property
    def frames(self) -> pd.DataFrame:
        """Every member at every recorded step: ``i_timestep, i_attempt, step, i_model, loss, active,
        elapsed`` then one float64 column per key (constrained values); a copy.

        ``i_timestep`` (0, 1, ...) is monotonic over attempts and sub-models;
        ``i_attempt`` is 0 for BoTorch's first attempt, 1 for the first retry (which
        resamples from the priors), ...; ``step`` restarts at 1 in each attempt
        (BoTorch's count); ``i_model`` is the batch member (or the sub-model of a
        ModelListGP); ``loss`` is the member's negative MLL; ``active`` is False for a
        member that is no longer being optimized (it keeps its last values and loss);
        ``elapsed`` is seconds since tracing began.
        """
        return self._frames.copy()

    @property
    def n_members(self) -> int:
        """Members traced: batch members, or sub-models of a ModelListGP."""
        return sum(g.n for g in self.groups)

    @property
    def n_runs(self) -> int:
        """Optimizer runs recorded: attempts, and one per sub-model of a ModelListGP."""
        return len(self.segments)

    @property
    def model_name(self) -> str:
        """Class name of the (first) model traced."""
        return type(self.groups[0].model).__name__ if self.groups else "model"

    def summary(self, loss_tol: float = 1e-3, param_rtol: float = 1e-2) -> pd.DataFrame:
        """Per member: when it converged by its own criterion, and how much work the fit did.

        See :func:`gpviz.trace.summary.summarize` for the criterion and the columns.
        """
        return summarize(self.events, self.groups, self.segments, loss_tol, param_rtol)

    def plot(self, ax: Axes | None = None) -> MplFigure:
        """Loss per member against the timestep (matplotlib ``Figure``; drawn by :func:`gpviz.charts.loss_plot`)."""
        return _display.plot(self, ax=ax)

    def loss_series(self) -> dict:
        """Every member's loss at every recorded step (see :func:`gpviz.trace.plot.loss_series`)."""
        summary = self.summary() if len(self.events["t"]) else None
        return loss_series(self.events, summary, self.segments, self.n_members)

    def timesteps_to_show(self, max_timesteps: int | None = None, end: int | None = None) -> np.ndarray:
        """Timesteps an animated page shows: all, or at most ``max_timesteps`` (see
        :func:`gpviz.trace.summary.timesteps_to_show`); only those before ``end`` if given."""
        last = self.n_timesteps if end is None else max(0, min(int(end), self.n_timesteps))
        return timesteps_to_show(last, self.segments, max_timesteps)

    def render_frame(self, max_timesteps: int | None = None, end: int | None = None) -> pd.DataFrame:
        """The frame an animated page shows: ``i_timestep`` (the same numbers as in :attr:`frames`),
        ``i_model`` and the expression's keys, sorted by step then member; every step, or at most
        ``max_timesteps`` of them; before the first step, the values the fit starts from as timestep 0.

        Args:
            max_timesteps: None (every step) or at most this many timesteps (see :meth:`timesteps_to_show`).
            end: Only timesteps before this one (the live view's completed steps).
        """
        fr = self._frames
        keys = list(self.expr.keys) if self.expr is not None else []
        keep = self.timesteps_to_show(max_timesteps, end=end)
        if not len(fr) or not len(keep):
            n = self.n_members
            out = pd.DataFrame({I_TIMESTEP: np.zeros(n, np.int32), I_MODEL: np.arange(n, dtype=np.int32)})
            col = {k: i for i, k in enumerate(self.keys)}
            init = self.initial if self.initial is not None else np.full((n, len(self.keys)), np.nan)
            for k in keys:
                out[k] = init[:, col[k]]
            return out
        sub = fr[fr[I_TIMESTEP].isin(keep)]
        out = pd.DataFrame({I_TIMESTEP: sub[I_TIMESTEP].to_numpy(np.int32), I_MODEL: sub[I_MODEL].to_numpy(np.int32)})
        for k in keys:
            out[k] = sub[k].to_numpy(np.float64)
        return out

    def render(self, max_timesteps: int | None = None, title: str | None = None, loss_chart: bool = True,
               verdicts: bool | None = None, *, feature_names: Sequence[str] | pd.DataFrame | None = None,
               units: str = "model",
               tasks: Sequence[str] | None = None, outputs: Sequence[str] | None = None,
               **unknown: object) -> _display.RenderedPage:
        """The animated page (see :meth:`gpviz.FitTracer.render` for the options).

        Returns:
            A :class:`gpviz.html.figure.Figure`.

        Raises:
            InputError: for an unknown option or one that does not apply, or a trace without an expression.
        """
        reject_unknown("FitTrace.render", unknown, RENDER_OPTIONS)
        if self.expr is None:
            raise InputError("nothing to render: the trace has no model expression (no MLL was bound)")
        expr = self.expr
        if feature_names is not None or tasks is not None or outputs is not None:
            expr = model_expr(self.expr.module, feature_names if feature_names is not None else self.feature_names,
                              tasks=tasks, outputs=outputs)
        return _display.render(self, max_timesteps=max_timesteps, title=title, loss_chart=loss_chart,
                               verdicts=verdicts, expr=expr, units=units)

    def _repr_html_(self) -> str:
        try:
            return self.render()._repr_html_()
        except Exception as e:  # a display must never break a notebook
            return f"<pre>{escape_html(repr(self))}: {escape_html(type(e).__name__)}: {escape_html(e)}</pre>"

    def __repr__(self) -> str:
        return (f"<FitTrace: {plural(self.n_members, 'member')}, {plural(len(self.keys), 'key')}, "
                f"{plural(self.n_timesteps, 'timestep')}, {plural(len(self.segments), 'optimizer run')}>")
