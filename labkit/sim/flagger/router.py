"""Flagger's routers: the ClusterIP Services and the mesh object that holds the traffic weights.

* :class:`KubernetesRouter` (``pkg/router/kubernetes_default.go``): the
  ``<svc>-canary`` (selector ``app: podinfo``) and ``<svc>-primary``
  (``app: podinfo-primary``) Services, then the apex ``<svc>`` pointed at the
  primary pods.
* :class:`SmiRouter` (``pkg/router/smi.go``, mesh provider ``linkerd``): an SMI
  ``split.smi-spec.io/v1alpha1`` TrafficSplit named after the apex Service,
  weights as Quantities (``smi:v1alpha2``: integers); linkerd-smi turns it
  into ServiceProfile ``dstOverrides`` that the client proxies honour.
* :class:`GatewayRouter` (``pkg/router/gateway_api_v1beta1.go``, provider
  ``gatewayapi:v1beta1``): a Gateway API HTTPRoute whose ``parentRefs`` are
  ``service.gatewayRefs`` (for Linkerd: the apex Service, ``group: core``).

The weights the scheduler steps are always read back from the router object
(``GetRoutes``), never from ``status.canaryWeight`` (reference §1.4 step 8).
Objects are written through the API server with the same validation as a
``kubectl apply``; a refusal comes back as the error Flagger would log.
"""
from __future__ import annotations

from labkit.sim.flagger.spec import TOTAL_WEIGHT, CanarySpec
from labkit.sim.kube.objects import clone, owner_ref, parse_quantity_weight
from labkit.sim.kube.validation import StatusError, review

CANARY_API_VERSION = "flagger.app/v1beta1"


def _owner(cd: CanarySpec) -> dict:
    return owner_ref(cd.obj, "Canary", CANARY_API_VERSION)


def _write(cluster, rtype, obj: dict) -> str | None:
    """Create or replace ``obj`` through the API server's validation (client-go's default field validation,
    ``Warn``); the API server's error message, or None."""
    api = cluster.api
    live = api.get(rtype, obj["metadata"]["namespace"], obj["metadata"]["name"])
    if live is not None:
        new = clone(live)
        new["spec"] = obj["spec"]
        obj = new
    try:
        verdict = review(api, rtype, obj, validation="Warn", old=live, operation="UPDATE" if live else "CREATE")
    except StatusError as exc:
        return exc.message
    if live is None:
        api.create(rtype, verdict.obj)
    else:
        api.update(rtype, verdict.obj)
    return None


class KubernetesRouter:
    """The canary, primary and apex ClusterIP Services."""

    def __init__(self, cluster, label: str, value: str):
        self.cluster, self.label, self.value = cluster, label, value

    def _ports(self, cd: CanarySpec) -> list[dict]:
        return [{"name": cd.port_name, "protocol": "TCP", "port": cd.port, "targetPort": cd.target_port}]

    def _service(self, cd: CanarySpec, name: str, selector_value: str) -> str | None:
        api, stype = self.cluster.api, self.cluster.types.service
        live = api.get(stype, cd.namespace, name)
        selector = {self.label: selector_value}
        ports = self._ports(cd)
        if live is None:
            api.create(stype, {"apiVersion": "v1", "kind": "Service",
                               "metadata": {"name": name, "namespace": cd.namespace, "labels": {self.label: name},
                                            "ownerReferences": [_owner(cd)]},
                               "spec": {"type": "ClusterIP", "selector": selector, "ports": ports}})
            return None
        spec = live.get("spec") or {}
        live_ports = [{k: p.get(k) for k in ("name", "protocol", "port", "targetPort")} for p in spec.get("ports") or []]
        if spec.get("selector") != selector or live_ports != ports:
            new = clone(live)
            new["spec"]["selector"] = selector
            new["spec"]["ports"] = ports
            api.update(stype, new)
        return None

    def initialize(self, cd: CanarySpec) -> str | None:
        """``Initialize``: ``<svc>-canary`` → the target's pods, ``<svc>-primary`` → the primary's."""
        return (self._service(cd, f"{cd.service_name}-canary", self.value)
                or self._service(cd, f"{cd.service_name}-primary", f"{self.value}-primary"))

    def reconcile(self, cd: CanarySpec) -> str | None:
        """``Reconcile``: the apex Service selects the primary pods."""
        return self._service(cd, cd.service_name, f"{self.value}-primary")


class SmiRouter:
    """An SMI TrafficSplit ``<svc>``: backends ``<svc>-canary`` and ``<svc>-primary``."""

    def __init__(self, cluster, version: str = "v1alpha1"):
        self.cluster = cluster
        self.version = version

    @property
    def rtype(self):
        return self.cluster.discovery.by_key("split.smi-spec.io", "TrafficSplit")

    def _weight(self, value: int):
        return str(value) if self.version == "v1alpha1" else int(value)  # v1alpha1: resource.Quantity

    def reconcile(self, cd: CanarySpec) -> str | None:
        rtype = self.rtype
        if rtype is None:
            return ('the server could not find the requested resource (post trafficsplits.split.smi-spec.io): '
                    'TrafficSplit needs the linkerd-smi extension')
        apex = cd.service_name
        host = (cd.service.get("hosts") or [apex])[0]
        live = self.cluster.api.get(rtype, cd.namespace, apex)
        weights = {f"{apex}-canary": 0, f"{apex}-primary": TOTAL_WEIGHT}
        if live is not None:
            for b in (live.get("spec") or {}).get("backends") or []:
                if b.get("service") in weights:
                    weights[b["service"]] = int(parse_quantity_weight(b.get("weight", 0)))
        obj = {"apiVersion": f"split.smi-spec.io/{self.version}", "kind": "TrafficSplit",
               "metadata": {"name": apex, "namespace": cd.namespace, "ownerReferences": [_owner(cd)]},
               "spec": {"service": host,
                        "backends": [{"service": name, "weight": self._weight(w)} for name, w in weights.items()]}}
        return _write(self.cluster, rtype, obj)

    def get_routes(self, cd: CanarySpec) -> tuple[int, int, bool, str | None]:
        rtype = self.rtype
        live = self.cluster.api.get(rtype, cd.namespace, cd.service_name) if rtype else None
        if live is None:
            return 0, 0, False, (f'TrafficSplit {cd.service_name}.{cd.namespace} get query error: '
                                 f'trafficsplits.split.smi-spec.io "{cd.service_name}" not found')
        primary = canary = 0
        for b in (live.get("spec") or {}).get("backends") or []:
            w = int(parse_quantity_weight(b.get("weight", 0)))
            if b.get("service") == f"{cd.service_name}-primary":
                primary = w
            elif b.get("service") == f"{cd.service_name}-canary":
                canary = w
        return primary, canary, False, None

    def set_routes(self, cd: CanarySpec, primary: int, canary: int) -> str | None:
        rtype = self.rtype
        live = self.cluster.api.get(rtype, cd.namespace, cd.service_name) if rtype else None
        if live is None:
            return (f'TrafficSplit {cd.service_name}.{cd.namespace} get query error: '
                    f'trafficsplits.split.smi-spec.io "{cd.service_name}" not found')
        new = clone(live)
        new["spec"]["backends"] = [{"service": f"{cd.service_name}-canary", "weight": self._weight(canary)},
                                   {"service": f"{cd.service_name}-primary", "weight": self._weight(primary)}]
        self.cluster.api.update(rtype, new)
        return None


class GatewayRouter:
    """A Gateway API HTTPRoute ``<svc>`` attached to ``service.gatewayRefs``."""

    def __init__(self, cluster, version: str = "v1beta1"):
        self.cluster = cluster
        self.version = version

    @property
    def rtype(self):
        return self.cluster.discovery.by_key("gateway.networking.k8s.io", "HTTPRoute")

    def _backends(self, cd: CanarySpec, primary: int, canary: int) -> list[dict]:
        return [{"group": "", "kind": "Service", "name": f"{cd.service_name}-primary", "port": cd.port, "weight": primary},
                {"group": "", "kind": "Service", "name": f"{cd.service_name}-canary", "port": cd.port, "weight": canary}]

    def _rule(self, live: dict, cd: CanarySpec) -> dict | None:
        names = {f"{cd.service_name}-primary", f"{cd.service_name}-canary"}
        for rule in (live.get("spec") or {}).get("rules") or []:
            if {r.get("name") for r in rule.get("backendRefs") or []} & names:
                return rule
        return None

    def reconcile(self, cd: CanarySpec) -> str | None:
        rtype = self.rtype
        if rtype is None:
            return "the server could not find the requested resource (post httproutes.gateway.networking.k8s.io)"
        apex = cd.service_name
        live = self.cluster.api.get(rtype, cd.namespace, apex)
        primary, canary = TOTAL_WEIGHT, 0
        if live is not None:
            primary, canary, _, _ = self.get_routes(cd)
        spec: dict = {"parentRefs": clone(cd.service.get("gatewayRefs") or [])}
        if cd.service.get("hosts"):
            spec["hostnames"] = list(cd.service["hosts"])
        spec["rules"] = [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                          "backendRefs": self._backends(cd, primary, canary)}]
        obj = {"apiVersion": f"gateway.networking.k8s.io/{self.version}", "kind": "HTTPRoute",
               "metadata": {"name": apex, "namespace": cd.namespace, "ownerReferences": [_owner(cd)]},
               "spec": spec}
        return _write(self.cluster, rtype, obj)

    def get_routes(self, cd: CanarySpec) -> tuple[int, int, bool, str | None]:
        rtype = self.rtype
        live = self.cluster.api.get(rtype, cd.namespace, cd.service_name) if rtype else None
        if live is None:
            return 0, 0, False, (f'HTTPRoute {cd.service_name}.{cd.namespace} get query error: '
                                 f'httproutes.gateway.networking.k8s.io "{cd.service_name}" not found')
        rule = self._rule(live, cd) or {}
        primary = canary = 0
        for ref in rule.get("backendRefs") or []:
            if ref.get("name") == f"{cd.service_name}-primary":
                primary = int(ref.get("weight", 1))
            elif ref.get("name") == f"{cd.service_name}-canary":
                canary = int(ref.get("weight", 1))
        return primary, canary, False, None

    def set_routes(self, cd: CanarySpec, primary: int, canary: int) -> str | None:
        rtype = self.rtype
        live = self.cluster.api.get(rtype, cd.namespace, cd.service_name) if rtype else None
        if live is None:
            return (f'HTTPRoute {cd.service_name}.{cd.namespace} get query error: '
                    f'httproutes.gateway.networking.k8s.io "{cd.service_name}" not found')
        new = clone(live)
        for rule in new["spec"].get("rules") or []:
            if self._rule({"spec": {"rules": [rule]}}, cd) is not None:
                rule["backendRefs"] = self._backends(cd, primary, canary)
        self.cluster.api.update(rtype, new)
        return None


def mesh_router(cluster, provider: str):
    """``MeshRouter(provider)``: the router for a mesh provider name (``linkerd``, ``smi:v1alpha2``, ``gatewayapi:v1``...)."""
    if provider in ("linkerd", "smi", "smi:v1alpha1", "smi:linkerd"):
        return SmiRouter(cluster, "v1alpha1")
    if provider.startswith("smi:"):
        return SmiRouter(cluster, provider.split(":", 1)[1])
    if provider.startswith("gatewayapi"):
        return GatewayRouter(cluster, provider.split(":", 1)[1] if ":" in provider else "v1")
    raise ValueError(f"mesh provider {provider!r} is not modelled; use 'linkerd' (SMI TrafficSplit) "
                     "or 'gatewayapi:v1beta1' (Gateway API HTTPRoute)")
