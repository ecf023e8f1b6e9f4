"""Rendering anything: a model, kernel, MLL, expression, fit trace or sweep becomes a :class:`Figure`.

The entry points at the end of the pipeline. Each runs the analyses its page
shows (prior pull verdicts, when cheap), hands the results to a view adapter
(:mod:`gpviz.view.adapters`) and draws the view (:mod:`gpviz.html.figure`). It
also registers the renderers that ``Expr._repr_html_``, ``FitTracer.render`` /
``show`` and ``Sweep.render`` reach through :mod:`gpviz.display`.

``gpviz.render`` is the function :func:`render`, and this module is ``gpviz.rendering``
(an entry point never shadows its module): ``from gpviz.rendering import render_frame, Figure``.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Mapping, Sequence, cast

import pandas as pd
import torch

from gpviz import display
from gpviz.ax_history import ModelHistory
from gpviz.charts import fit_modes_chart, loss_plot, scaling_curve
from gpviz.comparing import gap_section
from gpviz.html.below import heldout_html
from gpviz.errors import InputError, PriorModeWarning, VerdictWarning
from gpviz.html.assets import header_html, rows2prose_web
from gpviz.html.figure import Figure, figure
from gpviz.html.live import LiveFigure
from gpviz.markup import Markup, escape_html, js_string, script_json
from gpviz.html.page import Page
from gpviz.models.expr import ModelExpr, model_expr
from gpviz.models.families import is_gp_model, unwrap_model
from gpviz.options import reject_unknown
from gpviz.priors.sensitivity import prior_sensitivity
from gpviz.priors.profiles import ModelProfiles, converted_profiles, model_profiles, profile_work
from gpviz.priors.judge import PULL_MAX_ELEMENTS, PULL_MAX_POINTS, model_verdicts, sweep_verdicts
from gpviz.priors.verdicts import key_verdicts, with_verdicts
from gpviz.sweep.cells import FIXED
from gpviz.sweep.influence import heldout_points
from gpviz.sweep.result import Sweep
from gpviz.trace.modes import FitModeTable
from gpviz.trace.result import FitTrace
from gpviz.trace.tracer import FitTracer
from gpviz.values.parameters import expression_of, parameters
from gpviz.values.units import check_units, reading_units, unit_plan
from gpviz.view.adapters import (history_view, model_view, profile_ranges, sweep_view, trace_view, with_profiles,
                                 with_note, with_sensitivity, EXPLORE_NOTE)
from gpviz.view.build import build_view, facts_from_info
from gpviz.view.frame import prepare_frame
from gpviz.view.records import ViewData
from gpviz.walk.expr import Expr

__all__ = ["Figure", "Page", "LiveFigure", "escape_html", "js_string", "render", "render_frame", "rows2prose_web",
           "header_html", "prepare_frame", "script_json", "key_verdicts", "with_verdicts", "model_verdicts",
           "PULL_MAX_POINTS", "PULL_MAX_ELEMENTS"]


def render_frame(expr: Expr, frame: pd.DataFrame, *, info: pd.DataFrame | None = None, title: str | None = None,
                 config_labels: Sequence[str] | Mapping[int, str] | None = None, extra_html: str = "",
                 element_id: str | None = None, member_label: str | None = None,
                 axis_ranges: Mapping[str, Sequence[float]] | None = None) -> Figure:
    """Draws a parameter frame inside an expression.

    The view follows the columns: ``i_timestep`` -> animated fit trace (rows2prose's
    time control); ``i_config`` -> one labelled band per configuration, top to
    bottom; several rows -> one dot per batch member; one row -> a snapshot.

    Args:
        expr: A :class:`~gpviz.walk.expr.KernelExpr` or :class:`~gpviz.models.expr.ModelExpr`.
        frame: Wide DataFrame: ``i_model`` and one numeric column per ``expr.keys``
            (more columns are dropped), optionally ``i_config`` (0..C-1) or
            ``i_timestep``.
        info: Optional long frame like ``gpviz.parameters(model, long=True)``
            (``key``, ``lower``, ``upper``, ``prior_mode``, optional ``verdict``):
            draws prior modes and bounds, tints parameters "held by prior".
        title: Page and figure title.
        config_labels: Labels of the configurations (list, or mapping i_config -> label).
        extra_html: HTML placed below: a :class:`~gpviz.markup.Markup` made by gpviz
            (e.g. a chart image from ``gpviz.charts.figure_to_img``) as it is; a plain
            string is escaped and shown as text.
        element_id: A fixed container id for reproducible output (default: a
            hash of the content, so the same input gives identical bytes).
        member_label: What a dot is, plural ("leave-one-out folds"); default the
            expression's ``member_label`` ("MCMC samples", "outputs", "members").
        axis_ranges: key -> ``(lo, hi)`` the key's axis must cover: figures given
            the same ranges put the same value at the same position (e.g. stacked
            sweeps in :func:`gpviz.compare`). Axes are widened, never narrowed.

    Returns:
        A :class:`Figure`.

    Raises:
        KeyMismatchError: a placeholder key has no column in ``frame``.
        InputError: unreadable columns, bad ``config_labels``, ``info`` or ``element_id``.
    """
    if not isinstance(expr, Expr):
        raise InputError(f"render_frame expects an expression from gpviz.model_expr / kernel_expr, "
                         f"got {type(expr).__name__}")
    facts = facts_from_info(info, tuple(expr.keys), dict(expr.roles))
    view = build_view(expr, frame, facts, title=title, config_labels=config_labels, member_label=member_label,
                      axis_ranges=axis_ranges)
    return figure(view, element_id, extra_html)


#: What :func:`render` takes (the shared options of :mod:`gpviz.options`, and its own).
RENDER_OPTIONS = ("feature_names", "units", "tasks", "outputs", "title", "element_id", "verdicts", "profiles",
                  "sensitivity")


def render(obj: object, feature_names: Sequence[str] | pd.DataFrame | None = None, units: str | None = None, *,
           tasks: Sequence[str] | None = None, outputs: Sequence[str] | None = None, title: str | None = None,
           element_id: str | None = None, verdicts: bool | None = None, profiles: bool | None = None,
           sensitivity: bool | None = None, **unknown: object) -> Figure:
    """Renders a model, kernel, MLL or expression, or a fit tracer or sweep.

    A model with one member is drawn as a snapshot (its values); a batched
    model (CV folds, MCMC samples) with one dot per member. Prior modes and
    constraint bounds come from the model itself; a GP with training data also
    gets :func:`gpviz.prior_pull` verdicts (parameters held by their prior in at
    least half the members are tinted, see :func:`gpviz.priors.verdicts.key_verdicts`).

    Args:
        obj: A BoTorch/GPyTorch model, kernel, MLL or gpviz expression; or a
            :class:`~gpviz.FitTracer` or :class:`~gpviz.Sweep` (their own ``render``);
            or anything else with a ``.render()`` method, which is called.
        feature_names: Names of the input columns.
        units: ``"model"``: values as the model stores them (labelled with their
            space, e.g. "standardized outputs"); ``"original"``: converted back to
            the data's units where an exact conversion exists (see :mod:`gpviz.values.units`).
            Default ``None``: model units, or the units an expression was built in
            (``model_expr(..., units="original")``).
        tasks: Display names of the tasks of a multi-task model.
        outputs: Display names of the outputs (a ModelListGP's models, or the members of a
            batched multi-output model: its dots).
        title: Figure title (default: the model's class and batch size).
        element_id: Fixed container id for reproducible output.
        verdicts: ``None`` (default): prior_pull verdicts when the model is small
            enough to analyse quickly (:data:`PULL_MAX_POINTS`, :data:`PULL_MAX_ELEMENTS`);
            ``True``: whatever the size; ``False``: none. A model prior_pull cannot
            analyse is drawn without verdicts, never an error.
        profiles: "Why here?" profiles under each chart (:mod:`gpviz.priors.profiles`: the log
            likelihood, the log prior and their sum along the chart's axis). ``None`` (default):
            on the page of an exact GP (either units) when cheap (:data:`~gpviz.priors.profiles.PROFILE_MAX_WORK`;
            the page says when skipped); ``True``: whatever the cost; ``False``: none.
        sensitivity: ``True``: :func:`gpviz.prior_sensitivity`'s power-scaling diagnosis beside each chart
            (numbers on hover; about 2 s for a 30-point, 5-parameter model: 5x the page itself, so only when
            asked). ``None`` / ``False`` (default): none.

    Raises:
        InputError: unknown ``units``, an object gpviz cannot render, an unknown option, or
            an option that does not apply (``tasks`` for a model without tasks, ``outputs``
            for one output, any option an object's own ``render`` does not take).
    """
    reject_unknown("render", unknown, RENDER_OPTIONS)
    if units is not None:
        check_units(units)
    given = {k: v for k, v in dict(feature_names=feature_names, tasks=tasks, outputs=outputs, title=title,
                                   verdicts=verdicts, element_id=element_id, profiles=profiles,
                                   sensitivity=sensitivity).items()
             if v is not None}
    if units is not None and units != "model":
        given["units"] = units
    if isinstance(obj, Figure):
        if given:
            raise InputError(f"render() got a finished Figure: its options are fixed ({', '.join(given)}= "
                             f"cannot change it); pass them when the figure is made")
        return obj
    own_render = getattr(obj, "render", None)
    if not isinstance(obj, (torch.nn.Module, Expr)) and callable(own_render):
        # a fit tracer or a sweep: the same options, passed on; one its render does not take is an InputError
        takes = inspect.signature(own_render).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in takes.values()):
            reject_unknown(f"{type(obj).__name__}.render", {k: v for k, v in given.items() if k not in takes},
                           [k for k, p in takes.items() if p.kind is not p.VAR_POSITIONAL])
        # gpviz's results (tracer, sweep, history) make Figures through the renderers registered below;
        # another object's own render is returned as it is
        return cast(Figure, own_render(**given))
    if isinstance(obj, Expr) and (tasks is not None or outputs is not None):
        raise InputError("render(expression, tasks=/outputs=): an expression's names are fixed; pass them to "
                         "gpviz.model_expr(model, tasks=..., outputs=...) or render the model itself")
    if tasks is not None or outputs is not None:
        if not is_gp_model(unwrap_model(obj)):
            raise InputError(f"tasks= and outputs= apply to a GP model, not to a {type(obj).__name__} "
                             f"(a kernel has no tasks or outputs)")
        expr = model_expr(obj, feature_names, tasks=tasks, outputs=outputs)
    else:
        expr = expression_of(obj, feature_names)
    return _render_expr(expr, units=units, title=title, element_id=element_id, verdicts=verdicts, profiles=profiles,
                        sensitivity=sensitivity)


def _render_expr(expr: Expr, units: str | None = None, title: str | None = None, element_id: str | None = None,
                 verdicts: bool | None = None, profiles: bool | None = None,
                 sensitivity: bool | None = None) -> Figure:
    found = model_verdicts(expr, force=bool(verdicts)) if verdicts is not False else {}
    view = model_view(expr, found, units, title)
    for text in view.warnings:  # a prior whose mode lies outside its bounds: on the page and in Python
        warnings.warn(f"gpviz: {text}", PriorModeWarning, stacklevel=3)
    if profiles is not False:
        view = with_profiles(view, _profiles(expr, view, units, force=bool(profiles)))
    if sensitivity:
        view = with_sensitivity(view, *_sensitivity(expr))
    if profile_work(expr) is not None:  # one exact GP with training data: what gpviz.explore takes
        view = with_note(view, EXPLORE_NOTE)
    return figure(view, element_id)


display.register_renderer(Expr)(_render_expr)  # not as a decorator: render() calls it, typed


def _sensitivity(expr: Expr) -> tuple[object, str]:
    """:func:`gpviz.prior_sensitivity` rows of the model behind ``expr`` (its keys are the page's), or why none."""
    if profile_work(expr) is None:  # one exact GP with training data, as the sampler needs
        return None, "No power-scaling diagnosis: gpviz.prior_sensitivity needs one exact GP with training data."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return prior_sensitivity(expr.module), ""
    except Exception as exc:  # noqa: BLE001 - the page stands without it, and says why
        why = f"{type(exc).__name__}: {exc}"
    warnings.warn(f"gpviz: prior_sensitivity failed on {type(expr.module).__name__} ({why}); the page shows no "
                  f"power-scaling diagnosis", VerdictWarning, stacklevel=3)
    return None, f"No power-scaling diagnosis: gpviz.prior_sensitivity failed ({why})."


def _profiles(expr: Expr, view: ViewData, units: str | None, force: bool) -> ModelProfiles:
    """The "why here?" profiles of a model page, on its charts' axes (computed in model units; an original-units
    page's through each key's conversion)."""
    read, shown = reading_units(expr, units)
    if profile_work(read) is None:
        return ModelProfiles()
    if shown != "model":
        return converted_profiles(read, profile_ranges(view), unit_plan(read).conversions, force=force)
    return model_profiles(read, profile_ranges(view), force=force)


@display.register_renderer(FitTrace)
def _render_tracer(tracer: FitTrace, max_timesteps: int | None = None, title: str | None = None,
                   loss_chart: bool = True, verdicts: bool | None = None, expr: ModelExpr | None = None,
                   units: str = "model") -> Figure:
    found = model_verdicts(tracer.expr, force=bool(verdicts)) if verdicts is not False else {}
    return figure(trace_view(tracer, found, max_timesteps, title, loss_chart, expr=expr, units=units))


@display.register_renderer(FitTracer, kind="show")
def _show_tracer(tracer: FitTracer, live: bool, display: bool = True) -> LiveFigure:
    """One notebook output: a live figure while the fit runs (the tracer feeds it its completed steps and
    finishes it with its own page), else the finished page."""
    expr = tracer.expr
    if expr is None:  # FitTracer.show refuses an unbound tracer before it gets here
        raise InputError("nothing to show: bind the tracer to an MLL first (FitTracer(mll))")
    facts = facts_from_info(_safe_info(tracer), tuple(expr.keys), dict(expr.roles))
    shown = LiveFigure(expr, facts=facts, display=display, title=tracer.live_title())
    if live:  # no verdicts while fitting (prior_pull at every update would slow the fit); the final page has them
        shown.update(tracer.live_frame())
    else:
        shown.finish(tracer.render())
    return shown


def _safe_info(tracer: FitTracer) -> pd.DataFrame | None:
    try:
        return parameters(tracer.expr, long=True)
    except Exception:  # a model whose parameters cannot be listed: the live view draws values only
        return None


@display.register_renderer(Sweep)
def _render_sweep(sweep: Sweep, one_fold_per_repeat: bool = False, metric: str = "mse",
                  feature_names: Sequence[str] | None = None, units: str = "model", title: str | None = None,
                  verdicts: bool | None = None, influence: pd.DataFrame | None = None,
                  gap: Sweep | None = None) -> Figure:
    # gap: the same cells fitted the other way (refit / refit=False): the optimism gap section below the charts
    extra = gap_section(sweep, gap, metric) if gap is not None else Markup()
    if sweep.mode != FIXED:  # each dot is a fold: the row it held out, shown on hovering the dot (gpviz.js)
        names = list(feature_names or sweep.feature_names or [f"x{j}" for j in range(sweep.X.shape[-1])])
        extra += heldout_html(heldout_points(sweep.parameters, sweep.subsets, sweep.X, names, one_fold_per_repeat),
                              names)
    expr = sweep.expression(feature_names)
    judgement = sweep_verdicts(sweep, expr, verdicts)
    return figure(sweep_view(sweep, expr, judgement, one_fold_per_repeat, metric, title, units=units,
                             influence=influence), extra_html=extra)


@display.register_renderer(ModelHistory)
def _render_history(history: ModelHistory, units: str = "model", title: str | None = None) -> Figure:
    return figure(history_view(history, units, title))


@display.register_renderer(FitTrace, kind="plot")
def _plot_trace(trace: FitTrace, ax=None):
    return loss_plot(trace.events, trace.summary(), trace.segments, trace.n_members, ax=ax)


@display.register_renderer(FitModeTable, kind="plot")
def _plot_fit_modes(table: FitModeTable):
    return fit_modes_chart(table)


@display.register_renderer(Sweep, kind="plot")
def _plot_sweep(sweep: Sweep, metric: str = "mse", **kwargs):
    kwargs.setdefault("reference", sweep.reference_scores)
    return scaling_curve(sweep.scores, metric, **kwargs)
