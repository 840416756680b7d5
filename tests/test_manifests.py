"""Loading manifests like `kubectl apply -f`, `linkerd inject/uninject` as pure transforms, and the project's manifests."""
from __future__ import annotations

import textwrap

import pytest
import yaml

import labkit
from labkit import manifests
from labkit.errors import ApplyError

DEPLOY = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: emojivoto
    spec:
      selector:
        matchLabels: {app: web-svc}
      template:
        metadata:
          labels: {app: web-svc}
        spec:
          containers:
          - name: web-svc
            image: ghcr.io/buoyantio/emojivoto-web:v11
    """)
SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-svc\n  namespace: emojivoto\nspec:\n  ports:\n  - port: 80\n"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: emojivoto\n"


def test_load_text_keeps_document_positions_and_skips_empty_documents():
    docs, arg = manifests.load(NAMESPACE + "---\n---\n" + DEPLOY)
    assert arg == "-"
    assert [(d.obj["kind"], d.index, d.origin) for d in docs] == [("Namespace", 1, "<stdin>"), ("Deployment", 3, "<stdin>")]


def test_load_expands_lists_and_accepts_dicts():
    docs, _ = manifests.load({"apiVersion": "v1", "kind": "List", "items": [yaml.safe_load(NAMESPACE), yaml.safe_load(SERVICE)]})
    assert [d.obj["kind"] for d in docs] == ["Namespace", "Service"]


def test_load_folder_non_recursive_in_name_order(tmp_path):
    (tmp_path / "b.yml").write_text(SERVICE)
    (tmp_path / "a.yaml").write_text(NAMESPACE)
    (tmp_path / "README.md").write_text("# not yaml")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "c.yaml").write_text(DEPLOY)
    docs, arg = manifests.load(tmp_path)
    assert [d.obj["kind"] for d in docs] == ["Namespace", "Service"]
    assert docs[1].origin.endswith("b.yml") and arg == str(tmp_path)


def test_yaml_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(ApplyError, match=r"error parsing .*bad\.yaml: .*\(line \d+, column \d+\)"):
        manifests.load(path)


def test_inject_yaml_annotates_templates_and_reports_like_linkerd():
    text = NAMESPACE + "---\n" + SERVICE + "---\n" + DEPLOY
    out, report = labkit.inject(text)
    assert report == '\nnamespace "emojivoto" annotated\nservice "web-svc" skipped\ndeployment "web" injected\n\n'
    docs = list(yaml.safe_load_all(out))
    assert docs[0]["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}
    assert "annotations" not in docs[1]["metadata"]
    assert docs[2]["spec"]["template"]["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}
    assert [c["name"] for c in docs[2]["spec"]["template"]["spec"]["containers"]] == ["web-svc"], \
        "inject only annotates: the proxy injector adds the proxy when pods are created"
    assert "linkerd.io/inject" not in text, "pure: the input is untouched"


def test_inject_options_and_skips():
    out, report = labkit.inject(DEPLOY, enable_debug_sidecar=True)
    tpl = yaml.safe_load(out)["spec"]["template"]
    assert tpl["metadata"]["annotations"] == {"linkerd.io/inject": "enabled", "config.linkerd.io/enable-debug-sidecar": "true"}
    obj = yaml.safe_load(DEPLOY)
    obj["spec"]["template"]["metadata"]["annotations"] = {"linkerd.io/inject": "disabled"}
    disabled = yaml.safe_dump(obj)
    out, report = labkit.inject(disabled)
    assert report == '\n‼ "linkerd.io/inject: disabled" annotation set on deployment/web\n\ndeployment "web" skipped\n\n'
    with pytest.raises(TypeError, match="unknown inject option"):
        labkit.inject(DEPLOY, enable_debug_sidecarr=True)


def test_uninject_removes_annotations_and_injected_containers():
    mesh = labkit.connect("sim", seed=41)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("90s")
    mesh.apply(NAMESPACE)
    mesh.apply(labkit.inject(DEPLOY, enable_debug_sidecar=True)[0])
    mesh.wait("60s")
    pod = mesh.cluster.list("pod", "emojivoto")[0]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["web-svc", "linkerd-debug"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["linkerd-init", "linkerd-proxy"]
    out, report = labkit.uninject(yaml.safe_dump({k: v for k, v in pod.items() if k != "status"}))
    assert report == f'\npod "{pod["metadata"]["name"]}" uninjected\n\n'
    clean = yaml.safe_load(out)
    # 2.20's uninject removes the proxy and linkerd-init only (the debug container stays), and keeps config.linkerd.io/*
    assert [c["name"] for c in clean["spec"]["containers"]] == ["web-svc", "linkerd-debug"]
    assert "initContainers" not in clean["spec"]
    annotations = clean["metadata"].get("annotations", {})
    assert not any(k.startswith("linkerd.io/") for k in annotations)
    assert annotations["config.linkerd.io/enable-debug-sidecar"] == "true"
    assert not any(k.startswith("linkerd.io/") for k in clean["metadata"]["labels"])
    assert not any(v["name"].startswith("linkerd-") for v in clean["spec"].get("volumes", []))
    out, report = labkit.uninject(SERVICE)
    assert report == '\nservice "web-svc" skipped\n\n'


@pytest.mark.parametrize("folder, namespace, expected", [
    ("emojivoto", "emojivoto", {"emoji", "vote-bot", "voting", "web"}),
    ("booksapp", "booksapp", {"authors", "books", "traffic", "webapp"}),
    ("podinfo", "test", {"podinfo", "flagger-loadtester"}),
])
def test_project_manifests_apply_and_run(folder, namespace, expected):
    mesh = labkit.connect("sim", seed=42)
    lines = mesh.apply(folder)
    assert lines[0] == f"namespace/{namespace} created"
    assert all(line.endswith(" created") for line in lines)
    mesh.wait("2m")
    deploys = {d["metadata"]["name"]: d for d in mesh.cluster.list("deploy", namespace)}
    assert set(deploys) == expected
    table = mesh.pods(namespace)
    assert len(table) == sum(d["spec"]["replicas"] for d in deploys.values())
    for row in table.to_dict("records"):
        ready, total = row["READY"].split("/")
        assert row["STATUS"] == "Running" and ready == total, row
    for name in expected:
        assert mesh.rollout_status(name, namespace) == f'deployment "{name}" successfully rolled out'


def test_project_manifests_match_the_labs():
    mesh = labkit.connect("sim", seed=43)
    mesh.apply("booksapp")
    assert mesh.get("deploy", "webapp", "booksapp")["spec"]["replicas"] == 3
    authors = mesh.get("deploy", "authors", "booksapp")["spec"]["template"]["spec"]["containers"][0]
    assert authors["env"][2] == {"name": "FAILURE_RATE", "value": "0.5"}, "Lab 4 removes env index 2"
    mesh.patch("deploy", "authors", [{"op": "remove", "path": "/spec/template/spec/containers/0/env/2"}], namespace="booksapp")
    assert [e["name"] for e in mesh.get("deploy", "authors", "booksapp")["spec"]["template"]["spec"]["containers"][0]["env"]] == \
        ["DATABASE_URL", "BOOKS_SITE"]
    mesh.apply("emojivoto")
    assert mesh.get("svc", "web-svc", "emojivoto")["spec"]["type"] == "ClusterIP"
    mesh.apply("podinfo")
    assert mesh.get("ns", "test")["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"
    assert mesh.get("hpa", "podinfo", "test")["spec"]["minReplicas"] == 2


def test_podinfo_namespace_is_meshed_when_linkerd_runs():
    mesh = labkit.connect("sim", seed=44)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("90s")
    mesh.apply("podinfo")
    mesh.wait("2m")
    counts = mesh.cluster.meshed_counts("deploy", "test")
    assert counts == {"flagger-loadtester": (1, 1), "podinfo": (2, 2)}
    assert set(mesh.pods("test")["READY"]) == {"2/2"}


#: A pod as Linkerd 2.20 injects it: the proxy is a native sidecar (initContainers[1], restartPolicy Always).
POD_2_20 = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "emojivoto",
                 "labels": {"app": "web-svc", "linkerd.io/control-plane-ns": "linkerd"},
                 "annotations": {"linkerd.io/inject": "enabled", "linkerd.io/proxy-version": "edge-26.6.3"}},
    "spec": {"initContainers": [{"name": "linkerd-init", "image": "cr.l5d.io/linkerd/proxy:edge-26.6.3"},
                                {"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-26.6.3",
                                 "restartPolicy": "Always"}],
             "containers": [{"name": "web-svc", "image": "ghcr.io/buoyantio/emojivoto-web:v11"}],
             "volumes": [{"name": "linkerd-identity-end-entity", "emptyDir": {"medium": "Memory"}}]},
    "status": {"containerStatuses": [{"name": "web-svc", "ready": True}],
               "initContainerStatuses": [{"name": "linkerd-init", "ready": False},
                                         {"name": "linkerd-proxy", "ready": True}]},
}


def test_a_native_sidecar_proxy_is_seen_by_inject_uninject_and_ready_counts():
    from labkit import k8s

    pod = {k: v for k, v in POD_2_20.items() if k != "status"}
    out, report = labkit.inject(yaml.safe_dump(pod))
    # 2.20 uninjects an already injected input, then injects it again (cli/cmd/inject.go uninjectAndInject)
    assert report == '\npod "web-1" injected\n\n'
    again = yaml.safe_load(out)
    assert "initContainers" not in again["spec"] and again["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}
    out, report = labkit.uninject(yaml.safe_dump(pod))
    clean = yaml.safe_load(out)
    assert "initContainers" not in clean["spec"] and [c["name"] for c in clean["spec"]["containers"]] == ["web-svc"]
    # kubectl >= 1.28 counts the native sidecar in READY (the finished linkerd-init is not counted)
    assert k8s.ready_containers(POD_2_20) == (2, 2)
    assert k8s.ready_containers({**POD_2_20, "status": {"containerStatuses": [{"name": "web-svc", "ready": True}]}}) == (1, 2)


def test_logs_and_exec_default_to_the_apps_container():
    from labkit import k8s

    meshed = {"metadata": {}, "spec": {"containers": [{"name": "linkerd-proxy"}, {"name": "web-svc"},
                                                      {"name": "linkerd-debug"}]}}
    assert k8s.default_container(meshed) == "web-svc"  # kubectl would take containers[0]: the 2.19 proxy
    meshed["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "linkerd-debug"}
    assert k8s.default_container(meshed) == "linkerd-debug"
    meshed["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "gone"}
    assert k8s.default_container(meshed) == "web-svc"
    assert k8s.default_container(POD_2_20) == "web-svc"
    assert k8s.default_container({"spec": {"containers": [{"name": "linkerd-proxy"}]}}) == "linkerd-proxy"


def test_set_image_picks_the_container_as_kubectl_does():
    from labkit import k8s
    from labkit.errors import NotFoundError

    two = {"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}}
    one = {"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}
    assert k8s.image_container(two, "b=img:2", None) == (1, "b", "img:2")
    assert k8s.image_container(one, "img:2", None) == (0, "a", "img:2")
    with pytest.raises(ApplyError, match="deployment 'web' has containers a, b: say which with container="):
        k8s.image_container(two, "img:2", None)
    with pytest.raises(NotFoundError, match='unable to find container named "c"'):
        k8s.image_container(two, "c=img:2", None)
