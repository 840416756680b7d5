"""Terminal text that a notebook shows without wrapping: the CLI's bytes, laid out as a terminal would.

A notebook's stream output (``print``) wraps long lines at the window's
edge, and JupyterLab breaks them anywhere (``white-space: pre-wrap;
word-break: break-all``): on a 1366 px laptop ``viz top`` (124–149
characters) or ``routes -o wide`` (141) become two lines per row with their
columns torn apart. A terminal scrolls or truncates instead, it never
re-flows a table. :class:`CliText` is a ``str`` — so ``print``, ``str()``,
file writes and comparisons give exactly the CLI's bytes — whose rich
display is a ``<pre>`` that keeps every line on one line and scrolls
sideways when the window is narrower than the table.

This module imports only the standard library: tables, canary reports and
live views (all above it) use it.
"""
from __future__ import annotations

import html

__all__ = ["CliText", "PRE_CLASS", "pre_html"]

#: The class of the ``<pre>`` every CLI block renders into (the browser test finds tables by it).
PRE_CLASS = "labkit-cli"

# Inline style, not a stylesheet: it must hold in JupyterLab, classic Notebook, VS Code and the nbconvert
# handouts alike, none of which loads labkit's CSS. `pre` (not `pre-wrap`) keeps rows on one line;
# overflow-x scrolls the block alone, not the page. Font and size stay the host's code font.
_PRE_STYLE = "white-space: pre; overflow-x: auto; word-break: normal; overflow-wrap: normal; margin: 0; padding: 0"


def pre_html(text: str) -> str:
    """``text`` as one non-wrapping ``<pre>`` block (HTML-escaped), the way a terminal would lay it out."""
    return f'<pre class="{PRE_CLASS}" style="{_PRE_STYLE}">{html.escape(text, quote=False)}</pre>'


class CliText(str):
    """A ``str`` holding a command's output exactly; in a notebook it displays as a non-wrapping block.

    Concatenating keeps the type (``"applied\\n\\n" + cli_text(pods)``), so a
    cell can end with the whole text and get one block. ``head(n)`` keeps the
    first ``n`` lines, as ``| head -n`` would.
    """

    __slots__ = ()

    def __add__(self, other):
        if not isinstance(other, str):
            return NotImplemented
        return CliText(str.__add__(self, other))

    def __radd__(self, other):
        # Python asks a str subclass's reflected method first, so `"text" + CliText(...)` lands here too.
        if not isinstance(other, str):
            return NotImplemented
        return CliText(str.__add__(other, self))

    def head(self, lines: int) -> "CliText":
        """The first ``lines`` lines (with their newlines), like ``| head -n LINES``."""
        if not isinstance(lines, int) or isinstance(lines, bool) or lines < 0:
            raise ValueError(f"head() takes a number of lines >= 0, not {lines!r}")
        return CliText("".join(self.splitlines(keepends=True)[:lines]))

    def _repr_mimebundle_(self, include=None, exclude=None):
        """text/plain is the exact text (no quotes, no escapes); text/html the non-wrapping block."""
        return {"text/plain": str(self), "text/html": pre_html(str(self))}

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        # IPython's plain-text formatter has a printer for str that would win over the bundle's text/plain
        # (and show the repr, quotes and \n escapes); this class-level hook comes first in its lookup.
        printer.text(str(self))
