"""The check at the door of every analysis that takes a model factory."""

from __future__ import annotations

import torch

from gpviz.errors import InputError


def check_factory(make_model) -> None:
    """Refuses anything but a model factory, before any fitting.

    A model instance is callable too (``nn.Module.__call__``), and would fail every
    cell deep inside BoTorch ("zip() argument 2 is longer than argument 1").

    Raises:
        InputError: if ``make_model`` is a module (a model, kernel, MLL) or not callable.
    """
    if isinstance(make_model, torch.nn.Module):
        raise InputError(
            f"make_model must be a factory (train_X, train_Y) -> model, got a {type(make_model).__name__} "
            f"instance; pass e.g. `lambda X, Y: {type(make_model).__name__}(X, Y)` so that every cell builds "
            f"its own model")
    if not callable(make_model):
        raise InputError(f"make_model must be callable (train_X, train_Y) -> model, got {type(make_model).__name__}")
