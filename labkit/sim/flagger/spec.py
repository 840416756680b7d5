"""A Canary's spec as Flagger reads it: field access with Flagger's defaults.

Mirrors the getters of ``pkg/apis/flagger/v1beta1/canary.go`` (Flagger
v1.44; reference/flagger-and-policies.md §1.2, §2.2): the analysis interval
(default 60s, raised to 10s), the failed-checks threshold (default 1), the
progress deadline (600s), the metric interval (``1m``), ``maxWeight`` (100),
``skipAnalysis`` (also true when there is no ``analysis`` block) and the
strategy chosen from ``iterations`` / ``match``.
"""
from __future__ import annotations

from labkit.sim.apps.base import go_duration

DEFAULT_INTERVAL = 60.0
MIN_INTERVAL = 10.0
DEFAULT_THRESHOLD = 1
DEFAULT_PROGRESS_DEADLINE = 600
DEFAULT_METRIC_INTERVAL = "1m"
TOTAL_WEIGHT = 100
#: ``-selector-labels`` default: the pod label Flagger renames to ``<value>-primary``.
SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")


class CanarySpec:
    """Read-only view of one Canary object (an API-shaped dict)."""

    def __init__(self, obj: dict):
        self.obj = obj
        self.meta = obj.get("metadata") or {}
        self.spec = obj.get("spec") or {}
        self.status = obj.get("status") or {}

    # -- identity ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.meta.get("name", "")

    @property
    def namespace(self) -> str:
        return self.meta.get("namespace", "default")

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def target_kind(self) -> str:
        return (self.spec.get("targetRef") or {}).get("kind", "Deployment")

    @property
    def target(self) -> str:
        return (self.spec.get("targetRef") or {}).get("name", "")

    @property
    def primary(self) -> str:
        return f"{self.target}-primary"

    @property
    def provider(self) -> str:
        return self.spec.get("provider") or ""

    @property
    def autoscaler(self) -> dict | None:
        return self.spec.get("autoscalerRef")

    # -- service ---------------------------------------------------------------------------
    @property
    def service(self) -> dict:
        return self.spec.get("service") or {}

    @property
    def service_name(self) -> str:
        """The apex Service: ``service.name``, else the target's name (``GetServiceNames``)."""
        return self.service.get("name") or self.target

    @property
    def port(self) -> int:
        return int(self.service.get("port", 0) or 0)

    @property
    def port_name(self) -> str:
        return self.service.get("portName") or "http"

    @property
    def target_port(self):
        return self.service.get("targetPort", self.port) or self.port

    # -- analysis ----------------------------------------------------------------------------
    @property
    def analysis(self) -> dict:
        return self.spec.get("analysis") or self.spec.get("canaryAnalysis") or {}

    def skip_analysis(self) -> bool:
        if self.spec.get("analysis") is None and self.spec.get("canaryAnalysis") is None:
            return True
        return bool(self.spec.get("skipAnalysis"))

    @property
    def suspended(self) -> bool:
        return bool(self.spec.get("suspend"))

    def interval(self) -> float:
        """``GetAnalysisInterval``: 60s unless set; unparseable → 60s; below 10s → 10s."""
        raw = self.analysis.get("interval")
        if not raw:
            return DEFAULT_INTERVAL
        try:
            secs = go_duration(str(raw))
        except ValueError:
            return DEFAULT_INTERVAL
        return max(secs, MIN_INTERVAL)

    def threshold(self) -> int:
        value = int(self.analysis.get("threshold") or 0)
        return value if value > 0 else DEFAULT_THRESHOLD

    def progress_deadline(self) -> int:
        value = self.spec.get("progressDeadlineSeconds")
        return int(value) if value else DEFAULT_PROGRESS_DEADLINE

    def primary_ready_threshold(self) -> int:
        return int(self.analysis.get("primaryReadyThreshold") or 100)

    def canary_ready_threshold(self) -> int:
        return int(self.analysis.get("canaryReadyThreshold") or 100)

    @property
    def step_weight(self) -> int:
        return int(self.analysis.get("stepWeight") or 0)

    @property
    def step_weights(self) -> list[int]:
        return [int(w) for w in self.analysis.get("stepWeights") or []]

    @property
    def step_weight_promotion(self) -> int:
        return int(self.analysis.get("stepWeightPromotion") or 0)

    @property
    def iterations(self) -> int:
        return int(self.analysis.get("iterations") or 0)

    @property
    def match(self) -> list:
        return self.analysis.get("match") or []

    @property
    def mirror(self) -> bool:
        return bool(self.analysis.get("mirror"))

    @property
    def metrics(self) -> list[dict]:
        return list(self.analysis.get("metrics") or [])

    @property
    def webhooks(self) -> list[dict]:
        return list(self.analysis.get("webhooks") or [])

    def max_weight(self) -> int:
        """``maxWeight``: the last of ``stepWeights`` (capped at 100), else ``maxWeight``, else 100."""
        weights = self.step_weights
        if weights:
            return min(TOTAL_WEIGHT, weights[-1])
        mw = int(self.analysis.get("maxWeight") or 0)
        return mw if mw > 0 else TOTAL_WEIGHT

    def next_step_weight(self, canary_weight: int) -> int:
        """``nextStepWeight``: stepWeight wins; otherwise walk stepWeights (scheduler.go)."""
        weights = self.step_weights
        if self.step_weight > 0 or not weights:
            return self.step_weight
        max_step = TOTAL_WEIGHT - canary_weight
        if max_step == 0:
            return 1
        if canary_weight == 0:
            return min(max_step, weights[0])
        for i in range(len(weights) - 1):
            if weights[i] == canary_weight:
                return min(max_step, weights[i + 1] - canary_weight)
        return max_step

    def strategy(self) -> str:
        """``DeploymentStrategy``: ``ab`` (match + iterations), ``bluegreen`` (iterations), else ``canary``."""
        if self.match and self.iterations > 0:
            return "ab"
        if self.iterations > 0:
            return "bluegreen"
        return "canary"

    # -- status --------------------------------------------------------------------------------
    @property
    def phase(self) -> str:
        return self.status.get("phase", "") or ""

    @property
    def failed_checks(self) -> int:
        return int(self.status.get("failedChecks") or 0)

    @property
    def status_iterations(self) -> int:
        return int(self.status.get("iterations") or 0)

    @property
    def status_weight(self) -> int:
        return int(self.status.get("canaryWeight") or 0)
