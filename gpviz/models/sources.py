"""Model sources: outside libraries whose objects hold GP models (e.g. an Ax Client), and how gpviz reads them.

A source module (``gpviz/ax.py``) registers one :class:`ModelSource`; the stages that
accept a model (``model_expr``, ``parameters``, ``render``, ``prior_pull``,
``cv_sweep``) ask :func:`source_of` first, so none of them imports the source
module, and nothing imports the outside library until one of its objects arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ModelSource:
    """How gpviz reads the models an outside library holds.

    Attributes:
        name: The library ("Ax").
        accepts: ``obj -> bool``; must not import the library (it is asked about every object).
        expr: ``(obj, feature_names, *, strict, tasks, outputs) -> ModelExpr``.
        cv_problem: ``(obj, metric) -> problem`` with ``make_model``, ``X``, ``Y``,
            ``feature_names``, ``trial_indices`` and ``mll_cls`` for :func:`gpviz.cv_sweep`, or ``None``.
    """

    name: str
    accepts: Callable[[object], bool]
    expr: Callable
    cv_problem: Callable | None = None


#: Registered model sources, asked in order (filled by the modules that know a library).
MODEL_SOURCES: list[ModelSource] = []


def register_source(source: ModelSource) -> ModelSource:
    """Adds a :class:`ModelSource`, replacing one of the same name."""
    MODEL_SOURCES[:] = [s for s in MODEL_SOURCES if s.name != source.name] + [source]
    return source


def source_of(obj) -> ModelSource | None:
    """The registered source ``obj`` belongs to, or ``None``."""
    for s in MODEL_SOURCES:
        if s.accepts(obj):
            return s
    return None


__all__ = ["ModelSource", "MODEL_SOURCES", "register_source", "source_of"]
