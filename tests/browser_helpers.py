"""Pieces the browser tests share: a free local port for a server, a page's error log, a mouse drag of a number."""

from __future__ import annotations

import socket
from collections.abc import Sequence


def free_port() -> int:
    """A localhost port nothing listens on now (for a JupyterLab or marimo server the test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def watch_errors(page, errors: list[str] | None = None) -> list[str]:
    """The list (``errors``, or a new one) the page's console errors and uncaught exceptions are appended to."""
    errors = [] if errors is None else errors
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    return errors


def drag_right(page, locator, offsets: Sequence[float], pause_ms: int) -> None:
    """Presses the mouse on the middle of ``locator`` and moves it right by each offset in turn (px), pausing
    ``pause_ms`` after each move as a hand does, then releases it."""
    box = locator.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for dx in offsets:
        page.mouse.move(x + dx, y)
        page.wait_for_timeout(pause_ms)
    page.mouse.up()
