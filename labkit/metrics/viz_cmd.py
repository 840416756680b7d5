"""What linkerd's 2.17+ viz verbs share (``stat-inbound``, ``stat-outbound``, ``authz``), for both backends.

These commands query Prometheus themselves (``viz/cmd/stat-inbound.go``
``queryRate`` / ``queryQuantiles``) instead of going through metrics-api:
the target ``TYPE/NAME`` becomes a label selector and group-by labels
(``viz/pkg/prometheus``: ``QueryLabels``, ``GroupByLabelNames``), counts are
``increase`` over the window truncated to integers (``uint64(sample.Value)``),
and percentages are computed in ``float32`` as the CLI prints them.
"""
from __future__ import annotations

import json
import math

import numpy as np

from labkit.durations import seconds
from labkit.errors import LabkitError

#: TYPE → the Prometheus label that names it (``k8s.KindToL5DLabel``).
RESOURCE_LABELS = {
    "deploy": "deployment", "deployment": "deployment", "deployments": "deployment",
    "po": "pod", "pod": "pod", "pods": "pod",
    "ns": "namespace", "namespace": "namespace", "namespaces": "namespace",
    "sts": "statefulset", "statefulset": "statefulset", "statefulsets": "statefulset",
    "ds": "daemonset", "daemonset": "daemonset", "daemonsets": "daemonset",
    "rs": "replicaset", "replicaset": "replicaset", "replicasets": "replicaset",
    "job": "k8s_job", "jobs": "k8s_job",
}
QUANTILES = ("0.5", "0.95", "0.99")


class VizCmdError(LabkitError, ValueError):
    """A target or window the viz command refuses."""


def target(resource: str, namespace: str | None, verb: str) -> tuple[str, dict, list[str]]:
    """``"deploy/webapp"`` → (row label, query labels, group-by labels), as ``pkgUtil.BuildResource`` then
    ``QueryLabels`` / ``GroupByLabelNames`` make them."""
    kind, _, name = str(resource).partition("/")
    label = RESOURCE_LABELS.get(kind.lower())
    if label is None:
        raise VizCmdError(f"{verb} {resource!r}: unknown resource type {kind!r}; use TYPE/NAME with TYPE one of "
                          "deploy, po, ns, sts, ds, rs, job (for example deploy/webapp)")
    ns = namespace or "default"
    labels: dict = {}
    if label == "namespace":
        labels["namespace"] = name or ns
        return label, labels, ["namespace"]
    if name:
        labels[label] = name
    labels["namespace"] = ns
    return label, labels, ["namespace", label]


def window_seconds(window) -> tuple[str, float]:
    """The ``-t`` window as Prometheus text and in seconds."""
    secs = seconds(window, name="window")
    if secs <= 0:
        raise VizCmdError(f"window {window!r} must be positive (for example \"1m\")")
    return (window if isinstance(window, str) else f"{int(secs)}s"), float(secs)


def command_frame(rows: list[dict], columns: list[str], first_stat: int, table: str, *, window, window_s: float,
                  resource: str, namespace: str | None):
    """A viz command's rows as the contract's DataFrame: the stat columns (``columns[first_stat:]``) as float64
    with NaN for "-", and the attrs :func:`labkit.cli_text` renders the CLI's table from."""
    import pandas as pd  # not at import time: `import labkit` stays fast

    frame = pd.DataFrame(rows, columns=columns)
    for col in columns[first_stat:]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame.attrs = {"table": table, "window": window, "window_s": window_s, "resource": resource,
                   "namespace": namespace or "default"}
    return frame


def count(value) -> int:
    """Go's ``uint64(sample.Value)``: truncation (NaN and negatives count 0)."""
    v = float(value)
    return 0 if math.isnan(v) or v <= 0 else int(v)


def pct32(part: int, whole: int) -> str:
    """``fmt.Sprintf("%.2f%%", float32(part)/float32(whole)*100.0)``."""
    if whole == 0:
        return "NaN%"
    return "%.2f%%" % float(np.float32(np.float32(part) / np.float32(whole)) * np.float32(100.0))


def rps32(total: int, window_s: float) -> str:
    """``fmt.Sprintf("%.2f", float32(total)/float32(window.Seconds()))``."""
    return "%.2f" % float(np.float32(total) / np.float32(window_s))


def latency_ms(value) -> str:
    """``formatLatencyMs``: ``%.0fms`` (Go rounds halves to even, as Python's ``%`` does), ``-`` for NaN."""
    v = float(value)
    return "-" if math.isnan(v) else "%.0fms" % v


def go_json(rows: list[dict]) -> str:
    """``json.Marshal`` of flat rows, one line, keys in struct order (Go writes ``1`` for 1.0, no exponent
    between 1e-6 and 1e21, ``null`` for a nil pointer: NaN latencies)."""
    return "[" + ",".join("{" + ",".join(f"{json.dumps(k)}:{_go_value(v)}" for k, v in r.items()) + "}"
                          for r in rows) + "]\n"


def _go_value(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f) or math.isinf(f):
            return "null"
        if f.is_integer() and abs(f) < 1e21:
            return str(int(f))
        text = repr(f)
        if "e" in text and 1e-6 <= abs(f) < 1e21:
            text = np.format_float_positional(f, trim="-")
        return text
    return json.dumps(str(v), ensure_ascii=False)
