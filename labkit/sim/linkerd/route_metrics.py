"""The route metrics a Linkerd 2.20 proxy exports: ``outbound_{http,grpc}_route_*`` and ``inbound_*``.

Since Linkerd 2.16 the client proxy counts every request that goes through
*client policy* (an HTTPRoute / GRPCRoute attached to a Service, or the
default route when none is) per **route** and per **backend**
(reference: linkerd-2.20.md §3, linkerd-formats.md §1.6):

* per route, once per request, after retries and timeouts:
  ``request_statuses_total`` (``http_status`` or ``grpc_status`` by name,
  and ``error`` such as ``REQUEST_TIMEOUT``), ``request_duration_seconds``
  (buckets 0.05, 0.5, 1, 10) and the ``retry_{requests,successes,
  limit_exceeded,overflow}_total`` counters;
* per backend, once per attempt: ``backend_requests_total``,
  ``backend_response_statuses_total`` and ``backend_response_duration_seconds``
  (buckets 0.025 … 10).

Labels: ``parent_*`` (the Service and port the client addressed), ``route_*``
(``route_kind="default", route_name="http"`` when no route matched: the
policy controller's default route), ``hostname`` on route series, and
``backend_*`` on backend series. Traffic routed by a ServiceProfile gets the
legacy ``route_*`` metrics instead (``proxy.py``), as the real proxy does.

The inbound side's 2.20 series (``inbound_http_authz_{allow,deny}_total``,
``inbound_{http,grpc}_{requests,statuses}_total`` and durations) are read off
the legacy per-connection counters the proxy keeps anyway (same requests, same
statuses; the legacy latency bounds include 50, 500, 1000 and 10000 ms, so
the 2.20 buckets are exact), which keeps the per-request path as short as it was.

These families come from the proxy's ``prometheus_client`` registry, so they
print OpenMetrics-style after the legacy section (``# TYPE x counter`` then
``x_total``; histograms ``_sum``, ``_count``, then buckets) and end with ``# EOF``.
"""
from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate
from operator import attrgetter
from typing import Iterator

# proxy.py imports this module only inside functions
from labkit.sim.linkerd.proxy import LATENCY_BOUNDS, Batch, Layout, render_labels

#: Upper bounds (ms, inclusive) of the route request and backend response histograms.
ROUTE_BOUNDS_MS = (50, 500, 1000, 10000)
BACKEND_BOUNDS_MS = (25, 50, 100, 250, 500, 1000, 10000)
ROUTE_LE = ("0.05", "0.5", "1.0", "10.0", "+Inf")
BACKEND_LE = ("0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "10.0", "+Inf")
#: The inbound request/response duration buckets (seconds), and the legacy bound (ms) each equals.
INBOUND_REQUEST_LE = ("0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "10.0", "+Inf")
INBOUND_RESPONSE_LE = (("0.05", 50), ("0.5", 500), ("1.0", 1000), ("10.0", 10000), ("+Inf", None))

#: gRPC status codes as the route metrics name them (``metrics/labels.rs``).
GRPC_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
              "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
              "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")

#: ``error`` label values the proxy uses.
REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
RESPONSE_HEADERS_TIMEOUT = "RESPONSE_HEADERS_TIMEOUT"
RESPONSE_STREAM_TIMEOUT = "RESPONSE_STREAM_TIMEOUT"
IDLE_TIMEOUT = "IDLE_TIMEOUT"
FAIL_FAST = "FAIL_FAST"
LOAD_SHED = "LOAD_SHED"
REFUSED = "REFUSED"
RESET = "RESET"
UNKNOWN = "UNKNOWN"

HELP = {
    "request_duration_seconds": ("histogram", "The time between request initialization and response completion."),
    "request_statuses": ("counter", "Completed request-response streams."),
    "retry_requests": ("counter", "Retry requests emitted."),
    "retry_successes": ("counter", "Successful responses to retry requests."),
    "retry_limit_exceeded": ("counter", "Retryable requests not sent due to retry limits."),
    "retry_overflow": ("counter", "Retryable requests not sent due to circuit breakers."),
    "backend_requests": ("counter", "The total number of requests dispatched."),
    "backend_response_duration_seconds": ("histogram", "The time between request initialization and response completion."),
    "backend_response_statuses": ("counter", "Completed responses."),
}
INBOUND_HELP = {
    "requests": ("counter", "The total number of requests."),
    "statuses": ("counter", "Completed responses."),
    "request_duration_seconds": ("histogram", "The time between request initialization and request completion."),
    "response_duration_seconds": ("histogram", "The time between request initialization and response completion."),
}
AUTHZ_HELP = {
    "inbound_http_authz_allow": "The total number of inbound HTTP requests that were authorized",
    "inbound_http_authz_deny": "The total number of inbound HTTP requests that could not be processed due to a proxy error.",
    "inbound_tcp_authz_allow": "The total number of inbound TCP connections that were authorized",
    "inbound_tcp_authz_deny": "The total number of inbound TCP connections that were denied",
}


def error_label(status: int, error: str | None) -> str:
    """The ``error`` label of a response the proxy got (or failed to get) from an endpoint."""
    if not error and status >= 100:
        return ""
    text = (error or "").lower()
    if "refused" in text:
        return REFUSED
    if "reset" in text:
        return RESET
    if "no endpoints" in text:
        return FAIL_FAST
    return UNKNOWN


def parent_items(namespace: str, name: str, port: int) -> tuple:
    return (("parent_group", "core"), ("parent_kind", "Service"), ("parent_namespace", namespace),
            ("parent_name", name), ("parent_port", str(port)), ("parent_section_name", ""))


def route_items(group: str, kind: str, namespace: str, name: str) -> tuple:
    return (("route_group", group), ("route_kind", kind), ("route_namespace", namespace), ("route_name", name))


DEFAULT_HTTP_ROUTE = route_items("", "default", "", "http")


def backend_items(namespace: str, name: str, port: int | None) -> tuple:
    return (("backend_group", "core"), ("backend_kind", "Service"), ("backend_namespace", namespace),
            ("backend_name", name), ("backend_port", "" if port is None else str(port)), ("backend_section_name", ""))


class BackendMetrics:
    """One backend of one route: every attempt sent to it."""

    __slots__ = ("items", "statuses", "hist")

    def __init__(self, items: tuple):
        self.items = items
        self.statuses: dict = {}  # (status or grpc code, error) → count
        self.hist = [0] * (len(BACKEND_BOUNDS_MS) + 1) + [0.0]  # buckets, then sum (ms)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def record(self, status, error: str, ms: float) -> None:
        key = (status, error)
        statuses = self.statuses
        statuses[key] = statuses.get(key, 0) + 1
        hist = self.hist
        hist[bisect_left(BACKEND_BOUNDS_MS, ms)] += 1
        hist[-1] += ms


class RouteMetrics:
    """One route of one parent on a client proxy (``grpc``: the ``outbound_grpc_route_`` family).

    The default route's requests may wait uncounted (the data plane's common
    path appends what it needs of each response to a hop's pending list, see
    ``proxy.pending_entry``, and the route follows that list: :meth:`follow`)
    and are counted, in order, before anything reads or writes these series:
    the latency sums are floats, so counting in the order requests finished is
    what keeps them the same to the last digit.
    """

    __slots__ = ("items", "grpc", "statuses", "hist", "retry_requests", "retry_successes", "retry_limit_exceeded",
                 "retry_overflow", "retries_configured", "backends", "_default", "pending", "overheads", "source",
                 "_labels", "_layout")

    def __init__(self, items: tuple, grpc: bool = False):
        self.items = items  # parent_* + route_*
        self.grpc = grpc
        self.statuses: dict = {}
        self.hist = [0] * (len(ROUTE_BOUNDS_MS) + 1) + [0.0]
        self.retry_requests = self.retry_successes = self.retry_limit_exceeded = self.retry_overflow = 0
        self.retries_configured = False
        self.backends: dict = {}
        self._default: BackendMetrics | None = None
        # The responses on the default route not yet counted, as (flat list, start, end) segments of the pending
        # lists they were appended to (proxy.pending_entry), in order; the last one's end is None: it runs to
        # the end of the list the route follows (``source``), which grows with the route's next requests.
        self.pending: list = []
        self.source: list | None = None
        self.overheads: tuple = ()  # what the client proxy adds to a pending response's latency (ms)
        self._labels: dict = {}     # the series' label tuples, made once (see samples)
        self._layout = None         # the Layout of the last columns() call

    def record(self, status, error: str, ms: float) -> None:
        if self.pending:
            self.settle()
        key = (status, error)
        statuses = self.statuses
        statuses[key] = statuses.get(key, 0) + 1
        hist = self.hist
        hist[bisect_left(ROUTE_BOUNDS_MS, ms)] += 1
        hist[-1] += ms

    def default_backend(self, key, items_fn) -> BackendMetrics:
        """The default route's one backend (the parent Service), which :meth:`record_default` feeds."""
        self._default = b = self.backend(key, items_fn)
        return b

    def record_default(self, status, error: str, ms: float) -> None:
        """One request on the default route — one attempt to its one backend: both sets of series at once."""
        self.record(status, error, ms)
        key = (status, error)
        backend = self._default
        statuses = backend.statuses
        statuses[key] = statuses.get(key, 0) + 1
        hist = backend.hist
        hist[bisect_left(BACKEND_BOUNDS_MS, ms)] += 1
        hist[-1] += ms

    def follow(self, flat: list) -> bool:
        """The route's next pending responses are the ones appended to ``flat`` from now on (a hop's pending list:
        every response in it is this route's). Returns whether none were pending (the caller lists the route for
        settling). A client proxy spreading requests over endpoints switches lists at each change of endpoint;
        the common one-endpoint lane follows one list until it is counted."""
        segments = self.pending
        if segments:
            last, start, _ = segments[-1]
            segments[-1] = (last, start, len(last))  # the list followed so far gets no more of this route's
        segments.append((flat, len(flat), None))
        self.source = flat
        return len(segments) == 1

    def whole(self) -> list | None:
        """The pending list whose every response (and none other) is pending here, if there is one."""
        segments = self.pending
        if len(segments) == 1 and segments[0][1] == 0 and segments[0][2] is None:
            return segments[0][0]
        return None

    def settle(self, batch=None) -> None:
        """Count the pending default-route responses (as :meth:`record_default` would, one by one, in order);
        ``batch``: a :class:`~labkit.sim.linkerd.proxy.Batch` of :meth:`whole`, made already."""
        segments = self.pending
        if not segments:
            return
        self.pending = []
        self.source = None
        if batch is None:
            responses = []
            for flat, start, end in segments:
                responses += flat[start:end]
            batch = Batch(responses)
        keys: dict = {}
        for (status, _grpc, error), n in batch.classes.items():
            key = (status, "" if not error and status >= 100 else error_label(status, error))
            keys[key] = keys.get(key, 0) + n
        statuses, bstatuses = self.statuses, self._default.statuses
        for key, n in keys.items():
            statuses[key] = statuses.get(key, 0) + n
            bstatuses[key] = bstatuses.get(key, 0) + n
        ms = batch.shifted(self.overheads)  # the client proxy's figure (the outbound counters' too: made once)
        if isinstance(ms, list) or not _NESTED_BOUNDS:
            _add_histogram(self.hist, ROUTE_BOUNDS_MS, ms)
            _add_histogram(self._default.hist, BACKEND_BOUNDS_MS, ms)
        else:
            _add_route_and_backend(self.hist, self._default.hist, ms)

    def backend(self, key, items_fn) -> BackendMetrics:
        if self.pending:
            self.settle()  # a write to the default backend comes after the pending ones
        b = self.backends.get(key)
        if b is None:
            b = self.backends[key] = BackendMetrics(self.items + items_fn())
        return b

    # -- exposition -------------------------------------------------------------------------
    def _status_items(self, status, error: str) -> tuple:
        if self.grpc:
            # no status (a stream error before any): UNKNOWN, as ``status.unwrap_or(Code::Unknown)`` labels it
            name = GRPC_NAMES[status] if status is not None and 0 <= status < len(GRPC_NAMES) else "UNKNOWN"
            return (("grpc_status", name), ("error", error))
        return (("http_status", "" if status is None or status < 100 else str(status)), ("error", error))

    def samples(self) -> Iterator[tuple[str, tuple, float]]:
        """(family, sample name, labels, value) for this route and its backends (the same label tuples from one
        call to the next: the scraper recognises a series by its tuple's identity)."""
        if self.pending:
            self.settle()
        prefix = "outbound_grpc_route_" if self.grpc else "outbound_http_route_"
        route = self._row("route", lambda: self.items + (("hostname", ""),))
        fam = prefix + "request_duration_seconds"
        yield from _histogram(fam, route, self.hist, self._row(("le", None), lambda: _le_rows(route, ROUTE_LE)))
        fam = prefix + "request_statuses"
        for (status, error), n in sorted(self.statuses.items(), key=_status_order):
            yield fam, fam + "_total", self._row((None, status, error),
                                                 lambda: route + self._status_items(status, error)), n
        if self.retries_configured or self.retry_requests:
            for what in ("requests", "successes", "limit_exceeded", "overflow"):
                fam = f"{prefix}retry_{what}"
                yield fam, fam + "_total", self.items, getattr(self, f"retry_{what}")
        for b in self.backends.values():
            fam = prefix + "backend_requests"
            yield fam, fam + "_total", b.items, b.requests
            yield from _histogram(prefix + "backend_response_duration_seconds", b.items, b.hist,
                                  self._row(("le", b), lambda: _le_rows(b.items, BACKEND_LE)))
            fam = prefix + "backend_response_statuses"
            for (status, error), n in sorted(b.statuses.items(), key=_status_order):
                yield fam, fam + "_total", self._row((b, status, error),
                                                     lambda: b.items + self._status_items(status, error)), n

    def columns(self) -> tuple:
        """:meth:`samples` as ``(layout, values)`` (see ``proxy.HttpStats.columns``), in :meth:`samples`' order.
        The layout is kept while the status keys (compared as the dicts hold them), the retry series' presence
        and the backends (and theirs) stay the same."""
        if self.pending:
            self.settle()
        statuses = self.statuses
        retries = bool(self.retries_configured or self.retry_requests)
        layout = self._layout
        if layout is None or not self._still(layout.key, retries):
            layout = self._layout = self._make_layout(retries)
        order = layout.key[5]
        hist = self.hist
        values = [hist[-1] / 1000.0, sum(hist[:-1]), *accumulate(hist[:-1])]
        for key in order[0]:
            values.append(statuses[key])
        if retries:
            values += (self.retry_requests, self.retry_successes, self.retry_limit_exceeded, self.retry_overflow)
        for b, keys in zip(self.backends.values(), order[1]):
            bstatuses, bhist = b.statuses, b.hist
            values += (sum(bstatuses.values()), bhist[-1] / 1000.0, sum(bhist[:-1]), *accumulate(bhist[:-1]))
            for key in keys:
                values.append(bstatuses[key])
        return layout, values

    def _still(self, key: tuple, retries: bool) -> bool:
        """Whether a layout's key (see :meth:`_make_layout`) is what this route would make its layout from now."""
        items, grpc, had_retries, statuses, backends = key[:5]
        if (items is not self.items or grpc != self.grpc or had_retries != retries or statuses != list(self.statuses)
                or len(backends) != len(self.backends)):
            return False
        for (b, b_items, b_statuses), now in zip(backends, self.backends.values()):
            if b is not now or b_items is not now.items or b_statuses != list(now.statuses):
                return False
        return True

    def _make_layout(self, retries: bool):
        """The Layout of :meth:`columns` (as :meth:`samples` builds its rows); its key: what it was made from, as
        :meth:`_still` compares it (labels, gRPC, retry series, status keys as the dicts hold them, backends with
        theirs), then the status keys in exposition order (the route's, each backend's)."""
        backend_list = list(self.backends.values())
        keys = sorted(self.statuses, key=_status_key_order)
        backends = [(b, b.items, sorted(b.statuses, key=_status_key_order)) for b in backend_list]
        prefix = "outbound_grpc_route_" if self.grpc else "outbound_http_route_"
        rows: list = []  # (family, name, labels)
        route = self._row("route", lambda: self.items + (("hostname", ""),))
        _histogram_rows(rows, prefix + "request_duration_seconds", route,
                        self._row(("le", None), lambda: _le_rows(route, ROUTE_LE)))
        fam = prefix + "request_statuses"
        for status, error in keys:
            rows.append((fam, fam + "_total", self._row((None, status, error),
                                                        lambda: route + self._status_items(status, error))))
        if retries:
            for what in ("requests", "successes", "limit_exceeded", "overflow"):
                fam = f"{prefix}retry_{what}"
                rows.append((fam, fam + "_total", self.items))
        for b, items, bkeys in backends:
            fam = prefix + "backend_requests"
            rows.append((fam, fam + "_total", items))
            _histogram_rows(rows, prefix + "backend_response_duration_seconds", items,
                            self._row(("le", b), lambda: _le_rows(items, BACKEND_LE)))
            fam = prefix + "backend_response_statuses"
            for status, error in bkeys:
                rows.append((fam, fam + "_total", self._row((b, status, error),
                                                            lambda: items + self._status_items(status, error))))
        key = (self.items, self.grpc, retries, list(self.statuses),
               [(b, b.items, list(b.statuses)) for b in backend_list], (keys, [bkeys for _, _, bkeys in backends]))
        return Layout(key, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])

    def _row(self, key, make):
        """The label tuple for ``key``, made by ``make()`` the first time and the same object ever after."""
        row = self._labels.get(key)
        if row is None:
            row = self._labels[key] = make()
        return row


def _le_rows(items: tuple, les: tuple) -> tuple:
    return tuple(items + (("le", le),) for le in les)


def _add_histogram(hist: list, bounds: tuple, ms) -> None:
    """Add latencies ``ms`` (a list, or a numpy array) to ``hist`` (bucket counts, then the sum in ms). The sum
    adds them one at a time, in order, as per-request counting does (a pairwise sum could differ in the last bit)."""
    if isinstance(ms, list):
        total = hist[-1]
        for v in ms:
            hist[bisect_left(bounds, v)] += 1
            total += v
        hist[-1] = total
        return
    import numpy as np

    counts = np.bincount(np.searchsorted(_bounds_array(bounds), ms, side="left"), minlength=len(bounds) + 1)
    for i, c in enumerate(counts.tolist()):
        hist[i] += c
    hist[-1] = _running_sum(hist[-1], ms)


#: The route bucket of each backend bucket: when every route bound is a backend bound (they are), the backend
#: bucket a latency falls in says its route bucket (the bounds below it that are route bounds).
_NESTED_BOUNDS = set(ROUTE_BOUNDS_MS) <= set(BACKEND_BOUNDS_MS)
_ROUTE_OF_BACKEND = tuple(bisect_left(ROUTE_BOUNDS_MS, b) for b in BACKEND_BOUNDS_MS) + (len(ROUTE_BOUNDS_MS),)
_BOUNDS_ARRAYS: dict = {}


def _bounds_array(bounds: tuple):
    array = _BOUNDS_ARRAYS.get(bounds)
    if array is None:
        import numpy as np

        array = _BOUNDS_ARRAYS[bounds] = np.asarray(bounds, dtype=np.float64)
    return array


def _add_route_and_backend(route: list, backend: list, ms) -> None:
    """:func:`_add_histogram` of the numpy array ``ms`` to a route's histogram and to its default backend's,
    with one search (the route buckets follow from the backend ones) and, when both sums stand at the same
    double, one running sum."""
    import numpy as np

    counts = np.bincount(np.searchsorted(_bounds_array(BACKEND_BOUNDS_MS), ms, side="left"),
                         minlength=len(BACKEND_BOUNDS_MS) + 1).tolist()
    for i, c in enumerate(counts):
        if c:
            backend[i] += c
            route[_ROUTE_OF_BACKEND[i]] += c
    start = route[-1]
    total = _running_sum(start, ms)
    route[-1] = total
    other = backend[-1]
    same = other == start and math.copysign(1.0, other) == math.copysign(1.0, start)
    backend[-1] = total if same else _running_sum(other, ms)


def _running_sum(start: float, ms) -> float:
    """``start + ms[0] + ms[1] + …`` left to right, as counting one at a time adds (a pairwise sum could differ
    in the last bit)."""
    import numpy as np

    return float(np.add.accumulate(np.concatenate(([start], ms)))[-1])


def _status_key_order(key) -> tuple:
    """The exposition order of status keys ``(status or None, error)``."""
    status, error = key
    return (-1 if status is None else status, error)


def _status_order(item) -> tuple:
    """:func:`_status_key_order` of a ``(key, count)`` item (keys are unique: the same order)."""
    return _status_key_order(item[0])


def _histogram_rows(rows: list, family: str, items: tuple, le_rows: tuple) -> None:
    """The (family, name, labels) rows of :func:`_histogram`'s samples, in its order."""
    rows.append((family, family + "_sum", items))
    rows.append((family, family + "_count", items))
    rows += [(family, family + "_bucket", row) for row in le_rows]


def _histogram(family: str, items: tuple, hist: list, rows: tuple) -> Iterator[tuple]:
    """A prometheus_client histogram: ``_sum`` (seconds), ``_count``, then cumulative buckets (labels ``rows``:
    ``items`` and each bucket's ``le``, see :func:`_le_rows`)."""
    count = sum(hist[:-1])
    yield family, family + "_sum", items, hist[-1] / 1000.0
    yield family, family + "_count", items, count
    cumulative = 0
    for i, row in enumerate(rows):
        cumulative += hist[i]
        yield family, family + "_bucket", row, cumulative


# ----------------------------------------------------------------------------- the inbound side, 2.20

_AUTHZ_LABELS = ("target_addr", "target_ip", "target_port", "srv_group", "srv_kind", "srv_name", "srv_port",
                 "route_group", "route_kind", "route_name", "authz_group", "authz_kind", "authz_name", "tls")


def _inbound_labels(stats) -> tuple:
    """(the ``inbound_http_authz_allow`` labels, the route key without its gRPC flag) of one ``HttpStats``."""
    d = dict(stats.items)
    g = d.get
    authz = tuple((k, g(k, "")) for k in _AUTHZ_LABELS)
    if "client_id" in d:
        authz += (("client_id", d["client_id"]),)
    elif "no_tls_reason" in d:
        authz += (("no_tls_reason", d["no_tls_reason"]),)
    route = (("parent_group", g("srv_group", "")), ("parent_kind", g("srv_kind", "")),
             ("parent_name", g("srv_name", "")), ("parent_port", g("srv_port", "")),
             ("route_group", g("route_group", "")), ("route_kind", g("route_kind", "")),
             ("route_name", g("route_name", "")))
    return authz, route


class _RouteLabels:
    """The label tuples of one inbound route's series, built once (the scraper recognises them by identity)."""

    __slots__ = ("labels", "statuses", "request_le", "response_le")

    def __init__(self, labels: tuple):
        self.labels = labels
        self.statuses: dict = {}  # status → labels + status
        self.request_le = [labels + (("le", le),) for le in INBOUND_REQUEST_LE]
        self.response_le = [labels + (("le", le),) for le, _ in INBOUND_RESPONSE_LE]

    def status(self, status) -> tuple:
        row = self.statuses.get(status)
        if row is None:
            row = self.statuses[status] = self.labels + (("status", str(status)),)
        return row


def inbound_samples(inbound_stats, denied: dict, cache: dict | None = None) -> Iterator[tuple]:
    """The 2.20 inbound families, read off the legacy inbound counters (``HttpStats`` per connection labels).

    ``denied`` maps (family, label set without authz_*) to the requests (or
    connections) the proxy refused (authorization policy). ``cache`` (the
    proxy's, kept between calls) holds the label tuples made for each stats
    and route, so that every call hands out the same tuples for the same series.
    """
    cache = {} if cache is None else cache
    allow: list = []
    by_route: dict = {}
    for stats in inbound_stats:
        cached = cache.get(stats)
        if cached is None:
            cached = cache[stats] = _inbound_labels(stats)
        authz, route = cached
        requests = stats.requests
        allow.append((authz, requests))
        responses = stats.responses
        key = (any(g is not None for (_, g, _, _) in responses), route)
        agg = by_route.get(key)
        if agg is None:
            agg = by_route[key] = {"requests": 0, "statuses": {}, "latency": None}
        agg["requests"] += requests
        for (status, _grpc, _error, _failed), n in responses.items():
            agg["statuses"][status] = agg["statuses"].get(status, 0) + n
        for hist in stats.latency.values():
            if agg["latency"] is None:
                agg["latency"] = [0] * len(hist)
            agg["latency"] = [a + b for a, b in zip(agg["latency"], hist)]
    for authz, n in sorted(allow):
        yield "inbound_http_authz_allow", "inbound_http_authz_allow_total", authz, n
    for (family, labels), n in sorted(denied.items()):
        yield family, family + "_total", labels, n
    for key in sorted(by_route):
        grpc, route = key
        names = _INBOUND_NAMES[grpc]
        rows = cache.get(route)
        if rows is None:
            rows = cache[route] = _RouteLabels(route)
        labels = rows.labels
        agg = by_route[key]
        yield names[0], names[1], labels, agg["requests"]
        for status, n in sorted(agg["statuses"].items()):
            yield names[2], names[3], rows.status(status), n
        total = agg["requests"]
        fam = names[4]  # bodies stream at once in the model: all in the first bucket
        yield fam, names[5], labels, 0.0
        yield fam, names[6], labels, total
        for row in rows.request_le:
            yield fam, names[7], row, total
        lat = agg["latency"] or [0] * (len(LATENCY_BOUNDS) + 3)
        n_buckets = len(LATENCY_BOUNDS) + 1
        fam = names[8]
        yield fam, names[9], labels, lat[n_buckets] / 1000.0
        yield fam, names[10], labels, lat[n_buckets + 1]
        for (le, bound), row in zip(INBOUND_RESPONSE_LE, rows.response_le):
            upto = n_buckets if bound is None else LATENCY_BOUNDS.index(bound) + 1
            yield fam, names[11], row, sum(lat[:upto])


def inbound_columns(inbound_stats, denied: dict, cache: dict, previous=None) -> tuple:
    """:func:`inbound_samples` as ``(layout, values)`` (see ``proxy.HttpStats.columns``), in its order;
    ``previous``: the layout this returned last time for the same proxy, handed out again while the counters,
    their keys (``HttpStats.shape``) and the refused label sets are the ones it was made for."""
    members = list(inbound_stats)
    shapes = []
    for stats in members:
        if stats.settle is not None:
            stats.settle()
        shapes.append(stats.shape())
    refused = list(denied)
    layout = previous
    if (layout is None or layout.key.members != members or layout.key.shapes != shapes
            or layout.key.denied != refused):  # counters and shapes compare by identity
        layout = _inbound_layout(_InboundPlan(members, shapes, refused, cache), cache)
    plan = layout.key
    if plan.allow is not None:
        values = [stats._requests for stats in plan.allow]
    else:  # two counters with the same labels: sorted by their counts too, as the plain sort does
        values = [n for _, n in sorted(zip(plan.authz, map(_REQUESTS, members)))]
    for key in plan.refused:
        values.append(denied[key])
    for route in plan.routes:
        if route.single is not None:  # one counter, one response key per status (small loops: cheaper than map)
            stats = route.members[0]
            requests = stats._requests
            values.append(requests)
            responses = stats._responses
            for key in route.single:
                values.append(responses[key])
            hists = list(stats._latency.values())
        else:
            requests = sum(map(_REQUESTS, route.members))
            values.append(requests)
            counts: dict = {}
            for stats in route.members:
                for key, n in stats._responses.items():
                    counts[key[0]] = counts.get(key[0], 0) + n
            values += map(counts.__getitem__, route.statuses)
            hists = [hist for stats in route.members for hist in stats._latency.values()]
        values.append(0.0)
        values += [requests] * (len(INBOUND_REQUEST_LE) + 1)  # the request duration's count and buckets
        lat = hists[0] if len(hists) == 1 else list(map(sum, zip(*hists))) if hists else _NO_LATENCY
        values.append(lat[_N_LEGACY_BUCKETS] / 1000.0)
        values.append(lat[_N_LEGACY_BUCKETS + 1])
        total = 0
        for segment in _RESPONSE_SEGMENTS:  # each bucket: the one before plus the legacy buckets between
            total += sum(lat[segment])
            values.append(total)
    return layout, values


class _InboundRoute:
    """One inbound route's counters (``members``), its statuses, and — when one counter has one response key
    per status — those keys in status order (``single``), whose counts are the route's."""

    __slots__ = ("key", "members", "statuses", "single")

    def __init__(self, key: tuple, members: list, shapes: list):
        self.key, self.members = key, members
        self.statuses = sorted({response[0] for shape in shapes for response in shape.responses})
        self.single = None
        if len(members) == 1:
            by_status = {response[0]: response for response in shapes[0].responses}
            if len(by_status) == len(shapes[0].responses):
                self.single = [by_status[status] for status in self.statuses]


class _InboundPlan:
    """How :func:`inbound_columns` reads a proxy's inbound counters into values, made from the counters, their
    shapes and the refused label sets (``members``, ``shapes``, ``denied``) alone: the allowed label sets in
    order (and the counters in that order, ``allow``, unless two share labels), the refused label sets in
    order, the routes in order."""

    __slots__ = ("members", "shapes", "denied", "authz", "allow", "refused", "routes")

    def __init__(self, members: list, shapes: list, refused: list, cache: dict):
        self.members, self.shapes, self.denied = members, shapes, refused
        self.authz = []
        groups: dict = {}
        for stats, shape in zip(members, shapes):
            cached = cache.get(stats)
            if cached is None:
                cached = cache[stats] = _inbound_labels(stats)
            self.authz.append(cached[0])
            group = groups.get((shape.grpc, cached[1]))
            if group is None:
                group = groups[(shape.grpc, cached[1])] = ([], [])
            group[0].append(stats)
            group[1].append(shape)
        order = sorted(range(len(members)), key=self.authz.__getitem__)
        distinct = all(self.authz[a] != self.authz[b] for a, b in zip(order, order[1:]))
        self.allow = [members[i] for i in order] if distinct else None
        self.refused = sorted(refused)
        self.routes = [_InboundRoute(key, *groups[key]) for key in sorted(groups)]


_REQUESTS = attrgetter("_requests")


def _inbound_layout(plan: _InboundPlan, cache: dict):
    """The Layout of :func:`inbound_columns` for a plan (key: the counters, shapes and refused label sets it was
    made for, and the plan), from the plan alone."""
    rows: list = [("inbound_http_authz_allow", "inbound_http_authz_allow_total", authz)
                  for authz in sorted(plan.authz)]
    rows += [(family, family + "_total", labels) for family, labels in plan.refused]
    for route in plan.routes:
        grpc, labels_key = route.key
        names = _INBOUND_NAMES[grpc]
        labels = cache.get(labels_key)
        if labels is None:
            labels = cache[labels_key] = _RouteLabels(labels_key)
        rows.append((names[0], names[1], labels.labels))
        rows += [(names[2], names[3], labels.status(status)) for status in route.statuses]
        rows += [(names[4], names[5], labels.labels), (names[4], names[6], labels.labels)]
        rows += [(names[4], names[7], row) for row in labels.request_le]
        rows += [(names[8], names[9], labels.labels), (names[8], names[10], labels.labels)]
        rows += [(names[8], names[11], row) for row in labels.response_le]
    return Layout(plan, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def _inbound_names(prefix: str) -> tuple:
    req, rsp = prefix + "request_duration_seconds", prefix + "response_duration_seconds"
    return (prefix + "requests", prefix + "requests_total", prefix + "statuses", prefix + "statuses_total",
            req, req + "_sum", req + "_count", req + "_bucket", rsp, rsp + "_sum", rsp + "_count", rsp + "_bucket")


_INBOUND_NAMES = {False: _inbound_names("inbound_http_"), True: _inbound_names("inbound_grpc_")}


#: The legacy histogram's bucket count (its bounds and +Inf; the sum and count follow), and how many of its
#: buckets each inbound response-duration bucket adds up (the legacy bounds include the 2.20 ones).
_N_LEGACY_BUCKETS = len(LATENCY_BOUNDS) + 1
_INBOUND_RESPONSE_UPTO = tuple(_N_LEGACY_BUCKETS if bound is None else LATENCY_BOUNDS.index(bound) + 1
                               for _le, bound in INBOUND_RESPONSE_LE)
_NO_LATENCY = [0] * (_N_LEGACY_BUCKETS + 2)
#: The legacy buckets each of those adds to the one before (int sums: no running sum of every bucket made).
_RESPONSE_SEGMENTS = tuple(slice(a, b) for a, b in zip((0,) + _INBOUND_RESPONSE_UPTO, _INBOUND_RESPONSE_UPTO))


def exposition_section(samples) -> list[str]:
    """OpenMetrics-style lines (``# HELP``/``# TYPE`` once per family) for ``(family, name, labels, value)``."""
    out: list[str] = []
    seen: set[str] = set()
    for family, name, items, value in samples:
        if family not in seen:
            seen.add(family)
            kind, text = _help(family)
            out.append(f"# HELP {family} {text}")
            out.append(f"# TYPE {family} {kind}")
            if family.endswith("_seconds"):
                out.append(f"# UNIT {family} seconds")
        out.append(f"{name}{{{render_labels(items)}}} {_number(value)}")
    return out


def _help(family: str) -> tuple[str, str]:
    if family in AUTHZ_HELP:
        return "counter", AUTHZ_HELP[family]
    for prefix, table in (("outbound_http_route_", HELP), ("outbound_grpc_route_", HELP),
                          ("inbound_http_", INBOUND_HELP), ("inbound_grpc_", INBOUND_HELP)):
        if family.startswith(prefix) and family[len(prefix):] in table:
            return table[family[len(prefix):]]
    return "unknown", ""


def _number(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    if isinstance(value, float):
        return repr(value)  # dtoa prints sums as floats: 0.0, 12.5
    return str(int(value))
