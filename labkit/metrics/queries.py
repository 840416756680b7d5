"""The PromQL that linkerd-viz and Flagger send, rendered exactly as they render it.

Both backends build ``stat``, ``routes`` and Flagger's checks from these
strings: the embedded mesh evaluates them with :mod:`labkit.metrics.promql`,
the kube backend sends them to the linkerd-viz Prometheus. Rendering them the
way the real components do (label order, separators, quoting, whitespace) means
a learner who copies a query from a lab gets what ``linkerd viz stat`` itself
asks, and the real Prometheus can be used to check the embedded evaluator on
the very same text.

Sources (see /work/shared/reference): linkerd-formats.md §3.1 (stat), §3.2
(routes), §3.5 and flagger-and-policies.md §2.4 (Flagger's built-in Linkerd
metrics).
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence, Union

__all__ = [
    "label_string", "stat_requests", "stat_latency", "stat_tcp_connections", "stat_tcp_bytes",
    "route_requests", "route_latency", "flagger_success_rate", "flagger_duration", "STAT_QUANTILES",
]

#: The quantiles ``linkerd viz stat`` / ``routes`` ask for, as metrics-api writes them (promLatencyP50…).
STAT_QUANTILES = ("0.5", "0.95", "0.99")

#: A label value, or ``(operator, raw pattern)`` for a matcher other than equality.
LabelValue = Union[str, tuple[str, str]]


def _go_quote(value: str) -> str:
    """Go's ``%q`` for a label value (strconv.Quote): backslash, quote and control characters escaped."""
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def label_string(labels: Mapping[str, LabelValue]) -> str:
    """``{a="1", b="2"}`` the way metrics-api renders a label set (reference §3.1).

    Plain values render like Prometheus's ``model.LabelSet.String()``: sorted by
    label name, ``name="value"`` with Go quoting, joined by ``", "``. A value
    given as ``(op, pattern)`` renders as ``name<op>"pattern"`` with the pattern
    verbatim, and then, as in metrics-api's ``generateLabelStringWithRegex`` /
    ``renderLabels``, the rendered pairs are sorted as strings.
    """
    plain = {k: v for k, v in labels.items() if isinstance(v, str)}
    raw = {k: v for k, v in labels.items() if not isinstance(v, str)}
    if not raw:
        return "{" + ", ".join(f"{k}={_go_quote(plain[k])}" for k in sorted(plain)) + "}"
    pairs = [f"{k}={_go_quote(v)}" for k, v in plain.items()]
    for k, (op, pattern) in raw.items():
        if op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"label matcher operator for {k!r} must be =, !=, =~ or !~, got {op!r}")
        pairs.append(f'{k}{op}"{pattern}"')
    return "{" + ", ".join(sorted(pairs)) + "}"


def _group(group_by: Union[str, Sequence[str]]) -> str:
    return group_by if isinstance(group_by, str) else ", ".join(group_by)


_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _window(window: Union[str, int, float]) -> str:
    """A range like ``1m``: strings pass through (the CLI's --time-window), numbers are seconds."""
    if isinstance(window, str):
        if not _DURATION.match(window):
            raise ValueError(f"window {window!r} is not a Prometheus duration like '1m', '30s' or '1h'")
        return window
    seconds = float(window)
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"window must be a positive whole number of seconds, got {window!r}")
    return f"{int(seconds)}s"


def stat_requests(labels: Mapping[str, LabelValue], group_by: Sequence[str], window: Union[str, int] = "1m") -> str:
    """Request counts per group and classification (metrics-api ``reqQuery``, reference §3.1).

    ``sum(increase(response_total{…}[window])) by (<group_by>, classification, tls)``;
    success rate and RPS come from these counts.
    """
    return f"sum(increase(response_total{label_string(labels)}[{_window(window)}])) by ({_group(group_by)}, classification, tls)"


def stat_latency(
    quantile: Union[str, float], labels: Mapping[str, LabelValue], group_by: Sequence[str], window: Union[str, int] = "1m"
) -> str:
    """A latency quantile in ms (``latencyQuantileQuery``, reference §3.1). Note: ``irate``, not ``rate``."""
    return (
        f"histogram_quantile({quantile}, sum(irate(response_latency_ms_bucket{label_string(labels)}"
        f"[{_window(window)}])) by (le, {_group(group_by)}))"
    )


def stat_tcp_connections(labels: Mapping[str, LabelValue], group_by: Sequence[str]) -> str:
    """Open TCP connections, a gauge (``tcpConnectionsQuery``, reference §3.1)."""
    return f"sum(tcp_open_connections{label_string(labels)}) by ({_group(group_by)})"


def stat_tcp_bytes(
    direction: str,
    labels: Mapping[str, LabelValue],
    group_by: Sequence[str],
    window: Union[str, int] = "1m",
    *,
    peer: str | None = "src",
) -> str:
    """TCP bytes read or written (``tcpReadBytesQuery`` / ``tcpWriteBytesQuery``, reference §3.1).

    metrics-api adds ``peer="src"`` to these two queries (``peer="dst"`` for
    ``--to``); ``peer=None`` leaves ``labels`` as given.
    """
    if direction not in ("read", "write"):
        raise ValueError(f"direction must be 'read' or 'write', got {direction!r}")
    merged = dict(labels)
    if peer is not None:
        merged.setdefault("peer", peer)
    return (
        f"sum(increase(tcp_{direction}_bytes_total{label_string(merged)}[{_window(window)}])) "
        f"by ({_group(group_by)})"
    )


def _route_labels(labels: Mapping[str, LabelValue], dst_regex_services: Sequence[str]) -> str:
    """metrics-api ``renderLabels``: the labels plus ``dst=~"(svc|svc2)(:\\\\d+)?"`` when there are services."""
    merged: dict[str, LabelValue] = dict(labels)
    if dst_regex_services:
        merged["dst"] = ("=~", f"({'|'.join(dst_regex_services)})(:\\\\d+)?")
        return label_string(merged)
    return "{" + ", ".join(sorted(f"{k}={_go_quote(v)}" for k, v in merged.items() if isinstance(v, str))) + "}"


def route_requests(
    labels: Mapping[str, LabelValue],
    dst_regex_services: Sequence[str],
    group_by: Union[str, Sequence[str]] = "rt_route",
    window: Union[str, int] = "1m",
    actual: bool = False,
) -> str:
    """Per-route response counts (``routeReqQuery`` / ``actualRouteReqQuery``, reference §3.2).

    ``dst_regex_services`` are ServiceProfile names (``books.default.svc.cluster.local``);
    ``actual=True`` counts every attempt including retries (``-o wide`` ACTUAL_ columns).
    """
    metric = "route_actual_response_total" if actual else "route_response_total"
    return (
        f"sum(increase({metric}{_route_labels(labels, dst_regex_services)}[{_window(window)}])) "
        f"by ({_group(group_by)}, dst, classification)"
    )


def route_latency(
    quantile: Union[str, float],
    labels: Mapping[str, LabelValue],
    dst_regex_services: Sequence[str],
    group_by: Union[str, Sequence[str]] = "rt_route",
    window: Union[str, int] = "1m",
) -> str:
    """A per-route latency quantile (``routeLatencyQuantileQuery``, reference §3.2)."""
    return (
        f"histogram_quantile({quantile}, sum(irate(route_response_latency_ms_bucket"
        f"{_route_labels(labels, dst_regex_services)}[{_window(window)}])) by (le, dst, {_group(group_by)}))"
    )


def _flagger(template: str) -> str:
    """Flagger's provider collapses every whitespace run to one space before sending (``trimQuery``)."""
    return re.sub(r"\s+", " ", template)


def flagger_success_rate(namespace: str, target: str, interval: Union[str, int] = "1m") -> str:
    """Flagger's built-in ``request-success-rate`` for Linkerd, as sent (flagger-and-policies.md §2.4).

    A percentage 0-100 of non-failure inbound responses of the ``target``
    Deployment's pods (``deployment=~"<target>"`` is a fully anchored regex, so
    ``podinfo`` does not match ``podinfo-primary``), with ``rate``. The text is
    Flagger's template after its whitespace collapse, leading space included
    (as in Flagger's own ``linkerd_test.go``).
    """
    w = _window(interval)
    return _flagger(
        f"""
	sum(
		rate(
			response_total{{
				namespace="{namespace}",
				deployment=~"{target}",
				classification!="failure",
				direction="inbound"
			}}[{w}]
		)
	)
	/
	sum(
		rate(
			response_total{{
				namespace="{namespace}",
				deployment=~"{target}",
				direction="inbound"
			}}[{w}]
		)
	)
	* 100"""
    )


def flagger_duration(namespace: str, target: str, interval: Union[str, int] = "1m") -> str:
    """Flagger's built-in ``request-duration`` for Linkerd: P99 latency in ms, as sent (§2.4)."""
    w = _window(interval)
    return _flagger(
        f"""
	histogram_quantile(
		0.99,
		sum(
			rate(
				response_latency_ms_bucket{{
					namespace="{namespace}",
					deployment=~"{target}",
					direction="inbound"
				}}[{w}]
			)
		) by (le)
	)"""
    )


# -- Flagger's MetricTemplates ------------------------------------------------------------------------------

_TEMPLATE_FIELD = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*}}")


class TemplateRenderError(ValueError):
    """A MetricTemplate query names a field Flagger's model does not have (Go's ``function "x" not defined``)."""


def flagger_template_model(canary: dict, interval: str, variables: Mapping[str, object] | None = None) -> dict:
    """What Flagger renders a MetricTemplate with (``providers.Model``): the Canary's name and namespace, its
    target, apex Service (``spec.service.name``, else the target), ingress and route refs, the metric's interval
    (``""`` when the metric sets none) and its ``templateVariables``."""
    meta, spec = canary.get("metadata") or {}, canary.get("spec") or {}
    target = (spec.get("targetRef") or {}).get("name", "")
    return {"name": meta.get("name", ""), "namespace": meta.get("namespace", ""), "target": target,
            "service": (spec.get("service") or {}).get("name") or target,
            "ingress": (spec.get("ingressRef") or {}).get("name", target),
            "route": (spec.get("routeRef") or {}).get("name", target),
            "interval": interval, "variables": dict(variables or {})}


def render_flagger_template(template: str, model: Mapping[str, object], name: str = "query") -> str:
    """Flagger's ``RenderQuery``: ``{{ namespace }}``, ``{{ target }}``, ``{{ variables.direction }}``...

    A missing variable renders as Go's ``<no value>``; an unknown field is the error Go's template gives.
    """
    def sub(m: re.Match) -> str:
        func, field = m.group(1), m.group(2)
        if func == "variables":
            variables = model.get("variables") or {}
            if field is None:
                return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(variables.items())) + "]"
            return str(variables.get(field, "<no value>"))
        if func not in model or field is not None:
            raise TemplateRenderError(f'template: {name}:1: function "{func}" not defined')
        return str(model[func])
    return _TEMPLATE_FIELD.sub(sub, template)


# -- Flagger's built-in checks, by provider -----------------------------------------------------------------

#: Flagger's generic HTTP observer (``pkg/metrics/observers/http.go``), used by providers without their own.
FLAGGER_HTTP_SUCCESS_RATE = """
	sum(
		rate(
			http_request_duration_seconds_count{
				kubernetes_namespace="{{ namespace }}",
				kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",
				status!~"5.*"
			}[{{ interval }}]
		)
	)
	/
	sum(
		rate(
			http_request_duration_seconds_count{
				kubernetes_namespace="{{ namespace }}",
				kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
			}[{{ interval }}]
		)
	)
	* 100"""
FLAGGER_HTTP_DURATION = """
	histogram_quantile(
		0.99,
		sum(
			rate(
				http_request_duration_seconds_bucket{
					kubernetes_namespace="{{ namespace }}",
					kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
				}[{{ interval }}]
			)
		) by (le)
	)"""


def flagger_metrics_provider(mesh_provider: str, canary_provider: str | None, target_kind: str = "Deployment") -> str:
    """Which observer answers a canary's built-in checks (``runBuiltinMetricChecks``): Flagger's
    ``-mesh-provider``, or the Canary's ``spec.provider`` unless Flagger runs a Linkerd provider; a Service
    target gets the ``:service`` variant."""
    provider = mesh_provider
    if canary_provider:
        provider = "linkerd" if "linkerd" in mesh_provider else canary_provider
    if target_kind == "Service":
        provider += ":service"
    return provider


def flagger_builtin_query(metric: str, provider: str, namespace: str, target: str, interval: Union[str, int]) -> str:
    """The PromQL of a built-in check (``request-success-rate`` or ``request-duration``) as Flagger sends it:
    Linkerd's queries with the ``linkerd`` provider, the generic HTTP observer's with any other — which
    Linkerd's metrics cannot answer, why the Gateway API tutorial uses MetricTemplates."""
    if provider == "linkerd":
        return (flagger_success_rate if metric == "request-success-rate" else flagger_duration)(namespace, target, interval)
    template = FLAGGER_HTTP_SUCCESS_RATE if metric == "request-success-rate" else FLAGGER_HTTP_DURATION
    model = {"namespace": namespace, "target": target, "interval": interval if isinstance(interval, str) else _window(interval)}
    return _flagger(render_flagger_template(template, model, metric))


def flagger_duration_ms(value: float, provider: str) -> float:
    """A ``request-duration`` result in milliseconds: Linkerd's histogram is in ms, the HTTP observer's in s."""
    return value if provider == "linkerd" else value * 1000


def flagger_breach(metric: Mapping[str, object], value: float, *, minimum: bool,
                   whole: bool = False) -> tuple[str, float] | None:
    """The bound a check's value breaks, as Flagger compares it: ``("<", min)``, ``(">", max)`` or None.

    ``thresholdRange`` gives both bounds; the legacy ``threshold`` is a minimum when ``minimum`` (the built-in
    success rate) and a maximum otherwise. ``whole``: bounds truncated to whole numbers (``request-duration``
    compares milliseconds as Go ``int``s).
    """
    bound = (lambda x: int(float(x))) if whole else (lambda x: float(x))
    rng = metric.get("thresholdRange")
    if rng is not None:
        if rng.get("min") is not None and value < bound(rng["min"]):
            return "<", bound(rng["min"])
        if rng.get("max") is not None and value > bound(rng["max"]):
            return ">", bound(rng["max"])
        return None
    threshold = bound(metric.get("threshold") or 0)
    if minimum:
        return ("<", threshold) if value < threshold else None
    return (">", threshold) if value > threshold else None


# --------------------------------------------------------------------------- the 2.17+ viz verbs (stat-inbound/outbound, authz)

def viz_rate(metric: str, labels: Mapping[str, LabelValue], group_by: Sequence[str], window: str) -> str:
    """``queryRate`` of ``viz/cmd/stat-inbound.go``: ``sum(increase(M{…}[W])) by (…)``."""
    return f"sum(increase({metric}{label_string(labels)}[{window}])) by ({_group(group_by)})"


def viz_quantile(quantile: str, metric: str, labels: Mapping[str, LabelValue], group_by: Sequence[str],
                 window: str) -> str:
    """``queryQuantiles`` of ``viz/cmd/stat-inbound.go``: ``histogram_quantile(Q, sum(irate(M_bucket{…}[W])) by (le, …))``."""
    return f"histogram_quantile({quantile}, sum(irate({metric}{label_string(labels)}[{window}])) by (le, {_group(group_by)}))"
