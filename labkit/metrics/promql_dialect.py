"""Prometheus 2.55's function names on top of promql-parser's, which follow Prometheus 3.

promql-parser (the Rust parser labkit uses) knows Prometheus 3's function
table: it parses ``double_exponential_smoothing`` and rejects
``holt_winters``. Prometheus 2.55, the release linkerd-viz ships, is the other
way round: ``holt_winters(range, sf, tf)`` is a function and
``double_exponential_smoothing`` is "unknown function with name …" (3.0 renamed
it). The two take the same arguments and compute the same thing, so a 2.55
query is parsed by spelling each ``holt_winters`` *call* the 3.x way first.

The rename must be exact: only an identifier in call position (followed, past
blanks and ``#`` comments, by ``(``) counts, as in Prometheus's grammar; a
metric or label called ``holt_winters``, a string or a comment containing the
word are left alone. :func:`function_calls` is therefore a small tokenizer
(strings with their escapes, comments, numbers and durations), not a search
over the text.
"""
from __future__ import annotations

import string

__all__ = ["function_calls", "to_parser_dialect", "from_parser_name", "parser_message", "UnknownFunction"]

#: 2.55's name -> the name promql-parser knows the same function by.
RENAMED = {"holt_winters": "double_exponential_smoothing"}
_BACK = {new: old for old, new in RENAMED.items()}

_IDENT_START = frozenset(string.ascii_letters + "_:")
_IDENT_CHARS = _IDENT_START | frozenset(string.digits)
_NUMBER_CHARS = _IDENT_CHARS | {"."}
_QUOTES = "\"'`"


class UnknownFunction(ValueError):
    """A function name Prometheus 2.55 does not know (a 3.x-only name); the message is Prometheus's."""


def _skip_string(text: str, i: int) -> int:
    """The index just past the string literal opening at ``text[i]`` (its end if unterminated)."""
    quote, n = text[i], len(text)
    i += 1
    while i < n:
        c = text[i]
        if c == "\\" and quote != "`":  # raw (backtick) strings have no escapes
            i += 2
            continue
        if c == quote:
            return i + 1
        i += 1
    return n


def _next_significant(text: str, i: int) -> str:
    """The first character at or after ``i`` that is not a blank or inside a ``#`` comment ("" at the end)."""
    n = len(text)
    while i < n:
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            if end < 0:
                return ""
            i = end + 1
        elif c.isspace():
            i += 1
        else:
            return c
    return ""


def function_calls(text: str) -> list[tuple[int, str]]:
    """``(offset, name)`` of every identifier in call position in the PromQL ``text``.

    This includes grouping keywords (``by (``) — harmless, as only the names in
    :data:`RENAMED` are acted on.
    """
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _QUOTES:
            i = _skip_string(text, i)
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif c in _IDENT_START:
            j = i + 1
            while j < n and text[j] in _IDENT_CHARS:
                j += 1
            if _next_significant(text, j) == "(":
                out.append((i, text[i:j]))
            i = j
        elif c.isdigit() or c == ".":  # a number or a duration (1e3, 0x1f, 5m, 1h30m): never a name
            j = i + 1
            while j < n and text[j] in _NUMBER_CHARS:
                j += 1
            i = j
        else:
            i += 1
    return out


def to_parser_dialect(text: str) -> tuple[str, bool]:
    """``text`` with 2.55's function names spelled as promql-parser knows them, and whether any was renamed.

    Raises :class:`UnknownFunction` for a call of a name 2.55 lacks but the
    parser would accept (``double_exponential_smoothing``).
    """
    calls = function_calls(text)
    for _, name in calls:
        if name in _BACK:
            raise UnknownFunction(f'unknown function with name "{name}"')  # Prometheus's text (Go's %q)
    pieces, last, renamed = [], 0, False
    for offset, name in calls:
        if name in RENAMED:
            pieces += [text[last:offset], RENAMED[name]]
            last = offset + len(name)
            renamed = True
    pieces.append(text[last:])
    return "".join(pieces), renamed


def from_parser_name(name: str) -> str:
    """A function name from the parsed tree, as the 2.55 query spelled it."""
    return _BACK.get(name, name)


def parser_message(message: str) -> str:
    """A parser error about a renamed call, naming the function as the query did."""
    for new, old in _BACK.items():
        message = message.replace(repr(new), repr(old))
    return message
