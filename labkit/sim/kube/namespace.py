"""Namespace lifecycle: each new namespace gets its ``default`` ServiceAccount and root CA ConfigMap;
a deleted namespace terminates — its contents are deleted (pods gracefully) and the namespace
disappears once empty, as ``kubectl delete ns booksapp`` does on a cluster.
"""
from __future__ import annotations

from labkit.sim.kube.controller import Controller
from labkit.sim.kube.objects import name_of

#: How often the namespace controller re-checks a terminating namespace.
TERMINATION_POLL = 1.0

ROOT_CA = "-----BEGIN CERTIFICATE-----\nMIIDBTCCAe2gAwIBAgIIembedded0kindClusterRootCA\n-----END CERTIFICATE-----\n"


class NamespaceController(Controller):
    latency = 0.05

    def __init__(self, cluster):
        super().__init__(cluster)
        self.ns_type = cluster.types.namespace
        self.api.watch(self.ns_type, self._on_ns)

    def _on_ns(self, event, old, new):
        if new is None:
            return
        self.enqueue(name_of(new))

    def sync(self, name) -> None:
        ns = self.api.get(self.ns_type, None, name)
        if ns is None:
            return
        types = self.cluster.types
        if (ns.get("status") or {}).get("phase") != "Terminating":
            if self.api.get(types.serviceaccount, name, "default") is None:
                self.api.create(types.serviceaccount, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                       "metadata": {"name": "default", "namespace": name}})
            if self.api.get(types.configmap, name, "kube-root-ca.crt") is None:
                self.api.create(types.configmap, {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "kube-root-ca.crt", "namespace": name,
                                                               "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                                                  "data": {"ca.crt": ROOT_CA}})
            return
        remaining = self.api.list_namespace(name)
        for rtype, obj in remaining:
            if rtype.kind in ("Event", "Endpoints"):
                self.api.remove(rtype, name, name_of(obj))
            elif not obj["metadata"].get("deletionTimestamp"):
                self.api.delete(rtype, obj)
        if not self.api.list_namespace(name):
            self.api.remove(self.ns_type, None, name)
        else:
            self.enqueue_at(self.clock.t + TERMINATION_POLL, name)
