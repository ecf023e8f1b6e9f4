"""Typed errors and warnings raised by gpviz."""

from __future__ import annotations


class GpvizError(Exception):
    """Base class of every error gpviz raises on purpose."""


class InputError(GpvizError, ValueError):
    """An argument has the wrong type, shape or value.

    The message names the value received and what was expected.
    """


class UnsupportedError(GpvizError, TypeError):
    """The object is of a kind gpviz does not know how to handle."""


class HandlerError(GpvizError):
    """A kernel handler raised while building an expression (strict mode)."""


class KeyMismatchError(GpvizError, KeyError):
    """A parameter key is missing from the values or data frame it should be in."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class GpvizWarning(UserWarning):
    """Base class of gpviz's warnings.

    Deliberately *not* a subclass of BoTorch's ``OptimizationWarning``: BoTorch
    treats that class as a failed fit attempt and refits.
    """


class OpaqueKernelWarning(GpvizWarning):
    """A kernel has no handler; it is shown as an opaque node."""


class TracerWarning(GpvizWarning):
    """The fit tracer hit a problem of its own; the fit goes on untouched."""


class VerdictWarning(GpvizWarning):
    """Prior verdicts could not be computed (``prior_pull`` failed); the page says so and shows none."""


class PriorModeWarning(GpvizWarning):
    """A prior's mode lies outside its parameter's constraint bounds: the prior pushes the value onto a bound."""


class CacheWarning(GpvizWarning):
    """A cached sweep cell or manifest could not be trusted (damaged, truncated, unknown); those cells are refit."""
