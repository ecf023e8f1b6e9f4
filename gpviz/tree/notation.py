"""The pseudocode functions: one table of each function's notation line and numeric implementation.

A reader who does not know BoTorch's internals meets ``compare('x')``,
``norm_l2([...])``, ``matern_25(r)`` or ``task_covar(F=..., v=...)`` in a
page. :data:`FUNCTIONS` is the one place such a function is defined: its
one-line formula (the notation key pages show, the hover text of its name in the
code, the README's key) and, for a function evaluated by name, what it computes
(:mod:`gpviz.tree.evaluate` reads it from here). :func:`notation` lists exactly
the functions one expression uses, in the order they first appear.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import torch

from gpviz.tree.nodes import Call, Compare, Differ, Dot, Node, Opaque, Param, Product, Role, TaskCovar, iter_nodes


@dataclass(frozen=True, slots=True)
class Reduction:
    """How a reducer folds a list: each item mapped by ``item``, then summed (or multiplied), then ``finish``.

    Attributes:
        item: Applied to every list item's values (``norm_l2`` squares them).
        multiply: Fold with ``*`` instead of ``+`` (``prod``).
        finish: ``(total, count) -> value`` (``mean`` divides by the count).
    """

    item: Callable[[torch.Tensor], torch.Tensor] = lambda t: t
    multiply: bool = False
    finish: Callable[[torch.Tensor, int], torch.Tensor] = lambda total, count: total


@dataclass(frozen=True, slots=True)
class Function:
    """One pseudocode function.

    Attributes:
        line: Its one-line formula, as the notation key shows it.
        apply: Its numeric implementation on evaluated arguments, for a :class:`~gpviz.tree.nodes.Call` of it;
            ``None`` where a node of its own evaluates it (``compare``, ``task_covar``) or where it is notation
            only (``per_task``, ``* s``).
        reduce: For a function of one list (``sum([a, b])``): how it folds the list.
    """

    line: str
    apply: Callable[..., torch.Tensor] | None = None
    reduce: Reduction | None = None


def _matern(nu: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def f(r):
        if nu == 0.5:
            return torch.exp(-r)
        if nu == 1.5:
            s = math.sqrt(3.0) * r
            return (1.0 + s) * torch.exp(-s)
        s = math.sqrt(5.0) * r
        return (1.0 + s + s**2 / 3.0) * torch.exp(-s)

    return f


def _norm_l2(total: torch.Tensor, count: int) -> torch.Tensor:
    # clamp like gpytorch's covar_dist so that sqrt has a finite gradient at 0
    return total.clamp_min(1e-30).sqrt()


#: name -> the function, in the order the README's key lists them. ``x1``/``x2`` are the two inputs a kernel compares.
FUNCTIONS: dict[str, Function] = {
    "compare": Function("compare('f') = x1['f'] - x2['f']: the signed difference of input f between the two points"),
    "differ": Function("differ('f') = 1 if x1['f'] != x2['f'] else 0: whether a categorical input differs"),
    "dot": Function("dot('a', 'b', ...) = x1['a']*x2['a'] + x1['b']*x2['b'] + ...: the inner product of the inputs"),
    "norm_l2": Function("norm_l2([a, b, ...]) = sqrt(a**2 + b**2 + ...): Euclidean length (scaled distance r)",
                        reduce=Reduction(item=lambda t: t**2, finish=_norm_l2)),
    "norm_l1": Function("norm_l1([a, b, ...]) = |a| + |b| + ...: Manhattan length",
                        reduce=Reduction(item=torch.abs)),
    "sum": Function("sum([a, b, ...]) = a + b + ...", reduce=Reduction()),
    "mean": Function("mean([a, b, ...]) = (a + b + ...) / count",
                     reduce=Reduction(finish=lambda total, count: total / count)),
    "prod": Function("prod([a, b, ...]) = a * b * ...", reduce=Reduction(multiply=True)),
    "exp": Function("exp(a) = e**a", torch.exp),
    "sqrt": Function("sqrt(a) = a**0.5", torch.sqrt),
    "sin": Function("sin(a): sine", torch.sin),
    "cos": Function("cos(a): cosine", torch.cos),
    "abs": Function("abs(a) = |a|", torch.abs),
    "clamp01": Function("clamp01(a) = min(max(a, 0), 1): a clipped to [0, 1]", lambda a: a.clamp(0, 1)),
    "rbf": Function("rbf(r) = exp(-r**2 / 2): the squared-exponential kernel of a scaled distance r",
                    lambda r: torch.exp(-0.5 * r**2)),
    "matern_05": Function("matern_05(r) = exp(-r): Matérn kernel, nu = 1/2", _matern(0.5)),
    "matern_15": Function("matern_15(r) = (1 + sqrt(3) r) exp(-sqrt(3) r): Matérn kernel, nu = 3/2", _matern(1.5)),
    "matern_25": Function("matern_25(r) = (1 + sqrt(5) r + 5/3 r**2) exp(-sqrt(5) r): Matérn kernel, nu = 5/2",
                          _matern(2.5)),
    "rq": Function("rq(r, alpha) = (1 + r**2 / (2 alpha)) ** -alpha: rational quadratic kernel",
                   lambda r, alpha: (1.0 + r**2 / (2.0 * alpha)) ** (-alpha)),
    "per_task": Function("per_task([a, b, ...], x['task']) = the entry of the list for the point's task"),
    "task_covar": Function("task_covar(F, v)[x1['task'], x2['task']] = (F Fᵀ + diag(v))[task of x1, task of x2]: "
                           "covariance between tasks (F: one row per task)"),
    "unit_task": Function("unit_task='t': task_covar is divided by its entry [t, t], so task t has variance 1"),
    "* s": Function("a line starting with '* s' multiplies the term above it by s "
                    "(e.g. a ScaleKernel's outputscale)"),
}

#: name -> one-line meaning: the notation key, read from :data:`FUNCTIONS`.
NOTATION: dict[str, str] = {name: f.line for name, f in FUNCTIONS.items()}

#: A kernel gpviz has no handler for prints as its class name: the key says what that means.
OPAQUE = "{name}(...): a {name} kernel gpviz has no formula for; its parameters are drawn inside"

_NAME_RE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\(")


def functions_used(tree: Node) -> list[str]:
    """Names of the pseudocode functions in ``tree``, in print order, each once.

    Args:
        tree: An expression tree (a :class:`~gpviz.tree.nodes.Section` body, a whole kernel tree).

    Returns:
        Names that are keys of :data:`NOTATION`, or class names of opaque kernels.
    """
    seen: dict[str, None] = {}
    for node in iter_nodes(tree):
        if isinstance(node, Compare):
            seen.setdefault("compare", None)
        elif isinstance(node, Differ):
            seen.setdefault("differ", None)
        elif isinstance(node, Dot):
            seen.setdefault("dot", None)
        elif isinstance(node, TaskCovar):
            seen.setdefault("task_covar", None)
            if node.target is not None:
                seen.setdefault("unit_task", None)
        elif isinstance(node, Opaque):
            seen.setdefault(node.cls_name, None)
        elif isinstance(node, Call) and node.fn in NOTATION:
            seen.setdefault(node.fn, None)
        elif isinstance(node, Product) and any(isinstance(f, Param) and f.role == Role.outputscale
                                               for f in node.factors):
            seen.setdefault("* s", None)
    return list(seen)


def describe(name: str) -> str:
    """The key's line for one function name (an opaque kernel's class name gets :data:`OPAQUE`)."""
    return NOTATION.get(name) or OPAQUE.format(name=name)


def notation(trees) -> list[tuple[str, str]]:
    """``(name, line)`` for every pseudocode function some trees use, in print order.

    Args:
        trees: An expression's printed trees (``expr.section_trees()``), or one bare tree.

    Returns:
        One pair per function; ``[]`` for trees of plain numbers.
    """
    trees = [trees] if isinstance(trees, Node) else list(trees)
    seen: dict[str, None] = {}
    for tree in trees:
        for name in functions_used(tree):
            seen.setdefault(name, None)
    return [(name, describe(name)) for name in seen]


def function_names_in(text: str, names) -> list[tuple[int, int, str]]:
    """``(start, end, name)`` of every call of one of ``names`` in a line of printed code (``name(``)."""
    wanted = set(names)
    return [(m.start(1), m.end(1), m.group(1)) for m in _NAME_RE.finditer(text) if m.group(1) in wanted]
