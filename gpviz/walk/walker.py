"""Walks a GPyTorch kernel into an expression tree through the handler registry."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import torch
from gpytorch.kernels import Kernel

from gpviz.errors import HandlerError, InputError, OpaqueKernelWarning
from gpviz.tree.nodes import Compare, Differ, Dot, Node, Opaque, Param, Role
from gpviz.values.keys import make_key, param_info
from gpviz.walk import handlers as _handlers  # noqa: F401 - importing it registers the built-in handlers
from gpviz.walk.registry import HANDLERS, lookup


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
    registry: Mapping[type, object] = field(default_factory=lambda: HANDLERS)
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
        for cls, handler in lookup(type(module), self.registry):
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
    def params(self, module: torch.nn.Module, path: str, name: str, role: Role | str | None = None) -> tuple[Param, ...]:
        """One :class:`Param` leaf per element of parameter ``name``, in element order."""
        info = param_info(module, name, self.batch_shape)
        role_ = Role.parse(role) if role is not None else Role.of_parameter(info.name)
        return tuple(Param(make_key(path, info.name, idx), role_) for idx in info.indices())

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
