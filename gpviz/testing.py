"""Test helpers for people who register their own kernel handlers."""

from __future__ import annotations

import torch

from gpviz.tree.nodes import Opaque, ValueBlock, iter_nodes
from gpviz.walk.expr import kernel_expr


def assert_expr_matches_kernel(kernel, x1: torch.Tensor, x2: torch.Tensor | None = None, *,
                               feature_names=None, atol: float = 1e-8, rtol: float = 1e-6,
                               allow_opaque: bool = False) -> None:
    """Asserts that gpviz's expression of ``kernel`` evaluates to the kernel itself.

    Builds the expression in strict mode (a failing handler raises), evaluates it
    from the tree alone, and compares with ``kernel(x1, x2).to_dense()`` for
    ``x2`` and for ``x1`` against itself. For a gradient kernel (a
    :class:`~gpviz.tree.nodes.ValueBlock` root) it compares the value block, every
    ``1 + k``-th row and column, which is what the expression claims.

    Args:
        kernel: The kernel (batched or not), ideally in float64.
        x1: ``n x d`` (or ``batch_shape x n x d``) inputs.
        x2: ``m x d`` inputs; default: a shifted copy of ``x1``.
        feature_names: Passed to :func:`gpviz.kernel_expr`.
        atol: Absolute tolerance.
        rtol: Relative tolerance.
        allow_opaque: Accept opaque parts (which are evaluated by the module itself).

    Raises:
        AssertionError: with the largest difference, if the expression is not truthful.
    """
    expr = kernel_expr(kernel, feature_names, strict=True)
    if not allow_opaque:
        opaque = [n.cls_name for n in iter_nodes(expr.tree) if isinstance(n, Opaque)]
        assert not opaque, f"no handler for {opaque}: register one with @gpviz.register_kernel"
    if x2 is None:
        x2 = x1[..., : max(1, x1.shape[-2] - 1), :] * 0.7 + 0.1
    n = x1.shape[-2]
    # The symmetric reference comes from the non-symmetric path: K(x1, [x1; x1 + 0.5])[:, :n].
    # GPyTorch's x1-is-x2 path multiplies and adds kernels through low-rank root
    # decompositions, which are approximate (or raise NotPSDError) for kernels that are
    # not positive definite, such as cosine over several dimensions.
    padded = torch.cat([x1, x1[..., :1, :] + 0.5], dim=-2)
    with torch.no_grad():
        for b, cols in ((padded, n), (x2, x2.shape[-2])):
            want = kernel(x1, b).to_dense()
            if isinstance(expr.tree, ValueBlock):
                # a gradient kernel interleaves 1 + k rows per point; the expression claims the value rows
                per_point = kernel.num_outputs_per_input(x1, b)
                want = want[..., ::per_point, ::per_point]
            want = want[..., :cols]
            got = expr.evaluate(x1, b)[..., :cols]
            assert got.shape == want.shape, f"expression shape {list(got.shape)} != kernel shape {list(want.shape)}"
            err = (got - want).abs().max().item() if want.numel() else 0.0
            assert torch.allclose(got, want, atol=atol, rtol=rtol), (
                f"expression of {type(kernel).__name__} differs from the kernel by {err:.3g}:\n{expr}")
