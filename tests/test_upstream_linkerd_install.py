"""The real Linkerd 2.20 install (linkerd2's own install goldens in ../shared/upstream/linkerd) runs on the embedded mesh.

What a learner does with the real CLI — ``linkerd install --crds | kubectl apply -f -``, ``linkerd install |
kubectl apply -f -``, ``linkerd viz install | kubectl apply -f -`` — applied in-process and with real kubectl
through the served mesh: the control plane and viz come up healthy with native-sidecar proxies, the
components take their configuration from those objects, and an app injected afterwards carries traffic.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import labkit
from labkit import manifests
from labkit.k8s import ready_containers
from labkit.sim import linkerd as l5d
from labkit.sim.linkerd import install

from conftest import UPSTREAM

LINKERD = UPSTREAM / "linkerd"
pytestmark = pytest.mark.skipif(not LINKERD.is_dir(), reason=f"upstream Linkerd goldens not found at {LINKERD}")
CRDS = ("linkerd-install_crds.yaml", "linkerd-install_crds_with_gateway_api.yaml")


def workload_ready(mesh, namespace: str) -> dict[str, str]:
    """Deployment name → READY (as kubectl prints it) of each pod in ``namespace``."""
    table = mesh.pods(namespace)
    return dict(zip(table["NAME"].str.rsplit("-", n=2).str[0], table["READY"]))


def assert_fully_ready(mesh, namespace: str) -> None:
    pods = mesh.cluster.list("Pod", namespace)
    assert pods, f"no pods in {namespace}"
    for pod in pods:
        ready, total = ready_containers(pod)
        assert ready == total and pod["status"]["phase"] == "Running", (pod["metadata"]["name"], ready, total)


def install_from_goldens(mesh, crds: str = CRDS[0]) -> None:
    mesh.apply(str(LINKERD / crds))
    mesh.apply(str(LINKERD / "linkerd-install_default.yaml"))
    mesh.wait("2m")
    assert mesh.check().ok, mesh.check().render()
    mesh.apply(str(LINKERD / "viz-install_default.yaml"))
    mesh.wait("2m")


@pytest.mark.parametrize("crds", CRDS)
def test_the_real_install_gives_a_healthy_mesh_with_native_sidecars(crds, capsys):
    mesh = labkit.connect(seed=3)
    install_from_goldens(mesh, crds)
    report = mesh.check()
    assert report.ok, report.render()
    assert_fully_ready(mesh, "linkerd")
    assert_fully_ready(mesh, "linkerd-viz")
    assert workload_ready(mesh, "linkerd") == {"linkerd-destination": "4/4", "linkerd-identity": "2/2",
                                               "linkerd-proxy-injector": "2/2"}
    assert set(workload_ready(mesh, "linkerd-viz").values()) == {"2/2"}, "viz pods meshed by the injector"
    destination = mesh.cluster.list("Pod", "linkerd", {"linkerd.io/control-plane-component": "destination"})[0]
    proxy = l5d.proxy_container(destination)
    assert proxy in destination["spec"]["initContainers"] and proxy["restartPolicy"] == "Always"
    # the goldens' placeholder tags run as the modelled release, each with one notice
    err = capsys.readouterr().err
    assert err.count("cr.l5d.io/linkerd/proxy:install-proxy-version") == 1
    assert f"runs as {l5d.LINKERD_VERSION}" in err


def test_an_app_injected_after_the_real_install_shows_traffic():
    mesh = labkit.connect(seed=4)
    install_from_goldens(mesh)
    mesh.apply("emojivoto")
    mesh.inject("deploy", namespace="emojivoto")
    mesh.wait("2m")
    assert set(workload_ready(mesh, "emojivoto").values()) == {"2/2"}
    web = mesh.cluster.list("Pod", "emojivoto", {"app": "web-svc"})[0]
    assert [c["name"] for c in web["spec"]["initContainers"]] == ["linkerd-init", "linkerd-proxy"]
    stat = mesh.stat("deploy", namespace="emojivoto").set_index("NAME")
    assert (stat["MESHED"] == "1/1").all()
    assert stat.loc["web", "RPS"] > 0 and stat.loc["emoji", "RPS"] > 0 and stat.loc["voting", "RPS"] > 0
    assert 0.5 < stat.loc["web", "SUCCESS"] < 1.0, "the doughnut vote always fails"
    assert mesh.check(proxy=True).ok
    assert len(mesh.top("deploy/web", namespace="emojivoto")) > 0
    assert len(mesh.tap("deploy/web", namespace="emojivoto", duration="5s")) > 0


def _with_values(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert text.count(old) >= 1, old
        text = text.replace(old, new, 1)
    return text


def test_install_values_in_the_manifest_reach_the_next_injected_pod(tmp_path):
    """As with ``linkerd install --set proxy.logLevel=debug --set proxy.resources.cpu.request=100m ...``."""
    golden = (LINKERD / "linkerd-install_default.yaml").read_text()
    values_start = golden.index("  values: |")
    head, values = golden[:values_start], golden[values_start:]
    values = _with_values(values, {
        "      logLevel: warn,linkerd=info,hickory=error": "      logLevel: debug,linkerd=trace",
        "      requireIdentityOnInboundPorts: \"\"\n      resources:\n        cpu:\n          limit: \"\"\n          request: \"\"":
            "      requireIdentityOnInboundPorts: \"\"\n      resources:\n        cpu:\n          limit: \"1\"\n          request: 100m",
        "      nativeSidecar: true": "      nativeSidecar: false",
    })
    mesh = labkit.connect(seed=5)
    mesh.apply(str(LINKERD / CRDS[0]))
    mesh.apply(head + values)
    mesh.wait("2m")
    mesh.apply("emojivoto")
    mesh.inject("deploy", namespace="emojivoto", name="web")
    mesh.wait("1m")
    web = mesh.cluster.list("Pod", "emojivoto", {"app": "web-svc"})[0]
    proxy = l5d.proxy_container(web)
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["LINKERD2_PROXY_LOG"].startswith("debug,linkerd=trace")
    assert proxy["resources"] == {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}
    assert proxy in web["spec"]["containers"] and "restartPolicy" not in proxy, "nativeSidecar: false"
    assert [c["name"] for c in web["spec"]["initContainers"]] == ["linkerd-init"]
    # a per-workload annotation still wins over the install's value
    mesh.patch("deploy", "web", {"spec": {"template": {"metadata": {"annotations": {
        "config.linkerd.io/proxy-log-level": "warn", "config.linkerd.io/proxy-memory-limit": "64Mi"}}}}}, "emojivoto")
    mesh.wait("1m")
    web = [p for p in mesh.cluster.list("Pod", "emojivoto", {"app": "web-svc"}) if not p["metadata"].get("deletionTimestamp")][0]
    proxy = l5d.proxy_container(web)
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["LINKERD2_PROXY_LOG"].startswith("warn,")
    assert proxy["resources"]["limits"] == {"cpu": "1", "memory": "64Mi"}


def test_install_linkerd_and_the_real_install_configure_the_same_proxy():
    """One install model: the objects ``install_linkerd()`` applies and the real output inject alike."""
    ours, real = labkit.connect(seed=6), labkit.connect(seed=6)
    ours.install_gateway_api()
    ours.install_linkerd(viz=False)
    real.apply(str(LINKERD / CRDS[0]))
    real.apply(str(LINKERD / "linkerd-install_default.yaml"))
    for mesh in (ours, real):
        mesh.wait("2m")
        mesh.apply("emojivoto")
        mesh.inject("deploy", namespace="emojivoto", name="web")
        mesh.wait("1m")
    pods = [mesh.cluster.list("Pod", "emojivoto", {"app": "web-svc"})[0] for mesh in (ours, real)]
    shapes = []
    for pod in pods:
        spec = pod["spec"]
        proxy = l5d.proxy_container(pod)
        shapes.append(([c["name"] for c in spec["initContainers"]], [c["name"] for c in spec["containers"]],
                       [e["name"] for e in proxy["env"]], proxy["ports"], proxy["startupProbe"]["periodSeconds"],
                       sorted(v["name"] for v in spec["volumes"])))
    assert shapes[0] == shapes[1]
    for mesh in (ours, real):
        assert workload_ready(mesh, "linkerd") == {"linkerd-destination": "4/4", "linkerd-identity": "2/2",
                                                   "linkerd-proxy-injector": "2/2"}
    kinds = lambda mesh: {(o["kind"], o["metadata"]["name"]) for kind in ("Deployment", "Service", "ConfigMap")  # noqa: E731
                          for o in mesh.cluster.list(kind, "linkerd")}
    assert kinds(ours) == kinds(real)


def _names(objs) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objs}


@pytest.mark.parametrize("golden, render", [
    ("linkerd-install_default.yaml", lambda: install.control_plane_objects(0)),
    ("viz-install_default.yaml", lambda: install.viz_objects(0)),
    ("linkerd-install_crds.yaml", lambda: install.crd_objects()),
])
def test_the_install_generator_renders_the_objects_the_real_cli_does(golden, render):
    """Same kinds and names; the goldens' test values keep the webhooks' TLS secrets external (externalSecret: true),
    which a default install renders — those are the only extra objects. Containers and ports match too."""
    real = [d.obj for d in manifests.load(str(LINKERD / golden))[0]]
    ours = render()
    extra = _names(ours) - _names(real)
    assert _names(real) - _names(ours) == set()
    assert all(kind == "Secret" and name.endswith("-k8s-tls") for kind, name in extra), extra
    shape = lambda objs: {o["metadata"]["name"]: [(c["name"], [(p.get("name"), p["containerPort"]) for p in c.get("ports") or []])  # noqa: E731
                                                  for c in o["spec"]["template"]["spec"]["containers"]]
                          for o in objs if o["kind"] == "Deployment"}
    assert shape(ours) == shape(real)
    proxies = lambda objs: {o["metadata"]["name"]: [e["name"] for e in l5d.proxy_container({"spec": o["spec"]["template"]["spec"]})["env"]]  # noqa: E731
                            for o in objs if o["kind"] == "Deployment" and l5d.proxy_container({"spec": o["spec"]["template"]["spec"]})}
    assert proxies(ours) == proxies(real), "the control plane's proxies get the same environment"


def test_client_side_apply_refuses_a_crd_too_large_for_its_last_applied_copy_and_server_side_takes_it():
    mesh = labkit.connect(seed=7)
    big = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com", "annotations": None},
           "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                    "scope": "Namespaced",
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object", "description": "x" * 270_000,
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]},
           "status": {"acceptedNames": {"kind": "", "plural": ""}, "conditions": None, "storedVersions": None}}
    with pytest.raises(labkit.errors.ApplyError) as err:
        mesh.apply([big])
    assert "metadata.annotations: Too long: may not be more than 262144 bytes" in str(err.value)
    assert "server_side=True" in str(err.value)
    with pytest.raises(labkit.errors.NotFoundError):
        mesh.get("crd", "widgets.example.com")
    assert mesh.apply([big], server_side=True) == ["customresourcedefinition.apiextensions.k8s.io/widgets.example.com serverside-applied"]
    crd = mesh.get("crd", "widgets.example.com")
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (crd["metadata"].get("annotations") or {})
    # the new kind is accepted once its CRD exists (its schema keeps unknown fields)
    assert mesh.apply("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: default\n"
                      "  labels:\nspec:\n  size: 3\n") == ["widget.example.com/w created"]
    assert mesh.get("widget", "w", "default")["spec"] == {"size": 3}


def test_real_manifests_tolerated_null_maps_empty_documents_and_lists_with_null_items():
    mesh = labkit.connect(seed=8)
    text = ("---\n---\napiVersion: v1\nkind: List\nitems:\n- null\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n"
            "    name: a\n    namespace: default\n    annotations:\n    labels:\n  data:\n    k: v\n---\n")
    assert mesh.apply(text) == ["configmap/a created"]
    cm = mesh.get("configmap", "a", "default")
    assert cm["data"] == {"k": "v"} and "labels" not in cm["metadata"]


def test_the_real_install_through_kubectl_against_the_served_mesh(kubectl_bin):
    from labkit.sim.serve import serve

    mesh = labkit.connect(seed=9)
    with serve(mesh, pace=0) as s:
        env = {**os.environ, "KUBECONFIG": s.kubeconfig}

        def kubectl(*args):
            out = subprocess.run([kubectl_bin, *args], capture_output=True, text=True, timeout=120, env=env)
            assert out.returncode == 0, out.stderr
            return out.stdout

        assert "customresourcedefinition.apiextensions.k8s.io/servers.policy.linkerd.io created" in \
            kubectl("apply", "-f", str(LINKERD / CRDS[0]))
        out = subprocess.run([kubectl_bin, "apply", "-f", str(LINKERD / "linkerd-install_default.yaml")],
                             capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0 and "deployment.apps/linkerd-destination created" in out.stdout
        # the placeholder tags: kubectl prints the served mesh's notice as an API warning
        assert "Warning: cr.l5d.io/linkerd/proxy:install-proxy-version: the embedded mesh does not model" in out.stderr
        with s.lock:
            mesh.wait("2m")
        assert "deployment.apps/metrics-api created" in kubectl("apply", "-f", str(LINKERD / "viz-install_default.yaml"))
        with s.lock:
            mesh.wait("2m")
        pods = kubectl("get", "pods", "-n", "linkerd").splitlines()
        ready = {line.split()[0].rsplit("-", 2)[0]: line.split()[1] for line in pods[1:]}
        assert ready == {"linkerd-destination": "4/4", "linkerd-identity": "2/2", "linkerd-proxy-injector": "2/2"}
        viz = kubectl("get", "pods", "-n", "linkerd-viz").splitlines()[1:]
        assert len(viz) == 5 and all(line.split()[1] == "2/2" and " Running " in line for line in viz)
        kubectl("apply", "-f", str(Path(labkit.__file__).resolve().parents[1] / "manifests" / "emojivoto"))
        with s.lock:
            mesh.inject("deploy", namespace="emojivoto")
            mesh.wait("2m")
            assert mesh.check().ok
            stat = mesh.stat("deploy", namespace="emojivoto").set_index("NAME")
        assert (stat["MESHED"] == "1/1").all() and stat.loc["web", "RPS"] > 0


def test_kubectl_needs_server_side_apply_for_a_crd_too_large_for_client_side(tmp_path, kubectl_bin):
    import yaml

    from labkit.sim.serve import serve

    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                    "scope": "Namespaced",
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object", "description": "x" * 270_000}}}]}}
    path = tmp_path / "big-crd.yaml"
    path.write_text(yaml.safe_dump(crd))
    mesh = labkit.connect(seed=10)
    with serve(mesh, pace=0) as s:
        env = {**os.environ, "KUBECONFIG": s.kubeconfig}
        out = subprocess.run([kubectl_bin, "apply", "-f", str(path)], capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode != 0 and "metadata.annotations: Too long: may not be more than 262144 bytes" in out.stderr
        out = subprocess.run([kubectl_bin, "apply", "--server-side", "-f", str(path)], capture_output=True, text=True,
                             timeout=120, env=env)
        assert out.returncode == 0, out.stderr
        assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.com serverside-applied" in out.stdout
