"""gpviz.ax_history.ModelHistory on a real Ax Client (2 inputs, 8 trials): the models Ax fitted and used, each
checked against the fit gpviz.trace_fits records around the same loop."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch

import gpviz
from gpviz.ax_history import ModelHistory
from gpviz.errors import InputError

from tests.ax_helpers import new_client, require_ax, run_trials

require_ax()
from ax.api.configs import RangeParameterConfig  # noqa: E402

pytestmark = pytest.mark.slow

LR = (1e-4, 1e-1)


def loss(p: dict) -> float:
    return (math.log10(p["lr"]) + 2.5) ** 2 + (p["momentum"] - 0.8) ** 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """5 initialization trials, then 3 trials Ax generates from its fitted surrogate (3 fits), all recorded
    by one history entered twice (the loop split across two blocks, as a notebook's cells would), with an
    outer trace_fits block recording the same fits independently."""
    logging.getLogger("ax").setLevel(logging.WARNING)
    client = new_client("tiny", parameters=[
        RangeParameterConfig(name="lr", bounds=LR, parameter_type="float", scaling="log"),
        RangeParameterConfig(name="momentum", bounds=(0.0, 0.99), parameter_type="float")])
    folder = tmp_path_factory.mktemp("history")
    with gpviz.trace_fits() as fits:
        history = gpviz.ModelHistory(client, folder=folder)
        for block in (6, 2):
            with history:
                run_trials(client, block, objective=loss)
    return client, history, fits, folder


def test_one_snapshot_per_model_ax_used_with_the_trials_it_saw(run):
    client, history, fits, _ = run
    assert gpviz.ModelHistory is ModelHistory and "ModelHistory" in gpviz.__all__
    assert [s.trials for s in history.snapshots] == [5, 6, 7]  # kept across the two blocks
    assert history.metric == "loss"
    assert "Ax Client 'tiny'" in history.title
    assert "get_next_trials" not in vars(client)  # the client is left as found
    assert history.snapshots[-1].expr.module is gpviz.model_expr(client).module


def test_each_snapshot_equals_the_fit_trace_fits_recorded(run):
    _, history, fits, _ = run
    models = [s.expr.module for s in history.snapshots]
    for snap, model in zip(history.snapshots, models):
        traced = [t for t in fits if t.mll is not None and t.mll.model is model]
        assert len(traced) == 1  # the outer block saw that fit too
        frames = traced[0].frames
        last = frames[frames["i_timestep"] == frames["i_timestep"].max()]
        keys = list(snap.expr.keys)
        np.testing.assert_array_equal(snap.values[keys].to_numpy(), last[keys].to_numpy())
        assert snap.fit is traced[0]
        # the data the model saw: its own training inputs, one row per trial
        torch.testing.assert_close(snap.train_X, model.train_inputs[0].detach())
        assert snap.train_X.shape == (snap.trials, 2)
    # the models differ (Ax refit with each trial), so the history is not one model repeated
    ls = [s.values["covar_module.lengthscale[0]"].iloc[0] for s in history.snapshots]
    assert len(set(ls)) == 3


def test_snapshots_persisted_to_the_folder(run):
    _, history, _, folder = run
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["trials_0005.pt", "trials_0006.pt", "trials_0007.pt"]
    saved = torch.load(folder / "trials_0006.pt", weights_only=False)
    snap = history.snapshots[1]
    assert saved["trials"] == 6 and saved["metric"] == "loss"
    assert saved["feature_names"] == ["log10(lr)", "momentum"]
    torch.testing.assert_close(saved["train_X"], snap.train_X)
    for k, v in snap.state.items():
        torch.testing.assert_close(saved["state_dict"][k], v)


def test_a_saved_history_loads_as_the_same_snapshots_and_page(run, tmp_path):
    """ModelHistory.load(folder) in a fresh object: what the run saved while the real Client ran, nothing refit."""
    client, history, _, folder = run
    loaded = ModelHistory.load(folder)
    assert loaded is not history and loaded.client is None
    assert [s.trials for s in loaded.snapshots] == [5, 6, 7]
    assert (loaded.metric, loaded.title) == (history.metric, history.title)
    for mine, back in zip(history.snapshots, loaded.snapshots):
        pd.testing.assert_frame_equal(back.values, mine.values)
        pd.testing.assert_frame_equal(back.original, mine.original)
        assert back.labels == mine.labels
        assert [f.name for f in back.expr.features] == [f.name for f in mine.expr.features] == ["log10(lr)",
                                                                                              "momentum"]
        assert back.expr.keys == mine.expr.keys and back.expr.title == mine.expr.title
        assert back.state.keys() == mine.state.keys()
        for k, v in mine.state.items():
            assert torch.equal(back.state[k], v), k
        # the model in the loaded expression is the one Ax fitted, as it was: its state and its training data
        for k, v in back.expr.module.state_dict().items():
            assert torch.equal(v, mine.state[k]), k
        assert torch.equal(back.train_X, mine.train_X) and torch.equal(back.train_Y, mine.train_Y)
        assert back.fit is None  # traced fits are not persisted
    for units in ("model", "original"):
        assert loaded.render(units=units).html() == history.render(units=units).html()
    with pytest.raises(InputError, match="loaded from a folder"):
        with loaded:
            pass
    with pytest.raises(InputError, match="is not a folder"):
        ModelHistory.load(tmp_path / "nowhere")
    with pytest.raises(InputError, match="no trials_<n>.pt"):
        ModelHistory.load(tmp_path)
    torch.save({"trials": 5, "state_dict": {}}, tmp_path / "trials_0005.pt")
    with pytest.raises(InputError, match="trials_0005.pt.*without the model"):
        ModelHistory.load(tmp_path)


def test_the_page_says_what_it_is_with_names_and_units(run):
    _, history, _, _ = run
    html = history.render().html()
    assert "Ax model history: Ax Client &#x27;tiny&#x27;" in html or "Ax model history: Ax Client &#39;tiny&#39;" in html
    assert "metric loss" in html
    assert "n = 5" in html and "n = 7" in html and "trials seen: 5, 6, 7" in html
    assert "first k trials in the order Ax ran them" in html
    assert "log10(lr)" in html
    original = history.render(units="original").html()
    assert "decades of lr" in original


def test_no_model_recorded_is_said():
    client = new_client("empty", parameters=[RangeParameterConfig(name="x", bounds=(0.0, 1.0),
                                                                   parameter_type="float")])
    with ModelHistory(client) as history:
        client.get_next_trials(max_trials=1)
    assert history.snapshots == []
    with pytest.raises(InputError, match="recorded no model"):
        history.render()
    with pytest.raises(InputError):
        ModelHistory(object())


@pytest.mark.browser
def test_the_history_page_draws_one_band_per_model_in_chromium(run, tmp_path, open_page):
    _, history, _, _ = run
    path = tmp_path / "history.html"
    history.render(units="original").save(path)
    page = open_page(path, screenshot="ax_model_history.png")
    assert page.console_errors == []
    text = page.eval("document.body.innerText")
    assert "trials seen: 5, 6, 7" in text and "decades of lr" in text
    charts = page.eval("document.querySelectorAll('.gpviz-chart, [data-key]').length")
    assert charts >= len(history.snapshots[-1].expr.keys)
