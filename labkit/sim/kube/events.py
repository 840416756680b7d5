"""Kubernetes Events: what controllers and the kubelet report, as ``kubectl get events`` shows them.

Events are the learner's window into what the cluster did (Scheduled,
Pulling, Started, ScalingReplicaSet, Flagger's canary steps). Like the real
event recorder, identical events for the same object are aggregated into one
with a count and a new last timestamp (the ``(x3 over 30s)`` of kubectl), and
events expire after an hour (the API server's default ``--event-ttl``).
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from labkit.sim.kube.objects import name_of, namespace_of, rfc3339

#: kube-apiserver's default --event-ttl.
EVENT_TTL = 3600.0

#: The ``source.component`` (and ``reportingComponent``) that each reason comes from.
_SOURCES = {
    "Scheduled": "default-scheduler",
    "FailedScheduling": "default-scheduler",
    "ScalingReplicaSet": "deployment-controller",
    "SuccessfulCreate": "replicaset-controller",
    "SuccessfulDelete": "replicaset-controller",
    "FailedCreate": "replicaset-controller",
    "SuccessfulRescale": "horizontal-pod-autoscaler",
    "Completed": "job-controller",
}


@dataclass
class Event:
    namespace: str
    name: str
    involved: dict
    type: str
    reason: str
    message: str
    source: str
    first: float
    last: float
    count: int = 1
    seq: int = 0
    host: str | None = None

    def to_api(self) -> dict:
        """The event as ``kubectl get event -o yaml`` shows it (core/v1 Event)."""
        source = {"component": self.source}
        if self.host:
            source["host"] = self.host
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": self.name, "namespace": self.namespace, "creationTimestamp": rfc3339(self.first)},
            "involvedObject": dict(self.involved),
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
            "source": source,
            "reportingComponent": self.source,
            "reportingInstance": self.host or "",
            "firstTimestamp": rfc3339(self.first),
            "lastTimestamp": rfc3339(self.last),
            "count": self.count,
        }


@dataclass
class EventRecorder:
    """Stores events per namespace and aggregates repeats, like client-go's event correlator."""

    clock: object
    seed: int = 0
    events: list[Event] = field(default_factory=list)
    _index: dict = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=itertools.count)
    _rng: random.Random | None = None

    def record(self, obj: dict, type: str, reason: str, message: str, *, source: str | None = None,
               host: str | None = None) -> Event:
        if type not in ("Normal", "Warning"):
            raise ValueError(f"event type must be 'Normal' or 'Warning', not {type!r}")
        if self._rng is None:
            self._rng = random.Random(f"{self.seed}:events")
        now = self.clock.t
        md = obj.get("metadata") or {}
        involved = {
            "apiVersion": obj.get("apiVersion", "v1"),
            "kind": obj.get("kind", ""),
            "name": name_of(obj),
            "namespace": namespace_of(obj) or "default",
            "uid": md.get("uid", ""),
            "resourceVersion": md.get("resourceVersion", ""),
        }
        if not namespace_of(obj) and obj.get("kind") in ("Node", "Namespace"):
            involved["namespace"] = "default"
        source = source or _SOURCES.get(reason) or ("kubelet" if involved["kind"] == "Pod" else involved["kind"].lower())
        key = (involved["namespace"], involved["kind"], involved["name"], involved["uid"], type, reason, message, source)
        existing = self._index.get(key)
        if existing is not None and now - existing.last <= 600:
            existing.count += 1
            existing.last = now
            existing.seq = next(self._seq)
            return existing
        # Event names are <object>.<hex nanoseconds-ish>, as the recorder generates them.
        suffix = "%016x" % (int(now * 1e9) + self._rng.getrandbits(20))
        event = Event(involved["namespace"], f"{involved['name']}.{suffix[-16:]}", involved, type, reason, message,
                      source, now, now, 1, next(self._seq), host)
        self.events.append(event)
        self._index[key] = event
        return event

    def live(self, namespace: str | None = None) -> list[Event]:
        """Unexpired events, oldest last-seen first (``kubectl get events --sort-by=.lastTimestamp``)."""
        now = self.clock.t
        selected = [e for e in self.events
                    if now - e.last < EVENT_TTL and (namespace is None or e.namespace == namespace)]
        selected.sort(key=lambda e: (e.last, e.seq))
        return selected

    def rows(self, namespace: str | None = None) -> list[dict]:
        now = self.clock.t
        return [
            {
                "LAST SEEN": now - e.last,
                "TYPE": e.type,
                "REASON": e.reason,
                "OBJECT": f"{e.involved['kind'].lower()}/{e.involved['name']}",
                "MESSAGE": e.message,
            }
            for e in self.live(namespace)
        ]
