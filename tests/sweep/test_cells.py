"""One cell of a sweep: refused structures, dtypes kept, predictions as BoTorch's batch_cross_validation makes them."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.cross_validation import batch_cross_validation, gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.optim.fit import fit_gpytorch_mll_torch
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.errors import GpvizWarning, InputError
from gpviz.sweep import cells
from gpviz.sweep.runner import cv_sweep
from tests.sweep.scale import FIT, make_data


# -- a factory that forgets batch_shape -------------------------------------------------------------------------

def _unbatched(train_X, train_Y):
    return SingleTaskGP(train_X, train_Y, covar_module=ScaleKernel(MaternKernel(ard_num_dims=train_X.shape[-1])))


def test_a_factory_without_batch_shape_is_refused_before_any_fit_saying_what_to_pass():
    X, Y = make_data()
    calls = []

    def counting(train_X, train_Y):
        calls.append(train_X.shape)
        return _unbatched(train_X, train_Y)

    state = torch.random.get_rng_state()
    with pytest.raises(InputError, match=r"n=4 leave-one-out folds.*without that batch shape \[4\]: "
                                         r"covar_module\.raw_outputscale \(shape \[\]\).*"
                                         r"batch_shape=train_X\.shape\[:-2\].*folds='separate'"):
        cv_sweep(counting, X, Y, [4, 6], 2, progress=False, fit_kwargs=FIT, folds="batched")
    assert len(calls) == 1  # the first cell's model was built, then refused before its fit; no other cell ran
    assert torch.equal(state, torch.random.get_rng_state())
    # BoTorch itself cannot fit it: the refusal is about a fit that fails, not a taste
    folds = gen_loo_cv_folds(X[:4], Y[:4])
    model = _unbatched(folds.train_X, folds.train_Y)
    with warnings.catch_warnings(), pytest.raises(Exception):
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))


def test_a_factory_without_batch_shape_is_refused_in_worker_processes_too():
    X, Y = make_data()
    with pytest.raises(InputError, match=r"without that batch shape.*batch_shape=train_X\.shape\[:-2\]"):
        cv_sweep(_unbatched, X, Y, [4, 6], 2, progress=False, fit_kwargs=FIT, workers=2, folds="batched")


def test_an_unbatched_likelihood_is_named_too():
    X, Y = make_data()

    def make(tx, ty):
        return SingleTaskGP(tx, ty, likelihood=GaussianLikelihood())

    with pytest.raises(InputError, match=r"likelihood\.noise_covar\.raw_noise \(shape \[1\]\)"):
        cv_sweep(make, X, Y, [4], 1, progress=False, fit_kwargs=FIT, folds="batched")


def test_batch_aware_factories_and_joint_fits_are_not_refused_and_a_raising_factory_still_fails_cell_by_cell():
    X, Y = make_data()
    sw = cv_sweep(SingleTaskGP, X, Y, [4], 1, progress=False, fit_kwargs=FIT)
    assert (sw.scores["status"] == "ok").all()
    # the joint path (one summed loss) fits folds that share parameters: not this check's case
    joint = dict(optimizer=fit_gpytorch_mll_torch, optimizer_kwargs={"step_limit": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv_sweep(_unbatched, X, Y, [4], 1, progress=False, fit_kwargs=joint)

    def broken(tx, ty):
        raise RuntimeError("no model today")

    with pytest.warns(UserWarning, match="no model today"):
        sw = cv_sweep(broken, X, Y, [4], 1, progress=False, fit_kwargs=FIT)
    assert (sw.scores["status"] == "failed").all()


# -- the data's dtype --------------------------------------------------------------------------------------------

def test_float64_arrays_and_frames_keep_their_dtype_under_a_float32_default():
    X, Y = make_data()  # float64 tensors
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        ref = cv_sweep(SingleTaskGP, X, Y, [5], 1, progress=False, fit_kwargs=FIT)
        arr = cv_sweep(SingleTaskGP, X.numpy(), Y.numpy(), [5], 1, progress=False, fit_kwargs=FIT)
        df = cv_sweep(SingleTaskGP, pd.DataFrame(X.numpy(), columns=["a", "b"]), pd.Series(Y.numpy()[:, 0]), [5], 1,
                      progress=False, fit_kwargs=FIT)
        f32 = cv_sweep(SingleTaskGP, X.numpy().astype(np.float32), Y.numpy().astype(np.float32), [5], 1,
                       progress=False, fit_kwargs=FIT)
        ints = cv_sweep(SingleTaskGP, (10 * X).round().int().numpy(), Y.numpy(), [5], 1, progress=False,
                        fit_kwargs=FIT)
    finally:
        torch.set_default_dtype(old)
    assert ref.X.dtype == arr.X.dtype == df.X.dtype == arr.Y.dtype == df.Y.dtype == torch.float64
    assert torch.equal(arr.X, X) and torch.equal(df.X, X)  # no float32 round trip
    # the same fit as the float64 tensors give, to the last bit
    for sw in (arr, df):
        pd.testing.assert_frame_equal(sw.predictions, ref.predictions, check_exact=True)
    assert f32.X.dtype == torch.float32
    assert ints.X.dtype == torch.float64 and (ints.scores["status"] == "ok").all()  # ints follow Y's float64
    with pytest.raises(InputError, match=r"X and Y must share one float dtype, got X in torch.float32 and Y in "
                                         r"torch.float64"):
        cv_sweep(SingleTaskGP, X.numpy().astype(np.float32), Y.numpy(), [5], 1, progress=False)
    lists = cv_sweep(SingleTaskGP, X.tolist(), Y.tolist(), [5], 1, progress=False, fit_kwargs=FIT)
    assert lists.X.dtype == torch.float64  # nothing to keep: torch's default (float64 here)


# -- cells the pages do not draw are said ------------------------------------------------------------------------

def test_a_cell_whose_parameters_cannot_be_read_is_a_warning_and_a_note_on_the_pages(monkeypatch):
    X, Y = make_data()
    read = cells.parameters

    def unreadable_at_6(model):  # a deliberately broken reader for one cell
        if model.train_inputs[0].shape[0] == 6:
            raise RuntimeError("no values today")
        return read(model)

    monkeypatch.setattr(cells, "parameters", unreadable_at_6)
    with pytest.warns(GpvizWarning, match=r"parameters of the cell n=6, repeat 0 could not be read "
                                          r"\(RuntimeError: no values today\); its scores count"):
        sw = cv_sweep(SingleTaskGP, X, Y, [4, 6], 1, progress=False, fit_kwargs=FIT)
    monkeypatch.undo()
    s = sw.scores
    assert s["status"].tolist() == ["ok", "ok"] and s["mse"].notna().all()  # the scores stand...
    assert set(sw.parameters["size"]) == {4}                                  # ... the dots do not
    note = "n = 6, repeat 0: parameters not read: RuntimeError: no values today; its scores count"
    assert sw.cell_notes() == (note + ", its folds are not drawn",)
    assert note in sw.render(verdicts=False).html()
    assert note in gpviz.compare({"a": sw}, pull_repeats=0).html()


def test_a_failed_cell_is_named_on_the_page():
    X, Y = make_data()

    def fail_at_5(tx, ty):
        if tx.shape[0] == 5:
            raise RuntimeError("no model at n=5")
        return SingleTaskGP(tx, ty)

    with pytest.warns(GpvizWarning):
        sw = cv_sweep(fail_at_5, X, Y, [4, 5], 1, progress=False, fit_kwargs=FIT)
    assert "Not drawn: n = 5, repeat 0: failed (RuntimeError: no model at n=5); no scores, no dots" in \
        sw.render(verdicts=False).html()
    ok = cv_sweep(SingleTaskGP, X, Y, [4], 1, progress=False, fit_kwargs=FIT)
    assert ok.cell_notes() == () and "Not drawn" not in ok.render(verdicts=False).html()


# -- the same predictions as BoTorch's batch_cross_validation ----------------------------------------------------

def test_predictions_equal_batch_cross_validation_and_the_docstring_says_how_the_default_differs():
    X, Y = make_data()
    assert inspect.signature(batch_cross_validation).parameters["observation_noise"].default is False
    assert inspect.signature(cv_sweep).parameters["observation_noise"].default is True
    doc = " ".join(cv_sweep.__doc__.split())
    assert "``batch_cross_validation`` defaults to ``False``" in doc and "exactly as" not in doc
    noisy = cv_sweep(SingleTaskGP, X, Y, [5], 1, seed=2, progress=False, fit_kwargs=FIT)
    latent = cv_sweep(SingleTaskGP, X, Y, [5], 1, seed=2, progress=False, fit_kwargs=FIT, observation_noise=False)
    folds = gen_loo_cv_folds(X[torch.as_tensor(noisy.subsets[(0, 0)])], Y[torch.as_tensor(noisy.subsets[(0, 0)])])
    for sw, obs in ((noisy, True), (latent, False)):
        with torch.random.fork_rng():
            torch.manual_seed(cells.cell_seed(2, 5, 0))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = batch_cross_validation(SingleTaskGP, ExactMarginalLogLikelihood, folds, fit_args=FIT,
                                             observation_noise=obs)
        p = sw.predictions
        np.testing.assert_allclose(p["pred_mean"].to_numpy(), ref.posterior.mean.detach().reshape(-1).numpy(), rtol=1e-10)
        np.testing.assert_allclose(p["pred_var"].to_numpy(), ref.posterior.variance.detach().reshape(-1).numpy(), rtol=1e-10)
        np.testing.assert_array_equal(p["y_true"].to_numpy(), ref.observed_Y.reshape(-1).numpy())
    assert (noisy.predictions["pred_var"] > latent.predictions["pred_var"]).all()  # the defaults really differ
