"""Where results find their page: a renderer registry that the page layer fills.

Expressions, fit tracers and sweeps sit early in the pipeline and the pages late,
so an early stage cannot import the page layer. Each result type's renderer is
registered here instead (by :mod:`gpviz.rendering`, which ``import gpviz`` always
loads), and ``Expr._repr_html_``, ``FitTracer.render`` and ``Sweep.render`` call
:func:`render`; ``Sweep.plot`` calls :func:`plot` (matplotlib pictures are made
where pages are made, :mod:`gpviz.charts`). Lookup follows the MRO, like the kernel
handler registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, cast

from gpviz.errors import UnsupportedError

Renderer = Callable[..., object]

#: How a result can be shown: ``"page"`` (a Figure), ``"show"`` (displayed in a notebook, maybe live) or
#: ``"plot"`` (a matplotlib figure).
KINDS = ("page", "show", "plot")

RENDERERS: dict[tuple[str, type], Renderer] = {}


def register_renderer(cls: type, kind: str = "page") -> Callable[[Renderer], Renderer]:
    """Registers ``fn(obj, **options)`` as the ``kind`` renderer of ``cls`` (and its subclasses)."""
    if kind not in KINDS:
        raise UnsupportedError(f"unknown renderer kind {kind!r} (must be one of {list(KINDS)})")

    def deco(fn: Renderer) -> Renderer:
        RENDERERS[(kind, cls)] = fn
        return fn

    return deco


def renderer_for(obj, kind: str = "page") -> Renderer | None:
    """The renderer registered for the nearest class in ``type(obj)``'s MRO, or None."""
    for base in type(obj).__mro__:
        if (kind, base) in RENDERERS:
            return RENDERERS[(kind, base)]
    return None


def _call(kind: str, obj, options):
    fn = renderer_for(obj, kind)
    if fn is None:
        raise UnsupportedError(f"gpviz has no {kind} renderer for {type(obj).__module__}.{type(obj).__name__}")
    return fn(obj, **options)


class RenderedPage(Protocol):
    """What a ``page`` renderer returns (a ``gpviz.html.figure.Figure``), as the stages before the page layer
    may name it: a standalone page, its notebook output, and a file."""

    def html(self) -> str: ...

    def _repr_html_(self) -> str: ...

    def save(self, path) -> Path: ...


class Shown(Protocol):
    """What a ``show`` renderer returns: a notebook output (``gpviz.html.live.LiveFigure`` or a ``Figure``)."""

    def _repr_html_(self) -> str: ...


def render(obj, **options) -> RenderedPage:
    """Renders ``obj`` as a page with its registered renderer.

    Raises:
        UnsupportedError: if no renderer is registered for ``type(obj)``.
    """
    # the page renderers gpviz.rendering registers make Figures
    return cast(RenderedPage, _call("page", obj, options))


def show(obj, **options) -> Shown:
    """Shows ``obj`` in a notebook with its registered ``show`` renderer (a live figure while a fit runs).

    Raises:
        UnsupportedError: if none is registered for ``type(obj)``.
    """
    return cast(Shown, _call("show", obj, options))


def plot(obj, **options):
    """``obj``'s matplotlib picture, drawn by its registered ``plot`` renderer.

    Raises:
        UnsupportedError: if none is registered for ``type(obj)``.
    """
    return _call("plot", obj, options)
