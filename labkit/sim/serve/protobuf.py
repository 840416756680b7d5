"""Kubernetes' protobuf encoding of request bodies, decoded for the kinds ``kubectl create`` sends.

``kubectl create namespace|configmap|secret|serviceaccount|deployment`` (and
``kubectl scale``'s Scale) send ``application/vnd.kubernetes.protobuf``, with
no JSON fallback when a server refuses it, so the served mesh reads that
encoding: the 4-byte magic ``k8s\\0``, then a ``runtime.Unknown`` envelope
(``typeMeta`` 1 {apiVersion 1, kind 2}, ``raw`` 2), whose ``raw`` is the
object in the field numbers of the Kubernetes API's ``generated.proto``.

Only the messages those commands produce are described below (the field
numbers are the API's, a fact of the wire format). A field this table does
not know is refused with 415 naming the message and field number — never
dropped silently, which would create something other than what was sent.
"""
from __future__ import annotations

import base64
import struct

from labkit.sim.serve.kubeapi import ApiError

MAGIC = b"k8s\x00"

# Each message: field number → (JSON name, type, repeated?). Types: "string", "bytes", "int", "bool", "quantity",
# "intorstring", "time", "map:string", "map:bytes", "map:quantity", or the name of another message.
S, R = False, True
MESSAGES: dict[str, dict[int, tuple[str, str, bool]]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", S), 2: ("raw", "bytes", S), 3: ("contentEncoding", "string", S),
                4: ("contentType", "string", S)},
    "TypeMeta": {1: ("apiVersion", "string", S), 2: ("kind", "string", S)},
    "ObjectMeta": {1: ("name", "string", S), 2: ("generateName", "string", S), 3: ("namespace", "string", S),
                   4: ("selfLink", "string", S), 5: ("uid", "string", S), 6: ("resourceVersion", "string", S),
                   7: ("generation", "int", S), 8: ("creationTimestamp", "time", S),
                   9: ("deletionTimestamp", "time", S), 10: ("deletionGracePeriodSeconds", "int", S),
                   11: ("labels", "map:string", S), 12: ("annotations", "map:string", S),
                   13: ("ownerReferences", "OwnerReference", R), 14: ("finalizers", "string", R)},
    "OwnerReference": {1: ("kind", "string", S), 3: ("name", "string", S), 4: ("uid", "string", S),
                       5: ("apiVersion", "string", S), 6: ("controller", "bool", S),
                       7: ("blockOwnerDeletion", "bool", S)},
    "Namespace": {1: ("metadata", "ObjectMeta", S), 2: ("spec", "NamespaceSpec", S), 3: ("status", "Empty", S)},
    "NamespaceSpec": {1: ("finalizers", "string", R)},
    "ConfigMap": {1: ("metadata", "ObjectMeta", S), 2: ("data", "map:string", S), 3: ("binaryData", "map:bytes", S),
                  4: ("immutable", "bool", S)},
    "Secret": {1: ("metadata", "ObjectMeta", S), 2: ("data", "map:bytes", S), 3: ("type", "string", S),
               4: ("stringData", "map:string", S), 5: ("immutable", "bool", S)},
    "ServiceAccount": {1: ("metadata", "ObjectMeta", S), 2: ("secrets", "ObjectReference", R),
                       3: ("imagePullSecrets", "LocalObjectReference", R),
                       4: ("automountServiceAccountToken", "bool", S)},
    "ObjectReference": {1: ("kind", "string", S), 2: ("namespace", "string", S), 3: ("name", "string", S),
                        4: ("uid", "string", S), 5: ("apiVersion", "string", S), 6: ("resourceVersion", "string", S),
                        7: ("fieldPath", "string", S)},
    "LocalObjectReference": {1: ("name", "string", S)},
    "Deployment": {1: ("metadata", "ObjectMeta", S), 2: ("spec", "DeploymentSpec", S), 3: ("status", "Empty", S)},
    "DeploymentSpec": {1: ("replicas", "int", S), 2: ("selector", "LabelSelector", S),
                       3: ("template", "PodTemplateSpec", S), 4: ("strategy", "DeploymentStrategy", S),
                       5: ("minReadySeconds", "int", S), 6: ("revisionHistoryLimit", "int", S),
                       7: ("paused", "bool", S), 9: ("progressDeadlineSeconds", "int", S)},
    "DeploymentStrategy": {1: ("type", "string", S), 2: ("rollingUpdate", "RollingUpdateDeployment", S)},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "intorstring", S), 2: ("maxSurge", "intorstring", S)},
    "LabelSelector": {1: ("matchLabels", "map:string", S), 2: ("matchExpressions", "LabelSelectorRequirement", R)},
    "LabelSelectorRequirement": {1: ("key", "string", S), 2: ("operator", "string", S), 3: ("values", "string", R)},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta", S), 2: ("spec", "PodSpec", S)},
    "PodSpec": {2: ("containers", "Container", R), 3: ("restartPolicy", "string", S),
                4: ("terminationGracePeriodSeconds", "int", S), 6: ("dnsPolicy", "string", S),
                7: ("nodeSelector", "map:string", S), 8: ("serviceAccountName", "string", S),
                9: ("serviceAccount", "string", S), 19: ("schedulerName", "string", S),
                20: ("initContainers", "Container", R), 5: ("activeDeadlineSeconds", "int", S),
                10: ("nodeName", "string", S), 11: ("hostNetwork", "bool", S), 12: ("hostPID", "bool", S),
                13: ("hostIPC", "bool", S), 16: ("hostname", "string", S), 17: ("subdomain", "string", S),
                21: ("automountServiceAccountToken", "bool", S), 24: ("priorityClassName", "string", S),
                27: ("shareProcessNamespace", "bool", S), 29: ("runtimeClassName", "string", S),
                30: ("enableServiceLinks", "bool", S), 31: ("preemptionPolicy", "string", S),
                35: ("setHostnameAsFQDN", "bool", S), 37: ("hostUsers", "bool", S)},
    "Container": {1: ("name", "string", S), 2: ("image", "string", S), 3: ("command", "string", R),
                  4: ("args", "string", R), 5: ("workingDir", "string", S), 6: ("ports", "ContainerPort", R),
                  7: ("env", "EnvVar", R), 8: ("resources", "ResourceRequirements", S),
                  13: ("terminationMessagePath", "string", S), 14: ("imagePullPolicy", "string", S),
                  20: ("terminationMessagePolicy", "string", S), 16: ("stdin", "bool", S),
                  17: ("stdinOnce", "bool", S), 18: ("tty", "bool", S), 24: ("restartPolicy", "string", S)},
    "ContainerPort": {1: ("name", "string", S), 2: ("hostPort", "int", S), 3: ("containerPort", "int", S),
                      4: ("protocol", "string", S), 5: ("hostIP", "string", S)},
    "EnvVar": {1: ("name", "string", S), 2: ("value", "string", S)},
    "ResourceRequirements": {1: ("limits", "map:quantity", S), 2: ("requests", "map:quantity", S)},
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta", S), 2: ("spec", "SelfSubjectAccessReviewSpec", S),
                                3: ("status", "Empty", S)},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", S),
                                    2: ("nonResourceAttributes", "NonResourceAttributes", S)},
    "ResourceAttributes": {1: ("namespace", "string", S), 2: ("verb", "string", S), 3: ("group", "string", S),
                           4: ("version", "string", S), 5: ("resource", "string", S), 6: ("subresource", "string", S),
                           7: ("name", "string", S), 8: ("fieldSelector", "Empty", S), 9: ("labelSelector", "Empty", S)},
    "NonResourceAttributes": {1: ("path", "string", S), 2: ("verb", "string", S)},
    "SelfSubjectRulesReview": {1: ("metadata", "ObjectMeta", S), 2: ("spec", "SelfSubjectRulesReviewSpec", S),
                               3: ("status", "Empty", S)},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string", S)},
    "Scale": {1: ("metadata", "ObjectMeta", S), 2: ("spec", "ScaleSpec", S), 3: ("status", "Empty", S)},
    "ScaleSpec": {1: ("replicas", "int", S)},
    "Empty": {},  # status: a client's is ignored on create, as the API server ignores it
}
#: apiVersion/kind of the envelope → the message of ``raw``.
KINDS = {("v1", "Namespace"): "Namespace", ("v1", "ConfigMap"): "ConfigMap", ("v1", "Secret"): "Secret",
         ("v1", "ServiceAccount"): "ServiceAccount", ("apps/v1", "Deployment"): "Deployment",
         ("autoscaling/v1", "Scale"): "Scale",
         ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
         ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview"}
#: Fields that are pointers in the Go types: present means set, even when 0 (``--replicas=0``). Every other
#: scalar is written by the Go encoder even when empty, where JSON would omit it; those zero values are dropped.
POINTERS = {"replicas", "terminationGracePeriodSeconds", "activeDeadlineSeconds", "revisionHistoryLimit",
            "progressDeadlineSeconds", "automountServiceAccountToken", "shareProcessNamespace", "enableServiceLinks",
            "setHostnameAsFQDN", "hostUsers", "immutable", "deletionGracePeriodSeconds", "preemptionPolicy",
            "runtimeClassName", "controller", "blockOwnerDeletion"}


def decode(body: bytes) -> dict:
    """The object a protobuf request body carries, as the JSON dict a JSON client would have sent."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "the protobuf body does not start with the Kubernetes magic 'k8s\\x00'")
    envelope = _message(body[len(MAGIC):], "Unknown", ignore_unknown=True)
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    name = KINDS.get((api_version, kind))
    if name is None:
        known = ", ".join(f"{k} ({v})" for v, k in KINDS)
        raise ApiError(415, "UnsupportedMediaType", f"the embedded mesh reads protobuf bodies only for {known}, not "
                                                    f"{kind or '?'} ({api_version or '?'}); send JSON or YAML "
                                                    "(e.g. kubectl apply -f FILE)")
    obj = _message(base64.b64decode(envelope.get("raw") or ""), name)  # raw came back as JSON's base64
    if "status" in obj:
        obj.pop("status")
    return {"apiVersion": api_version, "kind": kind, **obj}


# -- the wire format ------------------------------------------------------------------------------------

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ApiError(400, "BadRequest", "the protobuf body is truncated (in a varint)")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ApiError(400, "BadRequest", "the protobuf body has a varint longer than 10 bytes")


def _fields(buf: bytes):
    """(field number, wire type, value) for each field: value is an int (varint) or bytes (length-delimited)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ApiError(400, "BadRequest", "the protobuf body is truncated (a field runs past its end)")
            value, i = buf[i:i + n], i + n
        elif wire == 1:
            value, i = struct.unpack("<q", buf[i:i + 8])[0], i + 8
        elif wire == 5:
            value, i = struct.unpack("<i", buf[i:i + 4])[0], i + 4
        else:
            raise ApiError(400, "BadRequest", f"the protobuf body has wire type {wire}, which Kubernetes never sends")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value, where: str) -> str:
    if not isinstance(value, bytes):
        raise ApiError(400, "BadRequest", f"{where}: expected a string in the protobuf body")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "BadRequest", f"{where}: a string in the protobuf body is not UTF-8") from None


def _scalar(kind: str, value, where: str):
    if kind == "string":
        return _text(value, where)
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")  # JSON's form of []byte
    if kind == "int":
        return _signed(value) if isinstance(value, int) else _bad(where)
    if kind == "bool":
        return bool(value) if isinstance(value, int) else _bad(where)
    if kind == "quantity":
        return _message(value, "Quantity", ignore_unknown=False).get("string", "0")
    if kind == "intorstring":
        d = {n: v for n, _w, v in _fields(value)}
        return _text(d[3], where) if d.get(1) == 1 else _signed(d.get(2, 0))
    if kind == "time":
        import datetime

        seconds = {n: v for n, _w, v in _fields(value)}.get(1, 0)
        if not seconds:
            return None  # the zero time: JSON's null, which the API server fills in
        return datetime.datetime.fromtimestamp(_signed(seconds), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise AssertionError(kind)


def _bad(where: str):
    raise ApiError(400, "BadRequest", f"{where}: a field of the protobuf body has the wrong wire type")


MESSAGES["Quantity"] = {1: ("string", "string", S)}


def _message(buf: bytes, name: str, *, ignore_unknown: bool = False) -> dict:
    spec = MESSAGES[name]
    out: dict = {}
    for number, _wire, value in _fields(buf):
        field = spec.get(number)
        if field is None:
            if ignore_unknown or name == "Empty":
                continue
            raise ApiError(415, "UnsupportedMediaType", f"field {number} of {name} in this protobuf body is not one the "
                                                        "embedded mesh decodes; send the object as JSON or YAML "
                                                        "(e.g. kubectl create ... -o yaml --dry-run=client | kubectl apply -f -)")
        key, kind, repeated = field
        where = f"{name}.{key}"
        if kind.startswith("map:"):
            entry = {n: v for n, _w, v in _fields(value)}
            out.setdefault(key, {})[_text(entry.get(1, b""), where)] = _scalar(kind[4:], entry.get(2, b""), where)
            continue
        if kind in MESSAGES:
            if not isinstance(value, bytes):
                _bad(where)
            item = _message(value, kind)
        else:
            item = _scalar(kind, value, where)
        if repeated:
            out.setdefault(key, []).append(item)
        elif item is None or (item in ("", False, 0) and key not in POINTERS and not isinstance(item, dict)):
            continue
        else:
            out[key] = item
    return out
