""""never moved" against "held at prior mode" (issue 24 item 3): an element whose likelihood gradient and curvature
vanish (the lengthscale of an input constant in the training data) never leaves the prior's mode where BoTorch's
optimizer starts it; references: GPyTorch's own autograd derivatives of the exact log likelihood, and a prior held
against a real pull of the data."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.kernels import RBFKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import LogNormalPrior

import gpviz
from gpviz.priors.pull import prior_pull
from gpviz.priors.verdicts import (AT_BOUND, FREE, HELD, NEVER_MOVED, NEVER_MOVED_TOL, classify, key_verdicts,
                                   uninformed, verdict_table)


def _data(constant: bool):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(20, 3, generator=g, dtype=torch.float64)
    if constant:
        X[:, 2] = 0.5  # the data says nothing about the third input
    Y = torch.sin(6 * X[:, :1]) + 0.3 * X[:, 1:2] + 0.05 * torch.randn(20, 1, generator=g, dtype=torch.float64)
    return X, Y


def _fitted(constant: bool, **kw) -> SingleTaskGP:
    X, Y = _data(constant)
    model = SingleTaskGP(X, Y, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model


def _lik_derivs(model: SingleTaskGP, raw: torch.nn.Parameter, j: int) -> tuple[float, float]:
    """GPyTorch's own exact log likelihood (no prior), its first and second derivative in ``raw[..., j]`` by autograd."""
    model.train()
    model.likelihood.train()
    with torch.enable_grad():
        lik = model.likelihood(model(*model.train_inputs)).log_prob(model.train_targets)
        (g,) = torch.autograd.grad(lik, raw, create_graph=True)
        (h,) = torch.autograd.grad(g.reshape(-1)[j], raw)
    return float(g.detach().reshape(-1)[j]), float(h.reshape(-1)[j])


@pytest.fixture(scope="module")
def constant_column():
    model = _fitted(True)
    return model, prior_pull(model)


def test_a_constant_input_column_is_never_moved_and_gpytorch_agrees_the_data_is_silent(constant_column):
    model, pull = constant_column
    raw = model.covar_module.raw_lengthscale
    g, h = _lik_derivs(model, raw, 2)
    assert abs(g) < 1e-12 and abs(h) < 1e-12  # the reference: GPyTorch's autograd sees no data pull or curvature
    g0, h0 = _lik_derivs(model, raw, 0)
    assert abs(h0) > 1.0  # ... while the first input's lengthscale is pinned by the data
    row = pull.set_index("key").loc["covar_module.lengthscale[2]"]
    assert row["verdict"] == NEVER_MOVED
    # it sits where BoTorch's optimizer started it: at the prior's mode (the fit never moved it)
    assert row["value"] == pytest.approx(row["prior_mode"], rel=1e-6)
    assert row["precision_share"] == pytest.approx(1.0)  # the old rule alone would have said "held at prior mode"
    assert key_verdicts(pull)["covar_module.lengthscale[2]"] == NEVER_MOVED
    table = verdict_table(pull.assign(size=20, i_repeat=0))
    assert table.set_index("key").loc["covar_module.lengthscale[2]", "never_moved"] == 1


def test_the_other_inputs_keep_their_verdicts(constant_column):
    _, pull = constant_column
    others = pull[pull["key"] != "covar_module.lengthscale[2]"]
    assert not others["verdict"].eq(NEVER_MOVED).any()
    # the rule without the new check, on each row's own numbers, gives the same verdicts
    share = np.where(np.isfinite(others["precision_share"]), others["precision_share"], others["prior_share"])
    old = classify(others["value"], others["lower"], others["upper"], others["prior"].ne("none"), others["distance"],
                   others["distance"].abs().le(math.log(2.0)) & others["distance_space"].eq("log"), share,
                   others["escape_gain"])
    assert list(others["verdict"]) == list(old)
    assert pull.set_index("key").loc["covar_module.lengthscale[0]", "verdict"] == FREE


def test_a_lengthscale_held_against_a_real_data_pull_is_not_never_moved():
    # a tight prior at 0.6 on every lengthscale: the first input's data wants about 0.27 and pulls hard
    kernel = RBFKernel(ard_num_dims=3, lengthscale_prior=LogNormalPrior(math.log(0.6) + 1e-4, 0.01))
    model = _fitted(False, covar_module=kernel)
    g, h = _lik_derivs(model, kernel.raw_lengthscale, 0)
    assert abs(g) > 1e-2  # the reference: GPyTorch's own gradient, a real pull the prior resists
    row = prior_pull(model).set_index("key").loc["covar_module.lengthscale[0]"]
    assert row["verdict"] == HELD
    assert abs(row["d_log_lik"]) > 1e-2


def test_the_rule_on_numbers_alone():
    # in log θ: data gradient and curvature against the prior's curvature (sd = 1 / sqrt(curv))
    assert list(uninformed([0.0, 0.0, 1e-3, 0.0, 0.0], [0.0, 1e-3, 0.0, 0.0, -1e-9], [4.0, 4.0, 4.0, 0.0, 4.0])) == \
        [True, False, False, False, True]
    tol = NEVER_MOVED_TOL
    assert uninformed(0.99 * tol * 2.0, 0.0, 4.0) and not uninformed(1.01 * tol * 2.0, 0.0, 4.0)
    assert uninformed(0.0, 0.99 * tol * 4.0, 4.0) and not uninformed(0.0, 1.01 * tol * 4.0, 4.0)
    assert not uninformed(np.nan, 0.0, 4.0)
    # checked before held / set, after the bound, and only with a prior
    args = (np.array([0.35, 0.35, 1e-4]), np.array([0.0, 0.0, 1e-4]), math.inf)
    out = classify(*args, np.array([True, False, True]), np.zeros(3), np.ones(3, bool), np.ones(3), np.nan,
                   np.array([True, True, True]))
    assert list(out) == [NEVER_MOVED, FREE, AT_BOUND]
    assert classify(*args, True, np.zeros(3), np.ones(3, bool), np.ones(3))[0] == HELD


def test_the_model_page_counts_tints_and_explains_it(constant_column):
    model, pull = constant_column
    html = gpviz.render(model, profiles=False).html()
    told = re.search(r'gpviz-legend-verdicts">gpviz\.prior_pull verdicts: ([^<]*)<', html).group(1)
    assert "1 never moved" in told.split(", ")
    assert re.search(r'title="gpviz\.prior_pull: the data carries no information about it: the optimizer left it '
                     r'where it started"[^>]*><span class="gpviz-swatch gpviz-swatch-never"', html)
    tinted = re.findall(r'class="gpviz-param [^"]*gpviz-never-moved[^"]*"[^>]*data-key="([^"]+)"', html)
    assert tinted == ["covar_module.lengthscale[2]"]
    assert '"never": true' in html or '"never":true' in html


def test_a_sweep_table_counts_it_in_its_own_row(constant_column):
    from gpviz.html.comparison import verdict_counts_html

    _, pull = constant_column
    table = verdict_table(pull.assign(size=20, i_repeat=0))
    html = str(verdict_counts_html(table))
    row = re.search(r'<tr data-verdict="never moved">(.*?)</tr>', html)
    assert row and 'data-count="1" data-members="5"' in row.group(1)


def test_a_sweep_sentence_says_it_with_its_count(constant_column):
    from gpviz.priors.stories import break_free_sentences, key_stories

    _, pull = constant_column
    sentences = break_free_sentences(key_stories(verdict_table(pull.assign(size=20, i_repeat=0))))
    assert "never moved (the data carries no information about it) in 1 of 3 folds" in \
        sentences["covar_module.lengthscale"]
