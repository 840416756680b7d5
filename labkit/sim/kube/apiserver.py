"""The embedded kube-apiserver: object store, metadata, defaulting, admission, watches, garbage collection.

Every change to the cluster goes through here, as on a real cluster, so the
bookkeeping a learner can observe is uniform: ``metadata.uid``,
``resourceVersion`` (one cluster-wide counter, like etcd's revision),
``generation`` (bumped on spec changes only), ``creationTimestamp``,
defaulted fields, mutating admission webhooks (Linkerd's proxy injector is
one), owner-reference garbage collection and namespace termination.

Objects are stored copy-on-write: a write replaces the stored dict, it never
mutates it, so a reader (the data plane, a table) holding an object keeps a
consistent snapshot, and ``revision`` tells it when to look again.
"""
from __future__ import annotations

import ipaddress
import random
import uuid
from typing import Callable

from labkit.errors import LabkitError, NotFoundError
from labkit.sim.kube import defaults
from labkit.sim.kube.discovery import Discovery, ResourceType
from labkit.k8s import drop_nulls
from labkit.sim.kube.objects import labels_of, name_of, namespace_of, rfc3339, selector_matches

Key = tuple[str, str]  # (namespace or "", name)
Watcher = Callable[[str, dict | None, dict | None], None]  # (ADDED|MODIFIED|DELETED, old, new)


class Forbidden(LabkitError, ValueError):
    """The API server refused the request (admission, terminating namespace...)."""


class AlreadyExists(LabkitError, ValueError):
    pass


#: The node pod CIDRs and service CIDR of the embedded (kind-like) cluster.
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")


class APIServer:
    def __init__(self, clock, discovery: Discovery, seed: int = 0):
        self.clock = clock
        self.discovery = discovery
        self.seed = seed
        self.revision = 0
        self._store: dict[tuple[str, str], dict[Key, dict]] = {}
        self._watchers: dict[tuple[str, str], list[Watcher]] = {}
        self._any_watchers: list[Watcher] = []
        self._dependents: dict[str, dict[tuple, None]] = {}  # owner uid → {(group, kind, ns, name)}
        self._uid_rng = random.Random(f"{seed}:uid")
        self._ip_rng = random.Random(f"{seed}:clusterip")
        self._nodeport_rng = random.Random(f"{seed}:nodeport")
        self._used_ips: set[str] = set()
        #: Admission webhook backends: (service namespace, service name) → handler(pod, namespace obj) → pod.
        self.webhook_backends: dict[tuple[str, str], Callable[[dict, dict | None], dict]] = {}
        #: Validating admission webhook backends: (service namespace, service name) → check(obj) → reason or None.
        self.validating_backends: dict[tuple[str, str], Callable[[dict], str | None]] = {}
        #: Is a Service backed by at least one ready endpoint? (set by the cluster: endpoints controller)
        self.service_available: Callable[[str, str], bool] = lambda ns, name: False

    # -- reads -------------------------------------------------------------------------------
    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict | None:
        return self._store.get(rtype.key, {}).get((namespace or "" if rtype.namespaced else "", name))

    def require(self, rtype: ResourceType, namespace: str | None, name: str) -> dict:
        obj = self.get(rtype, namespace, name)
        if obj is None:
            raise NotFoundError(f'Error from server (NotFound): {rtype.plural_qualified} "{name}" not found')
        return obj

    def list(self, rtype: ResourceType, namespace: str | None = None, selector: dict | None = None) -> list[dict]:
        """Objects of one type, sorted by namespace and name like ``kubectl get``."""
        bucket = self._store.get(rtype.key, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        objs = [bucket[k] for k in keys]
        if selector is not None:
            objs = [o for o in objs if selector_matches(selector, labels_of(o))]
        return objs

    def list_namespace(self, namespace: str) -> list[tuple[ResourceType, dict]]:
        """Every namespaced object in ``namespace`` (for namespace termination)."""
        out = []
        for rtype in self.discovery.all():
            if rtype.namespaced:
                out += [(rtype, o) for o in self.list(rtype, namespace)]
        return out

    # -- watches -------------------------------------------------------------------------------
    def watch(self, rtype: ResourceType | None, fn: Watcher) -> None:
        if rtype is None:
            self._any_watchers.append(fn)
        else:
            self._watchers.setdefault(rtype.key, []).append(fn)

    def _notify(self, rtype: ResourceType, event: str, old: dict | None, new: dict | None) -> None:
        for fn in self._watchers.get(rtype.key, ()):
            fn(event, old, new)
        for fn in self._any_watchers:
            fn(event, old, new)

    # -- writes ---------------------------------------------------------------------------------
    def _bump(self) -> str:
        self.revision += 1
        return str(self.revision)

    def new_uid(self) -> str:
        return str(uuid.UUID(int=self._uid_rng.getrandbits(128), version=4))

    def create(self, rtype: ResourceType, obj: dict, *, admit: bool = True) -> dict:
        """Store a new object: metadata, defaults, admission (pods), then notify watchers."""
        obj = drop_nulls(obj)  # a copy; ``annotations:`` left empty in YAML is absent, as the API server decodes it
        md = obj.setdefault("metadata", {})
        namespace = md.get("namespace") if rtype.namespaced else None
        if rtype.namespaced:
            namespace = namespace or "default"
            md["namespace"] = namespace
            self._check_namespace(namespace, rtype, md.get("name") or md.get("generateName", ""))
        else:
            md.pop("namespace", None)
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + "".join(self._uid_rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        key = (namespace or "", md["name"])
        if key in self._store.get(rtype.key, {}):
            raise AlreadyExists(f'Error from server (AlreadyExists): {rtype.plural_qualified} "{md["name"]}" already exists')
        obj.setdefault("apiVersion", rtype.api_version())
        obj.setdefault("kind", rtype.kind)
        if rtype.kind == "Pod" and admit:
            obj = self._admit_pod(obj)
            md = obj["metadata"]
        md["uid"] = self.new_uid()
        md["creationTimestamp"] = rfc3339(self.clock.t)
        if rtype.generation:
            md["generation"] = 1
        defaults.apply_defaults(obj)
        if rtype.kind == "Service":
            self._allocate_service(obj)
        if rtype.kind == "Job":
            self._job_selector(obj)
        if rtype.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        md["resourceVersion"] = self._bump()
        self._store.setdefault(rtype.key, {})[key] = obj
        for ref in md.get("ownerReferences") or []:
            self._dependents.setdefault(ref["uid"], {})[(rtype.group, rtype.kind, key[0], key[1])] = None
        if rtype.kind == "CustomResourceDefinition":
            self.discovery.register_crd(obj)
        self._notify(rtype, "ADDED", None, obj)
        return obj

    def update(self, rtype: ResourceType, obj: dict) -> dict:
        """Replace an object (spec and metadata changes); generation follows spec changes."""
        md = obj["metadata"]
        key = (md.get("namespace", "") if rtype.namespaced else "", md["name"])
        bucket = self._store.get(rtype.key, {})
        old = bucket.get(key)
        if old is None:
            raise NotFoundError(f'Error from server (NotFound): {rtype.plural_qualified} "{md["name"]}" not found')
        new = drop_nulls(obj)
        nmd = new["metadata"]
        omd = old["metadata"]
        for field in ("uid", "creationTimestamp"):
            nmd[field] = omd[field]
        if "deletionTimestamp" in omd:
            nmd["deletionTimestamp"] = omd["deletionTimestamp"]
        defaults.apply_defaults(new)
        if rtype.kind == "Service":
            self._keep_service_allocation(old, new)
        if "status" not in new and "status" in old:
            new["status"] = old["status"]
        if rtype.generation:
            changed = _spec_part(old) != _spec_part(new)
            nmd["generation"] = omd.get("generation", 1) + (1 if changed else 0)
        if _without_rv(old) == _without_rv(new):
            return old
        nmd["resourceVersion"] = self._bump()
        bucket[key] = new
        if rtype.kind == "CustomResourceDefinition":
            self.discovery.register_crd(new)
        self._notify(rtype, "MODIFIED", old, new)
        return new

    def update_status(self, rtype: ResourceType, obj: dict, status: dict) -> dict:
        """Write ``status`` (the /status subresource): no generation change; no-op if equal."""
        if obj.get("status") == status:
            return obj
        md = obj["metadata"]
        key = (md.get("namespace", "") if rtype.namespaced else "", md["name"])
        bucket = self._store.get(rtype.key, {})
        current = bucket.get(key)
        if current is None or current["metadata"]["uid"] != md["uid"]:
            return obj  # deleted meanwhile: a real controller's status write would 404
        if current.get("status") == status:
            return current
        new = dict(current)
        new["metadata"] = dict(current["metadata"])
        new["status"] = status
        new["metadata"]["resourceVersion"] = self._bump()
        bucket[key] = new
        self._notify(rtype, "MODIFIED", current, new)
        return new

    def mark_deleting(self, rtype: ResourceType, obj: dict, grace: float) -> dict:
        """Set ``deletionTimestamp`` (graceful pod deletion / namespace termination)."""
        md = obj["metadata"]
        if md.get("deletionTimestamp"):
            return obj
        key = (md.get("namespace", "") if rtype.namespaced else "", md["name"])
        new = dict(obj)
        new["metadata"] = dict(md)
        new["metadata"]["deletionTimestamp"] = rfc3339(self.clock.t + grace)
        new["metadata"]["deletionGracePeriodSeconds"] = int(grace)
        new["metadata"]["resourceVersion"] = self._bump()
        self._store[rtype.key][key] = new
        self._notify(rtype, "MODIFIED", obj, new)
        return new

    def remove(self, rtype: ResourceType, namespace: str | None, name: str) -> dict | None:
        """Purge an object now, then garbage-collect its dependents (background propagation)."""
        key = (namespace or "" if rtype.namespaced else "", name)
        bucket = self._store.get(rtype.key, {})
        old = bucket.pop(key, None)
        if old is None:
            return None
        self._bump()
        md = old["metadata"]
        for ref in md.get("ownerReferences") or []:
            self._dependents.get(ref["uid"], {}).pop((rtype.group, rtype.kind, key[0], key[1]), None)
        if rtype.kind == "Service":
            for ip in old.get("spec", {}).get("clusterIPs") or []:
                self._used_ips.discard(ip)
        if rtype.kind == "CustomResourceDefinition":
            self.discovery.unregister_crd(name)
        self._notify(rtype, "DELETED", old, None)
        self._collect(md["uid"])
        return old

    def _collect(self, uid: str) -> None:
        dependents = self._dependents.pop(uid, {})
        for group, kind, ns, name in list(dependents):
            rtype = self.discovery.by_key(group, kind)
            if rtype is None:
                continue
            obj = self.get(rtype, ns, name)
            if obj is not None:
                self.delete(rtype, obj)

    def delete(self, rtype: ResourceType, obj: dict) -> None:
        """Delete like the API server: pods terminate gracefully, namespaces terminate, the rest go now."""
        if rtype.kind == "Pod":
            grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            if not (obj.get("spec") or {}).get("nodeName"):
                self.remove(rtype, namespace_of(obj), name_of(obj))
            else:
                self.mark_deleting(rtype, obj, grace)
        elif rtype.kind == "Namespace":
            new = self.mark_deleting(rtype, obj, 0)
            status = dict(new.get("status") or {})
            status["phase"] = "Terminating"
            self.update_status(rtype, new, status)
        else:
            self.remove(rtype, namespace_of(obj), name_of(obj))

    def validating_admission(self, rtype: ResourceType, obj: dict, operation: str) -> tuple[str, str] | None:
        """Call the ValidatingWebhookConfigurations' webhooks that cover ``obj``: (webhook, reason) of a denial.

        A webhook is only called when its Service has ready endpoints; otherwise its
        ``failurePolicy`` decides (``Ignore``: admitted; ``Fail``: refused), as the API server does.
        """
        vwc_type = self.discovery.by_key("admissionregistration.k8s.io", "ValidatingWebhookConfiguration")
        configs = self.list(vwc_type) if vwc_type is not None else []
        if not configs:
            return None
        version = str(obj.get("apiVersion", "")).rpartition("/")[2]
        namespace = (obj.get("metadata") or {}).get("namespace")
        ns_obj = self.get(self.discovery.by_key("", "Namespace"), None, namespace) if rtype.namespaced and namespace \
            else (obj if rtype.kind == "Namespace" else None)
        for config in configs:
            for hook in config.get("webhooks") or []:
                if not _rule_matches(hook.get("rules") or [], rtype, version, operation):
                    continue
                ns_selector = hook.get("namespaceSelector")
                if ns_selector and ns_obj is not None and not selector_matches(ns_selector, labels_of(ns_obj)):
                    continue
                obj_selector = hook.get("objectSelector")
                if obj_selector and not selector_matches(obj_selector, labels_of(obj)):
                    continue
                svc = (hook.get("clientConfig") or {}).get("service") or {}
                target = (svc.get("namespace", ""), svc.get("name", ""))
                backend = self.validating_backends.get(target)
                if backend is None or not self.service_available(*target):
                    if hook.get("failurePolicy", "Fail") == "Fail":
                        raise Forbidden(
                            f'Internal error occurred: failed calling webhook "{hook.get("name")}": failed to call webhook: '
                            f'Post "https://{target[1]}.{target[0]}.svc:443/": no endpoints available for service "{target[1]}"')
                    continue
                reason = backend(obj)
                if reason:
                    return hook.get("name", ""), reason
        return None

    # -- helpers -----------------------------------------------------------------------------------
    def _check_namespace(self, namespace: str, rtype: ResourceType, name: str) -> None:
        ns_type = self.discovery.by_key("", "Namespace")
        ns = self.get(ns_type, None, namespace)
        if ns is None:
            raise NotFoundError(f'Error from server (NotFound): namespaces "{namespace}" not found')
        if (ns.get("status") or {}).get("phase") == "Terminating":
            raise Forbidden(
                f'Error from server (Forbidden): {rtype.plural_qualified} "{name}" is forbidden: unable to create new '
                f"content in namespace {namespace} because it is being terminated")

    def _allocate_service(self, svc: dict) -> None:
        spec = svc["spec"]
        if spec.get("type") == "ExternalName":
            return
        ip = spec.get("clusterIP")
        if ip in (None, ""):
            while True:
                offset = self._ip_rng.randrange(2, SERVICE_CIDR.num_addresses - 1)
                ip = str(SERVICE_CIDR.network_address + offset)
                if ip not in self._used_ips:
                    break
        if ip != "None":
            self._used_ips.add(ip)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports") or []:
                port.setdefault("nodePort", self._nodeport_rng.randrange(30000, 32768))
        if spec.get("type") == "LoadBalancer":
            svc["status"] = {"loadBalancer": {}}  # kind has no cloud LB: EXTERNAL-IP stays <pending>

    def _keep_service_allocation(self, old: dict, new: dict) -> None:
        ospec, nspec = old.get("spec") or {}, new.get("spec") or {}
        if nspec.get("clusterIP") in (None, ""):
            nspec["clusterIP"] = ospec.get("clusterIP")
        nspec.setdefault("clusterIPs", ospec.get("clusterIPs"))
        oports = {(p.get("port"), p.get("protocol")): p for p in ospec.get("ports") or []}
        for port in nspec.get("ports") or []:
            prev = oports.get((port.get("port"), port.get("protocol")))
            if prev and "nodePort" in prev:
                port.setdefault("nodePort", prev["nodePort"])

    def _job_selector(self, job: dict) -> None:
        uid = job["metadata"]["uid"]
        spec = job["spec"]
        labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": job["metadata"]["name"],
                  "controller-uid": uid, "job-name": job["metadata"]["name"]}
        if not spec.get("manualSelector"):
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        tlabels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
        for k, v in labels.items():
            tlabels.setdefault(k, v)

    def _admit_pod(self, pod: dict) -> dict:
        """Mutating admission for a new pod: webhooks in name order, then the ServiceAccount plugin."""
        ns_type = self.discovery.by_key("", "Namespace")
        namespace = pod["metadata"]["namespace"]
        ns_obj = self.get(ns_type, None, namespace)
        mwc_type = self.discovery.by_key("admissionregistration.k8s.io", "MutatingWebhookConfiguration")
        for config in self.list(mwc_type):
            for hook in config.get("webhooks") or []:
                if not _hook_applies(hook, pod, ns_obj):
                    continue
                svc = (hook.get("clientConfig") or {}).get("service") or {}
                target = (svc.get("namespace", ""), svc.get("name", ""))
                backend = self.webhook_backends.get(target)
                if backend is None or not self.service_available(*target):
                    if hook.get("failurePolicy", "Fail") == "Fail":
                        raise Forbidden(
                            f'Internal error occurred: failed calling webhook "{hook.get("name")}": failed to call webhook: '
                            f'Post "https://{target[1]}.{target[0]}.svc:443/": no endpoints available for service "{target[1]}"')
                    continue  # failurePolicy: Ignore → the pod is admitted unchanged
                pod = backend(pod, ns_obj)
        spec = pod.setdefault("spec", {})
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        sa_type = self.discovery.by_key("", "ServiceAccount")
        if self.get(sa_type, namespace, sa) is None:
            raise Forbidden(
                f'pods "{pod["metadata"].get("generateName") or pod["metadata"].get("name")}" is forbidden: error looking up '
                f'service account {namespace}/{sa}: serviceaccount "{sa}" not found')
        spec["serviceAccountName"] = sa
        return pod


def _rule_matches(rules: list, rtype: ResourceType, version: str, operation: str) -> bool:
    """Does a webhook's ``rules`` list cover this group/version/resource and operation?"""
    def has(values, wanted: str) -> bool:
        return "*" in (values or []) or wanted in (values or [])

    return any(has(r.get("apiGroups"), rtype.group) and has(r.get("apiVersions"), version)
               and has(r.get("operations"), operation) and has(r.get("resources"), rtype.plural) for r in rules or [])


def _hook_applies(hook: dict, pod: dict, ns_obj: dict | None) -> bool:
    rules = hook.get("rules") or []
    if rules and not any(
        ("pods" in (r.get("resources") or []) or "*" in (r.get("resources") or []))
        and ("CREATE" in (r.get("operations") or []) or "*" in (r.get("operations") or []))
        for r in rules
    ):
        return False
    ns_selector = hook.get("namespaceSelector")
    if ns_selector and not selector_matches(ns_selector, labels_of(ns_obj or {})):
        return False
    obj_selector = hook.get("objectSelector")
    if obj_selector and not selector_matches(obj_selector, labels_of(pod)):
        return False
    return True


def _spec_part(obj: dict) -> dict:
    """What counts as a spec change for ``metadata.generation``: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_rv(obj: dict) -> dict:
    md = {k: v for k, v in obj.get("metadata", {}).items() if k not in ("resourceVersion", "generation")}
    out = dict(obj)
    out["metadata"] = md
    out.pop("apiVersion", None)
    return out
