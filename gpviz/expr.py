"""Expression trees: frozen nodes, generic transforms, partial evaluation and numeric evaluation.

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

import math
from dataclasses import dataclass, fields, replace
from typing import Callable, Iterator, Mapping

import torch

from gpviz.errors import InputError, KeyMismatchError


class Node:
    """Base class of every expression node."""

    __slots__ = ()

    def children(self) -> tuple["Node", ...]:
        """The direct child nodes, in print order."""
        out: list[Node] = []
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, Node):
                out.append(v)
            elif isinstance(v, tuple):
                for item in v:
                    if isinstance(item, Node):
                        out.append(item)
                    elif isinstance(item, tuple):
                        out.extend(x for x in item if isinstance(x, Node))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Param(Node):
    """A learned parameter element, referenced by key.

    Attributes:
        key: The join key with the parameter dataframe.
        role: What the parameter is (``lengthscale``, ``outputscale``, ``noise``,
            ``mean``, ``weight``, ...); renderers give each role its own axis.
    """

    key: str
    role: str = "value"


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
    """A named function applied to arguments; see :data:`FUNCTIONS`."""

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
    which :class:`EvalEnv` finds by ``path``.
    """

    cls_name: str
    path: str
    dims: tuple[int, ...] | None
    params: tuple[Param, ...]


@dataclass(frozen=True, slots=True)
class Section(Node):
    """A titled part of a model expression (covariance, noise, mean)."""

    title: str
    body: Node
    note: str = ""


# --------------------------------------------------------------------------- #
# Generic traversal                                                           #
# --------------------------------------------------------------------------- #


def iter_nodes(node: Node) -> Iterator[Node]:
    """Yields every node of the tree in print order (pre-order)."""
    yield node
    for child in node.children():
        yield from iter_nodes(child)


def keys_of(node: Node) -> tuple[str, ...]:
    """The parameter keys of a tree in print order, each once."""
    seen: dict[str, None] = {}
    for n in iter_nodes(node):
        if isinstance(n, Param):
            seen.setdefault(n.key, None)
    return tuple(seen)


def roles_of(node: Node) -> dict[str, str]:
    """Maps every key of the tree to its role (first occurrence wins)."""
    out: dict[str, str] = {}
    for n in iter_nodes(node):
        if isinstance(n, Param):
            out.setdefault(n.key, n.role)
    return out


def _map_field(v, fn):
    if isinstance(v, Node):
        return transform(v, fn)
    if isinstance(v, tuple):
        return tuple(_map_field(x, fn) for x in v)
    return v


def transform(node: Node, fn: Callable[[Node], Node]) -> Node:
    """Bottom-up rewrite: children first, then ``fn`` on the rebuilt node.

    Args:
        node: The root of the tree.
        fn: Called on every node after its children were rewritten; returns the
            replacement (or the node itself).

    Returns:
        The rewritten tree; unchanged subtrees are shared, not copied.
    """
    changes = {}
    for f in fields(node):  # type: ignore[arg-type]
        old = getattr(node, f.name)
        new = _map_field(old, fn)
        if new is not old and new != old:
            changes[f.name] = new
    rebuilt = replace(node, **changes) if changes else node
    return fn(rebuilt)


def simplify(node: Node) -> Node:
    """Visual clean-up: flattens nested sums and products, folds constants.

    Keeps the value of the expression exactly (only exact identities are used).
    """

    def step(n: Node) -> Node:
        if isinstance(n, Sum):
            terms: list[Node] = []
            for t in n.terms:
                terms.extend(t.terms if isinstance(t, Sum) else (t,))
            terms = [t for t in terms if not (isinstance(t, Const) and t.value == 0 and not t.label)]
            if not terms:
                return Const(0.0)
            return terms[0] if len(terms) == 1 else Sum(tuple(terms))
        if isinstance(n, Product):
            factors: list[Node] = []
            for f in n.factors:
                factors.extend(f.factors if isinstance(f, Product) else (f,))
            factors = [f for f in factors if not (isinstance(f, Const) and f.value == 1 and not f.label)]
            if not factors:
                return Const(1.0)
            return factors[0] if len(factors) == 1 else Product(tuple(factors))
        if isinstance(n, Neg) and isinstance(n.arg, Neg):
            return n.arg.arg
        return n

    return transform(node, step)


def bind(node: Node, values: Mapping[str, float]) -> Node:
    """Partial evaluation: replaces every parameter leaf found in ``values`` by a constant.

    Args:
        node: The tree.
        values: key -> number (e.g. one row of the wide parameter frame).

    Returns:
        A tree whose bound leaves are :class:`Const` nodes labelled with their key.
    """

    def step(n: Node) -> Node:
        if isinstance(n, Param) and n.key in values:
            return Const(float(values[n.key]))
        return n

    return transform(node, step)


# --------------------------------------------------------------------------- #
# Numeric evaluation                                                          #
# --------------------------------------------------------------------------- #


def _rbf(r):
    return torch.exp(-0.5 * r**2)


def _matern(nu: float):
    def f(r):
        if nu == 0.5:
            return torch.exp(-r)
        if nu == 1.5:
            s = math.sqrt(3.0) * r
            return (1.0 + s) * torch.exp(-s)
        s = math.sqrt(5.0) * r
        return (1.0 + s + s**2 / 3.0) * torch.exp(-s)

    return f


def _rq(r, alpha):
    return (1.0 + r**2 / (2.0 * alpha)) ** (-alpha)


# name -> (function of evaluated args, docstring formula). Reducers are handled
# separately because they consume a Vector.
FUNCTIONS: dict[str, tuple[Callable[..., torch.Tensor], str]] = {
    "exp": (torch.exp, "exp(a)"),
    "sqrt": (torch.sqrt, "sqrt(a)"),
    "sin": (torch.sin, "sin(a)"),
    "cos": (torch.cos, "cos(a)"),
    "abs": (torch.abs, "|a|"),
    "rbf": (_rbf, "exp(-r**2 / 2)"),
    "matern_05": (_matern(0.5), "exp(-r)"),
    "matern_15": (_matern(1.5), "(1 + sqrt(3) r) exp(-sqrt(3) r)"),
    "matern_25": (_matern(2.5), "(1 + sqrt(5) r + 5/3 r**2) exp(-sqrt(5) r)"),
    "rq": (_rq, "(1 + r**2 / (2 alpha)) ** -alpha"),
}
REDUCERS = ("norm_l2", "norm_l1", "sum", "mean", "prod")


@dataclass
class EvalEnv:
    """Inputs of a numeric evaluation.

    Attributes:
        x1: ``batch_shape x n x d`` (already expanded to the batch shape).
        x2: ``batch_shape x m x d``.
        values: key -> ``batch_shape`` tensor (or a scalar tensor).
        modules: path -> module, for delegating :class:`Opaque` nodes.
    """

    x1: torch.Tensor
    x2: torch.Tensor
    values: Mapping[str, torch.Tensor]
    modules: Mapping[str, torch.nn.Module]


@dataclass
class _Val:
    t: torch.Tensor
    vec: bool = False


def _elementwise(a: _Val, b: _Val, op) -> _Val:
    return _Val(op(a.t, b.t), a.vec or b.vec)


def evaluate(node: Node, env: EvalEnv) -> torch.Tensor:
    """Evaluates a tree to a ``batch_shape x n x m`` tensor.

    Raises:
        InputError: if the tree evaluates to a vector at the top level or uses
            a node that cannot be evaluated (a :class:`Symbol`).
        KeyMismatchError: if a parameter key has no value.
    """
    out = _eval(node, env)
    if out.vec:
        raise InputError("expression evaluates to one value per feature; wrap it in a reducer such as norm_l2")
    return out.t


def _eval(node: Node, env: EvalEnv) -> _Val:
    if isinstance(node, Param):
        try:
            v = env.values[node.key]
        except KeyError:
            raise KeyMismatchError(f"no value for parameter key {node.key!r}") from None
        v = torch.as_tensor(v, dtype=env.x1.dtype, device=env.x1.device)
        return _Val(v[..., None, None])
    if isinstance(node, Const):
        return _Val(torch.tensor(node.value, dtype=env.x1.dtype, device=env.x1.device))
    if isinstance(node, Compare):
        if node.dim is None:
            diff = env.x1[..., :, None, :] - env.x2[..., None, :, :]
            return _Val(diff.movedim(-1, 0), vec=True)
        return _Val(env.x1[..., :, node.dim, None] - env.x2[..., None, :, node.dim])
    if isinstance(node, Differ):
        if node.dim is None:
            diff = (env.x1[..., :, None, :] != env.x2[..., None, :, :]).to(env.x1.dtype)
            return _Val(diff.movedim(-1, 0), vec=True)
        return _Val((env.x1[..., :, node.dim, None] != env.x2[..., None, :, node.dim]).to(env.x1.dtype))
    if isinstance(node, Dot):
        a, b = env.x1, env.x2
        if node.dims is not None:
            a, b = a[..., list(node.dims)], b[..., list(node.dims)]
        return _Val(a @ b.transpose(-1, -2))
    if isinstance(node, Sum):
        vals = [_eval(t, env) for t in node.terms]
        acc = vals[0]
        for v in vals[1:]:
            acc = _elementwise(acc, v, torch.add)
        return acc
    if isinstance(node, Product):
        vals = [_eval(t, env) for t in node.factors]
        acc = vals[0]
        for v in vals[1:]:
            acc = _elementwise(acc, v, torch.mul)
        return acc
    if isinstance(node, Div):
        return _elementwise(_eval(node.num, env), _eval(node.den, env), torch.div)
    if isinstance(node, Neg):
        v = _eval(node.arg, env)
        return _Val(-v.t, v.vec)
    if isinstance(node, Pow):
        return _elementwise(_eval(node.base, env), _eval(node.exponent, env), torch.pow)
    if isinstance(node, Call):
        return _eval_call(node, env)
    if isinstance(node, TaskCovar):
        return _Val(_eval_task_covar(node, env))
    if isinstance(node, Opaque):
        return _Val(_eval_opaque(node, env))
    if isinstance(node, Section):
        return _eval(node.body, env)
    raise InputError(f"cannot evaluate a {type(node).__name__} node ({node!r}); it is display-only")


def _eval_call(node: Call, env: EvalEnv) -> _Val:
    if node.fn in REDUCERS:
        if len(node.args) != 1 or not isinstance(node.args[0], Vector):
            raise InputError(f"{node.fn} takes one list argument, got {node.args!r}")
        total = None
        count = 0
        for item in node.args[0].items:
            v = _eval(item, env)
            parts = v.t
            if node.fn == "norm_l2":
                parts = parts**2
            elif node.fn == "norm_l1":
                parts = parts.abs()
            if node.fn == "prod":
                red = parts.prod(0) if v.vec else parts
                total = red if total is None else total * red
            else:
                red = parts.sum(0) if v.vec else parts
                total = red if total is None else total + red
            count += parts.shape[0] if v.vec else 1
        if total is None:
            raise InputError(f"{node.fn} of an empty list")
        if node.fn == "norm_l2":
            # clamp like gpytorch's covar_dist so that sqrt has a finite gradient at 0
            total = total.clamp_min(1e-30).sqrt()
        elif node.fn == "mean":
            total = total / count
        return _Val(total)
    try:
        fn = FUNCTIONS[node.fn][0]
    except KeyError:
        raise InputError(f"unknown function {node.fn!r} (known: {sorted(FUNCTIONS) + list(REDUCERS)})") from None
    vals = [_eval(a, env) for a in node.args]
    return _Val(fn(*[v.t for v in vals]), any(v.vec for v in vals))


def _member_tensor(node: Node, env: EvalEnv) -> torch.Tensor:
    """A leaf's value with shape ``batch_shape`` (no trailing n x m dims)."""
    return _eval(node, env).t[..., 0, 0] if isinstance(node, Param) else _eval(node, env).t


def _eval_task_covar(node: TaskCovar, env: EvalEnv) -> torch.Tensor:
    batch = env.x1.shape[:-2]
    f_rows = [torch.stack([_member_tensor(c, env).expand(batch) for c in row], -1) for row in node.factor]
    factor = torch.stack(f_rows, -2)  # batch x t x r
    var = torch.stack([_member_tensor(v, env).expand(batch) for v in node.var], -1)  # batch x t
    covar = factor @ factor.transpose(-1, -2) + torch.diag_embed(var)
    if node.target is not None:
        covar = covar / covar[..., node.target, node.target][..., None, None]
    t = covar.shape[-1]
    col = 0 if node.dim is None else node.dim
    e1 = torch.nn.functional.one_hot(env.x1[..., col].long(), t).to(covar.dtype)  # batch x n x t
    e2 = torch.nn.functional.one_hot(env.x2[..., col].long(), t).to(covar.dtype)
    return e1 @ covar @ e2.transpose(-1, -2)


def _eval_opaque(node: Opaque, env: EvalEnv) -> torch.Tensor:
    module = env.modules.get(node.path)
    if module is None:
        raise InputError(f"opaque kernel at {node.path!r} ({node.cls_name}) has no module to delegate to")
    x1, x2 = env.x1, env.x2
    if node.dims is not None:
        x1, x2 = x1[..., list(node.dims)], x2[..., list(node.dims)]
    with torch.no_grad():
        out = module.forward(x1, x2)
    return out.to_dense() if hasattr(out, "to_dense") else out


# --------------------------------------------------------------------------- #
# Printing: precedence-aware, with line breaking                              #
# --------------------------------------------------------------------------- #

# Precedence: higher binds tighter.
_P_SUM, _P_PROD, _P_NEG, _P_POW, _P_ATOM = 1, 2, 3, 4, 5


@dataclass(frozen=True, slots=True)
class _Group:
    """A breakable bracketed list: ``open item, item close``."""

    open: str
    items: tuple
    close: str
    sep: str = ", "


def _prec(node: Node) -> int:
    if isinstance(node, Sum):
        return _P_SUM
    if isinstance(node, (Product, Div)):
        return _P_PROD
    if isinstance(node, Neg):
        return _P_NEG
    if isinstance(node, Const) and node.value < 0 and not node.label:
        return _P_NEG
    if isinstance(node, Pow):
        return _P_POW
    return _P_ATOM


def _paren(doc, need: bool):
    return _Group("(", (doc,), ")", "") if need else doc


def _doc(node: Node):
    """Builds a layout document: str, Param, list (concatenation) or _Group."""
    if isinstance(node, Param):
        return node
    if isinstance(node, Const):
        return node.label or fmt_number(node.value)
    if isinstance(node, Symbol):
        return node.name
    if isinstance(node, Compare):
        return f"compare({_quote(node.name)})"
    if isinstance(node, Differ):
        return f"differ({_quote(node.name)})"
    if isinstance(node, Dot):
        return _Group("dot(", ("x1", "x2"), ")") if node.dims is None else _Group(
            "dot(", tuple(_quote(n) for n in node.names), ")")
    if isinstance(node, Sum):
        parts: list = []
        for i, t in enumerate(node.terms):
            if i and isinstance(t, Neg):
                parts += [" - ", _paren(_doc(t.arg), _prec(t.arg) <= _P_SUM)]
            else:
                parts += ([" + "] if i else []) + [_paren(_doc(t), _prec(t) < _P_SUM)]
        return _Group("", tuple(_split_ops(parts)), "", "")
    if isinstance(node, Product):
        parts = []
        for i, f in enumerate(node.factors):
            parts += ([" * "] if i else []) + [_paren(_doc(f), _prec(f) < _P_PROD)]
        return _Group("", tuple(_split_ops(parts)), "", "")
    if isinstance(node, Div):
        return [_paren(_doc(node.num), _prec(node.num) < _P_PROD), " / ",
                _paren(_doc(node.den), _prec(node.den) <= _P_PROD)]
    if isinstance(node, Neg):
        return ["-", _paren(_doc(node.arg), _prec(node.arg) < _P_POW)]
    if isinstance(node, Pow):
        return [_paren(_doc(node.base), _prec(node.base) <= _P_POW), " ** ",
                _paren(_doc(node.exponent), _prec(node.exponent) < _P_POW)]
    if isinstance(node, Vector):
        return _Group("[", tuple(_doc(i) for i in node.items), "]")
    if isinstance(node, Call):
        return _Group(node.fn + "(", tuple(_doc(a) for a in node.args), ")")
    if isinstance(node, TaskCovar):
        rows = tuple(_Group("[", tuple(_doc(c) for c in row), "]") for row in node.factor)
        args = (["F=", _Group("[", rows, "]")], ["v=", _Group("[", tuple(_doc(v) for v in node.var), "]")])
        if node.target is not None:
            args += (f"unit_task={_quote(node.tasks[node.target]) if node.tasks else node.target}",)
        col = _quote(node.name)
        return [_Group("task_covar(", args, ")"), f"[x1[{col}], x2[{col}]]"]
    if isinstance(node, Opaque):
        return _Group(f"{node.cls_name}(", tuple([f"{_short(p.key)}=", p] for p in node.params) or ("...",), ")")
    if isinstance(node, Section):
        return _doc(node.body)
    raise InputError(f"cannot print a {type(node).__name__} node")


def _split_ops(parts: list) -> list:
    """Joins [a, ' + ', b, ' * ', c] into items [a, ' + b', ...] so that breaks fall before operators."""
    items: list = []
    cur: list = []
    for p in parts:
        if isinstance(p, str) and p in (" + ", " - ", " * "):
            if cur:
                items.append(cur)
            cur = [p]
        else:
            cur.append(p)
    if cur:
        items.append(cur)
    return items


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _quote(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fmt_number(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}"


def _flat(doc, leaf: Callable[[Param], str]) -> str:
    if isinstance(doc, str):
        return doc
    if isinstance(doc, Param):
        return leaf(doc)
    if isinstance(doc, list):
        return "".join(_flat(d, leaf) for d in doc)
    inner = doc.sep.join(_flat(i, leaf) for i in doc.items)
    return doc.open + inner + doc.close


# Tokens: str pieces and Param leaves. Newlines are plain "\n" + indent strings.
def layout(node: Node, leaf: Callable[[Param], str], width: int = 88) -> list:
    """Lays a tree out as a token list of str and :class:`Param` (for HTML placeholders).

    Args:
        node: The tree.
        leaf: Width-defining text of a parameter leaf (its value or a placeholder).
        width: Target line width in characters.
    """
    out: list = []
    _emit(_doc(node), leaf, width, 0, 0, out)
    return out


def _emit(doc, leaf, width: int, indent: int, col: int, out: list) -> int:
    """Appends tokens for ``doc`` starting at column ``col``; returns the new column."""
    if isinstance(doc, str):
        out.append(doc)
        return col + len(doc)
    if isinstance(doc, Param):
        out.append(doc)
        return col + len(leaf(doc))
    if isinstance(doc, list):
        for d in doc:
            col = _emit(d, leaf, width, indent, col, out)
        return col
    flat = _flat(doc, leaf)
    if col + len(flat) <= width:
        return _emit_flat(doc, leaf, out, col)
    if doc.open == "(" and doc.sep == "":  # parentheses: continuation lines indented inside
        out.append("(")
        col = _emit(doc.items[0], leaf, width, indent + 4, col + 1, out)
        out.append(")")
        return col + 1
    if doc.sep == "":  # an operator chain: a + b + c or a * b * c
        out.append(doc.open)
        col += len(doc.open)
        for i, item in enumerate(doc.items):
            long_factor = i and col > indent + 40 and col + len(_flat(item, leaf)) > width
            if i and (_is_sum_item(item) or long_factor):
                # break before every "+"/"-" of a sum that does not fit on one line,
                # and before a factor that would run past the width
                out.append("\n" + " " * indent)
                col = _emit([item[0].lstrip()] + item[1:], leaf, width, indent, indent, out)
            else:
                col = _emit(item, leaf, width, indent, col, out)
        out.append(doc.close)
        return col + len(doc.close)
    if len(doc.items) == 1 and isinstance(doc.items[0], _Group) and doc.items[0].sep:
        # chain single-argument calls: rbf(norm_l2([ ... ]))
        out.append(doc.open)
        col = _emit(doc.items[0], leaf, width, indent, col + len(doc.open), out)
        out.append(doc.close)
        return col + len(doc.close)
    inner = indent + 4
    out.append(doc.open)
    for item in doc.items:
        out.append("\n" + " " * inner)
        _emit(item, leaf, width, inner, inner, out)
        out.append(doc.sep.rstrip())
    out.append("\n" + " " * indent + doc.close)
    return indent + len(doc.close)


def _is_sum_item(item) -> bool:
    return isinstance(item, list) and item and isinstance(item[0], str) and item[0] in (" + ", " - ")


def _emit_flat(doc, leaf, out: list, col: int) -> int:
    if isinstance(doc, (str, Param, list)):
        return _emit(doc, leaf, 10**9, 0, col, out)
    out.append(doc.open)
    col += len(doc.open)
    for i, item in enumerate(doc.items):
        if i:
            out.append(doc.sep)
            col += len(doc.sep)
        col = _emit_flat(item, leaf, out, col)
    out.append(doc.close)
    return col + len(doc.close)


def to_text(node: Node, leaf: Callable[[Param], str], width: int = 88) -> str:
    """Prints a tree as pseudocode, each parameter leaf shown by ``leaf``."""
    return "".join(t if isinstance(t, str) else leaf(t) for t in layout(node, leaf, width))


def tokens_text(tokens: list, leaf: Callable[[Param], str]) -> str:
    """Joins a token list from :func:`layout` into text."""
    return "".join(t if isinstance(t, str) else leaf(t) for t in tokens)
