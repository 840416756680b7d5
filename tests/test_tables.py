"""labkit.tables: the CLI-shaped tables and their byte-exact text.

The goldens below are the linkerd CLI's own test outputs and documentation
samples quoted in reference/linkerd-formats.md §2 and §6 (viz/cmd/testdata,
cli/cmd/testdata, test/integration/install/testdata in linkerd/linkerd2).
Each is rebuilt from a DataFrame and compared byte for byte.
"""
from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest

from labkit.tables import (
    Check,
    CheckReport,
    cli_text,
    columns_for,
    go_duration,
    human_duration,
    new_table,
    tap_line,
    top_from_tap,
)
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

NAN = float("nan")


def stat_row(name, meshed="1/2", success=1.0, rps=2.05, lat=123, tcp=123, **extra):
    return dict(NAME=name, MESHED=meshed, SUCCESS=success, RPS=rps, LATENCY_P50=lat, LATENCY_P95=lat,
                LATENCY_P99=lat, TCP_CONN=tcp, **extra)


# --------------------------------------------------------------------------- stat goldens

STAT_CIRCUIT_BREAKING = (
    "NAME          MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN\n"
    "bad              1/1     6.43%   4.7rps           1ms           1ms           4ms          2\n"
    "good             1/1   100.00%   5.9rps           1ms           1ms           1ms          3\n"
    "slow-cooker      1/1   100.00%   0.3rps           1ms           1ms           1ms          1\n"
)
# viz/cmd/testdata/stat_one_ts_output.golden


def test_stat_one_golden():
    assert cli_text(new_table("stat", [stat_row("emoji")])) == STAT_ONE


def test_stat_all_namespaces_golden():
    df = new_table("stat", [stat_row("emoji", NAMESPACE="emojivoto1")], all_namespaces=True)
    assert list(df.columns)[:2] == ["NAMESPACE", "NAME"]
    assert cli_text(df) == STAT_ALL


def test_stat_pod_golden():
    df = new_table("stat", [stat_row("emoji", meshed="1/1", STATUS="Running")], resource="po")
    assert list(df.columns)[:3] == ["NAME", "STATUS", "MESHED"]
    assert cli_text(df) == STAT_POD


def test_stat_wide_golden():
    row = stat_row("emoji", **{"READ_BYTES/SEC": 2.05, "WRITE_BYTES/SEC": 2.05})
    df = new_table("stat", [row], wide=True)
    assert list(df.columns)[-2:] == ["READ_BYTES/SEC", "WRITE_BYTES/SEC"]
    assert cli_text(df) == STAT_WIDE


def test_stat_docs_sample_sorted_and_rounded():
    rows = [
        stat_row("slow-cooker", "1/1", 1.0, 0.3, 1, 1),
        stat_row("good", "1/1", 1.0, 5.9, 1, 3),
        dict(stat_row("bad", "1/1", 0.0643, 4.7, 1, 2), LATENCY_P50=0.6, LATENCY_P99=3.5),
    ]
    df = new_table("stat", rows, resource="deploy", window="1m")
    assert df["NAME"].tolist() == ["bad", "good", "slow-cooker"]  # the CLI's order, in the frame too
    assert df.attrs["window"] == "1m" and df.attrs["table"] == "stat"
    assert cli_text(df) == STAT_CIRCUIT_BREAKING


def test_stat_trafficsplit_golden():
    rows = [
        dict(NAME="foo-split", APEX="apex_name", LEAF=leaf, WEIGHT=w, SUCCESS=1.0, RPS=2.05,
             LATENCY_P50=123, LATENCY_P95=123, LATENCY_P99=123)
        for leaf, w in (("service-2", "100m"), ("service-1", "900m"))
    ]
    df = new_table("stat", rows, resource="trafficsplit")
    assert list(df.columns) == ["NAME", "APEX", "LEAF", "WEIGHT", "SUCCESS", "RPS",
                                "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    assert cli_text(df) == STAT_TS


def test_stat_no_traffic_row_prints_dashes():
    rows = [stat_row("web", "1/1", 0.9333, 2.0, 12.4, 3), dict(NAME="vote-bot", MESHED="1/1")]
    df = new_table("stat", rows)
    quiet = df[df["NAME"] == "vote-bot"].iloc[0]
    assert math.isnan(quiet["SUCCESS"]) and math.isnan(quiet["LATENCY_P99"]) and quiet["TCP_CONN"] == 0
    assert cli_text(df) == (
        "NAME       MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN\n"
        "vote-bot      1/1         -        -             -             -             -          -\n"
        "web           1/1    93.33%   2.0rps          12ms          12ms          12ms          3\n"
    )


def test_stat_svc_meshed_dash_and_latency_rounding():
    # %dms of a value metrics-api rounded half away from zero; a missing latency in a traffic row prints 0ms
    df = new_table("stat", [dict(NAME="web-svc", SUCCESS=1, RPS=1, LATENCY_P50=2.5, LATENCY_P95=NAN,
                                 LATENCY_P99=0.49, TCP_CONN=0)], resource="svc")
    assert df["MESHED"].tolist() == ["-"]
    line = cli_text(df).splitlines()[1]
    assert line.split() == ["web-svc", "-", "100.00%", "1.0rps", "3ms", "0ms", "0ms", "0"]


def test_stat_empty_is_no_traffic_found():
    assert cli_text(new_table("stat", [])) == "No traffic found.\n"


def test_stat_dtypes():
    df = new_table("stat", [stat_row("emoji", rps="2.05")])
    assert df["SUCCESS"].dtype == "float64" and df["RPS"].dtype == "float64"
    assert df["LATENCY_P50"].dtype == "float64" and df["TCP_CONN"].dtype == "int64"
    assert df.loc[0, "RPS"] == pytest.approx(2.05)
    assert df.loc[0, "MESHED"] == "1/2"


# --------------------------------------------------------------------------- routes goldens

ROUTES_BOOKS = (
    "ROUTE                     SERVICE   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99\n"
    "DELETE /books/{id}.json     books   100.00%   0.5rps          18ms          29ms          30ms\n"
    "GET /books.json             books   100.00%   1.1rps           7ms          12ms          18ms\n"
    "GET /books/{id}.json        books   100.00%   2.5rps           6ms          10ms          10ms\n"
    "POST /books.json            books    52.24%   2.2rps          23ms          34ms          39ms\n"
    "PUT /books/{id}.json        books    41.98%   1.4rps          73ms          97ms          99ms\n"
    "[DEFAULT]                   books         -        -             -             -             -\n"
)


def _foobar_routes(wide=False):
    rows = []
    for route, rps in (("[DEFAULT]", 0.5), ("/c", None), ("/b", 1.0), ("/a", 1.5)):
        row = dict(ROUTE=route, SERVICE="foobar")
        if rps is not None:
            stats = dict(EFFECTIVE_SUCCESS=1.0, EFFECTIVE_RPS=rps, ACTUAL_SUCCESS=1.0, ACTUAL_RPS=rps) if wide \
                else dict(SUCCESS=1.0, RPS=rps)
            row.update(stats, LATENCY_P50=123, LATENCY_P95=123, LATENCY_P99=123)
        rows.append(row)
    return new_table("routes", rows, wide=wide)


def test_routes_golden_sorted_with_default_last():
    df = _foobar_routes()
    assert df["ROUTE"].tolist() == ["/a", "/b", "/c", "[DEFAULT]"]
    assert list(df.columns) == ["ROUTE", "SERVICE", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    assert cli_text(df) == ROUTES_ONE


def test_routes_wide_golden():
    df = _foobar_routes(wide=True)
    assert list(df.columns)[2:6] == ["EFFECTIVE_SUCCESS", "EFFECTIVE_RPS", "ACTUAL_SUCCESS", "ACTUAL_RPS"]
    assert cli_text(df) == ROUTES_WIDE


def test_routes_books_docs_sample():
    data = [
        ("PUT /books/{id}.json", 0.4198, 1.4, (73, 97, 99)), ("POST /books.json", 0.5224, 2.2, (23, 34, 39)),
        ("[DEFAULT]", None, None, None), ("GET /books/{id}.json", 1.0, 2.5, (6, 10, 10)),
        ("GET /books.json", 1.0, 1.1, (7, 12, 18)), ("DELETE /books/{id}.json", 1.0, 0.5, (18, 29, 30)),
    ]
    rows = []
    for route, sr, rps, lat in data:
        row = dict(ROUTE=route, SERVICE="books")
        if sr is not None:
            row.update(SUCCESS=sr, RPS=rps, LATENCY_P50=lat[0], LATENCY_P95=lat[1], LATENCY_P99=lat[2])
        rows.append(row)
    assert cli_text(new_table("routes", rows)) == ROUTES_BOOKS + "\n"


def test_routes_authority_column_and_short_routes():
    df = new_table("routes", [dict(ROUTE="/x", AUTHORITY="web.default:80", SUCCESS=1, RPS=1,
                                   LATENCY_P50=1, LATENCY_P95=2, LATENCY_P99=3)])
    assert list(df.columns)[:2] == ["ROUTE", "AUTHORITY"]
    # the CLI sizes ROUTE to the longest route only, so a short route column is not left-aligned
    assert cli_text(df) == (
        "ROUTE        AUTHORITY   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99\n"
        "   /x   web.default:80   100.00%   1.0rps           1ms           2ms           3ms\n"
        "\n"
    )


# --------------------------------------------------------------------------- edges goldens

EDGE_ROWS = [
    ("linkerd-identity", "linkerd-prometheus", "linkerd", "linkerd-identity.linkerd", "linkerd-prometheus.linkerd"),
    ("web", "voting", "emojivoto", "web.emojivoto", "voting.emojivoto"),
    ("vote-bot", "web", "emojivoto", "default.emojivoto", "web.emojivoto"),
    ("web", "emoji", "emojivoto", "web.emojivoto", "emoji.emojivoto"),
]


def _edges(wide=False):
    rows = [dict(SRC=s, DST=d, SRC_NS=ns, DST_NS=ns, CLIENT_ID=c, SERVER_ID=v, SECURED="√")
            for s, d, ns, c, v in EDGE_ROWS]
    return new_table("edges", rows, wide=wide)


def test_edges_golden():
    df = _edges()
    assert list(df.columns) == ["SRC", "DST", "SRC_NS", "DST_NS", "CLIENT_ID", "SERVER_ID", "SECURED"]
    assert cli_text(df) == EDGES_ONE


def test_edges_wide_golden():
    assert cli_text(_edges(wide=True)) == EDGES_WIDE


def test_edges_unsecured_message_and_empty():
    df = new_table("edges", [dict(SRC="a", DST="b", SRC_NS="x", DST_NS="x", SECURED="Not Provided By Remote")])
    assert cli_text(df) == (
        "SRC   DST   SRC_NS   DST_NS   SECURED               \n"
        "a     b     x        x        Not Provided By Remote\n"
    )
    assert cli_text(new_table("edges", [])) == "No edges found.\n"


# --------------------------------------------------------------------------- tap lines

TAP_INBOUND_DOCS = (
    "req id=0:0 proxy=in  src=10.42.0.1:60318 dst=10.42.0.23:9995 tls=no_tls_from_remote :method=GET :authority=10.42.0.23:9995 :path=/ready\n"
    "rsp id=0:0 proxy=in  src=10.42.0.1:60318 dst=10.42.0.23:9995 tls=no_tls_from_remote :status=200 latency=267µs\n"
    "end id=0:0 proxy=in  src=10.42.0.1:60318 dst=10.42.0.23:9995 tls=no_tls_from_remote duration=20µs response-length=3B\n"
)


def _busy(wide=False):
    flow = dict(proxy="out", src="0.0.0.1:0", dst="[ff01::1]:0", id="1:0")
    rows = [
        dict(flow, type="req", tls="true", method="GET", authority="localhost", path="/some/path",
             dst_labels={"pod": "my-pod", "tls": "true"}),
        dict(flow, type="end", tls="", duration_us=100_000_000, latency_us=10_000_000, response_length=1337,
             grpc_status="Code(666)"),
    ]
    return new_table("tap", rows, wide=wide)


def test_tap_golden():
    df = _busy()
    assert list(df.columns)[:19] == [
        "type", "id", "proxy", "src", "dst", "tls", "method", "authority", "path", "status", "latency_us",
        "duration_us", "response_length", "grpc_status", "src_res", "src_ns", "dst_res", "dst_ns", "rt_route"]
    assert cli_text(df) == TAP_BUSY
    assert "µ" in cli_text(df) and "\u00b5" in cli_text(df)  # MICRO SIGN, not GREEK SMALL LETTER MU
    assert "\u03bc" not in cli_text(df)


def test_tap_wide_golden():
    assert cli_text(_busy(wide=True)) == TAP_BUSY_WIDE


def test_tap_inbound_lines_pad_proxy_in():
    flow = dict(proxy="in", src="10.42.0.1:60318", dst="10.42.0.23:9995", tls="no_tls_from_remote", id="0:0")
    rows = [
        dict(flow, type="req", method="GET", authority="10.42.0.23:9995", path="/ready"),
        dict(flow, type="rsp", status=200, latency_us=267.9),  # microseconds truncate, like Duration.Microseconds()
        dict(flow, type="end", duration_us=20, latency_us=288, response_length=3),
    ]
    df = new_table("tap", rows)
    assert df["status"].dtype == "Int64" and pd.isna(df.loc[0, "status"]) and pd.isna(df.loc[0, "grpc_status"])
    assert cli_text(df) == TAP_INBOUND_DOCS


def test_tap_line_variants_from_tap_test():
    flow = dict(proxy="out", src="1.2.3.4:5555", dst="2.3.4.5:6666", tls="", id="7:8")
    assert tap_line(dict(flow, type="rsp", status=200, latency_us=9000999)) == \
        "rsp id=7:8 proxy=out src=1.2.3.4:5555 dst=2.3.4.5:6666 tls= :status=200 latency=9000999µs"
    assert tap_line(dict(flow, type="end", grpc_status="OK", duration_us=888, response_length=111)) == \
        "end id=7:8 proxy=out src=1.2.3.4:5555 dst=2.3.4.5:6666 tls= grpc-status=OK duration=888µs response-length=111B"
    assert tap_line(dict(flow, type="end", reset_error=123, duration_us=888, response_length=111)) == \
        "end id=7:8 proxy=out src=1.2.3.4:5555 dst=2.3.4.5:6666 tls= reset-error=123 duration=888µs response-length=111B"


def test_tap_wide_from_resource_columns():
    row = dict(type="req", id="0:1", proxy="in", src="10.1.3.76:57152", dst="10.1.3.74:7000", tls="true",
               method="POST", authority="webapp.default:7000", path="/books/2878/edit",
               src_res="deploy/traffic", src_ns="booksapp", dst_res="deploy/webapp", dst_ns="booksapp",
               rt_route="POST /books/{id}/edit")
    base = ("req id=0:1 proxy=in  src=10.1.3.76:57152 dst=10.1.3.74:7000 tls=true :method=POST "
            ":authority=webapp.default:7000 :path=/books/2878/edit")
    # the 2.x docs' suffix (linkerd.io 2.14 books task)
    assert tap_line(row, wide="resources") == base + (
        " src_res=deploy/traffic src_ns=booksapp dst_res=deploy/webapp dst_ns=booksapp rt_route=POST /books/{id}/edit")
    # today's suffix: every label of each peer, sorted, then the route
    assert tap_line(row, wide=True) == base + (
        " src_deployment=traffic src_namespace=booksapp src_tls=true"
        " dst_deployment=webapp dst_namespace=booksapp rt_route=POST /books/{id}/edit")
    assert cli_text(new_table("tap", [row])) == base + "\n"


def test_tap_empty():
    assert cli_text(new_table("tap", [])) == ""


# --------------------------------------------------------------------------- top

TOP_DOCS = (
    "Source                Destination           Method      Path                Count    Best   Worst    Last  Success Rate\n"
    "foo-64798767b7-x8xvf  baz-659dbf6895-v7gdm  POST        /demo.Baz/GetInfo    1187    81µs     9ms   124µs       100.00%\n"
    "bar-577c4bf849-cpdxl  baz-659dbf6895-9twg9  POST        /demo.Baz/GetInfo    1103    86µs     6ms   140µs       100.00%\n"
)


def test_top_docs_sample():
    rows = [
        dict(SOURCE="bar-577c4bf849-cpdxl", DESTINATION="baz-659dbf6895-9twg9", METHOD="POST",
             PATH="/demo.Baz/GetInfo", COUNT=1103, BEST=0.0861, WORST=6.2, LAST=0.1401, SUCCESS=1.0),
        dict(SOURCE="foo-64798767b7-x8xvf", DESTINATION="baz-659dbf6895-v7gdm", METHOD="POST",
             PATH="/demo.Baz/GetInfo", COUNT=1187, BEST=0.0807, WORST=9.4, LAST=0.124, SUCCESS=1.0),
    ]
    df = new_table("top", rows)
    assert list(df.columns) == ["SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "BEST", "WORST", "LAST", "SUCCESS"]
    assert df["COUNT"].tolist() == [1187, 1103] and df["COUNT"].dtype == "int64"
    assert cli_text(df) == TOP_DOCS


def test_top_success_rate_is_float32_percent_and_durations():
    df = new_table("top", [dict(SOURCE="vote-bot-1", DESTINATION="web-1", METHOD="POST", PATH="/api/vote",
                                COUNT=169, BEST=1.2, WORST=2500.0, LAST=0.9996, SUCCESS=148 / 169)])
    line = cli_text(df).splitlines()[1]
    assert line.split()[-5:] == ["169", "1ms", "3s", "1ms", "87.57%"]


def _tap_events():
    """Three requests from the tap of web: one doughnut vote fails with gRPC Unknown."""
    rows = []
    calls = [
        ("1", "POST", "/emojivoto.v1.VotingService/VoteDoughnut", 200, "Unknown", 1500),
        ("2", "POST", "/emojivoto.v1.VotingService/VoteDoughnut", 200, "Unknown", 2500),
        ("3", "POST", "/emojivoto.v1.VotingService/VoteManInTuxedo", 200, "OK", 800),
    ]
    for stream, method, path, status, grpc, latency in calls:
        flow = dict(id=f"0:{stream}", proxy="out", src="10.1.0.5:4321", dst="10.1.0.9:8080", tls="true",
                    src_labels={"pod": "web-7d9f", "namespace": "emojivoto"},
                    dst_labels={"pod": "voting-55c4", "namespace": "emojivoto", "tls": "true"})
        rows.append(dict(flow, type="req", method=method, authority="voting-svc.emojivoto:8080", path=path))
        rows.append(dict(flow, type="rsp", status=status, latency_us=latency - 100))
        rows.append(dict(flow, type="end", grpc_status=grpc, latency_us=latency, duration_us=100, response_length=5))
    return new_table("tap", rows)


def test_top_from_tap_aggregates_like_viz_top():
    top = top_from_tap(_tap_events())
    assert top.attrs["table"] == "top"
    doughnut = top.iloc[0]
    assert doughnut["SOURCE"] == "web-7d9f" and doughnut["DESTINATION"] == "voting-55c4"
    assert doughnut["COUNT"] == 2 and doughnut["SUCCESS"] == 0.0
    assert (doughnut["BEST"], doughnut["WORST"], doughnut["LAST"]) == (1.5, 2.5, 2.5)
    assert top.iloc[1]["SUCCESS"] == 1.0
    text = cli_text(top)
    assert text.splitlines()[1].endswith("2     2ms     3ms     3ms         0.00%")


# --------------------------------------------------------------------------- kubectl tables and ages


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (45, "45s"), (119, "119s"), (120, "2m"), (150, "2m30s"), (600, "10m"), (720, "12m"),
    (179 * 60, "179m"), (3 * 3600, "3h"), (3 * 3600 + 25 * 60, "3h25m"), (8 * 3600, "8h"), (47 * 3600, "47h"),
    (5 * 86400, "5d"), (7 * 86400 + 3 * 3600, "7d3h"), (30 * 86400, "30d"), (-0.5, "0s"), (-5, "<invalid>"),
])
def test_human_duration_like_kubectl(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize("nanos, text", [
    (0, "0s"), (81_000, "81µs"), (9_000_000, "9ms"), (1_500_000, "1.5ms"), (2_000_000_000, "2s"),
    (65_000_000_000, "1m5s"), (3_600_000_000_000, "1h0m0s"), (500, "500ns"),
])
def test_go_duration_strings(nanos, text):
    assert go_duration(nanos) == text


def test_pods_table():
    rows = [
        dict(NAME="web-5f86686c4d-qh5lz", READY="2/2", STATUS="Running", RESTARTS=0, AGE=45),
        dict(NAME="emoji-6bf9c6d4f-8xj2m", READY="2/2", STATUS="Running", RESTARTS=1, AGE=150.7),
        dict(NAME="vote-bot-78d7b9c6d9-zz9c4", READY="1/2", STATUS="CrashLoopBackOff", RESTARTS=12, AGE=5 * 86400),
    ]
    df = new_table("pods", rows, namespace="emojivoto")
    assert list(df.columns) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert df["AGE"].dtype == "float64" and df["RESTARTS"].dtype == "int64"
    assert cli_text(df) == (
        "NAME                        READY   STATUS             RESTARTS   AGE\n"
        "web-5f86686c4d-qh5lz        2/2     Running            0          45s\n"
        "emoji-6bf9c6d4f-8xj2m       2/2     Running            1          2m30s\n"
        "vote-bot-78d7b9c6d9-zz9c4   1/2     CrashLoopBackOff   12         5d\n"
    )


def test_nodes_table_min_width():
    df = new_table("nodes", [dict(NAME="kind-control-plane", STATUS="Ready", ROLES="control-plane",
                                  AGE=12 * 60, VERSION="v1.31.0")])
    assert cli_text(df) == (
        "NAME                 STATUS   ROLES           AGE   VERSION\n"
        "kind-control-plane   Ready    control-plane   12m   v1.31.0\n"
    )


def test_events_table_and_preformatted_last_seen():
    rows = [
        {"LAST SEEN": 30, "TYPE": "Normal", "REASON": "Synced", "OBJECT": "canary/podinfo",
         "MESSAGE": "Initialization done! podinfo.test"},
        {"LAST SEEN": "2m (x3 over 10m)", "TYPE": "Warning", "REASON": "Synced", "OBJECT": "canary/podinfo",
         "MESSAGE": "Halt advancement no values found for custom metric: success-rate"},
    ]
    df = new_table("events", rows)
    assert list(df.columns) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert cli_text(df) == (
        "LAST SEEN          TYPE      REASON   OBJECT           MESSAGE\n"
        "30s                Normal    Synced   canary/podinfo   Initialization done! podinfo.test\n"
        "2m (x3 over 10m)   Warning   Synced   canary/podinfo   Halt advancement no values found for custom metric: success-rate\n"
    )


def test_deployments_and_canaries_tables():
    dep = new_table("deployments", [dict(NAME="podinfo", READY="1/1", **{"UP-TO-DATE": 1}, AVAILABLE=1, AGE=3600 * 3)])
    assert cli_text(dep) == (
        "NAME      READY   UP-TO-DATE   AVAILABLE   AGE\n"
        "podinfo   1/1     1            1           3h\n"
    )
    can = new_table("canaries", [
        dict(NAMESPACE="test", NAME="podinfo", STATUS="Progressing", WEIGHT=15,
             LASTTRANSITIONTIME="2019-06-30T14:05:07Z"),
        dict(NAMESPACE="prod", NAME="frontend", STATUS="Succeeded", WEIGHT=0,
             LASTTRANSITIONTIME=pd.Timestamp("2019-06-30T16:15:07Z")),
    ])
    assert list(can.columns) == ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    assert cli_text(can) == (
        "NAMESPACE   NAME       STATUS        WEIGHT   LASTTRANSITIONTIME\n"
        "test        podinfo    Progressing   15       2019-06-30T14:05:07Z\n"
        "prod        frontend   Succeeded     0        2019-06-30T16:15:07Z\n"
    )
    can.attrs["all_namespaces"] = False
    assert cli_text(can).splitlines()[0] == "NAME       STATUS        WEIGHT   LASTTRANSITIONTIME"


def test_kubectl_empty_and_all_namespaces():
    assert cli_text(new_table("pods", [], namespace="emojivoto")) == "No resources found in emojivoto namespace.\n"
    assert cli_text(new_table("pods", [])) == "No resources found\n"
    df = new_table("pods", [dict(NAMESPACE="linkerd", NAME="linkerd-identity-1", READY="2/2", STATUS="Running",
                                 RESTARTS=0, AGE=300)], all_namespaces=True)
    assert list(df.columns)[0] == "NAMESPACE"
    assert cli_text(df).splitlines()[1] == "linkerd     linkerd-identity-1   2/2     Running   0          5m"


def test_generic_table_and_unknown_kind():
    df = new_table("generic", [dict(KIND="deployment", NAME="web", RESULT="injected")])
    assert cli_text(df) == "KIND         NAME   RESULT\ndeployment   web    injected\n"
    with pytest.raises(ValueError, match="unknown table kind"):
        new_table("nope", [])


def test_columns_for_variants():
    assert columns_for("stat") == ["NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95",
                                   "LATENCY_P99", "TCP_CONN"]
    assert columns_for("stat", resource="pod/web-1", all_namespaces=True)[:3] == ["NAMESPACE", "NAME", "STATUS"]
    assert columns_for("routes", authority=True)[1] == "AUTHORITY"
    assert columns_for("top") == ["SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "BEST", "WORST", "LAST", "SUCCESS"]


def test_attrs_survive_filtering_and_cli_text_infers_kind():
    df = _foobar_routes()
    assert cli_text(df[df["ROUTE"] != "/c"]).count("\n") == 5
    bare = pd.DataFrame([stat_row("emoji")])
    assert cli_text(bare) == STAT_ONE


def test_tables_does_not_import_matplotlib():
    code = "import sys, labkit.tables; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- linkerd check


def test_check_report_golden_with_failing_hint():
    report = CheckReport([("category", [
        Check("check1"),
        Check("check2", "fail", "hint-anchor", "This should contain instructions for fail"),
    ])], header=False)
    assert not report.ok
    assert [c.description for c in report.failed()] == ["check2"]
    assert report.render(summary=False) == CHECK_GOLDEN
    assert report.render() == CHECK_GOLDEN + "Status check results are ×\n"
    assert repr(report) == str(report) == report.render()
    assert cli_text(report) == report.render()


def test_check_report_full_run_with_extensions_and_warning():
    report = CheckReport(
        [
            ("kubernetes-api", [Check("can initialize the client"), Check("can query the Kubernetes API")]),
            ("linkerd-version", [Check("can determine the latest version"),
                                 Check("cli is up-to-date", "warn", "l5d-version-cli",
                                       "is running version 2.14.9 but the latest stable version is 2.14.10")]),
        ],
        extensions=[("linkerd-viz", [Check("linkerd-viz Namespace exists")])],
    )
    assert report.ok and len(report.warnings()) == 1 and report.failed() == []
    assert report.render() == (
        "Linkerd core checks\n"
        "===================\n"
        "\n"
        "kubernetes-api\n"
        "--------------\n"
        "√ can initialize the client\n"
        "√ can query the Kubernetes API\n"
        "\n"
        "linkerd-version\n"
        "---------------\n"
        "√ can determine the latest version\n"
        "‼ cli is up-to-date\n"
        "    is running version 2.14.9 but the latest stable version is 2.14.10\n"
        "    see https://linkerd.io/2/checks/#l5d-version-cli for hints\n"
        "\n"
        "Linkerd extensions checks\n"
        "=========================\n"
        "\n"
        "linkerd-viz\n"
        "-----------\n"
        "√ linkerd-viz Namespace exists\n"
        "\n"
        "Status check results are √\n"
    )


def test_check_statuses_and_json_shape():
    assert Check("x", "success").status == "ok" and Check("x", "warning").status == "warn"
    assert Check("x", "error").status == "fail"
    with pytest.raises(ValueError):
        Check("x", "maybe")
    report = CheckReport([("category", [Check("check1"), Check("check2", "fail", "hint-anchor", "boom")])])
    assert report.to_json() == [{"success": False, "categories": [{"categoryName": "category", "checks": [
        {"description": "check1", "result": "success"},
        {"description": "check2", "hint": "https://linkerd.io/2/checks/#hint-anchor", "error": "boom",
         "result": "error"}]}]}]


def test_namespace_and_byte_columns_need_explicit_flags():
    rows = [stat_row("emoji", NAMESPACE="emojivoto1", **{"READ_BYTES/SEC": 2.05, "WRITE_BYTES/SEC": 2.05})]
    df = new_table("stat", rows, namespace="emojivoto1")
    assert df.attrs["all_namespaces"] is False and df.attrs["wide"] is False
    assert "NAMESPACE" in df.columns  # data kept (after the CLI's columns) but not printed without -A
    assert cli_text(df) == STAT_ONE
    bare = pd.DataFrame(rows)[["NAMESPACE"] + list(STAT_ONE.split("\n")[0].split()) + ["READ_BYTES/SEC", "WRITE_BYTES/SEC"]]
    assert cli_text(bare).splitlines()[0].startswith("NAMESPACE    NAME")
    assert cli_text(bare).splitlines()[0].endswith("READ_BYTES/SEC   WRITE_BYTES/SEC")


def test_new_table_takes_kind_attr_as_resource():
    df = new_table("stat", [dict(NAME="web-svc", SUCCESS=1.0, RPS=2.0, LATENCY_P50=1, LATENCY_P95=2,
                                 LATENCY_P99=3, TCP_CONN=float("nan"))], kind="svc", namespace="emojivoto")
    assert df.attrs["resource_type"] == "service" and df.attrs["kind"] == "svc"
    assert df["MESHED"].tolist() == ["-"] and df["TCP_CONN"].tolist() == [0]


def test_check_summary_keeps_a_line_per_category_and_every_check_that_did_not_pass():
    report = CheckReport(
        [("kubernetes-api", [Check("can initialize the client"), Check("can query the Kubernetes API")]),
         ("linkerd-existence", [Check("control plane pods are ready", "fail", "l5d-api-control-ready",
                                      'No running pods for "linkerd-destination"')])],
        extensions=[("linkerd-viz", [Check("viz is up-to-date", "warn", "l5d-viz", "is running 2.19")])])
    lines = report.summary().splitlines()
    assert lines[0] == "√ kubernetes-api (2 checks)"
    assert lines[1:5] == ["× linkerd-existence (1 check)", "    × control plane pods are ready",
                          '        No running pods for "linkerd-destination"',
                          "        see https://linkerd.io/2/checks/#l5d-api-control-ready for hints"]
    assert lines[5:7] == ["‼ linkerd-viz (1 check)", "    ‼ viz is up-to-date"]
    assert lines[-1] == "Status check results are × (4 checks; the full output: print(report))"
    assert len(lines) < len(report.render().splitlines())
