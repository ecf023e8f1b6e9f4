"""gpviz: see a BoTorch/GPyTorch Gaussian-process model as its own code.

The public names below are a contract (README.md has a tour): expressions
(``kernel_expr``, ``model_expr``, ``register_kernel``), parameters
(``parameters``, ``to_units``), fitting (``trace_fit``, ``FitTracer``,
``compare_fit_modes``, ``trace_fits``), sweeps and priors (``cv_sweep``, ``Sweep``, ``compare``,
``prior_pull``, ``prior_sensitivity``, ``to_arviz``, ``sweep_prior_pull``, ``with_priors``), an Ax experiment's
real model history (``ModelHistory``), rendering (``render``), exploring (``explore``,
``Explorer``: drag a parameter, see the likelihood, priors and LOO error follow) and ``GpvizError``.
``docs/architecture.md`` maps the modules behind them.
Nothing here imports rows2prose or IPython: pages are built when asked for.
"""

import importlib

from gpviz.ax_history import ModelHistory
from gpviz.comparing import compare
from gpviz.errors import GpvizError
from gpviz.models.expr import model_expr
from gpviz.priors.arviz_io import to_arviz
from gpviz.priors.factories import with_priors
from gpviz.priors.pull import prior_pull
from gpviz.priors.sensitivity import prior_sensitivity
from gpviz.priors.sweep_pull import sweep_prior_pull
from gpviz.rendering import render  # also registers the renderers of expressions, tracers and sweeps
from gpviz.sweep.result import Sweep
from gpviz.sweep.runner import cv_sweep
from gpviz.trace.modes import compare_fit_modes
from gpviz.trace.fits import trace_fits
from gpviz.trace.tracer import FitTracer, trace_fit
from gpviz.values.parameters import parameters
from gpviz.values.units import to_units
from gpviz.walk.expr import kernel_expr
from gpviz.walk.registry import register_kernel
from gpviz import ax as _ax  # registers the Ax model source (it imports no Ax)

__all__ = [
    "Explorer", "FitTracer", "GpvizError", "ModelHistory", "Sweep", "compare", "compare_fit_modes", "cv_sweep", "explore",
    "kernel_expr",
    "model_expr", "parameters", "prior_pull", "prior_sensitivity", "register_kernel", "render", "sweep_prior_pull", "to_arviz", "to_units",
    "trace_fit", "trace_fits", "with_priors",
]
__version__ = "0.1.0"

#: Names loaded on first use: the explorer is an anywidget, and importing anywidget imports ipywidgets and
#: IPython (half a second, and a notebook stack a script never needs). ``gpviz.explore`` and
#: ``gpviz.Explorer`` load gpviz.explorer.widget when first asked for (PEP 562).
_LAZY = {"Explorer": "gpviz.explorer.widget", "explore": "gpviz.explorer.widget"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gpviz' has no attribute {name!r}")
