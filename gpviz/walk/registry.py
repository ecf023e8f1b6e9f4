"""The kernel handler registry: one handler per kernel class, found along the MRO.

A handler has the signature ``handler(module, path, walk) -> Node | NotImplemented``.
It builds the kernel's expression from its own parameters (``walk.params``) and
the input features it sees (``walk.features``), and recurses into child kernels
only through ``walk(child, child_path)``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable

from gpviz.errors import InputError
from gpviz.tree.nodes import Node

Handler = Callable[..., "Node"]

#: The registry itself (Walker's default); extend it with :func:`register_kernel`.
HANDLERS: dict[type, Handler] = {}
KERNEL_HANDLERS = MappingProxyType(HANDLERS)  # read-only view of the registry


def register_kernel(cls: type) -> Callable[[Handler], Handler]:
    """Registers a handler for a kernel class (and its subclasses that keep its ``forward``).

    Usage::

        @gpviz.register_kernel(MyKernel)
        def handle_my_kernel(module, path, walk):
            # k = exp(-Σ_d |x1_d - x2_d| / ℓ)
            (ls,) = walk.params(module, path, "lengthscale")
            diffs = Vector(tuple(walk.compare(f) for f in walk.features_for(None)))
            return Call("exp", (Neg(Div(Call("norm_l1", (diffs,)), ls)),))

    Args:
        cls: A ``gpytorch.kernels.Kernel`` subclass.

    Raises:
        InputError: if ``cls`` is not a class.
    """
    if not isinstance(cls, type):
        raise InputError(f"register_kernel expects a kernel class, got {cls!r} of type {type(cls).__name__}")

    def deco(fn: Handler) -> Handler:
        HANDLERS[cls] = fn
        return fn

    return deco


#: Width functions of kernels that pick their own input columns; see :func:`register_width`.
WIDTHS: dict[type, Callable[..., "int | None"]] = {}


def register_width(cls: type):
    """Decorator: ``fn(module) -> int | None`` gives the input width of a kernel that picks its own columns.

    Such a kernel (SAC, LCEA, fidelity kernels) indexes the input itself, so the
    ARD sizes of its children describe a slice, not the input: the walker asks
    this function instead of guessing from them (``None``: the width is unknown).
    """

    def deco(fn):
        WIDTHS[cls] = fn
        return fn

    return deco


def lookup_width(cls: type):
    """The width function registered for ``cls`` or its nearest base, else ``None``."""
    for base in cls.__mro__:
        if base in WIDTHS:
            return WIDTHS[base]
    return None


def lookup(cls: type, registry=None) -> list[tuple[type, Handler]]:
    """Candidate handlers for ``cls``, nearest first, along the MRO.

    A handler registered for a parent class applies to a subclass only if the
    subclass does not override ``forward`` (it would compute something else).
    """
    registry = HANDLERS if registry is None else registry
    out = []
    for base in cls.__mro__:
        if base in registry:
            if base is cls or getattr(cls, "forward", None) is getattr(base, "forward", None):
                out.append((base, registry[base]))
            else:
                break
    return out
