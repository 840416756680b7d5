"""The API server's defaulting: the fields a cluster fills in when an object is stored.

``kubectl get deploy web -o yaml`` on a real cluster shows fields nobody
wrote (``imagePullPolicy``, ``terminationMessagePath``, ``strategy``...).
The embedded cluster fills the same ones so that objects read back look like
a cluster's, and so that a ``kubectl get … | linkerd inject - | kubectl
apply -f -`` round trip changes exactly what it changes on a cluster.
Allocation of cluster IPs and node ports lives in the API server (it needs state).
"""
from __future__ import annotations

PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def image_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or untagged images, else ``IfNotPresent`` (the API server's rule)."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _probe(probe: dict) -> None:
    for key, value in PROBE_DEFAULTS.items():
        probe.setdefault(key, value)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("scheme", "HTTP")
        probe["httpGet"].setdefault("path", "/")


def _container(c: dict) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if c.get("image"):
        c.setdefault("imagePullPolicy", image_pull_policy(c["image"]))
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for key in ("readinessProbe", "livenessProbe", "startupProbe"):
        if isinstance(c.get(key), dict):
            _probe(c[key])


def pod_spec(spec: dict, *, restart_policy: str = "Always") -> dict:
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if "serviceAccount" in spec and "serviceAccountName" not in spec:
        spec["serviceAccountName"] = spec["serviceAccount"]
    if "serviceAccountName" in spec:
        spec["serviceAccount"] = spec["serviceAccountName"]
    for c in spec.get("initContainers") or []:
        _container(c)
    for c in spec.get("containers") or []:
        _container(c)
    return spec


def template(tpl: dict, *, restart_policy: str = "Always") -> dict:
    tpl.setdefault("metadata", {})
    tpl["metadata"].setdefault("creationTimestamp", None)
    pod_spec(tpl.setdefault("spec", {}), restart_policy=restart_policy)
    return tpl


def apply_defaults(obj: dict) -> dict:
    """Fill the defaulted fields of ``obj`` in place (by kind) and return it."""
    kind = obj.get("kind")
    spec = obj.get("spec")
    if kind == "Deployment":
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            ru.setdefault("maxSurge", "25%")
            ru.setdefault("maxUnavailable", "25%")
        template(spec.setdefault("template", {}))
    elif kind in ("ReplicaSet", "StatefulSet", "DaemonSet"):
        if kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        template(spec.setdefault("template", {}))
    elif kind == "Job":
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        template(spec.setdefault("template", {}), restart_policy="Never")
    elif kind == "CronJob":
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job = spec.setdefault("jobTemplate", {}).setdefault("spec", {})
        template(job.setdefault("template", {}), restart_policy="Never")
    elif kind == "Pod":
        pod_spec(obj.setdefault("spec", {}))
        obj["spec"].setdefault("serviceAccountName", "default")
        obj["spec"].setdefault("serviceAccount", obj["spec"]["serviceAccountName"])
        obj["spec"].setdefault("enableServiceLinks", True)
        obj["spec"].setdefault("priority", 0)
        obj["spec"].setdefault("preemptionPolicy", "PreemptLowerPriority")
        obj["spec"].setdefault("tolerations", [
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300},
        ])
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        labels = obj["metadata"].setdefault("labels", {})
        labels.setdefault("kubernetes.io/metadata.name", obj["metadata"]["name"])
    elif kind == "HorizontalPodAutoscaler":
        spec.setdefault("minReplicas", 1)
    return obj
