"""Numerical truth of every kernel handler: the expression evaluates to the kernel matrix.

Expected matrices come from GPyTorch itself (``kernel(x1, x2).to_dense()``) and, for a
few kernels, from closed-form formulas written here by hand.
"""

from __future__ import annotations

import math

import gpytorch.kernels as gk
import pytest
import torch
from botorch.models.kernels.categorical import CategoricalKernel
from botorch.models.kernels.positive_index import PositiveIndexKernel
from hypothesis import given, strategies as st

import gpviz
from gpviz.tree.nodes import Opaque, iter_nodes
from gpviz.testing import assert_expr_matches_kernel

D = 3
B = torch.Size([4])


def _randomize(kernel: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Moves every raw parameter away from its default so that elements differ."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in kernel.named_parameters():
            p.copy_(p + 0.6 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return kernel


def zoo():
    """(id, factory) pairs; each factory returns a float64 kernel."""
    out = {
        "rbf": lambda: gk.RBFKernel(),
        "rbf_ard": lambda: gk.RBFKernel(ard_num_dims=D),
        "rbf_batch_ard": lambda: gk.RBFKernel(ard_num_dims=D, batch_shape=B),
        "matern05": lambda: gk.MaternKernel(nu=0.5, ard_num_dims=D),
        "matern15": lambda: gk.MaternKernel(nu=1.5),
        "matern25_ard": lambda: gk.MaternKernel(nu=2.5, ard_num_dims=D),
        "matern25_batch": lambda: gk.MaternKernel(nu=2.5, ard_num_dims=D, batch_shape=B),
        "rq": lambda: gk.RQKernel(ard_num_dims=D),
        "periodic": lambda: gk.PeriodicKernel(),
        "periodic_ard": lambda: gk.PeriodicKernel(ard_num_dims=D),
        "cosine": lambda: gk.CosineKernel(),
        "linear": lambda: gk.LinearKernel(),
        "polynomial2": lambda: gk.PolynomialKernel(power=2),
        "polynomial3_batch": lambda: gk.PolynomialKernel(power=3, batch_shape=B),
        "constant": lambda: gk.ConstantKernel(),
        "spectral_mixture": lambda: gk.SpectralMixtureKernel(num_mixtures=3, ard_num_dims=D),
        "scale_matern": lambda: gk.ScaleKernel(gk.MaternKernel(nu=2.5, ard_num_dims=D)),
        "scale_batch": lambda: gk.ScaleKernel(gk.RBFKernel(ard_num_dims=D, batch_shape=B), batch_shape=B),
        "additive": lambda: gk.RBFKernel(active_dims=[0]) + gk.MaternKernel(nu=1.5, active_dims=[1, 2], ard_num_dims=2),
        "product": lambda: gk.RBFKernel(active_dims=[0]) * gk.PeriodicKernel(active_dims=[2]),
        "nested": lambda: gk.ScaleKernel(gk.ScaleKernel(gk.RBFKernel(ard_num_dims=D)) + gk.LinearKernel())
        * gk.ScaleKernel(gk.MaternKernel(nu=0.5)),
        "scale_active": lambda: gk.ScaleKernel(gk.RBFKernel(active_dims=[1, 2], ard_num_dims=2)),
        "additive_structure": lambda: gk.AdditiveStructureKernel(gk.RBFKernel(), num_dims=D),
        "product_structure": lambda: gk.ProductStructureKernel(gk.MaternKernel(nu=2.5), num_dims=D),
        "categorical": lambda: CategoricalKernel(ard_num_dims=D),
        "categorical_shared": lambda: CategoricalKernel(),
        "index": lambda: gk.IndexKernel(num_tasks=3, rank=2, active_dims=[D]),
        "positive_index": lambda: PositiveIndexKernel(num_tasks=3, rank=2, active_dims=[D]),
        "task_product": lambda: gk.RBFKernel(active_dims=[0, 1, 2], ard_num_dims=3)
        * gk.IndexKernel(num_tasks=3, rank=1, active_dims=[D]),
    }
    return out


def _inputs(kernel_id: str, n: int = 6, m: int = 5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.rand(n, D + 1, generator=g, dtype=torch.float64)
    x2 = torch.rand(m, D + 1, generator=g, dtype=torch.float64)
    if kernel_id.startswith("categorical"):
        x1, x2 = (x1 * 3).floor(), (x2 * 3).floor()
    # the last column is a task index in {0, 1, 2}; other kernels ignore it via active_dims
    x1[:, D] = torch.arange(n) % 3
    x2[:, D] = torch.arange(m) % 3
    if "index" in kernel_id or "task" in kernel_id:
        return x1, x2
    return x1[:, :D], x2[:, :D]


@pytest.mark.parametrize("kernel_id", sorted(zoo()))
def test_expression_evaluates_to_kernel(kernel_id):
    kernel = _randomize(zoo()[kernel_id]().double())
    x1, x2 = _inputs(kernel_id)
    expr = gpviz.kernel_expr(kernel, strict=True)
    assert not [n for n in iter_nodes(expr.tree) if isinstance(n, Opaque)], f"{kernel_id} fell back to opaque"
    for a, b in ((x1, x1), (x1, x2)):
        # no_grad: with grad-tracking parameters GPyTorch skips zeroing the diagonal
        # of its quadratic-expansion distances, leaving ~1e-8 rounding error at r = 0
        with torch.no_grad():
            want = kernel(a, b).to_dense()
            got = expr.evaluate(a, b)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-8, rtol=0)


@pytest.mark.parametrize("kernel_id", ["rbf_batch_ard", "matern25_batch", "scale_batch", "polynomial3_batch"])
def test_batched_members_differ_and_match(kernel_id):
    kernel = _randomize(zoo()[kernel_id]().double())
    x1, x2 = _inputs(kernel_id)
    expr = gpviz.kernel_expr(kernel)
    with torch.no_grad():
        got = expr.evaluate(x1, x2)
        want = kernel(x1, x2).to_dense()
    assert got.shape == (4, 6, 5)
    for i in range(4):  # per member, not just overall
        torch.testing.assert_close(got[i], want[i], atol=1e-8, rtol=0)
    assert not torch.allclose(got[0], got[1]), "members should have different parameter values"


def test_values_from_a_row_reproduce_each_member():
    kernel = _randomize(gk.ScaleKernel(gk.RBFKernel(ard_num_dims=D, batch_shape=B), batch_shape=B).double())
    x1, x2 = _inputs("rbf")
    expr = gpviz.kernel_expr(kernel)
    frame = gpviz.parameters(kernel)
    for i in range(4):
        got = expr.evaluate(x1, x2, values=frame.iloc[i])
        torch.testing.assert_close(got, kernel(x1, x2).to_dense()[i].detach(), atol=1e-8, rtol=0)


def test_rbf_against_hand_formula():
    kernel = gk.ScaleKernel(gk.RBFKernel(ard_num_dims=2)).double()
    kernel.base_kernel.lengthscale = torch.tensor([[0.5, 2.0]])
    kernel.outputscale = torch.tensor(1.7)
    x1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    x2 = torch.tensor([[0.5, -1.0]])
    got = gpviz.kernel_expr(kernel).evaluate(x1, x2)
    want = torch.tensor([
        [1.7 * math.exp(-0.5 * ((0.5 / 0.5) ** 2 + (1.0 / 2.0) ** 2))],
        [1.7 * math.exp(-0.5 * ((0.5 / 0.5) ** 2 + (2.0 / 2.0) ** 2))],
    ])
    torch.testing.assert_close(got.detach(), want, atol=1e-12, rtol=0)


def test_matern52_and_periodic_against_hand_formula():
    k = gk.MaternKernel(nu=2.5).double()
    k.lengthscale = torch.tensor([[0.8]])
    x1, x2 = torch.tensor([[0.0]]), torch.tensor([[0.6]])
    r = math.sqrt(5) * 0.6 / 0.8
    torch.testing.assert_close(gpviz.kernel_expr(k).evaluate(x1, x2).detach(),
                               torch.tensor([[(1 + r + r * r / 3) * math.exp(-r)]]), atol=1e-12, rtol=0)
    p = gk.PeriodicKernel().double()
    p.lengthscale, p.period_length = torch.tensor([[0.7]]), torch.tensor([[1.3]])
    want = math.exp(-2 * math.sin(math.pi * 0.6 / 1.3) ** 2 / 0.7)
    torch.testing.assert_close(gpviz.kernel_expr(p).evaluate(x1, x2).detach(), torch.tensor([[want]]),
                               atol=1e-12, rtol=0)


def test_index_kernel_against_hand_formula():
    k = gk.IndexKernel(num_tasks=2, rank=1).double()
    with torch.no_grad():
        k.covar_factor.copy_(torch.tensor([[1.0], [2.0]]))
    k.var = torch.tensor([0.5, 0.25])
    i1 = torch.tensor([[0.0], [1.0]])
    want = torch.tensor([[1.0 + 0.5, 2.0], [2.0, 4.0 + 0.25]])
    torch.testing.assert_close(gpviz.kernel_expr(k).evaluate(i1, i1).detach(), want, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- #
# Random compositions (hypothesis)                                            #
# --------------------------------------------------------------------------- #

_LEAVES = [
    lambda ad, arg: gk.RBFKernel(ard_num_dims=len(ad), active_dims=arg),
    lambda ad, arg: gk.MaternKernel(nu=0.5, active_dims=arg),
    lambda ad, arg: gk.MaternKernel(nu=2.5, ard_num_dims=len(ad), active_dims=arg),
    lambda ad, arg: gk.RQKernel(active_dims=arg),
    lambda ad, arg: gk.PeriodicKernel(ard_num_dims=len(ad), active_dims=arg),
    lambda ad, arg: gk.LinearKernel(active_dims=arg),
    lambda ad, arg: gk.CosineKernel(active_dims=arg),
    lambda ad, arg: gk.ConstantKernel(active_dims=arg),
]

_dims = st.lists(st.integers(0, D - 1), min_size=1, max_size=D, unique=True).map(sorted)
# active_dims as GPyTorch accepts them: a list, a tuple, a tensor, or a bare int for one column
_forms = st.sampled_from([list, tuple, torch.tensor, lambda ad: ad[0] if len(ad) == 1 else ad])
_leaf = st.builds(lambda i, ad, form: _LEAVES[i](ad, form(ad)), st.integers(0, len(_LEAVES) - 1), _dims, _forms)


def _extend(children):
    return st.one_of(
        st.builds(lambda a, b: a + b, children, children),
        st.builds(lambda a, b: a * b, children, children),
        st.builds(gk.ScaleKernel, children),
    )


_kernels = st.recursive(_leaf, _extend, max_leaves=5)


@given(kernel=_kernels, seed=st.integers(0, 2**16))
def test_random_compositions_are_truthful(kernel, seed):
    kernel = _randomize(kernel.double(), seed)
    g = torch.Generator().manual_seed(seed)
    x1 = torch.rand(4, D, generator=g, dtype=torch.float64)
    x2 = torch.rand(3, D, generator=g, dtype=torch.float64)
    assert_expr_matches_kernel(kernel, x1, x2)


def test_assert_expr_matches_kernel_catches_a_lying_handler():
    class Doubled(gk.RBFKernel):
        pass

    @gpviz.register_kernel(Doubled)
    def handle_doubled(module, path, walk):  # claims plain RBF but the class is RBF: then it is truthful
        from gpviz.walk.handlers import handle_rbf

        from gpviz.tree.nodes import Const, Product

        return Product((Const(2.0), handle_rbf(module, path, walk)))

    x = torch.rand(4, 2, dtype=torch.float64)
    with pytest.raises(AssertionError, match="differs from the kernel"):
        assert_expr_matches_kernel(Doubled().double(), x)


def test_non_psd_sum_times_linear_found_by_hypothesis():
    """Cosine over two dims is not PSD; GPyTorch's symmetric lazy product is then approximate."""
    kernel = _randomize(gk.ScaleKernel(gk.PeriodicKernel(ard_num_dims=2, active_dims=[0, 1])
                                       + gk.CosineKernel(active_dims=[0, 1]))
                        * gk.LinearKernel(active_dims=[0]), 3).double()
    g = torch.Generator().manual_seed(3)
    x1 = torch.rand(4, D, generator=g, dtype=torch.float64)
    assert_expr_matches_kernel(kernel, x1, torch.rand(3, D, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("outer, inner", [((3, 3), (3,)), ((2, 3), (3,))])
def test_sub_kernel_with_fewer_batch_dims_broadcasts_like_torch(outer, inner):
    """Members align on trailing batch dims, as torch broadcasting (and GPyTorch) does."""
    k = (gk.RBFKernel(batch_shape=torch.Size(outer)) + gk.RBFKernel(batch_shape=torch.Size(inner))).double()
    with torch.no_grad():
        k.kernels[1].raw_lengthscale.copy_(torch.linspace(-3, 3, inner[-1]).reshape(*inner, 1, 1))
    x = torch.rand(4, 2, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(gpviz.kernel_expr(k).evaluate(x), k(x).to_dense(), atol=1e-12, rtol=0)
    frame = gpviz.parameters(k)
    want = k.kernels[1].lengthscale.detach().expand(*outer, 1, 1).reshape(-1)
    torch.testing.assert_close(torch.tensor(frame["kernels.1.lengthscale"].to_numpy()), want)


def test_batch_shapes_that_do_not_broadcast_are_a_typed_error():
    from gpviz.errors import UnsupportedError

    from gpviz.values.keys import read_member_values

    k = gk.RBFKernel(batch_shape=torch.Size([2]))  # as if inside a model batched 2 x 3
    with pytest.raises(UnsupportedError, match=r"batch shape \[2\].*\[2, 3\]"):
        read_member_values(k, ["lengthscale"], torch.Size([2, 3]))
