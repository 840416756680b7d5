"""Linkerd's proxy injector and viz's tap injector: mutating admission webhooks, as pure pod transforms.

``linkerd inject`` only annotates a pod template (``linkerd.io/inject:
enabled``); the proxy is added by the *proxy injector* when the API server
admits each new pod. So injection happens per pod, at creation: pods that
already run are untouched until they are recreated (a rollout, a restart),
and a pod created while the injector is down is admitted without a proxy
(the webhook's ``failurePolicy`` is ``Ignore``). The transform follows what
Linkerd 2.18 writes (reference/linkerd-formats.md §5.2): ``linkerd-init``
first among the init containers, ``linkerd-proxy`` as ``containers[0]``
with its ``linkerd-await`` post-start hook, an optional ``linkerd-debug``
container last, the ``linkerd.io/*`` annotations and labels, and the
identity volumes.

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


def proxy_container(spec: dict, config: dict[str, str], version: str, seed: int, mode: str = "enabled") -> dict:
    inbound_ports = ",".join(str(p) for p in _ports(spec))
    env = [
        {"name": "_pod_name", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "_pod_ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "_pod_nodeName", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", "value": "false"},
        {"name": "LINKERD2_PROXY_LOG", "value": config.get("config.linkerd.io/proxy-log-level",
                                                            "warn,linkerd=info,hickory=error,[{headers}]=off,[{request}]=off")},
        {"name": "LINKERD2_PROXY_LOG_FORMAT", "value": config.get("config.linkerd.io/proxy-log-format", "plain")},
        {"name": "LINKERD2_PROXY_DESTINATION_SVC_ADDR", "value": "linkerd-dst-headless.linkerd.svc.cluster.local.:8086"},
        {"name": "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS", "value": CLUSTER_NETWORKS},
        {"name": "LINKERD2_PROXY_POLICY_SVC_ADDR", "value": "linkerd-policy.linkerd.svc.cluster.local.:8090"},
        {"name": "LINKERD2_PROXY_POLICY_WORKLOAD", "value": '{"ns":"$(_pod_ns)", "pod":"$(_pod_name)"}\n'},
        {"name": "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "value": config.get("config.linkerd.io/default-inbound-policy", "all-unauthenticated")},
        {"name": "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", "value": CLUSTER_NETWORKS},
        {"name": "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT", "value": "3s"},
        {"name": "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT", "value": "5m"},
        {"name": "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME", "value": "1h"},
        {"name": "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", "value": "100ms"},
        {"name": "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT", "value": "1000ms"},
        {"name": "LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT", "value": "5s"},
        {"name": "LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT", "value": "90s"},
        {"name": "LINKERD2_PROXY_CONTROL_LISTEN_ADDR", "value": f"0.0.0.0:{CONTROL_PORT}"},
        {"name": "LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "value": f"0.0.0.0:{ADMIN_PORT}"},
        {"name": "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "value": f"127.0.0.1:{OUTBOUND_PORT}"},
        {"name": "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS", "value": f"127.0.0.1:{OUTBOUND_PORT}"},
        {"name": "LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "value": f"0.0.0.0:{INBOUND_PORT}"},
        {"name": "LINKERD2_PROXY_INBOUND_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
        {"name": "LINKERD2_PROXY_INBOUND_PORTS", "value": inbound_ports},
        {"name": "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", "value": "svc.cluster.local."},
        {"name": "LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE", "value": "10000ms"},
        {"name": "LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE", "value": "10000ms"},
        {"name": "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
         "value": config.get("config.linkerd.io/opaque-ports", OPAQUE_DEFAULT)},
        {"name": "LINKERD2_PROXY_DESTINATION_CONTEXT",
         "value": '{"ns":"$(_pod_ns)", "nodeName":"$(_pod_nodeName)", "pod":"$(_pod_name)"}\n'},
        {"name": "_pod_sa", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "_l5d_ns", "value": l5d.CONTROL_PLANE_NS},
        {"name": "_l5d_trustdomain", "value": "cluster.local"},
        {"name": "LINKERD2_PROXY_IDENTITY_DIR", "value": "/var/run/linkerd/identity/end-entity"},
        {"name": "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", "value": trust_anchor_pem(seed)},
        {"name": "LINKERD2_PROXY_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/tokens/linkerd-identity-token"},
        {"name": "LINKERD2_PROXY_IDENTITY_SVC_ADDR", "value": "linkerd-identity-headless.linkerd.svc.cluster.local.:8080"},
        {"name": "LINKERD2_PROXY_IDENTITY_LOCAL_NAME", "value": f"$(_pod_sa).$(_pod_ns).{IDENTITY_SUFFIX}"},
        {"name": "LINKERD2_PROXY_IDENTITY_SVC_NAME", "value": f"linkerd-identity.linkerd.{IDENTITY_SUFFIX}"},
        {"name": "LINKERD2_PROXY_DESTINATION_SVC_NAME", "value": f"linkerd-destination.linkerd.{IDENTITY_SUFFIX}"},
        {"name": "LINKERD2_PROXY_POLICY_SVC_NAME", "value": f"linkerd-destination.linkerd.{IDENTITY_SUFFIX}"},
    ]
    if mode == "ingress":
        env.append({"name": "LINKERD2_PROXY_INGRESS_MODE", "value": "true"})
    container = {
        "name": l5d.PROXY_CONTAINER,
        "image": f"{l5d.PROXY_IMAGE}:{version}",
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "lifecycle": {"postStart": {"exec": {"command": ["/usr/lib/linkerd/linkerd-await", "--timeout=2m", f"--port={ADMIN_PORT}"]}}},
        "livenessProbe": {"httpGet": {"path": "/live", "port": ADMIN_PORT}, "initialDelaySeconds": 10, "timeoutSeconds": 1},
        "ports": [{"containerPort": INBOUND_PORT, "name": "linkerd-proxy"},
                  {"containerPort": ADMIN_PORT, "name": "linkerd-admin"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": ADMIN_PORT}, "initialDelaySeconds": 2, "timeoutSeconds": 1},
        "resources": {},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": PROXY_UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"mountPath": "/var/run/linkerd/identity/end-entity", "name": "linkerd-identity-end-entity"},
                         {"mountPath": "/var/run/secrets/tokens", "name": "linkerd-identity-token"}],
    }
    requests = {k: config[a] for k, a in (("cpu", "config.linkerd.io/proxy-cpu-request"),
                                          ("memory", "config.linkerd.io/proxy-memory-request")) if a in config}
    if requests:
        container["resources"] = {"requests": requests}
    return container


def init_container(config: dict[str, str]) -> dict:
    ignore_in = "4190,4191,4567,4568"
    if config.get("config.linkerd.io/skip-inbound-ports"):
        ignore_in += "," + config["config.linkerd.io/skip-inbound-ports"]
    ignore_out = "4567,4568"
    if config.get("config.linkerd.io/skip-outbound-ports"):
        ignore_out += "," + config["config.linkerd.io/skip-outbound-ports"]
    return {
        "name": l5d.INIT_CONTAINER,
        "image": l5d.PROXY_INIT_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--ipv6=false", "--incoming-proxy-port", str(INBOUND_PORT), "--outgoing-proxy-port", str(OUTBOUND_PORT),
                 "--proxy-uid", str(PROXY_UID), "--inbound-ports-to-ignore", ignore_in,
                 "--outbound-ports-to-ignore", ignore_out],
        "resources": {},
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}, "privileged": False,
                            "readOnlyRootFilesystem": True, "runAsGroup": 65534, "runAsNonRoot": True,
                            "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"mountPath": "/run", "name": "linkerd-proxy-init-xtables-lock"}],
    }


def debug_container(version: str) -> dict:
    return {"name": l5d.DEBUG_CONTAINER, "image": f"{l5d.DEBUG_IMAGE}:{version}", "imagePullPolicy": "IfNotPresent",
            "terminationMessagePolicy": "FallbackToLogsOnError"}


VOLUMES = [
    {"name": "linkerd-proxy-init-xtables-lock", "emptyDir": {}},
    {"name": "linkerd-identity-end-entity", "emptyDir": {"medium": "Memory"}},
    {"name": "linkerd-identity-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "identity.l5d.io", "expirationSeconds": 86400, "path": "linkerd-identity-token"}}]}},
]


def inject_pod_spec(metadata: dict, spec: dict, *, namespace: str, namespace_obj: dict | None, owner: tuple[str, str] | None,
                    seed: int, created_by: str, mode: str = "enabled") -> None:
    """Mesh a pod (or pod template) in place: containers, volumes, annotations, labels."""
    pod_like = {"metadata": metadata}
    config = _config(pod_like, namespace_obj)
    version = config.get(l5d.PROXY_VERSION_OVERRIDE, l5d.LINKERD_VERSION)
    spec["initContainers"] = [init_container(config)] + list(spec.get("initContainers") or [])
    containers = [proxy_container(spec, config, version, seed, mode)] + list(spec.get("containers") or [])
    if config.get(l5d.DEBUG_ANNOTATION) == "true":
        containers.append(debug_container(version))
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

    def __init__(self, seed: int, owner_of: Callable[[dict], tuple[str, str] | None]):
        self.seed = seed
        self.owner_of = owner_of

    def __call__(self, pod: dict, namespace_obj: dict | None) -> dict:
        mode = inject_mode(pod, namespace_obj)
        spec = pod.get("spec") or {}
        if mode is None or spec.get("hostNetwork") or l5d.proxy_container(pod) is not None:
            return pod
        pod = clone(pod)
        inject_pod_spec(pod["metadata"], pod["spec"], namespace=pod["metadata"].get("namespace", "default"),
                        namespace_obj=namespace_obj, owner=self.owner_of(pod), seed=self.seed,
                        created_by=f"linkerd/proxy-injector {l5d.LINKERD_VERSION}", mode=mode)
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
