"""What Flagger did, interval by interval, kept for people (tables, plots, tests).

A real Flagger leaves the same trail in three places: Kubernetes Events
(aggregated by the event recorder, so repeats collapse into ``x5``), its
JSON log (``kubectl logs deploy/flagger | jq .msg``: every message, in
order) and its own Prometheus metrics. The embedded Flagger records, for
every run of ``advanceCanary`` (one *tick*): when it ran, the phase, the
canary weight the router held and the status recorded afterwards,
``failedChecks``, ``iterations``, every metric value it queried and every
event it emitted — the per-interval view ``labkit.canary.history`` shows
and ``labkit.plots.canary_progress`` draws.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Check:
    """One metric check: what Flagger queried and what it concluded."""

    metric: str
    value: float | None          # None: no value (query failed / no values found)
    ok: bool
    unit: str = ""               # "%" (success rate), "ms" (duration), "" (template / inline query)


@dataclass
class Tick:
    """One run of ``advanceCanary`` for one canary."""

    number: int
    time: float
    phase_before: str
    phase: str = ""
    weight: int = 0              # the canary weight the router holds after the tick
    status_weight: int = 0       # status.canaryWeight after the tick
    failed_checks: int = 0
    iterations: int = 0
    checks: list[Check] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)   # (type, message)


@dataclass
class Event:
    time: float
    type: str
    reason: str
    message: str
    tick: int


class CanaryHistory:
    """Ticks and events of one canary, oldest first."""

    def __init__(self, namespace: str, name: str):
        self.namespace, self.name = namespace, name
        self.ticks: list[Tick] = []
        self.events: list[Event] = []

    @property
    def current(self) -> Tick | None:
        return self.ticks[-1] if self.ticks else None

    def begin(self, t: float, phase: str) -> Tick:
        tick = Tick(len(self.ticks), t, phase)
        self.ticks.append(tick)
        return tick

    def event(self, t: float, type_: str, message: str) -> None:
        tick = self.current
        self.events.append(Event(t, type_, "Synced", message, tick.number if tick else -1))
        if tick is not None:
            tick.events.append((type_, message))


class HistoryBook:
    """Every canary's history, by (namespace, name)."""

    def __init__(self):
        self._by_key: dict[tuple[str, str], CanaryHistory] = {}

    def of(self, namespace: str, name: str) -> CanaryHistory:
        key = (namespace, name)
        if key not in self._by_key:
            self._by_key[key] = CanaryHistory(namespace, name)
        return self._by_key[key]

    def get(self, namespace: str, name: str) -> CanaryHistory | None:
        return self._by_key.get((namespace, name))

    def keys(self) -> list[tuple[str, str]]:
        return sorted(self._by_key)
