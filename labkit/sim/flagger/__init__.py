"""Flagger on the embedded mesh: its CRDs, its Deployment, and the controller that runs canaries.

``install(mesh, provider=...)`` is ``kubectl apply -k`` of Flagger's Linkerd
kustomization (Flagger v1.44): Flagger runs meshed in ``flagger-system``, because
since Linkerd 2.13 linkerd-viz's Prometheus answers only authorized meshed
clients (the kustomization's AuthorizationPolicy for it is not modelled: the
embedded Prometheus does not check identities). The provider is one flag:

* ``provider="gatewayapi:v1beta1"`` (the default, as the kustomization ships it:
  Linkerd ≥ 2.14 and Flagger's current tutorial): drives a Gateway API
  HTTPRoute; metrics come from MetricTemplates;
* ``provider="linkerd"`` (the SMI variant of the 2019 lab and of Linkerd
  2.12/2.13's docs): ``-mesh-provider=linkerd`` drives an SMI TrafficSplit and
  uses Flagger's built-in Linkerd metric checks.

``namespace="linkerd"`` builds the 2019 layout instead (unmeshed, in the control
plane's namespace).

The CRDs (Canary, MetricTemplate, AlertProvider) exist only after the
install, so ``kubectl apply`` of a Canary before it fails the way it does on
a real cluster. The controller (``scheduler.Flagger``) starts once Flagger's
pod is available. Modules, one per real component:

  spec.py         a Canary's fields with Flagger's defaults
  deployment.py   the canary controller for Deployments (primary, readiness, promotion, status)
  router.py       the ClusterIP Services and the TrafficSplit / HTTPRoute weights
  webhooks.py     webhook calls from Flagger's pod through the data plane, and the gates
  metrics.py      built-in Linkerd checks and MetricTemplates over ``mesh.query``
  scheduler.py    the informer, per-canary jobs and ``advanceCanary``
  history.py      the per-interval record kept for people
  playground.py   fresh embedded meshes running one canary with chosen parameters
"""
from __future__ import annotations

import weakref

from labkit.sim.kube import crds

VERSION = "1.44.0"
IMAGE = f"ghcr.io/fluxcd/flagger:{VERSION}"
PROVIDERS = ("linkerd", "gatewayapi:v1beta1", "gatewayapi:v1", "smi:v1alpha1", "smi:v1alpha2")
DEFAULT_METRICS_SERVER = "http://prometheus.linkerd-viz:9090"
#: What the install stands for, per provider.
KUSTOMIZATION = {
    "linkerd": "kubectl apply -k github.com/fluxcd/flagger//kustomize/linkerd?ref=v1.44.0 (meshProvider=linkerd, namespace linkerd)",
    "flagger-system": "kubectl apply -k github.com/fluxcd/flagger//kustomize/linkerd?ref=v1.44.0 (meshProvider=linkerd)",
    "gatewayapi": "kubectl apply -k github.com/fluxcd/flagger//kustomize/linkerd?ref=v1.44.0",
}

_CONTROLLERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def crd_objects() -> list[dict]:
    """Flagger's CustomResourceDefinitions (``artifacts/flagger/crd.yaml`` at v1.44.0: ``labkit/sim/kube/crds``),
    labelled as the installer labels Flagger's objects."""
    objs = crds.crds(crds.FLAGGER)
    for obj in objs:
        obj["metadata"]["labels"] = {"app.kubernetes.io/name": "flagger"}
    return objs


def default_namespace(provider: str) -> str:
    """Where Flagger v1.44's Linkerd kustomization puts it, whatever the provider: ``flagger-system``, meshed.

    The 2019 lab (and Linkerd 2.12's docs) ran it unmeshed in ``linkerd``; since Linkerd 2.13 linkerd-viz's
    Prometheus answers only authorized meshed clients (403 otherwise), so that layout no longer works on a
    current cluster. ``install(namespace="linkerd")`` still builds it.
    """
    return "flagger-system"


def objects(provider: str, namespace: str, metrics_server: str) -> list[dict]:
    """Flagger's RBAC and Deployment (kustomize/base/flagger + the linkerd overlay's patch)."""
    labels = {"app.kubernetes.io/name": "flagger"}
    objs: list[dict] = []
    if namespace == "flagger-system":
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": namespace, "annotations": {"linkerd.io/inject": "enabled"}}})
    objs += [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "flagger", "namespace": namespace, "labels": labels}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "flagger", "labels": labels},
         "rules": [
             {"apiGroups": [""], "resources": ["events", "configmaps", "configmaps/finalizers", "secrets",
                                               "secrets/finalizers", "services", "services/finalizers"],
              "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
             {"apiGroups": ["apps"], "resources": ["daemonsets", "daemonsets/finalizers", "deployments", "deployments/finalizers"],
              "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
             {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers", "horizontalpodautoscalers/finalizers"],
              "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
             {"apiGroups": ["flagger.app"], "resources": ["canaries", "canaries/status", "metrictemplates",
                                                          "metrictemplates/status", "alertproviders", "alertproviders/status"],
              "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
             {"apiGroups": ["split.smi-spec.io"], "resources": ["trafficsplits", "trafficsplits/finalizers"],
              "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
             {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes", "httproutes/finalizers"],
              "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "flagger", "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flagger"},
         "subjects": [{"kind": "ServiceAccount", "name": "flagger", "namespace": namespace}]},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "flagger", "namespace": namespace, "labels": labels},
         "spec": {"replicas": 1, "strategy": {"type": "Recreate"},
                  "selector": {"matchLabels": {"app.kubernetes.io/name": "flagger"}},
                  "template": {
                      "metadata": {"labels": {"app.kubernetes.io/name": "flagger"},
                                   "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}},
                      "spec": {"serviceAccountName": "flagger", "containers": [{
                          "name": "flagger", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                          "ports": [{"name": "http", "containerPort": 8080}],
                          "command": ["./flagger", "-log-level=info", "-include-label-prefix=app.kubernetes.io",
                                      f"-mesh-provider={provider}", f"-metrics-server={metrics_server}"],
                          "resources": {"limits": {"memory": "512Mi", "cpu": "1000m"},
                                        "requests": {"memory": "32Mi", "cpu": "10m"}},
                          "securityContext": {"readOnlyRootFilesystem": True, "runAsUser": 10001}}]}}}},
    ]
    return objs


def install(mesh, provider: str = "gatewayapi:v1beta1", *, metrics_server: str = DEFAULT_METRICS_SERVER,
            namespace: str | None = None) -> list[str]:
    """Install Flagger (CRDs, RBAC, Deployment) and start its controller; the ``kubectl apply`` lines."""
    from labkit.errors import ApplyError

    if provider not in PROVIDERS:
        raise ApplyError(f"mesh provider {provider!r} is not modelled by the embedded mesh; "
                         f"use one of: {', '.join(PROVIDERS)}")
    ns = namespace or default_namespace(provider)
    cluster = mesh.cluster
    lines: list[str] = []
    if cluster.discovery.by_key("split.smi-spec.io", "TrafficSplit") is None and not provider.startswith("gatewayapi"):
        # Flagger's linkerd/SMI providers write TrafficSplits: linkerd-smi first, as the kube backend does
        lines += cluster.install_smi()
    lines += cluster.apply_objects(crd_objects(), origin="flagger/crd.yaml")
    lines += cluster.apply_objects(objects(provider, ns, metrics_server), origin="kustomize/linkerd")
    cluster.last_command = KUSTOMIZATION["linkerd" if ns == "linkerd" else
                                         "gatewayapi" if provider.startswith("gatewayapi") else "flagger-system"]
    ensure_controller(mesh, provider=provider, namespace=ns, metrics_server=metrics_server)
    return lines


def ensure_controller(mesh, *, provider: str, namespace: str, metrics_server: str = DEFAULT_METRICS_SERVER):
    """The Flagger controller for a Flagger Deployment in ``namespace`` (created, or reconfigured with new flags).

    ``install`` calls it; so may anything that applies Flagger's manifests by other means (the served
    API). The controller acts only while that Deployment has an available pod.
    """
    from labkit.sim.flagger.scheduler import Flagger

    controller = _CONTROLLERS.get(mesh)
    if controller is None or controller.namespace != namespace:
        controller = _CONTROLLERS[mesh] = Flagger(mesh, provider=provider, namespace=namespace,
                                                  metrics_server=metrics_server)
    else:
        controller.reconfigure(provider, metrics_server)
    return controller


def controller_of(mesh):
    """The Flagger controller running on ``mesh`` (None before ``install_flagger``)."""
    return _CONTROLLERS.get(mesh)
