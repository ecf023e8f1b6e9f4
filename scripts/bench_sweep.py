"""Benchmark: wall time of gpviz.cv_sweep vs calling BoTorch's batch_cross_validation on the same cells.

Both sides fit the same leave-one-out folds of the same random subsets (sizes x repeats)
with a default SingleTaskGP; the sweep adds subset draws, evaluation counting, metrics,
parameter frames (and, with --cache, writing every cell to disk). Each cell is run by both
sides back to back, alternating who goes first, so drift in machine load hits both alike.
Each side runs every cell --reps times and its fastest run counts.
Every sweep call holds a single cell, so its fixed per-call costs (argument checks, progress
bar, assembling frames) are paid once per cell: a conservative measure of a real sweep.

Then, side by side in the same run, the parallel paths on one whole sweep (--par-sizes x
--par-repeats cells): in this process (workers=1), workers=2, one worker process through the
executor path (the per-cell cost of sending cells out and back), and a Dask LocalCluster of 2
worker processes (started for each of its rounds and warmed up outside the timing, as a user's cluster
would be; none is alive while the other modes run, since its scheduler shares this process).
The modes run in turns (--par-rounds rounds, the order rotating each round); each mode's fastest
round counts. Printed: workers=2 / workers=1 (target <= 0.6 on an idle 2-core machine), the
executor path's per-cell overhead over in-process (target <= 5%), Dask(2) / workers=1, and the
load average before and after.

Then, side by side in the same run, how a cell is fitted (--mode-sizes, default 20 40 80, one
repeat each, a SingleTaskGP on --mode-points rows): refit=False (one model per cell, its folds in
closed form) against refit=True with batched folds and with folds fitted one by one
(folds="separate"), in this process and spread over --mode-workers worker processes (each cell's
folds in pieces, about two per worker); the four run back to back per size, the order rotating per
round (--mode-rounds, the fastest counts). Printed per size: the refit=False / refit=True (batched)
wall ratio, the batched / separate wall ratio and separate (workers=N) / separate (in process),
with the load average before and after.

Usage:
    .venv/bin/python scripts/bench_sweep.py [--sizes 8 16 24] [--repeats 3] [--reps 3] [--threads 1] [--cache]
                                            [--par-sizes 12 20 28] [--par-repeats 4] [--par-rounds 2]
                                            [--mode-sizes 20 40 80] [--mode-rounds 1] [--mode-workers 2]
                                            [--only direct|parallel|modes]

Prints one line per run and the ratio sweep / direct (the target is <= 1.10), then the parallel ratios,
then the fit modes' ratios.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import tempfile
import time
import warnings

import torch
from botorch.cross_validation import batch_cross_validation, gen_loo_cv_folds
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.sweep.cells import subset_indices


def make_data(n: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1, keepdim=True) + 0.05 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, Y


def run_direct(X, Y, size, seed) -> tuple[float, float]:
    """batch_cross_validation on one cell, as a user would call it by hand: (wall, CPU) seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    rows = torch.as_tensor(subset_indices(X.shape[0], size, 0, seed))
    folds = gen_loo_cv_folds(X[rows], Y[rows])
    res = batch_cross_validation(SingleTaskGP, ExactMarginalLogLikelihood, folds, observation_noise=True)
    with torch.no_grad():
        res.posterior.mean, res.posterior.variance  # noqa: B018 - the predictions a user reads
    return time.perf_counter() - t0, time.process_time() - c0


def run_sweep(X, Y, size, seed, cache_dir) -> tuple[float, float, float]:
    """cv_sweep on the same cell: (wall, CPU, seconds spent outside make_model + fit) ."""
    t0, c0 = time.perf_counter(), time.process_time()
    sw = gpviz.cv_sweep(SingleTaskGP, X, Y, [size], 1, seed=seed, cache_dir=cache_dir, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert (sw.scores["status"] == "ok").all(), sw.scores["error"].tolist()
    return wall, cpu, wall - float(sw.scores["fit_seconds"].sum())


def run_parallel(args, X, Y) -> None:
    """The three parallel ratios, measured side by side on one sweep."""
    import distributed

    sizes, repeats = args.par_sizes, args.par_repeats
    fit = {"optimizer_kwargs": {"options": {"maxiter": args.maxiter}}} if args.maxiter else None
    print(f"parallel: sizes {sizes} x {repeats} repeats = {len(sizes) * repeats} cells per sweep, "
          f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)

    def sweep(**kw) -> tuple[float, float]:
        t0 = time.perf_counter()
        sw = gpviz.cv_sweep(SingleTaskGP, X, Y, sizes, repeats, seed=0, progress=False, fit_kwargs=fit, **kw)
        wall = time.perf_counter() - t0
        assert (sw.scores["status"] == "ok").all(), sw.scores["error"].tolist()
        return wall, float(sw.scores["fit_seconds"].sum())

    def one_worker():
        with concurrent.futures.ProcessPoolExecutor(1) as ex:
            return sweep(executor=ex)

    def dask_two_workers():
        # a LocalCluster's scheduler runs in this process and takes CPU and the GIL from whatever runs here,
        # so each Dask round starts its own cluster (warmed up outside the timing) and the other modes run
        # with none alive
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cl, distributed.Client(cl) as client:
            gpviz.cv_sweep(SingleTaskGP, X, Y, sizes[:1], 2, progress=False, fit_kwargs=fit, executor=client)
            return sweep(executor=client)

    modes = {"in process": lambda: sweep(), "workers=2": lambda: sweep(workers=2),
             "executor, 1 worker": one_worker, "dask, 2 workers": dask_two_workers}
    walls: dict[str, list[float]] = {m: [] for m in modes}
    names = list(modes)
    for r in range(args.par_rounds):
        for m in names[r % len(names):] + names[: r % len(names)]:
            wall, fit_s = modes[m]()
            walls[m].append(wall)
            print(f"round {r}: {m:20s} {wall:8.2f} s wall (cells' fit time {fit_s:8.2f} s)", flush=True)
    best = {m: min(v) for m, v in walls.items()}
    base = best["in process"]
    n_cells = len(sizes) * repeats
    print(f"workers=2 / workers=1 wall time: {best['workers=2'] / base:.3f} (target <= 0.6 on an idle 2-core machine)")
    print(f"executor path per-cell overhead vs in process: {(best['executor, 1 worker'] - base) / n_cells * 1000:+.1f} "
          f"ms per cell, {100 * (best['executor, 1 worker'] / base - 1):+.1f}% (target <= 5%)")
    print(f"dask LocalCluster(2) / workers=1 wall time: {best['dask, 2 workers'] / base:.3f}")
    la = os.getloadavg()
    print(f"load average after: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count()} cores")


def run_modes(args) -> None:
    """refit=False vs refit=True (batched folds) vs folds fitted one by one, per size, side by side."""
    X, Y = make_data(max(args.mode_points, max(args.mode_sizes)), args.d, seed=1)
    la = os.getloadavg()
    print(f"fit modes: sizes {args.mode_sizes}, 1 repeat each, d={args.d}, {X.shape[0]} rows, load average "
          f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count()} cores", flush=True)
    spread = f"separate, workers={args.mode_workers}"
    modes = {"refit=False": dict(refit=False), "batched": dict(folds="batched"), "separate": dict(folds="separate"),
             spread: dict(folds="separate", workers=args.mode_workers)}
    gpviz.cv_sweep(SingleTaskGP, X, Y, [5], 1, progress=False, refit=False)  # warm up outside the timing
    names = list(modes)
    rows = []
    for size in args.mode_sizes:
        best = {m: float("inf") for m in modes}
        for r in range(args.mode_rounds):
            for m in names[r % len(names):] + names[: r % len(names)]:
                t0 = time.perf_counter()
                sw = gpviz.cv_sweep(SingleTaskGP, X, Y, [size], 1, seed=0, progress=False, **modes[m])
                best[m] = min(best[m], time.perf_counter() - t0)
                assert (sw.scores["status"] == "ok").all(), sw.scores["error"].tolist()
                print(f"n={size:3d} {m:22s} {best[m]:8.2f} s wall, mse {float(sw.scores['mse'].iloc[0]):.4g}",
                      flush=True)
        rows.append((size, best))
    w = args.mode_workers
    print(f"{'n':>4s} {'refit=False':>12s} {'batched':>9s} {'separate':>9s} {f'sep. w={w}':>10s} {'fixed/refit':>12s} "
          f"{'batched/separate':>17s} {f'sep. w={w}/sep.':>15s}")
    for size, best in rows:
        print(f"{size:4d} {best['refit=False']:11.2f}s {best['batched']:8.2f}s {best['separate']:8.2f}s "
              f"{best[spread]:9.2f}s {best['refit=False'] / best['batched']:12.3f} "
              f"{best['batched'] / best['separate']:17.3f} {best[spread] / best['separate']:15.3f}")
    la = os.getloadavg()
    print(f"load average after: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count()} cores")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 24])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--points", type=int, default=40, help="rows of the data set")
    ap.add_argument("--d", type=int, default=3, help="input dimensions")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: leave torch's default)")
    ap.add_argument("--reps", type=int, default=3, help="runs of each side per cell (the fastest counts)")
    ap.add_argument("--cache", action="store_true", help="the sweep also writes every cell to a fresh cache_dir")
    ap.add_argument("--par-sizes", type=int, nargs="+", default=[12, 20, 28], help="sizes of the parallel sweep")
    ap.add_argument("--par-repeats", type=int, default=4, help="repeats of the parallel sweep")
    ap.add_argument("--par-rounds", type=int, default=2, help="turns of each parallel mode (the fastest counts)")
    ap.add_argument("--maxiter", type=int, default=0, help="L-BFGS-B iteration cap of the parallel sweep (0: none)")
    ap.add_argument("--mode-sizes", type=int, nargs="+", default=[20, 40, 80], help="sizes of the fit-mode part")
    ap.add_argument("--mode-points", type=int, default=80, help="rows of the fit-mode part's data")
    ap.add_argument("--mode-rounds", type=int, default=1, help="turns of each fit mode per size (fastest counts)")
    ap.add_argument("--mode-workers", type=int, default=2, help="worker processes of the spread separate folds")
    ap.add_argument("--only", choices=["direct", "parallel", "modes"], help="run one part only")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float64)
    warnings.simplefilter("ignore")  # the same fit warnings on both sides; keep the table readable
    X, Y = make_data(args.points, args.d)
    if args.only in (None, "modes"):
        run_modes(args)
    if args.only == "modes":
        return
    if args.only != "direct":
        run_parallel(args, X, Y)
    if args.only == "parallel":
        return
    cells = [(size, seed) for seed in range(args.repeats) for size in args.sizes]
    print(f"cells: sizes {args.sizes} x {args.repeats} repeats = {len(cells)} cells, d={args.d}, "
          f"torch threads {torch.get_num_threads()}, cache {'on' if args.cache else 'off'}")
    run_direct(X, Y, args.sizes[0], 0)  # warm up lazy imports and caches outside the timing
    run_sweep(X, Y, args.sizes[0], 0, None)
    direct, sweep, outside = [], [], []  # per cell: the fastest of --reps runs of each side
    with tempfile.TemporaryDirectory() as tmp:
        for k, (size, seed) in enumerate(cells):
            # each cell is fitted by both sides back to back, alternating who goes first, --reps times;
            # the fastest run of each side is its cost (timeit's rule: slower runs are other jobs' noise)
            d_runs, s_runs = [], []
            for rep in range(args.reps):
                cache_dir = f"{tmp}/cell{k}-{rep}" if args.cache else None  # fresh: nothing to resume
                for side in (("direct", "sweep") if (k + rep) % 2 == 0 else ("sweep", "direct")):
                    if side == "direct":
                        d_runs.append(run_direct(X, Y, size, seed))
                    else:
                        s_runs.append(run_sweep(X, Y, size, seed, cache_dir))
            direct.append((min(r[0] for r in d_runs), min(r[1] for r in d_runs)))
            sweep.append((min(r[0] for r in s_runs), min(r[1] for r in s_runs)))
            outside.append(min(s_runs)[2])
            print(f"cell n={size:3d} seed {seed}: batch_cross_validation {direct[-1][0]:7.3f} s, "
                  f"cv_sweep {sweep[-1][0]:7.3f} s  (cpu {direct[-1][1]:7.3f} / {sweep[-1][1]:7.3f} s)", flush=True)
    for i, what in ((0, "wall"), (1, "cpu")):
        d, s = [t[i] for t in direct], [t[i] for t in sweep]
        pair = statistics.median(b / a for a, b in zip(d, s))
        print(f"{what}: batch_cross_validation {sum(d):.3f} s, cv_sweep {sum(s):.3f} s; ratio cv_sweep / "
              f"batch_cross_validation = {sum(s) / sum(d):.3f} (totals), {pair:.3f} (median of cells); "
              f"target <= 1.10")
    print(f"cv_sweep time outside make_model + fit (folds, prediction, metrics, parameters, frames"
          f"{', cache' if args.cache else ''}): {sum(outside):.3f} s of {sum(t[0] for t in sweep):.3f} s "
          f"({100 * sum(outside) / sum(t[0] for t in sweep):.1f}%)")


if __name__ == "__main__":
    main()
