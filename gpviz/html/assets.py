"""Page assets: gpviz's own JS and CSS, and rows2prose's time control (the ONLY module that imports rows2prose).

rows2prose 0.1.0 keeps the time control of fit traces (pages without a trace carry
no rows2prose code at all, trace pages no global d3.min.js: see :func:`header_html`).
Its known defects are neutralized before they reach a user:

- ``rows2prose.web`` imports ``pkg_resources`` (gone in setuptools >= 81, and a
  deprecation warning before that): :func:`rows2prose_web` imports it with a tiny
  stand-in module in ``sys.modules`` for the duration of the import only.
- Its timelines sort the ``i_timestep`` column *in place*, its distribution views
  draw log axes linearly, and bool/int64/category columns kill its blocks: gpviz
  sorts frames itself, draws each parameter with its own canvas view
  (``static/gpviz.js``) and encodes columns itself (:mod:`gpviz.html.encode`).
- ``uuid1`` element ids and no ``<meta charset>``: ids are content hashes (or a
  fixed ``element_id``), pages declare UTF-8.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import sys
import types
from typing import cast

from gpviz.errors import InputError, UnsupportedError
from gpviz.html.notebook import ASSETS

_MISSING = object()


def _resource_string(package: str, resource_name: str) -> bytes:
    """``pkg_resources.resource_string`` on top of ``importlib.resources``."""
    node = importlib.resources.files(package)
    for part in re.split(r"[\\/]+", resource_name):
        if part:
            node = node.joinpath(part)
    return node.read_bytes()


@functools.lru_cache(maxsize=None)
def rows2prose_web() -> types.ModuleType:
    """``rows2prose.web``, imported without ``pkg_resources``.

    rows2prose 0.1.0 does ``from pkg_resources import resource_string``: an
    ImportError on setuptools >= 81 and a DeprecationWarning before. A stand-in
    module sits in ``sys.modules["pkg_resources"]`` only while rows2prose is
    imported; whatever was there before is restored.

    Raises:
        UnsupportedError: if rows2prose is not installed or fails to import.
    """
    shim = types.ModuleType("pkg_resources")
    shim.__doc__ = "gpviz's stand-in for pkg_resources.resource_string (importlib.resources)"
    setattr(shim, "resource_string", _resource_string)  # a module's attributes are not declared: set by name
    saved = sys.modules.get("pkg_resources", _MISSING)
    sys.modules["pkg_resources"] = shim
    try:
        import rows2prose.web as web
    except Exception as exc:  # noqa: BLE001 - any import failure means no renderer
        raise UnsupportedError(f"gpviz renders with rows2prose==0.1.0, which failed to import: "
                               f"{type(exc).__name__}: {exc}") from exc
    finally:
        if saved is _MISSING:
            sys.modules.pop("pkg_resources", None)
        else:
            sys.modules["pkg_resources"] = cast(types.ModuleType, saved)  # what was there (a module or None)
    return web


def _static(name: str) -> str:
    text = importlib.resources.files("gpviz").joinpath("static").joinpath(name).read_text("utf-8")
    if "</script" in text.lower() or "</style" in text.lower():  # would end the inline block early
        raise UnsupportedError(f"gpviz/static/{name} contains a closing tag and cannot be inlined")
    return text


_D3_START, _R2P_START = "// https://d3js.org", "var r2p = (function"


def rows2prose_header() -> str:
    """rows2prose's header without its copy of d3.min.js (280 KB), when it can be cut out cleanly.

    The r2p bundle carries the d3 pieces it uses; only the global ``d3`` is dropped,
    which gpviz.js does without (see its ``oneNodeSelection``). If rows2prose's
    header does not look as expected, it is returned whole.
    """
    header = rows2prose_web().header_content()
    i = header.find(_D3_START)
    j = header.find(_R2P_START, i)
    if i < 0 or j < 0 or header.count(_D3_START) != 1:
        return header
    return header[:i] + header[j:]


@functools.lru_cache(maxsize=None)
def asset_html(name: str) -> str:
    """One script bundle a page needs once (see :data:`gpviz.html.notebook.ASSETS`).

    ``"time"``: rows2prose's time control (its header without d3.min.js, see
    :func:`rows2prose_header`), then a call that lets figures waiting for it mount;
    ``"core"``: gpviz's CSS and JS (the JS also copies the CSS into the document's
    head, so figures stay styled when the notebook output that brought it is cleared).

    Raises:
        InputError: for an unknown name.
    """
    if name == "time":
        return rows2prose_header() + "\n<script>window.gpviz && window.gpviz.drain && window.gpviz.drain();</script>\n"
    if name == "core":
        return (f'<style class="gpviz-css">\n{_static("gpviz.css")}</style>\n'
                f"<script>\n{_static('gpviz.js')}</script>\n")
    raise InputError(f"unknown page asset {name!r} (must be one of {list(ASSETS)})")


def header_html(time: bool = True) -> str:
    """Everything a page needs once: rows2prose's bundle (if ``time``), then gpviz's CSS and JS.

    Only an animated fit trace uses rows2prose (its time control): other pages
    leave out its header entirely, and trace pages leave out its copy of
    d3.min.js (:func:`rows2prose_header`): 420 KB and ~60 ms of script parsing
    per page load less. ``time=True`` (the default) is what a page that may show
    a trace needs.
    """
    return "".join(asset_html(n) for n in ASSETS if n == "core" or time)
