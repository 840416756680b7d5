"""The Job controller: runs a pod to completion, retrying failures up to ``backoffLimit``.

Only needed because the books app's MySQL variant ships a ``Job`` (its
schema migration); the notable behaviour it shows is a real one: a Job
whose pod is meshed never completes, because ``linkerd-proxy`` keeps
running after the job's container exits (the pod shows ``NotReady``).
"""
from __future__ import annotations

import random

from labkit.sim.kube.controller import Controller
from labkit.sim.kube.objects import SAFE_ALPHANUMS, name_of, namespace_of, owner_uid, rfc3339
from labkit.sim.kube.replicaset import pod_from_template


class JobController(Controller):
    def __init__(self, cluster):
        super().__init__(cluster)
        self.job_type = cluster.types.job
        self.pod_type = cluster.types.pod
        self.rng = random.Random(f"{cluster.seed}:jobpods")
        self._by_uid: dict[str, tuple[str, str]] = {}
        self.api.watch(self.job_type, self._on_job)
        self.api.watch(self.pod_type, self._on_pod)

    def _on_job(self, event, old, new):
        if new is None:
            self._by_uid.pop(old["metadata"]["uid"], None)
            return
        self._by_uid[new["metadata"]["uid"]] = (namespace_of(new), name_of(new))
        self.enqueue((namespace_of(new), name_of(new)))

    def _on_pod(self, event, old, new):
        uid = owner_uid(new or old)
        if uid in self._by_uid:
            self.enqueue(self._by_uid[uid])

    def sync(self, key) -> None:
        namespace, name = key
        job = self.api.get(self.job_type, namespace, name)
        if job is None:
            return
        status = dict(job.get("status") or {})
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in status.get("conditions") or []):
            return
        uid = job["metadata"]["uid"]
        pods = [p for p in self.api.list(self.pod_type, namespace) if owner_uid(p) == uid]
        phase = lambda p: (p.get("status") or {}).get("phase")  # noqa: E731
        succeeded = sum(1 for p in pods if phase(p) == "Succeeded")
        failed = sum(1 for p in pods if phase(p) == "Failed")
        active = [p for p in pods if phase(p) not in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")]
        now = rfc3339(self.clock.t)
        status.setdefault("startTime", now)
        completions = job["spec"].get("completions", 1)
        if succeeded >= completions:
            status.update({"succeeded": succeeded, "active": 0, "completionTime": now, "ready": 0, "terminating": 0,
                           "conditions": [
                               {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
                                "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
                               {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
                                "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"}]})
            status.pop("active")
            self.api.update_status(self.job_type, job, status)
            self.cluster.recorder.record(job, "Normal", "Completed", "Job completed", source="job-controller")
            return
        if failed > job["spec"].get("backoffLimit", 6):
            status.update({"failed": failed, "conditions": [
                {"type": "Failed", "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
                 "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})
            self.api.update_status(self.job_type, job, status)
            self.cluster.recorder.record(job, "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                                       source="job-controller")
            return
        if not active:
            pod_name = f"{name}-" + "".join(self.rng.choice(SAFE_ALPHANUMS) for _ in range(5))
            pod = pod_from_template(job["spec"]["template"], job, "Job", "batch/v1", pod_name)
            try:
                created = self.api.create(self.pod_type, pod)
            except ValueError as exc:
                self.cluster.recorder.record(job, "Warning", "FailedCreate", f"Error creating: {exc}", source="job-controller")
                self.enqueue_at(self.clock.t + 10.0, key)
                return
            self.cluster.recorder.record(job, "Normal", "SuccessfulCreate", f"Created pod: {name_of(created)}",
                                       source="job-controller")
            active = [created]
        ready = sum(1 for p in active if any(c.get("type") == "Ready" and c.get("status") == "True"
                                             for c in (p.get("status") or {}).get("conditions") or []))
        status.update({"active": len(active), "ready": ready, "terminating": 0})
        if failed:
            status["failed"] = failed
        self.api.update_status(self.job_type, job, status)
