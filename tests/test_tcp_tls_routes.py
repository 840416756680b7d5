"""TCPRoute and TLSRoute (Gateway API experimental channel) as Linkerd 2.20's policy controller treats them.

Upstream: Linkerd 2.20 watches ``tcproutes``/``tlsroutes.gateway.networking.k8s.io`` (v1alpha2, experimental
channel of Gateway API v1.2.1) when their CRDs exist and writes their ``status.parents``
(``policy-controller/k8s/status/src/index.rs``): a Service parent gets Accepted and ResolvedRefs, a Server
parent Accepted; a parent that also has a route of a kind that wins (GRPCRoute > HTTPRoute > TLSRoute >
TCPRoute, GEP-1426) makes the later one ``RouteReasonConflicted``. The embedded mesh routes no TCP by them.
"""
from __future__ import annotations

import pytest

import labkit
from labkit.errors import ApplyError

NS = "booksapp"


def _route(kind, name, parent="books", port=7002, backend=("books", 7002), parent_kind="Service"):
    ref = {"name": parent, "kind": parent_kind, "group": "core" if parent_kind == "Service" else "policy.linkerd.io"}
    if port is not None:
        ref["port"] = port
    api = "gateway.networking.k8s.io/" + ("v1" if kind in ("HTTPRoute", "GRPCRoute") else "v1alpha2")
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": NS},
            "spec": {"parentRefs": [ref], "rules": [{"backendRefs": [{"name": backend[0], "port": backend[1]}]}]}}


def _status(mesh, kind, name):
    parents = mesh.get(f"{kind.lower()}s.gateway.networking.k8s.io", name, NS)["status"]["parents"]
    return [(p["controllerName"], p["parentRef"]["kind"], {c["type"]: c["reason"] for c in p["conditions"]})
            for p in parents]


def _mesh(channel):
    mesh = labkit.connect(seed=5)
    lines = mesh.install_gateway_api(channel=channel)
    mesh.install_linkerd(viz=False)
    mesh.wait("1m")
    mesh.apply("booksapp")
    mesh.wait("30s")
    return mesh, lines


def test_the_standard_channel_has_no_tcproute():
    mesh, lines = _mesh("standard")
    assert not any("tcproutes" in line for line in lines)
    with pytest.raises(ApplyError, match="TCPRoute"):
        mesh.apply([_route("TCPRoute", "books-tcp")])


def test_an_unknown_channel_is_refused():
    with pytest.raises(ValueError, match="'standard' and 'experimental'"):
        labkit.connect(seed=5).install_gateway_api(channel="beta")


def test_tcp_and_tls_routes_on_a_service_are_accepted_and_conflict_as_gep_1426_orders_them():
    mesh, lines = _mesh("experimental")
    assert "customresourcedefinition.apiextensions.k8s.io/tcproutes.gateway.networking.k8s.io serverside-applied" in lines
    mesh.apply([_route("TCPRoute", "books-tcp"), _route("TLSRoute", "authors-tls", parent="authors", port=7001,
                                                        backend=("authors", 7001)),
                _route("TCPRoute", "nowhere-tcp", backend=("nowhere", 7002), port=None)])
    mesh.wait("5s")
    ok = {"Accepted": "Accepted", "ResolvedRefs": "ResolvedRefs"}
    assert _status(mesh, "TCPRoute", "books-tcp") == [("linkerd.io/policy-controller", "Service", ok)]
    assert _status(mesh, "TLSRoute", "authors-tls") == [("linkerd.io/policy-controller", "Service", ok)]
    assert _status(mesh, "TCPRoute", "nowhere-tcp")[0][2] == {"Accepted": "Accepted", "ResolvedRefs": "BackendNotFound"}
    # a TLSRoute on the same parent wins over the TCPRoute; an HTTPRoute over both
    mesh.apply([_route("TLSRoute", "books-tls")])
    mesh.wait("5s")
    assert _status(mesh, "TCPRoute", "books-tcp")[0][2]["Accepted"] == "RouteReasonConflicted"
    assert _status(mesh, "TLSRoute", "books-tls")[0][2]["Accepted"] == "Accepted"
    mesh.apply([_route("HTTPRoute", "books-http")])
    mesh.wait("5s")
    assert _status(mesh, "TLSRoute", "books-tls")[0][2]["Accepted"] == "RouteReasonConflicted"
    assert _status(mesh, "HTTPRoute", "books-http")[0][2]["Accepted"] == "Accepted"
    # the winners gone, the TCPRoute is accepted again
    mesh.delete([_route("HTTPRoute", "books-http"), _route("TLSRoute", "books-tls")])
    mesh.wait("5s")
    assert _status(mesh, "TCPRoute", "books-tcp")[0][2]["Accepted"] == "Accepted"


def test_a_tcproute_on_a_server_parent():
    mesh, _ = _mesh("experimental")
    mesh.apply("""
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: books-tcp, namespace: booksapp}
spec:
  podSelector: {matchLabels: {app: books}}
  port: 7002
  proxyProtocol: opaque
""")
    mesh.apply([_route("TCPRoute", "books-srv", parent="books-tcp", port=None, parent_kind="Server"),
                _route("TCPRoute", "no-srv", parent="nope", port=None, parent_kind="Server")])
    mesh.wait("5s")
    assert _status(mesh, "TCPRoute", "books-srv") == [("linkerd.io/policy-controller", "Server", {"Accepted": "Accepted"})]
    assert _status(mesh, "TCPRoute", "no-srv")[0][2] == {"Accepted": "NoMatchingParent"}


def test_both_backends_install_the_experimental_channel_alike():
    pytest.importorskip("kubernetes")
    from labkit.sim.serve import serve

    sim = labkit.connect("sim", seed=0)
    served = serve(labkit.connect("sim", seed=0), pace=0)
    try:
        kube = labkit.connect("kube", context=served.context, kubeconfig=served.kubeconfig, lab="test-lab")
        lines = sim.install_gateway_api(channel="experimental")
        assert kube.install_gateway_api(channel="experimental") == lines
        assert any(line.startswith("customresourcedefinition.apiextensions.k8s.io/tlsroutes.") for line in lines)
    finally:
        served.close()
