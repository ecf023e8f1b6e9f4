"""A notebook figure that updates in place while a model fits: one output (IPython is used only when displaying)."""

from __future__ import annotations

import itertools
import sys
from typing import Any

import pandas as pd

from gpviz.display import RenderedPage
from gpviz.errors import InputError
from gpviz.html.assets import asset_html
from gpviz.html.figure import Figure, check_id, figure
from gpviz.html.notebook import ASSETS, assets_to_carry
from gpviz.html.page import next_display_suffix
from gpviz.view.build import build_view

_LIVE_IDS = itertools.count(1)  # unique container ids for live figures of one process


class LiveFigure:
    """A figure that updates in place in a notebook while a model fits: ONE output, whatever the number of updates.

    The first display carries the page assets the notebook does not have yet
    (:func:`gpviz.html.notebook.assets_to_carry`); each :meth:`update` replaces the
    output with the figure alone (the page keeps the scripts), and :meth:`finish`
    replaces it with the final figure and the same assets again, so that the
    saved notebook holds them. The caller throttles updates. Outside a notebook
    nothing is displayed and updates only keep the latest figure.

    Args:
        expr: The expression whose parameters are drawn.
        facts: key -> :class:`~gpviz.view.records.ParamFacts` (bounds, prior modes, verdicts).
        title, config_labels: As for :func:`gpviz.rendering.render_frame`.
        element_id: Fixed container id (default: a per-process counter).
        display: Set ``False`` to never display (e.g. in scripts and tests).
    """

    def __init__(self, expr, *, facts=None, title=None, config_labels=None, element_id: str | None = None,
                 display: bool = True):
        self.expr = expr
        self.facts = facts
        self.title = title
        self.config_labels = config_labels
        self.element_id = check_id(element_id) if element_id is not None else f"gpviz-live-{next(_LIVE_IDS)}"
        self.figure: Figure | None = None
        self.updates = 0
        self.finished = False
        self._display = display
        self._handle = None
        self._ipd: Any = None  # IPython.display, imported only once a kernel shows the figure
        self._carried = ""  # the assets the first display carried: the final display carries them again

    def _figure(self, frame, title=None) -> Figure:
        view = build_view(self.expr, frame, self.facts, title=title or self.title, config_labels=self.config_labels)
        return figure(view, self.element_id)

    def _show(self, fig: Figure, final: bool = False) -> None:
        if not self._display:
            return
        # a final figure is a figure's own page: its content-hash id may be on the page already (an earlier
        # display of tracer.render()), so this display gets its own suffix
        body = fig.fragment(fig.element_id + next_display_suffix()) if final else fig.fragment()
        if self._handle is None:
            ipython = sys.modules.get("IPython")  # gpviz never imports IPython: a kernel has it loaded
            shell = ipython.get_ipython() if ipython is not None else None
            if shell is None or getattr(shell, "kernel", None) is None:  # plain Python or a terminal IPython:
                self._display = False                                    # no front end that renders HTML
                return
            import IPython.display as ipd  # already imported by the running kernel

            self._ipd = ipd
            self._carried = "".join(asset_html(n) for n in assets_to_carry(ASSETS))
            self._handle = ipd.display(ipd.HTML(self._carried + body), display_id=True)
            return
        self._handle.update(self._ipd.HTML((self._carried if final else "") + body))

    def update(self, frame: pd.DataFrame, title: str | None = None) -> Figure:
        """Redraws with ``frame`` (a wide frame, e.g. the tracer's completed steps so far).

        Raises:
            InputError: after :meth:`finish`.
        """
        if self.finished:
            raise InputError("this live figure has finished; render a new figure instead")
        self.figure = self._figure(frame, title)
        self.updates += 1
        self._show(self.figure)
        return self.figure

    def finish(self, final: RenderedPage) -> Figure:
        """Shows ``final`` as the last state (for a fit: ``tracer.render()``, the same page by construction).

        Raises:
            InputError: if ``final`` is not a :class:`Figure`.
        """
        if not isinstance(final, Figure):
            raise InputError(f"LiveFigure.finish expects the final gpviz Figure, got {type(final).__name__}")
        self.figure = final
        self.finished = True
        self.updates += 1
        self._show(final, final=True)
        return final

    def _repr_html_(self) -> str:
        return self.figure._repr_html_() if self.figure is not None else "<i>gpviz: no data yet</i>"

    def _ipython_display_(self) -> None:
        """IPython's display hook: a live figure already on the page (its own output) is not shown twice."""
        if self._handle is not None or self.figure is None:
            return
        import IPython.display as ipd  # called by a running IPython only

        ipd.display(self.figure)
