"""Built-in kernel handlers: one per GPyTorch/BoTorch kernel class (registered on import).

Each handler's docstring states the formula it implements; ``tests/walk/test_handlers.py``
checks each against GPyTorch numerically.
"""

from __future__ import annotations

import math

import gpytorch.kernels as gk

from gpviz.errors import InputError
from gpviz.tree.nodes import Call, Const, Div, Dot, Neg, Node, Pow, Product, Sum, TaskCovar, Vector
from gpviz.values.keys import join_path
from gpviz.walk.registry import register_kernel

PI = Const(math.pi, "π")


# --------------------------------------------------------------------------- #
# Helpers shared by stationary kernels                                        #
# --------------------------------------------------------------------------- #


def scaled_distances(module, path: str, walk, name: str = "lengthscale", role: str = "lengthscale",
                     norm: str = "norm_l2") -> Node:
    """``norm([compare(f) / ℓ_f, ...])`` (ARD) or ``norm([compare(f), ...]) / ℓ`` (shared ℓ).

    Matches GPyTorch's ``covar_dist(x1 / ℓ, x2 / ℓ)``.
    """
    ls = walk.params(module, path, name, role)
    feats = walk.features_for(len(ls) if len(ls) > 1 else None)
    if len(ls) > 1:
        return Call(norm, (Vector(tuple(Div(walk.compare(f), l) for f, l in zip(feats, ls))),))
    return Div(Call(norm, (Vector(tuple(walk.compare(f) for f in feats)),)), ls[0])


def per_feature(module, path: str, walk, name: str, role: str, count: int | None = None):
    """Pairs every visible feature with its element of an ARD parameter (or the shared one)."""
    ps = walk.params(module, path, name, role)
    feats = walk.features_for(count if count is not None else (len(ps) if len(ps) > 1 else None))
    if len(ps) > 1:
        if len(ps) != len(feats):
            raise InputError(f"{name} has {len(ps)} elements but the kernel sees {len(feats)} features")
        return list(zip(feats, ps))
    return [(f, ps[0]) for f in feats]


# --------------------------------------------------------------------------- #
# Handlers                                                                    #
# --------------------------------------------------------------------------- #


@register_kernel(gk.RBFKernel)
def handle_rbf(module, path, walk):
    """k = exp(-r² / 2), r = ‖(x1 - x2) / ℓ‖₂."""
    return Call("rbf", (scaled_distances(module, path, walk),))


@register_kernel(gk.MaternKernel)
def handle_matern(module, path, walk):
    """ν=½: exp(-r); ν=3/2: (1 + √3 r) exp(-√3 r); ν=5/2: (1 + √5 r + 5/3 r²) exp(-√5 r); r = ‖(x1 - x2) / ℓ‖₂."""
    fn = {0.5: "matern_05", 1.5: "matern_15", 2.5: "matern_25"}.get(float(module.nu))
    if fn is None:
        return NotImplemented
    return Call(fn, (scaled_distances(module, path, walk),))


@register_kernel(gk.RQKernel)
def handle_rq(module, path, walk):
    """k = (1 + r² / (2α))^(-α), r = ‖(x1 - x2) / ℓ‖₂."""
    (alpha,) = walk.params(module, path, "alpha", "alpha")
    return Call("rq", (scaled_distances(module, path, walk), alpha))


@register_kernel(gk.PeriodicKernel)
def handle_periodic(module, path, walk):
    """k = exp(-2 Σ_d sin²(π (x1_d - x2_d) / p_d) / ℓ_d)  (GPyTorch divides by ℓ, not ℓ²)."""
    periods = per_feature(module, path, walk, "period_length", "period")
    scales = per_feature(module, path, walk, "lengthscale", "lengthscale", count=len(periods) if periods else None)
    terms = tuple(
        Div(Pow(Call("sin", (Div(Product((PI, walk.compare(f))), p),)), Const(2.0)), ls)
        for (f, p), (_, ls) in zip(periods, scales))
    return Call("exp", (Product((Const(-2.0), Call("sum", (Vector(terms),)))),))


@register_kernel(gk.CosineKernel)
def handle_cosine(module, path, walk):
    """k = cos(π ‖x1 - x2‖₂ / p)."""
    (p,) = walk.params(module, path, "period_length", "period")
    feats = walk.features_for(None)
    dist = Call("norm_l2", (Vector(tuple(walk.compare(f) for f in feats)),))
    return Call("cos", (Div(Product((PI, dist)), p),))


@register_kernel(gk.LinearKernel)
def handle_linear(module, path, walk):
    """k = v · x1ᵀ x2; with ARD variances (``ard_num_dims``), k = Σ_d v_d · x1_d x2_d."""
    vs = walk.params(module, path, "variance", "variance")
    if len(vs) == 1:
        return Product((vs[0], walk.dot()))
    feats = walk.features_for(len(vs))
    return Sum(tuple(Product((v, Dot((f.dim,), (f.name,)))) for v, f in zip(vs, feats)))


@register_kernel(gk.PolynomialKernel)
def handle_polynomial(module, path, walk):
    """k = (x1ᵀ x2 + c)^power."""
    (c,) = walk.params(module, path, "offset", "offset")
    return Pow(Sum((walk.dot(), c)), Const(float(module.power)))


@register_kernel(gk.ConstantKernel)
def handle_constant(module, path, walk):
    """k = c."""
    (c,) = walk.params(module, path, "constant", "constant")
    return c


@register_kernel(gk.SpectralMixtureKernel)
def handle_spectral_mixture(module, path, walk):
    """k = Π_d Σ_q w_q exp(-2π² (x1_d - x2_d)² σ_qd²) cos(2π (x1_d - x2_d) μ_qd).

    GPyTorch sums the mixtures per input dimension and multiplies over dimensions.
    """
    q = module.num_mixtures
    weights = walk.params(module, path, "mixture_weights", "weight")
    scales = walk.params(module, path, "mixture_scales", "scale")
    means = walk.params(module, path, "mixture_means", "frequency")
    d = len(scales) // q
    feats = walk.features_for(d)
    per_dim = []
    for j, f in enumerate(feats):
        c = walk.compare(f)
        mixtures = tuple(
            Product((weights[i],
                     Call("exp", (Product((Const(-2.0), Pow(PI, Const(2.0)),
                                           Pow(Product((c, scales[i * d + j])), Const(2.0)))),)),
                     Call("cos", (Product((Const(2.0), PI, c, means[i * d + j])),))))
            for i in range(q))
        per_dim.append(Call("sum", (Vector(mixtures),)))
    return Call("prod", (Vector(tuple(per_dim)),))


@register_kernel(gk.ScaleKernel)
def handle_scale(module, path, walk):
    """k = s · k_base  (ScaleKernel.forward calls base_kernel.forward, bypassing its active_dims)."""
    (s,) = walk.params(module, path, "outputscale", "outputscale")
    return Product((s, walk(module.base_kernel, join_path(path, "base_kernel"), via_forward=True)))


@register_kernel(gk.AdditiveKernel)
def handle_additive(module, path, walk):
    """k = Σ_i k_i."""
    return Sum(tuple(walk(k, join_path(path, f"kernels.{i}")) for i, k in enumerate(module.kernels)))


@register_kernel(gk.ProductKernel)
def handle_product(module, path, walk):
    """k = Π_i k_i."""
    return Product(tuple(walk(k, join_path(path, f"kernels.{i}")) for i, k in enumerate(module.kernels)))


def _structure(module, path, walk, node_cls):
    feats = walk.features_for(module.num_dims)
    child = join_path(path, "base_kernel")
    return node_cls(tuple(walk.with_features((f,))(module.base_kernel, child) for f in feats))


@register_kernel(gk.AdditiveStructureKernel)
def handle_additive_structure(module, path, walk):
    """k = Σ_d k_base(x1_d, x2_d): the base kernel on each input dimension alone."""
    return _structure(module, path, walk, Sum)


@register_kernel(gk.ProductStructureKernel)
def handle_product_structure(module, path, walk):
    """k = Π_d k_base(x1_d, x2_d)."""
    return _structure(module, path, walk, Product)


def _task_covar(module, path, walk, target=None):
    factor = walk.params(module, path, "covar_factor", "task_factor")
    var = walk.params(module, path, "var", "task_var")
    t = module.num_tasks if hasattr(module, "num_tasks") else len(var)
    r = len(factor) // t
    rows = tuple(tuple(factor[i * r:(i + 1) * r]) for i in range(t))
    (feat,) = walk.features_for(1)
    return TaskCovar(feat.dim, feat.name, rows, tuple(var), target, walk.task_names(t))


@register_kernel(gk.IndexKernel)
def handle_index(module, path, walk):
    """k = C[i1, i2], C = F Fᵀ + diag(v), i = the task index column."""
    return _task_covar(module, path, walk)


try:  # BoTorch kernels: registered when BoTorch is importable
    from botorch.models.kernels.categorical import CategoricalKernel
    from botorch.models.kernels.positive_index import PositiveIndexKernel

    @register_kernel(PositiveIndexKernel)
    def handle_positive_index(module, path, walk):
        """k = C[i1, i2], C = F Fᵀ + diag(v) (F ≥ 0), divided by C[t, t] for the target task t if unit_scale_for_target."""
        target = int(module.target_task_index) if module.unit_scale_for_target else None
        return _task_covar(module, path, walk, target)

    @register_kernel(CategoricalKernel)
    def handle_categorical(module, path, walk):
        """k = exp(-mean_d([x1_d ≠ x2_d] / ℓ_d))."""
        pairs = per_feature(module, path, walk, "lengthscale", "lengthscale")
        ls = walk.params(module, path, "lengthscale", "lengthscale")
        inner: Node
        if len(ls) > 1:
            inner = Call("mean", (Vector(tuple(Div(walk.differ(f), l) for f, l in pairs)),))
        else:
            inner = Div(Call("mean", (Vector(tuple(walk.differ(f) for f, _ in pairs)),)), ls[0])
        return Call("exp", (Neg(inner),))
except ImportError:  # pragma: no cover - BoTorch is a dependency, but kernels may move
    pass


# --------------------------------------------------------------------------- #
# Multi-task (Kronecker) kernels                                              #
# --------------------------------------------------------------------------- #


@register_kernel(gk.MultitaskKernel)
def handle_multitask(module, path, walk):
    """k((x, i), (x', j)) = k_data(x, x') · C[i, j], C = F Fᵀ + diag(v): the task is the last visible feature.

    ``MultitaskKernel`` returns the Kronecker product ``K_data ⊗ C`` (interleaved:
    row ``a·t + i``); the tree reads the task from a virtual column after the
    inputs, which :class:`gpviz.models.expr.KroneckerModelExpr` appends when it
    evaluates. ``MultitaskKernel.forward`` calls ``data_covar_module.forward``,
    bypassing its ``active_dims``.
    """
    feats = walk.features
    if feats is None or len(feats) < 2 or feats[-1].name != "task":
        return NotImplemented  # not inside a Kronecker model expression: shown opaque, evaluated by the module
    data = walk.with_features(feats[:-1])(module.data_covar_module, join_path(path, "data_covar_module"),
                                          via_forward=True)
    task_walk = walk.with_features(feats[-1:])
    task = task_walk(module.task_covar_module, join_path(path, "task_covar_module"), via_forward=True)
    return Product((data, task))
