"""Measures how a strong lengthscale prior hurts small-data accuracy: Gamma(3, 6) vs Gamma(1.125, 0.375).

A prior-strength experiment in miniature: leave-one-out CV sweeps of a
Scale-Matern-5/2 SingleTaskGP on an 8-input function where only 2 inputs matter,
at small sizes, with BoTorch's former default lengthscale prior Gamma(3, 6) and
the looser Gamma(1.125, 0.375) (same mode 1/3, ~96x the variance). Prints the
held-out error per size for each prior, their ratio, the share of folds whose
lengthscales prior_pull judges "held at prior mode" (every fold of every repeat) with the
break-free sentences, the verdict cost against the sweep's fit time (CPU seconds, side by
side: stacked per size and cell by cell), and writes the comparison page.

Usage: .venv/bin/python scripts/bench_priors.py [--out artifacts] [--sizes 8 16 32] [--repeats 3] [--dims 8]
       .venv/bin/python scripts/bench_priors.py --ratios --sizes 20 40 --repeats 2   (the cost ratios only)
(the 24-input case below: ``--dims 24 --sizes 40 80 --repeats 2 --points 200``)

Measured (seed 0, sizes 8/16/32, 3 repeats; botorch 0.18.1, gpytorch 1.15.2): geometric-mean
LOO MSE 0.885 / 0.460 / 0.118 with Gamma(3, 6) vs 0.246 / 0.135 / 0.038 with Gamma(1.125, 0.375),
i.e. 3.6x / 3.4x / 3.1x larger with the strong prior; prior_pull judged 100% / 93% / 0% of the
irrelevant lengthscales "held at prior mode" (every fold of all 3 repeats) under Gamma(3, 6) and 0% at
every size under the loose prior. Verdicts of every fold of every repeat: 0.95 s CPU (1.05 s cell by
cell) = 1.6% of the strong sweep's 60 s fit CPU; 0.84 s (1.32 s) = 0.6% of the loose sweep's 145 s
(load average 11-20 on 2 cores). A 24-input model at n = 40, 80 (2 repeats) measured separately:
15.1 s CPU stacked (18.0 s cell by cell) = 17% of its 88 s fit CPU, over the 10% target: one exact
Hessian-vector product per parameter element through the Cholesky dominates there. Through the likelihood
term's exact second-order surrogate (gpviz.priors.derivatives.quad_lik) the same kind of sweep (200 random
points, its fit 555 s CPU) took 10.6-11.1 s against 17.9-19.3 s on the former path (QUAD_LIK off), same
process, load 2-3: about 12% of an 88 s fit.
prior_sensitivity on BoTorch's default SingleTaskGP, 10 inputs x 100 points (10,000 draws + 2,000 pilot), one torch
thread, load average 5-6 on 2 cores, median of 3 in one process: 1.54 s CPU = 4.4x its fit (0.35 s) with the draws'
likelihood from gpviz.priors.stationary, 4.35 s = 12.3x with every draw through GPyTorch's log_prob (STATIONARY off;
the path before it); the same sensitivities to 6 digits.
About 3 min of CPU in all (one torch thread).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.priors import GammaPrior

import gpviz
import gpviz.datasets
import gpviz.priors.stationary as stationary
import gpviz.priors.sweep_pull as pull_module
from gpviz.priors.sweep_pull import sweep_prior_pull
from gpviz.priors.stories import break_free_sentences, key_features, key_stories
from gpviz.priors.verdicts import HELD, verdict_table

D, RELEVANT = 8, 2


def f(X: torch.Tensor) -> torch.Tensor:
    """Depends on x0 and x1 only; every other input is irrelevant."""
    return (torch.sin(6 * X[..., 0]) + 4 * (X[..., 1] - 0.5) ** 2).unsqueeze(-1)


def scale_matern(train_X: torch.Tensor, train_Y: torch.Tensor) -> SingleTaskGP:
    """A batched SingleTaskGP (one member per fold) with a ScaleKernel(Matern 5/2) and no lengthscale prior."""
    batch = train_X.shape[:-2]
    covar = ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=train_X.shape[-1], batch_shape=batch),
                        batch_shape=batch, outputscale_prior=GammaPrior(2.0, 0.15))
    return SingleTaskGP(train_X, train_Y, covar_module=covar)


def _mixed(train_X: torch.Tensor, train_Y: torch.Tensor) -> MixedSingleTaskGP:
    """BoTorch's MixedSingleTaskGP on the landscape's 9 continuous inputs and its categorical optimizer column."""
    return MixedSingleTaskGP(train_X, train_Y, cat_dims=[train_X.shape[-1] - 1])


def _plain(train_X: torch.Tensor, train_Y: torch.Tensor) -> SingleTaskGP:
    """BoTorch's default SingleTaskGP (its own priors)."""
    return SingleTaskGP(train_X, train_Y)


def _sweep_ratio(label: str, make, X, Y, sizes, repeats: int) -> tuple[str, float, float]:
    """(label, sweep fit CPU s, verdicts of every fold CPU s) in this process (one thread)."""
    c0 = time.process_time()
    sweep = gpviz.cv_sweep(make, X, Y, sizes=sizes, repeats=repeats, seed=0, progress=False)
    fit = time.process_time() - c0
    c1 = time.process_time()
    sweep_prior_pull(sweep)
    return label, fit, time.process_time() - c1


def ratios(sizes: list[int], repeats: int) -> None:
    """Prints the cost ratios of issue 24 side by side: verdicts / fit (SingleTaskGP, MixedSingleTaskGP) and
    prior_sensitivity / fit (a 10-input SingleTaskGP on 100 points)."""
    data = gpviz.datasets.hyperparameter_landscape(n=2 * max(sizes), seed=0)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    rows = [_sweep_ratio("SingleTaskGP, 10 inputs (sweep)", _plain, data.X, data.Y, sizes, repeats),
            _sweep_ratio("MixedSingleTaskGP, 9 continuous + 1 categorical (sweep)", _mixed, data.X, data.Y, sizes,
                         repeats)]
    hundred = gpviz.datasets.hyperparameter_landscape(n=100, seed=1)
    model = SingleTaskGP(hundred.X, hundred.Y)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    c0 = time.process_time()
    fit_gpytorch_mll(mll)
    fit = time.process_time() - c0
    c1 = time.process_time()
    gpviz.prior_sensitivity(mll)
    rows.append(("prior_sensitivity, SingleTaskGP 10 inputs x 100 points", fit, time.process_time() - c1))
    # the same through GPyTorch's log_prob for every draw (the path of models outside the stationary family)
    stationary.STATIONARY = False
    try:
        c2 = time.process_time()
        gpviz.prior_sensitivity(mll)
        rows.append(("  the same, every draw through GPyTorch's log_prob", fit, time.process_time() - c2))
    finally:
        stationary.STATIONARY = True
    print(f"\nsizes {sizes} x {repeats} repeats (CPU seconds, one torch thread)")
    print(f"{'':<58} {'fit':>8} {'analysis':>9} {'ratio':>7} {'target':>7}")
    for (label, fit, cost), target in zip(rows, ("10%", "10%", "300%", "300%")):
        print(f"{label:<58} {fit:>8.2f} {cost:>9.2f} {cost / fit:>7.1%} {target:>7}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratios", action="store_true", help="only print the cost ratios (verdicts / fit for "
                    "SingleTaskGP and MixedSingleTaskGP sweeps, prior_sensitivity / fit), side by side")
    ap.add_argument("--out", default="artifacts")
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the machine is shared)")
    ap.add_argument("--dims", type=int, default=D, help=f"inputs (default {D}; the first {RELEVANT} matter)")
    ap.add_argument("--points", type=int, default=None, help="data points to draw subsets from (default 2 x the "
                    "largest size)")
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(args.threads)
    if args.ratios:
        return ratios(args.sizes, args.repeats)

    if args.dims < RELEVANT:
        raise SystemExit(f"--dims must be at least {RELEVANT}")
    points = args.points or max(args.sizes) * 2
    X = torch.quasirandom.SobolEngine(args.dims, scramble=True, seed=args.seed).draw(points, dtype=torch.float64)
    g = torch.Generator().manual_seed(args.seed)
    Y = f(X) + 0.01 * torch.randn(X.shape[0], 1, generator=g)
    configs = {
        "Gamma(3, 6) lengthscale prior": gpviz.with_priors(scale_matern, lengthscale=GammaPrior(3.0, 6.0)),
        "Gamma(1.125, 0.375) lengthscale prior": gpviz.with_priors(scale_matern,
                                                                   lengthscale=GammaPrior(1.125, 0.375)),
    }
    sweeps, pulls = {}, {}
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    for label, make in configs.items():
        t0, c0 = time.perf_counter(), time.process_time()
        sweeps[label] = gpviz.cv_sweep(make, X, Y, sizes=args.sizes, repeats=args.repeats, seed=args.seed,
                                       progress=False)
        fit_cpu = time.process_time() - c0
        fit_wall = time.perf_counter() - t0
        # the verdicts of every fold of every repeat, side by side: stacked per size (the default) and
        # cell by cell (the former path), interleaved so that both see the same machine load
        c1 = time.process_time()
        pulls[label] = sweep_prior_pull(sweeps[label], repeats=None)
        stacked_cpu = time.process_time() - c1
        budget, pull_module.STACK_BUDGET = pull_module.STACK_BUDGET, 0
        try:
            c2 = time.process_time()
            sweep_prior_pull(sweeps[label], repeats=None)
            per_cell_cpu = time.process_time() - c2
        finally:
            pull_module.STACK_BUDGET = budget
        print(f"{label}: sweep fit {fit_wall:.1f} s wall / {fit_cpu:.1f} s CPU; verdicts of every fold of every "
              f"repeat {stacked_cpu:.2f} s CPU stacked per size ({per_cell_cpu:.2f} s cell by cell): "
              f"verdict cost / sweep fit time = {stacked_cpu / fit_cpu:.1%} (target <= 10%)", flush=True)

    strong, loose = list(configs)
    print(f"\nLeave-one-out MSE (geometric mean over {args.repeats} repeats; 10th-90th percentile), "
          f"{args.dims} inputs, {RELEVANT} relevant:")
    print(f"{'n':>4}  {'Gamma(3, 6)':>28}  {'Gamma(1.125, 0.375)':>28}  {'ratio strong/loose':>18}")
    bands = {label: s.summary("mse").set_index("size") for label, s in sweeps.items()}
    for n in args.sizes:
        a, b = bands[strong].loc[n], bands[loose].loc[n]
        print(f"{n:>4}  {a.center:>10.4f} [{a.low:.4f}, {a.high:.4f}]  {b.center:>10.4f} [{b.low:.4f}, "
              f"{b.high:.4f}]  {a.center / b.center:>18.2f}")

    print("\nShare of folds whose lengthscale prior_pull judges 'held at prior mode' (irrelevant x2.. | relevant "
          "x0, x1), every repeat:")
    for label, pull in pulls.items():
        ls = pull[pull.key.str.contains("lengthscale")].copy()
        dim = ls.key.str.extract(r"\[(\d+)\]")[0].astype(int)
        ls["irrelevant"] = dim >= RELEVANT
        parts = []
        for n in args.sizes:
            at = ls[ls["size"] == n]
            irr = at[at.irrelevant].verdict.eq(HELD).mean()
            rel = at[~at.irrelevant].verdict.eq(HELD).mean()
            med = at[at.irrelevant].value.median()
            parts.append(f"n={n}: {irr:.0%} | {rel:.0%} (median irrelevant lengthscale {med:.2f})")
        print(f"  {label}: " + "; ".join(parts))
        features = key_features(sweeps[label].expression())
        for sentence in break_free_sentences(key_stories(verdict_table(pull), features)).values():
            print(f"    {sentence}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fig = gpviz.compare(sweeps)
    path = out / "compare_priors.html"
    fig.save(path)
    print(f"\ncompare page: {path} ({path.stat().st_size / 1e6:.2f} MB, built in {time.perf_counter() - t0:.1f} s)")
    if not math.isfinite(bands[strong].loc[args.sizes[0]].center):
        raise SystemExit("no finite score at the smallest size")


if __name__ == "__main__":
    main()
