"""The image registry: which images have models, and how a container spec is read."""
from __future__ import annotations

import pytest

from labkit.errors import ApplyError
from labkit.sim.apps import AppModel, UnknownImageError, build, check_image, parse_image
from labkit.sim.apps.base import Dist, go_duration, go_duration_text, split_target
from labkit.sim.apps.model import Response, request_to, response
from labkit.sim.apps.testing import MiniMesh

SUPPORTED = [
    "ghcr.io/buoyantio/emojivoto-web:v11", "docker.l5d.io/buoyantio/emojivoto-emoji-svc:v11",
    "buoyantio/emojivoto-voting-svc:v8", "ghcr.io/buoyantio/emojivoto-web:v12",
    "buoyantio/booksapp:v0.0.3", "ghcr.io/buoyantio/booksapp:v0.0.5", "ghcr.io/buoyantio/booksapp-traffic:v0.0.3",
    "quay.io/stefanprodan/podinfo:1.7.0", "ghcr.io/stefanprodan/podinfo:6.0.0", "stefanprodan/podinfo:3.1.0",
    "nginx:alpine", "nginx", "docker.io/library/nginx:1.25", "ghcr.io/fluxcd/flagger-loadtester:0.38.0",
    "weaveworks/flagger-loadtester:0.9.0", "curlimages/curl:8.5.0", "buoyantio/slow_cooker:1.2.0",
    "cr.l5d.io/linkerd/controller:stable-2.14.10", "cr.l5d.io/linkerd/proxy:edge-24.11.8",
    "cr.l5d.io/linkerd/metrics-api:edge-24.11.8", "gcr.io/linkerd-io/controller:edge-19.7.1",
    "prom/prometheus:v2.48.1", "ghcr.io/fluxcd/flagger:1.37.0", "cr.l5d.io/linkerd/debug:stable-2.14.10",
]


@pytest.mark.parametrize("image", SUPPORTED)
def test_supported_images(image):
    check_image(image)


@pytest.mark.parametrize("image,why", [
    ("foo/bar:1", None),
    ("ghcr.io/buoyantio/emojivoto-web:v7", "v8–v12"),
    ("ghcr.io/buoyantio/emojivoto-web:v13", "v8–v12"),
    ("buoyantio/booksapp:v0.0.2", "v0.0.3–v0.0.5"),
    ("redis:7", None),
])
def test_unknown_image_error_names_image_and_supported(image, why):
    with pytest.raises(UnknownImageError) as e:
        check_image(image)
    text = str(e.value)
    assert text.startswith(f"image '{image}' is not modelled by the embedded mesh")
    assert "ghcr.io/buoyantio/emojivoto-{web,emoji-svc,voting-svc}:v8–v12" in text
    assert "{ghcr.io,quay.io}/stefanprodan/podinfo:1.x–6.x" in text
    assert "nginx:<any tag>" in text and "flagger-loadtester" in text
    assert text.endswith("use one of these or run the lab on a real cluster")
    if why:
        assert why in text.split(";")[0]
    assert isinstance(e.value, ValueError) and isinstance(e.value, ApplyError)


def test_build_refuses_unknown_images():
    with pytest.raises(UnknownImageError, match="'mysql:8'"):
        build({"name": "db", "image": "mysql:8"}, {"metadata": {"name": "db"}}, lambda *a: None)


def test_parse_image():
    r = parse_image("ghcr.io/buoyantio/emojivoto-web:v11")
    assert (r.registry, r.repository, r.tag) == ("ghcr.io", "buoyantio/emojivoto-web", "v11")
    r = parse_image("nginx")
    assert (r.registry, r.repository, r.tag) == ("docker.io", "nginx", "latest")
    r = parse_image("localhost:5000/stefanprodan/podinfo:6.0.0")
    assert (r.registry, r.repository, r.tag) == ("localhost:5000", "stefanprodan/podinfo", "6.0.0")
    r = parse_image("nginx@sha256:abc")
    assert (r.tag, r.digest) == (None, "sha256:abc")


def test_models_satisfy_the_protocol():
    m = MiniMesh()
    app = m.deploy("podinfo", {"name": "p", "image": "ghcr.io/stefanprodan/podinfo:6.0.0"})
    assert isinstance(app, AppModel)
    assert app.ready_after() > 0 and app.name == "podinfo:6.0.0"


def test_env_value_from_and_expansion():
    objects = {("ConfigMap", "cfg"): {"data": {"rate": "0.25", "site": "http://books:7002"}},
               ("Secret", "sec"): {"data": {"k": "MC41"}}}             # base64 "0.5"
    container = {"name": "service", "image": "ghcr.io/buoyantio/booksapp:v0.0.5", "args": ["prod:$(ROLE)"],
                 "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
                 "env": [{"name": "ROLE", "value": "authors"},
                         {"name": "FAILURE_RATE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "rate"}}},
                         {"name": "BOOKS_SITE", "value": "$(CFG_site)"},
                         {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "S", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}}]}
    m = MiniMesh()
    app = m.deploy("authors", container, objects=objects)
    assert type(app).__name__ == "Authors"
    assert app.failure_rate == 0.25 and app.books_site == "books:7002"
    assert app.env["POD"] == "authors-5d8f9c7b6-x2x4z" and app.env["S"] == "0.5"
    missing = m.deploy("a2", {**container, "env": [{"name": "X", "valueFrom": {
        "configMapKeyRef": {"name": "nope", "key": "k"}}}]}, objects=objects)
    assert missing.failure == 'CreateContainerConfigError: configmap "nope" not found'


def test_changing_failure_rate_changes_the_model():
    m = MiniMesh()
    for rate, expect in (("0.5", 0.5), ("0.1", 0.1), ("", 0.0), ("abc", 0.0)):
        app = m.deploy("authors", {"name": "s", "image": "buoyantio/booksapp:v0.0.5", "args": ["prod:authors"],
                                   "env": [{"name": "FAILURE_RATE", "value": rate}]})
        assert app.failure_rate == expect


def test_distributions_hit_their_quantiles():
    d = Dist(20, 80, 5)
    assert abs(d.quantile(0.5) - 20) < 0.5 and abs(d.quantile(0.95) - 80) < 2
    import random
    rng = random.Random(1)
    xs = sorted(d.sample(rng) for _ in range(20000))
    assert abs(xs[10000] - 20) < 1 and abs(xs[19000] - 80) < 4


def test_go_durations_and_targets():
    assert go_duration("30s") == 30 and go_duration("1m30s") == 90 and go_duration("100ms") == 0.1
    with pytest.raises(ValueError, match='invalid duration "3x"'):
        go_duration("3x")
    assert go_duration_text(0.0123) == "12.3ms" and go_duration_text(90) == "1m30s"
    assert split_target("http://podinfo-canary.test:9898/token?x=1") == ("podinfo-canary.test:9898", "/token?x=1", "http")
    assert split_target("webapp:7000") == ("webapp:7000", "/", "http")
    assert split_target("http://books") == ("books:80", "/", "http")


def test_inert_control_plane_answers_probes():
    m = MiniMesh()
    app = m.deploy("prometheus", {"name": "prometheus", "image": "prom/prometheus:v2.48.1",
                                  "ports": [{"containerPort": 9090, "name": "admin-http"}]})
    from labkit.sim.apps.model import Request
    assert app.ports == {9090: "http"}
    assert app.handle(Request("GET", "/-/ready", "x"), m.ctxs["prometheus"]).status == 200
    assert app.handle(Request("GET", "/api/v1/query", "x"), m.ctxs["prometheus"]).status == 404


def test_slow_cooker_from_flagger_yml_shape():
    m = MiniMesh()
    m.deploy("podinfo", {"name": "p", "image": "quay.io/stefanprodan/podinfo:1.7.0"})
    sc = m.deploy("load", {"name": "load", "image": "buoyantio/slow_cooker:1.2.0",
                           "command": ["/bin/sh"], "args": ["-c", "slow_cooker -qps ${QPS} -concurrency ${CONCURRENCY} http://podinfo:9898"],
                           "env": [{"name": "QPS", "value": "10"}, {"name": "CONCURRENCY", "value": "1"}]})
    assert sc.failure is None
    m.run_for(60)
    assert 590 <= len(m.served("podinfo", source="load")) <= 601
    assert any("[" in line for line in m.logs["load"][2:])


def test_models_work_over_a_plain_data_plane():
    """A data plane on the original interface (no body=, Responses rebuilt from
    four fields, 503 with error="") still gets Locations, bodies and payloads."""
    from labkit.sim.apps.model import Request
    m = MiniMesh(2, plain=True)
    env = lambda **kw: [{"name": k, "value": v} for k, v in kw.items()]  # noqa: E731
    img = "ghcr.io/buoyantio/booksapp:v0.0.5"
    m.deploy("authors", {"name": "s", "image": img, "args": ["prod:authors"],
                         "env": env(BOOKS_SITE="http://books:7002", FAILURE_RATE="0.5")})
    m.deploy("books", {"name": "s", "image": img, "args": ["prod:books"], "env": env(AUTHORS_SITE="http://authors:7001")})
    m.deploy("webapp", {"name": "s", "image": img, "args": ["prod:webapp"],
                        "env": env(AUTHORS_SITE="http://authors:7001", BOOKS_SITE="http://books:7002")})
    m.deploy("traffic", {"name": "t", "image": "ghcr.io/buoyantio/booksapp-traffic:v0.0.3",
                         "args": ["-initial-delay=1s", "webapp:7000"]})
    m.run_for(300)
    assert 0.72 < MiniMesh.success(m.served("webapp")) < 0.82
    assert m.apps["traffic"].restarts == 0
    m.deploy("podinfo-canary", {"name": "p", "image": "ghcr.io/stefanprodan/podinfo:6.0.1"})
    lt = m.deploy("lt", {"name": "lt", "image": "ghcr.io/fluxcd/flagger-loadtester:0.38.0"})
    payload = {"name": "podinfo", "namespace": "test",
               "metadata": {"type": "bash", "cmd": "curl -sd 'test' http://podinfo-canary:9898/token | grep token"}}
    assert lt.handle(Request("POST", "/", "lt", body=payload), m.ctxs["lt"]).status == 200
    assert '"version": "6.0.1"' in lt.exec(["curl", "-s", "http://podinfo-canary:9898/"], m.ctxs["lt"])
    m.down.add("podinfo-canary")
    assert lt.handle(Request("POST", "/", "lt", body=payload), m.ctxs["lt"]).status == 500


def test_request_to_carries_the_authority_a_client_sends():
    r = request_to("http://web-svc.emojivoto:80/", "GET", "/api/list", headers={"host": "x"})
    assert (r.authority, r.method, r.path, r.grpc, r.headers, r.body_bytes) == (
        "web-svc.emojivoto:80", "GET", "/api/list", False, {"host": "x"}, 0)
    assert request_to("voting-svc.emojivoto:8080", "POST", "/v", True, None, 5).authority == "voting-svc.emojivoto:8080"


@pytest.mark.parametrize("args", [(200, 1.5), (200, 0.7, 24, 0, None, ("joy", "😂")),
                                  (500, 3.25, 12, None, "", "x", {"a": "b"}), (0, 1.0, 0, None, "connection refused")])
def test_the_hot_path_response_builder_builds_what_the_class_builds(args):
    fast, plain = response(*args), Response(*args)
    assert fast == plain and type(fast) is Response and fast.headers_ms is None
