"""The shape every controller shares: a de-duplicating work queue on the virtual clock.

A real controller reacts to watch events by queueing object keys and
reconciling each key a few milliseconds later, once, however many events
arrived meanwhile. Modelling that (rather than reacting inside the watch
callback) keeps reconciles ordered by the clock, avoids re-entrancy, and
lets several changes in one apply be handled in one pass.
"""
from __future__ import annotations

from typing import Hashable


class Controller:
    #: Seconds between an event and the reconcile it triggers.
    latency = 0.01

    def __init__(self, cluster):
        self.cluster = cluster
        self.api = cluster.api
        self.clock = cluster.clock
        self._queued: dict[Hashable, None] = {}

    def enqueue(self, key: Hashable) -> None:
        if key in self._queued:
            return
        self._queued[key] = None
        self.clock.after(self.latency, lambda: self._run(key))

    def enqueue_at(self, when: float, key: Hashable) -> None:
        """Reconcile ``key`` again at ``when`` (a deadline, minReadySeconds elapsing, a sync period)."""
        self.clock.at(when, lambda: self.enqueue(key))

    def _run(self, key: Hashable) -> None:
        self._queued.pop(key, None)
        self.sync(key)

    def sync(self, key: Hashable) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
