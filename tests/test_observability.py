"""tap, top, edges and the debug sidecar on meshed emojivoto."""
import re

import pytest

import labkit
from conftest import meshed_app
from labkit.sim.linkerd.tap import TapError

TAP_REQ = re.compile(r"^req id=\d+:\d+ proxy=(in |out) src=[\d.]+:\d+ dst=[\d.]+:\d+ tls=\S* "
                     r":method=[A-Z]+ :authority=\S+ :path=\S+$")
TAP_RSP = re.compile(r"^rsp id=\d+:\d+ proxy=(in |out) src=\S+ dst=\S+ tls=\S* :status=\d{3} latency=\d+µs$")
TAP_END = re.compile(r"^end id=\d+:\d+ proxy=(in |out) src=\S+ dst=\S+ tls=\S* "
                     r"(grpc-status=\w+ )?duration=\d+µs response-length=\d+B$")


@pytest.fixture(scope="module")
def mesh():
    return meshed_app(seed=5)


def test_tap_lines_have_the_clis_form(mesh):
    events = mesh.tap("deploy/web", namespace="emojivoto", duration="5s")
    lines = labkit.cli_text(events).splitlines()
    assert len(lines) >= 30  # ~2 requests/s in and ~3 out, three events each
    for line in lines:
        assert TAP_REQ.match(line) or TAP_RSP.match(line) or TAP_END.match(line), line
    assert {"in", "out"} == set(events["proxy"])
    assert set(events["type"]) == {"req", "rsp", "end"}


def test_tap_shows_the_doughnut_as_http_200_with_grpc_unknown(mesh):
    events = mesh.tap("deploy/web", namespace="emojivoto", duration="30s", to="deploy/voting",
                      path="/emojivoto.v1.VotingService/VoteDoughnut")
    assert len(events) > 0
    assert set(events["path"]) == {"/emojivoto.v1.VotingService/VoteDoughnut"}
    assert set(events[events["type"] == "rsp"]["status"]) == {200}
    assert set(events[events["type"] == "end"]["grpc_status"]) == {"Unknown"}
    assert set(events["dst_res"]) == {"deploy/voting"}


def test_tap_filters_by_method_and_path_prefix(mesh):
    events = mesh.tap("deploy/web", namespace="emojivoto", duration="10s", method="GET", path="/api/vote")
    assert len(events) > 0
    assert set(events["method"]) == {"GET"} and all(p.startswith("/api/vote") for p in events["path"])


def test_top_puts_the_doughnut_at_zero_percent(mesh):
    top = mesh.top("deploy/web", namespace="emojivoto", window="1m")
    doughnut = top[top["PATH"] == "/emojivoto.v1.VotingService/VoteDoughnut"]
    assert len(doughnut) == 1 and doughnut.iloc[0]["SUCCESS"] == 0.0 and doughnut.iloc[0]["COUNT"] > 3
    listing = top[top["PATH"] == "/api/list"]
    assert listing.iloc[0]["SUCCESS"] == 1.0 and 50 <= listing.iloc[0]["COUNT"] <= 70  # ~1/s for a minute
    text = labkit.cli_text(top)
    assert text.splitlines()[0].split()[:4] == ["Source", "Destination", "Method", "Path"]


def test_edges_show_who_calls_whom_over_mtls(mesh):
    edges = mesh.edges("deploy", namespace="emojivoto")
    pairs = {(r["SRC"], r["DST"]) for r in edges.to_dict("records")}
    assert pairs == {("vote-bot", "web"), ("web", "emoji"), ("web", "voting")}
    assert set(edges["SECURED"]) == {"√"}
    assert set(edges["CLIENT_ID"]) == {"default.emojivoto", "web.emojivoto"}


def test_tapping_pods_meshed_before_viz_fails_with_linkerds_message():
    mesh = labkit.connect(seed=2)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("2m")
    mesh.apply("emojivoto")
    mesh.inject("deploy", namespace="emojivoto")
    mesh.wait("1m")
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=True)
    mesh.wait("2m")
    with pytest.raises(TapError) as err:
        mesh.tap("deploy/web", namespace="emojivoto", duration="1s")
    message = str(err.value)
    assert message.startswith("no pods to tap for deployment/web\n1 pods found with tap not enabled:\n\t* web-")
    assert message.endswith("restart these pods to enable tap and make them valid tap targets\n")


def test_debug_sidecar_captures_the_requests_that_passed_the_pod(mesh):
    mesh.inject("deploy", namespace="emojivoto", name="voting", enable_debug_sidecar=True)
    mesh.wait("1m")
    log = mesh.logs("deploy/voting", namespace="emojivoto", container="linkerd-debug")
    votes = re.findall(r"HEADERS\[\d+\]: POST /emojivoto.v1.VotingService/Vote(\w+)", log)
    assert len(votes) >= 30 and "Doughnut" in votes
    # what tshark saw is what the proxy counted: the same number of requests in the same window
    before = len(votes)
    out = mesh.exec("deploy/voting", "tshark -i any -f tcp -Y http2 -a duration:20", namespace="emojivoto",
                    container="linkerd-debug")
    requests = re.findall(r"HEADERS\[\d+\]: POST (/emojivoto\.v1\.VotingService/Vote\w+)", out)
    assert 15 <= len(requests) <= 25  # vote-bot votes once a second
    assert out.rstrip().endswith(f"{2 * len(requests)} packets captured")
    assert before > 0


def test_tshark_http_request_filter_does_not_match_grpc(mesh):
    out = mesh.exec("deploy/voting", 'tshark -i any -f tcp -V -Y "http.request" -a duration:5',
                    namespace="emojivoto", container="linkerd-debug")
    assert out.strip().endswith("0 packets captured")


def test_grpc_outcome_travels_in_trailers_and_a_failed_call_is_trailers_only(mesh):
    out = mesh.exec("deploy/voting", "tshark -i any -f tcp -V -Y http2 -a duration:20", namespace="emojivoto",
                    container="linkerd-debug")
    frames = out.rsplit("\n\n", 1)[0].split("\nFrame ")  # without the closing "N packets captured"
    answers = [f for f in frames if "Header: :status: 200" in f]
    failed = [f for f in answers if "grpc-status: 2" in f]
    ok = [f for f in answers if "grpc-status: 0" in f]
    assert failed and ok and len(failed) + len(ok) == len(answers)
    for frame in failed:  # one HEADERS frame: status, then the error, nothing after
        assert frame.count("Stream: HEADERS") == 1 and "Stream: DATA" not in frame
        assert frame.rstrip().endswith("Header: grpc-status: 2\n        Header: grpc-message: ERROR")
    for frame in ok:  # headers, the message, then the trailers with the status
        kinds = re.findall(r"Stream: (\w+), Stream ID", frame)
        assert kinds == ["HEADERS", "DATA", "HEADERS"]
        assert frame.index("grpc-status: 0") > frame.index("Stream: DATA")


def test_tshark_filters_on_http2_header_fields(mesh):
    out = mesh.exec("deploy/voting", "tshark -i any -f tcp -a duration:30 -Y 'http2.headers.path contains "
                    "\"VoteDoughnut\" or http2.header.name == \"grpc-message\"'", namespace="emojivoto",
                    container="linkerd-debug")
    lines = [line for line in out.splitlines() if "HTTP2" in line]
    requests = [line for line in lines if "POST" in line]
    assert requests and all(line.endswith("/emojivoto.v1.VotingService/VoteDoughnut") for line in requests)
    answers = [line for line in lines if "POST" not in line]
    assert len(answers) == len(requests) and all(line.endswith(": 200 OK") for line in answers)  # trailers-only


def test_export_is_openmetrics_with_timestamps(mesh, tmp_path):
    path = mesh.export_metrics(tmp_path / "m.om")
    text = open(path).read()
    assert text.endswith("# EOF\n") and "# TYPE response_latency_ms histogram" in text
    sample = next(line for line in text.splitlines() if line.startswith("request_total{"))
    value, stamp = sample.rsplit(" ", 2)[1:]
    assert float(stamp) > 1.5e9 and float(value) >= 0


def test_proxy_metrics_parse_and_count_what_the_store_holds(mesh):
    from prometheus_client.parser import text_string_to_metric_families

    text = mesh.proxy_metrics("deploy/voting", namespace="emojivoto")
    assert text.startswith("#\n# POD voting-") and "(1 of 1)" in text.splitlines()[1]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"request", "response", "response_latency_ms", "tcp_open", "tcp_open_connections"} <= set(families)
    failures = [s for s in families["response"].samples
                if s.labels["direction"] == "inbound" and s.labels["classification"] == "failure"]
    assert failures and all(s.labels["grpc_status"] == "2" and s.labels["status_code"] == "200" for s in failures)
    # the scraper stored the same counter (as of the last scrape, at most 10 s older)
    total_now = sum(s.value for s in families["request"].samples if s.labels["direction"] == "inbound")
    stored = mesh.query('sum(request_total{direction="inbound", deployment="voting"})')["value"].iloc[0]
    assert total_now - 15 <= stored <= total_now
