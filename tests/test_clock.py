"""The virtual clock runs events in (time, order scheduled) order, whatever mix of near and far events it holds.

The clock keeps the earliest new event in a slot beside its heap (see ``Clock``); these tests hold it to a
plain heap of every event, the order any correct scheduler must give.
"""
from __future__ import annotations

import heapq
import itertools
import random

import pytest

from labkit.sim.clock import Clock


def _workload(seed: int, clock_like):
    """Timers far ahead, a client rescheduling itself a little ahead, ties at the same instant, events scheduled
    from inside events and in the past: the log of what ran, in order."""
    rng = random.Random(seed)
    log = []
    names = itertools.count()

    def event(name, depth):
        def run():
            log.append((name, clock_like.t))
            if depth < 3:
                for _ in range(rng.choice((0, 1, 1, 2))):
                    delay = rng.choice((0.0, -1.0, 0.5, 0.5, 1.0, rng.uniform(0, 30), 10.0))
                    clock_like.after(delay, event(next(names), depth + 1))
        return run

    for _ in range(40):
        when = clock_like.t + rng.choice((0.0, 5.0, 10.0, rng.uniform(0, 60)))
        clock_like.at(when, event(next(names), 0))
    clock_like.run_until(clock_like.t + 45.0)
    for _ in range(10):
        clock_like.after(rng.choice((0.0, 1.0, 2.5)), event(next(names), 0))
    clock_like.run_until(clock_like.t + 100.0)
    return log


class _PlainHeapClock:
    """Every event in one heap: the reference order."""

    def __init__(self, start: float):
        self.t = start
        self.queue = []
        self.seq = itertools.count()

    def at(self, when, fn):
        heapq.heappush(self.queue, (max(when, self.t), next(self.seq), fn))

    def after(self, delay, fn):
        self.at(self.t + max(delay, 0.0), fn)

    def run_until(self, until):
        while self.queue and self.queue[0][0] <= until:
            self.t, _, fn = heapq.heappop(self.queue)
            fn()
        self.t = max(self.t, until)


@pytest.mark.parametrize("seed", range(8))
def test_events_run_in_time_then_scheduling_order(seed):
    clock = Clock()
    got = _workload(seed, clock)
    assert got == _workload(seed, _PlainHeapClock(Clock().t))
    assert len(got) > 100 and any(a[1] == b[1] for a, b in zip(got, got[1:]))  # ties happened
    times = [t for _, t in got]
    assert times == sorted(times)


def test_pending_queued_and_next_event_count_the_slot_too():
    clock = Clock()
    assert clock.pending() == 0 and clock.next_event() is None and clock.queued() == []
    clock.after(10.0, lambda: None)   # into the slot
    clock.after(5.0, lambda: None)    # earlier: takes the slot, the first goes to the heap
    clock.after(7.0, lambda: None)    # to the heap
    assert clock.pending() == 3
    assert clock.next_event() == clock.t + 5.0
    assert [when - clock.t for when, _ in clock.queued()] == [5.0, 7.0, 10.0]
    clock.run_until(clock.t + 6.0)
    assert clock.pending() == 2 and [seq for _, seq in clock.queued()] == [2, 0]


def test_an_event_that_raises_is_run_again_in_its_place():
    clock = Clock()
    ran = []
    fail = [True]

    def flaky():
        if fail.pop() if fail else False:
            raise RuntimeError("once")
        ran.append("flaky")

    start = clock.t
    clock.after(1.0, flaky)
    clock.after(1.0, lambda: ran.append("second"))
    clock.after(2.0, lambda: ran.append("third"))
    with pytest.raises(RuntimeError):
        clock.run_until(start + 5.0)
    assert clock.t == start and clock.pending() == 3
    clock.run_until(start + 5.0)
    assert ran == ["flaky", "second", "third"] and clock.t == start + 5.0


def test_an_owned_event_runs_only_while_its_owner_is_alive():
    class Pod:
        alive = True

    clock, ran = Clock(), []
    gone, staying = Pod(), Pod()
    clock.after(1.0, lambda: ran.append("gone"), gone)
    clock.after(1.0, lambda: ran.append("staying"), staying)
    clock.after(1.0, lambda: ran.append("nobody's"))
    clock.at(clock.t + 0.5, lambda: setattr(gone, "alive", False))
    clock.run_until(clock.t + 2.0)
    assert ran == ["staying", "nobody's"] and clock.pending() == 0
