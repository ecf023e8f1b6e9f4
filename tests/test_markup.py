"""Markup: trusted HTML is a type; plain strings are escaped wherever they reach a page."""

from __future__ import annotations

import urllib.parse

import hypothesis
import hypothesis.strategies
import pandas as pd

from gpviz.markup import Markup, as_html, element, escape_html, join, svg_data_uri
from gpviz.html.page import document, table_html


def test_plain_strings_are_escaped_markup_passes():
    assert as_html("<b>") == "&lt;b&gt;"
    assert as_html(Markup("<b>")) == "<b>"
    assert Markup("<i>") + "<b>" == "<i>&lt;b&gt;" and isinstance(Markup("<i>") + "x", Markup)
    assert "<b>" + Markup("<i>") == "&lt;b&gt;<i>"
    assert join(["<a>", Markup("<br>")]) == "&lt;a&gt;<br>"
    assert element("span", "<x>", class_="c", data_key='k"') == '<span class="c" data-key="k&quot;">&lt;x&gt;</span>'


def test_the_page_skeleton_escapes_its_title_and_plain_bodies():
    page = document("a <title>", "<script>alert(1)</script>")
    assert "<title>a &lt;title&gt;</title>" in page and "<script>alert" not in page
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page


def test_tables_escape_every_cell():
    df = pd.DataFrame({"<k>": ["<v>"], "x": [1.23456]}, index=pd.Index(["<i>"], name="n"))
    html = table_html(df)
    assert "&lt;k&gt;" in html and "&lt;v&gt;" in html and "&lt;i&gt;" in html and "1.235" in html
    assert escape_html("'") == "&#x27;"


def test_render_frame_shows_untrusted_extra_html_as_text():
    import gpviz
    from gpytorch.kernels import RBFKernel

    from gpviz.rendering import render_frame

    e = gpviz.kernel_expr(RBFKernel())
    fig = render_frame(e, gpviz.parameters(e), extra_html="<img src=x onerror=alert(1)>")
    assert "<img src=x" not in fig.html() and "&lt;img src=x onerror=alert(1)&gt;" in fig.html()


@hypothesis.given(hypothesis.strategies.text(alphabet=hypothesis.strategies.characters(codec="utf-8"), max_size=80))
def test_svg_data_uris_percent_encode_exactly_the_unsafe_bytes(text):
    uri = svg_data_uri(text)
    body = uri.removeprefix("data:image/svg+xml,")
    # safe as a double-quoted attribute and in URI syntax: only printable ASCII, none of the six specials
    assert uri.isascii() and all(0x20 <= ord(c) < 0x7F for c in body) and not set(body) & set('#"&<>')
    assert urllib.parse.unquote(body, errors="strict") == text  # and nothing is lost
