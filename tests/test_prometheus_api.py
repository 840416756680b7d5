"""The served mesh's Prometheus HTTP API: Prometheus's JSON and error shapes, and promtool's view of it.

``promtool query instant/range/series/labels`` (the real Prometheus's client
code) against ``served.prometheus_url`` must give what ``mesh.query`` /
``mesh.query_range`` give in process.
"""
from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import meshed_app, require_prometheus
from labkit.metrics import prom_api
from labkit.sim.serve import serve

INBOUND = 'response_total{direction="inbound", namespace="emojivoto"}'


def _require(tool: str) -> str:
    """The real promtool checks the served Prometheus API: skipped locally without it, a failure in CI."""
    return require_prometheus(tool)


#: The module's served mesh's token, sent by call() and promtool() to its prometheus_url (the API is locked).
_TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def served():
    mesh = meshed_app(seed=5, wait="4m")
    with serve(mesh, pace=0) as running:
        _TOKENS[running.prometheus_url] = running.token
        yield running


def call(url: str, path: str, params=None, *, data: bytes | None = None, headers=None):
    """(HTTP status, decoded JSON) of one request."""
    query = "?" + urllib.parse.urlencode(params or {}, doseq=True) if params else ""
    headers = dict(headers or {})
    if url in _TOKENS:
        headers.setdefault("Authorization", f"Bearer {_TOKENS[url]}")
    req = urllib.request.Request(url + path + query, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def promtool(*args: str) -> str:
    """promtool query …, the served URL given with its token as basic-auth credentials (as a user would)."""
    args = tuple(a.replace("http://", f"http://labkit:{_TOKENS[a]}@", 1) if a in _TOKENS else a for a in args)
    run = subprocess.run([_require("promtool"), "query", "-o", "json", *args],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


# ---- promtool against served.prometheus_url ------------------------------------------------------------


def test_promtool_instant_matches_mesh_query(served):
    mesh, url = served.mesh, served.prometheus_url
    at = mesh.clock.t - 30
    for expr in (f"sum by (deployment) (rate({INBOUND}[1m]))",
                 f"histogram_quantile(0.99, sum by (le, deployment) (rate(response_latency_ms_bucket[1m])))",
                 f'topk(2, sum by (pod) (increase({INBOUND}[2m])))'):
        got = promtool("instant", url, expr, f"--time={at}")
        theirs = prom_api.frame_from_json({"status": "success", "data": {"resultType": "vector", "result": got}})
        with served.lock:
            mine = mesh.query(expr, time=at)
        assert len(mine) > 0
        assert theirs.equals(mine), (expr, theirs, mine)
    assert promtool("instant", url, "2 * 21", f"--time={at}") == [at, "42"]


def test_promtool_range_matches_mesh_query_range(served):
    mesh, url = served.mesh, served.prometheus_url
    end = mesh.clock.t
    expr = f"sum by (deployment) (rate({INBOUND}[1m]))"
    got = promtool("range", url, expr, f"--start={end - 120}", f"--end={end}", "--step=20s")
    theirs = prom_api.frame_from_json({"status": "success", "data": {"resultType": "matrix", "result": got}})
    with served.lock:
        mine = mesh.query_range(expr, end - 120, end, "20s")
    assert len(mine) == 3 * 7 and theirs.equals(mine)


def test_promtool_series_and_labels(served):
    mesh, url = served.mesh, served.prometheus_url
    end = mesh.clock.t
    window = (f"--start={end - 600}", f"--end={end}")
    got = promtool("series", url, '--match=tcp_open_connections{deployment="web"}', "--match=process_start_time_seconds", *window)
    store = mesh.prometheus.store
    expected = [s.labels for s in store.select("tcp_open_connections", [("deployment", "=", "web")])]
    expected += [s.labels for s in store.select("process_start_time_seconds", [])]
    assert expected and sorted(map(json.dumps, got)) == sorted(json.dumps(e, sort_keys=True) for e in expected)
    deployments = promtool("labels", url, "deployment", *window)
    with served.lock:
        in_process = sorted(set(mesh.query("count by (deployment) (response_total)")["deployment"]) - {""})
    assert set(in_process) <= set(deployments) and "web" in deployments
    assert deployments == sorted(deployments)


# ---- the JSON and error shapes ---------------------------------------------------------------------------


def test_result_types_and_value_encoding(served):
    url, at = served.prometheus_url, served.mesh.clock.t
    status, body = call(url, "/api/v1/query", {"query": "time() - 1.5", "time": at})
    assert status == 200 and body["data"] == {"resultType": "scalar", "result": [at, repr(at - 1.5)]}
    status, body = call(url, "/api/v1/query", {"query": "vector(0.0000001)", "time": at})
    assert body["data"]["result"] == [{"metric": {}, "value": [at, "0.0000001"]}]  # Go's 'f' format, no exponent
    status, body = call(url, "/api/v1/query", {"query": 'tcp_open_connections{deployment="web"}[30s]', "time": at})
    assert body["data"]["resultType"] == "matrix" and len(body["data"]["result"][0]["values"]) == 4
    status, body = call(url, "/api/v1/query", {"query": "1 / 0", "time": at})
    assert body["data"]["result"][1] == "+Inf"


def test_post_form_is_accepted(served):
    url, at = served.prometheus_url, served.mesh.clock.t
    form = urllib.parse.urlencode({"query": "count(up) or vector(3)", "time": at}).encode()
    status, body = call(url, "/api/v1/query", data=form,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and body["status"] == "success" and body["data"]["resultType"] == "vector"


@pytest.mark.parametrize("path, params, status, kind, message", [
    ("/api/v1/query", {"query": "sum(("}, 400, "bad_data", 'invalid parameter "query"'),
    ("/api/v1/query", {"query": f"{INBOUND} * on(namespace) {INBOUND}"}, 422, "execution", "many-to-many"),
    ("/api/v1/query", {"query": "up", "time": "yesterday"}, 400, "bad_data", 'invalid parameter "time"'),
    ("/api/v1/query_range", {"query": "up", "start": "10", "end": "5", "step": "1"}, 400, "bad_data",
     "end timestamp must not be before start time"),
    ("/api/v1/query_range", {"query": "up", "start": "0", "end": "10", "step": "0"}, 400, "bad_data",
     "zero or negative query resolution step widths are not accepted"),
    ("/api/v1/query_range", {"query": "up", "start": "0", "end": "100000", "step": "1"}, 400, "bad_data",
     "exceeded maximum resolution of 11,000 points"),
    ("/api/v1/query_range", {"query": "up[5m]", "start": "0", "end": "10", "step": "1"}, 400, "bad_data",
     "invalid expression type"),
    ("/api/v1/series", {}, 400, "bad_data", "no match[] parameter provided"),
    ("/api/v1/series", {"match[]": "rate(up[1m])"}, 400, "bad_data", "not a series selector"),
    ("/api/v1/label/1bad/values", {}, 400, "bad_data", 'invalid label name: "1bad"'),
    ("/api/v1/nothing", {}, 404, "not_found", "no API endpoint"),
])
def test_errors_have_prometheus_shapes(served, path, params, status, kind, message):
    got_status, body = call(served.prometheus_url, path, params)
    assert got_status == status
    assert body["status"] == "error" and body["errorType"] == kind and message in body["error"], body


def test_metadata_buildinfo_and_readiness(served):
    url = served.prometheus_url
    _, body = call(url, "/api/v1/metadata")
    assert body["data"]["response_total"] == [{"type": "counter", "help": "Total count of HTTP responses.", "unit": ""}]
    assert body["data"]["response_latency_ms"][0]["type"] == "histogram"
    _, one = call(url, "/api/v1/metadata", {"metric": "tcp_open_connections"})
    assert list(one["data"]) == ["tcp_open_connections"] and one["data"]["tcp_open_connections"][0]["type"] == "gauge"
    _, limited = call(url, "/api/v1/metadata", {"limit": "2"})
    assert len(limited["data"]) == 2
    assert call(url, "/api/v1/query_exemplars", {"query": "up"}) == (200, {"status": "success", "data": []})
    _, info = call(url, "/api/v1/status/buildinfo")
    assert info["data"]["version"] == "2.55.1"
    ready = urllib.request.Request(url + "/-/ready", headers={"Authorization": f"Bearer {_TOKENS[url]}"})
    with urllib.request.urlopen(ready, timeout=10) as resp:
        assert resp.read() == b"Prometheus Server is Ready.\n"


def test_labels_lists_every_label_name(served):
    _, body = call(served.prometheus_url, "/api/v1/labels")
    assert {"__name__", "deployment", "pod", "le", "classification"} <= set(body["data"])
    assert body["data"] == sorted(body["data"])
    _, names = call(served.prometheus_url, "/api/v1/label/__name__/values")
    assert "response_total" in names["data"] and names["data"] == sorted(names["data"])


def test_a_token_protected_served_mesh_protects_its_prometheus_url():
    mesh = meshed_app(wait="30s")
    with serve(mesh, pace=0, token="s3cret") as running:
        url = running.prometheus_url
        status, body = call(url, "/api/v1/query", {"query": "vector(1)"})
        assert status == 401 and body["status"] == "error"
        status, body = call(url, "/api/v1/query", {"query": "vector(1)"}, headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and body["data"]["result"][0]["value"][1] == "1"
        basic = "Basic " + base64.b64encode(b"labkit:s3cret").decode()
        assert call(url, "/api/v1/query", {"query": "vector(1)"}, headers={"Authorization": basic})[0] == 200
        wrong = "Basic " + base64.b64encode(b"labkit:guess").decode()
        assert call(url, "/api/v1/query", {"query": "vector(1)"}, headers={"Authorization": wrong})[0] == 401
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/-/ready", timeout=5)
