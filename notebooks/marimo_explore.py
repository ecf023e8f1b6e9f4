"""The explorer inside marimo: `marimo run notebooks/marimo_explore.py` (or `marimo edit`).

marimo's widget API wraps any anywidget (`mo.ui.anywidget`), so the widget `gpviz.explore`
returns is dragged here as in JupyterLab: its metrics and slices are recomputed by the
notebook's kernel on a copy of the model.
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App()


@app.cell
def _():
    import marimo as mo
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from gpytorch.mlls import ExactMarginalLogLikelihood

    import gpviz

    return ExactMarginalLogLikelihood, SingleTaskGP, fit_gpytorch_mll, gpviz, mo, torch


@app.cell
def _(ExactMarginalLogLikelihood, SingleTaskGP, fit_gpytorch_mll, torch):
    # 20 points, 3 inputs; the output depends on speed and load only
    torch.set_num_threads(1)  # small fits are fastest on one thread
    generator = torch.Generator().manual_seed(0)
    X = torch.rand(20, 3, generator=generator, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1]) + X[:, 1:2] + 0.05 * torch.randn(20, 1, generator=generator, dtype=torch.float64)
    model = SingleTaskGP(X, Y)
    _ = fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return (model,)


@app.cell
def _(gpviz, mo, model):
    # drag a number (shift: fine steps), or double-click it to type a value; the model itself is never changed
    explorer = mo.ui.anywidget(gpviz.explore(model, feature_names=["speed", "load", "noise_knob"]))
    explorer
    return (explorer,)


@app.cell
def _(explorer, mo):
    # a cell that reads the widget reruns when its values change
    mo.md(f"LOO MSE at the values on the page: **{explorer.widget.metrics['loo_mse']:.4g}**")
    return


if __name__ == "__main__":
    app.run()
