"""The proof that labkit's metric math is Prometheus's: the same data, a real Prometheus server, the same answers.

The embedded mesh runs emojivoto meshed for ten minutes; its scraped series
are exported as OpenMetrics, backfilled into a real Prometheus with
``promtool tsdb create-blocks-from openmetrics``, and the server is started
on loopback. Every query linkerd-viz's ``stat`` and Flagger's checks send is
then answered by both, through the HTTP client code the kube backend uses
(``labkit.metrics.prom_api``), and must agree to within rounding.
"""
from __future__ import annotations

import math
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import PROMETHEUS_INSTALL, meshed_app, require_tool
from labkit.metrics import prom_api, queries

pytestmark = pytest.mark.prometheus


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    promtool = require_tool("promtool", PROMETHEUS_INSTALL)
    prometheus = require_tool("prometheus", PROMETHEUS_INSTALL)
    work = tmp_path_factory.mktemp("prometheus")
    mesh = meshed_app(seed=3, wait="10m")
    export = mesh.export_metrics(work / "metrics.om")
    data = work / "data"
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", export, str(data)],
                   check=True, capture_output=True, timeout=120)
    config = work / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 10s\nscrape_configs: []\n")
    port = _free_port()
    proc = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={data}",
         "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prometheus did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
        yield mesh, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _compare(mine, theirs, tol=1e-6):
    key = [c for c in mine.columns if c not in ("value", "time")]
    assert sorted(mine.columns) == sorted(theirs.columns), (list(mine.columns), list(theirs.columns))
    a = mine.sort_values(key + (["time"] if "time" in mine else [])).reset_index(drop=True)
    b = theirs.sort_values(key + (["time"] if "time" in theirs else [])).reset_index(drop=True)
    assert len(a) == len(b) and len(a) > 0
    for col in key:
        assert list(a[col]) == list(b[col])
    for x, y in zip(a["value"], b["value"]):
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=tol, abs=1e-9)


STAT_LABELS = {"direction": "inbound", "namespace": "emojivoto"}
GROUP = ["namespace", "deployment"]
QUERIES = [
    queries.stat_requests(STAT_LABELS, GROUP, "1m"),
    queries.stat_latency("0.5", STAT_LABELS, GROUP, "1m"),
    queries.stat_latency("0.95", STAT_LABELS, GROUP, "1m"),
    queries.stat_latency("0.99", STAT_LABELS, GROUP, "1m"),
    queries.stat_tcp_connections(STAT_LABELS, GROUP),
    queries.stat_requests({"direction": "outbound", "namespace": "emojivoto", "deployment": "web"},
                          ["dst_namespace", "dst_deployment"], "1m"),
    queries.flagger_success_rate("emojivoto", "voting", "1m"),
    queries.flagger_duration("emojivoto", "voting", "1m"),
    'sum(rate(response_total{namespace="emojivoto", direction="inbound"}[5m])) by (deployment, classification)',
]


@pytest.mark.parametrize("expr", QUERIES, ids=[f"q{i}" for i in range(len(QUERIES))])
def test_instant_queries_agree(served, expr):
    mesh, url = served
    for back in (0, 125, 300):
        at = mesh.clock.t - back
        _compare(mesh.query(expr, time=at), prom_api.query(url, expr, at))


def test_range_query_agrees(served):
    mesh, url = served
    expr = 'sum(rate(response_total{namespace="emojivoto", direction="inbound"}[1m])) by (deployment, classification)'
    end = mesh.clock.t
    mine = mesh.query_range(expr, end - 600, end, "30s")
    _compare(mine, prom_api.query_range(url, expr, end - 600, end, 30))


def test_the_numbers_are_the_tutorials(served):
    """Not just equal: voting fails about one vote in six, as the tutorial shows."""
    mesh, url = served
    frame = prom_api.query(url, queries.flagger_success_rate("emojivoto", "voting", "5m"), mesh.clock.t)
    assert 75 < frame["value"].iloc[0] < 92
