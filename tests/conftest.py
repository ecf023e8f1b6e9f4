"""Shared fixtures: float64 by default, hypothesis profiles, and a real headless Chromium."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="session", autouse=True)
def _session_defaults():
    """float64 and one torch/BLAS thread for the whole run, module fixtures included.

    Module-scoped fixtures (shared sweeps and fits) run before the per-test fixture
    below, so the defaults are set here for them too. One thread: the batched L-BFGS-B
    path runs outside BoTorch's threadpool limit, and on a 2-core machine spinning BLAS
    threads make these small fits several times slower (the results are the same).
    """
    from threadpoolctl import threadpool_limits

    old_threads, old_dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(old_threads)
    torch.set_default_dtype(old_dtype)


@pytest.fixture(autouse=True)
def _float64_and_quiet():
    """Tests run in float64 (numerical truth to 1e-8) and never leak a default dtype change."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(autouse=True)
def _kernel_registry_restored():
    """Tests that register kernel handlers leave the registry exactly as they found it."""
    from gpviz.walk.registry import HANDLERS

    saved = dict(HANDLERS)
    yield
    HANDLERS.clear()
    HANDLERS.update(saved)


@pytest.fixture(scope="session")
def dask_client():
    """A Dask LocalCluster of 2 worker processes (started once: it takes seconds), and its client."""
    try:
        import distributed
    except ImportError:
        if os.environ.get("GPVIZ_REQUIRE_DASK"):
            pytest.fail("dask.distributed is not installed; `bash scripts/run.sh test` installs gpviz[dask]")
        pytest.skip("dask.distributed is not installed (pip install 'gpviz[dask]')")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            yield client


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots and pages a person should look at after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser():
    """A real headless Debian Chromium, driven by Playwright (never a downloaded browser)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("GPVIZ_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed; `bash scripts/run.sh test` installs Debian's chromium")
        pytest.skip("chromium is not installed (run the tests through `bash scripts/run.sh test`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@dataclass
class LoadedPage:
    """A page opened in Chromium with everything it logged."""

    page: object
    console_errors: list = field(default_factory=list)

    def eval(self, js: str):
        return self.page.evaluate(js)


@pytest.fixture
def open_page(browser, artifacts):
    """``open_page(path, screenshot="name.png") -> LoadedPage``: loads a saved HTML file.

    Collects console errors and uncaught exceptions; saves a full-page screenshot
    under ``artifacts/`` when asked.
    """
    pages = []

    def _open(path, screenshot: str | None = None, width: int = 1400) -> LoadedPage:
        page = browser.new_page(viewport={"width": width, "height": 900})
        loaded = LoadedPage(page)
        page.on("console", lambda m: loaded.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: loaded.console_errors.append(f"uncaught: {e}"))
        page.goto(Path(path).resolve().as_uri())
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # let canvas drawing and transitions settle
        if screenshot:
            page.screenshot(path=str(artifacts / screenshot), full_page=True)
        pages.append(page)
        return loaded

    yield _open
    for p in pages:
        p.close()
