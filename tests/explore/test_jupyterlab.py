"""The explorer in a real JupyterLab (anywidget's lab extension, a real kernel): a mouse drag round trip, and the
saved notebook's static picture holding the value the drag ended on."""

from __future__ import annotations

import json

import pytest

from tests.browser_helpers import drag_right
from tests.html.test_notebook_jupyterlab import Lab, _open, write_notebook

pytestmark = [pytest.mark.slow, pytest.mark.browser]
KEY = "covar_module.lengthscale[1]"
CELLS = [
    """import json, torch
from botorch.models import SingleTaskGP
from gpviz.explorer.widget import explore
torch.set_num_threads(1)
g = torch.Generator().manual_seed(5)
X = torch.rand(14, 2, generator=g, dtype=torch.float64)
model = SingleTaskGP(X, torch.sin(4 * X).sum(-1, keepdim=True))
w = explore(model, feature_names=["a", "b"])
w""",
    # run after the drag: the kernel's value, and the LOO MSE a fresh explorer computes at it
    f"""ref = explore(model)
ref.set({KEY!r}, w.values[{KEY!r}])
print(json.dumps({{"value": w.values[{KEY!r}], "loo_mse": ref.metrics["loo_mse"]}}))""",
]


def test_a_mouse_drag_in_jupyterlab_sets_the_value_in_the_kernel_and_the_page_shows_its_loo(browser, artifacts,
                                                                                             tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "explore.ipynb", CELLS)
    lab = Lab(root, tmp_path / "home")
    try:
        lab.wait()
        page, errors = _open(browser, lab.url("explore.ipynb"))
        page.wait_for_function("window.jupyterapp.shell.currentWidget.context.sessionContext.session"
                               " && window.jupyterapp.shell.currentWidget.context.sessionContext.session.kernel",
                               timeout=60_000)
        page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 0;"
                      " window.jupyterapp.commands.execute('notebook:run-cell'); }")
        num = page.locator(f".gpx-num[data-key='{KEY}']")
        num.wait_for(timeout=90_000)
        before = num.inner_text()
        loo = page.locator(".gpx-metrics tr[data-metric='loo_mse'] td").nth(1)
        loo_before = loo.inner_text()
        drag_right(page, num, (10, 25, 45, 60), 60)
        page.wait_for_function(f"() => document.querySelector('.gpx-metrics tr[data-metric=\"loo_mse\"] td:nth-child(2)')"
                               f".textContent !== {json.dumps(loo_before)}", timeout=30_000)
        page.wait_for_timeout(1500)  # the last value of the drag answered
        page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 1;"
                      " window.jupyterapp.commands.execute('notebook:run-cell'); }")
        out = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output")
        out.wait_for(timeout=60_000)
        kernel = json.loads(out.inner_text())
        page.screenshot(path=str(artifacts / "explore_jupyterlab.png"))
        assert num.inner_text() != before
        # every parameter's chart drawn by gpviz.js inside JupyterLab's widget, the dragged key's dot at the kernel's value
        keys = page.eval_on_selector_all(".gpx-num", "els => new Set(els.map((e) => e.dataset.key)).size")
        assert page.locator(".gpx-params .gpviz-param[data-drawn='1'] canvas").count() == keys >= 3
        chart = page.locator(f".gpx-params .gpviz-param[data-key='{KEY}']")
        drawn = chart.evaluate("(el) => Array.from(el.gpvizValues)")
        assert drawn == [kernel["value"]]
        assert float(num.inner_text()) == pytest.approx(kernel["value"], rel=1e-3)
        assert float(loo.inner_text()) == pytest.approx(kernel["loo_mse"], rel=1e-3)
        # the drag's end refreshed the output's saved picture (update_display): still one live view, no second one
        assert page.locator(".gpx").count() == 1
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_timeout(1500)
        saved = json.loads((root / "explore.ipynb").read_text(encoding="utf-8"))
        html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in saved["cells"][0]["outputs"])
        # the saved notebook's static picture holds the value the drag ended on (shown where no kernel runs)
        assert html.count("gpx-static") == 1
        assert f'data-key="{KEY}" data-value="{kernel["value"]!r}"' in html
        assert not [e for e in errors if "favicon" not in e], errors
        page.close()
    finally:
        lab.stop()
