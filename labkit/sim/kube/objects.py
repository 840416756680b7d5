"""Small pure helpers over API-shaped dicts: copying, labels, selectors, patches, timestamps.

Everything in the embedded cluster is a plain dict in Kubernetes' JSON shape,
so the same few operations (clone, match a selector, apply a merge patch)
are needed by the API server, every controller and the Linkerd model. They
live here, free of state, so each can be tested and reasoned about alone.
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Iterable

from labkit.errors import LabkitError
from labkit.k8s import clone  # one deep copy for JSON-shaped objects, shared by both backends


def meta(obj: dict) -> dict:
    return obj.setdefault("metadata", {})


def name_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def namespace_of(obj: dict) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def labels_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def annotations_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def group_of(api_version: str) -> str:
    """``apps/v1`` → ``apps``; ``v1`` → ``""`` (the core group)."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


# -- label selectors ---------------------------------------------------------------

def selector_matches(selector: dict | None, labels: dict) -> bool:
    """Does ``labels`` satisfy ``selector``?

    ``selector`` is either a plain ``{label: value}`` map (a Service's
    selector, ``matchLabels``) or a full LabelSelector with ``matchLabels``
    and ``matchExpressions``. An empty selector matches everything, like the
    API server's; ``None`` matches nothing (a Service without selector).
    """
    if selector is None:
        return False
    if "matchLabels" in selector or "matchExpressions" in selector:
        for key, value in (selector.get("matchLabels") or {}).items():
            if labels.get(key) != value:
                return False
        for expr in selector.get("matchExpressions") or []:
            key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
            if op == "In" and labels.get(key) not in values:
                return False
            if op == "NotIn" and key in labels and labels[key] in values:
                return False
            if op == "Exists" and key not in labels:
                return False
            if op == "DoesNotExist" and key in labels:
                return False
        return True
    for key, value in selector.items():
        if labels.get(key) != value:
            return False
    return True


def owner_uid(obj: dict) -> str | None:
    """The uid of the object's controller (``ownerReferences[controller=true]``)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def owner_ref(owner: dict, kind: str, api_version: str) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name_of(owner),
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


# -- patches ------------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``kubectl patch --type merge``): returns a new value."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class PatchError(LabkitError, ValueError):
    """A JSON patch operation that cannot be applied (bad path, failed test)."""


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON patch path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(target: Any, ops: Iterable[dict]) -> Any:
    """RFC 6902 JSON patch (``kubectl patch --type json``): add, remove, replace, move, copy, test."""
    doc = clone(target)
    for op in ops:
        kind, path = op.get("op"), op.get("path")
        if kind not in {"add", "remove", "replace", "move", "copy", "test"} or path is None:
            raise PatchError(f"invalid JSON patch operation {op!r}: needs op (add/remove/replace/move/copy/test) and path")
        if kind in ("move", "copy"):
            value = _get(doc, _pointer(op["from"]))
            if kind == "move":
                doc = _apply_op(doc, "remove", _pointer(op["from"]), None)
            doc = _apply_op(doc, "add", _pointer(path), clone(value))
            continue
        if kind == "test":
            if _get(doc, _pointer(path)) != op.get("value"):
                raise PatchError(f"JSON patch test failed at {path}")
            continue
        doc = _apply_op(doc, kind, _pointer(path), clone(op.get("value")))
    return doc


def _get(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for part in parts:
        if isinstance(cur, list):
            try:
                cur = cur[int(part)]
            except (ValueError, IndexError):
                raise PatchError(f"JSON patch path element {part!r} is not an index of the list") from None
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise PatchError(f"JSON patch path element {part!r} does not exist")
    return cur


def _apply_op(doc: Any, kind: str, parts: list[str], value: Any) -> Any:
    if not parts:
        if kind == "remove":
            return None
        return value
    parent = _get(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-" and kind == "add":
            parent.append(value)
            return doc
        try:
            idx = int(last)
        except ValueError:
            raise PatchError(f"JSON patch index {last!r} is not a number") from None
        if kind == "add":
            if idx > len(parent):
                raise PatchError(f"JSON patch index {idx} is out of range")
            parent.insert(idx, value)
        elif idx >= len(parent):
            raise PatchError(f"JSON patch index {idx} is out of range (the list has {len(parent)} items)")
        elif kind == "remove":
            parent.pop(idx)
        else:
            parent[idx] = value
        return doc
    if not isinstance(parent, dict):
        raise PatchError(f"JSON patch path element {last!r} has no parent object")
    if kind in ("remove", "replace") and last not in parent:
        raise PatchError(f"JSON patch {kind}: path element {last!r} does not exist")
    if kind == "remove":
        del parent[last]
    else:
        parent[last] = value
    return doc


# -- time and names -------------------------------------------------------------------

def rfc3339(t: float) -> str:
    """Virtual seconds since the Unix epoch → ``2019-10-09T10:00:00Z`` (the API's timestamp form)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def parse_rfc3339(text: str) -> float:
    import calendar

    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

#: The characters Kubernetes uses for generated names (``k8s.io/apimachinery`` util/rand: no vowels, no 0/1/3).
SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: map each byte onto :data:`SAFE_ALPHANUMS` (pod-template-hash form)."""
    return "".join(SAFE_ALPHANUMS[b % len(SAFE_ALPHANUMS)] for b in text.encode())


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: dict, collision_count: int = 0) -> str:
    """The ``pod-template-hash`` of a Deployment's pod template, computed like the deployment controller.

    Kubernetes hashes the template with FNV-32a and writes the decimal hash
    through ``SafeEncodeString``, which is why real hashes only use the
    characters ``4-9 b c d f`` and are at most 10 long (``7cf4784dd8``). The
    bytes hashed here are canonical JSON rather than Go's object dump, so the
    values differ from a real cluster's but are just as stable.
    """
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    cached = _HASHES.get(data)
    if cached is None:
        if len(_HASHES) > 4096:
            _HASHES.clear()
        cached = _HASHES[data] = safe_encode(str(fnv32a(data)))
    return cached


#: template bytes → hash; controllers re-hash the same few templates on every reconcile.
_HASHES: dict[bytes, str] = {}


def parse_quantity_weight(value: Any) -> float:
    """A TrafficSplit weight: ``900m`` → 0.9, ``1`` → 1, ``500`` → 500."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", text)
    if not m:
        raise ValueError(f"{value!r} is not a quantity (use e.g. 900m, 1 or 100)")
    return float(m.group(1)) / (1000 if m.group(2) else 1)


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """``25%`` of ``total`` (rounded up for maxSurge, down for maxUnavailable) or a plain integer."""
    if isinstance(value, str) and value.endswith("%"):
        pct = float(value[:-1])
        raw = total * pct / 100.0
        import math

        return int(math.ceil(raw - 1e-9)) if round_up else int(math.floor(raw + 1e-9))
    return int(value)
