"""One adapter per source: a model, a fit trace, a sweep each become one :class:`~gpviz.view.records.ViewData`.

An adapter reads its source's frames and what the values layer knows about each
parameter (bounds, prior modes, units), takes the verdicts an analysis already
computed, and builds the view. Adding a source (or a new kind of view of one) is
one function here; the HTML layer needs no change.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from gpviz.ax_history import ModelHistory
from gpviz.errors import InputError
from gpviz.priors.judge import SweepJudgement
from gpviz.priors.sensitivity import THRESHOLD as SENSITIVITY_THRESHOLD, diagnose
from gpviz.priors.verdicts import with_verdicts
from gpviz.sweep.influence import INFLUENCE_COLUMNS, top_influence
from gpviz.sweep.result import Sweep
from gpviz.trace.summary import summary_line
from gpviz.trace.result import FitTrace
from gpviz.values.bounds import at_bounds
from gpviz.values.parameters import parameter_frames, parameters
from gpviz.models.expr import ModelExpr, model_expr
from gpviz.values.columns import I_CONFIG, I_MODEL, I_REPEAT, I_TIMESTEP
from gpviz.values.prior_info import ModeConflict, describe_priors, mode_conflicts
from gpviz.values.relevance import Relevance, input_relevance
from gpviz.values.units import (check_units, convert_long, convert_wide, reading_units, relabel, to_units,
                                unit_plan)
from gpviz.view.build import build_view, facts_from_info, members_label
from gpviz.view.records import (AxisKind, CurveData, InfluenceRow, InfluenceTable, Note, NoteKind, PROFILE_DROP,
                                ProfileCurves, Sensitivity, VerdictSummary, ViewData)
from gpviz.words import plural

def default_title(expr) -> str:
    """The expression's own title (e.g. an Ax surrogate's source), else the model's class and batch size."""
    name = type(expr.module).__name__
    if expr.title:  # where the model came from (an Ax Client's surrogate says so)
        return expr.title
    n = int(torch.Size(expr.batch_shape).numel())
    return f"{name}" + (f" \u2014 batch of {n} {members_label(expr)}" if n > 1 else "")


def _facts(expr, info):
    return facts_from_info(info, tuple(expr.keys), dict(expr.roles))


def model_view(expr, verdicts: Mapping[str, str] | None = None, units: str | None = None,
               title: str | None = None) -> ViewData:
    """A model's (or kernel's) current values: a snapshot, or one dot per batch member.

    Args:
        expr: Its expression.
        verdicts: key -> verdict (from :func:`gpviz.priors.judge.model_verdicts`; its ``note``, when
            the analysis failed, is shown on the page), or None.
        units: ``"model"`` or ``"original"`` (see :mod:`gpviz.values.units`).
        title: Figure title (default: :func:`default_title`).
    """
    expr, units = reading_units(expr, units)  # None: the expression's own units
    read = expr
    frame, info = parameter_frames(expr)
    if verdicts:
        info = with_verdicts(info, verdicts)
    if units != "model":
        frame, labels = to_units(expr, frame, units)
        info, _ = to_units(expr, info, units)
        expr = relabel(expr, labels)
    ranked, why = _relevance(read)
    view = build_view(expr, frame, _facts(expr, info), title=title or default_title(expr),
                      summary=_failed_verdicts(verdicts), notes=prior_notes(expr.module) + why)
    return replace(view, warnings=tuple(str(c) for c in prior_conflicts(expr.module)), relevance=ranked)


def _relevance(expr) -> tuple[tuple[Relevance, ...], tuple[Note, ...]]:
    """A model's inputs by relevance for its page (two or more to rank), or a note saying why they are missing."""
    if not isinstance(expr, ModelExpr):
        return (), ()
    try:
        ranked = tuple(input_relevance(expr))
    except Exception as exc:  # noqa: BLE001 - the page stands without the table, and says why
        return (), (Note(NoteKind.about, f"No relevance table: {type(exc).__name__}: {exc}"),)
    return (ranked if len(ranked) >= 2 else ()), ()


def prior_conflicts(module) -> list[ModeConflict]:
    """The priors of ``module`` whose mode lies outside their parameter's bounds (none for a module without priors)."""
    return mode_conflicts(module) if hasattr(module, "named_priors") else []


def prior_notes(module) -> tuple[Note, ...]:
    """One line naming every prior of ``module`` with its mode (``Priors: covar_module.lengthscale ~
    LogNormalPrior(loc=1.96, scale=1.73), mode 0.355; ...``), or none."""
    described = describe_priors(module) if hasattr(module, "named_priors") else []
    if not described:
        return ()
    return (Note(NoteKind.about, "Priors: " + "; ".join(f"{path} ~ {text}" for path, text in described)),)


#: What a model page says its profiles are.
PROFILES_NOTE = ('"Why here?" under each chart: the log likelihood (blue), the log prior (green) and their sum '
                 "(black) along the chart's axis, the other parameters at their values; each curve is drawn down to "
                 "{drop:g} below its own peak. A flat likelihood at a bound, a sum that peaks between the likelihood's "
                 "peak and the prior's mode (pulled by the prior), or two peaks of the sum read at a glance.")

def profile_ranges(view: ViewData) -> dict[str, tuple[float, float, bool]]:
    """key -> ``(lo, hi, log)`` of each chart's axis: where its "why here?" profiles are evaluated."""
    out = {}
    for key, p in view.params.items():
        axis = view.axes[p.axis]
        if np.isfinite(axis.lo) and np.isfinite(axis.hi) and axis.hi > axis.lo:
            out[key] = (float(axis.lo), float(axis.hi), axis.kind == AxisKind.LOG)
    return out


def with_profiles(view: ViewData, found: Mapping) -> ViewData:
    """The view with each key's profiles (key -> :class:`~gpviz.priors.profiles.Profile`) on its chart.

    ``found.note`` (why some or all are missing) becomes a note of the page; so does what the curves are.
    """
    params = dict(view.params)
    for key, prof in found.items():
        if key in params and prof.grid.size >= 2:
            params[key] = replace(params[key], profile=ProfileCurves(prof.grid, prof.log_likelihood, prof.log_prior))
    note = getattr(found, "note", "")
    text = note or (PROFILES_NOTE.format(drop=PROFILE_DROP) if found else "")
    notes = view.notes + ((Note(NoteKind.about, text),) if text else ())
    return replace(view, params=params, notes=notes)


#: A model page's pointer to the explorer (for the exact GPs ``gpviz.explore`` takes).
EXPLORE_NOTE = ("Explore this model in a notebook: gpviz.explore(model) lets you drag each value and watch the "
                "likelihood, the priors, the leave-one-out error and the posterior follow.")


def with_note(view: ViewData, text: str) -> ViewData:
    """The view with one more line of text below the expression (:attr:`NoteKind.about`)."""
    return replace(view, notes=view.notes + (Note(NoteKind.about, text),))


def with_sensitivity(view: ViewData, frame: pd.DataFrame | None, note: str = "") -> ViewData:
    """The view with each key's power-scaling diagnosis (rows of :func:`gpviz.prior_sensitivity`) on its chart.

    A batched model's key shows its largest sensitivities over the members, diagnosed at the same threshold;
    ``note`` (why there is none) becomes a line of the page.
    """
    params = dict(view.params)
    if frame is not None and len(frame):
        top = frame.groupby("key", sort=False).agg(prior=("prior", "max"), likelihood=("likelihood", "max"),
                                                   pareto_k=("pareto_k", "max"))
        for key, row in top.iterrows():
            if key in params:
                pri, lik = float(row["prior"]), float(row["likelihood"])
                params[key] = replace(params[key], sensitivity=Sensitivity(
                    pri, lik, diagnose(pri, lik), float(row["pareto_k"]), SENSITIVITY_THRESHOLD))
    notes = view.notes + ((Note(NoteKind.about, note),) if note else ())
    return replace(view, params=params, notes=notes)


def _failed_verdicts(verdicts) -> VerdictSummary | None:
    """The page's note when the verdicts were asked for but failed (:class:`~gpviz.priors.judge.ModelVerdicts`)."""
    note = getattr(verdicts, "note", "")
    return VerdictSummary(note) if note else None


def trace_view(tracer: FitTrace, verdicts: Mapping[str, str] | None = None, max_timesteps: int | None = None,
               title: str | None = None, loss_chart: bool = True, expr=None, units: str = "model") -> ViewData:
    """A fit trace: every member's parameters stepping through the fit, the loss chart below.

    Args:
        tracer: A recorded fit (:class:`~gpviz.trace.result.FitTrace`, ``FitTracer.trace``).
        verdicts: key -> verdict at the model's current values, or None.
        max_timesteps: At most this many steps on the page (default None: every step).
        title: Figure title.
        loss_chart: Draw the loss chart in the page (one line per member, a cursor at the step shown;
            :meth:`FitTracer.plot` keeps the matplotlib PNG).
        expr: The expression to draw in (the same keys; e.g. with other feature names), default the tracer's.
        units: ``"model"`` or ``"original"``.
    """
    check_units(units)
    expr = expr if expr is not None else tracer.expr
    frame = tracer.render_frame(max_timesteps)
    try:
        info = parameters(expr, long=True)
    except Exception:  # a model whose parameters cannot be listed still has its trace drawn
        info = None
    if info is not None and verdicts:
        info = with_verdicts(info, verdicts)
    if units != "model":
        frame, labels = to_units(expr, frame, units)
        if info is not None:
            info, _ = to_units(expr, info, units)
        expr = relabel(expr, labels)
    loss = tracer.loss_series() if loss_chart and len(frame) else None  # drawn in the page by gpviz.js
    shown = int(frame[I_TIMESTEP].nunique()) if len(frame) else 0
    # a figure of a finished fit says when it ended: a live view's last state (this same page) then reads as final
    ended = f"; fit ended {time.strftime('%H:%M:%S', time.localtime(tracer.ended))}" if tracer.ended else ""
    title = title or (f"Fit of {tracer.model_name}: {plural(tracer.n_members, 'member')}, "
                      f"{plural(tracer.n_timesteps, 'timestep')} ({shown} shown), "
                      f"{plural(tracer.n_runs, 'optimizer run')}{ended}")
    # the convergence and waste figures FitTracer.summary() computes, stated on the page in one line
    line = summary_line(tracer.summary(), ended=bool(tracer.ended)) if len(frame) else ""
    notes = (Note(NoteKind.fit_summary, line),) if line else ()
    return build_view(expr, frame, _facts(expr, info), title=title, loss=loss, summary=_failed_verdicts(verdicts),
                      notes=notes)


def sweep_info(sweep: Sweep, expr) -> pd.DataFrame:
    """One row per key (bounds, prior mode); ``at_bound`` if any fold of the sweep sits on a bound."""
    long = parameters(expr, long=True).drop_duplicates("key").reset_index(drop=True)
    # every key's folds as one rows x keys block (a key the sweep lacks: no rows, so never at a bound)
    block = sweep.parameters.reindex(columns=long["key"]).to_numpy(np.float64)
    long["at_bound"] = at_bounds(block, long["lower"].to_numpy(np.float64),
                                 long["upper"].to_numpy(np.float64)).any(axis=0)
    return long


def verdict_summary(judgement: SweepJudgement | None, sizes) -> VerdictSummary | None:
    """What a sweep page says about its verdicts: the note, the sentences, and the table rows of held keys."""
    if judgement is None:
        return None
    rows = tuple((k, bands) for k, bands in judgement.bands.items() if any(b is not None and b.held for b in bands))
    return VerdictSummary(judgement.note, tuple(judgement.sentences.values()), tuple(int(s) for s in sizes), rows)


def sweep_in_units(sweep: Sweep, expr, info: pd.DataFrame, units: str = "model"
                   ) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """A sweep's parameters, its per-key info and its expression in ``units``.

    ``"original"`` converts each cell with its own model's transforms, after the sweep's
    :attr:`~gpviz.Sweep.data_units` (an Ax sweep's ``Log`` / ``UnitX``: a log-scaled parameter's
    lengthscale in decades, as on the single-model page): every cell's
    factory normalizes and standardizes its own subset, so each cell and fold has its
    own scale (each cell's fitted model is rebuilt, nothing is refitted; a ``"separate"``
    sweep's folds each with their own model's). The bounds and
    prior modes drawn, one per key, are those of the largest size's first finished
    repeat, converted the same way.

    Returns:
        ``(parameters, info, expr)``: converted copies (or the inputs for ``"model"``) and
        the expression with its sections labelled in the units they are shown in.
    """
    check_units(units)
    params = sweep.parameters
    if units == "model" or params.empty:
        return params, info, expr
    names = [f.name for f in expr.features] if expr.features else None
    parts: list[pd.DataFrame] = []
    ref: tuple[int, Any] | None = None
    for (i_config, i_repeat), cell in params.groupby([I_CONFIG, I_REPEAT], sort=True):
        built = sweep.models(sweep.sizes[int(i_config)], int(i_repeat))
        if isinstance(built, list):  # folds fitted one by one: each fold's rows with its own model's transforms
            members = len(cell) // len(built)
            for i, fold in enumerate(built):
                cell_expr = sweep.with_units(model_expr(fold, names))
                rows = cell[cell[I_MODEL] // members == i]
                own = convert_wide(cell_expr, rows.assign(**{I_MODEL: rows[I_MODEL] - i * members}),
                                   unit_plan(cell_expr))
                parts.append(own.assign(**{I_MODEL: rows[I_MODEL]}))
        else:
            cell_expr = sweep.with_units(model_expr(built, names))
            parts.append(convert_wide(cell_expr, cell, unit_plan(cell_expr)))
        if ref is None or int(i_config) > ref[0]:  # groups come sorted: the first repeat of the largest size
            ref = (int(i_config), cell_expr)
    params = pd.concat(parts).loc[params.index]
    if ref is None:  # params is not empty: at least one cell was read
        raise InputError("sweep_in_units: the sweep's parameters name no cell")
    ref_expr = ref[1]
    info = convert_long(ref_expr, info.assign(i_model=0), unit_plan(ref_expr))
    _, section_labels = to_units(ref_expr, info, units)
    return params, info, relabel(expr, section_labels)


def influence_table(influence: pd.DataFrame, keys, names, per_key: int = 3) -> InfluenceTable:
    """The most influential points per key (:func:`gpviz.sweep.influence.top_influence`), in ``keys``' order.

    Args:
        influence: From :meth:`gpviz.Sweep.influence`.
        keys: The expression's keys (a key not among them is left out).
        names: The feature columns of ``influence`` (the point's row).
        per_key: Points listed per key.
    """
    top = top_influence(influence[influence["key"].isin(list(keys))], per_key)
    place = {k: i for i, k in enumerate(keys)}
    top = top.iloc[np.argsort([place[k] for k in top["key"]], kind="stable")] if len(top) else top
    rows = tuple(InfluenceRow(str(r["key"]), int(r["size"]), int(r[I_REPEAT]), int(r["index"]),
                              tuple((str(n), float(r[n])) for n in names), float(r["full_value"]),
                              float(r["fold_value"]), float(r["rel_shift"]))
                 for _, r in top.iterrows())
    return InfluenceTable(rows, per_key)


def sweep_view(sweep: Sweep, expr, judgement: SweepJudgement | None = None, one_fold_per_repeat: bool = False,
               metric: str = "mse", title: str | None = None, chart: bool = True,
               axis_ranges: Mapping | None = None, units: str = "model",
               influence: pd.DataFrame | None = None) -> ViewData:
    """A sweep: one labelled band per dataset size, the scaling curve beside it.

    With a judgement that holds verdicts, each size band of each parameter is tinted
    by the share of its folds held at the prior's mode (over every repeat judged),
    and the page says in words where each parameter leaves its prior's mode.

    Args:
        sweep: A :class:`~gpviz.sweep.result.Sweep`.
        expr: The expression of its model (with the feature names to show).
        judgement: From :func:`gpviz.priors.judge.sweep_verdicts`, or None (no verdicts, no note).
        one_fold_per_repeat: One dot per repeat (its first fold) instead of one per fold.
        metric: The metric of the scaling curve.
        title: Figure title (default: the sweep's sizes and repeats; "" for none).
        chart: Put the scaling curve beside the expression.
        axis_ranges: key -> (lo, hi) its axis must cover (stacked sweeps share axes).
        units: ``"model"`` or ``"original"`` (each cell converted with its own
            transforms, :func:`sweep_in_units`).
        influence: :meth:`gpviz.Sweep.influence`'s frame: the page lists the most influential
            points per parameter below the charts (in model units); None: no list.
    """
    params, info, expr = sweep_in_units(sweep, expr, sweep_info(sweep, expr), units)
    frame = sweep.frame(one_fold_per_repeat, keys=list(expr.keys), parameters=params)
    if judgement is not None and judgement.verdicts:
        info = with_verdicts(info, judgement.verdicts)
    facts = _facts(expr, info)
    if judgement is not None and judgement.bands:
        facts = {k: replace(f, bands=judgement.bands.get(k)) for k, f in facts.items()}
    curve = CurveData(sweep.scores, sweep.reference_scores, metric) if chart else None
    # cells the page does not draw are said, never left out silently
    undrawn = sweep.cell_notes()
    notes: tuple[Note, ...] = (Note(NoteKind.not_drawn, "Not drawn: " + "; ".join(undrawn)),) if undrawn else ()
    if sweep.mode_note:  # batched, one by one or in closed form: what the scores mean depends on it
        notes = (Note(NoteKind.fit_mode, sweep.mode_note),) + notes
    per = "first fold of each repeat" if one_fold_per_repeat else "every fold of every repeat"
    if title is None:  # "" means no title (the comparison page's headings carry the label)
        title = (f"Leave-one-out sweep: {type(sweep.model).__name__}, n = "
                 f"{', '.join(str(s) for s in sweep.sizes)}, {plural(sweep.repeats, 'repeat')} ({per})")
    view = build_view(expr, frame, facts, title=title,
                      config_labels=[f"n = {s}" for s in sweep.sizes],
                      member_label=sweep.member_label(one_fold_per_repeat), notes=notes, curve=curve,
                      axis_ranges=axis_ranges,
                      summary=verdict_summary(judgement, sweep.sizes))
    if influence is None:
        return view
    names = [c for c in influence.columns if c not in INFLUENCE_COLUMNS]
    return replace(view, influence=influence_table(influence, expr.keys, names))


def history_view(history: ModelHistory, units: str = "model", title: str | None = None) -> ViewData:
    """An Ax experiment's model history: one band per model Ax fitted, labelled by the trials it saw.

    Each band is one recorded model's values (in model units, or each model converted with
    its own transforms for ``"original"``); the axes, bounds and names are the last model's.

    Args:
        history: A :class:`~gpviz.ax_history.ModelHistory` with at least one snapshot.
        units: ``"model"`` or ``"original"`` (the experiment's units: decades for a log-scaled parameter).
        title: Figure title (default: what the models were read from: the experiment and the metric).
    """
    check_units(units)
    snaps = history.snapshots
    last = snaps[-1]
    expr: Any = last.expr
    frames = [(s.values if units == "model" or s.original is None else s.original).assign(**{I_CONFIG: i})
              for i, s in enumerate(snaps)]
    frame = pd.concat(frames, ignore_index=True).reindex(columns=[I_CONFIG, "i_model", *expr.keys])
    _, info = parameter_frames(expr)
    if units != "model" and last.original is not None:
        info, _ = to_units(expr, info, units)
        expr = relabel(expr, last.labels)
    counts = ", ".join(str(s.trials) for s in snaps)
    metric = history.metric or "the modelled metric"
    notes = (Note(NoteKind.about, f"The {plural(len(snaps), 'model')} Ax fitted and used while the experiment ran "
                                  f"(recorded by gpviz.ax_history.ModelHistory), metric {metric}: the band n = k is the model "
                                  f"fitted on the first k trials in the order Ax ran them (trials seen: {counts})."),)
    if title is None:  # the source's title names the experiment and the metric ("Ax Client 'tune' ... — metric loss")
        title = f"Ax model history: {history.title}" if history.title else f"Ax model history, metric {metric}"
    return build_view(expr, frame, _facts(expr, info), title=title,
                      config_labels=[f"n = {s.trials}" for s in snaps], member_label="models",
                      notes=notes)
