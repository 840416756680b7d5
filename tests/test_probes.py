"""The kubelet's HTTP probes through a meshed pod's inbound proxy, as Linkerd 2.20 authorizes and counts them.

Upstream (``policy-controller/k8s/index/src/inbound/index.rs`` ``default_inbound_http_routes``,
``workload.rs`` ``pod_http_probes``; docs ``features/server-policy.md``): a port without HTTPRoutes has a
``probe`` route — ``GET`` on exactly the pod's HTTP probe paths — authorized by the ``default``/``probe``
authorization for the ``--probe-networks``, whatever the port's default policy; a Server with routes has
none. The proxy counts probes like any plaintext request (``tls="no_identity"``,
``no_tls_reason="no_tls_from_remote"``), so ``linkerd viz authz`` shows a ``probe`` row.
"""
from __future__ import annotations

import pytest

from labkit.sim.linkerd import authz as az

from conftest import exposition_total, meshed_app, set_container_arg

NS = "booksapp"


def _books(seed=0, before_inject=None):
    return meshed_app("booksapp", namespace=NS, seed=seed, settle="1m", wait="90s", before_inject=before_inject)


@pytest.fixture(scope="module")
def books():
    return _books()


def test_probe_paths_come_from_every_containers_http_probes():
    pod = {"spec": {
        "containers": [{"name": "app", "ports": [{"name": "admin", "containerPort": 9990}],
                        "readinessProbe": {"httpGet": {"path": "/ready?full=1", "port": "admin"}},
                        "livenessProbe": {"httpGet": {"port": 8080}},
                        "startupProbe": {"exec": {"command": ["true"]}}}],
        "initContainers": [{"name": "sidecar", "restartPolicy": "Always",
                            "startupProbe": {"httpGet": {"path": "/live", "port": 4191}}}]}}
    assert az.probe_paths(pod) == {9990: frozenset({"/ready"}), 8080: frozenset({"/"}), 4191: frozenset({"/live"})}


def test_kubelet_probes_are_authorized_on_the_probe_route_and_counted(books):
    metrics = books.proxy_metrics("deploy/books", NS)
    probe = dict(route_kind="default", route_name="probe", authz_kind="default", authz_name="probe",
                 srv_kind="default", srv_name="all-unauthenticated", tls="no_identity",
                 no_tls_reason="no_tls_from_remote")
    allowed = exposition_total(metrics, "inbound_http_authz_allow_total", **probe)
    # books' readinessProbe (/ping, every 10 s) since the pod became ready, ~90 s
    assert 6 <= allowed <= 11
    assert exposition_total(metrics, "request_total", direction="inbound", **probe) == allowed
    assert exposition_total(metrics, "inbound_http_requests_total", route_name="probe") == allowed
    df = books.authz("deploy/books", NS)
    row = df[df.ROUTE == "probe"].iloc[0]
    assert row.SERVER == "default:all-unauthenticated" and row.AUTHORIZATION == "default/probe"
    assert row.SUCCESS == 1.0 and 0.05 <= row.RPS <= 0.2 and row.UNAUTHORIZED == 0
    stat = books.stat_inbound("deploy/books", NS)
    assert set(stat.ROUTE) == {"[default]", "probe"}


def test_any_client_get_on_a_probe_path_takes_the_probe_route(books):
    """The probe route matches requests, not the kubelet: a meshed client's GET /ping is on it too."""
    books.exec("deploy/webapp", "curl -s http://books:7002/ping", NS)
    metrics = books.proxy_metrics("deploy/books", NS)
    webapp = "webapp.booksapp.serviceaccount.identity.linkerd.cluster.local"
    assert exposition_total(metrics, "request_total", direction="inbound", route_name="probe", client_id=webapp) == 1
    # a HEAD (or any other path) is the default route's
    books.exec("deploy/webapp", "curl -s -I http://books:7002/ping", NS)
    metrics = books.proxy_metrics("deploy/books", NS)
    assert exposition_total(metrics, "request_total", direction="inbound", route_name="probe", client_id=webapp) == 1


def test_probes_pass_a_deny_default_policy_that_refuses_the_apps_clients():
    def deny(mesh):
        mesh.annotate("namespace", NS, {az.POLICY_ANNOTATION: "deny"})

    mesh = _books(seed=1, before_inject=deny)
    pods = mesh.pods(NS)
    assert set(pods.READY) == {"2/2"}
    out = mesh.exec("deploy/webapp", "curl -s -o /dev/null -w '%{http_code}' http://books:7002/books.json", NS)
    assert out == "403"
    metrics = mesh.proxy_metrics("deploy/books", NS)
    assert exposition_total(metrics, "inbound_http_authz_allow_total", route_name="probe", srv_name="deny") >= 6
    assert exposition_total(metrics, "inbound_http_authz_deny_total", route_name="default", srv_name="deny") > 0
    assert exposition_total(metrics, "inbound_http_authz_deny_total", route_name="probe") == 0


def test_a_server_with_routes_has_no_probe_route():
    mesh = _books(seed=2)
    mesh.apply("""
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: books-http, namespace: booksapp}
spec:
  podSelector: {matchLabels: {app: books}}
  port: 7002
  accessPolicy: all-unauthenticated
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: books-api, namespace: booksapp}
spec:
  parentRefs: [{name: books-http, kind: Server, group: policy.linkerd.io}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
""")
    mesh.wait("1m")
    before = exposition_total(mesh.proxy_metrics("deploy/books", NS), "request_total", route_name="probe")
    mesh.wait("1m")
    metrics = mesh.proxy_metrics("deploy/books", NS)
    assert exposition_total(metrics, "request_total", route_name="probe") == before, "probes no longer take a probe route"
    assert exposition_total(metrics, "request_total", srv_name="books-http", route_name="books-api") > 0
    # the kubelet's probes are now the route's, like any other request
    assert exposition_total(metrics, "request_total", srv_name="books-http", route_name="books-api", tls="no_identity") >= 3
    # the same Server without routes: the probe route is back, under the Server
    mesh.delete([{"apiVersion": "policy.linkerd.io/v1beta3", "kind": "HTTPRoute",
                  "metadata": {"name": "books-api", "namespace": NS}}])
    mesh.wait("1m")
    metrics = mesh.proxy_metrics("deploy/books", NS)
    assert exposition_total(metrics, "inbound_http_authz_allow_total", srv_kind="server", srv_name="books-http",
                  route_name="probe", authz_name="probe") >= 3


def test_probes_from_outside_the_probe_networks_are_denied_on_the_probe_route():
    """``--probe-networks`` is the policy controller's: narrowed to the pod network, the nodes' probes fail."""
    def narrow(mesh):
        set_container_arg(mesh, "linkerd-destination", "linkerd", "policy", "--probe-networks=", "10.0.0.0/8")
        mesh.wait("1m")

    mesh = _books(seed=3, before_inject=narrow)
    metrics = mesh.proxy_metrics("deploy/books", NS)
    assert exposition_total(metrics, "inbound_http_authz_deny_total", route_name="probe", srv_name="all-unauthenticated",
                  tls="no_identity") >= 6
    assert exposition_total(metrics, "inbound_http_authz_allow_total", route_name="probe") == 0
