"""The embedded mesh's virtual clock: time moves only when a lab waits.

Every controller, traffic generator and the metrics scraper schedule their
work here. Events at the same instant run in the order they were scheduled
(a sequence number breaks ties), which is what makes a seeded run
byte-for-byte repeatable.
"""
from __future__ import annotations

import heapq
import itertools
from typing import Callable

#: Virtual time zero: 2026-07-01 10:00 UTC, soon after Linkerd 2.20, the release the mesh models (a fixed date,
#: so that every run shows the same times; the original labs' 2019-10-09 made every axis look stale).
EPOCH = 1782900000.0


class Clock:
    """A discrete-event scheduler over virtual seconds since :data:`EPOCH`."""

    def __init__(self, start: float = EPOCH):
        self.t = start
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def at(self, when: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at virtual time ``when`` (now, if ``when`` is in the past)."""
        heapq.heappush(self._queue, (max(when, self.t), next(self._seq), fn))

    def after(self, delay: float, fn: Callable[[], None]) -> None:
        self.at(self.t + delay, fn)

    def every(self, period: float, fn: Callable[[], None], *, first: float | None = None) -> None:
        """Run ``fn`` every ``period`` seconds, first at ``first`` (default: one period from now)."""

        def tick() -> None:
            fn()
            self.after(period, tick)

        self.at(self.t + period if first is None else first, tick)

    def run_until(self, until: float) -> None:
        """Run every event due at or before ``until``, then set the time to ``until``."""
        queue = self._queue
        pop = heapq.heappop
        while queue and queue[0][0] <= until:
            when, _, fn = pop(queue)
            self.t = when
            fn()
        self.t = max(self.t, until)

    def next_event(self) -> float | None:
        return self._queue[0][0] if self._queue else None
