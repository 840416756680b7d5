"""Lab 3's tasks: a MetricTemplate of your own, the Canary gated on it, and a release promoted through it."""
from __future__ import annotations

import pandas as pd

from labkit.lookups import get_or_none, is_number, missing, names_of, template
from labkit.metrics.queries import TemplateRenderError, flagger_template_model, render_flagger_template
from labkit.tasks import task

NS = "test"
TEMPLATE = "error-percentage"
VERSION = "6.0.5"
VIZ_PROMETHEUS = "http://prometheus.linkerd-viz:9090"
#: What the learner's template must agree with: the target's failed inbound responses, in percent. Counted as
#: 100 minus the successes, so it is 0 (not "no data") while nothing fails: Flagger halts a canary on no data.
REFERENCE = ('100 - 100 * sum(rate(response_total{{namespace="{namespace}", deployment=~"{target}", '
             'direction="inbound", classification="success"}}[{interval}])) / sum(rate(response_total{{'
             'namespace="{namespace}", deployment=~"{target}", direction="inbound"}}[{interval}]))')


NO_DATA = ("a series that does not exist (no failures yet) sums to nothing, not 0, and Flagger halts on no data: "
           "count the successes instead (100 - …) or add `or on() vector(0)`")


def _canary(mesh) -> dict:
    return get_or_none(mesh, "canary", "podinfo", NS) or {}


def _compare_over_lab(mesh, query: str, reference: str, since) -> list[str]:
    """The learner's query and the reference, minute by minute since ``since``: they must agree where there was
    traffic (the releases above answered 500s, so a query that counts the wrong thing differs somewhere)."""
    try:
        mine = mesh.query_range(query, since, mesh.now, step="1m")
    except Exception as err:  # noqa: BLE001 - the learner sees the evaluator's message
        return [f"the query does not run: {err}"]
    ref = mesh.query_range(reference, since, mesh.now, step="1m")
    if not len(ref):
        return ["there was no traffic to podinfo to test the query on yet"]
    if not len(mine):
        return ["the query, rendered for podinfo, returns no data at any time since the canary was created, "
                f"although podinfo had traffic: check the metric and label names — and {NO_DATA}"]
    labels = [c for c in mine.columns if c not in ("time", "value")]
    if labels and len(mine[labels].drop_duplicates()) > 1:
        return ["the query returns several series; Flagger needs one number: sum() them"]
    joined = pd.merge(ref[["time", "value"]], mine[["time", "value"]], on="time", how="left",
                      suffixes=("_ref", "_mine"))
    joined = joined[[is_number(v) for v in joined["value_ref"]]]
    silent = joined[[not is_number(v) for v in joined["value_mine"]]]
    if len(silent):
        when = silent.iloc[0]
        return [f"at {when['time']} podinfo had traffic ({when['value_ref']:.2f}% failed) but the query returns no "
                f"data: {NO_DATA}"]
    diff = (joined["value_mine"] - joined["value_ref"]).abs()
    worst = joined.loc[diff.idxmax()]
    if diff.max() > 0.5:
        if abs(worst["value_mine"] * 100 - worst["value_ref"]) <= 0.5:
            return ["that is a fraction; Flagger's thresholdRange here is in percent (multiply by 100)"]
        return [f"at {worst['time']} the query gives {worst['value_mine']:.2f} but {worst['value_ref']:.2f}% of "
                "podinfo's responses failed then"]
    return []


@task("3.1", f"write a MetricTemplate {TEMPLATE}: the percentage of the target's inbound responses that failed",
      f"kubectl -n {NS} apply -f {TEMPLATE}.yaml",
      "Start from not-found-percentage in manifests/podinfo/flagger/metric-templates.yml.",
      "Linkerd classifies every response in response_total: classification is success or failure (5xx).",
      "While nothing fails, the failure series does not exist and the query returns no data, which halts Flagger: "
      "compute 100 minus the success percentage; keep {{ namespace }}, {{ target }} and {{ interval }}.")
def metric_template(mesh) -> list[str]:
    mt = get_or_none(mesh, "metrictemplate", TEMPLATE, NS)
    if mt is None:
        return [missing("MetricTemplate", TEMPLATE, NS, names_of(mesh, "metrictemplate", NS))]
    spec = mt.get("spec") or {}
    provider = spec.get("provider") or {}
    problems = []
    if provider.get("type") != "prometheus":
        problems.append(f"spec.provider.type is {provider.get('type')!r}; linkerd-viz's metrics need 'prometheus'")
    if (provider.get("address") or "").rstrip("/") != VIZ_PROMETHEUS:
        problems.append(f"spec.provider.address is {provider.get('address')!r}; viz's Prometheus is {VIZ_PROMETHEUS}")
    if problems:
        return problems
    cd = _canary(mesh)
    if not cd:
        return ["the podinfo Canary is gone: the template is tested as Flagger would render it for that Canary"]
    model = flagger_template_model(cd, "1m")
    try:
        query = render_flagger_template(spec.get("query") or "", model, TEMPLATE)
    except TemplateRenderError as err:
        return [f"Flagger could not render the query: {err}"]
    if "{{" in query or "<no value>" in query:
        return ["the rendered query still has a placeholder Flagger does not fill in: "
                "use {{ namespace }}, {{ target }} and {{ interval }}"]
    reference = REFERENCE.format(namespace=NS, target="podinfo", interval="1m")
    since = pd.Timestamp(cd["metadata"].get("creationTimestamp") or mesh.now - pd.Timedelta("1h"))
    return _compare_over_lab(mesh, query, reference, since.tz_localize(None) if since.tzinfo else since)


@task("3.2", f"gate the canary on {TEMPLATE}: at most 5% failed responses, over 1m",
      f"kubectl -n {NS} edit canary/podinfo   # spec.analysis.metrics",
      "A metric that uses a template: name, templateRef (name and namespace), thresholdRange (max) and interval.",
      "A merge patch replaces a list whole: read the current metrics, append yours, patch the full list.",
      undone_later=True)
def gate(mesh) -> list[str]:
    cd = _canary(mesh)
    if not cd:
        return ["the podinfo Canary is gone"]
    metrics = ((cd.get("spec") or {}).get("analysis") or {}).get("metrics") or []
    mine = [m for m in metrics if (m.get("templateRef") or {}).get("name") == TEMPLATE]
    if not mine:
        return [f"no metric of the Canary uses templateRef {TEMPLATE} "
                f"(its metrics: {', '.join(str(m.get('name')) for m in metrics) or 'none'})"]
    metric = mine[0]
    problems = []
    ref_ns = (metric.get("templateRef") or {}).get("namespace", NS)
    if ref_ns != NS:
        problems.append(f"templateRef.namespace is {ref_ns}; the template lives in {NS}")
    limit = (metric.get("thresholdRange") or {}).get("max")
    if not isinstance(limit, (int, float)):
        problems.append("the metric has no thresholdRange.max: Flagger would never fail it"
                        + (" (threshold is the legacy field: use thresholdRange)" if "threshold" in metric else ""))
    elif limit > 5:
        problems.append(f"thresholdRange.max is {limit}: that lets {limit}% failures through; the task asks for 5")
    elif limit < 1:
        problems.append(f"thresholdRange.max {limit} is a percentage here: {limit}% would fail on one error in "
                        f"{100 / limit if limit else float('inf'):.0f}; the task asks for 5")
    if metric.get("interval") not in ("1m", "60s"):
        problems.append(f"the metric's interval is {metric.get('interval')!r}; the task asks for 1m")
    return problems


@task("3.3", f"release podinfo {VERSION} and see Flagger promote it",
      f"kubectl -n {NS} set image deploy/podinfo podinfod=ghcr.io/stefanprodan/podinfo:{VERSION}",
      "mesh.set_image('podinfo', 'podinfod=ghcr.io/stefanprodan/podinfo:...', namespace='test') — the target, "
      "not podinfo-primary, which Flagger owns.",
      "Then follow the analysis: canary.watch(mesh, 'podinfo', 'test', timeout='30m').", undone_later=True)
def release(mesh) -> list[str]:
    def image(name: str) -> str:
        containers = (template(get_or_none(mesh, "deploy", name, NS)).get("spec") or {}).get("containers") or []
        return containers[0].get("image", "") if containers else ""

    target, primary = image("podinfo"), image("podinfo-primary")
    if not target.endswith(f":{VERSION}"):
        if primary.endswith(f":{VERSION}"):
            return [f"podinfo-primary was edited directly, podinfo still runs {target}: Flagger owns the primary "
                    "and puts it back; release by changing the target, podinfo"]
        return [f"the podinfo Deployment runs {target or 'nothing'}, not {VERSION}"]
    phase = (_canary(mesh).get("status") or {}).get("phase")
    if phase in ("Progressing", "Promoting", "Finalising", "Waiting", "WaitingPromotion"):
        return [f"the analysis is still running ({phase}): follow it with canary.watch(...) and check again"]
    if phase == "Failed":
        return [f"Flagger rolled {VERSION} back: read why in canary.timeline(mesh, 'podinfo', 'test') — a metric "
                "that returns no data fails the analysis too"]
    if not primary.endswith(f":{VERSION}") or phase != "Succeeded":
        return [f"{VERSION} is not promoted yet (phase {phase}, primary runs {primary})"]
    return []
