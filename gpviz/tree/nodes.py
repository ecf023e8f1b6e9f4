"""Expression tree nodes: frozen, slotted, hashable records that hold structure only.

The tree holds *structure* only. Leaves reference parameters by key (for
example ``covar_module.lengthscale[3]``); values come from elsewhere (the
module, a dataframe row) and are joined on the key. Nodes are small frozen,
slotted dataclasses holding tuples, so trees are hashable and compare by value.

Evaluation convention: every node evaluates to a tensor that broadcasts to
``batch_shape x n x m`` (a kernel matrix per batch member). A *vector* node
(``Compare(None)``, the whole input when the number of features is unknown)
carries its feature axis in front: ``k x batch_shape x n x m``; only the
reducers (``norm_l2``, ``sum``, ``mean``, ``prod``) and elementwise operations
accept it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Iterator

from gpviz.errors import InputError


class Role(enum.StrEnum):
    """What a learned parameter is. Views give each role its own axis (and scale).

    Members compare and hash equal to their string values (``Role.noise == "noise"``),
    so frames and pages that carry the plain string stay readable.
    """

    value = "value"              # a parameter gpviz has no specific meaning for
    lengthscale = "lengthscale"
    outputscale = "outputscale"
    noise = "noise"
    mean = "mean"                # constant mean
    weight = "weight"            # linear-mean weights, mixture weights
    bias = "bias"
    constant = "constant"        # ConstantKernel
    alpha = "alpha"              # rational-quadratic shape
    period = "period"
    variance = "variance"        # linear/polynomial kernel variance
    offset = "offset"
    frequency = "frequency"      # spectral-mixture means
    scale = "scale"              # spectral-mixture scales
    task_factor = "task_factor"  # F of a task covariance F F^T + diag(v)
    task_var = "task_var"        # v of a task covariance
    power = "power"              # exponents of BoTorch's fidelity, decay and downsampling kernels

    @classmethod
    def parse(cls, role) -> "Role":
        """The role named ``role`` (a :class:`Role` or its string value).

        Raises:
            InputError: for a name that is not a role, listing the valid ones.
        """
        try:
            return cls(role)
        except ValueError:
            raise InputError(f"unknown parameter role {role!r} (must be one of {[r.value for r in cls]})") from None

    # What each role means is said here once; views, frames and unit conversion ask these properties.

    @property
    def scale_like(self) -> bool:
        """A positive, scale-like quantity: drawn on a log axis (pixel position linear in log10(value))."""
        return self in _SCALE_LIKE

    @property
    def signed(self) -> bool:
        """A signed quantity: a linear axis that shows negatives (and zero)."""
        return self in _SIGNED

    @property
    def measured_in(self) -> str | None:
        """``"inputs"`` (lengthscale, period), ``"outputs"`` (outputscale, noise, mean) or ``None`` (no unit)."""
        return _MEASURED_IN.get(self)

    @classmethod
    def of_parameter(cls, name: str) -> "Role":
        """The role a parameter called ``name`` has when its handler names none (``value`` if unknown)."""
        try:
            return cls(name)
        except ValueError:
            return cls.value

_SCALE_LIKE = frozenset({Role.lengthscale, Role.outputscale, Role.noise, Role.period, Role.variance, Role.alpha,
                         Role.scale, Role.frequency, Role.task_var})
_SIGNED = frozenset({Role.mean, Role.bias, Role.task_factor})
_MEASURED_IN = {Role.lengthscale: "inputs", Role.period: "inputs",
                Role.outputscale: "outputs", Role.noise: "outputs", Role.mean: "outputs"}

#: Field annotations that never hold a node: a walk skips those fields (a Param, Compare or Const has
#: no child, and a walk of a 1,000-D ARD tree visits ~3,000 of them).
_LEAF_TYPES = frozenset({"str", "int", "float", "bool", "Role", "Part", "int | None", "str | None",
                         "float | None", "tuple[int, ...] | None", "tuple[int, ...]", "tuple[str, ...]"})


#: ``child_fields``'s answers, one per node class (a plain dict: ``functools.lru_cache`` takes the
#: same time, but mypy cannot see a class object as hashable through its signature).
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def child_fields(cls: type) -> tuple[str, ...]:
    """The names of a node class's fields that may hold child nodes (``dataclasses.fields`` costs more
    than the walk that asks for it, so it is read once per class)."""
    names = _CHILD_FIELDS.get(cls)
    if names is None:
        names = _CHILD_FIELDS[cls] = tuple(f.name for f in fields(cls)
                                           if not (isinstance(f.type, str) and f.type in _LEAF_TYPES))
    return names


class Node:
    """Base class of every expression node."""

    __slots__ = ()

    def children(self) -> tuple["Node", ...]:
        """The direct child nodes, in print order."""
        names = child_fields(type(self))
        if not names:  # a leaf (Param, Compare, Const...): most nodes of a tree
            return ()
        out: list[Node] = []
        for name in names:
            v = getattr(self, name)
            if isinstance(v, Node):
                out.append(v)
            elif isinstance(v, tuple):
                for item in v:
                    if isinstance(item, Node):
                        out.append(item)
                    elif isinstance(item, tuple):
                        out.extend(x for x in item if isinstance(x, Node))
        return tuple(out)


class Part(enum.StrEnum):
    """Which part of a model a :class:`Section` holds."""

    covariance = "covariance"      # the covariance kernel (what ``evaluate`` computes)
    task_covariance = "task_covariance"  # a task covariance computed outside covar_module (display only)
    task_correlation = "task_correlation"  # the task correlation matrix, derived at build time (display only)
    noise = "noise"
    likelihood = "likelihood"      # a non-Gaussian likelihood (no noise term)
    mean = "mean"
    variational = "variational"    # the summarized variational posterior
    other = "other"


@dataclass(frozen=True, slots=True)
class Param(Node):
    """A learned parameter element, referenced by key.

    Attributes:
        key: The join key with the parameter dataframe.
        role: What the parameter is (``lengthscale``, ``outputscale``, ``noise``,
            ``mean``, ``weight``, ...); renderers give each role its own axis.
    """

    key: str
    role: Role = Role.value

    def __post_init__(self):
        if not isinstance(self.role, Role):
            object.__setattr__(self, "role", Role.parse(self.role))


@dataclass(frozen=True, slots=True)
class Const(Node):
    """A number fixed by the model's structure (not learned); ``label`` prints instead of the value."""

    value: float
    label: str = ""


@dataclass(frozen=True, slots=True)
class Symbol(Node):
    """A named quantity that gpviz shows but does not evaluate (e.g. ``train_Yvar``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """Pseudocode for the signed difference ``x1[..., dim] - x2[..., dim]``.

    ``dim=None`` stands for every input column at once (a vector node).
    """

    dim: int | None
    name: str


@dataclass(frozen=True, slots=True)
class Input(Node):
    """Pseudocode for one side's input column: ``x1[..., :, dim]`` (``side=1``) or ``x2[..., :, dim]`` (``side=2``).

    For kernels that are not functions of the difference of both inputs
    (fidelity and decay kernels). ``dim=None`` stands for every column (a vector node).
    """

    side: int
    dim: int | None
    name: str


@dataclass(frozen=True, slots=True)
class Differ(Node):
    """Pseudocode for the indicator ``x1[..., dim] != x2[..., dim]`` (categorical inputs)."""

    dim: int | None
    name: str


@dataclass(frozen=True, slots=True)
class Dot(Node):
    """Inner product ``sum_d x1[..., d] * x2[..., d]`` over ``dims`` (``None``: all columns)."""

    dims: tuple[int, ...] | None
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sum(Node):
    """n-ary sum."""

    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Product(Node):
    """n-ary product."""

    factors: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Div(Node):
    """``num / den``."""

    num: Node
    den: Node


@dataclass(frozen=True, slots=True)
class Neg(Node):
    """``-arg``."""

    arg: Node


@dataclass(frozen=True, slots=True)
class Pow(Node):
    """``base ** exponent``."""

    base: Node
    exponent: Node


@dataclass(frozen=True, slots=True)
class Vector(Node):
    """A list literal ``[a, b, ...]``; the argument of the reducers."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A named function applied to arguments; see :data:`gpviz.tree.notation.FUNCTIONS`."""

    fn: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class TaskCovar(Node):
    """A task covariance matrix looked up at the task indices of both inputs.

    ``C = F Fᵀ + diag(v)``, optionally divided by ``C[target, target]``;
    the value is ``C[x1[..., dim], x2[..., dim]]``.

    Attributes:
        dim: The input column holding the task index (``None``: the only column).
        name: Display name of the task column.
        factor: ``num_tasks x rank`` leaves of ``F``.
        var: ``num_tasks`` leaves of ``v``.
        target: Index of the task whose variance is normalized to one, or ``None``.
        tasks: Display names of the tasks.
    """

    dim: int | None
    name: str
    factor: tuple[tuple[Node, ...], ...]
    var: tuple[Node, ...]
    target: int | None = None
    tasks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Opaque(Node):
    """A kernel gpviz has no handler for: shown by class name with its own parameters.

    It evaluates by delegating to the module (at the module's current values),
    which :class:`gpviz.tree.evaluate.EvalEnv` finds by ``path``.

    Attributes:
        cls_name: The kernel's class name.
        path: Its module path (where :class:`gpviz.tree.evaluate.EvalEnv` finds the module).
        dims: The input columns it sees (``None``: all of them).
        params: Leaves of every parameter of its subtree that ``inner`` does not show.
        inner: ``(label, expression)`` of wrapped kernels gpviz understands; display
            only (the module computes the value), so their parameters are drawn too.
        note: What the wrapper changes (an approximation, fidelity columns...).
    """

    cls_name: str
    path: str
    dims: tuple[int, ...] | None
    params: tuple[Param, ...]
    inner: tuple[tuple[str, Node], ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class ValueBlock(Node):
    """The value block of a kernel that also returns derivative blocks (GPyTorch's ``*KernelGrad``).

    Such a kernel returns an ``n(1+k) x m(1+k)`` matrix, point-interleaved: entry
    ``[a(1+k), b(1+k)]`` is ``value(x1_a, x2_b)``, the other ``k`` rows and columns
    per point are derivatives of it. The node evaluates to the ``n x m`` value block.

    Attributes:
        value: The expression of the value block.
        derivatives: What the other blocks hold ("gradient", "gradient and second-derivative").
    """

    value: Node
    derivatives: str


@dataclass(frozen=True, slots=True)
class Unused(Node):
    """A kernel's expression plus parameters of its subtree that the formula does not use.

    For example the global shrinkage ``tau`` that BoTorch's SAAS prior adds to a
    kernel: learned, drawn and traced, but it enters only the prior. Evaluates
    to ``body``.
    """

    body: Node
    params: tuple[Param, ...]


@dataclass(frozen=True, slots=True)
class Section(Node):
    """A titled part of a model expression (covariance, noise, mean).

    Attributes:
        title: What a reader sees above the part.
        body: The part's tree.
        note: The units or caveat shown beside the title.
        part: Which part of the model it is (code asks this, never the title).
    """

    title: str
    body: Node
    note: str = ""
    part: Part = Part.other

    def __post_init__(self):
        if not isinstance(self.part, Part):
            object.__setattr__(self, "part", Part(self.part))


# --------------------------------------------------------------------------- #
# Generic traversal                                                           #
# --------------------------------------------------------------------------- #


def iter_nodes(node: Node) -> Iterator[Node]:
    """Yields every node of the tree in print order (pre-order)."""
    # an explicit stack, not nested generators: each node is yielded once, not through every level above it
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        kids = n.children()
        if kids:
            stack.extend(reversed(kids))


def keys_of(node: Node) -> tuple[str, ...]:
    """The parameter keys of a tree in print order, each once."""
    return tuple(roles_of(node))


def roles_of(node: Node) -> dict[str, Role]:
    """Maps every key of the tree to its role (first occurrence wins), in print order."""
    out: dict[str, Role] = {}
    for n in iter_nodes(node):
        if isinstance(n, Param):
            out.setdefault(n.key, n.role)
    return out
