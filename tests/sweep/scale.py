"""Shared pieces of the sweep-at-scale tests: tiny data, factories, an instrumented factory, a result comparison."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd
import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.sweep.identity import building_for_identity

FIT = {"optimizer_kwargs": {"options": {"maxiter": 15}}}  # tiny fits: these tests are about plumbing
SIZES, REPEATS = [4, 6], 2
KEYS = ["i_config", "size", "i_repeat"]


def make_data(n=12, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1, keepdim=True) + 0.05 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


def matern(train_X, train_Y):
    batch = train_X.shape[:-2]
    return SingleTaskGP(train_X, train_Y, covar_module=ScaleKernel(
        MaternKernel(nu=2.5, ard_num_dims=train_X.shape[-1], batch_shape=batch), batch_shape=batch))


LOOSE = gpviz.with_priors(matern, lengthscale=GammaPrior(1.125, 0.375))


def assert_same_sweep(a, b, cached=None):
    """Everything but fit times (and, if asked, the cached flag) is bit-for-bit the same, in the same row order."""
    drop = ["fit_seconds"] + ([] if cached is None else ["cached"])
    pd.testing.assert_frame_equal(a.scores.drop(columns=drop), b.scores.drop(columns=drop), check_exact=True)
    pd.testing.assert_frame_equal(a.parameters, b.parameters, check_exact=True)
    pd.testing.assert_frame_equal(a.predictions, b.predictions, check_exact=True)
    if cached is not None:
        assert b.scores["cached"].tolist() == cached


def cell_files(root) -> list[Path]:
    return sorted(Path(root).glob("sweep-*/seed*_n*_r*.cell"))


class Probe:
    """``SingleTaskGP`` with instruments: records every subset size it builds a model for (in this process).

    Optionally kills its own worker (as the OOM killer would) at ``kill_size`` while the file
    ``armed`` exists, or raises KeyboardInterrupt (what Ctrl-C raises) at ``interrupt_size``
    once ``wait_for`` cells are in ``cache``. All instances build the same model, so they share
    one cache namespace: a plain probe resumes a sweep an instrumented one started.
    """

    def __init__(self, kill_size=None, armed: Path | None = None, interrupt_size=None, cache=None, wait_for=0):
        self.calls = []
        self.kill_size, self.armed = kill_size, armed
        self.interrupt_size, self.cache, self.wait_for = interrupt_size, cache, wait_for

    def __call__(self, tx, ty):
        if building_for_identity():  # the cache's own build, to learn which model a cell fits: no instruments
            return SingleTaskGP(tx, ty)
        n = tx.shape[0]
        self.calls.append(n)
        if n == self.kill_size and self.armed.exists():
            os.kill(os.getpid(), signal.SIGKILL)
        if n == self.interrupt_size:
            deadline = time.monotonic() + 120
            while len(cell_files(self.cache)) < self.wait_for and time.monotonic() < deadline:
                time.sleep(0.05)
            raise KeyboardInterrupt
        return SingleTaskGP(tx, ty)
