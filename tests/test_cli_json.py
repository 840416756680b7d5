"""``-o json`` as linkerd (viz/cmd, version-2.20) writes it: byte for byte against its goldens.

The goldens (STAT_ONE_JSON, ROUTES_JSON, TAP_JSON, and edges' below) are
linkerd2's viz/cmd/testdata/*_output_json.golden; the rows here hold the
numbers those goldens were made from, put through the CLI stand-in's writers.
"""
from __future__ import annotations

import json
import math

from labkit.sim.serve.cli_json import edges_json, go_json, routes_json, stat_json, tap_event
from labkit.tables import new_table
from test_linkerd_cli import ROUTES_JSON, STAT_ONE_JSON, TAP_JSON

# viz/cmd/testdata/edges_one_output_json.golden (first two rows)
EDGES_JSON = """[
  {
    "src": "vote-bot",
    "src_namespace": "emojivoto",
    "dst": "web",
    "dst_namespace": "emojivoto",
    "client_id": "default.emojivoto",
    "server_id": "web.emojivoto",
    "no_tls_reason": ""
  },
  {
    "src": "web",
    "src_namespace": "emojivoto",
    "dst": "emoji",
    "dst_namespace": "emojivoto",
    "client_id": "web.emojivoto",
    "server_id": "emoji.emojivoto",
    "no_tls_reason": ""
  }
]
"""


def test_stat_json_matches_the_golden_byte_for_byte():
    row = {"NAMESPACE": "emojivoto1", "NAME": "emoji", "MESHED": "1/2", "SUCCESS": 1.0, "RPS": 2.05,
           "LATENCY_P50": 123.0, "LATENCY_P95": 123.0, "LATENCY_P99": 123.0, "TCP_CONN": 123,
           "READ_BYTES/SEC": 2.05, "WRITE_BYTES/SEC": 2.05}
    table = new_table("stat", [row], kind="ns", wide=True, all_namespaces=True)
    assert stat_json(table, "ns", "default") == STAT_ONE_JSON


def test_stat_json_without_traffic_is_null_and_has_no_tcp_fields():
    table = new_table("stat", [{"NAME": "idle", "MESHED": "1/1"}], kind="deploy", wide=True)
    (entry,) = json.loads(stat_json(table, "deploy", "emojivoto"))
    assert entry == {"namespace": "emojivoto", "kind": "deployment", "name": "idle", "success": None, "rps": None,
                     "latency_ms_p50": None, "latency_ms_p95": None, "latency_ms_p99": None}


def test_routes_json_matches_the_golden_byte_for_byte():
    rows = [{"ROUTE": r, "SERVICE": "foobar", "SUCCESS": s, "RPS": rps, "LATENCY_P50": 123.0,
             "LATENCY_P95": 123.0, "LATENCY_P99": 123.0}
            for r, s, rps in (("/a", 1.0, 1.5), ("/b", 1.0, 1.0), ("/c", math.nan, 0.0), ("[DEFAULT]", 1.0, 0.5))]
    assert routes_json(new_table("routes", rows), "deploy/foobar", False) == ROUTES_JSON


def test_routes_json_with_to_has_effective_and_actual():
    rows = [{"ROUTE": "GET /", "SERVICE": "books", "EFFECTIVE_SUCCESS": 1.0, "EFFECTIVE_RPS": 2.8,
             "ACTUAL_SUCCESS": 0.5845, "ACTUAL_RPS": 4.7, "LATENCY_P50": 7.0, "LATENCY_P95": 25.0, "LATENCY_P99": 37.0}]
    text = routes_json(new_table("routes", rows, wide=True), "deploy/webapp", True)
    (entry,) = json.loads(text)["deploy/webapp"]
    assert list(entry) == ["route", "authority", "effective_success", "effective_rps", "actual_success",
                           "actual_rps", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99"]
    assert '"effective_success": 1,' in text and entry["actual_success"] == 0.5845


def test_edges_json_matches_the_golden_byte_for_byte():
    rows = [{"SRC": "vote-bot", "DST": "web", "SRC_NS": "emojivoto", "DST_NS": "emojivoto",
             "CLIENT_ID": "default.emojivoto", "SERVER_ID": "web.emojivoto", "SECURED": "\u221a"},
            {"SRC": "web", "DST": "emoji", "SRC_NS": "emojivoto", "DST_NS": "emojivoto",
             "CLIENT_ID": "web.emojivoto", "SERVER_ID": "emoji.emojivoto", "SECURED": "\u221a"}]
    assert edges_json(new_table("edges", rows)) == EDGES_JSON


def _shape(value):
    """The keys (in order) of every object, recursively: what must match for byte-identical output."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__ if value is not None else None


def test_tap_events_have_the_goldens_shape_and_linkerds_enums():
    golden = [json.loads(doc) for doc in TAP_JSON.replace("}\n{", "}\n\x00{").split("\x00")]
    req = {"type": "req", "id": "1:0", "proxy": "out", "src": "0.0.0.1:0", "dst": "[ff01::1]:0",
           "dst_labels": {"pod": "my-pod", "tls": "true"}, "method": "GET", "authority": "localhost",
           "path": "/some/path", "_headers": [("header-name-1", "header-value-str-1")]}
    event = tap_event(req, grpc=False)
    assert event["requestInitEvent"]["scheme"] == "HTTP"  # the protobuf enum's name, not "http"
    expected = json.loads(json.dumps(golden[0]))
    expected["requestInitEvent"]["scheme"] = "HTTP"
    expected["requestInitEvent"]["headers"] = expected["requestInitEvent"]["headers"][:1]
    assert go_json(event) == go_json(expected)
    end = {"type": "end", "id": "1:0", "proxy": "out", "src": "0.0.0.1:0", "dst": "[ff01::1]:0",
           "latency_us": 10e6, "duration_us": 100e6, "response_length": 1337, "grpc_status": "Code(666)",
           "_trailers": [("grpc-status", "666")]}
    got = tap_event(end, grpc=True)
    binary = golden[1]["responseEndEvent"]["trailers"][0]
    golden[1]["responseEndEvent"]["trailers"] = [{"name": binary["name"], "valueStr": "666"}]  # we model text only
    assert _shape(got) == _shape(golden[1])
    assert got["responseEndEvent"]["grpcStatusCode"] == 666
    assert got["responseEndEvent"]["sinceRequestInit"] == {"seconds": 10}


def test_tap_without_headers_writes_null_as_go_does_for_a_nil_slice():
    event = tap_event({"type": "req", "id": "0:1", "proxy": "in", "src": "10.0.0.1:5000", "dst": "10.0.0.2:80",
                       "method": "GET", "authority": "web", "path": "/", "_headers": []}, grpc=False)
    assert event["requestInitEvent"]["headers"] is None
    end = tap_event({"type": "end", "id": "0:1", "proxy": "in", "src": "10.0.0.1:5000", "dst": "10.0.0.2:80",
                     "latency_us": 1500.0, "duration_us": 20.0, "response_length": 5, "reset_error": 0}, grpc=False)
    assert end["responseEndEvent"]["trailers"] is None and "resetErrorCode" not in end["responseEndEvent"]
    assert end["responseEndEvent"]["sinceRequestInit"] == {"nanos": 1_500_000}


def test_go_json_numbers():
    assert go_json([1.0, 2.05, 1e-7, 0.00001, 1e21, 123456789.0, None, "a<b&c>"], indent=False) == \
        '[1,2.05,1e-7,0.00001,1e+21,123456789,null,"a\\u003cb\\u0026c\\u003e"]'
