"""The outbound policy a modelled proxy applies (sim/linkerd/policy.py): matching, classes, lookups,
weighted draws, annotations — and on a running mesh: when proxies notice a profile, retries as
repeated attempts, timeouts cutting at the deadline, invalid splits never crashing anything."""
import random

import pytest

import labkit
from conftest import meshed_app
from labkit.sim.linkerd import policy


def sp(name, ns, routes=None, **spec):
    return {"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
            "metadata": {"name": name, "namespace": ns, "uid": name + ns, "resourceVersion": "1"},
            "spec": {"routes": routes or [], **spec}}


# -- ServiceProfile route conditions ------------------------------------------------------------------

@pytest.mark.parametrize("regex, path, ok", [
    (r"/authors/[^/]*\.json", "/authors/12.json", True),
    (r"/authors/[^/]*\.json", "/authors/12.json/x", False),   # anchored at the end
    (r"/authors/[^/]*\.json", "/x/authors/12.json", False),   # and at the start
    (r"/authors/[^/]*\.json", "/authors/12xjson", False),     # the dot is escaped
    (r"^/books", "/books/1", False),                            # ^ given: $ still added
    (r"/books.*$", "/books/1", True),
    (r"^/a|/b$", "/a/anything", True),                          # both anchors given: used as written
    (r"^/a|/b$", "/x/b", True),
    (r" /api/list ", "/api/list", True),                        # trimmed
    (r"/(?=x)", "/x", False),                                   # lookahead: RE2 has none, the route never matches
])
def test_path_regex_is_anchored_as_the_proxy_anchors_it(regex, path, ok):
    f = policy.compile_request_match({"pathRegex": regex})
    assert (f is not None and f("GET", path)) == ok


def test_method_and_path_together_mean_all():
    f = policy.compile_request_match({"method": "HEAD", "pathRegex": r"/authors/[^/]*\.json"})
    assert f("HEAD", "/authors/1.json") and not f("GET", "/authors/1.json") and not f("HEAD", "/authors.json")


def test_all_any_not_compose():
    cond = {"any": [{"all": [{"method": "POST"}, {"pathRegex": r"/authors/\d+"}]},
                    {"all": [{"not": {"method": "DELETE"}}, {"pathRegex": "/info.txt"}]}]}
    f = policy.compile_request_match(cond)
    assert f("POST", "/authors/7") and f("GET", "/info.txt")
    assert not f("DELETE", "/info.txt") and not f("GET", "/authors/7")


def test_empty_condition_is_dropped():
    assert policy.compile_request_match({}) is None
    assert policy.compile_request_match({"method": ""}) is None


def test_response_classes_first_match_wins_and_one_bound_means_one_status():
    prof = policy.compile_profile(sp("x.ns.svc.cluster.local", "ns", [{
        "name": "r", "condition": {"pathRegex": "/"},
        "responseClasses": [{"condition": {"status": {"min": 404}}, "isFailure": True},
                            {"condition": {"status": {"min": 500, "max": 599}}, "isFailure": False}],
    }]))
    route = prof.routes[0]
    assert route.failed(404, None, "") and not route.failed(405, None, "")
    assert not route.failed(503, None, "")      # a class overrides the 5xx default
    assert route.failed(200, None, "timeout")   # stream errors always fail
    assert policy.DEFAULT_ROUTE.failed(500, None, "") and not policy.DEFAULT_ROUTE.failed(404, None, "")
    assert policy.DEFAULT_ROUTE.failed(200, 2, "")  # gRPC Unknown


def test_routes_match_in_order_and_unmatched_go_to_default():
    prof = policy.compile_profile(sp("books.b.svc.cluster.local", "b", [
        {"name": "PUT /books/{id}.json", "condition": {"method": "PUT", "pathRegex": r"/books/[^/]*\.json"}, "timeout": "25ms"},
        {"name": "any books", "condition": {"pathRegex": "/books.*"}, "isRetryable": True},
    ]))
    assert prof.match("PUT", "/books/3.json").name == "PUT /books/{id}.json"
    assert prof.match("PUT", "/books/3.json").timeout_ms == pytest.approx(25.0)
    assert prof.match("GET", "/books/3.json").name == "any books"
    assert prof.match("GET", "/books/3.json").retryable
    assert prof.match("GET", "/ping").name is None


def test_overrides_in_decimillis_and_weight_zero_dropped():
    prof = policy.compile_profile(sp("books.b.svc.cluster.local", "b", dstOverrides=[
        {"authority": "books.b.svc.cluster.local", "weight": "900m"},
        {"authority": "error-injector.b.svc.cluster.local:7002", "weight": "100m"},
        {"authority": "gone.b.svc.cluster.local", "weight": 0},
    ]))
    assert prof.overrides == [("books.b.svc.cluster.local", 0, 9000), ("error-injector.b.svc.cluster.local", 7002, 1000)]


def test_refused_budget_disables_retries():
    prof = policy.compile_profile(sp("a.b.svc.cluster.local", "b", [
        {"name": "r", "condition": {"pathRegex": "/"}, "isRetryable": True}],
        retryBudget={"retryRatio": 0.2, "minRetriesPerSecond": 10, "ttl": "100ms"}))
    assert not prof.routes[0].retryable


# -- weighted draws -------------------------------------------------------------------------------------

def test_draw_follows_weights():
    items, total = policy.weighted([(9000, "books"), (1000, "error-injector"), (0, "never")])
    rng = random.Random(0)
    picks = [policy.draw(items, total, rng, lambda x: True) for _ in range(20000)]
    assert "never" not in picks
    assert 0.88 <= picks.count("books") / len(picks) <= 0.92


def test_draw_skips_backends_that_are_not_ready():
    items, total = policy.weighted([(1, "down"), (1, "up")])
    rng = random.Random(0)
    assert {policy.draw(items, total, rng, lambda x: x == "up") for _ in range(50)} == {"up"}
    assert policy.draw(items, total, rng, lambda x: False) is policy.NONE


# -- 2.16+ annotations ------------------------------------------------------------------------------------

def test_retry_and_timeout_annotations():
    rt = policy.annotation_policy({"retry.linkerd.io/http": "5xx,429,gateway-error,400-403",
                                   "retry.linkerd.io/limit": "3", "retry.linkerd.io/timeout": "300ms",
                                   "timeout.linkerd.io/request": "15ms"})
    assert rt.has_retry and rt.limit == 3 and rt.try_timeout_ms == pytest.approx(300)
    assert rt.statuses == ((500, 599), (429, 429), (502, 504), (400, 403))
    assert rt.has_timeout and rt.request_ms == pytest.approx(15)
    assert policy.annotation_policy({"retry.linkerd.io/http": "5xx"}).limit == 1   # default limit
    assert policy.annotation_policy({"retry.linkerd.io/limit": "0"}).has_retry is False  # 0 is unset
    assert policy.annotation_policy({"retry.linkerd.io/limit": "2"}).statuses == ()     # a limit alone retries nothing
    assert not policy.annotation_policy({}).has_retry
    grpc = policy.annotation_policy({"retry.linkerd.io/grpc": "unavailable,Internal"}, grpc=True)
    assert grpc.grpc_codes == {14, 13} and grpc.statuses == ()


@pytest.mark.parametrize("annotations, message", [
    ({"retry.linkerd.io/http": "5xx, 429"}, "invalid retry condition"),       # no spaces: " 429" is no code
    ({"retry.linkerd.io/http": "bogus"}, "invalid retry condition"),
    ({"retry.linkerd.io/http": "600"}, "invalid retry condition"),            # 100-599 only
    ({"retry.linkerd.io/http": "504-500"}, "invalid retry condition"),
    ({"retry.linkerd.io/limit": "-1"}, "limit"),
    ({"retry.linkerd.io/limit": "70000"}, "limit"),
    ({"timeout.linkerd.io/request": "15"}, "missing duration unit"),          # units required (but "0" is fine)
    ({"timeout.linkerd.io/request": "1.5s"}, "fractional"),
    ({"timeout.linkerd.io/request": "-1s"}, "negative"),
    ({"retry.linkerd.io/timeout": "5us"}, "invalid duration unit"),
])
def test_invalid_annotations_are_errors_on_routes_and_ignored_on_services(annotations, message):
    with pytest.raises(policy.AnnotationError, match=message):
        policy.annotation_policy(annotations)
    lenient = policy.annotation_policy(annotations, lenient=True)
    assert not lenient.has_retry and not lenient.has_timeout


def test_policy_durations_as_the_controller_parses_them():
    assert [policy.parse_duration_ms(t) for t in ("0", "0s", "25ms", "2s", "1m", "1h", "1d")] == \
        [0, 0, 25, 2000, 60000, 3600000, 86400000]


# -- on the mesh ------------------------------------------------------------------------------------------

AUTHORS_SP = "authors.booksapp.svc.cluster.local"


def books(seed=0, wait="2m"):
    mesh = meshed_app("booksapp", namespace="booksapp", seed=seed, wait=wait)
    mesh.install_smi()  # the TrafficSplit cases need the linkerd-smi extension
    return mesh


def restart(mesh, *names):
    stamp = mesh.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in names:
        mesh.patch("deploy", name, {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": stamp}}}}}, "booksapp")


def apply_profiles(mesh):
    for svc in ("webapp", "authors", "books"):
        mesh.apply([mesh.profile(svc, "booksapp", open_api=f"booksapp/openapi/{svc}.swagger")])


def route_counts(mesh, metric, route, deployment="books"):
    frame = mesh.query(f'sum({metric}{{deployment="{deployment}", rt_route="{route}"}}) by (classification)')
    return {r["classification"]: r["value"] for r in frame.to_dict("records")}


def test_a_new_profile_is_used_by_new_pods_and_edits_stream_in():
    mesh = books()
    apply_profiles(mesh)
    mesh.wait("1m")
    # The running proxies discovered authors before its profile existed: no route metrics yet.
    assert mesh.query('route_request_total{namespace="booksapp"}').empty
    restart(mesh, "books", "webapp")
    mesh.wait("2m")
    head = route_counts(mesh, "route_response_total", "HEAD /authors/{id}.json")
    assert head.get("failure", 0) > 0 and head.get("success", 0) > 0
    assert route_counts(mesh, "route_actual_response_total", "HEAD /authors/{id}.json") == head  # no retries yet
    # An edit to a profile in use is picked up without a restart.
    prof = mesh.get("sp", AUTHORS_SP, "booksapp")
    for r in prof["spec"]["routes"]:
        if r["name"] == "HEAD /authors/{id}.json":
            r["isRetryable"] = True
    mesh.apply([prof])
    before = route_counts(mesh, "route_response_total", "HEAD /authors/{id}.json")
    before_actual = route_counts(mesh, "route_actual_response_total", "HEAD /authors/{id}.json")
    mesh.wait("2m")
    after = route_counts(mesh, "route_response_total", "HEAD /authors/{id}.json")
    after_actual = route_counts(mesh, "route_actual_response_total", "HEAD /authors/{id}.json")
    new_failures = after.get("failure", 0) - before.get("failure", 0)
    new_actual_failures = after_actual.get("failure", 0) - before_actual.get("failure", 0)
    assert new_failures == 0 and new_actual_failures > 20  # every failure retried until it succeeded


def test_inbound_route_metrics_need_the_servers_profile():
    mesh = books()
    apply_profiles(mesh)
    restart(mesh, "webapp", "traffic")
    mesh.wait("2m")
    inbound = mesh.query('sum(route_request_total{direction="inbound", deployment="webapp"}) by (rt_route, dst)')
    routes = set(inbound["rt_route"])
    assert {"GET /", "POST /books", "POST /books/{id}/edit"} <= routes
    assert set(inbound["dst"]) == {"webapp.booksapp.svc.cluster.local:7000"}


def test_timeout_answers_504_and_cuts_latency():
    mesh = books()
    apply_profiles(mesh)
    prof = mesh.get("sp", "books.booksapp.svc.cluster.local", "booksapp")
    for r in prof["spec"]["routes"]:
        if r["name"] == "PUT /books/{id}.json":
            r["timeout"] = "25ms"
    mesh.apply([prof])
    restart(mesh, "webapp")
    mesh.wait("3m")
    frame = mesh.query('sum(route_response_total{deployment="webapp", rt_route="PUT /books/{id}.json"}) '
                       'by (status_code, error, classification)')
    rows = {(r["status_code"], r["error"], r["classification"]): r["value"] for r in frame.to_dict("records")}
    assert rows.get(("504", "timeout", "failure"), 0) > 0
    # effective latency never exceeds the timeout: every sample is in the le="30" bucket or below
    buckets = mesh.query('sum(route_response_latency_ms_bucket{deployment="webapp", rt_route="PUT /books/{id}.json"}) by (le)')
    le = {r["le"]: r["value"] for r in buckets.to_dict("records")}
    assert le["30"] == le["+Inf"] > 0
    # the app sees an ordinary HTTP 504 from its proxy
    webapp = mesh.dataplane.find_pods("deploy/webapp", "booksapp")[0]
    rsp = mesh.dataplane.call(webapp, "books:7002", "PUT", "/books/1.json", body="title=x&author_id=1&pages=1")
    assert rsp.status == 504 and rsp.latency_ms == pytest.approx(25.0) and not rsp.error


def test_timeout_on_an_unmatched_route_changes_nothing():
    mesh = books()
    apply_profiles(mesh)
    restart(mesh, "webapp")
    mesh.wait("2m")
    assert mesh.query('sum(route_response_total{status_code="504"})').empty


def test_upstream_trafficsplits_with_missing_and_zero_weight_backends_never_crash(upstream):
    """booksapp-trafficsplit.yml: webapp-split points at a Service that does not exist (weight 0m) and
    authors-split at authors-clone (whose Service listens on another port): the API server accepts
    them, linkerd-smi writes the dstOverrides, the proxies drop the weight-0 backend and skip one
    with no endpoints, and traffic keeps flowing."""
    import yaml

    docs = [d for d in yaml.safe_load_all((upstream / "booksapp" / "booksapp-trafficsplit.yml").read_text())
            if d and d.get("kind") == "TrafficSplit"]
    mesh = books()
    assert mesh.apply(docs, namespace="booksapp") == [
        "trafficsplit.split.smi-spec.io/authors-split created", "trafficsplit.split.smi-spec.io/webapp-split created"]
    mesh.wait("10s")
    overrides = mesh.get("sp", "webapp.booksapp.svc.cluster.local", "booksapp")["spec"]["dstOverrides"]
    assert [o["authority"] for o in overrides] == ["webapp.booksapp.svc.cluster.local", "webapp-clone.booksapp.svc.cluster.local"]
    restart(mesh, "traffic", "books", "webapp")
    mesh.wait("3m")
    stat = mesh.stat("deploy", namespace="booksapp", window="2m")
    webapp = stat[stat["NAME"] == "webapp"].iloc[0]
    assert webapp["RPS"] > 5  # the missing backend took nothing
    ts = mesh.stat("ts", namespace="booksapp", window="2m")
    leaves = dict(zip(ts["LEAF"], ts["RPS"]))
    assert leaves["webapp"] > 5 and leaves["webapp-clone"] != leaves["webapp-clone"]  # NaN: no traffic
    assert leaves["authors"] > 0 and leaves["authors-clone"] != leaves["authors-clone"]  # no clone pods exist


def test_negative_and_empty_splits_pass_the_api_server_as_on_a_cluster():
    """linkerd-smi's CRD bounds neither a weight nor the number of backends, so the API server stores both; the
    adaptor passes the weight on to the profile and the mesh keeps serving."""
    mesh = books(wait="10s")
    bad = {"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
           "metadata": {"name": "bad", "namespace": "booksapp"},
           "spec": {"service": "books", "backends": [{"service": "books", "weight": -1}]}}
    assert mesh.apply([bad]) == ["trafficsplit.split.smi-spec.io/bad created"]
    mesh.wait("30s")
    overrides = mesh.get("sp", "books.booksapp.svc.cluster.local", "booksapp")["spec"]["dstOverrides"]
    assert overrides == [{"authority": "books.booksapp.svc.cluster.local", "weight": -1}]
    bad["spec"]["backends"] = []
    assert mesh.apply([bad]) == ["trafficsplit.split.smi-spec.io/bad configured"]


def test_httproute_missing_backend_is_reported_and_fails_its_share():
    mesh = books()
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "to-nowhere", "namespace": "booksapp"},
             "spec": {"parentRefs": [{"name": "books", "kind": "Service", "group": "core", "port": 7002}],
                      "rules": [{"backendRefs": [{"name": "books", "port": 7002, "weight": 1},
                                                 {"name": "nowhere", "port": 7002, "weight": 1}]}]}}
    mesh.apply([route])
    mesh.wait("1m")
    status = mesh.get("httproute.gateway.networking.k8s.io", "to-nowhere", "booksapp")["status"]["parents"][0]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Accepted"]["status"] == "True"
    assert conds["ResolvedRefs"]["status"] == "False" and conds["ResolvedRefs"]["reason"] == "BackendNotFound"
    webapp = mesh.dataplane.find_pods("deploy/webapp", "booksapp")[0]
    statuses = [mesh.dataplane.call(webapp, "books:7002", "GET", "/books.json").status for _ in range(400)]
    assert 0.4 <= statuses.count(500) / len(statuses) <= 0.6 and statuses.count(200) + statuses.count(500) == 400


def test_httproute_matches_and_unmatched_requests_get_404():
    mesh = books(wait="1m")
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "books-list", "namespace": "booksapp"},
             "spec": {"parentRefs": [{"name": "books", "kind": "Service", "group": "core", "port": 7002}],
                      "rules": [{"matches": [{"path": {"type": "Exact", "value": "/books.json"}, "method": "GET"}]}]}}
    mesh.apply([route])
    mesh.wait("5s")
    webapp = mesh.dataplane.find_pods("deploy/webapp", "booksapp")[0]
    assert mesh.dataplane.call(webapp, "books:7002", "GET", "/books.json?order=x").status == 200
    rsp = mesh.dataplane.call(webapp, "books:7002", "GET", "/books/1.json")
    assert rsp.status == 404 and rsp.headers["l5d-proxy-error"] == "no route found for request"


def test_annotation_retries_and_a_profile_winning_over_them():
    mesh = books()
    mesh.patch("svc", "authors", {"metadata": {"annotations": {"retry.linkerd.io/http": "5xx",
                                                                "retry.linkerd.io/limit": "3"}}}, "booksapp")
    mesh.wait("5s")
    books_pod = mesh.dataplane.find_pods("deploy/books", "booksapp")[0]
    statuses = [mesh.dataplane.call(books_pod, "authors:7001", "HEAD", "/authors/1.json").status for _ in range(400)]
    # four tries at 50% each: about 1 in 16 still fails
    assert 0.01 <= statuses.count(503) / 400 <= 0.12
    # A ServiceProfile for authors makes the proxies (new ones: books restarts) ignore the annotations.
    apply_profiles(mesh)
    restart(mesh, "books")
    mesh.wait("1m")
    books_pod = mesh.dataplane.find_pods("deploy/books", "booksapp")[0]
    statuses = [mesh.dataplane.call(books_pod, "authors:7001", "HEAD", "/authors/1.json").status for _ in range(400)]
    assert 0.4 <= statuses.count(503) / 400 <= 0.6


def test_request_timeout_annotation_answers_504():
    mesh = books()
    mesh.patch("svc", "books", {"metadata": {"annotations": {"timeout.linkerd.io/request": "15ms"}}}, "booksapp")
    mesh.wait("5s")
    webapp = mesh.dataplane.find_pods("deploy/webapp", "booksapp")[0]
    rsp = mesh.dataplane.call(webapp, "books:7002", "PUT", "/books/1.json", body="title=x&author_id=1&pages=1")
    assert rsp.status == 504 and rsp.latency_ms == pytest.approx(15.0)
    assert mesh.dataplane.call(webapp, "books:7002", "GET", "/books.json").status == 200


def test_tap_shows_the_matched_route():
    mesh = books()
    apply_profiles(mesh)
    restart(mesh, "webapp", "traffic")
    mesh.wait("2m")
    events = mesh.tap("deploy/webapp", "booksapp", duration="10s")
    inbound = events[(events["proxy"] == "in") & (events["type"] == "req")]
    outbound = events[(events["proxy"] == "out") & (events["type"] == "req")]
    assert "POST /books/{id}/edit" in set(inbound["rt_route"]) or "POST /books" in set(inbound["rt_route"])
    assert "GET /books/{id}.json" in set(outbound["rt_route"])


def test_httproute_with_every_backend_weighted_zero_fails_with_500():
    mesh = books(wait="1m")
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "drained", "namespace": "booksapp"},
             "spec": {"parentRefs": [{"name": "books", "kind": "Service", "group": "core", "port": 7002}],
                      "rules": [{"backendRefs": [{"name": "books", "port": 7002, "weight": 0}]}]}}
    mesh.apply([route])
    mesh.wait("5s")
    webapp = mesh.dataplane.find_pods("deploy/webapp", "booksapp")[0]
    assert {mesh.dataplane.call(webapp, "books:7002", "GET", "/books.json").status for _ in range(20)} == {500}


def test_consumer_route_in_the_clients_namespace_wins_for_its_clients_only():
    index_routes = [
        {"metadata": {"name": "producer", "namespace": "shop", "creationTimestamp": "2019-01-01T00:00:00Z"},
         "spec": {"parentRefs": [{"name": "api", "kind": "Service", "group": "core"}],
                  "rules": [{"backendRefs": [{"name": "api", "port": 80}]}]}},
        {"metadata": {"name": "consumer", "namespace": "web", "creationTimestamp": "2019-01-01T00:00:00Z"},
         "spec": {"parentRefs": [{"name": "api", "namespace": "shop", "kind": "Service", "group": "core"}],
                  "rules": [{"backendRefs": [{"name": "api-v2", "namespace": "shop", "port": 80}]}]}},
    ]
    accepted = {"parents": [{"controllerName": policy.POLICY_CONTROLLER,
                             "parentRef": {"group": "core", "kind": "Service", "namespace": "shop", "name": "api"},
                             "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}]}
    for route in index_routes:  # the proxy only gets routes the policy controller accepted
        route["status"] = accepted
    index = policy.Index.__new__(policy.Index)
    index.routes = {("shop", "api"): index_routes}
    index.service_annotations = {}
    index.services = {("shop", "api"), ("shop", "api-v2")}
    web = index.client_policy("web", "shop", "api", 80).match("GET", "/", "", None)
    other = index.client_policy("shop", "shop", "api", 80).match("GET", "/", "", None)
    assert web.name == "consumer" and web.backends == [(1, ("shop", "api-v2", 80))]
    assert other.name == "producer"
