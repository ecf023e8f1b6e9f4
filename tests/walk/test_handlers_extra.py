"""Every GPyTorch and BoTorch kernel class accounted for: exact, opaque with every parameter, or refused.

The zoo enumerates the classes ``gpytorch.kernels`` exports and every kernel class
defined in ``botorch.models.kernels`` and its submodules; a class either library
adds makes ``test_every_kernel_class_is_classified`` fail until it is put into one of
the three tables below. Configurations follow the constructor arguments GPyTorch's
and BoTorch's own tests use, with integer ``active_dims`` and batch shapes.
Numbers are compared in float64 to 1e-8.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import botorch.models.kernels as bk
import gpytorch.kernels as gk
import pytest
import torch
from botorch.models.kernels.categorical import CategoricalKernel
from botorch.models.kernels.contextual_lcea import LCEAKernel
from botorch.models.kernels.contextual_sac import SACKernel
from botorch.models.kernels.downsampling import DownsamplingKernel
from botorch.models.kernels.exponential_decay import ExponentialDecayKernel
from botorch.models.kernels.heterogeneous_multitask import (CombinatorialCovarModule, DeltaKernel,
                                                            MultiTaskConditionalKernel)
from botorch.models.kernels.infinite_width_bnn import InfiniteWidthBNNKernel
from botorch.models.kernels.linear_truncated_fidelity import LinearTruncatedFidelityKernel
from botorch.models.kernels.orthogonal_additive_kernel import OrthogonalAdditiveKernel
from botorch.models.kernels.positive_index import PositiveIndexKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.errors import UnsupportedError
from gpviz.tree.nodes import Opaque, ValueBlock, iter_nodes
from gpviz.values.keys import make_key

D = 3
B = torch.Size([2])


def _randomize(kernel: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Moves every parameter away from its default so that elements (and members) differ."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in kernel.named_parameters():
            p.copy_(p + 0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return kernel


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _tasks(n: int, d: int, seed: int) -> torch.Tensor:
    """``d`` columns in [0, 1] and a task index column in {0, 1, 2} after them."""
    x = torch.cat([_unit(n, d, seed), torch.zeros(n, 1, dtype=torch.float64)], -1)
    x[:, d] = torch.arange(n) % 3
    return x


def _categories(n: int, d: int, seed: int) -> torch.Tensor:
    return (_unit(n, d, seed) * 3).floor()


# id -> (factory, inputs(n, seed)); each factory's class is what the entry classifies
EXACT = {
    "RBFKernel": (lambda: gk.RBFKernel(), lambda n, s: _unit(n, D, s)),
    "RBFKernel/ard": (lambda: gk.RBFKernel(ard_num_dims=D), lambda n, s: _unit(n, D, s)),
    "RBFKernel/batch_ard": (lambda: gk.RBFKernel(ard_num_dims=D, batch_shape=B), lambda n, s: _unit(n, D, s)),
    "RBFKernel/int_active_dims": (lambda: gk.RBFKernel(active_dims=1), lambda n, s: _unit(n, D, s)),
    "RBFKernel/tuple_active_dims": (lambda: gk.RBFKernel(ard_num_dims=2, active_dims=(0, 2)),
                                    lambda n, s: _unit(n, D, s)),
    "RBFKernel/tensor_active_dims": (lambda: gk.RBFKernel(active_dims=torch.tensor([2, 0])),
                                     lambda n, s: _unit(n, D, s)),
    "MaternKernel/05": (lambda: gk.MaternKernel(nu=0.5, ard_num_dims=D), lambda n, s: _unit(n, D, s)),
    "MaternKernel/15": (lambda: gk.MaternKernel(nu=1.5, active_dims=2), lambda n, s: _unit(n, D, s)),
    "MaternKernel/25_batch": (lambda: gk.MaternKernel(nu=2.5, ard_num_dims=D, batch_shape=B),
                              lambda n, s: _unit(n, D, s)),
    "RQKernel": (lambda: gk.RQKernel(ard_num_dims=D), lambda n, s: _unit(n, D, s)),
    "PeriodicKernel": (lambda: gk.PeriodicKernel(ard_num_dims=D, batch_shape=B), lambda n, s: _unit(n, D, s)),
    "CosineKernel": (lambda: gk.CosineKernel(active_dims=0), lambda n, s: _unit(n, D, s)),
    "LinearKernel": (lambda: gk.LinearKernel(), lambda n, s: _unit(n, D, s)),
    "LinearKernel/ard": (lambda: gk.LinearKernel(ard_num_dims=D), lambda n, s: _unit(n, D, s)),
    "PolynomialKernel": (lambda: gk.PolynomialKernel(power=3, batch_shape=B), lambda n, s: _unit(n, D, s)),
    "ConstantKernel": (lambda: gk.ConstantKernel(), lambda n, s: _unit(n, D, s)),
    "SpectralMixtureKernel": (lambda: gk.SpectralMixtureKernel(num_mixtures=3, ard_num_dims=D),
                              lambda n, s: _unit(n, D, s)),
    "ScaleKernel/int_active_dims": (lambda: gk.ScaleKernel(gk.RBFKernel(active_dims=1)), lambda n, s: _unit(n, D, s)),
    "ScaleKernel/batch": (lambda: gk.ScaleKernel(gk.MaternKernel(nu=2.5, ard_num_dims=D, batch_shape=B),
                                                 batch_shape=B), lambda n, s: _unit(n, D, s)),
    "AdditiveKernel/int_active_dims": (lambda: gk.AdditiveKernel(gk.RBFKernel(active_dims=0),
                                                                 gk.MaternKernel(nu=1.5, active_dims=2)),
                                       lambda n, s: _unit(n, D, s)),
    "ProductKernel": (lambda: gk.ProductKernel(gk.RBFKernel(active_dims=[0]), gk.PeriodicKernel(active_dims=(1, 2))),
                      lambda n, s: _unit(n, D, s)),
    "AdditiveStructureKernel": (lambda: gk.AdditiveStructureKernel(gk.RBFKernel(), num_dims=D),
                                lambda n, s: _unit(n, D, s)),
    "ProductStructureKernel": (lambda: gk.ProductStructureKernel(gk.MaternKernel(nu=2.5), num_dims=D),
                               lambda n, s: _unit(n, D, s)),
    "IndexKernel": (lambda: gk.IndexKernel(num_tasks=3, rank=2, active_dims=D), lambda n, s: _tasks(n, D, s)),
    "RBFKernelGrad": (lambda: gk.RBFKernelGrad(ard_num_dims=D), lambda n, s: _unit(n, D, s)),
    # GPyTorch's own limits: batched gradient kernels need batched inputs; GradGrad needs n == m
    "RBFKernelGrad/batch": (lambda: gk.RBFKernelGrad(batch_shape=B), lambda n, s: _unit(n, D, s).expand(*B, n, D)),
    "RBFKernelGradGrad": (lambda: gk.RBFKernelGradGrad(), lambda n, s: _unit(5, D, s)),
    "Matern52KernelGrad": (lambda: gk.Matern52KernelGrad(ard_num_dims=D), lambda n, s: _unit(n, D, s)),
    "PolynomialKernelGrad": (lambda: gk.PolynomialKernelGrad(power=2), lambda n, s: _unit(n, D, s)),
    "CategoricalKernel": (lambda: CategoricalKernel(ard_num_dims=D), lambda n, s: _categories(n, D, s)),
    "PositiveIndexKernel": (lambda: PositiveIndexKernel(num_tasks=3, rank=2, active_dims=[D]),
                            lambda n, s: _tasks(n, D, s)),
    "SACKernel": (lambda: SACKernel({"a": [0, 1], "b": [2, 3]}, batch_shape=torch.Size([])),
                  lambda n, s: _unit(n, 4, s)),
    "SACKernel/batch": (lambda: SACKernel({"a": [0, 2], "b": [1, 3]}, batch_shape=B), lambda n, s: _unit(n, 4, s)),
    "LinearTruncatedFidelityKernel/1": (lambda: LinearTruncatedFidelityKernel(fidelity_dims=[2], dimension=D),
                                        lambda n, s: _unit(n, D, s)),
    "LinearTruncatedFidelityKernel/2": (lambda: LinearTruncatedFidelityKernel(
        fidelity_dims=[0, 2], dimension=4, nu=1.5, batch_shape=B), lambda n, s: _unit(n, 4, s) * 1.4 - 0.2),
    "LinearTruncatedFidelityKernel/active_dims": (lambda: LinearTruncatedFidelityKernel(
        fidelity_dims=[1], active_dims=[0, 2], nu=0.5), lambda n, s: _unit(n, D, s)),
    "DownsamplingKernel": (lambda: DownsamplingKernel(batch_shape=B, active_dims=[1]), lambda n, s: _unit(n, D, s)),
    "DownsamplingKernel/all": (lambda: DownsamplingKernel(), lambda n, s: _unit(n, 2, s)),
    "ExponentialDecayKernel": (lambda: ExponentialDecayKernel(active_dims=[2]), lambda n, s: _unit(n, D, s)),
    "ExponentialDecayKernel/batch": (lambda: ExponentialDecayKernel(batch_shape=B), lambda n, s: _unit(n, 1, s)),
    "CombinatorialCovarModule": (lambda: CombinatorialCovarModule(ard_num_dims=D), lambda n, s: _categories(n, D, s)
                                 .clamp_max(1)),
}

OPAQUE = {
    "GridInterpolationKernel": (lambda: gk.GridInterpolationKernel(gk.ScaleKernel(gk.RBFKernel()), grid_size=10,
                                                                   num_dims=1), lambda n, s: _unit(n, 1, s)),
    "GridKernel": (lambda: gk.GridKernel(gk.RBFKernel(), grid=torch.linspace(0, 1, 5).unsqueeze(-1)),
                   lambda n, s: _unit(n, 1, s)),
    "InducingPointKernel": (lambda: gk.InducingPointKernel(gk.ScaleKernel(gk.RBFKernel()),
                                                           inducing_points=torch.rand(2, 1),
                                                           likelihood=GaussianLikelihood()),
                            lambda n, s: _unit(n, 1, s)),
    # DataParallel needs CUDA devices: GPyTorch cannot compute it on CPU, so only its parameters are checked
    "MultiDeviceKernel": (lambda: gk.MultiDeviceKernel(gk.RBFKernel(), device_ids=[torch.device("cpu")]), None),
    "ArcKernel": (lambda: gk.ArcKernel(gk.MaternKernel(nu=2.5), angle_prior=GammaPrior(0.5, 1),
                                       radius_prior=GammaPrior(3, 2), ard_num_dims=D), lambda n, s: _unit(n, D, s)),
    "CylindricalKernel": (lambda: gk.CylindricalKernel(num_angular_weights=4, radial_base_kernel=gk.MaternKernel()),
                          lambda n, s: _unit(n, D, s) * 0.5),
    "DistributionalInputKernel": (lambda: gk.DistributionalInputKernel(distance_function=_l1_distance),
                                  lambda n, s: _unit(n, 2 * D, s)),
    "GaussianSymmetrizedKLKernel": (lambda: gk.GaussianSymmetrizedKLKernel(), lambda n, s: _unit(n, 2 * D, s)),
    "HammingIMQKernel": (lambda: gk.HammingIMQKernel(vocab_size=3), lambda n, s: _one_hot(n, s)),
    "LCMKernel": (lambda: gk.LCMKernel([gk.RBFKernel(), gk.MaternKernel()], num_tasks=2, rank=1),
                  lambda n, s: _unit(n, D, s)),
    "MultitaskKernel": (lambda: gk.MultitaskKernel(gk.RBFKernel(), num_tasks=2, rank=1),
                        lambda n, s: _unit(n, D, s)),
    "NewtonGirardAdditiveKernel": (lambda: gk.NewtonGirardAdditiveKernel(gk.RBFKernel(ard_num_dims=D), num_dims=D,
                                                                         max_degree=2), lambda n, s: _unit(n, D, s)),
    "PiecewisePolynomialKernel": (lambda: gk.PiecewisePolynomialKernel(q=2, ard_num_dims=D),
                                  lambda n, s: _unit(n, D, s)),
    "RFFKernel": (lambda: gk.RFFKernel(num_samples=16, num_dims=D), lambda n, s: _unit(n, D, s)),
    "SpectralDeltaKernel": (lambda: gk.SpectralDeltaKernel(num_dims=D, num_deltas=8), lambda n, s: _unit(n, D, s)),
    "LCEAKernel": (lambda: LCEAKernel({"a": [0, 1], "b": [2, 3]}, batch_shape=torch.Size([])),
                   lambda n, s: _unit(n, 4, s)),
    "OrthogonalAdditiveKernel": (lambda: OrthogonalAdditiveKernel(base_kernel=gk.RBFKernel(), dim=D, second_order=True,
                                                                  dtype=torch.float64), lambda n, s: _unit(n, D, s)),
    "InfiniteWidthBNNKernel": (lambda: InfiniteWidthBNNKernel(depth=3), lambda n, s: _unit(n, D, s)),
    "DeltaKernel": (lambda: DeltaKernel(), lambda n, s: _categories(n, 1, s).clamp_max(1)),
    "MultiTaskConditionalKernel": (lambda: MultiTaskConditionalKernel(feature_indices=[[0, 1], [1, 2]]),
                                   lambda n, s: _hetero(n, s)),
}

# class -> (error type, message pattern)
REFUSED = {
    gk.Kernel: (UnsupportedError, "does not implement forward"),
}


def _l1_distance(x1, x2):
    """A user's distance between distributional inputs (here: L1 between the parameter vectors)."""
    return (x1.unsqueeze(-2) - x2.unsqueeze(-3)).abs().sum(-1)


def _one_hot(n: int, seed: int) -> torch.Tensor:
    idx = (_unit(n, 2, seed) * 3).floor().long()
    return torch.nn.functional.one_hot(idx, 3).reshape(n, -1).to(torch.float64)


def _hetero(n: int, seed: int) -> torch.Tensor:
    x = _unit(n, D + 1, seed)
    x[:, -1] = torch.arange(n) % 2
    return x


def _zoo_classes() -> set[type]:
    """Every class the stack offers as a kernel: gpytorch.kernels' exports and botorch.models.kernels' own."""
    out = {getattr(gk, n) for n in gk.__all__ if inspect.isclass(getattr(gk, n))}
    modules = [bk] + [importlib.import_module(m.name) for m in pkgutil.walk_packages(bk.__path__, bk.__name__ + ".")]
    for mod in modules:
        for obj in vars(mod).values():
            if inspect.isclass(obj) and issubclass(obj, gk.Kernel) and obj.__module__.startswith(bk.__name__):
                out.add(obj)
    return out


def _build(factory) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _randomize(factory().double())


def _expected_keys(kernel: torch.nn.Module) -> list[str]:
    """One key per element of every ``named_parameters`` entry, written here from GPyTorch's names alone."""
    batch = kernel.batch_shape
    keys = []
    for name, p in kernel.named_parameters():
        path, _, raw = name.rpartition(".")
        value = raw[4:] if raw.startswith("raw_") else raw
        own = getattr(kernel.get_submodule(path) if path else kernel, "batch_shape", None)
        lead = len(own) if isinstance(own, torch.Size) and tuple(p.shape[: len(own)]) == tuple(own) else 0
        if not isinstance(own, torch.Size) and len(batch) and tuple(p.shape[: len(batch)]) == tuple(batch):
            lead = len(batch)
        shape = [s for s in p.shape[lead:] if s != 1]
        for idx in (torch.cartesian_prod(*[torch.arange(s) for s in shape]).reshape(-1, len(shape)).tolist()
                    if shape else [[]]):
            keys.append(make_key(path, value, tuple(int(i) for i in idx)))
    return keys


def _classify(kernel) -> str:
    try:
        expr = gpviz.kernel_expr(kernel, strict=True)
    except UnsupportedError:
        return "refused"
    return "opaque-with-parameters" if any(isinstance(n, Opaque) for n in iter_nodes(expr.tree)) else "exact"


def zoo_table() -> dict[str, str]:
    """class name -> "exact" / "opaque-with-parameters" / "refused" (what the report prints)."""
    table = {}
    for entries in (EXACT, OPAQUE):
        for factory, _ in entries.values():
            kernel = _build(factory)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table.setdefault(type(kernel).__name__, _classify(kernel))
    for cls in REFUSED:
        table[cls.__name__] = "refused"
    return dict(sorted(table.items()))


def test_every_kernel_class_is_classified():
    classified = {type(_build(f)) for f, _ in EXACT.values()} | {type(_build(f)) for f, _ in OPAQUE.values()}
    classified |= set(REFUSED)
    offered = _zoo_classes()
    assert offered - classified == set(), f"unclassified kernel classes: {sorted(c.__name__ for c in offered - classified)}"
    assert classified - offered == set(), f"classified but no longer offered: {sorted(c.__name__ for c in classified - offered)}"


@pytest.mark.parametrize("kernel_id", sorted(EXACT))
def test_exact_kernels_evaluate_to_the_kernel_matrix(kernel_id):
    factory, inputs = EXACT[kernel_id]
    kernel = _build(factory)
    expr = gpviz.kernel_expr(kernel, strict=True)
    assert not [n.cls_name for n in iter_nodes(expr.tree) if isinstance(n, Opaque)]
    x1, x2 = inputs(6, 1), inputs(5, 2)
    for a, b in ((x1, x1), (x1, x2)):
        with torch.no_grad():
            want = kernel(a, b).to_dense()
            got = expr.evaluate(a, b)
        if isinstance(expr.tree, ValueBlock):  # point-interleaved: the value is every (1 + k)-th row and column
            per_point = kernel.num_outputs_per_input(a, b)
            want = want[..., ::per_point, ::per_point]
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-8, rtol=0)
    assert sorted(expr.keys) == sorted(_expected_keys(kernel))


@pytest.mark.parametrize("kernel_id", sorted(OPAQUE))
def test_opaque_kernels_keep_every_parameter_of_their_subtree(kernel_id):
    factory, inputs = OPAQUE[kernel_id]
    kernel = _build(factory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expr = gpviz.kernel_expr(kernel, strict=True)
        frame = gpviz.parameters(kernel)
        long = gpviz.parameters(kernel, long=True)
    assert any(isinstance(n, Opaque) for n in iter_nodes(expr.tree))
    want = _expected_keys(kernel)
    assert sorted(expr.keys) == sorted(want)
    assert list(frame.columns) == ["i_model", *expr.keys]
    assert set(long["key"]) == set(want)
    assert type(kernel).__name__ in str(expr)
    if inputs is None:
        return
    x1, x2 = inputs(5, 1), inputs(4, 2)
    kernel.eval()  # InducingPointKernel refuses x1 != x2 in training mode
    with torch.no_grad():  # delegated to the module: the same matrix, in the module's own shape
        want_k = kernel(x1, x2).to_dense()
        got = expr.evaluate(x1, x2)
    assert got.shape == want_k.shape
    torch.testing.assert_close(got, want_k, atol=1e-8, rtol=0)


@pytest.mark.parametrize("cls", sorted(REFUSED, key=lambda c: c.__name__))
def test_refused_kernels_raise_a_typed_error(cls):
    error, pattern = REFUSED[cls]
    with pytest.raises(error, match=pattern):
        gpviz.kernel_expr(cls())


def test_zoo_table_counts(capsys):
    table = zoo_table()
    counts = {kind: sum(1 for v in table.values() if v == kind) for kind in ("exact", "opaque-with-parameters",
                                                                             "refused")}
    with capsys.disabled():
        print("\nkernel zoo:", counts)
        for name, kind in table.items():
            print(f"  {name:32s} {kind}")
    assert sum(counts.values()) == len(_zoo_classes())
    assert counts == {"exact": 26, "opaque-with-parameters": 20, "refused": 1}
