"""``linkerd install --crds``, ``linkerd install`` and ``linkerd viz install``, as the objects they apply.

The embedded mesh installs Linkerd the way the CLI does: it renders the
manifests (CRDs; the ``linkerd`` namespace with the destination, identity
and proxy-injector Deployments, their Services, webhook configurations,
RBAC and config; then the ``linkerd-viz`` namespace with metrics-api,
prometheus, tap, tap-injector and web) and applies them through the
cluster's normal ``apply``, so they get the same validation, pods, events
and readiness delays as anything a learner applies. Control-plane pods are
injected by the CLI at render time; viz's pods are injected by the proxy
injector because the ``linkerd-viz`` namespace carries
``linkerd.io/inject: enabled`` — which is why viz is installed only once
the core control plane is ready (``linkerd check`` first, as the docs say).

The CRD install also brings the Gateway API CRDs (Linkerd 2.18 still did)
and, because the labs' SMI TrafficSplit needs it, the linkerd-smi
extension's TrafficSplit CRD.
"""
from __future__ import annotations

import base64
import hashlib

from labkit.sim import linkerd as l5d
from labkit.sim.kube import crds
from labkit.sim.kube.objects import clone
from labkit.sim.linkerd.injector import (CLUSTER_NETWORKS, DEFAULTS, ProxyInjector, TapInjector, inject_pod_spec,
                                         trust_anchor_pem)

NS, VIZ = l5d.CONTROL_PLANE_NS, l5d.VIZ_NS
#: How often the modelled operator re-runs ``linkerd check`` before ``linkerd viz install``.
VIZ_POLL = 5.0
PROMETHEUS_IMAGE = "prom/prometheus:v2.55.1"

INSTALL_COMMAND = "linkerd install --crds | kubectl apply -f - && linkerd install | kubectl apply -f -"
VIZ_COMMAND = "linkerd check && linkerd viz install | kubectl apply -f -"


# -- CRDs -----------------------------------------------------------------------------------------------

def crd_objects() -> list[dict]:
    """``linkerd install --crds`` at 2.20: Linkerd's own CRDs (``installGatewayAPI: false`` — the Gateway API
    CRDs are a prerequisite, see :func:`gateway_api_objects`; TrafficSplit is linkerd-smi's, :func:`smi_objects`).

    The real CRDs (schemas, versions, printer columns: ``labkit/sim/kube/crds``), with the metadata the CLI
    renders for this release in place of the golden's test values.
    """
    objs = crds.crds(crds.LINKERD)
    for obj in objs:
        md = obj["metadata"]
        md["annotations"] = {l5d.CREATED_BY_ANNOTATION: f"linkerd/cli {l5d.LINKERD_VERSION}"}
        md["labels"] = {"helm.sh/chart": f"linkerd-crds-{l5d.CHART_VERSION}", "linkerd.io/control-plane-ns": NS}
    return objs


#: The Gateway API release Linkerd 2.20's docs and CLI name (supported: 1.2.1–1.5.1).
GATEWAY_API_VERSION = "v1.2.1"
GATEWAY_API_URL = ("https://github.com/kubernetes-sigs/gateway-api/releases/download/"
                   f"{GATEWAY_API_VERSION}/standard-install.yaml")
GATEWAY_API_COMMAND = f"kubectl apply --server-side -f {GATEWAY_API_URL}"
#: The release's two channels: the experimental one adds TCPRoute, TLSRoute (which Linkerd 2.20 serves),
#: UDPRoute and the backend policies.
GATEWAY_API_CHANNELS = ("standard", "experimental")


def gateway_api_url(channel: str = "standard") -> str:
    if channel not in GATEWAY_API_CHANNELS:
        raise ValueError(f"channel={channel!r}: the Gateway API release has the channels 'standard' and "
                         "'experimental' (TCPRoute and TLSRoute are experimental)")
    return GATEWAY_API_URL.replace("/standard-install.yaml", f"/{channel}-install.yaml")


#: What ``linkerd install --crds`` answers at 2.20 when they are missing (cli/cmd/install.go).
GATEWAY_API_MISSING = ("The Gateway API CRDs must be installed prior to installing Linkerd. Run:\n\n"
                       f"{GATEWAY_API_COMMAND}\n\n"
                       "or see https://gateway-api.sigs.k8s.io/guides/#installing-gateway-api for more options.")


def gateway_api_objects(channel: str = "standard") -> list[dict]:
    """The Gateway API release 2.20 names, as ``{channel}-install.yaml`` ships it (``labkit/sim/kube/crds``): the
    standard channel's five CRDs, or the experimental channel's ten (TCPRoute, TLSRoute and the other alpha kinds)."""
    gateway_api_url(channel)  # refuses an unknown channel
    return crds.crds(crds.GATEWAY_API_EXPERIMENTAL if channel == "experimental" else crds.GATEWAY_API)


def gateway_api_problem(cluster) -> str | None:
    """2.20's ``checkGatewayAPICRDs``: the HTTPRoute/GRPCRoute CRDs must exist, with a ``v1`` version."""
    present = False
    for name in ("httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io"):
        crd = cluster.api.get(cluster.discovery.by_key("apiextensions.k8s.io", "CustomResourceDefinition"), None, name)
        if crd is None:
            continue
        present = True
        if not any(v.get("name") == "v1" for v in (crd.get("spec") or {}).get("versions") or []):
            return f"the {name} CRD is missing the v1 version, please upgrade to Gateway API v1.1.1 or later"
    return None if present else GATEWAY_API_MISSING


SMI_VERSION = "v0.2.6"
SMI_COMMAND = "curl -sL https://linkerd.github.io/linkerd-smi/install | sh && linkerd smi install | kubectl apply -f -"


def smi_objects() -> list[dict]:
    """``linkerd smi install``: the linkerd-smi extension — SMI's TrafficSplit CRD and the adaptor that turns
    TrafficSplits into ServiceProfile ``dstOverrides`` (the data plane models that effect directly)."""
    ext = {"linkerd.io/extension": "smi"}
    adaptor = {**ext, "component": "smi-adaptor"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta("linkerd-smi", labels=ext,
                                                                      annotations={"linkerd.io/inject": "enabled"})},
        *crds.crds(crds.SMI),  # TrafficSplit: split.smi-spec.io v1alpha1 (stored) and v1alpha2
        _sa("smi-adaptor", "linkerd-smi", adaptor),
        _rbac("ClusterRole", "linkerd-smi-adaptor", adaptor),
        _rbac("ClusterRoleBinding", "linkerd-smi-adaptor", adaptor, subject=("smi-adaptor", "linkerd-smi")),
        _deployment("smi-adaptor", "linkerd-smi", adaptor, adaptor, "smi-adaptor",
                    [_container("smi-adaptor", f"{l5d.REGISTRY}/smi-adaptor:{SMI_VERSION}", ["-cluster-domain=cluster.local"],
                                [("admin-http", 9995)], ("/ready", 9995))]),
    ]


# -- building blocks ------------------------------------------------------------------------------------

def _meta(name: str, namespace: str | None = None, labels: dict | None = None, annotations: dict | None = None) -> dict:
    md: dict = {"name": name}
    if namespace:
        md["namespace"] = namespace
    if labels:
        md["labels"] = dict(labels)
    if annotations:
        md["annotations"] = dict(annotations)
    return md


def _sa(name: str, namespace: str, labels: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, namespace, labels)}


def _svc(name: str, namespace: str, labels: dict, selector: dict, ports: list[tuple[str, int, int | str]],
         headless: bool = False) -> dict:
    spec: dict = {"type": "ClusterIP", "selector": dict(selector),
                  "ports": [{"name": n, "port": p, "targetPort": t} for n, p, t in ports]}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, labels), "spec": spec}


def _rbac(kind: str, name: str, labels: dict, namespace: str | None = None, subject: tuple[str, str] | None = None,
          role: str | None = None) -> dict:
    obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": _meta(name, namespace, labels)}
    if kind in ("ClusterRole", "Role"):
        obj["rules"] = [{"apiGroups": [""], "resources": ["pods", "services", "endpoints"], "verbs": ["get", "list", "watch"]}]
    else:
        obj["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole" if kind == "ClusterRoleBinding" else "Role",
                          "name": role or name}
        obj["subjects"] = [{"kind": "ServiceAccount", "name": subject[0], "namespace": subject[1]}] if subject else []
    return obj


def _secret(name: str, namespace: str, labels: dict, seed: int) -> dict:
    digest = hashlib.sha256(f"{seed}:{namespace}/{name}".encode()).hexdigest()
    pem = f"-----BEGIN CERTIFICATE-----\n{digest}\n-----END CERTIFICATE-----\n"
    key = f"-----BEGIN EC PRIVATE KEY-----\n{digest[::-1]}\n-----END EC PRIVATE KEY-----\n"
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": _meta(name, namespace, labels),
            "data": {"tls.crt": base64.b64encode(pem.encode()).decode(), "tls.key": base64.b64encode(key.encode()).decode()}}


def _container(name: str, image: str, args: list[str], ports: list[tuple[str, int]], ready: tuple[str, int] | None) -> dict:
    c: dict = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "args": list(args),
               "ports": [{"name": n, "containerPort": p} for n, p in ports],
               "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                   "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 2103,
                                   "seccompProfile": {"type": "RuntimeDefault"}}}
    if ready:
        c["readinessProbe"] = {"httpGet": {"path": ready[0], "port": ready[1]}, "failureThreshold": 7}
        c["livenessProbe"] = {"httpGet": {"path": "/ping", "port": ready[1]}, "initialDelaySeconds": 10}
    return c


def _deployment(name: str, namespace: str, labels: dict, pod_labels: dict, sa: str, containers: list[dict],
                annotations: dict | None = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, labels),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": dict(pod_labels)},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": dict(pod_labels), "annotations": dict(annotations or {})},
                "spec": {"serviceAccountName": sa, "automountServiceAccountToken": False,
                         "nodeSelector": {"kubernetes.io/os": "linux"}, "containers": containers},
            },
        },
    }


# -- the core control plane ------------------------------------------------------------------------------

def install_values(seed: int, overrides: dict | None = None) -> dict:
    """The chart values ``linkerd install`` records in ``linkerd-config`` (the ones the model reads; 2.20 defaults).

    The proxy injector reads them back from the ConfigMap at every admission, so an install made with other
    values (``linkerd install --set proxy.logLevel=debug``, or the real CLI's output) changes what it injects.
    """
    values = {
        "cliVersion": f"linkerd/cli {l5d.LINKERD_VERSION}",
        "clusterDomain": "cluster.local",
        "clusterNetworks": CLUSTER_NETWORKS,
        "cniEnabled": False,
        "controllerImage": f"{l5d.REGISTRY}/controller",
        "controllerLogFormat": "plain",
        "controllerLogLevel": "info",
        "controllerReplicas": 1,
        "debugContainer": {"image": {"name": l5d.DEBUG_IMAGE, "pullPolicy": "", "version": l5d.LINKERD_VERSION}},
        "identityTrustAnchorsPEM": trust_anchor_pem(seed),
        "identityTrustDomain": "cluster.local",
        "imagePullPolicy": "IfNotPresent",
        "linkerdVersion": l5d.LINKERD_VERSION,
        "proxy": {**clone(DEFAULTS["proxy"]),
                  "image": {"name": l5d.PROXY_IMAGE, "pullPolicy": "", "version": l5d.LINKERD_VERSION},
                  "resources": {r: {"limit": "", "request": ""} for r in ("cpu", "ephemeral-storage", "memory")}},
        "proxyInit": clone(DEFAULTS["proxyInit"]),
    }
    for path, value in (overrides or {}).items():
        node = values
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return values


def _yaml(values: dict) -> str:
    import yaml

    return yaml.safe_dump(values, sort_keys=True, default_flow_style=False)


def values_of(config_map: dict | None) -> dict:
    """The install values in a ``linkerd-config`` ConfigMap (empty when absent or unreadable)."""
    import yaml

    text = ((config_map or {}).get("data") or {}).get("values") or ""
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return {}
    return values if isinstance(values, dict) else {}


def control_plane_objects(seed: int, overrides: dict | None = None) -> list[dict]:
    """``linkerd install`` (non-HA): what a learner sees in ``kubectl get all -n linkerd`` and friends."""
    cp = {"linkerd.io/control-plane-ns": NS}
    objs: list[dict] = [{
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": _meta(NS, labels={"linkerd.io/is-control-plane": "true", "config.linkerd.io/admission-webhooks": "disabled",
                                      "linkerd.io/control-plane-ns": NS, "pod-security.kubernetes.io/enforce": "privileged"},
                          annotations={"linkerd.io/inject": "disabled"}),
    }]
    for component in ("identity", "destination", "heartbeat", "proxy-injector"):
        objs.append(_sa(f"linkerd-{component}", NS, {**cp, "linkerd.io/control-plane-component": component}))
    # RBAC under the names 2.20's chart gives it (what `kubectl get clusterroles` shows after a real install)
    for component in ("identity", "destination", "proxy-injector"):
        objs.append(_rbac("ClusterRole", f"linkerd-{NS}-{component}", {**cp, "linkerd.io/control-plane-component": component}))
        objs.append(_rbac("ClusterRoleBinding", f"linkerd-{NS}-{component}", {**cp, "linkerd.io/control-plane-component": component},
                          subject=(f"linkerd-{component}", NS)))
    dst = {**cp, "linkerd.io/control-plane-component": "destination", "app.kubernetes.io/part-of": "Linkerd"}
    objs += [
        _rbac("ClusterRole", "linkerd-policy", dst),
        _rbac("ClusterRoleBinding", "linkerd-destination-policy", dst, subject=("linkerd-destination", NS), role="linkerd-policy"),
        _rbac("Role", "remote-discovery", dst, namespace=NS),
        _rbac("RoleBinding", "linkerd-destination-remote-discovery", dst, namespace=NS, subject=("linkerd-destination", NS),
              role="remote-discovery"),
        _rbac("Role", "linkerd-heartbeat", cp, namespace=NS),
        _rbac("RoleBinding", "linkerd-heartbeat", cp, namespace=NS, subject=("linkerd-heartbeat", NS)),
        _rbac("ClusterRole", "linkerd-heartbeat", cp),
        _rbac("ClusterRoleBinding", "linkerd-heartbeat", cp, subject=("linkerd-heartbeat", NS)),
        _rbac("Role", "ext-namespace-metadata-linkerd-config", cp, namespace=NS),
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": _meta("linkerd-config-overrides", NS, cp),
         "data": {"linkerd-config-overrides": base64.b64encode(b"{}\n").decode()}},
    ]
    values = install_values(seed, overrides)
    objs += [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("linkerd-config", NS, {**cp, "linkerd.io/control-plane-component": "controller"}),
         "data": {"linkerd-crds-chart-version": f"linkerd-crds-{l5d.CHART_VERSION}", "values": _yaml(values)}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("linkerd-identity-trust-roots", NS, cp),
         "data": {"ca-bundle.crt": trust_anchor_pem(seed)}},
        _secret("linkerd-identity-issuer", NS, {**cp, "linkerd.io/control-plane-component": "identity"}, seed),
        _secret("linkerd-proxy-injector-k8s-tls", NS, cp, seed),
        _secret("linkerd-sp-validator-k8s-tls", NS, cp, seed),
        _secret("linkerd-policy-validator-k8s-tls", NS, cp, seed),
    ]
    comp = lambda c: {**cp, "linkerd.io/control-plane-component": c}  # noqa: E731
    objs += [
        _svc("linkerd-identity", NS, comp("identity"), comp("identity"), [("grpc", 8080, 8080)]),
        _svc("linkerd-identity-headless", NS, comp("identity"), comp("identity"), [("grpc", 8080, 8080)], headless=True),
        _svc("linkerd-dst", NS, comp("destination"), comp("destination"), [("grpc", 8086, 8086)]),
        _svc("linkerd-dst-headless", NS, comp("destination"), comp("destination"), [("grpc", 8086, 8086)], headless=True),
        _svc("linkerd-sp-validator", NS, comp("destination"), comp("destination"), [("sp-validator", 443, "sp-validator")]),
        _svc("linkerd-policy", NS, comp("destination"), comp("destination"), [("grpc", 8090, 8090)], headless=True),
        _svc("linkerd-policy-validator", NS, comp("destination"), comp("destination"), [("policy-https", 443, "policy-https")]),
        _svc("linkerd-proxy-injector", NS, comp("proxy-injector"), comp("proxy-injector"), [("proxy-injector", 443, "proxy-injector")]),
    ]
    cp_pod = lambda c: {"linkerd.io/control-plane-component": c, "linkerd.io/control-plane-ns": NS,  # noqa: E731
                        "linkerd.io/workload-ns": NS}
    # the components' arguments, rendered from the values as the chart's templates do
    domain = values.get("clusterDomain") or "cluster.local"
    trust = values.get("identityTrustDomain") or domain
    lifetime = ((values.get("identity") or {}).get("issuer") or {}).get("issuanceLifetime") or "24h0m0s"
    networks = values.get("clusterNetworks") or CLUSTER_NETWORKS
    default_policy = (values.get("proxy") or {}).get("defaultInboundPolicy") or "all-unauthenticated"
    opaque = (values.get("proxy") or {}).get("opaquePorts") or "25,587,3306,4444,5432,6379,9300,11211"
    probe_networks = (values.get("policyController") or {}).get("probeNetworks") or ["0.0.0.0/0", "::/0"]
    probe_networks = ",".join(probe_networks) if isinstance(probe_networks, list) else str(probe_networks)
    identity = _deployment("linkerd-identity", NS, {**comp("identity"), "app.kubernetes.io/name": "identity",
                                                    "app.kubernetes.io/part-of": "Linkerd", "app.kubernetes.io/version": l5d.LINKERD_VERSION},
                           cp_pod("identity"), "linkerd-identity",
                           [_container("identity", l5d.CONTROLLER_IMAGE, ["identity", "-log-level=info", "-log-format=plain",
                                                                           "-controller-namespace=linkerd", f"-identity-trust-domain={trust}",
                                                                           f"-identity-issuance-lifetime={lifetime}", "-identity-clock-skew-allowance=20s",
                                                                           "-identity-scheme=linkerd.io/tls"],
                                       [("ident-grpc", 8080), ("ident-admin", 9990)], ("/ready", 9990))])
    destination = _deployment("linkerd-destination", NS, {**comp("destination"), "app.kubernetes.io/name": "destination",
                                                          "app.kubernetes.io/part-of": "Linkerd", "app.kubernetes.io/version": l5d.LINKERD_VERSION},
                              cp_pod("destination"), "linkerd-destination",
                              [_container("destination", l5d.CONTROLLER_IMAGE, ["destination", "-addr=:8086", "-controller-namespace=linkerd",
                                                                                 "-enable-h2-upgrade=true", "-log-level=info", "-log-format=plain",
                                                                                 "-enable-endpoint-slices=true", f"-cluster-domain={domain}",
                                                                                 f"-identity-trust-domain={trust}", f"-default-opaque-ports={opaque}"],
                                          [("dest-grpc", 8086), ("dest-admin", 9996)], ("/ready", 9996)),
                               _container("sp-validator", l5d.CONTROLLER_IMAGE, ["sp-validator", "-log-level=info", "-log-format=plain"],
                                          [("sp-validator", 8443), ("spval-admin", 9997)], ("/ready", 9997)),
                               _container("policy", l5d.POLICY_CONTROLLER_IMAGE, ["--admin-addr=0.0.0.0:9990", "--control-plane-namespace=linkerd",
                                                                                   "--grpc-addr=0.0.0.0:8090", "--server-addr=0.0.0.0:9443",
                                                                                   f"--cluster-networks={networks}",
                                                                                   f"--identity-domain={trust}", f"--cluster-domain={domain}",
                                                                                   f"--default-policy={default_policy}", "--log-level=info", "--log-format=plain",
                                                                                   f"--default-opaque-ports={opaque}",
                                                                                   "--global-egress-network-namespace=linkerd-egress",
                                                                                   f"--probe-networks={probe_networks}"],
                                          [("policy-grpc", 8090), ("policy-admin", 9990), ("policy-https", 9443)], ("/ready", 9990))])
    injector = _deployment("linkerd-proxy-injector", NS, {**comp("proxy-injector"), "app.kubernetes.io/name": "proxy-injector",
                                                          "app.kubernetes.io/part-of": "Linkerd", "app.kubernetes.io/version": l5d.LINKERD_VERSION},
                           cp_pod("proxy-injector"), "linkerd-proxy-injector",
                           [_container("proxy-injector", l5d.CONTROLLER_IMAGE, ["proxy-injector", "-log-level=info", "-log-format=plain",
                                                                                 "-linkerd-namespace=linkerd", "-enable-pprof=false"],
                                       [("proxy-injector", 8443), ("injector-admin", 9995)], ("/ready", 9995))])
    for deploy, owner in ((identity, "linkerd-identity"), (destination, "linkerd-destination"), (injector, "linkerd-proxy-injector")):
        tpl = deploy["spec"]["template"]
        tpl["metadata"]["annotations"]["config.linkerd.io/default-inbound-policy"] = "all-unauthenticated"
        own = values
        if owner == "linkerd-identity":
            # identity serves the certificates its own proxy needs: its proxy is an ordinary container after it,
            # not awaited (2.20's chart does the same)
            own = {**values, "proxy": {**values["proxy"], "nativeSidecar": False, "await": False,
                                       "requireTLSOnInboundPorts": "8080"}}  # its gRPC port takes TLS only
        inject_pod_spec(tpl["metadata"], tpl["spec"], namespace=NS, namespace_obj=None, owner=("deployment", owner),
                        seed=seed, created_by=f"linkerd/cli {l5d.LINKERD_VERSION}", values=own)
        objs.append(deploy)
    objs.append({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": _meta("linkerd-heartbeat", NS, comp("heartbeat")),
        "spec": {"schedule": "42 9 * * *", "successfulJobsHistoryLimit": 0, "jobTemplate": {"spec": {"template": {
            "metadata": {"labels": cp_pod("heartbeat")},
            "spec": {"serviceAccountName": "linkerd-heartbeat", "restartPolicy": "Never",
                     "containers": [{"name": "heartbeat", "image": l5d.CONTROLLER_IMAGE,
                                     "args": ["heartbeat", "-controller-namespace=linkerd", "-log-level=info"]}]}}}}},
    })
    webhook_ns_selector = {"matchExpressions": [{"key": "config.linkerd.io/admission-webhooks", "operator": "NotIn", "values": ["disabled"]},
                                                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "cert-manager"]}]}
    objs += [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": _meta("linkerd-proxy-injector-webhook-config", labels=comp("proxy-injector")),
         "webhooks": [{"name": "linkerd-proxy-injector.linkerd.io", "admissionReviewVersions": ["v1", "v1beta1"],
                       "clientConfig": {"service": {"name": "linkerd-proxy-injector", "namespace": NS, "path": "/"}},
                       "failurePolicy": "Ignore", "reinvocationPolicy": "IfNeeded", "sideEffects": "None", "timeoutSeconds": 10,
                       "namespaceSelector": webhook_ns_selector,
                       "objectSelector": {"matchExpressions": [{"key": "linkerd.io/control-plane-component", "operator": "DoesNotExist"},
                                                               {"key": "linkerd.io/cni-resource", "operator": "DoesNotExist"}]},
                       "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods", "services"],
                                  "scope": "Namespaced"}]}]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": _meta("linkerd-sp-validator-webhook-config", labels=comp("sp-validator")),
         "webhooks": [{"name": "linkerd-sp-validator.linkerd.io", "admissionReviewVersions": ["v1", "v1beta1"],
                       "clientConfig": {"service": {"name": "linkerd-sp-validator", "namespace": NS, "path": "/"}},
                       "failurePolicy": "Ignore", "sideEffects": "None",
                       "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["linkerd.io"], "apiVersions": ["v1alpha1", "v1alpha2"],
                                  "resources": ["serviceprofiles"]}]}]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": _meta("linkerd-policy-validator-webhook-config", labels=comp("destination")),
         "webhooks": [{"name": "linkerd-policy-validator.linkerd.io", "admissionReviewVersions": ["v1", "v1beta1"],
                       "clientConfig": {"service": {"name": "linkerd-policy-validator", "namespace": NS, "path": "/"}},
                       "failurePolicy": "Ignore", "sideEffects": "None",
                       "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["policy.linkerd.io"], "apiVersions": ["*"],
                                  "resources": ["authorizationpolicies", "httproutes", "networkauthentications", "meshtlsauthentications",
                                                "serverauthorizations", "servers"]}]}]},
    ]
    return objs


# -- viz ----------------------------------------------------------------------------------------------

def viz_objects(seed: int) -> list[dict]:
    """``linkerd viz install``: the metrics stack and dashboard, meshed by the proxy injector."""
    ext = {"linkerd.io/extension": "viz"}
    objs: list[dict] = [{
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": _meta(VIZ, labels={**ext, "pod-security.kubernetes.io/enforce": "privileged"},
                          annotations={"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-await": "enabled"}),
    }]
    for component in ("metrics-api", "prometheus", "tap", "tap-injector", "web"):
        objs.append(_sa(component, VIZ, {**ext, "component": component}))
    for name in (f"linkerd-{VIZ}-metrics-api", f"linkerd-{VIZ}-prometheus", f"linkerd-{VIZ}-tap", f"linkerd-{VIZ}-tap-admin", "linkerd-tap-injector"):
        objs.append(_rbac("ClusterRole", name, ext))
    for name, sa in ((f"linkerd-{VIZ}-metrics-api", "metrics-api"), (f"linkerd-{VIZ}-prometheus", "prometheus"),
                     (f"linkerd-{VIZ}-tap", "tap"), (f"linkerd-{VIZ}-tap-auth-delegator", "tap"), ("linkerd-tap-injector", "tap-injector")):
        objs.append(_rbac("ClusterRoleBinding", name, ext, subject=(sa, VIZ),
                          role="system:auth-delegator" if name.endswith("auth-delegator") else name))
    web = {**ext, "component": "web"}
    objs += [
        _rbac("RoleBinding", f"linkerd-{VIZ}-tap-auth-reader", {**ext, "component": "tap"}, namespace="kube-system",
              subject=("tap", VIZ), role="extension-apiserver-authentication-reader"),
        _rbac("Role", "web", {**web, "namespace": NS}, namespace=NS),
        _rbac("RoleBinding", "web", {**web, "namespace": NS}, namespace=NS, subject=("web", VIZ)),
        _rbac("ClusterRole", f"linkerd-{VIZ}-web-check", web),
        _rbac("ClusterRoleBinding", f"linkerd-{VIZ}-web-check", web, subject=("web", VIZ)),
        _rbac("ClusterRoleBinding", f"linkerd-{VIZ}-web-admin", web, subject=("web", VIZ), role=f"linkerd-{VIZ}-tap-admin"),
        _rbac("ClusterRole", f"linkerd-{VIZ}-web-api", web),
        _rbac("ClusterRoleBinding", f"linkerd-{VIZ}-web-api", web, subject=("web", VIZ)),
    ]
    objs += [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("prometheus-config", VIZ, {**ext, "component": "prometheus"}),
         "data": {"prometheus.yml": "global:\n  evaluation_interval: 10s\n  scrape_interval: 10s\n  scrape_timeout: 10s\n"
                                    "scrape_configs:\n- job_name: linkerd-proxy\n  kubernetes_sd_configs:\n  - role: pod\n"}},
        _secret("tap-k8s-tls", VIZ, {**ext, "component": "tap"}, seed),
        _secret("tap-injector-k8s-tls", VIZ, {**ext, "component": "tap-injector"}, seed),
        _svc("metrics-api", VIZ, {**ext, "component": "metrics-api"}, {**ext, "component": "metrics-api"}, [("http", 8085, 8085)]),
        _svc("prometheus", VIZ, {**ext, "component": "prometheus"}, {**ext, "component": "prometheus"}, [("admin", 9090, 9090)]),
        _svc("tap", VIZ, {**ext, "component": "tap"}, {**ext, "component": "tap"}, [("grpc", 8088, 8088), ("apiserver", 443, "apiserver")]),
        _svc("tap-injector", VIZ, {**ext, "component": "tap-injector"}, {**ext, "component": "tap-injector"}, [("tap-injector", 443, "tap-injector")]),
        _svc("web", VIZ, {**ext, "component": "web"}, {**ext, "component": "web"}, [("http", 8084, 8084), ("admin", 9994, 9994)]),
    ]
    img = lambda n: f"{l5d.REGISTRY}/{n}:{l5d.LINKERD_VERSION}"  # noqa: E731
    specs = [
        ("metrics-api", _container("metrics-api", img("metrics-api"), ["-controller-namespace=linkerd", "-log-level=info",
                                                                        "-prometheus-url=http://prometheus.linkerd-viz.svc.cluster.local:9090"],
                                   [("http", 8085), ("admin", 9995)], ("/ready", 9995))),
        ("prometheus", {**_container("prometheus", PROMETHEUS_IMAGE, ["--log.level=info", "--config.file=/etc/prometheus/prometheus.yml",
                                                                     "--storage.tsdb.path=/data", "--storage.tsdb.retention.time=6h"],
                                     [("admin", 9090)], ("/-/ready", 9090)), "securityContext": {"runAsUser": 65534}}),
        ("tap", _container("tap", img("tap"), ["api", "-api-namespace=linkerd", "-log-level=info", "-identity-trust-domain=cluster.local"],
                           [("grpc", 8088), ("apiserver", 8089), ("admin", 9998)], ("/ready", 9998))),
        ("tap-injector", _container("tap-injector", img("tap"), ["injector", "-tap-service-name=tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local",
                                                                 "-log-level=info"],
                                    [("tap-injector", 8443), ("admin", 9995)], ("/ready", 9995))),
        ("web", _container("web", img("web"), ["-linkerd-metrics-api-addr=metrics-api.linkerd-viz.svc.cluster.local:8085",
                                               "-cluster-domain=cluster.local", "-controller-namespace=linkerd", "-log-level=info",
                                               "-enforced-host=^(localhost|127\\.0\\.0\\.1|web\\.linkerd-viz\\.svc\\.cluster\\.local|web\\.linkerd-viz\\.svc|\\[::1\\])(:\\d+)?$"],
                           [("http", 8084), ("admin", 9994)], ("/ready", 9994))),
    ]
    for component, container in specs:
        labels = {**ext, "app.kubernetes.io/name": component, "app.kubernetes.io/part-of": "Linkerd",
                  "app.kubernetes.io/version": l5d.LINKERD_VERSION, "component": component, "namespace": VIZ}
        objs.append(_deployment(component, VIZ, labels, {**ext, "component": component}, component, [container],
                                annotations={"config.linkerd.io/default-inbound-policy": "all-authenticated"}))
    objs += [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": _meta("linkerd-tap-injector-webhook-config", labels=ext),
         "webhooks": [{"name": "tap-injector.linkerd.io", "admissionReviewVersions": ["v1", "v1beta1"],
                       "clientConfig": {"service": {"name": "tap-injector", "namespace": VIZ, "path": "/"}},
                       "failurePolicy": "Ignore", "reinvocationPolicy": "IfNeeded", "sideEffects": "None",
                       "namespaceSelector": {"matchExpressions": [{"key": "config.linkerd.io/admission-webhooks", "operator": "NotIn",
                                                                   "values": ["disabled"]}]},
                       "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": _meta("v1alpha1.tap.linkerd.io", labels={**ext, "component": "tap"}),
         "spec": {"group": "tap.linkerd.io", "version": "v1alpha1", "groupPriorityMinimum": 1000, "versionPriority": 100,
                  "service": {"name": "tap", "namespace": VIZ}}},
        _server("prometheus-admin", {**ext, "component": "prometheus"}, "admin", "HTTP/1"),
        {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy",
         "metadata": _meta("prometheus-admin", VIZ, {**ext, "component": "prometheus"}),
         "spec": {"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": "prometheus-admin"},
                  "requiredAuthenticationRefs": [{"kind": "ServiceAccount", "name": "metrics-api", "namespace": VIZ}]}},
        _server("metrics-api", {**ext, "component": "metrics-api"}, "http", "HTTP/1"),
        _authz("metrics-api", {**ext, "component": "metrics-api"}, "metrics-api", "MeshTLSAuthentication", "metrics-api-web"),
        {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "MeshTLSAuthentication",
         "metadata": _meta("metrics-api-web", VIZ, {**ext, "component": "metrics-api"}),
         "spec": {"identityRefs": [{"kind": "ServiceAccount", "name": "web"}]}},
        _server("tap-api", {**ext, "component": "tap"}, "apiserver", "TLS"),
        _authz("tap", {**ext, "component": "tap"}, "tap-api", "NetworkAuthentication", "kube-api-server"),
        _server("tap-injector-webhook", {**ext, "component": "tap-injector"}, "tap-injector", "TLS"),
        _authz("tap-injector", {**ext, "component": "tap-injector"}, "tap-injector-webhook", "NetworkAuthentication", "kube-api-server"),
        *[{"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "NetworkAuthentication", "metadata": _meta(name, VIZ, ext),
           "spec": {"networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]}} for name in ("kubelet", "kube-api-server")],
        _service_profile("metrics-api", ext, [("POST", f"/api/v1/{call}") for call in
                                              ("StatSummary", "TopRoutes", "ListPods", "ListServices", "SelfCheck", "Gateways", "Edges")]),
        _service_profile("prometheus", ext, [("POST", "/api/v1/query"), ("GET", "/api/v1/query_range"), ("GET", "/api/v1/series")]),
    ]
    return objs


def _server(name: str, labels: dict, port: str, protocol: str) -> dict:
    return {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server", "metadata": _meta(name, VIZ, labels),
            "spec": {"podSelector": {"matchLabels": {k: v for k, v in labels.items() if k != "namespace"}}, "port": port,
                     "proxyProtocol": protocol}}


def _authz(name: str, labels: dict, server: str, kind: str, authn: str) -> dict:
    return {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy", "metadata": _meta(name, VIZ, labels),
            "spec": {"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": server},
                     "requiredAuthenticationRefs": [{"group": "policy.linkerd.io", "kind": kind, "name": authn}]}}


def _service_profile(service: str, labels: dict, routes: list[tuple[str, str]]) -> dict:
    return {"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
            "metadata": _meta(f"{service}.{VIZ}.svc.cluster.local", VIZ, labels),
            "spec": {"routes": [{"name": f"{method} {path}", "condition": {"method": method, "pathRegex": path}}
                                for method, path in routes]}}


# -- install ---------------------------------------------------------------------------------------------

def register(cluster) -> None:
    """Wire the control plane's in-process parts: webhook backends and the proxy's readiness gate.

    The webhooks only answer once their Service has ready endpoints (the
    API server checks that), so registering them early changes nothing
    until the injector pods are up — as on a cluster.
    """
    api = cluster.api
    if (NS, "linkerd-proxy-injector") in api.webhook_backends:
        return
    config_type = cluster.types.configmap
    cache: dict = {}

    def current_values() -> dict:
        """The injector reads ``linkerd-config`` as installed (re-parsed only when the ConfigMap changes)."""
        config_map = api.get(config_type, NS, "linkerd-config")
        version = (config_map or {}).get("metadata", {}).get("resourceVersion")
        if cache.get("version") != version:
            cache["version"], cache["values"] = version, values_of(config_map)
        return cache["values"]

    api.webhook_backends[(NS, "linkerd-proxy-injector")] = ProxyInjector(cluster.seed, cluster.workload_owner, current_values)
    cluster.image_notices.append(l5d.version_notice)
    api.webhook_backends[(VIZ, "tap-injector")] = TapInjector()
    cluster.kubelet.readiness_gates[l5d.PROXY_CONTAINER] = lambda pod: identity_ready(cluster) and certifies(cluster, pod)
    cluster.kubelet.long_running.update({l5d.PROXY_CONTAINER, l5d.DEBUG_CONTAINER})
    cluster.kubelet.local_probes.add(l5d.PROXY_CONTAINER)  # /live, /ready on its admin port: never via its inbound


def manual_injector(cluster):
    """``linkerd inject --manual``'s transform: the proxy written into a pod template by the CLI, configured by the
    installed ``linkerd-config`` (the CLI reads it from the cluster, as the injector does)."""
    values = values_of(cluster.api.get(cluster.types.configmap, NS, "linkerd-config")) or install_values(cluster.seed)

    def transform(kind: str, name: str, pmeta: dict, pspec: dict) -> None:
        namespace = pmeta.get("namespace") or "default"
        inject_pod_spec(pmeta, pspec, namespace=namespace, namespace_obj=None,
                        owner=None if kind == "Pod" else (kind.lower(), name), seed=cluster.seed,
                        created_by=f"linkerd/cli {values.get('linkerdVersion') or l5d.LINKERD_VERSION}", values=values)

    return transform


def certifies(cluster, pod: dict) -> bool:
    """Does the identity controller issue the certificate this pod's proxy asks for? Only for the name its
    token proves, in its own trust domain (``-identity-trust-domain``): else it answers FailedPrecondition
    "requested identity did not match provided token" and the proxy never becomes ready
    (``pkg/identity/service.go``)."""
    from labkit.sim.linkerd import controlplane

    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    found = f"{spec.get('serviceAccountName') or 'default'}.{meta.get('namespace') or 'default'}." \
            f"{controlplane.identity(cluster).suffix(NS)}"
    return l5d.local_identity(pod) == found


def identity_ready(cluster) -> bool:
    """Can proxies get their certificates? (an identity container is ready)"""
    for pod in cluster.list("Pod", NS, {"linkerd.io/control-plane-component": "identity"}):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") == "identity" and cs.get("ready"):
                return True
    return False


def install(cluster, viz: bool = True) -> list[str]:
    """Apply the CRDs and control plane now; viz as soon as the control plane is ready.

    As 2.20's CLI, refuses (before applying anything) when the Gateway API CRDs are missing.
    """
    from labkit.errors import ApplyError

    problem = gateway_api_problem(cluster)
    if problem:
        raise ApplyError(f"{problem}\n(on the embedded mesh: mesh.install_gateway_api()); nothing was installed")
    register(cluster)
    lines = cluster.apply_objects(crd_objects(), origin="linkerd install --crds", check_images=False)
    lines += cluster.apply_objects(control_plane_objects(cluster.seed), origin="linkerd install", check_images=False)
    if viz:
        lines += install_viz(cluster)
    return lines


def install_viz(cluster) -> list[str]:
    """``linkerd viz install | kubectl apply -f -`` once ``linkerd check`` passes (now, or when it does)."""
    objs = viz_objects(cluster.seed)
    if cluster.control_plane()["linkerd"]:
        return cluster.apply_objects(objs, origin="linkerd viz install", check_images=False)
    planned = cluster.apply_objects(objs, origin="linkerd viz install", check_images=False, dry_run=True)
    if not getattr(cluster, "_viz_pending", False):
        cluster._viz_pending = True

        def attempt() -> None:
            if cluster.control_plane()["linkerd"]:
                cluster._viz_pending = False
                cluster.apply_objects(objs, origin="linkerd viz install", check_images=False)
            else:
                cluster.clock.after(VIZ_POLL, attempt)

        cluster.clock.after(VIZ_POLL, attempt)
    return planned
