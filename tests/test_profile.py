"""`linkerd profile --open-api` and `--template` (linkerd-formats.md §5.4), on the books app's specs."""
import pytest
import yaml

import labkit
from labkit.sim.linkerd import profile


@pytest.fixture(scope="module")
def mesh():
    return labkit.connect()


def test_webapp_profile_matches_the_docs_output(mesh, upstream):
    sp = mesh.profile("webapp", "booksapp", open_api=upstream / "booksapp" / "webapp.swagger")
    assert sp["apiVersion"] == "linkerd.io/v1alpha2" and sp["kind"] == "ServiceProfile"
    assert sp["metadata"] == {"creationTimestamp": None, "name": "webapp.booksapp.svc.cluster.local", "namespace": "booksapp"}
    routes = sp["spec"]["routes"]
    assert routes[0] == {"condition": {"method": "GET", "pathRegex": "/"}, "name": "GET /"}
    assert routes[2] == {"condition": {"method": "GET", "pathRegex": "/authors/[^/]*"}, "name": "GET /authors/{id}"}
    assert [r["name"] for r in routes] == [
        "GET /", "POST /authors", "GET /authors/{id}", "POST /authors/{id}/delete", "POST /authors/{id}/edit",
        "POST /books", "GET /books/{id}", "POST /books/{id}/delete", "POST /books/{id}/edit"]


def test_authors_and_books_routes_escape_the_dot(mesh, upstream):
    authors = mesh.profile("authors", "booksapp", open_api=upstream / "booksapp" / "authors.swagger")
    head = [r for r in authors["spec"]["routes"] if r["name"] == "HEAD /authors/{id}.json"][0]
    assert head["condition"] == {"method": "HEAD", "pathRegex": r"/authors/[^/]*\.json"}
    books = mesh.profile("books", "booksapp", open_api=upstream / "booksapp" / "books.swagger")
    assert [r["name"] for r in books["spec"]["routes"]] == [
        "GET /books.json", "POST /books.json", "DELETE /books/{id}.json", "GET /books/{id}.json", "PUT /books/{id}.json"]


@pytest.mark.parametrize("svc", ["webapp", "authors", "books"])
def test_the_projects_specs_give_the_same_profiles_as_upstreams(mesh, upstream, svc):
    ours = mesh.profile(svc, "booksapp", open_api=f"booksapp/openapi/{svc}.swagger")
    theirs = mesh.profile(svc, "booksapp", open_api=str(upstream / "booksapp" / f"{svc}.swagger"))
    assert ours == theirs


def test_profile_output_applies_and_shows_in_kubectl(upstream):
    mesh = labkit.connect()
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("2m")
    mesh.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "booksapp"}})
    sp = mesh.profile("authors", "booksapp", open_api=upstream / "booksapp" / "authors.swagger")
    assert mesh.apply([sp]) == ["serviceprofile.linkerd.io/authors.booksapp.svc.cluster.local created"]
    assert mesh.get("sp", "authors.booksapp.svc.cluster.local", "booksapp")["spec"]["routes"] == sp["spec"]["routes"]


def test_emojivoto_web_swagger(mesh, upstream):
    sp = mesh.profile("web-svc", "emojivoto", open_api=upstream / "emojivoto" / "service-profiles" / "web.swagger")
    assert [r["name"] for r in sp["spec"]["routes"]] == ["GET /api/list", "GET /api/vote"]


def test_vendor_extensions_responses_and_base_path(mesh):
    spec = yaml.safe_load("""
swagger: "2.0"
basePath: /v1/
paths:
  /items/{id}:
    get:
      x-linkerd-retryable: true
      x-linkerd-timeout: 300ms
      responses:
        "503": {description: busy}
        "200": {description: ok}
        default: {description: other}
    put: {}
""")
    routes = mesh.profile("shop", "web", open_api=spec)["spec"]["routes"]
    get, put = routes
    assert get == {
        "condition": {"method": "GET", "pathRegex": "/v1/items/[^/]*"},
        "isRetryable": True,
        "name": "GET /v1/items/{id}",
        "responseClasses": [{"condition": {"status": {"max": 200, "min": 200}}, "isFailure": False},
                            {"condition": {"status": {"max": 503, "min": 503}}, "isFailure": True}],
        "timeout": "300ms",
    }
    assert put == {"condition": {"method": "PUT", "pathRegex": "/v1/items/[^/]*"}, "name": "PUT /v1/items/{id}"}


def test_regex_metacharacters_are_quoted_like_go():
    assert profile.path_to_regex("/a+b/(c)/{x}.json") == r"/a\+b/\(c\)/[^/]*\.json"
    assert profile.quote_meta("a.b*c?d|e[f]g{h}i^j$k\\") == r"a\.b\*c\?d\|e\[f\]g\{h\}i\^j\$k\\"


def test_template(mesh):
    sp = mesh.profile("web-svc", "emojivoto", template=True)
    assert sp["metadata"]["name"] == "web-svc.emojivoto.svc.cluster.local"
    route = sp["spec"]["routes"][0]
    assert route["name"] == "/authors/{id}" and route["condition"] == {"pathRegex": r"/authors/\d+", "method": "POST"}
    assert route["responseClasses"][0] == {"condition": {"status": {"min": 500, "max": 599}}, "isFailure": True}
    assert "retryBudget" not in sp["spec"] and "timeout" not in route


def test_errors_read_like_the_cli(mesh):
    with pytest.raises(profile.ProfileError, match="Exactly one of --template, --open-api, or --proto"):
        mesh.profile("web", "x")
    with pytest.raises(profile.ProfileError, match="Exactly one of"):
        mesh.profile("web", "x", template=True, open_api={"paths": {}})
    with pytest.raises(profile.ProfileError, match="no such file"):
        mesh.profile("web", "x", open_api="no/such.swagger")
    with pytest.raises(profile.ProfileError, match="Error parsing yaml"):
        mesh.profile("web", "x", open_api="paths: [\n  - : :")
