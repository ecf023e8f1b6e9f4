"""Escaping, in one place: user strings become safe HTML, JSON and JS; trusted fragments carry a type.

Every string that reaches a page goes through :func:`escape_html` (element text and
attribute values) or :func:`script_json` / :func:`js_string` (inside ``<script>``).
HTML that gpviz itself builds is a :class:`Markup`: page builders accept ``Markup``
as-is and escape every plain ``str``, so trust is a type, not a comment.
"""

from __future__ import annotations

import functools
import html as _html
import json
import re

from gpviz.errors import InputError


class Markup(str):
    """HTML that gpviz built itself (already escaped): inserted into pages as-is.

    ``Markup(escape_html(x))`` and the builders in :mod:`gpviz.html` make these;
    anything else is a plain ``str`` and is escaped when it reaches a page.
    Concatenating two ``Markup`` gives ``Markup``; adding a plain ``str`` escapes it.
    """

    __slots__ = ()

    def __add__(self, other):
        return Markup(str.__add__(self, as_html(other)))

    def __radd__(self, other):
        return Markup(str.__add__(as_html(other), self))

    def __repr__(self) -> str:
        return f"Markup({str.__repr__(self)})"


def escape_html(s) -> str:
    """Escapes text for HTML element content and quoted attribute values (``& < > " '``)."""
    return _html.escape(str(s), quote=True)


def as_html(x) -> Markup:
    """``x`` as page HTML: a :class:`Markup` passes through, anything else is escaped text."""
    return x if isinstance(x, Markup) else Markup(escape_html(x))


def join(parts, sep: str = "") -> Markup:
    """Joins fragments into one :class:`Markup` (plain strings among them are escaped)."""
    return Markup(as_html(sep).join(as_html(p) for p in parts))


def element(tag: str, content="", **attrs) -> Markup:
    """``<tag attr="...">content</tag>``: attribute values escaped, content via :func:`as_html`.

    Attribute names take ``_`` for ``-`` and a trailing ``_`` for Python keywords
    (``class_="x"``, ``data_key="k"``); ``None`` values are left out.
    """
    rendered = "".join(f' {k.rstrip("_").replace("_", "-")}="{escape_html(v)}"' for k, v in attrs.items()
                       if v is not None)
    return Markup(f"<{tag}{rendered}>{as_html(content)}</{tag}>")


# Characters that must not appear literally in a script: "<" ends </script> and opens <!--,
# "`" and "$" matter inside template literals, U+2028/9 end lines in old JS engines.
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", ord("`"): "\\u0060",
                   ord("$"): "\\u0024", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(obj) -> str:
    """A JSON text that is also a JS expression safe to inline in ``<script>`` (any nesting of str/num/list/dict).

    Raises:
        InputError: for NaN/inf numbers (send ``None``) or non-JSON objects.
    """
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot write {type(obj).__name__} into a page: {exc}") from None
    return text.translate(_SCRIPT_ESCAPES)


# Bytes a data URI in a double-quoted attribute must percent-encode: "%" and "#" (URI syntax), '"' and "&"
# (the attribute), "<" and ">" (sanitizers and old parsers); everything outside printable ASCII as UTF-8.
_URI_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) - set('%#"&<>')
# The regex engine finds the few unsafe characters in C (a page of 1,000 static charts holds ~800,000
# characters, ~5% of them unsafe); each distinct one is encoded once.
_URI_UNSAFE = re.compile("[^" + re.escape("".join(sorted(_URI_SAFE))) + "]")


@functools.lru_cache(maxsize=None)
def _percent(c: str) -> str:
    return "".join(f"%{b:02X}" for b in c.encode("utf-8"))


def svg_data_uri(svg: str) -> str:
    """``data:image/svg+xml,...`` for an SVG text, safe as a double-quoted attribute value without more escaping.

    Percent-encoding (not base64) keeps the URI about as long as the SVG itself.
    """
    return "data:image/svg+xml," + _URI_UNSAFE.sub(lambda m: _percent(m.group()), svg)


def js_string(s) -> str:
    """A JS string literal (with its quotes) for ``s``, safe inside ``<script>`` and template literals."""
    return script_json(str(s))
