"""The embedded API server's kubectl semantics: apply / get / patch / delete, metadata, validation."""
from __future__ import annotations

import textwrap

import pytest

import labkit
from labkit.errors import ApplyError, NotFoundError

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


def deployment(name="web", image="ghcr.io/buoyantio/emojivoto-web:v11", replicas=1, namespace="shop", **extra):
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": name, "image": image, "ports": [{"containerPort": 8080}]}]}},
    }
    spec.update(extra)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def service(name="web", namespace="shop", port=80, target=8080):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": target}]}}


@pytest.fixture
def mesh():
    return labkit.connect("sim", seed=3)


def test_apply_reports_created_then_unchanged_then_configured(mesh):
    assert mesh.apply([NS, deployment(), service()]) == [
        "namespace/shop created", "deployment.apps/web created", "service/web created"]
    assert mesh.apply([NS, deployment(), service()]) == [
        "namespace/shop unchanged", "deployment.apps/web unchanged", "service/web unchanged"]
    assert mesh.apply([deployment(replicas=2)]) == ["deployment.apps/web configured"]
    assert mesh.get("deploy", "web", "shop")["spec"]["replicas"] == 2


def test_metadata_behaves_like_a_cluster(mesh):
    mesh.apply([NS, deployment()])
    d = mesh.get("deployment", "web", "shop")
    md = d["metadata"]
    assert md["generation"] == 1
    assert md["creationTimestamp"] == "2026-07-01T10:00:00Z"
    assert len(md["uid"]) == 36 and md["uid"].count("-") == 4
    assert "kubectl.kubernetes.io/last-applied-configuration" in md["annotations"]
    rv = int(md["resourceVersion"])
    # defaulted fields, as the API server fills them
    assert d["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert d["spec"]["revisionHistoryLimit"] == 10
    mesh.wait("10s")
    d2 = mesh.get("deployment", "web", "shop")
    assert d2["metadata"]["generation"] == 1, "status updates do not bump generation"
    assert int(d2["metadata"]["resourceVersion"]) > rv, "status updates do bump resourceVersion"
    assert d2["status"]["observedGeneration"] == 1
    mesh.apply([{**deployment(), "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "a"}}}])
    assert mesh.get("deploy", "web", "shop")["metadata"]["generation"] == 1, "metadata-only change keeps generation"
    mesh.apply([deployment(replicas=3)])
    assert mesh.get("deploy", "web", "shop")["metadata"]["generation"] == 2
    # get returns copies: changing one does not change the cluster
    d2["spec"]["replicas"] = 99
    assert mesh.get("deploy", "web", "shop")["spec"]["replicas"] == 3


def test_every_object_gets_a_distinct_uid_and_growing_resource_version(mesh):
    mesh.apply([NS, deployment("a"), deployment("b"), service("a")])
    objs = [mesh.get("deploy", "a", "shop"), mesh.get("deploy", "b", "shop"), mesh.get("svc", "a", "shop")]
    assert len({o["metadata"]["uid"] for o in objs}) == 3
    rvs = [int(o["metadata"]["resourceVersion"]) for o in objs]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


@pytest.mark.parametrize("kind", ["deploy", "deployment", "deployments", "Deployment", "deployments.apps", "deployment.apps"])
def test_get_accepts_kubectl_kind_names(mesh, kind):
    mesh.apply([NS, deployment()])
    assert mesh.get(kind, "web", "shop")["kind"] == "Deployment"


def test_get_short_names_and_missing_objects(mesh):
    mesh.apply([NS, service()])
    assert mesh.get("svc", "web", "shop")["spec"]["clusterIP"].startswith("10.")
    assert mesh.get("ns", "shop")["status"]["phase"] == "Active"
    with pytest.raises(NotFoundError, match='services "nope" not found'):
        mesh.get("svc", "nope", "shop")
    with pytest.raises(NotFoundError, match='doesn\'t have a resource type "frobs"'):
        mesh.get("frobs", "x")


def test_apply_sources_file_folder_text_and_list(mesh, tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "a-ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n")
    (folder / "b-svc.yml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: shop\n"
                                      "spec:\n  ports:\n  - port: 80\n")
    (folder / "c.json").write_text('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, '
                                   '"data": {"k": "v"}}')
    (folder / "notes.txt").write_text("not a manifest")
    (folder / "sub").mkdir()
    (folder / "sub" / "x.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nested\n  namespace: shop\n")
    assert mesh.apply(str(folder)) == ["namespace/shop created", "service/s created", "configmap/c created"]
    assert mesh.cluster.last_command == f"kubectl apply -f {folder}"
    with pytest.raises(NotFoundError):
        mesh.get("cm", "nested", "shop")  # folders are not walked recursively, like kubectl -f DIR
    text = textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: one, namespace: shop}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: two, namespace: shop}
        """)
    assert mesh.apply(text) == ["configmap/one created", "configmap/two created"]
    assert mesh.cluster.last_command == "kubectl apply -f -"
    assert mesh.apply(folder / "b-svc.yml") == ["service/s unchanged"]


def test_relative_paths_resolve_against_the_repository_manifests_folder(mesh):
    lines = mesh.apply("emojivoto")
    assert lines[0] == "namespace/emojivoto created"
    assert "deployment.apps/web created" in lines
    assert mesh.cluster.last_command == "kubectl apply -f manifests/emojivoto"
    with pytest.raises(ApplyError, match='the path "no-such-folder" does not exist'):
        mesh.apply("no-such-folder")


def test_namespace_argument_and_conflicts(mesh):
    mesh.apply([NS])
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    assert mesh.apply([cm], namespace="shop") == ["configmap/c created"]
    assert mesh.get("cm", "c", "shop")["metadata"]["namespace"] == "shop"
    assert mesh.apply([cm]) == ["configmap/c created"]  # no namespace: kubectl's default namespace
    assert mesh.get("cm", "c")["metadata"]["namespace"] == "default"
    other = {**cm, "metadata": {"name": "c", "namespace": "elsewhere"}}
    with pytest.raises(ApplyError, match='namespace from the provided object "elsewhere" does not match the namespace "shop"'):
        mesh.apply([other], namespace="shop")


def test_missing_namespace_fails_like_the_api_server_and_applies_nothing(mesh):
    before = mesh.cluster.revision
    with pytest.raises(ApplyError, match='namespaces "shop" not found') as err:
        mesh.apply([deployment(namespace="default"), deployment("other")])
    assert "document 2" in str(err.value)
    assert mesh.cluster.revision == before
    with pytest.raises(NotFoundError):
        mesh.get("deploy", "web", "default")


def test_namespace_created_earlier_in_the_same_apply_counts(mesh):
    assert mesh.apply([NS, deployment()]) == ["namespace/shop created", "deployment.apps/web created"]


def test_invalid_document_names_file_document_kind_and_field_and_nothing_is_applied(mesh, tmp_path):
    mesh.apply([NS])
    good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n  namespace: shop\n"
    bad = textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: broken
          namespace: shop
        spec:
          selector:
            matchLabels: {app: broken}
          template:
            metadata:
              labels: {app: broken}
            spec:
              containers:
              - name: broken
        """)
    path = tmp_path / "app.yaml"
    path.write_text(good + "---\n" + bad)
    before = mesh.cluster.revision
    with pytest.raises(ApplyError) as err:
        mesh.apply(str(path))
    message = str(err.value)
    assert str(path) in message
    assert "document 2" in message
    assert 'Deployment "broken"' in message
    assert "spec.template.spec.containers[0].image: Required value" in message
    assert "nothing from this apply was applied" in message
    assert mesh.cluster.revision == before, "the store is untouched"
    with pytest.raises(NotFoundError):
        mesh.get("cm", "fine", "shop")


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["spec"]["template"]["metadata"].update(labels={"app": "other"}), "`selector` does not match template `labels`"),
    (lambda d: d["spec"].update(replicas=-1), "spec.replicas"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(ports=[{"containerPort": 70000}]), "containerPort"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(env=[{"name": "N", "value": 5}]), "Go struct field EnvVar.spec.template.spec.containers.env.value of type string"),
    (lambda d: d["spec"].update(strategy={"type": "Sideways"}), "spec.strategy.type"),
    (lambda d: d["metadata"].update(name="Web_1"), "metadata.name"),
    (lambda d: d["spec"].pop("selector"), "spec.selector: Required value"),
])
def test_deployment_validation(mesh, mutate, field):
    mesh.apply([NS])
    d = deployment()
    mutate(d)
    with pytest.raises(ApplyError, match=None) as err:
        mesh.apply([d])
    assert field in str(err.value)


def test_service_and_hpa_validation(mesh):
    mesh.apply([NS])
    svc = service()
    svc["spec"]["ports"] = [{"port": 80}, {"port": 81}]
    with pytest.raises(ApplyError, match=r"spec.ports\[0\].name: Required value"):
        mesh.apply([svc])
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "shop"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 5, "maxReplicas": 2}}
    with pytest.raises(ApplyError, match="must be greater than or equal to `minReplicas`"):
        mesh.apply([hpa])
    old = {**hpa, "apiVersion": "autoscaling/v2beta1"}
    with pytest.raises(ApplyError, match='no matches for kind "HorizontalPodAutoscaler" in version "autoscaling/v2beta1"'):
        mesh.apply([old])


def test_documents_without_kind_are_refused(mesh):
    with pytest.raises(ApplyError, match=r"apiVersion not set, kind not set"):
        mesh.apply('{"spec": {"service": "web-svc"}}')


def test_unknown_kinds_until_their_crd_is_applied(mesh):
    mesh.apply([NS])
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "shop"}, "spec": {"size": 3}}
    with pytest.raises(ApplyError, match='no matches for kind "Widget" in version "example.com/v1"'):
        mesh.apply([widget])
    from labkit.sim.kube.discovery import crd_manifest

    crd = crd_manifest("example.com", "Widget", "widgets", ["v1"], short_names=("wd",))
    assert mesh.apply([crd]) == ["customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"]
    assert mesh.apply([widget]) == ["widget.example.com/w created"]
    assert mesh.get("wd", "w", "shop")["metadata"]["generation"] == 1
    assert mesh.get("widgets.example.com", "w", "shop")["spec"]["size"] == 3


@pytest.mark.parametrize("doc, hint", [
    ({"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile", "metadata": {"name": "web.shop.svc.cluster.local"},
      "spec": {"routes": []}}, "install_linkerd"),
    ({"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit", "metadata": {"name": "s"},
      "spec": {"service": "a", "backends": [{"service": "a", "weight": 1}]}}, "linkerd-smi"),
    ({"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "c"}, "spec": {}}, "install_flagger"),
    ({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"}, "spec": {}}, "Gateway API"),
])
def test_crd_kinds_before_install_fail_with_a_hint(mesh, doc, hint):
    with pytest.raises(ApplyError, match="no matches for kind") as err:
        mesh.apply([doc])
    assert hint in str(err.value)


def test_crd_kinds_are_validated_after_install(mesh):
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.apply([NS])
    sp = {"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
          "metadata": {"name": "web.shop.svc.cluster.local", "namespace": "shop"},
          "spec": {"routes": [{"name": "GET /", "condition": {"method": "GET", "pathRegex": "/"}, "timeout": "25ms"}]}}
    assert mesh.apply([sp]) == ["serviceprofile.linkerd.io/web.shop.svc.cluster.local created"]
    assert mesh.get("sp", "web.shop.svc.cluster.local", "shop")["spec"]["routes"][0]["timeout"] == "25ms"
    typo = {**sp, "spec": {"routes": [{**sp["spec"]["routes"][0], "isRetriable": True}]}}
    with pytest.raises(ApplyError, match=r'strict decoding error: unknown field "spec.routes\[0\].isRetriable"'):
        mesh.apply([typo])
    late = {**sp, "spec": {"routes": [{"name": "x", "condition": {"pathRegex": "/"}, "timeout": "soon"}]}}
    assert mesh.apply([late]) == ["serviceprofile.linkerd.io/web.shop.svc.cluster.local configured"], \
        "Linkerd's sp-validator is not ready yet, and its failurePolicy is Ignore"
    mesh.wait("1m")
    with pytest.raises(ApplyError) as err:
        mesh.apply([{**late, "spec": {"routes": [{"name": "y", "condition": {"pathRegex": "/"}, "timeout": "never"}]}}])
    assert str(err.value).startswith('Error from server: error when patching "STDIN": admission webhook '
                                     '"linkerd-sp-validator.linkerd.io" denied the request: ServiceProfile '
                                     '"web.shop.svc.cluster.local" has a route with an invalid timeout: '
                                     'time: invalid duration "never"')
    route = {"apiVersion": "policy.linkerd.io/v1beta2", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "shop"},
             "spec": {"parentRefs": [{"kind": "Service", "group": "core", "port": 80}],
                      "rules": [{"backendRefs": [{"name": "web", "port": 80, "weight": 90}, {"name": "err", "weight": 10}]}]}}
    with pytest.raises(ApplyError, match=r"spec.parentRefs\[0\].name: Required value"):
        mesh.apply([route])
    route["spec"]["parentRefs"][0]["name"] = "web"
    assert mesh.apply([route]) == ["httproute.policy.linkerd.io/r created"], "Linkerd's own HTTPRoute needs no backend port"
    assert mesh.get("httproute.policy.linkerd.io", "r", "shop")["spec"]["rules"][0]["backendRefs"][0]["weight"] == 90


def test_patch_merge_and_json(mesh):
    mesh.apply([NS, deployment()])
    out = mesh.patch("deploy", "web", {"spec": {"replicas": 2}}, namespace="shop")
    assert out["spec"]["replicas"] == 2
    assert mesh.cluster.last_command == "kubectl -n shop patch deployment web --type merge -p '{\"spec\": {\"replicas\": 2}}'"
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    mesh.patch("deploy", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "ghcr.io/buoyantio/emojivoto-web:v11", "env": env}]}}}}, namespace="shop")
    out = mesh.patch("deploy", "web", [{"op": "remove", "path": "/spec/template/spec/containers/0/env/2"}], namespace="shop")
    assert [e["name"] for e in out["spec"]["template"]["spec"]["containers"][0]["env"]] == ["A", "B"]
    with pytest.raises(ApplyError, match="out of range"):
        mesh.patch("deploy", "web", [{"op": "remove", "path": "/spec/template/spec/containers/0/env/5"}], namespace="shop")
    with pytest.raises(ApplyError, match="spec.replicas"):
        mesh.patch("deploy", "web", {"spec": {"replicas": -4}}, namespace="shop")


def test_delete_by_reference_and_by_manifest(mesh):
    mesh.apply([NS, deployment(), service()])
    mesh.wait("20s")
    assert mesh.delete("svc/web", namespace="shop") == ['service "web" deleted']
    assert mesh.delete([deployment()]) == ['deployment.apps "web" deleted']
    with pytest.raises(NotFoundError, match='deployments.apps "web" not found'):
        mesh.delete([deployment()])
    mesh.wait("5s")
    assert mesh.cluster.list("rs", "shop") == [], "ReplicaSets are garbage-collected with their Deployment"
    assert mesh.cluster.list("pod", "shop") == [], "and so are the pods"


def test_namespace_deletion_terminates_its_contents(mesh):
    mesh.apply([NS, deployment(), service()])
    mesh.wait("20s")
    mesh.delete("ns/shop")
    assert mesh.get("ns", "shop")["status"]["phase"] == "Terminating"
    with pytest.raises(ApplyError, match="being terminated"):
        mesh.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "namespace": "shop"}}])
    mesh.wait("1s")
    assert {r["STATUS"] for r in mesh.pods("shop").to_dict("records")} <= {"Terminating"}
    mesh.wait("10s")
    with pytest.raises(NotFoundError):
        mesh.get("ns", "shop")
    assert mesh.cluster.list("pod", "shop") == []


def test_flagger_kinds_are_validated_once_their_crds_exist(mesh):
    from labkit.sim.kube import crds

    mesh.apply([NS])
    mesh.apply(crds.crds(crds.FLAGGER), server_side=True)
    canary = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "podinfo", "namespace": "shop"},
              "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                       "service": {"port": 9898},
                       "analysis": {"interval": "30s", "threshold": 5, "maxWeight": 50, "stepWeight": 5,
                                    "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}],
                                    "webhooks": [{"name": "load-test", "url": "http://flagger-loadtester.test/", "timeout": "5s"}]}}}
    assert mesh.apply([canary]) == ["canary.flagger.app/podinfo created"]
    bad = {**canary, "spec": {**canary["spec"], "targetRef": {**canary["spec"]["targetRef"], "kind": "StatefulSet"}}}
    with pytest.raises(ApplyError) as err:
        mesh.apply([bad])
    assert str(err.value).startswith(
        'The Canary "podinfo" is invalid: \n'
        '* spec.targetRef.kind: Unsupported value: "StatefulSet": supported values: "DaemonSet", "Deployment", "Service"\n'
        '* <nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; '
        'correct the existing errors to complete validation\n'), "an enum error stops the CRD's CEL rules, as on a cluster"
    old_style = {**canary, "spec": {k: v for k, v in canary["spec"].items() if k != "analysis"}}
    old_style["spec"]["canaryAnalysis"] = canary["spec"]["analysis"]
    with pytest.raises(ApplyError, match='strict decoding error: unknown field "spec.canaryAnalysis"'):
        mesh.apply([old_style])
    template = {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate", "metadata": {"name": "success-rate", "namespace": "shop"},
                "spec": {"provider": {"type": "prometheus", "address": "http://prometheus.linkerd-viz:9090"}}}
    with pytest.raises(ApplyError, match="spec.query: Required value"):
        mesh.apply([template])
    template["spec"]["query"] = "sum(rate(response_total[1m]))"
    assert mesh.apply([template]) == ["metrictemplate.flagger.app/success-rate created"]


def test_both_httproute_groups_after_install(mesh):
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.apply([NS])
    route = {"kind": "HTTPRoute", "metadata": {"name": "books-list", "namespace": "shop"},
             "spec": {"parentRefs": [{"name": "books", "group": "core", "kind": "Service", "port": 7002}],
                      "rules": [{"matches": [{"path": {"type": "Exact", "value": "/books.json"}}]}]}}
    assert mesh.apply([{**route, "apiVersion": "gateway.networking.k8s.io/v1beta1"}]) == \
        ["httproute.gateway.networking.k8s.io/books-list created"]
    assert mesh.apply([{**route, "apiVersion": "policy.linkerd.io/v1beta2"}]) == ["httproute.policy.linkerd.io/books-list created"]
    assert mesh.get("httproute", "books-list", "shop")["apiVersion"].startswith("gateway.networking.k8s.io/"), \
        "the short name resolves to the Gateway API's HTTPRoute, as kubectl does"
    assert mesh.get("httproutes.policy.linkerd.io", "books-list", "shop")["apiVersion"] == "policy.linkerd.io/v1beta2"
    bad = {**route, "apiVersion": "gateway.networking.k8s.io/v1", "spec": {"parentRefs": [{"port": 7002}], "rules": []}}
    with pytest.raises(ApplyError, match=r"spec.parentRefs\[0\].name: Required value"):
        mesh.apply([bad])
