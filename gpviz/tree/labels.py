"""Readable labels for parameter keys: ``lengthscale[log_lr]`` for ``covar_module.base_kernel.lengthscale[3]``.

A key is the stable join between the expression and the frames; a label is what
people read. Labels come from the expression tree itself: a parameter that
divides (or multiplies) a ``compare('f')`` / ``differ('f')`` term is named after
feature ``f``; a task-covariance entry after its task; one entry of a
``per_task([...])`` list after its task. Every other parameter is named by its
parameter name (``outputscale``, ``noise``, ``constant``), with its element index
when it has one. Labels are unique within one expression: where two keys would
read the same (the lengthscales of two kernels in a sum), the part of the module
path that tells them apart is added in parentheses.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from gpviz.tree.nodes import Call, Compare, Differ, Div, Node, Param, Product, Symbol, TaskCovar, Vector, iter_nodes
from gpviz.values.keys import parse_key


def _features_in(node: Node) -> list[str]:
    if isinstance(node, (Compare, Differ)):  # the common case, ``compare('f') / lengthscale``: no walk
        return [node.name]
    return list(dict.fromkeys(n.name for n in iter_nodes(node) if isinstance(n, (Compare, Differ))))


def _symbol_feature(node: Node) -> str | None:
    """``x['f']`` -> ``f`` (a linear mean's weight multiplies a Symbol of its input)."""
    if isinstance(node, Symbol) and node.name.startswith("x[") and node.name.endswith("]"):
        inner = node.name[2:-1]
        return inner[1:-1] if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"" else inner
    return None


def _tag(label: str, what: str) -> str:
    """``lengthscale`` + ``log_lr`` -> ``lengthscale[log_lr]``."""
    return f"{label}[{what}]"


def _base(key: str) -> str:
    try:
        path, name, index = parse_key(key)
    except Exception:  # noqa: BLE001 - a key gpviz did not make: shown as it is
        return key
    return name + (f"[{','.join(map(str, index))}]" if index else "")


def key_labels(tree: Node, tasks: tuple[str, ...] = ()) -> dict[str, str]:
    """key -> readable label for every parameter of ``tree``, unique within the tree (see :func:`_named`)."""
    return _unique(_named(tree, tasks))


def _named(tree: Node, tasks: tuple[str, ...] = ()) -> dict[str, str]:
    """key -> readable label for every parameter of ``tree`` (not yet made unique).

    Args:
        tree: An expression tree (or a :class:`~gpviz.tree.nodes.Section`).
        tasks: Display names of the tasks (multi-task models), for ``per_task`` lists.

    Returns:
        One label per key, in print order.
    """
    named: dict[str, str] = {}

    def name_as(param: Node, what: str) -> None:
        if isinstance(param, Param) and param.key not in named:
            _, name, _ = parse_key(param.key)
            named[param.key] = _tag(name, what)

    keys: dict[str, None] = {}  # every parameter, in print order (collected in the same walk)
    for node in iter_nodes(tree):
        if isinstance(node, Param):
            keys.setdefault(node.key, None)
        elif isinstance(node, Div) and isinstance(node.den, Param):
            feats = _features_in(node.num)
            if len(feats) == 1:
                name_as(node.den, feats[0])
        elif isinstance(node, Product):
            feats = [f for f in (_symbol_feature(x) for x in node.factors) if f]
            params = [x for x in node.factors if isinstance(x, Param)]
            if len(feats) == 1 and len(params) == 1:
                name_as(params[0], feats[0])
        elif isinstance(node, TaskCovar):
            names = list(node.tasks) if len(node.tasks) == len(node.var) else [str(i) for i in range(len(node.var))]
            for t, row in zip(names, node.factor):
                for r, leaf in enumerate(row):
                    if isinstance(leaf, Param) and leaf.key not in named:
                        named[leaf.key] = f"task_covar.F[{t},{r}]"
            for t, leaf in zip(names, node.var):
                if isinstance(leaf, Param) and leaf.key not in named:
                    named[leaf.key] = f"task_covar.v[{t}]"
        elif isinstance(node, Call) and node.fn == "per_task" and node.args and isinstance(node.args[0], Vector):
            items = node.args[0].items
            names = list(tasks) if len(tasks) == len(items) else [str(i) for i in range(len(items))]
            for t, item in zip(names, items):
                name_as(item, f"task {t}")

    return {k: named[k] if k in named else _base(k) for k in keys}


def _unique(labels: Mapping[str, str]) -> dict[str, str]:
    """Adds the distinguishing part of the module path to labels that several keys share."""
    by_label: dict[str, list[str]] = {}
    for k, lab in labels.items():
        by_label.setdefault(lab, []).append(k)
    out = dict(labels)
    for lab, keys in by_label.items():
        if len(keys) < 2:
            continue
        paths = [parse_key(k)[0].split(".") for k in keys]
        common = 0
        while all(len(p) > common for p in paths) and len({p[common] for p in paths}) == 1:
            common += 1
        tail = 0  # common suffix too: "kernels.0.base_kernel" vs "kernels.1.base_kernel" differ in one place
        while all(len(p) > common + tail for p in paths) and len({p[-1 - tail] for p in paths}) == 1:
            tail += 1
        rests = [p[common:len(p) - tail] for p in paths]
        if common and any(r and r[0].isdigit() for r in rests):  # "kernels.0", not a bare "0"
            rests = [[paths[0][common - 1]] + r for r in rests]
        texts = [".".join(r) for r in rests]
        if len(set(texts)) < len(texts) or not all(texts):
            texts = [parse_key(k)[0] or k for k in keys]
        for k, text in zip(keys, texts):
            out[k] = f"{lab} ({text})"
    return out


def labels_over(trees: Sequence[Node], tasks: tuple[str, ...] = ()) -> dict[str, str]:
    """:func:`key_labels` over several trees labelled together (a model's sections): unique over all of them.

    An expression keeps the result (``Expr.labels``), so a render walks its trees once.
    """
    merged: dict[str, str] = {}
    for tree in trees:
        for k, lab in _named(tree, tasks).items():
            merged.setdefault(k, lab)
    return _unique(merged)


def expression_labels(expr) -> dict[str, str]:
    """The labels of a gpviz expression (``kernel_expr`` / ``model_expr``): its ``labels``, a copy.

    Kept for callers of the function; the expression owns them (``Expr.labels``, computed once).
    """
    return expr.labels
