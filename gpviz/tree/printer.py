"""Printing an expression tree: precedence-aware pseudocode with line breaking (text and HTML share the tokens)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from gpviz.errors import InputError
from gpviz.tree.nodes import (Call, Compare, Const, Differ, Div, Dot, Input, Neg, Node, Opaque, Param, Pow, Product,
                              Section, Sum, Symbol, TaskCovar, Unused, ValueBlock, Vector)

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
    if isinstance(node, Input):
        return f"x{node.side}" if node.dim is None else f"x{node.side}[{_quote(node.name)}]"
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
        args: tuple[object, ...] = (["F=", _Group("[", rows, "]")],
                                    ["v=", _Group("[", tuple(_doc(v) for v in node.var), "]")])
        if node.target is not None:
            args += (f"unit_task={_quote(node.tasks[node.target]) if node.tasks else node.target}",)
        col = _quote(node.name)
        return [_Group("task_covar(", args, ")"), f"[x1[{col}], x2[{col}]]"]
    if isinstance(node, Opaque):
        items: list[object] = [f"note={_quote(node.note)}"] if node.note else []
        items += [[f"{label}=", _doc(n)] for label, n in node.inner]
        items += [[f"{_relative(p.key, node.path)}=", p] for p in node.params]
        return _Group(f"{node.cls_name}(", tuple(items) or ("...",), ")")
    if isinstance(node, Unused):
        return _Group("with_unused(", (_doc(node.body),) + tuple([f"{_short(p.key)}=", p] for p in node.params), ")")
    if isinstance(node, ValueBlock):
        return _Group("with_derivatives(", (_doc(node.value), f"blocks={_quote(node.derivatives)}"), ")")
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


def _relative(key: str, path: str) -> str:
    """``key`` without the opaque kernel's own ``path`` prefix (``base_kernel.lengthscale``)."""
    return key[len(path) + 1:] if path and key.startswith(path + ".") else key


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
    return isinstance(item, list) and bool(item) and isinstance(item[0], str) and item[0] in (" + ", " - ")


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
