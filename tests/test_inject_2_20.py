"""``linkerd inject`` / ``uninject`` and the proxy injector as Linkerd 2.20 behaves (written from upstream's
documented behaviour: cli/cmd/inject.go, pkg/inject/report.go, pkg/inject/uninject.go, charts/partials)."""
from __future__ import annotations

import pytest
import yaml

import labkit
from labkit.manifests import InjectError
from labkit.sim import linkerd as l5d
from labkit.sim.serve import cli


def deployment(name="web", *, pod_spec=None, annotations=None, labels=None, kind="Deployment"):
    template = {"metadata": {"labels": {"app": name, **(labels or {})}},
                "spec": pod_spec or {"containers": [{"name": name, "image": "ghcr.io/buoyantio/emojivoto-web:v11",
                                                     "ports": [{"containerPort": 8080, "name": "http"}]}]}}
    if annotations:
        template["metadata"]["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": template}}


def inject(*objs, **options):
    return labkit.inject(yaml.safe_dump_all(objs), **options)


def template_of(text: str) -> dict:
    return next(yaml.safe_load_all(text))["spec"]["template"]


def test_a_workload_is_annotated_and_reported_injected():
    out, report = inject(deployment())
    assert report == '\ndeployment "web" injected\n\n'
    assert template_of(out)["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}


@pytest.mark.parametrize("pod_spec, reason", [
    ({"hostNetwork": True, "containers": [{"name": "web", "image": "nginx"}]}, "hostNetwork is enabled"),
    ({"containers": [{"name": "web", "image": "nginx"}, {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0"}]},
     "pod has a sidecar injected already"),
    ({"initContainers": [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.22.0"}],
      "containers": [{"name": "web", "image": "nginx"}]}, "pod has a sidecar injected already"),
    ({"hostNetwork": True, "containers": [{"name": "dns", "image": "nginx", "ports": [{"containerPort": 53, "protocol": "UDP"}]}]},
     "hostNetwork is enabled, UDP port(s) configured on pod spec"),
])
def test_host_networking_and_other_meshes_sidecars_are_errors(pod_spec, reason):
    with pytest.raises(InjectError) as err:
        inject(deployment(pod_spec=pod_spec), deployment("other"))
    assert str(err.value) == f"Error transforming resources:\nfailed to inject deployment/web: {reason}"
    # the CLI stand-in: the same text on stderr, nothing on stdout, exit status 1
    mesh = labkit.connect(seed=1)
    result = cli.run(mesh, ["inject", "-"], stdin=yaml.safe_dump(deployment(pod_spec=pod_spec)))
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == f"Error transforming resources:\nfailed to inject deployment/web: {reason}"


def test_control_plane_components_need_manual():
    cp = deployment("linkerd-destination", labels={"linkerd.io/control-plane-component": "destination"})
    with pytest.raises(InjectError, match="^Error transforming resources:\n--manual must be set when injecting "
                                          "control plane components$"):
        inject(cp)


def test_an_injected_workload_is_uninjected_then_injected_again():
    mesh = labkit.connect(seed=2)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("90s")
    mesh.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}, deployment(annotations={"linkerd.io/inject": "enabled"})])
    mesh.wait("1m")
    pod = mesh.cluster.list("Pod", "shop")[0]
    assert l5d.proxy_container(pod) is not None
    live = {k: v for k, v in pod.items() if k != "status"}
    out, report = labkit.inject(yaml.safe_dump(live))
    assert report == f'\npod "{pod["metadata"]["name"]}" injected\n\n'
    again = yaml.safe_load(out)
    assert "initContainers" not in again["spec"] and [c["name"] for c in again["spec"]["containers"]] == ["web"]
    assert again["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"
    assert not any(k.startswith("linkerd.io/") for k in again["metadata"]["labels"])


def test_automount_token_false_is_fine_with_token_projection():
    spec = {"automountServiceAccountToken": False, "containers": [{"name": "nginx", "image": "nginx"}]}
    _, report = inject(deployment("nginx", pod_spec=spec))
    assert report == '\ndeployment "nginx" injected\n\n'


def test_warnings_for_disabled_and_udp_then_the_summary():
    disabled = deployment("off", annotations={"linkerd.io/inject": "disabled"})
    udp = deployment("dns", pod_spec={"containers": [{"name": "dns", "image": "nginx",
                                                      "ports": [{"containerPort": 53, "protocol": "UDP"}]}]})
    out, report = inject(disabled, udp)
    assert report == ('\n‼ "linkerd.io/inject: disabled" annotation set on deployment/off\n'
                      '‼ deployment/dns uses "protocol: UDP"\n\n'
                      'deployment "off" skipped\ndeployment "dns" injected\n\n')
    off, dns = list(yaml.safe_load_all(out))
    assert off["spec"]["template"]["metadata"]["annotations"] == {"linkerd.io/inject": "disabled"}
    assert dns["spec"]["template"]["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}


def test_documents_without_a_kind_and_lists_with_null_items():
    text = ("apiVersion: v1\nkind: List\nitems:\n"
            + "".join("- " + line + "\n" if i == 0 else "  " + line + "\n"
                      for i, line in enumerate(yaml.safe_dump(deployment()).splitlines()))
            + "- null\n---\nspec:\n  replicas: 2\n")
    out, report = labkit.inject(text)
    assert report == ('\ndeployment "web" injected\ndocument missing "kind" field, skipped\n'
                      'document missing "kind" field, skipped\n\n')
    assert yaml.safe_load_all(out) and "linkerd.io/inject: enabled" in out


def test_unsupported_kinds_only():
    _, report = inject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    assert report == '\n‼ no supported objects found\n\nconfigmap "c" skipped\n\n'


def test_uninject_keeps_config_annotations_and_an_explicit_opt_out():
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "annotations": {"linkerd.io/inject": "disabled", "config.linkerd.io/skip-outbound-ports": "4222",
                                                     "viz.linkerd.io/tap-enabled": "true"}},
           "spec": {"containers": [{"name": "app", "image": "nginx"}]}}
    out, report = labkit.uninject(yaml.safe_dump(pod))
    assert report == '\npod "p" skipped\n\n'
    assert yaml.safe_load(out)["metadata"]["annotations"] == pod["metadata"]["annotations"]
    enabled = {**pod, "metadata": {"name": "p", "annotations": {"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-cpu-limit": "1"}}}
    out, report = labkit.uninject(yaml.safe_dump(enabled))
    assert report == '\npod "p" uninjected\n\n'
    assert yaml.safe_load(out)["metadata"]["annotations"] == {"config.linkerd.io/proxy-cpu-limit": "1"}


# -- the proxy injector (webhook) ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def injected():
    """Pods admitted by the proxy injector with 2.20's override annotations (one mesh for all cases)."""
    mesh = labkit.connect(seed=5)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait("90s")
    cases = {
        "plain": {},
        "tuned": {"config.linkerd.io/admin-port": "9991", "config.linkerd.io/proxy-cpu-request": "100m",
                  "config.linkerd.io/proxy-cpu-limit": "1", "config.linkerd.io/proxy-memory-request": "20Mi",
                  "config.linkerd.io/proxy-memory-limit": "250Mi", "config.linkerd.io/proxy-log-level": "debug",
                  "config.linkerd.io/opaque-ports": "4222", "config.linkerd.io/skip-inbound-ports": "9999",
                  "config.linkerd.io/skip-outbound-ports": "3306"},
        "classic": {"config.linkerd.io/proxy-enable-native-sidecar": "false"},
        "debug": {"config.linkerd.io/enable-debug-sidecar": "true"},
    }
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}]
    for name, ann in cases.items():
        d = deployment(name, annotations={"linkerd.io/inject": "enabled", **ann})
        d["spec"]["template"]["spec"]["containers"][0]["name"] = name
        objs.append(d)
    mesh.apply(objs)
    mesh.wait("1m")
    pods = {p["metadata"]["labels"]["app"]: p for p in mesh.cluster.list("Pod", "shop")}
    return mesh, pods


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_default_proxy_is_a_native_sidecar_with_2_20s_env_probes_and_no_capabilities(injected):
    mesh, pods = injected
    pod = pods["plain"]
    init, proxy = pod["spec"]["initContainers"]
    assert (init["name"], proxy["name"]) == ("linkerd-init", "linkerd-proxy")
    assert init["image"] == proxy["image"] == f"cr.l5d.io/linkerd/proxy:{l5d.LINKERD_VERSION}", "linkerd-init runs the proxy image"
    assert proxy["restartPolicy"] == "Always" and "lifecycle" not in proxy
    assert proxy["startupProbe"]["periodSeconds"] == 1 and proxy["startupProbe"]["failureThreshold"] == 120
    assert proxy["readinessProbe"]["initialDelaySeconds"] == 2 and proxy["livenessProbe"]["initialDelaySeconds"] == 10
    assert "capabilities" not in proxy["securityContext"] and "resources" not in proxy or not proxy["resources"]
    env = env_of(proxy)
    for name in ("_pod_uid", "_pod_ip", "_pod_containerName", "LINKERD2_PROXY_CORES", "LINKERD2_PROXY_CORES_MIN",
                 "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL", "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT",
                 "LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT", "LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS"):
        assert name in env, name
    assert env["LINKERD2_PROXY_INBOUND_PORTS"] == "8080"
    assert mesh.pods("shop").set_index("NAME").filter(like="plain", axis=0)["READY"].tolist() == ["2/2"]


def test_override_annotations_reach_the_proxy_and_linkerd_init(injected):
    _, pods = injected
    pod = pods["tuned"]
    init, proxy = pod["spec"]["initContainers"]
    env = env_of(proxy)
    assert env["LINKERD2_PROXY_ADMIN_LISTEN_ADDR"] == "0.0.0.0:9991"
    assert proxy["readinessProbe"]["httpGet"]["port"] == 9991 and proxy["startupProbe"]["httpGet"]["port"] == 9991
    assert (9991, "linkerd-admin") in [(p["containerPort"], p["name"]) for p in proxy["ports"]]
    assert proxy["resources"] == {"requests": {"cpu": "100m", "memory": "20Mi"}, "limits": {"cpu": "1", "memory": "250Mi"}}
    assert env["LINKERD2_PROXY_LOG"].startswith("debug")
    assert env["LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION"] == "4222"
    args = init["args"]
    assert args[args.index("--inbound-ports-to-ignore") + 1] == "4190,9991,4567,4568,9999"
    assert args[args.index("--outbound-ports-to-ignore") + 1] == "4567,4568,3306"


def test_native_sidecar_off_puts_the_proxy_first_among_containers_and_appends_linkerd_init(injected):
    mesh, pods = injected
    pod = pods["classic"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["linkerd-init"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["linkerd-proxy", "classic"]
    proxy = pod["spec"]["containers"][0]
    assert "restartPolicy" not in proxy and "linkerd-await" in str(proxy["lifecycle"])


def test_the_debug_container_comes_last_with_its_infallible_probes(injected):
    _, pods = injected
    debug = pods["debug"]["spec"]["containers"][-1]
    assert debug["name"] == "linkerd-debug"
    assert debug["readinessProbe"]["exec"] == {"command": ["true"]}
    assert debug["livenessProbe"]["exec"]["command"] == ["true"]


def test_manual_writes_the_proxy_from_the_installed_values_and_allows_control_plane_components():
    mesh = labkit.connect(seed=9)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    result = cli.run(mesh, ["inject", "--manual", "-"], stdin=yaml.safe_dump(deployment()))
    assert result.code == 0 and result.stderr == '\ndeployment "web" injected\n\n'
    template = yaml.safe_load(result.stdout)["spec"]["template"]
    assert [c["name"] for c in template["spec"]["initContainers"]] == ["linkerd-init", "linkerd-proxy"]
    assert "linkerd.io/inject" not in template["metadata"]["annotations"]
    assert template["metadata"]["annotations"]["linkerd.io/created-by"] == f"linkerd/cli {l5d.LINKERD_VERSION}"
    assert template["metadata"]["labels"]["linkerd.io/proxy-deployment"] == "web"
    cp = deployment("linkerd-destination", labels={"linkerd.io/control-plane-component": "destination"})
    assert cli.run(mesh, ["inject", "-"], stdin=yaml.safe_dump(cp)).code == 1
    assert cli.run(mesh, ["inject", "--manual", "-"], stdin=yaml.safe_dump(cp)).code == 0
