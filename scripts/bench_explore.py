"""Measures one explorer update: a value set, then metrics and slices recomputed (the Python side of a drag).

A ScaleKernel(Matern-5/2) SingleTaskGP on 100 points and 10 inputs (the issue's target: an update
in 50 ms or less); prints the median and 90th percentile of one update: ``Explorer.set`` (set, log likelihood,
priors, efficient LOO, 10 slices of 41 points, traits updated) and the changed traits serialized as the comm
message a kernel sends (JSON), the message's size, each part's share, and the load average. With ``--browser``,
also the page's side in headless Chromium (Playwright): the widget's module (gpviz.js + explore.js) drawing one
update's message (numbers, every parameter's gpviz.js chart, metrics, slices), layout included.

Usage: .venv/bin/python scripts/bench_explore.py [--points 100] [--dims 10] [--repeats 30] [--browser]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time

import numpy as np
import torch
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel

from gpviz.explorer.widget import UPDATE_THREADS, explore

#: The traits one update changes (what the page receives).
SENT = ["values", "metrics", "curves", "near", "error", "done"]
#: The traits the page starts from.
SYNCED = ["title", "segments", "params", "charts", "values", "metrics", "fitted_metrics", "curves", "near",
          "slice_units", "error", "done", "members", "member_label", "member", "request"]
# anywidget's front-end contract; window.__apply(msg) sets an update's traits and fires their change events (as
# Backbone does: every attribute, then the events) and returns the ms until the page is drawn and laid out
HOST = """
async ([src, state]) => {
  const listeners = {};
  const model = {
    get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes: () => {},
    on: (ev, cb) => { (listeners[ev] = listeners[ev] || []).push(cb); },
  };
  window.__apply = (msg) => {
    const t = performance.now();
    for (const k of Object.keys(msg)) state[k] = msg[k];
    for (const k of Object.keys(msg)) for (const cb of listeners["change:" + k] || []) cb();
    void document.body.offsetHeight;  // style and layout of what changed
    return performance.now() - t;
  };
  const mod = await import(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
  mod.default.render({ model, el: document.getElementById("root") });
}
"""


def _timed(fn, repeats: int) -> np.ndarray:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return np.array(out) * 1e3


def _page_ms(w, messages: list[dict]) -> np.ndarray:
    """The page's time to draw each message, in headless Chromium (the widget's own module and CSS)."""
    from playwright.sync_api import sync_playwright  # only with --browser: a dev dependency

    with sync_playwright() as p:
        exe = shutil.which("chromium") or shutil.which("chromium-browser")  # Debian's, as the tests use
        browser = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.set_content(f"<!doctype html><style>{w._css}</style><div id='root'></div>")
        page.evaluate(HOST, [w._esm, w.get_state(SYNCED)])
        out = np.array([page.evaluate("(m) => window.__apply(m)", m) for m in messages])
        browser.close()
    if errors:
        raise RuntimeError(f"the page logged errors: {errors}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--dims", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--browser", action="store_true", help="also time the page's drawing in headless Chromium")
    a = ap.parse_args()
    torch.manual_seed(0)
    X = torch.rand(a.points, a.dims, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :2]).sum(-1, keepdim=True)
    model = SingleTaskGP(X, Y, covar_module=ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=a.dims)))
    w = explore(model)
    key = "covar_module.base_kernel.lengthscale[0]"
    start = w.values[key]
    steps = iter(np.tile(np.linspace(0.5, 2.0, 16), a.repeats + 1) * start)
    sizes = []

    messages = []

    def update() -> None:
        w.set(key, float(next(steps)))
        message = w.get_state(SENT)
        messages.append(message)
        sizes.append(len(json.dumps(message)))  # the comm message's body, as ipywidgets serializes it

    total = _timed(update, a.repeats)
    torch.set_num_threads(UPDATE_THREADS)  # as Explorer.set runs them
    parts = {"metrics (lik, priors, LOO)": _timed(w.state.metrics, a.repeats),
             "slices (one Cholesky, the grid kept)": _timed(w.state.slice_moments, a.repeats)}
    print(f"{a.points} points, {a.dims} inputs, {UPDATE_THREADS} torch thread per update, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"one update (Explorer.set + message): median {np.median(total):.1f} ms, "
          f"p90 {np.percentile(total, 90):.1f} ms, {np.median(sizes) / 1e3:.1f} KB sent")
    for name, t in parts.items():
        print(f"  {name}: median {np.median(t):.1f} ms")
    if a.browser:
        page = _page_ms(w, messages)
        print(f"the page drawing one update (numbers, {len(w.charts['params'])} gpviz.js charts, metrics, "
              f"{len(w.curves)} slices, layout): median {np.median(page):.1f} ms, p90 {np.percentile(page, 90):.1f} ms")


if __name__ == "__main__":
    main()
