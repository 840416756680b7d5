"""Reading the mesh for a grader: lookups that answer "nothing there" instead of raising.

The self-checks, the "your turn" task checks and the break-fix grader all read
a mesh the learner may have left in any state: an object missing, a profile
without routes, no traffic yet. A grader must then say what is missing, not
stop with a traceback, so every reader here returns an empty value for
"not there". They use the labkit contract only, so they read a real cluster
the same way as the embedded mesh.
"""
from __future__ import annotations

import difflib
from typing import Iterable

from labkit.errors import LabkitError


def get_or_none(mesh, kind: str, name: str, namespace: str | None = None) -> dict | None:
    """``mesh.get`` or ``None`` when the object (or its kind) does not exist."""
    try:
        return mesh.get(kind, name, namespace)
    except (LabkitError, KeyError, ValueError):
        return None


def names_of(mesh, kind: str, namespace: str | None = None) -> list[str]:
    """The names of every ``kind`` in ``namespace`` (``kubectl get KIND -o name``), [] when none can be read."""
    try:
        listing = mesh.get(kind, None, namespace)
    except (LabkitError, KeyError, ValueError, TypeError):
        return []
    return sorted(item["metadata"]["name"] for item in listing.get("items") or [])


def missing(kind: str, name: str, namespace: str | None, present: Iterable[str]) -> str:
    """"there is no deployment hello in namespace sandbox (did you mean helo?)" — the grader's not-found line."""
    where = f" in namespace {namespace}" if namespace else ""
    close = difflib.get_close_matches(name, list(present), n=1, cutoff=0.6)
    return f"there is no {kind} {name}{where}" + (f" (there is {close[0]}: a typo?)" if close else "")


def annotations(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def labels(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def template(deployment: dict | None) -> dict:
    """A Deployment's pod template (``{}`` when there is none)."""
    return ((deployment or {}).get("spec") or {}).get("template") or {}


def ready_replicas(deployment: dict | None) -> int:
    return int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)


def stat_rows(mesh, namespace: str, resource: str = "deploy", **options) -> dict:
    """``linkerd viz stat`` rows by NAME ({} when viz cannot answer yet)."""
    try:
        table = mesh.stat(resource, namespace=namespace, **options)
    except (LabkitError, KeyError, ValueError):
        return {}
    return {row["NAME"]: row for _, row in table.iterrows()}


def meshed(row) -> bool:
    """A ``stat`` row whose MESHED column (``1/1``, ``2/2``) counts at least one meshed pod."""
    return row is not None and str(row["MESHED"]).startswith(tuple("123456789"))


def profile(mesh, service: str, namespace: str) -> dict:
    """The ServiceProfile of ``service`` ({} when there is none)."""
    return get_or_none(mesh, "sp", f"{service}.{namespace}.svc.cluster.local", namespace) or {}


def profile_route(profile_obj: dict, name: str) -> dict:
    """One route of a ServiceProfile by its name ({} when there is no such route)."""
    return next((r for r in (profile_obj.get("spec") or {}).get("routes") or [] if r.get("name") == name), {})


def query_sum(mesh, promql: str) -> float:
    """The sum of an instant query's values (0.0 when it returns nothing)."""
    frame = mesh.query(promql)
    return float(frame["value"].sum()) if len(frame) else 0.0


def is_number(value) -> bool:
    """A real number (not None, not NaN): what a table cell holds when there was traffic."""
    return value is not None and value == value


def route_median_ms(mesh, namespace: str, deployment: str, route: str, window: str = "30m") -> float | None:
    """A profile route's median latency as its server measured it (inbound, so no client timeout cuts it short);
    None without traffic."""
    frame = mesh.query(
        f'histogram_quantile(0.5, sum(rate(route_response_latency_ms_bucket{{namespace="{namespace}", '
        f'deployment="{deployment}", direction="inbound", rt_route="{route}"}}[{window}])) by (le))')
    value = float(frame["value"].iloc[0]) if len(frame) else None
    return value if is_number(value) else None


def running_pods(mesh, deployment: str, namespace: str) -> list[dict]:
    """The Running pods a Deployment's selector picks (not those being deleted), as API objects."""
    deploy = get_or_none(mesh, "deploy", deployment, namespace)
    selector = (((deploy or {}).get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not selector:
        return []
    listing = mesh.get("pods", None, namespace)
    return [p for p in listing.get("items") or []
            if all(labels(p).get(k) == v for k, v in selector.items())
            and (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
