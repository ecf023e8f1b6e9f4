"""Notebook displays: which output carries gpviz's scripts, so that a notebook holds them once, not once per figure.

Front ends that show a notebook's outputs in one page (JupyterLab, Notebook 7,
VS Code) share one ``window``: gpviz.js and rows2prose's time control loaded by
one output serve every figure. So the first gpviz output of a kernel session
carries each script bundle (an *asset*), later outputs carry only their figure
and a mount call that waits for the bundle. The carrier is re-chosen when its
cell runs again (the front end replaces that cell's outputs), when it was
deleted (JupyterLab reports ``deletedCells`` with each execute request), and in
a new kernel session.

Where outputs are isolated from each other (Google Colab puts each in its own
frame) or there is no kernel (plain Python, tests, ``fig.html()``), every
output carries everything. An output whose bundle is missing from the page (say,
viewed on its own) keeps its static charts and says how to get the interactive
view (see ``gpviz.js``'s mount call in :meth:`gpviz.html.figure.Figure.fragment`).

Nothing here imports IPython: it only looks at an IPython already running.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Sequence

#: Asset names, in the order a page loads them: rows2prose's time control, then gpviz's CSS and JS.
ASSETS = ("time", "core")


@dataclass(frozen=True)
class Request:
    """The execute request a display belongs to.

    Attributes:
        msg_id: The request's message id (one per cell run).
        cell_id: The front end's cell id, or None if it sends none (nbclient does not).
        deleted: Cell ids the front end says were deleted since its last request.
    """

    msg_id: str | None
    cell_id: str | None
    deleted: tuple[str, ...] = ()


@dataclass
class Carriers:
    """Which request carries each asset in this kernel session (one instance per process)."""

    by_asset: dict[str, Request] = field(default_factory=dict)

    def to_carry(self, needed: Sequence[str], request: Request) -> tuple[str, ...]:
        """The assets of ``needed`` an output made during ``request`` must carry (and records it as their carrier).

        Args:
            needed: Asset names the figure uses (from :data:`ASSETS`).
            request: The current execute request.

        Returns:
            The names to inline in this output, in :data:`ASSETS` order.
        """
        carry = []
        for name in ASSETS:
            if name not in needed:
                continue
            held = self.by_asset.get(name)
            if held is None or _replaced(held, request):
                self.by_asset[name] = request
                carry.append(name)
        return tuple(carry)


def _replaced(held: Request, now: Request) -> bool:
    """Whether the output that carries an asset is gone (or going) from the front end's page."""
    if held.cell_id is not None and held.cell_id in now.deleted:
        return True  # its cell was deleted
    # its cell runs again: the front end clears that cell's outputs (the carrier with them)
    return held.cell_id is not None and held.cell_id == now.cell_id and held.msg_id != now.msg_id


CARRIERS = Carriers()


def kernel_request() -> Request | None:
    """The execute request being handled by a running IPython kernel, or None outside one.

    Returns None in plain Python and in a terminal IPython (no front end that draws HTML).
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a half-initialized IPython: behave as outside a kernel
        return None
    kernel = getattr(shell, "kernel", None) if shell is not None else None
    if kernel is None:
        return None
    try:
        parent = kernel.get_parent("shell") if hasattr(kernel, "get_parent") else getattr(shell, "parent_header", {})
    except Exception:  # noqa: BLE001
        parent = getattr(shell, "parent_header", {})
    parent = parent or {}
    meta = parent.get("metadata") or {}
    deleted = meta.get("deletedCells") or ()
    return Request((parent.get("header") or {}).get("msg_id"), meta.get("cellId"),
                   tuple(str(c) for c in deleted) if isinstance(deleted, (list, tuple)) else ())


def outputs_isolated() -> bool:
    """Whether each output is its own page (Google Colab's frames): then every output carries its assets."""
    return "google.colab" in sys.modules


def assets_to_carry(needed: Sequence[str]) -> tuple[str, ...]:
    """The assets of ``needed`` that the notebook output being made now must inline.

    Outside a kernel, or where outputs are isolated: all of ``needed``. In a kernel:
    only those no earlier output of this session carries (see :class:`Carriers`).
    """
    request = kernel_request()
    if request is None or outputs_isolated():
        return tuple(name for name in ASSETS if name in needed)
    return CARRIERS.to_carry(needed, request)
