"""What a sweep runs on: ``(make_model, X, Y)`` given directly, or read from a model source (an Ax Client): its
completed trials in the order they ran and a factory refitting its own model specification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd
from gpytorch.mlls import ExactMarginalLogLikelihood, MarginalLogLikelihood

from gpviz.ax import SurrogateFactory
from gpviz.errors import InputError
from gpviz.models.sources import source_of
from gpviz.priors.factories import PriorFactory
from gpviz.values.units import DataUnits


@dataclass(frozen=True)
class SweepInput:
    """The runner's input, whoever supplied it.

    Attributes:
        make_model: ``(train_X, train_Y) -> model`` for ``n x (n-1) x d`` / ``n x (n-1) x m`` folds.
        X: ``N x d`` inputs (as given: tensor, array or DataFrame).
        Y: ``N`` or ``N x m`` outputs.
        feature_names: Names of the columns of ``X`` (a DataFrame's columns, or the source's), else ``None``.
        trial_indices: An Ax experiment's trial index of each row, else ``None``.
        mll_cls: The marginal log likelihood class to fit with.
        about: For a model source, what the rows are, in words (the experiment, the model, the metric),
            else ``""``.
        data_units: What the data went through before the factory (an Ax source's transforms,
            :func:`gpviz.ax.sweep_units`), for ``units="original"``; else ``None``.
    """

    make_model: Callable[..., Any]
    X: object
    Y: object
    feature_names: list[str] | None
    trial_indices: tuple[int, ...] | None
    mll_cls: type[MarginalLogLikelihood]
    about: str = ""
    data_units: DataUnits | None = None


def _about(problem) -> str:
    """E.g. ``"Ax Client 'tune' · node MBM · SingleTaskGP, metric loss, 15 completed trials"``."""
    head = getattr(problem, "source", "") or "the experiment"
    return f"{head}, metric {problem.metric}, {len(problem.trial_indices)} completed trials"


def sweep_input(make_model: object, X: object, Y: object, *, metric: str | None = None,
                mll_cls: type[MarginalLogLikelihood] | None = None) -> SweepInput:
    """Resolves ``cv_sweep``'s first arguments: a factory with data, or a model source (an Ax Client) alone.

    A :func:`gpviz.with_priors` factory made from an Ax Client carries the client's trials: given
    without ``X`` and ``Y`` it runs on them, as the client itself does.

    Raises:
        InputError: data passed with a source, no data with a factory, a non-callable
            factory, or ``metric`` without a source.
    """
    source = source_of(make_model)
    if source is not None and source.cv_problem is not None:  # its trials and its own model specification
        if X is not None or Y is not None:
            raise InputError(f"cv_sweep reads the data of a {source.name} object from its experiment: pass no X or "
                             f"Y, got X={type(X).__name__}, Y={type(Y).__name__}")
        problem = source.cv_problem(make_model, metric)
        return SweepInput(problem.make_model, problem.X, problem.Y, list(problem.feature_names),
                          tuple(problem.trial_indices), mll_cls or problem.mll_cls, _about(problem), problem.data_units)
    if isinstance(make_model, PriorFactory) and make_model.problem is not None and X is None and Y is None:
        problem = make_model.problem  # with_priors(client, ...): the client's trials
        if metric is not None and metric != problem.metric:
            raise InputError(f"this with_priors factory rebuilds the model of metric {problem.metric!r}, got "
                             f"metric={metric!r}: pass metric= to with_priors instead")
        return SweepInput(make_model, problem.X, problem.Y, list(problem.feature_names),
                          tuple(problem.trial_indices), mll_cls or problem.mll_cls, _about(problem), problem.data_units)
    if metric is not None:
        raise InputError(f"metric= names the metric of an Ax experiment, got metric={metric!r} with "
                         f"{type(make_model).__name__}")
    if not callable(make_model):
        raise InputError(f"make_model must be callable (train_X, train_Y) -> model, got {type(make_model).__name__}")
    if X is None or Y is None:
        raise InputError("cv_sweep(make_model, X, Y, sizes, repeats) needs the data X and Y")
    names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    return SweepInput(make_model, X, Y, names, None, mll_cls or ExactMarginalLogLikelihood,
                      data_units=_factory_units(make_model))


def _factory_units(make_model: object) -> DataUnits | None:
    """The transforms a factory built for a source's data expects its ``X`` to have been through (Ax's own
    factory, or a :func:`gpviz.with_priors` factory made from a client, given data by hand), else None."""
    inner = make_model.make_model if isinstance(make_model, PriorFactory) else make_model
    return inner.data_units if isinstance(inner, SurrogateFactory) else None


__all__ = ["SweepInput", "sweep_input"]
