"""The books-app tutorials' numbers (Labs 2 and 4), reproduced by simulated traffic in bands.

From the project's manifests/booksapp and from the UPSTREAM booksapp.yml (unchanged). Windows are
5 minutes at the app's ≈ 8 rps; bands are wide enough for that sample and tight enough to catch a
broken model (labs.md §2.4, §4; flagger-and-policies.md §3.4, §4.4):

* books → authors ``HEAD /authors/{id}.json`` ≈ 50% before retries (docs 50.85%);
* after ``isRetryable``: EFFECTIVE ≈ 100%, ACTUAL ≈ 50% (docs 100% / 58.45%), latency up;
* a 25 ms timeout on ``PUT /books/{id}.json``: effective success below 100%, with 504s;
* a 90/10 split: webapp → books ≈ 90% (docs 90.08% SMI, 87.76% HTTPRoute), error-injector 0%.
"""
import math

import pytest

import labkit
from labkit.metrics import routes as R

HEAD = "HEAD /authors/{id}.json"
PUT = "PUT /books/{id}.json"
WINDOW = "5m"


def _restart(mesh, *names):
    stamp = mesh.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in names:
        mesh.patch("deploy", name, {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": stamp}}}}}, "booksapp")


def _books(source, upstream):
    mesh = labkit.connect()
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.install_smi()  # the SMI split of the 2019 lab is linkerd-smi's
    mesh.wait("2m")
    if source == "upstream":
        mesh.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "booksapp"}})
        mesh.apply(upstream / "booksapp" / "booksapp.yml", namespace="booksapp")
    else:
        mesh.apply("booksapp")
    mesh.inject("deploy", namespace="booksapp")
    mesh.wait("1m")
    return mesh


def _edit_route(mesh, service, route, **fields):
    sp = mesh.get("sp", f"{service}.booksapp.svc.cluster.local", "booksapp")
    for r in sp["spec"]["routes"]:
        if r["name"] == route:
            r.update(fields)
    mesh.apply([sp])


def _row(table, route):
    return table.set_index("ROUTE").loc[route]


@pytest.fixture(scope="module", params=["project", "upstream"])
def lab2(request):
    """Lab 2's sequence; the tables of each step."""
    upstream = request.getfixturevalue("upstream")
    mesh = _books(request.param, upstream)
    for svc in ("webapp", "authors", "books"):
        mesh.apply([mesh.profile(svc, "booksapp", open_api=upstream / "booksapp" / f"{svc}.swagger")])
    _restart(mesh, "webapp", "authors", "books", "traffic")
    mesh.wait("1m")
    mesh.wait(WINDOW)
    steps = {"before": R.routes(mesh, "deploy/books", "booksapp", to="svc/authors", wide=True, window=WINDOW)}
    _edit_route(mesh, "authors", HEAD, isRetryable=True)
    mesh.wait(WINDOW)
    steps["retries"] = R.routes(mesh, "deploy/books", "booksapp", to="svc/authors", wide=True, window=WINDOW)
    steps["books_before_timeout"] = R.routes(mesh, "deploy/webapp", "booksapp", to="svc/books", wide=True, window=WINDOW)
    _edit_route(mesh, "books", PUT, timeout="25ms")
    mesh.wait(WINDOW)
    steps["timeout"] = R.routes(mesh, "deploy/webapp", "booksapp", to="svc/books", wide=True, window=WINDOW)
    steps["504s"] = mesh.query(f'sum(increase(route_response_total{{deployment="webapp", rt_route="{PUT}", '
                               f'status_code="504"}}[{WINDOW}]))')
    return steps


def test_head_route_fails_about_half_before_retries(lab2):
    head = _row(lab2["before"], HEAD)
    assert 0.40 <= head["EFFECTIVE_SUCCESS"] <= 0.60
    assert 2.5 <= head["EFFECTIVE_RPS"] <= 5.0
    assert head["ACTUAL_RPS"] == pytest.approx(head["EFFECTIVE_RPS"])  # no retries: one attempt each


def test_retries_make_effective_success_about_100_while_actual_stays_about_50(lab2):
    before, after = _row(lab2["before"], HEAD), _row(lab2["retries"], HEAD)
    assert after["EFFECTIVE_SUCCESS"] >= 0.97
    assert 0.40 <= after["ACTUAL_SUCCESS"] <= 0.60
    assert after["ACTUAL_RPS"] > 1.5 * after["EFFECTIVE_RPS"]   # about two attempts per request
    assert after["LATENCY_P95"] > before["LATENCY_P95"] and after["LATENCY_P50"] > before["LATENCY_P50"]


def test_retries_lift_add_book_upstream_too(lab2):
    books = lab2["books_before_timeout"]
    assert _row(books, "POST /books.json")["EFFECTIVE_SUCCESS"] == 1.0
    assert _row(books, PUT)["EFFECTIVE_SUCCESS"] == 1.0


def test_a_25ms_timeout_on_put_fails_it_with_504s(lab2):
    put = _row(lab2["timeout"], PUT)
    assert put["EFFECTIVE_SUCCESS"] < 0.99 and put["EFFECTIVE_RPS"] > 0
    assert put["LATENCY_P99"] <= 30  # cut at the timeout (histogram bucket ≤ 30 ms)
    assert not lab2["504s"].empty and lab2["504s"]["value"][0] > 0
    other = _row(lab2["timeout"], "GET /books/{id}.json")
    assert other["EFFECTIVE_SUCCESS"] == 1.0


@pytest.fixture(scope="module", params=["project", "upstream"])
def lab4(request):
    upstream = request.getfixturevalue("upstream")
    mesh = _books(request.param, upstream)
    mesh.patch("deploy", "authors", [{"op": "remove", "path": "/spec/template/spec/containers/0/env/2"}], "booksapp")
    mesh.apply("booksapp/failure-injection/error-injector.yml")
    mesh.wait("2m")
    steps = {"clean": mesh.stat("deploy", namespace="booksapp", window="1m")}
    mesh.apply("booksapp/failure-injection/split-httproute.yml")
    mesh.wait(WINDOW)
    steps["httproute_from_webapp"] = mesh.stat("deploy", namespace="booksapp", from_="deploy/webapp", window=WINDOW)
    steps["httproute_webapp_to_books"] = mesh.query(
        f'sum(increase(response_total{{direction="outbound", deployment="webapp", '
        f'authority=~"books.booksapp.svc.cluster.local:.*"}}[{WINDOW}])) by (classification)')
    steps["httproute_stat"] = mesh.stat("deploy", namespace="booksapp", window=WINDOW)
    mesh.delete("httproute.policy.linkerd.io/error-split", "booksapp")
    mesh.wait("2m")
    steps["removed"] = mesh.stat("deploy", namespace="booksapp", window="1m")
    mesh.apply("booksapp/failure-injection/split-smi.yml")
    _restart(mesh, "webapp")  # new proxies pick up the profile linkerd-smi wrote
    mesh.wait("1m")
    mesh.wait(WINDOW)
    steps["smi_routes"] = R.routes(mesh, "deploy/webapp", "booksapp", to="svc/books", window=WINDOW)
    steps["smi_from_webapp"] = mesh.stat("deploy", namespace="booksapp", from_="deploy/webapp", window=WINDOW)
    steps["smi_ts"] = mesh.stat("ts", namespace="booksapp", window=WINDOW)
    steps["smi_stat"] = mesh.stat("deploy", namespace="booksapp", window=WINDOW)
    return steps


def _stat(table, name):
    return table.set_index("NAME").loc[name]


def test_without_failure_rate_everything_succeeds(lab4):
    for name in ("webapp", "books", "authors"):
        assert _stat(lab4["clean"], name)["SUCCESS"] == 1.0


def test_httproute_split_about_90_percent_and_injector_0(lab4):
    counts = {r["classification"]: r["value"] for r in lab4["httproute_webapp_to_books"].to_dict("records")}
    assert 0.85 <= counts["success"] / (counts["success"] + counts["failure"]) <= 0.95
    rows = lab4["httproute_from_webapp"]
    assert _stat(rows, "error-injector")["SUCCESS"] == 0.0 and _stat(rows, "books")["SUCCESS"] == 1.0
    assert 0.84 <= _stat(lab4["httproute_stat"], "webapp")["SUCCESS"] <= 0.94  # docs: 88.42%
    assert _stat(lab4["httproute_stat"], "books")["SUCCESS"] == 1.0  # the failures never reach books' pods


def test_removing_the_split_restores_100_percent(lab4):
    assert _stat(lab4["removed"], "webapp")["SUCCESS"] == 1.0


def test_smi_split_about_90_percent_on_the_default_route(lab4):
    default = _row(lab4["smi_routes"], "[DEFAULT]")
    assert 0.85 <= default["SUCCESS"] <= 0.95                          # docs: 90.08%
    rows = lab4["smi_from_webapp"]
    assert _stat(rows, "error-injector")["SUCCESS"] == 0.0 and _stat(rows, "books")["SUCCESS"] == 1.0
    leaves = lab4["smi_ts"].set_index("LEAF")
    assert leaves.loc["error-injector", "SUCCESS"] == 0.0 and leaves.loc["books", "SUCCESS"] == 1.0
    share = leaves.loc["error-injector", "RPS"] / (leaves.loc["error-injector", "RPS"] + leaves.loc["books", "RPS"])
    assert 0.06 <= share <= 0.14
    assert not math.isnan(_stat(lab4["smi_stat"], "webapp")["SUCCESS"])
