"""API discovery: which kinds the embedded API server serves, and how kubectl names them.

A real ``kubectl`` resolves ``deploy``, ``deployments`` or ``deployment.apps``
through the API server's discovery documents, and ``kubectl apply`` refuses a
kind whose group/version is not served (``no matches for kind ...``). The
embedded cluster does the same from two sources: the built-in kinds of a
Kubernetes 1.32 API server (below) and the CustomResourceDefinitions that
have been applied, so ServiceProfile, TrafficSplit, HTTPRoute or Canary exist
exactly when Linkerd's or Flagger's CRDs have been installed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from labkit.errors import LabkitError


@dataclass(frozen=True)
class ResourceType:
    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    #: For kinds from a CRD: the CRD's name (``serviceprofiles.linkerd.io``).
    crd: str | None = None
    #: Does the API server track ``metadata.generation`` for this kind?
    generation: bool = False

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """kubectl's ``kind.group`` form used in apply/delete output: ``deployment.apps``, ``service``."""
        return f"{self.singular}.{self.group}" if self.group else self.singular

    @property
    def plural_qualified(self) -> str:
        """The form in API errors: ``deployments.apps "web" not found``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.kind)

    def api_version(self, version: str | None = None) -> str:
        v = version or self.versions[-1]
        return f"{self.group}/{v}" if self.group else v


def _rt(group, kind, plural, versions, namespaced=True, short=(), generation=False) -> ResourceType:
    return ResourceType(group, kind, plural, tuple(versions), namespaced, tuple(short), None, generation)


#: Kubernetes 1.32's built-in kinds the labs (and Linkerd's install) touch. Versions listed
#: oldest → preferred; removed versions (autoscaling/v2beta1, extensions/v1beta1...) are absent,
#: so an old manifest fails the way it does on a current cluster.
BUILTIN: tuple[ResourceType, ...] = (
    _rt("", "Namespace", "namespaces", ["v1"], namespaced=False, short=["ns"]),
    _rt("", "Node", "nodes", ["v1"], namespaced=False, short=["no"]),
    _rt("", "Pod", "pods", ["v1"], short=["po"]),
    _rt("", "Service", "services", ["v1"], short=["svc"]),
    _rt("", "ServiceAccount", "serviceaccounts", ["v1"], short=["sa"]),
    _rt("", "ConfigMap", "configmaps", ["v1"], short=["cm"]),
    _rt("", "Secret", "secrets", ["v1"]),
    _rt("", "Endpoints", "endpoints", ["v1"], short=["ep"]),
    _rt("", "Event", "events", ["v1"], short=["ev"]),
    _rt("", "PersistentVolumeClaim", "persistentvolumeclaims", ["v1"], short=["pvc"]),
    _rt("apps", "Deployment", "deployments", ["v1"], short=["deploy"], generation=True),
    _rt("apps", "ReplicaSet", "replicasets", ["v1"], short=["rs"], generation=True),
    _rt("apps", "StatefulSet", "statefulsets", ["v1"], short=["sts"], generation=True),
    _rt("apps", "DaemonSet", "daemonsets", ["v1"], short=["ds"], generation=True),
    _rt("batch", "Job", "jobs", ["v1"], generation=True),
    _rt("batch", "CronJob", "cronjobs", ["v1"], short=["cj"], generation=True),
    _rt("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", ["v1", "v2"], short=["hpa"], generation=True),
    _rt("networking.k8s.io", "Ingress", "ingresses", ["v1"], short=["ing"], generation=True),
    _rt("networking.k8s.io", "NetworkPolicy", "networkpolicies", ["v1"], short=["netpol"], generation=True),
    _rt("policy", "PodDisruptionBudget", "poddisruptionbudgets", ["v1"], short=["pdb"], generation=True),
    _rt("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", ["v1"], namespaced=False),
    _rt("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", ["v1"], namespaced=False),
    _rt("rbac.authorization.k8s.io", "Role", "roles", ["v1"]),
    _rt("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", ["v1"]),
    _rt("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", ["v1"],
        namespaced=False, short=["crd", "crds"], generation=True),
    _rt("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", ["v1"],
        namespaced=False, generation=True),
    _rt("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", ["v1"],
        namespaced=False, generation=True),
    _rt("apiregistration.k8s.io", "APIService", "apiservices", ["v1"], namespaced=False),
    _rt("scheduling.k8s.io", "PriorityClass", "priorityclasses", ["v1"], namespaced=False, short=["pc"]),
)

#: kubectl resolves an ambiguous kind (``httproute``) to the first match in discovery order:
#: built-in groups first, then CRD groups alphabetically — so the Gateway API's HTTPRoute wins
#: over Linkerd's ``policy.linkerd.io`` one, as on a real cluster.
_GROUP_PRIORITY = {"": 0, "apps": 1, "batch": 2, "autoscaling": 3}

#: Where a CRD-backed kind comes from, for the hint in ``no matches for kind`` errors.
CRD_SOURCES = {
    "linkerd.io": "Linkerd's CRDs (mesh.install_linkerd(), i.e. `linkerd install --crds | kubectl apply -f -`)",
    "policy.linkerd.io": "Linkerd's CRDs (mesh.install_linkerd(), i.e. `linkerd install --crds | kubectl apply -f -`)",
    "gateway.networking.k8s.io": "the Gateway API CRDs, which Linkerd 2.20 needs installed first (mesh.install_gateway_api())",
    "split.smi-spec.io": "the linkerd-smi extension (mesh.install_smi(), i.e. `linkerd smi install | kubectl apply -f -`)",
    "flagger.app": "Flagger (mesh.install_flagger())",
}


class DiscoveryError(LabkitError, ValueError):
    """A kind or resource name the API server does not serve."""


@dataclass
class Discovery:
    """Resolves kinds and kubectl resource names against built-ins plus the applied CRDs."""

    crds: dict[str, ResourceType] = field(default_factory=dict)  # CRD name → type
    _resolved: dict[str, ResourceType] = field(default_factory=dict)  # name → type, until the CRDs change

    def all(self) -> list[ResourceType]:
        return list(BUILTIN) + list(self.crds.values())

    # -- CRDs --------------------------------------------------------------------------
    def register_crd(self, crd: dict) -> ResourceType:
        rtype = resource_type_from_crd(crd)
        self.crds[crd["metadata"]["name"]] = rtype
        self._resolved.clear()
        return rtype

    def unregister_crd(self, name: str) -> None:
        self.crds.pop(name, None)
        self._resolved.clear()

    # -- lookups -------------------------------------------------------------------------
    def for_manifest(self, api_version: str, kind: str) -> ResourceType | None:
        """The type serving ``apiVersion``/``kind``, or None (→ ``no matches for kind``)."""
        group, _, version = api_version.rpartition("/")
        for rtype in self.all():
            if rtype.kind == kind and rtype.group == group and version in rtype.versions:
                return rtype
        return None

    def by_key(self, group: str, kind: str) -> ResourceType | None:
        for rtype in self.all():
            if rtype.group == group and rtype.kind == kind:
                return rtype
        return None

    def resolve(self, name: str) -> ResourceType:
        """kubectl's resource-name resolution: ``deploy``, ``Deployment``, ``deployments.apps``, ``sp``...

        Raises :class:`DiscoveryError` with kubectl's wording when nothing matches.
        """
        cached = self._resolved.get(name)
        if cached is not None:
            return cached
        raw = name.strip()
        lowered = raw.lower()
        base, _, group = lowered.partition(".")
        candidates = []
        for rtype in self.all():
            names = {rtype.singular, rtype.plural, *rtype.short_names}
            if base in names and (not group or rtype.group == group):
                candidates.append(rtype)
        if not candidates:
            # A fully qualified name like "httproutes.policy.linkerd.io" whose base has a dot-less group
            for rtype in self.all():
                if lowered in (rtype.plural_qualified, rtype.qualified):
                    candidates.append(rtype)
        if not candidates:
            raise DiscoveryError(f'error: the server doesn\'t have a resource type "{raw}"')
        candidates.sort(key=lambda r: (_GROUP_PRIORITY.get(r.group, 4 if r.crd is None else 100), r.group))
        self._resolved[name] = candidates[0]
        return candidates[0]


_KUBE_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")
_LEVEL = {"alpha": 1, "beta": 2, None: 3}


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' kube-aware version order as a sort key (higher = preferred): v2 > v1 > v1beta2 > v1beta1 >
    v1alpha1 > anything not shaped like a Kubernetes version. A CRD lists its versions in any order (the Gateway
    API's list ``v1`` first); discovery prefers the highest, whatever the order."""
    m = _KUBE_VERSION.fullmatch(version)
    if not m:
        return (0, 0, 0)
    return (_LEVEL[m.group(2)], int(m.group(1)), int(m.group(3) or 0))


def resource_type_from_crd(crd: dict) -> ResourceType:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    served = [v["name"] for v in spec.get("versions") or [] if v.get("served", True)]
    versions = tuple(sorted(served, key=version_priority))  # oldest → preferred, as BUILTIN lists them
    return ResourceType(
        group=spec.get("group", ""),
        kind=names.get("kind", ""),
        plural=names.get("plural", ""),
        versions=versions,
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        crd=crd["metadata"]["name"],
        generation=True,
    )


def crd_manifest(group: str, kind: str, plural: str, versions: list[str], *, scope: str = "Namespaced",
                 short_names: tuple[str, ...] = (), categories: tuple[str, ...] = (),
                 labels: dict | None = None, annotations: dict | None = None,
                 printer_columns: list[dict] | None = None) -> dict:
    """A minimal CustomResourceDefinition with an open schema (any fields accepted), for a kind of one's own.

    The installers apply the real CRDs of the releases they model instead (``labkit.sim.kube.crds``).
    ``printer_columns`` are the CRD's ``additionalPrinterColumns`` (what ``kubectl get`` shows for the kind,
    served as a table).
    """
    names = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    if short_names:
        names["shortNames"] = list(short_names)
    if categories:
        names["categories"] = list(categories)
    metadata: dict = {"name": f"{plural}.{group}"}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": group,
            "names": names,
            "scope": scope,
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": i == len(versions) - 1,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    "subresources": {"status": {}},
                    **({"additionalPrinterColumns": [dict(c) for c in printer_columns]} if printer_columns else {}),
                }
                for i, v in enumerate(versions)
            ],
        },
    }
