"""The HorizontalPodAutoscaler controller, reduced to what the labs exercise: replica bounds.

Every sync period (15 s, the controller manager's default) it keeps its
target between ``minReplicas`` and ``maxReplicas`` — which is what makes
Flagger's podinfo start with two pods. CPU use of the modelled apps stays
far below the labs' 99% targets, so the metric-driven part never scales.
"""
from __future__ import annotations

from labkit.sim.kube.controller import Controller
from labkit.sim.kube.objects import clone, name_of, namespace_of, rfc3339

SYNC_PERIOD = 15.0


class HPAController(Controller):
    def __init__(self, cluster):
        super().__init__(cluster)
        self.hpa_type = cluster.types.hpa
        self._scheduled: dict[tuple[str, str], None] = {}
        self.api.watch(self.hpa_type, self._on_hpa)

    def _on_hpa(self, event, old, new):
        if new is None:
            return
        key = (namespace_of(new), name_of(new))
        if event == "ADDED" or key not in self._scheduled:
            self._scheduled[key] = None
            self.enqueue_at(self.clock.t + 1.0, key)

    def sync(self, key) -> None:
        namespace, name = key
        hpa = self.api.get(self.hpa_type, namespace, name)
        if hpa is None:
            self._scheduled.pop(key, None)
            return
        self.enqueue_at(self.clock.t + SYNC_PERIOD, key)
        spec = hpa["spec"]
        ref = spec.get("scaleTargetRef") or {}
        rtype = self.cluster.discovery.by_key("apps", ref.get("kind", "Deployment"))
        target = self.api.get(rtype, namespace, ref.get("name", "")) if rtype else None
        now = rfc3339(self.clock.t)
        old_status = hpa.get("status") or {}
        if target is None:
            status = {"currentReplicas": 0, "desiredReplicas": 0, "conditions": [
                {"type": "AbleToScale", "status": "False", "lastTransitionTime": now, "reason": "FailedGetScale",
                 "message": f'the HPA controller was unable to get the target\'s current scale: deployments/scale.apps "{ref.get("name")}" not found'}]}
            if old_status.get("conditions") != status["conditions"]:
                self.cluster.recorder.record(hpa, "Warning", "FailedGetScale",
                                           f'deployments/scale.apps "{ref.get("name")}" not found')
                self.api.update_status(self.hpa_type, hpa, status)
            return
        current = target["spec"].get("replicas", 1)
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", 1)
        desired, reason = current, None
        if current == 0 and low != 0:
            desired = 0  # scaling disabled by the user (or Flagger) setting replicas to 0
        elif current > high:
            desired, reason = high, "Current number of replicas above Spec.MaxReplicas"
        elif current < low:
            desired, reason = low, "Current number of replicas below Spec.MinReplicas"
        status = {"currentReplicas": (target.get("status") or {}).get("replicas", 0), "desiredReplicas": desired}
        if "lastScaleTime" in old_status:
            status["lastScaleTime"] = old_status["lastScaleTime"]
        if reason:
            new = clone(target)
            new["spec"]["replicas"] = desired
            self.api.update(rtype, new)
            status["lastScaleTime"] = now
            self.cluster.recorder.record(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        status["conditions"] = [
            {"type": "AbleToScale", "status": "True", "lastTransitionTime": _since(old_status, "AbleToScale", "True", now),
             "reason": "ReadyForNewScale", "message": "recommended size matches current size"},
            {"type": "ScalingActive", "status": "True", "lastTransitionTime": _since(old_status, "ScalingActive", "True", now),
             "reason": "ValidMetricFound",
             "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
            {"type": "ScalingLimited", "status": "False", "lastTransitionTime": _since(old_status, "ScalingLimited", "False", now),
             "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"},
        ]
        self.api.update_status(self.hpa_type, hpa, status)


def _since(status: dict, ctype: str, value: str, now: str) -> str:
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype and cond.get("status") == value:
            return cond["lastTransitionTime"]
    return now
