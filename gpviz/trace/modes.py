"""Fit modes: the same cross-validation folds fit batched, jointly and separately, and the work each takes."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pandas as pd
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from gpytorch.mlls import ExactMarginalLogLikelihood

from gpviz._factory import check_factory
from gpviz.charts import new_figure
from gpviz.errors import InputError
from gpviz.trace.tracer import trace_fit

# --------------------------------------------------------------------------------------
# Comparing ways to fit the same cross-validation folds
# --------------------------------------------------------------------------------------

class FitModeTable(pd.DataFrame):
    """The table of :func:`compare_fit_modes` (a DataFrame) with a :meth:`chart`."""

    @property
    def _constructor(self):
        return pd.DataFrame  # derived frames are plain DataFrames

    def chart(self):
        """Bar charts of member-evaluations and wall time per fit mode (matplotlib ``Figure``)."""
        fig = new_figure(8.0, 3.2)
        ax1, ax2 = fig.subplots(1, 2)
        names = [str(i) for i in self.index]
        colors = ["#4c72b0", "#dd8452", "#55a868"][: len(names)]
        ax1.bar(names, self["member_evaluations"].to_numpy(float), color=colors)
        ax1.set_ylabel("member-evaluations")
        ax1.set_title("Work: GP evaluations x members")
        for i, v in enumerate(self["member_evaluations"].to_numpy(float)):
            ax1.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=8)
        ax2.bar(names, self["wall_time_s"].to_numpy(float), color=colors)
        ax2.set_ylabel("seconds")
        ax2.set_title("Wall time")
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", labelsize=8)
        return fig


FIT_MODES = ("batched", "joint", "separate")


def compare_fit_modes(make_model, X, Y, *, modes=FIT_MODES, optimizer_kwargs=None) -> FitModeTable:
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

    Returns:
        A DataFrame indexed by mode: ``fits, evaluations`` (model evaluations; one
        batched evaluation computes every member), ``member_evaluations``,
        ``wall_time_s``, ``mean_final_loss``, ``waste`` (member-evaluations computed /
        needed by each member's own convergence). ``.chart()`` draws it.

    Raises:
        InputError: for a model instead of a factory, unknown modes or inputs of the wrong shape.
    """
    check_factory(make_model)
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
    rows = {}

    def run(model, **fit_kw):
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with trace_fit(mll) as tr:
                fit_gpytorch_mll(mll, optimizer_kwargs=dict(okw) if okw else None, **fit_kw)
        return tr, time.perf_counter() - start

    for mode in modes:
        if mode in ("batched", "joint"):
            model = make_model(folds.train_X, folds.train_Y)
            tr, secs = run(model, **({"closure_kwargs": {}} if mode == "joint" else {}))
            s = tr.summary()
            rows[mode] = {"fits": 1, "evaluations": s.attrs["evaluations"],
                          "member_evaluations": s.attrs["member_evaluations_computed"], "wall_time_s": secs,
                          "mean_final_loss": float(s["final_loss"].mean()), "waste": s.attrs["waste"]}
        else:
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
            rows[mode] = {"fits": n, "evaluations": evals, "member_evaluations": computed, "wall_time_s": secs,
                          "mean_final_loss": float(np.mean(losses)),
                          "waste": computed / needed if needed else math.nan}
    table = FitModeTable(pd.DataFrame.from_dict(rows, orient="index"))
    table.index.name = "mode"
    return table
