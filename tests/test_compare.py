"""compare: what it accepts (sweeps, by label) and the score table it puts on the page."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Normalize

import gpviz
from gpviz.errors import InputError
from gpviz.sweep.scores import score_table


class _Scores:
    def __init__(self, mse):
        self.scores = pd.DataFrame({"i_config": [0, 0, 1, 1], "size": [5, 5, 9, 9], "i_repeat": [0, 1, 0, 1],
                                    "mse": mse, "status": ["ok"] * 4})


def test_score_table_ratios_are_to_the_first_sweep():
    table = score_table({"a": _Scores([1.0, 1.0, 0.5, 0.5]), "b": _Scores([2.0, 2.0, 0.25, 0.25])})
    assert list(table["label"]) == ["a", "b", "a", "b"]
    assert table["ratio_to_first"].tolist() == pytest.approx([1.0, 2.0, 1.0, 0.5])


@pytest.mark.parametrize("bad, message", [
    ([1, 2], "expects a dict"),
    ({}, "at least one sweep"),
    ({"": None}, "non-empty strings"),
    ({"a": "not a sweep"}, "is a str, not a sweep from gpviz.cv_sweep"),
])
def test_bad_input_is_a_typed_error_naming_it(bad, message):
    with pytest.raises(InputError, match=message):
        gpviz.compare(bad)


def test_compare_shows_sweeps_in_original_units_cell_by_cell():
    g = torch.Generator().manual_seed(0)
    X = 10 + 40 * torch.rand(10, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(X[:, :1] / 8)
    sw = gpviz.cv_sweep(lambda tx, ty: SingleTaskGP(tx, ty, input_transform=Normalize(d=2, batch_shape=tx.shape[:-2])),
                        X, Y, [5], 1, progress=False, fit_kwargs={"optimizer_kwargs": {"options": {"maxiter": 10}}})
    page = gpviz.compare({"a": sw}, pull_repeats=0, units="original").html()
    assert "(original inputs;" in page and "(original inputs;" not in gpviz.compare({"a": sw}, pull_repeats=0).html()
    with pytest.raises(InputError, match="units"):
        gpviz.compare({"a": sw}, units="data")


def test_sweeps_of_different_models_share_one_row_per_key_and_say_which_lack_it():
    from tests.sweep.scale import FIT as FIT_SMALL, make_data, matern

    X, Y = make_data(n=10)
    plain = gpviz.cv_sweep(SingleTaskGP, X, Y, [5], 1, progress=False, fit_kwargs=FIT_SMALL)
    scaled = gpviz.cv_sweep(matern, X, Y, [5], 1, progress=False, fit_kwargs=FIT_SMALL)
    fig = gpviz.compare({"plain": plain, "scaled": scaled}, pull_repeats=0)
    html = fig.html()
    keys = list(dict.fromkeys(list(plain.expression().keys) + list(scaled.expression().keys)))
    for key in keys:  # one label per key, whichever model has it
        assert html.count(f'class="gpviz-cmp-label gpviz-cmp-at" title="{key}"') == 1, key
    only_scaled = [k for k in scaled.expression().keys if k not in plain.expression().keys]
    only_plain = [k for k in plain.expression().keys if k not in scaled.expression().keys]
    assert only_scaled and only_plain  # each lacks some of the other's: a cell that says so for each
    assert html.count("not in this sweep's model") == len(only_scaled) + len(only_plain)
    assert set(fig.figures["plain"].keys) == set(plain.expression().keys)
