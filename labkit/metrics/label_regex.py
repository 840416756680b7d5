"""Label regexes with Prometheus's semantics: RE2 syntax, fully anchored.

Prometheus compiles ``=~`` / ``!~`` matchers and ``label_replace``'s pattern
with Go's ``regexp`` package, which is RE2: no backreferences or lookaround,
Go's flag syntax (``(?i)`` anywhere, ``(?s:…)``), linear-time matching.
Python's ``re`` rejects some of that and accepts things RE2 refuses, so a
learner's regex would mean something else here than on a real Prometheus.
``google-re2`` (the RE2 library's maintained Python binding) gives the same
language. Matchers are anchored as Prometheus 2.55 anchors them,
``^(?s:pattern)$`` (dot matches newline); ``label_replace`` uses
``^(?:pattern)$``.
"""
from __future__ import annotations

from functools import lru_cache

import re2

__all__ = ["matcher_regex", "replace_regex", "expand"]


def _options(dot_nl: bool):
    opts = re2.Options()
    opts.log_errors = False  # the error goes into our exception, not onto stderr
    opts.dot_nl = dot_nl
    return opts


def _compile(pattern: str, dot_nl: bool, where: str):
    if not isinstance(pattern, str):
        raise ValueError(f"a regular expression must be a string, got {type(pattern).__name__} in {where}")
    try:
        return re2.compile(f"(?:{pattern})", options=_options(dot_nl))
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(
            f"invalid regular expression {pattern!r} in {where}: {detail} (PromQL regexes are RE2 syntax)"
        ) from None


@lru_cache(maxsize=2048)
def matcher_regex(pattern: str):
    """The compiled pattern of an ``=~`` / ``!~`` label matcher; use ``.fullmatch(value)``."""
    return _compile(pattern, True, "a label matcher")


@lru_cache(maxsize=256)
def replace_regex(pattern: str):
    """The compiled pattern of ``label_replace``; use ``.fullmatch(value)``."""
    return _compile(pattern, False, "label_replace()")


def expand(template: str, match) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``${name}`` and ``$$`` in ``template``.

    As in Go, ``$name`` takes the longest run of letters, digits and ``_``
    (so ``$1x`` means the group named ``1x``); a group that does not exist or
    did not participate expands to "", and a ``$`` not followed by a valid
    reference is copied as is.
    """
    out: list[str] = []
    i, n = 0, len(template)
    names = match.re.groupindex
    ngroups = match.re.groups
    while i < n:
        ch = template[i]
        if ch != "$" or i + 1 == n:
            out.append(ch)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            close = template.find("}", i + 2)
            name = template[i + 2:close] if close > 0 else ""
            if close < 0 or not name or not all(c.isalnum() or c == "_" for c in name):
                out.append("$")
                i += 1
                continue
            end = close + 1
        else:
            j = i + 1
            while j < n and (template[j].isalnum() or template[j] == "_") and template[j].isascii():
                j += 1
            name = template[i + 1:j]
            if not name:
                out.append("$")
                i += 1
                continue
            end = j
        if name.isdigit():
            index = int(name)
            value = match.group(index) if index <= ngroups else None
        else:
            value = match.group(name) if name in names else None
        out.append(value or "")
        i = end
    return "".join(out)
