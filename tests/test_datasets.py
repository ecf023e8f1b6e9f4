"""Built-in data sets: shapes, dtypes, determinism, and that irrelevant inputs really are irrelevant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import gpviz
from gpviz import datasets
from gpviz.datasets import LANDSCAPE_FEATURE_NAMES, hyperparameter_landscape, load, smooth


def test_landscape_shapes_names_and_unit_cube():
    ds = hyperparameter_landscape(50, seed=1)
    assert ds.X.shape == (50, 10) and ds.Y.shape == (50, 1)
    assert ds.X.dtype == torch.float64 and ds.Y.dtype == torch.float64
    assert ds.feature_names == LANDSCAPE_FEATURE_NAMES and len(set(ds.feature_names)) == 10
    assert bool((ds.X >= 0).all() and (ds.X <= 1).all())
    assert set(ds.relevant) | set(ds.irrelevant) == set(ds.feature_names)
    assert not set(ds.relevant) & set(ds.irrelevant)
    assert len(ds.irrelevant) >= 3 and len(ds.log_scaled) >= 3
    assert ds.categorical == {"optimizer": ("sgd", "adam", "adamw")}
    assert ds.cat_dims == [9]
    # the categorical column holds exactly its codes / (K - 1)
    assert set(ds.X[:, 9].tolist()) == {0.0, 0.5, 1.0}
    assert torch.isfinite(ds.Y).all()


def test_same_seed_same_data_other_seed_other_data():
    a, b = hyperparameter_landscape(30, seed=3), hyperparameter_landscape(30, seed=3)
    c = hyperparameter_landscape(30, seed=4)
    assert torch.equal(a.X, b.X) and torch.equal(a.Y, b.Y)
    assert not torch.equal(a.X, c.X) and not torch.equal(a.Y, c.Y)
    s1, s2 = smooth(20, seed=5), smooth(20, seed=5)
    assert torch.equal(s1.X, s2.X) and torch.equal(s1.Y, s2.Y)


def test_landscape_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    hyperparameter_landscape(20, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_irrelevant_inputs_do_not_change_the_function():
    ds = hyperparameter_landscape(200, seed=0, noise_std=0.0)
    assert torch.allclose(ds.f(ds.X), ds.Y, atol=0, rtol=0)
    g = torch.Generator().manual_seed(0)
    X2 = ds.X.clone()
    for name in ds.irrelevant:
        j = ds.feature_names.index(name)
        X2[:, j] = torch.rand(X2.shape[0], generator=g, dtype=torch.float64)
    assert torch.equal(ds.f(X2), ds.f(ds.X))
    # ...while every relevant input does change it
    for name in ds.relevant:
        j = ds.feature_names.index(name)
        X3 = ds.X.clone()
        X3[:, j] = 1.0 - X3[:, j]
        assert (ds.f(X3) - ds.f(ds.X)).abs().max() > 1e-3, name


def test_noise_has_the_requested_size():
    ds = hyperparameter_landscape(400, seed=2, noise_std=0.05)
    resid = (ds.Y - ds.f(ds.X)).squeeze(-1)
    assert 0.04 < float(resid.std()) < 0.06


def test_frame_original_units():
    ds = hyperparameter_landscape(40, seed=0)
    df = ds.frame(original=True)
    assert list(df.columns) == [n.removeprefix("log_") for n in ds.feature_names] + ["y"]
    assert df["learning_rate"].between(1e-5, 1e-1).all()
    assert df["batch_size"].between(16, 1024).all()
    # a log-scaled setting is spread evenly on a log axis: its unit-cube value is the log position
    lo, hi = ds.ranges["log_learning_rate"]
    expect = (np.log10(df["learning_rate"]) - np.log10(lo)) / (np.log10(hi) - np.log10(lo))
    assert np.allclose(expect, ds.X[:, 0].numpy())
    assert isinstance(df["optimizer"].dtype, pd.CategoricalDtype)
    assert set(df["optimizer"]) <= {"sgd", "adam", "adamw"}
    unit = ds.frame()
    assert unit["log_learning_rate"].between(0, 1).all()
    assert (unit["y"].to_numpy() == ds.Y[:, 0].numpy()).all()


def test_smooth_shapes_and_d():
    ds = smooth(25, d=3, seed=0)
    assert ds.X.shape == (25, 3) and ds.Y.shape == (25, 1)
    assert ds.feature_names == ("x0", "x1", "x2") and ds.irrelevant == ()


def test_subset_is_seeded_and_keeps_metadata():
    ds = hyperparameter_landscape(60, seed=0)
    a, b = ds.subset(10, seed=1), ds.subset(10, seed=1)
    assert torch.equal(a.X, b.X) and a.X.shape == (10, 10)
    assert a.feature_names == ds.feature_names and a.f is ds.f
    with pytest.raises(gpviz.GpvizError, match="between 1 and 60, got 61"):
        ds.subset(61)


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must be a positive integer, got 0"),
    ({"n": 2.5}, "n must be a positive integer, got 2.5"),
    ({"seed": "a"}, "seed must be an integer, got 'a'"),
    ({"noise_std": -1.0}, r"noise_std must be a finite number >= 0, got -1.0"),
])
def test_bad_arguments_are_typed_errors(kwargs, match):
    with pytest.raises(gpviz.GpvizError, match=match):
        hyperparameter_landscape(**kwargs)


def test_load_by_name():
    assert load("smooth", n=5).X.shape == (5, 2)
    assert load("landscape", n=7).X.shape == (7, 10)
    with pytest.raises(gpviz.GpvizError, match=r"unknown data set 'nope' \(must be one of \['landscape', 'smooth'\]\)"):
        load("nope")
    assert set(datasets.DATASETS) == {"landscape", "smooth"}


def test_ard_model_finds_the_irrelevant_inputs():
    """With enough data and a loose prior, ARD lengthscales of irrelevant inputs grow past the relevant ones."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from gpytorch.mlls import ExactMarginalLogLikelihood

    ds = hyperparameter_landscape(80, seed=0)
    model = SingleTaskGP(ds.X, ds.Y)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    ls = model.covar_module.lengthscale.detach().reshape(-1)
    rel = [ls[ds.feature_names.index(n)].item() for n in ("log_learning_rate", "log_batch_size")]
    irr = [ls[ds.feature_names.index(n)].item() for n in ds.irrelevant]
    assert min(irr) > max(rel), (rel, irr)
