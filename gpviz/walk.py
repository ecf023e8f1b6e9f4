"""Walks a GPyTorch kernel into an expression tree through the handler registry."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import torch
from gpytorch.kernels import Kernel

from gpviz import kernels as _kernels
from gpviz.errors import HandlerError, InputError, KeyMismatchError, OpaqueKernelWarning, UnsupportedError
from gpviz.expr import (Compare, Differ, Dot, EvalEnv, Node, Opaque, Param, evaluate, fmt_number, iter_nodes,
                        keys_of, roles_of, simplify, to_text)
from gpviz.keys import make_key, param_info, read_member_values

_WARNED_OPAQUE: set[type] = set()


@dataclass(frozen=True)
class Feature:
    """An input column as a kernel sees it: absolute column ``dim`` (``None``: all columns) and a name."""

    dim: int | None
    name: str


@dataclass(frozen=True)
class Walker:
    """The ``walk`` argument of handlers: recursion plus helpers for leaves and features.

    Attributes:
        features: The input columns visible to the module being walked, or
            ``None`` when the number of inputs is unknown.
        batch_shape: The root's batch shape (members).
        strict: Re-raise handler errors instead of making an opaque node.
        registry: Handler registry (copy-on-extend for per-call overrides).
        modules: path -> module, filled while walking (for opaque delegation).
        tasks: Display names of tasks, for index kernels.
    """

    features: tuple[Feature, ...] | None
    batch_shape: torch.Size
    strict: bool = False
    registry: Mapping[type, object] = field(default_factory=lambda: _kernels._HANDLERS)
    modules: dict = field(default_factory=dict)
    tasks: tuple[str, ...] = ()

    # -- recursion ---------------------------------------------------------
    def __call__(self, module: torch.nn.Module, path: str, *, via_forward: bool = False) -> Node:
        """Builds the tree of ``module`` at ``path``.

        Args:
            module: A kernel.
            path: Its dotted path from the root (the key prefix of its parameters).
            via_forward: The parent calls ``module.forward`` directly (as
                ``ScaleKernel`` does), so ``Kernel.__call__`` never applies the
                module's ``active_dims``.
        """
        if not isinstance(module, Kernel):
            raise InputError(f"expected a gpytorch Kernel at {path or 'the root'}, got {type(module).__name__}")
        walker = self
        active = getattr(module, "active_dims", None)
        if active is not None and not via_forward:
            walker = replace(self, features=_select(self.features, [int(i) for i in active.tolist()]))
        self.modules[path] = module
        for cls, handler in _kernels.lookup(type(module), self.registry):
            try:
                node = handler(module, path, walker)
            except Exception as exc:  # a handler bug must not break a user's notebook
                if self.strict:
                    raise HandlerError(
                        f"handler {getattr(handler, '__name__', handler)!r} for {cls.__name__} failed at "
                        f"{path or 'the root'}: {type(exc).__name__}: {exc}") from exc
                warnings.warn(
                    f"gpviz: handler for {cls.__name__} failed at {path or 'the root'} "
                    f"({type(exc).__name__}: {exc}); showing it as an opaque node",
                    OpaqueKernelWarning, stacklevel=2)
                return walker.opaque(module, path)
            if node is not NotImplemented:
                return node
        if type(module) not in _WARNED_OPAQUE:
            _WARNED_OPAQUE.add(type(module))
            warnings.warn(
                f"gpviz has no handler for {type(module).__name__}; it is shown as an opaque node and "
                f"evaluated by calling the module. Register one with @gpviz.register_kernel({type(module).__name__}).",
                OpaqueKernelWarning, stacklevel=2)
        return walker.opaque(module, path)

    def with_features(self, features: Sequence[Feature] | None) -> "Walker":
        """A walker whose child kernels see ``features``."""
        return replace(self, features=None if features is None else tuple(features))

    # -- leaves ------------------------------------------------------------
    def params(self, module: torch.nn.Module, path: str, name: str, role: str | None = None) -> tuple[Param, ...]:
        """One :class:`Param` leaf per element of parameter ``name``, in element order."""
        info = param_info(module, name, self.batch_shape)
        return tuple(Param(make_key(path, info.name, idx), role or info.name) for idx in info.indices())

    def features_for(self, count: int | None) -> tuple[Feature, ...]:
        """The visible features; if unknown, ``count`` columns ``x0..`` or one whole-input vector."""
        if self.features is not None:
            if count is not None and count != len(self.features):
                raise InputError(f"kernel expects {count} input features but sees {len(self.features)} "
                                 f"({[f.name for f in self.features]})")
            return self.features
        if count is not None:
            return tuple(Feature(i, f"x{i}") for i in range(count))
        return (Feature(None, "x"),)

    def compare(self, f: Feature) -> Compare:
        """``compare('name')``: the difference of both inputs on feature ``f``."""
        return Compare(f.dim, f.name)

    def differ(self, f: Feature) -> Differ:
        """``differ('name')``: 1 where both inputs differ on categorical feature ``f``."""
        return Differ(f.dim, f.name)

    def dot(self) -> Dot:
        """The inner product of both inputs over the visible features."""
        if self.features is None:
            return Dot(None, ())
        return Dot(tuple(f.dim for f in self.features), tuple(f.name for f in self.features))

    def task_names(self, count: int) -> tuple[str, ...]:
        """Display names of ``count`` tasks."""
        return self.tasks if len(self.tasks) == count else tuple(str(i) for i in range(count))

    def opaque(self, module: torch.nn.Module, path: str) -> Opaque:
        """An opaque node listing the module's own (non-child) parameters."""
        leaves: list[Param] = []
        for raw_name, p in module._parameters.items():
            if p is None:
                continue
            leaves.extend(self.params(module, path, raw_name))
        dims = None if self.features is None else tuple(f.dim for f in self.features)
        return Opaque(type(module).__name__, path, dims, tuple(leaves))


def _select(features: tuple[Feature, ...] | None, active: list[int]) -> tuple[Feature, ...]:
    if features is None:
        return tuple(Feature(i, f"x{i}") for i in active)
    try:
        return tuple(features[i] for i in active)
    except IndexError:
        raise InputError(f"active_dims {active} index past the {len(features)} visible features") from None


def infer_num_features(kernel: Kernel) -> int | None:
    """The exact input dimension a kernel implies, when it implies one.

    Only an ARD parameter of a kernel that sees the whole input (no
    ``active_dims`` on its path) fixes it; ``active_dims`` alone do not.
    """

    def visit(k, sliced: bool) -> int | None:
        sliced = sliced or getattr(k, "active_dims", None) is not None
        found = None
        ard = getattr(k, "ard_num_dims", None)
        if not sliced and ard is not None and int(ard) > 1:
            found = int(ard)
        for name, child in k.named_children():
            if isinstance(child, Kernel):
                found = found or visit(child, sliced)
            elif isinstance(child, torch.nn.ModuleList):
                for c in child:
                    if isinstance(c, Kernel):
                        found = found or visit(c, sliced)
        return found

    return visit(kernel, False)


def root_features(feature_names, num_features: int | None, what: str) -> tuple[Feature, ...] | None:
    """Validates ``feature_names`` against the known input dimension.

    Raises:
        InputError: wrong type or length of ``feature_names``.
    """
    if feature_names is None:
        return None if num_features is None else tuple(Feature(i, f"x{i}") for i in range(num_features))
    if hasattr(feature_names, "columns"):  # a pandas DataFrame of inputs
        feature_names = list(feature_names.columns)
    if isinstance(feature_names, str) or not isinstance(feature_names, Sequence):
        raise InputError(f"feature_names must be a list of strings, got {type(feature_names).__name__}")
    names = [str(n) for n in feature_names]
    if num_features is not None and len(names) != num_features:
        raise InputError(f"feature_names has {len(names)} names but {what} has {num_features} input features")
    return tuple(Feature(i, n) for i, n in enumerate(names))


class Expr:
    """Common behaviour of kernel and model expressions.

    Attributes:
        tree: The expression tree (structure only).
        module: The module the tree was made from (values are read from it).
        batch_shape: Batch members of the module.
    """

    tree: Node
    module: torch.nn.Module
    batch_shape: torch.Size
    modules: dict

    @property
    def keys(self) -> tuple[str, ...]:
        """Parameter keys in print order."""
        return keys_of(self.tree)

    @property
    def roles(self) -> dict[str, str]:
        """key -> role (``lengthscale``, ``noise``...)."""
        return roles_of(self.tree)

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
        from gpviz.render import render  # render imports rows2prose: only when displayed

        return render(self)._repr_html_()

    def evaluate(self, x1: torch.Tensor, x2: torch.Tensor | None = None, values=None) -> torch.Tensor:
        """Evaluates the kernel expression numerically, from the tree alone.

        Args:
            x1: ``n x d`` or ``batch_shape x n x d`` inputs.
            x2: ``m x d`` inputs (default: ``x1``).
            values: ``None`` for the module's current values (all members), or a
                mapping / dataframe row key -> value (the same for all members).

        Returns:
            ``batch_shape x n x m`` kernel matrix, equal to ``kernel(x1, x2).to_dense()``.

        Raises:
            InputError: if the inputs are not tensors of at least 2 dimensions.
            KeyMismatchError: if ``values`` lacks a key of the expression.
            UnsupportedError: if ``values`` is given and the tree has opaque kernels.
        """
        x2 = x1 if x2 is None else x2
        if not isinstance(x1, torch.Tensor) or not isinstance(x2, torch.Tensor):
            raise InputError(f"x1 and x2 must be tensors, got {type(x1).__name__} and {type(x2).__name__}")
        if x1.dim() < 2 or x2.dim() < 2:
            raise InputError(f"x1 and x2 must be at least 2-D (n x d), got shapes {list(x1.shape)}, {list(x2.shape)}")
        if values is None:
            vals = read_member_values(self.module, self.keys, self.batch_shape)
            vals = {k: v.to(x1.dtype) for k, v in vals.items()}
            batch = torch.broadcast_shapes(self.batch_shape, x1.shape[:-2], x2.shape[:-2])
        else:
            opaque = sorted({n.cls_name for n in iter_nodes(self.covariance_tree()) if isinstance(n, Opaque)})
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
            batch = torch.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
        x1e = x1.expand(*batch, *x1.shape[-2:])
        x2e = x2.expand(*batch, *x2.shape[-2:])
        tree = self.covariance_tree()
        out = evaluate(tree, EvalEnv(x1e, x2e, vals, self.modules))
        return out.expand(*batch, x1.shape[-2], x2.shape[-2])

    def covariance_tree(self) -> Node:
        """The part of the tree that :meth:`evaluate` computes."""
        return self.tree


class KernelExpr(Expr):
    """The expression of a GPyTorch kernel (see :func:`kernel_expr`)."""

    def __init__(self, tree: Node, module: Kernel, batch_shape: torch.Size, modules: dict,
                 features: tuple[Feature, ...] | None):
        self.tree = tree
        self.module = module
        self.batch_shape = batch_shape
        self.modules = modules
        self.features = features


def kernel_expr(kernel: Kernel, feature_names=None, *, strict: bool = False, tasks=None) -> KernelExpr:
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
