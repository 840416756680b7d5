"""Unavailable backends and the retry counters, as Linkerd 2.20's proxy (v2.359.0) handles them.

Upstream: the backend queue (``linkerd/proxy/balance/queue``: requests wait up to the policy controller's
3 s ``failfast_timeout``, then fail with FailFastError and the queue's gate shuts); the route stack
(``outbound/src/http/logical/policy/route.rs``: a ``LoadShed`` layer between the distribution and the
retry layer fails requests at once while no backend is ready); the retry layer
(``linkerd/http/retry/src/lib.rs``: a body above ``max_request_bytes`` = 64 KiB skips the retry policy;
``overflow`` only when the inner service is not ready — never, above LoadShed; FailFast is retryable,
LoadShed is not, ``route/retry.rs``) and the route metrics' ``error`` labels (FAIL_FAST, LOAD_SHED).
Docs: ``reference/retries.md`` ("If a request has a body larger than 64KiB then it will not be retried").
"""
from __future__ import annotations

import pytest

import labkit
from labkit.sim.linkerd import balancer

from conftest import exposition_total

NS = "test"
GW = "gateway.networking.k8s.io/v1"
PARENT = dict(parent_name="podinfo", parent_port="9898")


def _podinfo(seed=0, annotations=None):
    mesh = labkit.connect(seed=seed)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("1m")
    mesh.apply("podinfo/00-namespace.yml")
    mesh.apply("podinfo/podinfo.yml")
    mesh.apply("podinfo/loadtester.yml")
    md = {"name": "podinfo", "namespace": NS}
    if annotations:
        md["annotations"] = annotations
    mesh.apply([{"apiVersion": "v1", "kind": "Service", "metadata": md,
                 "spec": {"selector": {"app": "podinfo"}, "ports": [{"name": "http", "port": 9898}]}}])
    mesh.wait("1m")
    return mesh


def _curl(mesh, argv: list[str]) -> str:
    return mesh.exec("deploy/flagger-loadtester", ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                                                   *argv], NS)


def _metrics(mesh) -> str:
    return mesh.proxy_metrics("deploy/flagger-loadtester", NS)


def test_the_queue_waits_out_the_failfast_timeout_then_sheds():
    gates = balancer.Gates()
    assert gates.unavailable("k", 100.0, 100.0) == (balancer.FAIL_FAST, 3000.0)
    assert gates.unavailable("k", 100.0, 101.0) == (balancer.FAIL_FAST, 2000.0)
    assert gates.unavailable("k", 100.0, 103.5) == (balancer.LOAD_SHED, 0.0)
    # endpoints came back and went away again: a new outage waits again
    assert gates.unavailable("k", 200.0, 200.5) == (balancer.FAIL_FAST, 3000.0)


def test_a_backend_without_endpoints_fails_fast_then_sheds_load():
    mesh = _podinfo()
    mesh.patch("deploy", "podinfo", {"spec": {"replicas": 0}}, NS)
    mesh.wait("30s")
    first = _curl(mesh, ["http://podinfo:9898/"])
    code, seconds = first.split()
    assert code == "503" and 2.9 <= float(seconds) <= 3.1, "the first request waits in the queue"
    mesh.wait("3s")  # as long as curl waited (exec does not move the virtual clock by a request's latency)
    for _ in range(3):
        code, seconds = _curl(mesh, ["http://podinfo:9898/"]).split()
        assert code == "503" and float(seconds) < 0.1, "then the gate is shut: shed at once"
    metrics = _metrics(mesh)
    route = "outbound_http_route_request_statuses_total"
    assert exposition_total(metrics, route, route_name="http", http_status="", error="FAIL_FAST", **PARENT) == 1
    assert exposition_total(metrics, route, route_name="http", http_status="", error="LOAD_SHED", **PARENT) == 3
    backend = "outbound_http_route_backend_response_statuses_total"
    assert exposition_total(metrics, backend, error="FAIL_FAST", **PARENT) == 1
    assert exposition_total(metrics, backend, error="LOAD_SHED") == 0, "a shed request reaches no backend"
    # endpoints back: requests flow again, and a later outage waits again
    mesh.patch("deploy", "podinfo", {"spec": {"replicas": 1}}, NS)
    mesh.wait("30s")
    assert _curl(mesh, ["http://podinfo:9898/"]).split()[0] == "200"
    mesh.patch("deploy", "podinfo", {"spec": {"replicas": 0}}, NS)
    mesh.wait("30s")
    code, seconds = _curl(mesh, ["http://podinfo:9898/"]).split()
    assert code == "503" and float(seconds) >= 2.9


def test_a_retry_after_fail_fast_is_shed_and_no_retry_ever_overflows():
    mesh = _podinfo(seed=1, annotations={"retry.linkerd.io/http": "500", "retry.linkerd.io/limit": "3"})
    mesh.patch("deploy", "podinfo", {"spec": {"replicas": 0}}, NS)
    mesh.wait("30s")
    for _ in range(3):
        assert _curl(mesh, ["http://podinfo:9898/"]).split()[0] == "503"
        mesh.wait("5s")
    metrics = _metrics(mesh)
    # FailFast is retryable even though 503 is not among the conditions; the retry meets the shut gate
    assert exposition_total(metrics, "outbound_http_route_retry_requests_total", **PARENT) == 1
    assert exposition_total(metrics, "outbound_http_route_retry_successes_total", **PARENT) == 0
    assert exposition_total(metrics, "outbound_http_route_retry_limit_exceeded_total", **PARENT) == 0
    assert exposition_total(metrics, "outbound_http_route_retry_overflow_total", **PARENT) == 0
    assert exposition_total(metrics, "outbound_http_route_request_statuses_total", error="LOAD_SHED", **PARENT) == 3
    assert exposition_total(metrics, "outbound_http_route_backend_response_statuses_total", error="FAIL_FAST", **PARENT) == 1


@pytest.mark.parametrize("size, attempts", [(64 * 1024, 4), (64 * 1024 + 1, 1)])
def test_a_body_larger_than_the_retry_buffer_is_not_retried_nor_counted(size, attempts):
    mesh = _podinfo(seed=2, annotations={"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "3"})
    out = _curl(mesh, ["-X", "POST", "-d", "x" * size, "http://podinfo:9898/status/500"])
    assert out.split()[0] == "500"
    metrics = _metrics(mesh)
    assert exposition_total(metrics, "outbound_http_route_backend_requests_total", **PARENT) == attempts
    assert exposition_total(metrics, "outbound_http_route_retry_requests_total", **PARENT) == attempts - 1
    assert exposition_total(metrics, "outbound_http_route_retry_limit_exceeded_total", **PARENT) == (1 if attempts > 1 else 0)
    assert exposition_total(metrics, "outbound_http_route_retry_overflow_total", **PARENT) == 0
    assert exposition_total(metrics, "outbound_http_route_request_statuses_total", http_status="500", **PARENT) == 1
