"""The live notebook view of a fit: what ``FitTracer.show()`` drives while the fit runs.

The recorder calls :meth:`LiveView.step` after each committed step; at most
:data:`LIVE_UPDATES_PER_SECOND` of those redraw the shown figure (a
``gpviz.html.live.LiveFigure``, made through :func:`gpviz.display.show`, which the
page layer registers) with the completed steps so far. When the fit ends the
figure is finished with the trace's own page.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from gpviz.trace.result import FitTrace
from gpviz.trace.summary import MAX_TIMESTEPS

#: At most this many live updates per second in a notebook.
LIVE_UPDATES_PER_SECOND = 4.0


def live_frame(trace: FitTrace) -> pd.DataFrame:
    """What the live view shows: the completed steps, every timestep but the last, which may still be filling.

    On the batched path members commit one at a time, so the newest timestep can
    hold some members' new values beside others' old ones; the live view waits
    until the next timestep begins. The final figure (``render``) shows all.
    """
    return trace.render_frame(MAX_TIMESTEPS, end=trace.n_timesteps - 1)


def live_title(trace: FitTrace) -> str:
    """The live view's title: how far the fit has come."""
    return f"Fitting {trace.model_name}: {max(trace.n_timesteps - 1, 0)} timesteps so far (live)"


class LiveView:
    """The one live figure of a tracer, updated at most :data:`LIVE_UPDATES_PER_SECOND` times a second.

    Args:
        trace: Called for the trace as recorded now (built only when an update is due).

    Attributes:
        shown: The shown live figure (``gpviz.html.live.LiveFigure``), or None when no live view runs.
    """

    def __init__(self, trace: Callable[[], FitTrace]):
        self.shown = None
        self.last = 0.0
        self.trace = trace

    def start(self, shown) -> None:
        """The live figure ``shown`` is on the page now; updates go to it."""
        self.shown = shown
        self.last = time.perf_counter()

    def step(self) -> None:
        """A step was committed: redraw, unless the last update was too recent."""
        if self.shown is None:
            return
        now = time.perf_counter()
        if now - self.last < 1.0 / LIVE_UPDATES_PER_SECOND:
            return
        self.last = now
        trace = self.trace()
        self.shown.update(live_frame(trace), title=live_title(trace))

    def finish(self, render: Callable[[], object]):
        """Replaces the live figure with ``render()`` (the finished page), once.

        Returns:
            The final figure, or None if no live view was running.
        """
        live, self.shown = self.shown, None
        if live is not None:
            return live.finish(render())
        return None
