"""kubectl's printers: how ``kubectl get pods`` turns a pod's status into READY / STATUS / RESTARTS.

The STATUS column is not a field of the pod: kubectl derives it (``Init:0/1``,
``PodInitializing``, ``ContainerCreating``, ``Running``, ``NotReady``,
``Completed``, ``Terminating``...). These functions follow kubectl's
``printPod`` logic so the embedded mesh's table reads the same.
"""
from __future__ import annotations

from labkit.k8s import ready_containers


def pod_ready(pod: dict) -> tuple[int, int]:
    """(ready, total) as in the READY column (``2/2``): the containers plus the native sidecars.

    kubectl >= 1.28 counts an init container with ``restartPolicy: Always`` (Linkerd 2.20's proxy) like a
    container; a run-to-completion init container is not counted.
    """
    return ready_containers(pod)


def pod_restarts(pod: dict) -> int:
    status = pod.get("status") or {}
    return sum(cs.get("restartCount", 0) for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []))


def pod_status(pod: dict) -> str:
    """The STATUS column, following kubectl's printPod."""
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    init_statuses = status.get("initContainerStatuses") or []
    n_init = len(spec.get("initContainers") or [])
    sidecars = {c.get("name") for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}
    initializing = False
    for i, cs in enumerate(init_statuses):
        state = cs.get("state") or {}
        term = state.get("terminated")
        if term and term.get("exitCode", 0) == 0:
            continue
        if cs.get("name") in sidecars and cs.get("started"):
            continue  # a native sidecar that started lets the pod go on initializing
        if term:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode')}")
        elif (state.get("waiting") or {}).get("reason") and state["waiting"]["reason"] != "PodInitializing":
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif (state.get("terminated") or {}).get("reason"):
                reason = state["terminated"]["reason"]
            elif state.get("terminated"):
                reason = f"ExitCode:{state['terminated'].get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running"):
                has_running = True
        if reason == "Completed" and has_running:
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
            reason = "Running" if ready else "NotReady"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason
