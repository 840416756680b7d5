"""The Kubernetes REST API of the embedded cluster: discovery, CRUD, patches, tables and watches.

Only what the kube backend and ``kubectl get/apply/delete/patch`` need for the
labs' kinds, answered from the embedded API server (``cluster.api``) with the
cluster's own validation, defaulting, admission and garbage collection. Every
function here runs with the served mesh's lock held (see ``http.py``).

What it serves:

* discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/G``,
  ``/apis/G/V`` for the built-in kinds and every applied CRD (so Linkerd's,
  the Gateway API's and Flagger's kinds appear exactly when their CRDs do);
* ``GET`` list / item, ``POST`` create, ``PUT`` replace (optimistic
  concurrency: a stale ``resourceVersion`` is a 409 Conflict), ``PATCH`` with
  ``application/merge-patch+json``, ``application/json-patch+json``,
  ``application/strategic-merge-patch+json`` (list merge keys and the
  ``$patch`` / ``$setElementOrder`` / ``$retainKeys`` /
  ``$deleteFromPrimitiveList`` directives kubectl sends) and
  ``application/apply-patch+yaml`` (server-side apply, approximated: see
  :func:`server_side_apply`), ``DELETE``; ``dryRun=All`` on every write;
* ``labelSelector`` and simple ``fieldSelector`` filters;
* ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``: the server-side
  printing kubectl uses (pods, nodes, events, deployments, services,
  namespaces, CRDs' additionalPrinterColumns, else NAME/AGE), computed with
  the embedded cluster's printers;
* ``watch=true`` for any listable kind (pods and events included), as a
  chunked stream of ``{"type": ..., "object": ...}`` lines.

Every write is judged as kube-apiserver judges it (``sim/kube/validation.review``) under the request's
``fieldValidation`` (``Strict``/``Warn``/``Ignore``, ``Warn`` when absent; kubectl sends ``Strict`` by default):
a body the decoder refuses is a 400 ``BadRequest``, an invalid object a 422 ``Invalid`` with ``details.causes``
(``reason``, ``field``, ``message``), a webhook's denial a 400 without reason; warnings go out as ``Warning: 299 -
"…"`` headers, which kubectl prints as ``Warning: …``.

Errors are ``metav1.Status`` objects with the API server's reasons and codes.
"""
from __future__ import annotations

import hashlib
import json
import re
import time as _time
from typing import Any

from labkit.errors import ApplyError, NotFoundError
from labkit.sim.kube.apiserver import AlreadyExists, Forbidden
from labkit.sim.kube.discovery import BUILTIN, ResourceType
from labkit.sim.kube.merge import server_side_apply, strategic_merge
from labkit.sim.kube.objects import (
    PatchError, clone, json_patch, labels_of, merge_patch, name_of, namespace_of, parse_rfc3339, selector_matches,
)

KUBERNETES_GIT_VERSION = "v1.32.2"
TABLE_MEDIA = "as=Table"


class ApiError(Exception):
    """An API error answered as a ``metav1.Status``."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict:
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code}
        if not self.reason:
            del out["reason"]  # omitted when empty (an admission webhook's denial has none)
        if self.details:
            out["details"] = self.details
        return out


def success_status(details: dict | None = None) -> dict:
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        out["details"] = details
    return out


def error_from(exc: Exception, rtype: ResourceType | None = None, name: str = "") -> ApiError:
    """Map the embedded cluster's exceptions to the API server's status codes."""
    text = str(exc)
    clean = re.sub(r"^Error from server \(\w+\): ", "", text)
    details = {"name": name, "kind": rtype.plural if rtype else ""} if name else None
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, NotFoundError):
        return ApiError(404, "NotFound", clean, details)
    if isinstance(exc, AlreadyExists):
        return ApiError(409, "AlreadyExists", clean, details)
    if isinstance(exc, Forbidden):
        if clean.startswith("Internal error occurred"):
            return ApiError(500, "InternalError", clean, details)
        return ApiError(403, "Forbidden", clean, details)
    if isinstance(exc, (ApplyError, PatchError)):
        return ApiError(422, "Invalid", clean, details)
    if isinstance(exc, (ValueError, KeyError, TypeError)):
        return ApiError(400, "BadRequest", clean, details)
    return ApiError(500, "InternalError", f"Internal error occurred: {clean}", details)


# -- selectors -----------------------------------------------------------------------------------

_SET_EXPR = re.compile(r"^\s*(!?)([\w./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")


def parse_label_selector(text: str | None) -> dict | None:
    """``app=web,tier!=db,env in (a,b),!canary,role`` → a LabelSelector dict (None for empty)."""
    if not text:
        return None
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    exprs = []
    for part in (p.strip() for p in parts if p.strip()):
        for op, kind in (("!=", "NotIn"), ("==", "In"), ("=", "In")):
            if op in part:
                key, value = (s.strip() for s in part.split(op, 1))
                exprs.append({"key": key, "operator": kind, "values": [value]})
                break
        else:
            m = _SET_EXPR.match(part)
            if not m:
                raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
            neg, key, setop, values = m.groups()
            if setop:
                exprs.append({"key": key, "operator": "In" if setop == "in" else "NotIn",
                              "values": [v.strip() for v in values.split(",") if v.strip()]})
            else:
                exprs.append({"key": key, "operator": "DoesNotExist" if neg else "Exists"})
    return {"matchExpressions": exprs}


def _field(obj: dict, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def field_matches(text: str | None, obj: dict) -> bool:
    if not text:
        return True
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "!=" in part:
            key, value = part.split("!=", 1)
            if _field(obj, key.strip()) == value.strip():
                return False
        else:
            key, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            if _field(obj, key.strip()) != value.strip():
                return False
    return True


# -- strategic merge patch and server-side apply: labkit.sim.kube.merge (the API server's, shared with apply) --

# -- the API --------------------------------------------------------------------------------------

#: Subresources served per kind (besides status).
SUBRESOURCES = {"Pod": ("log", "exec", "portforward", "status"), "Deployment": ("status", "scale"),
                "ReplicaSet": ("status", "scale"), "StatefulSet": ("status", "scale"), "Namespace": ("status", "finalize"),
                "Node": ("status",), "Service": ("status",), "Job": ("status",), "HorizontalPodAutoscaler": ("status",)}
#: Columns kubectl shows only with ``-o wide`` (priority 1 in the server's table).
WIDE_COLUMNS = {"IP", "Node", "Nominated Node", "Readiness Gates", "Containers", "Images", "Selector"}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class KubeAPI:
    def __init__(self, mesh):
        self.mesh = mesh
        self.cluster = mesh.cluster
        self.discovery = self.cluster.discovery
        #: The write request being handled: its fieldValidation, the keys its body repeated, the warnings it earned.
        self.field_validation, self.duplicates, self.warnings = "Warn", (), []

    @property
    def now(self) -> float:
        return self.cluster.clock.t

    # -- discovery --------------------------------------------------------------------------
    def version(self) -> dict:
        major, minor = KUBERNETES_GIT_VERSION[1:].split(".")[:2]
        return {"major": major, "minor": minor, "gitVersion": KUBERNETES_GIT_VERSION,
                "gitCommit": "labkit-embedded-mesh", "gitTreeState": "clean", "buildDate": "2025-02-12T21:26:09Z",
                "goVersion": "go1.23.6", "compiler": "gc", "platform": "linux/amd64"}

    def _groups(self) -> dict[str, list[str]]:
        """group → served versions (preferred last), in discovery order: built-ins, then CRD groups."""
        groups: dict[str, list[str]] = {}
        for rtype in self.discovery.all():
            versions = groups.setdefault(rtype.group, [])
            for v in rtype.versions:
                if v not in versions:
                    versions.append(v)
        return groups

    def api_versions(self) -> dict:
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> dict:
        ordered = list(reversed(versions))  # preferred first
        vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
        return {"name": group, "versions": vs, "preferredVersion": vs[0]}

    def api_group_list(self) -> dict:
        groups = [self._group_doc(g, vs) for g, vs in self._groups().items() if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_group(self, group: str) -> dict | None:
        versions = self._groups().get(group)
        if not group or not versions:
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group, versions)}

    def resource_list(self, group: str, version: str) -> dict | None:
        resources = []
        for rtype in self.discovery.all():
            if rtype.group != group or version not in rtype.versions:
                continue
            entry = {"name": rtype.plural, "singularName": rtype.singular, "namespaced": rtype.namespaced,
                     "kind": rtype.kind, "verbs": list(VERBS)}
            if rtype.short_names:
                entry["shortNames"] = list(rtype.short_names)
            if rtype.crd:
                crd = self.cluster.api.get(self.discovery.by_key("apiextensions.k8s.io", "CustomResourceDefinition"), None, rtype.crd)
                cats = ((crd or {}).get("spec") or {}).get("names", {}).get("categories")
                if cats:
                    entry["categories"] = list(cats)
            elif rtype.kind in ("Pod", "Service", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                                "HorizontalPodAutoscaler"):
                entry["categories"] = ["all"]
            if rtype.kind == "Event":
                entry["verbs"] = [v for v in VERBS]
            resources.append(entry)
            for sub in SUBRESOURCES.get(rtype.kind, ("status",) if rtype.crd else ()):
                verbs = {"log": ["get"], "exec": ["create", "get"], "portforward": ["create", "get"],
                         "finalize": ["update"]}.get(sub, ["get", "patch", "update"])
                resources.append({"name": f"{rtype.plural}/{sub}", "singularName": "", "namespaced": rtype.namespaced,
                                  "kind": "Scale" if sub == "scale" else rtype.kind, "verbs": verbs})
        if not resources:
            return None
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": resources}

    def resolve(self, group: str, version: str, plural: str) -> ResourceType:
        for rtype in self.discovery.all():
            if rtype.group == group and rtype.plural == plural and version in rtype.versions:
                return rtype
        gv = f"{group}/{version}" if group else version
        raise ApiError(404, "NotFound", f"the server could not find the requested resource ({plural} in {gv})")

    # -- reads ---------------------------------------------------------------------------------
    def _events(self, namespace: str | None) -> list[dict]:
        out = []
        for e in self.cluster.recorder.live(namespace):
            obj = e.to_api()
            md = obj["metadata"]
            md["uid"] = str(hashlib.sha1(f"{e.namespace}/{e.name}".encode()).hexdigest()[:32])
            md["resourceVersion"] = f"{e.seq + 1}"
            # Sub-second observation times (MicroTime), as the events.k8s.io recorder writes them:
            # eventTime is the first observation, series.lastObservedTime the latest repeat.
            obj["eventTime"] = micro_time(e.first)
            if e.count > 1:
                obj["series"] = {"count": e.count, "lastObservedTime": micro_time(e.last)}
            out.append(obj)
        return out

    def objects(self, rtype: ResourceType, namespace: str | None, params: dict) -> list[dict]:
        if rtype.kind == "Event":
            objs = self._events(namespace)
        else:
            objs = self.cluster.api.list(rtype, namespace if rtype.namespaced else None)
        selector = parse_label_selector(params.get("labelSelector"))
        fields = params.get("fieldSelector")
        if selector is not None:
            objs = [o for o in objs if selector_matches(selector, labels_of(o))]
        if fields:
            objs = [o for o in objs if field_matches(fields, o)]
        return objs

    def list(self, rtype: ResourceType, namespace: str | None, params: dict) -> dict:
        items = [self._out(rtype, o) for o in self.objects(rtype, namespace, params)]
        return {"apiVersion": rtype.api_version(), "kind": f"{rtype.kind}List",
                "metadata": {"resourceVersion": str(self.cluster.revision)}, "items": items}

    def _out(self, rtype: ResourceType, obj: dict) -> dict:
        out = clone(obj)
        out.setdefault("apiVersion", rtype.api_version())
        out.setdefault("kind", rtype.kind)
        return out

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict:
        if rtype.kind == "Event":
            for obj in self._events(namespace):
                if name_of(obj) == name:
                    return obj
            raise ApiError(404, "NotFound", f'events "{name}" not found', {"name": name, "kind": "events"})
        obj = self.cluster.api.get(rtype, namespace if rtype.namespaced else None, name)
        if obj is None:
            raise ApiError(404, "NotFound", f'{rtype.plural_qualified} "{name}" not found',
                           {"name": name, "group": rtype.group, "kind": rtype.plural})
        return self._out(rtype, obj)

    # -- writes ---------------------------------------------------------------------------------
    def _validate(self, rtype: ResourceType, obj: dict, live: dict | None = None) -> dict:
        """The API server's decoding, validation and admission (``validation.review``): the object to store.

        ``self.field_validation`` is the request's ``fieldValidation`` (``Warn`` when absent, the API server's
        default); the warnings it produces are left in ``self.warnings`` for the ``Warning`` response header.
        """
        from labkit.sim.kube.validation import StatusError, review

        try:
            verdict = review(self.cluster.api, rtype, obj, validation=self.field_validation,
                             duplicates=self.duplicates, old=live, check_image=self.cluster._image_checker(),
                             operation="UPDATE" if live is not None else "CREATE")
        except StatusError as exc:
            raise ApiError(exc.code, exc.reason, exc.message, exc.details) from None
        except Forbidden as exc:
            raise error_from(exc, rtype, name_of(obj)) from None
        self.warnings += verdict.warnings
        return verdict.obj

    def begin(self, params: dict, duplicates: list[str] | tuple[str, ...] = ()) -> None:
        """Start a write request: its ``fieldValidation`` (Strict, Warn, Ignore; Warn when absent) and the keys its
        body repeated."""
        mode = params.get("fieldValidation") or "Warn"
        if mode not in ("Strict", "Warn", "Ignore"):
            raise ApiError(400, "BadRequest", f"fieldValidation must be one of Strict, Warn or Ignore, not {mode!r}")
        self.field_validation, self.duplicates, self.warnings = mode, tuple(duplicates), []

    def warning_header(self) -> dict | None:
        """``Warning: 299 - "unknown field \\"spec.replica\\""`` (comma-separated, as client-go reads them)."""
        if not self.warnings:
            return None
        return {"Warning": ", ".join(f"299 - {json.dumps(w)}" for w in self.warnings)}

    def _check_body(self, rtype: ResourceType, namespace: str | None, body: Any, name: str | None = None) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON or YAML object")
        md = body.get("metadata")
        if md is not None and not isinstance(md, dict):
            kind = "array" if isinstance(md, list) else "string" if isinstance(md, str) else \
                "bool" if isinstance(md, bool) else "number"
            version = rtype.versions[-1]
            raise ApiError(400, "BadRequest", f'{rtype.kind} in version "{version}" cannot be handled as a {rtype.kind}: '
                                              f"json: cannot unmarshal {kind} into Go struct field {rtype.kind}.metadata "
                                              "of type v1.ObjectMeta")
        obj = clone(body)
        kind = obj.get("kind")
        if kind and kind != rtype.kind:
            raise ApiError(400, "BadRequest", f"the kind {kind!r} does not match the resource {rtype.plural!r}")
        api_version = obj.get("apiVersion")
        if api_version:
            group = api_version.rpartition("/")[0]
            version = api_version.rpartition("/")[2]
            if group != rtype.group or version not in rtype.versions:
                raise ApiError(400, "BadRequest", f"apiVersion {api_version!r} is not served for {rtype.plural}")
        md = obj.setdefault("metadata", {})
        if rtype.namespaced:
            declared = md.get("namespace")
            if declared and namespace and declared != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                                  "sent on the request")
            md["namespace"] = namespace or declared or "default"
        else:
            md.pop("namespace", None)
        if name is not None and md.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", f"the name of the object ({md.get('name')}) does not match the name on "
                                              f"the URL ({name})")
        if name is not None:
            md["name"] = name
        obj.setdefault("apiVersion", rtype.api_version())
        obj.setdefault("kind", rtype.kind)
        return obj

    def create(self, rtype: ResourceType, namespace: str | None, body: Any, dry_run: bool = False) -> dict:
        if rtype.kind == "Event":
            raise ApiError(405, "MethodNotAllowed", "the embedded mesh records events itself")
        obj = self._check_body(rtype, namespace, body)
        md = obj["metadata"]
        for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp", "selfLink",
                    "managedFields"):
            md.pop(key, None)
        obj = self._validate(rtype, obj)
        md = obj["metadata"]
        ns = md.get("namespace") if rtype.namespaced else None
        if md.get("name") and self.cluster.api.get(rtype, ns, md["name"]) is not None:
            raise ApiError(409, "AlreadyExists", f'{rtype.plural_qualified} "{md["name"]}" already exists',
                           {"name": md["name"], "group": rtype.group, "kind": rtype.plural})
        if dry_run:
            if ns is not None and self.cluster.api.get(self.cluster.types.namespace, None, ns) is None:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
            return obj
        try:
            return self._out(rtype, self.cluster.api.create(rtype, obj))
        except Exception as exc:  # noqa: BLE001 - mapped to an API status
            raise error_from(exc, rtype, md.get("name", "")) from None

    def _live(self, rtype: ResourceType, namespace: str | None, name: str) -> dict:
        obj = self.cluster.api.get(rtype, namespace if rtype.namespaced else None, name)
        if obj is None:
            raise ApiError(404, "NotFound", f'{rtype.plural_qualified} "{name}" not found',
                           {"name": name, "group": rtype.group, "kind": rtype.plural})
        return obj

    def _store(self, rtype: ResourceType, live: dict, new: dict, dry_run: bool, *, status: bool = False) -> dict:
        """Write ``new`` over ``live`` (identity fields kept; status only through the status subresource)."""
        md, lmd = new.setdefault("metadata", {}), live["metadata"]
        for key in ("name", "namespace", "uid"):
            if key in lmd:
                if md.get(key) not in (None, lmd[key]):
                    raise ApiError(422, "Invalid", f"{rtype.kind} \"{lmd['name']}\" is invalid: metadata.{key}: "
                                                   "Invalid value: field is immutable")
                md[key] = lmd[key]
        for key in ("creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in lmd:
                md[key] = lmd[key]
            else:
                md.pop(key, None)
        md.pop("managedFields", None)
        if status:
            result = clone(live)
            result["status"] = new.get("status") or {}
            if dry_run:
                return result
            return self._out(rtype, self.cluster.api.update_status(rtype, live, result["status"]))
        new.pop("status", None)  # a write to the object itself leaves its status as it was (not judged again)
        new = self._validate(rtype, new, live)
        if "status" in live:
            new["status"] = clone(live["status"])
        if dry_run:
            return new
        try:
            return self._out(rtype, self.cluster.api.update(rtype, new))
        except Exception as exc:  # noqa: BLE001
            raise error_from(exc, rtype, lmd.get("name", "")) from None

    def replace(self, rtype: ResourceType, namespace: str | None, name: str, body: Any, dry_run: bool = False,
                subresource: str | None = None) -> dict:
        live = self._live(rtype, namespace, name)
        obj = self._check_body(rtype, namespace if rtype.namespaced else None, body, name)
        rv = obj["metadata"].get("resourceVersion")
        if rv and rv != live["metadata"].get("resourceVersion"):
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rtype.plural_qualified} "{name}": the '
                                            "object has been modified; please apply your changes to the latest version "
                                            "and try again", {"name": name, "group": rtype.group, "kind": rtype.plural})
        return self._store(rtype, live, obj, dry_run, status=subresource == "status")

    def patch(self, rtype: ResourceType, namespace: str | None, name: str, raw: bytes, content_type: str,
              dry_run: bool = False, subresource: str | None = None) -> dict:
        ctype = (content_type or "").split(";")[0].strip().lower()
        try:
            if ctype == "application/apply-patch+yaml":
                import yaml

                body = yaml.safe_load(raw.decode("utf-8") or "{}")
            else:
                body = json.loads(raw.decode("utf-8") or "null")
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the patch body is not valid: {exc}") from None
        live = self.cluster.api.get(rtype, namespace if rtype.namespaced else None, name)
        if ctype == "application/apply-patch+yaml":
            obj = self._check_body(rtype, namespace if rtype.namespaced else None, body, name)
            if live is None:
                return self.create(rtype, namespace, obj, dry_run)
            return self._store(rtype, live, server_side_apply(clone(live), obj), dry_run)
        if live is None:
            raise ApiError(404, "NotFound", f'{rtype.plural_qualified} "{name}" not found',
                           {"name": name, "group": rtype.group, "kind": rtype.plural})
        try:
            if ctype == "application/json-patch+json":
                if not isinstance(body, list):
                    raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
                new = json_patch(clone(live), body)
            elif ctype == "application/merge-patch+json":
                new = merge_patch(clone(live), body)
            elif ctype == "application/strategic-merge-patch+json":
                if rtype.crd:
                    raise ApiError(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom "
                                                                 "resources; use a JSON merge patch")
                new = strategic_merge(clone(live), body)
            else:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                                                             "accepted media types include: application/json-patch+json, "
                                                             "application/merge-patch+json, application/apply-patch+yaml")
        except PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from None
        if not isinstance(new, dict):
            raise ApiError(422, "Invalid", "the patch does not leave an object")
        return self._store(rtype, live, new, dry_run, status=subresource == "status")

    def delete(self, rtype: ResourceType, namespace: str | None, name: str, dry_run: bool = False) -> dict:
        if rtype.kind == "Event":
            raise ApiError(405, "MethodNotAllowed", "the embedded mesh's events expire by themselves")
        live = self._live(rtype, namespace, name)
        if dry_run:
            return self._out(rtype, live)
        self.cluster.api.delete(rtype, live)
        after = self.cluster.api.get(rtype, namespace if rtype.namespaced else None, name)
        if after is not None:
            return self._out(rtype, after)  # graceful (pods) or terminating (namespaces)
        return success_status({"name": name, "group": rtype.group, "kind": rtype.plural, "uid": live["metadata"]["uid"]})

    # -- the scale subresource --------------------------------------------------------------------
    def scale(self, rtype: ResourceType, namespace: str | None, name: str) -> dict:
        """``GET .../NAME/scale``: an ``autoscaling/v1`` Scale, as kubectl scale and the HPA read it."""
        if "scale" not in SUBRESOURCES.get(rtype.kind, ()):
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({rtype.plural}/scale)")
        return _scale_of(self._live(rtype, namespace, name), rtype)

    def update_scale(self, rtype: ResourceType, namespace: str | None, name: str, method: str, raw: bytes,
                     content_type: str, body: Any, dry_run: bool = False) -> dict:
        """``PUT`` (a Scale) or ``PATCH`` (of the Scale) on ``.../scale``: only ``spec.replicas`` changes."""
        current = self.scale(rtype, namespace, name)
        if method == "PATCH":
            ctype = (content_type or "").split(";")[0].strip().lower()
            try:
                patch = json.loads(raw.decode("utf-8") or "null")
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError(400, "BadRequest", f"the patch body is not valid JSON: {exc}") from None
            try:
                if ctype == "application/json-patch+json" and isinstance(patch, list):
                    body = json_patch(clone(current), patch)
                elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                    body = merge_patch(clone(current), patch)
                else:
                    raise ApiError(415, "UnsupportedMediaType", f"cannot patch a Scale with {ctype or 'no content type'}")
            except PatchError as exc:
                raise ApiError(422, "Invalid", str(exc)) from None
        if not isinstance(body, dict) or body.get("kind", "Scale") != "Scale":
            kind = body.get("kind") if isinstance(body, dict) else type(body).__name__
            raise ApiError(400, "BadRequest", f"the scale subresource takes a Scale (autoscaling/v1), not {kind}")
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"].get("resourceVersion"):
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rtype.plural_qualified} "{name}": the '
                                            "object has been modified; please apply your changes to the latest version "
                                            "and try again", {"name": name, "group": rtype.group, "kind": rtype.plural})
        replicas = (body.get("spec") or {}).get("replicas", 0)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                                           f"{replicas!r}: must be a whole number greater than or equal to 0",
                           {"name": name, "group": "autoscaling", "kind": "Scale",
                            "causes": [{"field": "spec.replicas", "message": "must be greater than or equal to 0"}]})
        live = self._live(rtype, namespace, name)
        new = clone(live)
        new.setdefault("spec", {})["replicas"] = replicas
        stored = self._store(rtype, live, new, dry_run)
        return _scale_of(stored, rtype)

    # -- watch -------------------------------------------------------------------------------
    def snapshot(self, rtype: ResourceType, namespace: str | None, params: dict) -> dict[str, tuple[str, dict]]:
        out = {}
        for obj in self.objects(rtype, namespace, params):
            md = obj.get("metadata") or {}
            out[md.get("uid") or f"{md.get('namespace')}/{md.get('name')}"] = (md.get("resourceVersion", ""), obj)
        return out

    def watch_events(self, rtype: ResourceType, before: dict, after: dict) -> list[dict]:
        events = []
        for key, (rv, obj) in after.items():
            if key not in before:
                events.append({"type": "ADDED", "object": self._out(rtype, obj)})
            elif before[key][0] != rv:
                events.append({"type": "MODIFIED", "object": self._out(rtype, obj)})
        for key, (rv, obj) in before.items():
            if key not in after:
                events.append({"type": "DELETED", "object": self._out(rtype, obj)})
        return events

    def changes_to_events(self, rtype: ResourceType, namespace: str | None, params: dict, changes: list) -> list[dict]:
        """The API server's change log (``(seq, ADDED|MODIFIED|DELETED, old, new)``) as watch events for one type."""
        selector = parse_label_selector(params.get("labelSelector"))
        fields = params.get("fieldSelector")
        out = []
        for _seq, kind, old, new in changes:
            obj = new if new is not None else old
            if obj is None or obj.get("kind") != rtype.kind or obj.get("apiVersion", "").rpartition("/")[0] != rtype.group:
                continue
            if rtype.namespaced and namespace and namespace_of(obj) != namespace:
                continue
            if selector is not None and not selector_matches(selector, labels_of(obj)):
                continue
            if fields and not field_matches(fields, obj):
                continue
            out.append({"type": kind, "object": self._out(rtype, obj)})
        return out

    # -- tables (server-side printing) ----------------------------------------------------------------
    def table(self, rtype: ResourceType, objs: list[dict], include: str = "Metadata") -> dict:
        from labkit.tables import human_duration

        now = self.now
        age = lambda o: human_duration(now - _created(o))  # noqa: E731
        kind = rtype.kind
        if kind == "Pod":
            from labkit.sim.kube.printers import pod_ready, pod_restarts, pod_status

            cols = [("Name", "string"), ("Ready", "string"), ("Status", "string"), ("Restarts", "string"),
                    ("Age", "string"), ("IP", "string"), ("Node", "string"), ("Nominated Node", "string"),
                    ("Readiness Gates", "string")]
            rows = [[name_of(o), "%d/%d" % pod_ready(o), pod_status(o), pod_restarts(o), age(o),
                     (o.get("status") or {}).get("podIP") or "<none>", (o.get("spec") or {}).get("nodeName") or "<none>",
                     "<none>", "<none>"] for o in objs]
        elif kind == "Node":
            cols = [("Name", "string"), ("Status", "string"), ("Roles", "string"), ("Age", "string"), ("Version", "string")]
            rows = []
            for o in objs:
                labels = labels_of(o)
                roles = ",".join(k.split("/", 1)[1] for k in sorted(labels) if k.startswith("node-role.kubernetes.io/"))
                ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in (o.get("status") or {}).get("conditions") or [])
                rows.append([name_of(o), "Ready" if ready else "NotReady", roles or "<none>", age(o),
                             ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")])
        elif kind == "Event":
            cols = [("Last Seen", "string"), ("Type", "string"), ("Reason", "string"), ("Object", "string"),
                    ("Message", "string")]
            rows = [[human_duration(now - _event_last(o)), o.get("type", ""), o.get("reason", ""),
                     f"{o['involvedObject'].get('kind', '').lower()}/{o['involvedObject'].get('name', '')}",
                     o.get("message", "")] for o in objs]
        elif kind == "Deployment":
            cols = [("Name", "string"), ("Ready", "string"), ("Up-to-date", "integer"), ("Available", "integer"),
                    ("Age", "string")]
            rows = [[name_of(o), f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 1)}",
                     (o.get("status") or {}).get("updatedReplicas", 0), (o.get("status") or {}).get("availableReplicas", 0),
                     age(o)] for o in objs]
        elif kind == "Service":
            cols = [("Name", "string"), ("Type", "string"), ("Cluster-IP", "string"), ("External-IP", "string"),
                    ("Port(s)", "string"), ("Age", "string")]
            rows = []
            for o in objs:
                spec = o.get("spec") or {}
                ports = ",".join(f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
                                 for p in spec.get("ports") or []) or "<none>"
                ext = "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
                rows.append([name_of(o), spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", ext, ports, age(o)])
        elif kind == "Namespace":
            cols = [("Name", "string"), ("Status", "string"), ("Age", "string")]
            rows = [[name_of(o), (o.get("status") or {}).get("phase", "Active"), age(o)] for o in objs]
        else:
            printer = self._printer_columns(rtype)
            cols = [("Name", "string")] + [(c["name"], c.get("type", "string")) for c in printer]
            has_age = any(c["name"].lower() == "age" for c in printer)
            if not has_age:
                cols.append(("Age", "date"))
            rows = []
            for o in objs:
                row = [name_of(o)]
                for c in printer:
                    value = _jsonpath(o, c.get("jsonPath", ""))
                    if c.get("type") == "date" and isinstance(value, str):
                        try:
                            value = human_duration(now - parse_rfc3339(value))
                        except ValueError:
                            pass
                    row.append(value if value is not None else "")
                if not has_age:
                    row.append(age(o))
                rows.append(row)
        table_rows = []
        for o, cells in zip(objs, rows):
            row: dict = {"cells": cells}
            if include == "Object":
                row["object"] = self._out(rtype, o)
            elif include != "None":
                md = {k: v for k, v in (o.get("metadata") or {}).items() if k != "managedFields"}
                row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md}
            table_rows.append(row)
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": str(self.cluster.revision)},
                "columnDefinitions": [{"name": n, "type": t, "format": "name" if n == "Name" else "",
                                       "description": "", "priority": 1 if n in WIDE_COLUMNS else 0} for n, t in cols],
                "rows": table_rows}

    def _printer_columns(self, rtype: ResourceType) -> list[dict]:
        if not rtype.crd:
            return []
        crd_type = self.discovery.by_key("apiextensions.k8s.io", "CustomResourceDefinition")
        crd = self.cluster.api.get(crd_type, None, rtype.crd) or {}
        for version in (crd.get("spec") or {}).get("versions") or []:
            if version.get("name") == rtype.versions[-1] and version.get("additionalPrinterColumns"):
                return [c for c in version["additionalPrinterColumns"] if c.get("priority", 0) == 0]
        return []


def _scale_of(obj: dict, rtype: ResourceType) -> dict:
    md, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    out = {"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                        if k in md},
           "spec": {"replicas": spec.get("replicas", 1)},
           "status": {"replicas": status.get("replicas", 0)}}
    if selector:
        out["status"]["selector"] = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return out


def _jsonpath(obj: dict, path: str) -> Any:
    node: Any = obj
    for part in [p for p in path.strip().lstrip(".").split(".") if p]:
        m = re.fullmatch(r"(\w+)\[\?\(@\.(\w+)==\"([^\"]*)\"\)\]", part)
        if m:
            field, key, value = m.groups()
            items = node.get(field) if isinstance(node, dict) else None
            node = next((i for i in items or [] if isinstance(i, dict) and i.get(key) == value), None)
            continue
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _created(obj: dict) -> float:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    return parse_rfc3339(stamp) if stamp else 0.0


def micro_time(t: float) -> str:
    """A ``metav1.MicroTime``: RFC 3339 with six fractional digits."""
    whole = int(t)
    micros = int(round((t - whole) * 1e6))
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(whole)) + f".{micros:06d}Z"


def parse_time(text: str) -> float:
    """RFC 3339 with or without fractional seconds → unix seconds."""
    import calendar

    base, _, frac = text.rstrip("Z").partition(".")
    whole = calendar.timegm(_time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return whole + (float("0." + frac) if frac else 0.0)


def _event_last(obj: dict) -> float:
    times = [parse_time(t) for t in (obj.get("lastTimestamp"), obj.get("eventTime"),
                                      (obj.get("series") or {}).get("lastObservedTime")) if t]
    return max(times) if times else 0.0


__all__ = ["KubeAPI", "ApiError", "BUILTIN", "strategic_merge", "parse_label_selector", "micro_time", "parse_time"]
