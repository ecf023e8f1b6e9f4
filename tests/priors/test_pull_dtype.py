"""Judging in workers pins the caller's default dtype, as fitting does: float64 verdicts from a worker whose own
default is float32 equal the in-process ones."""

from __future__ import annotations

import concurrent.futures
import multiprocessing

import pandas as pd
import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.priors.sweep_pull import sweep_prior_pull
from gpviz.threads import default_dtype


def late_prior(train_X, train_Y):
    """A factory that adds its prior after building the model: the prior's tensors take the default dtype
    (3.1 and 6.3 are not exact in float32, so a float32 prior changes the numbers)."""
    model = SingleTaskGP(train_X, train_Y)
    model.covar_module.register_prior("lengthscale_prior", GammaPrior(3.1, 6.3), "lengthscale")
    return model


@pytest.fixture
def float64():
    with default_dtype(torch.float64):
        yield


def test_worker_with_a_float32_default_judges_like_this_process(float64):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(12, 2, generator=g)
    Y = torch.sin(6 * X[:, :1]) + 0.05 * torch.randn(12, 1, generator=g)
    sweep = gpviz.cv_sweep(late_prior, X, Y, sizes=[5, 6], repeats=2, progress=False,
                           fit_kwargs={"optimizer_kwargs": {"options": {"maxiter": 15}}})
    here = sweep_prior_pull(sweep)
    # a worker that starts with float32 (a fresh spawned process or Dask worker, whatever the caller set)
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=torch.set_default_dtype,
                                                initargs=(torch.float32,)) as pool:
        there = sweep_prior_pull(sweep, executor=pool)
    pd.testing.assert_frame_equal(there, here, check_exact=True)
    assert torch.get_default_dtype() == torch.float64  # the caller's setting is left as found


def test_default_dtype_restores_the_callers_setting():
    before = torch.get_default_dtype()
    with default_dtype(torch.float64):
        assert torch.get_default_dtype() == torch.float64
        with pytest.raises(RuntimeError), default_dtype(torch.float32):
            raise RuntimeError("boom")
        assert torch.get_default_dtype() == torch.float64
    with default_dtype(None):
        assert torch.get_default_dtype() == before
    assert torch.get_default_dtype() == before
