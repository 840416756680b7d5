"""Linkerd 2.20 inbound authorization policy on the embedded mesh, and ``linkerd viz authz``.

What the docs (features/server-policy.md, reference/authorization-policy.md)
and the proxy say a denied client sees — HTTP 403, gRPC PermissionDenied,
a refused connection on a non-HTTP port — checked on real traffic, with the
denials counted in ``inbound_http_authz_deny_total`` and shown by ``authz``.
"""
from __future__ import annotations

import pytest

import labkit
from labkit.sim.linkerd import authz as az

from conftest import exposition_total, meshed_app

SERVER = """
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: books-http, namespace: booksapp}
spec:
  podSelector: {matchLabels: {app: books}}
  port: 7002
  proxyProtocol: HTTP/1
"""
ONLY_WEBAPP = """
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: webapp-only, namespace: booksapp}
spec:
  identityRefs:
    - {kind: ServiceAccount, name: webapp}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: books-from-webapp, namespace: booksapp}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: books-http}
  requiredAuthenticationRefs:
    - {name: webapp-only, kind: MeshTLSAuthentication, group: policy.linkerd.io}
"""


def _books(seed=0):
    return meshed_app("booksapp", namespace="booksapp", seed=seed, settle="1m", wait="90s")


def _deny_total(text: str, **labels) -> float:
    return exposition_total(text, "inbound_http_authz_deny_total", **labels)


@pytest.fixture(scope="module")
def guarded():
    mesh = _books()
    before = mesh.authz("deploy/books", "booksapp")
    mesh.apply(SERVER + "---" + ONLY_WEBAPP)
    mesh.wait("2m")
    return mesh, before


def test_without_policy_everything_is_allowed_by_the_default(guarded):
    _, before = guarded
    # the app's traffic on the default route; the kubelet's readiness probe (/ping) on the probe route
    assert list(before.ROUTE) == ["default", "probe"]
    assert list(before.SERVER) == ["default:all-unauthenticated"] * 2
    assert list(before.AUTHORIZATION) == ["default/all-unauthenticated", "default/probe"]
    assert before.UNAUTHORIZED.iloc[0] == 0 and before.RPS.iloc[0] > 1


def test_a_denied_client_is_refused_with_403_and_counted(guarded):
    mesh, _ = guarded
    out = mesh.exec("deploy/traffic", "curl -s -i -X POST http://books:7002/books.json", "booksapp")
    assert out.startswith("HTTP/1.1 403") and "l5d-proxy-error: unauthorized request on route" in out
    metrics = mesh.proxy_metrics("deploy/books", "booksapp")
    authors = "authors.booksapp.serviceaccount.identity.linkerd.cluster.local"
    assert _deny_total(metrics, srv_kind="server", srv_name="books-http", client_id=authors) > 100
    assert _deny_total(metrics, client_id="webapp.booksapp.serviceaccount.identity.linkerd.cluster.local") == 0
    assert "inbound_http_authz_allow_total{" in metrics and 'authz_name="books-from-webapp"' in metrics
    # the allowed webapp → books requests still reach the app
    resp = mesh.exec("deploy/webapp", "curl -s -o /dev/null -w '%{http_code}' http://books:7002/books.json", "booksapp")
    assert resp == "200"


def test_viz_authz_shows_the_unauthorized_rate_and_the_policy(guarded):
    mesh, _ = guarded
    df = mesh.authz("deploy/books", "booksapp")
    denied = df[df.AUTHORIZATION == ""].iloc[0]
    assert denied.SERVER == "books-http" and denied.ROUTE == "default" and denied.UNAUTHORIZED > 1
    assert "authorizationpolicy/books-from-webapp" in set(df.AUTHORIZATION)
    text = labkit.cli_text(df)
    assert text.splitlines()[0].split() == ["ROUTE", "SERVER", "AUTHORIZATION", "UNAUTHORIZED", "SUCCESS", "RPS",
                                            "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    assert "%.1frps" % denied.UNAUTHORIZED in text


def test_deleting_the_server_restores_the_default_policy(guarded):
    mesh, _ = guarded
    mesh.delete(SERVER)
    mesh.wait("5s")
    out = mesh.exec("deploy/traffic", "curl -s -o /dev/null -w '%{http_code}' http://books:7002/books.json",
                    "booksapp")
    assert out == "200"


def test_a_deny_default_policy_answers_grpc_callers_permission_denied():
    mesh = labkit.connect(seed=1)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("1m")
    mesh.apply("emojivoto")
    mesh.patch("deploy", "voting", {"spec": {"template": {"metadata": {"annotations": {az.POLICY_ANNOTATION: "deny"}}}}},
               "emojivoto")
    mesh.inject("deploy", namespace="emojivoto")
    mesh.wait("90s")
    voting = mesh.proxy_metrics("deploy/voting", "emojivoto")
    assert _deny_total(voting, srv_kind="default", srv_name="deny") > 0
    assert "inbound_http_authz_allow_total{" not in voting
    web = mesh.proxy_metrics("deploy/web", "emojivoto")
    denied = [line for line in web.splitlines() if line.startswith("response_total{") and 'direction="outbound"' in line
              and "voting-svc" in line]
    assert denied and all('grpc_status="7"' in line and 'classification="failure"' in line for line in denied)
    # the other servers keep the cluster default: web still serves vote-bot, emoji still answers web
    assert mesh.stat("deploy/emoji", "emojivoto").SUCCESS.iloc[0] == 1.0


@pytest.mark.parametrize("policy, meshed, in_cluster, allowed", [
    ("all-unauthenticated", False, False, True),
    ("all-authenticated", False, True, False),
    ("all-authenticated", True, False, True),
    ("cluster-unauthenticated", False, True, True),
    ("cluster-unauthenticated", False, False, False),
    ("cluster-authenticated", True, True, True),
    ("cluster-authenticated", False, True, False),
    ("deny", True, True, False),
    ("audit", False, False, True),
])
def test_default_policies(policy, meshed, in_cluster, allowed):
    client = az.Client("web.emojivoto.serviceaccount.identity.linkerd.cluster.local" if meshed else None,
                       "10.244.1.7" if in_cluster else "203.0.113.9")
    assert az.default_allows(policy, client) is allowed


def _index(objects):
    class FakeCluster:
        revision = 1

        def list(self, kind):
            plural = kind.split(".")[0]
            return [o for o in objects if o["kind"].lower() + "s" == plural or
                    (o["kind"] == "AuthorizationPolicy" and plural == "authorizationpolicies")]
    return az.InboundIndex(FakeCluster())


POD = {"metadata": {"name": "books-1", "namespace": "booksapp", "uid": "u1", "labels": {"app": "books"}},
       "spec": {"containers": [{"name": "books", "ports": [{"name": "service", "containerPort": 7002}]}]}}


def test_network_authentication_and_access_policy_and_named_ports():
    objects = [
        {"kind": "Server", "metadata": {"name": "books", "namespace": "booksapp"},
         "spec": {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["books"]}]},
                  "port": "service", "accessPolicy": "all-authenticated"}},
        {"kind": "NetworkAuthentication", "metadata": {"name": "office", "namespace": "booksapp"},
         "spec": {"networks": [{"cidr": "192.0.2.0/24", "except": ["192.0.2.7/32"]}]}},
        {"kind": "AuthorizationPolicy", "metadata": {"name": "from-office", "namespace": "booksapp"},
         "spec": {"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": "books"},
                  "requiredAuthenticationRefs": [{"kind": "NetworkAuthentication", "name": "office",
                                                  "group": "policy.linkerd.io"}]}},
    ]
    index = _index(objects)
    office = index.decide(POD, 7002, "all-unauthenticated", az.Client(None, "192.0.2.8"))
    assert office.allowed and dict(office.authz)["authz_name"] == "from-office"
    assert dict(office.srv) == {"srv_group": "policy.linkerd.io", "srv_kind": "server", "srv_name": "books"}
    excepted = index.decide(POD, 7002, "all-unauthenticated", az.Client(None, "192.0.2.7"))
    assert not excepted.allowed  # in the except list, unmeshed: accessPolicy all-authenticated refuses it
    meshed = index.decide(POD, 7002, "all-unauthenticated", az.Client("x.y.serviceaccount.identity.linkerd.cluster.local",
                                                                        "10.244.0.3"))
    assert meshed.allowed and dict(meshed.authz) == {"authz_group": "", "authz_kind": "default",
                                                     "authz_name": "all-authenticated"}
    other_port = index.decide(POD, 9999, "deny", az.Client(None, "10.244.0.3"))
    assert dict(other_port.srv)["srv_name"] == "deny" and not other_port.allowed


def test_meshtls_identities_with_wildcards_and_route_level_policies():
    objects = [
        {"kind": "Server", "metadata": {"name": "books", "namespace": "booksapp"},
         "spec": {"podSelector": {"matchLabels": {"app": "books"}}, "port": 7002}},
        {"kind": "HTTPRoute", "apiVersion": "policy.linkerd.io/v1beta3",
         "metadata": {"name": "reads", "namespace": "booksapp"},
         "spec": {"parentRefs": [{"name": "books", "kind": "Server", "group": "policy.linkerd.io"}],
                  "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/books"}, "method": "GET"}]}]}},
        {"kind": "MeshTLSAuthentication", "metadata": {"name": "ns", "namespace": "booksapp"},
         "spec": {"identities": ["*.booksapp.serviceaccount.identity.linkerd.cluster.local"]}},
        {"kind": "AuthorizationPolicy", "metadata": {"name": "reads-from-ns", "namespace": "booksapp"},
         "spec": {"targetRef": {"group": "policy.linkerd.io", "kind": "HTTPRoute", "name": "reads"},
                  "requiredAuthenticationRefs": [{"kind": "MeshTLSAuthentication", "name": "ns"}]}},
    ]
    index = _index(objects)
    inside = index.decide(POD, 7002, "all-unauthenticated",
                          az.Client("webapp.booksapp.serviceaccount.identity.linkerd.cluster.local", "10.244.0.3"))
    assert not inside.allowed and inside.routes  # nothing on the Server itself; the route authorizes
    match, labels, authz = inside.routes[0]
    assert match("GET", "/books/1.json", "", None) and not match("POST", "/books/1.json", "", None)
    assert not match("GET", "/books.json", "", None)  # PathPrefix matches whole path elements
    assert dict(labels)["route_name"] == "reads" and dict(authz)["authz_name"] == "reads-from-ns"
    outside = index.decide(POD, 7002, "all-unauthenticated",
                           az.Client("web.emojivoto.serviceaccount.identity.linkerd.cluster.local", "10.244.0.4"))
    assert outside.routes[0][2] is None


def test_non_http_ports_refuse_denied_connections():
    opaque_pod = {**POD, "metadata": {**POD["metadata"], "uid": "u2",
                                      "annotations": {az.OPAQUE_ANNOTATION: "7002"}}}
    index = _index([])
    decision = index.decide(opaque_pod, 7002, "deny", az.Client(None, "10.244.0.3"))
    assert decision.tcp and not decision.allowed
    tcp_server = _index([{"kind": "Server", "metadata": {"name": "db", "namespace": "booksapp"},
                          "spec": {"podSelector": {}, "port": 7002, "proxyProtocol": "opaque"}}])
    decision = tcp_server.decide(POD, 7002, "all-unauthenticated", az.Client(None, "10.244.0.3"))
    assert decision.tcp and not decision.allowed  # a Server without accessPolicy denies what nothing authorizes


def test_tcp_denials_are_refused_connections_on_the_mesh():
    mesh = _books(seed=2)
    mesh.apply("""
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: books-opaque, namespace: booksapp}
spec:
  podSelector: {matchLabels: {app: books}}
  port: 7002
  proxyProtocol: opaque
""")
    mesh.wait("30s")
    out = mesh.exec("deploy/traffic", "curl -s -S http://books:7002/books.json", "booksapp")
    assert out.startswith("curl: (7) Failed to connect to books port 7002") and "Connection refused" in out
    metrics = mesh.proxy_metrics("deploy/books", "booksapp")
    assert any(line.startswith("inbound_tcp_authz_deny_total{") for line in metrics.splitlines())


def test_the_served_linkerd_cli_runs_the_2_20_verbs(guarded):
    from labkit.sim.serve import cli

    mesh, _ = guarded
    out = cli.run(mesh, ["viz", "authz", "-n", "booksapp", "deploy/books"])
    assert out.code == 0 and out.stdout == labkit.cli_text(mesh.authz("deploy/books", "booksapp"))
    doc = __import__("json").loads(cli.run(mesh, ["viz", "authz", "-n", "booksapp", "deploy/books", "-o", "json"]).stdout)
    assert all(set(r) <= {"route", "server", "authorization", "unauthorized", "success", "rps", "latency_ms_p50",
                          "latency_ms_p95", "latency_ms_p99"} for r in doc) and doc
    out = cli.run(mesh, ["viz", "stat-outbound", "-n", "booksapp", "deploy/webapp", "-t", "30s"])
    assert out.stdout == labkit.cli_text(mesh.stat_outbound("deploy/webapp", "booksapp", window="30s"))
    out = cli.run(mesh, ["viz", "stat-inbound", "-n", "booksapp", "deploy", "webapp", "-o", "json"])
    assert __import__("json").loads(out.stdout)[0]["name"] == "webapp"
    bad = cli.run(mesh, ["viz", "stat-outbound", "svc/books"])
    assert bad.code == 1 and "unknown resource type 'svc'" in bad.stderr
