"""The expression tree: immutability, transforms, partial evaluation and precedence-correct printing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gpviz.tree.nodes import (Call, Compare, Const, Div, Neg, Node, Param, Pow, Product, Sum, Vector, child_fields,
                              iter_nodes, keys_of)
from gpviz.tree.ops import bind, simplify, transform
from gpviz.tree.printer import to_text

a, b, c = Param("a"), Param("b"), Param("c")


def show(node) -> str:
    return to_text(node, lambda p: p.key)


def test_nodes_are_frozen_hashable_and_compare_by_value():
    n1 = Product((Sum((a, b)), c))
    n2 = Product((Sum((Param("a"), Param("b"))), Param("c")))
    assert n1 == n2 and hash(n1) == hash(n2)
    assert n1 != (Sum((a, b)), c)  # not equal to a plain tuple
    with pytest.raises(dataclasses.FrozenInstanceError):
        n1.factors = ()
    assert not hasattr(n1, "__dict__")  # slotted


@pytest.mark.parametrize("node, text", [
    (Product((Sum((a, b)), c)), "(a + b) * c"),
    (Sum((a, Product((b, c)))), "a + b * c"),
    (Sum((Product((a, b)), c)), "a * b + c"),
    (Product((a, Sum((b, c)))), "a * (b + c)"),
    (Div(a, Product((b, c))), "a / (b * c)"),
    (Div(Product((a, b)), c), "a * b / c"),
    (Div(Div(a, b), c), "a / b / c"),
    (Div(a, Div(b, c)), "a / (b / c)"),
    (Neg(Sum((a, b))), "-(a + b)"),
    (Neg(Product((a, b))), "-(a * b)"),
    (Pow(Sum((a, b)), Const(2.0)), "(a + b) ** 2"),
    (Pow(Neg(a), Const(2.0)), "(-a) ** 2"),
    (Neg(Pow(a, Const(2.0))), "-a ** 2"),
    (Pow(Const(-2.0), Const(2.0)), "(-2) ** 2"),
    (Sum((a, Neg(b))), "a - b"),
    (Sum((a, Neg(Sum((b, c))))), "a - (b + c)"),
    (Call("exp", (Neg(Div(a, b)),)), "exp(-(a / b))"),
    (Call("rbf", (Call("norm_l2", (Vector((Div(Compare(0, "lr"), a), Div(Compare(1, "it's"), b))),)),)),
     "rbf(norm_l2([compare('lr') / a, compare('it\\'s') / b]))"),
])
def test_printing_respects_precedence(node, text):
    assert show(node) == text


def test_long_expressions_break_lines_and_keep_precedence():
    items = tuple(Div(Compare(i, f"feature_{i}"), Param(f"ls[{i}]")) for i in range(8))
    node = Sum((Product((Param("s"), Call("matern_25", (Call("norm_l2", (Vector(items),)),)))), Param("n")))
    text = show(node)
    assert text.splitlines()[0] == "s * matern_25(norm_l2(["
    assert "    compare('feature_3') / ls[3]," in text.splitlines()
    assert text.splitlines()[-1] == "+ n"
    assert max(len(line) for line in text.splitlines()) <= 88


def test_transform_is_bottom_up_and_shares_unchanged_subtrees():
    tree = Sum((Product((a, b)), c))
    seen = []
    out = transform(tree, lambda n: (seen.append(type(n).__name__), n)[1])
    assert seen == ["Param", "Param", "Product", "Param", "Sum"]
    assert out is tree


def test_simplify_flattens_and_drops_identities():
    tree = Sum((Sum((a, Const(0.0))), Product((Const(1.0), Product((b, c))))))
    assert simplify(tree) == Sum((a, Product((b, c))))


def test_bind_partially_evaluates_known_keys():
    tree = Product((a, Sum((b, c))))
    bound = bind(tree, {"a": 2.0, "b": 0.5})
    assert bound == Product((Const(2.0), Sum((Const(0.5), c))))
    assert keys_of(bound) == ("c",)
    assert show(bound) == "2 * (0.5 + c)"


def test_keys_in_print_order_each_once():
    tree = Sum((Product((b, a)), Div(a, c)))
    assert keys_of(tree) == ("b", "a", "c")


def test_numbers_print_compactly():
    assert show(Const(0.000123456)) == "0.000123"
    assert show(Const(3.0)) == "3"
    assert show(Const(float("nan"))) == "nan"
    assert show(Const(3.14159, "π")) == "π"


def test_kernel_expression_text_uses_values_of_member_zero():
    import gpytorch.kernels as gk

    import gpviz

    k = gk.ScaleKernel(gk.RBFKernel(ard_num_dims=2, batch_shape=torch.Size([2])), batch_shape=torch.Size([2]))
    k.outputscale = torch.tensor([2.5, 7.0])
    k.base_kernel.lengthscale = torch.tensor([[[0.5, 4.0]], [[1.0, 1.0]]])
    e = gpviz.kernel_expr(k, feature_names=["lr", "epochs"])
    assert str(e) == "2.5 * rbf(norm_l2([compare('lr') / 0.5, compare('epochs') / 4]))"
    assert e.text(member=1) == "7 * rbf(norm_l2([compare('lr') / 1, compare('epochs') / 1]))"
    assert e.keys == ("outputscale", "base_kernel.lengthscale[0]", "base_kernel.lengthscale[1]")


def _recursive_preorder(node):
    """The walk as the tree defines it: the node, then every node field in field order (no skipping)."""
    out = [node]
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        items = v if isinstance(v, tuple) else (v,)
        for item in items:
            for x in (item if isinstance(item, tuple) else (item,)):
                if isinstance(x, Node):
                    out.extend(_recursive_preorder(x))
    return out


def test_walk_that_skips_leaf_fields_visits_every_node_in_print_order():
    from botorch.models import MultiTaskGP, SingleTaskGP
    from gpytorch.kernels import MaternKernel, PeriodicKernel, RBFKernel, ScaleKernel

    import gpviz

    X = torch.rand(12, 3, dtype=torch.float64)
    Xt = torch.cat([X[:, :2], torch.randint(0, 3, (12, 1)).double()], -1)
    trees = [
        gpviz.model_expr(SingleTaskGP(X, X.sum(-1, keepdim=True))).tree,
        gpviz.model_expr(MultiTaskGP(Xt, Xt[:, :1], task_feature=-1)).tree,  # task covariance F and v
        gpviz.kernel_expr(ScaleKernel(MaternKernel(ard_num_dims=3)) * PeriodicKernel() + RBFKernel()).tree,
    ]
    for tree in trees:
        walked = list(iter_nodes(tree))
        expected = _recursive_preorder(tree)
        assert len(walked) == len(expected) and all(a is b for a, b in zip(walked, expected))
    assert child_fields(Param) == () and child_fields(Compare) == ()
    assert child_fields(Div) == ("num", "den") and child_fields(Call) == ("args",)


def test_labels_are_kept_on_the_expression_and_follow_a_replaced_tree():
    from botorch.models import SingleTaskGP

    import gpviz
    from gpviz.tree.labels import expression_labels
    from gpviz.values.units import relabel

    X = torch.rand(10, 2, dtype=torch.float64)
    expr = gpviz.model_expr(SingleTaskGP(X, X.sum(-1, keepdim=True)), ["lr", "wd"])
    first = expression_labels(expr)
    first["covar_module.lengthscale[0]"] = "changed by a caller"  # a copy: the kept labels stay right
    assert expression_labels(expr)["covar_module.lengthscale[0]"] == "lengthscale[lr]"
    # a copy whose section trees are new (same structure, other feature names) computes its own labels
    other = gpviz.model_expr(SingleTaskGP(X, X.sum(-1, keepdim=True)), ["a", "b"])
    copy = relabel(expr, {}).replace(sections=other.sections)
    assert expression_labels(copy)["covar_module.lengthscale[1]"] == "lengthscale[b]"
    assert expression_labels(expr)["covar_module.lengthscale[1]"] == "lengthscale[wd]"


def test_what_each_role_means_is_said_once_on_the_role():
    from gpviz.tree.nodes import Role

    # a scale is drawn on a log axis, a signed quantity on a linear one; units follow the inputs or the outputs
    assert Role.lengthscale.scale_like and not Role.lengthscale.signed and Role.lengthscale.measured_in == "inputs"
    assert Role.noise.scale_like and Role.noise.measured_in == "outputs"
    assert Role.mean.signed and not Role.mean.scale_like and Role.mean.measured_in == "outputs"
    assert Role.weight.measured_in is None and not Role.weight.scale_like and not Role.weight.signed
    assert {r for r in Role if r.scale_like} & {r for r in Role if r.signed} == set()
