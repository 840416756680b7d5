"""CLI-shaped tables shared by both backends, and their exact text rendering.

Both backends (the embedded mesh and a real cluster) return the same pandas
DataFrames for ``stat``, ``routes``, ``top``, ``tap``, ``edges`` and the
kubectl-style listings, so notebooks, plots and tests never care where a
number came from. The columns are the CLI's own; the cells hold *numbers*
(success as a 0–1 fraction, RPS per second, latencies in milliseconds, ages in
seconds), and :func:`cli_text` turns a table back into the exact bytes the
linkerd / kubectl CLI prints, so what a learner sees in a notebook is what
they will see in a terminal.

The rendering follows the linkerd CLI's Go code: ``text/tabwriter`` with
``AlignRight`` and padding 3 for ``stat`` / ``routes`` / ``edges`` (with the
first column's left padding stripped), the termbox layout of ``viz top``, the
line grammar of ``viz tap``, kubectl's tabwriter (min width 6, padding 3) and
``linkerd check``'s category blocks. See reference/linkerd-formats.md §2, §6.

This module imports pandas and numpy only (never matplotlib), and labkit.clitext.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from labkit.clitext import CliText

__all__ = [
    "TABLE_KINDS", "new_table", "columns_for", "cli_text", "human_duration", "go_duration",
    "top_from_tap", "resource_type", "Check", "CheckReport",
]

#: Every table kind :func:`new_table` knows (anything else is rendered generically, kubectl-style).
TABLE_KINDS = (
    "stat", "routes", "top", "tap", "edges",
    "pods", "nodes", "events", "deployments", "canaries", "generic",
)

_PADDING = 3  # linkerd's tabwriter padding (viz/cmd/stat.go `padding`)
_MICRO = "\u00b5"  # µ as Go prints it in `latency=…µs` and Duration.String()
OK_MARK, WARN_MARK, FAIL_MARK = "\u221a", "\u203c", "\u00d7"  # √ ‼ ×

# --------------------------------------------------------------------------- resource types

_RESOURCE_ALIASES = {
    "deployment": ("deploy", "deployment", "deployments"),
    "pod": ("po", "pod", "pods"),
    "service": ("svc", "service", "services"),
    "namespace": ("ns", "namespace", "namespaces"),
    "trafficsplit": ("ts", "trafficsplit", "trafficsplits"),
    "authority": ("au", "authority", "authorities"),
    "statefulset": ("sts", "statefulset", "statefulsets"),
    "daemonset": ("ds", "daemonset", "daemonsets"),
    "replicaset": ("rs", "replicaset", "replicasets"),
    "replicationcontroller": ("rc", "replicationcontroller", "replicationcontrollers"),
    "job": ("job", "jobs"),
    "cronjob": ("cj", "cronjob", "cronjobs"),
}
_CANONICAL = {alias: canon for canon, aliases in _RESOURCE_ALIASES.items() for alias in aliases}
#: kubectl / linkerd short names, as `tap -o wide` prints them in `src_res=deploy/web`.
SHORT_NAMES = {
    "deployment": "deploy", "pod": "po", "service": "svc", "namespace": "ns", "trafficsplit": "ts",
    "authority": "au", "statefulset": "sts", "daemonset": "ds", "replicaset": "rs",
    "replicationcontroller": "rc", "job": "job", "cronjob": "cronjob",
}


def resource_type(resource: str | None) -> str | None:
    """Canonical resource type of ``"deploy"``, ``"po/web-1"``, ``"svc/books"``… (``None`` stays ``None``).

    The CLI accepts every alias, so tables store the canonical name to pick
    the right columns (a pod table has STATUS, a trafficsplit APEX/LEAF/WEIGHT).
    """
    if resource is None:
        return None
    kind = str(resource).split("/", 1)[0].strip().lower()
    return _CANONICAL.get(kind, kind)


# --------------------------------------------------------------------------- small value helpers


def _missing(value: Any) -> bool:
    """True for None / NaN / NA / NaT scalars (containers are never "missing")."""
    if value is None:
        return True
    if isinstance(value, (dict, list, tuple, set)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str:
    """A cell as text, with missing values as the empty string."""
    return "" if _missing(value) else str(value)


def _blen(text: str) -> int:
    """Length as Go's ``len()`` counts it (UTF-8 bytes): the CLI sizes its templates this way."""
    return len(text.encode("utf-8"))


def _go_round(value: float) -> int:
    """``math.Round`` semantics (half away from zero), which metrics-api applies to latencies."""
    if _missing(value) or math.isinf(value):
        return 0
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def human_duration(seconds: Any) -> str:
    """Render an age like kubectl's ``AGE`` / ``LAST SEEN`` columns (``45s``, ``2m30s``, ``12m``, ``3h``, ``5d``).

    Same thresholds as ``k8s.io/apimachinery/pkg/util/duration.HumanDuration``:
    exact seconds below 2 minutes, then about two significant figures.
    Strings (already formatted, e.g. ``"2m (x3 over 10m)"``) pass through.
    """
    if isinstance(seconds, str):
        return seconds
    if _missing(seconds):
        return "<unknown>"
    total = float(seconds)
    whole = int(total)  # Go int(d.Seconds()) truncates toward zero
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _fraction(nanos: int, unit: int) -> str:
    """``nanos / unit`` as Go prints it: integer part plus a trailing-zero-free fraction."""
    whole, rest = divmod(nanos, unit)
    if rest == 0:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def go_duration(nanos: int) -> str:
    """Go's ``time.Duration.String()`` for a non-negative duration in nanoseconds (``81µs``, ``9ms``, ``1m5s``)."""
    nanos = int(nanos)
    if nanos == 0:
        return "0s"
    if nanos < 1_000:
        return f"{nanos}ns"
    if nanos < 1_000_000:
        return _fraction(nanos, 1_000) + f"{_MICRO}s"
    if nanos < 1_000_000_000:
        return _fraction(nanos, 1_000_000) + "ms"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    secs = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs


def _round_duration(nanos: int, unit: int) -> int:
    """``time.Duration.Round(unit)``: to the nearest multiple, halves away from zero."""
    quotient, rest = divmod(nanos, unit)
    if rest * 2 >= unit:
        quotient += 1
    return quotient * unit


def _top_duration(ms: Any) -> str:
    """``viz top``'s formatDuration: µs below 1 ms, ms below 1 s, whole seconds above."""
    if _missing(ms):
        return ""
    nanos = int(round(float(ms) * 1_000_000))
    if nanos < 1_000_000:
        return go_duration(_round_duration(nanos, 1_000))
    if nanos < 1_000_000_000:
        return go_duration(_round_duration(nanos, 1_000_000))
    return go_duration(_round_duration(nanos, 1_000_000_000))


# --------------------------------------------------------------------------- Go text/tabwriter


def _tabwrite(text: str, *, padding: int, minwidth: int = 0, align_right: bool = False) -> str:
    """Format ``text`` the way Go's ``text/tabwriter`` does (cells are tab-*terminated*).

    A column block is a run of consecutive lines that have a terminated cell
    in that column; its width is the widest cell plus ``padding`` (at least
    ``minwidth``). The last cell of a line is not part of any column and is
    written as is. Widths count runes, as tabwriter does.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[int] = []
    out: list[str] = []

    def write_lines(start: int, stop: int) -> None:
        for index in range(start, stop):
            parts = []
            for col, cell in enumerate(lines[index]):
                if col < len(widths):
                    fill = " " * max(widths[col] - len(cell), 0)
                    parts.append(fill + cell if align_right else cell + fill)
                else:
                    parts.append(cell)
            out.append("".join(parts))
            if index + 1 < len(lines):
                out.append("\n")

    def format_block(start: int, stop: int) -> None:
        column = len(widths)
        line = start
        while line < stop:
            if column >= len(lines[line]) - 1:
                line += 1
                continue
            write_lines(start, line)
            start = line
            width = minwidth
            while line < stop and column < len(lines[line]) - 1:
                width = max(width, len(lines[line][column]) + padding)
                line += 1
            widths.append(width)
            format_block(start, line)
            widths.pop()
            start = line
        write_lines(start, stop)

    format_block(0, len(lines))
    return "".join(out)


def _linkerd_table(lines: Sequence[Sequence[str]], *, trailing_blank: bool = False) -> str:
    """Lay out tab-terminated rows like viz stat/routes/edges: AlignRight, padding 3, first column's padding stripped."""
    text = "".join("\t".join(cells) + "\t\n" for cells in lines)
    if trailing_blank:
        text += "\n"
    out = _tabwrite(text, padding=_PADDING, align_right=True)
    if len(out) > _PADDING:
        out = out[_PADDING:]
    return out.replace("\n" + " " * _PADDING, "\n")


def _kubectl_table(lines: Sequence[Sequence[str]]) -> str:
    """Lay out rows like kubectl's printers: left-aligned, min width 6, padding 3, last column unpadded."""
    text = "".join("\t".join(cells) + "\n" for cells in lines)
    return _tabwrite(text, padding=3, minwidth=6)


# --------------------------------------------------------------------------- schemas

_STAT_STATS = ["SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
_LATENCIES = ["LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
_BYTES = ["READ_BYTES/SEC", "WRITE_BYTES/SEC"]
_WIDE_ROUTE_STATS = ["EFFECTIVE_SUCCESS", "EFFECTIVE_RPS", "ACTUAL_SUCCESS", "ACTUAL_RPS"]

TAP_COLUMNS = [
    "type", "id", "proxy", "src", "dst", "tls", "method", "authority", "path", "status",
    "latency_us", "duration_us", "response_length", "grpc_status",
    "src_res", "src_ns", "dst_res", "dst_ns", "rt_route",
    # beyond the brief's list, so `end … reset-error=` and current `-o wide` (all peer labels) render exactly:
    "reset_error", "src_labels", "dst_labels",
]
_TOP_COLUMNS = ["SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "BEST", "WORST", "LAST", "SUCCESS"]
_EDGES_COLUMNS = ["SRC", "DST", "SRC_NS", "DST_NS", "CLIENT_ID", "SERVER_ID", "SECURED"]
_KUBECTL_COLUMNS = {
    "pods": ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
    "nodes": ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
    "events": ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
    "deployments": ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
    "canaries": ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"],
}

# dtype per column: "float" (NaN where absent), "int" (0 where absent), "Int64" (nullable int),
# "str", "obj" (left as given, missing → None), "age" (seconds as float, or text passed through).
_DTYPES = {
    **{c: "float" for c in _STAT_STATS + _BYTES + _WIDE_ROUTE_STATS},
    "TCP_CONN": "int", "COUNT": "int", "BEST": "float", "WORST": "float", "LAST": "float",
    "status": "Int64", "response_length": "Int64", "reset_error": "Int64",
    "latency_us": "float", "duration_us": "float",
    "src_labels": "obj", "dst_labels": "obj",
    "AGE": "age", "LAST SEEN": "age", "RESTARTS": "intish", "WEIGHT": "intish",
    "UP-TO-DATE": "intish", "AVAILABLE": "intish", "LASTTRANSITIONTIME": "rfc3339",
}
_DEFAULTS = {"MESHED": "-", "TCP_CONN": 0, "READ_BYTES/SEC": 0.0, "WRITE_BYTES/SEC": 0.0, "COUNT": 0}


def _truthy(value: Any) -> bool:
    return bool(value) and not _missing(value)


def columns_for(kind: str, /, **attrs: Any) -> list[str]:
    """The columns, in order, of a ``kind`` table built with these attrs.

    ``stat``: ``resource`` (``"deploy"``, ``"pod"``, ``"svc"``, ``"ns"``,
    ``"trafficsplit"``…), ``all_namespaces``, ``wide``. ``routes``: ``wide``,
    ``authority`` (AUTHORITY instead of SERVICE). ``top``: ``routes`` (ROUTE
    instead of METHOD PATH). kubectl kinds: ``all_namespaces`` adds NAMESPACE.
    """
    wide = _truthy(attrs.get("wide"))
    all_ns = _truthy(attrs.get("all_namespaces"))
    if kind == "stat":
        rtype = resource_type(attrs.get("resource")) or "deployment"
        cols = ["NAMESPACE"] if all_ns else []
        cols.append("NAME")
        if rtype == "pod":
            cols.append("STATUS")
        if rtype == "trafficsplit":
            return cols + ["APEX", "LEAF", "WEIGHT"] + _STAT_STATS
        cols += ["MESHED"] + _STAT_STATS + ["TCP_CONN"]
        if wide and rtype != "authority":
            cols += _BYTES
        return cols
    if kind == "routes":
        dst = "AUTHORITY" if _truthy(attrs.get("authority")) else "SERVICE"
        stats = _WIDE_ROUTE_STATS if wide else ["SUCCESS", "RPS"]
        return ["ROUTE", dst] + stats + _LATENCIES
    if kind == "top":
        if _truthy(attrs.get("routes")):
            return ["SOURCE", "DESTINATION", "ROUTE"] + _TOP_COLUMNS[4:]
        return list(_TOP_COLUMNS)
    if kind == "tap":
        return list(TAP_COLUMNS)
    if kind == "edges":
        return list(_EDGES_COLUMNS)
    if kind in _KUBECTL_COLUMNS:
        cols = list(_KUBECTL_COLUMNS[kind])
        if all_ns and cols[0] != "NAMESPACE":
            cols.insert(0, "NAMESPACE")
        return cols
    if kind == "generic":
        return []
    raise ValueError(f"unknown table kind {kind!r}; known kinds: {', '.join(TABLE_KINDS)}")


def _infer_attrs(kind: str, columns: Iterable[str], attrs: dict[str, Any], *, loose: bool = False) -> dict[str, Any]:
    """Fill in column-choosing attrs the caller left out, from columns that only one variant has.

    STATUS means a pod stat, APEX/LEAF a trafficsplit, AUTHORITY without
    SERVICE an authority route table, EFFECTIVE_* a wide route table, ROUTE
    without PATH a `top --routes`. NAMESPACE and the byte-rate columns are
    ordinary data a backend may carry, so ``-A`` / ``-o wide`` are only
    inferred from them with ``loose=True`` (a bare DataFrame given to
    :func:`cli_text`); :func:`new_table` wants them said explicitly.
    """
    cols = set(columns)
    out = dict(attrs)
    if kind == "stat" and out.get("resource") is None:
        if "APEX" in cols or "LEAF" in cols:
            out["resource"] = "trafficsplit"
        elif "STATUS" in cols:
            out["resource"] = "pod"
    if kind == "routes":
        if out.get("authority") is None and "AUTHORITY" in cols and "SERVICE" not in cols:
            out["authority"] = True
        if out.get("wide") is None and cols & set(_WIDE_ROUTE_STATS) and "SUCCESS" not in cols:
            out["wide"] = True
    if kind == "top" and out.get("routes") is None and "ROUTE" in cols and "PATH" not in cols:
        out["routes"] = True
    if loose:
        if out.get("all_namespaces") is None and "NAMESPACE" in cols and kind != "canaries":
            out["all_namespaces"] = True
        if kind == "stat" and out.get("wide") is None and cols >= set(_BYTES):
            out["wide"] = True
        if kind == "edges" and out.get("wide") is None and {"CLIENT_ID", "SERVER_ID"} <= cols:
            out["wide"] = False
    return out


def _coerce(series: pd.Series, dtype: str) -> pd.Series:
    """Give a column its contract dtype (numbers are numbers; missing is NaN / NA / None)."""
    if dtype == "float":
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if dtype == "int":
        return pd.to_numeric(series, errors="coerce").fillna(0).round().astype("int64")
    if dtype == "Int64":
        return pd.to_numeric(series, errors="coerce").round().astype("Int64")
    if dtype in ("age", "intish"):
        try:
            numeric = pd.to_numeric(series, errors="raise")
        except (TypeError, ValueError):
            return series.astype(object).where(series.notna(), None)
        if dtype == "age":
            return numeric.astype("float64")
        if numeric.notna().all() and (numeric == numeric.round()).all():
            return numeric.astype("int64")
        return numeric
    if dtype == "obj":
        return series.astype(object).where(series.notna(), None)
    if dtype == "rfc3339":
        return series.map(_rfc3339).astype("str")
    return series.astype("str")


def _rfc3339(value: Any) -> Any:
    """Timestamps as Kubernetes writes them (``2019-06-30T14:05:07Z``); text passes through."""
    if isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "isoformat"):
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


# --------------------------------------------------------------------------- row order (the CLI's)


def _stat_sort_key(row: Mapping[str, Any], default_ns: str) -> str:
    ns = _text(row.get("NAMESPACE")) or default_ns
    key = f"{ns}/{_text(row.get('NAME'))}"
    if not _missing(row.get("LEAF")):
        key += f"/{_text(row.get('LEAF'))}"
    return key


def _sorted_frame(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Rows in the order the CLI prints them, so a DataFrame and its text agree."""
    if df.empty:
        return df
    records = df.to_dict("records")
    if kind == "stat":
        ns = _text(df.attrs.get("namespace"))
        order = sorted(range(len(records)), key=lambda i: _stat_sort_key(records[i], ns))
    elif kind == "routes":
        dst = "AUTHORITY" if "AUTHORITY" in df.columns and "SERVICE" not in df.columns else "SERVICE"
        order = sorted(range(len(records)), key=lambda i: _text(records[i].get(dst)) + _text(records[i].get("ROUTE")))
    elif kind == "edges":
        order = sorted(range(len(records)), key=lambda i: "".join(
            _text(records[i].get(c)) for c in ("SRC_NS", "DST_NS", "SRC", "DST")))
    elif kind == "top":
        order = sorted(range(len(records)), key=lambda i: -int(records[i].get("COUNT") or 0))
    else:
        return df
    out = df.iloc[order].reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out


# --------------------------------------------------------------------------- new_table


def new_table(
    kind: str, rows: Sequence[Mapping[str, Any]] | pd.DataFrame | None = None, /, **attrs: Any
) -> pd.DataFrame:
    """Build a ``kind`` table with the CLI's columns and the contract's dtypes.

    ``rows`` is a list of dicts keyed by column name (or a DataFrame); missing
    columns are filled (NaN for stats, ``"-"`` for MESHED, 0 for TCP_CONN /
    COUNT), extra columns are kept after the CLI's. Rows are put in the CLI's
    order. ``df.attrs["table"] = kind`` and every keyword lands in
    ``df.attrs`` too (``wide``, ``all_namespaces``, ``window``, ``resource``,
    ``namespace``…), which is what :func:`cli_text` reads back. For ``stat``,
    ``kind=`` in the attrs is taken as the resource type (same as ``resource=``).
    """
    if "resource" not in attrs and "kind" in attrs:
        attrs["resource"] = attrs["kind"]
    if kind not in TABLE_KINDS:
        raise ValueError(f"unknown table kind {kind!r}; known kinds: {', '.join(TABLE_KINDS)}")
    if isinstance(rows, pd.DataFrame):
        base = rows.reset_index(drop=True).copy()
        merged = {**rows.attrs, **attrs}
    else:
        base = pd.DataFrame(list(rows or []))
        merged = dict(attrs)
    merged = _infer_attrs(kind, base.columns, merged)
    schema = columns_for(kind, **merged) if kind != "generic" else list(base.columns)
    columns: dict[str, pd.Series] = {}
    for col in schema:
        dtype = _DTYPES.get(col, "str")
        if col in base.columns:
            series = base[col]
        else:
            default = _DEFAULTS.get(col)
            series = pd.Series([default] * len(base), index=base.index, dtype=object)
        columns[col] = _coerce(series, dtype) if kind != "generic" else series
    for col in base.columns:
        if col not in columns:
            columns[col] = base[col]
    frame = pd.DataFrame(columns, index=base.index, columns=list(columns))
    frame.attrs = {**merged, "table": kind}
    for flag in ("wide", "all_namespaces"):
        if flag in merged or kind != "canaries":
            frame.attrs[flag] = merged.get(flag) if isinstance(merged.get(flag), str) else _truthy(merged.get(flag))
    if kind == "stat":
        frame.attrs["resource_type"] = resource_type(merged.get("resource")) or "deployment"
    return _sorted_frame(frame, kind)


# --------------------------------------------------------------------------- renderers: linkerd viz


def _has_traffic(value: Any) -> bool:
    """A row has traffic when its success rate is defined (the CLI prints `-` everywhere otherwise)."""
    return not _missing(value)


def _pct(fraction: Any) -> str:
    return "%.2f%%" % (float(fraction) * 100)


def _ms(value: Any) -> str:
    return "%dms" % _go_round(value)


def _render_stat(df: pd.DataFrame) -> str:
    """`linkerd viz stat` table (viz/cmd/stat.go printSingleStatTable)."""
    if df.empty:
        return "No traffic found.\n"
    df = _sorted_frame(df, "stat")
    rtype = df.attrs.get("resource_type") or resource_type(df.attrs.get("resource"))
    if rtype is None:
        rtype = "trafficsplit" if "APEX" in df.columns else ("pod" if "STATUS" in df.columns else "deployment")
    show_ns = "NAMESPACE" in df.columns and bool(df.attrs.get("all_namespaces"))
    is_ts = rtype == "trafficsplit"
    show_tcp = rtype not in ("trafficsplit", "authority")
    show_bytes = show_tcp and all(c in df.columns for c in _BYTES) and bool(df.attrs.get("wide"))
    records = df.to_dict("records")

    def widest(col: str, header: str) -> int:
        return max([_blen(header)] + [_blen(_text(r.get(col))) for r in records])

    name_w, ns_w = widest("NAME", "NAME"), widest("NAMESPACE", "NAMESPACE") if show_ns else 0
    apex_w, leaf_w, weight_w = (widest("APEX", "APEX"), widest("LEAF", "LEAF"), widest("WEIGHT", "WEIGHT")) if is_ts else (0, 0, 0)

    def pad(text: str, width: int) -> str:  # `x + strings.Repeat(" ", max-len(x))` and `%-Ns` agree for ASCII names
        return text + " " * max(width - _blen(text), 0)

    header = ([pad("NAMESPACE", ns_w)] if show_ns else []) + [pad("NAME", name_w)]
    if rtype == "pod":
        header.append("STATUS")
    header += [pad("APEX", apex_w), pad("LEAF", leaf_w), pad("WEIGHT", weight_w)] if is_ts else ["MESHED"]
    header += _STAT_STATS + (["TCP_CONN"] if not is_ts else []) + (_BYTES if show_bytes else [])
    lines = [header]
    for r in records:
        cells = ([pad(_text(r.get("NAMESPACE")), ns_w)] if show_ns else []) + [pad(_text(r.get("NAME")), name_w)]
        if rtype == "pod":
            cells.append(_text(r.get("STATUS")))
        if is_ts:
            cells += [pad(_text(r.get("APEX")), apex_w), pad(_text(r.get("LEAF")), leaf_w), _text(r.get("WEIGHT"))]
        else:
            cells.append(_text(r.get("MESHED")) or "-")
        n_stats = len(header) - len(cells)
        if not _has_traffic(r.get("SUCCESS")):
            cells += ["-"] * n_stats
        else:
            rps = r.get("RPS")
            cells += [_pct(r["SUCCESS"]), "%.1frps" % (0.0 if _missing(rps) else float(rps))]
            cells += [_ms(r.get(c)) for c in _LATENCIES]
            if not is_ts:
                tcp = r.get("TCP_CONN")
                cells.append("%d" % (0 if _missing(tcp) else int(tcp)) if show_tcp else "-")
            if show_bytes:
                cells += ["%.1fB/s" % (0.0 if _missing(r.get(c)) else float(r.get(c))) for c in _BYTES]
        lines.append(cells)
    return _linkerd_table(lines)


def _render_routes(df: pd.DataFrame) -> str:
    """`linkerd viz routes` table (viz/cmd/routes.go printRouteTable), blank line after it included."""
    df = _sorted_frame(df, "routes")
    dst_col = "AUTHORITY" if "AUTHORITY" in df.columns and "SERVICE" not in df.columns else "SERVICE"
    wide = all(c in df.columns for c in _WIDE_ROUTE_STATS) and bool(df.attrs.get("wide"))
    records = df.to_dict("records")
    # The route column is sized to the longest *route*, not to the header (as the CLI does).
    route_w = max([_blen(_text(r.get("ROUTE"))) for r in records] + [0])
    header = [_text("ROUTE").ljust(route_w), dst_col]
    header += (_WIDE_ROUTE_STATS if wide else ["SUCCESS", "RPS"]) + _LATENCIES
    lines = [header]
    for r in records:
        cells = [_text(r.get("ROUTE")).ljust(route_w), _text(r.get(dst_col))]
        success = r.get("EFFECTIVE_SUCCESS") if wide else r.get("SUCCESS")
        if not _has_traffic(success) and not (wide and _has_traffic(r.get("ACTUAL_SUCCESS"))):
            cells += ["-"] * (len(header) - 2)
        else:
            pairs = [("EFFECTIVE_SUCCESS", "EFFECTIVE_RPS"), ("ACTUAL_SUCCESS", "ACTUAL_RPS")] if wide else [("SUCCESS", "RPS")]
            for s_col, r_col in pairs:
                s_val, r_val = r.get(s_col), r.get(r_col)
                cells += [_pct(0.0 if _missing(s_val) else s_val), "%.1frps" % (0.0 if _missing(r_val) else float(r_val))]
            cells += [_ms(r.get(c)) for c in _LATENCIES]
        lines.append(cells)
    return _linkerd_table(lines, trailing_blank=True)


def _render_edges(df: pd.DataFrame) -> str:
    """`linkerd viz edges` table (viz/cmd/edges.go printEdgeTable); cells padded, so rows keep trailing spaces."""
    if df.empty:
        return "No edges found.\n"
    df = _sorted_frame(df, "edges")
    wide = bool(df.attrs.get("wide"))
    cols = ["SRC", "DST", "SRC_NS", "DST_NS"] + (["CLIENT_ID", "SERVER_ID"] if wide else []) + ["SECURED"]
    records = df.to_dict("records")
    widths = {c: max([_blen(c)] + [_blen(_text(r.get(c))) for r in records]) for c in cols}
    lines = [[c.ljust(widths[c]) for c in cols]]
    for r in records:
        lines.append([_text(r.get(c)).ljust(widths[c]) for c in cols])
    return _linkerd_table(lines)


def _float32_success_rate(successes: int, failures: int) -> str:
    """`viz top`'s Success Rate: ``100.0*float32(s)/float32(s+f)`` computed in float32, then ``%.2f%%``."""
    total = np.float32(successes + failures)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.float32(100.0) * np.float32(successes) / total
    if np.isnan(value):
        return "NaN%"
    return "%.2f%%" % float(value)


def _render_top(df: pd.DataFrame) -> str:
    """`linkerd viz top`'s table as termbox draws it: flexible and fixed-width columns, 2 spaces apart."""
    df = _sorted_frame(df, "top")
    routes = "ROUTE" in df.columns and (df.attrs.get("routes") or "PATH" not in df.columns)
    hide_sources = bool(df.attrs.get("hide_sources"))
    records = df.to_dict("records")

    def success_text(r: Mapping[str, Any]) -> str:
        count = int(r.get("COUNT") or 0)
        rate = r.get("SUCCESS")
        successes = 0 if _missing(rate) else int(round(float(rate) * count))
        return _float32_success_rate(successes, count - successes)

    # (header, fixed width or None for flexible, right-aligned, value function)
    spec: list[tuple[str, int | None, bool, Any]] = []
    if not hide_sources:
        spec.append(("Source", None, False, lambda r: _text(r.get("SOURCE"))))
    spec.append(("Destination", None, False, lambda r: _text(r.get("DESTINATION"))))
    if routes:
        spec.append(("Route", None, False, lambda r: _text(r.get("ROUTE"))))
    else:
        spec.append(("Method", 10, False, lambda r: _text(r.get("METHOD"))))
        spec.append(("Path", None, False, lambda r: _text(r.get("PATH"))))
    spec += [
        ("Count", 6, True, lambda r: str(int(r.get("COUNT") or 0))),
        ("Best", 6, True, lambda r: _top_duration(r.get("BEST"))),
        ("Worst", 6, True, lambda r: _top_duration(r.get("WORST"))),
        ("Last", 6, True, lambda r: _top_duration(r.get("LAST"))),
        ("Success Rate", 12, True, success_text),
    ]
    values = [[fn(r) for (_, _, _, fn) in spec] for r in records]
    widths = [
        fixed if fixed is not None else max([len(head)] + [len(row[i]) for row in values])
        for i, (head, fixed, _, _) in enumerate(spec)
    ]

    def draw(cells: Sequence[str]) -> str:
        canvas: list[str] = []
        x = 0
        for i, text in enumerate(cells):
            start = x + (widths[i] - len(text) if spec[i][2] else 0)
            if len(canvas) < start + len(text):
                canvas.extend(" " * (start + len(text) - len(canvas)))
            canvas[start:start + len(text)] = list(text)
            x += widths[i] + 2
        return "".join(canvas).rstrip(" ")

    lines = [draw([head for (head, _, _, _) in spec])] + [draw(row) for row in values]
    return "\n".join(lines) + "\n"


_LABEL_OF_SHORT = {**{short: canon for canon, short in SHORT_NAMES.items()}, **_CANONICAL}


def _labels_from_columns(row: Mapping[str, Any], side: str) -> dict[str, str]:
    """A peer's tap metadata labels, rebuilt from ``src_res``/``src_ns``/``tls`` when no label dict was given."""
    labels: dict[str, str] = {}
    res = _text(row.get(f"{side}_res"))
    if res:
        kind, _, name = res.partition("/")
        labels[_LABEL_OF_SHORT.get(kind, kind) if name else "pod"] = name or kind
    ns = _text(row.get(f"{side}_ns"))
    if ns:
        labels["namespace"] = ns
    tls = _text(row.get("tls"))
    proxy = _text(row.get("proxy")).strip()
    if tls and ((side == "src" and proxy == "in") or (side == "dst" and proxy == "out")):
        labels["tls"] = tls
    return labels


def tap_labels(row: Mapping[str, Any], side: str) -> dict[str, str]:
    """The metadata labels of a tap event's ``side`` (``"src"`` / ``"dst"``): the label dict if present, else rebuilt."""
    given = row.get(f"{side}_labels")
    if isinstance(given, Mapping):
        return {str(k): _text(v) for k, v in given.items()}
    return _labels_from_columns(row, side)


def _wide_suffix_labels(row: Mapping[str, Any]) -> str:
    """Current `tap -o wide`: sorted ``src_<label>=v``, then sorted ``dst_<label>=v``, then ``rt_<k>=v``."""
    parts: list[str] = []
    for side in ("src", "dst"):
        parts += sorted(f"{side}_{k}={v}" for k, v in tap_labels(row, side).items())
    if not _missing(row.get("rt_route")):
        parts.append(f"rt_route={row['rt_route']}")
    return "".join(" " + p for p in parts)


def _wide_suffix_resources(row: Mapping[str, Any]) -> str:
    """The 2.x docs' `tap -o wide` (e.g. linkerd.io 2.14 books task): ``src_res=deploy/x src_ns=… dst_res=… dst_ns=… rt_route=…``."""
    out = ""
    for side in ("src", "dst"):
        res = _text(row.get(f"{side}_res"))
        if res:
            kind, _, name = res.partition("/")
            out += f" {side}_pod={name}" if kind == "pod" and name else f" {side}_res={res}"
        ns = _text(row.get(f"{side}_ns"))
        if ns:
            out += f" {side}_ns={ns}"
    if not _missing(row.get("rt_route")):
        out += f" rt_route={row['rt_route']}"
    return out


def _micros(value: Any) -> int:
    """Whole microseconds, truncated toward zero like Go's ``Duration.Microseconds()``."""
    return 0 if _missing(value) else int(float(value))


def tap_line(row: Mapping[str, Any], wide: bool | str = False) -> str:
    """One `linkerd viz tap` line (viz/cmd/tap.go renderTapEvent); ``wide`` adds the `-o wide` suffix.

    ``wide=True`` (or ``"labels"``) is the current CLI's suffix: every peer
    label, sorted. ``wide="resources"`` is the older one the 2.x docs show
    (``src_res=deploy/traffic src_ns=booksapp …``).
    """
    proxy = _text(row.get("proxy")).strip()
    proxy_text = {"in": "in ", "out": "out"}.get(proxy, "???")
    flow = f"proxy={proxy_text} src={_text(row.get('src'))} dst={_text(row.get('dst'))} tls={_text(row.get('tls'))}"
    event = _text(row.get("type"))
    ident = _text(row.get("id"))
    if event == "req":
        line = (f"req id={ident} {flow} :method={_text(row.get('method'))} "
                f":authority={_text(row.get('authority'))} :path={_text(row.get('path'))}")
    elif event == "rsp":
        status = row.get("status")
        line = f"rsp id={ident} {flow} :status={0 if _missing(status) else int(status)} latency={_micros(row.get('latency_us'))}{_MICRO}s"
    elif event == "end":
        tail = f"duration={_micros(row.get('duration_us'))}{_MICRO}s response-length={_text_int(row.get('response_length'))}B"
        if not _missing(row.get("grpc_status")):
            line = f"end id={ident} {flow} grpc-status={row['grpc_status']} {tail}"
        elif not _missing(row.get("reset_error")):
            line = f"end id={ident} {flow} reset-error={int(row['reset_error'])} {tail}"
        else:
            line = f"end id={ident} {flow} {tail}"
    else:
        return f"unknown {flow}"
    if wide == "resources":
        return line + _wide_suffix_resources(row)
    if wide:
        return line + _wide_suffix_labels(row)
    return line


def _text_int(value: Any) -> str:
    return "0" if _missing(value) else str(int(value))


def _render_tap(df: pd.DataFrame) -> str:
    """`linkerd viz tap` output: one line per event, in event order."""
    wide = df.attrs.get("wide", False)
    return "".join(tap_line(row, wide) + "\n" for row in df.to_dict("records"))


# --------------------------------------------------------------------------- renderers: kubectl


def _kubectl_cell(column: str, value: Any) -> str:
    if column in ("AGE", "LAST SEEN"):
        return human_duration(value)
    if isinstance(value, pd.Timestamp):
        ts = value.tz_convert("UTC") if value.tzinfo else value
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    if _missing(value):
        return "<none>"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _render_kubectl(df: pd.DataFrame) -> str:
    """kubectl's table printer: left-aligned columns, 3 spaces apart; `No resources found` when empty."""
    if df.empty:
        ns = df.attrs.get("namespace")
        if ns and not df.attrs.get("all_namespaces"):
            return f"No resources found in {ns} namespace.\n"
        return "No resources found\n"
    kind = df.attrs.get("table")
    cols = columns_for(kind, **df.attrs) if kind in _KUBECTL_COLUMNS else [c for c in df.columns]
    cols = [c for c in cols if c in df.columns]
    if kind == "canaries" and df.attrs.get("all_namespaces") is False and "NAMESPACE" in cols:
        cols.remove("NAMESPACE")
    lines = [[str(c) for c in cols]]
    for r in df.to_dict("records"):
        lines.append([_kubectl_cell(c, r.get(c)) for c in cols])
    return _kubectl_table(lines)


# --------------------------------------------------------------------------- cli_text

_RENDERERS = {
    "stat": _render_stat, "routes": _render_routes, "top": _render_top, "tap": _render_tap,
    "edges": _render_edges,
}


def _infer_kind(df: pd.DataFrame) -> str:
    cols = set(df.columns)
    if {"NAME", "SUCCESS", "LATENCY_P50"} <= cols:
        return "stat"
    if {"ROUTE", "LATENCY_P50"} <= cols:
        return "routes"
    if {"SOURCE", "DESTINATION", "COUNT"} <= cols:
        return "top"
    if {"type", "id", "proxy"} <= cols:
        return "tap"
    if {"SRC", "DST", "SECURED"} <= cols:
        return "edges"
    return "generic"


def cli_text(df: pd.DataFrame) -> CliText:
    """Render a labkit table exactly as the CLI prints it (stdout bytes, trailing newline included).

    Dispatches on ``df.attrs["table"]`` (or guesses from the columns). Empty
    tables give the CLI's message instead (``No traffic found.``, ``No edges
    found.``, ``No resources found in <ns> namespace.``), which the CLI prints
    on stderr. The result is a ``str`` (:class:`~labkit.clitext.CliText`) that
    a notebook displays like a terminal: one row per line, scrolling sideways.
    Text a command already printed (``mesh.logs``, ``mesh.exec``) passes
    through unchanged, to be shown the same way.
    """
    if isinstance(df, str):
        return CliText(df)
    if isinstance(df, CheckReport):
        return CliText(df.render())
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"cli_text() takes a labkit table (a pandas DataFrame) or a command's text, not {type(df).__name__}")
    kind = df.attrs.get("table")
    if kind is None:  # a bare DataFrame: guess the table and its variant from the columns
        kind = _infer_kind(df)
        attrs = _infer_attrs(kind, df.columns, dict(df.attrs), loose=True)
        df = df.copy()
        df.attrs = {**attrs, "table": kind}
    renderer = _RENDERERS.get(kind, _render_kubectl)
    return CliText(renderer(df))


# --------------------------------------------------------------------------- top from tap events

_TOP_GRPC_FAILURES = {"Unknown", "DeadlineExceeded", "Internal", "Unavailable", "DataLoss"}


def _strip_port(address: str) -> str:
    """`viz top`'s stripPort: everything before the first colon (yes, IPv6 suffers, as in the CLI)."""
    return address.split(":", 1)[0]


def top_from_tap(tap: pd.DataFrame, *, routes: bool = False, **attrs: Any) -> pd.DataFrame:
    """Aggregate tap events into the `viz top` table, as the CLI's termbox view does.

    A request counts once its ``end`` event arrives (matched on src, dst and
    stream). Latency is the end event's time since the request started
    (``latency_us`` of the ``end`` row); a request succeeds when its status is
    below 500, its gRPC status is not Unknown / DeadlineExceeded / Internal /
    Unavailable / DataLoss and it was not reset. Rows are keyed by source,
    destination, method and path (or route with ``routes=True``).
    """
    outstanding: dict[tuple[str, str, str], dict[str, Any]] = {}
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for ev in tap.to_dict("records"):
        stream = _text(ev.get("id")).rpartition(":")[2]
        key = (_text(ev.get("src")), _text(ev.get("dst")), stream)
        kind = ev.get("type")
        if kind == "req":
            outstanding[key] = {"req": ev}
            continue
        if key not in outstanding:
            continue
        if kind == "rsp":
            outstanding[key]["rsp"] = ev
            continue
        if kind != "end":
            continue
        pending = outstanding.pop(key)
        req, rsp = pending["req"], pending.get("rsp", {})
        src = tap_labels(req, "src").get("pod") or _strip_port(_text(req.get("src")))
        dst = tap_labels(req, "dst").get("pod") or _strip_port(_text(req.get("dst")))
        status = rsp.get("status")
        ok = (0 if _missing(status) else int(status)) < 500
        if ok and not _missing(ev.get("grpc_status")):
            ok = ev["grpc_status"] not in _TOP_GRPC_FAILURES
        if ok and not _missing(ev.get("reset_error")):
            ok = False
        latency_ms = 0.0 if _missing(ev.get("latency_us")) else float(ev["latency_us"]) / 1000.0
        route = _text(req.get("rt_route")) or "[DEFAULT]"
        ident = (src, dst, route) if routes else (src, dst, _text(req.get("method")), _text(req.get("path")))
        row = rows.get(ident)
        if row is None:
            row = rows[ident] = {"SOURCE": src, "DESTINATION": dst, "COUNT": 0, "BEST": latency_ms,
                                 "WORST": latency_ms, "LAST": latency_ms, "_ok": 0}
            if routes:
                row["ROUTE"] = route
            else:
                row["METHOD"], row["PATH"] = _text(req.get("method")), _text(req.get("path"))
        row["COUNT"] += 1
        row["BEST"] = min(row["BEST"], latency_ms)
        row["WORST"] = max(row["WORST"], latency_ms)
        row["LAST"] = latency_ms
        row["_ok"] += int(ok)
    records = []
    for row in rows.values():
        ok_count = row.pop("_ok")
        row["SUCCESS"] = ok_count / row["COUNT"]
        records.append(row)
    return new_table("top", records, routes=routes, **attrs)


# --------------------------------------------------------------------------- linkerd check

_STATUS_ALIASES = {
    "ok": "ok", "success": "ok", "pass": "ok", OK_MARK: "ok",
    "warn": "warn", "warning": "warn", WARN_MARK: "warn",
    "fail": "fail", "error": "fail", "failed": "fail", FAIL_MARK: "fail",
}
_MARKS = {"ok": OK_MARK, "warn": WARN_MARK, "fail": FAIL_MARK}
HINT_BASE_URL = "https://linkerd.io/2/checks/#"


@dataclass(frozen=True)
class Check:
    """One `linkerd check` result: ``status`` is ``"ok"``, ``"warn"`` or ``"fail"``.

    ``hint_anchor`` is the anchor on linkerd.io/2/checks (``"l5d-version-cli"``)
    or a full URL; ``message`` is the error text printed under a warning or a
    failure.
    """

    description: str
    status: str = "ok"
    hint_anchor: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        status = _STATUS_ALIASES.get(str(self.status).strip().lower(), _STATUS_ALIASES.get(str(self.status)))
        if status is None:
            raise ValueError(f"check status {self.status!r} must be one of 'ok', 'warn', 'fail'")
        object.__setattr__(self, "status", status)

    @property
    def hint_url(self) -> str | None:
        """The full hint URL the CLI prints (``https://linkerd.io/2/checks/#<anchor>``)."""
        if not self.hint_anchor:
            return None
        if "://" in self.hint_anchor:
            return self.hint_anchor
        return HINT_BASE_URL + self.hint_anchor

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def lines(self) -> list[str]:
        """The check's lines as printed: ``<mark> <description>``, then error and hint for warn/fail."""
        out = [f"{_MARKS[self.status]} {self.description}"]
        if self.status != "ok":
            if self.message is not None:
                out.append(f"    {self.message}")
            if self.hint_url:
                out.append(f"    see {self.hint_url} for hints")
        return out


CategoryList = Sequence[tuple[str, Sequence[Check]]]


class CheckReport:
    """The result of `linkerd check`: ``.ok``, ``.failed()``, and text exactly as the CLI prints it.

    ``categories`` are the core checks, in order: ``[(name, [Check, …]), …]``.
    ``extensions`` are extension categories (``linkerd-viz``…), printed under
    "Linkerd extensions checks" as `linkerd check` does when an extension is
    installed. ``header=False`` drops the "Linkerd core checks" banner (as in
    `linkerd viz check` or the CLI's unit-test goldens).
    """

    def __init__(self, categories: CategoryList, *, extensions: CategoryList | None = None, header: bool = True) -> None:
        self.categories = [(str(name), list(checks)) for name, checks in categories]
        self.extensions = [(str(name), list(checks)) for name, checks in (extensions or [])]
        self.header = header
        for _, checks in self.categories + self.extensions:
            for check in checks:
                if not isinstance(check, Check):
                    raise TypeError(f"CheckReport takes Check objects, not {type(check).__name__}")

    def checks(self) -> list[tuple[str, Check]]:
        """Every (category, check) pair, core first."""
        return [(name, c) for name, checks in self.categories + self.extensions for c in checks]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings do not fail `linkerd check`)."""
        return all(c.ok for _, c in self.checks())

    def failed(self) -> list[Check]:
        """The failed checks, in order."""
        return [c for _, c in self.checks() if c.status == "fail"]

    def warnings(self) -> list[Check]:
        """The checks that passed with a warning, in order."""
        return [c for _, c in self.checks() if c.status == "warn"]

    @staticmethod
    def _blocks(categories: Sequence[tuple[str, Sequence[Check]]]) -> list[str]:
        lines: list[str] = []
        for index, (name, checks) in enumerate(categories):
            if index:
                lines.append("")
            lines += [name, "-" * _blen(name)]
            for check in checks:
                lines += check.lines()
        return lines + [""]

    def render(self, *, summary: bool = True) -> str:
        """The CLI's text: banner, category blocks, extension blocks, ``Status check results are √/×``."""
        lines: list[str] = []
        if self.header:
            lines += ["Linkerd core checks", "=" * len("Linkerd core checks"), ""]
        lines += self._blocks(self.categories)
        if self.extensions:
            lines += ["Linkerd extensions checks", "=" * len("Linkerd extensions checks"), ""]
            lines += self._blocks(self.extensions)
        if summary:
            lines.append(f"Status check results are {OK_MARK if self.ok else FAIL_MARK}")
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """The report in a few lines: one per category with its count, every check that did not pass in full, and
        the verdict — what a learner needs to see; ``str(report)`` is the CLI's whole output."""
        lines: list[str] = []
        for name, checks in self.categories + self.extensions:
            worst = "fail" if any(c.status == "fail" for c in checks) else \
                "warn" if any(c.status == "warn" for c in checks) else "ok"
            lines.append(f"{_MARKS[worst]} {name} ({len(checks)} check{'s' if len(checks) != 1 else ''})")
            for check in checks:
                if check.status != "ok":
                    lines += ["    " + line for line in check.lines()]
        lines.append(f"Status check results are {OK_MARK if self.ok else FAIL_MARK}"
                     f" ({len(self.checks())} checks; the full output: print(report))")
        return "\n".join(lines) + "\n"

    def to_json(self) -> list[dict[str, Any]]:
        """The `linkerd check -o json` documents: one for core checks, one more if extensions ran."""
        def doc(categories: Sequence[tuple[str, Sequence[Check]]]) -> dict[str, Any]:
            out_cats = []
            for name, checks in categories:
                items = []
                for c in checks:
                    item: dict[str, Any] = {"description": c.description}
                    if c.status != "ok":
                        if c.hint_url:
                            item["hint"] = c.hint_url
                        if c.message is not None:
                            item["error"] = c.message
                    item["result"] = {"ok": "success", "warn": "warning", "fail": "error"}[c.status]
                    items.append(item)
                out_cats.append({"categoryName": name, "checks": items})
            return {"success": all(c.ok for _, cs in categories for c in cs), "categories": out_cats}

        docs = [doc(self.categories)]
        if self.extensions:
            docs.append(doc(self.extensions))
        return docs

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:  # a notebook cell shows the CLI's output, not an object address
        return self.render()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.render())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CheckReport):
            return NotImplemented
        return (self.categories, self.extensions, self.header) == (other.categories, other.extensions, other.header)

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------- linkerd's cli/table, for the 2.17+ verbs

#: Renderers other modules add for their own table kinds (``stat-outbound``, ``stat-inbound``, ``authz``…):
#: each verb keeps its own module, as linkerd's ``viz/cmd`` keeps one file per command.
def register_renderer(kind: str, renderer) -> None:
    """Make :func:`cli_text` render tables whose ``attrs["table"]`` is ``kind`` with ``renderer(df) -> str``."""
    _RENDERERS[kind] = renderer


def go_cli_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left_align: int = 0,
                 sort: Sequence[int] = ()) -> str:
    """``cli/table.Table.Render`` of linkerd2 (the table the 2.17+ viz verbs print).

    Columns are as wide as their widest cell, separated by two spaces (also
    after the last); the first ``left_align`` columns are left-aligned, the rest
    right-aligned. Cells ending in ``─`` are padded with ``─`` to the right and
    joined to a following cell starting with ``─`` by ``──``; cells starting with
    ``─`` are padded with ``─`` on the left — which draws the backend tree
    (``└──────►  books:7002``). ``sort`` lists the columns the rows are sorted by.
    """
    data = [list(r) for r in rows]
    widths = [max([len(h)] + [len(r[c]) for r in data]) for c, h in enumerate(headers)]
    if sort:
        data.sort(key=lambda r: tuple(r[c] for c in sort))

    def line(row: Sequence[str]) -> str:
        out = []
        for c, value in enumerate(row):
            pad_n = widths[c] - len(value)
            spacing = "  "
            if value.endswith("─") and c < len(row) - 1 and row[c + 1].startswith("─"):
                spacing = "──"
            if value.startswith("─"):
                out.append("─" * pad_n + value + spacing)
            elif value.endswith("─"):
                out.append(value + "─" * pad_n + spacing)
            elif c < left_align:
                out.append(value + " " * pad_n + spacing)
            else:
                out.append(" " * pad_n + value + spacing)
        return "".join(out) + "\n"

    return line(headers) + "".join(line(r) for r in data)
