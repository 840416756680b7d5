"""The query templates: byte-for-byte what linkerd-viz's metrics-api and Flagger send.

Expected strings are the rendered examples quoted in
/work/shared/reference/linkerd-formats.md §3.1 / §3.2 (from linkerd2's
stat_summary_test.go and top_routes_test.go) and §3.5 / flagger-and-policies.md
§2.4 (Flagger's linkerd.go, and the wire form its linkerd_test.go asserts).
"""
from __future__ import annotations

import re

import pytest

from labkit.metrics import queries
from labkit.metrics.promql import compile_query

POD = {"direction": "inbound", "namespace": "emojivoto", "pod": "emojivoto-1"}


def test_stat_request_query_matches_metrics_api():
    assert queries.stat_requests(POD, ["namespace", "pod"], "1m") == (
        'sum(increase(response_total{direction="inbound", namespace="emojivoto", pod="emojivoto-1"}[1m])) '
        "by (namespace, pod, classification, tls)"
    )


def test_stat_latency_query_matches_metrics_api():
    assert queries.stat_latency("0.5", POD, ["namespace", "pod"], "1m") == (
        'histogram_quantile(0.5, sum(irate(response_latency_ms_bucket{direction="inbound", namespace="emojivoto", '
        'pod="emojivoto-1"}[1m])) by (le, namespace, pod))'
    )
    assert [q.split(",")[0] for q in (queries.stat_latency(x, POD, ["pod"]) for x in queries.STAT_QUANTILES)] == [
        "histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99",
    ]


def test_stat_tcp_queries_match_metrics_api():
    assert queries.stat_tcp_connections(POD, ["namespace", "pod"]) == (
        'sum(tcp_open_connections{direction="inbound", namespace="emojivoto", pod="emojivoto-1"}) by (namespace, pod)'
    )
    assert queries.stat_tcp_bytes("read", POD, ["namespace", "pod"], "1m") == (
        'sum(increase(tcp_read_bytes_total{direction="inbound", namespace="emojivoto", peer="src", '
        'pod="emojivoto-1"}[1m])) by (namespace, pod)'
    )
    assert queries.stat_tcp_bytes("write", POD, ["namespace"], "10m", peer="dst").startswith(
        'sum(increase(tcp_write_bytes_total{direction="inbound", namespace="emojivoto", peer="dst", pod="emojivoto-1"}[10m]))'
    )
    with pytest.raises(ValueError, match="read"):
        queries.stat_tcp_bytes("sideways", POD, ["pod"])


def test_outbound_stat_query_sorts_labels_alphabetically():
    labels = {"pod": "emojivoto-1", "namespace": "emojivoto", "dst_pod": "emojivoto-2", "direction": "outbound",
              "dst_namespace": "emojivoto"}
    assert queries.stat_requests(labels, ["namespace", "pod"], "1m") == (
        'sum(increase(response_total{direction="outbound", dst_namespace="emojivoto", dst_pod="emojivoto-2", '
        'namespace="emojivoto", pod="emojivoto-1"}[1m])) by (namespace, pod, classification, tls)'
    )


def test_svc_stat_uses_an_authority_regex_sorted_with_the_labels():
    labels = {"direction": "outbound", "authority": ("=~", "^web.emojivoto.svc.cluster.local.*")}
    assert queries.stat_requests(labels, ["dst_namespace", "dst_service"], "1m") == (
        'sum(increase(response_total{authority=~"^web.emojivoto.svc.cluster.local.*", direction="outbound"}[1m])) '
        "by (dst_namespace, dst_service, classification, tls)"
    )


def test_route_query_matches_top_routes():
    labels = {"deployment": "books", "direction": "inbound", "namespace": "default"}
    assert queries.route_requests(labels, ["books.default.svc.cluster.local"], "rt_route", "1m") == (
        'sum(increase(route_response_total{deployment="books", direction="inbound", '
        'dst=~"(books.default.svc.cluster.local)(:\\\\d+)?", namespace="default"}[1m])) by (rt_route, dst, classification)'
    )
    actual = queries.route_requests(labels, ["a.ns.svc.cluster.local", "b.ns.svc.cluster.local"], ["rt_route"], "1m", actual=True)
    assert actual.startswith("sum(increase(route_actual_response_total{")
    assert 'dst=~"(a.ns.svc.cluster.local|b.ns.svc.cluster.local)(:\\\\d+)?"' in actual
    assert queries.route_latency("0.95", labels, ["books.default.svc.cluster.local"], "rt_route", "1m") == (
        'histogram_quantile(0.95, sum(irate(route_response_latency_ms_bucket{deployment="books", direction="inbound", '
        'dst=~"(books.default.svc.cluster.local)(:\\\\d+)?", namespace="default"}[1m])) by (le, dst, rt_route))'
    )


def test_route_dst_regex_reaches_prometheus_as_a_single_backslash_d():
    q = queries.route_requests({"direction": "inbound"}, ["books.default.svc.cluster.local"], "rt_route", "1m")
    tree = compile_query(q)
    matchers = dict((name, (op, value)) for name, op, value in tree.expr.args[0].sel.matchers)
    assert matchers["dst"] == ("=~", r"(books.default.svc.cluster.local)(:\d+)?")
    assert re.fullmatch(matchers["dst"][1], "books.default.svc.cluster.local:7002")


def test_label_values_are_go_quoted():
    assert queries.label_string({"b": 'say "hi"', "a": "back\\slash"}) == '{a="back\\\\slash", b="say \\"hi\\""}'
    assert queries.label_string({}) == "{}"
    with pytest.raises(ValueError, match="operator"):
        queries.label_string({"a": ("==", "x")})


# Flagger's linkerd_test.go asserts exactly these strings reach Prometheus (after trimQuery).
FLAGGER_SUCCESS_RATE = (
    ' sum( rate( response_total{ namespace="default", deployment=~"podinfo", classification!="failure", '
    'direction="inbound" }[1m] ) ) / sum( rate( response_total{ namespace="default", deployment=~"podinfo", '
    'direction="inbound" }[1m] ) ) * 100'
)
FLAGGER_DURATION = (
    ' histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="default", deployment=~"podinfo", '
    'direction="inbound" }[1m] ) ) by (le) )'
)
# linkerd-formats.md §3.5, reformatted onto lines there; compared with whitespace removed.
REFERENCE_SUCCESS_RATE = (
    'sum(rate(response_total{namespace="{{ namespace }}",deployment=~"{{ target }}",classification!="failure",'
    'direction="inbound"}[{{ interval }}])) / sum(rate(response_total{namespace="{{ namespace }}",'
    'deployment=~"{{ target }}",direction="inbound"}[{{ interval }}])) * 100'
)
REFERENCE_DURATION = (
    'histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="{{ namespace }}",'
    'deployment=~"{{ target }}",direction="inbound"}[{{ interval }}])) by (le))'
)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_flagger_queries_are_what_flagger_sends():
    assert queries.flagger_success_rate("default", "podinfo", "1m") == FLAGGER_SUCCESS_RATE
    assert queries.flagger_duration("default", "podinfo", "1m") == FLAGGER_DURATION


def test_flagger_queries_match_the_reference_templates():
    fill = {"{{ namespace }}": "test", "{{ target }}": "podinfo", "{{ interval }}": "30s"}
    for ours, template in [
        (queries.flagger_success_rate("test", "podinfo", "30s"), REFERENCE_SUCCESS_RATE),
        (queries.flagger_duration("test", "podinfo", "30s"), REFERENCE_DURATION),
    ]:
        for k, v in fill.items():
            template = template.replace(k, v)
        assert _squash(ours) == _squash(template)


def test_windows_are_validated():
    assert "[90s]" in queries.stat_requests(POD, ["pod"], 90)
    for bad in ("1 minute", "", "-1m"):
        with pytest.raises(ValueError, match="window"):
            queries.stat_requests(POD, ["pod"], bad)
    with pytest.raises(ValueError, match="window"):
        queries.stat_requests(POD, ["pod"], 1.5)


@pytest.mark.parametrize("query", [
    queries.stat_requests(POD, ["namespace", "pod"], "1m"),
    queries.stat_latency("0.99", POD, ["namespace", "pod"], "1m"),
    queries.stat_tcp_connections(POD, ["namespace", "pod"]),
    queries.stat_tcp_bytes("write", POD, ["namespace", "pod"], "1m"),
    queries.route_requests({"direction": "outbound"}, ["a.b.svc.cluster.local"], "rt_route", "1m", actual=True),
    queries.route_latency("0.5", {"direction": "inbound"}, [], "rt_route", "1m"),
    queries.flagger_success_rate("test", "podinfo", "1m"),
    queries.flagger_duration("test", "podinfo", "1m"),
])
def test_every_template_is_in_the_evaluators_subset(query):
    compile_query(query)  # raises QueryError if the embedded evaluator could not answer it


def test_flagger_template_model_uses_the_canarys_refs_and_the_metrics_interval():
    from labkit.metrics import queries

    canary = {"metadata": {"name": "podinfo", "namespace": "test"},
              "spec": {"targetRef": {"name": "podinfo-v2"}, "service": {"name": "podinfo"},
                       "routeRef": {"name": "podinfo-route"}}}
    model = queries.flagger_template_model(canary, "", {"direction": "inbound"})
    assert (model["target"], model["service"], model["ingress"], model["route"]) == \
        ("podinfo-v2", "podinfo", "podinfo-v2", "podinfo-route")
    query = queries.render_flagger_template(
        'sum(rate(response_total{namespace="{{ namespace }}", deployment="{{ target }}", '
        'direction="{{ variables.direction }}"}[{{ interval }}])) {{ variables.missing }}', model)
    assert query == 'sum(rate(response_total{namespace="test", deployment="podinfo-v2", direction="inbound"}[])) <no value>'
    with pytest.raises(queries.TemplateRenderError, match='function "canary" not defined'):
        queries.render_flagger_template("{{ canary }}", model)


def test_flaggers_builtin_checks_ask_linkerd_only_with_the_linkerd_provider():
    from labkit.metrics import queries

    assert queries.flagger_metrics_provider("linkerd", None) == "linkerd"
    assert queries.flagger_metrics_provider("linkerd", "gatewayapi:v1beta1") == "linkerd"  # Flagger keeps Linkerd's
    assert queries.flagger_metrics_provider("gatewayapi:v1beta1", None) == "gatewayapi:v1beta1"
    assert queries.flagger_metrics_provider("gatewayapi:v1beta1", "linkerd") == "linkerd"
    assert queries.flagger_metrics_provider("linkerd", None, "Service") == "linkerd:service"
    assert queries.flagger_builtin_query("request-success-rate", "linkerd", "test", "podinfo", "1m") == \
        queries.flagger_success_rate("test", "podinfo", "1m")
    http = queries.flagger_builtin_query("request-duration", "gatewayapi:v1beta1", "test", "podinfo", "30s")
    assert "http_request_duration_seconds_bucket{" in http and 'kubernetes_namespace="test"' in http
    assert "[30s]" in http and "\n" not in http and "{{" not in http
    assert queries.flagger_duration_ms(0.25, "gatewayapi:v1beta1") == 250.0
    assert queries.flagger_duration_ms(3.0, "linkerd") == 3.0
