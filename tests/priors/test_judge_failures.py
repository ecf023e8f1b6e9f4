"""A failed verdict is never silent: a VerdictWarning, and a note on the page."""

from __future__ import annotations

import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import RBFKernel, ScaleKernel
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.errors import GpvizWarning, VerdictWarning
from gpviz.priors.judge import model_verdicts


class BrokenPrior(GammaPrior):
    """A prior whose density cannot be evaluated (an exotic user prior with a bug)."""

    def log_prob(self, value):
        raise RuntimeError("this prior cannot score its value")


def broken_model():
    torch.manual_seed(0)
    X = torch.rand(8, 2, dtype=torch.float64)
    kernel = ScaleKernel(RBFKernel(ard_num_dims=2, lengthscale_prior=BrokenPrior(3.0, 6.0)))
    return SingleTaskGP(X, torch.sin(6 * X[:, :1]), covar_module=kernel)


def test_failed_model_verdicts_warn_and_carry_a_note():
    expr = gpviz.model_expr(broken_model())
    with pytest.warns(VerdictWarning, match="prior_pull failed on SingleTaskGP .*cannot score its value"):
        found = model_verdicts(expr)
    assert issubclass(VerdictWarning, GpvizWarning)
    assert dict(found) == {} and "cannot score its value" in found.note


def test_failed_verdicts_are_a_visible_note_on_the_page():
    with pytest.warns(VerdictWarning):
        page = gpviz.render(broken_model()).html()
    assert "Verdicts not computed: prior_pull failed (RuntimeError: this prior cannot score its value)" in page


def test_judged_model_has_no_failure_note():
    model = broken_model()
    model.covar_module.base_kernel.register_prior("lengthscale_prior", GammaPrior(3.0, 6.0), "lengthscale")
    found = model_verdicts(gpviz.model_expr(model))
    assert found and found.note == "" and "Verdicts not computed" not in gpviz.render(model).html()
