"""A proxy read for a scrape (``Proxy.scrape_columns``: a layout kept while the series stay the same, and the
values) says what its plain exposition (``Proxy.samples``) says, whatever changed in between: the same series in
the same order with the same values, and never an old layout for new series."""
from __future__ import annotations

import random

import pytest

from labkit.sim.linkerd import proxy as lp
from labkit.sim.linkerd import route_metrics as rmx

STATUSES = (200, 201, 404, 500, 503, 0)


def _inbound_items(port: int, client: str, route: str = "default") -> tuple:
    return (("direction", "inbound"), ("target_addr", f"10.0.0.1:{port}"), ("target_ip", "10.0.0.1"),
            ("target_port", str(port)), ("srv_kind", "default"), ("srv_name", "all-unauthenticated"),
            ("route_kind", "default"), ("route_name", route), ("authz_kind", "default"),
            ("authz_name", "all-unauthenticated"), ("tls", "true"), ("client_id", client))


def _check(proxy: lp.Proxy, last: dict) -> None:
    """The fast read equals the plain one, values' types included; the layout is the last one only if the
    series are the last ones."""
    layout, parts = proxy.scrape_columns()
    values = layout.values(parts)
    plain = proxy.samples()
    series = [(name, labels) for name, labels, _ in plain]
    assert list(zip(layout.names, layout.labels)) == series
    assert [(type(v), v) for v in values] == [(type(v), v) for _, _, v in plain]
    if last.get("layout") is layout:
        assert series == last["series"], "an unchanged layout for changed series"
    last["layout"], last["series"] = layout, series


def _mutate(proxy: lp.Proxy, rng: random.Random) -> None:
    """One change a proxy's counters can see: a request (new status, gRPC code, error), a new counter, route,
    backend, retry policy, refused request, connection; or a counter's keys replaced by as many others."""
    op = rng.randrange(12)
    status = rng.choice(STATUSES)
    grpc = rng.choice((None, None, 0, 2, 14))
    error = rng.choice(("", "", "", "connection refused"))
    if op <= 2:
        table = proxy.inbound if op < 2 else proxy.outbound
        key = rng.randrange(4)  # 0 and 2: one route; 3: the labels of 0 (the same series, twice)
        stats = proxy.stats(table, key, lambda: _inbound_items(4000 + key % 3 % 2, f"c{key % 3}.ns"))
        stats.record(status, grpc, error, lp.classify(status, grpc, error), rng.uniform(0, 3000))
    elif op == 3:
        table = rng.choice((proxy.routes, proxy.actual_routes))
        key = rng.randrange(2)
        stats = proxy.stats(table, key, lambda: (("direction", "outbound"), ("rt_route", f"r{key}")))
        stats.record(status, grpc, error, lp.classify(status, grpc, error), rng.uniform(0, 600))
    elif op <= 5:
        key = rng.randrange(3)
        rm = proxy.route(key, lambda: rmx.parent_items("ns", f"svc{key}", 80) + rmx.DEFAULT_HTTP_ROUTE, key == 2)
        code = (rng.choice((None, 0, 2, 13)) if rm.grpc else rng.choice((None, 200, 500, 503)))
        if rng.random() < 0.5:
            rm.record(code, rng.choice(("", rmx.REQUEST_TIMEOUT)), rng.uniform(0, 2000))
        else:
            b = rm.backend(rng.randrange(2), lambda: rmx.backend_items("ns", f"b{rng.randrange(9)}", 80))
            b.record(code, "", rng.uniform(0, 2000))
    elif op == 6:
        rm = proxy.route(rng.randrange(3), lambda: rmx.parent_items("ns", "svc", 80) + rmx.DEFAULT_HTTP_ROUTE)
        if rng.random() < 0.5:
            rm.retries_configured = True
        else:
            rm.retry_requests += 1
    elif op == 7:
        labels = (("srv_name", rng.choice(("a", "b"))), ("target_port", "4000"))
        key = (rng.choice(("inbound_http_authz_deny", "inbound_tcp_authz_deny")), labels)
        proxy.denied[key] = proxy.denied.get(key, 0) + 1
    elif op == 8:
        key = rng.randrange(3)
        tcp = proxy.tcp_stats(key, lambda: (("direction", "inbound"), ("peer", f"p{key}")))
        tcp.opened += 1
        tcp.add_bytes(rng.randrange(900), rng.randrange(900))
    elif op == 9 and proxy.inbound:
        # a counter whose keys are replaced by as many others (nothing in the mesh removes keys; a layout that
        # only counted them would not notice)
        stats = rng.choice(list(proxy.inbound.values()))
        responses = stats._responses
        if responses:
            old = rng.choice(list(responses))
            n = responses.pop(old)
            responses[(old[0] + 1, old[1], old[2], old[3])] = n
        latency = stats._latency
        if latency:
            old = rng.choice(list(latency))
            latency[old + 7] = latency.pop(old)
    elif op == 10 and proxy.route_metrics:
        rm = rng.choice(list(proxy.route_metrics.values()))
        statuses = rng.choice([rm.statuses] + [b.statuses for b in rm.backends.values()])
        if statuses:
            old = rng.choice(list(statuses))
            statuses[(old[0], old[1] + "X")] = statuses.pop(old)
    elif op == 11:
        # the same counters in another order, or one gone (a table rebuilt)
        table = rng.choice((proxy.inbound, proxy.outbound, proxy.tcp, proxy.route_metrics))
        if table:
            items = list(table.items())
            rng.shuffle(items)
            if rng.random() < 0.3:
                items.pop()
            table.clear()
            table.update(items)


@pytest.mark.parametrize("seed", range(6))
def test_a_scrape_read_says_what_the_exposition_says_through_random_changes(seed):
    rng = random.Random(seed)
    proxy = lp.Proxy("10.0.0.1", "ns", "sa", "edge", False)
    last: dict = {}
    reused = 0
    for step in range(400):
        for _ in range(rng.choice((0, 0, 1, 1, 2, 5))):  # often nothing changes between two scrapes
            _mutate(proxy, rng)
        before = last.get("layout")
        _check(proxy, last)
        reused += last["layout"] is before
    assert reused > 50  # the comparison covered unchanged layouts as well as new ones


def test_values_only_changes_keep_the_layout():
    proxy = lp.Proxy("10.0.0.1", "ns", "sa", "edge", False)
    stats = proxy.stats(proxy.inbound, "k", lambda: _inbound_items(4000, "c.ns"))
    stats.record(200, None, "", False, 3.0)
    first, values = proxy.scrape_columns()
    stats.record(200, None, "", False, 700.0)  # the same status: new counts, the same series
    again, more = proxy.scrape_columns()
    assert again is first and more != values
    stats.record(500, None, "", True, 3.0)  # a new status: new series
    third, _ = proxy.scrape_columns()
    assert third is not first and len(third.names) > len(first.names)


def test_pending_requests_count_before_the_read():
    """A proxy's read settles what the data plane keeps pending, as the plain exposition does."""
    proxy = lp.Proxy("10.0.0.1", "ns", "sa", "edge", False)
    pending: list = []

    def settle():
        while pending:
            pending.pop().record(200, None, "", False, 1.0)

    proxy.settle = settle
    stats = proxy.stats(proxy.inbound, "k", lambda: _inbound_items(4000, "c.ns"))
    pending.append(stats)
    layout, parts = proxy.scrape_columns()
    values = layout.values(parts)
    assert values[layout.names.index("request_total")] == 1
