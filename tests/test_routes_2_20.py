"""Gateway API and policy.linkerd.io routes as Linkerd 2.20's policy controller and proxy treat them.

Status conditions (``policy-controller/k8s/status``), GRPCRoute, filters, and
where retry/timeout annotations come from — each checked by what the client
proxy then does to real traffic on the embedded mesh.
"""
from __future__ import annotations

import pytest

import labkit

GW = "gateway.networking.k8s.io/v1"


def _mesh(*sources, namespace="booksapp"):
    mesh = labkit.connect(seed=3)
    if hasattr(mesh, "install_gateway_api"):
        mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("2m")
    for source in sources:
        mesh.apply(source)
    mesh.inject("deploy", namespace=namespace)
    mesh.wait("1m")
    return mesh


def _route(name, parent, rules, *, kind="HTTPRoute", api=GW, namespace="booksapp", port=7002, annotations=None):
    md = {"name": name, "namespace": namespace}
    if annotations:
        md["annotations"] = annotations
    ref = {"name": parent, "group": "core", "kind": "Service"}
    if port is not None:
        ref["port"] = port
    return {"apiVersion": api, "kind": kind, "metadata": md, "spec": {"parentRefs": [ref], "rules": rules}}


def _conditions(mesh, plural, name, namespace="booksapp"):
    parents = mesh.get(plural, name, namespace)["status"]["parents"]
    return [{c["type"]: (c["status"], c["reason"], c["message"]) for c in p["conditions"]} for p in parents]


@pytest.fixture(scope="module")
def books():
    return _mesh("booksapp")


def test_status_names_what_is_wrong_with_a_parent_or_backend(books):
    mesh = books
    mesh.apply([
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "books-headless", "namespace": "booksapp"},
         "spec": {"clusterIP": "None", "selector": {"app": "books"}, "ports": [{"port": 7002}]}},
        _route("typo-parent", "bookz", [{}]),
        _route("headless-parent", "books-headless", [{}]),
        _route("missing-backend", "books", [{"backendRefs": [{"name": "nowhere", "port": 7002}]}]),
        _route("odd-backend", "books", [{"backendRefs": [{"name": "x", "kind": "ConfigMap", "group": "", "port": 1}]}]),
    ])
    mesh.wait("5s")
    assert _conditions(mesh, "httproute.gateway.networking.k8s.io", "typo-parent") == [
        {"Accepted": ("False", "NoMatchingParent", ""), "ResolvedRefs": ("True", "ResolvedRefs", "")}]
    assert _conditions(mesh, "httproute.gateway.networking.k8s.io", "headless-parent")[0]["Accepted"] == \
        ("False", "NoMatchingParent", "parent service must have a ClusterIP")
    assert _conditions(mesh, "httproute.gateway.networking.k8s.io", "missing-backend")[0] == {
        "Accepted": ("True", "Accepted", ""), "ResolvedRefs": ("False", "BackendNotFound", "")}
    assert _conditions(mesh, "httproute.gateway.networking.k8s.io", "odd-backend")[0]["ResolvedRefs"] == \
        ("False", "InvalidKind", "")
    parent = mesh.get("httproute.gateway.networking.k8s.io", "missing-backend", "booksapp")["status"]["parents"][0]
    assert parent["controllerName"] == "linkerd.io/policy-controller"
    assert parent["parentRef"] == {"group": "core", "kind": "Service", "namespace": "booksapp", "name": "books",
                                   "port": 7002}
    mesh.delete([{"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": n, "namespace": "booksapp"}}
                 for n in ("typo-parent", "headless-parent", "missing-backend", "odd-backend")])


def test_filters_modify_headers_and_redirect_and_unsupported_ones_drop_the_route():
    mesh = _mesh("booksapp")
    mesh.apply([
        _route("moved", "webapp", [{"matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
                                    "filters": [{"type": "RequestRedirect",
                                                 "requestRedirect": {"path": {"type": "ReplaceFullPath",
                                                                              "replaceFullPath": "/"},
                                                                     "statusCode": 301}}]},
                                   {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                    "filters": [{"type": "ResponseHeaderModifier",
                                                 "responseHeaderModifier": {"set": [{"name": "x-route",
                                                                                     "value": "webapp"}]}}]}],
               port=7000),
        _route("mirror", "authors", [{"filters": [{"type": "RequestMirror",
                                                   "requestMirror": {"backendRef": {"name": "books", "port": 7002}}}]}],
               port=7001),
    ])
    mesh.wait("5s")
    out = mesh.exec("deploy/traffic", "curl -s -i http://webapp:7000/old/page", "booksapp")
    assert out.startswith("HTTP/1.1 301") and "location: http://webapp:7000/" in out.lower()
    out = mesh.exec("deploy/traffic", "curl -s -i http://webapp:7000/", "booksapp")
    assert "x-route: webapp" in out.lower()
    # the mirror route is Accepted (status checks parents and backends only) but the proxy never gets it
    assert _conditions(mesh, "httproute.gateway.networking.k8s.io", "mirror")[0]["Accepted"][0] == "True"
    mesh.wait("1m")
    df = mesh.stat_outbound("deploy/webapp", "booksapp")
    assert set(df[df.SERVICE == "authors:7001"].ROUTE) == {"[default]"}


def test_grpc_route_counts_grpc_statuses_and_takes_its_parent_from_httproutes():
    mesh = _mesh("emojivoto", namespace="emojivoto")
    mesh.apply([
        _route("vote", "voting-svc", [{"matches": [{"method": {"service": "emojivoto.v1.VotingService"}}]}],
               kind="GRPCRoute", namespace="emojivoto", port=8080),
        _route("vote-http", "voting-svc", [{}], namespace="emojivoto", port=8080),
    ])
    mesh.wait("90s")
    assert _conditions(mesh, "grpcroute.gateway.networking.k8s.io", "vote", "emojivoto")[0]["Accepted"][:2] == \
        ("True", "Accepted")
    assert _conditions(mesh, "httproute.gateway.networking.k8s.io", "vote-http", "emojivoto")[0]["Accepted"][:2] == \
        ("False", "RouteReasonConflicted")
    df = mesh.stat_outbound("deploy/web", "emojivoto")
    vote = df[(df.SERVICE == "voting-svc:8080") & (df.BACKEND == "")].iloc[0]
    assert vote.ROUTE == "vote" and vote.TYPE == "GRPCRoute"
    assert 0.0 < vote.SUCCESS < 1.0  # the doughnut vote's UNKNOWN fails here, unlike the default http route
    metrics = mesh.proxy_metrics("deploy/web", "emojivoto")
    assert 'outbound_grpc_route_request_statuses_total{' in metrics and 'grpc_status="UNKNOWN"' in metrics


def test_route_annotations_replace_the_services_and_an_invalid_one_drops_the_route(books):
    mesh = books
    mesh.annotate("svc", "books", {"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "3"}, "booksapp")
    mesh.apply("booksapp/routes")
    mesh.annotate("httproute.gateway.networking.k8s.io", "books-create",
                  {"retry.linkerd.io/http": "504"}, "booksapp")  # the route's own retries: 500s not retried
    mesh.wait("90s")
    df = mesh.stat_outbound("deploy/webapp", "booksapp")
    create = df[(df.ROUTE == "books-create") & (df.BACKEND == "")].iloc[0]
    listing = df[(df.ROUTE == "books-list") & (df.BACKEND == "")].iloc[0]
    assert create.RETRIES == 0 and create.SUCCESS < 0.7
    assert listing.SUCCESS == 1.0
    # books-list has no retry annotation of its own: it inherits the Service's retry policy (its retry series exist)
    metrics = mesh.proxy_metrics("deploy/webapp", "booksapp")
    assert 'outbound_http_route_retry_requests_total{' in metrics
    assert any('route_name="books-list"' in line for line in metrics.splitlines()
               if line.startswith("outbound_http_route_retry_limit_exceeded_total"))
    mesh.annotate("httproute.gateway.networking.k8s.io", "books-create", {"retry.linkerd.io/http": None}, "booksapp")
    mesh.wait("90s")
    create = mesh.stat_outbound("deploy/webapp", "booksapp")
    create = create[(create.ROUTE == "books-create") & (create.BACKEND == "")].iloc[0]
    assert create.RETRIES > 0.2 and create.SUCCESS > 0.85  # now the Service's 5xx × 3
    # an invalid annotation drops the route: POST /books.json now matches books-list (path only), 500s and all
    mesh.annotate("httproute.gateway.networking.k8s.io", "books-create", {"retry.linkerd.io/http": "5xx, 429"},
                  "booksapp")
    mesh.wait("90s")
    df = mesh.stat_outbound("deploy/webapp", "booksapp")
    assert "books-create" not in set(df.ROUTE)
    listing = df[(df.ROUTE == "books-list") & (df.BACKEND == "")].iloc[0]
    assert listing.SUCCESS < 1.0 and listing.RETRIES > 0  # the Service's retries apply to it


def test_failure_injection_split_with_a_v1_gateway_api_route():
    """Lab 4's 90/10 split to the nginx error injector, written as a gateway.networking.k8s.io/v1 HTTPRoute."""
    import yaml

    mesh = _mesh("booksapp")
    # as Lab 4 does: authors without its built-in failure rate, so only the injector fails
    mesh.patch("deploy", "authors", [{"op": "remove", "path": "/spec/template/spec/containers/0/env/2"}], "booksapp")
    mesh.apply("booksapp/failure-injection/error-injector.yml")
    route = yaml.safe_load(open(labkit.__file__.rsplit("/labkit/", 1)[0] +
                                "/manifests/booksapp/failure-injection/split-httproute.yml"))
    route["apiVersion"] = GW
    mesh.apply([route])
    mesh.wait("2m")
    assert _conditions(mesh, "httproute.gateway.networking.k8s.io", "error-split")[0] == {
        "Accepted": ("True", "Accepted", ""), "ResolvedRefs": ("True", "ResolvedRefs", "")}
    df = mesh.stat_outbound("deploy/webapp", "booksapp")
    split = df[(df.ROUTE == "error-split") & (df.BACKEND == "")].iloc[0]
    books = df[(df.ROUTE == "error-split") & (df.BACKEND == "books:7002")].iloc[0]
    injector = df[(df.ROUTE == "error-split") & (df.BACKEND.str.startswith("error-injector:"))].iloc[0]
    assert split.TYPE == "HTTPRoute" and 0.80 <= split.SUCCESS <= 0.97   # docs: 87.76%
    assert books.SUCCESS > 0.95 and injector.SUCCESS == 0.0              # docs: 100.00% and 0.00%
    assert 0.05 <= injector.RPS / split.RPS <= 0.16                      # one request in ten
    lines = labkit.cli_text(df).splitlines()
    at = next(i for i, line in enumerate(lines) if "error-split" in line)
    assert "├" in lines[at + 1] and "└" in lines[at + 2]  # two backends: a branch, then the last leaf


def test_an_empty_service_profile_leaves_the_service_to_client_policy_one_with_routes_takes_over():
    empty = {"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
             "metadata": {"name": "books.booksapp.svc.cluster.local", "namespace": "booksapp"}, "spec": {"routes": []}}
    mesh = _mesh("booksapp", [empty])  # the profile is there when webapp's proxies first look books up
    mesh.apply("booksapp/routes")
    mesh.wait("90s")
    df = mesh.stat_outbound("deploy/webapp", "booksapp")
    assert "books-create" in set(df.ROUTE)  # the HTTPRoutes apply: the profile has no routes
    # the same profile with a route: the proxy now routes books by it, and HTTPRoutes and annotations go unused
    mesh.apply([{"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
                 "metadata": {"name": "books.booksapp.svc.cluster.local", "namespace": "booksapp"},
                 "spec": {"routes": [{"name": "POST /books.json",
                                      "condition": {"method": "POST", "pathRegex": "/books\\.json"}}]}}])
    mesh.wait("90s")
    df = mesh.stat_outbound("deploy/webapp", "booksapp")
    assert not set(df[df.SERVICE == "books:7002"].ROUTE)  # no outbound_http_route_* traffic for books any more
    routes = mesh.routes("deploy/webapp", "booksapp", to="svc/books")
    assert "POST /books.json" in set(routes.ROUTE)


def test_a_per_try_timeout_retries_slow_attempts_and_labels_them_response_headers_timeout():
    mesh = _mesh("booksapp")
    mesh.apply("booksapp/routes")
    mesh.annotate("httproute.gateway.networking.k8s.io", "books-create",
                  {"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "2", "retry.linkerd.io/timeout": "15ms"},
                  "booksapp")
    mesh.wait("90s")
    metrics = mesh.proxy_metrics("deploy/webapp", "booksapp")
    per_try = [line for line in metrics.splitlines()
               if line.startswith("outbound_http_route_backend_response_statuses_total{")
               and 'route_name="books-create"' in line and 'error="RESPONSE_HEADERS_TIMEOUT"' in line]
    assert per_try and sum(float(x.rsplit(" ", 1)[1]) for x in per_try) > 0
    # the route itself never reports a per-try timeout: the last attempt has none
    assert not any('error="RESPONSE_HEADERS_TIMEOUT"' in line for line in metrics.splitlines()
                   if line.startswith("outbound_http_route_request_statuses_total{"))
    df = mesh.stat_outbound("deploy/webapp", "booksapp")
    backend = df[(df.ROUTE == "books-create") & (df.BACKEND == "books:7002")].iloc[0]
    assert backend.TIMEOUTS > 0
