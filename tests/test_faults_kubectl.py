"""kubectl's everyday commands, run by the real kubectl against the served mesh (locked, over TLS)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import free_port, meshed_app

KUBECTL = "kubectl"  # the kubectl_bin fixture's path, set when the module's served mesh starts


@pytest.fixture(scope="module")
def served(kubectl_bin):
    global KUBECTL
    KUBECTL = kubectl_bin
    mesh = meshed_app(wait="1m")
    s = mesh.serve(pace=0)
    yield mesh, s
    s.close()


def kubectl(s, *args, ok: bool = True, kubeconfig: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": kubeconfig or s.kubeconfig}
    out = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def test_create_namespace_configmap_secret_serviceaccount_deployment(served):
    mesh, s = served
    assert kubectl(s, "create", "ns", "lab15").stdout == "namespace/lab15 created\n"
    assert "configmap/c1 created" in kubectl(s, "create", "cm", "c1", "--from-literal=a=b", "-n", "lab15").stdout
    assert "secret/s1 created" in kubectl(s, "create", "secret", "generic", "s1", "--from-literal=p=q",
                                         "-n", "lab15").stdout
    assert "serviceaccount/robot created" in kubectl(s, "create", "sa", "robot", "-n", "lab15").stdout
    assert "deployment.apps/web2 created" in kubectl(s, "create", "deployment", "web2", "--image=nginx:1.25",
                                                    "--replicas=2", "--port=80", "-n", "lab15", "--", "nginx",
                                                    "-g", "daemon off;").stdout
    with s.lock:
        assert mesh.get("ConfigMap", "c1", "lab15")["data"] == {"a": "b"}
        assert mesh.get("Secret", "s1", "lab15")["data"] == {"p": "cQ=="}
        assert mesh.get("ServiceAccount", "robot", "lab15")["metadata"]["name"] == "robot"
        deploy = mesh.get("Deployment", "web2", "lab15")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert deploy["spec"]["replicas"] == 2 and deploy["spec"]["selector"]["matchLabels"] == {"app": "web2"}
    assert container["image"] == "nginx:1.25" and container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["command"] == ["nginx", "-g", "daemon off;"]
    again = kubectl(s, "create", "ns", "lab15", ok=False)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr


def test_scale_changes_replicas_through_a_real_scale_subresource(served):
    mesh, s = served
    kubectl(s, "create", "deployment", "sc", "--image=nginx:1.25", "-n", "default")
    assert "deployment.apps/sc scaled" in kubectl(s, "scale", "deploy/sc", "--replicas=3").stdout
    with s.lock:
        assert mesh.get("Deployment", "sc", "default")["spec"]["replicas"] == 3
    refused = kubectl(s, "scale", "deploy/sc", "--replicas=4", "--current-replicas=5", ok=False)
    assert refused.returncode != 0 and "Expected replicas to be 5, was 3" in refused.stderr
    with s.lock:
        assert mesh.get("Deployment", "sc", "default")["spec"]["replicas"] == 3
    scale = json.loads(kubectl(s, "get", "--raw", "/apis/apps/v1/namespaces/default/deployments/sc/scale").stdout)
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1" and scale["spec"]["replicas"] == 3


def test_auth_can_i(served):
    _, s = served
    assert kubectl(s, "auth", "can-i", "create", "pods").stdout.strip() == "yes"
    assert kubectl(s, "auth", "can-i", "delete", "deployments", "-n", "emojivoto").stdout.strip() == "yes"
    listing = kubectl(s, "auth", "can-i", "--list").stdout
    assert "*.*" in listing and "[*]" in listing


def test_explain_reads_the_served_openapi(served):
    _, s = served
    out = kubectl(s, "explain", "deployment").stdout
    assert "KIND:       Deployment" in out and "GROUP:      apps" in out and "replicas" not in out.split("FIELDS:")[0]
    field = kubectl(s, "explain", "deployment.spec.replicas").stdout
    assert "FIELD: replicas <integer>" in field and "Number of desired pods" in field  # 1.32's description
    assert "KIND:       ConfigMap" in kubectl(s, "explain", "cm").stdout
    assert "KIND:       ServiceProfile" in kubectl(s, "explain", "serviceprofiles").stdout  # a CRD the mesh serves
    # and apply still computes its patches from its own metadata (no warning, containers merged by name)
    kubectl(s, "apply", "-f", "manifests/emojivoto/web.yml")
    again = kubectl(s, "apply", "-f", "manifests/emojivoto/web.yml")
    assert again.stdout.count("unchanged") == 3 and "warning" not in again.stderr.lower()


def test_logs_of_the_proxy_container(served):
    mesh, s = served
    out = kubectl(s, "logs", "deploy/web", "-n", "emojivoto", "-c", "linkerd-proxy").stdout
    assert "linkerd2_proxy: Admin interface on 0.0.0.0:4191" in out
    assert "Local identity is web.emojivoto.serviceaccount.identity.linkerd.cluster.local" in out
    with s.lock:
        assert mesh.logs("deploy/web", namespace="emojivoto", container="linkerd-proxy") == out
    tail = kubectl(s, "logs", "deploy/web", "-n", "emojivoto", "-c", "linkerd-proxy", "--tail=1").stdout
    assert tail.count("\n") == 1 and "Certified identity" in tail


@pytest.mark.parametrize("target,remote,path,expect", [
    ("svc/web-svc", 80, "/api/list", ":doughnut:"),
    ("deploy/voting", 4191, "/metrics", "# TYPE response_total counter"),
])
def test_port_forward_to_a_modelled_app(served, target, remote, path, expect):
    _, s = served
    port = free_port()
    env = {**os.environ, "KUBECONFIG": s.kubeconfig}
    proc = subprocess.Popen([KUBECTL, "port-forward", "-n", "emojivoto", target, f"{port}:{remote}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert "Forwarding from 127.0.0.1" in proc.stdout.readline()
        bodies = []
        for _ in range(3):  # several connections over one port-forward session
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
                bodies.append(resp.read().decode())
        assert all(expect in body for body in bodies)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "lost connection" not in proc.stderr.read()


def test_port_forward_to_a_port_nothing_listens_on_says_so(served):
    _, s = served
    port = free_port()
    env = {**os.environ, "KUBECONFIG": s.kubeconfig}
    proc = subprocess.Popen([KUBECTL, "port-forward", "-n", "emojivoto", "deploy/web", f"{port}:9999"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert "Forwarding from" in proc.stdout.readline()
        with pytest.raises(Exception):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "connection refused" in proc.stderr.read()


def test_kubectl_without_the_token_is_refused(served, tmp_path):
    mesh, s = served
    doc = yaml.safe_load(Path(s.kubeconfig).read_text())
    for name, user in (("none", {}), ("wrong", {"token": "not-the-token"})):
        doc["users"][0]["user"] = user
        path = tmp_path / f"kubeconfig-{name}"
        path.write_text(yaml.safe_dump(doc))
        before = mesh.cluster.revision
        out = kubectl(s, "create", "ns", f"intruder-{name}", ok=False, kubeconfig=str(path))
        # no credential: kubectl asks for a username (stdin is empty); a wrong one: the server's 401
        assert out.returncode != 0 and ("Unauthorized" in out.stderr if name == "wrong" else "Username" in out.stdout)
        out = kubectl(s, "get", "secrets", "-A", ok=False, kubeconfig=str(path))
        assert out.returncode != 0 and "Opaque" not in out.stdout and "linkerd" not in out.stdout
        assert mesh.cluster.revision == before


def test_a_huge_websocket_frame_on_a_port_forward_ends_the_stream_not_the_server(served):
    import base64
    import struct

    mesh, s = served
    with s.lock:
        pod = mesh.pods(namespace="emojivoto")["NAME"].iloc[0]
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((s.host, s.port), timeout=10) as sock:
        sock.sendall((f"GET /api/v1/namespaces/emojivoto/pods/{pod}/portforward?ports=8080 HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {s.token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n").encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 101")
        sock.sendall(bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 40) + b"\0\0\0\0")  # a 1 TiB binary frame
        sock.settimeout(5)
        while sock.recv(65536):
            pass  # the server ends the stream (after its channel headers) instead of buffering a terabyte
    assert not [e for e in s.errors if "MemoryError" in e]
    assert "deployment.apps/web" in kubectl(s, "get", "deploy", "-n", "emojivoto", "-o", "name").stdout
