"""Flagger's metric checks, sent as PromQL to linkerd-viz's Prometheus (``mesh.query``).

* Built-in checks (``scheduler_metrics.go`` ``runBuiltinMetricChecks``):
  ``request-success-rate`` (percent, must stay above ``thresholdRange.min``)
  and ``request-duration`` (P99 in ms, truncated to an integer, compared as a
  Go ``time.Duration``). With the ``linkerd`` mesh provider they are Linkerd's
  queries (``labkit.metrics.queries.flagger_success_rate`` /
  ``flagger_duration``: inbound responses of the *canary's* pods); with any
  other provider (``gatewayapi:v1beta1``) they are Flagger's generic HTTP
  observer's, which Linkerd's metrics cannot answer — why the modern tutorial
  uses MetricTemplates instead.
* ``query`` metrics (inline PromQL) and ``templateRef`` metrics
  (``MetricTemplate``, ``runMetricChecks``), rendered with ``{{ name }}``,
  ``{{ namespace }}``, ``{{ target }}``, ``{{ service }}``, ``{{ ingress }}``,
  ``{{ interval }}`` and ``{{ variables.X }}``.

A query whose result is empty or NaN (e.g. 0/0 without traffic) is
``no values found`` — a failed check (``pkg/metrics/providers/prometheus.go``).
Event texts are Flagger's exact format strings (reference §1.11).
"""
from __future__ import annotations

import json
import math
import re

from labkit.metrics import queries
from labkit.sim.apps.base import go_duration_text
from labkit.sim.flagger.history import Check

DEFAULT_METRICS_SERVER = "http://prometheus.linkerd-viz:9090"
NO_VALUES = "no values found"
_PROMETHEUS_HOSTS = ("prometheus.linkerd-viz", "prometheus.linkerd-viz.svc", "prometheus.linkerd-viz.svc.cluster.local")

#: Rendering lives with the queries (``labkit.metrics.queries``): the cluster backend renders the same templates.
render = queries.render_flagger_template
RenderError = queries.TemplateRenderError


def trim(query: str) -> str:
    """``trimQuery``: every run of whitespace becomes one space."""
    return re.sub(r"\s+", " ", query)


def go_float(v: float) -> str:
    """Go's ``%v`` for a float64 (``99``, ``99.5``, ``0.001``)."""
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    if v == int(v) and abs(v) < 1e21:
        return str(int(v))
    return repr(float(v))


def go_duration_ms(ms: int) -> str:
    """A ``time.Duration`` of whole milliseconds as Go prints it (``500ms``, ``1.2s``, ``1m0s``)."""
    return go_duration_text(ms / 1000.0)


class Metrics:
    """Runs one canary's metric checks for the Flagger model."""

    def __init__(self, flagger):
        self.flagger = flagger

    # -- the Prometheus provider ----------------------------------------------------------------------
    def _reachable(self, address: str) -> str | None:
        """Why ``address`` cannot be queried (None when it is the running linkerd-viz Prometheus)."""
        m = re.fullmatch(r"https?://([^/:]+)(?::(\d+))?(/.*)?", address.strip())
        if not m:
            return f"prometheus address {address} is not a valid URL"
        host, port = m.group(1), m.group(2) or "80"
        url = f"{address.rstrip('/')}/api/v1/query"
        if host not in _PROMETHEUS_HOSTS:
            return f'request failed: Get "{url}": dial tcp: lookup {host} on 10.96.0.10:53: no such host'
        if port != "9090":
            return f'request failed: Get "{url}": dial tcp {host}:{port}: connect: connection refused'
        if not self.flagger.mesh.prometheus.running():
            return f'request failed: Get "{url}": dial tcp {host}:{port}: connect: connection refused'
        return None

    def run_query(self, address: str, query: str) -> tuple[float | None, str | None]:
        """``RunQuery``: the query's (last) value, or an error (``no values found`` for empty / NaN)."""
        err = self._reachable(address)
        if err:
            return None, err
        from labkit.errors import LabkitError

        try:
            frame = self.flagger.mesh.query(trim(query))
        except (LabkitError, ValueError) as exc:
            body = json.dumps({"status": "error", "errorType": "bad_data", "error": str(exc)})
            return None, f"error response: {body}"
        if frame is None or len(frame) == 0:
            return None, NO_VALUES
        value = float(frame["value"].iloc[-1])
        if math.isnan(value):
            return None, NO_VALUES
        return value, None

    def check_providers(self, cd) -> str | None:
        """``checkMetricProviderAvailability``: the error, or None after the 'all available' event."""
        for metric in cd.metrics:
            name = metric.get("name", "")
            if name in ("request-success-rate", "request-duration"):
                address = cd.spec.get("metricsServer") or self.flagger.metrics_server
                value, err = self.run_query(address, "vector(1)")
                if err or value != 1:
                    return f"prometheus not avaiable: running query failed: {err}"
                continue
            ref = metric.get("templateRef")
            if ref:
                ns = ref.get("namespace") or cd.namespace
                template = self._template(ns, ref.get("name", ""))
                if template is None:
                    return (f'metric template {ref.get("name")}.{ns} error: metrictemplate.flagger.app '
                            f'"{ref.get("name")}" not found')
                provider = (template.get("spec") or {}).get("provider") or {}
                value, err = self.run_query(provider.get("address", ""), "vector(1)")
                if err or value != 1:
                    return (f"{provider.get('type', 'prometheus')} in metric template {template['metadata']['name']}."
                            f"{template['metadata'].get('namespace')} not avaiable: running query failed: {err}")
        self.flagger.info(cd, "all the metrics providers are available!")
        return None

    def _template(self, namespace: str, name: str) -> dict | None:
        rtype = self.flagger.cluster.discovery.by_key("flagger.app", "MetricTemplate")
        return self.flagger.cluster.api.get(rtype, namespace, name) if rtype else None

    # -- checks ------------------------------------------------------------------------------------
    def _model(self, cd, interval: str, variables: dict | None = None) -> dict:
        return queries.flagger_template_model(cd.obj, interval, variables)

    def _metrics_provider(self, cd) -> str:
        return queries.flagger_metrics_provider(self.flagger.provider, cd.provider, cd.target_kind)

    def _record(self, check: Check) -> None:
        self.flagger.record_check(check)

    def run_builtin(self, cd) -> bool:
        """``runBuiltinMetricChecks``: request-success-rate, request-duration and inline queries."""
        provider = self._metrics_provider(cd)
        address = cd.spec.get("metricsServer") or self.flagger.metrics_server
        linkerd = provider == "linkerd"
        for metric in cd.metrics:
            name = metric.get("name", "")
            interval = metric.get("interval") or "1m"
            if name == "request-success-rate":
                query = queries.flagger_builtin_query(name, provider, cd.namespace, cd.target, interval)
                value, err = self.run_query(address, query)
                if err is not None:
                    self._record(Check(name, None, False, "%"))
                    if err == NO_VALUES:
                        wrapped = f"running query failed: {err}" if linkerd else err
                        self.flagger.warn(cd, f"Halt advancement no values found for {provider} metric {name} probably "
                                              f"{cd.target}.{cd.namespace} is not receiving traffic: {wrapped}")
                    else:
                        self.flagger.error(cd, f"Prometheus query failed: running query failed: {err}")
                    return False
                breach = queries.flagger_breach(metric, value, minimum=True)
                if breach:
                    self.flagger.warn(cd, f"Halt {cd.name}.{cd.namespace} advancement success rate {value:.2f}% "
                                          f"{breach[0]} {go_float(breach[1])}%")
                ok = breach is None
                self._record(Check(name, value, ok, "%"))
                if not ok:
                    return False
            if name == "request-duration":
                query = queries.flagger_builtin_query(name, provider, cd.namespace, cd.target, interval)
                value, err = self.run_query(address, query)
                if err is not None:
                    self._record(Check(name, None, False, "ms"))
                    if err == NO_VALUES:
                        self.flagger.warn(cd, f"Halt advancement no values found for {provider} metric {name} probably "
                                              f"{cd.target}.{cd.namespace} is not receiving traffic")
                    else:
                        self.flagger.error(cd, f"Prometheus query failed: running query failed: {err}")
                    return False
                ms = _go_int64(queries.flagger_duration_ms(value, provider))
                breach = queries.flagger_breach(metric, ms, minimum=False, whole=True)
                if breach:
                    self.flagger.warn(cd, f"Halt {cd.name}.{cd.namespace} advancement request duration "
                                          f"{go_duration_ms(ms)} {breach[0]} {go_duration_ms(breach[1])}")
                ok = breach is None
                self._record(Check(name, float(ms), ok, "ms"))
                if not ok:
                    return False
            if metric.get("query"):
                value, err = self.run_query(address, metric["query"])
                if err is not None:
                    self._record(Check(name, None, False))
                    if err == NO_VALUES:
                        self.flagger.warn(cd, f"Halt advancement no values found for metric: {name}")
                    else:
                        self.flagger.error(cd, f"Prometheus query failed for {name}: {err}")
                    return False
                if not self._compare(cd, name, value, metric):
                    return False
        return True

    def _compare(self, cd, name: str, value: float, metric: dict) -> bool:
        breach = queries.flagger_breach(metric, value, minimum=False)
        if breach:
            self.flagger.warn(cd, f"Halt {cd.name}.{cd.namespace} advancement {name} {value:.2f} {breach[0]} "
                                  f"{go_float(breach[1])}")
        self._record(Check(name, value, breach is None))
        return breach is None

    def run_templates(self, cd) -> bool:
        """``runMetricChecks``: every ``templateRef`` metric, rendered and queried."""
        for metric in cd.metrics:
            ref = metric.get("templateRef")
            if not ref:
                continue
            name = metric.get("name", "")
            ns = ref.get("namespace") or cd.namespace
            template = self._template(ns, ref.get("name", ""))
            if template is None:
                self.flagger.error(cd, f'Metric template {ref.get("name")}.{ns} error: metrictemplate.flagger.app '
                                       f'"{ref.get("name")}" not found')
                return False
            tspec = template.get("spec") or {}
            provider = tspec.get("provider") or {}
            if provider.get("type", "prometheus") != "prometheus":
                self.flagger.error(cd, f"Metric template {ref.get('name')}.{ns} provider {provider.get('type')} error: "
                                       f"provider {provider.get('type')} is not modelled by the embedded mesh")
                return False
            # The 1m default of the built-in loop is set on a copy: a templateRef metric without an
            # interval renders {{ interval }} as "" (reference §2.2).
            try:
                query = render(tspec.get("query", ""), self._model(cd, metric.get("interval") or "",
                                                                    metric.get("templateVariables")), ref.get("name", ""))
            except RenderError as exc:
                self.flagger.error(cd, f"Metric template {ref.get('name')}.{ns} query render error: {exc}")
                return False
            value, err = self.run_query(provider.get("address", ""), query)
            if err is not None:
                self._record(Check(name, None, False))
                if err == NO_VALUES:
                    self.flagger.warn(cd, f"Halt advancement no values found for custom metric: {name}: {err}")
                else:
                    self.flagger.error(cd, f"Metric query failed for {name}: {err}")
                return False
            if not self._compare(cd, name, value, metric):
                return False
        return True


def _go_int64(value: float) -> int:
    """Go's ``int64(float64)``: truncation toward zero (+Inf / huge values saturate here)."""
    if math.isinf(value):
        return 2 ** 63 - 1 if value > 0 else -(2 ** 63)
    return int(value)
