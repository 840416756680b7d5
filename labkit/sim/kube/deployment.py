"""The Deployment controller: ReplicaSets per template, rolling updates, revision history, status.

A Deployment owns one ReplicaSet per pod template it has had, named
``<deployment>-<pod-template-hash>``. When the template changes, a new
ReplicaSet is created (or an old one with the same template revived, which
is a rollback) with the next ``deployment.kubernetes.io/revision``, and the
rolling update moves pods over within ``maxSurge`` / ``maxUnavailable``
(25% each by default: with one replica, one new pod is added before the old
one goes), emitting ``ScalingReplicaSet`` events in the controller's words.
Status and conditions follow the real controller so ``kubectl rollout
status`` can be answered from them (:func:`rollout_status_message`).
"""
from __future__ import annotations

from labkit.sim.kube.controller import Controller
from labkit.sim.kube.objects import (
    clone, int_or_percent, name_of, namespace_of, owner_ref, owner_uid, parse_rfc3339, rfc3339, template_hash,
)

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


def rs_revision(rs: dict) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def surge_and_unavailable(deploy: dict) -> tuple[int, int]:
    spec = deploy["spec"]
    replicas = spec.get("replicas", 1)
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    ru = strategy.get("rollingUpdate") or {}
    surge = int_or_percent(ru.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = int_or_percent(ru.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def condition(status: dict, ctype: str) -> dict | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def rollout_status_message(deploy: dict) -> tuple[str, bool]:
    """kubectl's ``rollout status`` text for a Deployment, and whether the rollout is done."""
    name = name_of(deploy)
    status = deploy.get("status") or {}
    spec = deploy.get("spec") or {}
    if deploy["metadata"].get("generation", 1) <= status.get("observedGeneration", 0):
        cond = condition(status, "Progressing")
        if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
            return f'error: deployment "{name}" exceeded its progress deadline', False
        replicas = spec.get("replicas", 1)
        updated = status.get("updatedReplicas", 0)
        if updated < replicas:
            return f'Waiting for deployment "{name}" rollout to finish: {updated} out of {replicas} new replicas have been updated...', False
        if status.get("replicas", 0) > updated:
            return (f'Waiting for deployment "{name}" rollout to finish: {status.get("replicas", 0) - updated} '
                    "old replicas are pending termination..."), False
        available = status.get("availableReplicas", 0)
        if available < updated:
            return f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated replicas are available...', False
        return f'deployment "{name}" successfully rolled out', True
    return "Waiting for deployment spec update to be observed...", False


class DeploymentController(Controller):
    def __init__(self, cluster):
        super().__init__(cluster)
        self.d_type = cluster.types.deployment
        self.rs_type = cluster.types.replicaset
        self._by_uid: dict[str, tuple[str, str]] = {}
        self._rs_owner: dict[str, tuple[str, str]] = {}  # ReplicaSet uid → its Deployment's key
        self.api.watch(self.d_type, self._on_deploy)
        self.api.watch(self.rs_type, self._on_rs)
        self.api.watch(cluster.types.pod, self._on_pod)

    def _on_deploy(self, event, old, new):
        if new is None:
            self._by_uid.pop(old["metadata"]["uid"], None)
            return
        self._by_uid[new["metadata"]["uid"]] = (namespace_of(new), name_of(new))
        self.enqueue((namespace_of(new), name_of(new)))

    def _on_rs(self, event, old, new):
        obj = new or old
        uid = owner_uid(obj)
        if uid in self._by_uid:
            if new is None:
                self._rs_owner.pop(obj["metadata"]["uid"], None)
            else:
                self._rs_owner[obj["metadata"]["uid"]] = self._by_uid[uid]
            self.enqueue(self._by_uid[uid])

    def _on_pod(self, event, old, new):
        """A pod disappearing matters to a Recreate rollout, which waits for the old ones to be gone."""
        if event == "DELETED":
            key = self._rs_owner.get(owner_uid(old) or "")
            if key is not None:
                self.enqueue(key)

    def owned(self, deploy: dict) -> list[dict]:
        uid = deploy["metadata"]["uid"]
        rss = [rs for rs in self.api.list(self.rs_type, namespace_of(deploy)) if owner_uid(rs) == uid]
        rss.sort(key=lambda rs: (rs["metadata"]["creationTimestamp"], int(rs["metadata"]["resourceVersion"])))
        return rss

    # -- reconcile ---------------------------------------------------------------------------------
    def sync(self, key) -> None:
        namespace, name = key
        deploy = self.api.get(self.d_type, namespace, name)
        if deploy is None:
            return
        rss = self.owned(deploy)
        template = deploy["spec"]["template"]
        thash = template_hash(template)
        new_rs = next((rs for rs in rss if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == thash), None)
        old_rss = [rs for rs in rss if rs is not new_rs]
        max_rev = max((rs_revision(rs) for rs in old_rss), default=0)
        created_new = False
        if new_rs is None:
            new_rs = self._create_rs(deploy, thash, max_rev + 1)
            created_new = True
        elif rs_revision(new_rs) <= max_rev:
            new_rs = self._set_revision(new_rs, max_rev + 1)  # rollback to an earlier template
        deploy = self._sync_revision(deploy, rs_revision(new_rs))
        replicas = deploy["spec"].get("replicas", 1)
        if (deploy["spec"].get("strategy") or {}).get("type") == "Recreate":
            self._recreate(deploy, new_rs, old_rss, replicas)
        else:
            self._rolling(deploy, new_rs, old_rss, replicas)
        self._cleanup(deploy)
        self._status(deploy, created_new)

    def _create_rs(self, deploy: dict, thash: str, revision: int) -> dict:
        tpl = clone(deploy["spec"]["template"])
        tpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = thash
        selector = clone(deploy["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = thash
        surge, _ = surge_and_unavailable(deploy)
        replicas = deploy["spec"].get("replicas", 1)
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name_of(deploy)}-{thash}",
                "namespace": namespace_of(deploy),
                "labels": dict(tpl["metadata"]["labels"]),
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                    REVISION: str(revision),
                },
                "ownerReferences": [owner_ref(deploy, "Deployment", "apps/v1")],
            },
            "spec": {"replicas": 0, "selector": selector, "template": tpl},
        }
        if deploy["spec"].get("minReadySeconds"):
            rs["spec"]["minReadySeconds"] = deploy["spec"]["minReadySeconds"]
        return self.api.create(self.rs_type, rs)

    def _set_revision(self, rs: dict, revision: int) -> dict:
        new = clone(rs)
        new["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
        return self.api.update(self.rs_type, new)

    def _sync_revision(self, deploy: dict, revision: int) -> dict:
        annotations = deploy["metadata"].get("annotations") or {}
        if annotations.get(REVISION) == str(revision):
            return deploy
        new = clone(deploy)
        new["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
        return self.api.update(self.d_type, new)

    def _scale(self, deploy: dict, rs: dict, replicas: int) -> dict:
        old = rs["spec"].get("replicas", 0)
        surge, _ = surge_and_unavailable(deploy)
        desired = deploy["spec"].get("replicas", 1)
        annotations = {"deployment.kubernetes.io/desired-replicas": str(desired),
                       "deployment.kubernetes.io/max-replicas": str(desired + surge)}
        current_ann = rs["metadata"].get("annotations") or {}
        if old == replicas and all(current_ann.get(k) == v for k, v in annotations.items()):
            return rs
        new = clone(rs)
        new["spec"]["replicas"] = replicas
        new["metadata"].setdefault("annotations", {}).update(annotations)
        new = self.api.update(self.rs_type, new)
        if old != replicas:
            verb = "up" if replicas > old else "down"
            self.cluster.recorder.record(deploy, "Normal", "ScalingReplicaSet",
                                       f"Scaled {verb} replica set {name_of(rs)} to {replicas} from {old}")
        return new

    def _recreate(self, deploy, new_rs, old_rss, replicas) -> None:
        if any(rs["spec"].get("replicas", 0) > 0 for rs in old_rss):
            for rs in old_rss:
                if rs["spec"].get("replicas", 0) > 0:
                    self._scale(deploy, rs, 0)
            return
        old_uids = {rs["metadata"]["uid"] for rs in old_rss}
        pod_type = self.cluster.types.pod
        if any(owner_uid(p) in old_uids and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
               for p in self.api.list(pod_type, namespace_of(deploy))):
            return  # wait until the old pods are gone, terminating ones included
        self._scale(deploy, new_rs, replicas)

    def _rolling(self, deploy, new_rs, old_rss, replicas) -> None:
        surge, unavailable = surge_and_unavailable(deploy)
        # scale the new ReplicaSet up (or down, when the Deployment was scaled down)
        new_count = new_rs["spec"].get("replicas", 0)
        total = sum(rs["spec"].get("replicas", 0) for rs in old_rss) + new_count
        if new_count > replicas:
            new_rs = self._scale(deploy, new_rs, replicas)
        elif new_count < replicas:
            room = replicas + surge - total
            if not old_rss or all(rs["spec"].get("replicas", 0) == 0 for rs in old_rss):
                room = replicas - new_count
            up = min(room, replicas - new_count)
            if up > 0:
                new_rs = self._scale(deploy, new_rs, new_count + up)
        # scale old ReplicaSets down, keeping at least (replicas - maxUnavailable) available
        all_rss = old_rss + [new_rs]
        min_available = replicas - unavailable
        new_unavailable = new_rs["spec"].get("replicas", 0) - (new_rs.get("status") or {}).get("availableReplicas", 0)
        all_count = sum(rs["spec"].get("replicas", 0) for rs in all_rss)
        max_down = all_count - min_available - new_unavailable
        if max_down <= 0:
            return
        # first the old pods that are not available anyway
        updated_old = []
        for rs in old_rss:
            count = rs["spec"].get("replicas", 0)
            unhealthy = count - (rs.get("status") or {}).get("availableReplicas", 0)
            cut = min(unhealthy, max_down)
            if cut > 0 and count > 0:
                rs = self._scale(deploy, rs, count - cut)
                max_down -= cut
            updated_old.append(rs)
        available = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in updated_old + [new_rs])
        budget = min(available - min_available, max_down)
        for rs in updated_old:
            if budget <= 0:
                break
            count = rs["spec"].get("replicas", 0)
            if count <= 0:
                continue
            cut = min(count, budget)
            self._scale(deploy, rs, count - cut)
            budget -= cut

    def _cleanup(self, deploy: dict) -> None:
        limit = deploy["spec"].get("revisionHistoryLimit", 10)
        rss = self.owned(deploy)
        thash = template_hash(deploy["spec"]["template"])
        idle = [rs for rs in rss if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) != thash
                and rs["spec"].get("replicas", 0) == 0 and (rs.get("status") or {}).get("replicas", 0) == 0]
        idle.sort(key=rs_revision)
        for rs in idle[:max(0, len(idle) - limit)]:
            self.api.delete(self.rs_type, rs)

    # -- status -----------------------------------------------------------------------------------
    def _status(self, deploy: dict, created_new: bool) -> None:
        deploy = self.api.get(self.d_type, namespace_of(deploy), name_of(deploy)) or deploy
        rss = self.owned(deploy)
        thash = template_hash(deploy["spec"]["template"])
        new_rs = next((rs for rs in rss if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == thash), None)
        replicas = deploy["spec"].get("replicas", 1)
        _, unavailable_allowed = surge_and_unavailable(deploy)
        stat = lambda rs, k: (rs.get("status") or {}).get(k, 0)  # noqa: E731
        total = sum(stat(rs, "replicas") for rs in rss)
        updated = stat(new_rs, "replicas") if new_rs else 0
        ready = sum(stat(rs, "readyReplicas") for rs in rss)
        available = sum(stat(rs, "availableReplicas") for rs in rss)
        spec_total = sum(rs["spec"].get("replicas", 0) for rs in rss)
        old = deploy.get("status") or {}
        now = rfc3339(self.clock.t)
        status = {"observedGeneration": deploy["metadata"].get("generation", 1), "replicas": total,
                  "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": available,
                  "unavailableReplicas": max(spec_total - available, 0)}
        for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            if not status[key]:
                del status[key]
        conditions = []
        prev_avail = condition(old, "Available")
        is_available = available >= replicas - unavailable_allowed
        avail = {"type": "Available", "status": "True" if is_available else "False",
                 "reason": "MinimumReplicasAvailable" if is_available else "MinimumReplicasUnavailable",
                 "message": "Deployment has minimum availability." if is_available else "Deployment does not have minimum availability."}
        conditions.append(_carry(avail, prev_avail, now))
        prev = condition(old, "Progressing")
        rs_name = name_of(new_rs) if new_rs else ""
        complete = updated == replicas and total == replicas and available == replicas and \
            status["observedGeneration"] >= deploy["metadata"].get("generation", 1)
        deadline = deploy["spec"].get("progressDeadlineSeconds", 600)
        changed = (old.get("replicas"), old.get("updatedReplicas"), old.get("availableReplicas"), old.get("readyReplicas")) != \
            (status.get("replicas"), status.get("updatedReplicas"), status.get("availableReplicas"), status.get("readyReplicas"))
        if complete:
            prog = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{rs_name}" has successfully progressed.'}
            progressing = _carry(prog, prev, now, touch=prev is None or prev.get("reason") != "NewReplicaSetAvailable")
        elif created_new:
            prog = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated",
                    "message": f'Created new replica set "{rs_name}"'}
            progressing = _carry(prog, prev, now, touch=True)
        elif prev is not None and prev.get("reason") == "ProgressDeadlineExceeded":
            progressing = prev
        elif prev is not None and self.clock.t - parse_rfc3339(prev["lastUpdateTime"]) > deadline and not changed:
            prog = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet "{rs_name}" has timed out progressing.'}
            progressing = _carry(prog, prev, now, touch=True)
        else:
            prog = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                    "message": f'ReplicaSet "{rs_name}" is progressing.'}
            progressing = _carry(prog, prev, now, touch=changed or prev is None or prev.get("reason") != "ReplicaSetUpdated")
        conditions.append(progressing)
        status["conditions"] = conditions
        self.api.update_status(self.d_type, deploy, status)
        if not complete and progressing.get("reason") != "ProgressDeadlineExceeded":
            self.enqueue_at(parse_rfc3339(progressing["lastUpdateTime"]) + deadline + 1, (namespace_of(deploy), name_of(deploy)))


def _carry(new: dict, prev: dict | None, now: str, touch: bool = False) -> dict:
    """Keep lastTransitionTime while the status value is unchanged; lastUpdateTime moves when touched."""
    out = {"type": new["type"], "status": new["status"]}
    if prev is not None and prev.get("status") == new["status"]:
        out["lastTransitionTime"] = prev["lastTransitionTime"]
        out["lastUpdateTime"] = now if (touch or prev.get("reason") != new["reason"]) else prev["lastUpdateTime"]
    else:
        out["lastTransitionTime"] = now
        out["lastUpdateTime"] = now
    out["reason"] = new["reason"]
    out["message"] = new["message"]
    return {k: out[k] for k in ("type", "status", "lastUpdateTime", "lastTransitionTime", "reason", "message")}
