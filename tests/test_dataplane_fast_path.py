"""The data plane's fast path (lanes, counting later in batches) changes no number and sees every change at once.

``DataPlane.call`` keeps, per client pod and target, what the last request
resolved to (a ``Lane``) and leaves the proxies' counting to a batch when
someone reads the counters. These tests hold it to what the long way
(``DataPlane._call``, which resolves and counts every request on its own)
gives: the same counters to the last bit, and the new behaviour from the
very next request after the mesh changes.
"""
from __future__ import annotations

import random

import pytest

from labkit.sim.apps.model import Response
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
    pending.pending += _flat(first)
    pending.record_default(None, rmx.FAIL_FAST, 1.0)  # a direct write: the pending ones come first
    pending.pending += _flat(second)
    assert list(pending.samples()) == list(expected.samples())
