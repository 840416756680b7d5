"""`linkerd viz routes` from ServiceProfile route metrics (linkerd-formats.md §2.2, §3.2)."""
import math

import pytest

import labkit
from conftest import meshed_app
from labkit.metrics import queries
from labkit.metrics import routes as R


@pytest.fixture(scope="module")
def mesh():
    mesh = meshed_app("booksapp", namespace="booksapp", wait="1m")
    for svc in ("webapp", "authors", "books"):
        mesh.apply([mesh.profile(svc, "booksapp", open_api=f"booksapp/openapi/{svc}.swagger")])
    stamp = mesh.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in ("webapp", "books", "authors", "traffic"):
        mesh.patch("deploy", name, {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": stamp}}}}}, "booksapp")
    mesh.wait("4m")
    return mesh


def test_inbound_routes_of_a_service(mesh):
    table = mesh.routes("svc/webapp", "booksapp")
    assert list(table.columns) == ["ROUTE", "SERVICE", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    assert list(table["ROUTE"]) == ["GET /", "GET /authors/{id}", "GET /books/{id}", "POST /authors",
                                    "POST /authors/{id}/delete", "POST /authors/{id}/edit", "POST /books",
                                    "POST /books/{id}/delete", "POST /books/{id}/edit", "[DEFAULT]"]
    rows = table.set_index("ROUTE")
    assert set(table["SERVICE"]) == {"webapp"}
    assert 0.3 <= rows.loc["POST /books", "SUCCESS"] <= 0.7      # "Add Book" fails half the time
    assert rows.loc["GET /", "SUCCESS"] == 1.0
    assert math.isnan(rows.loc["POST /authors/{id}/edit", "SUCCESS"])  # the traffic script never edits authors


def test_cli_text_has_dashes_for_idle_routes(mesh):
    text = labkit.cli_text(mesh.routes("deploy/books", "booksapp", to="svc/authors"))
    lines = text.splitlines()
    assert lines[0].split() == ["ROUTE", "SERVICE", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    head = [line for line in lines if line.startswith("HEAD /authors/{id}.json")][0]
    assert head.split()[3].endswith("%") and head.split()[4].endswith("rps")
    idle = [line for line in lines if line.startswith("DELETE /authors/{id}.json")][0]
    assert idle.split()[3:] == ["-"] * 5
    assert lines[-2].startswith("[DEFAULT]") and lines[-1] == "" and text.endswith("\n\n")


def test_wide_has_effective_and_actual_columns(mesh):
    table = mesh.routes("deploy/books", "booksapp", to="svc/authors", wide=True)
    assert list(table.columns) == ["ROUTE", "SERVICE", "EFFECTIVE_SUCCESS", "EFFECTIVE_RPS", "ACTUAL_SUCCESS",
                                   "ACTUAL_RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    head = table.set_index("ROUTE").loc["HEAD /authors/{id}.json"]
    # no retries configured: every effective request is one actual request
    assert head["EFFECTIVE_RPS"] == pytest.approx(head["ACTUAL_RPS"])
    assert "EFFECTIVE_SUCCESS" in labkit.cli_text(table).splitlines()[0]


def test_numbers_are_the_route_queries_answers(mesh):
    labels = {"deployment": "books", "direction": "outbound", "namespace": "booksapp"}
    dsts = ["authors.booksapp.svc.cluster.local"]
    query = queries.route_requests(labels, dsts, "rt_route", "1m")
    assert query == ('sum(increase(route_response_total{deployment="books", direction="outbound", '
                     'dst=~"(authors.booksapp.svc.cluster.local)(:\\\\d+)?", namespace="booksapp"}[1m])) '
                     'by (rt_route, dst, classification)')
    frame = mesh.query(query)
    counts = {r["classification"]: round(r["value"]) for r in frame.to_dict("records")
              if r.get("rt_route") == "HEAD /authors/{id}.json"}
    head = mesh.routes("deploy/books", "booksapp", to="svc/authors").set_index("ROUTE").loc["HEAD /authors/{id}.json"]
    assert head["SUCCESS"] == pytest.approx(counts["success"] / (counts["success"] + counts["failure"]))
    assert head["RPS"] == pytest.approx((counts["success"] + counts["failure"]) / 60)


def test_a_service_without_profile_has_only_default(mesh):
    mesh.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lonely", "namespace": "booksapp"},
                "spec": {"selector": {"app": "lonely"}, "ports": [{"port": 80}]}})
    table = mesh.routes("svc/lonely", "booksapp")
    assert list(table["ROUTE"]) == ["[DEFAULT]"] and math.isnan(table["SUCCESS"][0])


def test_several_targets_get_a_resource_column(mesh):
    table = mesh.routes("deploy", "booksapp", to="svc/books")
    assert "RESOURCE" in table.columns
    assert {"deployment/webapp", "deployment/authors"} <= set(table["RESOURCE"])


def test_requests_linkerd_refuses(mesh):
    with pytest.raises(R.RoutesError, match="wide output is only available when --to is specified"):
        mesh.routes("deploy/books", "booksapp", wide=True)
    with pytest.raises(R.RoutesError, match="The service resource type is not supported with 'to' queries"):
        mesh.routes("svc/books", "booksapp", to="svc/authors")
    with pytest.raises(R.RoutesError, match="deploy, pod or svc"):
        mesh.routes("job/x", "booksapp")


def test_routes_before_linkerd_is_installed():
    with pytest.raises(R.RoutesError, match="Routes are not available"):
        labkit.connect().routes("deploy/web", "emojivoto")


def test_window_option(mesh):
    five = R.routes(mesh, "deploy/webapp", "booksapp", to="svc/books", window="3m")
    assert five.attrs["window"] == "3m"
    assert five.set_index("ROUTE").loc["GET /books.json", "RPS"] > 0
