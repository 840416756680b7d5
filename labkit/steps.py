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
