"""Paired per-repeat comparison of sweeps that share their subsets, against numpy on the raw per-fold predictions."""

from __future__ import annotations

import numpy as np
import pytest

import gpviz
from gpviz.comparing import paired_differences, shares_subsets
from tests.sweep.scale import FIT, LOOSE, make_data, matern

SIZES, REPEATS = [5, 8], 4


@pytest.fixture(scope="module")
def sweeps():
    X, Y = make_data(n=14)
    run = lambda f, seed=0: gpviz.cv_sweep(f, X, Y, SIZES, REPEATS, seed=seed, progress=False,  # noqa: E731
                                           fit_kwargs=FIT)
    return {"matern": run(matern), "loose": run(LOOSE), "other subsets": run(LOOSE, seed=5)}


def _per_repeat_mse(sweep) -> dict[tuple[int, int], float]:
    """(size, repeat) -> the mean squared error over the cell's held-out points, from the raw predictions."""
    p = sweep.predictions
    se = (p["y_true"].to_numpy() - p["pred_mean"].to_numpy()) ** 2
    out: dict[tuple[int, int], list[float]] = {}
    for size, rep, e in zip(p["size"], p["i_repeat"], se):
        out.setdefault((int(size), int(rep)), []).append(float(e))
    return {k: float(np.mean(v)) for k, v in out.items()}


def test_sweeps_share_subsets_by_their_own_rows(sweeps):
    a, b, c = sweeps.values()
    assert shares_subsets(a, b) and shares_subsets(b, a)
    assert not shares_subsets(a, c)  # another seed drew other rows
    assert all(np.array_equal(a.subsets[k], b.subsets[k]) for k in a.subsets)


@pytest.mark.parametrize("center", ["geometric mean", "mean"])
def test_paired_ratios_and_differences_by_hand(sweeps, center):
    pair = {k: sweeps[k] for k in ("matern", "loose")}
    got = paired_differences(pair, "mse", center=center)
    a, b = _per_repeat_mse(pair["matern"]), _per_repeat_mse(pair["loose"])
    assert list(got["size"]) == SIZES and set(got["label"]) == {"loose"} and set(got["reference"]) == {"matern"}
    for size, row in zip(SIZES, got.itertuples()):
        va = np.array([a[(size, r)] for r in range(REPEATS)])
        vb = np.array([b[(size, r)] for r in range(REPEATS)])
        per = vb / va if center == "geometric mean" else vb - va
        assert not np.allclose(per, per[0])  # the repeats differ: a constant would prove little
        mid = np.exp(np.log(per).mean()) if center == "geometric mean" else per.mean()
        assert row.statistic == ("ratio" if center == "geometric mean" else "difference")
        assert row.repeats == REPEATS and row.lower == int((vb < va).sum())
        np.testing.assert_allclose([row.center, row.low, row.high], [mid, *np.percentile(per, [10, 90])], rtol=1e-9)


def test_only_sweeps_of_the_same_subsets_are_paired_and_the_page_says_so(sweeps):
    fig = gpviz.compare(sweeps, pull_repeats=0)
    assert list(fig.paired["label"].unique()) == ["loose"]  # "other subsets" drew other rows: not paired
    html = fig.html()
    assert "Paired by repeat" in html and html.count('<table class="gpviz-cmp-paired">') == 1
    row = fig.paired[fig.paired["size"] == SIZES[0]].iloc[0]
    assert f'data-center="{row.center:.6g}"' in html and f"{row.lower} of {REPEATS}</td>" in html
    alone = gpviz.compare({k: sweeps[k] for k in ("matern", "other subsets")}, pull_repeats=0)
    assert alone.paired.empty and "Paired by repeat" not in alone.html()
