"""Whole-model expressions: covariance, noise and mean sections of a GPyTorch/BoTorch model.

One builder covers every family in :mod:`gpviz.models.families`: exact single- and
multi-output GPs (SingleTaskGP, MixedSingleTaskGP, fully Bayesian and MAP-SAAS
models, fixed noise), MultiTaskGP (per-task noise and means, named tasks),
KroneckerMultiTaskGP (a task covariance times a data kernel over a virtual
``task`` column), ModelListGP (one group of sections per output, keys
``models.<i>.``), approximate GPs (the kernel of the inner ``model``, variational
parameters summarized), HigherOrderGP (a data kernel plus one kernel per
output dimension over learned latent positions) and LatentKroneckerGP (a kernel over
the inputs times a kernel over the shared grid ``t``, means multiplied alike). The
module runs past 500 lines
because that one builder and the sections every family shares stay in one place.
"""

from __future__ import annotations

import warnings
from typing import Any, Self, Sequence

import numpy as np
import pandas as pd
import torch
from gpytorch.kernels import IndexKernel, Kernel, MultitaskKernel
from gpytorch.likelihoods import (FixedNoiseGaussianLikelihood, GaussianLikelihood, MultitaskGaussianLikelihood)
from gpytorch.likelihoods.noise_models import MultitaskHomoskedasticNoise
from gpytorch.means import ConstantMean, LinearMean, Mean, MultitaskMean, ZeroMean

from gpviz import hooks
from gpviz.errors import GpvizWarning, InputError
from gpviz.models.families import (HIGHER_ORDER, LATENT_KRONECKER, family_of, input_space,
                                   model_batch_shape, num_inputs, output_space, sub_models,
                                   unwrap_model)
from gpviz.models.families import member_label as family_member_label
from gpviz.models.sources import source_of
from gpviz.options import check_applies, check_names, reject_unknown
from gpviz.tree.nodes import (Call, Const, Node, Opaque, Param, Part, Product, Section, Sum, Symbol, TaskCovar, Vector,
                              iter_nodes)
from gpviz.tree.evaluate import check_inputs
from gpviz.tree.ops import simplify
from gpviz.tree.printer import fmt_number, to_text
from gpviz.values.keys import join_path
from gpviz.values.tensors import to_numpy
from gpviz.walk.expr import Expr
from gpviz.walk.walker import Feature, Walker, infer_num_features, root_features

TASK_COLUMN = "task"

def _mean_tree(mean: Mean, path: str, walker: Walker, task_name: str | None) -> Node:
    if isinstance(mean, ConstantMean):
        (c,) = walker.params(mean, path, "constant", "mean")
        return c
    if isinstance(mean, ZeroMean):
        return Const(0.0)
    if isinstance(mean, LinearMean):
        ws = walker.params(mean, path, "weights", "weight")
        feats = walker.features_for(len(ws))
        terms: list[Node] = [Product((w, Symbol(f"x[{f.name!r}]"))) for w, f in zip(ws, feats)]
        if mean.bias is not None:
            terms.append(walker.params(mean, path, "bias", "mean")[0])
        return Sum(tuple(terms))
    if isinstance(mean, MultitaskMean):
        parts = tuple(_mean_tree(m, join_path(path, f"base_means.{i}"), walker, None)
                      for i, m in enumerate(mean.base_means))
        return Call("per_task", (Vector(parts), _task_symbol(task_name)))
    leaves: list[Param] = []
    for raw_name, p in mean._parameters.items():
        if p is not None:
            leaves.extend(walker.params(mean, path, raw_name))
    return Call(type(mean).__name__, tuple(leaves))


def _task_symbol(task_name: str | None) -> Symbol:
    return Symbol(f"x[{task_name!r}]" if task_name else TASK_COLUMN)


def _noise_tree(likelihood, path: str, walker: Walker, task_name: str | None = None) -> Node | None:
    """The noise added on the diagonal, or ``None`` when the likelihood is not Gaussian."""
    if isinstance(likelihood, FixedNoiseGaussianLikelihood):
        fixed = Symbol("train_Yvar[i]")
        second = getattr(likelihood, "second_noise_covar", None)
        if second is not None:
            (n,) = walker.params(second, join_path(path, "second_noise_covar"), "noise", "noise")
            return Sum((fixed, n))
        return fixed
    if isinstance(likelihood, MultitaskGaussianLikelihood):
        # Kronecker multi-task: Σ = diag(task_noises) ⊗ I + noise · I  (rank 0), or a low-rank task noise
        terms: list[Node] = []
        if getattr(likelihood, "has_task_noise", False) and "raw_task_noises" in likelihood._parameters:
            tn = walker.params(likelihood, path, "task_noises", "noise")
            # batched over outputs (a multi-output variational GP): each member's own task noise
            terms.append(tn[0] if len(tn) == 1 else Call("per_task", (Vector(tn), _task_symbol(task_name))))
        elif getattr(likelihood, "has_task_noise", False):
            terms.append(Symbol("task_noise_covar[task, task]"))
        if getattr(likelihood, "has_global_noise", False):
            terms.append(walker.params(likelihood, path, "noise", "noise")[0])
        return Sum(tuple(terms)) if terms else Const(0.0)
    noise_covar = getattr(likelihood, "noise_covar", None)
    if isinstance(noise_covar, MultitaskHomoskedasticNoise):
        # Hadamard multi-task (MultiTaskGP): one noise per task, picked by the task column
        leaves = walker.params(noise_covar, join_path(path, "noise_covar"), "noise", "noise")
        return Call("per_task", (Vector(leaves), _task_symbol(task_name)))
    if isinstance(likelihood, GaussianLikelihood) or (
            isinstance(noise_covar, torch.nn.Module) and "raw_noise" in noise_covar._parameters):
        if not (isinstance(noise_covar, torch.nn.Module) and "raw_noise" in noise_covar._parameters):
            return Symbol(f"{type(noise_covar).__name__}(x)")  # heteroskedastic: the noise is a model of x
        leaves = walker.params(noise_covar, join_path(path, "noise_covar"), "noise", "noise")
        return leaves[0] if len(leaves) == 1 else Vector(leaves)
    return None


NOISE_TITLE = "When comparing a point to itself, add noise"


def _likelihood_section(likelihood, path: str, walker: Walker, space: str, task_name: str | None) -> Section:
    """The noise section; one whose noise cannot be read is kept, with a note and a warning, never dropped."""
    try:
        noise = _noise_tree(likelihood, path, walker, task_name)
    except Exception as exc:
        if walker.strict:
            raise
        why = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"gpviz: the noise of {type(likelihood).__name__} at {path or 'likelihood'} could not be read "
                      f"({why}); the expression shows the section with this note and no noise values",
                      GpvizWarning, stacklevel=4)
        return Section(NOISE_TITLE, Symbol(f"{type(likelihood).__name__}.noise"), f"not read: {why}", Part.noise)
    if noise is None:
        # a non-Gaussian likelihood (PairwiseProbitLikelihood, Bernoulli...): no noise term to add
        return Section("Likelihood", Symbol(type(likelihood).__name__), "not Gaussian: no noise term",
                       Part.likelihood)
    return Section(NOISE_TITLE, simplify(noise), space, Part.noise)


def _task_name(model, features) -> str | None:
    t = hooks.task_feature(model)
    if t is not None and features is not None:
        return features[t].name
    return None


def default_task_names(model) -> tuple[str, ...]:
    """Display names of a multi-task model's tasks: its task values (``[0, 5, 9]`` -> ``"0", "5", "9"``)."""
    tasks = hooks.output_tasks(model)
    if tasks is None:
        return ()
    try:
        values = list(tasks)
    except TypeError:
        return ()
    num = getattr(model, "num_tasks", len(values))
    if len(values) != num:
        return ()

    def fmt(v):
        v = float(v)
        return str(int(v)) if v == int(v) else f"{v:g}"

    return tuple(fmt(v) for v in values)


def _variational_summary(strategy) -> Node:
    """A one-line, display-only summary of the variational posterior q(u) (no key per inducing value)."""
    base = getattr(strategy, "base_variational_strategy", strategy)
    points = getattr(base, "inducing_points", None)
    dist = getattr(base, "_variational_distribution", None)
    m = int(points.shape[-2]) if isinstance(points, torch.Tensor) else "?"
    learned = bool(getattr(points, "requires_grad", False))
    dist_name = type(dist).__name__ if dist is not None else "variational distribution"
    counts = ", ".join(f"{n}: {tuple(p.shape)}" for n, p in (dist.named_parameters() if dist is not None else ()))
    text = (f"q(u) = {dist_name} over {m} {'learned' if learned else 'fixed'} inducing points "
            f"({type(strategy).__name__}; {counts})")
    return Symbol(text)


class ModelExpr(Expr):
    """The expression of a whole model: covariance, noise and mean sections.

    Its fields are :class:`~gpviz.walk.expr.Expr`'s (``sections``, ``output_space``,
    ``input_space``, ``member_label``, ``tasks``, ``title``, ``member_names``...) and
    those declared here, all set by the constructor; other modules derive copies with
    :meth:`replace` (:func:`gpviz.values.units.in_units`, ``with_data_units``, the Ax source).
    """

    #: Columns the covariance kernel sees, when not the features (LCEMGP's lack the task column), else ``None``.
    covariance_width: int | None
    #: Module path of the covariance kernel (``covar_module``, ``models`` for a list).
    covar_path: str
    #: "model", or "original" for an expression that prints its values in the data's units
    #: (``model_expr(..., units="original")``); every entry point then shows it in those units.
    units: str
    #: key -> (scale, offset) per member: original = value x scale + offset (empty in model units).
    unit_conversions: dict[str, tuple[np.ndarray, np.ndarray]]
    #: The same expression in model units (itself, unless this one is in original units).
    model_units: ModelExpr
    #: How the data was transformed before the model saw it (a ``gpviz.values.units.DataUnits``, e.g. Ax's), or None.
    data_units: object | None
    #: The metrics of the outputs, when the model came from a source that names them (Ax), else ``()``.
    metrics: tuple[str, ...]

    def __init__(self, model, sections: tuple[Section, ...], batch_shape: torch.Size, modules: dict,
                 features, covar_path: str, *, out_space: str | None = None, in_space: str | None = None,
                 tasks: tuple[str, ...] = (), member_label: str | None = None,
                 member_names: tuple[str, ...] | None = None, input_transform=None,
                 covariance_width: int | None = None, title: str | None = None, units: str = "model",
                 unit_conversions: dict | None = None, model_units: ModelExpr | None = None,
                 data_units=None, metrics: tuple[str, ...] = ()):
        sections = tuple(sections)
        super().__init__(Vector(sections), model, batch_shape, modules, features, tasks=tasks,
                         input_transform=input_transform, sections=sections,
                         output_space=out_space if out_space is not None else output_space(model),
                         input_space=in_space if in_space is not None else input_space(model), title=title,
                         member_label=member_label if member_label is not None else family_member_label(model),
                         member_names=member_names)
        self.covar_path = covar_path
        self.covariance_width = covariance_width
        self.units = units
        self.unit_conversions = dict(unit_conversions or {})
        self.model_units = model_units if model_units is not None else self
        self.data_units = data_units
        self.metrics = tuple(metrics)

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (as :meth:`Expr.replace`); new ``sections`` make the copy's ``tree``.

        A copy of an expression in model units is its own ``model_units``, unless
        ``changes`` say otherwise.
        """
        if "sections" in changes:
            changes["sections"] = tuple(changes["sections"])
            changes.setdefault("tree", Vector(changes["sections"]))
        new = super().replace(**changes)
        if self.model_units is self and "model_units" not in changes:
            new.model_units = new
        return new

    def values(self, member: int = 0) -> dict[str, float]:
        """key -> value of batch member ``member``, in the expression's units (:attr:`units`)."""
        vals = super().values(member)
        for key, (scale, offset) in self.unit_conversions.items():
            if key in vals:
                vals[key] = vals[key] * float(scale[member]) + float(offset[member])
        return vals

    def _check_model_units(self) -> None:
        """Refuses to evaluate an expression in original units: the covariance is the model's own function."""
        if self.units != "model":
            raise InputError(f"evaluate: this expression shows values in {self.units} units, but the covariance is "
                             f"computed in the model's units; evaluate gpviz.model_expr(model) (units='model'), "
                             f"with transform_inputs=True for inputs in original units")

    def evaluate(self, x1: torch.Tensor, x2: torch.Tensor | None = None, values=None, *,
                 transform_inputs: bool = False) -> torch.Tensor:
        """The covariance from the tree alone, as :meth:`Expr.evaluate`; refused in original units.

        Args:
            x1: ``n x d`` or ``batch_shape x n x d`` inputs, in the kernel's space unless
                ``transform_inputs=True``.
            x2: ``m x d`` inputs (default: ``x1``).
            values: ``None`` for the module's current values, or key -> value.
            transform_inputs: Apply the model's input transform to ``x1`` and ``x2``
                first (default ``False``: inputs are in the kernel's space).

        Returns:
            ``batch_shape x n x m``, equal to the model's ``covar_module(x1, x2)``.

        Raises:
            InputError: the expression is in original units (:attr:`units`: the covariance
                is computed in model units), or as :meth:`Expr.evaluate`.
        """
        self._check_model_units()
        return super().evaluate(x1, x2, values, transform_inputs=transform_inputs)

    def input_width(self) -> int | None:
        """Columns :meth:`evaluate` expects: the kernel's own inputs (LCEMGP's lack the task column)."""
        return self.covariance_width if self.covariance_width is not None else super().input_width()

    def covariance_tree(self) -> Node:
        return self.sections[0].body

    @property
    def opaque(self) -> tuple[str, ...]:
        """Class names of the parts of the covariance gpviz shows but cannot write out (evaluated by the module)."""
        return tuple(n.cls_name for n in iter_nodes(self.covariance_tree()) if isinstance(n, Opaque))

    def task_correlation(self, member: int = 0):
        """The task correlation matrix ``C[i, j] / sqrt(C[i, i] C[j, j])`` of batch member ``member``.

        Returns:
            A ``num_tasks x num_tasks`` DataFrame indexed by task names, or
            ``None`` when the covariance has no task covariance.
        """
        tcs = [n for n in iter_nodes(self.covariance_tree()) if isinstance(n, TaskCovar)]
        if not tcs:
            return None
        tc = tcs[0]
        vals = self.values(member)
        f = torch.tensor([[vals[c.key] if isinstance(c, Param) else float(getattr(c, "value", 0.0)) for c in row]
                          for row in tc.factor], dtype=torch.float64)
        v = torch.tensor([vals[x.key] if isinstance(x, Param) else float(getattr(x, "value", 0.0)) for x in tc.var],
                         dtype=torch.float64)
        c = f @ f.T + torch.diag(v)
        d = c.diagonal().sqrt()
        names = list(tc.tasks) if len(tc.tasks) == len(v) else [str(i) for i in range(len(v))]
        return pd.DataFrame(to_numpy(c / d[:, None] / d[None, :]), index=names, columns=names)

    def text(self, member: int = 0, width: int = 88) -> str:
        vals = self.values(member) if self.keys else {}
        n = int(torch.Size(self.batch_shape).numel())
        head = f"{self.title or type(self.module).__name__}: Gaussian process"
        names = self.member_names  # e.g. the metrics of an Ax multi-output model
        if n > 1 and names is not None and len(names) == n:
            head += f" (batch of {n} {self.member_label}: {', '.join(names)}; values of {names[member]})"
        elif n > 1:
            head += f" (batch of {n} {self.member_label}; values of member {member})"
        lines = [head]
        for sec in self.sections:
            if sec.part is Part.task_correlation:
                continue  # printed below from the member's own values
            lines.append(f"{sec.title}{' (' + sec.note + ')' if sec.note else ''}:")
            body = to_text(sec.body, lambda p: fmt_number(vals[p.key]), width - 4)
            lines.extend("    " + line for line in body.splitlines())
            if sec is self.sections[0] and self.keys:
                corr = self.task_correlation(member)
                if corr is not None:  # F and v are unreadable as a correlation; print it derived
                    lines.append(f"{CORRELATION_TITLE} (member {member}):")
                    lines.extend("    " + line for line in corr.round(3).to_string().splitlines())
        return "\n".join(lines)


class KroneckerModelExpr(ModelExpr):
    """A Kronecker multi-task model: ``k((x, i), (x', j)) = k_data(x, x') · C[i, j]``.

    The tree reads the task from a virtual column ``task`` appended after the
    inputs; :meth:`evaluate` takes plain ``n x d`` inputs and returns the
    ``nt x mt`` matrix in GPyTorch's interleaved order (row ``a·t + i`` is
    point ``a``, task ``i``), like ``MultitaskKernel``.
    """

    #: Tasks of the ``MultitaskKernel`` (each point's rows, in GPyTorch's interleaved order).
    num_tasks: int

    def __init__(self, *args, num_tasks: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_tasks = num_tasks

    def evaluate(self, x1: torch.Tensor, x2: torch.Tensor | None = None, values=None, *,
                 transform_inputs: bool = False) -> torch.Tensor:
        """``batch_shape x nt x mt`` covariance for ``n x d`` and ``m x d`` inputs (see :meth:`Expr.evaluate`)."""
        self._check_model_units()
        x2 = x1 if x2 is None else x2
        if transform_inputs:
            x1, x2 = self.transform_inputs(x1), self.transform_inputs(x2)
        width = self.input_width()
        check_inputs(x1, x2, width)
        return self._evaluate(_with_tasks(x1, self.num_tasks), _with_tasks(x2, self.num_tasks), values,
                              None if width is None else width + 1)


def _with_tasks(x: torch.Tensor, t: int) -> torch.Tensor:
    """``... x n x d`` -> ``... x nt x (d+1)``: every point repeated once per task, task index appended."""
    rep = x.repeat_interleave(t, dim=-2)
    task = torch.arange(t, dtype=x.dtype, device=x.device).repeat(x.shape[-2])
    task = task.expand(*x.shape[:-2], -1).unsqueeze(-1)
    return torch.cat([rep, task], dim=-1)


class ModelListExpr(ModelExpr):
    """A list of independent models (``ModelListGP``): one group of sections per output.

    Attributes:
        parts: One :class:`ModelExpr` per sub-model; their keys start with
            ``models.<i>.`` and their values are read from the list itself.
        outputs: Display names of the outputs.
    """

    #: One :class:`ModelExpr` per sub-model (keys ``models.<i>.``, values read from the list itself).
    parts: tuple[ModelExpr, ...]
    #: Display names of the outputs.
    outputs: tuple[str, ...]

    def __init__(self, model, parts: tuple[ModelExpr, ...], outputs: tuple[str, ...], batch_shape: torch.Size,
                 features, **kwargs):
        sections = []
        for name, part in zip(outputs, parts):
            for sec in part.sections:
                sections.append(Section(f"{name}: {sec.title}", sec.body, sec.note, sec.part))
        modules = {}
        for part in parts:
            modules.update(part.modules)
        spaces = {p.output_space for p in parts}
        in_spaces = {p.input_space for p in parts}
        super().__init__(model, tuple(sections), batch_shape, modules, features, "models",
                         out_space=spaces.pop() if len(spaces) == 1 else "per output",
                         in_space=in_spaces.pop() if len(in_spaces) == 1 else "per output",
                         member_label="members", **kwargs)
        self.parts = tuple(parts)
        self.outputs = tuple(outputs)

    def evaluate(self, x1: torch.Tensor, x2: torch.Tensor | None = None, values=None, output: int | None = None,
                 *, transform_inputs: bool = False) -> torch.Tensor:
        """Covariances of the outputs.

        Args:
            x1: ``n x d`` inputs.
            x2: ``m x d`` inputs (default: ``x1``).
            values: As in :meth:`Expr.evaluate`.
            output: One output's index; ``None`` for all of them stacked.
            transform_inputs: Apply each sub-model's own input transform first
                (default ``False``, see :meth:`Expr.evaluate`).

        Returns:
            ``batch_shape x n x m`` for one output, else
            ``num_outputs x batch_shape x n x m``.
        """
        self._check_model_units()
        if output is not None:
            if not 0 <= int(output) < len(self.parts):
                raise InputError(f"output {output!r} out of range: the model list has {len(self.parts)} outputs")
            return self.parts[int(output)].evaluate(x1, x2, values, transform_inputs=transform_inputs)
        outs = [p.evaluate(x1, x2, values, transform_inputs=transform_inputs) for p in self.parts]
        shape = torch.broadcast_shapes(*(o.shape for o in outs))
        return torch.stack([o.expand(shape) for o in outs], 0)


def _gp_expr(model, root, prefix: str, features, batch: torch.Size, strict: bool, tasks) -> ModelExpr:
    """The expression of one exact, approximate or higher-order GP whose modules sit at ``prefix`` in ``root``."""
    family = family_of(model)
    if family is None:  # model_expr checked the root; a model list's members are checked by family_of
        raise InputError(f"{type(model).__name__} at {prefix or 'the root'} is not a GP model of a known family")
    owner = family.owner(model)
    owner_path = join_path(prefix, family.covar_path)
    task_name = _task_name(model, features)
    task_names = tuple(tasks or ()) or default_task_names(model)
    walker = Walker(features, batch, strict=strict, tasks=task_names)
    out_space, in_space = output_space(model), input_space(model)
    kron_tasks = outside = None
    if family is HIGHER_ORDER:
        sections = _hogp_sections(model, prefix, walker, in_space)
    elif family is LATENT_KRONECKER:
        sections = _latent_kronecker_sections(model, prefix, walker, in_space)
    else:
        covar: Kernel = getattr(owner, "covar_module")  # the family says it is there (mypy: Tensor | Module)
        kron_tasks = _kronecker_tasks(covar)
        if kron_tasks is not None:
            # MultitaskKernel: data kernel x task covariance over a virtual task column after the inputs
            d = len(features) if features is not None else 0
            walker = Walker(tuple(features or ()) + (Feature(d, TASK_COLUMN),), batch, strict=strict,
                            tasks=task_names, modules=walker.modules)
            task_name = TASK_COLUMN
        outside = _task_covar_outside(model, covar, features)
        if outside is not None:
            # e.g. LCEMGP: covar_module sees the inputs without the task column, and the task
            # covariance is computed in forward from embeddings, not by a kernel module
            t = hooks.task_feature(model)
            # it sees cat([x_before, x_after]): columns after the task column move one to the left
            rest = [f for i, f in enumerate(features) if i != t]
            walker = Walker(tuple(Feature(j, f.name) for j, f in enumerate(rest)), batch, strict=strict,
                            tasks=task_names, modules=walker.modules)
        tree = simplify(walker(covar, join_path(owner_path, "covar_module")))
        sections = [Section("Covariance kernel", tree, in_space, Part.covariance)]
        if outside is not None:
            sections.append(Section("Times the task covariance", Symbol(outside),
                                    "computed outside covar_module: not shown, not evaluated", Part.task_covariance))
    likelihood = getattr(model, "likelihood", None)
    if likelihood is not None:
        sections.append(_likelihood_section(likelihood, join_path(prefix, "likelihood"), walker, out_space,
                                            task_name))
    mean = getattr(owner, "mean_module", None)
    if family is LATENT_KRONECKER:
        sections.append(_latent_kronecker_mean(model, prefix, walker, out_space))
    if isinstance(mean, Mean):
        sections.append(Section("Mean", simplify(_mean_tree(mean, join_path(owner_path, "mean_module"), walker,
                                                            task_name)), out_space, Part.mean))
    if owner is not model:
        sections.append(Section("Variational posterior (summarized)",
                                _variational_summary(owner.variational_strategy), "not drawn", Part.variational))
    kwargs: dict[str, Any] = dict(out_space=out_space, in_space=in_space, tasks=walker.tasks,
                  input_transform=getattr(model, "input_transform", None),
                  covariance_width=len(features) - 1 if outside is not None else None)
    corr = _correlation_section(model, root, sections, batch, features)
    if corr is not None:
        sections.insert(1, corr)  # right under the covariance it explains
    expr: ModelExpr
    if kron_tasks is not None:
        expr = KroneckerModelExpr(root, tuple(sections), batch, walker.modules, features,
                                  join_path(owner_path, "covar_module"), num_tasks=kron_tasks, **kwargs)
    else:
        expr = ModelExpr(root, tuple(sections), batch, walker.modules, features,
                         join_path(owner_path, "covar_module"), member_label=family_member_label(model), **kwargs)
    return expr


CORRELATION_TITLE = "Task correlation C[i, j] / sqrt(C[i, i] C[j, j])"


def _correlation_section(model, root, sections, batch, features) -> Section | None:
    """A display-only section: the task correlation matrix, which F and v alone do not make readable.

    Its numbers are those of member 0 when the expression is built (a static
    table, not animated); ``ModelExpr.task_correlation(member)`` gives any member.
    """
    if not any(isinstance(n, TaskCovar) for n in iter_nodes(sections[0].body)):
        return None
    try:
        probe = ModelExpr(root, tuple(sections), batch, {}, features, "")
        corr = probe.task_correlation(0)
    except Exception:  # a display extra must never break building the expression
        return None
    n = int(torch.Size(batch).numel())
    note = "derived from F and v at build time" + (f", member 0 of {n}" if n > 1 else "") + "; not animated"
    return Section(CORRELATION_TITLE, Symbol(corr.round(3).to_string()), note, Part.task_correlation)


def _task_covar_outside(model, covar: Kernel, features) -> str | None:
    """Pseudocode of a multi-task model's task covariance that is not part of ``covar_module``, else ``None``."""
    t = hooks.task_feature(model)
    if t is None or features is None or isinstance(covar, MultitaskKernel):
        return None
    has_task_kernel = any(isinstance(k, IndexKernel) for k in covar.modules())
    if has_task_kernel or infer_num_features(covar) != len(features) - 1:
        return None
    name = features[t].name
    return f"{type(model).__name__}.task_covar_module(x1[{name!r}], x2[{name!r}])"


def _kronecker_tasks(covar: Kernel) -> int | None:
    if isinstance(covar, MultitaskKernel):
        return int(covar.num_tasks)
    return None


def _hogp_sections(model, prefix: str, walker: Walker, in_space: str) -> list[Section]:
    """HigherOrderGP: the data kernel, then one kernel per output dimension over learned latent positions."""
    mods = model.covar_modules
    data = simplify(walker(mods[0], join_path(prefix, "covar_modules.0")))
    sections = [Section("Covariance kernel", data, in_space, Part.covariance)]
    latents = getattr(model, "latent_parameters", ())
    for k in range(1, len(mods)):
        lat = latents[k - 1] if k - 1 < len(latents) else None
        width = int(lat.shape[-1]) if isinstance(lat, torch.Tensor) else 1
        feats = tuple(Feature(j, f"z{k}[{j}]" if width > 1 else f"z{k}") for j in range(width))
        tree = simplify(walker.with_features(feats)(mods[k], join_path(prefix, f"covar_modules.{k}")))
        shape = "x".join(str(s) for s in lat.shape) if isinstance(lat, torch.Tensor) else "?"
        sections.append(Section(f"Times, over output dimension {k}", tree,
                                f"z{k} = learned latent positions latent_parameters.{k - 1} ({shape}), not drawn",
                                Part.covariance))
    return sections


def _grid_features(model) -> tuple[Feature, ...]:
    """LatentKroneckerGP's grid columns: ``t``, or ``t[j]`` for a grid of several columns."""
    width = int(model.train_T.shape[-1])
    return tuple(Feature(j, f"t[{j}]" if width > 1 else "t") for j in range(width))


def _latent_kronecker_sections(model, prefix: str, walker: Walker, in_space: str) -> list[Section]:
    """LatentKroneckerGP: ``k((x, t), (x', t')) = covar_module_X(x, x') · covar_module_T(t, t')``.

    BoTorch builds ``KroneckerProductLinearOperator(covar_X, covar_T)`` over the ``n x t``
    grid and masks the missing entries; each factor is walked as a kernel of its own inputs.
    """
    data = simplify(walker(model.covar_module_X, join_path(prefix, "covar_module_X")))
    grid = simplify(walker.with_features(_grid_features(model))(model.covar_module_T,
                                                                  join_path(prefix, "covar_module_T")))
    shape = "x".join(str(s) for s in model.train_T.shape)
    return [Section("Covariance kernel", data, in_space, Part.covariance),
            Section("Times, over the grid t", grid, f"t = train_T ({shape}), shared by every x; "
                    "entries missing from train_Y are masked out", Part.covariance)]


def _latent_kronecker_mean(model, prefix: str, walker: Walker, out_space: str) -> Section:
    """LatentKroneckerGP's mean: ``mean_module_X(x) · mean_module_T(t)`` (BoTorch's Kronecker product of the two)."""
    mx = _mean_tree(model.mean_module_X, join_path(prefix, "mean_module_X"), walker, None)
    mt = _mean_tree(model.mean_module_T, join_path(prefix, "mean_module_T"),
                    walker.with_features(_grid_features(model)), None)
    zero = any(isinstance(m, Const) and m.value == 0 for m in (mx, mt))  # BoTorch's default: two ZeroMeans
    return Section("Mean", Const(0.0) if zero else simplify(Product((mx, mt))), out_space, Part.mean)


def _list_outputs(model, outputs) -> tuple[str, ...]:
    n = len(model.models)
    if outputs is None:
        return tuple(f"output {i}" for i in range(n))
    if isinstance(outputs, str):
        raise InputError(f"outputs must be a list of {n} names, got the string {outputs!r}")
    names = tuple(str(o) for o in outputs)
    if len(names) != n:
        raise InputError(f"outputs has {len(names)} names but {type(model).__name__} has {n} outputs")
    return names


#: Puts a model-units expression in other units: ``(expr, units) -> expr``. Registered by
#: :mod:`gpviz.values.units`, a later stage of the pipeline (dependency inversion, as gpviz.display).
_UNIT_CONVERTERS: list = []


def register_units_converter(fn):
    """Registers the function :func:`model_expr` asks for ``units="original"`` (one: the last registered)."""
    _UNIT_CONVERTERS[:] = [fn]
    return fn


def model_expr(model: object, feature_names: Sequence[str] | pd.DataFrame | None = None, *, strict: bool = False,
               tasks: Sequence[str] | None = None, outputs: Sequence[str] | None = None, units: str = "model",
               **unknown: object) -> ModelExpr:
    """Builds the expression of a GP model: covariance kernel, noise and mean.

    Args:
        model: A BoTorch model or GPyTorch GP (exact, approximate, multi-task,
            Kronecker, higher-order, a ``ModelListGP``), an MLL wrapping one, or an Ax ``Client``,
            ``GenerationStrategy``, ``TorchAdapter``... (its surrogate, named from the search space).
        feature_names: Names of the input columns (list or a DataFrame of inputs).
        strict: Re-raise kernel handler errors.
        tasks: Display names of tasks (multi-task models); default: the task
            values seen in the training data.
        outputs: Display names of the outputs of a ``ModelListGP``, or of the members of a
            batched multi-output model (its dots: "output 'yield'").
        units: ``"model"`` (values as the model stores them) or ``"original"``: printed
            values and section notes in the data's units where an exact conversion exists
            (lengthscales x input range, outputscale and noise x sigma^2, mean x sigma + mu;
            the rest stays in model units and its section says why, as on the pages, see
            :mod:`gpviz.values.units`). Such an expression stays in original units in
            ``parameters`` and ``render``; its ``evaluate`` is refused (the covariance is
            computed in model units).

    Returns:
        A :class:`ModelExpr` (a :class:`ModelListExpr` for model lists);
        ``.evaluate(x1, x2)`` computes the covariance.

    Raises:
        InputError: if ``model`` is not a GP model, names have the wrong length, an option
            does not apply (``tasks`` for a model without tasks, ``outputs`` for one output;
            ``title`` belongs to the views, see :mod:`gpviz.options`), an unknown ``units``,
            or an unknown option.
        UnsupportedError: if a model list's sub-models have incompatible batch shapes.
    """
    reject_unknown("model_expr", unknown, ("feature_names", "strict", "tasks", "outputs", "units"))
    if units not in ("model", "original"):
        raise InputError(f"unknown units: {units!r} (must be one of ['model', 'original'])")
    if units != "model":
        return _UNIT_CONVERTERS[0](model_expr(model, feature_names, strict=strict, tasks=tasks, outputs=outputs),
                                   units)
    if (source := source_of(model)) is not None:  # e.g. an Ax Client: its module finds the model and names
        return source.expr(model, feature_names, strict=strict, tasks=tasks, outputs=outputs)
    model = unwrap_model(model)
    fam = family_of(model)
    if fam is None:
        raise InputError(
            f"model_expr expects a Gaussian-process model with a covariance kernel (e.g. botorch SingleTaskGP, "
            f"ModelListGP, SingleTaskVariationalGP), got {type(model).__module__}.{type(model).__name__}"
            + ("; for a kernel use gpviz.kernel_expr" if isinstance(model, Kernel) else ""))
    batch = model_batch_shape(model)
    if fam.holds_models:
        names = _list_outputs(model, outputs)
        n_in = [num_inputs(m) for m in sub_models(model)]
        features = root_features(feature_names, n_in[0] if len(set(n_in)) == 1 else None, type(model).__name__)
        parts = tuple(_gp_expr(m, model, f"models.{i}", features if features is not None else root_features(
            None, num_inputs(m), type(m).__name__), batch, strict, tasks) for i, m in enumerate(sub_models(model)))
        if tasks is not None and not any(p.tasks for p in parts):
            check_applies(type(model).__name__, parts[0].section_trees(), tasks=tasks)
        return ModelListExpr(model, parts, names, batch, features)
    features = root_features(feature_names, num_inputs(model), type(model).__name__)
    expr = _gp_expr(model, model, "", features, batch, strict, tasks)
    check_applies(type(model).__name__, expr.section_trees(), tasks=tasks, outputs=outputs,
                  has_outputs=expr.member_label == "outputs")
    if outputs is not None:  # a batched multi-output model: its members (the dots) are its outputs
        expr = expr.replace(member_names=check_names("outputs", outputs, int(torch.Size(batch).numel()), "outputs"))
    return expr
