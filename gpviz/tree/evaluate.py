"""Numeric evaluation of an expression tree: the same kernel matrix as the GPyTorch module it came from."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Mapping

import torch

from gpviz.errors import InputError, KeyMismatchError
from gpviz.tree.nodes import (Call, Compare, Const, Differ, Div, Dot, Input, Neg, Node, Opaque, Param, Pow, Product,
                              Section, Sum, TaskCovar, Unused, ValueBlock, Vector, iter_nodes)
from gpviz.tree.notation import FUNCTIONS

#: Functions of one list (``sum([a, b])``): their items may be per-feature vectors.
REDUCERS = tuple(name for name, f in FUNCTIONS.items() if f.reduce is not None)


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


def required_width(node: Node) -> int:
    """One past the largest input column the tree reads (0 if it reads none by index)."""
    dims = [0]
    for n in iter_nodes(node):
        if isinstance(n, (Compare, Differ, Input, TaskCovar)) and n.dim is not None:
            dims.append(n.dim + 1)
        elif isinstance(n, (Dot, Opaque)) and n.dims:
            dims.append(max(n.dims) + 1)
    return max(dims)


def check_inputs(x1, x2, width: int | None, min_width: int = 0) -> None:
    """Refuses inputs that would silently give a wrong value instead of the kernel's.

    Args:
        x1: ``batch_shape x n x d`` tensor.
        x2: ``batch_shape x m x d`` tensor.
        width: The exact number of columns expected (``None``: any width of at
            least ``min_width``).
        min_width: One past the largest column the expression reads.

    Raises:
        InputError: naming the type, shape, dtype or device received and the one expected.
    """
    for name, x in (("x1", x1), ("x2", x2)):
        if not isinstance(x, torch.Tensor):
            raise InputError(f"{name} must be a tensor, got {type(x).__name__}")
        if x.dim() < 2:
            raise InputError(f"{name} must be at least 2-D (n x d), got shape {list(x.shape)}")
        if not x.is_floating_point():
            # parameters would be cast to the input's dtype: 0 or NaN instead of the learned values
            raise InputError(f"{name} has dtype {x.dtype}; expected a floating-point tensor (float32 or float64)")
        if x.is_meta:
            raise InputError(f"{name} is on the meta device (no data); expected a tensor with values")
        d = x.shape[-1]
        if width is not None and d != width:
            raise InputError(f"{name} has {d} columns (shape {list(x.shape)}); the expression expects {width}")
        if d < min_width:
            raise InputError(f"{name} has {d} columns (shape {list(x.shape)}); the expression reads column "
                             f"{min_width - 1}, so it expects at least {min_width}")
    if x1.dtype != x2.dtype:
        raise InputError(f"x1 and x2 have different dtypes ({x1.dtype}, {x2.dtype}); expected one dtype")


def evaluate(node: Node, env: EvalEnv) -> torch.Tensor:
    """Evaluates a tree to a ``batch_shape x n x m`` tensor.

    Raises:
        InputError: if the tree evaluates to a vector at the top level or uses
            a node that cannot be evaluated (a :class:`gpviz.tree.nodes.Symbol`).
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
    if isinstance(node, Input):
        x = env.x1[..., :, None, :] if node.side == 1 else env.x2[..., None, :, :]
        if node.dim is None:
            return _Val(x.movedim(-1, 0), vec=True)
        return _Val(x[..., node.dim])
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
    if isinstance(node, (Sum, Product)):  # a left fold, in print order
        op, parts = (torch.add, node.terms) if isinstance(node, Sum) else (torch.mul, node.factors)
        return functools.reduce(lambda a, b: _elementwise(a, b, op), [_eval(t, env) for t in parts])
    if isinstance(node, Div):
        return _elementwise(_eval(node.num, env), _eval(node.den, env), torch.div)
    if isinstance(node, Neg):
        arg = _eval(node.arg, env)
        return _Val(-arg.t, arg.vec)
    if isinstance(node, Pow):
        return _elementwise(_eval(node.base, env), _eval(node.exponent, env), torch.pow)
    if isinstance(node, Call):
        return _eval_call(node, env)
    if isinstance(node, TaskCovar):
        return _Val(_eval_task_covar(node, env))
    if isinstance(node, Opaque):
        return _Val(_eval_opaque(node, env))
    if isinstance(node, (Section, Unused)):
        return _eval(node.body, env)
    if isinstance(node, ValueBlock):
        return _eval(node.value, env)
    raise InputError(f"cannot evaluate a {type(node).__name__} node ({node!r}); it is display-only")


def _eval_call(node: Call, env: EvalEnv) -> _Val:
    fn = FUNCTIONS.get(node.fn)
    if fn is not None and fn.reduce is not None:
        if len(node.args) != 1 or not isinstance(node.args[0], Vector):
            raise InputError(f"{node.fn} takes one list argument, got {node.args!r}")
        red = fn.reduce
        total = None
        count = 0
        for item in node.args[0].items:
            v = _eval(item, env)
            parts = red.item(v.t)
            if red.multiply:
                part = parts.prod(0) if v.vec else parts
                total = part if total is None else total * part
            else:
                part = parts.sum(0) if v.vec else parts
                total = part if total is None else total + part
            count += parts.shape[0] if v.vec else 1
        if total is None:
            raise InputError(f"{node.fn} of an empty list")
        return _Val(red.finish(total, count))
    if fn is None or fn.apply is None:
        known = sorted(name for name, f in FUNCTIONS.items() if f.apply is not None or f.reduce is not None)
        raise InputError(f"unknown function {node.fn!r} (known: {known})")
    vals = [_eval(a, env) for a in node.args]
    return _Val(fn.apply(*[v.t for v in vals]), any(v.vec for v in vals))


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
