"""Every fit inside a block: ``with gpviz.trace_fits() as fits:`` traces each ``fit_gpytorch_mll`` call made there.

Whoever builds the MLL (Ax's ``client.get_next_trials()``, BoTorch's
``batch_cross_validation``, a user's helper), ``fit_gpytorch_mll`` hands every
MLL it optimizes to one of BoTorch's fallback routines, which it looks up in the
``botorch.fit`` module at call time (:data:`gpviz.hooks.FIT_ENTRIES`). For the
duration of the block those are wrapped: each call gets its own :class:`gpviz.FitTracer`, entered around the
original routine, so it records exactly what ``trace_fit`` records, with the same
zero-extra-evaluation guarantee. A ``ModelListGP`` is fit one sub-model at a time
(BoTorch recurses per output): one tracer per sub-model.
"""

from __future__ import annotations

import threading
import warnings
from typing import Literal

from gpviz import hooks
from gpviz.errors import TracerWarning
from gpviz.models.expr import model_expr
from gpviz.models.sources import source_of
from gpviz.trace.tracer import FitTracer

_LOCK = threading.RLock()
_BLOCKS: list["FitList"] = []          # active ``trace_fits`` blocks, outermost first


class FitList(list):
    """The :class:`gpviz.FitTracer` of every fit made inside a ``trace_fits`` block, in call order."""

    #: The block's ``feature_names`` (names, or an Ax object whose model's tracers take its expression).
    _feature_names: object = None

    def __repr__(self) -> str:
        return f"<gpviz fits: {len(self)} traced fit(s)>"


def _wrap(orig):
    """BoTorch's fit routine ``orig``, run inside a fresh :class:`FitTracer` while a block is open."""
    def traced(mll, *args, **kwargs):
        blocks = list(_BLOCKS)
        if not blocks:
            return orig(mll, *args, **kwargs)
        try:
            tracer = FitTracer(mll, feature_names=_names(blocks[-1]))
        except Exception as e:  # the fit must go on even if gpviz cannot trace it
            warnings.warn(f"gpviz.trace_fits could not trace a fit of {type(mll).__name__} ({type(e).__name__}: {e});"
                          " the fit runs untraced", TracerWarning, stacklevel=2)
            return orig(mll, *args, **kwargs)
        for b in blocks:
            b.append(tracer)
        with tracer:
            return orig(mll, *args, **kwargs)

    traced.__dict__["__wrapped__"] = orig  # a function attribute (mypy declares none on a function)
    traced.__name__ = getattr(orig, "__name__", "traced")
    return traced


def _names(block: FitList):
    names = getattr(block, "_feature_names", None)
    return None if source_of(names) is not None else names


class trace_fits:  # noqa: N801  (used like a function: ``with gpviz.trace_fits() as fits``)
    """Traces every ``fit_gpytorch_mll`` call made inside the block.

    Args:
        feature_names: Names of the input columns, for every traced model; or an
            Ax object (``Client``...): when the block ends, each tracer of the model
            Ax now holds takes its expression (names from the search space, Ax's units).

    Yields:
        A :class:`FitList` of :class:`gpviz.FitTracer`, one per fit, appended as
        fits start (each renders, summarizes and plots like ``trace_fit``'s).

    Example::

        with gpviz.trace_fits(feature_names=client) as fits:
            client.get_next_trials(max_trials=1)
        fits[-1].render().save("fit.html")
    """

    def __init__(self, feature_names: object = None):  # names (a list, a DataFrame) or an Ax object
        self._fits = FitList()
        self._fits._feature_names = feature_names

    def __enter__(self) -> FitList:
        with _LOCK:
            if not _BLOCKS:
                hooks.wrap_fit_entries(_wrap)
            _BLOCKS.append(self._fits)
        return self._fits

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        with _LOCK:
            _BLOCKS[:] = [b for b in _BLOCKS if b is not self._fits]
            if not _BLOCKS:
                hooks.unwrap_fit_entries()
        source = source_of(self._fits._feature_names)
        if source is not None and exc_type is None:
            _adopt(self._fits, self._fits._feature_names)
        return False


def _adopt(fits: FitList, obj) -> None:
    """Gives the tracers of the model an Ax object now holds that object's expression (names, units)."""
    try:
        expr = model_expr(obj)
    except Exception:  # e.g. the block ended before any model was fitted: keep x0, x1...
        return
    names = [f.name for f in expr.features] if expr.features is not None else None
    for tracer in fits:
        model = tracer.mll.model if tracer.mll is not None else None
        if model is None or tracer.expr is None:
            continue
        if model is expr.module:
            tracer.expr = expr
        elif names is not None and tracer.expr.features is not None and len(tracer.expr.features) == len(names):
            try:
                tracer.expr = model_expr(model, names)  # keys do not depend on names: frames stay valid
            except Exception:
                continue


__all__ = ["trace_fits", "FitList"]
