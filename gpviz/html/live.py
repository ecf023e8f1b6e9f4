"""A notebook figure that updates in place while a model fits (IPython is imported only when displaying)."""

from __future__ import annotations

import itertools

from gpviz.html.assets import header_html
from gpviz.html.figure import Figure, check_id, figure
from gpviz.view.build import build_view

_LIVE_IDS = itertools.count(1)  # unique container ids for live figures of one process

class LiveFigure:
    """A figure that updates in place in a notebook while a model fits.

    The page assets are displayed once; each :meth:`update` replaces only the
    figure (its container and data). The caller throttles updates. Outside a
    notebook nothing is displayed and updates only keep the latest figure.

    Args:
        expr: The expression whose parameters are drawn.
        facts: key -> :class:`~gpviz.view.records.ParamFacts` (bounds, prior modes, verdicts).
        title, config_labels: As for :func:`gpviz.render.render_frame`.
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
        self._display = display
        self._handle = None
        self._ipd = None

    def _figure(self, frame) -> Figure:
        view = build_view(self.expr, frame, self.facts, title=self.title, config_labels=self.config_labels)
        return figure(view, self.element_id)

    def _show(self, fig: Figure) -> None:
        if not self._display:
            return
        if self._ipd is None:
            try:  # imported here: gpviz never imports IPython at import time
                from IPython import get_ipython
                import IPython.display as ipd
            except ImportError:
                self._display = False
                return
            shell = get_ipython()
            if shell is None or getattr(shell, "kernel", None) is None:  # plain Python or a terminal IPython:
                self._display = False                                    # no frontend that renders HTML
                return
            self._ipd = ipd
            ipd.display(ipd.HTML(header_html()))
        html = self._ipd.HTML(fig.fragment())
        if self._handle is None:
            self._handle = self._ipd.display(html, display_id=True)
        else:
            self._handle.update(html)

    def update(self, frame) -> Figure:
        """Redraws with ``frame`` (a wide frame, e.g. the tracer's frames so far)."""
        self.figure = self._figure(frame)
        self.updates += 1
        self._show(self.figure)
        return self.figure

    def finish(self, frame) -> Figure:
        """The last update; returns the final :class:`Figure` (save it with ``.save(path)``)."""
        return self.update(frame)

    def _repr_html_(self) -> str:
        return self.figure._repr_html_() if self.figure is not None else "<i>gpviz: no data yet</i>"
