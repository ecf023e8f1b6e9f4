"""to_arviz: the posterior as an ArviZ DataTree that ArviZ's own psense_summary reads, with the numbers
prior_sensitivity reports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.models import SingleTaskGP

from gpviz.errors import InputError
from gpviz.priors.arviz_io import to_arviz
from gpviz.priors.posterior import resample
from gpviz.priors.sensitivity import prior_sensitivity
from tests.extras import need


def _model(batch=()):
    g = torch.Generator().manual_seed(4)
    X = torch.rand(*batch, 12, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(4 * X[..., :1]) + 0.1 * torch.randn(*batch, 12, 1, generator=g, dtype=torch.float64)
    return SingleTaskGP(X, Y)


def test_to_arviz_feeds_psense_summary_with_prior_sensitivitys_numbers():
    need("arviz_base", "arviz")
    psense = need("arviz_stats.psense", "arviz")
    need("xarray_einstats", "arviz")
    model = _model()
    tree = to_arviz(model, draws=4000, importance_draws=20000)
    assert {"posterior", "log_prior", "log_likelihood"} <= set(tree.children)
    ours = prior_sensitivity(model, draws=20000)
    assert sorted(tree["posterior"].data_vars) == sorted(ours["label"])
    assert tree["posterior"]["noise"].shape == (1, 4000)
    summary = psense.psense_summary(tree, round_to=8)
    for _, row in ours.iterrows():
        for part in ("prior", "likelihood"):
            ref = float(summary.loc[row["label"], part])
            # resampled draws carry the resampling's Monte Carlo error on top of the weights'
            assert abs(ref - row[part]) <= 0.4 * max(ref, row[part]) + 0.01, (row["label"], part, ref, row[part])


def test_to_arviz_batched_members_and_draws_checked():
    need("arviz_base", "arviz")
    tree = to_arviz(_model(batch=(2,)), draws=200, importance_draws=400)
    assert tree["posterior"]["noise"].dims == ("chain", "draw", "i_model")
    assert tree["log_likelihood"]["y"].shape == (1, 200, 2)
    with pytest.raises(InputError, match="draws"):
        to_arviz(_model(), draws=10)


def test_resample_keeps_the_weights_proportions():
    w = np.array([0.5, 0.25, 0.25, 0.0])
    idx = resample(w, 1000, np.random.default_rng(0))
    assert np.bincount(idx, minlength=4).tolist() == [500, 250, 250, 0]


def test_public_names():
    import gpviz

    assert gpviz.to_arviz is to_arviz and gpviz.prior_sensitivity is prior_sensitivity
    assert {"to_arviz", "prior_sensitivity"} <= set(gpviz.__all__)
