"""Linkerd's proxy injector in the embedded mesh: what gets meshed, when, and how it looks."""
from __future__ import annotations

import pytest

import labkit
from labkit.sim import linkerd as l5d

IMAGE = "ghcr.io/buoyantio/emojivoto-web:v11"


def namespace(name="shop", inject=None, **annotations):
    ann = dict(annotations)
    if inject:
        ann["linkerd.io/inject"] = inject
    md = {"name": name}
    if ann:
        md["annotations"] = ann
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": md}


def deployment(name="web", ns="shop", annotations=None, replicas=1):
    tpl_md = {"labels": {"app": name}}
    if annotations:
        tpl_md["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": tpl_md, "spec": {"containers": [
                         {"name": name, "image": IMAGE, "ports": [{"name": "http", "containerPort": 8080}]}]}}}}




@pytest.fixture
def mesh():
    mesh = labkit.connect("sim", seed=21)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("90s")
    assert mesh.cluster.control_plane()["linkerd"]
    return mesh


def pods(mesh, ns="shop"):
    return mesh.cluster.list("pod", ns)


def container_names(pod):
    """The containers that run beside each other: native sidecars (2.20's proxy) first, then the containers."""
    spec = pod["spec"]
    return [c["name"] for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"] + \
        [c["name"] for c in spec["containers"]]


def test_namespace_annotation_meshes_new_pods(mesh):
    mesh.apply([namespace(inject="enabled"), deployment()])
    mesh.wait("60s")
    (pod,) = pods(mesh)
    assert container_names(pod) == ["linkerd-proxy", "web"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["linkerd-init", "linkerd-proxy"]
    assert mesh.pods("shop").iloc[0]["READY"] == "2/2"
    labels, ann = pod["metadata"]["labels"], pod["metadata"]["annotations"]
    assert labels["linkerd.io/control-plane-ns"] == "linkerd"
    assert labels["linkerd.io/proxy-deployment"] == "web"
    assert labels["linkerd.io/workload-ns"] == "shop"
    assert ann["linkerd.io/proxy-version"] == l5d.LINKERD_VERSION
    assert ann["linkerd.io/created-by"] == f"linkerd/proxy-injector {l5d.LINKERD_VERSION}"
    assert len(ann["linkerd.io/trust-root-sha256"]) == 64
    assert "linkerd.io/inject" not in ann, "the pod inherits meshing from its namespace"
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["linkerd-init", "linkerd-proxy"]
    proxy = pod["spec"]["initContainers"][1]
    assert proxy["restartPolicy"] == "Always" and proxy["startupProbe"]["httpGet"]["path"] == "/ready"
    assert proxy["image"] == f"cr.l5d.io/linkerd/proxy:{l5d.LINKERD_VERSION}"
    assert [(p["name"], p["containerPort"]) for p in proxy["ports"]] == [("linkerd-proxy", 4143), ("linkerd-admin", 4191)]
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["LINKERD2_PROXY_INBOUND_PORTS"] == "8080"
    assert env["LINKERD2_PROXY_IDENTITY_LOCAL_NAME"] == "$(_pod_sa).$(_pod_ns).serviceaccount.identity.linkerd.cluster.local"
    init = pod["spec"]["initContainers"][0]
    assert "--inbound-ports-to-ignore" in init["args"] and "4190,4191,4567,4568" in init["args"]
    assert {v["name"] for v in pod["spec"]["volumes"]} >= {"linkerd-identity-end-entity", "linkerd-identity-token"}
    assert mesh.cluster.meshed_counts("deploy", "shop") == {"web": (1, 1)}
    # the Deployment's template is untouched: injection happens to pods, at admission
    assert container_names(mesh.get("deploy", "web", "shop")["spec"]["template"]) == ["web"] if False else \
        [c["name"] for c in mesh.get("deploy", "web", "shop")["spec"]["template"]["spec"]["containers"]] == ["web"]


def test_template_annotation_meshes_and_pod_opt_out_wins(mesh):
    mesh.apply([namespace(), deployment("in", annotations={"linkerd.io/inject": "enabled"}), deployment("out")])
    mesh.apply([namespace("other", inject="enabled"), deployment("skip", "other", annotations={"linkerd.io/inject": "disabled"})])
    mesh.wait("60s")
    by_app = {p["metadata"]["labels"]["app"]: p for p in pods(mesh)}
    assert container_names(by_app["in"]) == ["linkerd-proxy", "in"]
    assert by_app["in"]["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"
    assert container_names(by_app["out"]) == ["out"]
    assert container_names(pods(mesh, "other")[0]) == ["skip"]
    assert mesh.cluster.meshed_counts("deploy", "shop") == {"in": (1, 1), "out": (0, 1)}


def test_existing_pods_change_only_when_they_restart(mesh):
    mesh.apply([namespace(), deployment()])
    mesh.wait("30s")
    (before,) = pods(mesh)
    mesh.apply([namespace(inject="enabled")])  # like `kubectl annotate ns shop linkerd.io/inject=enabled`
    mesh.wait("60s")
    (still,) = pods(mesh)
    assert still["metadata"]["name"] == before["metadata"]["name"]
    assert container_names(still) == ["web"], "running pods are not re-admitted"
    mesh.cluster.rollout_restart("deploy/web", "shop")
    mesh.wait("60s")
    (after,) = pods(mesh)
    assert after["metadata"]["name"] != before["metadata"]["name"]
    assert container_names(after) == ["linkerd-proxy", "web"]


def test_mesh_inject_is_the_get_inject_apply_round_trip(mesh):
    mesh.apply([namespace(), deployment("a"), deployment("b")])
    mesh.wait("30s")
    lines = mesh.inject("deploy", namespace="shop")
    assert lines == ['deployment "a" injected', 'deployment "b" injected',
                     "deployment.apps/a configured", "deployment.apps/b configured"]
    assert mesh.cluster.last_command == "kubectl get -n shop deploy -o yaml | linkerd inject - | kubectl apply -f -"
    d = mesh.get("deploy", "a", "shop")
    assert d["spec"]["template"]["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"
    assert d["metadata"]["generation"] == 2, "the template changed: a rollout"
    mesh.wait("60s")
    assert all(container_names(p) == ["linkerd-proxy", p["metadata"]["labels"]["app"]] for p in pods(mesh))
    assert mesh.rollout_status("a", "shop") == 'deployment "a" successfully rolled out'
    # injecting again rolls nothing out (kubectl may still say "configured": the piped object carries
    # server-side annotations such as the revision into last-applied-configuration)
    generations = {d["metadata"]["name"]: d["metadata"]["generation"] for d in mesh.cluster.list("deploy", "shop")}
    mesh.inject("deploy", namespace="shop")
    assert {d["metadata"]["name"]: d["metadata"]["generation"] for d in mesh.cluster.list("deploy", "shop")} == generations
    assert len(mesh.cluster.list("rs", "shop")) == 4
    lines = mesh.uninject("deploy", namespace="shop", name="a")
    assert lines == ['deployment "a" uninjected', "deployment.apps/a configured"]
    mesh.wait("60s")
    by_app = {p["metadata"]["labels"]["app"]: p for p in pods(mesh)}
    assert container_names(by_app["a"]) == ["a"] and container_names(by_app["b"]) == ["linkerd-proxy", "b"]


def test_debug_sidecar(mesh):
    mesh.apply([namespace(), deployment()])
    lines = mesh.cluster.inject("deploy", namespace="shop", name="web", enable_debug_sidecar=True)
    assert lines == ['deployment "web" injected', "deployment.apps/web configured"]
    assert mesh.cluster.last_command == \
        "kubectl get -n shop deploy/web -o yaml | linkerd inject --enable-debug-sidecar - | kubectl apply -f -"
    mesh.wait("60s")
    (pod,) = pods(mesh)
    assert container_names(pod) == ["linkerd-proxy", "web", "linkerd-debug"]
    assert pod["spec"]["containers"][-1]["image"] == f"cr.l5d.io/linkerd/debug:{l5d.LINKERD_VERSION}"
    assert pod["metadata"]["annotations"]["config.linkerd.io/enable-debug-sidecar"] == "true"
    assert mesh.pods("shop").iloc[0]["READY"] == "3/3"


def test_proxy_version_override(mesh):
    mesh.apply([namespace(), deployment(annotations={"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-version": "edge-25.3.1"})])
    mesh.wait("60s")
    (pod,) = pods(mesh)
    assert pod["metadata"]["annotations"]["linkerd.io/proxy-version"] == "edge-25.3.1"
    assert l5d.proxy_container(pod)["image"] == "cr.l5d.io/linkerd/proxy:edge-25.3.1"


def test_pods_created_while_the_injector_is_down_are_not_meshed():
    mesh = labkit.connect("sim", seed=22)
    mesh.apply([namespace(inject="enabled"), deployment()])
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("60s")
    (pod,) = pods(mesh)
    assert container_names(pod) == ["web"], "failurePolicy Ignore: admitted without a proxy"
    mesh.cluster.rollout_restart("deploy/web", "shop")
    mesh.wait("60s")
    (pod,) = pods(mesh)
    assert container_names(pod) == ["linkerd-proxy", "web"]


def test_meshed_app_waits_for_its_proxy_which_waits_for_identity():
    mesh = labkit.connect("sim", seed=23)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("45s")
    mesh.apply([namespace(inject="enabled"), deployment()])
    mesh.wait("60s")
    (pod,) = pods(mesh)
    statuses = {c["name"]: c for c in pod["status"]["containerStatuses"] + pod["status"]["initContainerStatuses"]}
    proxy_started = statuses["linkerd-proxy"]["state"]["running"]["startedAt"]
    app_started = statuses["web"]["state"]["running"]["startedAt"]
    assert app_started >= proxy_started, "the proxy's startup probe holds the app until the proxy is ready"
    assert statuses["linkerd-proxy"]["started"] and statuses["linkerd-proxy"]["ready"]


def test_tap_enabled_only_for_pods_admitted_after_viz(mesh):
    mesh.apply([namespace(inject="enabled"), deployment()])
    mesh.wait("60s")
    (pod,) = pods(mesh)
    assert l5d.is_meshed(pod) and "viz.linkerd.io/tap-enabled" not in pod["metadata"]["annotations"]
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=True)
    mesh.wait("120s")
    assert mesh.cluster.control_plane() == {"linkerd": True, "viz": True}
    (pod,) = pods(mesh)
    assert "viz.linkerd.io/tap-enabled" not in pod["metadata"]["annotations"], "meshed before viz: not tappable"
    viz_pods = pods(mesh, "linkerd-viz")
    assert len(viz_pods) == 5 and all(l5d.is_meshed(p) for p in viz_pods), "viz pods are meshed by the injector"
    mesh.cluster.rollout_restart("deploy/web", "shop")
    mesh.wait("60s")
    (pod,) = pods(mesh)
    assert pod["metadata"]["annotations"]["viz.linkerd.io/tap-enabled"] == "true"
    env = {e["name"]: e.get("value") for e in l5d.proxy_container(pod)["env"]}
    assert env["LINKERD2_PROXY_TAP_SVC_NAME"] == "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local"


def test_control_plane_pods_are_meshed_by_the_cli(mesh):
    cp = {p["metadata"]["labels"]["linkerd.io/control-plane-component"]: p for p in pods(mesh, "linkerd")}
    assert set(cp) == {"destination", "identity", "proxy-injector"}
    assert container_names(cp["destination"]) == ["linkerd-proxy", "destination", "sp-validator", "policy"]
    assert container_names(cp["identity"]) == ["identity", "linkerd-proxy"]
    assert cp["identity"]["metadata"]["annotations"]["linkerd.io/created-by"] == f"linkerd/cli {l5d.LINKERD_VERSION}"
    table = mesh.pods("linkerd")
    assert dict(zip(table["NAME"].str.rsplit("-", n=2).str[0], table["READY"])) == {
        "linkerd-destination": "4/4", "linkerd-identity": "2/2", "linkerd-proxy-injector": "2/2"}
