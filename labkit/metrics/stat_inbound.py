"""``linkerd viz stat-inbound``: a workload's inbound traffic per server port and route — for both backends.

As ``viz/cmd/stat-inbound.go`` (Linkerd 2.17+, reference linkerd-2.20.md §4)
does it, over ``mesh.query`` only: the legacy ``response_total`` and
``response_latency_ms_bucket`` with ``direction="inbound"`` and the
target's labels, grouped by ``srv_name, srv_kind, route_name, route_kind,
[classification,] target_port, namespace, <kind>``. One row per (workload,
server, port, route): SERVER is ``[default]:<port>`` for the default policy
(else ``<server>:<port>``), ROUTE ``[default]`` for the default route, TYPE
the route kind (blank for ``default``). Success counts ``classification=
"success"``; counts are truncated to integers; RPS is count / window; the
latencies are already milliseconds. Rows sorted by NAME, SERVER, TYPE.
"""
from __future__ import annotations

import pandas as pd

from labkit import tables
from labkit.metrics import queries
from labkit.metrics.viz_cmd import command_frame, QUANTILES, count, go_json, latency_ms, pct32, rps32, target, window_seconds

TABLE = "stat-inbound"
COLUMNS = ["NAME", "SERVER", "ROUTE", "TYPE", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
_LAT = {"0.5": "LATENCY_P50", "0.95": "LATENCY_P95", "0.99": "LATENCY_P99"}


def _key(d: dict, label: str) -> tuple:
    server = "[default]" if d.get("srv_kind") == "default" else d.get("srv_name", "")
    route = "[default]" if d.get("route_name") == "default" else d.get("route_name", "")
    kind = "" if d.get("route_kind") == "default" else d.get("route_kind", "")
    return (d.get(label, ""), server, d.get("target_port", ""), route, kind)


def stat_inbound(mesh, resource: str, namespace: str | None = None, *, window="1m") -> pd.DataFrame:
    """The ``linkerd viz stat-inbound`` table as numbers (:func:`labkit.cli_text` prints it as the CLI does)."""
    label, labels, group = target(resource, namespace, "stat-inbound")
    win, win_s = window_seconds(window)
    labels = {"direction": "inbound", **labels}
    by = ["srv_name", "srv_kind", "route_name", "route_kind"]
    results: dict = {}
    frame = mesh.query(queries.viz_rate("response_total", labels, by + ["classification", "target_port"] + group, win))
    for d in ([] if frame.empty else frame.to_dict("records")):
        row = results.setdefault(_key(d, label), {"s": 0, "f": 0, **{c: 0.0 for c in _LAT.values()}})
        row["s" if d.get("classification") == "success" else "f"] += count(d["value"])
    for q in QUANTILES:
        frame = mesh.query(queries.viz_quantile(q, "response_latency_ms_bucket", labels, by + ["target_port"] + group, win))
        for d in ([] if frame.empty else frame.to_dict("records")):
            row = results.setdefault(_key(d, label), {"s": 0, "f": 0, **{c: 0.0 for c in _LAT.values()}})
            row[_LAT[q]] = float(d["value"])
    rows = []
    for key, row in results.items():
        total = row["s"] + row["f"]
        if total == 0:
            continue
        name, server, port, route, kind = key
        rows.append({"NAME": name, "SERVER": f"{server}:{port}", "ROUTE": route, "TYPE": kind,
                     "SUCCESS": row["s"] / total, "RPS": total / win_s,
                     **{c: row[c] for c in _LAT.values()}})
    rows.sort(key=lambda r: (r["NAME"], r["SERVER"], r["TYPE"], r["ROUTE"]))
    return command_frame(rows, COLUMNS, 4, TABLE, window=window, window_s=win_s, resource=resource,
                         namespace=namespace)


def render(df: pd.DataFrame) -> str:
    """The CLI's table (``cli/table``, sorted by NAME, SERVER, TYPE)."""
    win_s = float(df.attrs.get("window_s") or 60.0)
    lines = []
    for rec in df.to_dict("records"):
        total = round(rec["RPS"] * win_s)
        s = round(rec["SUCCESS"] * total)
        lines.append([rec["NAME"], rec["SERVER"], rec["ROUTE"], rec["TYPE"], pct32(s, total), rps32(total, win_s),
                      latency_ms(rec["LATENCY_P50"]), latency_ms(rec["LATENCY_P95"]), latency_ms(rec["LATENCY_P99"])])
    return tables.go_cli_table(COLUMNS, lines, left_align=4, sort=(0, 1, 3))


def json_rows(df: pd.DataFrame) -> list[dict]:
    """``-o json`` rows with the CLI's keys (``successesRate`` sic)."""
    out = []
    for rec in df.to_dict("records"):
        server, _, port = rec["SERVER"].rpartition(":")
        out.append({"name": rec["NAME"], "server": server, "port": port, "route": rec["ROUTE"],
                    "routeType": rec["TYPE"], "successesRate": rec["SUCCESS"], "rps": rec["RPS"],
                    "latencyMsP50": rec["LATENCY_P50"], "latencyMsP95": rec["LATENCY_P95"],
                    "latencyMsP99": rec["LATENCY_P99"]})
    return out


def json_text(df: pd.DataFrame) -> str:
    """``linkerd viz stat-inbound -o json``: one compact line."""
    return go_json(json_rows(df))


tables.register_renderer(TABLE, render)
