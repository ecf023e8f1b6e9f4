"""The page layer's name for :mod:`gpviz.markup` (escaping and the ``Markup`` type), kept for importers.

Escaping is a base utility: analyses and views that write a line of HTML (a
``_repr_html_`` fallback) import :mod:`gpviz.markup` itself, never the page layer.
"""

from gpviz.markup import Markup, as_html, element, escape_html, join, js_string, script_json, svg_data_uri

__all__ = ["Markup", "as_html", "element", "escape_html", "join", "js_string", "script_json", "svg_data_uri"]
