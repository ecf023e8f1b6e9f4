"""Measures the live fit view (``tracer.show()``): bytes and time per update, against a widget channel's delta.

Fits a model under a tracer, then replays the live view's updates as ``FitTracer.show`` makes them
(every 4th of a second; here: every ``--every`` timesteps): each update replaces the notebook output
with the figure of all completed steps (``LiveFigure.update``: the figure's fragment, its data columns and
static pictures). A widget channel (anywidget traits) would send only the steps completed since the last
update; its size is measured as the JSON of those rows (every key of every member), what a trait
holding them would carry. Prints per update: timesteps shown, fragment KB, delta KB, update ms.

Usage: .venv/bin/python scripts/bench_live.py [--points 50] [--dims 5] [--members 1] [--every 5]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

import gpviz
from gpviz.html.live import LiveFigure
from gpviz.trace.live import live_title
from gpviz.trace.summary import MAX_TIMESTEPS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--dims", type=int, default=5)
    ap.add_argument("--members", type=int, default=1)
    ap.add_argument("--every", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    batch = (a.members,) if a.members > 1 else ()
    X = torch.rand(*batch, a.points, a.dims, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X[..., :2]).sum(-1, keepdim=True) + 0.05 * torch.randn(*batch, a.points, 1, generator=g,
                                                                             dtype=torch.float64)
    model = SingleTaskGP(X, Y)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with gpviz.trace_fit(mll) as tracer:
        fit_gpytorch_mll(mll)
    trace = tracer.trace
    live = LiveFigure(tracer.expr, display=False)
    rows = []
    sent = 0
    for end in range(a.every, trace.n_timesteps, a.every):
        frame = trace.render_frame(MAX_TIMESTEPS, end=end)
        t = time.perf_counter()
        fig = live.update(frame, title=live_title(trace))
        html = fig.fragment()
        ms = (time.perf_counter() - t) * 1e3
        new = frame[frame["i_timestep"] >= sent] if "i_timestep" in frame else frame
        delta = len(json.dumps(new.to_dict(orient="split")["data"]))
        sent = end
        rows.append((end, len(html) / 1e3, delta / 1e3, ms))
    print(f"{a.points} points, {a.dims} inputs, {a.members} member(s), {trace.n_timesteps} timesteps; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("timesteps  output KB (replaced)  delta KB (widget)  update ms")
    for end, kb, dkb, ms in rows:
        print(f"{end:9d}  {kb:20.1f}  {dkb:17.2f}  {ms:9.1f}")
    arr = np.array(rows)
    print(f"total over {len(rows)} updates: {arr[:, 1].sum():.0f} KB replaced vs {arr[:, 2].sum():.1f} KB of deltas; "
          f"median update {np.median(arr[:, 3]):.1f} ms")


if __name__ == "__main__":
    main()
