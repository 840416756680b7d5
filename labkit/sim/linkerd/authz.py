"""Inbound authorization policy, as Linkerd 2.20's policy controller computes it and the proxy enforces it.

For a meshed pod's port the policy controller sends its proxy (reference
linkerd-2.20.md §7, linkerd2 ``policy-controller/k8s/index/src/inbound``):

* the **Server** (``policy.linkerd.io``) in the pod's namespace whose
  ``podSelector`` picks the pod and whose ``port`` (number or container port
  name) is the port — or, when none does, the pod's **default policy**:
  ``config.linkerd.io/default-inbound-policy`` on the pod, else on its
  namespace, else the cluster's ``all-unauthenticated``; one of
  ``all-unauthenticated``, ``all-authenticated``, ``cluster-unauthenticated``,
  ``cluster-authenticated``, ``deny``, ``audit``. It is read when the pod
  starts (the injector puts it in the proxy's environment);
* for a Server, its **authorizations**: every ``AuthorizationPolicy`` whose
  ``targetRef`` is the Server, one of its ``HTTPRoute``\\ s (``parentRefs`` a
  Server) or the namespace, and whose ``requiredAuthenticationRefs`` are all
  met: a ``MeshTLSAuthentication`` (``identities`` — exact, ``*`` or
  ``*.suffix`` — or ``identityRefs`` to ServiceAccounts / Namespaces), a
  ``NetworkAuthentication`` (``networks`` CIDRs with ``except``), or a
  ServiceAccount. Nothing authorizes: the Server's ``accessPolicy`` (``deny``
  unless set) decides;
* a Server with HTTPRoutes only serves requests matching one (else 404).

The proxy answers a denied HTTP request with 403, a denied gRPC call with
``grpc-status: 7`` (PermissionDenied), and refuses a connection to a port it
does not treat as HTTP (an opaque port, or a Server with ``proxyProtocol``
``opaque``/``TCP``); it counts ``inbound_{http,tcp}_authz_{allow,deny}_total``.

**Probes** (``index.rs`` ``default_inbound_http_routes``): a port without
HTTPRoutes (the default server, or a Server no route attaches to) gets, next
to the ``default`` route, a ``probe`` route — ``GET`` on exactly the paths of
the pod's HTTP liveness/readiness/startup probes on that port — authorized by
the ``default``/``probe`` authorization for clients in the policy
controller's ``--probe-networks`` (every address, as installed), whatever the
port's policy: the kubelet's probes pass a ``deny`` default. A Server with
routes gets no probe route. The cluster's default policy, its networks, the
probe networks and the identity domain are the running policy controller's
arguments (``controlplane.py``).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from labkit.sim.kube.objects import selector_matches
from labkit.sim.linkerd import controlplane

GROUP = "policy.linkerd.io"
DEFAULT_POLICY = "all-unauthenticated"
DEFAULT_POLICIES = ("all-unauthenticated", "all-authenticated", "cluster-unauthenticated", "cluster-authenticated",
                    "deny", "audit")
POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
OPAQUE_ANNOTATION = "config.linkerd.io/opaque-ports"
#: Linkerd's default ``clusterNetworks``.
CLUSTER_NETWORKS = controlplane.networks(controlplane.CLUSTER_NETWORKS)
DEFAULT_ROUTE = (("route_group", ""), ("route_kind", "default"), ("route_name", "default"))
PROBE_ROUTE = (("route_group", ""), ("route_kind", "default"), ("route_name", "probe"))
PROBE_AUTHZ = (("authz_group", ""), ("authz_kind", "default"), ("authz_name", "probe"))
DENIED_MESSAGE = "unauthorized request on route"
#: Ports the proxy never sees inbound (linkerd-init's ``--inbound-ports-to-ignore`` default: its own ports).
PROXY_PORTS = frozenset({4190, 4191, 4567, 4568})


@dataclass(frozen=True)
class Client:
    """What the server's proxy knows of a client: its mTLS identity (None: not meshed) and address."""

    identity: str | None
    ip: str


@dataclass
class Decision:
    """The inbound policy for one (server pod, port, client): labels, verdict, and per-route verdicts."""

    srv: tuple                 # srv_group, srv_kind, srv_name
    route: tuple               # route_group, route_kind, route_name
    authz: tuple | None        # authz_group, authz_kind, authz_name; None: denied
    tcp: bool = False          # the port is not HTTP to the proxy: a denial refuses the connection
    routes: list | None = None  # Server with routes: [(match fn, route labels, authz labels or None)]
    probes: frozenset = frozenset()  # the probe route's paths (GET, exact); empty: no probe route
    probe_authz: tuple | None = None  # the probe authorization, if the client is in the probe networks

    def probe(self, method: str, path: str) -> bool:
        """Does the request take the ``probe`` route (``GET`` on exactly one of the probe paths)?"""
        return method == "GET" and path in self.probes

    @property
    def allowed(self) -> bool:
        return self.authz is not None


def default_policy_for(pod: dict, namespace_annotations: dict | None) -> str | None:
    """The pod's own default inbound policy: its annotation, else its namespace's; None: the cluster's
    (the policy controller's ``--default-policy``, which :class:`InboundIndex` reads)."""
    for ann in ((pod.get("metadata") or {}).get("annotations") or {}, namespace_annotations or {}):
        value = ann.get(POLICY_ANNOTATION)
        if value in DEFAULT_POLICIES:
            return value
    return None


def in_networks(ip: str, networks=CLUSTER_NETWORKS) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == net.version and addr in net for net in networks)


def in_cluster(ip: str, networks=CLUSTER_NETWORKS) -> bool:
    return in_networks(ip, networks)


def default_allows(policy: str, client: Client, networks=CLUSTER_NETWORKS) -> bool:
    """Whether a default policy (``accessPolicy`` too) lets ``client`` in; ``networks``: the cluster's."""
    if policy in ("all-unauthenticated", "audit"):
        return True
    if policy == "all-authenticated":
        return client.identity is not None
    if policy == "cluster-unauthenticated":
        return in_cluster(client.ip, networks)
    if policy == "cluster-authenticated":
        return client.identity is not None and in_cluster(client.ip, networks)
    return False


def _int_port(port, container: dict) -> int | None:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if str(p.get("name", "")).lower() == str(port).lower() and (p.get("protocol") or "TCP") == "TCP":
            return int(p.get("containerPort", 0)) or None
    return None


def probe_paths(pod: dict) -> dict[int, frozenset]:
    """``pod_http_probes``: port → the paths of the HTTP liveness, readiness and startup probes of every
    container (init containers too), a named port resolved in its container, the path without its query."""
    spec = pod.get("spec") or {}
    out: dict[int, set] = {}
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for key in ("livenessProbe", "readinessProbe", "startupProbe"):
            get = (c.get(key) or {}).get("httpGet")
            if not get:
                continue
            port = _int_port(get.get("port"), c)
            if port:
                out.setdefault(port, set()).add(str(get.get("path") or "/").split("?", 1)[0] or "/")
    return {p: frozenset(v) for p, v in out.items()}


def ignored_inbound_ports(pod: dict) -> frozenset:
    """The ports linkerd-init sends past the proxy (``--inbound-ports-to-ignore``: the proxy's own, and
    ``config.linkerd.io/skip-inbound-ports``): requests to them never meet inbound policy."""
    spec = pod.get("spec") or {}
    for c in spec.get("initContainers") or []:
        args = [str(a) for a in c.get("args") or []]
        if c.get("name") == "linkerd-init" and "--inbound-ports-to-ignore" in args:
            i = args.index("--inbound-ports-to-ignore")
            text = args[i + 1] if i + 1 < len(args) else ""
            try:
                return controlplane.port_set(text) | PROXY_PORTS
            except ValueError:
                break
    skip = str(((pod.get("metadata") or {}).get("annotations") or {}).get("config.linkerd.io/skip-inbound-ports", ""))
    try:
        return controlplane.port_set(skip) | PROXY_PORTS
    except ValueError:
        return PROXY_PORTS


def _default_labels(policy: str) -> tuple:
    return (("srv_group", ""), ("srv_kind", "default"), ("srv_name", policy))


def _selects(selector: dict | None, labels: dict) -> bool:
    """A ``metav1.LabelSelector`` (matchLabels and matchExpressions); an empty selector selects every pod."""
    return selector_matches(selector or {}, labels)


def _port_matches(server_port, port: int, pod: dict) -> bool:
    if isinstance(server_port, int) or (isinstance(server_port, str) and server_port.isdigit()):
        return int(server_port) == port
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == server_port and int(p.get("containerPort", -1)) == port:
                return True
    return False


def _identity_matches(pattern: str, identity: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return identity.endswith(pattern[1:])
    return pattern == identity


class InboundIndex:
    """Servers, authorization policies and authentications of the cluster, read once per revision."""

    def __init__(self, cluster):
        from labkit.sim.linkerd.policy import _list

        self.revision = cluster.revision
        #: the running policy controller's arguments (default policy, networks, identity domain)
        self.settings = controlplane.policy_controller(cluster)
        self.identity_suffix = f"serviceaccount.identity.{controlplane.NS}.{self.settings.identity_domain}"
        self.servers: dict[str, list[dict]] = {}
        for srv in _list(cluster, f"servers.{GROUP}"):
            self.servers.setdefault(srv["metadata"].get("namespace", "default"), []).append(srv)
        for items in self.servers.values():
            items.sort(key=lambda s: ((s["metadata"].get("creationTimestamp") or ""), s["metadata"]["name"]))
        self.policies: dict[str, list[dict]] = {}
        for ap in _list(cluster, f"authorizationpolicies.{GROUP}"):
            self.policies.setdefault(ap["metadata"].get("namespace", "default"), []).append(ap)
        self.meshtls = {(a["metadata"].get("namespace", "default"), a["metadata"]["name"]): a
                        for a in _list(cluster, f"meshtlsauthentications.{GROUP}")}
        self.networks = {(a["metadata"].get("namespace", "default"), a["metadata"]["name"]): a
                         for a in _list(cluster, f"networkauthentications.{GROUP}")}
        self.routes: dict[tuple[str, str], list[dict]] = {}
        for plural in (f"httproutes.{GROUP}", "httproutes.gateway.networking.k8s.io"):
            for hr in _list(cluster, plural):
                ns = hr["metadata"].get("namespace", "default")
                for ref in (hr.get("spec") or {}).get("parentRefs") or []:
                    if ref.get("kind") == "Server" and (ref.get("group") or GROUP) == GROUP:
                        self.routes.setdefault((ref.get("namespace") or ns, ref.get("name", "")), []).append(hr)
        self._cache: dict = {}

    def server_for(self, pod: dict, port: int) -> dict | None:
        md = pod.get("metadata") or {}
        labels = md.get("labels") or {}
        for srv in self.servers.get(md.get("namespace", "default"), ()):
            spec = srv.get("spec") or {}
            if "podSelector" in spec and _selects(spec.get("podSelector"), labels) \
                    and _port_matches(spec.get("port"), port, pod):
                return srv
        return None

    def decide(self, pod: dict, port: int, default_policy: str | None, client: Client) -> Decision:
        """The policy for ``client`` on ``pod:port``; ``default_policy`` None: the controller's ``--default-policy``."""
        key = (pod["metadata"].get("uid"), port, default_policy, client)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._decide(pod, port, default_policy or self.settings.default_policy, client)
        return found

    def _probe_route(self, pod: dict, port: int, client: Client) -> dict:
        """The probe route's fields of a decision for a port without HTTPRoutes (none without probe networks)."""
        networks = self.settings.probe_networks
        paths = probe_paths(pod).get(port, frozenset()) if networks else frozenset()
        if not paths:
            return {}
        return {"probes": paths, "probe_authz": PROBE_AUTHZ if in_networks(client.ip, networks) else None}

    def _decide(self, pod: dict, port: int, default_policy: str, client: Client) -> Decision:
        opaque = str(port) in {p.strip() for p in str(((pod.get("metadata") or {}).get("annotations") or {})
                                                       .get(OPAQUE_ANNOTATION, "")).split(",")}
        nets = self.settings.cluster_networks
        srv = self.server_for(pod, port)
        if srv is None:
            authz = (("authz_group", ""), ("authz_kind", "default"), ("authz_name", default_policy))
            return Decision(_default_labels(default_policy), DEFAULT_ROUTE,
                            authz if default_allows(default_policy, client, nets) else None, opaque,
                            **({} if opaque else self._probe_route(pod, port, client)))
        ns, name = srv["metadata"].get("namespace", "default"), srv["metadata"]["name"]
        spec = srv.get("spec") or {}
        srv_labels = (("srv_group", GROUP), ("srv_kind", "server"), ("srv_name", name))
        tcp = opaque or spec.get("proxyProtocol") in ("opaque", "TCP")
        access = spec.get("accessPolicy") if spec.get("accessPolicy") in DEFAULT_POLICIES else "deny"
        server_authz = self._authorize(ns, client, ("Server", name))
        if server_authz is None and default_allows(access, client, nets) and access != "deny":
            server_authz = (("authz_group", ""), ("authz_kind", "default"), ("authz_name", access))
        routes = self.routes.get((ns, name))
        if not routes or tcp:
            return Decision(srv_labels, DEFAULT_ROUTE, server_authz, tcp,
                            **({} if tcp else self._probe_route(pod, port, client)))
        from labkit.sim.linkerd.policy import _compile_http_match

        compiled = []
        for hr in sorted(routes, key=lambda r: ((r["metadata"].get("creationTimestamp") or ""), r["metadata"]["name"])):
            rname = hr["metadata"]["name"]
            group = str(hr.get("apiVersion", "")).rpartition("/")[0]
            labels = (("route_group", group), ("route_kind", "HTTPRoute"), ("route_name", rname))
            authz = self._authorize(ns, client, ("HTTPRoute", rname)) or server_authz
            for rule in (hr.get("spec") or {}).get("rules") or [{}]:
                for m in (rule or {}).get("matches") or [{}]:
                    c = _compile_http_match(m)
                    if c is not None:
                        compiled.append((c[1], c[0], labels, authz))
        compiled.sort(key=lambda r: r[0], reverse=True)
        return Decision(srv_labels, DEFAULT_ROUTE, server_authz, tcp, [(f, labels, a) for _, f, labels, a in compiled])

    def _authorize(self, ns: str, client: Client, target: tuple[str, str]) -> tuple | None:
        """The first AuthorizationPolicy (by name) targeting ``target`` (or the namespace) that lets ``client`` in."""
        for ap in sorted(self.policies.get(ns, ()), key=lambda a: a["metadata"]["name"]):
            spec = ap.get("spec") or {}
            ref = spec.get("targetRef") or {}
            kind, name = ref.get("kind"), ref.get("name")
            if not ((kind == target[0] and name == target[1] and (ref.get("group") or GROUP) in (GROUP, "gateway.networking.k8s.io"))
                    or (kind == "Namespace" and name == ns and target[0] == "Server")):
                continue
            if self._authenticated(ns, spec.get("requiredAuthenticationRefs") or [], client):
                return (("authz_group", GROUP), ("authz_kind", "authorizationpolicy"),
                        ("authz_name", ap["metadata"]["name"]))
        return None

    def _authenticated(self, ns: str, refs: list, client: Client) -> bool:
        for ref in refs:
            kind, rns = ref.get("kind"), ref.get("namespace") or ns
            if kind == "MeshTLSAuthentication":
                obj = self.meshtls.get((rns, ref.get("name", "")))
                if obj is None or client.identity is None or not self._meshtls(obj, rns, client.identity):
                    return False
            elif kind == "NetworkAuthentication":
                obj = self.networks.get((rns, ref.get("name", "")))
                if obj is None or not _in_networks(obj, client.ip):
                    return False
            elif kind == "ServiceAccount":
                if client.identity != f"{ref.get('name', '')}.{rns}.{self.identity_suffix}":
                    return False
            else:
                return False  # an authentication kind the controller does not know
        return True

    def _meshtls(self, obj: dict, ns: str, identity: str) -> bool:
        suffix = self.identity_suffix
        spec = obj.get("spec") or {}
        for pattern in spec.get("identities") or []:
            if _identity_matches(str(pattern), identity):
                return True
        for ref in spec.get("identityRefs") or []:
            kind, name = ref.get("kind"), ref.get("name", "")
            if kind == "ServiceAccount":
                if name == "*" and identity.endswith(f".{ref.get('namespace') or ns}.{suffix}"):
                    return True
                if identity == f"{name}.{ref.get('namespace') or ns}.{suffix}":
                    return True
            elif kind == "Namespace":
                if name == "*" or identity.endswith(f".{name}.{suffix}"):
                    return True
        return False


def _in_networks(obj: dict, ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for net in (obj.get("spec") or {}).get("networks") or []:
        try:
            if addr in ipaddress.ip_network(str(net.get("cidr")), strict=False) and not any(
                    addr in ipaddress.ip_network(str(x), strict=False) for x in net.get("except") or []):
                return True
        except ValueError:
            continue
    return False
