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

import struct
from bisect import bisect_left
from collections import Counter
from itertools import accumulate, chain, repeat
from operator import itemgetter
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


class Layout:
    """The series one counter exposes, in order: names, label tuples and metric families.

    A scrape reads each counter as ``(layout, values)`` (``HttpStats.columns`` and the like; a whole proxy in
    :meth:`Proxy.scrape_columns`): while the series stay the same, the layout is the same *object*, so the
    scraper can tell with one identity check that the values belong to the series it resolved last time.
    ``key`` is everything the series were derived from; a counter compares what it would derive now with it
    before it hands out the old layout, so a layout never outlives what it describes. Never mutated, never
    compared but by identity.
    """

    __slots__ = ("key", "families", "names", "labels")

    def __init__(self, key, families: list, names: list, labels: list):
        self.key, self.families, self.names, self.labels = key, families, names, labels


class HttpStats:
    """Request/response counters and latency histograms for one endpoint label set.

    Counts arrive two ways: :meth:`record`, one request at a time, and
    :meth:`record_batch`, many at once — the data plane's common path keeps
    the responses of a connection in a list and counts them when someone reads
    (``settle``, called before every read). Every counter here is an integer,
    so the order in which requests are counted never shows.
    """

    __slots__ = ("items", "_requests", "_responses", "_latency", "settle", "_labels", "_shape")

    def __init__(self, items: tuple[tuple[str, str], ...], settle=None):
        self.items = items  # endpoint labels, in Linkerd's emission order
        self._requests = 0
        self._responses: dict[tuple[int, int | None, str, bool], int] = {}
        self._latency: dict[int, list[int]] = {}  # status → 26 bucket counts (not cumulative), sum, count
        self.settle = settle  # counts the requests still pending (the data plane's), or None
        self._labels: dict = {}  # status or response key → its series' label tuples (see samples)
        self._shape: HttpShape | None = None  # see shape()

    @property
    def requests(self) -> int:
        if self.settle is not None:
            self.settle()
        return self._requests

    @property
    def responses(self) -> dict:
        """(status, grpc status, error, failed) → count."""
        if self.settle is not None:
            self.settle()
        return self._responses

    @property
    def latency(self) -> dict:
        if self.settle is not None:
            self.settle()
        return self._latency

    def record(self, status: int, grpc_status: int | None, error: str, failed: bool, latency_ms: float) -> None:
        self._requests += 1
        key = (status, grpc_status, error, failed)
        responses = self._responses
        responses[key] = responses.get(key, 0) + 1
        hist = self._latency.get(status)
        if hist is None:
            hist = self._latency[status] = [0] * (_N_BUCKETS + 2)
        ms = int(latency_ms)  # the proxy records whole milliseconds
        hist[bisect_left(LATENCY_BOUNDS, ms)] += 1
        hist[_SUM] += ms
        hist[_COUNT] += 1

    def record_batch(self, batch: "Batch", overheads: tuple[float, ...], latencies: list | None = None) -> None:
        """Count a :class:`Batch` of responses as :meth:`record` would count each one, classified by the
        default classifier, with latency ``latency_ms + overheads[0] + overheads[1] + …``. With ``latencies``
        (a list), the latency histograms' part joins it instead, for :func:`record_latencies` to count with
        other counters' in one pass."""
        self._requests += batch.n
        table = self._responses
        for (status, grpc, error), k in batch.classes.items():
            key = (status, grpc, error, classify(status, grpc, error))
            table[key] = table.get(key, 0) + k
        if latencies is None:
            record_latencies([(self, batch, overheads)])
        else:
            latencies.append((self, batch, overheads))

    def samples(self, prefix: str = "", with_latency: bool = True) -> list[tuple[str, tuple, float]]:
        """(metric name, label items, value) for every series, in exposition order.

        The names and label tuples are the same objects from one call to the next (built once per series),
        which is what lets the scraper recognise a series without hashing its labels.
        """
        if self.settle is not None:
            self.settle()
        names = _names(prefix)
        out = [(names[0], self.items, self._requests)]
        if with_latency:
            bucket_name = names[1]
            for status in sorted(self._latency):
                hist = self._latency[status]
                base, buckets = self._status_labels(status)
                out += zip(repeat(bucket_name), buckets, accumulate(hist[:_N_BUCKETS]))
                out.append((names[2], base, hist[_COUNT]))
                out.append((names[3], base, hist[_SUM]))
        for key, count in sorted(self._responses.items(), key=_response_order):
            out.append((names[4], self._response_labels(key), count))
        return out

    def _status_labels(self, status: int) -> tuple:
        """(the labels of a latency status's count and sum, those of its buckets), built once per status."""
        cached = self._labels.get(status)
        if cached is None:
            base = self.items + (("status_code", str(status)),)
            cached = self._labels[status] = (base, tuple(base + (("le", le),) for le in LE))
        return cached

    def _response_labels(self, key: tuple) -> tuple:
        """The labels of a response total for ``(status, grpc status, error, failed)``, built once per key."""
        row = self._labels.get(key)
        if row is None:
            status, grpc, error, failed = key
            row = self._labels[key] = self.items + (
                ("status_code", str(status)),
                ("classification", "failure" if failed else "success"),
                ("grpc_status", "" if grpc is None else str(grpc)),
                ("error", error),
            )
        return row

    def shape(self) -> "HttpShape":
        """The keys this counter's series derive from (see :class:`HttpShape`): the same object while they stay
        the same. Compared in insertion order, at C speed: equal lists of keys sort the same."""
        latency, responses = list(self._latency), list(self._responses)
        shape = self._shape
        if shape is None or shape.responses != responses or shape.latency != latency:
            shape = self._shape = HttpShape(latency, responses)
        return shape

    def columns(self, prefix: str = "", with_latency: bool = True) -> tuple[Layout, list]:
        """:meth:`samples` as ``(layout, values)``: the same series, grouped by name (request total, latency
        buckets, counts, sums, response totals; each group in :meth:`samples`' order), values only."""
        if self.settle is not None:
            self.settle()
        shape = self.shape()
        layouts = shape.layouts
        layout = layouts.get(prefix if with_latency else (prefix,))
        if layout is None or layout.key is not self.items:
            layout = layouts[prefix if with_latency else (prefix,)] = self._layout(
                prefix, shape.statuses if with_latency else [], shape.keys)
        statuses = shape.statuses if with_latency else ()
        if len(statuses) == 1:  # the usual case, spelled out: small collections cost more through map()
            hist = self._latency[statuses[0]]
            values = [self._requests, *accumulate(hist[:_N_BUCKETS]), hist[_COUNT], hist[_SUM]]
        else:
            values = [self._requests]
            if statuses:
                hists = list(map(self._latency.__getitem__, statuses))
                values += chain.from_iterable(map(accumulate, map(_BUCKETS, hists)))
                values += map(_COUNT_OF, hists)
                values += map(_SUM_OF, hists)
        responses = self._responses
        for key in shape.keys:
            values.append(responses[key])
        return layout, values

    def _layout(self, prefix: str, statuses: list, keys: list) -> Layout:
        """The Layout of :meth:`columns` for these latency statuses and response keys (sorted), from them alone."""
        names = _names(prefix)
        items = self.items
        rows = [(names[0], items)]
        bases = []
        for status in statuses:
            base, buckets = self._status_labels(status)
            bases.append(base)
            rows += zip(repeat(names[1]), buckets)
        rows += zip(repeat(names[2]), bases)
        rows += zip(repeat(names[3]), bases)
        for key in keys:
            rows.append((names[4], self._response_labels(key)))
        names_ = [name for name, _ in rows]
        return Layout(items, names_, names_, [row for _, row in rows])


class HttpShape:
    """What an :class:`HttpStats`' series derive from: its latency statuses and response keys, as its dicts
    hold them (``latency``, ``responses``: what :meth:`HttpStats.shape` compares) and sorted as they are
    exposed (``statuses``, ``keys``), whether any response had a gRPC status, and the layouts made from it."""

    __slots__ = ("latency", "responses", "statuses", "keys", "grpc", "layouts")

    def __init__(self, latency: list, responses: list):
        self.latency, self.responses = latency, responses
        self.statuses = sorted(latency)
        self.keys = sorted(responses, key=_response_key_order)
        self.grpc = any(grpc is not None for _, grpc, _, _ in responses)
        self.layouts: dict = {}  # prefix (a 1-tuple: without latency) → Layout


_BUCKETS = itemgetter(slice(0, _N_BUCKETS))
_COUNT_OF, _SUM_OF = itemgetter(_COUNT), itemgetter(_SUM)


_NAMES: dict[str, tuple[str, ...]] = {}


def _names(prefix: str) -> tuple[str, ...]:
    """The five sample names of an HttpStats under ``prefix`` (built once: the scraper hashes them)."""
    names = _NAMES.get(prefix)
    if names is None:
        names = _NAMES[prefix] = tuple(prefix + n for n in (
            "request_total", "response_latency_ms_bucket", "response_latency_ms_count", "response_latency_ms_sum",
            "response_total"))
    return names


#: Above this many responses a :class:`Batch` keeps latencies in a numpy array (below, its call overhead costs more).
BATCH_NUMPY = 48


#: The fields of one pending response, in a flat list (see :class:`Batch`).
PENDING_FIELDS = 5  # status, grpc_status, error, latency_ms, length


def pending_entry(response) -> tuple:
    """What a :class:`Batch` needs of one response, to append to a flat pending list (``list += entry``): the
    values themselves, so nothing but numbers and strings outlives the request (no garbage for the collector)."""
    return (response.status, response.grpc_status, response.error, response.latency_ms, response.length)


def _count(column: list) -> dict:
    """value → occurrences: one C-speed ``count`` per distinct value when there are few (the usual case)."""
    distinct = set(column)
    if len(distinct) <= 4:
        return {v: column.count(v) for v in distinct}
    return dict(Counter(column))


class Batch:
    """Responses to count at once, from a flat pending list (:func:`pending_entry` after another), summarized in
    a few passes that run at C speed.

    ``classes`` maps (status, gRPC status, error or "") to how many responses
    had them; ``latency`` holds each ``latency_ms`` in order (a list, or a numpy
    array of the same doubles for a long batch), for the counters to add their
    overheads to and bucket, as counting one by one would; ``length`` is the
    sum of the response bodies' bytes.
    """

    __slots__ = ("n", "classes", "statuses", "latency", "length", "_shifted", "_groups")

    def __init__(self, flat: list):
        self._groups: list | None = None  # (status, which responses had it), made once (see by_status)
        statuses = flat[0::PENDING_FIELDS]
        grpcs = flat[1::PENDING_FIELDS]
        errors = flat[2::PENDING_FIELDS]
        n = self.n = len(statuses)
        s0, g0 = statuses[0], grpcs[0]
        same_status = statuses.count(s0) == n
        none = errors.count(None)
        if none == n or none + errors.count("") == n:
            # No errors (the common case): count one column when the other is the same throughout.
            if grpcs.count(g0) == n:
                if same_status:
                    classes = {(s0, g0, ""): n}
                else:
                    classes = {(s, g0, ""): k for s, k in self._count_statuses(statuses).items()}
            elif same_status:
                classes = {(s0, g, ""): k for g, k in _count(grpcs).items()}
            else:
                classes = {(s, g, ""): k for (s, g), k in Counter(zip(statuses, grpcs)).items()}
        else:
            classes = dict(Counter(zip(statuses, grpcs, [e or "" for e in errors])))
        self.classes = classes
        self.statuses = None if same_status else statuses
        latency = flat[3::PENDING_FIELDS]
        if n >= BATCH_NUMPY:
            import numpy as np

            latency = np.frombuffer(struct.pack(f"{n}d", *latency), dtype=np.float64)  # faster than np.array
        self.latency = latency
        self.length = sum(flat[4::PENDING_FIELDS])
        self._shifted: dict = {}

    def _count_statuses(self, statuses: list) -> dict:
        """:func:`_count` of a long status column, in numpy: packed once (by_status groups by the same column),
        then counted with ``bincount``; each status keyed by its first occurrence, as a set would keep it."""
        if len(statuses) < BATCH_NUMPY:
            return _count(statuses)
        import numpy as np

        try:
            column = _int_column(statuses)
        except struct.error:
            return _count(statuses)
        if column.min() < 0 or column.max() > 0xFFFF:
            return _count(statuses)
        counts = np.bincount(column)
        present = np.flatnonzero(counts).tolist()
        self._groups = [(statuses[statuses.index(status)], column == status) for status in present]
        return {status: k for (status, _), k in zip(self._groups, counts[present].tolist())}

    def shifted(self, overheads: tuple[float, ...]):
        """``latency + overheads[0] + overheads[1] + …``, added one at a time in that order as for a single
        response (so the doubles are the same), made once per ``overheads`` (from the shortest prefix already
        made) for every counter that needs them. Shared: not to be changed."""
        if not overheads:
            return self.latency
        values = self._shifted.get(overheads)
        if values is None:
            values = self.shifted(overheads[:-1])
            extra = overheads[-1]
            values = [v + extra for v in values] if isinstance(values, list) else values + extra
            self._shifted[overheads] = values
        return values

    def by_status(self, overheads: tuple[float, ...] = ()):
        """(status, the latencies of the responses with that status, :meth:`shifted` by ``overheads``)."""
        latency = self.shifted(overheads)
        if self.statuses is None:
            status = next(iter(self.classes))[0]
            return [(status, latency)]
        groups = self._groups
        if isinstance(latency, list):
            if groups is None:
                by: dict = {}
                for i, status in enumerate(self.statuses):
                    group = by.get(status)
                    if group is None:
                        group = by[status] = []
                    group.append(i)
                groups = self._groups = list(by.items())
            return [(status, [latency[i] for i in positions]) for status, positions in groups]
        if groups is None:
            column = _int_column(self.statuses)
            groups = self._groups = [(status, column == status) for status in {s for s, _, _ in self.classes}]
        return [(status, latency[mask]) for status, mask in groups]


def _int_column(values: list):
    """A list of ints as an int64 numpy array (packed: faster than ``np.array``); struct.error past int64."""
    import numpy as np

    return np.frombuffer(struct.pack(f"{len(values)}q", *values), dtype=np.int64)


def record_latencies(items: list) -> None:
    """The latency histograms' part of :meth:`HttpStats.record_batch` for every ``(stats, batch, overheads)`` in
    ``items``: whole milliseconds bucketed and summed for all of them in one numpy pass (short batches one by
    one). Each histogram adds integers, so counting them together counts what counting each does."""
    rows: list = []  # histograms that get a numpy group of latencies
    groups: list = []
    for stats, batch, overheads in items:
        for status, values in batch.by_status(overheads):
            hist = stats._latency.get(status)
            if hist is None:
                hist = stats._latency[status] = [0] * (_N_BUCKETS + 2)
            if isinstance(values, list):
                total = 0
                for v in values:
                    ms = int(v)  # the proxy records whole milliseconds
                    hist[bisect_left(LATENCY_BOUNDS, ms)] += 1
                    total += ms
                hist[_SUM] += total
                hist[_COUNT] += len(values)
            else:
                rows.append(hist)
                groups.append(values)
    if not rows:
        return
    import numpy as np

    lengths = list(map(len, groups))
    whole = (np.concatenate(groups) if len(groups) > 1 else groups[0]).astype(np.int64)  # truncated, as int() does
    # bisect_left(LATENCY_BOUNDS, ms) of every whole ms, looked up in a table from 0 to one past the last bound
    # (mode="clip": below 0 reads its first entry, 0; past its end, its last, the +Inf bucket), each group's
    # buckets counted in a range of its own
    buckets = _bucket_table().take(whole, mode="clip")
    if len(rows) > 1:
        buckets += np.repeat(np.arange(0, _N_BUCKETS * len(rows), _N_BUCKETS), lengths)
    counts = np.bincount(buckets, minlength=_N_BUCKETS * len(rows)).tolist()
    starts = [0, *accumulate(lengths[:-1])]
    totals = np.add.reduceat(whole, starts).tolist()  # no group is empty
    for i, hist in enumerate(rows):
        base = i * _N_BUCKETS
        for bucket in range(_N_BUCKETS):  # most buckets get nothing: adding 0 would still make a new int
            c = counts[base + bucket]
            if c:
                hist[bucket] += c
        hist[_SUM] += totals[i]
        hist[_COUNT] += lengths[i]


_BUCKET_TABLE: list = []


def _bucket_table():
    """``bisect_left(LATENCY_BOUNDS, ms)`` for every whole ms from 0 to one past the last bound."""
    if not _BUCKET_TABLE:
        import numpy as np

        table = np.searchsorted(np.array(LATENCY_BOUNDS, dtype=np.int64), np.arange(LATENCY_BOUNDS[-1] + 2),
                                side="left")
        _BUCKET_TABLE.append(table.astype(np.intp))
    return _BUCKET_TABLE[0]


def _response_key_order(key):
    """The exposition order of response keys ``(status, grpc status or None, error, failed)``."""
    status, grpc, error, failed = key
    return (status, -1 if grpc is None else grpc, error, failed)


def _response_order(item):
    """:func:`_response_key_order` of a ``(key, count)`` item (keys are unique: the same order)."""
    return _response_key_order(item[0])


class TcpStats:
    """Connection counters for one transport label set (bytes may be pending like :class:`HttpStats`' counts)."""

    __slots__ = ("items", "opened", "open", "_read", "_written", "settle", "_layout")

    def __init__(self, items: tuple[tuple[str, str], ...], settle=None):
        self.items = items
        self.opened = 0
        self.open = 0
        self._read = 0
        self._written = 0
        self.settle = settle
        self._layout: Layout | None = None

    @property
    def read(self) -> int:
        if self.settle is not None:
            self.settle()
        return self._read

    @property
    def written(self) -> int:
        if self.settle is not None:
            self.settle()
        return self._written

    def add_bytes(self, read: int, written: int) -> None:
        """Count bytes read and written (in any order: these are integers, so pending ones may come later)."""
        self._read += read
        self._written += written

    def samples(self) -> Iterator[tuple[str, tuple, float]]:
        if self.settle is not None:
            self.settle()
        yield "tcp_open_total", self.items, self.opened
        yield "tcp_open_connections", self.items, self.open
        yield "tcp_read_bytes_total", self.items, self._read
        yield "tcp_write_bytes_total", self.items, self._written

    def columns(self) -> tuple[Layout, list]:
        """:meth:`samples` as ``(layout, values)`` (see :meth:`HttpStats.columns`)."""
        if self.settle is not None:
            self.settle()
        layout = self._layout
        if layout is None or layout.key is not self.items:
            layout = self._layout = Layout(self.items, list(_TCP_NAMES), list(_TCP_NAMES), [self.items] * 4)
        return layout, [self.opened, self.open, self._read, self._written]


_TCP_NAMES = ("tcp_open_total", "tcp_open_connections", "tcp_read_bytes_total", "tcp_write_bytes_total")


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
        self.settle = None    # the data plane's: counts requests it keeps pending (see HttpStats)
        self._inbound_labels: dict = {}  # route_metrics.inbound_samples' label tuples, kept between scrapes
        self._inbound_layout = None      # route_metrics.inbound_columns' last Layout
        self._layout: ProxyLayout | None = None  # scrape_columns' last layout (its key: the parts' layouts)

    def stats(self, table: dict, key, items_fn) -> HttpStats:
        """The stats for ``key`` in ``table``, created with labels ``items_fn()`` on first use."""
        stats = table.get(key)
        if stats is None:
            stats = table[key] = HttpStats(items_fn(), self.settle)
        return stats

    def tcp_stats(self, key, items_fn) -> TcpStats:
        stats = self.tcp.get(key)
        if stats is None:
            stats = self.tcp[key] = TcpStats(items_fn(), self.settle)
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
        for family, name, items, value in route_metrics.inbound_samples(self.inbound.values(), self.denied,
                                                                         self._inbound_labels):
            families.setdefault(family, []).append((name, items, value))
        for family, rows in families.items():
            for name, items, value in rows:
                yield family, name, items, value

    def samples(self) -> list[tuple[str, tuple, float]]:
        """Every series this proxy exposes: the legacy families, then the registry's (2.16+)."""
        out = self.legacy_samples()
        out += [(name, items, value) for _family, name, items, value in self.registry_samples()]
        return out

    def scrape_columns(self) -> tuple["ProxyLayout", list]:
        """:meth:`samples` for the scraper, as ``(layout, parts)``: ``parts`` holds every counter's values (a list
        each); ``layout.values(parts)`` is the samples' values in :meth:`samples`' order, whose names and label
        tuples are ``layout.names`` and ``layout.labels`` (the scraper puts a whole scrape in order at once, with
        ``layout.order``).

        Every counter hands out its part (values, and a :class:`Layout` it keeps while its series stay the
        same); the proxy's layout is made again only when a part's layout is not the one of the last call, so
        an unchanged proxy costs a few list operations per counter and none per series.
        """
        layouts: list = []
        parts: list = []
        for table, args in ((self.inbound, ()), (self.outbound, ()), (self.routes, ("route_",)),
                            (self.actual_routes, ("route_actual_", False)), (self.tcp, ())):
            for stats in table.values():
                layout, values = stats.columns(*args)
                layouts.append(layout)
                parts.append(values)
        legacy = len(parts)
        rmx = _route_metrics()
        for rm in self.route_metrics.values():
            layout, values = rm.columns()
            layouts.append(layout)
            parts.append(values)
        layout, values = rmx.inbound_columns(self.inbound.values(), self.denied, self._inbound_labels,
                                             self._inbound_layout)
        self._inbound_layout = layout
        layouts.append(layout)
        parts.append(values)
        layout = self._layout
        if layout is None or layout.key[0] != legacy or layout.key[1] != layouts:  # Layouts compare by identity
            layout = self._layout = _proxy_layout((legacy, layouts))
        return layout, parts

    def legacy_samples(self) -> list[tuple[str, tuple, float]]:
        """Every legacy series this proxy exposes, grouped by metric family as the proxy prints them.

        A list, not a generator: the scraper reads it every few seconds, and a list is one pass, not one
        generator step per sample.
        """
        families: dict[str, list] = {}
        for stats in [*self.inbound.values(), *self.outbound.values()]:
            for sample in stats.samples():
                families.setdefault(sample[0], []).append(sample)
        for stats in self.routes.values():
            for sample in stats.samples(prefix="route_"):
                families.setdefault(sample[0], []).append(sample)
        for stats in self.actual_routes.values():
            for sample in stats.samples(prefix="route_actual_", with_latency=False):
                families.setdefault(sample[0], []).append(sample)
        for stats in self.tcp.values():
            for sample in stats.samples():
                families.setdefault(sample[0], []).append(sample)
        out: list = []
        for name in _FAMILY_ORDER:
            rows = families.get(name)
            if rows:
                out += rows
        return out


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


_FAMILY_RANK = {name: i for i, name in enumerate(_FAMILY_ORDER)}
_ROUTE_METRICS: list = []


def _route_metrics():
    """The route_metrics module (it imports this one: imported on first use, then kept at hand)."""
    if not _ROUTE_METRICS:
        from labkit.sim.linkerd import route_metrics

        _ROUTE_METRICS.append(route_metrics)
    return _ROUTE_METRICS[0]


class ProxyLayout:
    """A whole proxy's series (see :meth:`Proxy.scrape_columns`): ``key`` holds its parts' layouts (how many
    are legacy, and the layouts); ``order`` lists, for each series of ``names``/``labels``, the position of its
    value in the parts' values put end to end (None when that is their order already). Like a Layout: never
    mutated, compared by identity."""

    __slots__ = ("key", "order", "names", "labels", "size")

    def __init__(self, key: tuple, order: list | None, names: list, labels: list, size: int):
        self.key, self.order, self.names, self.labels = key, order, names, labels
        self.size = size  # how many values the parts hand out (a name outside _FAMILY_ORDER has no place in order)

    def values(self, parts: list) -> list:
        """The parts' values in the order of ``names`` (the scraper does this for a whole scrape at once)."""
        flat = list(chain.from_iterable(parts))
        return flat if self.order is None else [flat[i] for i in self.order]


def _proxy_layout(key: tuple) -> ProxyLayout:
    """A proxy's layout from its parts' (how many are legacy, their layouts): their series in the order
    :meth:`Proxy.samples` gives them — legacy series grouped by name in ``_FAMILY_ORDER`` (a name not there is
    not exposed), then registry series grouped by family in the order the families first appear."""
    names: list = []
    labels: list = []
    ranks: list = []
    legacy, layouts = key
    for part in layouts[:legacy]:
        names += part.names
        labels += part.labels
        ranks += [_FAMILY_RANK.get(name) for name in part.families]
    first: dict = {}
    for part in layouts[legacy:]:
        names += part.names
        labels += part.labels
        ranks += [first.setdefault(family, len(_FAMILY_ORDER) + len(first)) for family in part.families]
    order = sorted((i for i, rank in enumerate(ranks) if rank is not None), key=ranks.__getitem__)  # stable
    if order == list(range(len(names))):
        return ProxyLayout(key, None, names, labels, len(names))
    return ProxyLayout(key, order, [names[i] for i in order], [labels[i] for i in order], len(names))


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
