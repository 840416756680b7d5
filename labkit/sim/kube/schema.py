"""Structural schemas: how the API server prunes, defaults and validates a custom resource.

A CustomResourceDefinition's ``openAPIV3Schema`` (for the version the object
is written in) is the whole contract of its kind. The embedded API server
reads it from the CRD stored in the cluster — so the real Linkerd, Gateway
API, linkerd-smi and Flagger CRDs are honoured, and so is any CRD a learner
applies — and does what kube-apiserver does with it, in its order:

1. **prune** (decoding): fields the schema does not know are dropped;
   under strict field validation they are the request's error instead
   (``unknown field "spec.foo"``), under ``Warn`` a warning each. A node
   with ``x-kubernetes-preserve-unknown-fields`` keeps them; an
   ``x-kubernetes-embedded-resource`` keeps ``apiVersion``, ``kind`` and
   ``metadata``; the object's own ``apiVersion``/``kind``/``metadata`` are
   always kept (``metadata`` as an ObjectMeta);
2. **default**: a missing property with a ``default`` gets a copy of it;
3. **validate** as kube-openapi does, with its messages: type (with
   ``nullable`` and ``x-kubernetes-int-or-string``), ``allOf``/``anyOf``/
   ``oneOf``/``not``, ``maxLength``/``minLength``/``pattern`` (RE2, as Go's
   ``regexp``), the string ``format`` s the API server checks, ``minimum``/
   ``maximum`` (and exclusive), ``minItems``/``maxItems``, ``enum``,
   ``maxProperties``, ``required``; then the ``x-kubernetes-list-type``
   ``set``/``map`` invariants;
4. **CEL**: the ``x-kubernetes-validations`` rules of every node, evaluated by
   :func:`labkit.sim.kube.cel.check_rules` after defaulting, and only when no
   type or enum error came first (the API server's rule).

Errors are :class:`~labkit.sim.kube.fielderrors.FieldError` s worded like
the API server's: ``spec.port: Invalid value: 70000: spec.port in body should
be less than or equal to 65535``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from labkit.k8s import clone, json_type
from labkit.sim.kube import fielderrors as fe
from labkit.sim.kube.fielderrors import FieldError

#: The fields of ObjectMeta (what ``metadata`` of any object may hold).
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
    "managedFields",
})
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# -- 1. pruning ---------------------------------------------------------------------------------------

def prune(value: Any, schema: dict | None, *, root: bool = True, drop: bool = True) -> list[str]:
    """Unknown field paths of ``value`` under ``schema``, sorted; with ``drop`` they are removed (in place)."""
    unknown: list[str] = []
    if root and isinstance(value, dict):
        md = value.get("metadata")
        if isinstance(md, dict):
            _prune_meta(md, "metadata", unknown, drop)
        _prune(value, schema or {}, "", unknown, drop, skip=_ROOT_FIELDS)
    else:
        _prune(value, schema or {}, "", unknown, drop)
    return sorted(unknown)


def _prune_meta(md: dict, path: str, unknown: list[str], drop: bool) -> None:
    for key in [k for k in md if k not in OBJECT_META_FIELDS]:
        unknown.append(_child(path, key))
        if drop:
            del md[key]


def _prune(value: Any, schema: dict, path: str, unknown: list[str], drop: bool, skip: tuple = ()) -> None:
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        if embedded:
            md = value.get("metadata")
            if isinstance(md, dict):
                _prune_meta(md, _child(path, "metadata"), unknown, drop)
        for key in list(value):
            if key in skip or (embedded and key in _ROOT_FIELDS):
                continue
            sub = (props or {}).get(key)
            if sub is None and isinstance(extra, dict):
                sub = extra
            if sub is not None:
                _prune(value[key], sub, _child(path, str(key)), unknown, drop)
            elif not (preserve or extra is True or not schema):
                unknown.append(_child(path, str(key)))
                if drop:
                    del value[key]
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune(item, items, f"{path}[{i}]", unknown, drop)


# -- 2. defaulting ------------------------------------------------------------------------------------------

def default(value: Any, schema: dict | None) -> None:
    """Fill in missing properties that have a ``default`` (in place), recursively, as structural defaulting does."""
    if not schema:
        return
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = clone(sub["default"])
        for key, item in value.items():
            sub = props.get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                default(item, sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            default(item, schema["items"])


# -- 3. validation --------------------------------------------------------------------------------------------

@dataclass
class CelNode:
    """A node whose schema carries ``x-kubernetes-validations``, met during validation (evaluated last)."""

    path: str
    rules: list
    value: Any
    old: Any
    schema: dict


@dataclass
class Validation:
    errors: list[FieldError] = field(default_factory=list)
    cel: list[CelNode] = field(default_factory=list)


_MISSING = object()


def validate(value: Any, schema: dict, *, old: Any = _MISSING) -> Validation:
    """Every schema error of ``value`` (kube-openapi's checks and messages), plus the CEL nodes met on the way."""
    out = Validation()
    out.errors += _node(value, schema, "", old, out.cel)
    return out


def _node(value: Any, schema: dict, path: str, old: Any, cel: list | None) -> list[FieldError]:
    """kube-openapi's validators for one node, in its order: type, allOf/anyOf/oneOf/not, string, format, number,
    array, enum, object."""
    errors: list[FieldError] = []
    if not schema:
        return errors
    if value is None:
        types = _types(schema)
        if types and not schema.get("nullable"):
            errors.append(fe.type_invalid(path or "<nil>", "null",
                                          f"{path} in body must be of type {','.join(types)}: \"null\""))
        return errors
    types = _types(schema)
    actual = json_type(value)
    if types and not _type_ok(actual, value, types):
        errors.append(fe.type_invalid(path or "<nil>", actual,
                                      f"{path} in body must be of type {','.join(types)}: \"{actual}\""))
        return errors  # the other checks would only repeat it
    if cel is not None and schema.get("x-kubernetes-validations"):
        cel.append(CelNode(path, schema["x-kubernetes-validations"], value, old, schema))
    errors += _composition(value, schema, path)
    if isinstance(value, str):
        errors += _string(value, schema, path)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        errors += _number(value, schema, path)
    elif isinstance(value, list):
        errors += _array(value, schema, path, old, cel)
    if "enum" in schema and schema["enum"] is not None and not _in_enum(value, schema["enum"]):
        errors.append(fe.not_supported(path or "<nil>", value, [v if isinstance(v, str) else _json(v) for v in schema["enum"]]))
    if isinstance(value, dict):
        errors += _object(value, schema, path, old, cel)
    return errors


def _types(schema: dict) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    kind = schema.get("type")
    if not kind:
        return []
    return list(kind) if isinstance(kind, list) else [kind]


def _type_ok(actual: str, value: Any, types: list[str]) -> bool:
    if actual in types:
        return True
    if actual == "integer" and "number" in types:
        return True
    return actual == "number" and "integer" in types and float(value).is_integer()


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _in_enum(value: Any, enum: list) -> bool:
    for allowed in enum:
        if type(allowed) is type(value) and allowed == value:
            return True
        if isinstance(allowed, (int, float)) and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and not isinstance(allowed, bool) and allowed == value:
            return True
    return False


def _composition(value: Any, schema: dict, path: str) -> list[FieldError]:
    """``anyOf``, ``oneOf``, ``allOf`` and ``not``: their errors have no field (``<nil>``), as the API server's."""
    errors: list[FieldError] = []
    quoted = fe.go_quote(path)
    if schema.get("anyOf"):
        results = [_node(value, sub, path, _MISSING, None) for sub in schema["anyOf"]]
        if not any(not r for r in results):
            errors.append(fe.invalid("<nil>", "", f"{quoted} must validate at least one schema (anyOf)"))
            errors += min(results, key=len)
    if schema.get("oneOf"):
        results = [_node(value, sub, path, _MISSING, None) for sub in schema["oneOf"]]
        valid = sum(1 for r in results if not r)
        if valid != 1:
            more = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            errors.append(fe.invalid("<nil>", "", f"{quoted} must validate one and only one schema (oneOf). {more}"))
            if valid == 0:
                errors += min(results, key=len)
    if schema.get("allOf"):
        results = [_node(value, sub, path, _MISSING, None) for sub in schema["allOf"]]
        for r in results:
            errors += r
        valid = sum(1 for r in results if not r)
        if valid != len(results):
            more = ". None validated" if valid == 0 else ""
            errors.append(fe.invalid("<nil>", "", f"{quoted} must validate all the schemas (allOf){more}"))
    if isinstance(schema.get("not"), dict) and not _node(value, schema["not"], path, _MISSING, None):
        errors.append(fe.invalid("<nil>", "", f"{quoted} must not validate the schema (not)"))
    return errors


@lru_cache(maxsize=1024)
def _pattern(pattern: str):
    import re2

    opts = re2.Options()
    opts.log_errors = False
    return re2.compile(pattern, options=opts)


def _string(value: str, schema: dict, path: str) -> list[FieldError]:
    where = path or "<nil>"
    length = len(value)  # runes, as kube-openapi counts them
    if schema.get("maxLength") is not None and length > schema["maxLength"]:
        return [fe.too_long(where, int(schema["maxLength"]))]
    if schema.get("minLength") is not None and length < schema["minLength"]:
        return [fe.invalid(where, value, f"{path} in body should be at least {schema['minLength']} chars long")]
    if schema.get("pattern"):
        try:
            matched = _pattern(schema["pattern"]).search(value) is not None
        except Exception:  # noqa: BLE001 - a pattern RE2 cannot compile was refused when the CRD was created
            matched = True
        if not matched:
            return [fe.invalid(where, value, f"{path} in body should match '{schema['pattern']}'")]
    fmt = schema.get("format")
    if fmt and fmt in FORMATS and not FORMATS[fmt](value):
        return [fe.type_invalid(where, value, f"{path} in body must be of type {fmt}: {fe.go_quote(value)}")]
    return []


def _bound(limit: Any, value: Any) -> str:
    """A min/max bound as the message prints it: an integer for integer data, Go's float otherwise."""
    if isinstance(value, int) and float(limit).is_integer():
        return str(int(limit))
    return fe.go_float(float(limit))


def _number(value: float, schema: dict, path: str) -> list[FieldError]:
    errors = []
    where = path or "<nil>"
    if schema.get("multipleOf"):
        factor = schema["multipleOf"]
        if factor and (value / factor) != int(value / factor):
            errors.append(fe.invalid(where, value, f"{path} in body should be a multiple of {_bound(factor, value)}"))
    if schema.get("maximum") is not None:
        limit, exclusive = schema["maximum"], bool(schema.get("exclusiveMaximum"))
        if value > limit or (exclusive and value == limit):
            word = "less than" if exclusive else "less than or equal to"
            errors.append(fe.invalid(where, value, f"{path} in body should be {word} {_bound(limit, value)}"))
    if schema.get("minimum") is not None:
        limit, exclusive = schema["minimum"], bool(schema.get("exclusiveMinimum"))
        if value < limit or (exclusive and value == limit):
            word = "greater than" if exclusive else "greater than or equal to"
            errors.append(fe.invalid(where, value, f"{path} in body should be {word} {_bound(limit, value)}"))
    return errors


def _array(value: list, schema: dict, path: str, old: Any, cel: list | None) -> list[FieldError]:
    errors: list[FieldError] = []
    items = schema.get("items")
    if isinstance(items, dict):
        olds = _old_items(value, old, schema)
        for i, item in enumerate(value):
            errors += _node(item, items, f"{path}[{i}]", olds[i], cel)
    where = path or "<nil>"
    if schema.get("minItems") is not None and len(value) < schema["minItems"]:
        errors.append(fe.invalid(where, len(value), f"{path} in body should have at least {schema['minItems']} items"))
    if schema.get("maxItems") is not None and len(value) > schema["maxItems"]:
        errors.append(fe.too_many(where, len(value), int(schema["maxItems"])))
    if schema.get("uniqueItems") and len({_json(v) for v in value}) != len(value):
        errors.append(fe.invalid(where, fe.GoText(""), f"{path} in body shouldn't contain duplicates"))
    return errors


def _old_items(value: list, old: Any, schema: dict) -> list:
    """The old value of each item, for CEL transition rules: list-type ``map`` items correlate by key."""
    missing = [_MISSING] * len(value)
    if not isinstance(old, list) or schema.get("x-kubernetes-list-type") != "map":
        return missing
    keys = schema.get("x-kubernetes-list-map-keys") or []
    by_key = {tuple(_json(o.get(k)) for k in keys): o for o in old if isinstance(o, dict)}
    return [by_key.get(tuple(_json(v.get(k)) for k in keys), _MISSING) if isinstance(v, dict) else _MISSING
            for v in value]


def _object(value: dict, schema: dict, path: str, old: Any, cel: list | None) -> list[FieldError]:
    errors: list[FieldError] = []
    where = path or "<nil>"
    if schema.get("maxProperties") is not None and len(value) > schema["maxProperties"]:
        errors.append(fe.too_many(where, len(value), int(schema["maxProperties"])))
    if schema.get("minProperties") is not None and len(value) < schema["minProperties"]:
        errors.append(fe.invalid(where, len(value), f"{path} in body should have at least {schema['minProperties']} properties"))
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    olds = old if isinstance(old, dict) else {}
    for key, item in value.items():
        sub = props.get(key)
        if sub is None and isinstance(extra, dict):
            sub = extra
        if sub is not None:
            errors += _node(item, sub, _child(path, str(key)), olds.get(key, _MISSING), cel)
    for key in schema.get("required") or ():
        if key not in value:
            errors.append(fe.required(_child(path, key)))
    return errors


# -- list-type set and map ----------------------------------------------------------------------------------

def list_errors(value: Any, schema: dict | None, path: str = "") -> list[FieldError]:
    """``x-kubernetes-list-type``: ``set`` items and ``map`` keys must be unique (``Duplicate value``)."""
    errors: list[FieldError] = []
    if not schema:
        return errors
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) or (extra if isinstance(extra, dict) else None)
            if sub:
                errors += list_errors(item, sub, _child(path, str(key)))
    elif isinstance(value, list):
        kind = schema.get("x-kubernetes-list-type")
        if kind == "set":
            seen: set = set()
            for i, item in enumerate(value):
                key = _json(item)
                if key in seen:
                    errors.append(fe.duplicate(f"{path}[{i}]", item))
                seen.add(key)
        elif kind == "map":
            names = schema.get("x-kubernetes-list-map-keys") or []
            seen = set()
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                key = tuple(_json(item.get(k)) for k in names)
                if key in seen:
                    shown = {k: item[k] for k in names if k in item}
                    errors.append(fe.duplicate(f"{path}[{i}]", fe.GoText(fe.go_syntax(shown))))
                seen.add(key)
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                errors += list_errors(item, items, f"{path}[{i}]")
    return errors


def has_rules(schema: Any) -> bool:
    """Does any node of ``schema`` carry ``x-kubernetes-validations``? (then the CRD has a CEL validator)."""
    if isinstance(schema, dict):
        if schema.get("x-kubernetes-validations"):
            return True
        return any(has_rules(v) for v in schema.values() if isinstance(v, (dict, list)))
    if isinstance(schema, list):
        return any(has_rules(v) for v in schema)
    return False


# -- formats the API server checks ---------------------------------------------------------------------------

def _is_duration(text: str) -> bool:
    """strfmt's duration: Go's ``time.ParseDuration``, or ``<n><unit>`` runs with units up to days and weeks."""
    import re

    if re.fullmatch(r"[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+|[-+]?0", text):
        return True
    if not re.fullmatch(r"\s*(?:\d+\s*[A-Za-zµ]+\s*)+", text):
        return False
    units = (("ns", "nano"), ("us", "µs", "micro"), ("ms", "milli"), ("s", "sec"), ("m", "min"), ("h", "hr", "hour"),
             ("d", "day"), ("w", "wk", "week"))
    ok = False
    for _, unit in re.findall(r"(\d+)\s*([A-Za-zµ]+)", text):
        unit = unit.lower()
        for variants in units:
            if any(unit == v or (i == len(variants) - 1 and unit.startswith(v)) for i, v in enumerate(variants)):
                ok = True
    return ok


def _is_datetime(text: str) -> bool:
    import re

    return re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", text) is not None


def _is_ip(text: str, version: int | None = None) -> bool:
    import ipaddress

    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version is None or ip.version == version


def _is_cidr(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


def _is_uuid(text: str) -> bool:
    import re

    return re.fullmatch(r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", text) is not None


def _is_base64(text: str) -> bool:
    import base64
    import binascii

    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_hostname(text: str) -> bool:
    import re

    return len(text) <= 255 and all(len(p) <= 63 for p in text.split(".")) and re.fullmatch(
        r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*", text) is not None


#: ``format`` → check, for the formats the API server validates (others are ignored, as it ignores them).
FORMATS: dict[str, Callable[[str], bool]] = {
    "duration": _is_duration,
    "date-time": _is_datetime,
    "datetime": _is_datetime,
    "ipv4": lambda t: _is_ip(t, 4),
    "ipv6": lambda t: _is_ip(t, 6),
    "cidr": _is_cidr,
    "uuid": _is_uuid,
    "byte": _is_base64,
    "hostname": _is_hostname,
}
