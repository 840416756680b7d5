"""``linkerd-proxy``'s metrics: what one modelled proxy counts, and how it exposes it.

A real proxy keeps counters and latency histograms per *endpoint label set*
(direction, peer address, TLS identity, destination metadata) and per response
class, and prints them at ``:4191/metrics`` in Prometheus text format. This
module keeps the same counters with the same names, label sets (in Linkerd's
emission order), histogram bounds and classification rules
(reference: linkerd-formats.md §1), so ``mesh.proxy_metrics`` reads like
``linkerd diagnostics proxy-metrics`` and the scraper feeds Prometheus the
series linkerd-viz and Flagger query.

The hot path is :meth:`HttpStats.record`, called once per request per proxy,
so the structures are plain lists and dicts and label strings are built once
per label set, not per request.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Iterator

#: linkerd-proxy's latency histogram upper bounds in ms (inclusive), then +Inf.
LATENCY_BOUNDS = (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
                  1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000)
LE = tuple(str(b) for b in LATENCY_BOUNDS) + ("+Inf",)
_N_BUCKETS = len(LE)  # 26
_SUM, _COUNT = _N_BUCKETS, _N_BUCKETS + 1

#: gRPC codes the proxy classifies as failures (classify.rs): Unknown, DeadlineExceeded,
#: PermissionDenied, Internal, Unavailable, DataLoss. Everything else, NotFound included, is success.
GRPC_FAILURES = frozenset({2, 4, 7, 13, 14, 15})
IDENTITY_SUFFIX = "serviceaccount.identity.linkerd.cluster.local"

HELP = {
    "request_total": ("counter", "Total count of HTTP requests."),
    "response_total": ("counter", "Total count of HTTP responses."),
    "response_latency_ms": ("histogram", "Elapsed times between a request's headers being received and its response stream completing"),
    "route_request_total": ("counter", "Total count of HTTP requests."),
    "route_response_total": ("counter", "Total count of HTTP responses."),
    "route_response_latency_ms": ("histogram", "Elapsed times between a request's headers being received and its response stream completing"),
    "route_actual_request_total": ("counter", "Total count of HTTP requests."),
    "route_actual_response_total": ("counter", "Total count of HTTP responses."),
    "tcp_open_total": ("counter", "Total count of opened connections"),
    "tcp_open_connections": ("gauge", "Number of currently-open connections"),
    "tcp_read_bytes_total": ("counter", "Total count of bytes read from peers"),
    "tcp_write_bytes_total": ("counter", "Total count of bytes written to peers"),
}


def identity(serviceaccount: str, namespace: str) -> str:
    """The mTLS identity Linkerd's identity controller issues to a pod's service account."""
    return f"{serviceaccount}.{namespace}.{IDENTITY_SUFFIX}"


def classify(status: int, grpc_status: int | None, error: str | None) -> bool:
    """True when the proxy counts the response as a failure (legacy classifier)."""
    if error:
        return True
    if grpc_status is not None:
        return grpc_status in GRPC_FAILURES
    return 500 <= status <= 599


def render_labels(items: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in items)


class HttpStats:
    """Request/response counters and latency histograms for one endpoint label set."""

    __slots__ = ("items", "requests", "responses", "latency", "_keys")

    def __init__(self, items: tuple[tuple[str, str], ...]):
        self.items = items  # endpoint labels, in Linkerd's emission order
        self.requests = 0
        self.responses: dict[tuple[int, int | None, str, bool], int] = {}
        self.latency: dict[int, list[int]] = {}  # status → 26 bucket counts (not cumulative), sum, count
        self._keys: dict = {}

    def record(self, status: int, grpc_status: int | None, error: str, failed: bool, latency_ms: float) -> None:
        self.requests += 1
        key = (status, grpc_status, error, failed)
        responses = self.responses
        responses[key] = responses.get(key, 0) + 1
        hist = self.latency.get(status)
        if hist is None:
            hist = self.latency[status] = [0] * (_N_BUCKETS + 2)
        ms = int(latency_ms)  # the proxy records whole milliseconds
        hist[bisect_left(LATENCY_BOUNDS, ms)] += 1
        hist[_SUM] += ms
        hist[_COUNT] += 1

    def samples(self, prefix: str = "", with_latency: bool = True) -> Iterator[tuple[str, tuple, float]]:
        """(metric name, label items, value) for every series, in exposition order."""
        items = self.items
        yield f"{prefix}request_total", items, self.requests
        if with_latency:
            for status in sorted(self.latency):
                hist = self.latency[status]
                base = items + (("status_code", str(status)),)
                cumulative = 0
                for i, le in enumerate(LE):
                    cumulative += hist[i]
                    yield f"{prefix}response_latency_ms_bucket", base + (("le", le),), cumulative
                yield f"{prefix}response_latency_ms_count", base, hist[_COUNT]
                yield f"{prefix}response_latency_ms_sum", base, hist[_SUM]
        for (status, grpc, error, failed), count in sorted(self.responses.items(), key=_response_order):
            yield f"{prefix}response_total", items + (
                ("status_code", str(status)),
                ("classification", "failure" if failed else "success"),
                ("grpc_status", "" if grpc is None else str(grpc)),
                ("error", error),
            ), count


def _response_order(item):
    (status, grpc, error, failed), _ = item
    return (status, -1 if grpc is None else grpc, error, failed)


class TcpStats:
    """Connection counters for one transport label set."""

    __slots__ = ("items", "opened", "open", "read", "written")

    def __init__(self, items: tuple[tuple[str, str], ...]):
        self.items = items
        self.opened = 0
        self.open = 0
        self.read = 0
        self.written = 0

    def samples(self) -> Iterator[tuple[str, tuple, float]]:
        yield "tcp_open_total", self.items, self.opened
        yield "tcp_open_connections", self.items, self.open
        yield "tcp_read_bytes_total", self.items, self.read
        yield "tcp_write_bytes_total", self.items, self.written


class Proxy:
    """One pod's ``linkerd-proxy``: its identity and every counter it keeps.

    ``inbound``/``outbound`` map a hashable endpoint key (chosen by the data
    plane) to :class:`HttpStats`; ``tcp`` does the same for connections;
    ``routes`` holds ServiceProfile per-route stats keyed by (direction, dst,
    route name) with their ``actual`` twins.
    """

    def __init__(self, pod_ip: str, namespace: str, serviceaccount: str, version: str, tap_enabled: bool):
        self.pod_ip = pod_ip
        self.namespace = namespace
        self.identity = identity(serviceaccount, namespace)
        self.version = version
        self.tap_enabled = tap_enabled
        self.inbound: dict = {}
        self.outbound: dict = {}
        self.tcp: dict = {}
        self.routes: dict = {}
        self.actual_routes: dict = {}
        self.route_metrics: dict = {}  # (parent ns, name, port, route identity) → RouteMetrics (2.16+ client policy)
        self.denied: dict = {}         # (authz deny family, labels) → requests refused by authorization policy
        self.taps: list = []  # active tap sessions watching this proxy

    def stats(self, table: dict, key, items_fn) -> HttpStats:
        """The stats for ``key`` in ``table``, created with labels ``items_fn()`` on first use."""
        stats = table.get(key)
        if stats is None:
            stats = table[key] = HttpStats(items_fn())
        return stats

    def tcp_stats(self, key, items_fn) -> TcpStats:
        stats = self.tcp.get(key)
        if stats is None:
            stats = self.tcp[key] = TcpStats(items_fn())
        return stats

    def route(self, key, items_fn, grpc: bool = False):
        """The 2.16+ route metrics for ``key`` (parent and route), created with labels ``items_fn()`` on first use."""
        rm = self.route_metrics.get(key)
        if rm is None:
            from labkit.sim.linkerd.route_metrics import RouteMetrics

            rm = self.route_metrics[key] = RouteMetrics(items_fn(), grpc)
        return rm

    def registry_samples(self) -> Iterator[tuple[str, str, tuple, float]]:
        """The ``prometheus_client`` registry's series: (family, sample name, labels, value)."""
        from labkit.sim.linkerd import route_metrics

        families: dict[str, list] = {}
        for rm in self.route_metrics.values():
            for family, name, items, value in rm.samples():
                families.setdefault(family, []).append((name, items, value))
        for family, name, items, value in route_metrics.inbound_samples(self.inbound.values(), self.denied):
            families.setdefault(family, []).append((name, items, value))
        for family, rows in families.items():
            for name, items, value in rows:
                yield family, name, items, value

    def samples(self) -> Iterator[tuple[str, tuple, float]]:
        """Every series this proxy exposes: the legacy families, then the registry's (2.16+)."""
        yield from self.legacy_samples()
        for _family, name, items, value in self.registry_samples():
            yield name, items, value

    def legacy_samples(self) -> Iterator[tuple[str, tuple, float]]:
        """Every legacy series this proxy exposes, grouped by metric family as the proxy prints them."""
        http = [*self.inbound.values(), *self.outbound.values()]
        families: dict[str, list] = {}
        for stats in http:
            for name, items, value in stats.samples():
                families.setdefault(name, []).append((items, value))
        for stats in self.routes.values():
            for name, items, value in stats.samples(prefix="route_"):
                families.setdefault(name, []).append((items, value))
        for stats in self.actual_routes.values():
            for name, items, value in stats.samples(prefix="route_actual_", with_latency=False):
                families.setdefault(name, []).append((items, value))
        for stats in self.tcp.values():
            for name, items, value in stats.samples():
                families.setdefault(name, []).append((items, value))
        for name in _FAMILY_ORDER:
            for items, value in families.get(name, ()):
                yield name, items, value


_FAMILY_ORDER = (
    "request_total",
    "response_latency_ms_bucket", "response_latency_ms_count", "response_latency_ms_sum",
    "response_total",
    "route_request_total",
    "route_response_latency_ms_bucket", "route_response_latency_ms_count", "route_response_latency_ms_sum",
    "route_response_total",
    "route_actual_request_total", "route_actual_response_total",
    "tcp_open_total", "tcp_open_connections", "tcp_read_bytes_total", "tcp_write_bytes_total",
)


def exposition(proxy: Proxy) -> str:
    """The proxy's ``/metrics`` body: the legacy section (text format 0.0.4), then the registry's, then ``# EOF``."""
    out: list[str] = []
    seen: set[str] = set()
    for name, items, value in proxy.legacy_samples():
        family = name
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix) and name[: -len(suffix)] in HELP:
                family = name[: -len(suffix)]
        if family not in seen:
            seen.add(family)
            kind, text = HELP[family]
            out.append(f"# HELP {family} {text}")
            out.append(f"# TYPE {family} {kind}")
        out.append(f"{name}{{{render_labels(items)}}} {int(value)}")
    from labkit.sim.linkerd.route_metrics import exposition_section

    out += exposition_section(proxy.registry_samples())
    out.append("# EOF")
    return "\n".join(out) + "\n"
