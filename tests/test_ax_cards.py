"""gpviz inside Ax's own analysis API: ``client.compute_analyses([gpviz.ax.ModelAnalysis()])`` with a real Client."""

from __future__ import annotations

import logging

import pytest

import gpviz
import gpviz.ax
from tests.test_ax import new_client, run_trials

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
