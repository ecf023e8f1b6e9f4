"""Fit modes: the same cross-validation folds fit batched, jointly and separately, and the work each takes."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models.model import Model
from gpytorch.mlls import ExactMarginalLogLikelihood

from gpviz._factory import check_factory
from gpviz import display
from gpviz.errors import InputError
from gpviz.seeding import seeded
from gpviz.threads import DEFAULT_THREADS, check_threads, torch_threads
from gpviz.trace.tracer import trace_fit
from gpviz.words import plural

# --------------------------------------------------------------------------------------
# Comparing ways to fit the same cross-validation folds
# --------------------------------------------------------------------------------------

class FitModeTable(pd.DataFrame):
    """The table of :func:`compare_fit_modes` (a DataFrame) with a :meth:`chart`."""

    @property
    def _constructor(self):
        return pd.DataFrame  # derived frames are plain DataFrames

    def explain(self) -> dict[str, str]:
        """One sentence per mode: what its work and its waste mean (waste is relative to that mode's own fit)."""
        out = {}
        fewest = self.attrs.get("fewest") or (self["member_evaluations"].idxmin() if len(self) else None)
        for mode, row in self.iterrows():
            work = f"{row['member_evaluations']:,.0f} member-evaluations"
            vs = ("the fewest of all modes" if mode == fewest else
                  f"{row['member_evaluations'] / self.loc[fewest, 'member_evaluations']:.1f}x the fewest ({fewest})")
            if mode == "batched":
                why = (f"every fold is computed in every batched evaluation until the last fold stops, so waste "
                       f"{row['waste']:.2f}x counts the evaluations of folds that had already converged")
            elif mode == "joint":
                why = (f"one optimizer on the summed loss keeps every fold moving until the whole batch stops, so "
                       f"folds 'converge' late and waste {row['waste']:.2f}x looks small although the work is large")
            else:
                why = (f"each fold is its own fit and stops when it converges, so nothing is computed for a finished "
                       f"fold (waste {row['waste']:.2f}x)")
            out[str(mode)] = f"{mode}: {work}, {vs}; {why}."
        return out

    def lead(self) -> str:
        """One sentence: the mode with the fewest member-evaluations, and how the wall times were taken."""
        runs = int(self["runs"].max()) if "runs" in self.columns and len(self) else 1
        return (f"Fewest member-evaluations: {self.attrs.get('fewest', '')}. Wall times are the median of "
                f"{plural(runs, 'run')} (error bars: fastest to slowest).")

    def chart(self):
        """Bar charts of member-evaluations and wall time per fit mode (matplotlib ``Figure``, drawn by
        :func:`gpviz.charts.fit_modes_chart`)."""
        return display.plot(self)


FIT_MODES = ("batched", "joint", "separate")


def compare_fit_modes(make_model: Callable[[torch.Tensor, torch.Tensor], Model], X: torch.Tensor, Y: torch.Tensor, *,
                      modes: Sequence[str] = FIT_MODES, optimizer_kwargs: dict[str, Any] | None = None, runs: int = 3,
                      threads: int | None = DEFAULT_THREADS) -> FitModeTable:
    """Fits the same leave-one-out folds three ways and reports the work each took.

    (a) ``batched``: one batched model, BoTorch's default path (one L-BFGS-B per
    member, every member computed in every evaluation); (b) ``joint``: the same
    batched model, one optimizer on the summed loss (``closure_kwargs={}``);
    (c) ``separate``: one model per fold, fit in turn.

    Args:
        make_model: ``make_model(train_X, train_Y) -> model`` (e.g. ``SingleTaskGP``);
            called with ``n x (n-1) x d`` folds for (a)/(b) and ``(n-1) x d`` for (c).
        X: ``n x d`` inputs.
        Y: ``n x 1`` outputs.
        modes: A subset of ``("batched", "joint", "separate")``.
        optimizer_kwargs: Passed to every ``fit_gpytorch_mll`` call (e.g. ``{"options": {"maxiter": 50}}``).
        runs: Times each mode is run (at least 1; default 3): wall times are the median
            over runs, with the fastest and slowest beside it (one-shot timings on a shared
            machine drift by several times). The modes take turns, run after run. Work
            counts come from the first run (a fit from the same start repeats them).
        threads: Torch threads while fitting (default 1, see :mod:`gpviz.threads`);
            ``None`` keeps torch's setting.

    Returns:
        A DataFrame indexed by mode: ``fits, evaluations`` (model evaluations; one
        batched evaluation computes every member), ``member_evaluations``,
        ``work_vs_fewest`` (member-evaluations / the fewest of any mode),
        ``wall_time_s`` (median), ``wall_time_min``, ``wall_time_max``, ``runs``,
        ``mean_final_loss``, ``waste`` (member-evaluations computed / needed by each
        member's own convergence *in that mode*). ``attrs["fewest"]`` names the mode
        with the fewest member-evaluations; ``.explain()`` says in one sentence per mode
        what its waste means; ``.chart()`` draws it.

    Raises:
        InputError: for a model instead of a factory, unknown modes or inputs of the wrong shape.
    """
    check_factory(make_model)
    runs = int(runs) if isinstance(runs, int) and not isinstance(runs, bool) else 0
    if runs < 1:
        raise InputError("runs must be a positive integer (times each mode is fit, for the median time)")
    threads = check_threads(threads)
    bad = [m for m in modes if m not in FIT_MODES]
    if bad:
        raise InputError(f"unknown fit mode(s) {bad} (must be among {list(FIT_MODES)})")
    if not isinstance(X, torch.Tensor) or not isinstance(Y, torch.Tensor) or X.dim() != 2 or Y.dim() != 2 \
            or X.shape[0] != Y.shape[0]:
        raise InputError(f"X and Y must be tensors of shapes n x d and n x 1, got "
                         f"{list(getattr(X, 'shape', []))} and {list(getattr(Y, 'shape', []))}")
    folds = gen_loo_cv_folds(X, Y)
    n = int(X.shape[0])
    okw = dict(optimizer_kwargs or {})
    rows: dict[str, dict] = {}

    def run(model, **fit_kw):
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with trace_fit(mll) as tr:
                fit_gpytorch_mll(mll, optimizer_kwargs=dict(okw) if okw else None, **fit_kw)
        return tr, time.perf_counter() - start

    def fit_once(mode: str) -> dict:
        if mode in ("batched", "joint"):
            model = make_model(folds.train_X, folds.train_Y)
            tr, secs = run(model, **({"closure_kwargs": {}} if mode == "joint" else {}))
            s = tr.summary()
            return {"fits": 1, "evaluations": s.attrs["evaluations"],
                    "member_evaluations": s.attrs["member_evaluations_computed"], "wall_time_s": secs,
                    "mean_final_loss": float(s["final_loss"].mean()), "waste": s.attrs["waste"]}
        evals = computed = needed = secs = 0.0
        losses = []
        for i in range(n):
            tr, dt = run(make_model(folds.train_X[i], folds.train_Y[i]))
            s = tr.summary()
            evals += s.attrs["evaluations"]
            computed += s.attrs["member_evaluations_computed"]
            needed += s.attrs["member_evaluations_needed"]
            secs += dt
            losses.append(float(s["final_loss"].mean()))
        return {"fits": n, "evaluations": evals, "member_evaluations": computed, "wall_time_s": secs,
                "mean_final_loss": float(np.mean(losses)), "waste": computed / needed if needed else math.nan}

    times: dict[str, list[float]] = {m: [] for m in modes}
    with torch_threads(threads):
        for r in range(runs):
            # take turns, starting one mode later each run: a slow spell of the machine hits every mode
            order = list(modes)[r % len(modes):] + list(modes)[:r % len(modes)]
            for mode in order:
                with seeded(0):  # retries draw from the prior: the same draws every run
                    row = fit_once(mode)
                times[mode].append(row["wall_time_s"])
                rows.setdefault(mode, row)
    for mode in modes:
        t = np.asarray(times[mode])
        rows[mode].update(wall_time_s=float(np.median(t)), wall_time_min=float(t.min()), wall_time_max=float(t.max()),
                          runs=len(t))
    fewest = min(rows[m]["member_evaluations"] for m in modes)
    for mode in modes:
        rows[mode]["work_vs_fewest"] = rows[mode]["member_evaluations"] / fewest if fewest else math.nan
    cols = ["fits", "evaluations", "member_evaluations", "work_vs_fewest", "wall_time_s", "wall_time_min",
            "wall_time_max", "runs", "mean_final_loss", "waste"]
    table = FitModeTable(pd.DataFrame.from_dict(rows, orient="index")[cols])
    table.index.name = "mode"
    table.attrs["fewest"] = min(modes, key=lambda m: rows[m]["member_evaluations"])
    return table
