"""The served API's OpenAPI v3 (``/openapi/v3``), built from the schemas the embedded API server validates with.

``kubectl explain`` reads ``/openapi/v3`` (an index of group-versions, each
with a hash) and then the group-version's document, where it finds the kind's
schema by its ``x-kubernetes-group-version-kind`` and walks the field path
through ``properties``, ``items``, ``additionalProperties`` and ``$ref`` s.
So the documents are made of the same schemas that judge an apply:

- a built-in kind is Kubernetes 1.32's published OpenAPI as the
  ``kubernetes-validate`` package ships it (:mod:`labkit.sim.kube.builtin_schemas`),
  turned back from its JSON Schema form into OpenAPI v3 (one ``type`` rather
  than ``[type, "null"]``, ``$ref`` s to ``#/components/schemas/`` wrapped in a
  one-element ``allOf`` so a field keeps its own description, IntOrString and
  Quantity as the API server publishes them), with the descriptions the
  package ships;
- a custom resource is the ``openAPIV3Schema`` of the CRD stored in the
  cluster, for each served version, with ``apiVersion``, ``kind`` and
  ``metadata`` as kube-apiserver adds them (ObjectMeta by ``$ref``). A CRD a
  user applies is therefore explained too, and the group-version's hash changes
  when the CRD does. The CRDs labkit installs carry no descriptions (its CRD
  data is stored with them stripped), so their fields show with types, enums
  and defaults but without prose.

A kind with neither (none today) keeps a bare top-level schema.

Each kind's path has its GET operation and a PATCH operation that declares the
``fieldValidation`` query parameter: kubectl looks for it to know the server
validates fields itself, and then sends ``fieldValidation=Strict|Warn|Ignore``
instead of validating client side. The PATCH accepts no strategic merge patch
(as for a custom resource), so ``kubectl apply`` does not compute patch
metadata from these documents and keeps using its built-in metadata, which
knows every list's merge key.

Documents are built on first request and cached by what they are made of (the
group-version's kinds, and a digest of each CRD's spec), so serving starts no
slower and a repeated ``kubectl explain`` costs a few milliseconds.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache

META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_COMPONENTS = "#/components/schemas/"
#: How kube-apiserver publishes the two scalar types the JSON Schema form spells as a oneOf.
_SCALARS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"oneOf": [{"type": "integer"}, {"type": "string"}], "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
}


def _path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def group_versions(types) -> dict[str, list]:
    out: dict[str, list] = {}
    for rtype in types:
        for version in rtype.versions:
            out.setdefault(_path(rtype.group, version), []).append(rtype)
    return out


# -- built-in kinds: kubernetes-validate's JSON Schema → OpenAPI v3 ----------------------------------------------
def _ref_target(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _to_openapi(node):
    """One JSON Schema node of the package's form as the API server's OpenAPI v3 node."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$ref":
            continue
        if key == "type":
            kinds = [t for t in (value if isinstance(value, list) else [value]) if t != "null"]
            if kinds:
                out["type"] = kinds[0]
        elif key == "properties":
            out[key] = {name: _to_openapi(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            if value is not False:  # the "strict" variant closes every struct; OpenAPI leaves that unsaid
                out[key] = _to_openapi(value)
        elif key in ("allOf", "oneOf", "anyOf"):
            out[key] = [_to_openapi(sub) for sub in value]
        else:
            out[key] = value
    if "$ref" in node:
        out["allOf"] = [{"$ref": _COMPONENTS + _ref_target(node["$ref"])}]
    return out


def _refs(node, found: set) -> None:
    if isinstance(node, dict):
        if "$ref" in node:
            found.add(_ref_target(node["$ref"]))
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


@lru_cache(maxsize=None)
def _closure(name: str) -> tuple[str, ...]:
    """``name`` and every definition it reaches through ``$ref`` s, sorted."""
    from labkit.sim.kube.builtin_schemas import definitions

    defs = definitions()
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in defs:
            continue
        seen.add(current)
        found: set[str] = set()
        _refs(defs[current], found)
        todo.extend(found - seen)
    return tuple(sorted(seen))


@lru_cache(maxsize=None)
def _component(name: str) -> dict:
    from labkit.sim.kube.builtin_schemas import definitions

    source = definitions()[name]
    if name in _SCALARS:
        return dict(_SCALARS[name], **({"description": source["description"]} if "description" in source else {}))
    return _to_openapi(source)


@lru_cache(maxsize=1)
def _builtin_names() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) → the definition name of that built-in kind in Kubernetes 1.32."""
    from labkit.sim.kube.builtin_schemas import definitions

    out = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            out.setdefault((gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")), name)
    return out


def _standard(field: str) -> dict:
    """How kube-apiserver describes ``apiVersion``/``kind``/``metadata`` of every kind (1.32's own words)."""
    from labkit.sim.kube.builtin_schemas import definitions

    schema = _to_openapi(definitions()["io.k8s.api.core.v1.ConfigMap"]["properties"][field])
    schema.pop("enum", None)
    return schema


# -- custom resources: the stored CRD's openAPIV3Schema -----------------------------------------------------------
def _crd_name(group: str, version: str, kind: str) -> str:
    """kube-openapi's name for a CRD kind's schema: the group reversed (``io.linkerd.policy.v1beta3.HTTPRoute``)."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _crd_component(rtype, version: str, schema: dict | None) -> dict:
    out = json.loads(json.dumps(schema)) if schema else {"type": "object"}
    props = out.setdefault("properties", {})
    for field in ("apiVersion", "kind", "metadata"):
        props[field] = _standard(field)
    out.setdefault("type", "object")
    out["x-kubernetes-group-version-kind"] = [{"group": rtype.group, "kind": rtype.kind, "version": version}]
    return out


def _bare_component(rtype, version: str) -> dict:
    return {"description": f"{rtype.kind} ({rtype.group}/{version}), served by the embedded mesh.",
            "type": "object", "properties": {f: _standard(f) for f in ("apiVersion", "kind", "metadata")},
            "x-kubernetes-group-version-kind": [{"group": rtype.group, "kind": rtype.kind, "version": version}]}


# -- documents ----------------------------------------------------------------------------------------------------
def _operations(path: str, rtype, name: str, version: str) -> tuple[str, dict]:
    scope = "namespaces/{namespace}/" if rtype.namespaced else ""
    gvk = {"group": rtype.group, "version": version, "kind": rtype.kind}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": _COMPONENTS + name}}}}}
    return f"/{path}/{scope}{rtype.plural}/{{name}}", {
        "get": {"description": f"read the specified {rtype.kind}", "x-kubernetes-group-version-kind": gvk,
                "responses": ok},
        "patch": {"description": f"partially update the specified {rtype.kind}", "x-kubernetes-group-version-kind": gvk,
                  "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
                                  "description": "Strict, Warn or Ignore: what to do with unknown or duplicate "
                                                 "fields in the request"}],
                  "requestBody": {"content": {media: {"schema": {"type": "object"}} for media in (
                      "application/json-patch+json", "application/merge-patch+json",
                      "application/apply-patch+yaml")}},
                  "responses": ok},
    }


def _build(path: str, members: tuple, crd_schemas: dict) -> dict:
    version = path.rsplit("/", 1)[1]
    names = _builtin_names()
    schemas: dict[str, dict] = {}
    wanted = {META}
    paths = {}
    for rtype in members:
        builtin = names.get((rtype.group, version, rtype.kind)) if rtype.crd is None else None
        if builtin is not None:
            name = builtin
            wanted.update(_closure(builtin))
        elif rtype.crd is not None:
            name = _crd_name(rtype.group, version, rtype.kind)
            schemas[name] = _crd_component(rtype, version, crd_schemas.get((rtype.crd, version)))
        else:
            name = _crd_name(rtype.group or "core", version, rtype.kind)
            schemas[name] = _bare_component(rtype, version)
        key, ops = _operations(path, rtype, name, version)
        paths[key] = ops
    for name in sorted(wanted | set(_closure(META))):
        schemas.setdefault(name, _component(name))
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (labkit embedded mesh)", "version": "v1.32.2"},
            "paths": paths, "components": {"schemas": dict(sorted(schemas.items()))}}


_DOCS: dict[tuple, dict] = {}


def _fingerprint(crd: dict | None) -> str | None:
    """A digest of a CRD's spec: not its resourceVersion, which two meshes in one process can share for
    different CRDs (the cache is per process). About 3 ms for every CRD labkit installs."""
    if crd is None:
        return None
    return hashlib.sha256(json.dumps(crd.get("spec"), sort_keys=True).encode()).hexdigest()


def _key(path: str, members, crds: dict) -> tuple:
    """What a group-version's document is made of: its kinds, and each CRD's spec."""
    return (path, tuple((r.group, r.kind, r.plural, r.namespaced, r.versions, r.crd, _fingerprint(crds.get(r.crd)))
                        for r in members))


def _digest(key: tuple) -> str:
    """The index's hash: of the document's ingredients, so the index needs no document built (kubectl re-reads a
    group-version exactly when its hash changes)."""
    return hashlib.sha256(repr(key).encode()).hexdigest()[:16].upper()


def _cached(path: str, members: list, crds: dict) -> dict:
    key = _key(path, members, crds)
    doc = _DOCS.get(key)
    if doc is None:
        schemas = {}
        for rtype in members:
            for entry in ((crds.get(rtype.crd) or {}).get("spec") or {}).get("versions") or []:
                schemas[(rtype.crd, entry.get("name"))] = (entry.get("schema") or {}).get("openAPIV3Schema")
        doc = _DOCS[key] = _build(path, tuple(members), schemas)
        if len(_DOCS) > 64:  # CRDs applied over and over: forget the oldest documents
            for stale in list(_DOCS)[:32]:
                del _DOCS[stale]
    return doc


def document(types, path: str, crds: dict | None = None) -> dict | None:
    """The OpenAPI v3 document of one group-version (``api/v1``, ``apis/apps/v1``), or None.

    ``crds`` maps a CRD's name to the CRD object stored in the cluster (its
    versions' ``openAPIV3Schema``).
    """
    members = group_versions(types).get(path)
    if members is None:
        return None
    return _cached(path, members, crds or {})


def index(types, crds: dict | None = None) -> dict:
    """``/openapi/v3``: each group-version's document by path, with a hash that changes with its content."""
    out = {}
    for path, members in sorted(group_versions(types).items()):
        digest = _digest(_key(path, members, crds or {}))
        out[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": out}
