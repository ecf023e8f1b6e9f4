"""gpviz seeds torch only inside blocks and leaves every device's generator as the caller had it."""

from __future__ import annotations

import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import RBFKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import HalfCauchyPrior

from gpviz.errors import InputError
from gpviz.priors.pull import prior_pull
from gpviz.seeding import cuda_devices, seeded
from gpviz.sweep.runner import cv_sweep
from gpviz.trace.modes import compare_fit_modes
from tests.devices import DEVICES

FIT = {"optimizer_kwargs": {"options": {"maxiter": 10}}}


def _data(device="cpu"):
    g = torch.Generator().manual_seed(3)
    X = torch.rand(8, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(4 * X).sum(-1, keepdim=True)
    return X.to(device), Y.to(device)


@pytest.fixture
def cuda_seed_calls(monkeypatch):
    """Every ``torch.cuda.manual_seed_all`` call (``torch.manual_seed`` makes one, queued while CUDA is not started)."""
    calls = []
    real = torch.cuda.manual_seed_all
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: (calls.append(seed), real(seed))[1])
    return calls


def _states(device):
    """The random state of the CPU generator and, on CUDA, of every CUDA device."""
    cpu = torch.get_rng_state().clone()
    return (cpu, torch.cuda.get_rng_state_all()) if device == "cuda" else (cpu,)


def _assert_same_states(a, b):
    assert torch.equal(a[0], b[0])
    if len(a) > 1:
        assert all(torch.equal(x, y) for x, y in zip(a[1], b[1]))


def test_seeded_draws_what_a_generator_seeded_alike_draws_and_restores_the_cpu_state():
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    with seeded(7):
        inside = torch.rand(5, dtype=torch.float64)
    expected = torch.rand(5, dtype=torch.float64, generator=torch.Generator().manual_seed(7))  # torch, not gpviz
    assert torch.equal(inside, expected)
    assert torch.equal(torch.get_rng_state(), before)


def test_seeded_restores_the_state_when_the_block_raises():
    before = torch.get_rng_state().clone()
    with pytest.raises(ZeroDivisionError):
        with seeded(1):
            torch.rand(3)
            1 / 0
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("seed", [-1, 2 ** 64, 1.5, True, "1"])
def test_a_bad_seed_is_an_input_error(seed):
    with pytest.raises(InputError, match=r"seed must be an integer in \[0, 2\*\*64\), got"):
        with seeded(seed):
            pass


def test_a_cuda_that_is_not_initialized_is_neither_seeded_nor_queued(cuda_seed_calls, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    assert cuda_devices() == []
    with seeded(5):
        torch.rand(2)
    assert cuda_seed_calls == []


class _FakeCuda:
    """Two initialized CUDA devices whose generator states are integers (torch.cuda's own functions replaced)."""

    def __init__(self, monkeypatch):
        self.states = {0: 11, 1: 22}
        for name, fn in {"is_available": lambda: True, "is_initialized": lambda: True, "device_count": lambda: 2,
                         "get_rng_state": lambda device=0: self.states[int(device)],
                         "set_rng_state": self._set, "manual_seed_all": self._seed_all}.items():
            monkeypatch.setattr(torch.cuda, name, fn)

    def _set(self, state, device=0):
        self.states[int(device)] = state

    def _seed_all(self, seed):
        self.states = {d: ("seeded", seed) for d in self.states}


def test_an_initialized_cuda_is_seeded_inside_and_every_device_restored_after(monkeypatch):
    fake = _FakeCuda(monkeypatch)
    assert cuda_devices() == [0, 1]
    with seeded(9):
        assert fake.states == {0: ("seeded", 9), 1: ("seeded", 9)}
    assert fake.states == {0: 11, 1: 22}


# -- every entry point that seeds leaves the caller's generators as they were ------------------------------------

def _fit_sweep(X, Y):
    return cv_sweep(SingleTaskGP, X, Y, [5, 6], 2, seed=1, progress=False, fit_kwargs=FIT)


def _sweep(X, Y):
    _fit_sweep(X, Y)


def _models(X, Y):
    """Returns the states after the sweep: only ``Sweep.models`` is checked."""
    sweep = _fit_sweep(X, Y)
    before = _states(X.device.type)
    sweep.models(6, 1)
    return before


def _modes(X, Y):
    compare_fit_modes(SingleTaskGP, X[:6], Y[:6], modes=("batched", "separate"), runs=1,
                      optimizer_kwargs={"options": {"maxiter": 5}})


def _pull(X, Y):
    # a HalfCauchy prior has no closed-form spread of log θ: prior_pull draws it under a seed
    model = SingleTaskGP(X, Y, covar_module=ScaleKernel(RBFKernel(), outputscale_prior=HalfCauchyPrior(1.0)))
    frame = prior_pull(ExactMarginalLogLikelihood(model.likelihood, model))
    assert frame["distance_sd"].notna().any()  # the seeded draws gave the spread


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("run", [_sweep, _models, _modes, _pull], ids=["cv_sweep", "Sweep.models",
                                                                      "compare_fit_modes", "prior_pull"])
def test_entry_points_leave_every_generator_as_found(run, device, cuda_seed_calls):
    X, Y = _data(device)
    torch.manual_seed(2024)
    if device == "cuda":
        torch.cuda.manual_seed_all(77)
    cuda_seed_calls.clear()
    before = _states(device)
    before = run(X, Y) or before
    _assert_same_states(_states(device), before)
    if device == "cpu":  # CUDA not started: torch.manual_seed would queue a seed for every CUDA generator
        assert cuda_seed_calls == []
