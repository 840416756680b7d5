"""A small OpenAPI v3 document for ``kubectl explain``: every kind the embedded mesh serves, briefly described.

``kubectl explain`` reads ``/openapi/v3`` (an index of group-versions) and
then the group-version's document, where it finds the kind's schema by its
``x-kubernetes-group-version-kind``. The embedded mesh describes each kind's
top-level fields, and the fields of the kinds the labs edit (Deployment,
Pod, Service, ConfigMap, Secret) one level deeper. The descriptions are
labkit's own, short, and say what the field does in the labs.

Each kind's path has its GET operation (explain finds the kind through it)
and a PATCH operation that declares the ``fieldValidation`` query parameter:
kubectl looks for it to know the server validates fields itself, and then
sends ``fieldValidation=Strict|Warn|Ignore`` instead of validating client
side. The PATCH accepts no strategic merge patch (as for a custom resource),
so ``kubectl apply`` does not compute one from these small schemas and keeps
using its built-in patch metadata, which knows every list's merge key.
"""
from __future__ import annotations

import hashlib
import json

META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

_TOP = {
    "apiVersion": ("string", "The versioned schema of this object (group/version), e.g. apps/v1."),
    "kind": ("string", "The kind of object, e.g. Deployment. Matches the resource the request was sent to."),
}

#: kind → (description, {spec field: (type, description)}).
DETAIL = {
    "Deployment": ("A Deployment keeps a number of identical pods running from a pod template, and rolls them to "
                   "a new template (image, annotations such as Linkerd's inject) one ReplicaSet at a time.", {
        "replicas": ("integer", "How many pods to run (default 1). `kubectl scale` changes this field."),
        "selector": ("object", "The label query that finds this Deployment's pods; must match the template's "
                               "labels and cannot change after creation."),
        "template": ("object", "The pod template: metadata (labels, annotations — linkerd.io/inject lives here) "
                               "and the pod spec every new pod gets."),
        "strategy": ("object", "How pods are replaced: RollingUpdate (maxSurge, maxUnavailable) or Recreate."),
        "minReadySeconds": ("integer", "Seconds a new pod must be ready before it counts as available."),
        "progressDeadlineSeconds": ("integer", "Seconds a rollout may make no progress before it is reported "
                                               "failed (default 600)."),
        "revisionHistoryLimit": ("integer", "Old ReplicaSets kept for `kubectl rollout undo` (default 10)."),
        "paused": ("boolean", "While true, template changes do not start a rollout."),
    }),
    "Pod": ("A Pod is one or more containers scheduled together; meshed pods also run linkerd-proxy.", {
        "containers": ("array", "The pod's containers (name, image, ports, env, probes, resources)."),
        "initContainers": ("array", "Containers run to completion before the others start (linkerd-init)."),
        "serviceAccountName": ("string", "The ServiceAccount the pod runs as: its mTLS identity when meshed."),
        "restartPolicy": ("string", "Always, OnFailure or Never."),
        "nodeName": ("string", "The node the scheduler bound the pod to."),
        "terminationGracePeriodSeconds": ("integer", "Seconds between SIGTERM and SIGKILL on deletion."),
    }),
    "Service": ("A Service gives a set of pods (found by label selector) one name and virtual IP; Linkerd "
                "balances requests to it across the ready endpoints.", {
        "selector": ("object", "The labels of the pods that receive the Service's traffic."),
        "ports": ("array", "The ports the Service exposes (port, targetPort, protocol, name)."),
        "type": ("string", "ClusterIP (default), NodePort, LoadBalancer or ExternalName."),
        "clusterIP": ("string", "The virtual IP, assigned by the cluster; None makes a headless Service."),
    }),
}
_SIMPLE = {
    "ConfigMap": ("A ConfigMap holds configuration as string key/value pairs (data) for pods to read.",
                  {"data": ("object", "The string key/value pairs."),
                   "binaryData": ("object", "Key/value pairs whose values are base64-encoded bytes.")}),
    "Secret": ("A Secret holds small sensitive values (tokens, keys); data values are base64-encoded.",
               {"data": ("object", "Key/value pairs, values base64-encoded."),
                "stringData": ("object", "Key/value pairs given as plain strings; written into data."),
                "type": ("string", "The kind of secret, e.g. Opaque or kubernetes.io/tls.")}),
    "ServiceAccount": ("A ServiceAccount is an identity for pods; Linkerd's mTLS identities are built from it.",
                       {"automountServiceAccountToken": ("boolean", "Whether pods get its token mounted.")}),
}


def _field(kind: str, description: str) -> dict:
    schema = {"type": kind, "description": description}
    if kind == "array":
        schema["items"] = {"type": "object"}
    return schema


def _kind_schema(rtype) -> dict:
    description, spec_fields = DETAIL.get(rtype.kind, (None, None))
    simple = _SIMPLE.get(rtype.kind)
    props = {name: _field(t, d) for name, (t, d) in _TOP.items()}
    props["metadata"] = {"description": "Standard object metadata: name, namespace, labels, annotations.",
                         "allOf": [{"$ref": f"#/components/schemas/{META}"}], "default": {}}
    if simple is not None:
        description = simple[0]
        props.update({name: _field(t, d) for name, (t, d) in simple[1].items()})
    else:
        spec = {"type": "object", "description": f"The desired state of the {rtype.kind}."}
        if spec_fields:
            spec["properties"] = {name: _field(t, d) for name, (t, d) in spec_fields.items()}
        props["spec"] = spec
        props["status"] = {"type": "object", "description": f"The observed state of the {rtype.kind}, written by "
                                                            "the cluster (read-only)."}
    return {
        "description": description or f"{rtype.kind} ({rtype.api_version()}), served by the embedded mesh.",
        "type": "object", "properties": props,
        "x-kubernetes-group-version-kind": [{"group": rtype.group, "kind": rtype.kind, "version": v}
                                            for v in rtype.versions],
    }


def _meta_schema() -> dict:
    fields = {"name": "The object's name, unique per kind within its namespace.",
              "namespace": "The namespace of a namespaced object.",
              "labels": "Key/value pairs that selectors match (Services, Deployments).",
              "annotations": "Key/value pairs for tools; linkerd.io/inject and config.linkerd.io/* live here.",
              "resourceVersion": "The version of this object, for optimistic concurrency and watches.",
              "uid": "The unique id the cluster gave the object."}
    return {"description": "Metadata every object has.", "type": "object",
            "properties": {k: {"type": "object" if k in ("labels", "annotations") else "string", "description": d}
                           for k, d in fields.items()}}


def _path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def group_versions(types) -> dict[str, list]:
    out: dict[str, list] = {}
    for rtype in types:
        for version in rtype.versions:
            out.setdefault(_path(rtype.group, version), []).append(rtype)
    return out


def document(types, path: str) -> dict | None:
    """The OpenAPI v3 document of one group-version (``api/v1``, ``apis/apps/v1``), or None."""
    members = group_versions(types).get(path)
    if members is None:
        return None
    schemas = {META: _meta_schema()}
    paths = {}
    version = path.rsplit("/", 1)[1]
    for rtype in members:
        prefix = "io.k8s.api.core" if not rtype.group else f"io.k8s.api.{rtype.group.split('.')[0]}"
        name = f"{prefix}.{version}.{rtype.kind}"
        schemas[name] = _kind_schema(rtype)
        scope = "namespaces/{namespace}/" if rtype.namespaced else ""
        gvk = {"group": rtype.group, "version": version, "kind": rtype.kind}
        ok = {"200": {"description": "OK", "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}}
        paths[f"/{path}/{scope}{rtype.plural}/{{name}}"] = {
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
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (labkit embedded mesh)", "version": "v1.32.2"},
            "paths": paths, "components": {"schemas": schemas}}


def index(types) -> dict:
    """``/openapi/v3``: each group-version's document by path, with a hash that changes with its content."""
    out = {}
    for path in sorted(group_versions(types)):
        digest = hashlib.sha256(json.dumps(document(types, path), sort_keys=True).encode()).hexdigest()[:16].upper()
        out[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": out}
