"""A sweep's verdicts are judged once: kept on the sweep for later renders, and beside its cells in its cache."""

from __future__ import annotations

import warnings

import pandas as pd
import torch
from botorch.models import SingleTaskGP

import gpviz
import gpviz.priors.judge as judge_module


def _factory(train_X, train_Y):
    return SingleTaskGP(train_X, train_Y)


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(12, 3, generator=g, dtype=torch.float64)
    return X, torch.sin(5 * X[:, :1]) + 0.05 * torch.randn(12, 1, generator=g, dtype=torch.float64)


def _counting(monkeypatch):
    calls = []
    real = judge_module.sweep_prior_pull

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(judge_module, "sweep_prior_pull", counted)
    return calls


def test_a_second_render_does_not_judge_again(monkeypatch):
    torch.set_num_threads(1)
    calls = _counting(monkeypatch)
    X, Y = _data()
    sweep = gpviz.cv_sweep(_factory, X, Y, sizes=[6, 8], repeats=2, progress=False)
    first = sweep.render()
    assert len(calls) == 1
    second = sweep.render(verdicts=True)
    assert len(calls) == 1  # the second render reads the verdicts kept on the sweep
    assert set(sweep.pulls) == {2}
    assert str(first) == str(second)


def test_a_sweep_read_back_from_its_cache_carries_the_same_verdicts(monkeypatch, tmp_path):
    torch.set_num_threads(1)
    calls = _counting(monkeypatch)
    X, Y = _data()
    sweep = gpviz.cv_sweep(_factory, X, Y, sizes=[6, 8], repeats=2, progress=False, cache_dir=tmp_path)
    judged = judge_module.sweep_verdicts(sweep, sweep.expression())
    assert len(calls) == 1 and judged.judged
    again = gpviz.cv_sweep(_factory, X, Y, sizes=[6, 8], repeats=2, progress=False, cache_dir=tmp_path)
    assert again.scores["cached"].all() and not again.pulls
    read = judge_module.sweep_verdicts(again, again.expression())
    assert len(calls) == 1  # read from the cache, not judged again
    pd.testing.assert_frame_equal(read.pull.astype({"verdict": str}), judged.pull.astype({"verdict": str}),
                                  check_dtype=False)
    assert read.verdicts == judged.verdicts
    # one repeat judged is another set of verdicts: judged, and kept beside the first
    judge_module.sweep_verdicts(again, again.expression(), repeats=1)
    assert len(calls) == 2 and set(again.pulls) == {1, 2}


def test_damaged_kept_verdicts_are_judged_again(monkeypatch, tmp_path):
    torch.set_num_threads(1)
    calls = _counting(monkeypatch)
    X, Y = _data()
    sweep = gpviz.cv_sweep(_factory, X, Y, sizes=[6], repeats=1, progress=False, cache_dir=tmp_path)
    judge_module.sweep_verdicts(sweep, sweep.expression())
    (path,) = sweep.cache.folder.glob("verdicts-*.pull")
    path.write_bytes(path.read_bytes()[:-10])
    again = gpviz.cv_sweep(_factory, X, Y, sizes=[6], repeats=1, progress=False, cache_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        judged = judge_module.sweep_verdicts(again, again.expression())
    assert judged.judged and len(calls) == 2
    assert any("cannot be read" in str(w.message) for w in caught)
