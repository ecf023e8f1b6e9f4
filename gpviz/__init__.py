"""gpviz: see a BoTorch/GPyTorch Gaussian-process model as its own code.

Public API (a contract; see README.md):

    kernel_expr, model_expr, register_kernel, parameters, GpvizError
"""

from gpviz.errors import GpvizError
from gpviz.kernels import register_kernel
from gpviz.model import model_expr
from gpviz.params import parameters
from gpviz.walk import kernel_expr

__all__ = ["GpvizError", "kernel_expr", "model_expr", "parameters", "register_kernel"]
__version__ = "0.1.0"
