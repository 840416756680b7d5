"""Flagger's per-interval record, rebuilt from what a real cluster exposes.

The embedded Flagger keeps a record of every analysis interval (``labkit.sim.flagger.history``). A real
Flagger keeps none that an API returns, but it leaves three trails, and together they give the same record:

* **its JSON log** (``kubectl -n flagger-system logs deploy/flagger flagger | jq .msg``): every event message, each
  occurrence, stamped with the time of the interval (*tick*) that emitted it. Kubernetes Events are not
  enough on their own: the event recorder folds repeats into one Event with a count, so the third
  ``Halt advancement`` of a rollback would be lost. Events still give each message's type (Normal or
  Warning), which the log's level does not (Flagger logs warnings at level ``info``);
* **the Canary's status**, sampled by ``labkit.canary.watch`` while Flagger works (a *session*), together
  with the canary weight its router (TrafficSplit or HTTPRoute) holds;
* **the metrics server**: Flagger's own queries, run again at each tick's time, give the values it saw.

Ticks come at a fixed period (``spec.analysis.interval``) from the canary's first log line, so the ticks
in between that logged nothing are filled in. A tick is in the record when a watch session saw the status
right after it. The functions here are pure (lists in, rows out) except the two readers at the bottom,
which take a mesh and use only the labkit contract (``get``, ``logs``, ``events``, ``query``).
"""
from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pandas as pd

from labkit.errors import LabkitError

#: Where Flagger runs: its current kustomization, the 2019 lab's layout, a Helm install.
FLAGGER_NAMESPACES = ("flagger-system", "linkerd", "flagger")
#: Phases in which a tick runs the analysis (Flagger's ``advanceCanary`` before ``runAnalysis``).
ANALYSING = ("Progressing", "WaitingPromotion")
#: Event messages of ticks that end before the analysis (a new revision, a canary not ready yet).
NO_ANALYSIS = ("New revision detected!", " not ready: ")


@dataclass
class LogEvent:
    time: pd.Timestamp
    level: str
    message: str


@dataclass
class Session:
    """One ``watch`` call: when it started and last looked, and each status it saw change (with the router's weight)."""

    start: pd.Timestamp
    end: pd.Timestamp
    samples: list[tuple[pd.Timestamp, dict]] = field(default_factory=list)

    def seen(self, now: pd.Timestamp, status: dict) -> None:
        """A poll: keep the status if anything Flagger writes per interval changed."""
        keys = ("phase", "canaryWeight", "failedChecks", "iterations", "routeWeight")
        if not self.samples or any(self.samples[-1][1].get(k) != status.get(k) for k in keys):
            self.samples.append((now, dict(status)))
        self.end = now

    def before(self, t: pd.Timestamp) -> dict | None:
        """The last status seen strictly before ``t`` (None: the session started later)."""
        found = None
        for when, status in self.samples:
            if when >= t:
                break
            found = status
        return found


# -- the log ---------------------------------------------------------------------------------------------

def parse_log(text: str, canary: str) -> list[LogEvent]:
    """Flagger's JSON log lines about ``canary`` (``name.namespace``), oldest first; other lines are skipped.

    ``ts`` is ISO 8601 (Flagger ≥ 1.0) or epoch seconds (older zap encoders).
    """
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("canary") != canary or "msg" not in entry or "ts" not in entry:
            continue
        ts = entry["ts"]
        when = pd.Timestamp(float(ts), unit="s", tz="UTC") if isinstance(ts, (int, float)) else pd.Timestamp(ts)
        if when.tzinfo is None:
            when = when.tz_localize("UTC")
        found.append(LogEvent(when, str(entry.get("level", "info")), str(entry["msg"])))
    return found


def event_type(message: str, level: str, known: dict[str, str]) -> str:
    """Normal or Warning: as the cluster's Event for this message says, else from the message itself.

    Events expire (an hour by default), the log does not; without one, Flagger's own wording decides:
    its warnings are the halts, rollbacks, failures and not-ready waits.
    """
    if message in known:
        return known[message]
    if level in ("error", "warn", "warning") or message.startswith(("Halt ", "Rolling back ", "Canary failed!")) \
            or " not ready" in message:
        return "Warning"
    return "Normal"


# -- ticks ----------------------------------------------------------------------------------------------

def tick_times(log: list[LogEvent], interval: pd.Timedelta, until: pd.Timestamp) -> list[pd.Timestamp]:
    """Every tick from the first logged one to ``until``: logged ticks, and the silent ones between at ``interval``.

    A tick's lines can spread over seconds (a webhook such as the acceptance test runs inside it), so a line
    starts a new tick only half an interval or more after the current tick began.
    """
    logged: list[pd.Timestamp] = []
    for event in log:
        if not logged or event.time - logged[-1] >= interval / 2:
            logged.append(event.time)
    ticks: list[pd.Timestamp] = []
    for i, t in enumerate(logged):
        limit = logged[i + 1] - interval / 2 if i + 1 < len(logged) else until
        ticks.append(t)
        while t + interval <= limit:
            t = t + interval
            ticks.append(t)
    return ticks


def tick_of(time: pd.Timestamp, ticks: list[pd.Timestamp]) -> int:
    """The number of the tick a log line belongs to: the last tick begun at or before it (-1 before the first)."""
    return bisect.bisect_right(ticks, time) - 1


def covered(t: pd.Timestamp, following: pd.Timestamp, sessions: Iterable[Session]) -> Session | None:
    """The watch session that saw the status right after tick ``t`` (it polled between ``t`` and the next tick)."""
    for session in sessions:
        if session.start < following and t <= session.end:
            return session
    return None


def analysed(before: dict | None, events: list[str], threshold: int) -> bool:
    """Did the tick run Flagger's metric checks? Only mid-analysis, with traffic or iterations already under way,
    fewer failed checks than the threshold, and no new revision or readiness wait ending the tick first."""
    if before is None or before.get("phase") not in ANALYSING:
        return False
    if not (before.get("routeWeight") or before.get("iterations")):
        return False
    if int(before.get("failedChecks") or 0) >= threshold:
        return False
    return not any(marker in message for message in events for marker in NO_ANALYSIS)


def check_order(metrics: list[dict]) -> list[dict]:
    """The order Flagger checks a Canary's metrics in: the built-in and inline-query ones, then the MetricTemplates
    (``runBuiltinMetricChecks`` before ``runMetricChecks``), each group in the spec's order."""
    return [m for m in metrics if not m.get("templateRef")] + [m for m in metrics if m.get("templateRef")]


def out_of_range(value: float, metric: dict) -> bool:
    """Would Flagger halt on this value? No value always halts; otherwise its own comparison decides
    (``queries.flagger_breach``: the legacy ``threshold`` is a minimum for the built-in success rate)."""
    from labkit.metrics import queries

    if value != value:
        return True
    builtin = not (metric.get("query") or metric.get("templateRef"))
    name = metric.get("name")
    return queries.flagger_breach(metric, value, minimum=builtin and name == "request-success-rate",
                                  whole=builtin and name == "request-duration") is not None


#: A canary history's own columns (labkit.canary.history), before one column per other metric Flagger checked.
FIXED_COLUMNS = ("time", "interval", "phase", "weight", "canaryWeight", "failedChecks", "iterations", "success",
                 "latency")


def rows(log: list[tuple[LogEvent, str]], sessions: list[Session], spec: dict,
         value_at: Callable[[dict, pd.Timestamp], float], *, since: pd.Timestamp | None,
         until: pd.Timestamp) -> tuple[list[dict], list[str]]:
    """The history rows (labkit.canary.history's columns) and the metric columns in the order Flagger checked them.

    ``log`` pairs each log event with its type; ``value_at(metric, time)`` runs one metric's query (NaN: no value).
    """
    from labkit.durations import seconds

    analysis = spec.get("analysis") or {}
    interval = pd.Timedelta(seconds=seconds(analysis.get("interval") or "1m", name="spec.analysis.interval"))
    threshold = int(analysis.get("threshold") or 0)
    metrics = check_order(analysis.get("metrics") or [])
    ticks = tick_times([e for e, _ in log], interval, until)
    by_tick: dict[int, list[str]] = {}
    for event, _type in log:
        by_tick.setdefault(tick_of(event.time, ticks), []).append(event.message)
    found, names = [], []
    for number, t in enumerate(ticks):
        following = ticks[number + 1] if number + 1 < len(ticks) else t + interval
        session = covered(t, following, sessions)
        if session is None or (since is not None and t < since):
            continue
        after = session.before(following) or {}
        messages = by_tick.get(number, [])
        row: dict[str, Any] = {"time": t, "interval": number, "phase": after.get("phase", ""),
                               "weight": int(after.get("routeWeight") or 0),
                               "canaryWeight": int(after.get("canaryWeight") or 0),
                               "failedChecks": int(after.get("failedChecks") or 0),
                               "iterations": int(after.get("iterations") or 0),
                               "success": math.nan, "latency": math.nan}
        if analysed(session.before(t), messages, threshold):
            for metric in metrics:
                name = metric.get("name", "")
                value = value_at(metric, t)
                if name not in FIXED_COLUMNS:  # a template named like a fixed column ("latency") fills that one
                    if name not in names:
                        names.append(name)
                    row[name] = value
                lname = name.lower()
                if "success" in lname:
                    row["success"] = value / 100.0
                elif "duration" in lname or "latency" in lname:
                    row["latency"] = value
                if out_of_range(value, metric):
                    break
        row["events"] = " | ".join(messages)
        found.append(row)
    return found, names


# -- the readers (a mesh through the labkit contract) ------------------------------------------------------

def flagger_log(mesh) -> str | None:
    """Flagger's log, from whichever namespace it was installed in (None: no Flagger pod found)."""
    for namespace in FLAGGER_NAMESPACES:
        try:
            return mesh.logs("deploy/flagger", namespace=namespace)
        except LabkitError:
            continue
    return None


def flagger_mesh_provider(mesh) -> str:
    """Flagger's ``-mesh-provider`` flag, read from its Deployment ("linkerd", the labs' choice, if not found)."""
    for namespace in FLAGGER_NAMESPACES:
        try:
            deploy = mesh.get("deploy", "flagger", namespace)
        except LabkitError:
            continue
        for container in deploy["spec"]["template"]["spec"].get("containers") or []:
            for arg in [*(container.get("command") or []), *(container.get("args") or [])]:
                if str(arg).startswith("-mesh-provider="):
                    return str(arg).split("=", 1)[1]
    return "linkerd"


def route_weight(mesh, canary: dict) -> int:
    """The canary weight Flagger's router holds: the ``<target>-canary`` backend of the TrafficSplit (SMI) or of
    the HTTPRoute (Gateway API) named after the target; ``status.canaryWeight`` when neither exists."""
    ns, target = canary["metadata"]["namespace"], canary["spec"]["targetRef"]["name"]
    want = f"{target}-canary"
    for kind in ("trafficsplit", "httproute"):
        try:
            obj = mesh.get(kind, target, ns)
        except LabkitError:
            continue
        spec = obj.get("spec") or {}
        backends = spec.get("backends") or [ref for rule in spec.get("rules") or [] for ref in rule.get("backendRefs") or []]
        for backend in backends:
            if (backend.get("service") or backend.get("name")) == want:
                try:
                    return int(float(str(backend.get("weight") or 0)))
                except ValueError:  # not a number Flagger writes: fall back to the status
                    break
    return int((canary.get("status") or {}).get("canaryWeight") or 0)
