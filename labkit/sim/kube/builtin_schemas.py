"""The built-in kinds' OpenAPI, and the API server's decoding of a request body against it.

kube-apiserver decodes a built-in kind (Deployment, Service, ConfigMap...)
into its Go struct before anything else. That step alone refuses a value of
the wrong type — ``Deployment in version "v1" cannot be handled as a
Deployment: json: cannot unmarshal string into Go struct field
DeploymentSpec.spec.replicas of type int32`` — and, under strict field
validation, any field the struct does not have (``strict decoding error:
unknown field "spec.replica"``); under ``Warn``/``Ignore`` such fields are
dropped. The struct's shape is what Kubernetes publishes as its OpenAPI, so
the embedded API server decodes against the published OpenAPI of the
modelled version, 1.32, as the ``kubernetes-validate`` package ships it
(``kubernetes-json-schema/v1.32.0-local-strict``: every field of every kind,
``additionalProperties: false`` on every struct, ``$ref`` s by Go type name).

Why that package rather than the ``kubernetes`` client's models: the models
know each field's name and Python type but not the Go types behind them
(int32 vs int64, IntOrString, Quantity, named structs) that the decoder's
messages print, nor which maps are free-form; importing ``kubernetes`` also
takes about a second and belongs to the kube backend only. The package is
never imported (it would pull in ``jsonschema``): only its JSON files are
read, each kind's once, on first use.

What the OpenAPI cannot say — required fields, enumerations, DNS names,
label syntax, immutable fields — kube-apiserver checks in Go, after
decoding; that lives in :mod:`labkit.sim.kube.apiserver_rules`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from labkit.k8s import go_json_kind

#: The Kubernetes minor version whose OpenAPI the embedded API server decodes with (cluster.KUBERNETES_VERSION).
SCHEMA_DIR = "v1.32.0-local-strict"
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_INT_RANGES = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


@lru_cache(maxsize=1)
def _root() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes-validate package is missing: pip install 'kubernetes-validate>=1.32' "
                           "(it carries the built-in kinds' OpenAPI the embedded API server decodes with)")
    return Path(list(spec.submodule_search_locations)[0]) / "kubernetes-json-schema" / SCHEMA_DIR


@lru_cache(maxsize=1)
def definitions() -> dict[str, dict]:
    """Every Go type of the API, by its OpenAPI name (``io.k8s.api.apps.v1.DeploymentSpec``): read once."""
    with open(_root() / "_definitions.json", encoding="utf-8") as f:
        return json.load(f)["$defs"]


@lru_cache(maxsize=128)
def kind_schema(api_version: str, kind: str) -> dict | None:
    """The top-level schema of ``kind`` in ``api_version`` (None if Kubernetes 1.32 has no such built-in)."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _root() / f"{kind.lower()}-{group_version}.json"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    for gvk in schema.get("x-kubernetes-group-version-kind") or ():
        if gvk.get("kind") == kind:
            return schema
    return None


def _ref_name(schema: dict) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _go_name(definition: str) -> str:
    """``io.k8s.api.apps.v1.DeploymentSpec`` → ``v1.DeploymentSpec`` (package and type, as Go prints a type)."""
    parts = definition.split(".")
    return f"{parts[-2]}.{parts[-1]}"


def _types(schema: dict) -> list[str]:
    kind = schema.get("type") or []
    return [t for t in (kind if isinstance(kind, list) else [kind]) if t != "null"]


def go_type(schema: dict) -> str:
    """The Go type a schema node decodes into, as ``reflect.Type.String()`` prints it."""
    name = _ref_name(schema)
    if name:
        if name.endswith("v1.ResourceList"):
            return "v1.ResourceList"
        return _go_name(name)
    types = _types(schema)
    kind = types[0] if types else ""
    if kind == "string":
        return "[]uint8" if schema.get("format") == "byte" else "string"
    if kind == "integer":
        return schema.get("format") or "int64"
    if kind == "number":
        return "float64"
    if kind == "boolean":
        return "bool"
    if kind == "array":
        return "[]" + go_type(schema.get("items") or {})
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        value = schema["additionalProperties"]
        if _ref_name(value) == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            return "v1.ResourceList"
        return "map[string]" + go_type(value)
    return "map[string]interface {}"


def _number_text(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@dataclass
class Decoded:
    """What decoding found: the first decode error (it alone is reported), then the strict-decoding problems."""

    error: str | None = None
    strict: list[str] = field(default_factory=list)


class _Stop(Exception):
    pass


@dataclass
class _Walk:
    duplicates: frozenset
    drop: bool
    out: Decoded

    def fail(self, message: str) -> None:
        self.out.error = message
        raise _Stop

    def type_error(self, value: Any, struct: str, stack: list[str], gotype: str, kind: str | None = None) -> None:
        self.fail(f"json: cannot unmarshal {kind or go_json_kind(value)} into Go struct field "
                  f"{struct}.{'.'.join(stack)} of type {gotype}")

    def node(self, value: Any, schema: dict, struct: str, stack: list[str], path: str) -> None:
        if value is None:
            return  # JSON null leaves the Go zero value
        name = _ref_name(schema)
        if name:
            if name.endswith("util.intstr.IntOrString"):
                return self.int_or_string(value)
            if name.endswith("api.resource.Quantity"):
                if isinstance(value, str):
                    if not _QUANTITY.match(value):
                        self.fail(QUANTITY_ERROR)
                elif isinstance(value, bool) or not isinstance(value, (int, float)):
                    self.fail(QUANTITY_ERROR)
                return None
            if name.endswith("meta.v1.Time") or name.endswith("meta.v1.MicroTime"):
                if not isinstance(value, str):
                    self.fail(f"json: cannot unmarshal {go_json_kind(value)} into Go value of type string")
                if value and not _RFC3339.fullmatch(value):
                    self.fail(f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse "{value}" as "2006"')
                return None
            target = definitions().get(name) or {}
            if not isinstance(value, dict) and "object" in _types(target):
                self.type_error(value, struct, stack, _go_name(name))
            return self.node(value, target, name.rsplit(".", 1)[-1] if "properties" in target else struct, stack, path)
        types = _types(schema)
        if not types:
            return None
        kind = types[0]
        gotype = go_type(schema)
        if kind == "object":
            if not isinstance(value, dict):
                self.type_error(value, struct, stack, gotype)
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            for key, item in list(value.items()):
                child = f"{path}.{key}" if path else str(key)
                if props is not None and key in props:
                    if child in self.duplicates:
                        self.out.strict.append(f'duplicate field "{child}"')
                    self.node(item, props[key], struct, stack + [str(key)], child)
                elif isinstance(extra, dict):
                    if child in self.duplicates:
                        self.out.strict.append(f'duplicate field "{child}"')
                    self.node(item, extra, struct, stack, child)
                elif props is not None or extra is False:
                    self.out.strict.append(f'unknown field "{child}"')
                    if self.drop:
                        del value[key]
            return None
        if kind == "array":
            if not isinstance(value, list):
                self.type_error(value, struct, stack, gotype)
            items = schema.get("items") or {}
            for i, item in enumerate(value):
                self.node(item, items, struct, stack, f"{path}[{i}]")
            return None
        if kind == "string":
            if not isinstance(value, str):
                self.type_error(value, struct, stack, gotype)
            return None
        if kind == "boolean":
            if not isinstance(value, bool):
                self.type_error(value, struct, stack, gotype)
            return None
        if kind in ("integer", "number"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.type_error(value, struct, stack, gotype)
            if kind == "integer":
                low, high = _INT_RANGES.get(schema.get("format") or "int64", _INT_RANGES["int64"])
                if (isinstance(value, float) and not value.is_integer()) or not low <= value <= high:
                    self.type_error(value, struct, stack, gotype, f"number {_number_text(value)}")
        return None

    def int_or_string(self, value: Any) -> None:
        """``intstr.IntOrString.UnmarshalJSON``: a JSON string, else the value decoded as an int32."""
        if isinstance(value, str):
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"json: cannot unmarshal {go_json_kind(value)} into Go value of type int32")
        if (isinstance(value, float) and not value.is_integer()) or not -2**31 <= value <= 2**31 - 1:
            self.fail(f"json: cannot unmarshal number {_number_text(value)} into Go value of type int32")


def decode(obj: dict, schema: dict, *, duplicates: tuple[str, ...] = (), drop: bool = True) -> Decoded:
    """Decode ``obj`` against a kind's schema as kube-apiserver's JSON decoder does.

    Returns the first type error (Go's decoder reports the earliest) or else the
    strict-decoding findings (``unknown field "..."``, ``duplicate field "..."``)
    in document order. With ``drop``, unknown fields are removed from ``obj``
    (the typed decoder never keeps them).
    """
    out = Decoded()
    walk = _Walk(frozenset(duplicates), drop, out)
    kind = (schema.get("x-kubernetes-group-version-kind") or [{}])[0].get("kind", "")
    try:
        walk.node(obj, schema, kind, [], "")
    except _Stop:
        out.strict = []
    return out
