"""gpviz inside Ax's own analysis API: ``client.compute_analyses([gpviz.ax.ModelAnalysis()])`` with a real Client."""

from __future__ import annotations

import logging

import pytest

import gpviz
import gpviz.ax
from tests.ax_helpers import new_client, require_ax, run_trials

require_ax()

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    """A real Ax Client past its initialization trials, with a fitted BoTorch surrogate."""
    logging.getLogger("ax").setLevel(logging.WARNING)
    c = new_client("cards")
    run_trials(c, 6)  # center + 4 Sobol, then one trial Ax's BoTorch node generates (its fit)
    return c


def test_model_analysis_is_a_card_among_ax_cards(client):
    from ax.core.analysis_card import AnalysisCard, ErrorAnalysisCard

    (card,) = client.compute_analyses([gpviz.ax.ModelAnalysis()], display=False)
    assert isinstance(card, AnalysisCard) and not isinstance(card, ErrorAnalysisCard), card.blob[:2000]
    expr = gpviz.model_expr(client)
    # the HTML Ax shows: its card template around the gpviz page, which carries gpviz.js and the charts
    html = card._repr_html_()
    assert 'class="card"' in html and "gpviz-figure" in html and "window.gpviz" in html
    for key in expr.keys:
        assert f'data-key="{key}"' in html
    for name in ("log10(lr)", "momentum", "layers"):
        assert name in html
    # the text fallback Ax asks for (papermill): the expression's own text; df: the parameters' values
    first, rest = card._body_papermill().split("\n", 1)
    assert first.startswith("GenerationStrategy ") and rest == expr.text().split("\n", 1)[1]
    assert set(card.df.columns) >= set(gpviz.parameters(client).columns)


def test_without_a_model_the_card_says_why():
    from ax.core.analysis_card import ErrorAnalysisCard

    c = new_client("no-model")
    c.configure_generation_strategy()  # Sobol first: no model fitted yet
    (card,) = c.compute_analyses([gpviz.ax.ModelAnalysis()], display=False)
    assert isinstance(card, ErrorAnalysisCard) and "InputError" in card.subtitle


# --------------------------------------------------------------------------- #
# The surrogate over time                                                     #
# --------------------------------------------------------------------------- #

def test_history_analysis_without_a_history_is_the_refit_false_sweep_over_trials(client):
    from ax.core.analysis_card import AnalysisCard, ErrorAnalysisCard

    from gpviz.ax_history import HistoryAnalysis

    (card,) = client.compute_analyses([HistoryAnalysis(sizes=[4, 6])], display=False)
    assert isinstance(card, AnalysisCard) and not isinstance(card, ErrorAnalysisCard), card.blob[:2000]
    # the reference: the same sweep called directly (itself tested against BoTorch's efficient_loo_cv)
    sweep = gpviz.cv_sweep(client, sizes=[4, 6], order="trials", refit=False, progress=False)
    assert card.df[["size", "mse", "nlpd"]].equals(sweep.scores[["size", "mse", "nlpd"]])
    html = card._repr_html_()
    assert 'class="card"' in html and "gpviz-figure" in html and "window.gpviz" in html
    assert "n = the first n trials in the order Ax ran them" in html and "metric loss" in html
    # the experiment's units by default, through Ax's transforms: the log-scaled lr's lengthscale in decades
    assert "lengthscale in decades of lr" in html and "normalized inputs" not in html
    text = card._body_papermill()
    # Ax hands the analysis the generation strategy: the note names it and its experiment
    assert "GenerationStrategy 'Center+Sobol+MBM:fast' of experiment 'cards'" in text.splitlines()[0]
    assert text.splitlines()[0].endswith("metric loss, 6 completed trials; n = the first n trials in the order Ax "
                                         "ran them.") and "efficient_loo_cv" in text
    assert [int(line.split()[0]) for line in text.splitlines()[2:]] == [4, 6]  # one line per size
    (default,) = client.compute_analyses([HistoryAnalysis()], display=False)
    assert list(default.df["size"]) == [5, 6]  # from 5 trials up to every completed trial


def test_history_analysis_shows_a_recorded_history(client):
    from ax.core.analysis_card import AnalysisCard, ErrorAnalysisCard

    from gpviz.ax_history import HistoryAnalysis

    history = gpviz.ModelHistory(client)
    with history:
        run_trials(client, 2)
    (card,) = client.compute_analyses([HistoryAnalysis(history)], display=False)
    assert isinstance(card, AnalysisCard) and not isinstance(card, ErrorAnalysisCard), card.blob[:2000]
    assert [s.trials for s in history.snapshots] == [6, 7]
    assert sorted(set(card.df["trials"])) == [6, 7]
    html = card._repr_html_()
    assert "Ax model history" in html and "decades of lr" in html
    lines = card._body_papermill().splitlines()
    assert "n = the first n trials in the order Ax ran them (trials seen: 6, 7)" in lines[1]
    last = history.snapshots[-1]
    key = "covar_module.lengthscale[0]"
    assert lines[3].startswith("n = 7: ") and f"{last.expr.labels[key]} {float(last.values[key].iloc[0]):.4g}" in lines[3]


def test_history_analysis_before_a_model_is_an_error_card():
    from ax.core.analysis_card import ErrorAnalysisCard

    from gpviz.ax_history import HistoryAnalysis

    c = new_client("no-model-yet")
    c.configure_generation_strategy()
    (card,) = c.compute_analyses([HistoryAnalysis()], display=False)
    assert isinstance(card, ErrorAnalysisCard) and "InputError" in card.subtitle
