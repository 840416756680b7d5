"""`linkerd check` on the embedded mesh: categories and results computed from the cluster's state."""
from __future__ import annotations

import pytest

import labkit
from labkit import cli_text
from labkit.sim import linkerd as l5d


def categories(report):
    return [name for name, _ in report.categories] + [name for name, _ in report.extensions]


def check_named(report, description, category=None):
    found = [c for name, c in report.checks() if c.description == description and (category is None or name == category)]
    assert found, f"no check {description!r} in {categories(report)}"
    return found[0]


@pytest.fixture
def fresh():
    return labkit.connect("sim", seed=31)


@pytest.fixture(scope="module")
def installed():
    mesh = labkit.connect("sim", seed=32)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=True)
    mesh.wait("3m")
    return mesh


def test_pre_check_passes_before_install(fresh):
    report = fresh.check(pre=True)
    assert report.ok
    assert categories(report) == ["kubernetes-api", "kubernetes-version", "pre-kubernetes-setup", "linkerd-version"]
    assert check_named(report, "control plane namespace does not already exist").status == "ok"
    text = cli_text(report)
    assert "pre-kubernetes-setup\n--------------------\n√ control plane namespace does not already exist\n" in text
    assert text.rstrip().endswith("Status check results are √")
    assert fresh.cluster.last_command == "linkerd check --pre"


def test_check_before_install_fails_fatally_with_a_hint(fresh):
    report = fresh.check()
    assert not report.ok
    failed = report.failed()
    assert len(failed) == 1
    assert failed[0].description == "'linkerd-config' config map exists"
    assert failed[0].message == 'configmaps "linkerd-config" not found'
    assert failed[0].hint_anchor == "l5d-existence-linkerd-config"
    assert categories(report) == ["kubernetes-api", "kubernetes-version", "linkerd-existence"], "a fatal failure ends the run"
    text = cli_text(report)
    assert "× 'linkerd-config' config map exists\n    configmaps \"linkerd-config\" not found\n" \
           "    see https://linkerd.io/2/checks/#l5d-existence-linkerd-config for hints" in text
    assert text.rstrip().endswith("Status check results are ×")


def test_check_right_after_install_reports_pods_not_ready(fresh):
    fresh.install_gateway_api()
    fresh.install_linkerd(viz=False)
    report = fresh.check()
    assert not report.ok
    failed = report.failed()[0]
    assert failed.description == "control plane pods are ready"
    assert failed.message.startswith('No running pods for "linkerd-') or "is not ready" in failed.message
    fresh.wait("15s")
    report = fresh.check()
    assert not report.ok


def test_pre_check_after_install_fails_on_the_namespace(installed):
    report = installed.check(pre=True)
    assert not report.ok
    check = check_named(report, "control plane namespace does not already exist")
    assert check.status == "fail" and check.message == 'The "linkerd" namespace already exists'
    assert check.hint_anchor == "pre-ns"


def test_check_passes_once_the_control_plane_and_viz_are_up(installed):
    report = installed.check()
    assert report.ok, cli_text(report)
    assert not report.warnings()
    assert categories(report) == [
        "kubernetes-api", "kubernetes-version", "linkerd-existence", "linkerd-config", "linkerd-identity",
        "linkerd-webhooks-and-apisvc-tls", "linkerd-version", "control-plane-version", "linkerd-control-plane-proxy",
        "linkerd-extension-checks", "linkerd-viz"]
    text = cli_text(report)
    assert "Linkerd extensions checks" in text and "√ viz extension self-check" in text
    assert text.rstrip().endswith("Status check results are √")


def test_viz_checks_follow_viz_state():
    mesh = labkit.connect("sim", seed=33)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("2m")
    report = mesh.check()
    assert report.ok and "linkerd-viz" not in categories(report), "no viz: no viz category"
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=True)
    mesh.wait("2s")
    report = mesh.check()
    assert not report.ok
    assert [c.description for c in report.failed()] == ["viz extension self-check"]
    viz = dict(report.extensions)["linkerd-viz"]
    statuses = {c.description: c.status for c in viz}
    assert statuses["viz extension pods are running"] == "warn"
    mesh.wait("2m")
    assert mesh.check().ok and not mesh.check().warnings()


def test_check_proxy_adds_the_data_plane_categories(installed):
    installed.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "annotations": {"linkerd.io/inject": "enabled"}}}])
    installed.apply([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
                      "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "ghcr.io/buoyantio/emojivoto-web:v11"}]}}}}])
    report = installed.check(proxy=True, namespace="shop")
    assert installed.cluster.last_command == "linkerd -n shop check --proxy"
    assert not report.ok
    assert check_named(report, "data plane proxies are ready").message == 'No "linkerd-proxy" containers found in the "shop" namespace'
    installed.wait("60s")
    report = installed.check(proxy=True, namespace="shop")
    assert report.ok, cli_text(report)
    names = categories(report)
    for category in ("linkerd-identity-data-plane", "linkerd-data-plane", "linkerd-viz-data-plane"):
        assert category in names
    assert check_named(report, "data plane proxy metrics are present in Prometheus").status == "ok"
    assert check_named(installed.check(proxy=True, namespace="nowhere"), "data plane namespace exists").message == \
        'The "nowhere" namespace does not exist'


def test_outdated_proxy_gives_the_version_warning(installed):
    installed.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "old"}}])
    installed.apply([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "old"},
                      "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                          "metadata": {"labels": {"app": "web"}, "annotations": {"linkerd.io/inject": "enabled",
                                                                                 "config.linkerd.io/proxy-version": "edge-25.3.1"}},
                          "spec": {"containers": [{"name": "web", "image": "ghcr.io/buoyantio/emojivoto-web:v11"}]}}}}])
    installed.wait("60s")
    report = installed.check(proxy=True, namespace="old")
    assert report.ok, "warnings do not fail linkerd check"
    up_to_date = check_named(report, "data plane is up-to-date")
    assert up_to_date.status == "warn"
    pod = installed.cluster.list("pod", "old")[0]["metadata"]["name"]
    assert up_to_date.message == f"some proxies are not running the current version:\n\t* {pod} (edge-25.3.1)"
    assert up_to_date.hint_anchor == "l5d-data-plane-version"
    cli = check_named(report, "data plane and cli versions match")
    assert cli.status == "warn" and cli.message == f"{pod} running edge-25.3.1 but cli running {l5d.LINKERD_VERSION}"
    assert "‼ data plane is up-to-date" in cli_text(report)


def test_pre_and_proxy_do_not_combine(fresh):
    with pytest.raises(ValueError):
        fresh.check(pre=True, proxy=True)
