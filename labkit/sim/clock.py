"""The embedded mesh's virtual clock: time moves only when a lab waits.

Every controller, traffic generator and the metrics scraper schedule their
work here. Events at the same instant run in the order they were scheduled
(a sequence number breaks ties), which is what makes a seeded run
byte-for-byte repeatable.

Interrupts. Learners press Ctrl-C (or the notebook's stop button) in the
middle of long waits, so an interrupted wait must leave the model as if time
had stopped at the last event that ran to completion:

* Ctrl-C is *held* while an event runs and delivered at the next boundary
  between two events (:class:`hold_interrupts`): no event is left half done.
  A second Ctrl-C after an event has already run for ``ESCAPE_AFTER`` wall
  seconds is delivered at once, so a runaway event can still be stopped.
* An event that raises (an exception injected by a test, a bug, an interrupt
  we could not hold because the wait runs outside the main thread) is put
  back in the queue with its time and sequence number, so nothing scheduled
  is lost and continuing runs it again, in the same order as before.
"""
from __future__ import annotations

import heapq
import itertools
import signal
import threading
import time
from typing import Callable

#: Virtual time zero: 2026-07-01 10:00 UTC, soon after Linkerd 2.20, the release the mesh models (a fixed date,
#: so that every run shows the same times; the original labs' 2019-10-09 made every axis look stale).
EPOCH = 1782900000.0
#: Wall seconds an event may run before a second Ctrl-C is delivered without waiting for it to finish.
ESCAPE_AFTER = 2.0


class _Held:
    """The main thread's SIGINT handler while the clock runs: remembers an interrupt instead of raising it."""

    def __init__(self):
        self.pending: list[float] = []  # the wall time of the held interrupt (a list: truthy when held)
        self.depth = 0
        self.previous = None

    def handler(self, signum, frame) -> None:
        if self.pending and time.monotonic() - self.pending[0] > ESCAPE_AFTER:
            self.deliver(frame)
            return
        if not self.pending:
            self.pending.append(time.monotonic())

    def deliver(self, frame=None) -> None:
        """Raise the held interrupt the way the handler in place before the clock ran would have."""
        self.pending.clear()
        previous = self.previous
        if callable(previous):
            previous(signal.SIGINT, frame)  # Python's default handler raises KeyboardInterrupt
        else:
            raise KeyboardInterrupt


_HELD = _Held()
_NEVER: list = []  # what a thread that cannot hold interrupts gets: never truthy


class hold_interrupts:
    """``with hold_interrupts() as held:`` — Ctrl-C is held until ``deliver_held()`` or the outermost exit.

    Only the main thread receives signals (and may install handlers); elsewhere
    this does nothing. Nested uses share the outermost handler.
    """

    __slots__ = ("_active",)

    def __enter__(self) -> list:
        self._active = False
        if threading.current_thread() is not threading.main_thread():
            return _NEVER
        if _HELD.depth == 0:
            previous = signal.getsignal(signal.SIGINT)
            if previous is signal.SIG_IGN or previous is None or previous == _HELD.handler:
                return _NEVER
            signal.signal(signal.SIGINT, _HELD.handler)
            _HELD.previous = previous
        _HELD.depth += 1
        self._active = True
        return _HELD.pending

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._active:
            return
        _HELD.depth -= 1
        if _HELD.depth:
            return
        signal.signal(signal.SIGINT, _HELD.previous)
        if _HELD.pending:
            if exc_type is None:
                _HELD.deliver()
            _HELD.pending.clear()  # another exception is already on its way out


def deliver_held() -> None:
    """Raise a held Ctrl-C now (called at a boundary between two events)."""
    _HELD.deliver()


class Clock:
    """A discrete-event scheduler over virtual seconds since :data:`EPOCH`.

    Events are ``(time, sequence number, fn, owner)``, run in that order; an
    event with an owner (a pod) runs only while ``owner.alive``. Most are
    timers far ahead (controller resyncs, probes, scrapes); the next event of
    all is nearly always the one a traffic generator just scheduled. So the
    earliest event scheduled with :meth:`after` since the last run waits in a
    slot of its own (``_first``) beside the heap of the rest: it goes in and
    out with a comparison or two, not a trip down and up the heap. Which of
    the two places an event waits in changes nothing but speed: the run loop
    takes the earlier of the slot's and the heap's top each time.
    """

    def __init__(self, start: float = EPOCH):
        self.t = start
        self._queue: list[tuple] = []  # a heap
        self._first: tuple | None = None  # an event not in the heap, or None
        self._seq = itertools.count()

    def at(self, when: float, fn: Callable[[], None], owner=None) -> None:
        """Run ``fn`` at virtual time ``when`` (now, if ``when`` is in the past); with an ``owner``, only if
        ``owner.alive`` then."""
        heapq.heappush(self._queue, (max(when, self.t), next(self._seq), fn, owner))

    def after(self, delay: float, fn: Callable[[], None], owner=None) -> None:
        """Run ``fn`` ``delay`` seconds from now (now, if ``delay`` is not positive): :meth:`at` ``(t + delay)``,
        as every modelled client schedules its next request."""
        t = self.t
        event = (t + delay if delay > 0.0 else t, next(self._seq), fn, owner)
        first = self._first
        if first is None:
            self._first = event
        elif event[0] < first[0]:
            self._first = event
            heapq.heappush(self._queue, first)
        else:
            heapq.heappush(self._queue, event)

    def every(self, period: float, fn: Callable[[], None], *, first: float | None = None) -> None:
        """Run ``fn`` every ``period`` seconds, first at ``first`` (default: one period from now).

        The next run is scheduled once this one has finished; if ``fn`` raises,
        :meth:`run_until` puts this run back in the queue, so the series goes on.
        """

        def tick() -> None:
            fn()
            self.after(period, tick)

        self.at(self.t + period if first is None else first, tick)

    def run_until(self, until: float) -> None:
        """Run every event due at or before ``until``, then set the time to ``until``.

        Interrupted (see the module docstring), the time is that of the last
        event completed and every event not completed is still queued.
        """
        queue = self._queue
        pop = heapq.heappop
        with hold_interrupts() as held:
            while True:
                first = self._first
                if queue:
                    top = queue[0]
                    if first is None or top[0] < first[0] or (top[0] == first[0] and top[1] < first[1]):
                        first = None  # the heap's is the earlier
                        if top[0] > until:
                            break
                    elif first[0] > until:
                        break
                elif first is None or first[0] > until:
                    break
                if held:
                    deliver_held()
                if first is None:
                    event = pop(queue)
                else:
                    event = first
                    self._first = None
                last = self.t
                self.t = event[0]
                owner = event[3]
                try:
                    if owner is None or owner.alive:
                        event[2]()
                except BaseException:
                    heapq.heappush(queue, event)
                    self.t = last
                    raise
            if until > self.t:
                self.t = until

    def next_event(self) -> float | None:
        times = [e[0] for e in (self._first, self._queue[0] if self._queue else None) if e is not None]
        return min(times) if times else None

    def pending(self) -> int:
        """How many events are queued (what an interrupted run must not lose)."""
        return len(self._queue) + (self._first is not None)

    def queued(self) -> list[tuple[float, int]]:
        """The (time, sequence number) of every queued event, in the order they will run."""
        return sorted((e[0], e[1]) for e in ([self._first] if self._first is not None else []) + self._queue)
