"""marimo notebooks served by a real `marimo run`, opened in Chromium: notebooks/marimo_model.py's gpviz charts are
drawn, and notebooks/marimo_explore.py's explorer follows a mouse drag with the numbers Python computes.

marimo puts HTML that carries scripts into an iframe, so the charts are looked for
in every frame of the page. `marimo export html` pages load marimo's front end from a
CDN these machines cannot reach, hence a local server.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser_helpers import drag_right, free_port, watch_errors
from tests.extras import need

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "marimo_model.py"
EXPLORE = NOTEBOOK.with_name("marimo_explore.py")

# What each gpviz chart reports once gpviz.js has drawn it (as in tests/test_render_browser.py).
CHARTS = """() => [...document.querySelectorAll('.gpviz-param')].map(e => ({
    key: e.dataset.key, drawn: e.dataset.drawn, points: +e.dataset.points, canvas: !!e.querySelector('canvas')}))"""


@pytest.fixture
def marimo_server(request, tmp_path):
    """``marimo run`` of a notebook (``NOTEBOOK`` unless parametrized) on a free localhost port, headless, no token;
    stopped (by its pid) at the end."""
    need("marimo", "test")
    notebook = getattr(request, "param", NOTEBOOK)
    port = free_port()
    log = (tmp_path / "marimo.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "marimo", "run", str(notebook), "--headless", "--host", "127.0.0.1",
                             "--port", str(port), "--no-token"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "marimo.log").read_text()
                time.sleep(0.25)
        else:
            pytest.fail("marimo run did not answer within 30 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode is not None  # the server is stopped


def _charts(page) -> list[dict]:
    """The gpviz charts in every frame of the page (marimo's outputs with scripts are iframes)."""
    rows: list[dict] = []
    for frame in page.frames:
        try:
            rows += frame.evaluate(CHARTS)
        except Exception:  # a frame navigating away while we look: read again on the next poll
            continue
    return rows


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(120)
def test_marimo_notebook_draws_its_gpviz_charts(marimo_server, browser, artifacts):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = watch_errors(page)
    try:
        page.goto(marimo_server)
        deadline = time.monotonic() + 60  # the notebook fits a GP in the server's kernel first
        rows: list[dict] = []
        while time.monotonic() < deadline:
            rows = _charts(page)
            if rows and all(r["drawn"] == "1" for r in rows):
                break
            page.wait_for_timeout(250)
        page.screenshot(path=str(artifacts / "marimo_model.png"), full_page=True)
        # SingleTaskGP's default: an RBF kernel with 3 lengthscales, a noise, a constant mean (one model: 1 dot each)
        keys = {r["key"] for r in rows}
        assert keys == {"covar_module.lengthscale[0]", "covar_module.lengthscale[1]", "covar_module.lengthscale[2]",
                        "likelihood.noise_covar.noise", "mean_module.constant"}, keys
        assert all(r["drawn"] == "1" and r["canvas"] and r["points"] == 1 for r in rows), rows
        assert errors == [], errors
    finally:
        page.close()


def _notebook_defs(path: Path) -> dict:
    """The names a marimo notebook defines, from running it in this process (``App.run``)."""
    spec = importlib.util.spec_from_file_location(f"_marimo_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, defs = module.app.run()
    return dict(defs)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(180)
@pytest.mark.parametrize("marimo_server", [EXPLORE], indirect=True)
def test_a_mouse_drag_in_marimo_sets_the_value_in_the_kernel_and_the_page_shows_its_loo(marimo_server, browser,
                                                                                         artifacts):
    from gpviz.explorer.state import ExploreState

    key = "covar_module.lengthscale[1]"
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = watch_errors(page)
    try:
        page.goto(marimo_server)
        num = page.locator(f".gpx-num[data-key='{key}']")
        num.wait_for(timeout=90_000)  # the notebook fits its GP in the server's kernel first
        fitted = {s.get_attribute("data-key"): float(s.get_attribute("data-value"))
                  for s in page.locator(".gpx-num").all()}
        loo = page.locator(".gpx-metrics tr[data-metric='loo_mse'] td").nth(1)
        loo_before = loo.inner_text()
        drag_right(page, num, (10, 25, 45, 60), 60)
        # marimo draws a widget in a shadow root, which document.querySelector does not enter (locators do)
        deadline = time.monotonic() + 30
        while loo.inner_text() == loo_before and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        page.wait_for_timeout(1500)  # the last value of the drag answered
        page.screenshot(path=str(artifacts / "marimo_explore.png"), full_page=True)
        value = float(num.get_attribute("data-value"))
        assert value > fitted[key] * 1.3  # dragged right: a positive value grows by a factor
        # the same notebook run in this process (its data and model), given the fitted values the page showed
        # (the fit itself differs across processes in the 4th digit), then the value the page dragged to
        state = ExploreState(_notebook_defs(EXPLORE)["model"])
        assert state.values == pytest.approx(fitted, rel=1e-2)
        for k, v in fitted.items():
            state.set(k, v)
        state.set(key, value)
        want = state.metrics().loo_mse
        assert float(loo.inner_text()) == pytest.approx(want, rel=1e-3)
        state.set(key, fitted[key])
        assert float(loo.inner_text()) != pytest.approx(state.metrics().loo_mse, rel=1e-3)
        # a cell reading the widget reran with the kernel's value
        page.get_by_text("LOO MSE at the values on the page").wait_for(timeout=10_000)
        md = page.get_by_text("LOO MSE at the values on the page").inner_text()
        assert float(md.rsplit(":", 1)[1]) == pytest.approx(want, rel=1e-3), md
        assert errors == [], errors
    finally:
        page.close()
