"""The embedded mesh's Linkerd: control-plane install, ``linkerd check``, the proxy injector.

The modelled release is Linkerd **2.18** (``edge-25.4.4``): the last release
whose ``install --crds`` still ships the Gateway API CRDs, and whose proxy
is injected as an ordinary container (``spec.containers[0]``; 2.20 moved it
to a native sidecar). Kubernetes 1.32 (the embedded cluster's) is inside its
supported range. Modules:

  install.py    ``linkerd install --crds`` / ``install`` / ``viz install`` as objects applied to the cluster
  injector.py   the proxy-injector and tap-injector admission webhooks (pure pod transforms)
  check.py      ``linkerd check`` (``--pre``, ``--proxy``) computed from the cluster's state
  proxy.py      what one proxy counts (the data plane's; see that module)
"""
from __future__ import annotations

#: The Linkerd release the embedded control plane and CLI run.
LINKERD_VERSION = "edge-25.4.4"
#: The linkerd2-proxy build inside that release (``proxy_build_info``'s version).
PROXY_BUILD_VERSION = "v2.294.0"
#: linkerd-viz's dashboard port, as ``linkerd viz dashboard`` opens it.
DASHBOARD_PORT = 50750

CONTROL_PLANE_NS = "linkerd"
VIZ_NS = "linkerd-viz"
REGISTRY = "cr.l5d.io/linkerd"
PROXY_IMAGE = f"{REGISTRY}/proxy"
PROXY_INIT_IMAGE = f"{REGISTRY}/proxy-init:v2.4.2"
DEBUG_IMAGE = f"{REGISTRY}/debug"
CONTROLLER_IMAGE = f"{REGISTRY}/controller:{LINKERD_VERSION}"
POLICY_CONTROLLER_IMAGE = f"{REGISTRY}/policy-controller:{LINKERD_VERSION}"

# labels and annotations (pkg/k8s/labels.go)
CONTROL_PLANE_NS_LABEL = "linkerd.io/control-plane-ns"
WORKLOAD_NS_LABEL = "linkerd.io/workload-ns"
COMPONENT_LABEL = "linkerd.io/control-plane-component"
EXTENSION_LABEL = "linkerd.io/extension"
INJECT_ANNOTATION = "linkerd.io/inject"
CREATED_BY_ANNOTATION = "linkerd.io/created-by"
PROXY_VERSION_ANNOTATION = "linkerd.io/proxy-version"
TRUST_ROOT_ANNOTATION = "linkerd.io/trust-root-sha256"
DEBUG_ANNOTATION = "config.linkerd.io/enable-debug-sidecar"
PROXY_VERSION_OVERRIDE = "config.linkerd.io/proxy-version"
TAP_ENABLED_ANNOTATION = "viz.linkerd.io/tap-enabled"
PROXY_CONTAINER = "linkerd-proxy"
INIT_CONTAINER = "linkerd-init"
DEBUG_CONTAINER = "linkerd-debug"


def is_meshed(pod: dict) -> bool:
    """What ``linkerd viz stat``'s MESHED column counts: the proxy injector's control-plane label."""
    return CONTROL_PLANE_NS_LABEL in ((pod.get("metadata") or {}).get("labels") or {})


def proxy_container(pod: dict) -> dict | None:
    """The ``linkerd-proxy`` container, wherever it is (2.20 moved it to ``initContainers``)."""
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if c.get("name") == PROXY_CONTAINER:
            return c
    return None


def proxy_version(pod: dict) -> str | None:
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(PROXY_VERSION_ANNOTATION)
