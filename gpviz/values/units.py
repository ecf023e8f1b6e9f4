"""Units: parameter values in the model's own space, or converted back to the data's original units.

BoTorch models usually see normalized inputs (``Normalize``: ``x' = (x - offset) /
coefficient``) and standardized outputs (``Standardize``: ``y' = (y - μ) / σ``).
In original units:

- a lengthscale (or period) on input column ``d``: ``ℓ × coefficient_d`` (through a
  ``ChainedInputTransform`` of affine, ``Normalize`` and ``Log10`` steps: the product of the affine
  coefficients after the column's log step, in decades on a logged column);
- noise, and the outputscale of each additive term of the kernel: ``× σ²``;
- a constant mean: ``c × σ + μ``.

A quantity with no exact conversion (a lengthscale shared by inputs of different
ranges, a kernel with no outputscale, a task covariance, an affine step before a log step)
keeps its model units, and its label says so. Conversions are per batch member
(a multi-output model has one σ per output).

The module runs past 500 lines because one plan (:func:`unit_plan`) serves every
reader: wide and long frames, the data's own transforms before the model
(``DataUnits``), and the expression printed in original units (:func:`in_units`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
import torch
from botorch.models.transforms.input import (AffineInputTransform, ChainedInputTransform, InputStandardize, Log10,
                                             Normalize)
from botorch.models.transforms.outcome import Standardize

from gpviz import hooks
from gpviz.errors import InputError
from gpviz.models.expr import ModelExpr, ModelListExpr, register_units_converter
from gpviz.models.families import sub_models
from gpviz.tree.nodes import Call, Compare, Div, Node, Param, Part, Product, Role, Section, Sum, Vector, iter_nodes
from gpviz.values.columns import I_MODEL
from gpviz.values.keys import align_leading
from gpviz.values.tensors import to_numpy
from gpviz.walk.expr import Expr

UNITS = ("model", "original")
ORIGINAL_INPUTS = "original inputs"
ORIGINAL_OUTPUTS = "original outputs"


def check_units(units: object) -> str:
    """Validates a ``units`` option.

    Raises:
        InputError: if ``units`` is not one of :data:`UNITS`.
    """
    if units not in UNITS:
        raise InputError(f"unknown units: {units!r} (must be one of {list(UNITS)})")
    return units


@dataclass(frozen=True)
class Conversion:
    """``original = value × scale + offset``, per batch member.

    Attributes:
        scale: ``num_members`` factors.
        offset: ``num_members`` offsets.
        space: The units after conversion ("original inputs" / "original outputs").
    """

    scale: np.ndarray
    offset: np.ndarray
    space: str


@dataclass(frozen=True)
class UnitPlan:
    """Every conversion gpviz can make for one expression.

    Attributes:
        conversions: key -> :class:`Conversion` (keys with no exact conversion are absent).
        labels: Section title -> units label of that section in original units.
        reasons: key -> why it was not converted.
    """

    conversions: dict
    labels: dict
    reasons: dict


@dataclass(frozen=True)
class InputUnit:
    """What one input column was before the model saw it (e.g. Ax's transforms of a parameter).

    Attributes:
        scale: Original units per unit of the column as it reaches the model (before
            the model's own input transform): a lengthscale ``ℓ`` on the column is
            ``ℓ × coefficient × scale`` in original units; ``None``: no linear conversion.
        unit: What a converted length on this column measures, when it is not the
            parameter's own units ("decades of lr" for a log10 column).
        reason: Why there is no conversion (when ``scale`` is ``None``).
    """

    scale: float | None
    unit: str = ""
    reason: str = ""


@dataclass(frozen=True)
class OutputUnit:
    """How one output was transformed before the model saw it: ``y = sigma · y_model + mu``.

    Attributes:
        name: The output's name (a metric).
        sigma: Scale, or ``None`` when the transform has no linear inverse.
        mu: Offset.
        reason: Why there is no conversion (when ``sigma`` is ``None``).
    """

    name: str
    sigma: float | None
    mu: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class DataUnits:
    """Transforms applied to the data outside the model (e.g. by Ax), composed with the model's own.

    Attributes:
        inputs: One :class:`InputUnit` per input column of the model.
        outputs: One :class:`OutputUnit` per output (a model list: per sub-model).
        input_space: Label of the inputs as the model receives them ("" keeps the model's).
        output_space: Label of the outputs as the model receives them ("" keeps the model's).
        source: Who transformed the data ("Ax").
    """

    inputs: tuple
    outputs: tuple
    input_space: str = ""
    output_space: str = ""
    source: str = ""


#: Input transforms whose step is ``x' = (x - offset) / coefficient`` per column (exact types: a subclass may differ).
AFFINE = (Normalize, InputStandardize, AffineInputTransform)
#: What a length on a log10 column of a model's own input transform measures.
DECADES = "decades"


def _input_scales(model, batch: torch.Size) -> dict[int, np.ndarray] | str:
    """Input column -> per-member factor from the model's input space back to the data's, or why there is none.

    A ``Normalize`` (or another affine step) divides column ``d`` by ``coefficient_d``: a lengthscale converts by
    that factor. A ``ChainedInputTransform`` of affine and ``Log10`` steps multiplies the coefficients of the
    affine steps after a column's log step; a length on a logged column then measures decades
    (:func:`_log_columns`). An affine step before a log step has no exact conversion.
    """
    it = getattr(model, "input_transform", None)
    if it is None:
        return "no input transform: inputs are already in original units"
    steps = list(it.values()) if type(it) is ChainedInputTransform else [it]
    out: dict[int, np.ndarray] = {}
    logged: set[int] = set()
    for step in steps:
        if getattr(step, "reverse", False):
            return f"{type(step).__name__}(reverse=True) input transform has no exact lengthscale conversion"
        if type(step) is Log10:
            cols = set(int(i) for i in _buffer(step, "indices").tolist())
            if cols & set(out):  # log of an affinely mapped column: a length there has no original-unit reading
                return "an affine input transform before a Log10 step has no exact lengthscale conversion"
            logged |= cols
            continue
        if type(step) not in AFFINE:
            return f"{type(step).__name__} input transform has no exact lengthscale conversion"
        # batch_shape x 1 x len(indices) (a bare vector when built by hand)
        coef = _buffer(step, "coefficient").detach()
        coef = coef.unsqueeze(0) if coef.dim() == 1 else coef
        indices = (_buffer(step, "indices").tolist() if getattr(step, "indices", None) is not None
                   else list(range(coef.shape[-1])))
        for j, d in enumerate(indices):
            # the transform's batch dims are the model's input batch dims (folds), which lead;
            # a trailing output dim of the model (batched multi-output) shares the ranges
            factor = align_leading(coef[..., 0, j], batch)
            out[int(d)] = out[int(d)] * factor if int(d) in out else factor
    return out


def _buffer(step: torch.nn.Module, name: str) -> torch.Tensor:
    """A transform's tensor attribute (a buffer: ``nn.Module.__getattr__`` types it as ``Tensor | Module``)."""
    return cast(torch.Tensor, getattr(step, name))


def _log_columns(model) -> set[int]:
    """The input columns a ``Log10`` step of the model's own (chained) input transform logs."""
    it = getattr(model, "input_transform", None)
    steps = list(it.values()) if type(it) is ChainedInputTransform else [it]
    return {int(i) for step in steps if type(step) is Log10 for i in _buffer(step, "indices").tolist()}


def _decades(part, d: int) -> str:
    """What a converted length on log10 column ``d`` measures: ``decades of <name>``."""
    features = part.features
    return f"{DECADES} of {features[d].name}" if features is not None and d < len(features) else DECADES


def _trailing(t: torch.Tensor, batch: torch.Size) -> np.ndarray:
    """Broadcasts an outcome transform's ``batch x m`` tensor to the members (the output dim is the last one)."""
    try:
        return to_numpy(t.detach().expand(batch).reshape(-1)) if t.dim() <= len(batch) else align_leading(t, batch)
    except RuntimeError:
        return align_leading(t, batch)


def _output_moments(model, batch: torch.Size) -> tuple[np.ndarray, np.ndarray] | str:
    """Per-member ``(σ, μ)`` of a ``Standardize`` outcome transform, or why there is none."""
    ot = getattr(model, "outcome_transform", None)
    if ot is None:
        return "no outcome transform: outputs are already in original units"
    if type(ot) is not Standardize:  # StratifiedStandardize has one σ per stratum, not per output
        return f"{type(ot).__name__} outcome transform has no exact conversion"
    stdvs, means = ot.stdvs.detach(), ot.means.detach()  # tb x 1 x m
    num_outputs = hooks.num_outputs(model, default=stdvs.shape[-1])
    if num_outputs > 1:
        s, mu = stdvs[..., 0, :], means[..., 0, :]  # tb x m: the last member dim is the output
    else:
        s, mu = stdvs[..., 0, 0], means[..., 0, 0]
    return _trailing(s, batch), _trailing(mu, batch)


def length_keys(tree: Node) -> dict[str, tuple[int | None, ...]]:
    """key -> input columns it divides (lengthscales and periods over ``compare``).

    Recognizes ``compare(f) / ℓ``, ``(π · compare(f)) / p`` and ``norm([compare(f)...]) / ℓ``.
    """
    found: dict[str, tuple[int | None, ...]] = {}
    for n in iter_nodes(tree):
        if not isinstance(n, Div) or not isinstance(n.den, Param) or n.den.role.measured_in != "inputs":
            continue
        num = n.num
        dims: tuple | None = None
        if isinstance(num, Compare):
            dims = (num.dim,)
        elif isinstance(num, Product) and sum(isinstance(f, Compare) for f in num.factors) == 1:
            dims = tuple(f.dim for f in num.factors if isinstance(f, Compare))
        elif isinstance(num, Call) and num.fn in ("norm_l2", "norm_l1") and len(num.args) == 1 and isinstance(
                num.args[0], Vector) and all(isinstance(i, Compare) for i in num.args[0].items):
            dims = tuple(i.dim for i in num.args[0].items if isinstance(i, Compare))  # all are
        if dims is not None:
            prev = found.get(n.den.key, ())
            found[n.den.key] = prev + tuple(d for d in dims if d not in prev)
    return found


def _outputscale_keys(tree: Node) -> list[str] | str:
    """The outputscale of every additive term of the kernel (scaling them all by σ² scales the kernel)."""
    terms = tree.terms if isinstance(tree, Sum) else (tree,)
    keys = []
    for t in terms:
        factors = t.factors if isinstance(t, Product) else (t,)
        scales = [f for f in factors if isinstance(f, Param) and f.role is Role.outputscale]
        if len(scales) != 1:
            return "no outputscale to multiply by σ²"
        keys.append(scales[0].key)
    return keys


def _data_input_scales(scales, data: DataUnits | None, n: int) -> tuple[dict | str, dict[int, str]]:
    """The model's own input scales times the data's (``data.inputs``); column -> reason where there is none."""
    if data is None:
        return scales, {}
    if isinstance(scales, str):
        if not scales.startswith("no input transform"):
            return scales, {}
        scales = {}
    out, missing = {}, {}
    for d, unit in enumerate(data.inputs):
        if unit.scale is None:
            missing[d] = unit.reason or "no linear conversion for this input"
            continue
        out[d] = scales.get(d, np.ones(n)) * float(unit.scale)
    return out, missing


def _data_output(data: DataUnits | None, index: int | None, batch: torch.Size):
    """The data's ``(σ, μ)`` of one output (``index``) or of every member of a multi-output model, or a reason."""
    if data is None or not data.outputs:
        return None
    n = int(batch.numel())
    units = data.outputs if index is None else (data.outputs[index],)
    bad = [u for u in units if u.sigma is None]
    if bad:
        return bad[0].reason or f"{bad[0].name}: no linear conversion"
    if len(units) == 1:
        return np.full(n, float(units[0].sigma)), np.full(n, float(units[0].mu))
    sig = torch.tensor([float(u.sigma) for u in units], dtype=torch.float64)
    mu = torch.tensor([float(u.mu) for u in units], dtype=torch.float64)
    return _trailing(sig, batch), _trailing(mu, batch)


def _compose_outputs(model_moments, data_moments):
    """``y = σ_d (σ_m y' + μ_m) + μ_d``: the model's own Standardize inside the data's transform."""
    if data_moments is None:
        return model_moments
    if isinstance(data_moments, str):
        return data_moments
    if isinstance(model_moments, str):
        if not model_moments.startswith("no outcome transform"):
            return model_moments
        return data_moments
    (sm, mm), (sd, md) = model_moments, data_moments
    return sd * sm, md + sd * mm


def _parts(expr):
    """(sub-expression, model) pairs: one per output of a model list, else the expression itself."""
    if isinstance(expr, ModelListExpr):
        return list(zip(expr.parts, sub_models(expr.module)))
    return [(expr, expr.module)]


def unit_plan(expr: Expr) -> UnitPlan:
    """Works out which keys convert to original units, and how.

    Args:
        expr: A model expression (:func:`gpviz.model_expr`); a kernel expression has
            no transforms, so nothing converts.
    """
    conversions: dict[str, Conversion] = {}
    labels: dict[str, str] = {}
    reasons: dict[str, str] = {}
    if not isinstance(expr, ModelExpr):
        return UnitPlan(conversions, labels, reasons)
    batch = torch.Size(expr.batch_shape)
    n = int(batch.numel())
    data = cast("DataUnits | None", expr.data_units)  # models/expr.py (an earlier stage) cannot name the type
    for i_part, (part, model) in enumerate(_parts(expr)):
        part_sections = part.sections
        title_prefix = ""
        if isinstance(expr, ModelListExpr) and part is not expr:  # one output of a model list
            title_prefix = f"{expr.outputs[expr.parts.index(part)]}: "
        covar = part.covariance_tree()
        # inputs: the model's own Normalize, times what was done to the data before it (data_units)
        scales, missing = _data_input_scales(_input_scales(model, batch), data, n)
        lengths = length_keys(covar)
        logged = _log_columns(model)
        in_ok = True
        column_units: dict[str, str] = {}
        for key, dims in lengths.items():
            if isinstance(scales, str):
                reasons[key] = scales
                in_ok = in_ok and scales.startswith("no input transform")
                continue
            gone = [missing[d] for d in dims if d in missing]
            if gone:
                reasons[key], in_ok = gone[0], False
                continue
            if any(d is None for d in dims):
                reasons[key], in_ok = "the lengthscale's input columns are unknown", False
                continue
            cols = [d for d in dims if d is not None]  # all of them
            facs = [scales.get(d, np.ones(n)) for d in cols]
            if any(not np.allclose(f, facs[0], rtol=1e-12, atol=0) for f in facs[1:]):
                reasons[key], in_ok = "one lengthscale is shared by inputs of different ranges", False
                continue
            units = {data.inputs[d].unit if data is not None and d < len(data.inputs) and data.inputs[d].unit
                     else (_decades(part, d) if d in logged else "") for d in cols}
            if len(units) > 1:
                reasons[key], in_ok = "one lengthscale is shared by inputs measured in different units", False
                continue
            unit = units.pop()
            conversions[key] = Conversion(facs[0], np.zeros(n), unit or ORIGINAL_INPUTS)
            if unit and len(cols) == 1 and part.features is not None and cols[0] < len(part.features):
                column_units[part.features[cols[0]].name] = unit
        other_len = [p.key for p in iter_nodes(covar) if isinstance(p, Param) and p.role.measured_in == "inputs"
                     and p.key not in lengths]
        for key in other_len:
            reasons[key] = "not a length along one input (e.g. a categorical or periodic-shape parameter)"
        # outputs
        moments = _compose_outputs(_output_moments(model, batch),
                                   _data_output(data, i_part if part is not expr else None, batch))
        out_ok = not isinstance(moments, str)
        out_reason = moments if isinstance(moments, str) else ""
        cov_ok = out_ok
        if out_ok:
            sigma, mu = moments
            var = sigma**2
            scale_keys = _outputscale_keys(covar)
            if isinstance(scale_keys, str):
                cov_ok, cov_reason = False, scale_keys
            else:
                for key in scale_keys:
                    conversions[key] = Conversion(var, np.zeros(n), ORIGINAL_OUTPUTS)
            for sec in part_sections[1:]:
                for p in iter_nodes(sec.body):
                    if not isinstance(p, Param):
                        continue
                    if p.role is Role.noise:
                        conversions[p.key] = Conversion(var, np.zeros(n), ORIGINAL_OUTPUTS)
                    elif p.role is Role.mean and sec.part is Part.mean:
                        conversions[p.key] = Conversion(sigma, mu, ORIGINAL_OUTPUTS)
        # section labels
        for i, sec in enumerate(part_sections):
            title = title_prefix + sec.title
            if i == 0:
                ins = ORIGINAL_INPUTS if in_ok else f"{sec.note or 'inputs'} (lengthscales not converted)"
                if column_units:  # say it where it bites: a log10 column's lengthscale is in decades
                    ins += " (" + "; ".join(f"{name}: lengthscale in {u}" for name, u in column_units.items()) + ")"
                if not out_ok:
                    labels[title] = ins
                elif cov_ok:
                    labels[title] = f"{ins}, {ORIGINAL_OUTPUTS}"
                else:
                    labels[title] = f"{ins}; kernel scale in {part.output_space} ({cov_reason})"
            elif sec.note in (part.output_space,) and part.output_space != "outputs":
                keys = [p.key for p in iter_nodes(sec.body) if isinstance(p, Param)]
                converted = bool(keys) and all(k in conversions for k in keys)
                labels[title] = ORIGINAL_OUTPUTS if converted else (
                    f"{sec.note} (not converted: {out_reason or 'no parameter to convert'})")
            elif sec.note in ("outputs", "inputs"):
                labels[title] = f"original {sec.note}"
            else:
                labels[title] = sec.note
    return UnitPlan(conversions, labels, reasons)


def _members_of(members: np.ndarray, n: int) -> np.ndarray:
    """``members`` (a frame's ``i_model`` values), checked against the ``n`` members a conversion has.

    Raises:
        InputError: a member outside ``0 .. n-1``: the frame is of another model or batch, and no
            member's transform may stand in for it.
    """
    bad = (members < 0) | (members >= n)
    if bad.any():
        raise InputError(f"the frame has i_model={int(members[bad][0])}, but the model's transforms give {n} "
                         f"member(s) (i_model 0..{n - 1}): the frame is of another model or batch; convert it "
                         f"with its own model's expression")
    return members


def convert_wide(expr: Expr, frame: pd.DataFrame, plan: UnitPlan | None = None) -> pd.DataFrame:
    """A copy of a wide frame (``i_model`` + one column per key) with values in original units."""
    plan = plan or unit_plan(expr)
    out = frame.copy()
    if not plan.conversions:
        return out
    if I_MODEL not in out.columns:
        raise InputError(f"a wide parameter frame needs an {I_MODEL!r} column, got columns {list(out.columns)[:6]}")
    members = out[I_MODEL].to_numpy().astype(np.int64)
    for key, conv in plan.conversions.items():
        if key in out.columns:
            idx = _members_of(members, len(conv.scale))
            out[key] = out[key].to_numpy(dtype=np.float64) * conv.scale[idx] + conv.offset[idx]
    return out


def convert_long(expr: Expr, frame: pd.DataFrame, plan: UnitPlan | None = None) -> pd.DataFrame:
    """A copy of a long frame (``parameters(model, long=True)``) with value, bounds, prior mode in original units.

    ``raw`` stays the optimizer's own number; ``space`` names the new units.
    """
    plan = plan or unit_plan(expr)
    out = frame.copy()
    if not plan.conversions or out.empty:
        return out
    keys = out["key"].to_numpy()
    members = out[I_MODEL].to_numpy().astype(np.int64)
    scale = np.ones(len(out))
    offset = np.zeros(len(out))
    space = out["space"].to_numpy(dtype=object).copy() if "space" in out.columns else np.full(len(out), "", object)
    for i, (k, m) in enumerate(zip(keys, members)):
        conv = plan.conversions.get(k)
        if conv is not None:
            j = int(_members_of(np.array([m]), len(conv.scale))[0])
            scale[i], offset[i], space[i] = conv.scale[j], conv.offset[j], conv.space
    for col in ("value", "lower", "upper", "prior_mode"):
        if col in out.columns:
            with np.errstate(invalid="ignore"):
                out[col] = out[col].to_numpy(dtype=np.float64) * scale + offset
    if "space" in out.columns:
        out["space"] = space
    return out


def to_units(expr: Expr, frame: pd.DataFrame, units: str = "model") -> tuple[pd.DataFrame, dict[str, str]]:
    """Puts a wide or long parameter frame in the requested units.

    Args:
        expr: The model expression the frame's keys come from.
        frame: Wide (``i_model`` + key columns, maybe ``i_timestep``/``i_config``)
            or long (``key``, ``value``...) frame.
        units: ``"model"`` (unchanged) or ``"original"``.

    Returns:
        ``(frame, space_labels)``: the converted copy, and section title -> the
        units that section is shown in (for the view's labels).

    Raises:
        InputError: for an unknown ``units``.
    """
    check_units(units)
    sections = expr.sections
    if units == "model":
        return frame, {s.title: s.note for s in sections}
    plan = unit_plan(expr)
    labels = {s.title: plan.labels.get(s.title, s.note) for s in sections}
    if "key" in frame.columns and "value" in frame.columns:
        return convert_long(expr, frame, plan), labels
    return convert_wide(expr, frame, plan), labels


def relabel(expr: Expr, labels: dict[str, str]) -> Expr:
    """A shallow copy of a model expression whose section notes are ``labels`` (title -> units)."""
    if not isinstance(expr, ModelExpr):
        return expr
    return expr.replace(sections=tuple(Section(s.title, s.body, labels.get(s.title, s.note), s.part)
                                       for s in expr.sections))


def in_units(expr: Expr, units: str) -> Expr:
    """The expression in ``units``: itself for ``"model"``; for ``"original"``, a copy whose printed values
    and section notes are in the data's units (:func:`unit_plan`'s conversions and labels).

    The copy keeps the model-units expression as ``model_units``: entry points read values
    from it and convert them once (:func:`reading_units`).

    Raises:
        InputError: an unknown ``units``.
    """
    check_units(units)
    if not isinstance(expr, ModelExpr):
        return expr
    base = expr.model_units
    if units == "model":
        return base
    plan = unit_plan(base)
    return base.replace(sections=tuple(Section(s.title, s.body, plan.labels.get(s.title, s.note), s.part)
                                       for s in base.sections),
                        units=units, model_units=base,
                        unit_conversions={k: (np.asarray(c.scale, np.float64), np.asarray(c.offset, np.float64))
                                          for k, c in plan.conversions.items()})


register_units_converter(in_units)


def reading_units(expr: Expr, units: str | None = None) -> tuple[Expr, str]:
    """Where to read an expression's values and in which units to show them.

    An expression built in original units (``model_expr(..., units="original")``) is read
    through its model-units twin (converting its printed values again would be wrong) and
    shown in the units asked for; ``None`` means the expression's own units. Any other
    expression is read as it is, in ``units`` (``None``: model units).

    Raises:
        InputError: ``units`` is neither ``None`` nor one of :data:`UNITS`.

    Returns:
        ``(expression to read, units)``.
    """
    own, read = "model", expr
    if isinstance(expr, ModelExpr):
        own = expr.units
        read = expr.model_units if own != "model" else expr
    wanted = own if units is None else check_units(units)
    return read, wanted


def with_data_units(expr: ModelExpr, data: DataUnits) -> ModelExpr:
    """A shallow copy of a model expression that knows how its data was transformed before the model saw it.

    Sections whose note is the model's own output space get the data's label
    instead when the model itself has no transform there (``"outputs"`` becomes
    e.g. "outputs standardized by Ax"), and input notes say whose transforms came
    first; :func:`unit_plan` then converts through both.
    """
    changes = {}
    if isinstance(expr, ModelListExpr):
        changes["parts"] = tuple(with_data_units(p, DataUnits(data.inputs, tuple(data.outputs[i:i + 1]),
                                                                data.input_space, data.output_space, data.source))
                                 for i, p in enumerate(expr.parts))
    old_out, old_in = expr.output_space, expr.input_space
    out_space = data.output_space if data.output_space and old_out in ("outputs", "per output") else old_out
    in_space = (f"{old_in}, after {data.source}'s transforms" if data.source and data.input_space and old_in
                else old_in)
    sections = []
    for s in expr.sections:
        note = s.note
        if note == old_out and out_space != old_out:
            note = out_space
        elif note == old_in and in_space != old_in:  # a covariance section (one per output of a list)
            note = in_space
        sections.append(Section(s.title, s.body, note, s.part))
    return expr.replace(data_units=data, sections=tuple(sections), output_space=out_space, input_space=in_space,
                        **changes)
