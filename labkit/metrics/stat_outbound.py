"""``linkerd viz stat-outbound``: a workload's traffic per Service, route and backend — for both backends.

As ``viz/cmd/stat-outbound.go`` (Linkerd 2.17+, reference linkerd-2.20.md §4)
does it, over ``mesh.query`` only:

* five queries per protocol (``outbound_http_route_*`` and
  ``outbound_grpc_route_*``): backend response statuses and latency
  quantiles, route request statuses, route retries and route latency
  quantiles, selected by the target's labels and grouped by ``parent_name,
  parent_port, [backend_name, backend_port,] route_name, route_kind,
  [http_status|grpc_status, error], namespace, <kind>``;
* one row per (workload, Service:port, route): ``[default]`` (TYPE blank)
  for the default route, else the route's name and kind; under it one row per
  backend. A response fails when its HTTP status starts with 5 (gRPC: is not
  ``OK``) or it carries an ``error``; TIMEOUTS counts ``REQUEST_TIMEOUT`` and
  ``RESPONSE_HEADERS_TIMEOUT``; RETRIES is retries / (requests + retries);
* counts are truncated to integers, RPS is count / window, latencies are the
  quantiles in ms.

The DataFrame keeps numbers (SUCCESS, TIMEOUTS, RETRIES as fractions, RPS per
second, latencies in ms); backend rows carry their route's NAME, SERVICE,
ROUTE and TYPE and the BACKEND (``books:7002``), route rows an empty BACKEND
and RETRIES. :func:`render` prints the CLI's table, with the backend tree;
:func:`json_text` its ``-o json``. The CLI prints rows in Go map order
(random); here routes are sorted by NAME, SERVICE, ROUTE and backends by name.
"""
from __future__ import annotations

import math

import pandas as pd

from labkit import tables
from labkit.metrics import queries
from labkit.metrics.viz_cmd import command_frame, QUANTILES, count, go_json, latency_ms, pct32, rps32, target, window_seconds

TABLE = "stat-outbound"
COLUMNS = ["NAME", "SERVICE", "ROUTE", "TYPE", "BACKEND", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95",
           "LATENCY_P99", "TIMEOUTS", "RETRIES"]
TIMEOUT_ERRORS = ("RESPONSE_HEADERS_TIMEOUT", "REQUEST_TIMEOUT")
_LAT = {"0.5": "p50", "0.95": "p95", "0.99": "p99"}


def _new_row() -> dict:
    return {"s": 0, "f": 0, "t": 0, "r": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "backends": {}}


def _route_key(d: dict, label: str) -> tuple:
    route, kind = d.get("route_name", ""), d.get("route_kind", "")
    if route == "default":
        route = "[default]"
    if kind == "default":
        route, kind = "[default]", ""
    return (d.get(label, ""), d.get("parent_name", ""), d.get("parent_port", ""), route, kind)


def _count_into(row: dict, d: dict, value, grpc: bool) -> None:
    n = count(value)
    error = d.get("error", "")
    if grpc:
        failed = d.get("grpc_status", "") != "OK" or error != ""
    else:
        failed = str(d.get("http_status", "")).startswith("5") or error != ""
    row["f" if failed else "s"] += n
    if error in TIMEOUT_ERRORS:
        row["t"] += n


def collect(mesh, resource: str, namespace: str | None = None, window="1m") -> tuple[dict, float]:
    """The CLI's result map: (NAME, service, port, route, type) → counts, latencies and backends."""
    label, labels, group = target(resource, namespace, "stat-outbound")
    win, win_s = window_seconds(window)
    results: dict = {}

    def row_for(d: dict) -> dict:
        key = _route_key(d, label)
        row = results.get(key)
        if row is None:
            row = results[key] = _new_row()
        return row

    def backend_of(row: dict, d: dict) -> dict:
        bkey = (d.get("backend_name", ""), d.get("backend_port", ""))
        b = row["backends"].get(bkey)
        if b is None:
            b = row["backends"][bkey] = {"s": 0, "f": 0, "t": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0}
        return b

    def records(expr: str):
        frame = mesh.query(expr)
        return [] if frame.empty else frame.to_dict("records")

    for proto, status in (("http", "http_status"), ("grpc", "grpc_status")):
        prefix = f"outbound_{proto}_route_"
        grpc = proto == "grpc"
        backend_by = ["parent_name", "parent_port", "backend_name", "backend_port", "route_name", "route_kind"]
        route_by = ["parent_name", "parent_port", "route_name", "route_kind"]
        for d in records(queries.viz_rate(prefix + "backend_response_statuses_total", labels,
                                          backend_by + [status, "error"] + group, win)):
            _count_into(backend_of(row_for(d), d), d, d["value"], grpc)
        for q in QUANTILES:
            for d in records(queries.viz_quantile(q, prefix + "backend_response_duration_seconds_bucket", labels,
                                                  backend_by + group, win)):
                backend_of(row_for(d), d)[_LAT[q]] = float(d["value"]) * 1000
        for d in records(queries.viz_rate(prefix + "request_statuses_total", labels,
                                          route_by + [status, "error"] + group, win)):
            _count_into(row_for(d), d, d["value"], grpc)
        for d in records(queries.viz_rate(prefix + "retry_requests_total", labels, route_by + group, win)):
            row_for(d)["r"] += count(d["value"])
        for q in QUANTILES:
            for d in records(queries.viz_quantile(q, prefix + "request_duration_seconds_bucket", labels,
                                                  route_by + group, win)):
                row_for(d)[_LAT[q]] = float(d["value"]) * 1000
    return results, win_s


def _frac(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def stat_outbound(mesh, resource: str, namespace: str | None = None, *, window="1m") -> pd.DataFrame:
    """The ``linkerd viz stat-outbound`` table as numbers (:func:`labkit.cli_text` prints it as the CLI does)."""
    results, win_s = collect(mesh, resource, namespace, window)
    rows = []
    for key in sorted(results):
        row = results[key]
        total = row["s"] + row["f"]
        if total == 0:
            continue
        name, service, port, route, kind = key
        common = {"NAME": name, "SERVICE": f"{service}:{port}", "ROUTE": route, "TYPE": kind}
        rows.append({**common, "BACKEND": "", "SUCCESS": row["s"] / total, "RPS": total / win_s,
                     "LATENCY_P50": row["p50"], "LATENCY_P95": row["p95"], "LATENCY_P99": row["p99"],
                     "TIMEOUTS": row["t"] / total, "RETRIES": _frac(row["r"], total + row["r"])})
        for (bname, bport) in sorted(row["backends"]):
            b = row["backends"][(bname, bport)]
            btotal = b["s"] + b["f"]
            if btotal == 0:
                continue
            rows.append({**common, "BACKEND": f"{bname}:{bport}", "SUCCESS": b["s"] / btotal, "RPS": btotal / win_s,
                         "LATENCY_P50": b["p50"], "LATENCY_P95": b["p95"], "LATENCY_P99": b["p99"],
                         "TIMEOUTS": b["t"] / btotal, "RETRIES": math.nan})
    return command_frame(rows, COLUMNS, 5, TABLE, window=window, window_s=win_s, resource=resource,
                         namespace=namespace)


def render(df: pd.DataFrame) -> str:
    """The CLI's table: route rows, then their backends drawn as a tree (``├─`` / ``└─`` and ``─►``)."""
    win_s = float(df.attrs.get("window_s") or 60.0)
    lines: list[list[str]] = []
    for rec in df.to_dict("records"):
        s, f, t, r = _counts_from(rec, win_s)
        cells = [latency_ms(rec["LATENCY_P50"]), latency_ms(rec["LATENCY_P95"]), latency_ms(rec["LATENCY_P99"])]
        if not rec["BACKEND"]:
            lines.append([rec["NAME"], rec["SERVICE"], rec["ROUTE"], rec["TYPE"], "", pct32(s, s + f),
                          rps32(s + f, win_s), *cells, pct32(t, s + f), pct32(r, s + f + r)])
        else:
            lines.append(["", "", "├─", "─►", rec["BACKEND"], pct32(s, s + f), rps32(s + f, win_s), *cells,
                          pct32(t, s + f), ""])
    # the last backend row of each route turns its ├ into └
    for i, line in enumerate(lines):
        last_of_route = line[2] == "├─" and (i + 1 == len(lines) or lines[i + 1][2] != "├─")
        if last_of_route:
            line[2] = "└─"
    return tables.go_cli_table(COLUMNS, lines, left_align=5)


def _counts_from(rec: dict, win_s: float) -> tuple[int, int, int, int]:
    """The integer counts behind a row (exact: the fractions were made from them), so the text is computed
    in ``float32`` from the same integers the CLI uses, whatever rows the frame was filtered to."""
    total = round(rec["RPS"] * win_s)
    s = round(rec["SUCCESS"] * total)
    t = round(rec["TIMEOUTS"] * total)
    retries = rec.get("RETRIES")
    r = 0 if retries is None or math.isnan(retries) else round(retries * total / (1 - retries)) if retries < 1 else 0
    return s, total - s, t, r


def json_rows(df: pd.DataFrame) -> list[dict]:
    """``-o json`` rows: the CLI's keys and order; ``retryRate`` only on route rows, backends as their own rows."""
    out = []
    for rec in df.to_dict("records"):
        service, _, port = rec["SERVICE"].rpartition(":")
        row = {"name": rec["NAME"], "service": service, "port": port, "route": rec["ROUTE"],
               "routeType": rec["TYPE"]}
        if rec["BACKEND"]:
            bname, _, bport = rec["BACKEND"].rpartition(":")
            row["backend"], row["backendPort"] = bname, bport
        row.update({"successRate": rec["SUCCESS"], "rps": rec["RPS"], "latencyMsP50": rec["LATENCY_P50"],
                    "latencyMsP95": rec["LATENCY_P95"], "latencyMsP99": rec["LATENCY_P99"],
                    "timeoutRate": rec["TIMEOUTS"]})
        if not rec["BACKEND"]:
            row["retryRate"] = rec["RETRIES"]
        out.append(row)
    return out


def json_text(df: pd.DataFrame) -> str:
    """``linkerd viz stat-outbound -o json``: one compact line."""
    return go_json(json_rows(df))


tables.register_renderer(TABLE, render)
