"""Flagger's per-interval record rebuilt from a cluster's trails (labkit.canary_trail), piece by piece."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from labkit import canary_trail as trail
from labkit.errors import LabkitError

T0 = pd.Timestamp("2019-10-09T10:02:03.120Z")
S = pd.Timedelta(seconds=1)


def line(at, msg, canary="podinfo.test", level="info", ts=None):
    return json.dumps({"level": level, "ts": ts if ts is not None else at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                       "caller": "controller/events.go:33", "msg": msg, "canary": canary})


def test_parse_log_keeps_this_canarys_json_lines_in_order_with_both_timestamp_forms():
    text = "\n".join([
        json.dumps({"level": "info", "ts": "2019-10-09T10:00:00.000Z", "msg": "Starting operator"}),  # no canary
        line(T0, "Initialization done! podinfo.test"),
        "I1009 10:02:04 klog line, not JSON",
        line(T0, "Initialization done! other.test", canary="other.test"),
        line(T0 + 30 * S, "New revision detected! Scaling up podinfo.test", ts=(T0 + 30 * S).timestamp()),
        "{not json",
    ])
    log = trail.parse_log(text, "podinfo.test")
    assert [e.message for e in log] == ["Initialization done! podinfo.test",
                                        "New revision detected! Scaling up podinfo.test"]
    assert log[0].time == T0 and abs(log[1].time - (T0 + 30 * S)) < pd.Timedelta(milliseconds=1)
    assert log[1].time.tzinfo is not None


def test_event_type_follows_the_clusters_event_then_flaggers_wording():
    known = {"Advance podinfo.test canary weight 5": "Normal", "odd message": "Warning"}
    assert trail.event_type("odd message", "info", known) == "Warning"  # the Event says so: it wins
    assert trail.event_type("Advance podinfo.test canary weight 5", "info", known) == "Normal"
    # expired Events: Flagger logs its warnings at level info, so the wording decides
    assert trail.event_type("Halt podinfo.test advancement success rate 61.36% < 99%", "info", {}) == "Warning"
    assert trail.event_type("canary deployment podinfo.test not ready: waiting for rollout", "info", {}) == "Warning"
    assert trail.event_type("Rolling back podinfo.test failed checks threshold reached 5", "info", {}) == "Warning"
    assert trail.event_type("Error checking metric providers: boom", "error", {}) == "Warning"
    assert trail.event_type("Promotion completed! Scaling down podinfo.test", "info", {}) == "Normal"


def test_tick_times_group_a_ticks_lines_and_fill_the_silent_ticks_between():
    log = [trail.LogEvent(T0, "info", "a"), trail.LogEvent(T0 + pd.Timedelta(milliseconds=40), "info", "b"),
           trail.LogEvent(T0 + 90 * S, "info", "c")]
    ticks = trail.tick_times(log, 30 * S, until=T0 + 150 * S)
    assert ticks == [T0 + k * 30 * S for k in range(6)]  # 0 (a, b), 30 and 60 silent, 90 (c), 120 and 150
    assert [trail.tick_of(e.time, ticks) for e in log] == [0, 0, 3]
    assert trail.tick_of(T0 - 5 * S, ticks) == -1
    # a webhook inside a tick (the acceptance test) can delay its later lines by seconds: still the same tick
    hooked = [trail.LogEvent(T0, "info", "Starting canary analysis for podinfo.test"),
              trail.LogEvent(T0 + 4 * S, "info", "Pre-rollout check acceptance-test passed"),
              trail.LogEvent(T0 + 4 * S, "info", "Advance podinfo.test canary weight 5"),
              trail.LogEvent(T0 + 30 * S, "info", "Advance podinfo.test canary weight 10")]
    ticks = trail.tick_times(hooked, 30 * S, until=T0 + 30 * S)
    assert ticks == [T0, T0 + 30 * S] and [trail.tick_of(e.time, ticks) for e in hooked] == [0, 0, 0, 1]
    # a restarted job (a new ticker, after the interval changed) is anchored again at its own first line
    restarted = log + [trail.LogEvent(T0 + 110 * S, "info", "d")]
    assert trail.tick_times(restarted, 30 * S, until=T0 + 110 * S)[-2:] == [T0 + 90 * S, T0 + 110 * S]


def status(phase, weight=0, failed=0, iterations=0, route=None):
    return {"phase": phase, "canaryWeight": weight, "failedChecks": failed, "iterations": iterations,
            "routeWeight": weight if route is None else route}


SPEC = {"analysis": {"interval": "30s", "threshold": 2, "metrics": [
    {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
    {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"},
    {"name": "404s percentage", "thresholdRange": {"max": 3}, "interval": "1m"}]}}


def scenario():
    """Threshold 2: new revision (tick 0), analysis starts (1), success 90% halts (2), every check passes (3),
    latency 600 ms halts (4), rollback (5), then a silent tick in Failed (6)."""
    msgs = [(0, "New revision detected! Scaling up podinfo.test"), (1, "Starting canary analysis for podinfo.test"),
            (1, "Advance podinfo.test canary weight 5"), (2, "Halt podinfo.test advancement success rate 90.00% < 99%"),
            (3, "Advance podinfo.test canary weight 10"), (4, "Halt podinfo.test advancement request duration 600ms > 500ms"),
            (5, "Rolling back podinfo.test failed checks threshold reached 2")]
    log = [(trail.LogEvent(T0 + k * 30 * S + pd.Timedelta(milliseconds=3 * i), "info", m), "Normal")
           for i, (k, m) in enumerate(msgs)]
    session = trail.Session(T0 - 20 * S, T0 - 20 * S)
    for at, st in [(T0 - 20 * S, status("Succeeded")), (T0 + 2 * S, status("Progressing")),
                   (T0 + 32 * S, status("Progressing", 5)), (T0 + 62 * S, status("Progressing", 5, 1)),
                   (T0 + 92 * S, status("Progressing", 10, 1)), (T0 + 122 * S, status("Progressing", 10, 2)),
                   (T0 + 152 * S, status("Failed")), (T0 + 182 * S, status("Failed"))]:
        session.seen(at, st)
    return log, session


def value(metric, at):
    """Success 90% at +60 s, latency 600 ms at +120 s, otherwise healthy."""
    seconds = int((at - T0) / S)
    return {"request-success-rate": 90.0 if seconds == 60 else 100.0,
            "request-duration": 600.0 if seconds == 120 else 7.0, "404s percentage": 0.0}[metric["name"]]


def test_rows_take_the_status_after_each_tick_and_run_only_the_checks_flagger_ran():
    log, session = scenario()
    assert len(session.samples) == 7 and session.end == T0 + 182 * S  # the unchanged last poll adds no sample
    calls = []

    def value_at(metric, at):
        calls.append((metric["name"], int((at - T0) / S)))
        return value(metric, at)

    found, names = trail.rows(log, [session], SPEC, value_at, since=None, until=T0 + 185 * S)
    assert [int((r["time"] - T0) / S) for r in found] == [0, 30, 60, 90, 120, 150, 180]
    assert [r["phase"] for r in found] == ["Progressing"] * 5 + ["Failed"] * 2
    assert [r["weight"] for r in found] == [0, 5, 5, 10, 10, 0, 0]
    assert [r["failedChecks"] for r in found] == [0, 0, 1, 1, 2, 0, 0]
    # tick 0: a new revision; tick 1 starts from weight 0 (no checks); 2 stops at the failing success rate;
    # 3 checks everything; 4 stops at the failing latency; 5 rolls back before any check; 6 is idle
    assert calls == [("request-success-rate", 60),
                     ("request-success-rate", 90), ("request-duration", 90), ("404s percentage", 90),
                     ("request-success-rate", 120), ("request-duration", 120)]
    assert found[2]["success"] == 0.9 and "request-duration" not in found[2]
    assert found[3]["latency"] == 7.0 and found[3]["404s percentage"] == 0.0
    assert found[4]["latency"] == 600.0 and "404s percentage" not in found[4]
    assert names == ["request-success-rate", "request-duration", "404s percentage"]
    assert found[1]["events"] == "Starting canary analysis for podinfo.test | Advance podinfo.test canary weight 5"
    assert found[6]["events"] == "" and math.isnan(found[6]["success"]) and math.isnan(found[0]["latency"])


def test_rows_keep_only_ticks_a_watch_saw_and_after_since():
    log, session = scenario()
    late = trail.Session(T0 + 100 * S, T0 + 100 * S)  # a watch that began after tick 3 and so saw its status
    late.seen(T0 + 100 * S, status("Progressing", 10, 1))
    late.seen(T0 + 125 * S, status("Progressing", 10, 2))
    found, _ = trail.rows(log, [late], SPEC, value, since=None, until=T0 + 130 * S)
    assert [(int((r["time"] - T0) / S), r["failedChecks"]) for r in found] == [(90, 1), (120, 2)]
    assert math.isnan(found[0]["success"])  # no status before tick 3 in that session: no checks claimed
    assert found[1]["latency"] == 600.0
    found, _ = trail.rows(log, [session], SPEC, value, since=T0 + 60 * S, until=T0 + 185 * S)
    assert [int((r["time"] - T0) / S) for r in found] == [60, 90, 120, 150, 180]
    assert trail.rows(log, [], SPEC, value, since=None, until=T0 + 185 * S) == ([], [])


class FakeMesh:
    def __init__(self, objects):
        self.objects = objects

    def get(self, kind, name, namespace):
        try:
            return self.objects[(kind, name, namespace)]
        except KeyError:
            raise LabkitError(f'{kind} "{name}" not found') from None


CANARY = {"metadata": {"name": "podinfo", "namespace": "test"}, "spec": {"targetRef": {"name": "podinfo"}},
          "status": {"canaryWeight": 0}}


@pytest.mark.parametrize("kind, spec", [
    ("trafficsplit", {"backends": [{"service": "podinfo-primary", "weight": 0},
                                   {"service": "podinfo-canary", "weight": 100}]}),
    ("httproute", {"rules": [{"backendRefs": [{"name": "podinfo-primary", "weight": 0},
                                              {"name": "podinfo-canary", "weight": 100}]}]}),
])
def test_route_weight_reads_the_router_not_the_status(kind, spec):
    # blue/green: "Routing all traffic to canary" while status.canaryWeight stays 0
    mesh = FakeMesh({(kind, "podinfo", "test"): {"spec": spec}})
    assert trail.route_weight(mesh, CANARY) == 100
    assert trail.route_weight(FakeMesh({}), {**CANARY, "status": {"canaryWeight": 15}}) == 15


def test_flaggers_check_order_and_thresholds():
    template = {"name": "404s percentage", "templateRef": {"name": "not-found-percentage"}, "thresholdRange": {"max": 3}}
    builtin = {"name": "request-success-rate", "threshold": 99}
    inline = {"name": "errors", "query": "sum(x)", "threshold": 5}
    assert trail.check_order([template, builtin, inline]) == [builtin, inline, template]
    assert trail.out_of_range(98.0, builtin) and not trail.out_of_range(99.5, builtin)  # legacy: a minimum
    assert trail.out_of_range(6.0, inline) and not trail.out_of_range(4.0, inline)       # legacy: a maximum
    assert trail.out_of_range(3.5, template) and not trail.out_of_range(3.0, template)
    assert trail.out_of_range(math.nan, template)                                          # no values: a halt
