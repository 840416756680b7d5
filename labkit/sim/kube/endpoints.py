"""The endpoints controller: a Service's Endpoints list the ready pods its selector picks.

This is how traffic finds pods on a real cluster (kube-proxy and Linkerd's
destination service both read it), so the data plane routes only to pods
listed here: a pod that is not ready yet, or is terminating, receives no
requests. Named target ports are resolved per pod from its container ports.
"""
from __future__ import annotations

import ipaddress

from labkit.sim.kube.controller import Controller
from labkit.sim.kube.objects import labels_of, name_of, namespace_of, rfc3339, selector_matches
from labkit.sim.kube.replicaset import is_active, pod_ready_since


def resolve_target_port(port: dict, pod: dict) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in pod["spec"].get("containers") or []:
        for cp in c.get("ports") or []:
            if cp.get("name") == target:
                return cp.get("containerPort")
    return None


def _ip_key(ip: str):
    return int(ipaddress.ip_address(ip))


class EndpointsController(Controller):
    latency = 0.02

    def __init__(self, cluster):
        super().__init__(cluster)
        self.svc_type = cluster.types.service
        self.ep_type = cluster.types.endpoints
        self.pod_type = cluster.types.pod
        self.api.watch(self.svc_type, self._on_service)
        self.api.watch(self.pod_type, self._on_pod)

    def _on_service(self, event, old, new):
        obj = new or old
        self.enqueue((namespace_of(obj), name_of(obj)))

    def _on_pod(self, event, old, new):
        obj = new or old
        namespace = namespace_of(obj)
        label_sets = [labels_of(o) for o in (old, new) if o is not None]
        for svc in self.api.list(self.svc_type, namespace):
            selector = (svc.get("spec") or {}).get("selector")
            if selector and any(selector_matches(selector, labels) for labels in label_sets):
                self.enqueue((namespace, name_of(svc)))

    def sync(self, key) -> None:
        namespace, name = key
        svc = self.api.get(self.svc_type, namespace, name)
        current = self.api.get(self.ep_type, namespace, name)
        if svc is None:
            if current is not None:
                self.api.remove(self.ep_type, namespace, name)
            return
        selector = (svc.get("spec") or {}).get("selector")
        if not selector:
            return  # Endpoints of a selector-less Service are managed by hand
        ready, not_ready, ports = [], [], None
        for pod in self.api.list(self.pod_type, namespace, selector):
            ip = (pod.get("status") or {}).get("podIP")
            if not ip or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            pod_ports = []
            for port in svc["spec"].get("ports") or []:
                number = resolve_target_port(port, pod)
                if number is None:
                    continue
                entry = {"port": number, "protocol": port.get("protocol", "TCP")}
                if port.get("name"):
                    entry["name"] = port["name"]
                pod_ports.append(entry)
            if ports is None:
                ports = pod_ports
            address = {"ip": ip, "nodeName": pod["spec"].get("nodeName"),
                       "targetRef": {"kind": "Pod", "name": name_of(pod), "namespace": namespace,
                                     "uid": pod["metadata"]["uid"]}}
            if is_active(pod) and pod_ready_since(pod) is not None:
                ready.append(address)
            else:
                not_ready.append(address)
        subsets = []
        if ready or not_ready:
            subset: dict = {}
            if ready:
                subset["addresses"] = sorted(ready, key=lambda a: _ip_key(a["ip"]))
            if not_ready:
                subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: _ip_key(a["ip"]))
            subset["ports"] = ports or []
            subsets.append(subset)
        body = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels_of(svc)),
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": rfc3339(self.clock.t)}},
            "subsets": subsets,
        }
        if not body["metadata"]["labels"]:
            del body["metadata"]["labels"]
        if current is None:
            self.api.create(self.ep_type, body)
        elif current.get("subsets") != subsets:
            body["metadata"] = {**current["metadata"], "annotations": body["metadata"]["annotations"]}
            self.api.update(self.ep_type, body)

    def ready_addresses(self, namespace: str, name: str) -> list[dict]:
        ep = self.api.get(self.ep_type, namespace, name)
        if ep is None:
            return []
        return [a for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
