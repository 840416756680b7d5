"""The kube backend's API client against a tiny local fake API server: the documented fault behaviour.

409 conflict, 5xx server errors, 429, a timeout and an unreachable server
each get the behaviour labkit/kube/client.py documents: retried with backoff
where that is safe, otherwise one clear error. No real cluster and no
embedded mesh here: the fake server answers what each test scripts.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("kubernetes")

from labkit.errors import ApplyError, BackendError, NotFoundError  # noqa: E402
from labkit.kube.client import Conflict, KubeClient, KubeError, Timeout, Unreachable  # noqa: E402


class FakeAPI:
    """Answers scripted responses: ``script[(method, path)]`` is a list consumed one per request."""

    def __init__(self):
        self.script: dict[tuple[str, str], list] = {}
        self.calls: list[tuple[str, str, bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                fake.calls.append((self.command, self.path, body))
                steps = fake.script.get((self.command, path)) or [(200, {"kind": "Status", "status": "Success"})]
                step = steps.pop(0) if len(steps) > 1 else steps[0]
                if step[0] == "sleep":
                    time.sleep(step[1])
                    step = (200, {"late": True})
                status, payload = step[0], step[1]
                headers = step[2] if len(step) > 2 else {}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def kubeconfig(tmp_path, server: str, name: str = "fake") -> str:
    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: someone-elses\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}, {{name: other, cluster: {{server: 'http://127.0.0.1:9'}}}}]\n"
        "users: [{name: u, user: {token: t0k3n}}]\n"
        f"contexts: [{{name: {name}, context: {{cluster: c, user: u}}}}, "
        "{name: someone-elses, context: {cluster: other, user: u}}]\n")
    return str(path)


@pytest.fixture
def fake():
    api = FakeAPI()
    yield api
    api.close()


@pytest.fixture
def client(fake, tmp_path):
    sleeps: list[float] = []
    kc = KubeClient("fake", kubeconfig(tmp_path, fake.url), retries=3, backoff=0.01, timeout=0.4,
                    connect_timeout=0.5, sleep=lambda s: sleeps.append(s))
    kc.sleeps = sleeps
    return kc


STATUS_409 = {"kind": "Status", "status": "Failure", "reason": "Conflict", "code": 409,
              "message": 'Operation cannot be fulfilled on deployments.apps "web": the object has been modified'}


def test_uses_only_the_named_context_and_sends_its_token(fake, client):
    fake.script[("GET", "/api/v1/namespaces")] = [(200, {"items": []})]
    client.call("GET", "/api/v1/namespaces")
    assert client.server == fake.url  # not the kubeconfig's current context (someone-elses → :9)
    assert fake.calls and fake.calls[0][0] == "GET"


def test_conflict_is_not_retried_and_names_the_object(fake, client):
    fake.script[("PUT", "/apis/apps/v1/namespaces/default/deployments/web")] = [(409, STATUS_409)]
    with pytest.raises(Conflict, match="has been modified") as err:
        client.call("PUT", "/apis/apps/v1/namespaces/default/deployments/web", body={"metadata": {}})
    assert err.value.status == 409 and err.value.reason == "Conflict"
    assert len(fake.calls) == 1 and client.sleeps == []


def test_server_errors_on_reads_are_retried_with_backoff_then_succeed(fake, client):
    fake.script[("GET", "/api/v1/pods")] = [(503, {"message": "etcd leader changed"}), (500, {"message": "boom"}),
                                            (200, {"items": [{"metadata": {"name": "a"}}]})]
    assert client.call("GET", "/api/v1/pods")["items"][0]["metadata"]["name"] == "a"
    assert len(fake.calls) == 3
    assert client.sleeps == [0.01, 0.02]  # exponential backoff


def test_a_500_on_a_write_is_not_retried_and_gives_one_clear_error(fake, client):
    fake.script[("POST", "/api/v1/namespaces/default/configmaps")] = [
        (500, {"kind": "Status", "reason": "InternalError", "message": "Internal error occurred: webhook failed"})]
    with pytest.raises(KubeError, match="webhook failed") as err:
        client.call("POST", "/api/v1/namespaces/default/configmaps", body={"metadata": {"name": "x"}})
    assert err.value.status == 500 and len(fake.calls) == 1


def test_503_on_a_write_is_retried_because_the_server_did_not_process_it(fake, client):
    fake.script[("POST", "/api/v1/namespaces/default/configmaps")] = [(503, {"message": "unavailable"}),
                                                                      (201, {"metadata": {"name": "x"}})]
    assert client.call("POST", "/api/v1/namespaces/default/configmaps", body={})["metadata"]["name"] == "x"
    assert len(fake.calls) == 2


def test_persistent_server_errors_give_up_after_the_retries(fake, client):
    fake.script[("GET", "/api/v1/nodes")] = [(503, {"kind": "Status", "reason": "ServiceUnavailable",
                                                     "message": "the server is currently unable to handle the request"})]
    with pytest.raises(KubeError, match="unable to handle the request") as err:
        client.call("GET", "/api/v1/nodes")
    assert err.value.status == 503
    assert len(fake.calls) == 4  # 1 + 3 retries
    assert client.sleeps == [0.01, 0.02, 0.04]


def test_429_honours_retry_after(fake, client):
    fake.script[("GET", "/api/v1/nodes")] = [(429, {"message": "slow down"}, {"Retry-After": "2"}), (200, {"items": []})]
    assert client.call("GET", "/api/v1/nodes") == {"items": []}
    assert client.sleeps == [2.0]


def test_not_found_and_invalid_map_to_labkits_own_errors(fake, client):
    fake.script[("GET", "/api/v1/namespaces/x/pods/p")] = [(404, {"reason": "NotFound", "message": 'pods "p" not found'})]
    with pytest.raises(NotFoundError, match='pods "p" not found'):
        client.call("GET", "/api/v1/namespaces/x/pods/p")
    fake.script[("POST", "/api/v1/namespaces/x/pods")] = [(422, {"reason": "Invalid", "message": "spec.containers: Required value"})]
    with pytest.raises(ApplyError, match="Required value"):
        client.call("POST", "/api/v1/namespaces/x/pods", body={})


def test_a_read_that_times_out_is_retried_then_reports_a_timeout(fake, client):
    fake.script[("GET", "/api/v1/nodes")] = [("sleep", 1.0)]
    start = time.monotonic()
    with pytest.raises(Timeout, match="did not answer GET /api/v1/nodes in time"):
        client.call("GET", "/api/v1/nodes")
    assert len(fake.calls) == 4 and time.monotonic() - start < 10  # bounded: never hangs


def test_a_write_that_times_out_is_not_retried_because_it_may_have_been_applied(fake, client):
    fake.script[("POST", "/api/v1/namespaces/default/configmaps")] = [("sleep", 1.0)]
    with pytest.raises(Timeout, match="may have been applied"):
        client.call("POST", "/api/v1/namespaces/default/configmaps", body={})
    assert len(fake.calls) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_retried_then_named_with_the_fix(tmp_path):
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    kc = KubeClient("fake", kubeconfig(tmp_path, url), retries=2, backoff=0.01, sleep=sleeps.append)
    with pytest.raises(Unreachable) as err:
        kc.call("POST", "/api/v1/namespaces", body={"metadata": {"name": "x"}})
    msg = str(err.value)
    assert url in msg and "'fake'" in msg and "connection refused" in msg and "Is the cluster running" in msg
    assert sleeps == [0.01, 0.02]  # a refused connection never reached the server: safe to retry even a POST


def test_an_unknown_context_lists_the_available_ones(tmp_path, fake):
    with pytest.raises(BackendError, match="'kind-labs' not found; available: fake, someone-elses"):
        KubeClient("kind-labs", kubeconfig(tmp_path, fake.url))


def test_apply_rereads_and_merges_again_after_a_conflict(fake, tmp_path):
    """A write that loses a race (409) is redone on a fresh read, not forced over the other writer."""
    from labkit.kube.mesh import KubeMesh

    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default",
                                                                  "resourceVersion": "7"}, "data": {"a": "1"}}
    fresh = {**live, "metadata": {**live["metadata"], "resourceVersion": "8"}, "data": {"a": "1", "other": "x"}}
    stored = {**fresh, "metadata": {**fresh["metadata"], "resourceVersion": "9"}, "data": {"a": "2", "other": "x"}}
    fake.script[("GET", "/api/v1")] = [(200, {"resources": [{"name": "configmaps", "kind": "ConfigMap", "namespaced": True}]})]
    fake.script[("GET", "/apis")] = [(200, {"groups": []})]
    fake.script[("GET", "/api/v1/namespaces/default/configmaps/cm")] = [(200, live), (200, live), (200, fresh)]
    fake.script[("PUT", "/api/v1/namespaces/default/configmaps/cm")] = [(200, live), (409, STATUS_409), (200, stored)]
    mesh = KubeMesh("fake", kubeconfig(tmp_path, fake.url), retries=0, label=False)
    lines = mesh.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "2"}}])
    assert lines == ["configmap/cm configured"]
    puts = [json.loads(body) for method, path, body in fake.calls if method == "PUT" and "dryRun" not in path]
    assert [p["metadata"]["resourceVersion"] for p in puts] == ["7", "8"]  # optimistic concurrency, then a re-read
    assert puts[-1]["data"] == {"a": "2", "other": "x"}  # the other writer's field survives the merge


def test_discovery_survives_an_aggregated_api_that_is_down(fake, client):
    fake.script[("GET", "/api/v1")] = [(200, {"resources": [{"name": "pods", "kind": "Pod", "namespaced": True,
                                                              "shortNames": ["po"]}]})]
    fake.script[("GET", "/apis")] = [(200, {"groups": [
        {"name": "metrics.k8s.io", "versions": [{"version": "v1beta1"}], "preferredVersion": {"version": "v1beta1"}},
        {"name": "apps", "versions": [{"version": "v1"}], "preferredVersion": {"version": "v1"}}]})]
    fake.script[("GET", "/apis/metrics.k8s.io/v1beta1")] = [(503, {"message": "the server is currently unable to handle"})]
    fake.script[("GET", "/apis/apps/v1")] = [(200, {"resources": [{"name": "deployments", "kind": "Deployment",
                                                                    "namespaced": True, "shortNames": ["deploy"]},
                                                                   {"name": "deployments/status", "kind": "Deployment"}]})]
    assert client.resolve("deploy").path("web", "x") == "/apis/apps/v1/namespaces/web/deployments/x"
    assert client.resolve("po").api_version == "v1"
    with pytest.raises(NotFoundError, match='doesn\'t have a resource type "canary"'):
        client.resolve("canary")


# -- the total deadline of a call -----------------------------------------------------------------------

def test_a_frozen_server_is_given_up_on_by_the_call_deadline_and_the_message_tells_the_truth(fake, tmp_path):
    fake.script[("GET", "/api/v1/nodes")] = [("sleep", 5.0)]
    kc = KubeClient("fake", kubeconfig(tmp_path, fake.url), retries=5, backoff=0.05, timeout=1.0, deadline=2.5)
    start = time.monotonic()
    with pytest.raises(Timeout) as err:
        kc.call("GET", "/api/v1/nodes")
    took = time.monotonic() - start
    assert took < 3.5  # 6 attempts x 1 s read timeout would be 6 s and more
    attempts = len(fake.calls)
    assert 2 <= attempts <= 3
    msg = str(err.value)
    assert f"gave up after {attempts} attempts over" in msg and "deadline is 2.5s" in msg
    reported = float(msg.split(" attempts over ")[1].split("s")[0])
    assert abs(reported - took) < 0.5  # the elapsed time it reports is the time it took


def test_the_deadline_is_per_call_and_configurable(fake, tmp_path):
    fake.script[("GET", "/api/v1/nodes")] = [("sleep", 0.8)]  # answers, but after 0.8 s
    kc = KubeClient("fake", kubeconfig(tmp_path, fake.url), retries=5, backoff=0.01, timeout=2.0, deadline=0.5)
    with pytest.raises(Timeout, match="deadline is 0.5s"):
        kc.call("GET", "/api/v1/nodes")  # the one attempt gets only the 0.5 s the deadline leaves
    assert kc.call("GET", "/api/v1/nodes", deadline=5) == {"late": True}  # a longer deadline for this call
    with pytest.raises(ValueError, match="deadline must be > 0"):
        KubeClient("fake", kubeconfig(tmp_path, fake.url), deadline=0)


def test_retries_of_a_server_error_stop_at_the_deadline(fake, tmp_path):
    fake.script[("GET", "/api/v1/pods")] = [(503, {"kind": "Status", "message": "busy"}, {"Retry-After": "1"})]
    kc = KubeClient("fake", kubeconfig(tmp_path, fake.url), retries=10, backoff=0.01, deadline=2.2)
    start = time.monotonic()
    with pytest.raises(KubeError):
        kc.call("GET", "/api/v1/pods")
    assert time.monotonic() - start < 3.0 and len(fake.calls) <= 3  # Retry-After 1 s x 10 would be 10 s
