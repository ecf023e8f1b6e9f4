"""The one HTML skeleton: a standalone UTF-8 page that works offline, and the displayable :class:`Page`.

Every page gpviz writes — figures, comparisons, the demo's index — is made by
:func:`document`; its title is escaped here and its body must be
:class:`~gpviz.markup.Markup` (plain strings are escaped).
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import pandas as pd

from gpviz.html.assets import asset_html, header_html
from gpviz.markup import Markup, as_html, escape_html
from gpviz.html.notebook import ASSETS, assets_to_carry

_DISPLAYS = itertools.count(1)  # unique ids for notebook displays of the same figure


def next_display_suffix() -> str:
    """A suffix that makes element ids unique per notebook display (``-d1``, ``-d2``, ...)."""
    return f"-d{next(_DISPLAYS)}"


def document(title: str, body: str, head: str = "") -> str:
    """A standalone page: ``<!DOCTYPE html>``, UTF-8, viewport, the escaped ``title``, ``head`` and ``body``.

    Args:
        title: Page title (escaped here).
        body: The page content (:class:`Markup` as it is; a plain string is escaped).
        head: Extra ``<head>`` content (assets, a ``<style>``), likewise.
    """
    return _page(title, as_html(head), as_html(body))


def _page(title: str, head: str, body: str) -> str:
    """:func:`document` of a head and body that are gpviz's own HTML already (inserted as they are)."""
    # joined, not an f-string: formatting a str subclass (Markup) copies it through a slow path (~4 ms for a
    # 2 MB figure), join takes it as it is
    return "".join(("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    f"<title>{escape_html(title or 'gpviz')}</title>\n", head,
                    "</head>\n<body>\n", body, "</body>\n</html>\n"))


def table_html(df: pd.DataFrame, float_format: str = "{:,.4g}") -> Markup:
    """A DataFrame as an HTML table, every cell escaped."""
    head = "".join(f"<th>{escape_html(c)}</th>" for c in [df.index.name or ""] + list(df.columns))
    rows = []
    for idx, row in df.iterrows():
        cells = [f"<th>{escape_html(idx)}</th>"]
        for v in row:
            if isinstance(v, float):
                text = float_format.format(v) if math.isfinite(v) else v
                cells.append(f'<td class="num">{escape_html(text)}</td>')
            else:
                cells.append(f"<td>{escape_html(v)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return Markup(f"<table><tr>{head}</tr>{''.join(rows)}</table>")


class Page:
    """A displayable gpviz page: ``.html()`` (standalone, offline), ``._repr_html_()``, ``.save(path)``.

    Subclasses give :meth:`_body` (the page content; ``suffix`` makes element ids
    unique per notebook display) and optionally :meth:`_head` (extra ``<head>``
    content, e.g. a ``<style>``). The page assets (:func:`header_html`) come once.
    """

    title: str = "gpviz"
    _what = "figure"  # named in the message of a display that failed

    def _animated(self) -> bool:
        """Whether the page shows a fit trace (and so needs rows2prose's time control)."""
        return True

    def _head(self) -> str:
        return ""

    def _body(self, suffix: str = "") -> str:
        raise NotImplementedError

    def html(self) -> str:
        """A standalone page (UTF-8, everything inline, works offline)."""
        # the body and head are this page's own HTML (user strings were escaped where they entered): joined in as
        # they are, without a Markup copy of the whole figure first (~3 ms a copy for a 2 MB page here)
        return _page(self.title, header_html(self._animated()) + self._head(), self._body())

    def _assets(self) -> tuple[str, ...]:
        """The script bundles the page uses (:data:`gpviz.html.notebook.ASSETS`)."""
        return ASSETS if self._animated() else ("core",)

    def _repr_html_(self) -> str:
        """Notebook display, with ids unique on the page and no network access.

        In a notebook kernel the first gpviz output of the session carries the
        scripts and later ones reuse them (:func:`gpviz.html.notebook.assets_to_carry`);
        elsewhere the output is self-contained.
        """
        try:
            carried = "".join(asset_html(n) for n in assets_to_carry(self._assets()))
            return carried + self._head() + self._body(next_display_suffix())
        except Exception as exc:  # noqa: BLE001 - a display must never break a notebook
            return f"<pre>gpviz could not display this {self._what}: {escape_html(type(exc).__name__)}: " \
                   f"{escape_html(exc)}</pre>"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes :meth:`html` to ``path`` (parent folders are created) and returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html(), encoding="utf-8")
        return path
