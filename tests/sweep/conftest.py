"""Fixtures shared by the sweep tests: the data and the in-process reference sweeps (one per test module)."""

from __future__ import annotations

import pytest
from botorch.models import SingleTaskGP

from gpviz.sweep.runner import cv_sweep
from tests.sweep.scale import FIT, LOOSE, REPEATS, SIZES, make_data


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def reference(data):
    """The in-process sweeps every other path must reproduce."""
    X, Y = data
    return {name: cv_sweep(f, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT)
            for name, f in (("stgp", SingleTaskGP), ("loose", LOOSE))}
