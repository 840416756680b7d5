"""What Linkerd's control-plane components read from the objects they were installed as.

On a cluster every component is a process configured by its container's
arguments, which ``linkerd install`` renders from the chart values
(``charts/linkerd-control-plane/templates/*.yaml`` at ``version-2.20``). An
edited manifest therefore changes a component only once a pod with the new
arguments runs — which is what this module reads: the newest running pod of
the component, else its Deployment's template (a rollout in progress keeps the
old pod's behaviour until the new one is up), else the chart's defaults.

Settings the embedded mesh uses:

* the **policy controller** (``destination`` pod, container ``policy``,
  ``policy-controller/runtime/src/args.rs``): ``--default-policy`` (the
  default inbound policy of pods and namespaces without the annotation),
  ``--cluster-networks`` (what the ``cluster-*`` policies call "the cluster"),
  ``--probe-networks`` (who may reach the probe paths; absent: nobody, so no
  probe route at all), ``--identity-domain`` (the trust domain a
  ``ServiceAccount`` reference in an authentication names) and
  ``--default-opaque-ports`` (ports treated as opaque on pods without
  ``config.linkerd.io/opaque-ports``);
* the **identity** controller (``identity`` container):
  ``-identity-trust-domain`` (it certifies only names in that domain) and
  ``-identity-issuance-lifetime``;
* the **destination** controller: ``-identity-trust-domain``,
  ``-cluster-domain`` and ``-default-opaque-ports``;
* linkerd-viz's **metrics-api**: ``-prometheus-url``; **tap**:
  ``-identity-trust-domain``.

A value the real binary would refuse makes it exit; the embedded mesh does not
crash the container but takes the chart's value for that setting (one place,
:func:`_parsed`), so a typo shows as "no effect" rather than a half-applied
one. A flag left out takes the binary's own default, which may differ from the
chart's (no ``--probe-networks``: no probe route).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

NS = "linkerd"
VIZ_NS = "linkerd-viz"
COMPONENT_LABEL = "linkerd.io/control-plane-component"
#: ``--cluster-networks`` as the chart sets it (``clusterNetworks``).
CLUSTER_NETWORKS = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"
#: ``--probe-networks`` as the chart sets it (``policyController.probeNetworks``).
PROBE_NETWORKS = "0.0.0.0/0,::/0"
#: ``proxy.opaquePorts``: the destination and policy controllers' ``--default-opaque-ports``.
DEFAULT_OPAQUE_PORTS = "25,587,3306,4444,5432,6379,9300,11211"
DEFAULT_POLICIES = ("all-unauthenticated", "all-authenticated", "cluster-unauthenticated", "cluster-authenticated",
                    "deny", "audit")
#: The viz Prometheus the chart points metrics-api at.
PROMETHEUS_URL = "http://prometheus.linkerd-viz.svc.cluster.local:9090"


def networks(text: str) -> tuple:
    """A comma-separated CIDR list (``IpNets``): a bad entry makes the whole list invalid (ValueError)."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if part:
            out.append(ipaddress.ip_network(part, strict=False))
    return tuple(out)


def port_set(text: str) -> frozenset[int]:
    """``parse_portset``: ports and ``lo-hi`` ranges, comma-separated (ValueError on anything else)."""
    ports: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if sep:
            a, b = int(lo), int(hi)
            if not 0 < a <= b <= 65535:
                raise ValueError(f"invalid port range {part!r}")
            ports.update(range(a, b + 1))
        else:
            p = int(part)
            if not 0 < p <= 65535:
                raise ValueError(f"invalid port {part!r}")
            ports.add(p)
    return frozenset(ports)


def go_duration_s(text: str) -> float:
    from labkit.sim.apps.base import go_duration

    return go_duration(str(text))


@dataclass(frozen=True)
class PolicyController:
    default_policy: str = "all-unauthenticated"
    cluster_networks: tuple = field(default_factory=lambda: networks(CLUSTER_NETWORKS))
    probe_networks: tuple = field(default_factory=lambda: networks(PROBE_NETWORKS))
    identity_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    default_opaque_ports: frozenset = field(default_factory=lambda: port_set(DEFAULT_OPAQUE_PORTS))


@dataclass(frozen=True)
class Identity:
    trust_domain: str = "cluster.local"
    issuance_lifetime_s: float = 86400.0
    clock_skew_s: float = 20.0

    def suffix(self, namespace: str = NS) -> str:
        """The identity names this controller certifies end with ``.serviceaccount.identity.<ns>.<domain>``."""
        return f"serviceaccount.identity.{namespace}.{self.trust_domain}"


@dataclass(frozen=True)
class Destination:
    cluster_domain: str = "cluster.local"
    identity_trust_domain: str = "cluster.local"
    default_opaque_ports: frozenset = field(default_factory=lambda: port_set(DEFAULT_OPAQUE_PORTS))


@dataclass(frozen=True)
class MetricsApi:
    prometheus_url: str = PROMETHEUS_URL


@dataclass(frozen=True)
class Tap:
    identity_trust_domain: str = "cluster.local"


def parse_args(args) -> dict[str, str]:
    """Go ``flag`` / clap long options: ``-name=value``, ``--name=value`` or ``--name value`` → {name: value}.

    A bare ``--flag`` followed by another option is a boolean (``"true"``); positional words (``identity``,
    ``destination``) are skipped.
    """
    out: dict[str, str] = {}
    items = [str(a) for a in args or ()]
    i = 0
    while i < len(items):
        word = items[i]
        if word.startswith("-") and len(word) > 1:
            name, eq, value = word.lstrip("-").partition("=")
            if not eq:
                if i + 1 < len(items) and not items[i + 1].startswith("-"):
                    value = items[i + 1]
                    i += 1
                else:
                    value = "true"
            out[name] = value
        i += 1
    return out


def _parsed(args: dict, name: str, convert, absent, chart: str):
    """``args[name]`` converted; ``absent`` (the binary's own default) without the flag; the chart's value
    (``chart``, converted) when the value is one the real binary would refuse."""
    if name not in args:
        return absent
    try:
        return convert(args[name])
    except (TypeError, ValueError):
        return convert(chart)


def container_args(cluster, namespace: str, component: str, container: str,
                   label: str = COMPONENT_LABEL) -> dict[str, str] | None:
    """The arguments ``container`` of ``component`` runs with: the newest running pod's, else the Deployment
    template's, else None (not installed). Core components carry ``linkerd.io/control-plane-component``,
    viz's ``component``."""
    try:
        pods = cluster.list("Pod", namespace, {label: component})
    except Exception:  # noqa: BLE001 - no such namespace yet
        pods = []
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
               and not p["metadata"].get("deletionTimestamp")]
    running.sort(key=lambda p: ((p.get("status") or {}).get("startTime") or "", p["metadata"]["name"]))
    specs = [p.get("spec") or {} for p in reversed(running)]
    if not specs:
        try:
            deploys = cluster.list("Deployment", namespace, {label: component})
        except Exception:  # noqa: BLE001
            deploys = []
        specs = [((d.get("spec") or {}).get("template") or {}).get("spec") or {} for d in deploys]
    for spec in specs:
        for c in spec.get("containers") or []:
            if c.get("name") == container:
                return parse_args([*(c.get("command") or [])[1:], *(c.get("args") or [])])
    return None


def policy_controller(cluster) -> PolicyController:
    args = container_args(cluster, NS, "destination", "policy")
    if args is None:
        return PolicyController()
    d = PolicyController()
    policy = args.get("default-policy", d.default_policy)
    return PolicyController(
        default_policy=policy if policy in DEFAULT_POLICIES else d.default_policy,
        cluster_networks=_parsed(args, "cluster-networks", networks,
                                 networks("10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16"), CLUSTER_NETWORKS),
        # clap leaves --probe-networks unset when absent: no probe route is generated at all
        probe_networks=_parsed(args, "probe-networks", networks, (), PROBE_NETWORKS),
        identity_domain=args.get("identity-domain") or d.identity_domain,
        cluster_domain=args.get("cluster-domain") or d.cluster_domain,
        default_opaque_ports=_parsed(args, "default-opaque-ports", port_set, frozenset(), DEFAULT_OPAQUE_PORTS),
    )


def identity(cluster) -> Identity:
    args = container_args(cluster, NS, "identity", "identity")
    if args is None:
        return Identity()
    d = Identity()
    return Identity(
        trust_domain=args.get("identity-trust-domain") or d.trust_domain,
        issuance_lifetime_s=_parsed(args, "identity-issuance-lifetime", go_duration_s, d.issuance_lifetime_s, "24h0m0s"),
        clock_skew_s=_parsed(args, "identity-clock-skew-allowance", go_duration_s, d.clock_skew_s, "20s"),
    )


def destination(cluster) -> Destination:
    args = container_args(cluster, NS, "destination", "destination")
    if args is None:
        return Destination()
    d = Destination()
    return Destination(
        cluster_domain=args.get("cluster-domain") or d.cluster_domain,
        identity_trust_domain=args.get("identity-trust-domain") or d.identity_trust_domain,
        default_opaque_ports=_parsed(args, "default-opaque-ports", port_set, frozenset(), DEFAULT_OPAQUE_PORTS),
    )


def metrics_api(cluster) -> MetricsApi:
    args = container_args(cluster, VIZ_NS, "metrics-api", "metrics-api", "component")
    return MetricsApi(prometheus_url=(args or {}).get("prometheus-url") or "")


def tap(cluster) -> Tap:
    args = container_args(cluster, VIZ_NS, "tap", "tap", "component")
    return Tap(identity_trust_domain=(args or {}).get("identity-trust-domain") or Tap().identity_trust_domain)
