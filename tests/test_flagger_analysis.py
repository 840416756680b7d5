"""Flagger on the embedded mesh: install, initialization, promotion, rollback, restart, blue/green, skipAnalysis.

The setup is Lab 3's with Flagger's own podinfo and loadtester manifests
(../shared/upstream/flagger, applied unchanged into ``test``) and the
tutorial's Canary (interval 30s, threshold 5, maxWeight 50, stepWeight 5,
the built-in Linkerd checks, the acceptance-test and load-test webhooks).
Event texts are asserted exactly (reference/flagger-and-policies.md §1.11),
tick by tick against the reference's tick table (§1.12).
"""
from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

import labkit
import labkit.canary as canary
from conftest import UPSTREAM
from labkit.errors import ApplyError
from labkit.sim.flagger import controller_of
from labkit.sim.flagger import playground as pg

TARGET = "podinfo.test"
WEIGHTS = list(range(5, 55, 5))


@pytest.fixture(scope="module")
def upstream_flagger():
    folder = UPSTREAM / "flagger"
    if not folder.is_dir():
        pytest.skip(f"upstream manifests not found at {folder}")
    return folder


def lab3(seed, upstream, **canary_settings):
    return pg.prepare(seed, canary=pg.canary_manifest(**canary_settings) if canary_settings else None,
                      upstream=str(upstream))


def ticks_since(mesh, start):
    return [t for t in controller_of(mesh).history.of("test", "podinfo").ticks if t.time >= start]


def messages(mesh, start, type_=None):
    frame = canary.events(mesh, "podinfo", "test", since=start)
    if type_:
        frame = frame[frame["type"] == type_]
    return list(frame["message"])


def test_install_flagger_brings_its_crds_deployment_and_controller():
    mesh = labkit.connect("sim", seed=70)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("90s")
    doc = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "c", "namespace": "default"},
           "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "c"}, "service": {"port": 80},
                    "analysis": {"interval": "1m", "threshold": 5, "iterations": 10}}}
    with pytest.raises(ApplyError, match='no matches for kind "Canary"'):
        mesh.apply([doc])
    lines = mesh.install_flagger(provider="linkerd")
    # the linkerd (SMI) provider brings the linkerd-smi extension first, then Flagger's kustomization
    assert lines[:2] == ["namespace/linkerd-smi created",
                         "customresourcedefinition.apiextensions.k8s.io/trafficsplits.split.smi-spec.io created"]
    lines = lines[lines.index("customresourcedefinition.apiextensions.k8s.io/canaries.flagger.app created"):]
    assert lines == ["customresourcedefinition.apiextensions.k8s.io/canaries.flagger.app created",
                     "customresourcedefinition.apiextensions.k8s.io/metrictemplates.flagger.app created",
                     "customresourcedefinition.apiextensions.k8s.io/alertproviders.flagger.app created",
                     "namespace/flagger-system created",
                     "serviceaccount/flagger created", "clusterrole.rbac.authorization.k8s.io/flagger created",
                     "clusterrolebinding.rbac.authorization.k8s.io/flagger created", "deployment.apps/flagger created"]
    flagger = mesh.get("deploy", "flagger", "flagger-system")
    args = flagger["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "-mesh-provider=linkerd" in args and "-metrics-server=http://prometheus.linkerd-viz:9090" in args
    assert flagger["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/fluxcd/flagger:1.44.0"
    assert mesh.install_flagger(provider="linkerd")[-1] == "deployment.apps/flagger unchanged"
    mesh.wait("30s")
    assert controller_of(mesh).running
    assert "Starting operator" in mesh.logs("deploy/flagger", namespace="flagger-system")
    assert list(mesh.pods("flagger-system")["READY"]) == ["2/2"], "meshed: viz's Prometheus answers meshed clients only"
    assert mesh.apply([doc]) == ["canary.flagger.app/c created"]


def test_the_2019_layout_runs_flagger_unmeshed_in_the_linkerd_namespace():
    mesh = labkit.connect("sim", seed=69)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("90s")
    lines = mesh.install_flagger(provider="linkerd", namespace="linkerd")
    assert "namespace/flagger-system created" not in lines and "deployment.apps/flagger created" in lines
    mesh.wait("30s")
    assert controller_of(mesh).running and controller_of(mesh).namespace == "linkerd"
    pods = mesh.pods("linkerd")
    assert list(pods[pods["NAME"].str.startswith("flagger-")]["READY"]) == ["1/1"]


def test_gatewayapi_install_runs_flagger_meshed_in_flagger_system():
    mesh = labkit.connect("sim", seed=71)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("90s")
    lines = mesh.install_flagger(provider="gatewayapi:v1beta1")
    assert "namespace/flagger-system created" in lines
    mesh.wait("30s")
    assert list(mesh.pods("flagger-system")["READY"]) == ["2/2"], "flagger-system is annotated for injection"
    with pytest.raises(ApplyError, match="not modelled"):
        mesh.install_flagger(provider="istio")


def test_initialization_generates_the_primary_services_and_trafficsplit(upstream_flagger):
    mesh = lab3(72, upstream_flagger)
    cd = mesh.canary("podinfo", "test")
    status = cd["status"]
    assert status["phase"] == "Initialized" and status["canaryWeight"] == 0 and status["failedChecks"] == 0
    assert status["conditions"][0]["type"] == "Promoted" and status["conditions"][0]["status"] == "True"
    assert status["conditions"][0]["message"] == "Deployment initialization completed."
    assert status["lastAppliedSpec"] == status["lastPromotedSpec"]
    assert mesh.get("deploy", "podinfo", "test")["spec"]["replicas"] == 0, "the target is scaled to zero"
    primary = mesh.get("deploy", "podinfo-primary", "test")
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert primary["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    assert "flagger-id" in primary["spec"]["template"]["metadata"]["annotations"]
    assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert mesh.get("hpa", "podinfo-primary", "test")["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    selectors = {name: mesh.get("svc", name, "test")["spec"]["selector"]
                 for name in ("podinfo", "podinfo-canary", "podinfo-primary")}
    assert selectors == {"podinfo": {"app": "podinfo-primary"}, "podinfo-canary": {"app": "podinfo"},
                         "podinfo-primary": {"app": "podinfo-primary"}}
    ts = mesh.get("trafficsplit", "podinfo", "test")
    assert ts["apiVersion"] == "split.smi-spec.io/v1alpha1"
    assert ts["spec"] == {"service": "podinfo", "backends": [{"service": "podinfo-canary", "weight": "0"},
                                                             {"service": "podinfo-primary", "weight": "100"}]}
    init = messages(mesh, 0)
    assert init[0] == "all the metrics providers are available!"
    assert init[1].startswith("podinfo-primary.test not ready: waiting for rollout to finish")
    assert init[-1] == "Initialization done! podinfo.test"
    events = mesh.events("test")
    done = events[events["MESSAGE"] == "Initialization done! podinfo.test"].iloc[0]
    assert (done["TYPE"], done["REASON"], done["OBJECT"]) == ("Normal", "Synced", "canary/podinfo")


def test_promotion_follows_the_reference_tick_table(upstream_flagger):
    """With traffic on the canary from the start, a good version is promoted in exactly T0..T13."""
    mesh = lab3(0, upstream_flagger)
    start = mesh.clock.t
    pg.release(mesh)
    # a client calling the canary all along (as the lab's users' traffic would)
    mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/", namespace="test")
    mesh.wait_for(pg.finished, timeout="30m")
    expected = ([f"New revision detected! Scaling up {TARGET}", f"Starting canary analysis for {TARGET}",
                 "Pre-rollout check acceptance-test passed"]
                + [f"Advance {TARGET} canary weight {w}" for w in WEIGHTS]
                + [f"Copying {TARGET} template spec to podinfo-primary.test", "Routing all traffic to primary",
                   f"Promotion completed! Scaling down {TARGET}"])
    frame = canary.events(mesh, "podinfo", "test", since=start)
    assert list(frame["message"]) == expected
    assert set(frame["type"]) == {"Normal"} and set(frame["reason"]) == {"Synced"}
    ticks = ticks_since(mesh, start)
    assert len(ticks) == 14, "T0 (detection) to T13 (promotion completed)"
    assert [t.phase for t in ticks] == ["Progressing"] * 11 + ["Promoting", "Finalising", "Succeeded"]
    assert [t.weight for t in ticks] == [0] + WEIGHTS + [50, 0, 0]
    assert all(ticks[i + 1].time - ticks[i].time == 30 for i in range(13))
    assert [len(t.checks) for t in ticks] == [0, 0] + [2] * 10 + [0, 0], "metrics on T2..T11 only"
    assert all(c.ok for t in ticks for c in t.checks)
    status = mesh.canary("podinfo", "test")["status"]
    assert (status["phase"], status["canaryWeight"], status["failedChecks"]) == ("Succeeded", 0, 0)
    assert status["conditions"][0]["message"] == "Canary analysis completed successfully, promotion finished."
    assert status["lastPromotedSpec"] == status["lastAppliedSpec"]
    primary = mesh.get("deploy", "podinfo-primary", "test")["spec"]["template"]["spec"]["containers"][0]
    assert primary["image"] == pg.NEW_IMAGE
    assert mesh.get("deploy", "podinfo", "test")["spec"]["replicas"] == 0
    assert [b["weight"] for b in mesh.get("ts", "podinfo", "test")["spec"]["backends"]] == ["0", "100"]


def test_tutorial_load_test_alone_leaves_intervals_without_canary_traffic(upstream_flagger):
    """The load test starts with the first analysis tick and `hey -z 2m` ends as the next call comes: Flagger
    v1.44 counts those empty windows as failed checks (NaN → no values found), each costing one interval."""
    mesh = lab3(0, upstream_flagger)
    start = mesh.clock.t
    pg.release(mesh)
    mesh.wait_for(pg.finished, timeout="30m")
    ticks = ticks_since(mesh, start)
    halts = [t for t in ticks if any(m.startswith("Halt") for _, m in t.events)]
    waits = [t for t in ticks if any(" not ready: " in m for _, m in t.events)]  # readiness: no failed check
    assert ticks[-1].phase == "Succeeded"
    assert halts[0].number == ticks[2 + len(waits)].number, "the first analysis tick sees no canary traffic yet"
    assert halts[0].events == [("Warning", "Halt advancement no values found for linkerd metric request-success-rate "
                                           f"probably {TARGET} is not receiving traffic: running query failed: no values found")]
    for tick in halts[1:]:
        assert tick.events == [("Warning", "Halt advancement no values found for linkerd metric request-duration "
                                           f"probably {TARGET} is not receiving traffic")]
    assert len(ticks) == 14 + len(halts) + len(waits), "every failed check holds the weight for one more interval"
    assert ticks[-1].failed_checks == len(halts) < 5, "failedChecks is cumulative and never reset by a pass"
    normal = messages(mesh, start, "Normal")
    assert [m for m in normal if m.startswith("Advance")] == [f"Advance {TARGET} canary weight {w}" for w in WEIGHTS]


def test_a_version_returning_500s_is_rolled_back_after_threshold_failed_checks(upstream_flagger):
    mesh = lab3(0, upstream_flagger)
    start = mesh.clock.t
    pg.release(mesh, image="ghcr.io/stefanprodan/podinfo:6.0.2")
    mesh.wait_for(lambda m: m.canary("podinfo", "test")["status"]["phase"] == "Progressing", every="1s")
    for path in ("status/500", "delay/1"):  # the lab's two loops in the loadtester
        mesh.exec("deploy/flagger-loadtester", f"watch -n 1 curl -s http://podinfo-canary.test:9898/{path}",
                  namespace="test")
    mesh.wait_for(pg.finished, timeout="30m")
    frame = canary.events(mesh, "podinfo", "test", since=start)
    got = list(frame["message"])
    assert got[:4] == [f"New revision detected! Scaling up {TARGET}", f"Starting canary analysis for {TARGET}",
                       "Pre-rollout check acceptance-test passed", f"Advance {TARGET} canary weight 5"]
    halts = got[4:9]
    assert all(re.fullmatch(r"Halt podinfo\.test advancement success rate \d+\.\d\d% < 99%", h) for h in halts), halts
    assert got[9:] == [f"Rolling back {TARGET} failed checks threshold reached 5", f"Canary failed! Scaling down {TARGET}"]
    assert list(frame["type"]) == ["Normal"] * 4 + ["Warning"] * 7 and set(frame["reason"]) == {"Synced"}
    ticks = ticks_since(mesh, start)
    assert [t.failed_checks for t in ticks] == [0, 0, 1, 2, 3, 4, 5, 0]
    assert len(ticks) == 8, "failures at T2..T6, rollback at the top of T7 (k + threshold)"
    assert all(t.weight == 5 for t in ticks[1:7]), "a failed check leaves the weight where it was"
    status = mesh.canary("podinfo", "test")["status"]
    assert (status["phase"], status["canaryWeight"], status["failedChecks"], status["iterations"]) == ("Failed", 0, 0, 0)
    assert status["conditions"][0]["status"] == "False"
    assert status["conditions"][0]["message"] == "Canary analysis failed, Deployment scaled to zero."
    assert mesh.get("deploy", "podinfo", "test")["spec"]["replicas"] == 0
    assert [b["weight"] for b in mesh.get("ts", "podinfo", "test")["spec"]["backends"]] == ["0", "100"]
    primary = mesh.get("deploy", "podinfo-primary", "test")["spec"]["template"]["spec"]["containers"][0]
    assert primary["image"] == "ghcr.io/stefanprodan/podinfo:6.0.0", "the primary still runs the old version"


def test_a_new_revision_mid_analysis_restarts_it(upstream_flagger):
    mesh = lab3(1, upstream_flagger)
    start = mesh.clock.t
    pg.release(mesh)
    mesh.wait("2m30s")
    assert mesh.canary("podinfo", "test")["status"]["canaryWeight"] > 0
    mesh.set_image("podinfo", "podinfod=ghcr.io/stefanprodan/podinfo:6.0.2", namespace="test")
    mesh.wait_for(pg.finished, timeout="30m")
    got = messages(mesh, start)
    restart = got.index(f"New revision detected! Restarting analysis for {TARGET}")
    assert got[restart + 1] == f"Starting canary analysis for {TARGET}"
    assert got[restart + 3] == f"Advance {TARGET} canary weight 5"
    ticks = ticks_since(mesh, start)
    at = next(t for t in ticks if ("Normal", f"New revision detected! Restarting analysis for {TARGET}") in t.events)
    assert (at.weight, at.status_weight, at.failed_checks, at.iterations) == (0, 0, 0, 0)
    assert got[-1] == f"Promotion completed! Scaling down {TARGET}"
    primary = mesh.get("deploy", "podinfo-primary", "test")["spec"]["template"]["spec"]["containers"][0]
    assert primary["image"] == "ghcr.io/stefanprodan/podinfo:6.0.2", "the revision promoted is the last one"


def test_blue_green_runs_iterations_then_switches_all_traffic(upstream_flagger):
    mesh = lab3(2, upstream_flagger, iterations=3)
    start = mesh.clock.t
    pg.release(mesh)
    mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/", namespace="test")
    mesh.wait_for(pg.finished, timeout="30m")
    got = [m for m in messages(mesh, start, "Normal")]
    assert got == [f"New revision detected! Scaling up {TARGET}", f"Starting canary analysis for {TARGET}",
                   "Pre-rollout check acceptance-test passed"] + \
        [f"Advance {TARGET} canary iteration {i}/3" for i in (1, 2, 3)] + \
        ["Routing all traffic to canary", f"Copying {TARGET} template spec to podinfo-primary.test",
         "Routing all traffic to primary", f"Promotion completed! Scaling down {TARGET}"]
    ticks = [t for t in ticks_since(mesh, start) if not any(ty == "Warning" for ty, _ in t.events)]
    weights = [t.weight for t in ticks]
    assert weights == [0, 0, 0, 0, 100, 100, 0, 0], "no traffic shift until the switch to the canary"
    assert [t.iterations for t in ticks][:5] == [0, 1, 2, 3, 4]


def test_skip_analysis_promotes_without_checks(upstream_flagger):
    mesh = lab3(3, upstream_flagger, skip_analysis=True)
    start = mesh.clock.t
    pg.release(mesh)
    mesh.wait_for(pg.finished, timeout="10m")
    got = messages(mesh, start, "Normal")
    assert got == [f"New revision detected! Scaling up {TARGET}", f"Copying {TARGET} template spec to podinfo-primary.test",
                   f"Promotion completed! Canary analysis was skipped for {TARGET}"]
    assert all(not t.checks for t in ticks_since(mesh, start))
    assert mesh.canary("podinfo", "test")["status"]["phase"] == "Succeeded"


def test_failed_revision_is_not_analysed_again_until_the_spec_changes(upstream_flagger):
    mesh = lab3(4, upstream_flagger, threshold=1)
    start = mesh.clock.t
    pg.release(mesh, image="ghcr.io/stefanprodan/podinfo:6.0.2")
    mesh.wait_for(lambda m: m.canary("podinfo", "test")["status"]["phase"] == "Progressing", every="1s")
    mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/status/500", namespace="test")
    mesh.wait_for(pg.finished, timeout="30m")
    assert mesh.canary("podinfo", "test")["status"]["phase"] == "Failed"
    mesh.exec("deploy/flagger-loadtester", "pkill watch", namespace="test")
    n = len(messages(mesh, start))
    mesh.wait("3m")
    assert len(messages(mesh, start)) == n, "the failed revision stays failed"
    first = mesh.canary("podinfo", "test")["status"]["lastTransitionTime"]
    assert first >= mesh.canary("podinfo", "test")["status"]["conditions"][0]["lastTransitionTime"]
    # reverting to the promoted spec is a manual rollback: no analysis
    mesh.set_image("podinfo", "podinfod=ghcr.io/stefanprodan/podinfo:6.0.0", namespace="test")
    mesh.wait("2m")
    assert len(messages(mesh, start)) == n
    mesh.set_image("podinfo", "podinfod=ghcr.io/stefanprodan/podinfo:6.0.3", namespace="test")
    mesh.wait("1m")
    assert f"New revision detected! Scaling up {TARGET}" in messages(mesh, start)[n:]


def test_progress_deadline_rolls_an_unschedulable_canary_back(upstream_flagger):
    mesh = lab3(5, upstream_flagger)
    start = mesh.clock.t
    # a revision no node can run (nodeSelector matches no node): its pods stay Pending
    mesh.patch("deploy", "podinfo", {"spec": {"template": {"spec": {"nodeSelector": {"disktype": "ssd"}}}}},
               namespace="test")
    mesh.wait_for(pg.finished, timeout="10m")
    got = messages(mesh, start)
    assert got[0] == f"New revision detected! Scaling up {TARGET}"
    waits = [m for m in got if m.startswith(f"canary deployment {TARGET} not ready: waiting for rollout to finish")]
    assert waits, "retriable readiness errors are Warnings that cost no failed check"
    assert got[-2:] == [f'Rolling back {TARGET} progress deadline exceeded canary deployment {TARGET} not ready: '
                        'deployment "podinfo" exceeded its progress deadline', f"Canary failed! Scaling down {TARGET}"]
    assert mesh.canary("podinfo", "test")["status"]["phase"] == "Failed"


def test_custom_404_metric_template_rolls_back(upstream_flagger):
    mesh = lab3(6, upstream_flagger)
    mesh.apply("podinfo/flagger/metric-templates.yml")
    metrics = mesh.canary("podinfo", "test")["spec"]["analysis"]["metrics"] + [
        {"name": "404s percentage", "templateRef": {"name": "not-found-percentage", "namespace": "test"},
         "thresholdRange": {"max": 3}, "interval": "1m"}]
    mesh.patch("canary", "podinfo", {"spec": {"analysis": {"metrics": metrics}}}, namespace="test")
    start = mesh.clock.t
    pg.release(mesh, image="ghcr.io/stefanprodan/podinfo:6.0.3")
    mesh.wait_for(lambda m: m.canary("podinfo", "test")["status"]["phase"] == "Progressing", every="1s")
    mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/status/404", namespace="test")
    mesh.wait_for(pg.finished, timeout="30m")
    warnings = messages(mesh, start, "Warning")
    assert len(warnings) == 7
    assert all(re.fullmatch(r"Halt podinfo\.test advancement 404s percentage \d+\.\d\d > 3", w) for w in warnings[:5])
    assert warnings[5:] == [f"Rolling back {TARGET} failed checks threshold reached 5", f"Canary failed! Scaling down {TARGET}"]
    seen = [c.value for t in ticks_since(mesh, start) for c in t.checks if c.metric == "404s percentage"]
    assert seen and all(v > 3 for v in seen)


def test_gatewayapi_provider_drives_an_httproute_with_metric_templates(upstream_flagger):
    mesh = labkit.connect("sim", seed=7)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("90s")
    mesh.install_flagger(provider="gatewayapi:v1beta1")
    mesh.apply("podinfo/00-namespace.yml")
    mesh.apply(str(upstream_flagger), namespace="test")
    mesh.apply("podinfo/flagger/metric-templates.yml")
    mesh.wait("1m")
    mesh.apply("podinfo/flagger/canary-gatewayapi.yml")
    mesh.wait_for(lambda m: (m.canary("podinfo", "test").get("status") or {}).get("phase") == "Initialized", timeout="5m")
    route = mesh.get("httproute", "podinfo", "test")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
    assert route["spec"]["parentRefs"] == [{"name": "podinfo", "namespace": "test", "group": "core", "kind": "Service",
                                            "port": 9898}]
    assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == \
        [("podinfo-primary", 100), ("podinfo-canary", 0)]
    start = mesh.clock.t
    pg.release(mesh)
    mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/", namespace="test")
    mesh.wait("3m")
    weights = [b["weight"] for b in mesh.get("httproute", "podinfo", "test")["spec"]["rules"][0]["backendRefs"]]
    assert weights[1] > 0 and sum(weights) == 100
    mesh.exec("deploy/flagger-loadtester", "hey -z 20s -q 50 -c 1 http://podinfo.test:9898/", namespace="test")
    split = dict(zip(*mesh.query(APEX_SPLIT)[["dst_deployment", "value"]].T.values))
    assert split.get("podinfo", 0) > 0 and split.get("podinfo-primary", 0) > split.get("podinfo", 0), \
        "the HTTPRoute's weights reach the client proxies"
    mesh.wait_for(pg.finished, timeout="30m")
    assert messages(mesh, start)[-1] == f"Promotion completed! Scaling down {TARGET}"
    checks = {c.metric for t in ticks_since(mesh, start) for c in t.checks}
    assert checks == {"success-rate", "latency"}


def test_builtin_checks_with_the_gatewayapi_provider_find_no_linkerd_metrics(upstream_flagger):
    """Flagger's generic HTTP observer asks for http_request_duration_seconds_*, which Linkerd does not export."""
    mesh = labkit.connect("sim", seed=8)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("90s")
    mesh.install_flagger(provider="gatewayapi:v1beta1")
    mesh.apply("podinfo/00-namespace.yml")
    mesh.apply(str(upstream_flagger), namespace="test")
    mesh.wait("1m")
    manifest = pg.canary_manifest()
    manifest["spec"]["service"]["gatewayRefs"] = [{"name": "podinfo", "namespace": "test", "group": "core",
                                                   "kind": "Service", "port": 9898}]
    mesh.apply([manifest])
    mesh.wait_for(lambda m: (m.canary("podinfo", "test").get("status") or {}).get("phase") == "Initialized", timeout="5m")
    start = mesh.clock.t
    pg.release(mesh)
    mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/", namespace="test")
    mesh.wait_for(pg.finished, timeout="30m")
    warnings = messages(mesh, start, "Warning")
    assert warnings[0] == ("Halt advancement no values found for gatewayapi:v1beta1 metric request-success-rate "
                           f"probably {TARGET} is not receiving traffic: no values found")
    assert mesh.canary("podinfo", "test")["status"]["phase"] == "Failed"


def test_kubectl_get_canaries_and_status_fields(upstream_flagger):
    mesh = lab3(9, upstream_flagger)
    pg.release(mesh)
    mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/", namespace="test")
    mesh.wait("2m30s")
    table = canary.canaries(mesh, "test")
    assert list(table.columns) == ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    status = mesh.canary("podinfo", "test")["status"]
    row = table.iloc[0]
    assert (row["NAME"], row["STATUS"], row["WEIGHT"]) == ("podinfo", "Progressing", status["canaryWeight"])
    text = labkit.cli_text(table)
    header, line = text.splitlines()
    assert header.split() == ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    assert line.split() == ["podinfo", "Progressing", str(status["canaryWeight"]), status["lastTransitionTime"]]
    assert labkit.cli_text(canary.canaries(mesh, "*")).splitlines()[0].split()[0] == "NAMESPACE"
    assert list(status) == ["phase", "failedChecks", "canaryWeight", "iterations", "lastAppliedSpec",
                            "lastPromotedSpec", "lastTransitionTime", "conditions"]
    cond = status["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Promoted", "Unknown", "Progressing")
    assert cond["message"] == "New revision detected, progressing canary analysis."
    assert status["lastTransitionTime"] > cond["lastTransitionTime"], "every setter moves lastTransitionTime"
    print(yaml.safe_dump(status))


def test_webhooks_are_requests_from_flaggers_pod_through_the_data_plane(upstream_flagger):
    mesh = lab3(10, upstream_flagger)
    pg.release(mesh)
    mesh.wait("2m")
    metrics = mesh.proxy_metrics("deploy/flagger-loadtester", namespace="test")
    posts = [line for line in metrics.splitlines() if line.startswith("request_total{direction=\"inbound\"")]
    assert posts, "the loadtester's proxy counted Flagger's webhook calls"
    log = mesh.logs("deploy/flagger-loadtester", namespace="test")
    assert "curl -sd 'test' http://podinfo-canary.test:9898/token | grep token" in log
    assert "command starting hey -z 2m -q 10 -c 2 http://podinfo-canary.test:9898/" in log


def test_same_seed_same_analysis(upstream_flagger):
    runs = []
    for _ in range(2):
        mesh = lab3(11, upstream_flagger, error_rate=0.02)
        start = mesh.clock.t
        pg.release(mesh)
        mesh.wait_for(pg.finished, timeout="30m")
        runs.append(canary.history(mesh, "podinfo", "test", since=start))
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert runs[0]["phase"].iloc[-1] == "Failed", "2% errors break a 99% success-rate objective"


APEX_SPLIT = ('sum by (dst_deployment) (increase(response_total{namespace="test", deployment="flagger-loadtester", '
              'direction="outbound", authority="podinfo.test.svc.cluster.local:9898"}[1m]))')


def test_clients_of_the_apex_service_follow_flaggers_weights(upstream_flagger):
    """The TrafficSplit Flagger writes is honoured by the client proxies: a quarter of podinfo's calls at weight 25."""
    mesh = lab3(13, upstream_flagger)
    pg.release(mesh)
    mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/", namespace="test")
    mesh.wait_for(lambda m: m.canary("podinfo", "test")["status"]["canaryWeight"] == 25, timeout="10m", every="5s")
    mesh.patch("canary", "podinfo", {"spec": {"suspend": True}}, namespace="test")  # freeze the weights
    mesh.exec("deploy/flagger-loadtester", "hey -z 1m -q 50 -c 1 http://podinfo.test:9898/", namespace="test")
    split = dict(zip(*mesh.query(APEX_SPLIT)[["dst_deployment", "value"]].T.values))
    share = split["podinfo"] / (split["podinfo"] + split["podinfo-primary"])
    assert 0.20 < share < 0.30, split
    assert messages(mesh, 0)[-1] == "skipping canary run as object is suspended"
    weights = [b["weight"] for b in mesh.get("ts", "podinfo", "test")["spec"]["backends"]]
    assert weights == ["25", "75"], "a suspended canary stays where it is"


def gated_canary(**extra):
    manifest = pg.canary_manifest()
    manifest["spec"]["analysis"]["webhooks"] += [
        {"name": "ask-first", "type": "confirm-rollout", "url": "http://flagger-loadtester.test/gate/check"},
        {"name": "promotion-gate", "type": "confirm-promotion", "url": "http://flagger-loadtester.test/gate/check"},
        {"name": "rollback-gate", "type": "rollback", "url": "http://flagger-loadtester.test/rollback/check"}]
    manifest["spec"]["analysis"].update(extra)
    return manifest


def loadtester(mesh, path):
    body = '{"name": "podinfo", "namespace": "test"}'
    return mesh.exec("deploy/flagger-loadtester", f"curl -s -d '{body}' http://localhost:8080/{path}", namespace="test")


def test_gates_hold_the_release_and_step_weight_promotion_shifts_back_gradually(upstream_flagger):
    mesh = pg.prepare(14, canary=gated_canary(stepWeightPromotion=25), upstream=str(upstream_flagger))
    start = mesh.clock.t
    pg.release(mesh)
    mesh.exec("deploy/flagger-loadtester", "watch -n 1 curl -s http://podinfo-canary.test:9898/", namespace="test")
    mesh.wait("2m")
    status = mesh.canary("podinfo", "test")["status"]
    assert status["phase"] == "Waiting" and status["conditions"][0]["message"] == "Waiting for approval."
    assert messages(mesh, start) == [f"Halt {TARGET} advancement waiting for approval ask-first"], "one Warning only"
    assert mesh.get("deploy", "podinfo", "test")["spec"]["replicas"] == 0, "nothing released while waiting"
    loadtester(mesh, "gate/open")
    mesh.wait_for(pg.finished, timeout="30m")
    got = messages(mesh, start)
    assert got[1:3] == ["Confirm-rollout check ask-first passed", f"New revision detected! Scaling up {TARGET}"]
    assert "Rollback hook rollback-gate not signaling a rollback" in got
    tail = [m for m in got if not m.startswith("Rollback hook")][-5:]
    assert tail == ["Confirm-promotion check promotion-gate passed",
                    f"Copying {TARGET} template spec to podinfo-primary.test",
                    f"Advance {TARGET} primary weight 75", f"Advance {TARGET} primary weight 100",
                    f"Promotion completed! Scaling down {TARGET}"]


def test_a_rollback_webhook_rolls_back_on_demand(upstream_flagger):
    mesh = pg.prepare(15, canary=gated_canary(), upstream=str(upstream_flagger))
    loadtester(mesh, "gate/open")
    start = mesh.clock.t
    pg.release(mesh)
    mesh.wait_for(lambda m: m.canary("podinfo", "test")["status"]["canaryWeight"] >= 10, timeout="10m", every="5s")
    loadtester(mesh, "rollback/open")
    mesh.wait_for(pg.finished, timeout="5m")
    assert messages(mesh, start)[-3:] == ["Rollback check rollback-gate passed",
                                         f"Rolling back {TARGET} manual webhook invoked",
                                         f"Canary failed! Scaling down {TARGET}"]
    assert mesh.canary("podinfo", "test")["status"]["phase"] == "Failed"


def test_changing_the_interval_restarts_the_job_at_once(upstream_flagger):
    mesh = lab3(16, upstream_flagger)
    ticks = controller_of(mesh).history.of("test", "podinfo").ticks
    before = len(ticks)
    mesh.patch("canary", "podinfo", {"spec": {"analysis": {"interval": "1m"}}}, namespace="test")
    mesh.wait("11s")  # the informer, then scheduleCanaries (every 10s) recreates the job: it runs at once
    assert len(ticks) == before + 1
    mesh.wait("2m")
    times = [t.time for t in ticks[before:]]
    assert [b - a for a, b in zip(times, times[1:])] == [60.0, 60.0]
