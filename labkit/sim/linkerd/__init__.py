"""The embedded mesh's Linkerd: control-plane install, ``linkerd check``, the proxy injector.

The modelled release is Linkerd **2.20** (tag ``version-2.20`` of
linkerd/linkerd2 = ``edge-26.6.3``, proxy ``v2.359.0``): the Gateway API CRDs
are a prerequisite installed first, and the proxy is injected as a native
sidecar (``initContainers[1]`` with ``restartPolicy: Always``). It supports
Kubernetes 1.31–1.35; the embedded cluster runs 1.32. Modules:

  install.py    ``linkerd install --crds`` / ``install`` / ``viz install`` as objects applied to the cluster
  injector.py   the proxy-injector and tap-injector admission webhooks (pure pod transforms)
  webhooks.py   the sp-validator and policy-validator validating webhooks (what the CRD schemas cannot say)
  check.py      ``linkerd check`` (``--pre``, ``--proxy``) computed from the cluster's state
  proxy.py      what one proxy counts (the data plane's; see that module)
"""
from __future__ import annotations

import re

#: The Linkerd release the embedded control plane and CLI run (2.20).
LINKERD_VERSION = "edge-26.6.3"
#: The linkerd2-proxy build inside that release (``proxy_build_info``'s version).
PROXY_BUILD_VERSION = "v2.359.0"
#: The linkerd-crds / linkerd-control-plane chart version CI stamps on that release.
CHART_VERSION = "2026.6.3"
#: linkerd-viz's dashboard port, as ``linkerd viz dashboard`` opens it.
DASHBOARD_PORT = 50750
#: Releases whose behaviour the model knows: version tag → (stable name, proxy build). Other tags run as the nearest.
KNOWN_RELEASES = {"edge-25.4.4": ("2.18", "v2.294.0"), "edge-26.6.3": ("2.20", "v2.359.0")}


#: Images tagged with the Linkerd release itself (extensions such as linkerd-smi version on their own).
RELEASE_IMAGES = frozenset({"proxy", "controller", "policy-controller", "debug", "metrics-api", "tap", "web"})


def _edge_key(tag: str) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"edge-(\d+)\.(\d+)\.(\d+)", tag or "")
    return tuple(int(g) for g in m.groups()) if m else None  # type: ignore[return-value]


def modelled_release(tag: str | None) -> str:
    """The known release a version tag behaves as: itself if known, else the nearest one.

    ``edge-YY.M.P`` → the nearest known edge by date (a newer patch of 2.20 runs as 2.20); ``stable-2.N.x``,
    ``enterprise-2.N.x``, ``version-2.N`` → the known release of that 2.N; anything else (the goldens'
    ``install-proxy-version``, ``dev-undefined``) → the modelled release.
    """
    if tag in KNOWN_RELEASES:
        return tag
    key = _edge_key(tag or "")
    if key is not None:
        day = lambda k: k[0] * 372 + k[1] * 31 + k[2]  # noqa: E731 - edge tags are year.month.n: order by date
        return min(sorted(KNOWN_RELEASES, reverse=True), key=lambda k: abs(day(_edge_key(k)) - day(key)))
    m = re.fullmatch(r"(?:stable-|enterprise-|version-)?2\.(\d+)(?:\.\d+)?", tag or "")
    if m:
        for release, (stable, _proxy) in KNOWN_RELEASES.items():
            if stable == f"2.{m.group(1)}":
                return release
    return LINKERD_VERSION


def version_notice(image: str) -> str | None:
    """The one-line notice for a Linkerd image whose tag the model does not know (None when it does)."""
    repo, _, tag = image.rpartition(":")
    if not repo or "/" in tag or tag in KNOWN_RELEASES or repo.rsplit("/", 1)[-1] not in RELEASE_IMAGES \
            or not repo.startswith((REGISTRY, "ghcr.io/linkerd")):
        return None
    release = modelled_release(tag)
    return (f"{image}: the embedded mesh does not model Linkerd {tag!r}; it runs as {release} "
            f"(Linkerd {KNOWN_RELEASES[release][0]}), the nearest release it knows")


CONTROL_PLANE_NS = "linkerd"
VIZ_NS = "linkerd-viz"
REGISTRY = "cr.l5d.io/linkerd"
PROXY_IMAGE = f"{REGISTRY}/proxy"
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


def local_identity(pod: dict) -> str:
    """The mTLS identity a pod's proxy asks the identity controller for: its ``LINKERD2_PROXY_IDENTITY_LOCAL_NAME``
    (the injector wrote the install's trust domain into it) with the pod's service account and namespace."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    sa, ns = spec.get("serviceAccountName") or "default", meta.get("namespace") or "default"
    env = {e.get("name"): e.get("value") for e in (proxy_container(pod) or {}).get("env") or [] if "value" in e}
    name = env.get("LINKERD2_PROXY_IDENTITY_LOCAL_NAME") or "$(_pod_sa).$(_pod_ns).serviceaccount.identity.linkerd.cluster.local"
    return name.replace("$(_pod_sa)", sa).replace("$(_pod_ns)", ns)


def proxy_version(pod: dict) -> str | None:
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(PROXY_VERSION_ANNOTATION)
