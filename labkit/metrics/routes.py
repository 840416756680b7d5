"""``linkerd viz routes``: per-route golden metrics from ServiceProfile route metrics — for both backends.

linkerd-viz's metrics-api answers ``routes`` (``viz/metrics-api/top_routes.go``,
reference linkerd-formats.md §2.2, §3.2) like this, and so does this module,
over ``mesh.get`` and ``mesh.query`` only:

* the target's objects (``deploy/books``, ``svc/webapp``…) are looked up; the
  *destination* is the target itself, or the ``--to`` resource;
* for every Service of the destination (a Deployment's: the Services whose
  selector picks its pods) the ServiceProfile named
  ``<svc>.<ns>.svc.cluster.local`` is looked up, in the target's namespace
  first, then the Service's (none: an empty profile — a lone ``[DEFAULT]``
  row);
* one query each for effective counts (``route_response_total``), actual
  counts with ``--to`` (``route_actual_response_total``) and the p50/p95/p99
  latencies, selecting ``direction="inbound"`` (no ``--to``) or
  ``"outbound"`` with the target's labels, and
  ``dst=~"(<profile>|…)(:\\d+)?"``, grouped by ``rt_route``;
* one row per profile route plus ``[DEFAULT]`` (samples without
  ``rt_route``); counts rounded, success ``s/(s+f)``, RPS ``(s+f)/window``.

``wide`` (``-o wide``) needs ``to`` and shows EFFECTIVE_/ACTUAL_ columns.
"""
from __future__ import annotations

import math

import pandas as pd

from labkit.durations import seconds
from labkit.errors import LabkitError
from labkit.metrics import queries
from labkit.metrics.viz import go_round

DEFAULT_ROUTE = "[DEFAULT]"
CLUSTER_DOMAIN = "cluster.local"
#: routes target kinds → (kubectl kind, Prometheus label of the resource or None for a Service)
KINDS = {
    "deploy": ("deployment", "deployment"), "deployment": ("deployment", "deployment"),
    "deployments": ("deployment", "deployment"),
    "po": ("pod", "pod"), "pod": ("pod", "pod"), "pods": ("pod", "pod"),
    "svc": ("service", None), "service": ("service", None), "services": ("service", None),
}
QUANTILES = (("LATENCY_P50", "0.5"), ("LATENCY_P95", "0.95"), ("LATENCY_P99", "0.99"))


class RoutesError(LabkitError, ValueError):
    """A routes request linkerd-viz refuses, with its wording."""


def _parse(resource: str, what: str) -> tuple[str, str | None]:
    kind, _, name = resource.partition("/")
    kind = kind.lower()
    if kind not in KINDS:
        raise RoutesError(f"cannot get routes for {resource!r}: {what} must be deploy, pod or svc (optionally /NAME)")
    return kind, (name or None)


def _items(mesh, kind: str, name: str | None, namespace: str) -> list[dict]:
    k8s_kind = KINDS[kind][0]
    if name:
        return [mesh.get(k8s_kind, name, namespace)]
    return list((mesh.get(k8s_kind, None, namespace) or {}).get("items") or [])


def _pod_labels(obj: dict) -> dict:
    if obj.get("kind") == "Pod":
        return (obj.get("metadata") or {}).get("labels") or {}
    return ((((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}


def _selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def services_for(mesh, obj: dict, namespace: str) -> list[str]:
    """The Services of an object: itself for a Service, else those whose selector picks its pods."""
    if obj.get("kind") == "Service":
        return [obj["metadata"]["name"]]
    labels = _pod_labels(obj)
    services = (mesh.get("service", None, namespace) or {}).get("items") or []
    return sorted(s["metadata"]["name"] for s in services if _selects((s.get("spec") or {}).get("selector") or {}, labels))


def profile_for(mesh, service: str, service_ns: str, client_ns: str) -> dict:
    """The ServiceProfile viz shows for ``service``: in the client's namespace, then the Service's, else empty."""
    name = f"{service}.{service_ns}.svc.{CLUSTER_DOMAIN}"
    for ns in dict.fromkeys((client_ns, service_ns)):
        try:
            return mesh.get("serviceprofiles", name, ns)
        except Exception:  # not found (or no such kind): try the next namespace
            continue
    return {"metadata": {"name": name}, "spec": {}}


def _window(window) -> tuple[str, float]:
    secs = seconds(window, name="window")
    return (window if isinstance(window, str) else f"{int(secs)}s"), secs


def routes(mesh, target: str, namespace: str | None = None, *, to: str | None = None, wide: bool = False,
           to_namespace: str | None = None, window="1m") -> pd.DataFrame:
    """The ``linkerd viz routes`` table, as numbers (:func:`labkit.cli_text` prints it like the CLI)."""
    from labkit.tables import new_table

    ns = namespace or "default"
    kind, name = _parse(target, "the target")
    if wide and not to:
        raise RoutesError("wide output is only available when --to is specified")
    if to and KINDS[kind][1] is None:
        raise RoutesError(f"The {KINDS[kind][0]} resource type is not supported with 'to' queries")
    try:
        mesh.get("serviceprofiles", None, ns)
    except Exception:
        raise RoutesError("Routes are not available (the ServiceProfile CRD is not installed: install Linkerd first)") from None
    win, win_s = _window(window)
    objects = _items(mesh, kind, name, ns)
    to_objects = None
    if to:
        to_kind, to_name = _parse(to, "--to")
        to_ns = to_namespace or ns
        to_objects = (to_kind, to_name, to_ns, _items(mesh, to_kind, to_name, to_ns))

    rows: list[dict] = []
    for obj in objects:
        obj_name = obj["metadata"]["name"]
        if to_objects is None:
            dest_ns, dests = ns, [obj]
        else:
            dest_ns, dests = to_objects[2], to_objects[3]
        profiles: dict[str, dict] = {}
        for dest in dests:
            for svc in services_for(mesh, dest, dest_ns):
                profiles[svc] = profile_for(mesh, svc, dest_ns, ns)
        if not profiles:
            continue
        labels: dict = {"direction": "outbound" if to else "inbound", "namespace": ns}
        label = KINDS[kind][1]
        if label is not None:
            labels[label] = obj_name
        dsts = sorted(p["metadata"]["name"] for p in profiles.values())
        table = _table(mesh, labels, dsts, profiles, win, win_s, actual=bool(to))
        for row in table:
            row["RESOURCE"] = f"{KINDS[kind][0]}/{obj_name}"
        rows += table
    if not rows and not objects:
        raise RoutesError("No Service Profiles found for selected resources")
    if wide:
        for row in rows:
            row["EFFECTIVE_SUCCESS"], row["EFFECTIVE_RPS"] = row.pop("SUCCESS"), row.pop("RPS")
    else:
        for row in rows:
            row.pop("ACTUAL_SUCCESS", None)
            row.pop("ACTUAL_RPS", None)
    if len({r["RESOURCE"] for r in rows}) <= 1:
        for row in rows:
            row.pop("RESOURCE")
    return new_table("routes", rows, wide=bool(wide), window=win, namespace=ns, target=target, to=to)


def _table(mesh, labels: dict, dsts: list[str], profiles: dict[str, dict], win: str, win_s: float,
           actual: bool) -> list[dict]:
    keys: dict[tuple[str, str], dict] = {}
    for service, prof in profiles.items():
        pname = prof["metadata"]["name"]
        for r in (prof.get("spec") or {}).get("routes") or []:
            if isinstance(r, dict) and r.get("name"):
                keys[(pname, str(r["name"]))] = {"ROUTE": str(r["name"]), "SERVICE": service}
        keys[(pname, "")] = {"ROUTE": DEFAULT_ROUTE, "SERVICE": service}
    counts = {k: [0, 0, 0, 0] for k in keys}  # success, failure, actual success, actual failure
    latency = {k: {} for k in keys}

    def key_of(rec: dict) -> tuple[str, str] | None:
        dst = str(rec.get("dst", "")).split(":")[0]
        k = (dst, str(rec.get("rt_route", "") or ""))
        return k if k in keys else None  # "Found stats for unknown route": skipped, as metrics-api does

    for offset, query in ((0, queries.route_requests(labels, dsts, "rt_route", win)),
                          *(((2, queries.route_requests(labels, dsts, "rt_route", win, actual=True)),) if actual else ())):
        frame = mesh.query(query)
        for rec in ([] if frame.empty else frame.to_dict("records")):
            k = key_of(rec)
            if k is None:
                continue
            value = rec.get("value")
            n = 0 if value is None or math.isnan(value) else go_round(value)
            idx = offset + (0 if rec.get("classification") == "success" else 1)
            if rec.get("classification") in ("success", "failure"):
                counts[k][idx] += n
    for col, q in QUANTILES:
        frame = mesh.query(queries.route_latency(q, labels, dsts, "rt_route", win))
        for rec in ([] if frame.empty else frame.to_dict("records")):
            k = key_of(rec)
            if k is not None:
                value = rec.get("value")
                latency[k][col] = 0 if value is None or math.isnan(value) else go_round(value)

    rows = []
    for k, base in keys.items():
        s, f, a_s, a_f = counts[k]
        has_data = any(counts[k])
        row = dict(base)
        row["SUCCESS"] = s / (s + f) if s + f else (0.0 if has_data else math.nan)
        row["RPS"] = (s + f) / win_s if has_data else math.nan
        row["ACTUAL_SUCCESS"] = a_s / (a_s + a_f) if a_s + a_f else (0.0 if has_data else math.nan)
        row["ACTUAL_RPS"] = (a_s + a_f) / win_s if has_data else math.nan
        for col, _ in QUANTILES:
            row[col] = float(latency[k].get(col, 0)) if has_data else math.nan
        rows.append(row)
    return rows
