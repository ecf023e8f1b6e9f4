"""Everything a kernel handler's author needs, in one public module.

A handler turns one kernel class into an expression tree; gpviz finds it along
the class's MRO. Import from here, not from gpviz's internal modules (those may
move between releases; these names will not)::

    from gpviz.handlers import Call, Div, Neg, Role, Vector, register_kernel

    @register_kernel(MyKernel)
    def handle_my_kernel(module, path, walk):
        # k = exp(-Σ_d |x1_d - x2_d| / ℓ)
        (ls,) = walk.params(module, path, "lengthscale", Role.lengthscale)
        diffs = Vector(tuple(walk.compare(f) for f in walk.features_for(None)))
        return Call("exp", (Neg(Div(Call("norm_l1", (diffs,)), ls)),))

The ``walk`` argument is a :class:`Walker`: ``walk.params`` reads a parameter's
leaves, ``walk.features_for`` / ``walk.compare`` / ``walk.input`` / ``walk.differ``
/ ``walk.dot`` read the inputs, ``walk(child, child_path)`` recurses into a child
kernel, and ``walk.opaque(module, path, inner, note)`` keeps every parameter of a
kernel without a readable closed form. :data:`FUNCTIONS` lists the functions a
:class:`Call` may name (each with its notation line). A kernel that indexes its
input itself also registers :func:`register_width`.
``gpviz.testing.assert_expr_matches_kernel`` checks a handler against the kernel.
"""

from __future__ import annotations

from gpviz.tree.nodes import (Call, Compare, Const, Differ, Div, Dot, Input, Neg, Node, Opaque, Param, Pow, Product,
                              Role, Sum, TaskCovar, Vector)
from gpviz.tree.notation import FUNCTIONS
from gpviz.values.keys import join_path
from gpviz.walk.handlers import per_feature, scaled_distances
from gpviz.walk.registry import register_kernel, register_width
from gpviz.walk.walker import Feature, Walker

__all__ = [
    "Call", "Compare", "Const", "Differ", "Div", "Dot", "FUNCTIONS", "Feature", "Input", "Neg", "Node", "Opaque",
    "Param", "Pow", "Product", "Role", "Sum", "TaskCovar", "Vector", "Walker", "join_path", "per_feature",
    "register_kernel", "register_width", "scaled_distances",
]
