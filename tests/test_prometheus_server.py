"""The proof that labkit's metric math is Prometheus's: the same data, a real Prometheus server, the same answers.

The embedded mesh runs emojivoto meshed for ten minutes; its scraped series
are exported as OpenMetrics, backfilled into a real Prometheus with
``promtool tsdb create-blocks-from openmetrics``, and the server is started
on loopback. Every query linkerd-viz's ``stat`` and Flagger's checks send is
then answered by both, through the HTTP client code the kube backend uses
(``labkit.metrics.prom_api``), and must agree to within rounding.

CI's Prometheus is Debian 13's 2.53.3 (``.ci/install-prometheus``), the
evaluator runs with the modelled 2.55's rules, and nothing compared here may
differ between the two. What does differ from 2.53 to 2.55, and why the
corpus is unaffected or leaves it out:

* Kahan-compensated ``sum`` (2.54), ``avg`` and ``avg_over_time`` (2.55):
  2.53 adds naively, so results may differ in the last bits, far inside the
  1e-9 relative tolerance on the mesh's series;
* ``limitk`` and ``limit_ratio`` are new in 2.54: left out of the corpus and
  checked by hand-worked tests (tests/test_promql_language.py) and by
  Prometheus's own scripts (tools/promqltest.py);
* the experimental functions (``sort_by_label`` now breaking ties by the
  whole label set, ``mad_over_time``, ``info``), number literals with ``_``
  and durations as numbers need ``--enable-feature`` or are 2.54+: not used;
* delayed ``__name__`` removal (2.55) is an experimental flag, off in both.

The 2.51 extrapolation order and the 2.52 rule that an aggregation reads its
parameter at the first step only are in both, and the range corpus checks the
latter. With Debian 12's 2.42 (outside CI) the evaluator runs with
``compat="2.42"``, which reproduces the older forms of those two rules.
"""
from __future__ import annotations

import math
import subprocess
import time
import urllib.request

import pytest

from conftest import free_port, meshed_app, prometheus_compat, require_prometheus
from labkit.errors import QueryError
from labkit.metrics import prom_api, queries

pytestmark = pytest.mark.prometheus


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    promtool = require_prometheus("promtool")
    prometheus = require_prometheus()
    work = tmp_path_factory.mktemp("prometheus")
    mesh = meshed_app(seed=3, wait="10m")
    export = mesh.export_metrics(work / "metrics.om")
    data = work / "data"
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", export, str(data)],
                   check=True, capture_output=True, timeout=120)
    config = work / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 10s\nscrape_configs: []\n")
    port = free_port()
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


def _ours(mesh, expr, at):
    """``mesh.query``'s answer, with the installed Prometheus's rate rules if it predates 2.51 (Debian: 2.42)."""
    from labkit.metrics import promql

    compat = prometheus_compat(require_prometheus())
    if compat is None:
        return mesh.query(expr, time=at)
    return promql.to_frame(promql.instant(expr, mesh.prometheus.store, at, compat=compat))


@pytest.mark.parametrize("expr", QUERIES, ids=[f"q{i}" for i in range(len(QUERIES))])
def test_instant_queries_agree(served, expr):
    mesh, url = served
    for back in (0, 125, 300):
        at = mesh.clock.t - back
        _compare(_ours(mesh, expr, at), prom_api.query(url, expr, at))


def test_range_query_agrees(served):
    from labkit.metrics import promql

    mesh, url = served
    expr = 'sum(rate(response_total{namespace="emojivoto", direction="inbound"}[1m])) by (deployment, classification)'
    end = mesh.clock.t
    mine = promql.to_frame(promql.range_(expr, mesh.prometheus.store, end - 600, end, 30,
                                         compat=prometheus_compat(require_prometheus())))
    _compare(mine, prom_api.query_range(url, expr, end - 600, end, 30))


def test_the_numbers_are_the_tutorials(served):
    """Not just equal: voting fails about one vote in six, as the tutorial shows."""
    mesh, url = served
    frame = prom_api.query(url, queries.flagger_success_rate("emojivoto", "voting", "5m"), mesh.clock.t)
    assert 75 < frame["value"].iloc[0] < 92


# ---- the language corpus: every function and operator, on the mesh's own series ----------------------

IN = '{namespace="emojivoto", direction="inbound"}'
REQ = f"response_total{IN}"
TCP = 'tcp_open_connections{namespace="emojivoto"}'
RANGE_FUNCTIONS = [
    "rate", "increase", "irate", "delta", "idelta", "changes", "resets", "deriv", "avg_over_time",
    "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "stddev_over_time",
    "stdvar_over_time", "last_over_time", "present_over_time", "absent_over_time",
]
AGGREGATIONS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]
MATH = ["abs", "ceil", "floor", "sqrt", "exp", "ln", "log2", "log10", "sgn"]
DATES = ["year", "month", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute"]


def language_corpus(at: float) -> list[str]:
    """Generated queries covering each function/operator the embedded evaluator supports (limitk and
    limit_ratio aside: Prometheus 2.53 lacks them), over the mesh's response_total / tcp_open_connections /
    latency buckets."""
    rate = f"rate({REQ}[1m])"
    out = []
    for f in RANGE_FUNCTIONS:
        out += [f"{f}({REQ}[1m])", f"{f}({TCP}[2m] offset 1m)", f"{f}({REQ}[90s] @ {at - 200:.0f})",
                f"{f}({rate}[5m:30s])"]
    out += [f"quantile_over_time({q}, {TCP}[3m])" for q in (0, 0.25, 0.9, 1)]
    out += [f"holt_winters({TCP}[5m], 0.3, 0.6)", f"holt_winters({REQ}[2m] offset 1m, 0.9, 0.05)",
            f"holt_winters({rate}[5m:30s], 0.5, 0.1)"]
    out += [f"predict_linear({REQ}[5m], 600)", f"predict_linear({TCP}[3m] offset 30s, 60)",
            f"absent({REQ})", 'absent(response_total{deployment="nope", namespace="x", namespace="y"})',
            'absent_over_time(tcp_open_connections{deployment="gone"}[1m])']
    for agg in AGGREGATIONS:
        out += [f"{agg}({rate})", f"{agg} by (deployment) ({rate})", f"{agg} without (pod, classification) ({REQ})"]
    out += [f"quantile({q}, {rate})" for q in (0.5, 0.99)] + [f"quantile by (deployment) (0.75, {TCP})"]
    out += [f"topk(2, {rate})", f"bottomk(3, {rate})", f"topk by (deployment) (1, {REQ})",
            f'count_values("n", {TCP})', f'count_values by (deployment) ("v", round({rate}, 0.1))']
    by_dep = f"sum by (namespace, deployment) ({rate})"
    out += [
        f"{by_dep} / on(namespace) group_left sum by (namespace) ({rate})",
        f"sum by (namespace) ({rate}) / on(namespace) group_right {by_dep}",
        f'{rate} * on(pod) group_left(peer) max by (pod, peer) ({TCP[:-1]}, peer="src"}})',
        f"{rate} * on(pod) group_left(peer) {TCP}",  # many-to-many: both must refuse it
        f"{TCP} > bool on(namespace, deployment) group_left {by_dep}",
        f"{rate} / ignoring(classification, status_code, tls) group_left sum without (classification, status_code, tls) ({rate})",
        f"{rate} atan2 {rate}", f"{REQ} % 7", f"2 ^ {TCP}", f"{REQ} > 100", f"{REQ} != bool 0",
        f'{REQ} and response_total{{classification="success"}}', f'{REQ} unless response_total{{deployment="web"}}',
        f'{by_dep} or vector(0)',
    ]
    out += [
        f'label_replace({REQ}, "short", "$1", "pod", "([a-z]+)-.*")',
        f'label_replace({REQ}, "pod", "${{2}}x$1", "pod", "(?i)(VOTING|web)-(.*)")',
        f'label_replace({rate}, "d", "$9", "deployment", ".*")',
        f'label_join({REQ}, "where", "/", "namespace", "deployment", "nothing")',
        f'response_total{{deployment=~"(?i)WEB|vot.*", direction="inbound"}}',
        f'response_total{{deployment!~"web|voting", direction="inbound"}}',
    ]
    out += [f"{m}({rate})" for m in MATH]
    out += [f"clamp({rate}, 0.1, 0.5)", f"clamp_min({TCP}, 2)", f"clamp_max({TCP}, 1)", f"round({rate}, 0.01)",
            f"round({TCP})", f"sort({rate})", f"sort_desc({REQ})", f"timestamp({REQ})", f"timestamp({rate})"]
    out += [f"{d}()" for d in DATES] + [f"{d}(timestamp({TCP}))" for d in DATES]
    out += ["time()", f"scalar(sum({rate}))", f"vector(time() - {at:.0f})", f"{TCP} @ {at - 120:.0f}",
            f"{REQ} offset 3m", f"sum({REQ} @ {at - 300:.0f}) - sum({REQ})", f"-{TCP}",
            f"histogram_quantile(0.9, sum by (le, deployment) (rate(response_latency_ms_bucket{IN}[1m])))",
            f"max_over_time(sum by (deployment) ({rate})[10m:1m] offset 1m)",
            f"avg_over_time(({REQ} - {REQ} offset 1m)[5m:])"]
    return out


def _check_frames(expr: str, mine, theirs, *, ordered: bool) -> None:
    labels = [c for c in mine.columns if c not in ("value", "time")]
    assert sorted(mine.columns) == sorted(theirs.columns), (expr, list(mine.columns), list(theirs.columns))
    if not ordered:
        keys = labels + (["time"] if "time" in mine else [])
        mine = mine.sort_values(keys).reset_index(drop=True) if keys else mine
        theirs = theirs.sort_values(keys).reset_index(drop=True) if keys else theirs
    assert len(mine) == len(theirs), (expr, len(mine), len(theirs))
    if not ordered:
        for col in labels:
            assert list(mine[col]) == list(theirs[col]), (expr, col)
    for x, y in zip(mine["value"], theirs["value"]):
        same = (math.isnan(x) and math.isnan(y)) or x == y or abs(x - y) <= 1e-9 * max(abs(x), abs(y))
        assert same, (expr, x, y)


def test_language_corpus_agrees_with_prometheus(served):
    """Each function and operator on the mesh's series: the same answers as the real engine, within 1e-9."""
    from labkit.metrics import promql

    mesh, url = served
    compat = prometheus_compat(require_prometheus())
    store = mesh.prometheus.store
    now = mesh.clock.t
    corpus = language_corpus(now)
    compared = nonempty = refused = 0
    for expr in corpus:
        for back in (0, 95, 263):
            at = now - back
            try:
                mine = promql.to_frame(promql.instant(expr, store, at, compat=compat))
            except QueryError as exc:
                mine = exc
            try:
                theirs = prom_api.query(url, expr, at)
            except QueryError as exc:
                theirs = exc
            compared += 1
            if isinstance(mine, Exception) or isinstance(theirs, Exception):
                assert isinstance(mine, Exception) and isinstance(theirs, Exception), (expr, mine, theirs)
                refused += 1
                print("refused by both:", expr, "|", theirs)
                continue
            _check_frames(expr, mine, theirs, ordered=expr.startswith(("sort", "topk(", "bottomk(")))
            nonempty += len(theirs) > 0
    print(f"language corpus: {len(corpus)} queries x 3 times = {compared} comparisons, {nonempty} non-empty, "
          f"{refused} refused by both")
    assert compared >= 3 * 170 and nonempty >= 0.9 * compared and refused == 3, (compared, nonempty, refused)


RANGE_CORPUS = [
    f"sum by (deployment) (rate({REQ}[1m]))",
    f"max_over_time({TCP}[2m])",
    f"changes({TCP}[5m])",
    f"quantile(0.5, rate({REQ}[1m]))",
    f"{REQ} offset 2m",
    f"topk(2, rate({REQ}[1m]))",
    f"sum by (namespace, deployment) (rate({REQ}[1m])) / on(namespace) group_left sum by (namespace) (rate({REQ}[1m]))",
    f'label_replace(rate({REQ}[1m]), "short", "$1", "pod", "([a-z]+)-.*")',
    f"avg_over_time(rate({REQ}[1m])[3m:20s])",
    f"{TCP} @ end()",
    f"rate({REQ}[1m] @ start())",
    f"absent(nothing_here) or hour()",
    f"deriv({TCP}[3m])",
    f'count_values("v", {TCP})',
    f"holt_winters({REQ}[3m], 0.2, 0.7)",
    # a parameter that changes over the range: 2.52+ use the first step's value throughout (2.42: each step's)
    f"topk(1 + (time() % 60 > bool 29), rate({REQ}[1m]))",
    f"quantile(0.25 + 0.5 * (time() % 60 > bool 29), rate({REQ}[1m]))",
]


def test_range_corpus_agrees_with_prometheus(served):
    from labkit.metrics import promql

    mesh, url = served
    compat = prometheus_compat(require_prometheus())
    end = mesh.clock.t
    for expr in RANGE_CORPUS:
        mine = promql.to_frame(promql.range_(expr, mesh.prometheus.store, end - 480, end, 30, compat=compat))
        theirs = prom_api.query_range(url, expr, end - 480, end, 30)
        assert len(theirs) > 0, expr
        _check_frames(expr, mine, theirs, ordered=False)


#: Queries both must refuse, and the text of Prometheus's error, which the evaluator's message must contain.
REFUSED = [
    (f"holt_winters({TCP}[5m], 1, 0.5)", "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"),
    (f"holt_winters({TCP}[5m], 0.5, -0.25)", "invalid trend factor. Expected: 0 < tf < 1, got: -0.250000"),
    (f"holt_winters({TCP}[5m], 0.5, 1/0)", "invalid trend factor. Expected: 0 < tf < 1, got: +Inf"),
    (f"double_exponential_smoothing({TCP}[5m], 0.5, 0.5)",
     'unknown function with name "double_exponential_smoothing"'),  # Prometheus 3's name for holt_winters
    (f"topk(1e20, {REQ})", "Scalar value 1e+20 overflows int64"),  # 2.52+
    (f"bottomk(0/0, {REQ})", "Scalar value NaN overflows int64"),  # 2.52+
]


def test_errors_are_prometheus_errors(served):
    """Where Prometheus refuses a query at evaluation, the evaluator refuses it too, with Prometheus's words."""
    from labkit.metrics import promql

    mesh, url = served
    compat = prometheus_compat(require_prometheus())
    at = mesh.clock.t
    checked = 0
    for expr, text in REFUSED:
        if compat == "2.42" and "overflows int64" in text:
            continue  # 2.42 took such a k as "no series" instead
        with pytest.raises(QueryError) as theirs:
            prom_api.query(url, expr, at)
        assert text in str(theirs.value), (expr, str(theirs.value))
        with pytest.raises(QueryError) as mine:
            promql.instant(expr, mesh.prometheus.store, at, compat=compat)
        assert text in str(mine.value), (expr, str(mine.value))
        checked += 1
    assert checked >= 4
    # the factors are only checked where there is something to smooth: an empty selection is no error
    expr = "holt_winters(nothing_here[5m], 2, 2)"
    assert prom_api.query(url, expr, at).empty and promql.instant(expr, mesh.prometheus.store, at) == []
