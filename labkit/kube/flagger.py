"""Flagger's install on a real cluster: its upstream kustomization, set to the mesh provider the lab asks for.

Flagger v1.44's ``kustomize/linkerd`` runs Flagger meshed in ``flagger-system`` (with the AuthorizationPolicy
that lets it query linkerd-viz's Prometheus) and with ``-mesh-provider=gatewayapi:v1beta1``. The labs follow the
2019 lab's SMI variant (``-mesh-provider=linkerd``: TrafficSplit and Flagger's built-in Linkerd queries), so the
rendered manifests get that one flag changed; nothing else differs. The SMI variant also needs the TrafficSplit
CRD, which current Linkerd ships in the separate linkerd-smi extension.
"""
from __future__ import annotations

from labkit.k8s import clone

TRAFFICSPLIT_CRD = "trafficsplits.split.smi-spec.io"
#: How a learner gets SMI's TrafficSplit on current Linkerd.
SMI_INSTALL = "curl -sL https://linkerd.github.io/linkerd-smi/install | sh; linkerd smi install | kubectl apply -f -"
SMI_HELP = f"install the linkerd-smi extension ({SMI_INSTALL}), or use install_flagger(provider='gatewayapi:v1beta1')"


def needs_smi(provider: str) -> bool:
    """Providers that make Flagger write SMI TrafficSplits."""
    return provider == "linkerd" or provider.startswith("smi")


def with_provider(objs: list[dict], provider: str) -> list[dict]:
    """The manifests with Flagger's ``-mesh-provider`` flag set to ``provider`` (copies; inputs untouched)."""
    out = []
    for obj in objs:
        obj = clone(obj)
        if obj.get("kind") == "Deployment" and (obj.get("metadata") or {}).get("name") == "flagger":
            for container in obj["spec"]["template"]["spec"].get("containers") or []:
                if container.get("name") != "flagger":
                    continue
                field = "command" if any(str(a).startswith("-mesh-provider") for a in container.get("command") or []) \
                    or "args" not in container else "args"
                argv = [a for a in container.get(field) or [] if not str(a).startswith("-mesh-provider")]
                container[field] = argv + [f"-mesh-provider={provider}"]
        out.append(obj)
    return out
