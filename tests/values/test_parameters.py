"""Parameter frames: columns equal expression keys, constrained values, long-frame contents."""

from __future__ import annotations

import math

import gpytorch.kernels as gk
import numpy as np
import pandas as pd
import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.errors import InputError
from tests.devices import DEVICES


def _model(n=8, d=2):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    return SingleTaskGP(X, X.sum(-1, keepdim=True))


def test_wide_frame_columns_are_the_expression_keys_in_order():
    model = _model()
    frame = gpviz.parameters(model)
    assert list(frame.columns) == ["i_model", *gpviz.model_expr(model).keys]
    assert frame["i_model"].dtype == np.int32
    assert all(frame[k].dtype == np.float64 for k in frame.columns[1:])


def test_softplus_constraint_round_trip_raw_to_value():
    k = gk.ScaleKernel(gk.RBFKernel(ard_num_dims=2)).double()  # Positive(): softplus
    with torch.no_grad():
        k.base_kernel.raw_lengthscale.copy_(torch.tensor([[-1.0, 2.0]]))
    long = gpviz.parameters(k, long=True).set_index("key")
    row = long.loc["base_kernel.lengthscale[1]"]
    assert row["raw"] == 2.0
    assert math.isclose(row["value"], math.log1p(math.exp(2.0)), rel_tol=1e-12)
    assert row["constraint"] == "Positive" and bool(row["enforced"])
    assert gpviz.parameters(k)["base_kernel.lengthscale[0]"].iloc[0] == pytest.approx(math.log1p(math.exp(-1.0)))


def test_botorch_non_enforced_constraint_raw_equals_value_and_at_bound():
    model = _model()
    with torch.no_grad():
        model.likelihood.noise_covar.raw_noise.fill_(1e-4)  # BoTorch's lower bound
    long = gpviz.parameters(model, long=True).set_index("key")
    noise = long.loc["likelihood.noise_covar.noise"]
    assert noise["raw"] == noise["value"] == pytest.approx(1e-4)
    assert noise["constraint"] == "GreaterThan" and not bool(noise["enforced"])
    assert noise["lower"] == pytest.approx(1e-4) and bool(noise["at_bound"])
    assert noise["space"] == "standardized outputs"
    ls = long.loc["covar_module.lengthscale[0]"]
    assert not bool(ls["at_bound"])


def test_long_frame_priors_with_float32_prior_in_float64_model():
    k = gk.ScaleKernel(gk.MaternKernel(nu=2.5, lengthscale_prior=GammaPrior(3.0, 6.0)),
                       outputscale_prior=GammaPrior(2.0, 0.15)).double()
    k.base_kernel.lengthscale_prior.float()  # as BoTorch models can have: float32 prior, float64 parameters
    assert k.base_kernel.lengthscale_prior.concentration.dtype == torch.float32
    long = gpviz.parameters(k, long=True).set_index("key")
    ls = long.loc["base_kernel.lengthscale"]
    assert ls["prior"] == "GammaPrior"
    assert ls["prior_params"] == "concentration=3, rate=6"
    assert ls["prior_mode"] == pytest.approx(2.0 / 6.0)
    assert long.loc["outputscale", "prior_mode"] == pytest.approx(1.0 / 0.15)
    none = gpviz.parameters(gk.RBFKernel(), long=True)
    assert list(none["prior"]) == ["none"] and math.isnan(none["prior_mode"].iloc[0])


def test_batched_long_frame_has_a_row_per_key_and_member():
    k = gk.RBFKernel(ard_num_dims=3, batch_shape=torch.Size([5])).double()
    long = gpviz.parameters(k, long=True)
    assert len(long) == 3 * 5
    assert sorted(long["i_model"].unique()) == list(range(5))


@pytest.mark.parametrize("device", DEVICES)
def test_values_on_any_device_equal_the_models_own(device):
    """Read on the model's device, returned as float64 numpy; the model's own constrained values are the reference."""
    model = _model().to(device)
    with torch.no_grad():
        model.covar_module.lengthscale = torch.tensor([[0.3, 2.5]], device=device)
    frame = gpviz.parameters(model)
    keys = list(gpviz.model_expr(model).keys)
    want = {
        "covar_module.lengthscale[0]": model.covar_module.lengthscale[0, 0],
        "covar_module.lengthscale[1]": model.covar_module.lengthscale[0, 1],
        "likelihood.noise_covar.noise": model.likelihood.noise.reshape(-1)[0],
        "mean_module.constant": model.mean_module.constant.reshape(-1)[0],
    }
    assert set(want) <= set(keys), keys
    for key, value in want.items():
        assert frame[key].iloc[0] == pytest.approx(float(value.detach().cpu()), rel=1e-12), key
    assert all(p.device.type == device for p in model.parameters())  # nothing was moved


def test_model_in_another_dtype_and_mode_left_as_found():
    model = _model().float()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frame = gpviz.parameters(model)
    assert frame.iloc[:, 1:].dtypes.unique().tolist() == [np.float64]
    assert not model.training
    assert all(v.dtype == torch.float32 for v in model.state_dict().values() if v.is_floating_point())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_object_is_a_typed_error():
    with pytest.raises(InputError, match="got builtins.dict"):
        gpviz.parameters({"lengthscale": 1.0})


# --------------------------------------------------------------------------- #
# Parameters without values                                                 #
# --------------------------------------------------------------------------- #


def _x(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_meta_and_uninitialized_parameters_are_a_typed_error():
    kernel = gk.ScaleKernel(gk.RBFKernel()).to("meta")
    with pytest.raises(InputError, match="meta"):
        gpviz.parameters(kernel)
    model = SingleTaskGP(_x(6, 2), _x(6, 1)).to("meta")
    with pytest.raises(InputError, match="meta"):
        gpviz.parameters(model)
    with pytest.raises(InputError, match="meta device"):
        gpviz.kernel_expr(gk.RBFKernel().double()).evaluate(torch.empty(3, 2, device="meta"))


def test_labels_name_each_key_beside_it():
    """The long frame's ``label`` and the wide frame's ``attrs["labels"]``: feature names, unique per frame."""
    model = _model(d=2)
    model.covar_module = gk.AdditiveKernel(gk.RBFKernel(ard_num_dims=2), gk.MaternKernel(ard_num_dims=2))
    wide = gpviz.parameters(model, feature_names=["log_lr", "dropout"])
    labels = wide.attrs["labels"]
    assert list(labels) == list(wide.columns[1:])
    assert labels["covar_module.kernels.0.lengthscale[0]"].startswith("lengthscale[log_lr]")
    assert labels["covar_module.kernels.1.lengthscale[1]"].startswith("lengthscale[dropout]")
    assert len(set(labels.values())) == len(labels)  # two kernels' lengthscales are told apart
    long = gpviz.parameters(model, long=True, feature_names=["log_lr", "dropout"])
    assert list(long.columns[:2]) == ["key", "label"]
    assert dict(zip(long["key"], long["label"])) == labels
    # without names the label still reads, by the default column name
    assert gpviz.parameters(_model(), long=True)["label"].iloc[0] == "lengthscale[x0]"


def test_parameter_frames_are_the_wide_and_long_frames_from_one_reading():
    from gpviz.values.parameters import parameter_frames

    X = torch.rand(4, 8, 3, dtype=torch.float64)  # 4 members, ARD lengthscales, a prior on each
    model = SingleTaskGP(X, X.sum(-1, keepdim=True))
    with torch.no_grad():
        model.covar_module.lengthscale = 0.1 + torch.rand(4, 1, 3, dtype=torch.float64)
    for units in ("model", "original"):
        wide, long = parameter_frames(model, ["a", "b", "c"], units=units)
        pd.testing.assert_frame_equal(wide, gpviz.parameters(model, feature_names=["a", "b", "c"], units=units))
        pd.testing.assert_frame_equal(long, gpviz.parameters(model, long=True, feature_names=["a", "b", "c"],
                                                             units=units))
        assert wide.attrs["labels"]["covar_module.lengthscale[2]"] == "lengthscale[c]"
    # the wide frame is one float block after i_model, the long frame's rows key-major
    assert list(long["key"][:4]) == [long["key"][0]] * 4 and list(long["i_model"][:4]) == [0, 1, 2, 3]


def test_second_positional_argument_is_feature_names_and_long_is_keyword_only():
    model = _model()
    frame = gpviz.parameters(model, ["alpha", "beta"])  # names, as in model_expr / render
    assert frame.attrs["labels"]["covar_module.lengthscale[0]"] == "lengthscale[alpha]"
    assert list(frame.columns) == ["i_model", *gpviz.model_expr(model).keys]  # the wide frame, not the long one
    long = gpviz.parameters(model, ["alpha", "beta"], long=True)
    assert set(long.loc[long["key"] == "covar_module.lengthscale[1]", "label"]) == {"lengthscale[beta]"}
    with pytest.raises(InputError, match=r"feature_names=True is a bool.*long=True"):
        gpviz.parameters(model, True)
    with pytest.raises(TypeError):
        gpviz.parameters(model, None, True)  # long only by keyword
