"""The sweep's progress bar: an ETA that weights cells by their expected cost."""

from __future__ import annotations

import numpy as np
import pytest

from gpviz.sweep.cells import Cell
from gpviz.sweep.progress import SweepProgress, expected_cost


def test_the_eta_weights_cells_by_their_expected_cost():
    # cells that cost size**3 seconds: the fitted power finds it, and prices unseen sizes
    done = [(10, 1.0), (20, 8.0)]
    np.testing.assert_allclose(expected_cost([40], done), [64.0])
    np.testing.assert_allclose(expected_cost([10, 40], []), [1e3, 64e3])  # before any cell: size ** 3
    steep = expected_cost([20, 40], [(10, 1.0), (20, 1000.0)])
    assert steep[1] / steep[0] == pytest.approx(2.0 ** 4)  # the fitted power is capped at 4

    bar = SweepProgress(4, enabled=False, workers=1)
    bar.start([10, 20, 40, 40])
    bar.t0 -= 9.0  # 9 s spent on the first two cells (1 s + 8 s)
    for size, seconds in done:
        bar.done(Cell(0, size, 0, fit_seconds=seconds))
    # two n=40 cells left: 2 x 64 s at the rate seen; counting cells alike would say 9 s
    assert bar.eta() == pytest.approx(128.0, rel=1e-2)


def _bar(pending, workers=1):
    bar = SweepProgress(len(pending), enabled=False, workers=workers)
    bar.start(list(pending))
    return bar


def test_no_eta_before_it_means_something():
    # the first cell is small and mostly overhead: priced at size**3 it said minutes for a seconds-long sweep
    bar = _bar([4, 20, 40])
    bar.t0 -= 0.5
    bar.done(Cell(0, 4, 0, fit_seconds=0.5))
    assert bar.eta() is None and "ETA" not in str(bar.bar.postfix or "")
    # a second size measures the cost's power: the ETA is then the hand formula's
    # t = n**3 / 64 fits (4, 1 s) and (8, 8 s) exactly: 16 costs 64 s; 9 s spent on 9 s of cost
    bar = _bar([4, 8, 16])
    bar.t0 -= 9.0
    bar.done(Cell(0, 4, 0, fit_seconds=1.0))
    assert bar.eta() is None
    bar.done(Cell(1, 8, 0, fit_seconds=8.0))
    assert bar.eta() == pytest.approx(64.0, rel=1e-2)
    # repeats of a size already seen need no power, but still two cells
    bar = _bar([5, 5, 5])
    bar.t0 -= 2.0
    bar.done(Cell(0, 5, 0, fit_seconds=1.0))
    assert bar.eta() is None
    bar.done(Cell(0, 5, 1, fit_seconds=1.0))
    assert bar.eta() == pytest.approx(1.0, rel=1e-2)
    # in a pool of 4 workers, not before each worker has finished a cell (their start-up is in the first ones)
    bar = _bar([6, 6, 6, 6, 6, 6], workers=4)
    bar.t0 -= 4.0
    for r in range(3):
        bar.done(Cell(0, 6, r, fit_seconds=1.0))
        assert bar.eta() is None
    bar.done(Cell(0, 6, 3, fit_seconds=1.0))
    assert bar.eta() == pytest.approx(2.0, rel=1e-2)
