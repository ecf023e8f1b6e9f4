"""Kernel expressions: a walked tree bound to its module, printable, evaluable and displayable."""

from __future__ import annotations

import copy
import functools
from typing import Self, Sequence

import pandas as pd
import torch
from gpytorch.kernels import Kernel

from gpviz import display
from gpviz.errors import InputError, KeyMismatchError, UnsupportedError
from gpviz.tree.evaluate import EvalEnv, check_inputs, evaluate, required_width
from gpviz.tree.labels import labels_over
from gpviz.tree.nodes import Node, Opaque, Role, Section, iter_nodes, roles_of
from gpviz.tree.ops import simplify
from gpviz.tree.printer import fmt_number, to_text
from gpviz.values.keys import read_member_values
from gpviz.walk.walker import Feature, Walker, infer_num_features, root_features



class Expr:
    """Common behaviour of kernel and model expressions.

    Every field is declared here (or on a subclass) and set by the constructor; a
    changed copy is made by :meth:`replace`, never by writing onto an expression.
    """

    #: The expression tree (structure only; a model's is the ``Vector`` of its sections).
    tree: Node
    #: The module the tree was made from (values are read from it).
    module: torch.nn.Module
    #: Batch members of the module.
    batch_shape: torch.Size
    #: Module path -> module, for the opaque nodes the evaluator calls.
    modules: dict
    #: The input columns (index and name), or ``None`` when the width is unknown.
    features: tuple[Feature, ...] | None
    #: Display names of the tasks (multi-task models), else ``()``.
    tasks: tuple[str, ...]
    #: The model's input transform, or ``None`` (a kernel has none).
    input_transform: torch.nn.Module | None
    #: ``Section`` nodes in print order (covariance, noise, mean...); ``()`` for a kernel (its tree is one part).
    sections: tuple[Section, ...]
    #: Units of noise, outputscale and mean.
    output_space: str
    #: Units the lengthscales are measured in.
    input_space: str
    #: The page title, when the expression knows where its model came from (an Ax surrogate), else ``None``.
    title: str | None
    #: What the batch members are, plural ("MCMC samples", "outputs"...); ``None``: plain members.
    member_label: str | None
    #: Names of the batch members when they are named outputs (an Ax model's metrics), else ``None``.
    member_names: tuple[str, ...] | None

    def __init__(self, tree: Node, module: torch.nn.Module, batch_shape: torch.Size, modules: dict,
                 features: tuple[Feature, ...] | None, *, tasks: tuple[str, ...] = (),
                 input_transform: torch.nn.Module | None = None, sections: tuple[Section, ...] = (),
                 output_space: str = "outputs", input_space: str = "inputs", title: str | None = None,
                 member_label: str | None = None, member_names: tuple[str, ...] | None = None):
        self.tree = tree
        self.module = module
        self.batch_shape = batch_shape
        self.modules = modules
        self.features = features
        self.tasks = tuple(tasks)
        self.input_transform = input_transform
        self.sections = tuple(sections)
        self.output_space = output_space
        self.input_space = input_space
        self.title = title
        self.member_label = member_label
        self.member_names = None if member_names is None else tuple(member_names)

    #: Per-instance caches (``functools.cached_property``): a copy made by :meth:`replace` drops them.
    _CACHES = ("_walk", "_labels")

    def replace(self, **changes: object) -> Self:
        """A copy with the declared fields in ``changes`` replaced (as ``dataclasses.replace``).

        The copy keeps the keys, roles and labels computed so far when its printed trees are the
        same objects (new section notes only), and computes its own otherwise.

        Raises:
            InputError: a name in ``changes`` is not a declared field of the expression's class.
        """
        fields = self.field_names()
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise InputError(f"{type(self).__name__}.replace: {unknown} are not fields of the expression "
                             f"(its fields: {list(fields)})")
        new = copy.copy(self)
        new.__dict__.update(changes)
        # keys, roles and labels depend only on the printed trees and the task names: a copy that only
        # relabels its sections' notes keeps them (a 1,000-D ARD tree is not walked again)
        same = new.tasks == self.tasks and len(new.section_trees()) == len(self.section_trees()) and all(
            a is b for a, b in zip(new.section_trees(), self.section_trees()))
        if not same:
            for name in self._CACHES:
                new.__dict__.pop(name, None)
        return new

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Every declared field of the class, base classes first (their annotations)."""
        names: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            for name in vars(klass).get("__annotations__", {}):
                names.setdefault(name, None)
        return tuple(names)

    @property
    def keys(self) -> tuple[str, ...]:
        """Parameter keys in print order (the tree is walked once per expression, not on every access)."""
        return self._walk[0]

    @property
    def roles(self) -> dict[str, Role]:
        """key -> role (``lengthscale``, ``noise``...)."""
        return dict(self._walk[1])

    def _walked(self) -> tuple[tuple[str, ...], dict[str, Role]]:
        """``(keys, roles)``, from the one walk of the tree (:attr:`_walk`)."""
        return self._walk

    @functools.cached_property
    def _walk(self) -> tuple[tuple[str, ...], dict[str, Role]]:
        # A render asks for keys and roles several times; a 1,000-D ARD tree is ~30,000 nodes.
        roles = roles_of(self.tree)  # one walk: keys are its keys, in print order
        return tuple(roles), roles

    def section_trees(self) -> tuple[Node, ...]:
        """The trees the page prints, one per section (a kernel's own tree alone)."""
        return tuple(s.body for s in self.sections) or (self.tree,)

    @property
    def labels(self) -> dict[str, str]:
        """key -> readable label (``lengthscale[lr]``), unique over every section (:mod:`gpviz.tree.labels`)."""
        return dict(self._labels)

    @functools.cached_property
    def _labels(self) -> dict[str, str]:
        # a render asks for the labels several times; a 1,000-D ARD tree is walked once
        return labels_over(self.section_trees(), self.tasks)

    def values(self, member: int = 0) -> dict[str, float]:
        """key -> current value of batch member ``member``.

        Raises:
            InputError: if ``member`` is not one of the ``batch_shape`` members.
        """
        count = int(torch.Size(self.batch_shape).numel())
        if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < count:
            raise InputError(f"member must be an integer in [0, {count}) for this batch of {count}, got {member!r}")
        vals = read_member_values(self.module, self.keys, self.batch_shape)
        return {k: float(v.reshape(-1)[member]) for k, v in vals.items()}

    def text(self, member: int = 0, width: int = 88) -> str:
        """Pseudocode with the values of batch member ``member``."""
        vals = self.values(member) if self.keys else {}
        return to_text(self.tree, lambda p: fmt_number(vals[p.key]), width)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {type(self.module).__name__}: {len(self.keys)} parameter keys>"

    def _repr_html_(self) -> str:
        return display.render(self)._repr_html_()

    def evaluate(self, x1: torch.Tensor, x2: torch.Tensor | None = None, values=None, *,
                 transform_inputs: bool = False) -> torch.Tensor:
        """Evaluates the kernel expression numerically, from the tree alone.

        The expression works on the inputs the kernel sees: for a model with an
        input transform (``Normalize``...), those are the *transformed* inputs.
        By default ``x1`` and ``x2`` are taken as already transformed (as
        ``model.train_inputs`` are); ``transform_inputs=True`` applies the
        model's input transform first, as ``model.posterior(X)`` does.

        Args:
            x1: ``n x d`` or ``batch_shape x n x d`` floating-point inputs.
            x2: ``m x d`` inputs (default: ``x1``).
            values: ``None`` for the module's current values (all members), or a
                mapping / dataframe row key -> value (the same for all members).
            transform_inputs: Apply the model's input transform to ``x1`` and
                ``x2`` first (default ``False``: inputs are in the kernel's space).

        Returns:
            ``batch_shape x n x m`` kernel matrix, equal to ``kernel(x1, x2).to_dense()``
            (for a gradient kernel, its ``n x m`` value block; for an opaque
            root, whatever shape the module returns).

        Raises:
            InputError: if the inputs are not floating-point tensors of at least
                2 dimensions, have another number of columns than the expression's
                features, batch shapes that do not broadcast, or live on the meta
                device; or if ``transform_inputs`` is asked without an input transform.
            KeyMismatchError: if ``values`` lacks a key of the expression.
            UnsupportedError: if ``values`` is given and the tree has opaque kernels.
        """
        x2 = x1 if x2 is None else x2
        if transform_inputs:
            x1, x2 = self.transform_inputs(x1), self.transform_inputs(x2)
        return self._evaluate(x1, x2, values, self.input_width())

    def transform_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` through the model's input transform as ``model.posterior`` applies it (eval mode).

        The transform is put in eval mode for the call (a learning ``Normalize``
        would otherwise update its bounds) and restored to its mode afterwards.

        Raises:
            InputError: if there is no input transform (a kernel, or a model without one).
        """
        it = self.input_transform
        if it is None:
            raise InputError(f"transform_inputs=True, but {type(self.module).__name__} has no input_transform; "
                             "pass inputs in the kernel's own space")
        was_training = it.training
        try:
            it.eval()
            with torch.no_grad():
                return it(x)
        finally:
            it.train(was_training)

    def input_width(self) -> int | None:
        """The number of input columns :meth:`evaluate` expects, when the features fix it."""
        return None if self.features is None else len(self.features)

    def _evaluate(self, x1: torch.Tensor, x2: torch.Tensor, values, width: int | None) -> torch.Tensor:
        tree = self.covariance_tree()
        check_inputs(x1, x2, width, required_width(tree))
        batch = torch.Size()
        if values is None:
            vals = read_member_values(self.module, self.keys, self.batch_shape)
            vals = {k: v.to(x1.dtype) for k, v in vals.items()}
            batch = self.batch_shape
        else:
            opaque = sorted({n.cls_name for n in iter_nodes(tree) if isinstance(n, Opaque)})
            if opaque:
                # an opaque kernel is computed by its module, at the module's own values
                raise UnsupportedError(
                    f"evaluate(values=...) cannot set the parameters of opaque kernels {opaque}; register "
                    f"handlers for them or evaluate at the module's current values (values=None)")
            if hasattr(values, "to_dict"):
                values = values.to_dict()
            vals = {}
            for k in self.keys:
                if k not in values:
                    raise KeyMismatchError(f"values has no entry for parameter key {k!r}")
                vals[k] = torch.tensor(float(values[k]), dtype=x1.dtype)
        try:
            batch = torch.broadcast_shapes(batch, x1.shape[:-2], x2.shape[:-2])
        except RuntimeError:
            raise InputError(
                f"batch shapes do not broadcast: x1 {list(x1.shape[:-2])}, x2 {list(x2.shape[:-2])}, "
                f"parameters {list(batch)} (expected shapes that broadcast, as in torch)") from None
        x1e = x1.expand(*batch, *x1.shape[-2:])
        x2e = x2.expand(*batch, *x2.shape[-2:])
        out = evaluate(tree, EvalEnv(x1e, x2e, vals, self.modules))
        shape: tuple[int, ...] = (x1.shape[-2], x2.shape[-2])
        if any(s not in (1, want) for s, want in zip(out.shape[-2:], shape)):
            # an opaque multi-task or gradient kernel returns more rows than points: keep its shape
            shape = tuple(out.shape[-2:])
        return out.expand(*batch, *shape)

    def covariance_tree(self) -> Node:
        """The part of the tree that :meth:`evaluate` computes."""
        return self.tree


class KernelExpr(Expr):
    """The expression of a GPyTorch kernel (see :func:`kernel_expr`); its fields are :class:`Expr`'s."""


def kernel_expr(kernel: Kernel, feature_names: Sequence[str] | pd.DataFrame | None = None, *, strict: bool = False,
                tasks: Sequence[str] | None = None) -> KernelExpr:
    """Builds the runnable, printable expression of a GPyTorch kernel.

    Args:
        kernel: Any ``gpytorch.kernels.Kernel`` (batched or not).
        feature_names: Names of the input columns (list, or a DataFrame whose
            columns are used); default ``x0, x1, ...``.
        strict: Re-raise errors of kernel handlers (for tests) instead of
            showing an opaque node with a warning.
        tasks: Display names of tasks for index kernels.

    Returns:
        A :class:`KernelExpr`; ``print`` it, ``.evaluate(x1, x2)`` it, read ``.keys``.

    Raises:
        InputError: if ``kernel`` is not a kernel or ``feature_names`` has the wrong length.
    """
    if not isinstance(kernel, Kernel):
        raise InputError(f"kernel_expr expects a gpytorch.kernels.Kernel, got {type(kernel).__module__}."
                         f"{type(kernel).__name__}")
    features = root_features(feature_names, infer_num_features(kernel), "the kernel")
    walker = Walker(features, kernel.batch_shape, strict=strict, tasks=tuple(tasks or ()))
    tree = simplify(walker(kernel, ""))
    return KernelExpr(tree, kernel, kernel.batch_shape, walker.modules, features)
