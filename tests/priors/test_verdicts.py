"""Verdicts: the taxonomy on constructed numbers and models (each verdict, the outputscale 0.30 vs mode 6.67 case),
and the counts per key and size that views tint by."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import RBFKernel, ScaleKernel
from gpytorch.priors import GammaPrior, NormalPrior

from gpviz.priors.pull import prior_pull
from gpviz.priors.verdicts import AT_BOUND, FREE, HELD, SET, VERDICTS, classify, size_bands, verdict_table

NUMBERS = ["key", "value", "prior_mode", "distance", "distance_sd", "d_log_prior", "d_log_lik", "curv_prior",
           "curv_lik", "prior_share", "verdict"]


# -- the taxonomy on numbers alone ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, lower, upper, has_prior, near, share, expected", [
    (1.0, 0.0, math.inf, True, True, 0.2, FREE),            # the data supplies most of the curvature
    (1.0, 0.0, math.inf, False, False, math.nan, FREE),     # no prior: the data alone
    (1.0, 0.0, math.inf, True, False, math.nan, FREE),      # nothing holds the value (both curvatures <= 0)
    (0.33, 0.0, math.inf, True, True, 0.9, HELD),           # the prior dominates, at its mode
    (0.30, 0.0, math.inf, True, False, 1.0, SET),           # the prior dominates, far from its mode
    (1e-4, 1e-4, math.inf, True, True, 0.9, AT_BOUND),      # on a bound: whatever the prior says
    (2.0, -math.inf, 2.0, False, False, 0.0, AT_BOUND),     # an upper bound
    (0.5, 0.0, math.inf, True, True, 0.5, FREE),            # exactly half is not "most"
])
def test_classify_constructed_numbers(value, lower, upper, has_prior, near, share, expected):
    assert classify(np.array([value]), lower, upper, has_prior, np.array([0.0]), np.array([near]),
                 np.array([share]))[0] == expected
    # element-wise: the same numbers beside a free member keep their verdict (no broadcasting mix-up)
    both = classify(np.array([value, 1.0]), lower, upper, has_prior, np.array([0.0, 0.0]), np.array([near, False]),
                    np.array([share, 0.0]))
    assert list(both) == [expected, FREE]


def _outputscale_model():
    """Small outputs (no Standardize) and an outputscale of 0.30 under Gamma(2, 0.15), whose mode is 6.67."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(12, 1, generator=g)
    Y = 0.05 * torch.sin(6 * X) + 0.01 * torch.randn(12, 1, generator=g)
    model = SingleTaskGP(X, Y, outcome_transform=None,
                         covar_module=ScaleKernel(RBFKernel(), outputscale_prior=GammaPrior(2.0, 0.15)))
    with torch.no_grad():
        model.covar_module.outputscale = torch.tensor(0.30)
        model.covar_module.base_kernel.lengthscale = torch.tensor(1.0)
        model.likelihood.noise = torch.tensor(0.01)
    return model


def test_outputscale_far_from_the_mode_is_set_by_the_prior():
    """The finding that was called "free": 100% of the curvature from the prior, the data's negative."""
    pull = prior_pull(_outputscale_model()).set_index("key")
    row = pull.loc["covar_module.outputscale"]
    assert row.prior_mode == pytest.approx(1 / 0.15)
    assert row.curv_lik < 0 < row.curv_prior  # the data alone would not hold it anywhere near here
    # in log θ, where the verdict judges it, the data's curvature is positive but the data alone would take it
    # 100x lower: its log likelihood there is higher (escape_gain >= 0 nats), so the prior sets it
    assert row.coord == "log" and row.escape_gain >= 0
    assert row.distance == pytest.approx(math.log(0.30 * 0.15))  # log(0.30 / 6.67): far below the mode
    # in prior standard deviations of log θ: Gamma(2, b) has sd(log θ) = sqrt(trigamma(2)) = sqrt(π²/6 - 1)
    assert row.distance_sd == pytest.approx(math.log(0.045) / math.sqrt(math.pi ** 2 / 6 - 1))
    # the prior pushes up, the data down: the prior is what keeps the value where it is
    assert row.d_log_prior == pytest.approx(1 / 0.30 / 12 - 0.15 / 12)  # (1/θ - b) / n for Gamma(2, b)
    assert row.d_log_lik < 0
    assert row.verdict == SET
    # the noise sits near its LogNormal(-4, 1) prior's mode with the prior dominating: held
    noise = pull.loc["likelihood.noise_covar.noise"]
    assert abs(noise.distance) < math.log(2) and noise.prior_share > 0.5 and noise.verdict == HELD


def test_each_verdict_on_a_constructed_model():
    model = _outputscale_model()
    model.mean_module.register_prior("constant_prior", NormalPrior(1.0, 0.05), lambda m: m.constant,
                                     lambda m, v: m.constant.data.fill_(v))
    pull = prior_pull(model).set_index("key")
    # a real-valued parameter 20 prior standard deviations from a sharp Normal prior's mode: set by the prior
    mean = pull.loc["mean_module.constant"]
    assert mean.distance_space == "linear" and mean.distance_sd == pytest.approx((0.0 - 1.0) / 0.05)
    assert mean.curv_prior == pytest.approx(1 / 0.05 ** 2 / 12) and mean.prior_share > 0.5
    assert mean.verdict == SET
    # no prior: free, with the data's curvature reported and a prior share of 0
    ls = pull.loc["covar_module.base_kernel.lengthscale"]
    assert ls.prior == "none" and ls.curv_prior == 0 and ls.verdict == FREE
    # held at its mode: the noise (see above); on its constraint bound: at bound, whatever the prior
    assert pull.loc["likelihood.noise_covar.noise", "verdict"] == HELD
    with torch.no_grad():
        model.likelihood.noise_covar.raw_noise.fill_(1e-4)  # GreaterThan(1e-4), not enforced: raw == value
    assert prior_pull(model).set_index("key").loc["likelihood.noise_covar.noise", "verdict"] == AT_BOUND


def test_elementwise_prior_curvature_equals_the_autograd_pass():
    """A prior on a derived value (the closure) goes through raw autograd: both paths agree on the same prior."""
    fast = prior_pull(_outputscale_model()).set_index("key")
    model = _outputscale_model()
    sk = model.covar_module
    # the same Gamma(2, 0.15), now on outputscale * 1 computed by a closure that is not the parameter itself
    sk.register_prior("outputscale_prior", GammaPrior(2.0, 0.15), lambda m: m.outputscale * 1.0,
                      lambda m, v: m._set_outputscale(v))
    slow = prior_pull(model).set_index("key")
    for col in ("d_log_prior", "curv_prior", "d_log_lik", "curv_lik"):
        assert slow.loc["covar_module.outputscale", col] == pytest.approx(
            fast.loc["covar_module.outputscale", col], rel=1e-10, abs=1e-12), col



# -- counts per key and size ---------------------------------------------------------------------------------------

def constructed_pull():
    """24 ARD lengthscales, 4 repeats x n folds at n = 20, 40, 80: x0..x3 break free at n = 40 in every repeat,
    x4..x23 stay held at 20 and 40 and leave at 80 in repeats 2 and 3 only."""
    rows = []
    for size in (20, 40, 80):
        for r in range(4):
            for j in range(24):
                held = (size == 20) if j < 4 else (size < 80 or r < 2)
                for i in range(size):
                    rows.append({"key": f"covar_module.lengthscale[{j}]", "size": size, "i_repeat": r,
                                 "i_model": i, "prior": "GammaPrior", "verdict": HELD if held else FREE})
    return pd.DataFrame(rows)


def test_verdict_table_counts_every_repeat():
    table = verdict_table(constructed_pull())
    row = table[(table.key == "covar_module.lengthscale[5]") & (table["size"] == 80)].iloc[0]
    assert (row.members, row.held, row.free, row.repeats, row.repeats_held) == (320, 160, 160, 4, 2)
    assert row.held_share == 0.5
    assert table.key.nunique() == 24 and list(table["size"].unique()) == [20, 40, 80]


def test_size_bands_give_each_size_its_share_and_counts():
    bands = size_bands(verdict_table(constructed_pull()), [20, 40, 80, 160])
    late = bands["covar_module.lengthscale[5]"]
    assert [b.share if b else None for b in late] == [1.0, 1.0, 0.5, None]
    assert (late[2].held, late[2].members, late[2].repeats_held, late[2].repeats) == (160, 320, 2, 4)
    assert late[2].text == ("n = 80: held at the prior's mode in 160 of 320 folds (50%), in 2 of 4 repeats; "
                          "set by prior 0, free 160, at bound 0")
