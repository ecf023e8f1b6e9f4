"""The walker: handler registry lookup, opaque fallback, strict/lenient failures, features and bad input."""

from __future__ import annotations

import warnings

import gpytorch.kernels as gk
import pytest
import torch

import gpviz
from gpviz.testing import assert_expr_matches_kernel
from botorch.models import SingleTaskGP
from botorch.models.kernels.contextual_lcea import LCEAKernel
from botorch.models.kernels.contextual_sac import SACKernel
from botorch.models.kernels.linear_truncated_fidelity import LinearTruncatedFidelityKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpviz.walk import walker as walk_module
from gpviz.errors import GpvizError, HandlerError, InputError, OpaqueKernelWarning
from gpviz.tree.nodes import Call, Div, Neg, Opaque, Vector, iter_nodes
from gpviz.walk.registry import KERNEL_HANDLERS, lookup


class ExpAbsKernel(gk.Kernel):
    """A user kernel gpviz has no handler for: k = exp(-Σ|x1 - x2| / ℓ)."""

    has_lengthscale = True

    def forward(self, x1, x2, diag=False, **params):
        d = (x1.unsqueeze(-2) - x2.unsqueeze(-3)).abs().sum(-1)
        return torch.exp(-d / self.lengthscale)


class RBFSubclassSameForward(gk.RBFKernel):
    pass


class RBFSubclassNewForward(gk.RBFKernel):
    def forward(self, x1, x2, **params):
        return 2 * super().forward(x1, x2, **params)


@pytest.fixture(autouse=True)
def _fresh_opaque_warnings():
    walk_module._WARNED_OPAQUE.clear()
    yield
    walk_module._WARNED_OPAQUE.clear()


def test_subclass_keeps_parent_handler_only_if_forward_is_unchanged():
    assert lookup(RBFSubclassSameForward)[0][0] is gk.RBFKernel
    assert lookup(RBFSubclassNewForward) == []
    with pytest.warns(OpaqueKernelWarning):
        e = gpviz.kernel_expr(RBFSubclassNewForward())
    assert isinstance(e.tree, Opaque) and e.tree.cls_name == "RBFSubclassNewForward"


def test_unknown_kernel_is_opaque_with_its_parameters_and_warns_exactly_once():
    k = gk.ScaleKernel(ExpAbsKernel()).double() + ExpAbsKernel().double()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = gpviz.kernel_expr(k)
        gpviz.kernel_expr(k)
    opaque_warnings = [w for w in caught if issubclass(w.category, OpaqueKernelWarning)]
    assert len(opaque_warnings) == 1
    assert "ExpAbsKernel" in str(opaque_warnings[0].message)
    opaque = [n for n in iter_nodes(e.tree) if isinstance(n, Opaque)]
    assert [o.path for o in opaque] == ["kernels.0.base_kernel", "kernels.1"]
    assert e.keys == ("kernels.0.outputscale", "kernels.0.base_kernel.lengthscale", "kernels.1.lengthscale")
    assert "ExpAbsKernel(lengthscale=" in str(e)
    # delegated evaluation is still truthful
    x1, x2 = torch.rand(4, 2), torch.rand(3, 2)
    with torch.no_grad():
        torch.testing.assert_close(e.evaluate(x1, x2), k(x1, x2).to_dense(), atol=1e-10, rtol=0)


def test_registered_user_handler_is_used_and_truthful():
    class L1Kernel(ExpAbsKernel):
        pass

    @gpviz.register_kernel(L1Kernel)
    def handle_l1(module, path, walk):
        """k = exp(-Σ_d |x1_d - x2_d| / ℓ)."""
        (ls,) = walk.params(module, path, "lengthscale")
        feats = walk.features_for(None)
        return Call("exp", (Neg(Div(Call("norm_l1", (Vector(tuple(walk.compare(f) for f in feats)),)), ls)),))

    try:
        k = L1Kernel().double()
        k.lengthscale = 0.7
        e = gpviz.kernel_expr(k, feature_names=["a", "b"])
        assert str(e) == "exp(-(norm_l1([compare('a'), compare('b')]) / 0.7))"
        from gpviz.testing import assert_expr_matches_kernel

        assert_expr_matches_kernel(k, torch.rand(5, 2), feature_names=["a", "b"])
    finally:
        from gpviz.walk.registry import HANDLERS as _HANDLERS

        _HANDLERS.pop(L1Kernel, None)
    assert L1Kernel not in KERNEL_HANDLERS


def test_failing_handler_strict_raises_lenient_warns_and_goes_opaque():
    class Broken(gk.RBFKernel):
        pass

    @gpviz.register_kernel(Broken)
    def handle_broken(module, path, walk):
        raise RuntimeError("handler bug")

    try:
        with pytest.raises(HandlerError, match="handle_broken.*Broken.*handler bug"):
            gpviz.kernel_expr(Broken(), strict=True)
        with pytest.warns(OpaqueKernelWarning, match="handler bug"):
            e = gpviz.kernel_expr(Broken())
        assert isinstance(e.tree, Opaque)
    finally:
        from gpviz.walk.registry import HANDLERS as _HANDLERS

        _HANDLERS.pop(Broken, None)


def test_handler_returning_notimplemented_falls_back():
    assert not isinstance(gpviz.kernel_expr(gk.MaternKernel(nu=2.5)).tree, Opaque)
    k = gk.MaternKernel(nu=2.5)
    k.nu = 3.5  # not a Matern GPyTorch supports in closed form here: opaque, not wrong
    with pytest.warns(OpaqueKernelWarning):
        e = gpviz.kernel_expr(k)
    assert isinstance(e.tree, Opaque)


def test_active_dims_follow_call_semantics_and_scale_bypass():
    # ScaleKernel copies the base kernel's active_dims and applies them itself;
    # the base kernel's forward then sees the sliced input once (not twice).
    k = gk.ScaleKernel(gk.RBFKernel(active_dims=[2, 0], ard_num_dims=2)).double()
    e = gpviz.kernel_expr(k, feature_names=["a", "b", "c"])
    assert "compare('c')" in str(e) and "compare('a')" in str(e) and "compare('b')" not in str(e)
    x1, x2 = torch.rand(4, 3), torch.rand(2, 3)
    with torch.no_grad():
        torch.testing.assert_close(e.evaluate(x1, x2), k(x1, x2).to_dense(), atol=1e-12, rtol=0)


def test_feature_names_wrong_length_names_expected_and_given():
    with pytest.raises(InputError, match="3 names but the kernel has 2 input features"):
        gpviz.kernel_expr(gk.RBFKernel(ard_num_dims=2), feature_names=["a", "b", "c"])
    with pytest.raises(InputError, match="list of strings, got str"):
        gpviz.kernel_expr(gk.RBFKernel(), feature_names="abc")


def test_feature_names_from_a_dataframe():
    import pandas as pd

    df = pd.DataFrame({"lr": [0.1], "depth": [3.0]})
    e = gpviz.kernel_expr(gk.RBFKernel(ard_num_dims=2), feature_names=df)
    assert "compare('lr')" in str(e) and "compare('depth')" in str(e)


@pytest.mark.parametrize("bad", [torch.nn.Linear(2, 2), "rbf", None, 3])
def test_not_a_kernel_is_a_typed_error_naming_the_type(bad):
    with pytest.raises(GpvizError, match=type(bad).__name__):
        gpviz.kernel_expr(bad)


def test_walking_leaves_the_kernel_as_found():
    k = gk.ScaleKernel(gk.RBFKernel(ard_num_dims=3)).double()
    k.train()
    before = {n: p.detach().clone() for n, p in k.named_parameters()}
    grads_before = [p.grad for p in k.parameters()]
    e = gpviz.kernel_expr(k)
    str(e)
    gpviz.parameters(k)
    assert k.training
    assert all(torch.equal(before[n], p) for n, p in k.named_parameters())
    assert [p.grad for p in k.parameters()] == grads_before
    assert all(p.dtype == torch.float64 for p in k.parameters())


def test_values_cannot_silently_skip_an_opaque_kernel():
    from gpviz.errors import UnsupportedError

    k = gk.ScaleKernel(ExpAbsKernel()).double()
    with pytest.warns(OpaqueKernelWarning):
        e = gpviz.kernel_expr(k)
    row = gpviz.parameters(k).iloc[0]
    with pytest.raises(UnsupportedError, match=r"opaque kernels \['ExpAbsKernel'\]"):
        e.evaluate(torch.rand(3, 2), values=row)


@pytest.mark.parametrize("member", [3, -1, 1.0, True])
def test_member_out_of_range_is_a_typed_error(member):
    k = gk.RBFKernel(batch_shape=torch.Size([3]))
    with pytest.raises(InputError, match=r"member must be an integer in \[0, 3\)"):
        gpviz.kernel_expr(k).text(member=member)


# --------------------------------------------------------------------------- #
# Opaque parts keep every parameter; widths from what a kernel sees; any form of active_dims #
# --------------------------------------------------------------------------- #


def _x(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _all_keys(kernel) -> int:
    """Parameter elements of a kernel's subtree, per batch member."""
    batch = int(torch.Size(kernel.batch_shape).numel())
    return sum(p.numel() for p in kernel.parameters()) // batch


@pytest.mark.parametrize("name, make, count", [
    ("GridInterpolationKernel", lambda: gk.GridInterpolationKernel(gk.ScaleKernel(gk.RBFKernel()), grid_size=8,
                                                                    num_dims=1), 2),
    ("SACKernel", lambda: SACKernel({"a": [0], "b": [1]}, batch_shape=torch.Size([])), 3),
    ("LCEAKernel", lambda: LCEAKernel({"a": [0, 1], "b": [2, 3]}, batch_shape=torch.Size([])), None),
    ("LinearTruncatedFidelityKernel", lambda: LinearTruncatedFidelityKernel(fidelity_dims=[2], dimension=3), None),
    ("InducingPointKernel", lambda: gk.InducingPointKernel(gk.ScaleKernel(gk.RBFKernel()), torch.rand(1, 1),
                                                           GaussianLikelihood()), 4),
])
def test_every_parameter_of_the_subtree_is_shown(name, make, count):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel = make().double()
        expr = gpviz.kernel_expr(kernel)
        frame = gpviz.parameters(kernel)
        page = gpviz.render(kernel).html()
    want = _all_keys(kernel)
    if count is not None:  # the counts of the report: "shows 0 of its 2 parameters"...
        assert want == count
    assert len(expr.keys) == want and frame.shape[1] == want + 1
    for key in expr.keys:
        assert f'data-key="{key}"' in page


def test_wrappers_show_the_inner_expression_and_what_they_change():
    ski = gpviz.kernel_expr(gk.GridInterpolationKernel(gk.ScaleKernel(gk.RBFKernel()), grid_size=8,
                                                       num_dims=1).double())
    text = str(ski)
    assert "approximates=" in text and "rbf(" in text and "8 grid, interpolated" in text
    ip = str(gpviz.kernel_expr(gk.InducingPointKernel(gk.RBFKernel(), torch.rand(3, 1), GaussianLikelihood())))
    assert "rbf(" in ip and "3 learned inducing points" in ip
    fid = str(gpviz.kernel_expr(LinearTruncatedFidelityKernel(fidelity_dims=[2], dimension=3)))
    assert "clamp01(x1['x2'])" in fid and "compare('x0')" in fid  # the fidelity column, read on each side


def test_prior_only_parameter_is_kept_next_to_the_formula():
    """The SAAS ``tau`` enters only the prior; it was dropped from every view."""
    from botorch.models.kernels.heterogeneous_multitask import CombinatorialCovarModule

    kernel = CombinatorialCovarModule(ard_num_dims=2).double()
    expr = gpviz.kernel_expr(kernel, strict=True)
    assert "base_kernel.tau" in expr.keys and "with_unused(" in str(expr)
    x = (_x(4, 2) > 0.5).double()
    with torch.no_grad():
        torch.testing.assert_close(expr.evaluate(x), kernel(x).to_dense(), atol=1e-8, rtol=0)


@pytest.mark.parametrize("cls", [SACKernel, LCEAKernel])
def test_standalone_contextual_kernels_see_their_four_columns_not_their_childs_two(cls):
    kernel = cls({"a": [0, 1], "b": [2, 3]}, batch_shape=torch.Size([])).double()
    names = ["a_lr", "a_wd", "b_lr", "b_wd"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpaqueKernelWarning)  # LCEA is opaque, with every parameter
        expr = gpviz.kernel_expr(kernel, names, strict=True)
    if cls is SACKernel:
        assert "compare('b_wd')" in str(expr)
    x = _x(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(expr.evaluate(x), kernel(x).to_dense(), atol=1e-8, rtol=0)
    with pytest.raises(InputError, match="2 names but the kernel has 4 input features"):
        gpviz.kernel_expr(kernel, ["lr", "wd"])


@pytest.mark.parametrize("active", [1, (1,), [1], torch.tensor(1), torch.tensor([1])])
def test_integer_and_other_active_dims_reach_model_expr_render_and_parameters(active):
    X = _x(8, 3)
    model = SingleTaskGP(X, X[:, :1], covar_module=gk.ScaleKernel(gk.RBFKernel(active_dims=active))
                         + gk.RBFKernel(active_dims=2))
    expr = gpviz.model_expr(model, ["a", "b", "c"], strict=True)
    assert "compare('b')" in str(expr) and "compare('c')" in str(expr)
    assert {"covar_module.kernels.0.base_kernel.lengthscale", "covar_module.kernels.1.lengthscale"} <= set(
        gpviz.parameters(model).columns)
    assert "gpviz-param" in gpviz.render(model).html()
    with torch.no_grad():
        torch.testing.assert_close(expr.evaluate(X), model.covar_module(X).to_dense(), atol=1e-8, rtol=0)


def test_opaque_evaluation_keeps_the_module_shape():
    """A standalone MultitaskKernel is opaque: its n·t x m·t matrix comes back whole."""
    kernel = gk.MultitaskKernel(gk.RBFKernel(), num_tasks=2).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expr = gpviz.kernel_expr(kernel)
    assert any(isinstance(n, Opaque) for n in iter_nodes(expr.tree))
    x = _x(3, 2)
    with torch.no_grad():
        torch.testing.assert_close(expr.evaluate(x), kernel(x).to_dense(), atol=1e-8, rtol=0)


# --------------------------------------------------------------------------- #
# Gradient kernels: the value block                                         #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("make", [gk.RBFKernelGrad, gk.RBFKernelGradGrad, gk.Matern52KernelGrad,
                                  lambda: gk.PolynomialKernelGrad(power=2)])
def test_gradient_kernels_evaluate_their_value_block(make):
    kernel = make().double()
    x = _x(4, 2)
    if make is not gk.RBFKernelGradGrad:  # GPyTorch computes RBFKernelGradGrad only for n == m
        assert_expr_matches_kernel(kernel, x, x + 0.1, allow_opaque=True)  # a raw shape error before
    got = gpviz.kernel_expr(kernel).evaluate(x, x + 0.1)
    assert got.shape == (4, 4)
    with torch.no_grad():
        full = kernel(x, x + 0.1).to_dense()
    per_point = full.shape[-1] // 4  # 1 + d (gradient) or 1 + 2d (and second derivatives)
    torch.testing.assert_close(got.detach(), full[::per_point, ::per_point], atol=1e-8, rtol=0)
    assert "with_derivatives(" in str(gpviz.kernel_expr(kernel))


def test_batched_lcea_parameters_are_the_kernels_own_values_member_by_member():
    """LCEA with a batch shape keeps per-member embeddings in a ParameterList (named 0, 1, ...).

    Expected values are read by hand from the kernel's own attributes: the shared
    ``nn.Embedding`` table is not batched (it has one row per context in every member).
    """
    batch = 3
    kernel = LCEAKernel({"a": [0, 1], "b": [2, 3], "c": [4, 5]}, batch_shape=torch.Size([batch])).double()
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in kernel.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpaqueKernelWarning)
        frame = gpviz.parameters(kernel)
        page = gpviz.render(kernel).html()
    with torch.no_grad():
        scales, lengths = kernel.outputscale_list, kernel.base_kernel.lengthscale
        task_ls, table, emb = (kernel.task_covar_module.lengthscale, kernel.emb_layers[0].weight,
                               kernel.emb_weight_matrix_list[0])
    expected = {}
    for c in range(3):
        expected[f"outputscale_list[{c}]"] = [float(scales[b, c]) for b in range(batch)]
        expected[f"emb_layers.0.weight[{c}]"] = [float(table[c, 0])] * batch
        expected[f"emb_weight_matrix_list.0[{c}]"] = [float(emb[b, c, 0]) for b in range(batch)]
    expected["task_covar_module.lengthscale"] = [float(task_ls[b, 0, 0]) for b in range(batch)]
    for j in range(2):
        expected[f"base_kernel.lengthscale[{j}]"] = [float(lengths[b, 0, j]) for b in range(batch)]
    # every parameter element of every member: as many keys as elements per member, all of them checked
    assert sum(p[0].numel() for n, p in kernel.named_parameters() if n != "emb_layers.0.weight") + 3 == len(expected)
    assert sorted(c for c in frame.columns if c != "i_model") == sorted(expected)
    for key, want in expected.items():
        assert frame[key].tolist() == pytest.approx(want, rel=1e-12, abs=0), key
        assert f'data-key="{key}"' in page
