"""``linkerd viz stat`` and metric history, computed from PromQL — for both backends.

linkerd-viz's metrics-api answers ``stat`` by sending Prometheus a handful of
queries (reference: linkerd-formats.md §3.1) and post-processing the vectors:
success and failure counts from ``increase(response_total[window])``
rounded to integers, success rate ``s/(s+f)``, RPS ``(s+f)/window``,
latency quantiles from ``histogram_quantile`` over ``irate`` of the buckets,
and open TCP connections. This module does exactly that over ``mesh.query``,
so the embedded mesh and a real cluster share every line of it and a real
Prometheus can check the numbers.
"""
from __future__ import annotations

import math

import pandas as pd

from labkit.durations import seconds
from labkit.metrics import queries

#: ``stat`` resource kinds → (Prometheus label of the row resource, kubectl kind for cluster lookups)
KINDS = {
    "deploy": ("deployment", "Deployment"), "deployment": ("deployment", "Deployment"),
    "deployments": ("deployment", "Deployment"), "deploy.apps": ("deployment", "Deployment"),
    "po": ("pod", "Pod"), "pod": ("pod", "Pod"), "pods": ("pod", "Pod"),
    "svc": ("service", "Service"), "service": ("service", "Service"), "services": ("service", "Service"),
    "ns": ("namespace", "Namespace"), "namespace": ("namespace", "Namespace"), "namespaces": ("namespace", "Namespace"),
}
QUANTILES = (("LATENCY_P50", "0.5"), ("LATENCY_P95", "0.95"), ("LATENCY_P99", "0.99"))


def go_round(value: float) -> int:
    """Go's ``math.Round``: halves away from zero (Python's ``round`` goes to even)."""
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


def parse_resource(resource: str) -> tuple[str, str | None]:
    """``"deploy/web"`` → ``("deploy", "web")``; ``"deploy"`` → ``("deploy", None)``; clear error otherwise."""
    kind, _, name = resource.partition("/")
    kind = kind.lower()
    if kind not in KINDS:
        valid = "deploy, pod, svc, ns (optionally /NAME)"
        raise ValueError(f"cannot stat {resource!r}: unknown resource type {kind!r}; use one of {valid}")
    return kind, (name or None)


def _value_map(frame: pd.DataFrame, key_cols: list[str]) -> dict:
    out: dict = {}
    if frame.empty:
        return out
    for row in frame.itertuples(index=False):
        d = row._asdict()
        out[tuple(d.get(c, "") for c in key_cols)] = d["value"]
    return out


def stat(mesh, resource: str, namespace: str | None = None, *, to: str | None = None,
         from_: str | None = None, window="1m", wide: bool = False) -> pd.DataFrame:
    """The ``linkerd viz stat`` table, as numbers (see :func:`labkit.cli_text` for the CLI text).

    ``wide`` adds READ_BYTES/SEC and WRITE_BYTES/SEC (``-o wide``; ``-o json``'s
    ``tcp_read_bytes_rate`` / ``tcp_write_bytes_rate``): TCP bytes over the
    window, per second, from metrics-api's tcp_read/write_bytes queries.
    """
    from labkit.tables import new_table

    if resource.partition("/")[0].lower() in TRAFFICSPLIT_KINDS:
        return stat_trafficsplit(mesh, resource, namespace, to=to, from_=from_, window=window)
    kind, name = parse_resource(resource)
    if to and from_:
        raise ValueError("stat takes to= or from_=, not both (like `linkerd viz stat --to/--from`)")
    ns = namespace or "default"
    win_s = seconds(window, name="window")
    win = window if isinstance(window, str) else f"{int(win_s)}s"
    row_label = KINDS[kind][0]

    if kind == "ns":
        labels, group, key = {"direction": "inbound"}, ["namespace"], ["namespace"]
        if name:
            labels["namespace"] = name
    elif kind == "svc":
        labels = {"direction": "outbound", "dst_namespace": ns}
        if name:  # metrics-api selects a service by the authority clients used (reference §3.1)
            labels["authority"] = ("=~", f"^{name}.{ns}.svc.cluster.local.*")
        group, key = ["dst_namespace", "dst_service"], ["dst_namespace", "dst_service"]
    elif to:
        to_kind, to_name = parse_resource(to)
        labels = {"direction": "outbound", "namespace": ns, f"dst_{KINDS[to_kind][0]}": to_name or "",
                  "dst_namespace": ns}
        if name:
            labels[row_label] = name
        group, key = ["namespace", row_label], ["namespace", row_label]
    elif from_:
        from_kind, from_name = parse_resource(from_)
        labels = {"direction": "outbound", "namespace": ns, KINDS[from_kind][0]: from_name or "",
                  "dst_namespace": ns}
        if name:
            labels[f"dst_{row_label}"] = name
        group, key = ["dst_namespace", f"dst_{row_label}"], ["dst_namespace", f"dst_{row_label}"]
    else:
        labels = {"direction": "inbound", "namespace": ns}
        if name:
            labels[row_label] = name
        group, key = ["namespace", row_label], ["namespace", row_label]

    counts = mesh.query(queries.stat_requests(labels, group, win))
    success: dict = {}
    failure: dict = {}
    if not counts.empty:
        for row in counts.itertuples(index=False):
            d = row._asdict()
            k = tuple(d.get(c, "") for c in key)
            n = 0 if math.isnan(d["value"]) else go_round(d["value"])
            bucket = success if d.get("classification") == "success" else failure
            bucket[k] = bucket.get(k, 0) + n
    latencies = {col: _value_map(mesh.query(queries.stat_latency(q, labels, group, win)), key) for col, q in QUANTILES}
    tcp_labels = dict(labels)
    tcp = _value_map(mesh.query(queries.stat_tcp_connections(tcp_labels, group)), key) if kind != "svc" else {}
    tcp_bytes = {}
    if wide and kind != "svc":
        peer = "dst" if to else "src"
        tcp_bytes = {col: _value_map(mesh.query(queries.stat_tcp_bytes(direction, tcp_labels, group, win, peer=peer)), key)
                     for col, direction in (("READ_BYTES/SEC", "read"), ("WRITE_BYTES/SEC", "write"))}

    # Rows: every resource of the kind (so idle ones show "-"), plus any seen only in metrics.
    meshed = mesh._meshed_counts(kind, ns if kind != "ns" else None)
    names = set(meshed)
    names |= {k[-1] for k in (*success, *failure)}
    if name:
        names = {n for n in names if n == name}
    if kind == "svc":
        names = {n for n in names if n}
    rows = []
    for row_name in sorted(names):
        k = (row_name,) if kind == "ns" else (ns, row_name)
        s, f = success.get(k, 0), failure.get(k, 0)
        total = s + f
        m = meshed.get(row_name)
        if (to or from_) and total == 0:
            continue
        if not (to or from_) and kind != "svc" and (m is None or m[0] == 0) and total == 0:
            continue  # linkerd viz stat hides unmeshed resources
        row = {
            "NAME": row_name,
            "MESHED": "-" if kind == "svc" else (f"{m[0]}/{m[1]}" if m else "-"),
            "SUCCESS": s / total if total else math.nan,
            "RPS": total / win_s if total else math.nan,
        }
        for col, _ in QUANTILES:
            v = latencies[col].get(k, math.nan)
            row[col] = math.nan if (not total or v is None or math.isnan(v)) else float(go_round(v))
        conn = tcp.get(k, math.nan)
        row["TCP_CONN"] = math.nan if kind == "svc" or conn is None or math.isnan(conn) else go_round(conn)
        for col, values in tcp_bytes.items():
            v = values.get(k, math.nan)
            row[col] = 0.0 if v is None or math.isnan(v) else go_round(v) / win_s  # metrics-api rounds to uint64
        rows.append(row)
    return new_table("stat", rows, kind=kind, window=win, namespace=ns, **({"wide": True} if wide else {}))


def history(mesh, target: str, namespace: str | None = None, *, since=None, step="10s",
            window: str = "1m") -> pd.DataFrame:
    """Golden metrics over time for plots: time, name, success (0–1), rps, p50, p95, p99.

    ``target`` is ``"deploy"`` (every deployment in the namespace) or
    ``"deploy/web"``; values are per ``window`` as the dashboard shows them.
    """
    kind, name = parse_resource(target)
    ns = namespace or "default"
    row_label = KINDS[kind][0]
    labels = {"direction": "inbound", "namespace": ns}
    if name:
        labels[row_label] = name
    end = mesh.now
    start = pd.Timestamp(since) if since is not None else end - pd.Timedelta(minutes=10)
    if start.tzinfo is None:
        start = start.tz_localize("UTC")
    step_s = seconds(step, name="step")
    sel = queries.label_string(labels)
    rate = f"sum(rate(response_total{sel}[{window}])) by ({row_label}, classification)"
    frame = mesh.query_range(rate, start, end, step_s)
    columns = ["time", "name", "success", "rps", "p50", "p95", "p99"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.rename(columns={row_label: "name"})
    wide = frame.pivot_table(index=["time", "name"], columns="classification", values="value", aggfunc="sum").fillna(0.0)
    for cls in ("success", "failure"):
        if cls not in wide:
            wide[cls] = 0.0
    out = pd.DataFrame({"rps": wide["success"] + wide["failure"]})
    out["success"] = (wide["success"] / out["rps"]).where(out["rps"] > 0)
    for col, q in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
        lat = mesh.query_range(
            f"histogram_quantile({q}, sum(rate(response_latency_ms_bucket{sel}[{window}])) by (le, {row_label}))",
            start, end, step_s,
        )
        if lat.empty:
            out[col] = math.nan
        else:
            lat = lat.rename(columns={row_label: "name"}).set_index(["time", "name"])["value"]
            out[col] = lat.reindex(out.index)
    out = out.reset_index()
    return out[columns].sort_values(["name", "time"], kind="stable").reset_index(drop=True)


def _short_identity(identity: str) -> str:
    """``web.emojivoto.serviceaccount.identity.linkerd.cluster.local`` → ``web.emojivoto``, as `edges` prints it."""
    return ".".join(identity.split(".")[:2]) if identity else ""


def edges(mesh, resource: str, namespace: str | None = None) -> pd.DataFrame:
    """``linkerd viz edges``: who holds connections to whom, and whether mTLS secures them.

    metrics-api answers it from the proxies' open outbound connections
    (reference §2.5 ``edgesQuery``); the client identity is the source pod's
    service account, looked up in the cluster as metrics-api does.
    """
    from labkit.tables import new_table

    kind, name = parse_resource(resource)
    if kind in ("svc", "service", "services", "ns", "namespace", "namespaces"):
        raise ValueError(f"edges works on workloads (deploy or pod), not {kind!r}")
    label = KINDS[kind][0]
    ns = namespace or "default"
    labels = {"direction": "outbound", "namespace": ns, label: ("!=", ""), f"dst_{label}": ("!=", "")}
    group = [label, f"dst_{label}", "pod", "server_id", "namespace", "dst_namespace", "no_tls_reason"]
    frame = mesh.query(f"sum(tcp_open_connections{queries.label_string(labels)}) by ({', '.join(group)})")
    accounts = mesh._service_accounts(ns)
    rows: dict[tuple, dict] = {}
    for rec in ([] if frame.empty else frame.to_dict("records")):
        if not rec.get("value"):
            continue
        src, dst = rec.get(label, ""), rec.get(f"dst_{label}", "")
        if name and name not in (src, dst):
            continue
        reason = rec.get("no_tls_reason", "")
        key = (src, dst, rec.get("namespace", ""), rec.get("dst_namespace", ""))
        sa = accounts.get(rec.get("pod", ""), "")
        rows[key] = {
            "SRC": src, "DST": dst, "SRC_NS": key[2], "DST_NS": key[3],
            "CLIENT_ID": f"{sa}.{key[2]}" if sa else "",
            "SERVER_ID": _short_identity(rec.get("server_id", "")),
            "SECURED": "√" if not reason else reason.replace("_", " ").title(),
        }
    return new_table("edges", [rows[k] for k in sorted(rows)])


def topology(mesh, namespace: str | None = None, *, window="1m") -> pd.DataFrame:
    """Who calls whom, with the success rate and RPS each caller sees: the edges for ``plots.topology``.

    One outbound query over the whole namespace (each meshed client's proxy
    counts its calls per destination workload), grouped like ``stat --from``.
    """
    ns = namespace or "default"
    win_s = seconds(window, name="window")
    win = window if isinstance(window, str) else f"{int(win_s)}s"
    labels = {"direction": "outbound", "namespace": ns, "deployment": ("!=", ""), "dst_deployment": ("!=", "")}
    frame = mesh.query(queries.stat_requests(labels, ["deployment", "dst_deployment"], win))
    counts: dict[tuple[str, str], list[int]] = {}
    for rec in ([] if frame.empty else frame.to_dict("records")):
        pair = (rec["deployment"], rec["dst_deployment"])
        n = 0 if math.isnan(rec["value"]) else go_round(rec["value"])
        ok, bad = counts.setdefault(pair, [0, 0])
        counts[pair] = [ok + n, bad] if rec.get("classification") == "success" else [ok, bad + n]
    rows = [{"src": s, "dst": d, "success": ok / (ok + bad) if ok + bad else math.nan,
             "rps": (ok + bad) / win_s} for (s, d), (ok, bad) in sorted(counts.items())]
    return pd.DataFrame(rows, columns=["src", "dst", "success", "rps"])


#: ``stat`` names for SMI TrafficSplits (the linkerd-smi extension's resource).
TRAFFICSPLIT_KINDS = ("ts", "trafficsplit", "trafficsplits")


def _quantity_text(weight) -> str:
    """A TrafficSplit weight as Kubernetes prints a Quantity (``900m``, ``1``, ``90``)."""
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", str(weight).strip())
    if isinstance(weight, bool) or m is None:
        return str(weight)
    milli = round(float(m.group(1)) * (1 if m.group(2) else 1000))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def stat_trafficsplit(mesh, resource: str, namespace: str | None = None, *, to: str | None = None,
                      from_: str | None = None, window="1m") -> pd.DataFrame:
    """``linkerd viz stat ts[/NAME]``: one row per backend (leaf) of each split (metrics-api
    ``trafficSplitResourceQuery``): outbound requests whose authority is the apex Service
    (``authority=~"^<apex>.<ns>.svc.*"``), from any client, grouped by ``dst_service``."""
    from labkit.tables import new_table

    _, _, name = resource.partition("/")
    if to and from_:
        raise ValueError("stat takes to= or from_=, not both (like `linkerd viz stat --to/--from`)")
    ns = namespace or "default"
    win_s = seconds(window, name="window")
    win = window if isinstance(window, str) else f"{int(win_s)}s"
    found = mesh.get("trafficsplits", name or None, ns)
    splits = [found] if name else list(found.get("items") or [])
    rows = []
    for ts in splits:
        spec = ts.get("spec") or {}
        apex = spec.get("service", "")
        labels: dict = {"direction": "outbound", "authority": ("=~", f"^{apex}.{ns}.svc.*")}
        if to:
            to_kind, to_name = parse_resource(to)
            labels.update({f"dst_{KINDS[to_kind][0]}": to_name or "", "dst_namespace": ns})
        elif from_:
            from_kind, from_name = parse_resource(from_)
            labels.update({KINDS[from_kind][0]: from_name or "", "namespace": ns})
        counts = mesh.query(queries.stat_requests(labels, ["dst_service"], win))
        success: dict = {}
        failure: dict = {}
        for rec in ([] if counts.empty else counts.to_dict("records")):
            n = 0 if math.isnan(rec["value"]) else go_round(rec["value"])
            bucket = success if rec.get("classification") == "success" else failure
            bucket[rec.get("dst_service", "")] = bucket.get(rec.get("dst_service", ""), 0) + n
        latencies = {col: _value_map(mesh.query(queries.stat_latency(q, labels, ["dst_service"], win)), ["dst_service"])
                     for col, q in QUANTILES}
        for backend in spec.get("backends") or []:
            leaf = backend.get("service", "")
            s, f = success.get(leaf, 0), failure.get(leaf, 0)
            total = s + f
            row = {"NAME": ts["metadata"]["name"], "APEX": apex, "LEAF": leaf,
                   "WEIGHT": _quantity_text(backend.get("weight")),
                   "SUCCESS": s / total if total else math.nan, "RPS": total / win_s if total else math.nan}
            for col, _ in QUANTILES:
                v = latencies[col].get((leaf,), math.nan)
                row[col] = math.nan if (not total or v is None or math.isnan(v)) else float(go_round(v))
            rows.append(row)
    return new_table("stat", rows, kind="trafficsplit", window=win, namespace=ns)
