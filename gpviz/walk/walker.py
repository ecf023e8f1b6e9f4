"""Walks a GPyTorch kernel into an expression tree through the handler registry."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import torch
from gpytorch.kernels import Kernel

from gpviz.errors import HandlerError, InputError, OpaqueKernelWarning, UnsupportedError
from gpviz.tree.nodes import Compare, Differ, Dot, Input, Node, Opaque, Param, Role, Unused, keys_of
from gpviz.values.keys import join_path, make_key, param_info
from gpviz.walk import handlers as _handlers  # noqa: F401 - importing it registers the built-in handlers
from gpviz.walk import handlers_extra as _handlers_extra  # noqa: F401 - and the ones at the edges of the stack
from gpviz.walk.registry import HANDLERS, lookup, lookup_width


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
        if type(module).forward is Kernel.forward:
            # nothing to show or compute: GPyTorch itself raises NotImplementedError when it is called
            raise UnsupportedError(
                f"{type(module).__name__} at {path or 'the root'} does not implement forward (the abstract "
                f"gpytorch Kernel base); expected a kernel that computes a covariance")
        walker = self
        active = active_dims_of(module)
        if active is not None and not via_forward:
            walker = replace(self, features=_select(self.features, active))
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
                return walker.keep_unused(module, path, node)
        node = walker.opaque(module, path)
        if type(module) not in _WARNED_OPAQUE:
            _WARNED_OPAQUE.add(type(module))
            warnings.warn(
                f"gpviz has no handler for {type(module).__name__}: it is shown as an opaque node with all "
                f"{len(node.params)} parameter elements of its subtree (values, priors and traces), but not its "
                f"formula, and evaluated by calling the module. Register a handler with "
                f"@gpviz.register_kernel({type(module).__name__}).",
                OpaqueKernelWarning, stacklevel=2)
        return node

    def keep_unused(self, module: torch.nn.Module, path: str, node: Node) -> Node:
        """``node``, or :class:`Unused` around it when the module's subtree has parameters the formula skips.

        A handler writes the formula; a parameter that only a prior reads (the SAAS
        ``tau``) would vanish from ``parameters``, pages and traces without this.
        """
        if isinstance(node, Opaque):
            return node
        missing = tuple(subtree_params(self, module, path, used=set(keys_of(node))))
        return Unused(node, missing) if missing else node

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

    def input(self, f: Feature, side: int) -> Input:
        """``x1['name']`` (``side=1``) or ``x2['name']`` (``side=2``): one side's value on feature ``f``."""
        return Input(side, f.dim, f.name)

    def differ(self, f: Feature) -> Differ:
        """``differ('name')``: 1 where both inputs differ on categorical feature ``f``."""
        return Differ(f.dim, f.name)

    def dot(self) -> Dot:
        """The inner product of both inputs over the visible features."""
        if self.features is None:
            return Dot(None, ())
        return Dot(self._dims(), tuple(f.name for f in self.features))

    def _dims(self) -> tuple[int, ...] | None:
        """The visible features' columns; None (every column) when unknown, or when a feature is the whole
        input (``Feature(None, "x")``, which ``features_for`` gives a kernel whose width is unknown)."""
        if self.features is None:
            return None
        dims = tuple(f.dim for f in self.features)
        return None if None in dims else tuple(d for d in dims if d is not None)

    def task_names(self, count: int) -> tuple[str, ...]:
        """Display names of ``count`` tasks."""
        return self.tasks if len(self.tasks) == count else tuple(str(i) for i in range(count))

    def opaque(self, module: torch.nn.Module, path: str, inner: Sequence[tuple[str, Node]] = (),
               note: str = "") -> Opaque:
        """An opaque node that keeps every parameter of the module's whole subtree.

        Args:
            module: The kernel gpviz cannot write out.
            path: Its module path.
            inner: ``(label, expression)`` of wrapped kernels gpviz understands
                (display only); their parameters are not listed twice.
            note: What the wrapper changes, printed with the node.

        Returns:
            An :class:`Opaque` node whose ``params`` hold one leaf per element of
            every parameter in the subtree (children's too, shared ones once)
            that ``inner`` does not show, in ``named_parameters`` order.
        """
        inner = tuple((str(label), n) for label, n in inner)
        shown = {k for _, n in inner for k in keys_of(n)}
        leaves = subtree_params(self, module, path, used=shown)
        return Opaque(type(module).__name__, path, self._dims(), tuple(leaves), inner, note)


def subtree_params(walk: "Walker", module: torch.nn.Module, path: str, used: set[str] | None = None) -> list[Param]:
    """One leaf per element of every parameter under ``module`` (its own and its children's).

    ``named_parameters`` lists a parameter shared by several children once, at
    its first path, and so does the result.

    Args:
        walk: The walker (batch shape, roles).
        module: The subtree's root; ``path`` its key path.
        used: Keys to leave out (those a formula already shows). A parameter whose every element is
            among them makes no leaves at all (a 1,000-D ARD lengthscale is counted, not rebuilt).
    """
    per_base: dict[str, int] = {}
    for key in used or ():
        base = key.partition("[")[0]
        per_base[base] = per_base.get(base, 0) + 1
    leaves: list[Param] = []
    for name, _ in module.named_parameters():
        sub, _, raw_name = name.rpartition(".")
        owner = module.get_submodule(sub) if sub else module
        owner_path = join_path(path, sub) if sub else path
        if used:
            info = param_info(owner, raw_name, walk.batch_shape)
            if per_base.get(make_key(owner_path, info.name), 0) == math.prod(info.squeezed_shape):
                continue
        leaves.extend(p for p in walk.params(owner, owner_path, raw_name) if not used or p.key not in used)
    return leaves


def active_dims_of(module: torch.nn.Module) -> list[int] | None:
    """A kernel's ``active_dims`` as a list of ints, or ``None``.

    GPyTorch keeps what the user passed as a tensor: ``active_dims=1`` becomes a
    0-d tensor, so it is flattened (an int, tuple, list or tensor all work).
    """
    active = getattr(module, "active_dims", None)
    if active is None:
        return None
    return [int(i) for i in torch.as_tensor(active).reshape(-1).tolist()]


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
    ``active_dims`` on its path) fixes it, or the width a kernel that picks its
    own columns declares (:func:`~gpviz.walk.registry.register_width`);
    ``active_dims`` alone do not. A kernel without a handler may index its input
    any way, so its children's ARD sizes are not believed.
    """

    def visit(k, sliced: bool) -> int | None:
        sliced = sliced or getattr(k, "active_dims", None) is not None
        width = lookup_width(type(k))
        if width is not None:  # the kernel selects its own columns: its children's ARD sizes say nothing
            return None if sliced else width(k)
        found = None
        ard = getattr(k, "ard_num_dims", None)
        if not lookup(type(k)):
            return int(ard) if not sliced and ard is not None and int(ard) > 1 else None
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
