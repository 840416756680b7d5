"""Linkerd's control-plane components take their settings from the objects they were installed as.

Each component is configured by its container's arguments, rendered by ``linkerd install`` from the chart
values (``charts/linkerd-control-plane/templates/destination.yaml``, ``identity.yaml`` at ``version-2.20``;
the policy controller's flags in ``policy-controller/runtime/src/args.rs``). An edited manifest or
``kubectl edit`` therefore changes what the component does once its new pod runs — checked here by what
the proxies then do to traffic.
"""
from __future__ import annotations

import pytest

import labkit
from labkit.sim.linkerd import authz as az
from labkit.sim.linkerd import controlplane as cp
from labkit.sim.linkerd import install

from conftest import UPSTREAM, exposition_total, set_container_arg

NS = "booksapp"
LINKERD = UPSTREAM / "linkerd"


def _books(mesh, annotations=None):
    mesh.apply("booksapp")
    if annotations:
        mesh.annotate("namespace", NS, annotations)
    mesh.inject("deploy", namespace=NS)
    mesh.wait("90s")
    return mesh


def _code(mesh, client="deploy/webapp", url="http://books:7002/books.json") -> str:
    return mesh.exec(client, f"curl -s -o /dev/null -w '%{{http_code}}' {url}", NS)


def test_flags_read_as_go_and_clap_parse_them():
    args = cp.parse_args(["identity", "-identity-trust-domain=example.org", "--default-policy", "deny",
                          "--admission-controller-disabled", "--log-level=info"])
    assert args == {"identity-trust-domain": "example.org", "default-policy": "deny",
                    "admission-controller-disabled": "true", "log-level": "info"}
    assert cp.port_set("25,8080-8082") == {25, 8080, 8081, 8082}
    with pytest.raises(ValueError):
        cp.port_set("80-70")
    with pytest.raises(ValueError):
        cp.networks("10.0.0.0/8,not-a-network")


def test_the_install_renders_the_components_arguments_from_its_values():
    """``linkerd install --set proxy.defaultInboundPolicy=deny --set clusterNetworks=…``, as the chart renders it."""
    objs = install.control_plane_objects(0, {"proxy.defaultInboundPolicy": "deny", "clusterNetworks": "10.0.0.0/8",
                                             "identityTrustDomain": "example.org",
                                             "identity.issuer.issuanceLifetime": "1h0m0s"})
    deploys = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Deployment"}
    args = {c["name"]: cp.parse_args(c.get("args")) for d in deploys.values()
            for c in d["spec"]["template"]["spec"]["containers"]}
    assert args["policy"]["default-policy"] == "deny" and args["policy"]["cluster-networks"] == "10.0.0.0/8"
    assert args["policy"]["identity-domain"] == "example.org" and args["policy"]["probe-networks"] == "0.0.0.0/0,::/0"
    assert args["identity"]["identity-trust-domain"] == "example.org"
    assert args["identity"]["identity-issuance-lifetime"] == "1h0m0s"
    assert args["destination"]["identity-trust-domain"] == "example.org"


@pytest.mark.skipif(not LINKERD.is_dir(), reason=f"upstream Linkerd goldens not found at {LINKERD}")
def test_a_default_policy_edited_in_the_real_manifest_reaches_the_policy_controller():
    """As ``linkerd install --set proxy.defaultInboundPolicy=deny`` renders it: the policy controller's
    ``--default-policy`` is the default of every pod without the annotation."""
    golden = (LINKERD / "linkerd-install_default.yaml").read_text()
    assert golden.count("--default-policy=all-unauthenticated") == 1
    mesh = labkit.connect(seed=7)
    mesh.apply(str(LINKERD / "linkerd-install_crds.yaml"))
    mesh.apply(golden.replace("--default-policy=all-unauthenticated", "--default-policy=deny"))
    mesh.wait("2m")
    _books(mesh)
    assert cp.policy_controller(mesh.cluster).default_policy == "deny"
    assert _code(mesh) == "403"
    metrics = mesh.proxy_metrics("deploy/books", NS)
    assert exposition_total(metrics, "inbound_http_authz_deny_total", srv_kind="default", srv_name="deny") > 0
    assert exposition_total(metrics, "inbound_http_authz_allow_total", srv_name="deny", authz_name="probe") > 0, \
        "the kubelet's probes still pass"
    # a namespace that says otherwise keeps its own
    mesh.annotate("namespace", NS, {az.POLICY_ANNOTATION: "all-unauthenticated"})
    mesh.cluster.patch("deploy", "books", {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}}, NS)
    mesh.wait("1m")
    assert _code(mesh) == "200"


def test_an_edited_default_policy_applies_once_the_new_controller_runs():
    mesh = labkit.connect(seed=8)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("1m")
    _books(mesh)
    assert _code(mesh) == "200"
    set_container_arg(mesh, "linkerd-destination", "linkerd", "policy", "--default-policy=", "all-authenticated")
    assert _code(mesh) == "200", "the old controller still answers until the new pod runs"
    assert _code(mesh, "deploy/traffic") == "200"
    mesh.wait("1m")
    assert _code(mesh) == "200", "meshed clients are authenticated"
    # the traffic generator is meshed too: an unmeshed pod shows the difference
    mesh.apply([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "curl", "namespace": NS},
                 "spec": {"containers": [{"name": "curl", "image": "curlimages/curl:8.5.0",
                                          "command": ["sleep", "3600"]}]}}])
    mesh.wait("30s")
    assert mesh.exec("pod/curl", "curl -s -o /dev/null -w '%{http_code}' http://books:7002/books.json", NS) == "403"


def test_cluster_networks_decide_who_a_cluster_policy_admits():
    mesh = labkit.connect(seed=9)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("1m")
    _books(mesh, {az.POLICY_ANNOTATION: "cluster-unauthenticated"})
    assert _code(mesh) == "200", "pod IPs (10.244.0.0/16) are in the default cluster networks"
    set_container_arg(mesh, "linkerd-destination", "linkerd", "policy", "--cluster-networks=", "192.168.0.0/16")
    mesh.wait("1m")
    assert cp.policy_controller(mesh.cluster).cluster_networks == cp.networks("192.168.0.0/16")
    assert _code(mesh) == "403"


def test_an_invalid_value_leaves_the_setting_at_the_charts_default():
    mesh = labkit.connect(seed=10)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("1m")
    set_container_arg(mesh, "linkerd-destination", "linkerd", "policy", "--default-policy=", "denyy")
    set_container_arg(mesh, "linkerd-destination", "linkerd", "policy", "--probe-networks=", "0.0.0.0/0,oops")
    mesh.wait("1m")
    settings = cp.policy_controller(mesh.cluster)
    assert settings.default_policy == "all-unauthenticated"
    assert settings.probe_networks == cp.networks("0.0.0.0/0,::/0")


def _install(mesh, overrides=None):
    """``linkerd install --crds`` and ``linkerd install --set …``, applied as the CLI's output would be."""
    mesh.install_gateway_api()
    mesh.apply(install.crd_objects())
    mesh.apply(install.control_plane_objects(mesh.cluster.seed, overrides))
    mesh.wait("2m")


def test_the_trust_domain_names_every_proxy_and_what_the_policy_controller_matches():
    """``identityTrustDomain``: the injector names proxies in it, identity certifies them, and the policy
    controller's ``--identity-domain`` turns a ServiceAccount reference into such a name."""
    mesh = labkit.connect(seed=11)
    _install(mesh, {"identityTrustDomain": "example.org"})
    assert cp.identity(mesh.cluster).trust_domain == "example.org"
    _books(mesh)
    assert set(mesh.pods(NS).READY) == {"2/2"}, "identity certified the proxies"
    webapp = "webapp.booksapp.serviceaccount.identity.linkerd.example.org"
    metrics = mesh.proxy_metrics("deploy/books", NS)
    assert exposition_total(metrics, "request_total", direction="inbound", client_id=webapp) > 0
    assert not any("identity.linkerd.cluster.local" in line for line in metrics.splitlines() if "client_id=" in line)
    assert f"Local identity is {webapp}" in mesh.logs("deploy/webapp", NS, container="linkerd-proxy")
    mesh.apply("""
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: books-http, namespace: booksapp}
spec:
  podSelector: {matchLabels: {app: books}}
  port: 7002
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: webapp-only, namespace: booksapp}
spec:
  identityRefs: [{kind: ServiceAccount, name: webapp}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: books-from-webapp, namespace: booksapp}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: books-http}
  requiredAuthenticationRefs: [{name: webapp-only, kind: MeshTLSAuthentication, group: policy.linkerd.io}]
""")
    mesh.wait("10s")
    assert _code(mesh) == "200", "webapp's example.org identity matches the ServiceAccount reference"
    assert _code(mesh, "deploy/traffic") == "403"


def test_identity_certifies_only_names_in_its_own_trust_domain():
    mesh = labkit.connect(seed=12)
    _install(mesh)
    _books(mesh)
    set_container_arg(mesh, "linkerd-identity", "linkerd", "identity", "-identity-trust-domain=", "example.org")
    mesh.wait("1m")
    assert set(mesh.pods(NS).READY) == {"2/2"}, "proxies certified before keep running"
    mesh.cluster.patch("deploy", "books", {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}}, NS)
    mesh.wait("1m")
    pods = mesh.pods(NS)
    new = pods[pods.NAME.str.startswith("books-") & (pods.READY != "2/2")]
    assert len(new) == 1 and new.READY.iloc[0] == "0/2", \
        "a new proxy asks for a cluster.local name identity no longer issues: it never starts"
