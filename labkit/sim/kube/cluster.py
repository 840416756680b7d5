"""The embedded cluster: the Kubernetes half of the labkit contract, over the API server and controllers.

``Cluster`` wires the components, each in its own module named for the real
one (``apiserver``, ``scheduler``, ``kubelet``, ``replicaset``,
``deployment``, ``endpoints``, ``hpa``, ``job``, ``namespace``), and answers
the contract's cluster calls (``apply``, ``get``, ``pods``, ``events``,
``set_image``, ``patch``, ``rollout_status``...). Mutations only record
intent; controllers act on the virtual clock, so after ``apply`` nothing
runs until the lab waits — exactly as ``kubectl apply`` returns before any
pod exists. Linkerd's install, check and inject (``labkit.sim.linkerd``)
are reached through the same object.

Read API for the data plane and Prometheus (stable; objects are API-shaped
dicts shared with the store — never mutate them):

``cluster.list(kind, namespace=None, selector=None) -> list[dict]``
    Live objects of a kind (any kubectl name: ``"Pod"``, ``"pods"``,
    ``"deploy"``, ``"sp"``, ``"httproute.policy.linkerd.io"``);
    ``namespace=None`` means all namespaces; ``selector`` is a
    ``{label: value}`` map or a LabelSelector (``matchLabels`` /
    ``matchExpressions``). Sorted by namespace, then name.
``cluster.revision -> int``
    Increases on every change to any object (the store's resourceVersion
    counter): cache anything derived from the cluster on it.
``cluster.ready_endpoints(service, namespace) -> list[dict]``
    The pods behind a Service's ready endpoints, in endpoint (IP) order.
``cluster.meshed_counts(kind, namespace) -> {name: (meshed, total)}``
    For ``linkerd viz stat``'s MESHED column; kind ``deploy``/``pod``/``ns``/
    ``rs``/``job``/``sts``/``ds`` (owner chain), ``svc`` (pods its selector
    picks); pods Pending or Running count, meshed = labelled
    ``linkerd.io/control-plane-ns``.
``cluster.control_plane() -> {"linkerd": bool, "viz": bool}``
    Whether each installed control plane has all its Deployments available.
``cluster.record_event(obj, type, reason, message, source=None)``
    Emit a Kubernetes Event about ``obj`` (Flagger's model uses it).

Pod dicts carry what a cluster's do: ``metadata.name/namespace/uid/labels/
annotations/ownerReferences``; ``spec.nodeName``, ``spec.serviceAccountName``,
``spec.containers[]`` (``name``, ``image``, ``command``, ``args``, ``env``,
``ports``; ``linkerd-proxy`` first when meshed, ``linkerd-debug`` last when
asked for), ``spec.initContainers``; ``status.phase``, ``status.podIP``,
``status.hostIP``, ``status.conditions`` (``Ready`` with
``lastTransitionTime``), ``status.containerStatuses[]`` (``name``,
``ready``, ``restartCount``, ``state``). :func:`pod_is_ready` answers the
common question.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labkit.errors import ApplyError, NotFoundError
from labkit.k8s import (ANNOTATIONS_LIMIT, LAST_APPLIED, annotations_size, drop_nulls, image_container, place_in_namespace,
                        strip_server_fields, three_way_merge)
from labkit.sim.clock import Clock
from labkit.sim.kube import commands
from labkit.sim.kube.apiserver import APIServer, Forbidden
from labkit.sim.kube.deployment import DeploymentController, rollout_status_message
from labkit.sim.kube.discovery import CRD_SOURCES, Discovery, DiscoveryError, ResourceType
from labkit.sim.kube.endpoints import EndpointsController
from labkit.sim.kube.events import EventRecorder
from labkit.sim.kube.hpa import HPAController
from labkit.sim.kube.job import JobController
from labkit.sim.kube.kubelet import Kubelet
from labkit.sim.kube.merge import server_side_apply
from labkit.sim.kube.namespace import NamespaceController
from labkit.sim.kube.objects import (
    PatchError, clone, json_patch, labels_of, merge_patch, name_of, namespace_of, rfc3339,
)
from labkit.sim.kube.printers import pod_ready, pod_restarts, pod_status
from labkit.sim.kube.replicaset import ReplicaSetController, pod_ready_since
from labkit.sim.kube.scheduler import Scheduler

#: The embedded cluster's nodes: a kind-like cluster, one control plane and two workers.
KUBERNETES_VERSION = "v1.32.2"
NODES = (
    ("labs-control-plane", "control-plane"),
    ("labs-worker", "<none>"),
    ("labs-worker2", "<none>"),
)
#: The nodes were created this long before virtual time zero (so AGE reads like a real cluster's).
NODE_AGE = 3 * 86400.0



class Types:
    """The built-in resource types the controllers use, looked up once."""

    def __init__(self, discovery: Discovery):
        get = discovery.by_key
        self.namespace = get("", "Namespace")
        self.node = get("", "Node")
        self.pod = get("", "Pod")
        self.service = get("", "Service")
        self.serviceaccount = get("", "ServiceAccount")
        self.configmap = get("", "ConfigMap")
        self.endpoints = get("", "Endpoints")
        self.deployment = get("apps", "Deployment")
        self.replicaset = get("apps", "ReplicaSet")
        self.job = get("batch", "Job")
        self.hpa = get("autoscaling", "HorizontalPodAutoscaler")


def pod_is_ready(pod: dict) -> bool:
    """Ready condition True and not terminating (what Endpoints and Services go by)."""
    return pod_ready_since(pod) is not None


def _images_of(obj: dict) -> list[str]:
    """The container images of a workload manifest (any pod template, or a Pod)."""
    spec = obj.get("spec") or {}
    for path in (("template",), ("jobTemplate", "spec", "template")):
        node = spec
        for part in path:
            node = (node or {}).get(part) or {}
        if node:
            spec = node.get("spec") or {}
            break
    return [c.get("image") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
            if isinstance(c, dict) and c.get("image")]


def _last_applied_too_long(obj: dict) -> list:
    """Client-side apply's error for a manifest whose last-applied copy would pass the annotations limit."""
    config_json = json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"
    annotations = {**((obj.get("metadata") or {}).get("annotations") or {}), LAST_APPLIED: config_json}
    if annotations_size(annotations) > ANNOTATIONS_LIMIT:
        from labkit.sim.kube import fielderrors

        return [fielderrors.too_long("metadata.annotations", ANNOTATIONS_LIMIT)]
    return []


@dataclass(frozen=True)
class _Planned:
    rtype: ResourceType
    obj: dict          # the manifest as applied (server fields dropped, namespace set): the last-applied copy
    namespace: str | None
    doc: Any
    stored: dict       # what the API server keeps of it: unknown fields dropped, schema defaults filled in
    warnings: tuple[str, ...] = ()


def _refused(text: str, doc, hint: str = "", status: dict | None = None) -> ApplyError:
    """kubectl's error text for a refused document, then where it is and that nothing was applied."""
    extra = f"; {hint}" if hint else ""
    error = ApplyError(f"{text}\n({doc.where}: nothing from this apply was applied{extra})")
    error.status = status
    return error


class Cluster:
    def __init__(self, clock: Clock, seed: int = 0):
        self.clock = clock
        self.seed = seed
        self.created = clock.t - NODE_AGE
        self.discovery = Discovery()
        self.types = Types(self.discovery)
        self.api = APIServer(clock, self.discovery, seed)
        self.recorder = EventRecorder(clock, seed)
        self.namespaces = NamespaceController(self)
        self.namespaces.latency = 0.002  # the ServiceAccount controller wins the race against the first pods
        self.scheduler = Scheduler(self)
        self.kubelet = Kubelet(self)
        self.replicasets = ReplicaSetController(self)
        self.deployment_controller = DeploymentController(self)
        self.endpoints = EndpointsController(self)
        self.hpas = HPAController(self)
        self.jobs = JobController(self)
        self.api.service_available = lambda ns, name: bool(self.endpoints.ready_addresses(ns, name))
        #: image → a one-line notice when the model runs it as another version (registered by Linkerd's model)
        self.image_notices: list = []
        self._noticed: set[str] = set()
        #: The real command the last contract call stands for (see :meth:`command_for`).
        self.last_command: str | None = None
        self._bootstrap()
        self._wire_app_hints()
        self._wire_webhooks()

    # -- bootstrap -----------------------------------------------------------------------------------
    def _bootstrap(self) -> None:
        """Nodes, system namespaces and Services of a freshly created kind cluster, dated NODE_AGE ago."""
        t = self.types
        for i, (name, role) in enumerate(NODES):
            labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                      "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
            spec: dict = {"podCIDR": f"10.244.{i}.0/24", "podCIDRs": [f"10.244.{i}.0/24"], "providerID": f"kind://docker/labs/{name}"}
            if role == "control-plane":
                labels["node-role.kubernetes.io/control-plane"] = ""
                labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
                spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
            node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": spec,
                    "status": {"addresses": [{"address": f"172.18.0.{i + 2}", "type": "InternalIP"},
                                             {"address": name, "type": "Hostname"}],
                               "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                               "message": "kubelet is posting ready status",
                                               "lastHeartbeatTime": rfc3339(self.clock.t),
                                               "lastTransitionTime": rfc3339(self.created + 20)}],
                               "nodeInfo": {"architecture": "amd64", "containerRuntimeVersion": "containerd://2.0.2",
                                            "kernelVersion": "6.8.0-49-generic", "kubeProxyVersion": KUBERNETES_VERSION,
                                            "kubeletVersion": KUBERNETES_VERSION, "operatingSystem": "linux",
                                            "osImage": "Debian GNU/Linux 12 (bookworm)"},
                               "capacity": {"cpu": "8", "memory": "32823172Ki", "pods": "110"},
                               "allocatable": {"cpu": "8", "memory": "32823172Ki", "pods": "110"}}}
            self.api.create(t.node, node)
        for ns in ("default", "kube-node-lease", "kube-public", "kube-system", "local-path-storage"):
            self.api.create(t.namespace, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            self.api.create(t.serviceaccount, {"apiVersion": "v1", "kind": "ServiceAccount",
                                               "metadata": {"name": "default", "namespace": ns}})
        self.api.create(t.service, {"apiVersion": "v1", "kind": "Service",
                                    "metadata": {"name": "kubernetes", "namespace": "default",
                                                 "labels": {"component": "apiserver", "provider": "kubernetes"}},
                                    "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}})
        self.api.create(t.service, {"apiVersion": "v1", "kind": "Service",
                                    "metadata": {"name": "kube-dns", "namespace": "kube-system",
                                                 "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
                                    "spec": {"clusterIP": "10.96.0.10", "selector": {"k8s-app": "kube-dns"},
                                             "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                                       {"name": "dns-tcp", "port": 53, "targetPort": 53},
                                                       {"name": "metrics", "port": 9153, "targetPort": 9153}]}})
        stamp = rfc3339(self.created)
        for rtype in (t.node, t.namespace, t.serviceaccount, t.service):
            for obj in self.api.list(rtype):
                obj["metadata"]["creationTimestamp"] = stamp  # backdated: the cluster predates the lab

    def _wire_app_hints(self) -> None:
        """Let the app models (if loaded) say how long an image takes to start; optional."""
        try:
            from labkit.sim import apps
        except Exception:  # pragma: no cover - the app package is optional for the cluster model
            return
        hint = getattr(apps, "startup_seconds", None)
        if callable(hint):
            self.kubelet.startup_hint = hint

    def _wire_webhooks(self) -> None:
        """Linkerd's validating webhooks, behind their Services (called once ``linkerd install`` has made them ready)."""
        from labkit.sim.linkerd import webhooks

        self.api.validating_backends.update(webhooks.BACKENDS)

    # -- node helpers (kubelet) -------------------------------------------------------------------------
    def node_ip(self, node: str) -> str:
        obj = self.api.get(self.types.node, None, node)
        return next(a["address"] for a in obj["status"]["addresses"] if a["type"] == "InternalIP")

    def node_pod_cidr(self, node: str) -> str:
        return self.api.get(self.types.node, None, node)["spec"]["podCIDR"]

    # -- resolution ----------------------------------------------------------------------------------
    def resolve(self, kind: str) -> ResourceType:
        try:
            return self.discovery.resolve(kind)
        except DiscoveryError as exc:
            raise NotFoundError(str(exc)) from None

    @staticmethod
    def _ns(namespace: str | None) -> str:
        return namespace or "default"

    # -- the data plane's read API --------------------------------------------------------------------
    @property
    def revision(self) -> int:
        """Increases on every change to any object: a cache key for anything derived from the cluster."""
        return self.api.revision

    def list(self, kind: str, namespace: str | None = None, selector: dict | None = None) -> list[dict]:
        """Live objects of ``kind`` (all namespaces when ``namespace`` is None). Do not mutate them."""
        rtype = self.resolve(kind)
        if rtype.kind == "Event":
            return [e.to_api() for e in self.recorder.live(namespace)]
        return self.api.list(rtype, namespace if rtype.namespaced else None, selector)

    def ready_endpoints(self, service: str, namespace: str | None = None) -> list[dict]:
        """The pods behind ``service``'s ready endpoints (what a client's request can reach)."""
        namespace = self._ns(namespace)
        pods = []
        for address in self.endpoints.ready_addresses(namespace, service):
            ref = address.get("targetRef") or {}
            pod = self.api.get(self.types.pod, ref.get("namespace", namespace), ref.get("name", ""))
            if pod is not None:
                pods.append(pod)
        return pods

    def workload_owner(self, pod: dict) -> tuple[str, str] | None:
        """(kind, name) of the workload that owns ``pod``, following ReplicaSet → Deployment like Linkerd does."""
        refs = (pod.get("metadata") or {}).get("ownerReferences") or []
        ref = next((r for r in refs if r.get("controller")), None)
        if ref is None:
            return None
        kind, name = ref["kind"], ref["name"]
        namespace = namespace_of(pod) or "default"
        if kind == "ReplicaSet":
            rs = self.api.get(self.types.replicaset, namespace, name)
            parent = next((r for r in ((rs or {}).get("metadata") or {}).get("ownerReferences") or [] if r.get("controller")), None)
            if parent is not None and parent["kind"] == "Deployment":
                return "deployment", parent["name"]
        if kind == "Job":
            job = self.api.get(self.types.job, namespace, name)
            parent = next((r for r in ((job or {}).get("metadata") or {}).get("ownerReferences") or [] if r.get("controller")), None)
            if parent is not None and parent["kind"] == "CronJob":
                return "cronjob", parent["name"]
        return kind.lower(), name

    def meshed_counts(self, kind: str, namespace: str | None = None) -> dict[str, tuple[int, int]]:
        """``{name: (meshed pods, pods)}`` per resource of ``kind``, as ``linkerd viz stat`` counts them."""
        from labkit.sim.linkerd import is_meshed

        rtype = self.resolve(kind)
        pods = [p for p in self.api.list(self.types.pod, namespace)
                if (p.get("status") or {}).get("phase", "Pending") in ("Pending", "Running")]
        counts: dict[str, list[int]] = {}
        if rtype.kind != "Pod":
            for obj in self.api.list(rtype, namespace if rtype.namespaced else None):
                if rtype.kind != "Namespace" or namespace is None or name_of(obj) == namespace:
                    counts[name_of(obj)] = [0, 0]
        if rtype.kind == "Service":
            from labkit.sim.kube.objects import selector_matches

            for svc in self.api.list(rtype, namespace):
                selector = (svc.get("spec") or {}).get("selector")
                mine = [p for p in pods if namespace_of(p) == namespace_of(svc) and selector and selector_matches(selector, labels_of(p))]
                counts[name_of(svc)] = [sum(1 for p in mine if is_meshed(p)), len(mine)]
            return {k: (v[0], v[1]) for k, v in counts.items()}
        for pod in pods:
            if rtype.kind == "Pod":
                key = name_of(pod)
            elif rtype.kind == "Namespace":
                key = namespace_of(pod)
            else:
                owner = self.workload_owner(pod)
                if rtype.kind == "ReplicaSet":
                    ref = next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
                    owner = ("replicaset", ref["name"]) if ref and ref["kind"] == "ReplicaSet" else None
                if owner is None or owner[0] != rtype.kind.lower():
                    continue
                key = owner[1]
            entry = counts.setdefault(key, [0, 0])
            entry[1] += 1
            entry[0] += 1 if is_meshed(pod) else 0
        return {k: (v[0], v[1]) for k, v in counts.items()}

    def control_plane(self) -> dict[str, bool]:
        """``{"linkerd": ready, "viz": ready}``: every Deployment of the namespace available."""
        out = {}
        for key, ns, expected in (("linkerd", "linkerd", ("linkerd-destination", "linkerd-identity", "linkerd-proxy-injector")),
                                  ("viz", "linkerd-viz", ("metrics-api", "prometheus", "tap", "tap-injector", "web"))):
            deploys = {name_of(d): d for d in self.api.list(self.types.deployment, ns)}
            out[key] = all(
                name in deploys and (deploys[name].get("status") or {}).get("availableReplicas", 0) >= deploys[name]["spec"].get("replicas", 1) > 0
                for name in expected)
        return out

    def record_event(self, obj: dict, type: str, reason: str, message: str, source: str | None = None) -> None:
        """Emit an Event about ``obj`` (shown by :meth:`events`, aggregated like the real recorder)."""
        self.recorder.record(obj, type, reason, message, source=source)

    # -- apply ----------------------------------------------------------------------------------------
    def apply(self, source, namespace: str | None = None, *, server_side: bool = False,
              validate: str | bool = "strict") -> list[str]:
        """``kubectl apply [--server-side] [--validate=...] -f SOURCE [-n NAMESPACE]`` → ``["deployment.apps/web created", ...]``.

        Every document is first judged as the API server judges it
        (:func:`labkit.sim.kube.validation.review`); if any is refused, one
        :class:`ApplyError` says what kubectl prints for it, and nothing from
        this call is applied. ``validate`` is kubectl's ``--validate``:
        ``"strict"`` (its default) refuses unknown and duplicate fields,
        ``"warn"`` drops them with a ``Warning:`` line each (on stderr, as
        kubectl prints them), ``"ignore"`` drops them silently. Client-side
        apply stores the manifest in the last-applied annotation, which the API
        server refuses past 262,144 bytes (large CRDs such as the Gateway
        API's): ``server_side=True`` merges on the server instead and keeps no
        such copy, as the Gateway API docs advise.
        """
        from labkit import manifests
        from labkit.sim.kube.validation import field_validation

        mode = field_validation(validate)
        docs, arg = manifests.load(source, "apply")
        self.last_command = commands.kubectl_apply(arg, namespace)
        if server_side:
            self.last_command = self.last_command.replace("kubectl apply", "kubectl apply --server-side", 1)
        if mode != "Strict":
            self.last_command = self.last_command.replace("kubectl apply", f"kubectl apply --validate={mode.lower()}", 1)
        return self._apply_docs(docs, namespace, check_images=True, server_side=server_side, validation=mode)

    def apply_objects(self, objs: list[dict], *, origin: str, namespace: str | None = None,
                      check_images: bool = False, dry_run: bool = False, server_side: bool = False) -> list[str]:
        """Apply rendered objects (installers): same semantics as :meth:`apply`, without touching ``last_command``."""
        from labkit.manifests import parse_objects

        return self._apply_docs(parse_objects(objs, origin), namespace, check_images=check_images, dry_run=dry_run,
                                server_side=server_side)

    def _image_checker(self):
        try:
            from labkit.sim.apps import check_image
        except Exception:  # pragma: no cover - until the app models land, every image is accepted
            return None
        return check_image

    def _plan(self, docs, namespace: str | None, check_images: bool, server_side: bool = False,
              validation: str = "Strict") -> list[_Planned]:
        from labkit.k8s import kubectl_source, metadata_decode_error
        from labkit.sim.kube.validation import StatusError, deprecation, review

        checker = self._image_checker() if check_images else None
        pending_namespaces: set[str] = set()
        planned = []
        for doc in docs:
            obj = doc.obj
            source = kubectl_source(doc.origin)
            api_version, kind = obj.get("apiVersion"), obj.get("kind")
            missing = [f for f, v in (("apiVersion", api_version), ("kind", kind)) if not v]
            if missing:
                raise _refused(f"error: error validating \"{source}\": error validating data: "
                               f"[{', '.join(m + ' not set' for m in missing)}]", doc)
            problem = metadata_decode_error(obj)
            if problem:
                raise _refused(f'error: unable to decode "{source}": {problem}', doc)
            name = (obj.get("metadata") or {}).get("name", "")
            rtype = self.discovery.for_manifest(str(api_version), str(kind))
            if rtype is None:
                group = str(api_version).rpartition("/")[0]
                hint = CRD_SOURCES.get(group)
                where = f' namespace: "{(obj.get("metadata") or {}).get("namespace") or namespace or "default"}"' \
                    if group or kind not in ("Namespace", "Node") else ""
                message = (f'error: resource mapping not found for name: "{name}"{where} from "{doc.where}": '
                           f'no matches for kind "{kind}" in version "{api_version}"\nensure CRDs are installed first')
                if hint:
                    message += f" — {kind} comes with {hint}"
                raise ApplyError(message + "; nothing from this apply was applied")
            obj = strip_server_fields(drop_nulls(obj))
            target_ns = place_in_namespace(obj, namespace, doc.where) if rtype.namespaced else None
            live = self.api.get(rtype, target_ns, name) if name else None
            try:
                verdict = review(self.api, rtype, obj, validation=validation, duplicates=doc.duplicates, old=live,
                                 check_image=checker, operation="UPDATE" if live is not None else "CREATE")
            except StatusError as exc:
                raise _refused(exc.kubectl("patching" if live is not None else "creating", source), doc,
                               status=exc.status()) from None
            except Forbidden as exc:
                raise _refused(f"Error from server (InternalError): error when creating \"{source}\": {exc}", doc) from None
            if not server_side:
                too_long = _last_applied_too_long(obj)
                if too_long:
                    from labkit.sim.kube.validation import invalid

                    refusal = invalid(rtype.kind, rtype.group, name, too_long)
                    raise _refused(refusal.kubectl(), doc, status=refusal.status(), hint=(f"client-side apply keeps a copy of the whole manifest in the "
                                                    f"{LAST_APPLIED} annotation; apply it with server_side=True, as "
                                                    "`kubectl apply --server-side` does"))
            if rtype.kind == "Namespace":
                pending_namespaces.add(name)
            elif target_ns is not None and target_ns not in pending_namespaces:
                ns_obj = self.api.get(self.types.namespace, None, target_ns)
                if ns_obj is None:
                    raise ApplyError(f'Error from server (NotFound): error when creating "{doc.where}": namespaces "{target_ns}" '
                                     f"not found ({rtype.kind} {name!r}); nothing from this apply was applied")
                if (ns_obj.get("status") or {}).get("phase") == "Terminating":
                    raise ApplyError(f'Error from server (Forbidden): error when creating "{doc.where}": {rtype.plural_qualified} '
                                     f'"{name}" is forbidden: unable to create new content in namespace {target_ns} because it is '
                                     "being terminated; nothing from this apply was applied")
            deprecated = deprecation(self.api, rtype, str(api_version).rpartition("/")[2])
            planned.append(_Planned(rtype, obj, target_ns, doc, verdict.obj,
                                    (deprecated,) * bool(deprecated) + tuple(verdict.warnings)))
        return planned

    def _apply_docs(self, docs, namespace: str | None, *, check_images: bool, dry_run: bool = False,
                    server_side: bool = False, validation: str = "Strict") -> list[str]:
        planned = self._plan(docs, namespace, check_images, server_side, validation)
        if not dry_run:
            self._print_warnings(planned)
        if check_images and not dry_run:
            self._notice_images(planned)
        lines = []
        for p in planned:
            name = p.obj["metadata"]["name"]
            live = self.api.get(p.rtype, p.namespace, name)
            if server_side:
                lines.append(self._server_side_apply(p, live, dry_run))
                continue
            config = clone(p.stored)
            config["metadata"].setdefault("annotations", {})
            config_json = json.dumps(p.obj, sort_keys=True, separators=(",", ":")) + "\n"
            if live is None:
                if not dry_run:
                    config["metadata"]["annotations"][LAST_APPLIED] = config_json
                    try:
                        self.api.create(p.rtype, config)
                    except (Forbidden, NotFoundError) as exc:
                        raise ApplyError(f"{exc} ({p.doc.where})") from None
                lines.append(f"{p.rtype.qualified}/{name} created")
                continue
            previous = (live["metadata"].get("annotations") or {}).get(LAST_APPLIED)
            last = json.loads(previous) if previous else {}
            merged = three_way_merge(live, last, p.stored)
            merged["metadata"].setdefault("annotations", {})[LAST_APPLIED] = config_json
            if dry_run:
                lines.append(f"{p.rtype.qualified}/{name} {'unchanged' if _same(live, merged, p.rtype) else 'configured'}")
                continue
            stored = self.api.update(p.rtype, merged)
            lines.append(f"{p.rtype.qualified}/{name} {'unchanged' if stored is live else 'configured'}")
        return lines

    @staticmethod
    def _print_warnings(planned: list[_Planned]) -> None:
        """``Warning: unknown field "spec.replica"``: the API server's warnings, printed as kubectl prints them."""
        import sys

        for p in planned:
            for text in p.warnings:
                print(f"Warning: {text}", file=sys.stderr)

    def _notice_images(self, planned: list[_Planned]) -> None:
        """Print, once per image, kubectl-style ``Warning:`` lines for images run as another version."""
        import sys

        for p in planned:
            for text in self.image_notices_for(p.obj):
                print(f"Warning: {text}", file=sys.stderr)

    def image_notices_for(self, obj: dict) -> list[str]:
        """The one-line notices for ``obj``'s images not noticed before (each image is noticed once per mesh)."""
        out = []
        for image in _images_of(obj):
            if image in self._noticed:
                continue
            for notice in self.image_notices:
                text = notice(image)
                if text:
                    self._noticed.add(image)
                    out.append(text)
                    break
        return out

    def _server_side_apply(self, p: _Planned, live: dict | None, dry_run: bool) -> str:
        """``kubectl apply --server-side``: the manifest merged into the live object, no last-applied copy."""
        name = p.obj["metadata"]["name"]
        if live is None:
            if not dry_run:
                try:
                    self.api.create(p.rtype, clone(p.stored))
                except (Forbidden, NotFoundError) as exc:
                    raise ApplyError(f"{exc} ({p.doc.where})") from None
            return f"{p.rtype.qualified}/{name} serverside-applied"
        merged = server_side_apply(live, p.stored)
        if not dry_run:
            self.api.update(p.rtype, merged)
        return f"{p.rtype.qualified}/{name} serverside-applied"

    # -- delete ------------------------------------------------------------------------------------------
    def delete(self, source, namespace: str | None = None) -> list[str]:
        """``kubectl delete -f SOURCE`` or ``kubectl delete KIND/NAME`` (``"ns/booksapp"``, ``"trafficsplit/error-split"``)."""
        from labkit import manifests

        if isinstance(source, str) and re.fullmatch(r"[A-Za-z][\w.-]*/[a-z0-9][\w.-]*", source.strip()) and \
                not (manifests.MANIFESTS / source).exists():
            kind, name = source.strip().split("/", 1)
            rtype = self.resolve(kind)
            self.last_command = commands.kubectl("delete", f"{rtype.singular}/{name}", namespace if rtype.namespaced else None)
            targets = [(rtype, (namespace or "default") if rtype.namespaced else None, name)]
        else:
            docs, arg = manifests.load(source, "delete")
            self.last_command = commands.kubectl("delete", f"-f {arg}", namespace)
            targets = []
            for doc in docs:
                rtype = self.discovery.for_manifest(str(doc.obj.get("apiVersion", "")), str(doc.obj.get("kind", "")))
                if rtype is None:
                    raise ApplyError(f'error: resource mapping not found for "{doc.where}": no matches for kind '
                                     f'"{doc.obj.get("kind")}" in version "{doc.obj.get("apiVersion")}"')
                ns = ((doc.obj.get("metadata") or {}).get("namespace") or namespace or "default") if rtype.namespaced else None
                targets.append((rtype, ns, (doc.obj.get("metadata") or {}).get("name", "")))
        lines, missing = [], []
        for rtype, ns, name in targets:
            obj = self.api.get(rtype, ns, name)
            if obj is None:
                missing.append(f'Error from server (NotFound): {rtype.plural_qualified} "{name}" not found')
                continue
            self.api.delete(rtype, obj)
            lines.append(f'{rtype.qualified} "{name}" deleted')
        if missing:
            raise NotFoundError("\n".join(lines + missing))
        return lines

    # -- reads -----------------------------------------------------------------------------------------------
    def get(self, kind: str, name: str | None = None, namespace: str | None = None) -> dict:
        """``kubectl get KIND NAME -o yaml`` as a dict (a copy; safe to modify). No name: a ``List``."""
        rtype = self.resolve(kind)
        ns = self._ns(namespace) if rtype.namespaced else None
        self.last_command = commands.kubectl("get", f"{rtype.singular} {name or ''}".strip() + " -o yaml", ns)
        if rtype.kind == "Event":
            items = [e.to_api() for e in self.recorder.live(ns)]
            if name is None:
                return {"apiVersion": "v1", "kind": "List", "items": items}
            for item in items:
                if item["metadata"]["name"] == name:
                    return item
            raise NotFoundError(f'Error from server (NotFound): events "{name}" not found')
        if name is None:
            return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                    "items": [clone(o) for o in self.api.list(rtype, ns)]}
        return clone(self.api.require(rtype, ns, name))

    def pods(self, namespace: str | None = None) -> pd.DataFrame:
        """``kubectl get pods``: NAME READY STATUS RESTARTS AGE (``namespace="*"``: all namespaces)."""
        from labkit.tables import new_table

        all_ns = namespace == "*"
        ns = None if all_ns else self._ns(namespace)
        self.last_command = "kubectl get pods -A" if all_ns else commands.kubectl("get", "pods", ns)
        rows = []
        for pod in self.api.list(self.types.pod, ns):
            ready, total = pod_ready(pod)
            row = {"NAME": name_of(pod), "READY": f"{ready}/{total}", "STATUS": pod_status(pod),
                   "RESTARTS": pod_restarts(pod), "AGE": self.clock.t - _created(pod)}
            if all_ns:
                row = {"NAMESPACE": namespace_of(pod), **row}
            rows.append(row)
        return new_table("pods", rows, all_namespaces=all_ns, namespace=ns)

    def nodes(self) -> pd.DataFrame:
        from labkit.tables import new_table

        self.last_command = "kubectl get nodes"
        rows = []
        for node in self.api.list(self.types.node):
            labels = labels_of(node)
            roles = ",".join(k.split("/", 1)[1] for k in sorted(labels) if k.startswith("node-role.kubernetes.io/")) or "<none>"
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
            rows.append({"NAME": name_of(node), "STATUS": "Ready" if ready else "NotReady", "ROLES": roles,
                         "AGE": self.clock.t - _created(node), "VERSION": node["status"]["nodeInfo"]["kubeletVersion"]})
        return new_table("nodes", rows)

    def deployments(self, namespace: str | None = None) -> pd.DataFrame:
        """``kubectl get deploy``: NAME READY UP-TO-DATE AVAILABLE AGE."""
        from labkit.tables import new_table

        ns = self._ns(namespace)
        self.last_command = commands.kubectl("get", "deploy", ns)
        rows = []
        for d in self.api.list(self.types.deployment, ns):
            status = d.get("status") or {}
            rows.append({"NAME": name_of(d), "READY": f"{status.get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}",
                         "UP-TO-DATE": status.get("updatedReplicas", 0), "AVAILABLE": status.get("availableReplicas", 0),
                         "AGE": self.clock.t - _created(d)})
        return new_table("deployments", rows, namespace=ns)

    def events(self, namespace: str | None = None) -> pd.DataFrame:
        """``kubectl get events``: LAST SEEN TYPE REASON OBJECT MESSAGE, oldest first (``"*"``: all namespaces)."""
        from labkit.tables import new_table

        all_ns = namespace == "*"
        ns = None if all_ns else self._ns(namespace)
        self.last_command = "kubectl get events -A" if all_ns else commands.kubectl("get", "events", ns)
        rows = []
        for e in self.recorder.live(ns):
            row = {"LAST SEEN": self.clock.t - e.last, "TYPE": e.type, "REASON": e.reason,
                   "OBJECT": f"{e.involved['kind'].lower()}/{e.involved['name']}", "MESSAGE": e.message}
            if all_ns:
                row = {"NAMESPACE": e.namespace, **row}
            rows.append(row)
        return new_table("events", rows, all_namespaces=all_ns, namespace=ns)

    # -- changes -----------------------------------------------------------------------------------------------
    def _deployment(self, deployment: str, namespace: str | None) -> dict:
        name = deployment.split("/", 1)[1] if "/" in deployment else deployment
        return self.api.require(self.types.deployment, self._ns(namespace), name)

    def set_image(self, deployment: str, image: str, namespace: str | None = None, container: str | None = None) -> str:
        """``kubectl set image deployment/NAME CONTAINER=IMAGE`` (a template change: a rollout)."""
        deploy = self._deployment(deployment, namespace)
        index, container, image = image_container(deploy, image, container)
        self.last_command = commands.kubectl("set image", f"deployment/{name_of(deploy)} {container}={image}", namespace_of(deploy))
        checker = self._image_checker()
        if checker is not None:
            try:
                checker(image)
            except ValueError as exc:
                raise ApplyError(f"error: deployment/{name_of(deploy)}: spec.template.spec.containers[{index}].image: {exc}") from None
        new = clone(deploy)
        for c in new["spec"]["template"]["spec"]["containers"]:
            if c["name"] == container:
                c["image"] = image
        stored = self.api.update(self.types.deployment, new)
        return f"deployment.apps/{name_of(deploy)} image {'updated' if stored is not deploy else 'unchanged'}"

    def patch(self, kind: str, name: str, patch, namespace: str | None = None) -> dict:
        """``kubectl patch``: a dict is a JSON merge patch; a list of ops is a JSON patch (RFC 6902)."""
        rtype = self.resolve(kind)
        ns = self._ns(namespace) if rtype.namespaced else None
        if isinstance(patch, str):
            import yaml

            patch = yaml.safe_load(patch)
        kind_flag = "json" if isinstance(patch, list) else "merge"
        self.last_command = commands.kubectl("patch", f"{rtype.singular} {name} --type {kind_flag} -p '{json.dumps(patch)}'", ns)
        live = self.api.require(rtype, ns, name)
        try:
            new = json_patch(live, patch) if isinstance(patch, list) else merge_patch(live, patch)
        except PatchError as exc:
            raise ApplyError(f"error: {rtype.qualified}/{name}: {exc}") from None
        for key in ("name", "namespace", "uid"):
            if new.get("metadata", {}).get(key) != live["metadata"].get(key):
                raise ApplyError(f"error: {rtype.qualified}/{name}: metadata.{key} cannot be changed by a patch")
        from labkit.sim.kube.validation import StatusError, review

        try:
            verdict = review(self.api, rtype, new, old=live, check_image=self._image_checker(), operation="UPDATE")
        except StatusError as exc:
            error = ApplyError(exc.kubectl())
            error.status = exc.status()
            raise error from None
        return clone(self.api.update(rtype, verdict.obj))

    def rollout_restart(self, deployment: str, namespace: str | None = None) -> list[str]:
        """``kubectl rollout restart deploy[/NAME]``: new pods (e.g. to pick up injection or tap)."""
        ns = self._ns(namespace)
        target = deployment.split("/", 1)[1] if "/" in deployment else None
        if "/" not in deployment and deployment not in ("deploy", "deployment", "deployments"):
            target = deployment
        self.last_command = commands.kubectl("rollout restart", f"deployment/{target}" if target else "deploy", ns)
        deploys = [self._deployment(target, ns)] if target else self.api.list(self.types.deployment, ns)
        lines = []
        for d in deploys:
            new = clone(d)
            tpl_meta = new["spec"]["template"].setdefault("metadata", {})
            tpl_meta.setdefault("annotations", {})["kubectl.kubernetes.io/restartedAt"] = rfc3339(self.clock.t)
            self.api.update(self.types.deployment, new)
            lines.append(f"deployment.apps/{name_of(d)} restarted")
        return lines

    def rollout_status(self, deployment: str, namespace: str | None = None) -> str:
        """``kubectl rollout status deployment/NAME --watch=false``: the current message."""
        deploy = self._deployment(deployment, namespace)
        self.last_command = commands.kubectl("rollout status", f"deployment/{name_of(deploy)} --watch=false", namespace_of(deploy))
        return rollout_status_message(deploy)[0]

    def rollout_history(self, deployment: str, namespace: str | None = None) -> list[tuple[int, str]]:
        """``kubectl rollout history``: (revision, image list) per ReplicaSet, oldest first."""
        from labkit.sim.kube.deployment import rs_revision

        deploy = self._deployment(deployment, namespace)
        self.last_command = commands.kubectl("rollout history", f"deployment/{name_of(deploy)}", namespace_of(deploy))
        rows = []
        for rs in self.deployment_controller.owned(deploy):
            images = ",".join(c["image"] for c in rs["spec"]["template"]["spec"]["containers"])
            rows.append((rs_revision(rs), images))
        return sorted(rows)

    def kill_container(self, pod: str, container: str, namespace: str | None = None, exit_code: int = 137) -> None:
        """Crash a container (the restart policy brings it back; RESTARTS counts it)."""
        obj = self.api.require(self.types.pod, self._ns(namespace), pod)
        self.kubelet.kill_container(obj, container, exit_code=exit_code)

    # -- Linkerd ---------------------------------------------------------------------------------------------
    def install_linkerd(self, viz: bool = True) -> list[str]:
        """``linkerd install --crds | kubectl apply -f - && linkerd install | kubectl apply -f -`` (+ viz)."""
        from labkit.sim.linkerd import install

        self.last_command = install.INSTALL_COMMAND + (" && " + install.VIZ_COMMAND if viz else "")
        return install.install(self, viz=viz)

    def install_gateway_api(self, channel: str = "standard") -> list[str]:
        """``kubectl apply --server-side -f …/v1.2.1/<channel>-install.yaml``: the Gateway API CRDs Linkerd 2.20
        needs (the experimental channel adds TCPRoute and TLSRoute)."""
        from labkit.sim.linkerd import install

        url = install.gateway_api_url(channel)
        self.last_command = f"kubectl apply --server-side -f {url}"
        return self.apply_objects(install.gateway_api_objects(channel), origin=url, server_side=True)

    def install_smi(self) -> list[str]:
        """``linkerd smi install | kubectl apply -f -``: the linkerd-smi extension (SMI's TrafficSplit)."""
        from labkit.sim.linkerd import install

        self.last_command = install.SMI_COMMAND
        return self.apply_objects(install.smi_objects(), origin="linkerd smi install")

    def check(self, pre: bool = False, proxy: bool = False, namespace: str | None = None):
        """``linkerd check`` (``--pre``, ``--proxy``, ``-n``): a CheckReport computed from the cluster."""
        from labkit.sim.linkerd import check

        self.last_command = commands.linkerd_check(pre, proxy, namespace)
        return check.check(self, pre=pre, proxy=proxy, namespace=namespace)

    def inject(self, kind: str, namespace: str | None = None, name: str | None = None, **options) -> list[str]:
        """``kubectl get KIND [NAME] -o yaml | linkerd inject - | kubectl apply -f -``: report + apply lines."""
        from labkit.manifests import inject_objects

        objs, ns = self._round_trip_objects(kind, namespace, name)
        self.last_command = commands.round_trip(kind, ns, name, "inject", options)
        new, report, warnings = inject_objects(objs, **options)
        return warnings + report + self.apply_objects(new, origin="<stdin>", namespace=None)

    def uninject(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[str]:
        """``kubectl get KIND [NAME] -o yaml | linkerd uninject - | kubectl apply -f -``."""
        from labkit.manifests import uninject_objects

        objs, ns = self._round_trip_objects(kind, namespace, name)
        self.last_command = commands.round_trip(kind, ns, name, "uninject", {})
        new, report = uninject_objects(objs)
        return report + self.apply_objects(new, origin="<stdin>", namespace=None)

    def _round_trip_objects(self, kind: str, namespace: str | None, name: str | None) -> tuple[list[dict], str | None]:
        rtype = self.resolve(kind)
        ns = self._ns(namespace) if rtype.namespaced else None
        if name is not None:
            objs = [clone(self.api.require(rtype, ns, name))]
        else:
            objs = [clone(o) for o in self.api.list(rtype, ns)]
            if not objs:
                raise NotFoundError(f"No resources found in {ns} namespace." if ns else "No resources found")
        for obj in objs:
            obj.pop("status", None)
        return objs, ns

    # -- equivalent commands -----------------------------------------------------------------------------
    def command_for(self, method: str, *args, **kwargs) -> str:
        """The real command a contract call stands for, without running it (``command_for("check", pre=True)``)."""
        return commands.command_for(method, *args, **kwargs)


# -- apply helpers ------------------------------------------------------------------------------------------

def _created(obj: dict) -> float:
    from labkit.sim.kube.objects import parse_rfc3339

    return parse_rfc3339(obj["metadata"]["creationTimestamp"])


def _same(live: dict, merged: dict, rtype: ResourceType) -> bool:
    from labkit.sim.kube import defaults

    candidate = defaults.apply_defaults(clone(merged))
    strip = lambda o: {k: v for k, v in o.items() if k not in ("status",)}  # noqa: E731
    a, b = strip(live), strip(candidate)
    a = {**a, "metadata": {k: v for k, v in a["metadata"].items() if k not in ("resourceVersion", "generation")}}
    b = {**b, "metadata": {k: v for k, v in b["metadata"].items() if k not in ("resourceVersion", "generation")}}
    return a == b
