"""The public manifests the labs are built around apply unchanged, and run as on a cluster.

Reads ../shared/upstream (emojivoto, booksapp, Flagger's podinfo and
loadtester). Where a file could not work on a current cluster either (an
``extensions/v1beta1`` Ingress, a bare JSON patch), the test checks the
embedded cluster refuses it the way Kubernetes does.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

import labkit
from labkit import manifests
from labkit.errors import ApplyError

UPSTREAM = Path(__file__).resolve().parents[2] / "shared" / "upstream"
pytestmark = pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"upstream manifests not found at {UPSTREAM} (../shared/upstream)")

#: Every manifest file under upstream/ and the test that covers it.
COVERED = {
    "emojivoto/ns.yml", "emojivoto/emoji.yml", "emojivoto/voting.yml", "emojivoto/web.yml", "emojivoto/vote-bot.yml",
    "emojivoto/service-profiles/emoji-svc-profile.yml", "emojivoto/service-profiles/voting-svc-profile.yml",
    "emojivoto/service-profiles/web-service-profile.yml", "emojivoto/service-profiles/web-service-profile-with-retry-budget.yml",
    "emojivoto/service-profiles/web-service-profile-with-timeout.yml",
    "emojivoto/traffic-split/100-0.yml", "emojivoto/traffic-split/75-25.yml", "emojivoto/traffic-split/web-svc-ts.yml",
    "emojivoto/traffic-split/web-apex.yml", "emojivoto/traffic-split/web-svc-2.yml", "emojivoto/traffic-split/vote-bot-update.yml",
    "emojivoto/traffic-split/nginx-ing.yml", "emojivoto/traffic-split/ingress-ts-patch.yml",
    "booksapp/booksapp.yml", "booksapp/booksapp-trafficsplit.yml",
    "flagger/podinfo-deployment.yaml", "flagger/podinfo-hpa.yaml", "flagger/tester-deployment.yaml", "flagger/tester-service.yaml",
    # the Linkerd 2.20 install goldens: tests/test_upstream_linkerd_install.py
    "linkerd/linkerd-install_crds.yaml", "linkerd/linkerd-install_crds_with_gateway_api.yaml",
    "linkerd/linkerd-install_default.yaml", "linkerd/viz-install_default.yaml",
}


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def refused_images(path: Path) -> list[str]:
    """Images in ``path`` the embedded mesh has no behaviour model for (its apply must then name them)."""
    from labkit.sim.apps import check_image

    refused = []
    for doc in manifests.load(path)[0]:
        spec = ((doc.obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            try:
                check_image(c["image"])
            except ValueError:
                refused.append(c["image"])
    return refused


def assert_all_running_and_ready(mesh, namespace_: str, expected_pods: int) -> None:
    table = mesh.pods(namespace_)
    assert len(table) == expected_pods, table
    for row in table.to_dict("records"):
        ready, total = row["READY"].split("/")
        assert row["STATUS"] == "Running" and ready == total, row


def test_every_upstream_manifest_is_covered():
    found = {str(p.relative_to(UPSTREAM)) for p in UPSTREAM.rglob("*") if p.suffix in (".yml", ".yaml", ".json")}
    assert found == COVERED, "a new upstream manifest needs a test here"


def test_emojivoto_applies_unchanged_and_runs():
    mesh = labkit.connect("sim", seed=51)
    assert mesh.apply(UPSTREAM / "emojivoto" / "ns.yml") == ["namespace/emojivoto created"]
    lines = mesh.apply(UPSTREAM / "emojivoto")
    assert sorted(line for line in lines if line.startswith("deployment")) == [
        "deployment.apps/emoji created", "deployment.apps/vote-bot created", "deployment.apps/voting created", "deployment.apps/web created"]
    mesh.wait("2m")
    assert_all_running_and_ready(mesh, "emojivoto", 4)
    assert mesh.get("svc", "web-svc", "emojivoto")["spec"]["ports"][0]["targetPort"] == 8080


def test_emojivoto_folder_before_its_namespace_fails_as_on_a_cluster():
    mesh = labkit.connect("sim", seed=51)
    with pytest.raises(ApplyError, match=r'emoji\.yml, document 1": namespaces "emojivoto" not found'):
        mesh.apply(UPSTREAM / "emojivoto")


def test_booksapp_applies_unchanged_into_its_namespace_and_runs():
    mesh = labkit.connect("sim", seed=52)
    mesh.apply([namespace("booksapp")])
    lines = mesh.apply(UPSTREAM / "booksapp" / "booksapp.yml", namespace="booksapp")
    assert "deployment.apps/webapp created" in lines and "service/webapp created" in lines
    mesh.wait("2m")
    assert_all_running_and_ready(mesh, "booksapp", 6)
    assert mesh.get("svc", "webapp", "booksapp")["spec"]["type"] == "LoadBalancer"


def test_flagger_podinfo_and_loadtester_apply_unchanged_into_test():
    mesh = labkit.connect("sim", seed=53)
    mesh.apply([namespace("test")])
    lines = mesh.apply(UPSTREAM / "flagger", namespace="test")
    assert lines == ["deployment.apps/podinfo created", "horizontalpodautoscaler.autoscaling/podinfo created",
                     "deployment.apps/flagger-loadtester created", "service/flagger-loadtester created"]
    mesh.wait("2m")
    assert_all_running_and_ready(mesh, "test", 3)  # the HPA's minReplicas: 2 podinfo pods
    assert mesh.cluster.meshed_counts("deploy", "test") == {"flagger-loadtester": (0, 1), "podinfo": (0, 2)}


def test_all_upstream_apps_together_under_a_second_of_wall_time():
    start = time.perf_counter()
    mesh = labkit.connect("sim", seed=54)
    mesh.apply(UPSTREAM / "emojivoto" / "ns.yml")
    mesh.apply(UPSTREAM / "emojivoto")
    mesh.apply([namespace("booksapp"), namespace("test")])
    mesh.apply(UPSTREAM / "booksapp" / "booksapp.yml", namespace="booksapp")
    mesh.apply(UPSTREAM / "flagger", namespace="test")
    mesh.wait("2m")
    elapsed = time.perf_counter() - start
    assert_all_running_and_ready(mesh, "emojivoto", 4)
    assert_all_running_and_ready(mesh, "booksapp", 6)
    assert_all_running_and_ready(mesh, "test", 3)
    assert elapsed < 1.0, f"apply all upstream manifests + 2 virtual minutes took {elapsed:.2f}s of wall time"


@pytest.fixture
def linkerd_mesh():
    mesh = labkit.connect("sim", seed=55)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("90s")
    return mesh


def test_service_profiles_need_linkerd_crds_then_apply_unchanged(linkerd_mesh):
    bare = labkit.connect("sim", seed=56)
    bare.apply(UPSTREAM / "emojivoto" / "ns.yml")
    with pytest.raises(ApplyError, match='no matches for kind "ServiceProfile" in version "linkerd.io/v1alpha2"'):
        bare.apply(UPSTREAM / "emojivoto" / "service-profiles")
    mesh = linkerd_mesh
    mesh.apply(UPSTREAM / "emojivoto" / "ns.yml")
    lines = mesh.apply(UPSTREAM / "emojivoto" / "service-profiles")
    assert lines == [
        "serviceprofile.linkerd.io/emoji-svc.emojivoto.svc.cluster.local created",
        "serviceprofile.linkerd.io/voting-svc.emojivoto.svc.cluster.local created",
        "serviceprofile.linkerd.io/web-svc.emojivoto.svc.cluster.local created",
        "serviceprofile.linkerd.io/web-svc.emojivoto.svc.cluster.local configured",
        "serviceprofile.linkerd.io/web-svc.emojivoto.svc.cluster.local configured",
    ]
    web = mesh.get("sp", "web-svc.emojivoto.svc.cluster.local", "emojivoto")
    # files apply in name order: ...-with-retry-budget, ...-with-timeout, then web-service-profile.yml wins,
    # and apply drops what the previous configuration had and this one does not (retryBudget, timeout)
    assert web["spec"]["routes"][1] == {"condition": {"method": "GET", "pathRegex": "/api/vote"}, "name": "GET /api/vote",
                                        "isRetryable": True}
    assert "retryBudget" not in web["spec"]
    assert web["metadata"]["generation"] == 3
    voting = mesh.get("serviceprofile", "voting-svc.emojivoto.svc.cluster.local", "emojivoto")
    assert len(voting["spec"]["routes"]) > 90


def test_traffic_split_files(linkerd_mesh):
    mesh = linkerd_mesh
    ts_dir = UPSTREAM / "emojivoto" / "traffic-split"
    mesh.install_smi()  # TrafficSplit is the linkerd-smi extension's
    mesh.apply(UPSTREAM / "emojivoto" / "ns.yml")
    mesh.apply(UPSTREAM / "emojivoto")
    assert mesh.apply(ts_dir / "web-apex.yml") == ["serviceaccount/web-apex created", "service/web-apex created"]
    assert mesh.apply(ts_dir / "web-svc-ts.yml") == ["trafficsplit.split.smi-spec.io/web-svc-ts created"]
    assert mesh.apply(ts_dir / "75-25.yml") == ["trafficsplit.split.smi-spec.io/web-svc-ts configured"]
    assert mesh.apply(ts_dir / "100-0.yml") == ["trafficsplit.split.smi-spec.io/web-svc-ts configured"]
    assert [b["weight"] for b in mesh.get("ts", "web-svc-ts", "emojivoto")["spec"]["backends"]] == [0, "1000m"]
    # the bare JSON document is a patch for the TrafficSplit, not a manifest
    with pytest.raises(ApplyError, match="apiVersion not set, kind not set"):
        mesh.apply(ts_dir / "ingress-ts-patch.yml")
    patch = manifests.load(ts_dir / "ingress-ts-patch.yml")[0][0].obj
    assert mesh.patch("trafficsplit", "web-svc-ts", patch, namespace="emojivoto")["spec"]["service"] == "web-svc"
    # extensions/v1beta1 Ingress was removed in Kubernetes 1.22: refused, exactly as a current cluster does
    with pytest.raises(ApplyError, match='no matches for kind "Ingress" in version "extensions/v1beta1"'):
        mesh.apply(ts_dir / "nginx-ing.yml")
    refused = refused_images(ts_dir / "web-svc-2.yml")
    if refused:
        with pytest.raises(ApplyError, match=refused[0].replace(".", r"\.")):
            mesh.apply(ts_dir / "web-svc-2.yml")
    else:
        assert "deployment.apps/web-svc-2 created" in mesh.apply(ts_dir / "web-svc-2.yml")
    mesh.wait("2m")
    for row in mesh.pods("emojivoto").to_dict("records"):
        ready, total = row["READY"].split("/")
        assert row["STATUS"] == "Running" and ready == total, row


def test_vote_bot_update_rolls_out_a_new_version(linkerd_mesh):
    mesh = linkerd_mesh
    mesh.apply(UPSTREAM / "emojivoto" / "ns.yml")
    mesh.apply(UPSTREAM / "emojivoto")
    mesh.wait("60s")
    with pytest.raises(ApplyError, match="spec.selector.*field is immutable"):
        mesh.apply(UPSTREAM / "emojivoto" / "traffic-split" / "vote-bot-update.yml")  # its selector says version v10


def test_booksapp_trafficsplit_variant(linkerd_mesh):
    path = UPSTREAM / "booksapp" / "booksapp-trafficsplit.yml"
    mesh = linkerd_mesh
    mesh.apply([namespace("books-mysql")])
    refused = refused_images(path)
    if refused:
        before = mesh.cluster.revision
        with pytest.raises(ApplyError) as err:
            mesh.apply(path, namespace="books-mysql")
        assert refused[0] in str(err.value)
        assert mesh.cluster.revision == before, "nothing applied"
        pytest.skip(f"images without a behaviour model in the embedded mesh: {', '.join(sorted(set(refused)))}")
    lines = mesh.apply(path, namespace="books-mysql")
    assert "job.batch/mysql-init created" in lines and "trafficsplit.split.smi-spec.io/authors-split created" in lines
    mesh.wait("2m")
    for row in mesh.pods("books-mysql").to_dict("records"):
        if row["NAME"].startswith("mysql-init-"):
            # a meshed Job never completes: the proxy keeps running after the job's container exits
            assert row["STATUS"] == "NotReady" and row["READY"] == "1/2"
        else:
            ready, total = row["READY"].split("/")
            assert row["STATUS"] == "Running" and ready == total, row
