"""Handlers at the edges of the stack: BoTorch's own kernels, gradient kernels and approximation wrappers.

Three kinds, in the order of the module:

- closed forms (``SACKernel``, ``LinearTruncatedFidelityKernel``,
  ``DownsamplingKernel``, ``ExponentialDecayKernel``), checked numerically like
  every handler in :mod:`gpviz.walk.handlers`;
- value blocks of GPyTorch's gradient kernels (``RBFKernelGrad`` ...), which
  return ``n(1+k) x m(1+k)`` matrices: the tree is the expression of the value
  block and evaluates to exactly that block;
- opaque nodes that keep every parameter of their subtree, with the expression of
  a wrapped kernel gpviz understands (grid interpolation, inducing points,
  several devices) and a note that says what the wrapper changes.

Kernels that index the input themselves (SAC, LCEA, fidelity kernels) declare
their input width with :func:`gpviz.walk.registry.register_width`, so that it is never
guessed from a child's ARD size.
"""

from __future__ import annotations

import gpytorch.kernels as gk
from botorch.models.kernels.contextual_lcea import LCEAKernel
from botorch.models.kernels.contextual_sac import SACKernel
from botorch.models.kernels.downsampling import DownsamplingKernel
from botorch.models.kernels.exponential_decay import ExponentialDecayKernel
from botorch.models.kernels.heterogeneous_multitask import DeltaKernel, MultiTaskConditionalKernel
from botorch.models.kernels.infinite_width_bnn import InfiniteWidthBNNKernel
from botorch.models.kernels.linear_truncated_fidelity import LinearTruncatedFidelityKernel
from botorch.models.kernels.orthogonal_additive_kernel import OrthogonalAdditiveKernel

from gpviz.tree.nodes import Call, Const, Div, Neg, Node, Pow, Product, Sum, ValueBlock, Vector
from gpviz.values.keys import join_path
from gpviz.walk.handlers import handle_matern, handle_polynomial, handle_rbf
from gpviz.walk.registry import register_kernel, register_width

ONE = Const(1.0)


def _one_minus(a: Node) -> Node:
    return Sum((ONE, Neg(a)))


@register_width(SACKernel)
def _decomposition_width(module) -> int:
    """Columns a contextual kernel reads: one past the largest index of its decomposition."""
    return 1 + max(int(i) for dims in module.decomposition.values() for i in dims)


@register_width(LCEAKernel)
def _lcea_width(module) -> int:
    """LCEA reads ``num_contexts x num_param`` columns (reordered by its permutation when not contiguous)."""
    return int(module.num_contexts) * int(module.num_param)


@register_width(LinearTruncatedFidelityKernel)
def _fidelity_width(module) -> int | None:
    """Non-fidelity columns (the unbiased kernel's ARD size) plus the fidelity columns."""
    ard = getattr(module.covar_module_unbiased, "ard_num_dims", None)
    return None if ard is None else int(ard) + len(module.fidelity_dims)


# --------------------------------------------------------------------------- #
# Closed forms                                                                #
# --------------------------------------------------------------------------- #


@register_kernel(SACKernel)
def handle_sac(module, path, walk):
    """k = Σ_c s_c · k_base(x1[cols_c], x2[cols_c]): one shared base kernel, one outputscale per context.

    ``SACKernel.forward`` calls ``kernel_dict[c]`` (a ``ScaleKernel`` around the
    shared ``base_kernel``) on the columns of context ``c``; the shared kernel's
    parameters are keyed once, at ``base_kernel``, as ``named_parameters`` lists them.
    """
    feats = walk.features_for(_decomposition_width(module))
    base_path = join_path(path, "base_kernel")
    terms = []
    for context, dims in module.decomposition.items():
        scale_path = join_path(path, f"kernel_dict.{context}")
        (s,) = walk.params(module.kernel_dict[context], scale_path, "outputscale", "outputscale")
        ctx = walk.with_features(tuple(feats[int(i)] for i in dims))
        terms.append(Product((s, ctx(module.base_kernel, base_path, via_forward=True))))
    return Sum(tuple(terms))


@register_kernel(LinearTruncatedFidelityKernel)
def handle_linear_truncated_fidelity(module, path, walk):
    """k = k_unbiased(x̃1, x̃2) + b(f1, f2) · k_biased(x̃1, x̃2), x̃ = the non-fidelity columns.

    One fidelity column, with a = clamp01(x1_f), c = clamp01(x2_f):
    b = (1 - a)(1 - c)(1 + a c)^p. Two fidelity columns (a, c and a', c'):
    b = t (1 + a c)^p + t' (1 + a' c')^p + t' t (1 + a c + a' c')^p, with
    t = (1 - a)(1 - c), t' = (1 - a')(1 - c').
    """
    feats = walk.features_for(_fidelity_width(module))
    if len(feats) == 1 and feats[0].dim is None:
        return NotImplemented  # the fidelity columns cannot be told apart: opaque, every parameter kept
    fid = [int(i) for i in module.fidelity_dims]
    rest = walk.with_features(tuple(f for i, f in enumerate(feats) if i not in fid))
    unbiased = rest(module.covar_module_unbiased, join_path(path, "covar_module_unbiased"))
    biased = rest(module.covar_module_biased, join_path(path, "covar_module_biased"))
    (p,) = walk.params(module, path, "power", "power")
    sides = [(Call("clamp01", (walk.input(feats[i], 1),)), Call("clamp01", (walk.input(feats[i], 2),)))
             for i in fid]
    cross = [Product((_one_minus(a), _one_minus(c))) for a, c in sides]
    bias: list[Node] = [Product((t, Pow(Sum((ONE, Product((a, c)))), p))) for t, (a, c) in zip(cross, sides)]
    if len(fid) == 2:
        both = Sum((ONE,) + tuple(Product((a, c)) for a, c in sides))
        bias.append(Product((cross[1], cross[0], Pow(both, p))))
    return Sum((unbiased, Product((Sum(tuple(bias)), biased))))


@register_kernel(DownsamplingKernel)
def handle_downsampling(module, path, walk):
    """k = c + Σ_d (1 - x1_d)^(1 + p) (1 - x2_d)^(1 + p)."""
    (c,) = walk.params(module, path, "offset", "offset")
    (p,) = walk.params(module, path, "power", "power")
    e = Sum((ONE, p))
    feats = walk.features_for(None)
    terms = tuple(Product((Pow(_one_minus(walk.input(f, 1)), e), Pow(_one_minus(walk.input(f, 2)), e)))
                  for f in feats)
    return Sum((c, Call("sum", (Vector(terms),))))


@register_kernel(ExponentialDecayKernel)
def handle_exponential_decay(module, path, walk):
    """k = w + (1 + ‖(x1 + x2) / ℓ‖₂)^(-α)  (a sum of the inputs, not a difference)."""
    (w,) = walk.params(module, path, "offset", "offset")
    (alpha,) = walk.params(module, path, "power", "power")
    ls = walk.params(module, path, "lengthscale", "lengthscale")
    feats = walk.features_for(len(ls) if len(ls) > 1 else None)
    sums = [Sum((walk.input(f, 1), walk.input(f, 2))) for f in feats]
    dist: Node
    if len(ls) > 1:
        dist = Call("norm_l2", (Vector(tuple(Div(s, l) for s, l in zip(sums, ls))),))
    else:
        dist = Div(Call("norm_l2", (Vector(tuple(sums)),)), ls[0])
    return Sum((w, Pow(Sum((ONE, dist)), Neg(alpha))))


# --------------------------------------------------------------------------- #
# Gradient kernels: the value block                                           #
# --------------------------------------------------------------------------- #


@register_kernel(gk.RBFKernelGrad)
def handle_rbf_grad(module, path, walk):
    """Value block k = exp(-r² / 2) (r = ‖(x1 - x2) / ℓ‖₂); then d gradient rows/columns per point."""
    return ValueBlock(handle_rbf(module, path, walk), "gradient")


@register_kernel(gk.RBFKernelGradGrad)
def handle_rbf_grad_grad(module, path, walk):
    """Value block k = exp(-r² / 2); then d gradient and d second-derivative rows/columns per point."""
    return ValueBlock(handle_rbf(module, path, walk), "gradient and second-derivative")


@register_kernel(gk.Matern52KernelGrad)
def handle_matern52_grad(module, path, walk):
    """Value block k = (1 + √5 r + 5/3 r²) exp(-√5 r); then d gradient rows/columns per point."""
    return ValueBlock(handle_matern(module, path, walk), "gradient")


@register_kernel(gk.PolynomialKernelGrad)
def handle_polynomial_grad(module, path, walk):
    """Value block k = (x1ᵀ x2 + c)^power; then d gradient rows/columns per point."""
    return ValueBlock(handle_polynomial(module, path, walk), "gradient")


# --------------------------------------------------------------------------- #
# Wrappers and opaque kernels that keep every parameter                       #
# --------------------------------------------------------------------------- #


def _grid_sizes(module) -> str:
    return "x".join(str(len(g)) for g in module.grid) if hasattr(module, "grid") else "?"


@register_kernel(gk.GridInterpolationKernel)
def handle_grid_interpolation(module, path, walk):
    """Opaque (SKI): the base kernel on a grid, interpolated to the inputs; shows the base kernel."""
    base = walk(module.base_kernel, join_path(path, "base_kernel"))
    return walk.opaque(module, path, [("approximates", base)],
                       f"approximation: the base kernel on a {_grid_sizes(module)} grid, interpolated")


@register_kernel(gk.GridKernel)
def handle_grid(module, path, walk):
    """Opaque: the base kernel (exact), with Kronecker/Toeplitz algebra when the inputs are the grid."""
    base = walk(module.base_kernel, join_path(path, "base_kernel"), via_forward=True)
    return walk.opaque(module, path, [("computes", base)],
                       f"the base kernel; structured algebra on its {_grid_sizes(module)} grid")


@register_kernel(gk.InducingPointKernel)
def handle_inducing_point(module, path, walk):
    """Opaque (SGPR): K ≈ K_xz K_zz⁻¹ K_zx at the inducing points z; shows the base kernel."""
    base = walk(module.base_kernel, join_path(path, "base_kernel"))
    m = int(module.inducing_points.shape[-2])
    return walk.opaque(module, path, [("approximates", base)],
                       f"approximation: K_xz K_zz^-1 K_zx through {m} learned inducing points")


@register_kernel(gk.MultiDeviceKernel)
def handle_multi_device(module, path, walk):
    """Opaque: the base kernel, computed in chunks on several devices."""
    # DataParallel registers the base kernel as ``module``: key it where named_parameters lists it
    name = next(n for n, c in module.named_children() if c is module.base_kernel)
    base = walk(module.base_kernel, join_path(path, name))
    return walk.opaque(module, path, [("computes", base)],
                       f"the base kernel, split over devices {[str(d) for d in module.device_ids]}")


def _opaque_with_note(note: str):
    def handler(module, path, walk):
        return walk.opaque(module, path, (), note)

    handler.__doc__ = f"Opaque, every parameter of the subtree kept: {note}."
    return handler


# BoTorch's kernels whose closed form would not be readable as one line
OPAQUE_NOTES = {
    LCEAKernel: "k = Σ_ij w_i w_j C[i, j] k_base(x1[ctx_i], x2[ctx_j]), C from learned context embeddings",
    OrthogonalAdditiveKernel: "Σ over orders of learned coefficients × products of 1-d base kernels "
                              "orthogonalized against the input density (quadrature)",
    InfiniteWidthBNNKernel: "NNGP limit of an infinitely wide Bayesian network: an arc-cosine recursion over its depth",
    MultiTaskConditionalKernel: "per-task kernels over the subspaces each task's inputs are active in",
    DeltaKernel: "1 where both inputs are equal, else 0 (over its active dims)",
}

for _cls, _note in OPAQUE_NOTES.items():
    register_kernel(_cls)(_opaque_with_note(_note))
    if _cls not in (LCEAKernel,):
        # they index their input themselves; the walker must not guess its width from a child's ARD size
        register_width(_cls)(lambda module: None)
