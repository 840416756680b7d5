"""Fault injection on the served API: malformed requests, stalled clients, close() under load, no credentials.

Every request must get a Kubernetes ``Status`` (never a dropped connection
or a hang), nothing half-applied, and ``close()`` must leave the mesh to
the notebook. Raw sockets, so each fault is exactly the bytes described.
"""
from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

import labkit
from labkit.sim.serve import tls as served_tls
from labkit.sim.serve.http import MAX_ADVANCE, MAX_BODY


@pytest.fixture(scope="module")
def served():
    mesh = labkit.connect("sim", seed=5)
    s = mesh.serve(pace=0, idle_timeout=1.0)
    yield s
    s.close()


def _raw(served, data: bytes, *, read_timeout: float = 5.0, token: bool = True) -> tuple[int | None, dict, bytes]:
    """Send ``data`` (a request; the token header is added after the request line) on a new plain connection."""
    if token and b"\r\n" in data:
        line, rest = data.split(b"\r\n", 1)
        data = line + f"\r\nAuthorization: Bearer {served.token}".encode() + b"\r\n" + rest
    with socket.create_connection((served.host, served.port), timeout=read_timeout) as sock:
        sock.sendall(data)
        return _read_response(sock)


def _read_response(sock) -> tuple[int | None, dict, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, {}, buf  # closed without an answer
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    n = int(headers.get("content-length", 0))
    while len(body) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return code, headers, body


def _status(body: bytes) -> dict:
    doc = json.loads(body)
    assert doc["kind"] == "Status" and doc["status"] == "Failure"
    return doc


def _post(path: str, body: bytes, ctype: str = "application/json", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
CLOCK = "/labkit/v1/clock"

MALFORMED = {
    "body not UTF-8": (_post(CM, b'{"metadata": {"name": "\xff\xfe"}}'), 400, "not UTF-8"),
    "body not JSON": (_post(CM, b"this is not json"), 400, "not JSON"),
    "body not YAML": (_post(CM, b"a: [unclosed", "application/yaml"), 400, "not valid YAML"),
    "body a JSON list": (_post(CM, b"[1, 2]"), 400, "must be a JSON or YAML object"),
    "metadata: [1]": (_post(CM, b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": [1]}'), 400,
                      "json: cannot unmarshal array into Go struct field ConfigMap.metadata of type v1.ObjectMeta"),
    "spec: hello": (_post(DEPLOY, b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, '
                                  b'"spec": "hello"}'), 400,
                    'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into '
                    'Go struct field Deployment.spec of type v1.DeploymentSpec'),
    "Content-Length: abc": (b"POST " + CM.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
                            400, "Content-Length"),
    "Content-Length: -1": (b"POST " + CM.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
                           400, "Content-Length"),
    "declared 100 GB body": (b"POST " + CM.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n{",
                             413, "Request entity too large"),
    "body over 3 MiB": (_post(CM, b"{" + b" " * MAX_BODY + b"}"), 413, "Request entity too large"),
    "protobuf of an unknown kind": (_post(CM, b"k8s\x00\x0a\x0e\x0a\x02v1\x12\x08Endpoint\x12\x00",
                                          "application/vnd.kubernetes.protobuf"), 415, "Endpoint"),
    "text/plain body": (_post(CM, b"name=x", "text/plain"), 415, "unknown format"),
    "watch timeoutSeconds=abc": (b"GET /api/v1/pods?watch=true&timeoutSeconds=abc HTTP/1.1\r\nHost: x\r\n\r\n",
                                 400, "timeoutSeconds"),
    "logs tailLines=-3": (b"GET /api/v1/namespaces/default/pods/p/log?tailLines=-3 HTTP/1.1\r\nHost: x\r\n\r\n",
                          400, "tailLines"),
    'clock advance "x"': (_post(CLOCK, b'{"advance": "x"}'), 400, "finite number"),
    "clock advance NaN": (_post(CLOCK, b'{"advance": NaN}'), 400, "finite number"),
    "clock advance Infinity": (_post(CLOCK, b'{"advance": Infinity}'), 400, "finite number"),
    "clock advance -1": (_post(CLOCK, b'{"advance": -1}'), 400, "finite number"),
    "clock advance 1e6": (_post(CLOCK, b'{"advance": 1e6}'), 400, f"at most {MAX_ADVANCE:.0f}"),
    "clock body a list": (_post(CLOCK, b"[1]"), 400, "JSON object"),
    "linkerd argv not a list": (_post("/labkit/v1/linkerd", b'{"argv": "check"}'), 400, "argv"),
    "unknown method": (b"BREW /version HTTP/1.1\r\nHost: x\r\n\r\n", 405, "BREW"),
    "POST /version": (_post("/version", b"{}"), 405, "does not allow"),
    "unknown path": (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404, "could not find"),
    "garbage request line": (b"\x01\x02\x03 nonsense\r\n\r\n", 400, ""),
    "scale of a ConfigMap": (b"GET /api/v1/namespaces/default/configmaps/x/scale HTTP/1.1\r\nHost: x\r\n\r\n", 404, ""),
    "scale of a missing Deployment": (
        b"PUT /apis/apps/v1/namespaces/default/deployments/web/scale HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 61\r\n\r\n"
        b'{"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": {}}', 404, "web"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_every_malformed_request_gets_a_status_answer_and_changes_nothing(served, case):
    data, code, words = MALFORMED[case]
    before = (served.mesh.cluster.revision, served.mesh.clock.t)
    got, headers, body = _raw(served, data)
    assert got == code, body[:300]
    assert words in _status(body)["message"]
    assert headers["content-type"] == "application/json"
    assert (served.mesh.cluster.revision, served.mesh.clock.t) == before


def test_a_scale_with_a_deployment_body_is_refused_and_replicas_stay(served):
    with served.lock:
        served.mesh.apply("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: sc, namespace: default}\nspec:\n"
                          "  replicas: 1\n  selector: {matchLabels: {app: sc}}\n  template:\n"
                          "    metadata: {labels: {app: sc}}\n    spec: {containers: [{name: c, image: nginx:1.25}]}\n")
    body = b'{"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"replicas": 2}}'
    got, _, answer = _raw(served, (f"PUT {DEPLOY}/sc/scale HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    assert got == 400 and "takes a Scale" in _status(answer)["message"]
    assert served.mesh.get("deploy", "sc", "default")["spec"]["replicas"] == 1
    body = b'{"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": {"replicas": 3}}'
    got, _, answer = _raw(served, (f"PUT {DEPLOY}/sc/scale HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    assert got == 200 and json.loads(answer)["kind"] == "Scale" and json.loads(answer)["spec"]["replicas"] == 3
    assert served.mesh.get("deploy", "sc", "default")["spec"]["replicas"] == 3


def test_an_error_keeps_a_keep_alive_connection_usable_when_the_body_was_read(served):
    with socket.create_connection((served.host, served.port), timeout=5) as sock:
        auth = f"Authorization: Bearer {served.token}\r\n"
        for _ in range(3):
            sock.sendall(_post(CLOCK, b'{"advance": "x"}', extra=auth))
            assert _read_response(sock)[0] == 400
        sock.sendall(f"GET /version HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
        assert _read_response(sock)[0] == 200


def test_too_many_requests_in_flight_get_429_with_retry_after(served):
    original = served._server.in_flight
    served._server.in_flight = threading.BoundedSemaphore(1)
    served._server.in_flight.acquire()  # the one slot is taken
    try:
        got, headers, body = _raw(served, b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        served._server.in_flight = original
    assert got == 429 and headers["retry-after"] == "1" and _status(body)["reason"] == "TooManyRequests"


def test_idle_and_stalled_connections_are_closed_after_the_idle_timeout(served):
    for partial in (b"", b"GET /version HTTP/1.1\r\nHost:", b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n"
                                                            b"Content-Length: 10\r\n\r\n{\"a"):
        with socket.create_connection((served.host, served.port), timeout=10) as sock:
            sock.sendall(partial)
            start = time.monotonic()
            while sock.recv(65536):  # a 400/408 answer may come first; then the server closes
                pass
            assert time.monotonic() - start < 5  # idle_timeout=1.0: closed, not held forever


def test_a_tls_handshake_on_a_plain_server_is_answered_not_held():
    mesh = labkit.connect("sim", seed=1)
    with mesh.serve(pace=0, token=None, idle_timeout=2.0) as s:
        with socket.create_connection((s.host, s.port), timeout=5) as sock:
            sock.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + os.urandom(32))
            code, _, body = _read_response(sock)
        assert code == 400 and "plain HTTP" in _status(body)["message"]


def test_a_broken_tls_handshake_ends_the_connection_quickly(served):
    with socket.create_connection((served.host, served.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hello")
        start = time.monotonic()
        while sock.recv(65536):
            pass
        assert time.monotonic() - start < 4


def test_https_with_the_kubeconfig_certificate_and_token(served):
    doc = yaml.safe_load(Path(served.kubeconfig).read_text())
    cluster = doc["clusters"][0]["cluster"]
    import base64

    context = served_tls.client_context(base64.b64decode(cluster["certificate-authority-data"]))
    req = urllib.request.Request(cluster["server"] + "/version",
                                 headers={"Authorization": f"Bearer {doc['users'][0]['user']['token']}"})
    with urllib.request.urlopen(req, context=context, timeout=5) as resp:
        assert json.load(resp)["gitVersion"]
    with pytest.raises(urllib.error.URLError):  # a client that does not trust this serve's certificate
        urllib.request.urlopen(cluster["server"] + "/version", context=ssl.create_default_context(), timeout=5)


# -- authentication -------------------------------------------------------------------------------------

UNAUTHENTICATED = [
    ("GET", "/api/v1/secrets", None), ("GET", "/version", None), ("GET", "/openapi/v3", None),
    ("POST", CM, b'{"metadata": {"name": "stolen"}}'), ("DELETE", "/api/v1/namespaces/default", None),
    ("POST", CLOCK, b'{"advance": 60}'), ("POST", "/labkit/v1/linkerd", b'{"argv": ["version"]}'),
    ("GET", "/api/v1/namespaces/linkerd-viz/pods/prometheus/portforward?ports=9090", None),
    ("GET", "/api/v1/pods?watch=true", None),
]
BAD_CREDENTIALS = [None, "Bearer", "Bearer wrong-token", "Basic YWRtaW46YWRtaW4=", "bearer  "]


@pytest.mark.parametrize("method,path,body", UNAUTHENTICATED)
@pytest.mark.parametrize("credential", BAD_CREDENTIALS)
def test_requests_without_the_token_get_401_and_do_nothing(served, method, path, body, credential):
    before = (served.mesh.cluster.revision, served.mesh.clock.t)
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
    if credential:
        head += f"Authorization: {credential}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    got, _, answer = _raw(served, head.encode() + b"\r\n" + (body or b""), token=False)
    assert got == 401 and _status(answer)["reason"] == "Unauthorized"
    assert (served.mesh.cluster.revision, served.mesh.clock.t) == before


def test_the_kubeconfig_holding_the_token_is_private_and_the_token_is_fresh(served):
    mode = stat.S_IMODE(os.stat(served.kubeconfig).st_mode)
    assert mode == 0o600 and stat.S_IMODE(os.stat(Path(served.kubeconfig).parent).st_mode) & 0o077 == 0
    doc = yaml.safe_load(Path(served.kubeconfig).read_text())
    assert doc["users"][0]["user"]["token"] == served.token and len(served.token) >= 40
    other = labkit.connect("sim", seed=5).serve(pace=0)
    try:
        assert other.token != served.token
    finally:
        other.close()


def test_the_linkerd_stand_in_uses_the_kubeconfig_token(served):
    import subprocess

    out = subprocess.run([served.linkerd, "--kubeconfig", served.kubeconfig, "version", "--client"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Client version:" in out.stdout


# -- close() ----------------------------------------------------------------------------------------------

def test_close_ends_keep_alive_connections_watches_and_an_in_flight_advance():
    from conftest import meshed_app

    # the books app's traffic makes an hour's advance take seconds of wall time, so close() meets it mid-way
    mesh = meshed_app("booksapp", namespace="booksapp", seed=2, wait="1m")
    t_before = mesh.clock.t
    s = mesh.serve(pace=0)
    auth = f"Authorization: Bearer {s.token}\r\n"
    keep = []
    for _ in range(5):  # keep-alive connections that already served a request
        sock = socket.create_connection((s.host, s.port), timeout=10)
        sock.sendall(f"GET /version HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
        assert _read_response(sock)[0] == 200
        keep.append(sock)
    watch = socket.create_connection((s.host, s.port), timeout=10)
    watch.sendall(f"GET /api/v1/pods?watch=true HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
    assert watch.recv(100).startswith(b"HTTP/1.1 200")
    advance = socket.create_connection((s.host, s.port), timeout=30)
    advance.sendall(_post(CLOCK, json.dumps({"advance": MAX_ADVANCE}).encode(), extra=auth))
    time.sleep(0.3)  # the advance is running, slice by slice
    assert s._server.open_connections() >= 7
    start = time.monotonic()
    s.close()
    took = time.monotonic() - start
    t_closed = mesh.clock.t
    assert took < 10 and s._server.open_connections() == 0
    assert not s._thread.is_alive() and not s._pacer.is_alive()  # and no connection thread is left (above)
    for sock in keep:  # a request on an old keep-alive connection is not served
        try:
            sock.sendall(_post(CM, b'{"metadata": {"name": "after-close"}}', extra=auth))
            assert sock.recv(100) == b""
        except OSError:
            pass
        sock.close()
    watch.close()
    advance.close()
    time.sleep(0.3)
    assert mesh.clock.t == t_closed < t_before + MAX_ADVANCE  # the advance stopped with close()
    with pytest.raises(Exception):
        mesh.get("ConfigMap", "after-close", namespace="default")
    mesh.wait("10s")  # and the mesh is the notebook's again
    assert mesh.clock.t == t_closed + 10


def test_delete_watch_events_carry_a_growing_resource_version(served):
    sock = socket.create_connection((served.host, served.port), timeout=10)
    sock.sendall(f"GET {CM}?watch=true&resourceVersion=1 HTTP/1.1\r\nHost: x\r\n"
                 f"Authorization: Bearer {served.token}\r\n\r\n".encode())
    buf = sock.recv(65536)  # the watch has started (its answer began) before anything changes
    assert buf.startswith(b"HTTP/1.1 200")
    with served.lock:
        for i in range(3):
            served.mesh.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w{i}", "namespace": "default"}})
        for i in range(3):
            served.mesh.delete(f"configmap/w{i}", namespace="default")
    events = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(1 for e in events if e["type"] == "DELETED") < 3:
        buf += sock.recv(65536)
        for line in buf.split(b"\n"):
            if line.startswith(b"{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass
        buf = buf[buf.rfind(b"\n") + 1:] if b"\n" in buf else buf
        events = list({(e["type"], e["object"]["metadata"]["name"]): e for e in events}.values())
    sock.close()
    mine = [e for e in events if e["object"]["metadata"]["name"].startswith("w")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in mine]
    assert [e["type"] for e in mine] == ["ADDED"] * 3 + ["DELETED"] * 3
    assert rvs == sorted(rvs) and len(set(rvs)) == 6


def test_the_kube_backend_advances_a_long_wait_in_bounded_steps():
    mesh = labkit.connect("sim", seed=4)
    with mesh.serve(pace=0) as s:
        kube = labkit.connect("kube", context=s.context, kubeconfig=s.kubeconfig)
        start = mesh.clock.t
        kube.wait("2h30m")  # 9,000 s: three requests of at most MAX_ADVANCE
        assert mesh.clock.t == start + 9000
