"""Durations as the labs write them: ``"90s"``, ``"5m"``, ``"1h30m"``, ``"250ms"`` or seconds.

Every labkit call that takes a duration goes through :func:`seconds`, so a typo
fails in one place with one message that says what was wrong and what is
accepted, before anything is applied or waited for.
"""
from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_FORMS = '"90s", "5m", "1h30m", "250ms" or a number of seconds'


class DurationError(ValueError):
    """A duration that labkit cannot read."""


def seconds(value: str | int | float, *, name: str = "duration") -> float:
    """Return ``value`` in seconds.

    Accepts Go/Kubernetes-style strings (units ``h``, ``m``, ``s``, ``ms``,
    combinable in any order of size, like ``1h30m``) and plain non-negative
    numbers of seconds. ``name`` is the parameter the value came from, so the
    error names it.
    """
    if isinstance(value, bool):
        raise DurationError(f"{name}={value!r} is not a duration; use {_FORMS}")
    if isinstance(value, (int, float)):
        if math.isnan(value) or math.isinf(value) or value < 0:
            raise DurationError(f"{name}={value!r} must be a finite, non-negative number of seconds")
        return float(value)
    if not isinstance(value, str):
        raise DurationError(f"{name}={value!r} ({type(value).__name__}) is not a duration; use {_FORMS}")
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    pos, total, last_unit = 0, 0.0, None
    order = ["h", "m", "s", "ms"]
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        unit = match.group(2)
        if last_unit is not None and order.index(unit) <= order.index(last_unit):
            raise DurationError(f"{name}={value!r}: units must go from larger to smaller, once each (e.g. \"1h30m\")")
        total += float(match.group(1)) * _UNITS[unit]
        pos, last_unit = match.end(), unit
    if pos != len(text) or not text:
        raise DurationError(f"{name}={value!r} is not a duration; use {_FORMS}")
    return total


def format_duration(secs: float) -> str:
    """``90`` → ``"1m30s"``: the short form kubectl prints for ages and intervals."""
    secs = int(round(secs))
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        m, s = divmod(secs, 60)
        return f"{m}m{s}s" if s and m < 10 else f"{m}m"
    if secs < 86400:
        h, rem = divmod(secs, 3600)
        m = rem // 60
        return f"{h}h{m}m" if m and h < 10 else f"{h}h"
    d, rem = divmod(secs, 86400)
    h = rem // 3600
    return f"{d}d{h}h" if h and d < 10 else f"{d}d"
