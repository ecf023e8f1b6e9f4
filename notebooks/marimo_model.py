"""A gpviz model page inside marimo: `marimo run notebooks/marimo_model.py` (or `marimo edit`).

marimo shows a gpviz figure through its `_repr_html_`, inside an iframe (marimo puts
HTML that carries scripts there), so the charts draw as in Jupyter.
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App()


@app.cell
def _():
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from gpytorch.mlls import ExactMarginalLogLikelihood

    import gpviz

    return ExactMarginalLogLikelihood, SingleTaskGP, fit_gpytorch_mll, gpviz, torch


@app.cell
def _(ExactMarginalLogLikelihood, SingleTaskGP, fit_gpytorch_mll, torch):
    # 20 points, 3 inputs; the output depends on x0 and x1 only, so x2's lengthscale grows
    generator = torch.Generator().manual_seed(0)
    X = torch.rand(20, 3, generator=generator, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1]) + X[:, 1:2] + 0.05 * torch.randn(20, 1, generator=generator, dtype=torch.float64)
    model = SingleTaskGP(X, Y)
    _ = fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))  # the fitted MLL, not shown
    return (model,)


@app.cell
def _(gpviz, model):
    gpviz.render(model, feature_names=["speed", "load", "noise_knob"])
    return


if __name__ == "__main__":
    app.run()
