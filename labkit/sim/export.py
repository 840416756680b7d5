"""Export the embedded mesh's scraped series as OpenMetrics text, with timestamps.

This is what a real Prometheus would hold after scraping the same proxies:
learners can load it into their own tools, and the tests backfill it into a
real Prometheus (``promtool tsdb create-blocks-from openmetrics``) to check
that ``mesh.query`` computes what Prometheus computes.
"""
from __future__ import annotations

import math
from pathlib import Path

from labkit.sim.linkerd.proxy import HELP

_SUFFIXES = ("_bucket", "_count", "_sum")


def family_of(name: str) -> tuple[str, str]:
    """(OpenMetrics family name, type) for a sample name, from the proxy's metric catalogue."""
    for suffix in _SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and HELP.get(base, ("",))[0] == "histogram":
            return base, "histogram"
    kind = HELP.get(name, ("unknown",))[0]
    if kind == "counter" and name.endswith("_total"):
        return name[: -len("_total")], "counter"
    return name, kind


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if value != int(value) else str(int(value))


def openmetrics(store, path) -> str:
    """Write every series in ``store`` to ``path`` (OpenMetrics 1.0, one sample per line); return the path.

    Families are contiguous and each series' samples are in time order;
    staleness markers are left out (OpenMetrics has no way to say "gone").
    """
    by_family: dict[str, list] = {}
    types: dict[str, str] = {}
    for series in store.select(None, []):
        family, kind = family_of(series.name)
        types[family] = kind
        by_family.setdefault(family, []).append(series)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for family in sorted(by_family):
            f.write(f"# TYPE {family} {types[family]}\n")
            if family in HELP:
                f.write(f"# HELP {family} {HELP[family][1]}\n")
            for series in sorted(by_family[family], key=lambda s: (s.name, s.label_items)):
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in series.label_items if k != "__name__")
                head = f"{series.name}{{{labels}}}" if labels else series.name
                for t, v in zip(series.times, series.values):
                    if math.isnan(v):
                        continue
                    f.write(f"{head} {_number(v)} {t:.3f}\n")
        f.write("# EOF\n")
    return str(out)
