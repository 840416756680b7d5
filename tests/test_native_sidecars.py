"""The kubelet model runs native sidecars (init containers with ``restartPolicy: Always``) as Kubernetes >= 1.29 does,
and kubectl's printer counts them."""
from __future__ import annotations

from labkit.sim.clock import Clock
from labkit.sim.kube.cluster import Cluster
from labkit.sim.kube.printers import pod_ready, pod_status

IMAGE = "nginx:1.27"


def pod_with(init_containers: list[dict], name="p") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"initContainers": init_containers, "containers": [{"name": "app", "image": IMAGE}]}}


def sidecar(name="side", startup: dict | None = None) -> dict:
    c = {"name": name, "image": IMAGE, "restartPolicy": "Always",
         "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 2}}
    if startup is not None:
        c["startupProbe"] = {"httpGet": {"path": "/", "port": 80}, **startup}
    return c


def run(cluster: Cluster, seconds: float, name="p", every=0.25):
    """(time, STATUS, READY) each time the printed row changes."""
    seen = []
    end = cluster.clock.t + seconds
    while cluster.clock.t < end:
        cluster.clock.run_until(cluster.clock.t + every)
        pod = cluster.api.get(cluster.types.pod, "default", name)
        row = (pod_status(pod), "%d/%d" % pod_ready(pod))
        if not seen or seen[-1][1:] != row:
            seen.append((round(cluster.clock.t, 2), *row))
    return seen


def statuses(pod: dict) -> dict:
    st = pod["status"]
    return {c["name"]: c for c in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or [])}


def test_a_sidecar_with_a_startup_probe_holds_the_app_and_counts_in_ready():
    cluster = Cluster(Clock(), seed=3)
    cluster.apply([pod_with([{"name": "setup", "image": IMAGE, "command": ["true"]},
                             sidecar(startup={"periodSeconds": 1, "failureThreshold": 30})])])
    rows = run(cluster, 40)
    shown = [r[1:] for r in rows]
    assert ("Init:0/2", "0/2") in shown and ("Init:1/2", "0/2") in shown, "the run-to-completion one first, then the sidecar"
    assert shown[-1] == ("Running", "2/2")
    pod = cluster.api.get(cluster.types.pod, "default", "p")
    st = statuses(pod)
    assert st["setup"]["state"]["terminated"]["reason"] == "Completed"
    assert st["side"]["started"] and st["side"]["ready"] and "running" in st["side"]["state"]
    assert st["app"]["state"]["running"]["startedAt"] >= st["side"]["state"]["running"]["startedAt"]
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["Initialized"] == conditions["Ready"] == "True"


def test_a_sidecar_that_never_starts_is_restarted_after_its_failure_threshold():
    cluster = Cluster(Clock(), seed=4)
    cluster.kubelet.readiness_gates["side"] = lambda pod: False  # its endpoint never answers
    cluster.apply([pod_with([sidecar(startup={"periodSeconds": 1, "failureThreshold": 5})])])
    run(cluster, 30)
    pod = cluster.api.get(cluster.types.pod, "default", "p")
    st = statuses(pod)
    assert st["side"]["restartCount"] >= 2 and not st["side"]["started"]
    assert st["app"]["state"].get("waiting"), "the app never starts behind a sidecar that never started"
    assert pod_status(pod).startswith("Init:") and "%d/%d" % pod_ready(pod) == "0/2"
    messages = list(cluster.events()["MESSAGE"])
    assert "Container side failed startup probe, will be restarted" in messages
    cluster.kubelet.readiness_gates["side"] = lambda pod: True  # it recovers: the app starts after all
    rows = run(cluster, 120)
    assert rows[-1][1:] == ("Running", "2/2")


def test_an_unready_sidecar_makes_the_pod_unready_and_is_named():
    cluster = Cluster(Clock(), seed=5)
    ready = {"ok": True}
    cluster.kubelet.readiness_gates["side"] = lambda pod: ready["ok"]
    cluster.apply([pod_with([sidecar()])])
    run(cluster, 30)
    pod = cluster.api.get(cluster.types.pod, "default", "p")
    assert "%d/%d" % pod_ready(pod) == "2/2"
    cluster.kubelet.kill_container(pod, "side", exit_code=1)
    ready["ok"] = False
    run(cluster, 5)
    pod = cluster.api.get(cluster.types.pod, "default", "p")
    assert "%d/%d" % pod_ready(pod) == "1/2" and pod_status(pod) == "Running"
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert cond["status"] == "False" and cond["message"] == "containers with unready status: [side]"
    assert statuses(pod)["side"]["restartCount"] == 1 and statuses(pod)["app"]["restartCount"] == 0
