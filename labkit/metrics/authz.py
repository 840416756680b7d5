"""``linkerd viz authz``: a workload's inbound traffic per route, server and authorization — for both backends.

As linkerd-viz's metrics-api answers the ``Authz`` call (``viz/metrics-api/
authz.go``) and ``viz/cmd/authz.go`` prints it, over ``mesh.query`` only:
``response_total{direction="inbound"}`` (success / failure), the latency
quantiles, and ``inbound_http_authz_allow_total`` / ``…_deny_total`` over the
window, each grouped by ``route_kind, route_name, authz_kind, authz_name,
srv_kind, srv_name`` and selected by the target's labels. One row per
(route, server, authorization): SERVER ``default:<policy>`` for a default
policy, AUTHORIZATION ``<kind>/<name>`` (blank for denied requests, which
carry no authorization), UNAUTHORIZED the denied requests per second. Counts
are rounded; rows without traffic are dropped unless a real (non-default)
authorization names them (then shown as ``-``). Sorted by SERVER, ROUTE,
AUTHORIZATION.
"""
from __future__ import annotations

import math

import pandas as pd

from labkit import tables
from labkit.metrics import queries
from labkit.metrics.viz import go_round
from labkit.metrics.viz_cmd import command_frame, QUANTILES, target, window_seconds

TABLE = "authz"
COLUMNS = ["ROUTE", "SERVER", "AUTHORIZATION", "UNAUTHORIZED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95",
           "LATENCY_P99"]
GROUP = ["route_kind", "route_name", "authz_kind", "authz_name", "srv_kind", "srv_name"]
_LAT = {"0.5": "p50", "0.95": "p95", "0.99": "p99"}


def _value(v) -> int:
    """metrics-api's ``extractSampleValue``: rounded, NaN as 0."""
    f = float(v)
    return 0 if math.isnan(f) else go_round(f)


def authz(mesh, resource: str, namespace: str | None = None, *, window="1m") -> pd.DataFrame:
    """The ``linkerd viz authz`` table as numbers (:func:`labkit.cli_text` prints it as the CLI does)."""
    _label, labels, _group = target(resource, namespace, "authz")
    win, win_s = window_seconds(window)
    inbound = {**labels, "direction": "inbound"}
    rows: dict = {}

    def row(d: dict) -> dict:
        key = tuple(d.get(k, "") for k in GROUP)
        r = rows.get(key)
        if r is None:
            r = rows[key] = {"s": 0, "f": 0, "allowed": 0, "denied": 0, "p50": 0, "p95": 0, "p99": 0}
        return r

    def records(expr: str):
        frame = mesh.query(expr)
        return [] if frame.empty else frame.to_dict("records")

    for d in records(queries.stat_requests(inbound, GROUP, win)):
        row(d)["s" if d.get("classification") == "success" else "f"] += _value(d["value"])
    for q in QUANTILES:
        for d in records(queries.stat_latency(q, inbound, GROUP, win)):
            row(d)[_LAT[q]] = _value(d["value"])
    for d in records(queries.viz_rate("inbound_http_authz_allow_total", labels, GROUP, win)):
        row(d)["allowed"] = _value(d["value"])
    for d in records(queries.viz_rate("inbound_http_authz_deny_total", labels, GROUP, win)):
        row(d)["denied"] = _value(d["value"])
    out = []
    for key, r in rows.items():
        route_kind, route_name, authz_kind, authz_name, srv_kind, srv_name = key
        server = f"{srv_kind}:{srv_name}" if srv_kind == "default" else srv_name
        authorization = f"{authz_kind}/{authz_name}" if authz_kind else ""
        total = r["s"] + r["f"]
        if total + r["denied"] > 0:
            out.append({"ROUTE": route_name, "SERVER": server, "AUTHORIZATION": authorization,
                        "UNAUTHORIZED": r["denied"] / win_s, "SUCCESS": r["s"] / total if total else 0.0,
                        "RPS": total / win_s, "LATENCY_P50": float(r["p50"]), "LATENCY_P95": float(r["p95"]),
                        "LATENCY_P99": float(r["p99"])})
        elif authz_kind not in ("", "default"):
            out.append({"ROUTE": route_name, "SERVER": server, "AUTHORIZATION": authorization,
                        **{c: math.nan for c in COLUMNS[3:]}})
    out.sort(key=lambda r: (r["SERVER"], r["ROUTE"], r["AUTHORIZATION"]))
    return command_frame(out, COLUMNS, 3, TABLE, window=window, window_s=win_s, resource=resource,
                         namespace=namespace)


def _cells(rec: dict) -> list[str]:
    """One row as the CLI prints it: ``%.1frps``, ``%.2f%%``, ``%dms``; ``-`` for an authorization without traffic."""
    if math.isnan(rec["RPS"]):
        return [rec["ROUTE"], rec["SERVER"], rec["AUTHORIZATION"]] + ["-"] * 6
    return [rec["ROUTE"], rec["SERVER"], rec["AUTHORIZATION"], "%.1frps" % rec["UNAUTHORIZED"],
            "%.2f%%" % (rec["SUCCESS"] * 100), "%.1frps" % rec["RPS"],
            "%dms" % rec["LATENCY_P50"], "%dms" % rec["LATENCY_P95"], "%dms" % rec["LATENCY_P99"]]


def _sorted_cells(df: pd.DataFrame) -> list[list[str]]:
    return sorted((_cells(rec) for rec in df.to_dict("records")), key=lambda c: (c[1], c[0], c[2]))


def render(df: pd.DataFrame) -> str:
    """The CLI's table (``cli/table``, sorted by SERVER, ROUTE, AUTHORIZATION)."""
    return tables.go_cli_table(COLUMNS, _sorted_cells(df), left_align=3)


def json_text(df: pd.DataFrame) -> str:
    """``linkerd viz authz -o json`` (``renderJSON``): an object per printed row, keys the lower-cased headers
    in Go's sorted map order, ``-`` cells left out, ``latency_ms_p50``… as integers, rates and success read
    back from the printed cells as float32; ``json.MarshalIndent`` with two spaces, no trailing newline."""
    import json

    import numpy as np

    def f32(text: str) -> str:
        return np.format_float_positional(np.float32(text), trim="-")

    rows = []
    for cells in _sorted_cells(df):
        row: dict[str, str] = {}
        for header, cell in zip(COLUMNS, cells):
            field = header.lower()
            if cell == "-":
                continue
            if field.startswith("latency_"):
                row["latency_ms_" + field[len("latency_"):]] = cell[:-2]
            elif field in ("rps", "unauthorized"):
                row[field] = f32(cell[:-3])
            elif field == "success":
                row[field] = np.format_float_positional(np.float32(cell[:-1]) / np.float32(100.0), trim="-")
            else:
                row[field] = json.dumps(cell, ensure_ascii=False)
        rows.append("  {\n" + ",\n".join(f"    {json.dumps(k)}: {v}" for k, v in sorted(row.items())) + "\n  }")
    return "[\n" + ",\n".join(rows) + "\n]" if rows else "[]"


tables.register_renderer(TABLE, render)
