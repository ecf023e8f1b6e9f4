"""Measures one explorer update: a value set, then metrics and slices recomputed (the Python side of a drag).

A ScaleKernel(Matern-5/2) SingleTaskGP on 100 points and 10 inputs (the issue's target: an update
in 50 ms or less); prints the median and 90th percentile of one update: ``Explorer.set`` (set, log likelihood,
priors, efficient LOO, 10 slices of 41 points, traits updated) and the changed traits serialized as the comm
message a kernel sends (JSON), the message's size, each part's share, and the load average.

Usage: .venv/bin/python scripts/bench_explore.py [--points 100] [--dims 10] [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel

from gpviz.explorer.widget import UPDATE_THREADS, explore

#: The traits one update changes (what the page receives).
SENT = ["values", "metrics", "curves", "near", "error", "done"]


def _timed(fn, repeats: int) -> np.ndarray:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return np.array(out) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--dims", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=30)
    a = ap.parse_args()
    torch.manual_seed(0)
    X = torch.rand(a.points, a.dims, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :2]).sum(-1, keepdim=True)
    model = SingleTaskGP(X, Y, covar_module=ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=a.dims)))
    w = explore(model)
    key = "covar_module.base_kernel.lengthscale[0]"
    start = w.values[key]
    steps = iter(np.tile(np.linspace(0.5, 2.0, 16), a.repeats + 1) * start)
    sizes = []

    def update() -> None:
        w.set(key, float(next(steps)))
        sizes.append(len(json.dumps(w.get_state(SENT))))  # the comm message's body, as ipywidgets serializes it

    total = _timed(update, a.repeats)
    torch.set_num_threads(UPDATE_THREADS)  # as Explorer.set runs them
    parts = {"metrics (lik, priors, LOO)": _timed(w.state.metrics, a.repeats),
             "slices (one Cholesky, the grid kept)": _timed(w.state.slice_moments, a.repeats)}
    print(f"{a.points} points, {a.dims} inputs, {UPDATE_THREADS} torch thread per update, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"one update (Explorer.set + message): median {np.median(total):.1f} ms, "
          f"p90 {np.percentile(total, 90):.1f} ms, {np.median(sizes) / 1e3:.1f} KB sent")
    for name, t in parts.items():
        print(f"  {name}: median {np.median(t):.1f} ms")


if __name__ == "__main__":
    main()
