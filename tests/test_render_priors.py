"""Model pages name every prior with its mode, warn (on the page and in Python) of a mode outside its bounds, and
count every verdict that occurs; references: the hand formula exp(mu - sigma^2) and prior_pull's own rows."""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import RBFKernel
from gpytorch.priors import LogNormalPrior

import gpviz
from gpviz.errors import PriorModeWarning


def _model(prior=None):
    g = torch.Generator().manual_seed(1)
    X = torch.rand(12, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(4 * X[:, :1]) + 0.1 * torch.randn(12, 1, generator=g, dtype=torch.float64)
    kernel = RBFKernel(ard_num_dims=2, lengthscale_prior=prior, lengthscale_constraint=GreaterThan(2.5e-2))
    return SingleTaskGP(X, Y, covar_module=kernel)


def test_a_prior_mode_below_the_constraint_is_a_warning_on_the_page_and_in_python():
    model = _model(LogNormalPrior(2.387, 3.0))
    mode = math.exp(2.387 - 9.0)  # ~0.0013, below the bound 0.025
    with pytest.warns(PriorModeWarning, match=r"covar_module\.lengthscale.*mode 0\.001343 lies below its lower "
                                              r"bound 0\.025"):
        fig = gpviz.render(model, verdicts=False, profiles=False)
    html = fig.html()
    warning = re.search(r'class="gpviz-warning"[^>]*>([^<]*)<', html)
    assert warning and f"mode {mode:.4g} lies below its lower bound 0.025 (2 elements)" in warning.group(1)
    # every prior printed with its mode, the noise's LogNormal(-4, 1) too
    assert f"covar_module.lengthscale ~ LogNormalPrior(loc=2.387, scale=3), mode {mode:.4g}" in html
    assert f"likelihood.noise_covar.noise ~ LogNormalPrior(loc=-4, scale=1), mode {math.exp(-5):.4g}" in html


def test_a_prior_inside_its_bounds_warns_nothing():
    model = _model(LogNormalPrior(0.0, 0.5))  # mode exp(-0.25) ~ 0.78
    with warnings.catch_warnings():
        warnings.simplefilter("error", PriorModeWarning)
        html = gpviz.render(model, verdicts=False, profiles=False).html()
    assert 'class="gpviz-warning"' not in html and f"mode {math.exp(-0.25):.4g}" in html


def test_the_legend_counts_every_verdict_that_occurs():
    model = _model(LogNormalPrior(0.0, 0.5))
    pull = gpviz.prior_pull(model)
    expected = gpviz.rendering.key_verdicts(pull)  # the page's rule: one verdict per chart
    counts = {v: list(expected.values()).count(v) for v in set(expected.values())}
    html = gpviz.render(model, profiles=False).html()
    told = re.search(r'gpviz-legend-verdicts">gpviz\.prior_pull verdicts: ([^<]*)<', html).group(1)
    assert dict((v, int(n)) for n, v in (part.split(" ", 1) for part in told.split(", "))) == counts


def test_a_model_page_links_the_explorer_where_it_applies():
    model = _model(LogNormalPrior(0.0, 0.5))
    html = gpviz.render(model, verdicts=False, profiles=False).html()
    assert "Explore this model in a notebook: gpviz.explore(model)" in html
    assert gpviz.explore(model).values  # the link is good: the explorer takes this model
    assert "gpviz.explore" not in gpviz.render(model.covar_module).html()  # a kernel alone has no data to explore
