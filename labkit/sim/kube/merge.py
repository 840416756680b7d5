"""Strategic merge patch and server-side apply, as the API server merges them.

``kubectl patch`` (strategic merge) and ``kubectl apply --server-side`` send
partial objects that the API server merges into the live one: keyed lists
(containers by name, ports by port) merge item by item, the rest replaces.
Both the served API (``sim/serve``) and ``Cluster.apply(server_side=True)``
use these, so the two paths agree.
"""
from __future__ import annotations

from typing import Any

from labkit.sim.kube.objects import clone


#: Merge keys of the lists the labs' kinds carry (k8s.io/api's patchMergeKey tags).
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
              "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
              "imagePullSecrets": "name", "ports": None, "conditions": "type", "hostAliases": "ip",
              "topologySpreadConstraints": "topologyKey", "ownerReferences": "uid", "finalizers": None}


def _port_key(items: list) -> str | None:
    if all(isinstance(x, dict) and "containerPort" in x for x in items):
        return "containerPort"
    if all(isinstance(x, dict) and "port" in x for x in items):
        return "port"
    return None


def strategic_merge(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch (Kubernetes' ``strategicpatch.StrategicMergePatch`` semantics)."""
    if not isinstance(patch, dict):
        return clone(patch)
    if patch.get("$patch") == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = clone(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/") or key.startswith("$deleteFromPrimitiveList/"):
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge(out.get(key), value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _merge_list(key, out.get(key), value)
        else:
            out[key] = value
    for key, values in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [v for v in out[field] if v not in values]
        elif key.startswith("$setElementOrder/"):
            field = key.split("/", 1)[1]
            out[field] = _order(field, out.get(field), values)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(field: str, live: Any, patch: list) -> list:
    if field not in MERGE_KEYS or not isinstance(live, list):
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [clone(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
        return [clone(x) for x in patch if not (isinstance(x, dict) and x.get("$patch") == "delete")]
    key = MERGE_KEYS[field] or _port_key([x for x in patch + live if isinstance(x, dict) and "$patch" not in x])
    if key is None:  # a list of scalars with merge semantics (finalizers): union
        out = list(live)
        out += [x for x in patch if x not in out]
        return out
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [clone(x) for x in patch if "$patch" not in x]
    out = [clone(x) for x in live]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            continue
        index = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
            continue
        if index is None:
            out.append(strategic_merge({}, item))
        else:
            out[index] = strategic_merge(out[index], item)
    return out


def _order(field: str, items: Any, order: list) -> Any:
    if not isinstance(items, list):
        return items
    key = MERGE_KEYS.get(field) or _port_key(items)
    if key is None:
        return items
    rank = {o.get(key): i for i, o in enumerate(order) if isinstance(o, dict)}
    return sorted(items, key=lambda x: rank.get(x.get(key) if isinstance(x, dict) else None, len(rank)))


def server_side_apply(live: dict | None, config: dict) -> dict:
    """Server-side apply, approximated: the applied config merged over the live object.

    Fields are merged with strategic-merge semantics (keyed lists by their
    merge keys). What real server-side apply adds and this does not model:
    ``managedFields`` ownership, so a field the applier stops sending is
    kept rather than removed, and conflicts with other managers are never
    reported.
    """
    if live is None:
        return clone(config)
    return strategic_merge(live, config)
