"""charts: matplotlib figures as PNG and as trusted <img> markup (alt text escaped)."""

from __future__ import annotations

import pandas as pd

from gpviz.charts import figure_to_img, figure_to_png, new_figure, score_bands
from gpviz.markup import Markup, as_html


def test_figure_to_img_is_markup_with_its_alt_text_escaped():
    fig = new_figure(2.0, 1.0)
    fig.add_subplot(1, 1, 1).plot([0, 1], [0, 1])
    img = figure_to_img(fig, alt='a "b" <c>')
    assert isinstance(img, Markup) and as_html(img) is img  # inserted into pages as it is
    assert 'alt="a &quot;b&quot; &lt;c&gt;"' in img and img.startswith('<img class="gpviz-chart"')
    assert figure_to_png(fig).startswith(b"\x89PNG")


def test_score_bands_per_size():
    scores = pd.DataFrame({"i_config": [0, 0, 1, 1], "size": [5, 5, 9, 9], "i_repeat": [0, 1, 0, 1],
                           "mse": [1.0, 4.0, 0.5, 0.5], "status": ["ok"] * 4})
    bands = score_bands(scores, "mse")
    assert list(bands["size"]) == [5, 9]
    assert bands["center"].tolist()[1] == 0.5
