"""``timeout.linkerd.io/{request,response,idle}`` as Linkerd 2.20's policy controller reads them and its proxy
enforces them.

Upstream: ``policy-controller/k8s/index/src/outbound/index.rs`` (``parse_timeouts``, ``parse_duration``),
``…/outbound/index/http.rs`` (a rule's ``timeouts.request`` fills an absent request timeout),
``grpc/src/outbound/http.rs`` (the Service's timeouts only when the route has none); the proxy's
``linkerd/http/stream-timeouts`` (request = the stream's lifetime; response = from the request's end to the
response's end; idle = no frame for that long, from the response headers on) and the route metrics' labels
(``error`` IDLE_TIMEOUT / RESPONSE_STREAM_TIMEOUT / REQUEST_TIMEOUT, with the headers' ``http_status`` when
the body was cut). Docs: ``reference/timeouts.md``. podinfo's ``/chunked/{s}`` sends its headers at once
and its body ``s`` seconds later; ``/delay/{s}`` answers after ``s`` seconds.
"""
from __future__ import annotations

import pytest

import labkit
from labkit.sim.linkerd import policy

from conftest import exposition_total

NS = "test"
GW = "gateway.networking.k8s.io/v1"


def _route(name, prefix, annotations=None, timeouts=None):
    rule = {"matches": [{"path": {"type": "PathPrefix", "value": prefix}}]}
    if timeouts:
        rule["timeouts"] = timeouts
    md = {"name": name, "namespace": NS}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": md,
            "spec": {"parentRefs": [{"name": "podinfo", "kind": "Service", "group": "core", "port": 9898}],
                     "rules": [rule]}}


def _podinfo(seed=0):
    mesh = labkit.connect(seed=seed)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("1m")
    mesh.apply("podinfo/00-namespace.yml")
    mesh.apply("podinfo/podinfo.yml")
    mesh.apply("podinfo/loadtester.yml")
    mesh.apply([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "podinfo", "namespace": NS},
                 "spec": {"selector": {"app": "podinfo"}, "ports": [{"name": "http", "port": 9898}]}}])
    mesh.wait("1m")
    return mesh


def _curl(mesh, path: str) -> str:
    return mesh.exec("deploy/flagger-loadtester", f"curl -sS -w ' %{{http_code}}' http://podinfo:9898{path}", NS)


@pytest.mark.parametrize("text, ms", [("0", 0.0), ("0ms", 0.0), ("250ms", 250.0), ("+5s", 5000.0), ("2m", 120000.0),
                                      ("1d", 86400000.0), (" 3h ", 10800000.0)])
def test_durations_the_policy_controller_accepts(text, ms):
    assert policy.parse_duration_ms(text) == ms


@pytest.mark.parametrize("text, message", [
    ("1.5s", "fractional values not supported"),
    ("5", "missing duration unit; did you mean '5s' or '5ms'?"),
    ("5us", "invalid duration unit us (expected one of 'ms', 's', 'm', 'h', or 'd')"),
    ("-1s", "duration value cannot be negative: '-1s'"),
    ("s", "s does not contain a timeout duration value"),
    ("1h30m", "invalid digit found in string"),
    ("213503982334601d", "Timeout value 213503982334601d overflows when converted to 'ms'"),
    ("18446744073709551616ms", "number too large to fit in target type"),
])
def test_durations_the_policy_controller_refuses(text, message):
    with pytest.raises(policy.AnnotationError) as err:
        policy.parse_duration_ms(text)
    assert str(err.value) == message


@pytest.fixture(scope="module")
def streams():
    """A route per stream deadline, each on its own paths."""
    mesh = _podinfo()
    mesh.apply([_route("chunked-idle", "/chunked", {"timeout.linkerd.io/idle": "2s"}),
                _route("delay-response", "/delay", {"timeout.linkerd.io/response": "2s"}),
                _route("status-request", "/status", {"timeout.linkerd.io/request": "3s"})])
    mesh.wait("10s")
    out = {path: _curl(mesh, path) for path in ("/chunked/1", "/chunked/5", "/delay/5")}
    return mesh, out


def test_an_idle_timeout_cuts_a_body_that_stalls_after_its_headers(streams):
    mesh, out = streams
    assert out["/chunked/1"] == '{\n  "delay": 1\n} 200', out
    assert out["/chunked/5"] == ("curl: (18) transfer closed with outstanding read data remaining\n 200\n"
                                 "command terminated with exit code 18\n")
    metrics = mesh.proxy_metrics("deploy/flagger-loadtester", NS)
    idle = dict(route_name="chunked-idle", http_status="200", error="IDLE_TIMEOUT")
    assert exposition_total(metrics, "outbound_http_route_request_statuses_total", **idle) == 1
    assert exposition_total(metrics, "outbound_http_route_backend_response_statuses_total", **idle) == 1
    assert exposition_total(metrics, "outbound_http_route_request_statuses_total", route_name="chunked-idle", error="") == 1


def test_a_response_timeout_ends_a_slow_answer_before_its_headers(streams):
    mesh, out = streams
    assert out["/delay/5"].endswith(" 504"), out
    metrics = mesh.proxy_metrics("deploy/flagger-loadtester", NS)
    assert exposition_total(metrics, "outbound_http_route_request_statuses_total", route_name="delay-response",
                  http_status="", error="RESPONSE_STREAM_TIMEOUT") == 1


def test_the_idle_timeout_does_not_run_before_the_headers():
    """idle alone never ends a response whose headers are slow: nothing streams yet (stream_timeouts.rs)."""
    mesh = _podinfo(seed=1)
    mesh.annotate("service", "podinfo", {"timeout.linkerd.io/idle": "1s"}, NS)
    mesh.wait("5s")
    assert _curl(mesh, "/delay/3").endswith(" 200")
    assert "(18)" in _curl(mesh, "/chunked/3")


def test_body_timeouts_keep_the_status_and_fail_without_counting_as_stat_outbound_timeouts(streams):
    mesh, _ = streams
    mesh.wait("20s")  # Prometheus has seen the route's series before they grow
    for _ in range(4):
        _curl(mesh, "/chunked/5")
    mesh.wait("20s")  # two Prometheus scrapes
    df = mesh.stat_outbound("deploy/flagger-loadtester", NS)
    row = df[(df.ROUTE == "chunked-idle") & (df.BACKEND == "")].iloc[0]
    assert row.SUCCESS < 1.0, "an IDLE_TIMEOUT is a failure"
    assert row.TIMEOUTS == 0, "stat-outbound's TIMEOUTS counts only REQUEST_TIMEOUT and RESPONSE_HEADERS_TIMEOUT"


def test_request_and_response_timeouts_also_cut_a_streaming_body():
    mesh = _podinfo(seed=2)
    mesh.apply([_route("chunked-request", "/chunked", {"timeout.linkerd.io/request": "2s"})])
    mesh.wait("10s")
    assert "(18)" in _curl(mesh, "/chunked/4")
    mesh.annotate("httproute.gateway.networking.k8s.io", "chunked-request",
                  {"timeout.linkerd.io/request": None, "timeout.linkerd.io/response": "2s"}, NS)
    mesh.wait("10s")
    assert "(18)" in _curl(mesh, "/chunked/4")
    metrics = mesh.proxy_metrics("deploy/flagger-loadtester", NS)
    assert exposition_total(metrics, "outbound_http_route_request_statuses_total", route_name="chunked-request",
                  http_status="200", error="REQUEST_TIMEOUT") == 1
    assert exposition_total(metrics, "outbound_http_route_request_statuses_total", route_name="chunked-request",
                  http_status="200", error="RESPONSE_STREAM_TIMEOUT") == 1


def _timeouts(mesh, path: str):
    index = policy.Index(mesh.cluster)
    cp = index.client_policy(NS, NS, "podinfo", 9898)
    route = cp.match("GET", path, "", {})
    return route.timeout_ms, route.response_timeout_ms, route.idle_timeout_ms


def test_where_a_routes_timeouts_come_from():
    """Route annotations, else the rule's timeouts.request, else (only when neither gives one) the Service's."""
    mesh = _podinfo(seed=3)
    mesh.annotate("service", "podinfo", {"timeout.linkerd.io/idle": "2s", "timeout.linkerd.io/request": "9s"}, NS)
    mesh.apply([_route("plain", "/chunked"),
                _route("rule-timeout", "/delay", timeouts={"request": "5s"}),
                _route("rule-zero", "/env", timeouts={"request": "0s"}),
                _route("annotated", "/status", {"timeout.linkerd.io/response": "1s"}, timeouts={"request": "5s"}),
                _route("annotated-request", "/headers", {"timeout.linkerd.io/request": "3s"}, timeouts={"request": "5s"})])
    mesh.wait("10s")
    assert _timeouts(mesh, "/chunked/1") == (9000.0, None, 2000.0), "nothing on the route: the Service's"
    assert _timeouts(mesh, "/delay/1") == (5000.0, None, None), "the rule's request timeout replaces them all"
    assert _timeouts(mesh, "/env") == (9000.0, None, 2000.0), "a zero rule timeout is none (GEP-1742)"
    assert _timeouts(mesh, "/status/200") == (5000.0, 1000.0, None), "annotation and rule timeout together"
    assert _timeouts(mesh, "/headers") == (3000.0, None, None), "the annotation wins over the rule"
    # and on the wire: the Service's idle timeout cuts the plain route's stream, not the rule-timeout one's
    assert "(18)" in _curl(mesh, "/chunked/4")
    mesh.annotate("service", "podinfo", {"timeout.linkerd.io/request": None}, NS)
    mesh.apply([_route("plain", "/chunked", timeouts={"request": "30s"})])
    mesh.wait("10s")
    assert _curl(mesh, "/chunked/4").endswith(" 200")


def test_an_invalid_idle_annotation_drops_the_route_and_is_ignored_on_a_service():
    mesh = _podinfo(seed=4)
    mesh.apply([_route("bad", "/chunked", {"timeout.linkerd.io/idle": "1.5s"}), _route("rest", "/")])
    mesh.annotate("service", "podinfo", {"timeout.linkerd.io/idle": "soon", "timeout.linkerd.io/request": "1s"}, NS)
    mesh.wait("10s")
    index = policy.Index(mesh.cluster)
    route = index.client_policy(NS, NS, "podinfo", 9898).match("GET", "/chunked/1", "", {})
    assert route.ident[3] == "rest", "the route with the invalid value is left out; the next one matches"
    # the Service's valid request timeout is not taken along with its invalid idle one: timeouts parse as a whole
    assert (route.timeout_ms, route.idle_timeout_ms) == (None, None)
