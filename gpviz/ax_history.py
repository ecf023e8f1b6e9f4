"""An Ax experiment's real model history: every surrogate Ax fitted while it ran, kept as it was used.

Ax refits its surrogate before generating trials and keeps none of the models it
replaces. :class:`ModelHistory` is wrapped around the user's loop::

    history = gpviz.ModelHistory(client, folder="history")
    with history:
        for _ in range(20):
            for index, p in client.get_next_trials(max_trials=1).items():
                client.complete_trial(index, raw_data=evaluate(p))
    with history:  # later: the same history goes on, across as many blocks as the experiment takes
        ...
    history.render().save("history.html")
    gpviz.ModelHistory.load("history")  # in another session: the same snapshots and page, from the folder

Inside the block every ``fit_gpytorch_mll`` call is traced (:func:`gpviz.trace_fits`),
and after each ``client.get_next_trials`` the model the client now holds is recorded
once (a :class:`Snapshot`: its values in model and original units, its names and units
from the experiment, its ``state_dict``, the data it was fitted on, its traced fit).
``Client.get_next_trials`` is wrapped on the instance only for the block (an instance
attribute shadowing the class's method) and the client is left as found afterwards.
"""

from __future__ import annotations

from typing import Any, Literal

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

import numpy as np

from gpviz import display
from gpviz.display import RenderedPage
from gpviz.ax import CardPage, analysis, ax_model_expr, cv_problem, is_ax_object, model_source
from gpviz.errors import InputError
from gpviz.sweep.runner import cv_sweep
from gpviz.trace.fits import trace_fits
from gpviz.values.parameters import parameters
from gpviz.values.units import to_units
from gpviz.words import plural


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One surrogate Ax used, as it was when Ax generated trials with it.

    Attributes:
        trials: How many trials the model was fitted on (its training points).
        expr: The model's expression then: names from the search space, Ax's units, the source as title.
        values: Its parameters then, model units (``i_model`` and one column per key).
        original: The same in the experiment's units (:func:`gpviz.values.units.to_units`), or None
            where they cannot be converted.
        labels: Section title -> the units that section is shown in (for ``original``).
        state: The model's ``state_dict`` (CPU copies).
        train_X: The inputs it saw, ``n x d`` (after Ax's transforms).
        train_Y: The outputs it saw, ``n x m`` (as the model stores them).
        fit: The :class:`gpviz.FitTracer` of its fit, or None when it was not traced.
    """

    trials: int
    expr: object
    values: pd.DataFrame
    original: pd.DataFrame | None
    labels: dict
    state: dict = field(repr=False)
    train_X: torch.Tensor = field(repr=False)
    train_Y: torch.Tensor = field(repr=False)
    fit: object = field(default=None, repr=False)


def _training_data(model) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's training inputs ``n x d`` and targets ``n x m`` (a batch of outputs is put in columns)."""
    X = model.train_inputs[0].detach().cpu().clone()
    Y = model.train_targets.detach().cpu().clone()
    if X.dim() == 3:  # a batched multi-output model holds one copy of the inputs per output
        X = X[0]
    Y = Y.unsqueeze(-1) if Y.dim() == 1 else Y.transpose(-1, -2)
    return X, Y


class ModelHistory:
    """Records every surrogate an Ax ``Client`` fits inside a ``with`` block, one :class:`Snapshot` per model.

    The same history may be entered again (a later block of the same experiment): its
    snapshots accumulate across blocks, each model recorded once.

    Args:
        client: An Ax ``Client``.
        folder: Where to keep each snapshot as it is recorded (``trials_<n>.pt``: its
            ``state_dict``, the data it saw, its values, names and source), or None.

    Attributes:
        snapshots: The models in the order Ax fitted them.
        metric: The modelled metric (of the last model), or None before the first.
        title: What the models were read from (e.g. ``"Ax Client 'tune' · node MBM · SingleTaskGP"``).

    Raises:
        InputError: ``client`` is not an Ax object with ``get_next_trials``.
    """

    def __init__(self, client: Any, folder: str | os.PathLike | None = None) -> None:
        if not is_ax_object(client) or not callable(getattr(client, "get_next_trials", None)):
            raise InputError(f"ModelHistory records an Ax Client's fits, got {type(client).__name__}")
        self.client: Any = client
        self.folder = Path(folder) if folder is not None else None
        self.snapshots: list[Snapshot] = []
        self.metric: str | None = None
        self.title: str = ""
        self._tracing = trace_fits()
        self._fits: list = []

    def __repr__(self) -> str:
        counts = ", ".join(str(s.trials) for s in self.snapshots)
        return f"<gpviz ModelHistory: {plural(len(self.snapshots), 'model')} (trials seen: {counts or '-'})>"

    def __enter__(self) -> "ModelHistory":
        if self.client is None:
            raise InputError("this ModelHistory was loaded from a folder (ModelHistory.load): it has no Ax Client "
                             "to record; make a new ModelHistory(client, folder=...) to record more")
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._fits = self._tracing.__enter__()
        original = self.client.get_next_trials

        def get_next_trials(*args, **kwargs):
            out = original(*args, **kwargs)
            self.record()
            return out

        self.client.get_next_trials = get_next_trials  # this instance only, for the block
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        self.client.__dict__.pop("get_next_trials", None)
        self._tracing.__exit__(exc_type, exc, tb)
        return False

    def record(self) -> Snapshot | None:
        """Records the model the client holds now, unless it is the last one recorded (or there is none yet).

        Called after every ``get_next_trials`` inside the block; call it yourself after
        other calls that make Ax refit.

        Returns:
            The new snapshot, or None.
        """
        try:
            expr = ax_model_expr(self.client)
        except InputError:  # no BoTorch model yet (initialization trials)
            return None
        model: Any = expr.module
        if self.snapshots and self.snapshots[-1].expr.module is model:  # type: ignore[attr-defined]
            return None
        values = parameters(expr, units="model")
        try:
            original, labels = to_units(expr, values, "original")
        except InputError:  # a model whose transforms gpviz cannot invert: model units only
            original, labels = None, {}
        X, Y = _training_data(model)
        fit = next((t for t in reversed(self._fits) if t.mll is not None and t.mll.model is model), None)
        snap = Snapshot(int(X.shape[-2]), expr, values, original, labels,
                        {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, X, Y, fit)
        self.snapshots.append(snap)
        self.metric = ", ".join(expr.metrics) if expr.metrics else None
        self.title = expr.title or ""
        if self.folder is not None:
            # the expression (the model in it, names, Ax's units, the title) and the frames travel pickled, so
            # ModelHistory.load gives the same snapshots and the same page without the client
            torch.save({"trials": snap.trials, "state_dict": snap.state, "train_X": X, "train_Y": Y,
                        "values": values.to_dict(orient="list"), "feature_names": [f.name for f in expr.features],
                        "metric": self.metric, "source": self.title, "expr": expr, "values_frame": values,
                        "original": original, "labels": labels},
                       self.folder / f"trials_{snap.trials:04d}.pt")
        return snap

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "ModelHistory":
        """The history a ``ModelHistory(client, folder=folder)`` saved: its snapshots in the order Ax fitted them.

        The loaded history has no client (it records nothing more: entering it is an InputError)
        and no traced fits (``Snapshot.fit`` is None); its values, names, units, ``state_dict``,
        data and page are the recorded ones. The files are pickles (``torch.load(...,
        weights_only=False)``): load only folders you trust.

        Raises:
            InputError: ``folder`` is not a folder, holds no ``trials_<n>.pt`` file, or a file
                was saved by a gpviz that did not keep the model's expression (named).
        """
        path = Path(folder)
        if not path.is_dir():
            raise InputError(f"ModelHistory.load: {str(folder)!r} is not a folder")
        files = sorted(path.glob("trials_*.pt"))
        if not files:
            raise InputError(f"ModelHistory.load: {str(path)!r} holds no trials_<n>.pt snapshot")
        history = cls.__new__(cls)
        history.client, history.folder, history.snapshots = None, path, []
        history.metric, history.title = None, ""
        history._tracing, history._fits = trace_fits(), []
        for file in files:
            saved = torch.load(file, weights_only=False)
            if "expr" not in saved:
                raise InputError(f"ModelHistory.load: {str(file)!r} was saved without the model's expression "
                                 f"(by an older gpviz); record the experiment again to show it")
            history.snapshots.append(Snapshot(int(saved["trials"]), saved["expr"], saved["values_frame"],
                                              saved["original"], dict(saved["labels"]), saved["state_dict"],
                                              saved["train_X"], saved["train_Y"], None))
            history.metric, history.title = saved["metric"], saved["source"]
        return history

    def render(self, *, units: str = "model", title: str | None = None) -> RenderedPage:
        """The models Ax used, one band per trial count, in ``units`` (``"original"``: the experiment's).

        Returns:
            A gpviz Figure.

        Raises:
            InputError: no model was recorded, or an unknown ``units``.
        """
        if not self.snapshots:
            raise InputError("ModelHistory recorded no model: Ax fitted none inside the block (it fits its "
                             "surrogate once the initialization trials are done)")
        return display.render(self, units=units, title=title)

    def _repr_html_(self) -> str:
        return self.render()._repr_html_()


def history_text(history: ModelHistory) -> str:
    """The history as plain text: what it is, then one line per model with its parameters (first member)."""
    counts = ", ".join(str(s.trials) for s in history.snapshots)
    lines = [f"Ax model history: {history.title or 'an Ax Client'}, metric {history.metric or '?'}",
             f"{plural(len(history.snapshots), 'model')} Ax fitted and used; n = the first n trials in the order "
             f"Ax ran them (trials seen: {counts})"]
    for snap in history.snapshots:
        labels = snap.expr.labels  # type: ignore[attr-defined]
        row = snap.values.iloc[0]
        lines.append(f"n = {snap.trials}: " + ", ".join(f"{labels.get(k, k)} {float(row[k]):.4g}"
                                                       for k in snap.expr.keys))  # type: ignore[attr-defined]
    return "\n".join(lines)


def default_sizes(num_trials: int, count: int = 6) -> list[int]:
    """Up to ``count`` trial counts from 3 (or 5 when there are enough) to ``num_trials``, evenly spaced.

    Raises:
        InputError: fewer than 3 trials.
    """
    if num_trials < 3:
        raise InputError(f"an over-time sweep needs at least 3 completed trials, got {num_trials}")
    low = 5 if num_trials >= 5 else 3
    return sorted({int(v) for v in np.linspace(low, num_trials, count).round()})


def HistoryAnalysis(history: ModelHistory | None = None, *, sizes: list[int] | None = None,  # noqa: N802
                    refit: bool = False, units: str | None = None, metric: str | None = None):
    """An Ax analysis of the surrogate over time, for ``client.compute_analyses([HistoryAnalysis(...)])``.

    With a :class:`ModelHistory`, the card shows the models Ax actually fitted and used
    (one band per model, labelled by the trials it saw). Without one (an experiment
    already run), it shows the cheap reconstruction: :func:`gpviz.cv_sweep` of the
    generation strategy Ax hands the analysis, ``order="trials"`` (size n: the first n
    trials in the order Ax ran them) and by default ``refit=False`` (one fit per size,
    leave-one-out in closed form). Either page says what it is; where Ax asks for plain
    content the card gives the same as text, and its ``df`` holds the values (history)
    or the scores (sweep).

    Args:
        history: A recorded history, or None for the over-time sweep.
        sizes: The sweep's trial counts (default: up to 6, evenly spaced up to every completed trial).
        refit: The sweep's ``refit`` (``True``: refit every leave-one-out fold, n times the cost).
        units: ``"original"`` or ``"model"``. Default: the experiment's units (decades for a
            log-scaled parameter), for a history and for the sweep alike (the sweep converts each
            cell through its own model's transforms after Ax's, :attr:`gpviz.Sweep.data_units`).
        metric: The sweep's metric (default: the surrogate's first).

    Returns:
        An ``ax.analysis.analysis.Analysis`` whose ``compute`` returns the card (Ax's error
        card, saying why, before Ax has fitted a model).
    """
    def page(experiment, generation_strategy, adapter) -> CardPage:
        if history is not None:
            figure: Any = history.render(units=units or "original")
            frame = pd.concat([s.values.assign(trials=s.trials) for s in history.snapshots], ignore_index=True)
            return CardPage(title=f"gpviz: {figure.title}",
                            subtitle="the surrogates Ax fitted and used, one band per model, labelled by the trials "
                                     "it saw", html=figure.html(), text=history_text(history), df=frame)
        source = model_source(generation_strategy, adapter, "gpviz.ax_history.HistoryAnalysis")
        chosen = sizes if sizes is not None else default_sizes(len(cv_problem(source, metric).trial_indices))
        sweep = cv_sweep(source, sizes=chosen, order="trials", refit=refit, metric=metric, progress=False)
        how = "refit on every leave-one-out fold" if refit else "leave-one-out at each size's fitted hyperparameters"
        scores = sweep.scores[["size", *sweep.metrics, "status"]]
        return CardPage(title=f"gpviz: the surrogate over the experiment's trials ({how})",
                        subtitle="Ax's model specification refit on the first n trials in the order Ax ran them, one "
                                 "band per n", html=sweep.render(units=units or "original").html(),
                        text="\n".join([sweep.mode_note, scores.to_string(index=False)]), df=sweep.scores)

    return analysis("HistoryAnalysis", page)
