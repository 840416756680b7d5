"""labkit.kube.linkerd_cli: the real CLI's JSON / text output → labkit tables → the same text again.

JSON samples and text goldens are the linkerd CLI's own (viz/cmd/testdata,
cli/cmd/testdata, test/integration/install/testdata in linkerd/linkerd2),
as quoted in reference/linkerd-formats.md §2 and §6.
"""
from __future__ import annotations

import json
import math

import pytest

from labkit.kube.linkerd_cli import (
    iter_json_documents,
    parse_check_json,
    parse_check_text,
    parse_edges_json,
    parse_routes_json,
    parse_stat_json,
    parse_stat_text,
    parse_tap_json,
)
from labkit.tables import cli_text, top_from_tap
from cli_goldens import (
    CHECK_GOLDEN,
    EDGES_ONE,
    EDGES_WIDE,
    ROUTES_ONE,
    ROUTES_WIDE,
    STAT_ALL,
    STAT_ONE,
    STAT_POD,
    STAT_TS,
    STAT_WIDE,
    TAP_BUSY,
    TAP_BUSY_WIDE,
)

# --------------------------------------------------------------------------- stat

STAT_ONE_JSON = """[
  {
    "namespace": "emojivoto1",
    "kind": "namespace",
    "name": "emoji",
    "success": 1,
    "rps": 2.05,
    "latency_ms_p50": 123,
    "latency_ms_p95": 123,
    "latency_ms_p99": 123,
    "tcp_open_connections": 123,
    "tcp_read_bytes_rate": 2.05,
    "tcp_write_bytes_rate": 2.05
  }
]
"""
STAT_DOCS = (
    "NAME          MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN\n"
    "bad              1/1     6.43%   4.7rps           1ms           1ms           4ms          2\n"
    "good             1/1   100.00%   5.9rps           1ms           1ms           1ms          3\n"
    "slow-cooker      1/1   100.00%   0.3rps           1ms           1ms           1ms          1\n"
)


def test_stat_json_golden_round_trip():
    df = parse_stat_json(STAT_ONE_JSON, "deploy", meshed={"emoji": "1/2"})
    row = df.iloc[0]
    assert row["SUCCESS"] == 1.0 and row["RPS"] == pytest.approx(2.05) and row["TCP_CONN"] == 123
    assert row["LATENCY_P99"] == 123.0 and "NAMESPACE" not in df.columns
    assert cli_text(df) == STAT_ONE


def test_stat_json_all_namespaces_and_wide():
    assert cli_text(parse_stat_json(STAT_ONE_JSON, "deploy", {"emojivoto1/emoji": "1/2"}, all_namespaces=True)) == STAT_ALL
    assert cli_text(parse_stat_json(STAT_ONE_JSON, "deploy", {"emoji": "1/2"}, wide=True)) == STAT_WIDE


def test_stat_json_pod_status_and_missing_meshed():
    df = parse_stat_json(STAT_ONE_JSON, "po", {"emoji": "1/1"}, status={"emoji": "Running"})
    assert cli_text(df) == STAT_POD
    assert parse_stat_json(STAT_ONE_JSON, "deploy")["MESHED"].tolist() == ["-"]


def test_stat_json_no_traffic_row():
    text = json.dumps([
        {"namespace": "emojivoto", "kind": "deployment", "name": "vote-bot", "success": None, "rps": None,
         "latency_ms_p50": None, "latency_ms_p95": None, "latency_ms_p99": None},
        {"namespace": "emojivoto", "kind": "deployment", "name": "web", "success": 0.9333333, "rps": 2.0,
         "latency_ms_p50": 12, "latency_ms_p95": 19, "latency_ms_p99": 20, "tcp_open_connections": 3,
         "tcp_read_bytes_rate": 100.5, "tcp_write_bytes_rate": 80.25},
    ], indent=2)
    df = parse_stat_json(text, meshed={"vote-bot": "1/1", "web": "1/1"}, window="1m")
    quiet = df.iloc[0]
    assert quiet["NAME"] == "vote-bot" and math.isnan(quiet["SUCCESS"]) and quiet["RPS"] == 0.0
    assert math.isnan(quiet["LATENCY_P50"]) and df.attrs["window"] == "1m"
    assert cli_text(df) == (
        "NAME       MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN\n"
        "vote-bot      1/1         -        -             -             -             -          -\n"
        "web           1/1    93.33%   2.0rps          12ms          19ms          20ms          3\n"
    )


def test_stat_json_trafficsplit_rows():
    rows = [{"namespace": "default", "kind": "trafficsplit", "name": "foo-split", "success": 1, "rps": 2.05,
             "latency_ms_p50": 123, "latency_ms_p95": 123, "latency_ms_p99": 123,
             "apex": "apex_name", "leaf": leaf, "weight": weight}
            for leaf, weight in (("service-2", "100m"), ("service-1", "900m"))]
    assert cli_text(parse_stat_json(json.dumps(rows, indent=2))) == STAT_TS


@pytest.mark.parametrize("golden", [STAT_ONE, STAT_ALL, STAT_POD, STAT_WIDE, STAT_TS, STAT_DOCS])
def test_stat_text_round_trip(golden):
    df = parse_stat_text(golden)
    assert cli_text(df) == golden


def test_stat_text_numbers_and_no_traffic():
    df = parse_stat_text(STAT_DOCS)
    bad = df.iloc[0]
    assert bad["SUCCESS"] == pytest.approx(0.0643) and bad["RPS"] == pytest.approx(4.7)
    assert bad["LATENCY_P99"] == 4.0 and bad["TCP_CONN"] == 2
    assert parse_stat_text("No traffic found.\n").empty


# --------------------------------------------------------------------------- routes

ROUTES_JSON = """{
  "deploy/foobar": [
    {
      "route": "/a",
      "authority": "foobar",
      "success": 1,
      "rps": 1.5,
      "latency_ms_p50": 123,
      "latency_ms_p95": 123,
      "latency_ms_p99": 123
    },
    {
      "route": "/b",
      "authority": "foobar",
      "success": 1,
      "rps": 1,
      "latency_ms_p50": 123,
      "latency_ms_p95": 123,
      "latency_ms_p99": 123
    },
    {
      "route": "/c",
      "authority": "foobar",
      "success": 0,
      "rps": 0,
      "latency_ms_p50": 123,
      "latency_ms_p95": 123,
      "latency_ms_p99": 123
    },
    {
      "route": "[DEFAULT]",
      "authority": "foobar",
      "success": 1,
      "rps": 0.5,
      "latency_ms_p50": 123,
      "latency_ms_p95": 123,
      "latency_ms_p99": 123
    }
  ]
}
"""


def test_routes_json_golden_round_trip():
    df = parse_routes_json(ROUTES_JSON)
    assert df.attrs["resource"] == "deploy/foobar"
    quiet = df[df["ROUTE"] == "/c"].iloc[0]
    assert math.isnan(quiet["SUCCESS"]) and quiet["RPS"] == 0.0 and math.isnan(quiet["LATENCY_P50"])
    assert cli_text(df) == ROUTES_ONE


def test_routes_json_wide_effective_and_actual():
    data = json.loads(ROUTES_JSON)
    for entry in data["deploy/foobar"]:
        s, r = entry.pop("success"), entry.pop("rps")
        entry.update(effective_success=s, effective_rps=r, actual_success=s, actual_rps=r)
    text = json.dumps(data, indent=2)
    wide = parse_routes_json(text, wide=True)
    assert cli_text(wide) == ROUTES_WIDE
    narrow = parse_routes_json(text)  # --to without -o wide: effective numbers under SUCCESS / RPS
    assert cli_text(narrow) == ROUTES_ONE


def test_routes_json_retries_effective_vs_actual():
    text = json.dumps({"deploy/books": [{
        "route": "HEAD /authors/{id}.json", "authority": "authors", "effective_success": 1.0,
        "effective_rps": 2.8, "actual_success": 0.5845, "actual_rps": 4.7,
        "latency_ms_p50": 7, "latency_ms_p95": 25, "latency_ms_p99": 37}]})
    df = parse_routes_json(text, wide=True)
    assert df.iloc[0]["ACTUAL_SUCCESS"] == pytest.approx(0.5845)
    assert cli_text(df).splitlines()[1].split() == [
        "HEAD", "/authors/{id}.json", "authors", "100.00%", "2.8rps", "58.45%", "4.7rps", "7ms", "25ms", "37ms"]


# --------------------------------------------------------------------------- tap

TAP_JSON = """{
  "source": {
    "ip": "0.0.0.1",
    "port": 0,
    "metadata": null
  },
  "destination": {
    "ip": "ff01::1",
    "port": 0,
    "metadata": {
      "pod": "my-pod",
      "tls": "true"
    }
  },
  "routeMeta": null,
  "proxyDirection": "OUTBOUND",
  "requestInitEvent": {
    "id": {
      "base": 1,
      "stream": 0
    },
    "method": "GET",
    "scheme": "HTTPS",
    "authority": "localhost",
    "path": "/some/path",
    "headers": [
      {
        "name": "header-name-1",
        "valueStr": "header-value-str-1"
      },
      {
        "name": "header-name-2",
        "valueBin": "aGVhZGVyLXZhbHVlLWJpbi0y"
      }
    ]
  }
}
{
  "source": {
    "ip": "0.0.0.1",
    "port": 0,
    "metadata": null
  },
  "destination": {
    "ip": "ff01::1",
    "port": 0,
    "metadata": null
  },
  "routeMeta": null,
  "proxyDirection": "OUTBOUND",
  "responseEndEvent": {
    "id": {
      "base": 1,
      "stream": 0
    },
    "sinceRequestInit": {
      "seconds": 10
    },
    "sinceResponseInit": {
      "seconds": 100
    },
    "responseBytes": 1337,
    "trailers": [
      {
        "name": "trailer-name",
        "valueBin": "aGVhZGVyLXZhbHVlLWJpbg=="
      }
    ],
    "grpcStatusCode": 666
  }
}
"""


def test_tap_json_golden_round_trip():
    df = parse_tap_json(TAP_JSON)
    assert df["type"].tolist() == ["req", "end"]
    end = df.iloc[1]
    assert end["duration_us"] == 100_000_000 and end["latency_us"] == 10_000_000
    assert end["response_length"] == 1337 and end["grpc_status"] == "Code(666)"
    assert df.iloc[0]["dst_res"] == "pod/my-pod" and df.iloc[0]["dst_labels"] == {"pod": "my-pod", "tls": "true"}
    assert cli_text(df) == TAP_BUSY


def test_tap_json_wide_golden():
    assert cli_text(parse_tap_json(TAP_JSON, wide=True)) == TAP_BUSY_WIDE


def _event(kind, body, direction="INBOUND", stream=1, src_meta=None, dst_meta=None, route=None):
    return {
        "source": {"ip": "10.1.3.76", "port": 57152, "metadata": src_meta},
        "destination": {"ip": "10.1.3.74", "port": 7000, "metadata": dst_meta},
        "routeMeta": {"route": route} if route else None,
        "proxyDirection": direction,
        kind: {"id": {"base": 0, "stream": stream}, **body},
    }


def _stream(text_events):
    return "".join(json.dumps(e, indent=2) + "\n" for e in text_events)


def test_tap_json_inbound_http_with_route_and_resources():
    src = {"deployment": "traffic", "namespace": "booksapp", "pod": "traffic-1", "tls": "true"}
    dst = {"deployment": "webapp", "namespace": "booksapp", "pod": "webapp-2"}
    route = "POST /books/{id}/edit"
    events = [
        _event("requestInitEvent", {"method": "POST", "scheme": "HTTP", "authority": "webapp.default:7000",
                                    "path": "/books/2878/edit", "headers": []}, src_meta=src, dst_meta=dst, route=route),
        _event("responseInitEvent", {"sinceRequestInit": {"nanos": 1234567}, "httpStatus": 500,
                                     "headers": [{"name": "content-type", "valueStr": "text/html"}]},
               src_meta=src, dst_meta=dst, route=route),
        _event("responseEndEvent", {"sinceRequestInit": {"nanos": 1500000}, "sinceResponseInit": {"nanos": 265432},
                                    "responseBytes": 30, "trailers": None, "grpcStatusCode": 0},
               src_meta=src, dst_meta=dst, route=route),
    ]
    df = parse_tap_json(_stream(events), wide="resources")
    req = df.iloc[0]
    assert (req["src_res"], req["src_ns"], req["dst_res"], req["rt_route"]) == (
        "deploy/traffic", "booksapp", "deploy/webapp", route)
    assert df.iloc[1]["status"] == 500 and df.iloc[1]["latency_us"] == pytest.approx(1234.567)
    assert df["tls"].tolist() == ["true"] * 3  # inbound: the source's tls label
    assert cli_text(df) == (
        "req id=0:1 proxy=in  src=10.1.3.76:57152 dst=10.1.3.74:7000 tls=true :method=POST "
        ":authority=webapp.default:7000 :path=/books/2878/edit src_res=deploy/traffic src_ns=booksapp "
        "dst_res=deploy/webapp dst_ns=booksapp rt_route=POST /books/{id}/edit\n"
        "rsp id=0:1 proxy=in  src=10.1.3.76:57152 dst=10.1.3.74:7000 tls=true :status=500 latency=1234µs "
        "src_res=deploy/traffic src_ns=booksapp dst_res=deploy/webapp dst_ns=booksapp rt_route=POST /books/{id}/edit\n"
        "end id=0:1 proxy=in  src=10.1.3.76:57152 dst=10.1.3.74:7000 tls=true duration=265µs response-length=30B "
        "src_res=deploy/traffic src_ns=booksapp dst_res=deploy/webapp dst_ns=booksapp rt_route=POST /books/{id}/edit\n"
    )


def test_tap_json_grpc_status_zero_needs_grpc_stream():
    grpc_headers = [{"name": "content-type", "valueStr": "application/grpc"}]
    end_body = {"sinceRequestInit": {"nanos": 900000}, "sinceResponseInit": {"nanos": 100000},
                "responseBytes": 5, "grpcStatusCode": 0}
    events = [
        _event("requestInitEvent", {"method": "POST", "authority": "voting-svc:8080",
                                    "path": "/emojivoto.v1.VotingService/VoteDog", "headers": grpc_headers},
               direction="OUTBOUND", stream=1, dst_meta={"tls": "true"}),
        _event("responseEndEvent", end_body, direction="OUTBOUND", stream=1, dst_meta={"tls": "true"}),
        _event("requestInitEvent", {"method": "GET", "authority": "web:80", "path": "/", "headers": []},
               direction="OUTBOUND", stream=2),
        _event("responseEndEvent", end_body, direction="OUTBOUND", stream=2),
        _event("requestInitEvent", {"method": "POST", "authority": "voting-svc:8080",
                                    "path": "/emojivoto.v1.VotingService/VoteDoughnut", "headers": grpc_headers},
               direction="OUTBOUND", stream=3),
        _event("responseEndEvent", dict(end_body, grpcStatusCode=2), direction="OUTBOUND", stream=3),
        _event("responseEndEvent", dict(end_body, resetErrorCode=7), direction="OUTBOUND", stream=4),
    ]
    lines = cli_text(parse_tap_json(_stream(events))).splitlines()
    assert lines[1].endswith("tls=true grpc-status=OK duration=100µs response-length=5B")
    assert lines[3].endswith("tls= duration=100µs response-length=5B")
    assert lines[5].endswith("tls= grpc-status=Unknown duration=100µs response-length=5B")
    assert lines[6].endswith("tls= reset-error=7 duration=100µs response-length=5B")


def test_tap_json_feeds_top():
    src = {"pod": "web-7d9f", "namespace": "emojivoto"}
    dst = {"pod": "voting-55c4", "namespace": "emojivoto", "tls": "true"}
    events = []
    for stream, code in ((1, 2), (2, 0)):
        path = "/emojivoto.v1.VotingService/VoteDoughnut" if code else "/emojivoto.v1.VotingService/VoteDog"
        events += [
            _event("requestInitEvent", {"method": "POST", "authority": "voting-svc:8080", "path": path,
                                        "headers": [{"name": "content-type", "valueStr": "application/grpc"}]},
                   "OUTBOUND", stream, src, dst),
            _event("responseInitEvent", {"sinceRequestInit": {"nanos": 800000}, "httpStatus": 200}, "OUTBOUND",
                   stream, src, dst),
            _event("responseEndEvent", {"sinceRequestInit": {"nanos": 950000}, "sinceResponseInit": {"nanos": 150000},
                                        "responseBytes": 5, "grpcStatusCode": code}, "OUTBOUND", stream, src, dst),
        ]
    top = top_from_tap(parse_tap_json(_stream(events)))
    assert top["PATH"].tolist() == ["/emojivoto.v1.VotingService/VoteDoughnut", "/emojivoto.v1.VotingService/VoteDog"]
    assert top["SUCCESS"].tolist() == [0.0, 1.0]
    assert cli_text(top).splitlines()[1].endswith("1   950µs   950µs   950µs         0.00%")


def test_iter_json_documents_rejects_garbage():
    assert list(iter_json_documents("  \n")) == []
    assert list(iter_json_documents('{"a": 1}\n{"b": 2}')) == [{"a": 1}, {"b": 2}]
    with pytest.raises(ValueError, match="not linkerd JSON"):
        list(iter_json_documents('{"a": 1}\nError: tap failed'))


# --------------------------------------------------------------------------- edges


def _edges_json():
    rows = [("vote-bot", "web", "emojivoto", "default.emojivoto", "web.emojivoto"),
            ("web", "emoji", "emojivoto", "web.emojivoto", "emoji.emojivoto"),
            ("web", "voting", "emojivoto", "web.emojivoto", "voting.emojivoto"),
            ("linkerd-identity", "linkerd-prometheus", "linkerd", "linkerd-identity.linkerd",
             "linkerd-prometheus.linkerd")]
    return json.dumps([{"src": s, "src_namespace": ns, "dst": d, "dst_namespace": ns, "client_id": c,
                        "server_id": v, "no_tls_reason": ""} for s, d, ns, c, v in rows], indent=2)


def test_edges_json_round_trip():
    df = parse_edges_json(_edges_json())
    assert df.iloc[0]["SRC"] == "vote-bot" and df.iloc[0]["SECURED"] == "√"
    assert df.iloc[0]["CLIENT_ID"] == "default.emojivoto"
    assert cli_text(df) == EDGES_ONE
    assert cli_text(parse_edges_json(_edges_json(), wide=True)) == EDGES_WIDE


def test_edges_json_unsecured_reason():
    text = json.dumps([{"src": "prometheus", "src_namespace": "linkerd-viz", "dst": "web", "dst_namespace": "emojivoto",
                        "client_id": "", "server_id": "", "no_tls_reason": "Not Provided By Remote"}])
    assert parse_edges_json(text).iloc[0]["SECURED"] == "Not Provided By Remote"


# --------------------------------------------------------------------------- check

CHECK_JSON = """{
  "success": false,
  "categories": [
    {
      "categoryName": "category",
      "checks": [
        {
          "description": "check1",
          "result": "success"
        },
        {
          "description": "check2",
          "hint": "https://linkerd.io/2/checks/#hint-anchor",
          "error": "This should contain instructions for fail",
          "result": "error"
        }
      ]
    }
  ]
}
"""
# test/integration/install/testdata/check.viz.proxy.golden
CHECK_VIZ_PROXY = """Linkerd core checks
===================

kubernetes-api
--------------
√ can initialize the client
√ can query the Kubernetes API

kubernetes-version
------------------
√ is running the minimum Kubernetes API version
√ is running the minimum kubectl version

linkerd-existence
-----------------
√ 'linkerd-config' config map exists
√ heartbeat ServiceAccount exist
√ control plane replica sets are ready
√ no unschedulable pods
√ control plane pods are ready
√ cluster networks can be verified
√ cluster networks contains all node podCIDRs

linkerd-config
--------------
√ control plane Namespace exists
√ control plane ClusterRoles exist
√ control plane ClusterRoleBindings exist
√ control plane ServiceAccounts exist
√ control plane CustomResourceDefinitions exist
√ control plane MutatingWebhookConfigurations exist
√ control plane ValidatingWebhookConfigurations exist
√ proxy-init container runs as root user if docker container runtime is used

linkerd-identity
----------------
√ certificate config is valid
√ trust anchors are using supported crypto algorithm
√ trust anchors are within their validity period
√ trust anchors are valid for at least 60 days
√ issuer cert is using supported crypto algorithm
√ issuer cert is within its validity period
√ issuer cert is valid for at least 60 days
√ issuer cert is issued by the trust anchor

linkerd-webhooks-and-apisvc-tls
-------------------------------
√ proxy-injector webhook has valid cert
√ proxy-injector cert is valid for at least 60 days
√ sp-validator webhook has valid cert
√ sp-validator cert is valid for at least 60 days
√ policy-validator webhook has valid cert
√ policy-validator cert is valid for at least 60 days

linkerd-identity-data-plane
---------------------------
√ data plane proxies certificate match CA

linkerd-version
---------------
√ can determine the latest version
√ cli is up-to-date

linkerd-control-plane-proxy
---------------------------
√ control plane proxies are healthy
√ control plane proxies are up-to-date
√ control plane proxies and cli versions match

linkerd-data-plane
------------------
√ data plane namespace exists
√ data plane proxies are ready
√ data plane is up-to-date
√ data plane and cli versions match
√ data plane pod labels are configured correctly
√ data plane service labels are configured correctly
√ data plane service annotations are configured correctly
√ opaque ports are properly annotated

Linkerd extensions checks
=========================

linkerd-viz
-----------
√ linkerd-viz Namespace exists
√ linkerd-viz ClusterRoles exist
√ linkerd-viz ClusterRoleBindings exist
√ tap API server has valid cert
√ tap API server cert is valid for at least 60 days
√ tap API service is running
√ linkerd-viz pods are injected
√ viz extension pods are running
√ viz extension proxies are healthy
√ viz extension proxies are up-to-date
√ viz extension proxies and cli versions match
√ prometheus is installed and configured correctly
√ can initialize the client
√ viz extension self-check

linkerd-viz-data-plane
----------------------
√ data plane namespace exists
√ data plane proxy metrics are present in Prometheus

Status check results are √
"""


def test_check_json_golden_round_trip():
    report = parse_check_json(CHECK_JSON, header=False)
    assert not report.ok
    failed = report.failed()[0]
    assert failed.hint_anchor == "hint-anchor" and failed.message == "This should contain instructions for fail"
    assert report.render(summary=False) == CHECK_GOLDEN
    assert report.to_json() == [json.loads(CHECK_JSON)]


def test_check_json_core_then_extension_documents():
    core = {"success": True, "categories": [{"categoryName": "kubernetes-api", "checks": [
        {"description": "can initialize the client", "result": "success"}]}]}
    viz = {"success": True, "categories": [{"categoryName": "linkerd-viz", "checks": [
        {"description": "linkerd-viz Namespace exists", "result": "success"}]}]}
    report = parse_check_json(json.dumps(core, indent=2) + "\n" + json.dumps(viz, indent=2) + "\n")
    assert report.ok and [name for name, _ in report.extensions] == ["linkerd-viz"]
    assert report.render().splitlines()[-8:] == [
        "Linkerd extensions checks", "=========================", "", "linkerd-viz", "-----------",
        "√ linkerd-viz Namespace exists", "", "Status check results are √"]


def test_check_text_round_trip_full_run():
    report = parse_check_text(CHECK_VIZ_PROXY)
    assert report.ok and len(report.categories) == 10 and len(report.extensions) == 2
    assert report.render() == CHECK_VIZ_PROXY


def test_check_text_failing_and_warning():
    text = (
        "Linkerd core checks\n===================\n\n"
        "linkerd-version\n---------------\n"
        "√ can determine the latest version\n"
        "‼ cli is up-to-date\n"
        "    is running version 2.14.9 but the latest stable version is 2.14.10\n"
        "    see https://linkerd.io/2/checks/#l5d-version-cli for hints\n"
        "\n"
        "pre-kubernetes-setup\n--------------------\n"
        "× control plane namespace does not already exist\n"
        "    The \"linkerd\" namespace already exists\n"
        "    see https://linkerd.io/2/checks/#pre-ns for hints\n"
        "\n"
        "Status check results are ×\n"
    )
    report = parse_check_text(text)
    assert not report.ok
    assert report.warnings()[0].hint_anchor == "l5d-version-cli"
    assert report.failed()[0].message == 'The "linkerd" namespace already exists'
    assert report.render() == text
