"""The ReplicaSet controller: keeps ``spec.replicas`` pods of a template running.

Pods get the ReplicaSet's name plus five random characters
(``web-7cf4784dd8-qxjv4``) from the seeded ``podnames`` stream. Surplus pods
are removed least-valuable first (unscheduled, then pending, then not
ready, then the youngest ready), as the real controller ranks them.
``availableReplicas`` counts pods ready for at least ``minReadySeconds``,
which is what a rolling update waits for.
"""
from __future__ import annotations

import random

from labkit.errors import NotFoundError
from labkit.sim.kube.apiserver import Forbidden
from labkit.sim.kube.controller import Controller
from labkit.sim.kube.objects import SAFE_ALPHANUMS, clone, name_of, namespace_of, owner_ref, owner_uid, parse_rfc3339

#: Retry delay after a failed pod creation (the controller's rate limiter, simplified).
CREATE_RETRY = 5.0


def pod_ready_since(pod: dict) -> float | None:
    """When the pod's Ready condition last became True, or None if it is not ready."""
    if pod["metadata"].get("deletionTimestamp"):
        return None
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return parse_rfc3339(cond["lastTransitionTime"])
            return None
    return None


def is_active(pod: dict) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def pod_from_template(template: dict, owner: dict, owner_kind: str, owner_api: str, name: str) -> dict:
    tpl = clone(template)
    md = tpl.get("metadata") or {}
    md.pop("creationTimestamp", None)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": name_of(owner) + "-",
            "namespace": namespace_of(owner),
            "labels": md.get("labels") or {},
            "ownerReferences": [owner_ref(owner, owner_kind, owner_api)],
        },
        "spec": tpl.get("spec") or {},
    }
    if md.get("annotations"):
        pod["metadata"]["annotations"] = md["annotations"]
    return pod


class ReplicaSetController(Controller):
    def __init__(self, cluster):
        super().__init__(cluster)
        self.rng = random.Random(f"{cluster.seed}:podnames")
        self.rs_type = cluster.types.replicaset
        self.pod_type = cluster.types.pod
        self._by_uid: dict[str, tuple[str, str]] = {}
        self.api.watch(self.rs_type, self._on_rs)
        self.api.watch(self.pod_type, self._on_pod)

    def _on_rs(self, event, old, new):
        obj = new or old
        key = (namespace_of(obj), name_of(obj))
        if new is None:
            self._by_uid.pop(old["metadata"]["uid"], None)
            return
        self._by_uid[new["metadata"]["uid"]] = key
        self.enqueue(key)

    def _on_pod(self, event, old, new):
        obj = new or old
        uid = owner_uid(obj)
        if uid and uid in self._by_uid:
            self.enqueue(self._by_uid[uid])

    def owned_pods(self, rs: dict) -> list[dict]:
        uid = rs["metadata"]["uid"]
        return [p for p in self.api.list(self.pod_type, namespace_of(rs)) if owner_uid(p) == uid]

    def new_pod_name(self, base: str, namespace: str) -> str:
        while True:
            name = f"{base}-" + "".join(self.rng.choice(SAFE_ALPHANUMS) for _ in range(5))
            if self.api.get(self.pod_type, namespace, name) is None:
                return name

    def sync(self, key) -> None:
        namespace, name = key
        rs = self.api.get(self.rs_type, namespace, name)
        if rs is None:
            return
        pods = self.owned_pods(rs)
        active = [p for p in pods if is_active(p)]
        desired = rs["spec"].get("replicas", 1)
        diff = desired - len(active)
        events = self.cluster.recorder
        if diff > 0:
            for _ in range(diff):
                pod = pod_from_template(rs["spec"]["template"], rs, "ReplicaSet", "apps/v1",
                                        self.new_pod_name(name, namespace))
                try:
                    created = self.api.create(self.pod_type, pod)
                except (Forbidden, NotFoundError) as exc:
                    message = str(exc).replace("Error from server (Forbidden): ", "").replace("Error from server (NotFound): ", "")
                    events.record(rs, "Warning", "FailedCreate", f"Error creating: {message}")
                    self.enqueue_at(self.clock.t + CREATE_RETRY, key)
                    break
                active.append(created)
                events.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {name_of(created)}")
        elif diff < 0:
            for pod in sorted(active, key=self._deletion_rank)[:-diff]:
                self.api.delete(self.pod_type, pod)
                events.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")
            active = [p for p in self.owned_pods(rs) if is_active(p)]
        self._update_status(rs, active)

    def _deletion_rank(self, pod: dict):
        """Sort key: pods first in this order are deleted first."""
        status = pod.get("status") or {}
        scheduled = bool(pod["spec"].get("nodeName"))
        running = status.get("phase") == "Running"
        since = pod_ready_since(pod)
        created = pod["metadata"]["creationTimestamp"]
        # unscheduled < pending < not ready < ready; then ready more recently < longer; then newer first
        return (scheduled, running, since is not None, -(since or 0.0), _neg(created), name_of(pod))

    def _update_status(self, rs: dict, active: list[dict]) -> None:
        rs = self.api.get(self.rs_type, namespace_of(rs), name_of(rs)) or rs
        now = self.clock.t
        min_ready = rs["spec"].get("minReadySeconds", 0)
        ready = available = 0
        next_check = None
        for pod in active:
            since = pod_ready_since(pod)
            if since is None:
                continue
            ready += 1
            if now - since >= min_ready - 1e-9:
                available += 1
            elif next_check is None or since + min_ready < next_check:
                next_check = since + min_ready
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": len(active),
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if not ready:
            del status["readyReplicas"]
        if not available:
            del status["availableReplicas"]
        if not active:
            status = {"replicas": 0, "observedGeneration": status["observedGeneration"]}
        self.api.update_status(self.rs_type, rs, status)
        if next_check is not None:
            self.enqueue_at(next_check, (namespace_of(rs), name_of(rs)))


def _neg(timestamp: str):
    """Newer creationTimestamps sort first."""
    return tuple(-ord(ch) for ch in timestamp)
