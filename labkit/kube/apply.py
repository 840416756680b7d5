"""``kubectl apply`` (client-side) for the kube backend: the last-applied annotation and the three-way merge.

Like kubectl, labkit keeps the configuration it applied in the
``kubectl.kubernetes.io/last-applied-configuration`` annotation and computes
the new object from (live, last applied, new config): fields the config sets
win, fields a previous apply set and the config no longer sets are removed,
everything else (defaults, status, other writers' fields) stays; lists of
named items (containers, env, volumes, ports…) merge per item, as kubectl's
strategic merge does. The result is written with a ``PUT`` carrying the live
``resourceVersion``, so a concurrent writer makes it fail with 409 Conflict
and labkit re-reads and merges again — instead of silently overwriting.

These are the same semantics the embedded mesh models for ``apply`` (its
``sim/kube/cluster.py``); the backends never import each other, so the
rules live here too.
"""
from __future__ import annotations

import copy
import json

from labkit.k8s import LAST_APPLIED, three_way_merge


def config_json(obj: dict) -> str:
    """The annotation's value: compact JSON with sorted keys and a trailing newline, as kubectl writes it."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"


def for_create(config: dict) -> dict:
    out = copy.deepcopy(config)
    out["metadata"].setdefault("annotations", {})[LAST_APPLIED] = config_json(config)
    return out


def last_applied(live: dict) -> dict:
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def for_update(live: dict, config: dict) -> dict:
    merged = three_way_merge(live, last_applied(live), config)
    merged["metadata"].setdefault("annotations", {})[LAST_APPLIED] = config_json(config)
    merged["metadata"].pop("managedFields", None)  # omitted in an update: the server keeps its own
    return merged


def same_object(a: dict, b: dict) -> bool:
    """Equal apart from what the server bumps on every write (resourceVersion, generation) and status."""
    def norm(o: dict) -> dict:
        o = {k: v for k, v in o.items() if k not in ("status", "apiVersion")}
        o["metadata"] = {k: v for k, v in (o.get("metadata") or {}).items()
                         if k not in ("resourceVersion", "generation", "managedFields")}
        return o

    return norm(a) == norm(b)
