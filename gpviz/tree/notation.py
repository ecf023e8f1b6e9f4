"""The notation key: one line per pseudocode function an expression uses, with its formula.

A reader who does not know BoTorch's internals meets ``compare('x')``,
``norm_l2([...])``, ``matern_25(r)`` or ``task_covar(F=..., v=...)`` in a
page. :func:`notation` lists exactly the functions one expression uses, in the
order they first appear, each with a one-line formula; pages show it as a
collapsible key and as the hover text of every function name in the code.
"""

from __future__ import annotations

import re

from gpviz.tree.nodes import Call, Compare, Differ, Dot, Node, Opaque, Param, Product, TaskCovar, iter_nodes

#: name -> one-line meaning. ``x1``/``x2`` are the two inputs a kernel compares.
NOTATION: dict[str, str] = {
    "compare": "compare('f') = x1['f'] - x2['f']: the signed difference of input f between the two points",
    "differ": "differ('f') = 1 if x1['f'] != x2['f'] else 0: whether a categorical input differs",
    "dot": "dot('a', 'b', ...) = x1['a']*x2['a'] + x1['b']*x2['b'] + ...: the inner product of the inputs",
    "norm_l2": "norm_l2([a, b, ...]) = sqrt(a**2 + b**2 + ...): Euclidean length (scaled distance r)",
    "norm_l1": "norm_l1([a, b, ...]) = |a| + |b| + ...: Manhattan length",
    "sum": "sum([a, b, ...]) = a + b + ...",
    "mean": "mean([a, b, ...]) = (a + b + ...) / count",
    "prod": "prod([a, b, ...]) = a * b * ...",
    "exp": "exp(a) = e**a",
    "sqrt": "sqrt(a) = a**0.5",
    "sin": "sin(a): sine",
    "cos": "cos(a): cosine",
    "abs": "abs(a) = |a|",
    "rbf": "rbf(r) = exp(-r**2 / 2): the squared-exponential kernel of a scaled distance r",
    "matern_05": "matern_05(r) = exp(-r): Matérn kernel, nu = 1/2",
    "matern_15": "matern_15(r) = (1 + sqrt(3) r) exp(-sqrt(3) r): Matérn kernel, nu = 3/2",
    "matern_25": "matern_25(r) = (1 + sqrt(5) r + 5/3 r**2) exp(-sqrt(5) r): Matérn kernel, nu = 5/2",
    "rq": "rq(r, alpha) = (1 + r**2 / (2 alpha)) ** -alpha: rational quadratic kernel",
    "per_task": "per_task([a, b, ...], x['task']) = the entry of the list for the point's task",
    "task_covar": "task_covar(F, v)[x1['task'], x2['task']] = (F Fᵀ + diag(v))[task of x1, task of x2]: "
                  "covariance between tasks (F: one row per task)",
    "unit_task": "unit_task='t': task_covar is divided by its entry [t, t], so task t has variance 1",
    "* s": "a line starting with '* s' multiplies the term above it by s (e.g. a ScaleKernel's outputscale)",
}

#: A kernel gpviz has no handler for prints as its class name: the key says what that means.
OPAQUE = "{name}(...): a {name} kernel gpviz has no formula for; its parameters are drawn inside"

_NAME_RE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\(")


def functions_used(tree: Node) -> list[str]:
    """Names of the pseudocode functions in ``tree``, in print order, each once.

    Args:
        tree: An expression tree (a :class:`~gpviz.expr.Section` body, a whole kernel tree).

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
        elif isinstance(node, Product) and any(isinstance(f, Param) and f.role == "outputscale"
                                               for f in node.factors):
            seen.setdefault("* s", None)
    return list(seen)


def describe(name: str) -> str:
    """The key's line for one function name (an opaque kernel's class name gets :data:`OPAQUE`)."""
    return NOTATION.get(name) or OPAQUE.format(name=name)


def notation(expr) -> list[tuple[str, str]]:
    """``(name, line)`` for every pseudocode function an expression uses, in print order.

    Args:
        expr: A gpviz expression (``kernel_expr`` / ``model_expr``: its sections or its tree),
            or a bare tree.

    Returns:
        One pair per function; ``[]`` for an expression of plain numbers.
    """
    trees = [s.body for s in getattr(expr, "sections", None) or []] or [getattr(expr, "tree", expr)]
    seen: dict[str, None] = {}
    for tree in trees:
        for name in functions_used(tree):
            seen.setdefault(name, None)
    return [(name, describe(name)) for name in seen]


def function_names_in(text: str, names) -> list[tuple[int, int, str]]:
    """``(start, end, name)`` of every call of one of ``names`` in a line of printed code (``name(``)."""
    wanted = set(names)
    return [(m.start(1), m.end(1), m.group(1)) for m in _NAME_RE.finditer(text) if m.group(1) in wanted]
