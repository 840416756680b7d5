"""kube-scheduler: binds pending pods to nodes.

The policy is the default scheduler's effect in a small idle cluster:
nodes whose taints the pod does not tolerate are skipped (kind's control
plane is tainted ``NoSchedule``), and among the rest the one running the
fewest pods wins, ties broken by name, so pods spread over the workers
deterministically.
"""
from __future__ import annotations

from labkit.sim.kube.objects import name_of, namespace_of, rfc3339

#: How long the scheduler takes to bind a pod after it is created.
BIND_LATENCY = 0.02


def tolerates(pod: dict, taint: dict) -> bool:
    for tol in (pod.get("spec") or {}).get("tolerations") or []:
        if tol.get("operator") == "Exists" and not tol.get("key"):
            return True
        if tol.get("key") != taint.get("key"):
            continue
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("operator", "Equal") == "Exists" or tol.get("value") == taint.get("value"):
            return True
    return False


class Scheduler:
    def __init__(self, cluster):
        self.cluster = cluster
        self.api = cluster.api
        self._pending: dict[str, None] = {}
        self.pod_type = cluster.types.pod
        self.api.watch(self.pod_type, self._on_pod)

    def _on_pod(self, event: str, old: dict | None, new: dict | None) -> None:
        if event == "ADDED" and new and not new["spec"].get("nodeName"):
            uid = new["metadata"]["uid"]
            self._pending[uid] = None
            self.cluster.clock.after(BIND_LATENCY, lambda: self._bind(namespace_of(new), name_of(new), uid))

    def _bind(self, namespace: str, name: str, uid: str) -> None:
        self._pending.pop(uid, None)
        pod = self.api.get(self.pod_type, namespace, name)
        if pod is None or pod["metadata"]["uid"] != uid or pod["spec"].get("nodeName"):
            return
        node = self.pick_node(pod)
        if node is None:
            self.cluster.recorder.record(pod, "Warning", "FailedScheduling",
                                       "0/3 nodes are available: 3 node(s) had untolerated taints.")
            return
        new = dict(pod)
        new["spec"] = dict(pod["spec"])
        new["spec"]["nodeName"] = node
        new = self.api.update(self.pod_type, new)
        status = dict(new.get("status") or {})
        status["phase"] = "Pending"
        status["conditions"] = [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                 "lastTransitionTime": rfc3339(self.cluster.clock.t)}]
        status["qosClass"] = qos_class(new)
        new = self.api.update_status(self.pod_type, new, status)
        self.cluster.recorder.record(new, "Normal", "Scheduled", f"Successfully assigned {namespace}/{name} to {node}")

    def pick_node(self, pod: dict) -> str | None:
        counts: dict[str, int] = {}
        for p in self.api.list(self.pod_type):
            node = p["spec"].get("nodeName")
            if node and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                counts[node] = counts.get(node, 0) + 1
        best = None
        for node in self.api.list(self.cluster.types.node):
            if any(t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(pod, t)
                   for t in (node.get("spec") or {}).get("taints") or []):
                continue
            selector = (pod.get("spec") or {}).get("nodeSelector") or {}
            if any((node["metadata"].get("labels") or {}).get(k) != v for k, v in selector.items()):
                continue
            score = (counts.get(name_of(node), 0), name_of(node))
            if best is None or score < best:
                best = score
        return None if best is None else best[1]


def qos_class(pod: dict) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
