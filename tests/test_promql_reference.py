"""Cross-check: the embedded PromQL evaluator against the real Prometheus engine.

For each case the same synthetic series are loaded into a SeriesStore and
written as a ``promtool test rules`` file (``input_series`` in promtool's
notation, samples every 10 s from t=0). Our evaluator's answers become the
``exp_samples`` of ``promql_expr_test`` entries, and promtool, which runs
Prometheus's own engine, must agree. Queries are wrapped in
``round(…, 0.001)`` so that equality is exact (promtool compares floats with
==). A result of NaN cannot be compared that way, so the cases avoid NaN.

Needs ``promtool`` (``bash .ci/install-prometheus`` installs Debian 13's 2.53; .ci/run does). Without it
this test skips, naming that command; in CI (or with LABKIT_REQUIRE_ALL=1) it fails, as it does there with
one older than 2.53 (conftest.require_prometheus). Locally Debian 12's 2.42 also works (``compat="2.42"``).
"""
from __future__ import annotations

import json
import math
import random
import subprocess
from pathlib import Path

import pytest

from conftest import prometheus_compat, require_prometheus
from labkit.metrics import queries
from labkit.metrics.promql import instant
from labkit.sim.store import SeriesStore

pytestmark = pytest.mark.prometheus

INTERVAL = 10  # seconds between samples, like the linkerd-viz scrape interval
BOUNDS = [
    "1", "2", "3", "4", "5", "10", "20", "30", "40", "50", "100", "200", "300", "400", "500",
    "1000", "2000", "3000", "4000", "5000", "10000", "20000", "30000", "40000", "50000", "+Inf",
]


def _promtool() -> str:
    """promtool's path: skipped locally without it, a failure in CI (conftest.require_tool)."""
    return require_prometheus("promtool")


# ---- the harness ---------------------------------------------------------------------------------


def _labels_text(labels: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _value_text(value: float) -> str:
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(float(value))


def _store(series) -> SeriesStore:
    store = SeriesStore()
    for name, labels, values in series:
        for i, value in enumerate(values):
            if value is None:
                continue
            if value == "stale":
                store.mark_stale(name, labels, i * INTERVAL)
            else:
                store.append(name, labels, i * INTERVAL, float(value))
    return store


def _rule_test(series, cases, compat: str | None = None) -> tuple[str, int]:
    """The promtool test file for ``cases`` [(expr, eval_time_s)], expecting our evaluator's answers."""
    store = _store(series)
    lines = [
        "rule_files: []",
        # promtool loads samples only up to the evaluation steps it walks through: step every second
        "evaluation_interval: 1s",
        "tests:",
        f"  - interval: {INTERVAL}s",
        "    input_series:",
    ]
    for name, labels, values in series:
        text = " ".join("_" if v is None else ("stale" if v == "stale" else _value_text(v)) for v in values)
        lines += [f"      - series: {json.dumps(name + _labels_text(labels))}", f"        values: {json.dumps(text)}"]
    lines.append("    promql_expr_test:")
    samples = 0
    for expr, at in cases:
        result = instant(expr, store, at, compat=compat)
        nan = [labels for labels, value in result if math.isnan(value)]
        assert not nan, f"{expr} at {at}s gives NaN for {nan}; promtool cannot compare NaN, pick another case"
        lines += [f"      - expr: {json.dumps(expr)}", f"        eval_time: {at}s"]
        lines.append("        exp_samples:" + ("" if result else " []"))
        for labels, value in result:
            lines += [f"          - labels: {json.dumps(_labels_text(labels))}", f"            value: {_value_text(value)}"]
        samples += len(result)
    return "\n".join(lines) + "\n", samples


def _check(promtool: str, tmp_path: Path, series, cases, *, min_samples: int = 1) -> None:
    text, samples = _rule_test(series, cases, prometheus_compat(promtool))
    assert samples >= min_samples, f"only {samples} samples expected: the cross-check would be vacuous"
    path = tmp_path / "promql_reference_test.yml"
    path.write_text(text)
    run = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, (
        f"Prometheus disagrees with the embedded evaluator (exp = ours, got = Prometheus):\n"
        f"{run.stdout[-6000:]}\n{run.stderr[-2000:]}\n(test file: {path})"
    )


def _round(expr: str) -> str:
    return f"round({expr}, 0.001)"


# ---- synthetic Linkerd-like data -----------------------------------------------------------------


def _counter(rng: random.Random, n: int, *, rate: int, start: int = 0, reset_at: int | None = None,
             end: int | None = None, stale: bool = False) -> list:
    """A counter sampled every 10 s: None before ``start``/after ``end``, restarting at ``reset_at``."""
    values: list = []
    total = rng.randint(0, 3) if start else 0
    for i in range(n):
        if i < start or (end is not None and i > end):
            values.append("stale" if stale and end is not None and i == end + 1 else None)
            continue
        if reset_at is not None and i == reset_at:
            total = 0
        total += rng.randint(0, rate)
        values.append(total)
    return values


def _traffic(n: int = 45, seed: int = 7) -> list:
    rng = random.Random(seed)
    series = []
    pods = [
        ("web", "web-1", {}), ("web", "web-2", {"reset_at": 20}),
        ("voting", "voting-1", {"start": 4}), ("podinfo", "podinfo-1", {"end": 30, "stale": True}),
        ("podinfo-primary", "podinfo-primary-1", {"end": 25}),
    ]
    for deployment, pod, shape in pods:
        base = {"namespace": "emojivoto", "deployment": deployment, "pod": pod, "direction": "inbound", "tls": "true"}
        for classification, rate in (("success", 20), ("failure", 3)):
            series.append(("response_total", {**base, "classification": classification, "status_code": "200"},
                           _counter(rng, n, rate=rate, **shape)))
        series.append(("tcp_open_connections", {**base, "peer": "src"},
                       [rng.randint(0, 6) if v is not None and v != "stale" else v for v in _counter(rng, n, rate=1, **shape)]))
    return series


def _histograms(n: int = 45, seed: int = 11) -> list:
    """Linkerd latency histograms (cumulative buckets, bounds in ms) for three pods of two deployments."""
    rng = random.Random(seed)
    series = []
    for deployment, pod, scale in (("web", "web-1", 12.0), ("web", "web-2", 40.0), ("voting", "voting-1", 300.0)):
        counts = [0] * len(BOUNDS)
        rows: list[list] = [[] for _ in BOUNDS]
        for _ in range(n):
            for _ in range(rng.randint(0, 25)):
                latency = rng.expovariate(1.0 / scale)
                for j, bound in enumerate(BOUNDS):
                    if bound == "+Inf" or latency <= float(bound):
                        counts[j] += 1
            for j in range(len(BOUNDS)):
                rows[j].append(counts[j])
        labels = {"namespace": "emojivoto", "deployment": deployment, "pod": pod, "direction": "inbound",
                  "status_code": "200"}
        series += [("response_latency_ms_bucket", {**labels, "le": le}, rows[j]) for j, le in enumerate(BOUNDS)]
    return series


EVAL_TIMES = [60, 65, 95, 200, 207, 255, 300, 330, 440]


# ---- the cases -----------------------------------------------------------------------------------


def test_rate_irate_increase_with_resets_match_prometheus(tmp_path):
    promtool = _promtool()
    exprs = [
        "rate(response_total[1m])",
        "increase(response_total[1m])",
        "irate(response_total[1m])",
        "increase(response_total[35s])",
        "rate(response_total[2m] offset 30s)",
        "delta(tcp_open_connections[1m])",
        "idelta(tcp_open_connections[30s])",
    ]
    cases = [(_round(e), t) for e in exprs for t in EVAL_TIMES]
    _check(promtool, tmp_path, _traffic(), cases, min_samples=200)


def test_counter_edge_cases_match_prometheus(tmp_path):
    """Zero clamp, reset right at a window edge, fractional counters, a series starting mid-window."""
    promtool = _promtool()
    series = [
        ("c_total", {"k": "reset"}, [5, 10, 12, 1, 3, 2, 8, 9, None, None, None, 20, 21]),
        ("c_total", {"k": "float"}, [0.1, 0.35, 0.2, 0.9, 0.05, 1.7, 1.8, 0.3, None, 2.2, 0.1, 0.2, 0.7]),
        ("c_total", {"k": "late"}, [None] * 9 + [1000, 1010, 1020, 1030]),
        ("c_total", {"k": "clamp"}, [None, None, None, 8, 18, 28, 38]),
        ("c_total", {"k": "stale"}, [1, 2, "stale", 4, 5, "stale"]),
    ]
    times = [10, 20, 30, 35, 40, 59, 60, 61, 70, 90, 100, 115, 120, 130, 351, 420, 421]
    exprs = ["rate(c_total[1m])", "increase(c_total[35s])", "irate(c_total[1m])", "increase(c_total[20s])",
             "delta(c_total[1m])", "c_total"]
    cases = [(f"round({e}, 0.000001)" if "(" in e else e, t) for e in exprs for t in times]
    _check(promtool, tmp_path, series, cases, min_samples=100)


def test_aggregation_matching_and_comparisons_match_prometheus(tmp_path):
    promtool = _promtool()
    exprs = [
        _round("sum by (deployment) (rate(response_total[1m]))"),
        _round("sum without (pod, classification) (increase(response_total[1m]))"),
        _round("avg by (classification) (rate(response_total[1m]))"),
        "count by (deployment) (response_total)",
        "max by (classification) (response_total)",
        "min(response_total)",
        _round('sum by (deployment) (response_total{classification="success"}) / on(deployment) sum by (deployment) (response_total)'),
        _round('response_total{classification="failure"} / ignoring(classification) response_total{classification="success"}'),
        'response_total{classification="success"} > on(pod) response_total{classification="failure"}',
        'response_total{classification="failure"} >= bool ignoring(classification) response_total{classification="success"}',
        "response_total > 100",
        "100 < bool response_total",
        'response_total and on(deployment) response_total{deployment="web"}',
        'response_total unless on(classification) response_total{classification="failure"}',
        'sum by (deployment) (response_total) or on() vector(-1)',
        "topk(3, response_total)",
        _round("response_total / scalar(sum(response_total))"),
        "clamp(response_total, 50, 150)",
        "abs(-response_total) - 2 * response_total",
    ]
    cases = [(e, t) for e in exprs for t in (65, 207, 300)]
    _check(promtool, tmp_path, _traffic(), cases, min_samples=200)


def test_viz_stat_and_flagger_queries_match_prometheus(tmp_path):
    promtool = _promtool()
    inbound = {"direction": "inbound", "namespace": "emojivoto"}
    exprs = [
        queries.stat_requests(inbound, ["namespace", "deployment"], "1m"),
        queries.stat_requests({**inbound, "deployment": "web"}, ["namespace", "pod"], "1m"),
        queries.stat_tcp_connections(inbound, ["namespace", "deployment"]),
        queries.flagger_success_rate("emojivoto", "web", "1m"),
        queries.flagger_success_rate("emojivoto", "podinfo", "30s"),
    ]
    times = [65, 95, 200, 207, 255, 300]
    cases = [(_round(e), t) for e in exprs for t in times]
    _check(promtool, tmp_path, _traffic(), cases, min_samples=60)


def test_histogram_quantile_on_linkerd_buckets_matches_prometheus(tmp_path):
    promtool = _promtool()
    inbound = {"direction": "inbound", "namespace": "emojivoto"}
    exprs = []
    for q in queries.STAT_QUANTILES:
        exprs.append(f"histogram_quantile({q}, sum(irate(response_latency_ms_bucket[1m])) by (le, deployment))")
        exprs.append(queries.stat_latency(q, inbound, ["namespace", "deployment"], "1m"))
        exprs.append(f"histogram_quantile({q}, rate(response_latency_ms_bucket[30s]))")
    exprs.append(queries.flagger_duration("emojivoto", "web", "1m"))
    cases = [(_round(e), t) for e in exprs for t in (65, 95, 200, 300, 440)]
    _check(promtool, tmp_path, _histograms(), cases, min_samples=60)


def test_lookback_and_staleness_match_prometheus(tmp_path):
    promtool = _promtool()
    series = _traffic()
    # podinfo-1 ends at sample 30 (t=300) with a staleness marker; podinfo-primary-1 just stops at t=250
    cases = [("response_total", t) for t in (250, 255, 300, 305, 540, 550, 551, 600)]
    cases += [("count by (deployment) (response_total)", t) for t in (300, 310, 550, 551)]
    _check(promtool, tmp_path, series, cases, min_samples=20)


def test_the_cross_check_catches_a_wrong_answer(tmp_path):
    """The harness must not pass vacuously: a deliberately wrong expectation makes promtool fail."""
    promtool = _promtool()
    text, _ = _rule_test([("x_total", {"a": "1"}, [0, 10, 20, 30, 40, 50, 60])], [("round(rate(x_total[1m]), 0.001)", 60)])
    assert "value: 1.0" in text
    path = tmp_path / "wrong.yml"
    path.write_text(text.replace("value: 1.0", "value: 1.001"))
    run = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "FAILED" in run.stdout + run.stderr
