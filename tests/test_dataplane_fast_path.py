"""The data plane's fast path (lanes, counting later in batches) changes no number and sees every change at once.

``PodContext.send`` keeps, per client pod and target, what the last request
resolved to (a ``Lane``) and leaves the proxies' counting to a batch when
someone reads the counters. These tests hold it to what the long way
(``DataPlane._call``, which resolves and counts every request on its own)
gives: the same counters to the last bit, and the new behaviour from the
very next request after the mesh changes.
"""
from __future__ import annotations

import random

import pytest

from conftest import meshed_app
from labkit.sim.apps.model import Response
from labkit.sim.dataplane import PodContext
from labkit.sim.linkerd import proxy as lp
from labkit.sim.linkerd import route_metrics as rmx

ITEMS = (("direction", "inbound"), ("tls", "true"))


def _responses(n: int, seed: int, *, statuses=(200, 200, 200, 500, 503, 0), grpcs=(None,), errors=(None,)):
    rng = random.Random(seed)
    return [Response(rng.choice(statuses), rng.choice((0.3, 0.99, 4.7, 49.6, 50.2, 180.0, 999.9, 61000.0))
                     * rng.uniform(0.5, 1.5), rng.randrange(300), rng.choice(grpcs), rng.choice(errors))
            for _ in range(n)]


def _flat(responses) -> list:
    flat: list = []
    for r in responses:
        flat += lp.pending_entry(r)
    return flat


def _pend(route: rmx.RouteMetrics, responses, flat: list | None = None) -> list:
    """``responses`` on ``route``'s default route, left pending as the data plane leaves them: appended to a
    hop's pending list (``flat``, a new one if None) that the route follows."""
    flat = [] if flat is None else flat
    if route.source is not flat:
        route.follow(flat)
    flat += _flat(responses)
    return flat


@pytest.mark.parametrize("n", [1, 7, lp.BATCH_NUMPY - 1, lp.BATCH_NUMPY, 700])
@pytest.mark.parametrize("kind", ["http", "grpc", "errors", "one-status"])
def test_a_batch_counts_as_counting_one_by_one(n, kind):
    options = {"http": {}, "grpc": {"statuses": (200,), "grpcs": (0, 0, 2, 5, 14)},
               "errors": {"grpcs": (None, 0), "errors": (None, "", "connection reset", "refused")},
               "one-status": {"statuses": (200,)}}[kind]
    responses = _responses(n, seed=n, **options)
    overheads = (0.2, 0.15, 0.2)
    one = lp.HttpStats(ITEMS)
    for r in responses:
        error = r.error or ""
        one.record(r.status, r.grpc_status, error, lp.classify(r.status, r.grpc_status, error),
                   r.latency_ms + 0.2 + 0.15 + 0.2)
    batch = lp.HttpStats(ITEMS)
    batch.record_batch(lp.Batch(_flat(responses)), overheads)
    assert list(batch.samples()) == list(one.samples())
    assert lp.Batch(_flat(responses)).length == sum(r.length for r in responses)


@pytest.mark.parametrize("n", [3, lp.BATCH_NUMPY + 5, 400])
def test_pending_route_metrics_count_in_order_with_direct_writes(n):
    """The route histograms' sums are floats: pending responses are counted before a direct write, in order,
    so the sums match counting each request as it finished to the last bit."""
    first, second = _responses(n, seed=1, errors=(None, "connection refused")), _responses(n, seed=2)
    first[0].latency_ms = 1e16  # then adding 1.0s one at a time differs from adding their sum

    def key(r):
        return r.status, "" if not r.error and r.status >= 100 else rmx.error_label(r.status, r.error)

    expected = rmx.RouteMetrics(rmx.DEFAULT_HTTP_ROUTE)
    expected.default_backend("b", lambda: ())
    for r in first:
        expected.record_default(*key(r), r.latency_ms + 0.2 + 0.15 + 0.2)
    expected.record_default(None, rmx.FAIL_FAST, 1.0)
    for r in second:
        expected.record_default(*key(r), r.latency_ms + 0.2 + 0.15 + 0.2)

    pending = rmx.RouteMetrics(rmx.DEFAULT_HTTP_ROUTE)
    pending.default_backend("b", lambda: ())
    pending.overheads = (0.2, 0.15, 0.2)
    hop = _pend(pending, first)
    pending.record_default(None, rmx.FAIL_FAST, 1.0)  # a direct write: the pending ones come first
    _pend(pending, second, hop)
    assert list(pending.samples()) == list(expected.samples())


@pytest.mark.parametrize("n", [2, lp.BATCH_NUMPY, 300])
def test_a_route_fed_by_two_hops_counts_their_requests_in_the_order_they_came(n):
    """Two endpoints' hops take turns (their pending lists fill in turn), one hop is counted on its own in
    between (its list replaced by a new one), and a direct write comes between: the route counts what each
    request in turn would have counted."""
    rng = random.Random(n)
    responses = _responses(6 * n, seed=5)
    expected = rmx.RouteMetrics(rmx.DEFAULT_HTTP_ROUTE)
    expected.default_backend("b", lambda: ())
    pending = rmx.RouteMetrics(rmx.DEFAULT_HTTP_ROUTE)
    pending.default_backend("b", lambda: ())
    pending.overheads = (0.2, 0.15, 0.2)
    hops = [[], []]
    most = 0
    for i, r in enumerate(responses):
        if i == 3 * n:
            hops[0] = []  # hop 0 counted on its own (DataPlane._authorize): a new list from here
        if i == 4 * n:
            for route in (expected, pending):
                route.record_default(None, rmx.FAIL_FAST, 1.0)
        key = r.status, "" if not r.error and r.status >= 100 else rmx.error_label(r.status, r.error)
        expected.record_default(*key, r.latency_ms + 0.2 + 0.15 + 0.2)
        _pend(pending, [r], hops[rng.randrange(2) if i % 7 else 0])
        most = max(most, len(pending.pending))
    assert most > 2  # the route switched lists more than once before a count
    assert list(pending.samples()) == list(expected.samples())


def test_a_route_that_follows_one_whole_list_counts_its_batch():
    route = rmx.RouteMetrics(rmx.DEFAULT_HTTP_ROUTE)
    route.default_backend("b", lambda: ())
    flat = _pend(route, _responses(5, seed=1))
    assert route.whole() is flat
    _pend(route, _responses(1, seed=2), [])  # a second list: no longer one whole list
    assert route.whole() is None
    route.settle()
    late = [*_flat(_responses(3, seed=3))]
    _pend(route, _responses(2, seed=4), late)  # followed from its end: not the whole of it
    assert route.whole() is None


def test_many_counters_latencies_counted_in_one_pass_as_each_on_its_own():
    """The data plane counts every hop's latency histograms together: long and short batches, one status or
    several, two counters sharing a batch with different overheads."""
    kinds = [({}, 700), ({"statuses": (200,)}, 90), ({"statuses": (200, 500)}, lp.BATCH_NUMPY), ({}, 5),
             ({"statuses": (200,), "grpcs": (0, 2)}, 300)]
    batches = [lp.Batch(_flat(_responses(n, seed=i, **options))) for i, (options, n) in enumerate(kinds)]
    overheads = [(0.2,), (0.2, 0.15, 0.2)]
    together = [lp.HttpStats(ITEMS) for _ in range(2 * len(batches))]
    alone = [lp.HttpStats(ITEMS) for _ in range(2 * len(batches))]
    latencies: list = []
    for i, batch in enumerate(batches):
        for j, extra in enumerate(overheads):
            together[2 * i + j].record_batch(batch, extra, latencies)
            alone[2 * i + j].record_batch(batch, extra)
    assert len(latencies) == 2 * len(batches)
    lp.record_latencies(latencies)
    assert [list(s.samples()) for s in together] == [list(s.samples()) for s in alone]


def test_a_batch_buckets_every_latency_at_and_around_the_bounds_as_one_by_one():
    """Whole milliseconds decide the legacy buckets: latencies on, just under and just over every bound (and
    below zero, and past the last bound) land where counting one by one puts them."""
    import math

    latencies = [-3.5, -0.5, 0.0, 0.99, 1e6]
    for bound in lp.LATENCY_BOUNDS:
        latencies += [bound - 1.0, math.nextafter(bound, 0.0), float(bound), bound + 0.5, math.nextafter(bound + 1, 0.0),
                      float(bound + 1)]
    responses = [Response(200, ms, 10) for ms in latencies]
    assert len(responses) >= lp.BATCH_NUMPY
    one = lp.HttpStats(ITEMS)
    for r in responses:
        one.record(200, None, "", False, r.latency_ms)
    batch = lp.HttpStats(ITEMS)
    batch.record_batch(lp.Batch(_flat(responses)), ())
    assert list(batch.samples()) == list(one.samples())


@pytest.mark.parametrize("start", [(0.0, 0.0), (-0.0, 0.0), (1e16, 1e16), (1e16, 3.0)])
def test_route_and_backend_histograms_of_one_batch_as_each_on_its_own(start):
    """The default route's histogram and its backend's are filled from one search of the backend bounds, and
    share the running sum when both stand at the same double: what each filled on its own holds, to the bit."""
    import math

    import numpy as np

    rng = random.Random(7)
    ms = [float(b) for b in rmx.BACKEND_BOUNDS_MS] + [math.nextafter(b, math.inf) for b in rmx.BACKEND_BOUNDS_MS]
    ms += [rng.uniform(0, 20000) for _ in range(200)] + [0.0, 1.0]
    rng.shuffle(ms)
    route = [1] * (len(rmx.ROUTE_BOUNDS_MS) + 1) + [start[0]]
    backend = [2] * (len(rmx.BACKEND_BOUNDS_MS) + 1) + [start[1]]
    route_alone, backend_alone = route[:], backend[:]
    rmx._add_route_and_backend(route, backend, np.array(ms))
    rmx._add_histogram(route_alone, rmx.ROUTE_BOUNDS_MS, ms)  # a list: one at a time
    rmx._add_histogram(backend_alone, rmx.BACKEND_BOUNDS_MS, ms)
    assert [repr(x) for x in route] == [repr(x) for x in route_alone]
    assert [repr(x) for x in backend] == [repr(x) for x in backend_alone]


@pytest.mark.parametrize("n", [3, lp.BATCH_NUMPY + 5, 400])
def test_pending_route_metrics_count_in_order_after_a_route_only_write(n):
    """A write to the route alone (not its default backend) leaves the two sums apart: each keeps its own."""
    responses = _responses(n, seed=3)
    expected = rmx.RouteMetrics(rmx.DEFAULT_HTTP_ROUTE)
    expected.default_backend("b", lambda: ())
    expected.record(None, rmx.REQUEST_TIMEOUT, 1e16)
    for r in responses:
        expected.record_default(r.status, "" if r.status >= 100 else rmx.error_label(r.status, r.error),
                                r.latency_ms + 0.2 + 0.15 + 0.2)
    pending = rmx.RouteMetrics(rmx.DEFAULT_HTTP_ROUTE)
    pending.default_backend("b", lambda: ())
    pending.overheads = (0.2, 0.15, 0.2)
    pending.record(None, rmx.REQUEST_TIMEOUT, 1e16)
    _pend(pending, responses)
    assert list(pending.samples()) == list(expected.samples())


# -- on the whole mesh -------------------------------------------------------------------------------

VOTING_SERVER = """
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: voting-grpc, namespace: emojivoto}
spec:
  podSelector: {matchLabels: {app: voting-svc}}
  port: grpc
  proxyProtocol: gRPC
"""


EMOJI_PROFILE = r"""
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: emoji-svc.emojivoto.svc.cluster.local, namespace: emojivoto}
spec:
  routes:
    - name: ListAll
      condition: {method: POST, pathRegex: /emojivoto\.v1\.EmojiService/ListAll}
"""
VOTING_PROFILE = r"""
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: voting-svc.emojivoto.svc.cluster.local, namespace: emojivoto}
spec:
  routes:
    - name: metrics
      condition: {method: GET, pathRegex: /metrics}
"""


def _changing_mesh(mesh) -> list[str]:
    """A run that changes the mesh under running traffic: what every counter says at each step."""
    plane = mesh.dataplane
    seen = []

    def step(duration="20s"):
        mesh.wait(duration)
        seen.append("".join(mesh.proxy_metrics(f"deploy/{d}", "emojivoto") for d in ("web", "emoji", "voting", "vote-bot")))

    def bot_calls(target, method, path, grpc=False):  # a request the vote-bot's own loop never makes
        bot = next(p for p in plane.pods.values() if p.deployment == "vote-bot")
        r = plane.call(bot, target, method, path, grpc)
        seen.append(f"{mesh.clock.t} {target}{path}: {r.status} {r.grpc_status} {r.latency_ms!r} {r.error}")

    step()
    mesh.patch("Deployment", "web", {"spec": {"replicas": 2}}, "emojivoto")  # a second endpoint
    step("40s")
    # A readiness probe on web's port: the bot's GET /api/list now takes the probe route, its votes do not.
    containers = mesh.get("Deployment", "web", "emojivoto")["spec"]["template"]["spec"]["containers"]
    for c in containers:
        if c["name"] == "web-svc":
            c["readinessProbe"] = {"httpGet": {"path": "/api/list", "port": 8080}, "periodSeconds": 5}
    mesh.patch("Deployment", "web", {"spec": {"template": {"spec": {"containers": containers}}}}, "emojivoto")
    step("60s")
    mesh.apply(VOTING_SERVER)  # a Server with no authorization: web may no longer call voting
    step()
    mesh.annotate("Service", "emoji-svc", {"retry.linkerd.io/http": "5xx", "timeout.linkerd.io/request": "2ms"},
                  "emojivoto")
    step()
    seen.append(mesh.tap("deploy/web", "emojivoto", duration="5s").to_csv())  # tap changes no revision
    mesh.delete(VOTING_SERVER)
    mesh.annotate("Service", "emoji-svc", {"retry.linkerd.io/http": None, "timeout.linkerd.io/request": None},
                  "emojivoto")
    # Discovery is kept while in use: a profile created meanwhile takes over once the client went idle.
    bot_calls("voting-svc.emojivoto:8801", "GET", "/metrics")
    bot_calls("emoji-svc.emojivoto:8080", "POST", "/emojivoto.v1.EmojiService/ListAll", grpc=True)
    mesh.apply(EMOJI_PROFILE)
    mesh.apply(VOTING_PROFILE)
    mesh.wait("1s")
    bot_calls("emoji-svc.emojivoto:8080", "POST", "/emojivoto.v1.EmojiService/ListAll", grpc=True)
    mesh.wait("4s")
    bot_calls("emoji-svc.emojivoto:8080", "POST", "/emojivoto.v1.EmojiService/ListAll", grpc=True)
    mesh.wait("6s")  # idle for more than the outbound discovery cache's 5 s
    bot_calls("emoji-svc.emojivoto:8080", "POST", "/emojivoto.v1.EmojiService/ListAll", grpc=True)
    bot_calls("voting-svc.emojivoto:8801", "GET", "/metrics")
    step("100s")  # idle for more than the inbound side's 90 s
    bot_calls("voting-svc.emojivoto:8801", "GET", "/metrics")
    step()
    mesh.patch("Deployment", "emoji", {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-07-01T10:10:00Z"}}}}}, "emojivoto")  # a rolling restart
    step("60s")
    mesh.uninject("deploy", "emojivoto", "vote-bot")
    step("60s")
    # An unmeshed client has no discovery to go stale: only the server's inbound side goes idle (90 s).
    mesh.delete(VOTING_PROFILE)
    mesh.wait("100s")
    bot_calls("voting-svc.emojivoto:8801", "GET", "/metrics")
    mesh.apply(VOTING_PROFILE)
    mesh.wait("1s")
    bot_calls("voting-svc.emojivoto:8801", "GET", "/metrics")
    mesh.wait("100s")
    bot_calls("voting-svc.emojivoto:8801", "GET", "/metrics")
    step()
    store = mesh.prometheus.store
    seen.append(repr([(s.name, s.label_items, s.times_ms.tolist(), s.values.tolist()) for s in store._series]))
    return seen


@pytest.fixture(scope="module")
def long_way():
    original = PodContext.send
    # every request resolves and counts on its own
    PodContext.send = lambda ctx, target, request: ctx.pod.plane._call(ctx.pod, target, request)
    try:
        return _changing_mesh(meshed_app("emojivoto", wait="30s"))
    finally:
        PodContext.send = original


def test_the_fast_path_gives_the_long_ways_numbers_through_every_change(long_way):
    fast = _changing_mesh(meshed_app("emojivoto", wait="30s"))
    # the run shows every change it makes (else it would compare little)
    text = "\n".join(fast)
    assert "inbound_http_authz_deny_total{" in text and 'error="REQUEST_TIMEOUT"' in text
    assert 'route_request_total{direction="outbound",dst="emoji-svc.emojivoto.svc.cluster.local:8080",rt_route="ListAll"}' in text
    assert 'route_request_total{direction="inbound",dst="voting-svc.emojivoto.svc.cluster.local:8801",rt_route="metrics"}' in text
    assert 'route_name="probe"' in fast[2] and 'route_name="probe"' not in fast[1]
    assert "/api/vote" in fast[5]  # the tap saw requests
    assert len(fast) == len(long_way)
    for i, (a, b) in enumerate(zip(fast, long_way)):
        assert a == b, f"step {i} differs"


def test_a_change_applies_from_the_next_request():
    mesh = meshed_app("emojivoto", wait="30s")
    plane = mesh.dataplane
    web = next(p for p in plane.pods.values() if p.deployment == "web")
    before = plane.inbound_requests
    mesh.apply(VOTING_SERVER)
    mesh.wait("1s")
    assert plane.inbound_requests > before
    denied = [line for line in mesh.proxy_metrics("deploy/voting", "emojivoto").splitlines()
              if line.startswith("inbound_http_authz_deny_total{")]
    assert denied and all(float(line.rsplit(" ", 1)[1]) > 0 for line in denied)
    assert all(lane.revision == mesh.cluster.revision for lane in web.lanes.values())


def test_counters_read_between_requests_include_every_request():
    mesh = meshed_app("emojivoto", wait="30s")
    plane = mesh.dataplane
    for _ in range(3):
        mesh.wait("3s")
        counted = 0
        for pod in plane.pods.values():
            if pod.proxy is not None:
                counted += sum(stats.requests for stats in pod.proxy.inbound.values())
        assert counted == plane.inbound_requests  # every pod meshed: each inbound request counted once


def test_without_prometheus_pending_requests_stay_bounded_and_count():
    """Nobody reads the counters when linkerd-viz is not installed: the data plane counts its pending requests
    every so often all the same, so memory stays bounded, and a late read still sees every request."""
    import labkit
    from labkit.sim.dataplane import MAX_PENDING
    from tools.bench import emojivoto_at

    mesh = labkit.connect()
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("1m")
    mesh.apply(emojivoto_at(50))
    mesh.inject("deploy", namespace="emojivoto")
    plane = mesh.dataplane
    most = 0
    for _ in range(12):
        mesh.wait("10s")
        most = max(most, sum(len(p.pending) for p in plane._pending))
    assert 0 < most <= MAX_PENDING + 5 * 1000  # at most a second of requests beyond the bound
    counted = sum(stats.requests for pod in plane.pods.values() if pod.proxy is not None
                  for stats in pod.proxy.inbound.values())
    assert counted == plane.inbound_requests > 2 * MAX_PENDING // lp.PENDING_FIELDS  # the bound was reached


def test_a_server_sees_each_requests_own_headers_and_body_on_the_fast_path():
    mesh = meshed_app("emojivoto", wait="30s")
    plane = mesh.dataplane
    bot = next(p for p in plane.pods.values() if p.deployment == "vote-bot")
    voting = next(p for p in plane.pods.values() if p.deployment == "voting")
    model = voting.models["voting-svc"]
    seen = []
    handle = model.handle
    model.handle = lambda req, ctx: (seen.append((req.method, req.path, req.headers, req.body_bytes, req.body)),
                                     handle(req, ctx))[1]
    path = "/emojivoto.v1.VotingService/VoteJoy"
    headers = {"x-try": "1"}
    calls = [("POST", path, None, 5, None), ("POST", path, None, 5, None), ("POST", path, headers, 5, None),
             ("POST", path, headers, 9, None), ("POST", path, headers, 9, "joy"), ("GET", path, headers, 9, "joy"),
             ("POST", path, None, 5, None)]
    for method, p, h, n, body in calls:
        plane.call(bot, "voting-svc.emojivoto:8080", method, p, True, h, n, body)
    assert seen[-len(calls):] == calls


def test_a_server_proxy_that_finds_a_profile_after_its_idle_time_counts_per_route_from_then_on():
    """A server proxy keeps what it found for a Service (a ServiceProfile or none) until the Service goes unused
    for INBOUND_IDLE_S; the profile that appeared meanwhile takes effect at the next look, with no change in the
    cluster then: every later request on the client's lane takes the long way, where the server counts per route."""
    from labkit.sim.linkerd.policy import INBOUND_IDLE_S

    mesh = meshed_app("emojivoto", wait="30s")
    plane = mesh.dataplane
    mesh.apply(VOTING_PROFILE)  # the server proxy has looked voting-svc up already: it goes on without routes
    mesh.wait("2s")
    dst = "voting-svc.emojivoto.svc.cluster.local:8080"

    def inbound_route_requests():
        text = mesh.proxy_metrics("deploy/voting", "emojivoto")
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("route_request_total{") and 'direction="inbound"' in line and dst in line)

    assert inbound_route_requests() == 0
    voting = next(p for p in plane.pods.values() if p.deployment == "voting")
    ib = plane._inbound[(voting.uid, dst.rsplit(":", 1)[0], 8080)]
    ib.last -= INBOUND_IDLE_S + 1  # as if nobody had called voting-svc for that long (its clients' caches are fresh)

    def votes():
        return sum("Voting for" in line for line in mesh.logs("deploy/vote-bot", "emojivoto").splitlines())

    before = votes()
    mesh.wait("20s")
    assert votes() - before >= 10  # each a Vote call from web to voting-svc:8080
    assert inbound_route_requests() == votes() - before
