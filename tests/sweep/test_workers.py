"""Cells in worker processes, on any executor and on a Dask LocalCluster: the in-process results, bit for bit."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
import threading
import types

import pandas as pd
import pytest
import threadpoolctl
import torch
from botorch.models import SingleTaskGP

from gpviz.errors import GpvizWarning, InputError
from gpviz.sweep.runner import cv_sweep
from gpviz.sweep import workers
from gpviz.sweep.workers import map_tasks
from gpviz.threads import blas_threads
from tests.devices import DEVICES
from tests.sweep.scale import FIT, LOOSE, REPEATS, SIZES, Probe, assert_same_sweep, cell_files

# -- same answer everywhere --------------------------------------------------------------------------------------

# a lambda (it must travel to the workers by value) that fails its cell unless torch runs one thread
ONE_THREAD = lambda tx, ty: SingleTaskGP(tx, ty) if torch.get_num_threads() == 1 else 1 / 0  # noqa: E731


def test_workers_give_the_in_process_results_with_lambda_and_with_priors_factories(reference, data):
    X, Y = data
    lam = ONE_THREAD
    par = cv_sweep(lam, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT, workers=2)
    assert_same_sweep(reference["stgp"], par)
    assert (par.scores["status"] == "ok").all()  # ONE_THREAD fails a cell fitted on more than one thread
    loose = cv_sweep(LOOSE, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT, workers=2)
    assert_same_sweep(reference["loose"], loose)


def test_a_dask_local_cluster_gives_the_in_process_results(reference, data, dask_client):
    X, Y = data
    lam = ONE_THREAD
    on_dask = cv_sweep(lam, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT, executor=dask_client)
    assert_same_sweep(reference["stgp"], on_dask)
    loose = cv_sweep(LOOSE, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT,
                     executor=dask_client.get_executor())
    assert_same_sweep(reference["loose"], loose)
    assert (on_dask.scores["status"] == "ok").all()  # ONE_THREAD fails a cell fitted on more than one thread


def test_a_users_own_process_pool_gives_the_same_results(reference, data):
    X, Y = data
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as ex:
        sw = cv_sweep(SingleTaskGP, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT, executor=ex)
    assert_same_sweep(reference["stgp"], sw)


def test_cells_fit_under_one_torch_and_one_blas_thread_and_leave_the_callers_setting(data):
    X, Y = data
    seen = []

    def spy(tx, ty):
        seen.append((torch.get_num_threads(), blas_threads()))
        return SingleTaskGP(tx, ty)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
            # folds="batched": folds="auto" would build the model once more to choose (under identity_build)
            cv_sweep(spy, X, Y, [4], 1, progress=False, fit_kwargs=FIT, folds="batched")
            assert seen == [(1, 1)] and torch.get_num_threads() == 2 and blas_threads() == 2
            cv_sweep(spy, X, Y, [4], 1, progress=False, fit_kwargs=FIT, threads=None, folds="batched")
            assert seen == [(1, 1), (2, 2)]
    finally:
        torch.set_num_threads(before)


def test_a_factory_that_cannot_be_sent_to_workers_is_an_input_error(data):
    X, Y = data
    lock = threading.Lock()

    def locked(tx, ty):
        with lock:
            return SingleTaskGP(tx, ty)

    with pytest.raises(InputError, match=r"cannot send make_model .*locked.* cannot be pickled .*lock.*workers=1"):
        cv_sweep(locked, X, Y, [4], 1, progress=False, workers=2)
    with pytest.raises(InputError, match="cannot send fit_kwargs"):
        cv_sweep(SingleTaskGP, X, Y, [4], 1, progress=False, workers=2, fit_kwargs={"callback": lock})


@pytest.mark.parametrize("change, message", [
    (dict(workers=0), "workers must be an integer >= 1, got 0"),
    (dict(workers=2.0), "workers must be an integer >= 1, got 2.0"),
    (dict(threads=0), "threads must be an integer >= 1, got 0"),
    (dict(executor="dask"), "executor must be a concurrent.futures.Executor or a dask.distributed.Client, "
                            "got builtins.str"),
    (dict(workers=2, executor=concurrent.futures.ThreadPoolExecutor(1)), "workers= or executor=, not both"),
])
def test_bad_parallel_arguments(change, message, data):
    X, Y = data
    with pytest.raises(InputError, match=message):
        cv_sweep(SingleTaskGP, X, Y, [4], 1, progress=False, **change)


# -- dying workers and interruptions -------------------------------------------------------------------------------

def test_a_killed_worker_fails_its_cell_only_and_a_rerun_refits_only_it(tmp_path, data, reference):
    X, Y = data
    armed = tmp_path / "armed"
    armed.touch()
    with pytest.warns(GpvizWarning, match="n=6, repeat 1 failed .*worker process died"):
        sw = cv_sweep(Probe(kill_size=6, armed=armed), X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT,
                      workers=2, cache_dir=tmp_path / "c")
    # the probe kills every n=6 cell: both repeats fail, the others are the reference's cells
    s = sw.scores
    assert s["status"].tolist() == ["ok", "ok", "failed", "failed"]
    assert s.loc[2, "error"].startswith("its worker process died while fitting it")
    ok = s["status"] == "ok"
    pd.testing.assert_frame_equal(s[ok].drop(columns="fit_seconds"),
                                  reference["stgp"].scores[ok].drop(columns="fit_seconds"), check_exact=True)
    armed.unlink()
    mk = Probe()
    again = cv_sweep(mk, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT, cache_dir=tmp_path / "c")
    assert mk.calls == [6, 6]
    assert_same_sweep(reference["stgp"], again, cached=[True, True, False, False])


def test_an_interrupt_in_workers_keeps_every_finished_cell(tmp_path, data, reference):
    X, Y = data
    cache = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt) as info:
        cv_sweep(Probe(interrupt_size=4, cache=cache, wait_for=2), X, Y, SIZES, REPEATS, seed=1, progress=False,
                 fit_kwargs=FIT, workers=2, cache_dir=cache)
    assert "2 finished cells kept" in info.value.__notes__[0]
    assert sorted(p.name for p in cell_files(cache)) == ["seed1_n6_r0.cell", "seed1_n6_r1.cell"]
    mk = Probe()
    again = cv_sweep(mk, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT, cache_dir=cache)
    assert mk.calls == [4, 4]
    assert_same_sweep(reference["stgp"], again, cached=[False, False, True, True])


def test_one_progress_bar_across_workers(capsys, data):
    X, Y = data
    cv_sweep(SingleTaskGP, X, Y, [4, 5], 1, progress=True, workers=2, fit_kwargs=FIT)
    err = capsys.readouterr().err
    assert "2/2 cells" in err and "ETA" in err


def warns_at_5(tx, ty):
    if tx.shape[0] == 5:
        import warnings

        warnings.warn("a factory's own warning", RuntimeWarning)
    return SingleTaskGP(tx, ty)


def test_warnings_raised_in_workers_reach_the_caller(data):
    X, Y = data
    with pytest.warns(RuntimeWarning, match=r"a factory's own warning \[cell n=5, repeat 0, in a worker\]"):
        cv_sweep(warns_at_5, X, Y, [4, 5], 1, progress=False, workers=2, fit_kwargs=FIT)


# -- executors that run tasks in threads are refused: a cell sets process-wide torch state -------------------------

class _MyThreads(concurrent.futures.ThreadPoolExecutor):
    pass


def _sum(job, a):
    return job + a


@pytest.mark.parametrize("pool", [concurrent.futures.ThreadPoolExecutor, _MyThreads])
def test_a_thread_pool_is_refused_with_what_to_pass_instead(pool, data):
    X, Y = data
    with pool(2) as ex:
        with pytest.raises(InputError, match=r"executor=.*ThreadPoolExecutor.* runs its tasks in threads of this "
                                             r"process.*workers=N.*ProcessPoolExecutor.*threads_per_worker=1"):
            cv_sweep(SingleTaskGP, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT, executor=ex)
        # verdict jobs (sweep_prior_pull, compare) go through map_tasks: refused there too
        with pytest.raises(InputError, match="runs its tasks in threads of this process"):
            map_tasks(_sum, 1, [(2,)], parts={}, caller="test", executor=ex)


def test_a_process_pool_still_runs_map_tasks():
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as ex:
        assert map_tasks(_sum, 1, [(2,), (3,)], parts={}, caller="test", executor=ex) == [3, 4]


@pytest.fixture(scope="module")
def distributed():
    return pytest.importorskip("distributed")


@pytest.mark.parametrize("threads, message", [
    (2, r"the Dask client's workers run more than one thread \(client.nthreads\(\): .*: 2\}\).*threads_per_worker=1"),
    (1, r"the Dask client's workers run in this process \(a LocalCluster with processes=False;.*processes=True"),
])
def test_a_dask_cluster_of_threads_or_in_process_workers_is_refused(threads, message, distributed, data):
    X, Y = data
    with distributed.LocalCluster(n_workers=1, threads_per_worker=threads, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        for executor in (client, client.get_executor()):
            with pytest.raises(InputError, match=message):
                cv_sweep(SingleTaskGP, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT,
                         executor=executor)
        with pytest.raises(InputError, match=message):
            map_tasks(_sum, 1, [(2,)], parts={}, caller="test", executor=client)


# -- worker processes start by spawn when CUDA is in use (a forked child cannot use the parent's CUDA) -------------

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers fork only on Linux")
def test_workers_fork_on_linux_without_cuda_and_spawn_when_cuda_is_initialized(monkeypatch, data):
    X, Y = data
    job = types.SimpleNamespace(X=X, Y=Y)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    assert workers._mp_context(job).get_start_method() == "fork"
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert workers._mp_context(job).get_start_method() == "spawn"


@pytest.mark.parametrize("device", DEVICES)
def test_a_job_holding_cuda_tensors_spawns_its_workers(device, data):
    X, Y = (t.to(device) for t in data)
    assert workers.cuda_in_use(types.SimpleNamespace(X=X, Y=Y)) == (device == "cuda")


def test_spawned_workers_give_the_forked_workers_results(monkeypatch, reference, data):
    X, Y = data
    used = []
    real = workers._mp_context

    def recording(job):
        ctx = real(job)
        used.append(ctx.get_start_method())
        return ctx

    monkeypatch.setattr(workers, "cuda_in_use", lambda job: True)  # as on a machine whose CUDA is initialized
    monkeypatch.setattr(workers, "_mp_context", recording)
    spawned = cv_sweep(ONE_THREAD, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT, workers=2)
    assert used == ["spawn"]
    assert_same_sweep(reference["stgp"], spawned)  # the in-process run, which forked workers match (above)


# -- folds fitted one by one, spread over workers -----------------------------------------------------------------

def fold_with_pid(tx, ty):
    """An ordinary (not batch-aware) model that keeps the id of the process that built it in its state dict."""
    model = SingleTaskGP(tx, ty)
    model.register_buffer("built_in_pid", torch.tensor(os.getpid()))
    return model


def _fold_states(sweep) -> dict[tuple[int, int], list[dict]]:
    """Each cell's fold models (rebuilt from the states the sweep kept) as state dicts."""
    return {(size, r): [m.state_dict() for m in sweep.models(size, r)] for size in sweep.sizes
            for r in range(sweep.repeats)}


def _fold_pids(sweep) -> dict[tuple[int, int], set[int]]:
    return {cell: {int(s["built_in_pid"]) for s in states} for cell, states in _fold_states(sweep).items()}


def _without_pid(sweep) -> dict:
    return {cell: [{k: v for k, v in s.items() if k != "built_in_pid"} for s in states]
            for cell, states in _fold_states(sweep).items()}


@pytest.mark.slow
def test_separate_folds_spread_over_workers_and_dask_give_the_in_process_sweep(data, dask_client):
    X, Y = data
    run = dict(sizes=SIZES, repeats=REPEATS, seed=1, progress=False, fit_kwargs=FIT, folds="separate")
    here = cv_sweep(fold_with_pid, X, Y, **run)
    assert here.mode == "separate" and (here.scores["status"] == "ok").all()
    assert set().union(*_fold_pids(here).values()) == {os.getpid()}
    for sweep in (cv_sweep(fold_with_pid, X, Y, workers=2, **run),
                  cv_sweep(fold_with_pid, X, Y, executor=dask_client, **run)):
        assert_same_sweep(here, sweep)  # scores, parameters and predictions, bit for bit
        mine, theirs = _without_pid(here), _without_pid(sweep)
        assert mine.keys() == theirs.keys()
        for cell in mine:
            assert len(mine[cell]) == len(theirs[cell]) == cell[0]
            for a, b in zip(mine[cell], theirs[cell]):
                assert all(torch.equal(a[k], b[k]) for k in a)
        pids = _fold_pids(sweep)
        assert os.getpid() not in set().union(*pids.values())
        # a cell's folds were fitted in more than one worker process: the cell was spread, not just the cells
        assert any(len(p) > 1 for p in pids.values()), pids


def test_pieces_cover_every_fold_once_about_two_per_worker():
    plan = [(0, 5, 0), (1, 9, 1)]
    assert workers.pieces(plan, "batched", 4) == [(0, 5, 0, 0, 0), (1, 9, 1, 0, 0)]
    assert workers.pieces(plan, "separate", 1) == [(0, 5, 0, 0, 0), (1, 9, 1, 0, 0)]
    split = workers.pieces(plan, "separate", 2)  # about 2 pieces per worker
    for i_config, size, i_repeat in plan:
        spans = [(lo, hi) for c, s, r, lo, hi in split if (c, r) == (i_config, i_repeat)]
        assert [i for lo, hi in spans for i in range(lo, hi)] == list(range(size))
        assert len(spans) == 3 and max(hi - lo for lo, hi in spans) == -(-size // 4)  # 5: 2+2+1, 9: 3+3+3


@pytest.mark.slow
def test_a_worker_killed_in_a_piece_of_separate_folds_fails_that_cell_only(tmp_path, data):
    X, Y = data
    run = dict(sizes=SIZES, repeats=REPEATS, seed=1, progress=False, fit_kwargs=FIT, folds="separate")
    here = cv_sweep(SingleTaskGP, X, Y, **run)
    armed = tmp_path / "armed"
    armed.touch()
    # a fold of an n=6 cell is built on 5 points: every piece of both n=6 cells kills its worker
    with pytest.warns(GpvizWarning, match="n=6, repeat 1 failed .*worker process died"):
        sw = cv_sweep(Probe(kill_size=5, armed=armed), X, Y, workers=2, **run)
    s = sw.scores
    assert s["status"].tolist() == ["ok", "ok", "failed", "failed"]
    assert s.loc[2, "error"].startswith("its worker process died while fitting it")
    ok = s["status"] == "ok"
    pd.testing.assert_frame_equal(s[ok].drop(columns="fit_seconds"), here.scores[ok].drop(columns="fit_seconds"),
                                  check_exact=True)
    pd.testing.assert_frame_equal(sw.parameters, here.parameters[here.parameters["size"] == 4].reset_index(drop=True),
                                  check_exact=True)
