"""labkit.steps: the labs' repeated steps, on the contract only."""
import pytest

import labkit
from labkit import steps


@pytest.fixture
def mesh():
    mesh = labkit.connect(seed=6)
    assert steps.linkerd_ready(mesh).startswith("Linkerd is ready at")
    assert mesh.check().ok
    mesh.apply("booksapp")
    steps.wait_rolled_out(mesh, ("authors", "books", "webapp", "traffic"), "booksapp")
    return mesh


def test_rollout_restart_replaces_every_pod(mesh):
    before = set(mesh.pods("booksapp")["NAME"])
    assert steps.rollout_restart(mesh, ["books"], "booksapp") == ["deployment.apps/books restarted"]
    assert not steps.rolled_out(mesh, "books", "booksapp")
    steps.wait_rolled_out(mesh, "books", "booksapp")
    mesh.wait("1m")
    after = mesh.pods("booksapp")
    books = [n for n in after["NAME"] if n.startswith("books-")]
    assert len(books) == 1 and books[0] not in before
    annotations = mesh.get("deploy", "books", "booksapp")["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations


def test_edit_route_sets_and_removes_fields(mesh):
    mesh.apply([mesh.profile("authors", "booksapp", open_api="booksapp/openapi/authors.swagger")])
    line = steps.edit_route(mesh, "authors", "booksapp", "HEAD /authors/{id}.json", isRetryable=True)
    assert line.endswith("configured")
    routes = mesh.get("sp", "authors.booksapp.svc.cluster.local", "booksapp")["spec"]["routes"]
    assert [r["name"] for r in routes if r.get("isRetryable")] == ["HEAD /authors/{id}.json"]
    steps.edit_route(mesh, "authors", "booksapp", "HEAD /authors/{id}.json", isRetryable=None)
    routes = mesh.get("sp", "authors.booksapp.svc.cluster.local", "booksapp")["spec"]["routes"]
    assert not any("isRetryable" in r for r in routes)


def test_edit_route_names_the_routes_when_one_is_missing(mesh):
    mesh.apply([mesh.profile("authors", "booksapp", open_api="booksapp/openapi/authors.swagger")])
    with pytest.raises(KeyError, match="has no route 'GET /nope'.*HEAD /authors"):
        steps.edit_route(mesh, "authors", "booksapp", "GET /nope", timeout="1s")


def test_wait_rolled_out_times_out_naming_the_wait(mesh):
    steps.rollout_restart(mesh, "books", "booksapp")
    with pytest.raises(TimeoutError, match="rollouts_finished"):
        steps.wait_rolled_out(mesh, "books", "booksapp", timeout="1s")


def test_applied_lines_are_summarised_by_kind_and_outcome():
    lines = ["namespace/linkerd created", "deployment.apps/linkerd-destination created",
             "deployment.apps/linkerd-identity unchanged", "service/linkerd-dst created",
             "customresourcedefinition.apiextensions.k8s.io/servers.policy.linkerd.io configured"]
    text = steps.summarize_applied(lines)
    assert text.splitlines()[:3] == ["5 objects applied:", "    2 deployment: 1 created, 1 unchanged",
                                     "    1 customresourcedefinition: 1 configured"]
    assert text.endswith('(every line: print("\\n".join(lines)))')


def test_the_banner_says_what_is_modelled_and_that_time_is_virtual():
    mesh = labkit.connect(seed=3)
    first, second, third = steps.about(mesh).splitlines()
    v = mesh.versions
    assert first.startswith("Embedded mesh (seed 3): a model of ") and f"Linkerd {v['linkerd']}" in first
    assert f"Kubernetes {v['kubernetes']}" in first and f"Flagger {v['flagger']}" in first
    assert "Time is virtual" in second and 'backend = "kube"' in third
