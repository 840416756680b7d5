"""The served embedded mesh: Kubernetes REST + streaming, the viz Prometheus over a port-forward, the CLI stand-in.

Clients are the real ones: the ``kubernetes`` Python client (typed APIs,
``watch``, ``stream`` for exec and port-forward), plain HTTP for the
documents, the ``linkerd`` stand-in as a subprocess, and ``kubectl`` when a
recent one is on PATH.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

import labkit
from labkit.sim import linkerd as l5d
from labkit.sim.serve import serve
from conftest import meshed_app

pytest.importorskip("kubernetes")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def served():
    """An embedded mesh with Linkerd, viz and emojivoto (meshed, with traffic), served with a stopped clock."""
    mesh = meshed_app("emojivoto", wait="3m")
    s = serve(mesh, pace=0)
    yield s
    s.close()


@pytest.fixture(scope="module")
def api(served):
    from kubernetes import client, config

    return config.new_client_from_config(config_file=served.kubeconfig, context=served.context), client


def get(served, path: str, accept: str | None = None):
    headers = {"Authorization": f"Bearer {served.token}", **({"Accept": accept} if accept else {})}
    req = urllib.request.Request(served.url + path, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


# -- the object serve() returns ------------------------------------------------------------------------

def test_serve_returns_url_kubeconfig_context_and_closes(tmp_path):
    mesh = labkit.connect("sim", seed=3)
    s = mesh.serve()
    try:
        assert s.url.startswith("http://127.0.0.1:") and s.context == "labkit-embedded"
        doc = yaml.safe_load(Path(s.kubeconfig).read_text())
        cluster = doc["clusters"][0]["cluster"]
        assert cluster["server"] == s.https_url == s.url.replace("http://", "https://")
        ext = cluster["extensions"][0]
        assert ext["name"] == "labkit.dev/embedded-mesh" and ext["extension"]["linkerd"] == s.linkerd
        assert os.access(s.linkerd, os.X_OK)
        assert get(s, "/version")["gitVersion"] == "v1.32.2"
    finally:
        s.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(s.url + "/version", timeout=2)
    assert not Path(s.kubeconfig).exists()


def test_the_clock_runs_in_real_time_or_paced_while_served():
    mesh = labkit.connect("sim", seed=0)
    with serve(mesh, pace=100) as s:
        start = get(s, "/labkit/v1/clock")["now"]
        time.sleep(0.7)
        moved = get(s, "/labkit/v1/clock")["now"] - start
        assert 30 < moved < 150  # ~70 virtual seconds
    mesh = labkit.connect("sim", seed=0)
    with serve(mesh, pace=0) as s:
        start = get(s, "/labkit/v1/clock")["now"]
        time.sleep(0.5)
        assert get(s, "/labkit/v1/clock")["now"] == start
        req = urllib.request.Request(s.url + "/labkit/v1/clock", data=b'{"advance": 90}', method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {s.token}"})
        assert json.load(urllib.request.urlopen(req))["now"] == start + 90


# -- discovery and reads ----------------------------------------------------------------------------------

def test_discovery_lists_builtin_kinds_and_the_installed_crds(served):
    assert get(served, "/api")["versions"] == ["v1"]
    core = {r["name"]: r for r in get(served, "/api/v1")["resources"]}
    assert core["pods"]["namespaced"] and {"pods/log", "pods/exec", "pods/portforward", "events"} <= set(core)
    groups = {g["name"]: g for g in get(served, "/apis")["groups"]}
    assert {"apps", "linkerd.io", "policy.linkerd.io", "gateway.networking.k8s.io"} <= set(groups)
    assert "split.smi-spec.io" not in groups, "TrafficSplit is the linkerd-smi extension's, not installed here"
    sp = get(served, "/apis/linkerd.io/v1alpha2")["resources"]
    assert any(r["kind"] == "ServiceProfile" and "sp" in r.get("shortNames", []) for r in sp)


def test_the_kubernetes_client_lists_pods_and_reads_objects(served, api):
    api_client, client = api
    core = client.CoreV1Api(api_client)
    pods = core.list_namespaced_pod("emojivoto").items
    assert sorted({p.metadata.labels["app"] for p in pods}) == ["emoji-svc", "vote-bot", "voting-svc", "web-svc"]
    assert all(p.status.phase == "Running" for p in pods)
    deploy = client.AppsV1Api(api_client).read_namespaced_deployment("web", "emojivoto")
    assert deploy.spec.template.metadata.annotations["linkerd.io/inject"] == "enabled"
    selected = core.list_namespaced_pod("emojivoto", label_selector="app in (web-svc,voting-svc),app!=voting-svc").items
    assert [p.metadata.labels["app"] for p in selected] == ["web-svc"]
    assert core.list_pod_for_all_namespaces(field_selector="metadata.namespace=linkerd").items


def test_server_side_tables_are_what_kubectl_get_prints(served):
    table = get(served, "/api/v1/namespaces/emojivoto/pods", accept="application/json;as=Table;v=v1;g=meta.k8s.io")
    assert table["kind"] == "Table"
    cols = [c["name"] for c in table["columnDefinitions"]]
    assert cols[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert all(row["cells"][1] == "2/2" and row["cells"][2] == "Running" for row in table["rows"])
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_errors_are_api_statuses(served, api):
    from kubernetes.client.rest import ApiException

    api_client, client = api
    core = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("nope", "emojivoto")
    assert err.value.status == 404 and json.loads(err.value.body)["reason"] == "NotFound"
    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "race"}, "data": {"a": "1"}})
    stale = cm.to_dict()
    core.patch_namespaced_config_map("race", "default", {"data": {"a": "2"}})
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("race", "default", {**api_client.sanitize_for_serialization(cm),
                                                               "data": {"a": "3"}})
    assert err.value.status == 409 and "has been modified" in json.loads(err.value.body)["message"]
    assert stale["metadata"]["resource_version"] != core.read_namespaced_config_map("race", "default").metadata.resource_version
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "race"}})
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(api_client).create_namespaced_deployment(
            "default", {"metadata": {"name": "bad"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
                                                             "template": {"metadata": {"labels": {"a": "b"}},
                                                                          "spec": {"containers": []}}}})
    assert err.value.status == 422
    core.delete_namespaced_config_map("race", "default")


def test_watch_streams_pod_and_event_changes(served, api):
    from kubernetes import watch

    api_client, client = api
    core = client.CoreV1Api(api_client)
    seen: list = []

    def follow():
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_pod, "emojivoto", timeout_seconds=5):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=follow)
    thread.start()
    time.sleep(0.5)
    victim = sorted(p.metadata.name for p in core.list_namespaced_pod("emojivoto").items)[0]
    core.delete_namespaced_pod(victim, "emojivoto")
    with served.lock:
        served.mesh.wait("40s")  # graceful termination, then the ReplicaSet's replacement
    served.changed.set()
    thread.join(10)
    kinds = {t for t, _ in seen}
    assert {"ADDED", "MODIFIED", "DELETED"} <= kinds
    assert ("DELETED", victim) in seen
    events = core.list_namespaced_event("emojivoto").items
    assert any(e.reason == "Killing" or e.reason == "SuccessfulCreate" for e in events)


# -- exec, logs, port-forward ---------------------------------------------------------------------------

def test_exec_and_logs_through_the_kubernetes_client(served, api):
    from kubernetes.stream import stream

    api_client, client = api
    core = client.CoreV1Api(api_client)
    pod = next(p.metadata.name for p in core.list_namespaced_pod("emojivoto", label_selector="app=vote-bot").items)
    out = stream(core.connect_get_namespaced_pod_exec, pod, "emojivoto", container="vote-bot",
                 command=["sh", "-c", "curl -s -o /dev/null -w '%{http_code}' http://web-svc.emojivoto:80/"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out.strip() == "200"
    logs = core.read_namespaced_pod_log(pod, "emojivoto", container="vote-bot", tail_lines=2)
    assert len(logs.splitlines()) == 2 and "Voting for" in logs
    # 2.20's proxy is a native sidecar (an init container): the meshed pod has one container, which the API
    # server then picks without being told (with several it would refuse to guess)
    assert "Voting for" in core.read_namespaced_pod_log(pod, "emojivoto", tail_lines=2)


def test_prometheus_answers_through_a_port_forward_like_the_real_viz_one(served):
    """The kube backend's own Prometheus client, through the kubernetes client's port-forward."""
    from labkit.kube.client import KubeClient
    from labkit.kube.prometheus import PrometheusClient

    prom = PrometheusClient(KubeClient(served.context, served.kubeconfig))
    expr = 'sum(increase(response_total{direction="inbound", namespace="emojivoto"}[1m])) by (deployment, classification)'
    remote = prom.query(expr)
    with served.lock:
        local = served.mesh.query(expr)
    assert not remote.empty
    assert remote.equals(local)
    now = served.mesh.clock.t
    rng = prom.query_range("sum(rate(request_total[1m])) by (namespace)", now - 120, now, 10.0)
    with served.lock:
        assert rng.equals(served.mesh.query_range("sum(rate(request_total[1m])) by (namespace)", now - 120, now, "10s"))
    body = prom.get("/api/v1/query", {"query": "sum(request_total)"})
    assert body["status"] == "success" and isinstance(body["data"]["result"][0]["value"][1], str)
    bad = prom.get("/api/v1/query", {"query": "sum(("})
    assert bad["status"] == "error" and bad["errorType"] == "bad_data"


def test_a_port_forward_to_a_port_nobody_listens_on_reports_on_the_error_channel(served, api):
    from kubernetes.stream import portforward

    api_client, client = api
    core = client.CoreV1Api(api_client)
    pod = core.list_namespaced_pod("emojivoto", label_selector="app=web-svc").items[0].metadata.name
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, "emojivoto", ports="9999")
    sock = pf.socket(9999)
    sock.settimeout(5)
    assert sock.recv(10) == b""  # closed by the error
    assert "connection refused" in pf.error(9999)
    pf.close()


def test_proxy_admin_metrics_over_a_port_forward(served, api):
    import http.client

    from kubernetes.stream import portforward

    api_client, client = api
    core = client.CoreV1Api(api_client)
    pod = core.list_namespaced_pod("emojivoto", label_selector="app=voting-svc").items[0].metadata.name
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, "emojivoto", ports="4191")
    conn = http.client.HTTPConnection("localhost", 4191, timeout=5)
    conn.sock = pf.socket(4191)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    pf.close()
    assert "# TYPE response_total counter" in body and 'direction="inbound"' in body


# -- the linkerd CLI stand-in ------------------------------------------------------------------------------

def linkerd(served, *args, stdin=None, env=None):
    return subprocess.run([served.linkerd, "--context", served.context, "--kubeconfig", served.kubeconfig, *args],
                          input=stdin, capture_output=True, text=True, timeout=60, env=env)


def test_the_cli_stand_in_answers_in_the_real_formats(served):
    from labkit.kube.linkerd_cli import parse_check_json, parse_stat_json

    version = linkerd(served, "version")
    assert version.stdout == f"Client version: {l5d.LINKERD_VERSION}\nServer version: {l5d.LINKERD_VERSION}\n"
    check = linkerd(served, "check", "--proxy", "-n", "emojivoto", "-o", "json")
    assert check.returncode == 0
    docs = [json.loads(d) for d in re.split(r"\n(?=\{)", check.stdout.strip())]
    assert docs[0]["success"] is True and docs[0]["categories"][0]["categoryName"] == "kubernetes-api"
    assert parse_check_json(check.stdout).ok
    stat = linkerd(served, "viz", "stat", "deploy", "-n", "emojivoto", "-o", "json")
    table = parse_stat_json(stat.stdout, "deploy")
    assert set(table["NAME"]) == {"emoji", "voting", "web", "vote-bot"}
    text = linkerd(served, "viz", "stat", "deploy", "-n", "emojivoto")
    assert text.stdout.splitlines()[0].split() == ["NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95",
                                                   "LATENCY_P99", "TCP_CONN"]


def test_the_cli_stand_in_injects_from_stdin_with_the_report_on_stderr(served):
    manifest = (ROOT / "manifests/emojivoto/web.yml").read_text()
    out = linkerd(served, "inject", "-", stdin=manifest)
    assert out.returncode == 0
    assert "linkerd.io/inject: enabled" in out.stdout
    assert out.stderr.startswith("\n") and 'deployment "web" injected\n' in out.stderr
    assert 'service "web-svc" skipped' in out.stderr
    metrics = linkerd(served, "diagnostics", "proxy-metrics", "-n", "emojivoto", "deploy/voting")
    assert metrics.stdout.startswith("#\n# POD voting-")


def test_the_cli_stand_in_refuses_a_real_cluster_and_says_how_to_install_the_cli(served, tmp_path):
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://10.0.0.1'}}]\n"
                      "users: [{name: u, user: {}}]\ncontexts: [{name: oke, context: {cluster: c, user: u}}]\n")
    out = subprocess.run([served.linkerd, "--context", "oke", "--kubeconfig", str(config), "check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "real cluster" in out.stderr and "run.linkerd.io/install" in out.stderr


def test_python_m_labkit_serve_prints_the_kubeconfig_and_context():
    proc = subprocess.Popen([sys.executable, "-m", "labkit", "serve", "--port", "0", "--seed", "0"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("kubeconfig: ") and lines[1] == "context: labkit-embedded\n"
        kubeconfig = lines[0].split(": ", 1)[1].strip()
        assert Path(kubeconfig).is_file()
        out = subprocess.run([sys.executable, "-m", "labkit", "linkerd", "--kubeconfig", kubeconfig, "version",
                              "--client"], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert out.stdout == f"Client version: {l5d.LINKERD_VERSION}\n"
    finally:
        proc.terminate()
        proc.wait(10)


def test_concurrent_clients_are_serialised_by_the_lock():
    mesh = labkit.connect("sim", seed=0)
    mesh.apply("emojivoto")
    errors: list = []
    with serve(mesh, pace=600) as s:
        def hammer():
            try:
                for _ in range(20):
                    get(s, "/api/v1/namespaces/emojivoto/pods")
                    get(s, "/api/v1/namespaces/emojivoto/events")
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert not errors


# -- kubectl ----------------------------------------------------------------------------------------------

def test_kubectl_gets_applies_and_deletes_against_the_served_mesh(tmp_path, kubectl_bin):
    mesh = labkit.connect("sim", seed=0)
    with serve(mesh, pace=0) as s:
        env = {**os.environ, "KUBECONFIG": s.kubeconfig}

        def kubectl(*args):
            out = subprocess.run([kubectl_bin, *args], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
            assert out.returncode == 0, out.stderr
            return out.stdout

        assert kubectl("get", "nodes").splitlines()[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        applied = kubectl("apply", "-f", "manifests/emojivoto")
        assert "namespace/emojivoto created" in applied and "deployment.apps/web created" in applied
        with s.lock:
            mesh.wait("1m")
        pods = kubectl("get", "pods", "-n", "emojivoto").splitlines()
        assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert len(pods) == 5 and all(" Running " in p for p in pods[1:])
        assert "deployment.apps/web unchanged" in kubectl("apply", "-f", "manifests/emojivoto")
        assert 'deployment.apps "vote-bot" deleted' in kubectl("delete", "-f", "manifests/emojivoto/vote-bot.yml")
        assert "vote-bot" not in kubectl("get", "deploy", "-n", "emojivoto")
        assert mesh.get("deploy", "web", "emojivoto")["metadata"]["annotations"][
            "kubectl.kubernetes.io/last-applied-configuration"]


def test_an_error_before_the_body_is_read_keeps_the_connection_usable(served):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    conn.request("POST", "/apis/nope.example/v1/namespaces/default/things", body=b'{"metadata": {"name": "x"}}',
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {served.token}"})
    resp = conn.getresponse()
    assert resp.status == 404 and json.loads(resp.read())["reason"] == "NotFound"
    conn.request("GET", "/version", headers={"Authorization": f"Bearer {served.token}"})  # same keep-alive connection
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["gitVersion"] == "v1.32.2"
    conn.close()
