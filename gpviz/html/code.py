"""A section's code as HTML: laid-out lines, charts aligned in one column, long runs of charts in a grid.

Reads the token stream of :func:`gpviz.tree.printer.layout` (strings and
:class:`~gpviz.tree.nodes.Param` leaves); the caller turns each leaf into its
chart's placeholder. Quoted strings (feature names) are tinted, and each
pseudocode function name carries its notation line as hover text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from gpviz.markup import escape_html
from gpviz.tree.nodes import Param
from gpviz.tree.notation import function_names_in

_STR_RE = re.compile(r"('(?:[^'\\]|\\.)*')")


def _fn_html(text: str, key: Mapping[str, str]) -> str:
    """Escaped code with each function name in ``key`` wrapped in a span whose hover text is its key line."""
    out, at = [], 0
    for start, end, name in function_names_in(text, key):
        out.append(escape_html(text[at:start]))
        out.append(f'<span class="gpviz-fn" title="{escape_html(key[name])}">{escape_html(name)}</span>')
        at = end
    out.append(escape_html(text[at:]))
    return "".join(out)


def code_html(text: str, key: Mapping[str, str] | None = None, memo: dict | None = None) -> str:
    """Escaped code text with quoted strings (feature names) tinted and function names explained on hover.

    Args:
        text: A piece of printed code.
        key: function name -> its notation line (the hover text).
        memo: A dict kept across the calls of one page (with one ``key``): the code between quoted
            strings repeats on every line (``compare(`` ... ``) / ``), so each piece is made once.
    """
    key = key or {}
    memo = {} if memo is None else memo
    whole = memo.get((text,))  # a token seen before on this page (" / ", ",", an indent)
    if whole is not None:
        return whole
    out = []
    for i, p in enumerate(_STR_RE.split(text)):
        if not p:
            continue
        if i % 2:
            out.append(f'<span class="gpviz-str">{escape_html(p)}</span>')
            continue
        html = memo.get(p)
        if html is None:
            html = memo[p] = _fn_html(p, key)
        out.append(html)
    whole = memo[(text,)] = "".join(out)
    return whole


def notation_html(entries: Sequence[tuple[str, str]]) -> str:
    """The page's notation key: a collapsed ``<details>`` listing each function the expression uses."""
    if not entries:
        return ""
    names = ", ".join(name for name, _ in entries)
    rows = "".join(f'<li data-fn="{escape_html(name)}">{escape_html(line)}</li>' for name, line in entries)
    return (f'<details class="gpviz-notation"><summary>Notation: {escape_html(names)}</summary>'
            f"<ul>{rows}</ul></details>")


#: Charts that end their line start at one column (padding the text before them) unless that needs more
#: than this many characters of padding on some line.
ALIGN_MAX_PAD = 48
_TRAILING = set(",)] ")


#: At least this many consecutive lines that each end with one chart, at one indentation, flow into
#: columns (a CSS grid) instead of one long column: 24 ARD lengthscales take 12 rows at 1400 px, not 24.
RUN_MIN = 4


@dataclass
class CodeLines:
    """Laid-out code split into lines, with where its charts align.

    Attributes:
        lines: One list of tokens (strings and :class:`Param` leaves) per line, newlines removed.
        pads: line index -> spaces inserted before its chart (charts that end their line start
            at one column).
        runs: ``(first, last + 1)`` line ranges of :data:`RUN_MIN` or more aligned lines at one
            indentation: drawn as a grid of cells.
    """

    lines: list
    pads: dict
    runs: list


def code_lines(tokens: list) -> CodeLines:
    """Splits :func:`gpviz.tree.printer.layout` tokens into lines and aligns the charts that end a line.

    ``compare('lr') / ▮`` and ``compare('weight_decay') / ▮`` put their charts at
    different places when they follow the text; aligned, the names read down the left
    and the charts down the right. Lines with another chart before theirs
    (``0.69 * rbf(...)``) keep their layout.
    """
    lines: list[list] = [[]]
    for t in tokens:
        if isinstance(t, Param):
            lines[-1].append(t)
            continue
        parts = t.split("\n")
        lines[-1].append(parts[0])
        for p in parts[1:]:
            lines.append([p])
    widths = {}
    for i, line in enumerate(lines):
        params = [j for j, t in enumerate(line) if isinstance(t, Param)]
        if len(params) == 1 and all(set(t) <= _TRAILING for t in line[params[0] + 1:]):
            widths[i] = sum(len(t) for t in line[:params[0]])
    pads: dict[int, int] = {}
    if len(widths) >= 2:
        column = max(widths.values())
        if column - min(widths.values()) > ALIGN_MAX_PAD:
            column = min(widths.values()) + ALIGN_MAX_PAD
        pads = {i: max(0, column - w) for i, w in widths.items()}

    def indent(line: list) -> int:
        first = line[0] if line and isinstance(line[0], str) else ""
        return len(first) - len(first.lstrip(" "))

    runs, start = [], None
    for i in range(len(lines) + 1):
        same = (i < len(lines) and i in widths and start is not None
                and indent(lines[i]) == indent(lines[start]))
        if same:
            continue
        if start is not None and i - start >= RUN_MIN:
            runs.append((start, i))
        start = i if i < len(lines) and i in widths else None
    for a, b in runs:  # a run is its own grid: its charts align among themselves (narrower cells)
        column = max(widths[k] for k in range(a, b))
        pads.update({k: column - widths[k] for k in range(a, b)})
    return CodeLines(lines, pads, runs)


def code_block_html(cl: CodeLines, token_html: Callable[[str | Param], str], leaf_chars: int) -> str:
    """The HTML of laid-out code: lines joined by newlines, each run of aligned lines a grid of cells.

    Args:
        cl: The lines (:func:`code_lines`).
        token_html: token -> its HTML (a string of code, or a leaf's placeholder).
        leaf_chars: A chart's width in characters of the code font (sizes a grid's cells).
    """
    run_of = {}
    for a, b in cl.runs:
        for i in range(a, b):
            run_of[i] = (a, b)

    def line_html(i: int, strip: bool = False) -> str:
        out: list[str] = []
        text: list[str] = []
        for j, t in enumerate(cl.lines[i]):
            if isinstance(t, Param) and cl.pads.get(i):
                (text if strip else out).append(" " * cl.pads[i])
            if isinstance(t, Param) and strip:  # a grid cell: the text around its chart stays one piece
                out.append(f'<span class="gpviz-cell-text">{"".join(text)}</span>' if text else "")
                out.append(token_html(t))
                text = []
                continue
            (text if strip else out).append(token_html(t.lstrip(" ") if strip and j == 0 and isinstance(t, str) else t))
        if strip and text:
            out.append(f'<span class="gpviz-cell-text">{"".join(text)}</span>')
        return "".join(out)

    parts = []
    i = 0
    while i < len(cl.lines):
        if i in run_of:
            a, b = run_of[i]
            first = cl.lines[a][0] if isinstance(cl.lines[a][0], str) else ""
            depth = len(first) - len(first.lstrip(" "))
            # every cell as wide as the widest line of the run (in characters of the code font)
            cell = max(sum(len(t) if isinstance(t, str) else leaf_chars for t in cl.lines[k])
                       - depth + cl.pads.get(k, 0) for k in range(a, b))
            cells = "".join(f'<span class="gpviz-cell">{line_html(k, strip=True)}</span>' for k in range(a, b))
            parts.append(f'<span class="gpviz-run" style="margin-left:{depth}ch;--cell:{cell + 2}ch">{cells}</span>')
            i = b
            continue
        parts.append(line_html(i) + ("\n" if i + 1 < len(cl.lines) and i + 1 not in run_of else ""))
        i += 1
    return "".join(parts)
