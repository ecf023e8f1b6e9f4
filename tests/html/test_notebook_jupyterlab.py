"""gpviz figures in a real JupyterLab in headless Chromium: drawn live, saved once, readable untrusted.

The test starts JupyterLab on 127.0.0.1 (temporary root, config, data and runtime
dirs, a token), opens a notebook of five gpviz figures (a model, a live traced fit,
the trace's page, the batched model, a kernel), runs all cells and checks every
figure drew its charts with no flag the data does not have and no console error.
It saves the notebook, reopens it trusted (scripts of saved outputs run) and then
in a second server with a fresh data dir, where the notebook is untrusted:
JupyterLab runs no output script and strips every <style>, and each chart must
show its static picture and the line saying how to get the interactive view.
Screenshots go to artifacts/ (notebook_live.png, notebook_final.png,
notebook_trusted.png, notebook_untrusted.png).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser_helpers import free_port, watch_errors

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
KERNEL = "gpviz-lab-test"

CELLS = [
    # 0: data, one torch thread (a 2-core CI machine)
    """import time
import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood
import gpviz

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
g = torch.Generator().manual_seed(0)
X = torch.rand(10, 2, generator=g)
Y = torch.sin(6 * X[:, :1]) + 0.5 * X[:, 1:] + 0.05 * torch.randn(10, 1, generator=g)""",
    # 1: a fitted model
    """model = SingleTaskGP(X, Y)
fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
gpviz.render(model, feature_names=['x0', 'x1'])""",
    # 2: a live traced fit of 10 leave-one-out folds (a user callback slows each step, so that the
    # test sees the live view mid-fit; the tracer records the fit as it is)
    """folds = gen_loo_cv_folds(X, Y)
loo = SingleTaskGP(folds.train_X, folds.train_Y)
mll = ExactMarginalLogLikelihood(loo.likelihood, loo)
with gpviz.trace_fit(mll, feature_names=['x0', 'x1']) as tracer:
    tracer.show()
    fit_gpytorch_mll(mll, optimizer_kwargs={'callback': lambda *a: time.sleep(0.08)})
frames = tracer.frames
nan_cells = int(frames[list(tracer.keys)].isna().sum().sum())
print('nan cells', nan_cells)""",
    # 3: the trace's page
    "tracer.render()",
    # 4: the batched model after the fit
    "gpviz.render(loo, feature_names=['x0', 'x1'])",
    # 5: a kernel alone
    "gpviz.render(model.covar_module, feature_names=['x0', 'x1'])",
]
N_FIGURES = 5


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of ``cells`` (code, no outputs) on the test kernel, written to ``path``."""
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {},
                   "outputs": [], "source": src} for i, src in enumerate(cells)],
        "metadata": {"kernelspec": {"name": KERNEL, "display_name": "gpviz test", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }), encoding="utf-8")


class Lab:
    """A JupyterLab server in a subprocess, with its own config, data and runtime dirs."""

    def __init__(self, root: Path, home: Path):
        self.root, self.home = root, home
        self.port, self.token = free_port(), secrets.token_hex(16)
        for d in ("config", "data", "runtime"):
            (home / d).mkdir(parents=True, exist_ok=True)
        kernel = home / "data" / "kernels" / KERNEL
        kernel.mkdir(parents=True, exist_ok=True)
        (kernel / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "gpviz test", "language": "python",
            # the kernel imports the gpviz under test
            "env": {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        }))
        labconfig = home / "config" / "labconfig"
        labconfig.mkdir(exist_ok=True)
        # the news plugin would ask to fetch announcements from the network
        (labconfig / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
               "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_PLATFORM_DIRS": "1",
               "JUPYTERLAB_SETTINGS_DIR": str(home / "config" / "lab-settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(home / "config" / "lab-workspaces")}
        self.log = open(home / "server.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--LabApp.expose_app_in_browser=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False",
             "--allow-root"],  # CI containers run as root
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=root)

    def wait(self) -> "Lab":
        """Returns once the server answers (it starts in the background)."""
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n"
                                       + (self.home / "server.log").read_text(errors="replace")[-3000:])
                time.sleep(0.3)
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base}/lab/tree/{name}?token={self.token}&reset"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _open(browser, url: str):
    # tall enough for the whole notebook: JupyterLab scrolls inside its panel, so a full-page screenshot is the viewport
    page = browser.new_page(viewport={"width": 1300, "height": 3600})
    errors = watch_errors(page)
    # a failed request logs only "Failed to load resource": keep its address beside it
    page.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url.split('?')[0]}") if r.status >= 400 else None)
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.context", timeout=60_000)
    return page, errors


FIGURES = ".jp-OutputArea-output .gpviz-figure"
DRAWN = json.dumps(FIGURES + '[data-drawn="1"]')


def _figures(page) -> list[dict]:
    """Per gpviz figure on the page: drawn?, placeholders, static pictures shown, flags, note shown."""
    return page.evaluate(f"""() => Array.from(document.querySelectorAll({json.dumps(FIGURES)})).map(f => ({{
        drawn: f.getAttribute('data-drawn') === '1',
        title: (f.querySelector('.gpviz-title') || {{}}).textContent || '',
        params: f.querySelectorAll('.gpviz-param').length,
        drawnParams: f.querySelectorAll('.gpviz-param[data-drawn="1"]').length,
        flagged: Array.from(f.querySelectorAll('.gpviz-param')).filter(p => p.dataset.flags).map(p => p.dataset.key),
        staticShown: Array.from(f.querySelectorAll('img.gpviz-static')).filter(
            i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0).length,
        note: Array.from(f.querySelectorAll('.gpviz-static-note')).map(n => n.textContent).join(' '),
        warning: (f.querySelector('.gpviz-warning') || {{}}).textContent || '',
        text: f.innerText,
    }}))""")


def test_figures_in_jupyterlab_live_saved_trusted_and_untrusted(browser, artifacts, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "figures.ipynb", CELLS)
    t0 = time.monotonic()
    marks = {}  # phase -> seconds since start, printed at the end (where the time goes in CI)
    lab = Lab(root, tmp_path / "home")
    # the second server (a fresh data dir: no signature of this notebook) starts meanwhile, for the untrusted view
    other = Lab(root, tmp_path / "home2")
    try:
        lab.wait()
        marks["server up"] = time.monotonic() - t0
        page, errors = _open(browser, lab.url("figures.ipynb"))
        page.wait_for_function("window.jupyterapp.shell.currentWidget.context.sessionContext.session"
                               " && window.jupyterapp.shell.currentWidget.context.sessionContext.session.kernel",
                               timeout=60_000)
        marks["notebook open, kernel up"] = time.monotonic() - t0
        # not awaited: the command's promise resolves only when every cell has run
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

        # live: the traced fit's figure while it runs (one output, drawn, no flags). Each update replaces
        # the output, and the new figure draws when its script runs: the facts are read in the same
        # JavaScript turn that sees it drawn, or the next update could land between the wait and the read.
        live = page.wait_for_function(f"""() => {{
            const f = Array.from(document.querySelectorAll({json.dumps(FIGURES)}))
                .find(f => f.getAttribute('data-drawn') === '1' && /\\(live\\)/.test(f.textContent));
            return f && {{
                title: f.querySelector('.gpviz-title').textContent,
                params: f.querySelectorAll('.gpviz-param').length,
                drawnParams: f.querySelectorAll('.gpviz-param[data-drawn="1"]').length,
                flagged: Array.from(f.querySelectorAll('.gpviz-param')).filter(p => p.dataset.flags).length,
                warning: (f.querySelector('.gpviz-warning') || {{}}).textContent || '',
            }};
        }}""", timeout=90_000, polling=50).json_value()
        page.screenshot(path=str(artifacts / "notebook_live.png"), full_page=True)
        assert live["params"] > 0 and live["drawnParams"] == live["params"], live
        assert not live["flagged"] and not live["warning"], live

        page.wait_for_function("""() => {
            const cells = window.jupyterapp.shell.currentWidget.content.widgets;
            return cells.every(c => c.model.type !== 'code' || (c.model.executionCount !== null
                && c.model.executionState === 'idle'));
        }""", timeout=120_000, polling=200)
        page.wait_for_function(f"document.querySelectorAll({DRAWN}).length >= {N_FIGURES}", timeout=30_000)
        marks["all cells ran"] = time.monotonic() - t0
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "notebook_final.png"), full_page=True)
        figures = _figures(page)
        assert len(figures) == N_FIGURES, [f["title"] for f in figures]
        for f in figures:
            assert f["drawn"] and f["params"] > 0 and f["drawnParams"] == f["params"], f["title"]
            assert not f["flagged"] and not f["warning"] and "NaN" not in f["text"], (f["title"], f["flagged"])
            assert f["note"] == "" and f["staticShown"] == 0, f["title"]  # the interactive charts replaced them
        assert "fit ended" in figures[1]["title"]  # the live figure's final state is the trace's page
        assert figures[1]["text"].replace(figures[1]["title"], "") == \
            figures[2]["text"].replace(figures[2]["title"], "")
        stream = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets[2]
            .model.outputs.toJSON().filter(o => o.output_type === 'stream').map(o => o.text).join('')""")
        assert "nan cells 0" in stream, stream
        assert errors == [], errors

        page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function("!window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
        saved = json.loads((root / "figures.ipynb").read_text(encoding="utf-8"))
        code = [c for c in saved["cells"] if c["cell_type"] == "code"]
        outputs = [[o for o in c["outputs"] if "text/html" in o.get("data", {})] for c in code]
        # one output per figure (the live one included); the scripts once per notebook
        assert [len(o) for o in outputs] == [0, 1, 1, 1, 1, 1]
        html = ["".join(o[0]["data"]["text/html"]) for o in outputs[1:]]
        # gpviz's CSS and JS in the first figure's output, rows2prose's time control in the live figure's
        assert [("/* gpviz figure styles" in h, "var VERSION = " in h) for h in html] == \
            [(True, True)] + [(False, False)] * (N_FIGURES - 1)
        assert ["var r2p = (function" in h for h in html] == [False, True] + [False] * (N_FIGURES - 2)
        size = (root / "figures.ipynb").stat().st_size
        print(f"saved notebook with {N_FIGURES} figures: {size / 1e3:.0f} KB")

        marks["saved"] = time.monotonic() - t0
        # trusted (signed on save by this server): the saved outputs' scripts run and draw every figure
        page.reload()
        page.wait_for_selector(FIGURES, timeout=60_000)
        page.wait_for_function(f"document.querySelectorAll({DRAWN}).length >= {N_FIGURES}", timeout=30_000)
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "notebook_trusted.png"), full_page=True)
        marks["reopened trusted"] = time.monotonic() - t0
        reopened = _figures(page)
        assert [f["drawn"] and not f["flagged"] for f in reopened] == [True] * N_FIGURES
        assert errors == [], errors
        page.close()
    except BaseException:
        other.stop()
        raise
    finally:
        lab.stop()

    # untrusted: another server with a fresh data dir has no signature for this notebook
    other.wait()
    try:
        page, errors = _open(browser, other.url("figures.ipynb"))
        page.wait_for_selector(FIGURES, timeout=60_000)
        page.wait_for_function(f"""Array.from(document.querySelectorAll({json.dumps(FIGURES + ' img.gpviz-static')}))
            .every(i => i.complete)""", timeout=30_000)
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "notebook_untrusted.png"), full_page=True)
        trusted = page.evaluate("window.jupyterapp.shell.currentWidget.content.model.cells.get(1).trusted")
        assert trusted is False
        figures = _figures(page)
        assert len(figures) == N_FIGURES
        for f in figures:
            assert not f["drawn"], f["title"]  # no script ran
            assert f["params"] > 0 and f["staticShown"] == f["params"], (f["title"], f["staticShown"], f["params"])
            assert "trust the notebook" in f["note"], f["note"]
            assert not f["warning"] and "NaN" not in f["text"], f["title"]
        assert errors == [], errors
        page.close()
    finally:
        other.stop()
    marks["reopened untrusted"] = time.monotonic() - t0
    print("JupyterLab test, seconds since start: " + ", ".join(f"{k} {v:.0f}" for k, v in marks.items()))
