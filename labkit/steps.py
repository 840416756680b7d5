"""Small steps the labs repeat, written only against the labkit contract so both backends run them.

Each is what a learner would type on a real cluster in one or two commands
(``linkerd check``, ``kubectl rollout status``, ``kubectl rollout restart``,
``kubectl edit sp/...``); keeping them here keeps the notebooks' cells to a
sentence of narrative and a call or two.
"""
from __future__ import annotations

from typing import Iterable


def linkerd_ready(mesh, *, viz: bool = True, timeout="5m") -> str:
    """Install the Gateway API CRDs and Linkerd (and viz) if needed and wait until ``linkerd check`` passes.

    On a real cluster after Lab 1 the install is already there and applying
    it again changes nothing; on the embedded mesh each lab starts empty.
    """
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=viz)
    mesh.wait_for(lambda m: m.check().ok, timeout=timeout)
    return f"Linkerd is ready at {mesh.now}"


def summarize_applied(lines: Iterable[str]) -> str:
    """``kubectl apply``'s lines (``deployment.apps/web created``) counted by kind and outcome, in one line per kind:
    an install applies 80 objects, and what a learner needs is what kinds there were and that they were created."""
    counts: dict[str, dict[str, int]] = {}
    total = 0
    for line in lines:
        ref, _, outcome = str(line).rpartition(" ")
        kind = ref.split("/", 1)[0].split(".", 1)[0]
        if not ref or not kind:
            continue
        total += 1
        per = counts.setdefault(kind, {})
        per[outcome] = per.get(outcome, 0) + 1
    rows = [f"  {sum(per.values()):>3} {kind}: " + ", ".join(f"{n} {what}" for what, n in sorted(per.items()))
            for kind, per in sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))]
    return f"{total} objects applied:\n" + "\n".join(rows) + "\n(every line: print(\"\\n\".join(lines)))"


def _names(deployments: str | Iterable[str]) -> tuple[str, ...]:
    return (deployments,) if isinstance(deployments, str) else tuple(deployments)


def rolled_out(mesh, deployments: str | Iterable[str], namespace: str) -> bool:
    """True when every deployment's rollout finished (``kubectl rollout status`` would return)."""
    return all("successfully rolled out" in mesh.rollout_status(d, namespace) for d in _names(deployments))


def wait_rolled_out(mesh, deployments: str | Iterable[str], namespace: str, timeout="5m") -> str:
    """``kubectl -n NS rollout status deploy/...`` for each deployment; returns the last status line."""
    names = _names(deployments)

    def rollouts_finished(m) -> bool:
        return rolled_out(m, names, namespace)

    mesh.wait_for(rollouts_finished, timeout=timeout)
    return mesh.rollout_status(names[-1], namespace)


def rollout_restart(mesh, deployments: str | Iterable[str], namespace: str) -> list[str]:
    """``kubectl -n NS rollout restart deploy/...``: stamp the pod template, so every pod is replaced.

    That is how kubectl does it (the ``kubectl.kubernetes.io/restartedAt``
    annotation), and why new pods pick up what only applies at pod creation:
    proxy injection, the debug sidecar, tap, a ServiceProfile on older Linkerd.
    """
    stamp = mesh.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
    out = []
    for name in _names(deployments):
        mesh.patch("deploy", name, patch, namespace)
        out.append(f"deployment.apps/{name} restarted")
    return out


def edit_route(mesh, service: str, namespace: str, route: str, **fields) -> str:
    """``kubectl edit sp/<service>.<ns>.svc.cluster.local``: set fields on one route of a ServiceProfile.

    ``edit_route(mesh, "authors", "booksapp", "HEAD /authors/{id}.json", isRetryable=True)``;
    a field set to ``None`` is removed. Returns kubectl's ``configured`` line.
    """
    name = f"{service}.{namespace}.svc.cluster.local"
    profile = mesh.get("sp", name, namespace)
    routes = profile["spec"].get("routes") or []
    matches = [r for r in routes if r.get("name") == route]
    if not matches:
        known = ", ".join(repr(r.get("name")) for r in routes)
        raise KeyError(f"ServiceProfile {name} has no route {route!r}; its routes are: {known}")
    for key, value in fields.items():
        if value is None:
            matches[0].pop(key, None)
        else:
            matches[0][key] = value
    return mesh.apply([profile])[0]


def wait_canary_phase(mesh, name: str, namespace: str, phase: str, timeout="10m", every="5s") -> str:
    """Wait until the Canary's ``status.phase`` is ``phase`` (as ``kubectl get canary -w`` would show)."""

    def canary_in_phase(m) -> bool:
        return (m.canary(name, namespace).get("status") or {}).get("phase") == phase

    mesh.wait_for(canary_in_phase, timeout=timeout, every=every)
    return phase


#: HTTPRoute's two API groups Linkerd serves: its own and the Gateway API's.
HTTPROUTE_KINDS = ("httproute.policy.linkerd.io", "httproute.gateway.networking.k8s.io")


def route_status(mesh, name: str, namespace: str) -> str:
    """``kubectl get httproute NAME -o yaml``'s status conditions as ``Type: Status (Reason)`` lines.

    Looks in both API groups, since a learner may write either; says so when there is no such route.
    """
    from labkit.lookups import get_or_none

    for kind in HTTPROUTE_KINDS:
        route = get_or_none(mesh, kind, name, namespace)
        if route is not None:
            parents = (route.get("status") or {}).get("parents") or []
            conditions = [c for p in parents for c in p.get("conditions") or []]
            if not conditions:
                return f"{kind}/{name}: no status yet (no controller has accepted it)"
            return "\n".join(f'{c["type"]}: {c["status"]} ({c["reason"]})' for c in conditions)
    return f"there is no HTTPRoute {name} in namespace {namespace}"


def delete_route(mesh, name: str, namespace: str) -> list[str]:
    """``kubectl delete httproute NAME`` in whichever API group it exists; a line saying so when it does not."""
    from labkit.lookups import get_or_none

    out = []
    for kind in HTTPROUTE_KINDS:
        if get_or_none(mesh, kind, name, namespace) is not None:
            out += mesh.delete(f"{kind}/{name}", namespace)
    return out or [f"there is no HTTPRoute {name} in namespace {namespace}: nothing to delete"]


def about(mesh) -> str:
    """What this lab runs on, in three lines: the banner at the top of every lab.

    On the embedded mesh it says what is modelled (``mesh.versions``), that time is virtual, and how to switch to
    a real cluster; on a cluster, which one and that waits are real.
    """
    v = mesh.versions
    names = (("kubernetes", "Kubernetes"), ("linkerd", "Linkerd"), ("gateway_api", "Gateway API"), ("flagger", "Flagger"))
    stack = ", ".join(f"{label} {v[key]}" for key, label in names if v.get(key))  # a cluster lacks what is not installed
    if mesh.backend == "sim":
        return (f"Embedded mesh (seed {getattr(mesh, 'seed', 0)}): a model of {stack}, running in this notebook.\n"
                "Time is virtual: mesh.wait(\"5m\") returns at once, and the clock shows the model's time.\n"
                "To run the same lab on a real cluster, set backend = \"kube\" and context in the parameters cell.")
    context = getattr(mesh, "context", None) or "the named context"
    return (f"Real cluster ({context}): {stack}.\n"
            "Every wait is real time: mesh.wait(\"5m\") takes five minutes.\n"
            "Everything the lab applies carries the label linkerd-labs/lab, so mesh.teardown() removes only that.")


def pod_layout(mesh, deployment: str, namespace: str) -> str:
    """Where a running pod's containers are: ``initContainers`` (with restartPolicy: Always, a native sidecar)
    and ``containers`` — ``kubectl get pod -o jsonpath`` over both lists, one line each."""
    from labkit.lookups import running_pods

    pods = running_pods(mesh, deployment, namespace)
    if not pods:
        return f"deployment {deployment} has no running pod in {namespace}"
    spec = pods[0].get("spec") or {}
    inits = [c["name"] + (" (restartPolicy: Always: a native sidecar)" if c.get("restartPolicy") == "Always" else "")
             for c in spec.get("initContainers") or []]
    return (f"pod {pods[0]['metadata']['name']}\n"
            f"  initContainers: {', '.join(inits) or '-'}\n"
            f"  containers:     {', '.join(c['name'] for c in spec.get('containers') or [])}")
