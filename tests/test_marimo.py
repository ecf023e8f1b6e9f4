"""notebooks/marimo_model.py served by a real `marimo run`, opened in Chromium: its gpviz charts are drawn.

marimo puts HTML that carries scripts into an iframe, so the charts are looked for
in every frame of the page. `marimo export html` pages load marimo's front end from a
CDN these machines cannot reach, hence a local server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.extras import need

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "marimo_model.py"

# What each gpviz chart reports once gpviz.js has drawn it (as in tests/test_render_browser.py).
CHARTS = """() => [...document.querySelectorAll('.gpviz-param')].map(e => ({
    key: e.dataset.key, drawn: e.dataset.drawn, points: +e.dataset.points, canvas: !!e.querySelector('canvas')}))"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def marimo_server(tmp_path):
    """``marimo run`` on a free localhost port, headless, no token; stopped (by its pid) at the end."""
    need("marimo", "test")
    port = _free_port()
    log = (tmp_path / "marimo.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "marimo", "run", str(NOTEBOOK), "--headless", "--host", "127.0.0.1",
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
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
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
