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
