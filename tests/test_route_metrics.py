"""Linkerd 2.20 route metrics and ``viz stat-outbound`` / ``stat-inbound`` on the embedded mesh.

The books tutorial of Linkerd 2.16+ (reference labs.md §2.6) on the upstream
books app: HTTPRoutes on the books Service, then ``retry.linkerd.io/http=5xx``,
``retry.linkerd.io/limit=3`` and ``timeout.linkerd.io/request=25ms`` on the
create route. The bands are around the tutorial's published figures (books
[default] 77.36%, books-create 54.27%, with retries 73.17% / RETRIES 34.22%
and backend 48.13%, limit 3 92.78%), wide enough for the model's randomness.
"""
from __future__ import annotations

import json
import math

import pytest

import labkit
from labkit.metrics import stat_inbound, stat_outbound
from labkit.sim.linkerd import route_metrics as rmx

ROUTE = "httproute.gateway.networking.k8s.io"


def _books(upstream):
    mesh = labkit.connect(seed=0)
    if hasattr(mesh, "install_gateway_api"):  # Linkerd 2.20 needs the Gateway API CRDs installed first
        mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("2m")
    mesh.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "booksapp"}}])
    mesh.apply(str(upstream / "booksapp" / "booksapp.yml"), namespace="booksapp")
    mesh.inject("deploy", namespace="booksapp")
    mesh.wait("2m")
    return mesh


def _row(df, service, route, backend=""):
    rows = df[(df.SERVICE == service) & (df.ROUTE == route) & (df.BACKEND == backend)]
    assert len(rows) == 1, f"no single {service} {route} {backend!r} row in\n{labkit.cli_text(df)}"
    return rows.iloc[0]


def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def tutorial(upstream):
    """Every stage of the tutorial, measured once: {stage: (stat-outbound frame, webapp proxy metrics)}."""
    mesh = _books(upstream)
    stages = {"default": (mesh.stat_outbound("deploy/webapp", "booksapp"),
                          mesh.proxy_metrics("deploy/webapp", "booksapp"))}
    stages["inbound"] = (mesh.stat_inbound("deploy/webapp", "booksapp"), None)
    stages["applied"] = (mesh.apply("booksapp/routes"), None)
    mesh.wait("2m")
    stages["routes"] = (mesh.stat_outbound("deploy/webapp", "booksapp"), mesh.proxy_metrics("deploy/webapp", "booksapp"))
    stages["status"] = (mesh.get(ROUTE, "books-create", "booksapp")["status"], None)
    for stage, annotation in (("retry", {"retry.linkerd.io/http": "5xx"}), ("limit3", {"retry.linkerd.io/limit": "3"}),
                              ("timeout", {"timeout.linkerd.io/request": "25ms"})):
        line = mesh.annotate(ROUTE, "books-create", annotation, "booksapp")
        assert line == f"{ROUTE}/books-create annotated"
        mesh.wait("2m")
        stages[stage] = (mesh.stat_outbound("deploy/webapp", "booksapp"), mesh.proxy_metrics("deploy/webapp", "booksapp"))
    return stages


def test_default_route_before_any_httproute(tutorial):
    df, metrics = tutorial["default"]
    books = _row(df, "books:7002", "[default]")
    assert 0.68 <= books.SUCCESS <= 0.86          # tutorial: 77.36%
    assert 6.0 <= books.RPS <= 10.0                # 7.95 rps
    assert books.TYPE == "" and books.TIMEOUTS == 0 and books.RETRIES == 0
    backend = _row(df, "books:7002", "[default]", "books:7002")
    assert backend.SUCCESS == pytest.approx(books.SUCCESS) and math.isnan(backend.RETRIES)
    assert _row(df, "authors:7001", "[default]").SUCCESS == 1.0
    # the proxy's own series, with the default route's labels
    assert _metric(metrics, "outbound_http_route_backend_response_statuses_total", route_kind="default",
                   route_name="http", parent_name="books", backend_name="books", http_status="500") > 0


def test_stat_inbound_shows_the_default_server_and_route(tutorial):
    df, _ = tutorial["inbound"]
    row = df[df.SERVER == "[default]:7000"].iloc[0]
    assert row.NAME == "webapp" and row.ROUTE == "[default]" and row.TYPE == ""
    assert 0.68 <= row.SUCCESS <= 0.86 and 6.0 <= row.RPS <= 10.0   # tutorial: 75.66%, 8.22 rps
    text = labkit.cli_text(df)
    assert text.splitlines()[0].split() == stat_inbound.COLUMNS
    assert "[default]:7000  [default]" in text
    doc = json.loads(stat_inbound.json_text(df))
    assert doc[0]["server"] == "[default]" and doc[0]["port"] == "7000" and 0 < doc[0]["successesRate"] < 1


def test_httproutes_are_accepted_and_split_the_books_traffic(tutorial):
    assert tutorial["applied"][0] == [f"{ROUTE}/books-list created", f"{ROUTE}/books-create created",
                                      f"{ROUTE}/books-delete created"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in tutorial["status"][0]["parents"][0]["conditions"]}
    assert conditions == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    df, metrics = tutorial["routes"]
    create = _row(df, "books:7002", "books-create")
    assert create.TYPE == "HTTPRoute"
    assert 0.40 <= create.SUCCESS <= 0.66          # tutorial: 54.27% — the 500s are all on this route
    assert _row(df, "books:7002", "books-list").SUCCESS == 1.0
    assert _row(df, "books:7002", "books-delete").SUCCESS == 1.0
    assert "[default]" not in set(df[df.SERVICE == "books:7002"].ROUTE)
    assert _metric(metrics, "outbound_http_route_request_statuses_total", route_name="books-create",
                   route_kind="HTTPRoute", route_group="gateway.networking.k8s.io", http_status="500") > 0
    assert _metric(metrics, "outbound_http_route_request_statuses_total", route_name="books-list",
                   http_status="500") == 0


def test_retry_5xx_lifts_the_create_route_at_the_backends_expense(tutorial):
    before = _row(tutorial["routes"][0], "books:7002", "books-create")
    df, metrics = tutorial["retry"]
    route = _row(df, "books:7002", "books-create")
    backend = _row(df, "books:7002", "books-create", "books:7002")
    assert route.SUCCESS >= before.SUCCESS + 0.12  # tutorial: 54.27% → 73.17%
    assert 0.65 <= route.SUCCESS <= 0.90
    assert 0.25 <= route.RETRIES <= 0.45           # tutorial: 34.22%
    assert 0.40 <= backend.SUCCESS <= 0.66          # tutorial: 48.13% — the backend still fails as often
    assert backend.RPS > route.RPS                  # every retry is another backend request
    assert route.LATENCY_P50 > backend.LATENCY_P50  # backoff and second attempts add up
    requests = _metric(metrics, "outbound_http_route_retry_requests_total", route_name="books-create")
    successes = _metric(metrics, "outbound_http_route_retry_successes_total", route_name="books-create")
    exceeded = _metric(metrics, "outbound_http_route_retry_limit_exceeded_total", route_name="books-create")
    assert requests > 0 and requests == successes + exceeded   # limit 1: each retry succeeds or exhausts it
    assert _metric(metrics, "outbound_http_route_retry_overflow_total", route_name="books-create") == 0


def test_retry_limit_3_lifts_it_further_and_the_counters_keep_growing(tutorial):
    retry = _row(tutorial["retry"][0], "books:7002", "books-create")
    df, metrics = tutorial["limit3"]
    route = _row(df, "books:7002", "books-create")
    assert route.SUCCESS >= 0.88 and route.SUCCESS > retry.SUCCESS   # tutorial: 92.78%
    assert 0.33 <= route.RETRIES <= 0.60                             # tutorial: 47.28%
    before = _metric(tutorial["retry"][1], "outbound_http_route_retry_requests_total", route_name="books-create")
    after = _metric(metrics, "outbound_http_route_retry_requests_total", route_name="books-create")
    assert after > before


def test_request_timeout_shows_as_request_timeout_errors_and_timeouts(tutorial):
    df, metrics = tutorial["timeout"]
    route = _row(df, "books:7002", "books-create")
    backend = _row(df, "books:7002", "books-create", "books:7002")
    assert route.TIMEOUTS >= 0.10 and backend.TIMEOUTS > 0
    assert route.TIMEOUTS > backend.TIMEOUTS        # a request times out once; its attempts are more
    assert _metric(metrics, "outbound_http_route_request_statuses_total", route_name="books-create",
                   http_status="", error="REQUEST_TIMEOUT") > 0
    assert _row(df, "books:7002", "books-list").TIMEOUTS == 0
    text = labkit.cli_text(df)
    line = next(x for x in text.splitlines() if "books-create" in x)
    assert line.split()[-2] == "%.2f%%" % (route.TIMEOUTS * 100)


# -- rendering, as the CLI prints ---------------------------------------------------------------

def test_stat_outbound_renders_the_backend_tree_and_json(tutorial):
    df, _ = tutorial["default"]
    text = labkit.cli_text(df)
    lines = text.splitlines()
    assert lines[0].split() == stat_outbound.COLUMNS
    assert all(line.endswith("  ") for line in lines)  # cli/table pads after every column, the last too
    tree = [x for x in lines if "►" in x]
    assert len(tree) == len(df[df.BACKEND != ""]) and all("└" in x and "─►  " in x for x in tree)
    books = _row(df, "books:7002", "[default]")
    assert "%.2f%%" % (books.SUCCESS * 100) in text and "%.2f" % books.RPS in text
    doc = json.loads(stat_outbound.json_text(df))
    assert [set(r) >= {"name", "service", "port", "route", "routeType", "successRate", "rps", "timeoutRate"}
            for r in doc] == [True] * len(doc)
    assert {"retryRate" in r for r in doc if "backend" in r} == {False}
    assert {r["port"] for r in doc} == {"7001", "7002"}


def test_two_backends_draw_a_branch_then_a_last_leaf():
    import pandas as pd

    rows = [{"NAME": "webapp", "SERVICE": "books:7002", "ROUTE": "error-split", "TYPE": "HTTPRoute", "BACKEND": "",
             "SUCCESS": 0.875, "RPS": 8 / 60, "LATENCY_P50": 5.0, "LATENCY_P95": 9.0, "LATENCY_P99": 10.0,
             "TIMEOUTS": 0.0, "RETRIES": 0.0}]
    rows += [dict(rows[0], BACKEND="books:7002", SUCCESS=1.0, RPS=7 / 60, RETRIES=math.nan),
             dict(rows[0], BACKEND="error-injector:8080", SUCCESS=0.0, RPS=1 / 60, RETRIES=math.nan)]
    df = pd.DataFrame(rows, columns=stat_outbound.COLUMNS)
    df.attrs = {"table": "stat-outbound", "window_s": 60.0}
    lines = labkit.cli_text(df).splitlines()
    assert "├" in lines[2] and "└" in lines[3] and "87.50%" in lines[1] and "0.13" in lines[1]
    # ROUTE (11 wide) "└─" padded with ─, joined by "──" to TYPE (9 wide) "─►" padded on the left
    assert lines[3].split()[:2] == ["└" + "─" * (10 + 2 + 8) + "►", "error-injector:8080"]


def test_bad_targets_and_windows_are_refused_clearly():
    mesh = labkit.connect()
    with pytest.raises(ValueError, match="unknown resource type 'svc'"):
        mesh.stat_outbound("svc/books", "booksapp")
    with pytest.raises(ValueError, match="window"):
        mesh.stat_inbound("deploy/webapp", "booksapp", window="0s")


def test_annotate_refuses_non_string_values_and_removes_with_none(upstream):
    mesh = labkit.connect()
    mesh.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "booksapp"}}])
    mesh.apply(str(upstream / "booksapp" / "booksapp.yml"), namespace="booksapp")
    with pytest.raises(ValueError, match="must be a string"):
        mesh.annotate("svc", "books", {"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": 3}, "booksapp")
    assert "retry.linkerd.io/http" not in (mesh.get("svc", "books", "booksapp")["metadata"].get("annotations") or {})
    assert mesh.annotate("svc", "books", {"retry.linkerd.io/http": "5xx"}, "booksapp") == "service/books annotated"
    assert mesh.get("svc", "books", "booksapp")["metadata"]["annotations"]["retry.linkerd.io/http"] == "5xx"
    mesh.annotate("svc", "books", {"retry.linkerd.io/http": None}, "booksapp")
    assert "retry.linkerd.io/http" not in (mesh.get("svc", "books", "booksapp")["metadata"].get("annotations") or {})
    with pytest.raises(ValueError, match="invalid annotation key"):
        mesh.annotate("svc", "books", {"bad key": "x"}, "booksapp")


# -- the proxy's counters, unit by unit -------------------------------------------------------------

def test_route_metrics_label_sets_and_histograms():
    rm = rmx.RouteMetrics(rmx.parent_items("booksapp", "books", 7002) + rmx.DEFAULT_HTTP_ROUTE)
    b = rm.backend("k", lambda: rmx.backend_items("booksapp", "books", 7002))
    for status, ms in ((200, 20.0), (500, 60.0), (201, 2000.0)):
        rm.record(status, "", ms)
        b.record(status, "", ms)
    rm.record(None, rmx.REQUEST_TIMEOUT, 25.0)
    samples = {(name, tuple(items)): value for _fam, name, items, value in rm.samples()}
    buckets = {dict(i)["le"]: v for (n, i), v in samples.items()
               if n == "outbound_http_route_request_duration_seconds_bucket"}
    assert buckets == {"0.05": 2, "0.5": 3, "1.0": 3, "10.0": 4, "+Inf": 4}
    statuses = {(dict(i)["http_status"], dict(i)["error"]): v for (n, i), v in samples.items()
                if n == "outbound_http_route_request_statuses_total"}
    assert statuses == {("200", ""): 1, ("500", ""): 1, ("201", ""): 1, ("", "REQUEST_TIMEOUT"): 1}
    backend_keys = [k for k, _ in next(i for (n, i) in samples if n == "outbound_http_route_backend_requests_total")]
    assert backend_keys[:6] == ["parent_group", "parent_kind", "parent_namespace", "parent_name", "parent_port",
                                "parent_section_name"]
    assert backend_keys[-6:] == ["backend_group", "backend_kind", "backend_namespace", "backend_name", "backend_port",
                                 "backend_section_name"]
    bb = {dict(i)["le"]: v for (n, i), v in samples.items()
          if n == "outbound_http_route_backend_response_duration_seconds_bucket"}
    assert bb["0.025"] == 1 and bb["0.1"] == 2 and bb["1.0"] == 2 and bb["10.0"] == 3
    assert not any("retry" in n for n, _ in samples)  # no retry policy, no retry series


def test_grpc_routes_name_their_status_codes():
    rm = rmx.RouteMetrics(rmx.parent_items("emojivoto", "voting-svc", 8080)
                          + rmx.route_items("gateway.networking.k8s.io", "GRPCRoute", "emojivoto", "vote"), grpc=True)
    rm.record(0, "", 3.0)
    rm.record(2, "", 3.0)
    names = {dict(i).get("grpc_status") for _f, n, i, _v in rm.samples() if n.endswith("request_statuses_total")}
    assert names == {"OK", "UNKNOWN"}
    assert all(n.startswith("outbound_grpc_route_") for _f, n, _i, _v in rm.samples())


def test_error_labels_of_failed_attempts():
    assert rmx.error_label(200, None) == ""
    assert rmx.error_label(0, "connection refused") == rmx.REFUSED
    assert rmx.error_label(0, "connection reset by peer (podinfo exited: panic)") == rmx.RESET
    assert rmx.error_label(0, "dns error") == rmx.UNKNOWN
