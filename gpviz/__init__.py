"""gpviz: see a BoTorch/GPyTorch Gaussian-process model as its own code.

The public names below are a contract (README.md has a tour): expressions
(``kernel_expr``, ``model_expr``, ``register_kernel``), parameters
(``parameters``, ``to_units``), fitting (``trace_fit``, ``FitTracer``,
``compare_fit_modes``), sweeps and priors (``cv_sweep``, ``Sweep``, ``compare``,
``prior_pull``, ``with_priors``), rendering (``render``) and ``GpvizError``.
Nothing here imports rows2prose or IPython: pages are built when asked for.
"""

from gpviz import render  # a callable module: gpviz.render(obj) and gpviz.render.render_frame
from gpviz.compare import compare
from gpviz.errors import GpvizError
from gpviz.fit import FitTracer, compare_fit_modes, trace_fit
from gpviz.kernels import register_kernel
from gpviz.model import model_expr
from gpviz.params import parameters
from gpviz.priors import prior_pull, with_priors
from gpviz.sweep import Sweep, cv_sweep
from gpviz.units import to_units
from gpviz.walk import kernel_expr

__all__ = [
    "FitTracer", "GpvizError", "Sweep", "compare", "compare_fit_modes", "cv_sweep", "kernel_expr",
    "model_expr", "parameters", "prior_pull", "register_kernel", "render", "to_units", "trace_fit",
    "with_priors",
]
__version__ = "0.1.0"
