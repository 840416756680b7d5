"""Flagger's pure rules: spec defaults, weight stepping, the Promoted condition, query templates, Go formatting."""
from __future__ import annotations

import math

import pytest

from labkit.metrics import queries
from labkit.sim.flagger.deployment import compute_hash, make_status_conditions
from labkit.sim.flagger.metrics import go_duration_ms, go_float, render, trim
from labkit.sim.flagger.spec import CanarySpec


def spec(analysis=None, **fields) -> CanarySpec:
    body = {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"}, "service": {"port": 9898}}
    if analysis is not None:
        body["analysis"] = analysis
    body.update(fields)
    return CanarySpec({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                       "metadata": {"name": "podinfo", "namespace": "test"}, "spec": body})


def test_defaults_follow_canary_go():
    cd = spec({})
    assert cd.interval() == 60 and cd.threshold() == 1 and cd.progress_deadline() == 600
    assert cd.max_weight() == 100 and cd.strategy() == "canary"
    assert spec({"interval": "5s"}).interval() == 10, "below 10s is raised to 10s"
    assert spec({"interval": "soon"}).interval() == 60, "unparseable is 60s"
    assert spec({"interval": "1m30s"}).interval() == 90
    assert spec({"threshold": 0}).threshold() == 1
    assert spec(None).skip_analysis() and spec({}, skipAnalysis=True).skip_analysis() and not spec({}).skip_analysis()
    assert cd.service_name == "podinfo" and cd.primary == "podinfo-primary" and cd.port_name == "http"
    assert spec({}, service={"port": 80, "name": "web"}).service_name == "web"
    assert spec({"iterations": 10}).strategy() == "bluegreen"
    assert spec({"iterations": 10, "match": [{"headers": {}}]}).strategy() == "ab"


def walk(cd: CanarySpec) -> list[int]:
    """The weights runCanary sets until promotion (every analysis passing)."""
    weights, w = [], 0
    while w < cd.max_weight():
        step = cd.next_step_weight(w)
        if step <= 0:
            break
        w = min(w + step, 100)
        weights.append(w)
    return weights


@pytest.mark.parametrize("analysis, expected", [
    ({"maxWeight": 50, "stepWeight": 5}, list(range(5, 55, 5))),
    ({"maxWeight": 50, "stepWeight": 20}, [20, 40, 60]),                      # overshoot, as the docs say
    ({"stepWeights": [1, 2, 10, 80]}, [1, 2, 10, 80]),
    ({"stepWeights": [1, 2, 10, 80], "maxWeight": 20}, [1, 2, 10, 80]),       # maxWeight ignored
    ({"stepWeights": [10, 20], "stepWeight": 30}, [30]),                      # stepWeight wins; max is stepWeights[-1]
    ({"maxWeight": 100, "stepWeight": 10}, list(range(10, 110, 10))),
])
def test_weight_stepping(analysis, expected):
    assert walk(spec(analysis)) == expected


def test_step_weight_zero_never_advances():
    assert spec({"maxWeight": 50}).next_step_weight(0) == 0


def test_promoted_condition_per_phase():
    cd = spec({})
    conds = make_status_conditions(cd, "Initializing", "2019-10-09T10:00:00Z")
    assert conds == [{"type": "Promoted", "status": "Unknown", "lastUpdateTime": "2019-10-09T10:00:00Z",
                      "lastTransitionTime": "2019-10-09T10:00:00Z", "reason": "Initializing",
                      "message": "New Deployment detected, starting initialization."}]
    expected = {"Initialized": ("True", "Deployment initialization completed."),
                "Waiting": ("Unknown", "Waiting for approval."),
                "Progressing": ("Unknown", "New revision detected, progressing canary analysis."),
                "Promoting": ("Unknown", "Canary analysis completed, starting primary rolling update."),
                "Finalising": ("Unknown", "Canary analysis completed, routing all traffic to primary."),
                "Succeeded": ("True", "Canary analysis completed successfully, promotion finished."),
                "Failed": ("False", "Canary analysis failed, Deployment scaled to zero.")}
    for phase, (status, message) in expected.items():
        cond = make_status_conditions(cd, phase, "t1")[0]
        assert (cond["status"], cond["message"], cond["reason"]) == (status, message, phase)
    # same status, new reason: lastTransitionTime kept; same status and reason: no change at all
    cd.status["conditions"] = make_status_conditions(cd, "Progressing", "t1")
    assert make_status_conditions(cd, "Promoting", "t2")[0]["lastTransitionTime"] == "t1"
    assert make_status_conditions(cd, "Progressing", "t2") is None
    assert make_status_conditions(cd, "Succeeded", "t2")[0]["lastTransitionTime"] == "t2"


def test_spec_hash_is_stable_and_template_sensitive():
    a = {"metadata": {"labels": {"app": "podinfo"}}, "spec": {"containers": [{"name": "p", "image": "x:1"}]}}
    b = {"spec": {"containers": [{"image": "x:1", "name": "p"}]}, "metadata": {"labels": {"app": "podinfo"}}}
    assert compute_hash(a) == compute_hash(b)
    assert compute_hash(a) != compute_hash({**a, "spec": {"containers": [{"name": "p", "image": "x:2"}]}})
    assert set(compute_hash(a)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_templates_render_like_flagger():
    model = {"name": "podinfo", "namespace": "test", "target": "podinfo", "service": "podinfo", "ingress": "podinfo",
             "route": "podinfo", "interval": "1m", "variables": {"direction": "inbound"}}
    text = 'sum(rate(response_total{namespace="{{ namespace }}",deployment=~"{{ target }}",direction="{{ variables.direction }}"}[{{interval}}]))'
    assert render(text, model) == 'sum(rate(response_total{namespace="test",deployment=~"podinfo",direction="inbound"}[1m]))'
    with pytest.raises(ValueError, match='function "nope" not defined'):
        render("{{ nope }}", model)
    assert render("[{{ interval }}]", {**model, "interval": ""}) == "[]"
    assert trim("a\n\t  b   c") == "a b c"


def test_builtin_linkerd_queries_are_flaggers_verbatim():
    assert queries.flagger_success_rate("test", "podinfo", "1m") == (
        ' sum( rate( response_total{ namespace="test", deployment=~"podinfo", classification!="failure", '
        'direction="inbound" }[1m] ) ) / sum( rate( response_total{ namespace="test", deployment=~"podinfo", '
        'direction="inbound" }[1m] ) ) * 100')


def test_go_formatting():
    assert [go_duration_ms(ms) for ms in (0, 3, 500, 1200, 1450, 60000, 61500)] == \
        ["0s", "3ms", "500ms", "1.2s", "1.45s", "1m0s", "1m1.5s"]
    assert [go_float(v) for v in (99.0, 99.5, 3.0, 0.001, math.inf)] == ["99", "99.5", "3", "0.001", "+Inf"]
