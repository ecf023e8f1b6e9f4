"""The figures whose bytes are kept under tests/golden/: built here, compared by the tests, written only by a script.

``scripts/update_golden.py`` rewrites them after a deliberate change of the page; the
test that compares them never writes (a comparison that can rewrite its own reference
cannot fail).
"""

from __future__ import annotations

from pathlib import Path

import gpytorch.kernels as gk
import torch

import gpviz

GOLDEN = Path(__file__).resolve().parent / "golden" / "render_scale_rbf_batch.html"


def golden_figure():
    """A batched ScaleKernel(RBF) with awkward feature names: escaping, ids, columns, static charts."""
    k = gk.ScaleKernel(gk.RBFKernel(ard_num_dims=2, batch_shape=torch.Size([3])), batch_shape=torch.Size([3]))
    with torch.no_grad():
        k.outputscale = torch.tensor([0.5, 1.0, 2.0])
        k.base_kernel.lengthscale = torch.tensor([[[0.1, 1.0]], [[0.2, 2.0]], [[0.4, 4.0]]])
    return gpviz.render(k, feature_names=["temp", "it's <b>"], element_id="golden")
