"""The modelled linkerd-proxy counts and prints metrics the way the real one does."""
from prometheus_client.parser import text_string_to_metric_families

from labkit.sim.linkerd import proxy as lp

ITEMS = (("direction", "inbound"), ("target_addr", "10.244.1.5:8080"), ("tls", "true"))


def test_latency_buckets_are_linkerds_inclusive_whole_ms_bounds():
    stats = lp.HttpStats(ITEMS)
    for ms in (0.4, 1.0, 1.9, 5.0, 5.2, 49.99, 50001):
        stats.record(200, None, "", False, ms)
    buckets = {dict(items)["le"]: v for name, items, v in stats.samples() if name.endswith("_bucket")}
    assert len(buckets) == 26 and list(buckets)[-1] == "+Inf"
    # 0.4→0, 1.0→1, 1.9→1 fall in le=1; 5.0, 5.2→5 in le=5; 49.99→49 in le=50; 50001 only in +Inf
    assert buckets["1"] == 3 and buckets["4"] == 3 and buckets["5"] == 5 and buckets["50"] == 6
    assert buckets["50000"] == 6 and buckets["+Inf"] == 7
    count = [v for n, _, v in stats.samples() if n == "response_latency_ms_count"]
    total = [v for n, _, v in stats.samples() if n == "response_latency_ms_sum"]
    assert count == [7] and total == [0 + 1 + 1 + 5 + 5 + 49 + 50001]


def test_classification_follows_the_proxy():
    assert lp.classify(500, None, None) and lp.classify(503, None, "")
    assert not lp.classify(404, None, None) and not lp.classify(303, None, None)
    assert lp.classify(200, 2, None)  # gRPC Unknown: HTTP 200, still a failure
    assert not lp.classify(200, 5, None)  # gRPC NotFound counts as success
    assert lp.classify(200, None, "timeout")


def test_response_total_carries_class_labels_in_order():
    stats = lp.HttpStats(ITEMS)
    stats.record(200, 2, "", True, 3)
    stats.record(200, 0, "", False, 3)
    rows = [items for name, items, _ in stats.samples() if name == "response_total"]
    assert [k for k, _ in rows[0]][-4:] == ["status_code", "classification", "grpc_status", "error"]
    assert {dict(r)["classification"] + dict(r)["grpc_status"] for r in rows} == {"failure2", "success0"}


def test_exposition_parses_with_prometheus_client_and_keeps_help_text():
    proxy = lp.Proxy("10.244.1.5", "emojivoto", "web", "edge-25.4.4", True)
    proxy.stats(proxy.inbound, "k", lambda: ITEMS).record(200, None, "", False, 2)
    proxy.stats(proxy.inbound, "k", lambda: ITEMS).record(500, None, "", True, 12)
    text = lp.exposition(proxy)
    assert "# HELP request_total Total count of HTTP requests.\n# TYPE request_total counter" in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["request"].samples[0].value == 2  # prometheus_client drops _total from family names
    hist = families["response_latency_ms"]
    assert hist.type == "histogram"
    statuses = {s.labels["status_code"] for s in hist.samples}
    assert statuses == {"200", "500"}
    legacy = [line for line in text.splitlines() if line.startswith("response_latency_ms_bucket")]
    assert any('le="+Inf"' in line for line in legacy)
    assert not any('le="1.0"' in line for line in legacy)  # integer bounds, as the Rust proxy prints them
    # the 2.20 registry section follows, with client_rust's float bounds, and ends the body
    assert 'inbound_http_response_duration_seconds_bucket{' in text and 'le="1.0"' in text
    assert text.endswith("# EOF\n")


def test_identity_is_the_service_accounts():
    assert lp.identity("web", "emojivoto") == "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
