"""KubeMesh on the served embedded mesh: same answers as the sim backend, labels, teardown, atomic apply.

Each test drives a sim mesh and a kube mesh (on a served mesh with the same
seed and a stopped clock) through the same calls and compares what the
contract returns. The whole-lab comparisons are in test_kube_notebooks.py.
"""
from __future__ import annotations

import pytest

import labkit
from labkit.errors import ApplyError, BackendError, NotFoundError

pytest.importorskip("kubernetes")


@pytest.fixture
def pair():
    from labkit.sim.serve import serve

    sim = labkit.connect("sim", seed=0)
    served = serve(labkit.connect("sim", seed=0), pace=0)
    kube = labkit.connect("kube", context=served.context, kubeconfig=served.kubeconfig, lab="test-lab")
    yield sim, kube, served
    served.close()


def same(sim, kube, call):
    a, b = call(sim), call(kube)
    if hasattr(a, "columns"):
        assert labkit.cli_text(a) == labkit.cli_text(b)
    else:
        assert a == b
    return b


def test_backend_and_clock(pair):
    sim, kube, _ = pair
    assert kube.backend == "kube" and "labkit-embedded" in repr(kube)
    same(sim, kube, lambda m: m.now)
    same(sim, kube, lambda m: m.wait("90s"))
    same(sim, kube, lambda m: m.now)


def test_apply_get_patch_set_image_rollout_delete_match_the_sim(pair):
    sim, kube, _ = pair
    same(sim, kube, lambda m: m.apply("emojivoto"))
    same(sim, kube, lambda m: m.wait("1m"))
    same(sim, kube, lambda m: m.pods("emojivoto"))
    same(sim, kube, lambda m: m.pods("*"))
    same(sim, kube, lambda m: m.events("emojivoto"))
    same(sim, kube, lambda m: m.apply("emojivoto"))  # all unchanged the second time
    same(sim, kube, lambda m: m.set_image("web", "web-svc=ghcr.io/buoyantio/emojivoto-web:v11", namespace="emojivoto"))
    same(sim, kube, lambda m: m.patch("deploy", "web", {"spec": {"replicas": 2}}, namespace="emojivoto")["spec"]["replicas"])
    same(sim, kube, lambda m: m.rollout_status("web", "emojivoto"))
    same(sim, kube, lambda m: m.wait("30s"))
    same(sim, kube, lambda m: m.rollout_status("web", "emojivoto"))
    same(sim, kube, lambda m: m.exec("deploy/vote-bot", "curl -s -o /dev/null -w '%{http_code}' http://web-svc:80/",
                                     namespace="emojivoto"))
    same(sim, kube, lambda m: m.exec("deploy/vote-bot", "curl -s http://nowhere.emojivoto:80/", namespace="emojivoto"))
    same(sim, kube, lambda m: m.logs("deploy/vote-bot", namespace="emojivoto", tail=4))
    same(sim, kube, lambda m: m.delete("emojivoto/vote-bot.yml"))
    same(sim, kube, lambda m: m.wait("40s"))
    same(sim, kube, lambda m: m.pods("emojivoto"))
    web = kube.get("deploy", "web", "emojivoto")
    assert web["metadata"]["labels"]["app.kubernetes.io/part-of"] == "emojivoto"  # the manifest's own
    assert kube.get("ns", "emojivoto")["metadata"]["labels"]["app.kubernetes.io/part-of"] == "linkerd-labs"
    unnamed = labkit.connect("kube", context=kube.context, kubeconfig=kube.kubeconfig)
    unnamed.apply("booksapp/00-namespace.yml")  # no lab named: the app's folder names it
    assert unnamed.get("ns", "booksapp")["metadata"]["labels"]["linkerd-labs/lab"] == "booksapp"
    assert web["metadata"]["labels"]["linkerd-labs/lab"] == "test-lab"
    assert web["spec"]["replicas"] == 2 and web["kind"] == "Deployment"


def test_errors_read_like_the_sim(pair):
    sim, kube, _ = pair
    for m in (sim, kube):
        with pytest.raises(NotFoundError) as err:
            m.get("deploy", "nope", "default")
        assert str(err.value) == 'Error from server (NotFound): deployments.apps "nope" not found'
        with pytest.raises(NotFoundError, match='deployments.apps "nope" not found'):
            m.delete("deploy/nope")
        with pytest.raises(ApplyError, match='no matches for kind "ServiceProfile"'):
            m.apply([{"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
                      "metadata": {"name": "x", "namespace": "default"}, "spec": {"routes": []}}])


def test_a_refused_document_means_nothing_from_the_apply_is_applied(pair):
    _, kube, _ = pair
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine"}, "data": {"a": "1"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "broken"},
             "spec": {"selector": {"matchLabels": {"app": "x"}},
                      "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}}}]
    with pytest.raises(ApplyError, match="nothing from this apply was applied"):
        kube.apply(docs)
    with pytest.raises(NotFoundError):
        kube.get("configmap", "fine")


def test_teardown_deletes_only_what_labkit_labelled(pair):
    _, kube, served = pair
    kube.apply("emojivoto")
    kube.kube.call("POST", "/api/v1/namespaces/default/configmaps",
                   body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "not-mine"}})
    other_lab = labkit.connect("kube", context=served.context, kubeconfig=served.kubeconfig, lab="another")
    other_lab.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs"}}])
    preview = kube.teardown("test-lab", dry_run=True)
    assert "namespace \"emojivoto\" deleted (dry run)" in preview
    assert kube.get("ns", "emojivoto")
    lines = kube.teardown("test-lab")
    assert lines[-1] == 'namespace "emojivoto" deleted'  # namespaced objects first, namespaces last
    assert 'deployment.apps "web" deleted' in lines
    assert kube.get("configmap", "not-mine")  # never labelled: untouched
    assert kube.get("configmap", "theirs")  # another lab's
    assert kube.get("ns", "emojivoto")["status"]["phase"] == "Terminating"
    assert other_lab.teardown("another") == ['configmap "theirs" deleted']
    assert kube.teardown() == []  # every lab's: nothing left (emojivoto is already terminating)


def test_linkerd_through_the_cli_matches_the_sim(pair):
    sim, kube, _ = pair
    same(sim, kube, lambda m: str(m.check(pre=True)))
    same(sim, kube, lambda m: m.install_gateway_api())
    same(sim, kube, lambda m: m.install_linkerd(viz=True))
    same(sim, kube, lambda m: m.wait_for(lambda x: x.check().ok, timeout="5m"))
    same(sim, kube, lambda m: m.apply("booksapp"))
    same(sim, kube, lambda m: m.wait("1m"))
    same(sim, kube, lambda m: m.inject("deploy", namespace="booksapp", name="webapp"))
    same(sim, kube, lambda m: m.uninject("deploy", namespace="booksapp", name="webapp"))
    same(sim, kube, lambda m: m.inject("deploy", namespace="booksapp"))
    same(sim, kube, lambda m: m.wait("2m"))
    same(sim, kube, lambda m: m.pods("booksapp"))
    same(sim, kube, lambda m: m.profile("webapp", namespace="booksapp", open_api="booksapp/openapi/webapp.swagger"))
    same(sim, kube, lambda m: m.proxy_metrics("deploy/books", namespace="booksapp"))
    same(sim, kube, lambda m: m.stat("deploy", namespace="booksapp"))
    same(sim, kube, lambda m: m.stat("svc", namespace="booksapp"))
    same(sim, kube, lambda m: m.stat("ns"))
    same(sim, kube, lambda m: m.edges("deploy", namespace="booksapp"))
    same(sim, kube, lambda m: m.tap("deploy/webapp", namespace="booksapp", duration="3s", method="POST"))
    same(sim, kube, lambda m: m.top("deploy/webapp", namespace="booksapp", window="10s"))
    t = kube.now
    same(sim, kube, lambda m: m.query("sum(rate(request_total[1m])) by (deployment)"))
    same(sim, kube, lambda m: m.query("sum(rate(request_total[1m])) by (deployment)", time=t - __import__("pandas").Timedelta("2m")))
    same(sim, kube, lambda m: m.query_range("sum(rate(request_total[1m]))", t - __import__("pandas").Timedelta("5m"), t, "30s"))


def test_2_20_route_verbs_and_annotate_match_the_sim(pair):
    sim, kube, _ = pair
    if hasattr(sim, "install_gateway_api"):  # Linkerd 2.20 needs the Gateway API CRDs installed first
        same(sim, kube, lambda m: m.install_gateway_api())
    same(sim, kube, lambda m: m.install_linkerd(viz=True))
    same(sim, kube, lambda m: m.wait("2m"))
    same(sim, kube, lambda m: m.apply("booksapp"))
    same(sim, kube, lambda m: m.inject("deploy", namespace="booksapp"))
    same(sim, kube, lambda m: m.wait("90s"))
    same(sim, kube, lambda m: m.apply("booksapp/routes"))
    same(sim, kube, lambda m: m.annotate("httproute.gateway.networking.k8s.io", "books-create",
                                         {"retry.linkerd.io/http": "5xx"}, "booksapp"))
    same(sim, kube, lambda m: m.wait("90s"))
    out = same(sim, kube, lambda m: m.stat_outbound("deploy/webapp", "booksapp"))
    assert "books-create" in set(out.ROUTE) and out.RETRIES.max() > 0
    same(sim, kube, lambda m: m.stat_inbound("deploy", "booksapp"))
    same(sim, kube, lambda m: m.proxy_metrics("deploy/webapp", namespace="booksapp"))


def test_kube_only_calls_say_what_to_do_instead(pair):
    _, kube, _ = pair
    with pytest.raises(BackendError, match="embedded mesh"):
        kube.serve()
    with pytest.raises(BackendError, match="query_range"):
        kube.export_metrics("x.txt")


def test_a_missing_linkerd_cli_is_named_with_how_to_install_it(pair, monkeypatch, tmp_path):
    _, kube, _ = pair
    monkeypatch.setenv("LABKIT_LINKERD", str(tmp_path / "no-such-linkerd"))
    kube._cli = None
    with pytest.raises(BackendError, match="run.linkerd.io/install"):
        kube.check()


def test_a_wait_for_never_outlives_its_timeout_and_names_the_condition(pair):
    _, kube, _ = pair
    start = kube.now

    def pods_never_appear(m):
        return False

    with pytest.raises(TimeoutError, match="pods_never_appear still false after 2m \\(virtual time\\)"):
        kube.wait_for(pods_never_appear, timeout="2m", every="30s")
    assert (kube.now - start).total_seconds() == 120


def test_server_side_apply_when_asked(pair):
    _, _, served = pair
    kube = labkit.connect("kube", context=served.context, kubeconfig=served.kubeconfig, server_side=True)
    cm = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}}]
    assert kube.apply(cm) == ["configmap/ssa serverside-applied"]
    assert kube.apply(cm) == ["configmap/ssa unchanged"]
    cm[0]["data"]["a"] = "2"
    assert kube.apply(cm) == ["configmap/ssa configured"]
    stored = kube.get("configmap", "ssa")
    assert stored["data"] == {"a": "2"}
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (stored["metadata"].get("annotations") or {})


def test_flaggers_kustomization_gets_the_labs_provider_and_smi_is_required_first(pair):
    """On a cluster Flagger comes from its kustomization (gatewayapi, flagger-system); the labs' SMI provider
    changes one flag, and needs the TrafficSplit CRD, which current Linkerd ships as the linkerd-smi extension."""
    from labkit.kube import flagger

    _, kube, served = pair
    upstream = served.flagger_manifests("gatewayapi:v1beta1")  # what `kubectl kustomize …/kustomize/linkerd` prints
    assert "-mesh-provider=gatewayapi:v1beta1" in upstream
    with pytest.raises(BackendError, match="flagger-system"):
        kube.install_flagger("linkerd", source=upstream, namespace="linkerd")  # a layout only the embedded mesh builds
    with pytest.raises(NotFoundError):
        kube.get("crd", "trafficsplits.split.smi-spec.io")  # Linkerd 2.20 itself does not bring it

    kube.install_gateway_api()
    kube.install_linkerd(viz=False)
    kube.wait_for(lambda m: m.check().ok, timeout="5m")  # linkerd smi install checks the control plane first
    lines = kube.install_flagger("linkerd", source=upstream)  # the SMI provider: `linkerd smi install` first
    assert lines.index("customresourcedefinition.apiextensions.k8s.io/trafficsplits.split.smi-spec.io created") < \
        lines.index("deployment.apps/flagger created")
    command = kube.get("deploy", "flagger", "flagger-system")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert [a for a in command if a.startswith("-mesh-provider")] == ["-mesh-provider=linkerd"]

    objs = [{"kind": "Deployment", "metadata": {"name": "flagger"}, "spec": {"template": {"spec": {"containers": [
        {"name": "flagger", "image": "ghcr.io/fluxcd/flagger:1.44.0",
         "args": ["-log-level=info", "-mesh-provider=gatewayapi:v1beta1"]}]}}}}]
    changed = flagger.with_provider(objs, "smi:v1alpha2")
    assert changed[0]["spec"]["template"]["spec"]["containers"][0]["args"] == ["-log-level=info",
                                                                               "-mesh-provider=smi:v1alpha2"]
    assert objs[0]["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "-mesh-provider=gatewayapi:v1beta1"
    assert flagger.needs_smi("linkerd") and flagger.needs_smi("smi:v1alpha2") and not flagger.needs_smi("gatewayapi:v1")


def test_a_trafficsplit_without_linkerd_smi_says_how_to_get_it(pair):
    _, kube, _ = pair
    split = {"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
             "metadata": {"name": "error-split", "namespace": "default"},
             "spec": {"service": "books", "backends": [{"service": "books", "weight": 900}]}}
    with pytest.raises(ApplyError, match="no matches for kind \"TrafficSplit\"") as refused:
        kube.apply([split])
    assert "linkerd smi install | kubectl apply -f -" in str(refused.value)
