"""gpviz: see a BoTorch/GPyTorch Gaussian-process model as its own code.

Public API (a contract; see README.md):

    kernel_expr, model_expr, register_kernel, parameters, GpvizError
"""

from gpviz.compare import compare
from gpviz.errors import GpvizError
from gpviz.fit import FitTracer, compare_fit_modes, trace_fit
from gpviz.kernels import register_kernel
from gpviz.model import model_expr
from gpviz.params import parameters
from gpviz.priors import prior_pull, with_priors
from gpviz import render  # a callable module: gpviz.render(obj) and gpviz.render.render_frame
from gpviz.sweep import Sweep, cv_sweep
from gpviz.units import to_units
from gpviz.walk import kernel_expr

__all__ = ["FitTracer", "GpvizError", "compare", "compare_fit_modes", "trace_fit", "Sweep", "cv_sweep", "kernel_expr", "model_expr", "parameters", "prior_pull", "register_kernel", "render", "with_priors"]
__all__ += ["to_units"]
__version__ = "0.1.0"
