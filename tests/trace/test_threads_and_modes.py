"""One torch thread by default in gpviz's long-running calls (the caller's setting restored), and the
fit-modes table: median of several runs with the spread, the mode with the fewest member-evaluations."""

from __future__ import annotations

import numpy as np
import pytest
import threadpoolctl
import torch
from botorch.models import SingleTaskGP

import gpviz
from gpviz.errors import InputError
from gpviz.threads import blas_threads, torch_threads


def _data(n=6):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return X, torch.sin(5 * X[:, :1]) + 0.05 * torch.randn(n, 1, generator=g, dtype=torch.float64)


class ThreadsSeen:
    """A model factory that records torch's thread count when the sweep calls it."""

    def __init__(self):
        self.seen = []

    def __call__(self, train_X, train_Y):
        self.seen.append(torch.get_num_threads())
        return SingleTaskGP(train_X, train_Y)


@pytest.fixture
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def test_torch_threads_limits_blas_too_and_restores_both_after_an_error(two_threads):
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        with pytest.raises(RuntimeError):
            with torch_threads(1):
                assert torch.get_num_threads() == 1 and blas_threads() == 1
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2 and blas_threads() == 2


@pytest.mark.slow
def test_compare_fit_modes_times_the_median_of_runs_and_names_the_fewest(two_threads):
    X, Y = _data(5)
    make = ThreadsSeen()
    table = gpviz.compare_fit_modes(make, X, Y, optimizer_kwargs={"options": {"maxiter": 20}}, runs=3)
    assert set(make.seen) == {1} and torch.get_num_threads() == 2
    assert (table["runs"] == 3).all()
    assert (table["wall_time_min"] <= table["wall_time_s"]).all()
    assert (table["wall_time_s"] <= table["wall_time_max"]).all()
    fewest = table.attrs["fewest"]
    assert table.loc[fewest, "member_evaluations"] == table["member_evaluations"].min()
    np.testing.assert_allclose(table["work_vs_fewest"], table["member_evaluations"] / table["member_evaluations"].min())
    lines = table.explain()
    assert list(lines) == ["batched", "joint", "separate"]
    assert "the fewest of all modes" in lines[fewest]
    assert all(line.startswith(mode) for mode, line in lines.items())
    with pytest.raises(InputError, match="runs"):
        gpviz.compare_fit_modes(SingleTaskGP, X, Y, runs=0)
