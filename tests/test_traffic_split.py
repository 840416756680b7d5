"""Traffic splits: SMI TrafficSplit (via linkerd-smi's ServiceProfile dstOverrides) and HTTPRoute
backendRefs, drawn per request (flagger-and-policies.md §3)."""
import math

import pytest

import labkit
from conftest import meshed_app

BOOKS_SP = "books.booksapp.svc.cluster.local"


def split(version="v1alpha1", books="900m", injector="100m"):
    return {"apiVersion": f"split.smi-spec.io/{version}", "kind": "TrafficSplit",
            "metadata": {"name": "error-split", "namespace": "booksapp"},
            "spec": {"service": "books", "backends": [{"service": "books", "weight": books},
                                                      {"service": "error-injector", "weight": injector}]}}


def restart(mesh, *names):
    stamp = mesh.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in names:
        mesh.patch("deploy", name, {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": stamp}}}}}, "booksapp")


@pytest.fixture
def books():
    mesh = meshed_app("booksapp", namespace="booksapp", wait="1m")
    mesh.install_smi()  # TrafficSplit is the linkerd-smi extension's
    mesh.patch("deploy", "authors", [{"op": "remove", "path": "/spec/template/spec/containers/0/env/2"}], "booksapp")
    mesh.apply("booksapp/failure-injection/error-injector.yml")
    mesh.wait("1m")
    return mesh


def share_of_500s(mesh, n=2000):
    webapp = mesh.dataplane.find_pods("deploy/webapp", "booksapp")[0]
    statuses = [mesh.dataplane.call(webapp, "books:7002", "GET", "/books.json").status for _ in range(n)]
    return statuses.count(500) / n


def test_linkerd_smi_writes_the_split_into_the_profile_and_empties_it_on_delete(books):
    books.apply([split()])
    books.wait("1s")
    sp = books.get("sp", BOOKS_SP, "booksapp")
    assert sp["spec"]["dstOverrides"] == [{"authority": "books.booksapp.svc.cluster.local", "weight": "900m"},
                                          {"authority": "error-injector.booksapp.svc.cluster.local", "weight": "100m"}]
    books.apply([split(injector="300m")])
    books.wait("1s")
    assert books.get("sp", BOOKS_SP, "booksapp")["spec"]["dstOverrides"][1]["weight"] == "300m"
    books.delete("trafficsplit/error-split", "booksapp")
    books.wait("1s")
    assert not books.get("sp", BOOKS_SP, "booksapp")["spec"].get("dstOverrides")


def test_an_existing_profile_keeps_its_routes(books):
    books.apply([books.profile("books", "booksapp", open_api="booksapp/openapi/books.swagger")])
    books.apply([split()])
    books.wait("1s")
    sp = books.get("sp", BOOKS_SP, "booksapp")["spec"]
    assert len(sp["routes"]) == 5 and len(sp["dstOverrides"]) == 2


def test_split_needs_new_client_proxies_then_draws_per_request(books):
    books.apply([split()])
    books.wait("2s")
    assert share_of_500s(books, 300) == 0  # webapp's proxies discovered books before the profile existed
    restart(books, "webapp")
    books.wait("1m")
    assert 0.08 <= share_of_500s(books) <= 0.12


@pytest.mark.parametrize("version, books_w, injector_w", [("v1alpha2", 90, 10), ("v1alpha2", 9, 1), ("v1alpha1", "1", "111m")])
def test_split_versions_and_weights(books, version, books_w, injector_w):
    books.apply([split(version, books_w, injector_w)])
    restart(books, "webapp")
    books.wait("1m")
    assert 0.08 <= share_of_500s(books) <= 0.12


@pytest.mark.parametrize("version", ["v1alpha3", "v1alpha4"])
def test_linkerd_smi_serves_only_v1alpha1_and_v1alpha2(books, version):
    """SMI's later versions exist in the spec, but linkerd-smi's CRD serves only the first two."""
    with pytest.raises(labkit.errors.ApplyError, match=f'no matches for kind "TrafficSplit" in version "split.smi-spec.io/{version}"'):
        books.apply([split(version, 9, 1)])


def test_zero_weight_backend_gets_nothing(books):
    books.apply([split(books="1", injector="0")])
    restart(books, "webapp")
    books.wait("1m")
    assert share_of_500s(books, 500) == 0


def test_all_zero_weights_fall_back_to_the_apex(books):
    books.apply([split(books="0", injector="0")])
    restart(books, "webapp")
    books.wait("1m")
    assert share_of_500s(books, 500) == 0


@pytest.mark.parametrize("group, version", [("policy.linkerd.io", "v1beta2"), ("gateway.networking.k8s.io", "v1")])
def test_httproute_split_applies_at_once(books, group, version):
    route = {"apiVersion": f"{group}/{version}", "kind": "HTTPRoute",
             "metadata": {"name": "error-split", "namespace": "booksapp"},
             "spec": {"parentRefs": [{"name": "books", "kind": "Service", "group": "core", "port": 7002}],
                      "rules": [{"backendRefs": [{"name": "books", "port": 7002, "weight": 90},
                                                 {"name": "error-injector", "port": 7002, "weight": 10}]}]}}
    books.apply([route])
    books.wait("2s")
    assert 0.08 <= share_of_500s(books) <= 0.12
    books.delete(f"httproute.{group}/error-split", "booksapp")
    books.wait("2s")
    assert share_of_500s(books, 300) == 0


def test_default_backend_weight_is_one(books):
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "half", "namespace": "booksapp"},
             "spec": {"parentRefs": [{"name": "books", "kind": "Service", "group": "core"}],
                      "rules": [{"backendRefs": [{"name": "books", "port": 7002},
                                                 {"name": "error-injector", "port": 7002}]}]}}
    books.apply([route])
    books.wait("2s")
    assert 0.45 <= share_of_500s(books) <= 0.55


def test_retries_redraw_the_backend(books):
    """A retryable route over a 50/50 split: each attempt draws again, so two tries rarely both fail."""
    sp = books.profile("books", "booksapp", open_api="booksapp/openapi/books.swagger")
    for r in sp["spec"]["routes"]:
        r["isRetryable"] = True
    books.apply([sp])
    books.apply([split(books="1", injector="1")])
    restart(books, "webapp")
    books.wait("1m")
    webapp = books.dataplane.find_pods("deploy/webapp", "booksapp")[0]
    statuses = []
    for _ in range(300):  # 10 a second: the retries stay within the budget's 10 free retries a second
        statuses.append(books.dataplane.call(webapp, "books:7002", "GET", "/books.json").status)
        books.wait("100ms")
    assert statuses.count(500) / len(statuses) < 0.05
    # A burst of 1000 at one instant exhausts the budget: 100 free retries (reserve 500, withdraw 5)
    # plus one per five successes — most failures come back unretried.
    assert 0.3 <= share_of_500s(books, 1000) <= 0.45


def test_outbound_metrics_keep_the_apex_authority(books):
    books.apply([split()])
    restart(books, "webapp")
    books.wait("3m")
    frame = books.query('sum(response_total{direction="outbound", deployment="webapp", dst_service="error-injector"}) by (authority)')
    assert list(frame["authority"]) == ["books.booksapp.svc.cluster.local:7002"]


def test_stat_trafficsplit(books):
    books.apply([split()])
    restart(books, "webapp")
    books.wait("3m")
    table = books.stat("ts", namespace="booksapp")
    assert list(table.columns) == ["NAME", "APEX", "LEAF", "WEIGHT", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    rows = table.set_index("LEAF")
    assert rows.loc["books", "WEIGHT"] == "900m" and rows.loc["error-injector", "WEIGHT"] == "100m"
    assert rows.loc["books", "SUCCESS"] == 1.0 and rows.loc["error-injector", "SUCCESS"] == 0.0
    assert 5 <= rows.loc["books", "RPS"] / rows.loc["error-injector", "RPS"] <= 15
    text = labkit.cli_text(table)
    assert text.splitlines()[0].split() == ["NAME", "APEX", "LEAF", "WEIGHT", "SUCCESS", "RPS",
                                            "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    assert books.stat("ts/error-split", namespace="booksapp", from_="deploy/webapp").set_index("LEAF").loc["books", "RPS"] > 0
    quiet = books.stat("ts", namespace="booksapp", from_="deploy/authors")  # authors was not restarted: no split seen
    assert math.isnan(quiet.set_index("LEAF").loc["error-injector", "RPS"])
