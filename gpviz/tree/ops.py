"""Generic tree operations: structural transforms, visual simplification and partial evaluation (``bind``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Mapping

from gpviz.tree.nodes import Const, Neg, Node, Param, Product, Sum, child_fields

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
    for name in child_fields(type(node)):  # fields that cannot hold a node are never rewritten
        old = getattr(node, name)
        new = _map_field(old, fn)
        if new is not old and new != old:
            changes[name] = new
    # every concrete node is a dataclass; the base class Node is not one, which mypy cannot see past
    rebuilt = replace(node, **changes) if changes else node  # type: ignore[type-var]
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
