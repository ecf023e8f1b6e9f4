"""Tests of gpviz.sweep: real leave-one-out sweeps with BoTorch fits, compared with batch_cross_validation."""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.cross_validation import batch_cross_validation, gen_loo_cv_folds
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood
from matplotlib.figure import Figure

import gpviz
from gpviz.charts import compare_scaling_curves, figure_to_png
from gpviz.errors import GpvizWarning, InputError
from gpviz.sweep.cells import DEFAULT_METRICS, nlpd, subset_indices
from gpviz.sweep.identity import building_for_identity
from gpviz.sweep.result import Sweep
from gpviz.sweep.runner import cv_sweep

SIZES, REPEATS, N, D = (8, 16, 24), 3, 40, 2
HEAD = ["i_config", "size", "i_repeat"]
SCORE_COLUMNS = HEAD + ["mse", "mae", "nlpd", "fit_seconds", "evaluations", "status", "error", "cached"]


def make_data(n=N, d=D, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1, keepdim=True) + 0.05 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def sweep(data) -> Sweep:
    X, Y = data
    return cv_sweep(SingleTaskGP, X, Y, sizes=list(SIZES), repeats=REPEATS, seed=0, progress=False)


def test_scores_have_documented_columns_and_a_row_per_cell(sweep):
    s = sweep.scores
    assert list(s.columns) == SCORE_COLUMNS
    assert len(s) == len(SIZES) * REPEATS
    assert s[HEAD].values.tolist() == [[i, n, r] for i, n in enumerate(SIZES) for r in range(REPEATS)]
    assert (s["status"] == "ok").all(), s["error"].tolist()
    assert (s["error"] == "").all() and not s["cached"].any()
    assert (s["evaluations"] > 1).all() and (s["fit_seconds"] > 0).all()
    assert (s[["mse", "mae"]] > 0).all().all() and np.isfinite(s["nlpd"]).all()
    assert sweep.metrics == ("mse", "mae", "nlpd")


def test_parameters_have_a_row_per_fold_and_a_column_per_key(sweep):
    p = sweep.parameters
    keys = list(gpviz.model_expr(sweep.model).keys)
    assert list(p.columns) == HEAD + ["i_model"] + keys
    assert len(keys) == D + 2  # lengthscale per input, noise, constant mean
    assert len(p) == REPEATS * sum(SIZES)
    for (i_config, size, i_repeat), g in p.groupby(HEAD):
        assert SIZES[i_config] == size and g["i_model"].tolist() == list(range(size))
    assert all(p[c].dtype == np.int32 for c in HEAD + ["i_model"])
    assert np.isfinite(p[keys].to_numpy()).all()
    assert (p[[k for k in keys if "lengthscale" in k or "noise" in k]] > 0).all().all()


def test_scores_are_the_metrics_of_the_held_out_predictions(sweep, data):
    X, Y = data
    pr = sweep.predictions
    assert len(pr) == REPEATS * sum(SIZES)
    for (i_config, i_repeat), rows in sweep.subsets.items():
        cell = pr[(pr.i_config == i_config) & (pr.i_repeat == i_repeat)]
        assert cell["index"].tolist() == rows.tolist()  # fold i holds out the i-th row of the subset
        np.testing.assert_array_equal(cell["y_true"], Y[rows, 0].numpy())
        score = sweep.scores[(sweep.scores.i_config == i_config) & (sweep.scores.i_repeat == i_repeat)].iloc[0]
        err = cell["y_true"] - cell["pred_mean"]
        assert score["mse"] == pytest.approx(float((err ** 2).mean()), rel=1e-12)
        assert score["mae"] == pytest.approx(float(err.abs().mean()), rel=1e-12)
        var = cell["pred_var"]
        expected_nlpd = float((0.5 * np.log(2 * math.pi * var) + err ** 2 / (2 * var)).mean())
        assert score["nlpd"] == pytest.approx(expected_nlpd, rel=1e-12)


def test_held_out_predictions_equal_batch_cross_validation(sweep, data):
    X, Y = data
    for i_config, i_repeat in [(0, 0), (2, 1)]:
        rows = sweep.subsets[(i_config, i_repeat)]
        folds = gen_loo_cv_folds(X[rows], Y[rows])
        ref = batch_cross_validation(SingleTaskGP, ExactMarginalLogLikelihood, folds, observation_noise=True)
        pr = sweep.predictions
        cell = pr[(pr.i_config == i_config) & (pr.i_repeat == i_repeat)]
        np.testing.assert_allclose(cell["pred_mean"], ref.posterior.mean.detach().reshape(-1).numpy(), rtol=1e-7,
                                   atol=1e-9)
        np.testing.assert_allclose(cell["pred_var"], ref.posterior.variance.detach().reshape(-1).numpy(), rtol=1e-7,
                                   atol=1e-12)
        np.testing.assert_array_equal(cell["y_true"], ref.observed_Y.reshape(-1).numpy())
        p = sweep.parameters
        mine = p[(p.i_config == i_config) & (p.i_repeat == i_repeat)].drop(columns=HEAD).reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, gpviz.parameters(ref.model), rtol=1e-7)


def test_same_seed_reproduces_cells_and_another_seed_draws_other_subsets(sweep, data):
    X, Y = data
    # a cell depends on (seed, size, repeat) only: a sweep of one size repeats the big sweep's cells
    again = cv_sweep(SingleTaskGP, X, Y, sizes=[8], repeats=2, seed=0, progress=False)
    for r in range(2):
        np.testing.assert_array_equal(again.subsets[(0, r)], sweep.subsets[(0, r)])
    cols = ["mse", "mae", "nlpd", "evaluations"]
    first = sweep.scores[(sweep.scores["size"] == 8) & (sweep.scores["i_repeat"] < 2)]
    pd.testing.assert_frame_equal(again.scores[HEAD + cols], first[HEAD + cols])
    p = sweep.parameters
    pd.testing.assert_frame_equal(again.parameters, p[(p["size"] == 8) & (p["i_repeat"] < 2)].reset_index(drop=True))
    other = cv_sweep(SingleTaskGP, X, Y, sizes=[8], repeats=1, seed=1, progress=False)
    assert other.subsets[(0, 0)].tolist() != sweep.subsets[(0, 0)].tolist()
    assert other.scores["mse"][0] != sweep.scores["mse"][0]
    assert not np.array_equal(other.parameters.iloc[:, 4:].to_numpy(), p[p["size"] == 8].iloc[:8, 4:].to_numpy())
    # distinct subsets across repeats, each sorted and without repeats
    for rows in sweep.subsets.values():
        assert len(set(rows.tolist())) == len(rows) and rows.tolist() == sorted(rows.tolist())
    assert sweep.subsets[(0, 0)].tolist() != sweep.subsets[(0, 1)].tolist()
    np.testing.assert_array_equal(subset_indices(N, 16, 2, 0), sweep.subsets[(1, 2)])


def test_plot_draws_percentile_band_and_geometric_mean(sweep, artifacts):
    fig = sweep.plot()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    summary = sweep.summary("mse")
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_xdata(), SIZES)
    for size, g in sweep.scores.groupby("size"):
        v = g["mse"].to_numpy()
        row = summary[summary["size"] == size].iloc[0]
        assert row["center"] == pytest.approx(float(np.exp(np.log(v).mean())))
        assert row["low"] == pytest.approx(float(np.percentile(v, 10)))
        assert row["high"] == pytest.approx(float(np.percentile(v, 90)))
    np.testing.assert_allclose(line.get_ydata(), summary["center"])
    (artifacts / "sweep_scaling_curve.png").write_bytes(fig._repr_png_())
    nl = sweep.plot("nlpd")
    # values <= 0 (negative NLPD) cannot go on a log axis: linear then, log otherwise
    nonpositive = bool((sweep.scores["nlpd"] <= 0).any())
    assert nl.axes[0].get_yscale() == ("linear" if nonpositive else "log")
    with pytest.raises(InputError, match="unknown metric 'r2'"):
        sweep.plot("r2")


def test_render_frame_numbers_dots_per_band(sweep):
    f = sweep.frame()
    assert list(f.columns[:2]) == ["i_config", "i_model"] and f["i_config"].dtype == np.int32
    assert f.groupby("i_config").size().tolist() == [REPEATS * s for s in SIZES]
    assert f[f.i_config == 1]["i_model"].tolist() == list(range(REPEATS * 16))
    one = sweep.frame(one_fold_per_repeat=True)
    assert one.groupby("i_config").size().tolist() == [REPEATS] * len(SIZES)
    p = sweep.parameters
    first = p[p.i_model == 0].drop(columns=HEAD + ["i_model"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(one.drop(columns=["i_config", "i_model"]), first)


class CountingModel:
    """``make_model`` that counts its calls (one per fit), optionally failing or interrupting."""

    def __init__(self, fail_size=None, interrupt_on_call=None):
        self.calls, self.fail_size, self.interrupt_on_call = [], fail_size, interrupt_on_call

    def __call__(self, train_X, train_Y):
        if building_for_identity():  # the cache's build to learn which model a cell fits: not a fit
            return SingleTaskGP(train_X, train_Y)
        n = train_X.shape[0]  # folds == points in the subset
        self.calls.append(n)
        if self.interrupt_on_call is not None and len(self.calls) == self.interrupt_on_call:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a cell
        if n == self.fail_size:
            raise RuntimeError(f"no model for n={n}")
        return SingleTaskGP(train_X, train_Y)


def test_failed_cell_is_recorded_and_the_sweep_goes_on():
    X, Y = make_data(12)
    mk = CountingModel(fail_size=6)
    with pytest.warns(GpvizWarning, match=r"n=6, repeat \d failed"):
        sw = cv_sweep(mk, X, Y, sizes=[6, 5], repeats=2, seed=3, progress=False,
                      metrics={"max_abs": lambda y, m, v: float(np.max(np.abs(y - m)))})
    s = sw.scores
    assert sw.sizes == (5, 6) and mk.calls == [5, 5, 6, 6]
    assert s["status"].tolist() == ["ok", "ok", "failed", "failed"]
    assert s.loc[2, "error"] == "RuntimeError: no model for n=6"
    assert s.loc[s.status == "failed", ["mse", "max_abs"]].isna().all().all()
    assert (s.loc[s.status == "ok", "max_abs"] >= np.sqrt(s.loc[s.status == "ok", "mse"]) - 1e-12).all()
    assert list(s.columns) == HEAD + ["mse", "mae", "nlpd", "max_abs"] + SCORE_COLUMNS[-5:]
    assert set(sw.parameters["size"]) == {5} and len(sw.parameters) == 10
    assert set(sw.predictions["size"]) == {5}
    fig = sw.plot()
    assert any("2 failed" in t.get_text() for t in fig.axes[0].texts)
    y = fig.axes[0].lines[0].get_ydata()
    assert np.isfinite(y[0]) and np.isnan(y[1])  # the curve breaks at the failed size, no bridging line
    page = sw.render()  # the failed size keeps its (empty) labelled band
    assert page.spec["configs"]["labels"] == ["n = 5", "n = 6"] and page.spec["n_rows"] == 10


def test_metric_that_raises_marks_its_cell_failed():
    X, Y = make_data(8)

    def bad(y, m, v):
        raise ZeroDivisionError("boom")

    sw = cv_sweep(SingleTaskGP, X, Y, sizes=[4], repeats=1, metrics={"bad": bad}, progress=False)
    assert sw.scores.loc[0, "status"] == "failed"
    assert sw.scores.loc[0, "error"] == "metric 'bad' raised ZeroDivisionError: boom"
    assert math.isfinite(sw.scores.loc[0, "mse"])


def test_interrupted_sweep_resumes_from_cache_without_refitting(tmp_path):
    X, Y = make_data(12)
    cache = tmp_path / "cells"
    first = CountingModel(interrupt_on_call=3)
    with pytest.raises(KeyboardInterrupt) as info:
        cv_sweep(first, X, Y, sizes=[5, 6], repeats=2, seed=1, cache_dir=cache, progress=False)
    if hasattr(info.value, "__notes__"):
        assert "interrupted after 2 of 4 cells" in info.value.__notes__[0] and "rerun" in info.value.__notes__[0]
    assert first.calls == [5, 5, 6]
    (namespace,) = cache.iterdir()  # one sweep: one namespace, its manifest and the two finished cells
    assert sorted(p.name for p in namespace.iterdir()) == ["manifest.json", "seed1_n5_r0.cell", "seed1_n5_r1.cell"]

    second = CountingModel()
    resumed = cv_sweep(second, X, Y, sizes=[5, 6], repeats=2, seed=1, cache_dir=cache, progress=False)
    assert second.calls == [6, 6]  # the two finished cells were not refitted
    assert resumed.scores["cached"].tolist() == [True, True, False, False]
    assert (resumed.scores["status"] == "ok").all() and len(resumed.parameters) == 22

    third = CountingModel()
    again = cv_sweep(third, X, Y, sizes=[5, 6], repeats=2, seed=1, cache_dir=cache, progress=False)
    assert third.calls == [] and again.scores["cached"].all()
    # cells read back from disk are bit-for-bit the cells that were fitted
    pd.testing.assert_frame_equal(again.parameters, resumed.parameters, check_exact=True)
    pd.testing.assert_frame_equal(again.predictions, resumed.predictions, check_exact=True)
    pd.testing.assert_frame_equal(again.scores.drop(columns="cached"), resumed.scores.drop(columns="cached"),
                                  check_exact=True)
    # a larger sweep reuses the cached cells: only the new repeat is fitted
    fourth = CountingModel()
    cv_sweep(fourth, X, Y, sizes=[5, 6], repeats=3, seed=1, cache_dir=cache, progress=False)
    assert fourth.calls == [5, 6]
    assert not [p for p in cache.rglob(".*")]  # no temporary leftovers

    X2 = X.clone()
    X2[0, 0] += 0.5  # other data: another sweep, in its own namespace of the same folder
    other = CountingModel()
    cv_sweep(other, X2, Y, sizes=[5], repeats=1, seed=1, cache_dir=cache, progress=False)
    assert other.calls == [5] and len(list(cache.iterdir())) == 2


def test_failed_cells_are_not_cached_and_are_retried(tmp_path):
    X, Y = make_data(10)
    with pytest.warns(GpvizWarning):
        cv_sweep(CountingModel(fail_size=4), X, Y, sizes=[4], repeats=1, cache_dir=tmp_path, progress=False)
    retry = CountingModel()
    sw = cv_sweep(retry, X, Y, sizes=[4], repeats=1, cache_dir=tmp_path, progress=False)
    assert retry.calls == [4] and sw.scores["status"].tolist() == ["ok"]


def test_progress_bar_counts_cells(capsys):
    X, Y = make_data(8)
    cv_sweep(SingleTaskGP, X, Y, sizes=[3], repeats=1, progress=True)
    err = capsys.readouterr().err
    assert "cv_sweep" in err and "1/1" in err


BAD_ARGUMENTS = [
    (dict(sizes=[8, 50]), r"dataset size 50 is larger than the data \(40 rows\)"),
    (dict(sizes=[2, 8]), "dataset size 2 is too small"),
    (dict(sizes=[]), "at least one dataset size"),
    (dict(sizes=[8, 8]), "sizes must be distinct"),
    (dict(sizes=[8.5]), "sizes must be integers, got 8.5"),
    (dict(repeats=0), "repeats must be an integer >= 1, got 0"),
    (dict(repeats=2.5), "repeats must be an integer >= 1, got 2.5"),
    (dict(repeats=True), "repeats must be an integer >= 1, got True"),
    (dict(seed=-1), "seed must be an integer >= 0, got -1"),
    (dict(Y=torch.zeros(39, 1)), r"same number of rows: X has shape \[40, 2\], Y has shape \[39, 1\]"),
    (dict(X=torch.zeros(40)), r"X must be 2-D \(n x d\), got shape \[40\]"),
    (dict(Y=torch.zeros(40, 1).index_fill_(0, torch.tensor([7]), float("nan"))),
     "Y must be finite: 1 non-finite value.*row 7"),
    (dict(X=torch.zeros(40, 2).index_fill_(0, torch.tensor([3]), float("inf"))),
     "X must be finite: 2 non-finite value.*row 3"),
    (dict(make_model="SingleTaskGP"), "make_model must be callable"),
    (dict(metrics={"r2": 3}), "metric 'r2' must be callable"),
    (dict(metrics={"status": nlpd}), "metric name 'status'"),
    (dict(cache_dir=5), "cache_dir must be a path, got int"),
    (dict(order="sideways"), r"unknown order: 'sideways' \(must be one of \['random', 'trials'\]\)"),
    (dict(order="trials", repeats=2), "order='trials' takes the first n rows.*use repeats=1, got repeats=2"),
    (dict(sizes=None), r"cv_sweep needs sizes=\[...\]"),
    (dict(Y=None), "needs the data X and Y"),
    (dict(metric="loss"), "metric= names the metric of an Ax experiment"),
]


@pytest.mark.parametrize("change, message", BAD_ARGUMENTS)
def test_bad_arguments_raise_typed_errors(change, message):
    X, Y = make_data()
    args = dict(make_model=SingleTaskGP, X=X, Y=Y, sizes=[8], repeats=1, progress=False)
    args.update(change)
    with pytest.raises(InputError, match=message):
        cv_sweep(**args)
    assert issubclass(InputError, gpviz.GpvizError)


def test_default_metrics_are_pluggable_functions():
    y, m, v = np.array([1.0, 2.0]), np.array([1.5, 1.0]), np.array([0.25, 1.0])
    assert DEFAULT_METRICS["mse"](y, m, v) == pytest.approx((0.25 + 1.0) / 2)
    assert DEFAULT_METRICS["mae"](y, m, v) == pytest.approx(0.75)
    ref = np.mean([-np.log(np.exp(-(yy - mm) ** 2 / (2 * vv)) / np.sqrt(2 * np.pi * vv))
                   for yy, mm, vv in zip(y, m, v)])
    assert DEFAULT_METRICS["nlpd"](y, m, v) == pytest.approx(ref)


def test_public_names():
    assert gpviz.cv_sweep is cv_sweep and gpviz.Sweep is Sweep
    assert "cv_sweep" in gpviz.__all__ and "Sweep" in gpviz.__all__


INTERRUPTED_RUN = """
import signal, sys, torch
# Ctrl-C as in a terminal: a process started from a non-interactive shell's background job inherits SIGINT
# ignored, and Python then raises no KeyboardInterrupt
signal.signal(signal.SIGINT, signal.default_int_handler)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
from botorch.models import SingleTaskGP
import gpviz
g = torch.Generator().manual_seed(0)
X = torch.rand(12, 2, generator=g, dtype=torch.float64)
Y = torch.sin(5 * X).sum(-1, keepdim=True) + 0.05 * torch.randn(12, 1, generator=g, dtype=torch.float64)
import time, gpviz.sweep.cells as cells
real_fit = cells.fit_gpytorch_mll
def slow_after_six(mll, **kwargs):
    # the 6 cells of sizes 4-6 fit at once; those of sizes 7 and 8 wait, so Ctrl-C reliably comes while they
    # are unfinished (without the wait they could all finish between the test seeing 6 cells and its signal)
    if mll.model.train_inputs[0].shape[0] >= 7:
        time.sleep(3)
    return real_fit(mll, **kwargs)
cells.fit_gpytorch_mll = slow_after_six  # module level: worker processes that import this script get it too
print("start", flush=True)
if __name__ == "__main__":  # worker processes may import this script
    gpviz.cv_sweep(SingleTaskGP, X, Y, sizes=[4, 5, 6, 7, 8], repeats=2, seed=0, cache_dir=sys.argv[1],
                   progress=False, workers=int(sys.argv[2]))
    print("finished", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_in_a_real_process_loses_no_finished_cell(tmp_path, monkeypatch, workers):
    import signal
    import subprocess
    import sys
    import time

    cache = tmp_path / "cells"
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED_RUN, str(cache), str(workers)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if cache.exists() and len(list(cache.glob("sweep-*/seed0_*.cell"))) >= 6:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        # what Ctrl-C sends (a terminal sends it to the whole process group: workers ignore it, the caller
        # cancels the sweep and stops them)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "finished" not in out and "KeyboardInterrupt" in err, (out, err[-3000:])
    assert re.search(r"\d+ finished cells? kept in", err), err[-3000:]
    done = sorted(p.name[: -len(".cell")] for p in cache.glob("sweep-*/seed0_*.cell"))
    assert 6 <= len(done) < 10
    assert not [p for p in cache.rglob(".*")]  # no half-written cell

    # the same data (make_data(12)) and model: the rerun fits only the cells that had not finished
    import gpviz.sweep.cells as sweep_module  # where run_cell looks fit_gpytorch_mll up

    fits = []
    real_fit = sweep_module.fit_gpytorch_mll

    def counting_fit(mll, **kwargs):
        fits.append(mll.model.train_inputs[0].shape[0])
        return real_fit(mll, **kwargs)

    monkeypatch.setattr(sweep_module, "fit_gpytorch_mll", counting_fit)
    X, Y = make_data(12)
    sw = cv_sweep(SingleTaskGP, X, Y, sizes=[4, 5, 6, 7, 8], repeats=2, seed=0, cache_dir=cache,
                  progress=False)
    assert len(fits) == 10 - len(done) and int(sw.scores["cached"].sum()) == len(done)
    cached = sw.scores[sw.scores["cached"]]
    assert sorted(f"seed0_n{n}_r{r}" for n, r in zip(cached["size"], cached["i_repeat"])) == done
    assert (sw.scores["status"] == "ok").all()


def test_all_failed_sweep_renders_as_a_scores_table_and_render_says_why():
    X, Y = make_data(10)
    with pytest.warns(GpvizWarning):
        sw = cv_sweep(CountingModel(fail_size=4), X, Y, sizes=[4], repeats=2, progress=False)
    assert sw.parameters.empty and list(sw.parameters.columns) == HEAD + ["i_model"]
    with pytest.raises(InputError, match="every cell failed.*no model for n=4"):
        sw.render()
    html = sw._repr_html_()
    assert "not drawn" in html and "RuntimeError: no model for n=4" in html and "<table" in html


def test_dataframe_inputs_name_the_features():
    X, Y = make_data(10)
    frame = pd.DataFrame(X.numpy(), columns=["temperature", "<b>pressure</b>"])
    sw = cv_sweep(SingleTaskGP, frame, pd.Series(Y[:, 0].numpy()), sizes=[4], repeats=1, progress=False)
    assert sw.feature_names == ["temperature", "<b>pressure</b>"]
    html = sw.render().html()
    assert "temperature" in html and "&lt;b&gt;pressure&lt;/b&gt;" in html and "<b>pressure</b>" not in html


def test_cells_fit_under_their_own_seed_and_leave_the_global_generator_alone():
    """A cell's fit may draw from torch's generator (BoTorch's retries); it is seeded per cell."""
    from botorch.models import SingleTaskGP

    from gpviz.sweep.cells import cell_seed

    g = torch.Generator().manual_seed(5)
    X = torch.rand(10, 2, generator=g, dtype=torch.float64)
    Y = X.sum(-1, keepdim=True)
    draws = []

    def make_model(train_X, train_Y):
        draws.append(torch.rand(1).item())  # what a retry's prior sample would see
        return SingleTaskGP(train_X, train_Y)

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    # folds="batched": folds="auto" builds the model once more (a draw too) to choose how folds are fitted
    gpviz.cv_sweep(make_model, X, Y, sizes=[5], repeats=2, seed=0, progress=False, folds="batched")
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(999)  # a different global state must not change the cells
    gpviz.cv_sweep(make_model, X, Y, sizes=[5], repeats=2, seed=0, progress=False, folds="batched")
    assert draws[:2] == draws[2:] and draws[0] != draws[1]
    assert cell_seed(0, 5, 0) != cell_seed(0, 5, 1) != cell_seed(1, 5, 1)


def test_order_trials_takes_the_first_rows_and_keeps_its_own_cache_namespace(tmp_path):
    """order="trials": size n is the first n rows (time order), in every cell path and in its own namespace."""
    from gpviz.sweep.cache import sweep_identity

    X, Y = make_data(10)
    cache = tmp_path / "cache"
    rand = cv_sweep(SingleTaskGP, X, Y, sizes=[4, 6], repeats=1, cache_dir=cache, progress=False)
    first = cv_sweep(SingleTaskGP, X, Y, sizes=[4, 6], repeats=1, cache_dir=cache, progress=False, order="trials")
    assert first.order == "trials" and rand.order == "random" and first.trial_indices is None
    assert not first.scores["cached"].any()  # the random sweep's cells are other subsets
    assert len(list(cache.glob("sweep-*/manifest.json"))) == 2
    for i_config, n in enumerate((4, 6)):
        assert first.subsets[(i_config, 0)].tolist() == list(range(n))
        held = first.predictions[first.predictions["size"] == n]["index"]
        assert sorted(held.tolist()) == list(range(n))  # the fitted cell held out exactly the first n rows
        model = first.models(n, 0)
        assert torch.equal(model.train_inputs[0][0], X[1:n])  # fold 0 trains on rows 1..n-1
    assert rand.subsets[(0, 0)].tolist() != list(range(4))
    again = cv_sweep(SingleTaskGP, X, Y, sizes=[4, 6], repeats=1, cache_dir=cache, progress=False, order="trials")
    assert again.scores["cached"].all()
    # a random sweep's identity is what it was before orders existed: its old cache namespaces stay valid
    ident = sweep_identity(X, Y, SingleTaskGP, None, ExactMarginalLogLikelihood, True)
    assert "order" not in ident and ident == sweep_identity(X, Y, SingleTaskGP, None, ExactMarginalLogLikelihood,
                                                            True, "random")
    assert sweep_identity(X, Y, SingleTaskGP, None, ExactMarginalLogLikelihood, True, "trials")["order"] == "trials"


def test_cache_tells_apart_same_named_factories_and_fit_settings(tmp_path):
    """Two lambdas share a __qualname__; their cells must not be served for each other."""
    from gpytorch.kernels import MaternKernel, ScaleKernel

    from gpviz.sweep.cache import factory_fingerprint

    X, Y = make_data(10)
    rbf = lambda tx, ty: SingleTaskGP(tx, ty)  # noqa: E731
    matern = lambda tx, ty: SingleTaskGP(tx, ty, covar_module=ScaleKernel(MaternKernel(  # noqa: E731
        nu=0.5, batch_shape=tx.shape[:-2]), batch_shape=tx.shape[:-2]))
    assert rbf.__qualname__ == matern.__qualname__
    assert factory_fingerprint(rbf) != factory_fingerprint(matern)
    assert factory_fingerprint(rbf) == factory_fingerprint(lambda tx, ty: SingleTaskGP(tx, ty))
    cache = tmp_path / "cache"
    cv_sweep(rbf, X, Y, sizes=[5], repeats=1, cache_dir=cache, progress=False)
    other = cv_sweep(matern, X, Y, sizes=[5], repeats=1, cache_dir=cache, progress=False)
    capped = cv_sweep(rbf, X, Y, sizes=[5], repeats=1, cache_dir=cache, progress=False,
                      fit_kwargs={"optimizer_kwargs": {"options": {"maxiter": 1}}})
    assert not other.scores["cached"].any() and not capped.scores["cached"].any()
    assert len(list(cache.glob("sweep-*/manifest.json"))) == 3  # three sweeps, three namespaces
    again = cv_sweep(rbf, X, Y, sizes=[5], repeats=1, cache_dir=cache, progress=False)
    assert again.scores["cached"].all()


def test_with_priors_factories_differ_past_printed_precision():
    from gpytorch.priors import GammaPrior

    from gpviz.sweep.cache import factory_fingerprint

    a = gpviz.with_priors(SingleTaskGP, lengthscale=GammaPrior(3.0, 6.0))
    b = gpviz.with_priors(SingleTaskGP, lengthscale=GammaPrior(3.000001, 6.0))
    assert a.describe() == b.describe()
    assert factory_fingerprint(a) != factory_fingerprint(b)


def test_a_cache_write_failure_keeps_the_cells_and_goes_on(tmp_path, monkeypatch):
    from gpviz.sweep.cache import CellCache

    def full_disk(self, seed, cell):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(CellCache, "store", full_disk)
    X, Y = make_data(10)
    with pytest.warns(GpvizWarning, match="could not cache the cell n=5.*No space left"):
        sw = cv_sweep(SingleTaskGP, X, Y, sizes=[5, 6], repeats=1, cache_dir=tmp_path / "c", progress=False)
    assert list(sw.scores["status"]) == ["ok", "ok"] and len(sw.parameters) == 11


# --------------------------------------------------------------------------- #
# Typed errors at the door: factories, labels                               #
# --------------------------------------------------------------------------- #


def _x(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_a_model_instead_of_a_factory_is_refused_before_fitting():
    X, Y = _x(10, 2), _x(10, 1)
    model = SingleTaskGP(X, Y)
    with pytest.raises(InputError, match="got a SingleTaskGP instance"):
        gpviz.cv_sweep(model, X, Y, sizes=[5], repeats=1)
    with pytest.raises(InputError, match="got a SingleTaskGP instance"):
        gpviz.compare_fit_modes(model, X, Y)


@pytest.mark.parametrize("label", ["cost $5 and $6", "lr_max \\alpha $x$", "back\\slash"])
def test_labels_reach_the_charts_literally(label):
    from gpviz.charts import mpl_text

    X = _x(8, 2)
    Y = torch.sin(5 * X[:, :1])
    sweep = gpviz.cv_sweep(lambda x, y: SingleTaskGP(x, y), X, Y, sizes=[4], repeats=1, seed=0)
    fig = compare_scaling_curves({label: sweep.scores, "plain": sweep.scores}, title=f"mse {label}")
    assert figure_to_png(fig)[:4] == b"\x89PNG"  # drawn, no mathtext error
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert mpl_text(label) in legend
    page = gpviz.compare({label: sweep, "plain": sweep}).html()
    assert "<img" in page
