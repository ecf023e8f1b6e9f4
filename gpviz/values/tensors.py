"""The one door from tensors to numpy: detached, on the CPU, never changing the user's tensor.

Models may live on CUDA (BoTorch's tutorials put them there whenever a GPU is
present) or hold ``requires_grad`` parameters; every tensor -> numpy conversion in
gpviz goes through :func:`to_numpy`, so reading a value never moves, copies back or
changes the model. ``tests/test_structure.py`` fails on a bare ``.numpy()`` elsewhere.
"""

from __future__ import annotations

import numpy as np
import torch

from gpviz.errors import InputError


def require_values(t: torch.Tensor, what: str = "a tensor") -> torch.Tensor:
    """``t`` itself, or an :class:`~gpviz.errors.InputError` if it has no values (the ``meta`` device)."""
    if isinstance(t, torch.Tensor) and t.device.type == "meta":
        raise InputError(f"{what} of shape {list(t.shape)} is on the 'meta' device and has no values; "
                         "initialize the model's parameters (e.g. model.to_empty(device='cpu') then load a "
                         "state dict) before gpviz reads them")
    return t


def to_numpy(t, dtype=np.float64) -> np.ndarray:
    """A numpy copy of ``t`` (detached, on the CPU), as ``dtype`` (``None`` keeps torch's dtype).

    Args:
        t: A tensor (any device, any ``requires_grad``), or something ``np.asarray`` reads.
        dtype: The numpy dtype of the result.

    Returns:
        A new array the caller may modify; ``t`` is left as it was.

    Raises:
        InputError: for a tensor on the ``meta`` device (it has no values).
    """
    if isinstance(t, torch.Tensor):
        t = require_values(t).detach()
        if t.dtype == torch.bfloat16 or (dtype is not None and t.is_floating_point()):
            t = t.to(torch.float64)
        on_cpu = t.device.type == "cpu"
        arr = t.cpu().numpy()  # the only .numpy() call in gpviz
        if on_cpu:
            arr = arr.copy()  # a CPU tensor's numpy view shares its memory: never hand out the user's storage
    else:
        arr = np.asarray(t)
    return arr if dtype is None else arr.astype(dtype, copy=False)
