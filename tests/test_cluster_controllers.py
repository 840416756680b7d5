"""Controllers of the embedded cluster: pods from Deployments, rollouts, readiness, endpoints, HPA, events."""
from __future__ import annotations

import ipaddress
import re

import pytest

import labkit
from labkit import cli_text
from labkit.sim.kube.objects import SAFE_ALPHANUMS

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
IMAGE_V11 = "ghcr.io/buoyantio/emojivoto-web:v11"
IMAGE_V10 = "ghcr.io/buoyantio/emojivoto-web:v10"


def deployment(name="web", image=IMAGE_V11, replicas=1, probe=None, **spec_extra):
    container = {"name": name, "image": image, "ports": [{"name": "http", "containerPort": 8080}]}
    if probe:
        container["readinessProbe"] = probe
    spec = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}
    spec.update(spec_extra)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def service(name="web"):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


@pytest.fixture
def mesh():
    return labkit.connect("sim", seed=11)


def pod_names(mesh, ns="shop"):
    return [p["metadata"]["name"] for p in mesh.cluster.list("pod", ns)]


def test_nothing_runs_until_the_lab_waits(mesh):
    mesh.apply([NS, deployment()])
    assert mesh.pods("shop").empty
    mesh.wait("30s")
    table = mesh.pods("shop")
    assert list(table.columns) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    row = table.iloc[0]
    assert (row["READY"], row["STATUS"], row["RESTARTS"]) == ("1/1", "Running", 0)
    assert 29 <= row["AGE"] <= 30


def test_pods_get_replicaset_style_names_and_ips_from_their_node(mesh):
    mesh.apply([NS, deployment(replicas=3)])
    mesh.wait("30s")
    pods = mesh.cluster.list("pod", "shop")
    rs = mesh.cluster.list("rs", "shop")
    assert len(rs) == 1 and len(pods) == 3
    rs_name = rs[0]["metadata"]["name"]
    template_hash = rs[0]["metadata"]["labels"]["pod-template-hash"]
    assert rs_name == f"web-{template_hash}"
    assert re.fullmatch(r"[4-9bcdf]{1,10}", template_hash), "hash characters as Kubernetes encodes them"
    for pod in pods:
        name = pod["metadata"]["name"]
        assert name.startswith(rs_name + "-")
        suffix = name.rsplit("-", 1)[1]
        assert len(suffix) == 5 and set(suffix) <= set(SAFE_ALPHANUMS)
        assert pod["metadata"]["labels"]["pod-template-hash"] == template_hash
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        node = mesh.cluster.api.get(mesh.cluster.types.node, None, pod["spec"]["nodeName"])
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
        assert pod["spec"]["nodeName"] != "labs-control-plane", "the tainted control-plane node runs no app pods"
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["serviceAccountName"] == "default"
    assert len({p["status"]["podIP"] for p in pods}) == 3
    assert {p["spec"]["nodeName"] for p in pods} == {"labs-worker", "labs-worker2"}, "pods spread over the workers"


def test_readiness_waits_for_the_probe_schedule(mesh):
    probe = {"httpGet": {"path": "/ping", "port": 8080}, "initialDelaySeconds": 20, "periodSeconds": 10}
    mesh.apply([NS, deployment(probe=probe), service()])
    mesh.wait("15s")
    pod = mesh.cluster.list("pod", "shop")[0]
    assert pod["status"]["phase"] == "Running"
    assert mesh.pods("shop").iloc[0]["READY"] == "0/1"
    assert mesh.cluster.ready_endpoints("web", "shop") == [], "not ready: no endpoint"
    ep = mesh.get("endpoints", "web", "shop")
    assert [a["ip"] for a in ep["subsets"][0]["notReadyAddresses"]] == [pod["status"]["podIP"]]
    mesh.wait("20s")
    assert mesh.pods("shop").iloc[0]["READY"] == "1/1"
    ready = mesh.cluster.ready_endpoints("web", "shop")
    assert [p["metadata"]["name"] for p in ready] == [pod["metadata"]["name"]]
    ep = mesh.get("endpoints", "web", "shop")
    assert ep["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP", "name": "http"}], "named targetPort resolved"


def test_a_failing_first_probe_is_an_unhealthy_event_and_a_later_probe_succeeds(mesh):
    probe = {"httpGet": {"path": "/ping", "port": 8080}}  # probed right at start, before the app listens
    mesh.cluster.kubelet.startup_hint = lambda image: 4.0
    mesh.apply([NS, deployment(probe=probe)])
    mesh.wait("60s")
    events = mesh.events("shop")
    unhealthy = events[events["REASON"] == "Unhealthy"]
    assert len(unhealthy) == 1
    assert re.fullmatch(r'Readiness probe failed: Get "http://10\.244\.\d+\.\d+:8080/ping": dial tcp 10\.244\.\d+\.\d+:8080: '
                        r"connect: connection refused", unhealthy.iloc[0]["MESSAGE"])
    assert mesh.pods("shop").iloc[0]["READY"] == "1/1"


def test_events_use_kubectl_wording(mesh):
    mesh.apply([NS, deployment()])
    mesh.wait("30s")
    table = mesh.events("shop")
    assert list(table.columns) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    by_reason = {r["REASON"]: r for r in table.to_dict("records")}
    pod = pod_names(mesh)[0]
    rs = mesh.cluster.list("rs", "shop")[0]["metadata"]["name"]
    assert by_reason["ScalingReplicaSet"]["MESSAGE"] == f"Scaled up replica set {rs} to 1 from 0"
    assert by_reason["ScalingReplicaSet"]["OBJECT"] == "deployment/web"
    assert by_reason["SuccessfulCreate"]["MESSAGE"] == f"Created pod: {pod}"
    assert by_reason["Scheduled"]["MESSAGE"].startswith(f"Successfully assigned shop/{pod} to labs-worker")
    assert by_reason["Pulling"]["MESSAGE"] == f'Pulling image "{IMAGE_V11}"'
    assert re.fullmatch(rf'Successfully pulled image "{re.escape(IMAGE_V11)}" in [\d.]+m?s \([\d.]+m?s including waiting\)\. '
                        r"Image size: \d+ bytes\.", by_reason["Pulled"]["MESSAGE"])
    assert by_reason["Created"]["MESSAGE"] == "Created container: web"
    assert by_reason["Started"]["MESSAGE"] == "Started container web"
    order = list(table["REASON"])
    assert order.index("ScalingReplicaSet") < order.index("SuccessfulCreate") < order.index("Scheduled") \
        < order.index("Pulling") < order.index("Pulled") < order.index("Created") < order.index("Started")
    text = cli_text(table)
    assert text.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]


def test_later_pods_of_an_image_on_a_node_find_it_cached(mesh):
    mesh.apply([NS, deployment(replicas=2)])
    mesh.wait("60s")
    messages = list(mesh.events("shop")["MESSAGE"])
    assert sum(m.startswith("Successfully pulled") for m in messages) == 2, "one pull per worker"
    mesh.patch("deploy", "web", {"spec": {"replicas": 4}}, namespace="shop")
    mesh.wait("30s")
    messages = list(mesh.events("shop")["MESSAGE"])
    assert sum(m.startswith("Successfully pulled") for m in messages) == 2
    assert sum(m == f'Container image "{IMAGE_V11}" already present on machine' for m in messages) == 2


def test_set_image_rolls_out_with_revision_history(mesh):
    mesh.apply([NS, deployment(replicas=2)])
    mesh.wait("30s")
    first = set(pod_names(mesh))
    assert mesh.set_image("web", IMAGE_V10, namespace="shop") == "deployment.apps/web image updated"
    assert mesh.cluster.last_command == f"kubectl -n shop set image deployment/web web={IMAGE_V10}"
    assert mesh.rollout_status("web", "shop") == "Waiting for deployment spec update to be observed..."
    mesh.wait("60s")
    assert mesh.rollout_status("web", "shop") == 'deployment "web" successfully rolled out'
    assert mesh.cluster.last_command == "kubectl -n shop rollout status deployment/web --watch=false"
    d = mesh.get("deploy", "web", "shop")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert d["metadata"]["generation"] == 2 and d["status"]["observedGeneration"] == 2
    assert mesh.cluster.rollout_history("web", "shop") == [(1, IMAGE_V11), (2, IMAGE_V10)]
    now = set(pod_names(mesh))
    assert len(now) == 2 and not (now & first), "every pod replaced"
    assert all(p["spec"]["containers"][0]["image"] == IMAGE_V10 for p in mesh.cluster.list("pod", "shop"))
    rss = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["replicas"]
           for rs in mesh.cluster.list("rs", "shop")}
    assert rss == {"1": 0, "2": 2}, "the old ReplicaSet stays, scaled to zero, as history"
    messages = list(mesh.events("shop")["MESSAGE"])
    new_rs = [rs["metadata"]["name"] for rs in mesh.cluster.list("rs", "shop")
              if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"][0]
    assert f"Scaled up replica set {new_rs} to 1 from 0" in messages
    # rolling back to the first template revives the first ReplicaSet as revision 3
    mesh.set_image("web", IMAGE_V11, namespace="shop")
    mesh.wait("60s")
    assert mesh.cluster.rollout_history("web", "shop") == [(2, IMAGE_V10), (3, IMAGE_V11)]
    assert len(mesh.cluster.list("rs", "shop")) == 2


def test_rolling_update_respects_surge_and_unavailability(mesh):
    probe = {"httpGet": {"path": "/", "port": 8080}, "initialDelaySeconds": 3, "periodSeconds": 2}
    mesh.apply([NS, deployment(replicas=4, probe=probe)])
    mesh.wait("60s")
    mesh.set_image("web", IMAGE_V10, namespace="shop")
    saw_messages = set()
    for _ in range(120):
        mesh.wait("0.5s")
        pods = [p for p in mesh.cluster.list("pod", "shop") if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
        assert len(pods) <= 5, "maxSurge 25% of 4 = 1 extra pod"
        assert len(ready) >= 3, "maxUnavailable 25% of 4 = at most 1 unavailable"
        saw_messages.add(mesh.rollout_status("web", "shop"))
    assert 'deployment "web" successfully rolled out' in saw_messages
    assert any(re.fullmatch(r'Waiting for deployment "web" rollout to finish: \d of 4 updated replicas are available\.\.\.|'
                            r'Waiting for deployment "web" rollout to finish: \d out of 4 new replicas have been updated\.\.\.|'
                            r'Waiting for deployment "web" rollout to finish: \d old replicas are pending termination\.\.\.', m)
               for m in saw_messages)


def test_recreate_strategy_stops_old_pods_first(mesh):
    mesh.apply([NS, deployment(replicas=2, strategy={"type": "Recreate"})])
    mesh.wait("30s")
    old = set(pod_names(mesh))
    mesh.set_image("web", IMAGE_V10, namespace="shop")
    mesh.wait("0.5s")
    live = [p for p in mesh.cluster.list("pod", "shop") if not p["metadata"].get("deletionTimestamp")]
    assert not live, "all old pods terminate before a new one is created"
    mesh.wait("30s")
    assert len(pod_names(mesh)) == 2 and not set(pod_names(mesh)) & old


def test_progress_deadline(mesh):
    never_ready = {"exec": {"command": ["false"]}, "periodSeconds": 5}
    mesh.cluster.kubelet.startup_hint = lambda image: 10_000.0
    mesh.apply([NS, deployment(probe=never_ready, progressDeadlineSeconds=30)])
    mesh.wait("20s")
    assert mesh.rollout_status("web", "shop") == 'Waiting for deployment "web" rollout to finish: 0 of 1 updated replicas are available...'
    mesh.wait("30s")
    assert mesh.rollout_status("web", "shop") == 'error: deployment "web" exceeded its progress deadline'


def test_scaling_and_pod_replacement(mesh):
    mesh.apply([NS, deployment(replicas=3)])
    mesh.wait("30s")
    mesh.patch("deploy", "web", {"spec": {"replicas": 1}}, namespace="shop")
    mesh.wait("10s")
    assert len(pod_names(mesh)) == 1
    victim = pod_names(mesh)[0]
    mesh.delete(f"pod/{victim}", namespace="shop")
    mesh.wait("15s")
    assert len(pod_names(mesh)) == 1 and pod_names(mesh)[0] != victim, "the ReplicaSet replaces a deleted pod"


def test_missing_service_account_is_a_failed_create_until_it_exists(mesh):
    d = deployment()
    d["spec"]["template"]["spec"]["serviceAccountName"] = "ghost"
    mesh.apply([NS, d])
    mesh.wait("8s")
    assert pod_names(mesh) == []
    failed = [r for r in mesh.events("shop").to_dict("records") if r["REASON"] == "FailedCreate"]
    assert failed and 'serviceaccount "ghost" not found' in failed[0]["MESSAGE"]
    mesh.apply([{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ghost", "namespace": "shop"}}])
    mesh.wait("20s")
    assert len(pod_names(mesh)) == 1


def test_hpa_enforces_min_replicas(mesh):
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 2, "maxReplicas": 4,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 99}}}]}}
    mesh.apply([NS, deployment(), hpa])
    mesh.wait("40s")
    assert mesh.get("deploy", "web", "shop")["spec"]["replicas"] == 2
    assert len(pod_names(mesh)) == 2
    rescale = [r for r in mesh.events("shop").to_dict("records") if r["REASON"] == "SuccessfulRescale"]
    assert rescale[0]["MESSAGE"] == "New size: 2; reason: Current number of replicas below Spec.MinReplicas"
    assert rescale[0]["OBJECT"] == "horizontalpodautoscaler/web"
    assert mesh.get("hpa", "web", "shop")["status"]["desiredReplicas"] == 2


def test_container_restarts_are_counted(mesh):
    mesh.apply([NS, deployment()])
    mesh.wait("30s")
    pod = pod_names(mesh)[0]
    mesh.cluster.kill_container(pod, "web", namespace="shop")
    assert mesh.pods("shop").iloc[0]["READY"] == "0/1"
    mesh.wait("10s")
    row = mesh.pods("shop").iloc[0]
    assert (row["READY"], row["STATUS"], row["RESTARTS"]) == ("1/1", "Running", 1)


def scenario(seed):
    mesh = labkit.connect("sim", seed=seed)
    mesh.apply([NS, deployment(replicas=3), service()])
    mesh.wait("30s")
    mesh.set_image("web", IMAGE_V10, namespace="shop")
    mesh.wait("30s")
    return mesh


def test_same_seed_same_names_objects_and_events():
    a, b = scenario(5), scenario(5)
    assert pod_names(a) == pod_names(b)
    assert a.cluster.list("pod", "shop") == b.cluster.list("pod", "shop")
    assert a.cluster.list("svc", "shop") == b.cluster.list("svc", "shop")
    assert a.get("deploy", "web", "shop") == b.get("deploy", "web", "shop")
    assert cli_text(a.events("shop")) == cli_text(b.events("shop"))
    assert cli_text(a.pods("shop")) == cli_text(b.pods("shop"))


def test_different_seed_different_pod_names():
    a, b = scenario(5), scenario(6)
    assert set(pod_names(a)).isdisjoint(pod_names(b))
    assert a.get("deploy", "web", "shop")["metadata"]["uid"] != b.get("deploy", "web", "shop")["metadata"]["uid"]


# -- the read API the data plane uses ----------------------------------------------------------------

def test_list_with_selectors_and_revision(mesh):
    mesh.apply([NS, deployment("a"), deployment("b")])
    before = mesh.cluster.revision
    mesh.wait("30s")
    assert mesh.cluster.revision > before
    assert [p["metadata"]["labels"]["app"] for p in mesh.cluster.list("pod", "shop", {"app": "a"})] == ["a"]
    assert len(mesh.cluster.list("Pod", "shop", {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]})) == 2
    assert len(mesh.cluster.list("pods")) >= 2, "namespace=None lists every namespace"
    steady = mesh.cluster.revision
    assert mesh.cluster.revision == steady, "reading changes nothing"
    mesh.apply([deployment("a")])
    assert mesh.cluster.revision == steady, "an unchanged apply changes nothing"


def test_meshed_counts_and_control_plane(mesh):
    mesh.apply([NS, deployment("a", replicas=2), deployment("b")])
    mesh.wait("30s")
    assert mesh.cluster.meshed_counts("deploy", "shop") == {"a": (0, 2), "b": (0, 1)}
    assert mesh.cluster.meshed_counts("ns", "shop") == {"shop": (0, 3)}
    mesh.apply([service("a")])
    assert mesh.cluster.meshed_counts("svc", "shop") == {"a": (0, 2)}
    pods = mesh.cluster.meshed_counts("pod", "shop")
    assert len(pods) == 3 and set(pods.values()) == {(0, 1)}
    assert mesh.cluster.control_plane() == {"linkerd": False, "viz": False}


def test_record_event(mesh):
    mesh.apply([NS, deployment()])
    d = mesh.get("deploy", "web", "shop")
    mesh.cluster.record_event(d, "Normal", "Synced", "Initialization done! web.shop", source="flagger")
    mesh.wait("5s")
    mesh.cluster.record_event(d, "Normal", "Synced", "Initialization done! web.shop", source="flagger")
    rows = [r for r in mesh.events("shop").to_dict("records") if r["REASON"] == "Synced"]
    assert len(rows) == 1 and rows[0]["OBJECT"] == "deployment/web", "repeats are aggregated"
    event = [e for e in mesh.cluster.list("events", "shop") if e["reason"] == "Synced"][0]
    assert event["count"] == 2 and event["source"]["component"] == "flagger"
    with pytest.raises(ValueError):
        mesh.cluster.record_event(d, "Bad", "X", "y")


def test_equivalent_commands(mesh):
    c = mesh.cluster
    assert c.command_for("apply", "emojivoto") == "kubectl apply -f manifests/emojivoto"
    assert c.command_for("apply", "booksapp", namespace="booksapp") == "kubectl apply -f manifests/booksapp -n booksapp"
    assert c.command_for("check", pre=True) == "linkerd check --pre"
    assert c.command_for("check", proxy=True, namespace="emojivoto") == "linkerd -n emojivoto check --proxy"
    assert c.command_for("install_linkerd", viz=False) == \
        "linkerd install --crds | kubectl apply -f - && linkerd install | kubectl apply -f -"
    assert c.command_for("inject", "deploy", namespace="emojivoto") == \
        "kubectl get -n emojivoto deploy -o yaml | linkerd inject - | kubectl apply -f -"
    assert c.command_for("inject", "deploy", namespace="emojivoto", name="voting", enable_debug_sidecar=True) == \
        "kubectl get -n emojivoto deploy/voting -o yaml | linkerd inject --enable-debug-sidecar - | kubectl apply -f -"
    assert c.command_for("pods", "booksapp") == "kubectl -n booksapp get pods"
    assert c.command_for("delete", "ns/booksapp") == "kubectl delete ns/booksapp"
    mesh.pods("emojivoto")
    assert c.last_command == "kubectl -n emojivoto get pods"
    mesh.check(pre=True)
    assert c.last_command == "linkerd check --pre"
    mesh.nodes()
    assert c.last_command == "kubectl get nodes"


def test_jobs_run_to_completion_meshed_too_unless_the_proxy_is_an_ordinary_sidecar():
    """A Job's pod completes; meshed, it never does (the proxy keeps running) — shown as NotReady."""
    from labkit.sim.clock import Clock
    from labkit.sim.kube.cluster import Cluster

    cluster = Cluster(Clock(), seed=7)  # the cluster model alone: no data plane runs these containers
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "default"},
           "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                          "containers": [{"name": "migrate", "image": "ghcr.io/buoyantio/booksapp:v0.0.5"}]}}}}
    assert cluster.apply([job]) == ["job.batch/migrate created"]
    cluster.clock.run_until(cluster.clock.t + 60)
    row = cluster.pods().iloc[0]
    assert (row["READY"], row["STATUS"]) == ("0/1", "Completed")
    assert any(c["type"] == "Complete" for c in cluster.get("job", "migrate")["status"]["conditions"])
    assert "Job completed" in list(cluster.events()["MESSAGE"])

    cluster.install_gateway_api()
    cluster.install_linkerd(viz=False)
    cluster.clock.run_until(cluster.clock.t + 90)
    meshed = {**job, "metadata": {"name": "meshed", "namespace": "default"}}
    meshed["spec"] = {"template": {"metadata": {"annotations": {"linkerd.io/inject": "enabled"}}, "spec": job["spec"]["template"]["spec"]}}
    cluster.apply([meshed])
    cluster.clock.run_until(cluster.clock.t + 120)
    row = [r for r in cluster.pods().to_dict("records") if r["NAME"].startswith("meshed-")][0]
    # 2.20's proxy is a native sidecar: the kubelet stops it once the Job's container is done
    assert (row["READY"], row["STATUS"]) == ("0/2", "Completed")
    assert any(c["type"] == "Complete" for c in cluster.get("job", "meshed")["status"]["conditions"])

    legacy = {**job, "metadata": {"name": "legacy", "namespace": "default"}}
    legacy["spec"] = {"template": {"metadata": {"annotations": {"linkerd.io/inject": "enabled",
                                                                "config.linkerd.io/proxy-enable-native-sidecar": "false"}},
                                   "spec": job["spec"]["template"]["spec"]}}
    cluster.apply([legacy])
    cluster.clock.run_until(cluster.clock.t + 120)
    row = [r for r in cluster.pods().to_dict("records") if r["NAME"].startswith("legacy-")][0]
    assert (row["READY"], row["STATUS"]) == ("1/2", "NotReady"), "an ordinary proxy container outlives the Job's"
    assert "conditions" not in cluster.get("job", "legacy")["status"]
