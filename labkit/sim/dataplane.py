"""The embedded mesh's data plane: requests flowing through modelled pods and proxies.

Each request a modelled app makes goes the way it goes on a cluster:

    client app → outbound proxy (service discovery, load balancing)
               → inbound proxy of the chosen pod → server app → back

and each proxy on the way counts it exactly as ``linkerd-proxy`` does
(``sim/linkerd/proxy.py``). Calls are synchronous on the virtual clock: a
handler that calls downstream gets the downstream's response (and latency)
back at once, so latencies add up along a call chain the way they do in the
real apps. Unmeshed pods have no proxy and are counted by nobody.

The data plane reads the cluster like Linkerd's destination controller reads
the API server: pods, their readiness, services and their selectors. It
rebuilds its view whenever ``cluster.revision`` moves.
"""
from __future__ import annotations

import random
import shlex
from typing import Callable

from labkit.errors import NotFoundError
from labkit.k8s import deployment_of, pick_pods
from labkit.sim.apps.model import Request, Response, authority_of, request_to
from labkit.sim import linkerd as l5d
from labkit.sim.linkerd import authz, balancer, policy
from labkit.sim.linkerd import proxy as lp
from labkit.sim.linkerd.policy import INBOUND_IDLE_S, OUTBOUND_IDLE_S
from labkit.sim.linkerd import route_metrics as rmx

#: Time a request spends in one proxy, and on the wire between pods (ms). Linkerd's
#: own overhead is well under a millisecond at these rates.
PROXY_OVERHEAD_MS = 0.2
NETWORK_MS = 0.15
#: Request and response header bytes on the wire (HTTP/2, after HPACK), for tcp byte counters.
REQUEST_HEADER_BYTES = 120
RESPONSE_HEADER_BYTES = 80
PROXY_CONTAINERS = ("linkerd-proxy", "linkerd-init")
#: The kubelet's probe User-Agent (``kube-probe/<major>.<minor>`` of the embedded cluster, 1.32).
PROBE_USER_AGENT = "kube-probe/1.32"
SYNC_PERIOD = 1.0
#: What the proxies add to a server's latency, in the order the request path adds them: the inbound proxy's
#: figure is ``latency_ms + PROXY_OVERHEAD_MS``; a meshed client's adds the wire and its own proxy.
_INBOUND_OVERHEADS = (PROXY_OVERHEAD_MS,)
_OUTBOUND_OVERHEADS = (PROXY_OVERHEAD_MS, NETWORK_MS, PROXY_OVERHEAD_MS)
#: Pending values (see Hop.pending) counted at the next sync tick once there are more than this many.
MAX_PENDING = 50_000
#: Distinct (target, path, body size) a pod keeps a Request object for: a client's routes (vote-bot's 99 vote
#: paths, a gRPC method's few message sizes); not every id a path may carry.
MAX_CACHED_REQUESTS = 256


def _ready(pod: dict) -> bool:
    for cond in pod.get("status", {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def _meshed(pod: dict) -> bool:
    spec = pod.get("spec", {})
    return any(c.get("name") == "linkerd-proxy" for c in [*spec.get("containers", ()), *spec.get("initContainers", ())])


class PodRuntime:
    """A running pod: its app models, its proxy (when meshed) and its view of the clock."""

    def __init__(self, plane: "DataPlane", pod: dict):
        meta, spec = pod["metadata"], pod.get("spec", {})
        self.plane = plane
        self.uid = meta["uid"]
        self.name = meta["name"]
        self.namespace = meta.get("namespace", "default")
        self.ip = pod["status"].get("podIP", "0.0.0.0")
        self.labels = meta.get("labels") or {}
        self.annotations = meta.get("annotations") or {}
        self.serviceaccount = spec.get("serviceAccountName") or "default"
        self.deployment = deployment_of(pod)
        self.pod = pod
        self.alive = True
        self.ready = _ready(pod)
        self.rng = random.Random(f"{plane.seed}:pod:{self.name}")
        self.log_lines: list[str] = []
        self.next_port = 40000 + self.rng.randrange(20000)  # ephemeral client ports
        self.proxy = None
        self.default_policy = None  # the pod's (or namespace's) default inbound policy annotation; None: the cluster's
        self.lanes: dict[str, Lane] = {}  # target → what this pod's calls to it resolved to (PodContext.send)
        if _meshed(pod):
            self.proxy = lp.Proxy(
                self.ip, self.namespace, self.serviceaccount,
                version=self.annotations.get("linkerd.io/proxy-version", ""),
                tap_enabled=self.annotations.get("viz.linkerd.io/tap-enabled") == "true",
            )
            self.proxy.identity = l5d.local_identity(pod)  # its name in the install's trust domain
            self.proxy.settle = plane.settle
            ns_obj = plane._lookup("Namespace", "", self.namespace) or {}
            self.default_policy = authz.default_policy_for(pod, (ns_obj.get("metadata") or {}).get("annotations"))
        self.models: dict[str, object] = {}
        self.by_port: dict[int, object] = {}
        self.ctx = PodContext(self)
        self.capture = None
        if self.proxy is not None and any(c.get("name") == "linkerd-debug" for c in spec.get("containers", ())):
            from labkit.sim.linkerd.debug import DebugCapture

            self.capture = DebugCapture(self, plane.clock)  # tshark starts with the pod
            self.proxy.taps.append(self.capture)

    def build_models(self, build: Callable, lookup: Callable) -> None:
        for container in self.pod.get("spec", {}).get("containers", ()):
            if container.get("name") in ("linkerd-proxy", "linkerd-init"):
                continue  # the proxy is modelled by sim/linkerd/proxy.py, not as an app
            model = build(container, self.pod, lookup)
            self.models[container["name"]] = model
            if container.get("name") == "linkerd-debug" and self.capture is not None:
                model.capture = self.capture.tshark
                continue
            for port in getattr(model, "ports", {}) or {}:
                self.by_port[int(port)] = model
            for port in container.get("ports") or ():
                self.by_port.setdefault(int(port["containerPort"]), model)

    def client_port(self) -> int:
        self.next_port = 32768 + (self.next_port - 32768 + 1) % 28000
        return self.next_port


class PodContext:
    """What a modelled app sees of the world: its random stream, the time, and the network.

    ``call(target, method, path, grpc=False, headers=None, body_bytes=0, body=None)`` sends a request from
    this pod; ``send(target, request)`` sends a :class:`Request` the app built once with
    :func:`request_to` (a client with a fixed set of calls skips building or finding one per call).
    ``send`` is the data plane's common request path itself (see :meth:`send`), so an app's request costs
    one call.
    """

    __slots__ = ("pod", "rng", "_plane", "_clock", "_lanes", "_requests")

    def __init__(self, pod: PodRuntime):
        self.pod = pod
        self.rng = pod.rng
        self._plane = pod.plane
        self._clock = pod.plane.clock
        self._lanes = pod.lanes  # shared by every context of the pod (its exec sessions, the kubelet's probes)
        # (target, path, body size) → the last Request called with them: nobody changes a Request, so the same
        # request again is that one
        self._requests: dict[tuple[str, str, int], Request] = {}

    @property
    def now(self) -> float:
        return self._plane.clock.t

    def call(self, target: str, method: str, path: str, grpc: bool = False, headers: dict | None = None,
             body_bytes: int = 0, body=None) -> Response:
        """One request from this pod to ``target`` (``"books:7002"``, ``"http://web-svc.emojivoto:80"``)."""
        key = (target, path, body_bytes)
        request = self._requests.get(key)
        if (request is None or request.method != method or request.grpc != grpc or request.headers is not headers
                or request.body is not body):
            request = request_to(target, method, path, grpc, headers, body_bytes, body)
            if len(self._requests) < MAX_CACHED_REQUESTS:
                self._requests[key] = request
        return self.send(target, request)

    def send(self, target: str, request: Request) -> Response:
        """``request`` from this pod to ``target``, through both proxies; the response as the client sees it.
        ``request.authority`` must be ``authority_of(target)`` (:func:`request_to` builds it so).

        The common case — nothing changed in the cluster since the pod's last
        request to ``target``, no traffic policy, no authorization decided per
        request (but whether a GET takes the probe route), nobody tapping — takes
        the pod's :class:`Lane` and leaves the counting to later
        (``Hop.pending``): the same draws, the same numbers, counted when someone
        reads them. Everything else takes :meth:`DataPlane._call`. This is the
        data plane's code, run as the pod's method: the hottest path in the mesh
        pays no call to get here.
        """
        plane = self._plane
        lane = self._lanes.get(target)
        if lane is None or lane.revision != plane._api.revision:
            return plane._call(self.pod, target, request)
        now = plane.clock.t
        disc = lane.disc
        if disc is not None:
            if now - disc.last > OUTBOUND_IDLE_S:
                return plane._call(self.pod, target, request)
            disc.last = now
        hop = lane.hop
        if hop is not None:
            server = hop.server
        else:
            endpoints = lane.endpoints
            server = endpoints[self.pod.rng.randrange(len(endpoints))] if len(endpoints) > 1 else endpoints[0]
            hop = lane.hops.get(server.uid)
            if hop is None or (hop.probes and request.method == "GET"
                               and request.path.partition("?")[0] in hop.probes):
                # a GET on a probe path takes the probe route: the server proxy decides it the long way
                return plane._to_endpoint(self.pod, server, lane.svc, lane.port, request, lane.rm, lane)
        response = hop.model.handle(request, server.ctx)  # counted in inbound_requests once pending on the hop
        if plane._epoch != lane.epoch:
            # the handler's own calls saw the cluster change, a tap start or a server-side profile appear
            plane._counted_inbound += 1
            served = plane._served(hop, hop.inbound, server, lane.svc, lane.port, request, response)
            return plane._answered(hop, self.pod, server, request, response, served, lane.rm)
        ib = hop.ib
        if ib is not None:
            if now - ib.last > INBOUND_IDLE_S:  # the server proxy looks the Service up again
                plane._counted_inbound += 1
                served = plane._served(hop, hop.inbound, server, lane.svc, lane.port, request, response)
                return plane._answered(hop, self.pod, server, request, response, served, lane.rm)
            ib.last = now
        entry = (response.status, response.grpc_status, response.error, response.latency_ms, response.length)
        pending = hop.pending
        if not pending:
            plane._pending.append(hop)
        rm = lane.rm
        if rm is not None and rm.source is not pending and rm.follow(pending):
            plane._pending.append(rm)  # the default route's requests are the hop's (RouteMetrics.follow)
        pending += entry  # the values, not the response: see proxy.pending_entry
        hop.pending_body += request.body_bytes
        if hop.outbound is not None:
            outbound_ms = entry[3] + PROXY_OVERHEAD_MS + NETWORK_MS + PROXY_OVERHEAD_MS
        else:
            outbound_ms = entry[3] + PROXY_OVERHEAD_MS + NETWORK_MS
        # The client sees the server's answer later by the proxies' time: the same object, its latency updated
        # (a handler hands its Response over for good, see apps/model.py), and no streamed-headers time, as on the
        # long path.
        response.latency_ms = outbound_ms
        if response.headers_ms is not None:
            response.headers_ms = None
        return response

    def schedule(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` in ``delay_s`` virtual seconds (now, if negative), unless the pod has gone by then."""
        self._clock.after(delay_s, fn, self.pod)

    def log(self, line: str) -> None:
        self.pod.log_lines.append(f"{line}")


class ExecContext(PodContext):
    """The context of a command a learner runs with ``kubectl exec``: it may block on the clock.

    ``hey -z 1m`` or ``sleep 5`` in a real exec session take that long; here
    they advance the virtual clock (and everything scheduled on it) by as much.
    Only top-level execs get this: a command run by a modelled app (a Flagger
    webhook's curl, say) runs inside a clock event and must not re-enter it.
    """

    __slots__ = ()

    def run_for(self, seconds: float) -> None:
        self._plane.clock.run_until(self._plane.clock.t + max(0.0, seconds))


_UNRESOLVED = object()


class Hop:
    """A client pod → server endpoint pair: the app that answers, and the counters both proxies keep."""

    __slots__ = ("model", "server", "target_port", "inbound", "outbound", "tcp", "server_taps", "client_taps", "ib",
                 "client", "decision", "authz_rev", "enforce", "probes", "pending", "pending_body")

    def __init__(self, model, server: PodRuntime, target_port: int):
        self.model = model
        self.server = server
        self.target_port = target_port
        self.inbound = None   # the server proxy's HttpStats for this client identity
        self.outbound = None  # the client proxy's HttpStats for this endpoint
        self.tcp: list = []   # (TcpStats, reads the request?) for each side of the connection
        # The tap sessions watching either side (the proxies' own lists, so a session that starts shows at once;
        # empty for an unmeshed side): a request anyone watches takes the long way.
        self.server_taps = self.client_taps = ()
        self.ib = None        # the server proxy's discovery of this Service (its inbound ServiceProfile), if meshed
        self.client = None    # the client pod (the server proxy authorizes it)
        self.decision = None  # the server proxy's inbound policy for this client and port (authz.Decision), if meshed
        self.authz_rev = None  # the cluster revision the decision was made at
        self.enforce = False   # the decision refuses this client, or its Server's routes decide per request
        self.probes = None     # the probe route's paths, when they are all the decision looks at per request
        self.pending: list = []  # responses not counted yet, flat (proxy.pending_entry; PodContext.send's common path)
        self.pending_body = 0    # and their request body bytes

    def settle(self, batch=None, latencies: list | None = None) -> int:
        """Count the pending requests, as ``DataPlane._served`` and ``_answered`` count one: in the server
        proxy's inbound stats, the client proxy's outbound stats, and the connection's byte counters.
        ``latencies``: see ``HttpStats.record_batch`` (the caller counts them, with other hops').
        Returns how many requests it counted."""
        if not self.pending:
            return 0
        if batch is None:
            batch = lp.Batch(self.pending)
        self.pending = []
        body, self.pending_body = self.pending_body, 0
        own = latencies is None
        if own:
            latencies = []  # both proxies' histograms in one pass
        if self.inbound is not None:
            self.inbound.record_batch(batch, _INBOUND_OVERHEADS, latencies)
        if self.outbound is not None:
            self.outbound.record_batch(batch, _OUTBOUND_OVERHEADS, latencies)
        if own:
            lp.record_latencies(latencies)
        if self.tcp:
            n = batch.n
            req_bytes = n * REQUEST_HEADER_BYTES + body
            rsp_bytes = n * RESPONSE_HEADER_BYTES + batch.length
            for stats, reads_request in self.tcp:
                if reads_request:
                    stats.add_bytes(req_bytes, rsp_bytes)
                else:
                    stats.add_bytes(rsp_bytes, req_bytes)
        return batch.n


class Lane:
    """What one client pod's requests to one target string resolve to while the cluster stays as it is: the
    Service and port, the client proxy's discovery of it (None: unmeshed client) and default-route metrics, the
    endpoints, and the hops to them that need nothing per request but counting (see :meth:`PodContext.send`)."""

    __slots__ = ("revision", "epoch", "svc", "port", "disc", "rm", "endpoints", "hops", "hop")

    def __init__(self, revision, epoch: int, svc: "Service", port: int, disc, rm):
        self.revision = revision
        self.epoch = epoch  # DataPlane._epoch when built: the lane holds while it stays
        self.svc, self.port = svc, port
        self.disc, self.rm = disc, rm
        self.endpoints = svc.endpoints
        self.hops: dict[str, Hop] = {}  # server uid → hop
        # The hop, when there is one endpoint and no request needs a look at its path (probes): no pick, no lookup
        self.hop: Hop | None = None


class _Prober:
    """The kubelet as a client of a pod's inbound proxy: no proxy of its own (no identity), the node's address."""

    __slots__ = ("proxy", "ip")

    def __init__(self, ip: str):
        self.proxy = None
        self.ip = ip


class Service:
    """A Service as the destination controller sees it: ports and ready endpoints."""

    __slots__ = ("name", "namespace", "ports", "endpoints", "fqdn", "empty_since")

    def __init__(self, name: str, namespace: str, ports: dict[int, int | str], endpoints: list[PodRuntime]):
        self.name, self.namespace = name, namespace
        self.ports = ports  # service port → targetPort (number or container port name)
        self.endpoints = endpoints
        self.fqdn = f"{name}.{namespace}.svc.cluster.local"
        self.empty_since: float | None = None  # since when it has no ready endpoint (the proxies' fail-fast)


class DataPlane:
    def __init__(self, cluster, clock, seed: int = 0):
        self.cluster, self.clock, self.seed = cluster, clock, seed
        self.rng = random.Random(f"{seed}:dataplane")
        self.pods: dict[str, PodRuntime] = {}  # by uid
        self.services: dict[tuple[str, str], Service] = {}
        self._revision = None
        # Bumped when a lane may no longer hold although the cluster's revision stays (see drop_lanes), and at each
        # revision: a request on a lane that sees it move takes the long way.
        self._epoch = 0
        self._resolved: dict[tuple[str, str], tuple[Service, int, str] | None] = {}
        self._hops: dict[tuple, Hop] = {}  # (client uid, server uid, service, port[, concrete service]) → Hop
        # Traffic policy (sim/linkerd/policy.py): each proxy's discovery of a destination, and the
        # compiled profiles/routes they read, rebuilt when the cluster's revision moves.
        self._outbound: dict[tuple, policy.Discovered] = {}  # (client uid, service fqdn, port)
        self._inbound: dict[tuple, policy.Discovered] = {}   # (server uid, service fqdn, port)
        self._index: policy.Index | None = None
        policy.attach(cluster)
        cluster.kubelet.http_probe = self.probe  # the kubelet's HTTP probes go through the pods' proxies
        self._gates = balancer.Gates()  # the client proxies' backend queues (fail-fast, load shedding)
        self._probe_ctx: dict[str, PodContext] = {}
        self._probe_hops: dict[tuple, Hop] = {}  # (pod uid, port, node IP) → the probes' hop and policy decision
        self._probe_requests: dict[tuple, Request] = {}  # (pod uid, port, path) → the kubelet's request
        # (pod uid, port, node IP, path) → (the probe hop that allowed it, its inbound counters, the loopback connection)
        self._probe_allowed: dict[tuple, tuple] = {}
        self._probe_ignored: dict[str, frozenset] = {}  # pod uid → ports its linkerd-init sends past the proxy
        self._started = False
        self._counted_inbound = 0  # requests an inbound proxy (or unmeshed server) handled, but those still pending
        self._pending: list = []  # hops and route metrics holding requests not counted yet (see settle)
        # The API server's change counter, read directly on every request (cluster.revision is a property).
        self._api = getattr(cluster, "api", cluster)

    @property
    def inbound_requests(self) -> int:
        """Every request an inbound proxy (or unmeshed server) handled, counted or pending on a hop."""
        hops = {id(item): item for item in self._pending if type(item) is Hop}  # a hop may be listed twice
        return self._counted_inbound + sum(len(hop.pending) for hop in hops.values()) // lp.PENDING_FIELDS

    # -- keeping the view current --------------------------------------------------
    def drop_lanes(self) -> None:
        """Forget every pod's lanes: something a lane's requests skip looking at changed without a change in the
        cluster (a tap session started, a server proxy found a ServiceProfile after its idle time). The next
        request to each target takes the long way and builds the lane afresh."""
        self._epoch += 1
        for pod in self.pods.values():
            pod.lanes.clear()

    def sync(self) -> None:
        """Follow the cluster: start pods that began running, stop deleted ones, re-read services."""
        if not self._started:
            self._started = True
            self.clock.every(SYNC_PERIOD, self.sync, first=self.clock.t + SYNC_PERIOD)
        pending = self._pending
        if pending and (len(pending) > MAX_PENDING // 16 or sum(len(p.pending) for p in pending) > MAX_PENDING):
            self.settle()  # nobody read the counters for a while (no Prometheus): keep the memory bounded
        revision = self.cluster.revision
        if revision == self._revision:
            return
        self._revision = revision
        self._epoch += 1
        from labkit.sim import apps

        lookup = self._lookup
        seen = set()
        new: list[PodRuntime] = []
        for pod in self.cluster.list("Pod"):
            status = pod.get("status", {})
            if status.get("phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
                continue
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            runtime = self.pods.get(uid)
            if runtime is None:
                runtime = self.pods[uid] = PodRuntime(self, pod)
                runtime.build_models(apps.build, lookup)
                new.append(runtime)
            runtime.pod = pod
            runtime.ready = _ready(pod)
        for uid in [u for u in self.pods if u not in seen]:
            self.pods.pop(uid).alive = False
            self._close_connections(uid)
        self._rebuild_services()
        for runtime in new:  # start client loops once the whole view is consistent
            for model in runtime.models.values():
                model.start(runtime.ctx)

    def settle(self) -> None:
        """Count every pending request (``Hop.pending``, ``RouteMetrics.pending``): what the proxies' counters
        do before anything reads them. Their ``settle`` hook calls this."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        # A route whose pending requests are all of one hop's pending list holds just what the hop holds: it counts
        # the hop's batch.
        batches: dict = {}  # id of a hop's pending list → (the list, its batch)
        latencies: list = []  # every hop's latency histograms, counted in one pass
        for item in pending:
            if type(item) is Hop and item.pending:
                flat = item.pending
                batch = batches[id(flat)] = (flat, lp.Batch(flat))
                self._counted_inbound += item.settle(batch[1], latencies)
        lp.record_latencies(latencies)
        for item in pending:
            if type(item) is not Hop and item.pending:
                whole = item.whole()  # kept alive by ``batches`` while it holds its id: the id says it
                same = batches.get(id(whole)) if whole is not None else None
                item.settle(None if same is None else same[1])

    def _lookup(self, kind: str, namespace: str, name: str) -> dict | None:
        try:
            return self.cluster.get(kind, name, namespace=namespace)
        except (NotFoundError, KeyError):
            return None

    def _rebuild_services(self) -> None:
        by_ns: dict[str, list[PodRuntime]] = {}
        for runtime in self.pods.values():
            by_ns.setdefault(runtime.namespace, []).append(runtime)
        services = {}
        for svc in self.cluster.list("Service"):
            meta, spec = svc["metadata"], svc.get("spec", {})
            ns = meta.get("namespace", "default")
            selector = spec.get("selector") or {}
            endpoints = []
            if selector:
                endpoints = [
                    r for r in sorted(by_ns.get(ns, ()), key=lambda r: r.name)
                    if r.ready and all(r.labels.get(k) == v for k, v in selector.items())
                ]
            ports = {int(p["port"]): p.get("targetPort", p["port"]) for p in spec.get("ports") or ()}
            services[(ns, meta["name"])] = new = Service(meta["name"], ns, ports, endpoints)
            if not endpoints:
                old = self.services.get((ns, meta["name"]))
                new.empty_since = old.empty_since if old is not None and old.empty_since is not None else self.clock.t
        remapped = {old.fqdn for key, old in self.services.items()
                    if key in services and services[key].ports != old.ports}
        if remapped:
            self._close_service_connections(remapped)
        self.services = services
        self._resolved.clear()

    def _refresh(self) -> None:
        if self.cluster.revision != self._revision:
            self.sync()

    # -- service discovery -------------------------------------------------------------
    def resolve(self, namespace: str, target: str) -> tuple[Service, int, str] | None:
        """``"books:7002"``, ``"http://web-svc.emojivoto:80"`` → (Service, port, :authority), as DNS would."""
        key = (namespace, target)
        if key in self._resolved:
            return self._resolved[key]
        hostport = authority_of(target)
        host, _, port = hostport.partition(":")
        port_num = int(port) if port.isdigit() else 80
        parts = host.split(".")
        name, ns = parts[0], (parts[1] if len(parts) > 1 else namespace)
        if len(parts) > 2 and parts[2] != "svc":
            result = None
        else:
            svc = self.services.get((ns, name))
            result = (svc, port_num, hostport) if svc is not None and port_num in svc.ports else None
        self._resolved[key] = result
        return result

    # -- the request path ----------------------------------------------------------------
    def call(self, client: PodRuntime, target: str, method: str, path: str, grpc: bool = False,
             headers: dict | None = None, body_bytes: int = 0, body=None) -> Response:
        """One request from ``client`` to ``target``, through both proxies (:meth:`PodContext.call`)."""
        return client.ctx.call(target, method, path, grpc, headers, body_bytes, body)

    def _call(self, client: PodRuntime, target: str, request: Request) -> Response:
        """:meth:`PodContext.send` the long way: follow the cluster, resolve, discover, and route by traffic policy
        or to an endpoint; on the default route, leave a :class:`Lane` for the next request."""
        client.lanes.pop(target, None)
        if self.cluster.revision != self._revision:
            self.sync()
        resolved = self._resolved.get((client.namespace, target), _UNRESOLVED)
        if resolved is _UNRESOLVED:
            resolved = self.resolve(client.namespace, target)
        if resolved is None:
            return Response(status=0, latency_ms=1.0, error="dns error: no such host")
        svc, port, _ = resolved  # (the :authority: the request carries it, see request_to)
        now = self.clock.t
        rm = disc = None
        if client.proxy is not None:
            # The client proxy's view of this destination: looked up once, kept while in use.
            disc = self._outbound.get((client.uid, svc.fqdn, port))
            if disc is None or disc.rev != self._revision or now - disc.last > policy.OUTBOUND_IDLE_S:
                disc = self._discover(client, svc, port, now, disc)
            disc.last = now
            if disc.plan is not None:
                return self._call_planned(disc.plan, client, svc, port, request)
            if disc.policy:
                # Client policy without routes: the policy controller's default route, one backend (the Service).
                rm = disc.route
                if rm is None:
                    rm = disc.route = self._route_metrics(client, svc, port, None)
                    rm.default_backend((svc.namespace, svc.name, port),
                                       lambda: rmx.backend_items(svc.namespace, svc.name, port))
                    rm.overheads = _OUTBOUND_OVERHEADS
        endpoints = self.route(client, svc, port, request.method, request.path)
        if not endpoints:
            # The outbound proxy (or the app's connect) finds nobody to talk to.
            if rm is not None:  # the backend queue waits, fails fast, then sheds load (sim/linkerd/balancer.py)
                kind, wait = self._gates.unavailable((client.uid, svc.fqdn, port), svc.empty_since, now)
                if kind == balancer.LOAD_SHED:
                    rm.record(None, rmx.LOAD_SHED, 1.0)
                    return Response(status=503, latency_ms=1.0, error="")
                rm.record_default(None, rmx.FAIL_FAST, wait)
                return Response(status=503, latency_ms=wait, error="")
            return Response(status=503, latency_ms=1.0, error="no endpoints" if client.proxy is None else "")
        lane = None
        if endpoints is svc.endpoints and self.cluster.revision == self._revision:
            lane = client.lanes[target] = Lane(self._revision, self._epoch, svc, port, disc, rm)
        server = endpoints[client.rng.randrange(len(endpoints))] if len(endpoints) > 1 else endpoints[0]
        return self._to_endpoint(client, server, svc, port, request, rm, lane)

    def _to_endpoint(self, client: PodRuntime, server: PodRuntime, svc: Service, port: int, request: Request,
                     rm, lane: Lane | None) -> Response:
        """The request on the default route, from the client proxy's pick of an endpoint on; the hop joins
        ``lane`` when its requests need nothing but counting."""
        hop = self._hops.get((client.uid, server.uid, svc.fqdn, port))
        if hop is None:
            hop = self._new_hop(client, server, svc, port)
        if hop.model is None:
            if rm is not None:
                rm.record_default(None, rmx.REFUSED, 1.0)
            return Response(status=0, latency_ms=1.0, error="connection refused")
        response, inbound_ms, in_route, failed = served = self._serve(hop, server, svc, port, request)
        if (lane is not None and (not hop.enforce or hop.probes) and lane.epoch == self._epoch
                and (hop.decision is None or hop.authz_rev == self._revision)
                and not hop.server_taps and not hop.client_taps and (hop.ib is None or hop.ib.plan is None)):
            lane.hops[server.uid] = hop
            if len(lane.endpoints) == 1 and not hop.probes:
                lane.hop = hop
        return self._answered(hop, client, server, request, response, served, rm)

    def _answered(self, hop, client: PodRuntime, server: PodRuntime, request: Request, response: Response,
                  served: tuple, rm) -> Response:
        """The client side of a default-route request the server answered: the client proxy counts it (per
        endpoint, and on the default route with client policy), the connection's bytes, tap."""
        _, inbound_ms, in_route, failed = served
        status, grpc_status, error = response.status, response.grpc_status, response.error or ""
        outbound_ms = inbound_ms + NETWORK_MS + (PROXY_OVERHEAD_MS if hop.outbound is not None else 0.0)
        if hop.outbound is not None:
            hop.outbound.record(status, grpc_status, error, failed, outbound_ms)
        if rm is not None:
            rm.record_default(status, "" if not error and status >= 100 else rmx.error_label(status, error),
                              outbound_ms)
        if hop.tcp:
            _count_bytes(hop.tcp, request.body_bytes, response.length)
        if hop.server_taps or hop.client_taps:
            self._tap(client, server, request, response, hop.target_port, inbound_ms, outbound_ms,
                      route=None, inbound_route=None if in_route is None else in_route.name)
        return Response(status, outbound_ms, response.length, grpc_status, response.error, response.body, response.headers)

    # -- traffic policy: profiles, splits, routes, retries, timeouts ------------------------------------
    def _policy_index(self) -> policy.Index:
        index = self._index
        if index is None or index.revision != self.cluster.revision:
            index = self._index = policy.Index(self.cluster, index)
        return index

    def _discover(self, client: PodRuntime, svc: Service, port: int, now: float, disc):
        """(Re)build the client proxy's plan for ``svc:port``; look the destination up afresh when it is
        new or went unused for the discovery cache's idle time (only then may profile ↔ policy change)."""
        index = self._policy_index()
        if disc is None or now - disc.last > policy.OUTBOUND_IDLE_S:
            kind = "profile" if index.profile_for(client.namespace, svc.namespace, svc.name) is not None else "policy"
            disc = policy.Discovered(kind, policy.OUTBOUND_IDLE_S)
            self._outbound[(client.uid, svc.fqdn, port)] = disc
        disc.rev = self._revision
        disc.plan = self._plan(disc, index, client, svc, port, now)
        return disc

    def _plan(self, disc, index: policy.Index, client: PodRuntime, svc: Service, port: int, now: float):
        disc.policy = disc.kind == "policy"
        if disc.kind == "profile":
            prof = index.profile_for(client.namespace, svc.namespace, svc.name)
            if prof is None:
                return None  # deleted: the proxy keeps routing by profile, now an empty one
            disc.policy = not prof.routes and not prof.overrides
            if disc.policy:
                # A profile decides only with routes or dstOverrides (the 2.16+ proxy's sidecar.rs): an empty
                # one leaves the Service to client policy (HTTPRoutes, retry/timeout annotations).
                return self._policy_plan(index, client, svc, port)
            plan = policy.Plan("profile")
            plan.profile = prof
            plan.dst = f"{svc.fqdn}:{port}"
            if prof.overrides:
                items = []
                for host, oport, weight in prof.overrides:
                    parts = host.split(".")
                    target = self.services.get((parts[1], parts[0])) if len(parts) > 2 and parts[2] == "svc" else None
                    items.append((weight, (target, oport or port)))
                plan.backends, plan.total_weight = policy.weighted(items)
            if prof.budget is not None and any(r.retryable for r in prof.routes):
                key = (prof.namespace, prof.name, prof.version)
                if disc.budget_key != key:  # every profile update brings the proxy a new budget
                    ratio, min_rps, ttl = prof.budget
                    disc.budget, disc.budget_key = policy.TpsBudget(ttl, min_rps, ratio, now), key
                plan.budget = disc.budget
            return plan
        return self._policy_plan(index, client, svc, port)

    def _policy_plan(self, index: policy.Index, client: PodRuntime, svc: Service, port: int):
        client_policy = index.client_policy(client.namespace, svc.namespace, svc.name, port)
        if client_policy is None:
            return None
        plan = policy.Plan("policy")
        plan.client_policy = client_policy
        plan.dst = f"{svc.fqdn}:{port}"
        return plan

    def _refresh_inbound(self, ib, server: PodRuntime, svc: Service, port: int, now: float) -> None:
        index = self._policy_index()
        if ib.kind is None or now - ib.last > policy.INBOUND_IDLE_S:
            ib.kind = "profile" if index.profile_for(server.namespace, svc.namespace, svc.name) is not None else "policy"
        ib.rev = self._revision
        prof = index.profile_for(server.namespace, svc.namespace, svc.name) if ib.kind == "profile" else None
        if prof is None:
            ib.plan = None
            return
        if ib.plan is None or ib.plan.profile is not prof:
            if ib.plan is None:
                self.drop_lanes()  # the server proxy now counts per route: its hops take the long way
            plan = policy.Plan("profile")
            plan.profile, plan.dst = prof, f"{svc.fqdn}:{port}"
            ib.plan = plan

    def _route_stats(self, proxy, direction: str, dst: str, route) -> tuple:
        """The (effective, actual) per-route counters a proxy keeps for ``route`` (actual: outbound only)."""
        items = (("direction", direction), ("dst", dst))
        if route.name is not None:
            items += (("rt_route", route.name),)
        key = (direction, dst, route.name)
        eff = proxy.stats(proxy.routes, key, lambda: items)
        act = proxy.stats(proxy.actual_routes, key, lambda: items) if direction == "outbound" else None
        return eff, act

    def _inbound_route(self, plan, server: PodRuntime, request: Request, status, grpc_status, error, inbound_ms):
        route = plan.profile.match(request.method, request.path.partition("?")[0])
        stats = plan.stats.get(route)
        if stats is None:
            stats = plan.stats[route] = self._route_stats(server.proxy, "inbound", plan.dst, route)
        stats[0].record(status, grpc_status, error, route.failed(status, grpc_status, error), inbound_ms)
        return route

    def _serve(self, hop, server: PodRuntime, svc: Service, port: int, request: Request):
        """The server side of one attempt: the app answers, and the server's inbound proxy counts it
        (per route too, when the server side has a ServiceProfile).

        Returns (response, inbound ms, the inbound route or None, failed by the default classifier).
        """
        if hop.authz_rev != self._revision and hop.decision is not None:
            self._authorize(hop, server, hop.target_port, hop.client)  # policy may have changed: ask again
        inbound = hop.inbound
        if hop.enforce:  # a denial, or a Server whose routes decide per request
            inbound, refused = self._enforce(hop, server, request, hop.decision)
            if refused is not None:
                return refused, refused.latency_ms, None, refused.status >= 500 or refused.grpc_status == 7
        response = hop.model.handle(request, server.ctx)
        self._counted_inbound += 1
        return self._served(hop, inbound, server, svc, port, request, response)

    def _served(self, hop, inbound, server: PodRuntime, svc: Service, port: int, request: Request,
                response: Response):
        """The server's inbound proxy counts the answer (per route too, with a server-side ServiceProfile).

        Returns (response, inbound ms, the inbound route or None, failed by the default classifier).
        """
        status, grpc_status, error = response.status, response.grpc_status, response.error or ""
        inbound_ms = response.latency_ms + PROXY_OVERHEAD_MS
        in_route = None
        ib = hop.ib
        if ib is not None:
            now = self.clock.t
            if ib.rev != self._revision or now - ib.last > policy.INBOUND_IDLE_S:
                self._refresh_inbound(ib, server, svc, port, now)
            ib.last = now
            if ib.plan is not None:
                in_route = self._inbound_route(ib.plan, server, request, status, grpc_status, error, inbound_ms)
        # The proxy's default classifier (inlined: this runs for every request in the mesh).
        if error:
            failed = True
        elif grpc_status is not None:
            failed = grpc_status in lp.GRPC_FAILURES
        else:
            failed = 500 <= status <= 599
        if inbound is not None:
            inbound.record(status, grpc_status, error,
                               failed if in_route is None else in_route.failed(status, grpc_status, error), inbound_ms)
        return response, inbound_ms, in_route, failed

    def _attempt(self, client: PodRuntime, svc: Service, port: int, request: Request, logical: Service,
                 route, deadline_ms: float | None, out_route: str | None):
        """One attempt to one endpoint of the concrete ``svc``: both proxies count it, tap sees it.

        Returns (status, grpc_status, error, failed, outbound_ms, response, cancelled); ``cancelled``
        when it outlived ``deadline_ms`` — the client proxy gave up on it, so its endpoint counters
        never see a response (the server, which cannot know, answered all the same).
        """
        endpoints = svc.endpoints
        server = endpoints[client.rng.randrange(len(endpoints))] if len(endpoints) > 1 else endpoints[0]
        key = (client.uid, server.uid, logical.fqdn, port) if svc is logical else (client.uid, server.uid, logical.fqdn, port, svc.fqdn)
        hop = self._hops.get(key)
        if hop is None:
            hop = self._new_hop(client, server, svc, port, logical)
        if hop.model is None:
            refused = Response(status=0, latency_ms=1.0, error="connection refused")
            return 0, None, "connection refused", True, 1.0, refused, False
        response, inbound_ms, in_route, _ = self._serve(hop, server, svc, port, request)
        status, grpc_status, error = response.status, response.grpc_status, response.error or ""
        failed = route.failed(status, grpc_status, error)
        outbound_ms = inbound_ms + NETWORK_MS + (PROXY_OVERHEAD_MS if hop.outbound is not None else 0.0)
        cancelled = deadline_ms is not None and outbound_ms > deadline_ms
        if hop.outbound is not None and not cancelled:
            hop.outbound.record(status, grpc_status, error, failed, outbound_ms)
        if hop.tcp:
            _count_bytes(hop.tcp, request.body_bytes, response.length)
        if hop.server_taps or hop.client_taps:
            seen = Response(policy.TIMEOUT_STATUS, deadline_ms, 0) if cancelled else None
            self._tap(client, server, request, response, hop.target_port, inbound_ms,
                      deadline_ms if cancelled else outbound_ms, route=out_route,
                      inbound_route=None if in_route is None else in_route.name, out_response=seen)
        return status, grpc_status, error, failed, outbound_ms, response, cancelled

    def _call_planned(self, plan, client: PodRuntime, svc: Service, port: int, request: Request) -> Response:
        if plan.kind == "profile":
            return self._call_profile(plan, client, svc, port, request)
        return self._call_policy(plan, client, svc, port, request)

    def _call_profile(self, plan, client: PodRuntime, svc: Service, port: int, request: Request) -> Response:
        """ServiceProfile routing, in the proxy's stack order (flagger-and-policies.md §4.3):
        effective metrics → timeout → retry (budget) → actual metrics → backend draw, per attempt."""
        route = plan.profile.match(request.method, request.path.partition("?")[0])
        stats = plan.stats.get(route)
        if stats is None:
            stats = plan.stats[route] = self._route_stats(client.proxy, "outbound", plan.dst, route)
        eff, act = stats
        start = self.clock.t
        timeout = route.timeout_ms
        budget = plan.budget if route.retryable and request.body_bytes <= policy.MAX_RETRY_BODY else None
        elapsed = 0.0
        while True:
            concrete, cport = svc, port
            if plan.backends is not None:
                picked = policy.draw(plan.backends, plan.total_weight, client.rng,
                                     lambda b: b[0] is not None and bool(b[0].endpoints))
                concrete, cport = (None, port) if picked is policy.NONE else picked
            if concrete is None or not concrete.endpoints:
                status, grpc_status, error, failed, ms = 503, None, "", True, 1.0  # the balancer fails fast
                response, cancelled = Response(503, 1.0, 0, error=""), False
            else:
                deadline = None if timeout is None else timeout - elapsed
                status, grpc_status, error, failed, ms, response, cancelled = self._attempt(
                    client, concrete, cport, request, svc, route, deadline, route.name)
            if cancelled or (timeout is not None and elapsed + ms > timeout):
                eff.record(policy.TIMEOUT_STATUS, None, policy.TIMEOUT_ERROR, True, timeout)
                return Response(policy.TIMEOUT_STATUS, timeout, 0)
            elapsed += ms
            act.record(status, grpc_status, error, failed, ms)
            if budget is None or status < 100:
                break  # not retryable (transport errors never are)
            if not failed:
                budget.deposit(start + elapsed / 1000.0)
                break
            if not budget.withdraw(start + elapsed / 1000.0):
                break
        eff.record(status, grpc_status, error, failed, elapsed)
        return Response(status, elapsed, response.length, grpc_status, response.error, response.body, response.headers)

    def _route_metrics(self, client: PodRuntime, svc: Service, port: int, route):
        """The client proxy's 2.16+ metrics for ``route`` (None: the default route) of ``svc:port``."""
        ident = None if route is None else route.ident
        key = (svc.namespace, svc.name, port, ident)
        if ident is None:
            items = lambda: rmx.parent_items(svc.namespace, svc.name, port) + rmx.DEFAULT_HTTP_ROUTE  # noqa: E731
        else:
            items = lambda: rmx.parent_items(svc.namespace, svc.name, port) + rmx.route_items(*ident)  # noqa: E731
        rm = client.proxy.route(key, items, grpc=route is not None and route.grpc)
        if route is not None and route.retryable:
            rm.retries_configured = True
        return rm

    def _call_policy(self, plan, client: PodRuntime, svc: Service, port: int, request: Request) -> Response:
        """Client-policy routing (HTTPRoute / GRPCRoute backends, 2.16+ retry/timeout annotations).

        The route's metrics count the request once, as the client sees it;
        its backend metrics count every attempt (retries included).
        """
        path, _, query = request.path.partition("?")
        route = plan.client_policy.match(request.method, path, query, request.headers)
        if route is None:
            return Response(404, 1.0, 0, headers={"l5d-proxy-error": "no route found for request"})
        rm = plan.metrics.get(route)
        if rm is None:
            rm = plan.metrics[route] = self._route_metrics(client, svc, port, route)
        filters = route.filters
        if filters is not None:
            if filters.redirect is not None:  # the proxy answers itself; no backend sees the request
                response = policy.redirect_response(filters.redirect, request.authority, path)
                rm.record(response.status, "", response.latency_ms)
                return response
            if filters.request_headers:
                request = Request(request.method, request.path, request.authority, request.grpc,
                                  filters.request(request.headers), request.body_bytes, request.body)
        response, error, retries, exhausted = self._policy_attempts(plan, route, rm, client, svc, port, request)
        if filters is not None and filters.response_headers:
            response.headers = filters.response(response.headers)
        # a body cut after its headers keeps their status, beside the error (``end_response``)
        cut = error and (response.error or "").startswith(policy.INCOMPLETE_BODY)
        if route.grpc:
            code = response.grpc_status
            rm.record(code if code is not None or error else (0 if response.status == 200 else 2), error,
                      response.latency_ms)
        else:
            rm.record(response.status if not error or cut else None, error, response.latency_ms)
        if retries:
            if exhausted:
                rm.retry_limit_exceeded += 1
            elif not error:
                rm.retry_successes += 1
        return response

    def _backend_metrics(self, route, rm, concrete: Service | None, cport: int):
        if concrete is None:
            return rm.backend(None, lambda: rmx.backend_items("", "", None))
        return rm.backend((concrete.namespace, concrete.name, cport),
                          lambda: rmx.backend_items(concrete.namespace, concrete.name, cport))

    def _policy_attempts(self, plan, route, rm, client: PodRuntime, svc: Service, port: int, request: Request):
        """Send ``request`` along ``route``: attempts, retries, timeouts.

        Returns (response, the route's ``error`` label, retries made, whether
        the last answer was still retryable when the limit ran out).
        """
        backends = plan.stats.get(route)
        if backends is None:
            items = []
            for weight, target in route.backends or ():
                resolved = None if target is None else (self.services.get((target[0], target[1])), target[2])
                items.append((weight, resolved))
            backends = plan.stats[route] = policy.weighted(items) if route.backends is not None else None
        timeout = route.timeout_ms
        limit = route.retry_limit if route.retryable and request.body_bytes <= policy.MAX_RETRY_BODY else 0
        inf = float("inf")
        elapsed = 0.0
        attempt = 0
        grpc_route = route.grpc
        while True:
            try_ms = route.try_timeout_ms if attempt < limit else None  # no per-try timeout on the last try
            concrete, cport = svc, port
            synthetic = None
            if backends is not None:
                items, total = backends
                if total <= 0:
                    synthetic = Response(500, 1.0, 0)  # every backend weighted 0
                else:
                    picked = policy.draw(items, total, client.rng,
                                         lambda b: b is None or (b[0] is not None and bool(b[0].endpoints)))
                    if picked is policy.NONE:
                        concrete = None
                    elif picked is None:
                        synthetic = Response(policy.MISSING_BACKEND_STATUS, 1.0, 0)  # "Service not found"
                    else:
                        concrete, cport = picked
            d_req = inf if timeout is None else timeout - elapsed
            d_try = inf if try_ms is None else try_ms
            d_rsp = inf if route.response_timeout_ms is None else route.response_timeout_ms
            deadline = min(d_req, d_try, d_rsp)
            if synthetic is not None:
                response, ms, cancelled = synthetic, synthetic.latency_ms, False
                head = ms
                status, grpc_status, error, failed = response.status, None, "", True
                bm = self._backend_metrics(route, rm, None, 0)
                bm.record(status if not grpc_route else 13, "", ms)
            elif concrete is None or not concrete.endpoints:
                # no backend available: its queue waits and fails fast, then sheds (sim/linkerd/balancer.py)
                key = (client.uid, concrete.fqdn if concrete is not None else route.ident, cport)
                kind, wait = self._gates.unavailable(key, concrete.empty_since if concrete is not None else None,
                                                     self.clock.t + elapsed / 1000.0)
                if kind == balancer.LOAD_SHED:  # not retried; no backend reached
                    return Response(503, elapsed + 1.0, 0), rmx.LOAD_SHED, attempt, False
                response, ms, cancelled = Response(503, wait, 0, error=balancer.FAIL_FAST_ERROR), wait, False
                head = ms
                status, grpc_status, error, failed = 503, None, balancer.FAIL_FAST_ERROR, True
                bm = self._backend_metrics(route, rm, concrete, cport)
                if not head > deadline:
                    bm.record(None, rmx.FAIL_FAST, ms)
            else:
                status, grpc_status, error, failed, ms, response, cancelled = self._attempt(
                    client, concrete, cport, request, svc, route, None if deadline == inf else deadline, None)
                bm = self._backend_metrics(route, rm, concrete, cport)
                # a streamed body: the headers come first, the stream deadlines then run on the body
                head = ms - policy.streamed_ms(response)
                cut = None if head > deadline else policy.body_cut(route, head, ms, d_req, d_rsp)
                if cut is not None:
                    bm.record(None if grpc_route else status, cut[1], cut[0])  # gRPC: its status was to trail
                    return (Response(status, elapsed + cut[0], 0, None, f"{policy.INCOMPLETE_BODY}: {cut[2]}",
                                     None, response.headers), cut[1], attempt, False)
                if not head > deadline:
                    label = "" if not error and status >= 100 else rmx.error_label(status, error)
                    if grpc_route:
                        code = grpc_status if grpc_status is not None else (0 if status == 200 else 2)
                        bm.record(None if label else code, label, ms)
                    else:
                        bm.record(status if not label else None, label, ms)
            retry = False
            retryable = False
            if head > deadline:
                if deadline == d_try and d_try < min(d_req, d_rsp):
                    bm.record(None, rmx.RESPONSE_HEADERS_TIMEOUT, d_try)
                    elapsed += d_try  # response headers timeout: retryable
                    retry = retryable = True
                else:
                    label = rmx.REQUEST_TIMEOUT if deadline == d_req else rmx.RESPONSE_STREAM_TIMEOUT
                    bm.record(None, label, deadline)
                    return Response(policy.TIMEOUT_STATUS, elapsed + deadline, 0), label, attempt, False
            else:
                elapsed += ms
                if error == balancer.FAIL_FAST_ERROR:
                    retryable = True  # a FailFastError is retryable whatever the conditions (route/retry.rs)
                elif grpc_route:
                    retryable = grpc_status is not None and grpc_status in route.retry_grpc
                else:
                    retryable = status >= 100 and any(lo <= status <= hi for lo, hi in route.retry_statuses)
                retry = attempt < limit and retryable
            if not retry or attempt >= limit:
                exhausted = attempt > 0 and retryable
                if retry:  # pragma: no cover - the last try has no per-try timeout
                    return Response(policy.TIMEOUT_STATUS, elapsed, 0), rmx.RESPONSE_HEADERS_TIMEOUT, attempt, True
                return (Response(status, elapsed, response.length, grpc_status, response.error, response.body,
                                 response.headers), "" if not error and status >= 100 else rmx.error_label(status, error),
                        attempt, exhausted)
            attempt += 1
            rm.retry_requests += 1
            elapsed += policy.backoff_ms(attempt, client.rng)
            if timeout is not None and elapsed >= timeout:
                return Response(policy.TIMEOUT_STATUS, timeout, 0), rmx.REQUEST_TIMEOUT, attempt, False

    # -- inbound authorization policy (sim/linkerd/authz.py) ---------------------------------------------
    def _inbound_index(self) -> authz.InboundIndex:
        index = getattr(self, "_authz_index", None)
        if index is None or index.revision != self.cluster.revision:
            index = self._authz_index = authz.InboundIndex(self.cluster)
        return index

    def _authorize(self, hop, server: PodRuntime, port: int, client: PodRuntime):
        """(Re)compute the server proxy's policy for this client and port, and the counters it feeds."""
        if hop.pending:
            # requests made under the previous decision count where it put them
            self._counted_inbound += hop.settle()
        cproxy = client.proxy
        client_id = cproxy.identity if cproxy is not None else None
        decision = self._inbound_index().decide(server.pod, port, server.default_policy,
                                                authz.Client(client_id, client.ip))
        hop.decision, hop.authz_rev = decision, self._revision
        hop.enforce = decision.routes is not None or decision.authz is None or bool(decision.probes)
        hop.probes = decision.probes if decision.probes and decision.routes is None and decision.authz else None
        labels = decision.srv + decision.route + (decision.authz or ())
        sproxy = server.proxy
        hop.inbound = None if decision.authz is None else sproxy.stats(
            sproxy.inbound, (port, client_id, labels), lambda: _inbound_items(server, port, client_id, decision))
        return decision

    def _enforce(self, hop, server: PodRuntime, request: Request, decision):
        """The server proxy's verdict on one request: (the counters to record it in, or a refusal to answer)."""
        sproxy = server.proxy
        client_id = hop.client.proxy.identity if hop.client.proxy is not None else None
        port = hop.target_port
        route, allowed = decision.route, decision.authz
        if decision.probes and decision.probe(request.method, request.path.partition("?")[0]):
            route, allowed = authz.PROBE_ROUTE, decision.probe_authz
        elif decision.routes is not None:
            path, _, query = request.path.partition("?")
            for match, route_labels, route_authz in decision.routes:
                if match(request.method, path, query, request.headers):
                    route, allowed = route_labels, route_authz
                    break
            else:
                return None, Response(404, 1.0, 0, headers={"l5d-proxy-error": "no route found for request"})
        if allowed is None:
            family = "inbound_tcp_authz_deny" if decision.tcp else "inbound_http_authz_deny"
            key = (family, _authz_deny_items(server, port, client_id, decision.srv, route))
            sproxy.denied[key] = sproxy.denied.get(key, 0) + 1
            if decision.tcp:
                return None, Response(0, 1.0, 0, error="connection refused")
            if request.grpc:
                return None, Response(200, 1.0, 0, grpc_status=7,
                                      headers={"grpc-message": authz.DENIED_MESSAGE})
            return None, Response(403, 1.0, 0, headers={"l5d-proxy-error": authz.DENIED_MESSAGE})
        labels = decision.srv + route + allowed
        shown = authz.Decision(decision.srv, route, allowed, decision.tcp)
        return sproxy.stats(sproxy.inbound, (port, client_id, labels),
                            lambda: _inbound_items(server, port, client_id, shown)), None

    # -- the kubelet's HTTP probes ------------------------------------------------------------------------
    def probe(self, pod: dict, port: int, path: str, source_ip: str) -> int | None:
        """One kubelet HTTP probe of ``pod:port`` from ``source_ip`` (the node): the status it got, or None.

        On a meshed pod the inbound proxy handles it like any plaintext request — the policy controller's
        ``probe`` route and authorization let it in (``authz.py``), and it is counted with
        ``tls="no_identity"`` — on its own connection (the kubelet does not keep probe connections). A
        port the proxy skips, or an unmeshed pod, gets the probe straight to the app, counted by nobody.
        The app answers on a random stream of its own, so probes do not shift its other draws.
        """
        if self.cluster.revision != self._revision:
            self.sync()
        server = self.pods.get(pod["metadata"]["uid"])
        model = server.by_port.get(port) if server is not None else None
        if model is None:
            return None
        ctx = self._probe_ctx.get(server.uid)
        if ctx is None:
            ctx = self._probe_ctx[server.uid] = PodContext(server)
            ctx.rng = random.Random(f"{self.seed}:probe:{server.name}")
        # The same probe again is the same Request (nobody changes one): built once per pod, port and path.
        request = self._probe_requests.get((server.uid, port, path))
        if request is None:
            request = self._probe_requests[server.uid, port, path] = Request(
                "GET", path, f"{server.ip}:{port}",
                headers={"user-agent": PROBE_USER_AGENT, "accept": "*/*", "connection": "close"})
        sproxy = server.proxy
        if sproxy is None or port in self._ignored_ports(server):
            return model.handle(request, ctx).status
        # The server proxy's policy for the kubelet's probes of this port, decided once per cluster revision.
        hop = self._probe_hops.get((server.uid, port, source_ip))
        if hop is None or hop.authz_rev != self._revision or hop.model is not model:
            hop = self._probe_hops[server.uid, port, source_ip] = Hop(model, server, port)
            hop.client = _Prober(source_ip)
            hop.decision = self._inbound_index().decide(server.pod, port, server.default_policy,
                                                        authz.Client(None, source_ip))
            hop.authz_rev = self._revision
        tcp = [(sproxy.tcp_stats(("src", port, None), lambda: _tcp_inbound_items(server, port, None)), True)]
        tcp[0][0].opened += 1
        if hop.decision.tcp and hop.decision.authz is not None:  # an opaque port: forwarded as TCP, no HTTP metrics
            response = model.handle(request, ctx)
            _count_bytes(tcp, 0, response.length)
            return response.status
        # An allowed probe of a path gets the same verdict while the decision stands (the same hop): kept per path.
        allowed = self._probe_allowed.get((server.uid, port, source_ip, path))
        if allowed is None or allowed[0] is not hop:
            inbound, refused = self._enforce(hop, server, request, hop.decision)
            if refused is not None:  # counted as denied each time: asked each time
                _count_bytes(tcp, 0, refused.length)
                return None if refused.status < 100 else refused.status
            allowed = self._probe_allowed[server.uid, port, source_ip, path] = (
                hop, inbound, sproxy.tcp_stats(("dst", "loopback"), _tcp_loopback_items))
        _, inbound, local = allowed
        local.opened += 1
        tcp.append((local, False))
        response = model.handle(request, ctx)
        self._counted_inbound += 1
        status, grpc_status, error = response.status, response.grpc_status, response.error or ""
        inbound.record(status, grpc_status, error, lp.classify(status, grpc_status, error),
                       response.latency_ms + PROXY_OVERHEAD_MS)
        _count_bytes(tcp, 0, response.length)
        return status

    def _ignored_ports(self, server: PodRuntime) -> frozenset:
        ports = self._probe_ignored.get(server.uid)
        if ports is None:
            ports = self._probe_ignored[server.uid] = authz.ignored_inbound_ports(server.pod)
        return ports

    def _new_hop(self, client: PodRuntime, server: PodRuntime, svc: Service, port: int,
                 logical: Service | None = None) -> "Hop":
        """Everything fixed about requests from one pod to one endpoint of a service, looked up once.

        The first request also opens the connection, as a client's HTTP/2
        connection to an endpoint stays open and carries every later request.
        ``logical`` is the Service the client addressed when a split sent the
        request to another (``svc``): metrics keep its ``authority``.
        """
        logical = logical or svc
        # A port the Service does not list is used as the target port (the destination controller's getTargetPort).
        target_port = svc.ports.get(port, port)
        if not isinstance(target_port, int):
            target_port = self._named_port(server, target_port)
        hop = Hop(server.by_port.get(target_port), server, target_port)
        sproxy, cproxy = server.proxy, client.proxy
        if sproxy is not None:
            hop.server_taps = sproxy.taps
        if cproxy is not None:
            hop.client_taps = cproxy.taps
        split = () if logical is svc else (svc.fqdn,)
        if sproxy is not None:
            client_id = cproxy.identity if cproxy is not None else None
            hop.client = client
            self._authorize(hop, server, target_port, client)
            peer = sproxy.tcp_stats(("src", target_port, client_id), lambda: _tcp_inbound_items(server, target_port, client_id))
            local = sproxy.tcp_stats(("dst", "loopback"), _tcp_loopback_items)
            hop.tcp += [(peer, True), (local, False)]
            ib_key = (server.uid, svc.fqdn, port)
            hop.ib = self._inbound.get(ib_key)
            if hop.ib is None:
                hop.ib = self._inbound[ib_key] = policy.Discovered(None, policy.INBOUND_IDLE_S)
        if cproxy is not None:
            hop.outbound = cproxy.stats(cproxy.outbound, (logical.fqdn, port, server.uid, target_port) + split,
                                        lambda: _outbound_items(svc, port, server, target_port, logical))
            out = cproxy.tcp_stats(("dst", logical.fqdn, port, server.uid, target_port) + split,
                                   lambda: _tcp_outbound_items(svc, port, server, target_port, logical))
            hop.tcp.append((out, False))
        for stats, _ in hop.tcp:
            stats.opened += 1
            stats.open += 1
        self._hops[(client.uid, server.uid, logical.fqdn, port) + split] = hop
        return hop

    def route(self, client: PodRuntime, svc: Service, port: int, method: str, path: str) -> list[PodRuntime]:
        """The endpoints a request to ``svc:port`` may go to when no traffic policy applies.

        When the client proxy has a ServiceProfile or client policy for the
        Service (``sim/linkerd/policy.py``), :meth:`_call_planned` chooses the
        route, backend and endpoint per attempt instead.
        """
        return svc.endpoints

    def _named_port(self, server: PodRuntime, name: str) -> int:
        for container in server.pod.get("spec", {}).get("containers", ()):
            for p in container.get("ports") or ():
                if p.get("name") == name:
                    return int(p["containerPort"])
        return -1

    def _close_service_connections(self, fqdns: set[str]) -> None:
        """A Service whose ports now map elsewhere (a new targetPort): the destination controller sends the
        proxies new endpoint addresses, so connections made to the old port are closed and made again."""
        for key in [k for k in self._hops if k[2] in fqdns or (len(k) > 4 and k[4] in fqdns)]:
            for stats, _ in self._hops.pop(key).tcp:
                stats.open -= 1

    def _close_connections(self, uid: str) -> None:
        """A pod that went away closes its connections: the peers' open-connection gauges drop."""
        for key in [k for k in self._hops if uid in (k[0], k[1])]:
            for stats, _ in self._hops.pop(key).tcp:
                stats.open -= 1

    def _tap(self, client, server, request, response, target_port, inbound_ms, outbound_ms, route=None,
             inbound_route=None, out_response=None) -> None:
        """Hand the request to the tap sessions watching either proxy (the observability issue).

        ``route`` is the client proxy's matched ServiceProfile route (None: none),
        ``inbound_route`` the server proxy's; ``out_response`` what the client
        proxy saw when it differs from the server's answer (a timed-out attempt).
        """
        sproxy, cproxy = server.proxy, client.proxy
        if sproxy is not None:
            for session in sproxy.taps:
                session("in", client, server, request, response, target_port, inbound_ms, route=inbound_route)
        if cproxy is not None:
            seen = response if out_response is None else out_response
            for session in cproxy.taps:
                session("out", client, server, request, seen, target_port, outbound_ms, route=route)

    # -- kubectl exec / logs and proxy metrics ---------------------------------------------
    def find_pods(self, target: str, namespace: str | None) -> list[PodRuntime]:
        """``deploy/web``, ``pod/web-…``, ``po/…`` or a bare pod name → running pods, sorted by name."""
        self._refresh()
        ns = namespace or "default"
        pods = sorted((p for p in self.pods.values() if p.namespace == ns), key=lambda p: p.name)
        return pick_pods(target, ns, pods, lambda p: p.name, lambda p: p.deployment)

    def exec(self, target: str, command, namespace: str | None = None, container: str | None = None) -> str:
        pod = self.find_pods(target, namespace)[0]
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        model = self._container(pod, container)
        return model.exec(argv, ExecContext(pod))

    def logs(self, target: str, namespace: str | None = None, container: str | None = None, tail: int | None = None) -> str:
        pod = self.find_pods(target, namespace)[0]
        if container == "linkerd-proxy" and pod.proxy is not None:  # a native sidecar from 2.20, else a container
            from labkit.sim.linkerd import proxy_container, proxy_log

            lines = proxy_log.startup_lines(pod.pod, proxy_container(pod.pod), self.seed)
        else:
            self._container(pod, container)
            if container == "linkerd-debug" and pod.capture is not None:
                return pod.capture.log_text(tail)
            lines = pod.log_lines
        lines = lines if tail is None else lines[-tail:] if tail else []
        return "\n".join(lines) + ("\n" if lines else "")

    def _container(self, pod: PodRuntime, container: str | None):
        if container is None:  # kubectl's default: the first container that is not Linkerd's
            return next((m for n, m in pod.models.items() if n != "linkerd-debug"), next(iter(pod.models.values())))
        if container not in pod.models:
            spec = pod.pod["spec"]
            names = ", ".join([*pod.models, *(c["name"] for c in (spec.get("initContainers") or []) + spec["containers"]
                                              if c["name"] in PROXY_CONTAINERS and c["name"] not in pod.models)])
            raise NotFoundError(f'container "{container}" not found in pod "{pod.name}"; containers: {names}')
        return pod.models[container]

    def proxy_metrics(self, target: str, namespace: str | None = None) -> str:
        """Like ``linkerd diagnostics proxy-metrics``: one block per pod of the target."""
        pods = self.find_pods(target, namespace)
        blocks = []
        for i, pod in enumerate(pods, 1):
            head = f"#\n# POD {pod.name} ({i} of {len(pods)})\n#\n"
            if pod.proxy is None:
                blocks.append(head + f"# ERROR: pod {pod.name} is not meshed (no linkerd-proxy container)\n")
            else:
                blocks.append(head + lp.exposition(pod.proxy))
        return "".join(blocks)


def _count_bytes(tcp: list, body_bytes: int, length: int) -> None:
    """Bytes on the connection's sockets: each side reads what the other writes."""
    req_bytes = REQUEST_HEADER_BYTES + body_bytes
    rsp_bytes = RESPONSE_HEADER_BYTES + length
    for stats, reads_request in tcp:
        if reads_request:
            stats.add_bytes(req_bytes, rsp_bytes)
        else:
            stats.add_bytes(rsp_bytes, req_bytes)


# -- label sets, in linkerd-proxy's emission order ------------------------------------------

def _tls_inbound(client_id: str | None) -> tuple:
    if client_id is None:
        return (("tls", "no_identity"), ("no_tls_reason", "no_tls_from_remote"))
    return (("tls", "true"), ("client_id", client_id))


def _server_policy(port: int) -> tuple:
    return (("srv_group", ""), ("srv_kind", "default"), ("srv_name", "all-unauthenticated"), ("srv_port", str(port)))


def _inbound_items(server: PodRuntime, port: int, client_id: str | None, decision=None) -> tuple:
    if decision is None:
        policy_items = _server_policy(port) + authz.DEFAULT_ROUTE + (
            ("authz_group", ""), ("authz_kind", "default"), ("authz_name", "all-unauthenticated"))
    else:
        policy_items = decision.srv + (("srv_port", str(port)),) + decision.route + decision.authz
    return (
        ("direction", "inbound"),
        ("target_addr", f"{server.ip}:{port}"), ("target_ip", server.ip), ("target_port", str(port)),
        *_tls_inbound(client_id),
        *policy_items,
    )


def _authz_deny_items(server: PodRuntime, port: int, client_id: str | None, srv: tuple, route: tuple) -> tuple:
    """``inbound_{http,tcp}_authz_deny_total``'s labels: no ``authz_*`` (nothing authorized it)."""
    tls = (("tls", "true"), ("client_id", client_id)) if client_id else (("tls", "no_identity"),
                                                                          ("no_tls_reason", "no_tls_from_remote"))
    return (("target_addr", f"{server.ip}:{port}"), ("target_ip", server.ip), ("target_port", str(port)),
            *srv, ("srv_port", str(port)), *route, *tls)


def _dst_items(svc: Service, server: PodRuntime) -> tuple:
    labels = {
        "dst_namespace": server.namespace,
        "dst_pod": server.name,
        "dst_service": svc.name,
        "dst_serviceaccount": server.serviceaccount,
        "dst_zone": "",
        "dst_zone_locality": "unknown",
    }
    if server.proxy is not None:
        labels["dst_control_plane_ns"] = "linkerd"
    if server.deployment:
        labels["dst_deployment"] = server.deployment
    if "pod-template-hash" in server.labels:
        labels["dst_pod_template_hash"] = server.labels["pod-template-hash"]
    return tuple(sorted(labels.items()))


def _tls_outbound(server: PodRuntime) -> tuple:
    if server.proxy is None:
        return (("tls", "no_identity"), ("no_tls_reason", "not_provided_by_service_discovery"))
    return (("tls", "true"), ("server_id", server.proxy.identity))


def _outbound_items(svc: Service, port: int, server: PodRuntime, target_port: int, logical: Service | None = None) -> tuple:
    return (
        ("direction", "outbound"), ("authority", f"{(logical or svc).fqdn}:{port}"),
        ("target_addr", f"{server.ip}:{target_port}"), ("target_ip", server.ip), ("target_port", str(target_port)),
        *_tls_outbound(server),
        *_dst_items(svc, server),
    )


def _tcp_inbound_items(server: PodRuntime, port: int, client_id: str | None) -> tuple:
    return (
        ("direction", "inbound"), ("peer", "src"),
        ("target_addr", f"{server.ip}:{port}"), ("target_ip", server.ip), ("target_port", str(port)),
        *_tls_inbound(client_id),
        *_server_policy(port),
    )


def _tcp_loopback_items() -> tuple:
    return (("direction", "inbound"), ("peer", "dst"), ("tls", "no_identity"), ("no_tls_reason", "loopback"))


def _tcp_outbound_items(svc: Service, port: int, server: PodRuntime, target_port: int,
                        logical: Service | None = None) -> tuple:
    return (
        ("direction", "outbound"), ("peer", "dst"), ("authority", f"{(logical or svc).fqdn}:{port}"),
        ("target_addr", f"{server.ip}:{target_port}"), ("target_ip", server.ip), ("target_port", str(target_port)),
        *_tls_outbound(server),
        *_dst_items(svc, server),
    )
