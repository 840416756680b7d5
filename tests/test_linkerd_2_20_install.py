"""Installing Linkerd 2.20 as 2.20 does: the Gateway API CRDs first, linkerd-smi as its own extension,
``mesh.versions``, the viz Prometheus's scrape interval and the proxy's log taken from their configuration."""
from __future__ import annotations

import pytest

import labkit
from labkit.errors import ApplyError, NotFoundError
from labkit.sim import linkerd as l5d
from labkit.sim.linkerd import install
from labkit.sim.serve import cli, serve

GATEWAY_CRDS = ["gatewayclasses", "gateways", "grpcroutes", "httproutes", "referencegrants"]


def test_versions_name_what_the_embedded_mesh_models():
    versions = labkit.connect().versions
    assert versions == {"linkerd": "edge-26.6.3", "kubernetes": "v1.32.2", "gateway_api": "v1.2.1", "flagger": "1.44.0"}
    major, minor = (int(x) for x in versions["kubernetes"].lstrip("v").split(".")[:2])
    assert (major, minor) >= (1, 31), "Linkerd 2.20 needs Kubernetes >= 1.31"


def test_install_linkerd_without_the_gateway_api_fails_as_2_20_does_and_installs_nothing():
    mesh = labkit.connect(seed=1)
    with pytest.raises(ApplyError) as err:
        mesh.install_linkerd()
    text = str(err.value)
    assert text.startswith("The Gateway API CRDs must be installed prior to installing Linkerd. Run:\n\n"
                           "kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/"
                           "download/v1.2.1/standard-install.yaml\n")
    assert "mesh.install_gateway_api()" in text
    with pytest.raises(NotFoundError):
        mesh.get("namespace", "linkerd")
    assert not [c for c in mesh.cluster.list("CustomResourceDefinition") if "linkerd.io" in c["metadata"]["name"]]
    # the CLI stand-in refuses the same way, exit status 1
    result = cli.run(mesh, ["install", "--crds"])
    assert result.code == 1 and result.stdout == "" and result.stderr.startswith("The Gateway API CRDs must be installed")


def test_install_gateway_api_then_linkerd():
    mesh = labkit.connect(seed=2)
    lines = mesh.install_gateway_api()
    assert lines == [f"customresourcedefinition.apiextensions.k8s.io/{plural}.gateway.networking.k8s.io serverside-applied"
                     for plural in ["gatewayclasses", "gateways", "grpcroutes", "httproutes", "referencegrants"]]
    assert mesh.cluster.last_command == install.GATEWAY_API_COMMAND
    crd = mesh.get("crd", "httproutes.gateway.networking.k8s.io")
    assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == "v1.2.1"
    assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "standard"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in crd["metadata"]["annotations"]
    assert mesh.get("crd", "gatewayclasses.gateway.networking.k8s.io")["spec"]["scope"] == "Cluster"
    lines = mesh.install_linkerd(viz=False)
    assert not any("gateway.networking.k8s.io" in line or "split.smi-spec.io" in line for line in lines)
    assert sum("customresourcedefinition" in line for line in lines) == 10, "2.20's own CRDs only"
    mesh.wait("2m")
    assert mesh.check().ok


def test_an_old_gateway_api_without_v1_routes_is_refused():
    mesh = labkit.connect(seed=3)
    from labkit.sim.kube.discovery import crd_manifest

    mesh.apply([crd_manifest("gateway.networking.k8s.io", "HTTPRoute", "httproutes", ["v1alpha2", "v1beta1"])])
    with pytest.raises(ApplyError, match="the httproutes.gateway.networking.k8s.io CRD is missing the v1 version, "
                                         "please upgrade to Gateway API v1.1.1 or later"):
        mesh.install_linkerd()


def test_linkerd_smi_is_an_extension_of_its_own():
    mesh = labkit.connect(seed=4)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    split = {"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": {"name": "s", "namespace": "default"},
             "spec": {"service": "web", "backends": [{"service": "web", "weight": 900}]}}
    with pytest.raises(ApplyError, match=r"linkerd-smi extension \(mesh.install_smi\(\)"):
        mesh.apply([split])
    lines = mesh.install_smi()
    assert "customresourcedefinition.apiextensions.k8s.io/trafficsplits.split.smi-spec.io created" in lines
    assert "deployment.apps/smi-adaptor created" in lines
    assert mesh.apply([split]) == ["trafficsplit.split.smi-spec.io/s created"]
    assert "Status check results are ×" in cli.run(mesh, ["smi", "install"]).stderr  # the control plane is starting
    assert "TrafficSplit" in cli.run(mesh, ["smi", "install", "--skip-checks"]).stdout
    mesh.wait_for(lambda m: m.check().ok, timeout="5m")
    assert "TrafficSplit" in cli.run(mesh, ["smi", "install"]).stdout


def test_the_kube_backend_installs_the_gateway_api_and_reports_versions():
    sim = labkit.connect("sim", seed=5)
    with serve(sim, pace=0) as served:
        kube = labkit.connect("kube", context=served.context, kubeconfig=served.kubeconfig, lab="gw-test")
        lines = kube.install_gateway_api()
        assert [line.rsplit(" ", 1)[0] for line in lines] == [
            f"customresourcedefinition.apiextensions.k8s.io/{p}.gateway.networking.k8s.io" for p in GATEWAY_CRDS]
        kube.install_linkerd(viz=False)
        versions = kube.versions
        assert versions["gateway_api"] == "v1.2.1" and versions["kubernetes"] == "v1.32.2"
        assert versions["linkerd"] == l5d.LINKERD_VERSION and versions["flagger"] == ""


def test_prometheus_scrapes_on_the_interval_its_configmap_names():
    mesh = labkit.connect(seed=6)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("3m")
    before = mesh.prometheus.scrapes
    mesh.wait("5m")
    assert mesh.prometheus.scrapes - before == 30, "10 s as installed"
    config = mesh.get("configmap", "prometheus-config", "linkerd-viz")
    text = config["data"]["prometheus.yml"].replace("scrape_interval: 10s", "scrape_interval: 30s")
    mesh.patch("configmap", "prometheus-config", {"data": {"prometheus.yml": text}}, "linkerd-viz")
    mesh.wait("30s")
    before = mesh.prometheus.scrapes
    mesh.wait("5m")
    assert mesh.prometheus.scrapes - before == 10


def test_the_proxy_log_follows_its_configuration():
    mesh = labkit.connect(seed=7)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("2m")
    mesh.apply("emojivoto")
    mesh.inject("deploy", namespace="emojivoto", name="web")
    mesh.wait("1m")
    log = mesh.logs("deploy/web", namespace="emojivoto", container="linkerd-proxy")
    assert "INFO ThreadId(01) linkerd2_proxy: Admin interface on 0.0.0.0:4191" in log
    assert "Local identity is web.emojivoto.serviceaccount.identity.linkerd.cluster.local" in log
    assert "Tap interface on 0.0.0.0:4190" in log, "viz's tap injector configured tap"
    mesh.patch("deploy", "web", {"spec": {"template": {"metadata": {"annotations": {
        "config.linkerd.io/proxy-log-level": "warn", "config.linkerd.io/admin-port": "9991"}}}}}, "emojivoto")
    mesh.wait("1m")
    assert mesh.logs("deploy/web", namespace="emojivoto", container="linkerd-proxy") == ""
    mesh.patch("deploy", "web", {"spec": {"template": {"metadata": {"annotations": {
        "config.linkerd.io/proxy-log-level": "warn,linkerd=debug"}}}}}, "emojivoto")
    mesh.wait("1m")
    log = mesh.logs("deploy/web", namespace="emojivoto", container="linkerd-proxy")
    assert "Admin interface on 0.0.0.0:9991" in log and " DEBUG " in log


def test_linkerd_install_set_changes_what_the_injector_writes():
    """``linkerd install --set proxy.logLevel=debug ... | kubectl apply -f -`` through the CLI stand-in."""
    mesh = labkit.connect(seed=8)
    mesh.install_gateway_api()
    mesh.apply(cli.run(mesh, ["install", "--crds"]).stdout)
    out = cli.run(mesh, ["install", "--set", "proxy.logLevel=debug,proxy.resources.memory.limit=250Mi",
                         "--set", "proxy.nativeSidecar=false"])
    assert out.code == 0
    mesh.apply(out.stdout)
    mesh.wait("2m")
    destination = mesh.cluster.list("Pod", "linkerd", {"linkerd.io/control-plane-component": "destination"})[0]
    assert [c["name"] for c in destination["spec"]["containers"]][0] == "linkerd-proxy", "nativeSidecar=false"
    mesh.apply("emojivoto")
    mesh.inject("deploy", namespace="emojivoto", name="web")
    mesh.wait("1m")
    web = mesh.cluster.list("Pod", "emojivoto", {"app": "web-svc"})[0]
    proxy = l5d.proxy_container(web)
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["LINKERD2_PROXY_LOG"].startswith("debug,") and proxy["resources"] == {"limits": {"memory": "250Mi"}}
    assert proxy in web["spec"]["containers"]
    assert " DEBUG " in mesh.logs("deploy/web", namespace="emojivoto", container="linkerd-proxy")


def test_check_pre_wants_kubernetes_1_31(monkeypatch):
    import labkit.sim.kube.cluster as cluster_module

    mesh = labkit.connect(seed=9)
    assert mesh.check(pre=True).ok
    monkeypatch.setattr(cluster_module, "KUBERNETES_VERSION", "v1.30.4")
    report = mesh.check(pre=True)
    assert not report.ok
    assert "Kubernetes is on version [1.30.4], but version [1.31.0] or more recent is required" in report.render()
