"""Linkerd's proxy injector and viz's tap injector: mutating admission webhooks, as pure pod transforms.

``linkerd inject`` only annotates a pod template (``linkerd.io/inject:
enabled``); the proxy is added by the *proxy injector* when the API server
admits each new pod. So injection happens per pod, at creation: pods that
already run are untouched until they are recreated (a rollout, a restart),
and a pod created while the injector is down is admitted without a proxy
(the webhook's ``failurePolicy`` is ``Ignore``). The transform follows what
Linkerd 2.20 writes (reference/linkerd-2.20.md §2): ``linkerd-init`` then
``linkerd-proxy`` as a native sidecar (``restartPolicy: Always`` with a
startup probe, so the app starts once the proxy is ready) at the head of the
init containers — or, with native sidecars turned off, ``linkerd-init``
appended and the proxy as ``containers[0]`` with its ``linkerd-await``
post-start hook —, an optional ``linkerd-debug`` container last, the
``linkerd.io/*`` annotations and labels, and the identity volumes. What it
writes comes from the install's values in the ``linkerd-config`` ConfigMap
(image, version, log level, resources, native sidecar...), overridden per
workload by ``config.linkerd.io/*`` annotations.

The tap injector (linkerd-viz) adds ``viz.linkerd.io/tap-enabled`` to meshed
pods *it admits*: pods meshed before viz was installed stay untappable until
restarted, which is the trap the labs point out.
"""
from __future__ import annotations

import hashlib
from typing import Callable

from labkit.sim import linkerd as l5d
from labkit.sim.kube.objects import annotations_of, clone, labels_of

#: Ports the proxy itself uses; linkerd-init never redirects them.
PROXY_UID = 2102
INBOUND_PORT, OUTBOUND_PORT, CONTROL_PORT, ADMIN_PORT = 4143, 4140, 4190, 4191
CLUSTER_NETWORKS = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"
OPAQUE_DEFAULT = "25,587,3306,4444,5432,6379,9300,11211"
IDENTITY_SUFFIX = "serviceaccount.identity.linkerd.cluster.local"


def trust_root_sha(seed: int) -> str:
    """The sha256 of the (modelled) trust anchor: fixed per cluster seed."""
    return hashlib.sha256(f"{seed}:linkerd-trust-anchor".encode()).hexdigest()


def trust_anchor_pem(seed: int) -> str:
    body = hashlib.sha512(f"{seed}:linkerd-trust-anchor".encode()).hexdigest()
    return f"-----BEGIN CERTIFICATE-----\n{body[:64]}\n{body[64:]}\n-----END CERTIFICATE-----\n"


def _config(pod: dict, namespace: dict | None) -> dict[str, str]:
    """``config.linkerd.io/*`` settings: the namespace's, overridden by the pod's (as the injector merges them)."""
    out = {k: v for k, v in annotations_of(namespace or {}).items() if k.startswith(("config.linkerd.io/", "config.alpha.linkerd.io/"))}
    out.update({k: v for k, v in annotations_of(pod).items() if k.startswith(("config.linkerd.io/", "config.alpha.linkerd.io/"))})
    return out


def inject_mode(pod: dict, namespace: dict | None) -> str | None:
    """``enabled`` / ``ingress`` when the injector should mesh this pod, else None.

    The pod's own ``linkerd.io/inject`` wins over its namespace's; ``disabled``
    on the pod opts out of a namespace-wide ``enabled``.
    """
    pod_value = annotations_of(pod).get(l5d.INJECT_ANNOTATION)
    if pod_value is not None:
        return pod_value if pod_value in ("enabled", "ingress") else None
    ns_value = annotations_of(namespace or {}).get(l5d.INJECT_ANNOTATION)
    return ns_value if ns_value in ("enabled", "ingress") else None


def _ports(spec: dict) -> list[int]:
    ports = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("containerPort") and p["containerPort"] not in ports:
                ports.append(p["containerPort"])
    return ports


#: Default install values the injector falls back on when ``linkerd-config`` lacks one (charts/linkerd-control-plane).
DEFAULTS = {
    "proxy": {"image": {"name": l5d.PROXY_IMAGE, "version": ""}, "logLevel": "warn,linkerd=info,hickory=error",
              "logFormat": "plain", "logHTTPHeaders": "off", "nativeSidecar": True, "await": True,
              "defaultInboundPolicy": "all-unauthenticated", "opaquePorts": OPAQUE_DEFAULT, "uid": PROXY_UID,
              "ports": {"admin": ADMIN_PORT, "control": CONTROL_PORT, "inbound": INBOUND_PORT, "outbound": OUTBOUND_PORT},
              "resources": {}, "capabilities": None,
              "startupProbe": {"failureThreshold": 120, "initialDelaySeconds": 0, "periodSeconds": 1},
              "livenessProbe": {"initialDelaySeconds": 10, "timeoutSeconds": 1},
              "readinessProbe": {"initialDelaySeconds": 2, "timeoutSeconds": 1}},
    "proxyInit": {"ignoreInboundPorts": "4567,4568", "ignoreOutboundPorts": "4567,4568", "iptablesMode": "nft"},
    "debugContainer": {"image": {"name": l5d.DEBUG_IMAGE, "version": ""}},
    "clusterNetworks": CLUSTER_NETWORKS,
}


def _value(values: dict, path: str):
    """``proxy.image.name`` from the install values, else the chart default."""
    for source in (values, DEFAULTS):
        node = source
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if node is not None and node != "":
            return node
    return None


def _annotation_ports(value: str | None) -> str:
    return ",".join(p.strip() for p in (value or "").split(",") if p.strip())


def proxy_resources(values: dict, config: dict[str, str]) -> dict:
    """requests/limits from the install's ``proxy.resources``, each overridable by ``config.linkerd.io/proxy-*``."""
    out: dict = {}
    for resource in ("cpu", "memory", "ephemeral-storage"):
        for kind, field in (("request", "requests"), ("limit", "limits")):
            value = config.get(f"config.linkerd.io/proxy-{resource}-{kind}") or \
                _value(values, f"proxy.resources.{resource}.{kind}")
            if value not in (None, ""):
                out.setdefault(field, {})[resource] = str(value)
    return out


def proxy_container(spec: dict, config: dict[str, str], version: str, seed: int, mode: str = "enabled",
                    values: dict | None = None, native: bool = True) -> dict:
    """The ``linkerd-proxy`` container 2.20's injector writes (``charts/partials`` ``_proxy.tpl``, re-described)."""
    values = values or {}
    ports = _value(values, "proxy.ports")
    admin = int(config.get("config.linkerd.io/admin-port") or ports.get("admin", ADMIN_PORT))
    control = int(config.get("config.linkerd.io/control-port") or ports.get("control", CONTROL_PORT))
    inbound = int(config.get("config.linkerd.io/inbound-port") or ports.get("inbound", INBOUND_PORT))
    outbound = int(config.get("config.linkerd.io/outbound-port") or ports.get("outbound", OUTBOUND_PORT))
    networks = str(_value(values, "clusterNetworks"))
    # the chart's $trustDomain: identityTrustDomain, else clusterDomain
    trust = values.get("identityTrustDomain") or values.get("clusterDomain") or "cluster.local"
    suffix = f"serviceaccount.identity.{l5d.CONTROL_PLANE_NS}.{trust}"
    inbound_ports = ",".join(str(p) for p in _ports(spec))
    log = config.get("config.linkerd.io/proxy-log-level") or _value(values, "proxy.logLevel")
    if "[{headers}]" not in log and _value(values, "proxy.logHTTPHeaders") == "off":
        log += ",[{headers}]=off,[{request}]=off"
    field = lambda name, path: {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}  # noqa: E731
    env = [
        field("_pod_name", "metadata.name"), field("_pod_ns", "metadata.namespace"), field("_pod_uid", "metadata.uid"),
        field("_pod_ip", "status.podIP"), field("_pod_nodeName", "spec.nodeName"),
        {"name": "_pod_containerName", "value": l5d.PROXY_CONTAINER},
        {"name": "LINKERD2_PROXY_CORES", "value": "1"},
        {"name": "LINKERD2_PROXY_CORES_MIN", "value": "1"},
        *([{"name": "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_TLS", "value": str(_value(values, "proxy.requireTLSOnInboundPorts"))}]
          if _value(values, "proxy.requireTLSOnInboundPorts") else []),
        {"name": "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", "value": "false"},
        {"name": "LINKERD2_PROXY_LOG", "value": log},
        {"name": "LINKERD2_PROXY_LOG_FORMAT", "value": config.get("config.linkerd.io/proxy-log-format") or _value(values, "proxy.logFormat")},
        {"name": "LINKERD2_PROXY_DESTINATION_SVC_ADDR", "value": "linkerd-dst-headless.linkerd.svc.cluster.local.:8086"},
        {"name": "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS", "value": networks},
        {"name": "LINKERD2_PROXY_POLICY_SVC_ADDR", "value": "linkerd-policy.linkerd.svc.cluster.local.:8090"},
        {"name": "LINKERD2_PROXY_POLICY_WORKLOAD", "value": '{"ns":"$(_pod_ns)", "pod":"$(_pod_name)"}\n'},
        {"name": "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY",
         "value": config.get("config.linkerd.io/default-inbound-policy") or _value(values, "proxy.defaultInboundPolicy")},
        {"name": "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", "value": networks},
        {"name": "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT", "value": "3s"},
        {"name": "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT", "value": "5m"},
        {"name": "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME", "value": "1h"},
        {"name": "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", "value": "100ms"},
        {"name": "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT", "value": "1000ms"},
        {"name": "LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT", "value": "5s"},
        {"name": "LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT", "value": "90s"},
        {"name": "LINKERD2_PROXY_CONTROL_LISTEN_ADDR", "value": f"0.0.0.0:{control}"},
        {"name": "LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "value": f"0.0.0.0:{admin}"},
        {"name": "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "value": f"127.0.0.1:{outbound}"},
        {"name": "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS", "value": f"127.0.0.1:{outbound}"},
        {"name": "LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "value": f"0.0.0.0:{inbound}"},
        field("LINKERD2_PROXY_INBOUND_IPS", "status.podIPs"),
        {"name": "LINKERD2_PROXY_INBOUND_PORTS", "value": inbound_ports},
        {"name": "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", "value": "svc.cluster.local."},
        {"name": "LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE", "value": "10000ms"},
        {"name": "LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE", "value": "10000ms"},
        {"name": "LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT", "value": "30s"},
        {"name": "LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT", "value": "30s"},
        {"name": "LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS", "value": "false"},
        {"name": "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL", "value": "10s"},
        {"name": "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT", "value": "3s"},
        {"name": "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL", "value": "10s"},
        {"name": "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT", "value": "3s"},
        {"name": "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
         "value": _annotation_ports(config.get("config.linkerd.io/opaque-ports")) or str(_value(values, "proxy.opaquePorts"))},
        {"name": "LINKERD2_PROXY_DESTINATION_CONTEXT",
         "value": '{"ns":"$(_pod_ns)", "nodeName":"$(_pod_nodeName)", "pod":"$(_pod_name)"}\n'},
        field("_pod_sa", "spec.serviceAccountName"),
        {"name": "_l5d_ns", "value": l5d.CONTROL_PLANE_NS},
        {"name": "_l5d_trustdomain", "value": trust},
        {"name": "LINKERD2_PROXY_IDENTITY_DIR", "value": "/var/run/linkerd/identity/end-entity"},
        {"name": "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", "value": values.get("identityTrustAnchorsPEM") or trust_anchor_pem(seed)},
        {"name": "LINKERD2_PROXY_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/tokens/linkerd-identity-token"},
        {"name": "LINKERD2_PROXY_IDENTITY_SVC_ADDR", "value": "linkerd-identity-headless.linkerd.svc.cluster.local.:8080"},
        {"name": "LINKERD2_PROXY_IDENTITY_LOCAL_NAME", "value": f"$(_pod_sa).$(_pod_ns).{suffix}"},
        {"name": "LINKERD2_PROXY_IDENTITY_SVC_NAME", "value": f"linkerd-identity.linkerd.{suffix}"},
        {"name": "LINKERD2_PROXY_DESTINATION_SVC_NAME", "value": f"linkerd-destination.linkerd.{suffix}"},
        {"name": "LINKERD2_PROXY_POLICY_SVC_NAME", "value": f"linkerd-destination.linkerd.{suffix}"},
    ]
    if mode == "ingress":
        env.insert(env.index(next(e for e in env if e["name"] == "LINKERD2_PROXY_DESTINATION_CONTEXT")),
                   {"name": "LINKERD2_PROXY_INGRESS_MODE", "value": "true"})
    image = config.get("config.linkerd.io/proxy-image") or _value(values, "proxy.image.name")
    probe = lambda path, extra: {"httpGet": {"path": path, "port": admin}, **extra}  # noqa: E731
    security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                "runAsUser": int(config.get("config.linkerd.io/proxy-uid") or _value(values, "proxy.uid")),
                "seccompProfile": {"type": "RuntimeDefault"}}
    capabilities = _value(values, "proxy.capabilities")
    if capabilities:  # only when the install configures them (2.20 sets none by default)
        security["capabilities"] = capabilities
    container = {
        "name": l5d.PROXY_CONTAINER,
        "image": f"{image}:{version}",
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "livenessProbe": probe("/live", dict(_value(values, "proxy.livenessProbe"))),
        "ports": [{"containerPort": inbound, "name": "linkerd-proxy"}, {"containerPort": admin, "name": "linkerd-admin"}],
        "readinessProbe": probe("/ready", dict(_value(values, "proxy.readinessProbe"))),
        "securityContext": security,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"mountPath": "/var/run/linkerd/identity/end-entity", "name": "linkerd-identity-end-entity"},
                         {"mountPath": "/var/run/secrets/tokens", "name": "linkerd-identity-token"}],
    }
    resources = proxy_resources(values, config)
    if resources:
        container["resources"] = resources
    awaited = (config.get("config.linkerd.io/proxy-await") or ("enabled" if _value(values, "proxy.await") else "disabled")) == "enabled"
    if native:
        container["restartPolicy"] = "Always"
        if awaited:  # the app's containers start once the proxy is ready
            startup = {k: v for k, v in _value(values, "proxy.startupProbe").items() if v != 0}
            container["startupProbe"] = probe("/ready", startup)
    elif awaited:
        container["lifecycle"] = {"postStart": {"exec": {"command": ["/usr/lib/linkerd/linkerd-await", "--timeout=2m",
                                                                     f"--port={admin}"]}}}
    return container


def init_container(config: dict[str, str], values: dict | None = None, version: str = "") -> dict:
    """``linkerd-init`` (runs the proxy image's ``linkerd2-proxy-init`` in 2.20): iptables redirection."""
    values = values or {}
    ports = _value(values, "proxy.ports")
    admin = config.get("config.linkerd.io/admin-port") or ports.get("admin", ADMIN_PORT)
    control = config.get("config.linkerd.io/control-port") or ports.get("control", CONTROL_PORT)
    ignore_in = f"{control},{admin},{_value(values, 'proxyInit.ignoreInboundPorts')}"
    if config.get("config.linkerd.io/skip-inbound-ports"):
        ignore_in += "," + _annotation_ports(config["config.linkerd.io/skip-inbound-ports"])
    ignore_out = str(_value(values, "proxyInit.ignoreOutboundPorts"))
    if config.get("config.linkerd.io/skip-outbound-ports"):
        ignore_out += "," + _annotation_ports(config["config.linkerd.io/skip-outbound-ports"])
    mode = _value(values, "proxyInit.iptablesMode")
    image = config.get("config.linkerd.io/proxy-image") or _value(values, "proxy.image.name")
    return {
        "args": ["--firewall-bin-path", f"iptables-{mode}", "--firewall-save-bin-path", f"iptables-{mode}-save",
                 "--ipv6=false", "--incoming-proxy-port", str(ports.get("inbound", INBOUND_PORT)),
                 "--outgoing-proxy-port", str(ports.get("outbound", OUTBOUND_PORT)),
                 "--proxy-uid", str(_value(values, "proxy.uid")), "--inbound-ports-to-ignore", ignore_in,
                 "--outbound-ports-to-ignore", ignore_out],
        "command": ["/usr/lib/linkerd/linkerd2-proxy-init"],
        "image": f"{image}:{version or l5d.LINKERD_VERSION}",
        "imagePullPolicy": "IfNotPresent",
        "name": l5d.INIT_CONTAINER,
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}, "privileged": False,
                            "readOnlyRootFilesystem": True, "runAsGroup": 65534, "runAsNonRoot": True,
                            "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"mountPath": "/run", "name": "linkerd-proxy-init-xtables-lock"}],
    }


def debug_container(version: str, values: dict | None = None) -> dict:
    """``linkerd-debug`` (``--enable-debug-sidecar``), with the probes 2.20 gives it."""
    image = _value(values or {}, "debugContainer.image.name")
    return {"name": l5d.DEBUG_CONTAINER, "image": f"{image}:{_value(values or {}, 'debugContainer.image.version') or version}",
            "imagePullPolicy": "IfNotPresent", "terminationMessagePolicy": "FallbackToLogsOnError",
            "livenessProbe": {"exec": {"command": ["true"]}}, "readinessProbe": {"exec": {"command": ["true"]}}}


VOLUMES = [
    {"name": "linkerd-proxy-init-xtables-lock", "emptyDir": {}},
    {"name": "linkerd-identity-end-entity", "emptyDir": {"medium": "Memory"}},
    {"name": "linkerd-identity-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "identity.l5d.io", "expirationSeconds": 86400, "path": "linkerd-identity-token"}}]}},
]


def native_sidecar_enabled(config: dict[str, str], values: dict) -> bool:
    """2.20 injects the proxy as a native sidecar unless the install or the annotation turns it off."""
    annotated = config.get("config.linkerd.io/proxy-enable-native-sidecar")
    if annotated is not None:
        return annotated.strip().lower() == "true"
    return bool(_value(values, "proxy.nativeSidecar"))


def inject_pod_spec(metadata: dict, spec: dict, *, namespace: str, namespace_obj: dict | None, owner: tuple[str, str] | None,
                    seed: int, created_by: str, mode: str = "enabled", values: dict | None = None) -> None:
    """Mesh a pod (or pod template) in place, as 2.20's patch does: containers, volumes, annotations, labels.

    Native sidecar (default): ``linkerd-init`` then ``linkerd-proxy`` first among the init containers.
    Otherwise ``linkerd-init`` is appended to the init containers and the proxy goes first among the
    containers (last when ``proxy-await`` is disabled).
    """
    values = values or {}
    pod_like = {"metadata": metadata}
    config = _config(pod_like, namespace_obj)
    version = config.get(l5d.PROXY_VERSION_OVERRIDE) or _value(values, "proxy.image.version") or \
        values.get("linkerdVersion") or l5d.LINKERD_VERSION
    native = native_sidecar_enabled(config, values)
    proxy = proxy_container(spec, config, version, seed, mode, values, native=native)
    init = init_container(config, values, version)
    inits = list(spec.get("initContainers") or [])
    containers = list(spec.get("containers") or [])
    if native:
        inits = [init, proxy] + inits
    else:
        inits = inits + [init]
        containers = [proxy] + containers if "lifecycle" in proxy else containers + [proxy]
    if config.get(l5d.DEBUG_ANNOTATION) == "true":
        containers.append(debug_container(version, values))
    spec["initContainers"] = inits
    spec["containers"] = containers
    spec["volumes"] = list(spec.get("volumes") or []) + clone(VOLUMES)
    ann = metadata.setdefault("annotations", {})
    ann[l5d.CREATED_BY_ANNOTATION] = created_by
    ann[l5d.PROXY_VERSION_ANNOTATION] = version
    ann[l5d.TRUST_ROOT_ANNOTATION] = trust_root_sha(seed)
    labels = metadata.setdefault("labels", {})
    labels[l5d.CONTROL_PLANE_NS_LABEL] = l5d.CONTROL_PLANE_NS
    if owner is not None:
        labels[f"linkerd.io/proxy-{owner[0]}"] = owner[1]
    labels[l5d.WORKLOAD_NS_LABEL] = namespace


class ProxyInjector:
    """The ``linkerd-proxy-injector`` webhook backend: ``(pod, namespace) → pod``."""

    def __init__(self, seed: int, owner_of: Callable[[dict], tuple[str, str] | None],
                 values: Callable[[], dict] = dict):
        self.seed = seed
        self.owner_of = owner_of
        #: the install's values as the injector reads them from ``linkerd-config`` at each admission
        self.values = values

    def __call__(self, pod: dict, namespace_obj: dict | None) -> dict:
        mode = inject_mode(pod, namespace_obj)
        spec = pod.get("spec") or {}
        if mode is None or spec.get("hostNetwork") or l5d.proxy_container(pod) is not None:
            return pod
        pod = clone(pod)
        values = self.values()
        inject_pod_spec(pod["metadata"], pod["spec"], namespace=pod["metadata"].get("namespace", "default"),
                        namespace_obj=namespace_obj, owner=self.owner_of(pod), seed=self.seed,
                        created_by=f"linkerd/proxy-injector {values.get('linkerdVersion') or l5d.LINKERD_VERSION}",
                        mode=mode, values=values)
        return pod


class TapInjector:
    """The viz ``tap-injector`` webhook backend: marks meshed pods tappable at admission."""

    def __call__(self, pod: dict, namespace_obj: dict | None) -> dict:
        proxy = l5d.proxy_container(pod)
        if proxy is None or annotations_of(pod).get("viz.linkerd.io/disable-tap") == "true":
            return pod
        pod = clone(pod)
        pod["metadata"].setdefault("annotations", {})[l5d.TAP_ENABLED_ANNOTATION] = "true"
        proxy = l5d.proxy_container(pod)
        proxy.setdefault("env", []).append({"name": "LINKERD2_PROXY_TAP_SVC_NAME",
                                            "value": f"tap.{l5d.VIZ_NS}.{IDENTITY_SUFFIX}"})
        return pod


def is_tap_enabled(pod: dict) -> bool:
    return annotations_of(pod).get(l5d.TAP_ENABLED_ANNOTATION) == "true"


def owner_label(pod: dict) -> tuple[str, str] | None:
    """The ``linkerd.io/proxy-<kind>`` label of a meshed pod, as (kind, name)."""
    for key, value in labels_of(pod).items():
        if key.startswith("linkerd.io/proxy-"):
            return key[len("linkerd.io/proxy-"):], value
    return None
