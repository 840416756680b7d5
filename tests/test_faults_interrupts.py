"""Fault injection: an exception (Ctrl-C included) at any event of a wait leaves the embedded mesh consistent.

Each test interrupts a realistic run (the books app meshed: traffic generator,
three apps, proxies, the scraper, controllers) at its Nth event, continues to
the same virtual time, and compares what a lab would read (``stat``, a PromQL
query, request and sample counts, the queue) with an uninterrupted run.
"""
from __future__ import annotations

import _thread
import signal
import threading

import pytest

from conftest import meshed_app
from labkit.sim import clock as clock_module

RUN = "10m"


def _books():
    return meshed_app("booksapp", namespace="booksapp", wait="1m")


def _reading(mesh) -> dict:
    """What a lab reads after the run (frames as records, so a difference shows which number moved)."""
    stat = mesh.stat("deploy", namespace="booksapp").fillna(-1).to_dict("records")
    rate = mesh.query('sum by (deployment) (rate(response_total{namespace="booksapp", direction="inbound"}[1m]))')
    return {
        "now": mesh.clock.t,
        "stat": stat,
        "rate": rate.fillna(-1).to_dict("records"),
        "requests": mesh.dataplane.inbound_requests,
        "samples": mesh.prometheus.store.sample_count,
        "scrapes": mesh.prometheus.scrapes,
        "queued": mesh.clock.queued(),
        "pods": sorted(mesh.pods(namespace="booksapp")["NAME"]),
    }


@pytest.fixture(scope="module")
def reference():
    mesh = _books()
    mesh.wait(RUN)
    first = _reading(mesh)
    mesh.wait("2m")  # and it goes on as before afterwards
    return first, _reading(mesh)


class _Injector:
    """Stands in for ``Clock.at`` and ``Clock.after``, where every event is scheduled: the ``at``-th event to run
    misbehaves, once (counting runs of events scheduled while it stands in; an event put back after an
    interrupt runs again)."""

    def __init__(self, at: set[int], how: str):
        self.at, self.how, self.runs, self.fired = at, how, 0, 0

    def _counted(self, fn):
        def event():
            self.runs += 1
            if self.runs in self.at:
                self.fired += 1
                if self.how == "raise":  # an exception as the event starts (the event runs again on continuing)
                    raise KeyboardInterrupt
                signal.raise_signal(signal.SIGINT)  # a real Ctrl-C (SIGINT through Python's handler) as it runs
            fn()
        return event

    def install(self, monkeypatch) -> None:
        at, after = clock_module.Clock.at, clock_module.Clock.after
        monkeypatch.setattr(clock_module.Clock, "at",
                            lambda clock, when, fn, owner=None: at(clock, when, self._counted(fn), owner))
        monkeypatch.setattr(clock_module.Clock, "after",
                            lambda clock, delay, fn, owner=None: after(clock, delay, self._counted(fn), owner))


def _interrupted_run(monkeypatch, at: set[int], how: str):
    mesh = _books()
    end = mesh.clock.t + 600.0
    injector = _Injector(at, how)
    injector.install(monkeypatch)
    interrupts = 0
    while True:
        try:
            mesh.wait(end - mesh.clock.t)  # continuing: the rest of the way to the same virtual time
            break
        except KeyboardInterrupt:
            interrupts += 1
            assert mesh.clock.t <= end and mesh.clock.pending() >= 1
    monkeypatch.undo()
    assert mesh.clock.t == end
    return mesh, injector, interrupts


# Event numbers across the 10-minute run (it runs 6,742 events): the first ones, then spread to the last.
POINTS = [1, 2, 3, 7, 50, 333, 1_000, 2_001, 3_210, 4_321, 5_000, 6_000, 6_742]


@pytest.mark.parametrize("how", ["raise", "sigint"])
@pytest.mark.parametrize("n", POINTS)
def test_one_interrupt_at_event_n_changes_nothing(monkeypatch, reference, n, how):
    mesh, injector, interrupts = _interrupted_run(monkeypatch, {n}, how)
    assert injector.fired == 1 and interrupts == 1
    assert _reading(mesh) == reference[0]
    mesh.wait("2m")
    assert _reading(mesh) == reference[1]


def test_three_hundred_interrupts_in_one_run_change_nothing(monkeypatch, reference):
    points = set(range(17, 5_310, 17))  # 312 interrupt points
    for how in ("raise", "sigint"):
        mesh, injector, interrupts = _interrupted_run(monkeypatch, points, how)
        assert interrupts == injector.fired >= 300
        assert _reading(mesh) == reference[0], how


def test_an_exception_in_the_condition_of_wait_for_loses_nothing(reference):
    mesh = _books()
    end = mesh.clock.t + 600.0
    calls = []

    def flaky(m):
        calls.append(m.clock.t)
        if len(calls) in (3, 9, 20):
            raise RuntimeError("the learner's condition failed")
        return False

    while mesh.clock.t < end:
        try:
            mesh.wait_for(flaky, timeout=end - mesh.clock.t, every="10s")
        except RuntimeError:
            pass
        except TimeoutError:
            break
    assert len(calls) > 20
    assert _reading(mesh) == reference[0]


def test_ctrl_c_from_another_thread_mid_wait_like_a_notebook_stop_button(reference):
    """The issue's reproduction: ``_thread.interrupt_main()`` from a timer while ``wait`` runs."""
    mesh = _books()
    end = mesh.clock.t + 600.0
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            mesh.wait(end - mesh.clock.t)
            mesh.wait("1h")  # if the first wait was too fast for the timer, this one is interrupted
    finally:
        timer.cancel()
    assert mesh.clock.t < end + 3600
    if mesh.clock.t <= end:
        mesh.wait(end - mesh.clock.t)
        assert _reading(mesh) == reference[0]
    stat = mesh.stat("deploy", namespace="booksapp")
    assert (stat.loc[stat["NAME"] != "traffic", "RPS"] > 0).all()  # the scraper and traffic generator still run


def test_the_handler_in_place_before_a_wait_is_back_after_it():
    mesh = _books()
    before = signal.getsignal(signal.SIGINT)
    mesh.wait("1s")
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        mesh.wait_for(lambda m: _thread.interrupt_main() or False, timeout="1m", every="10s")
    assert signal.getsignal(signal.SIGINT) is before


def test_waits_in_steps_run_exactly_as_one_wait(reference):
    """A live view waits in steps; continuing after an interrupt is also a second wait."""
    mesh = _books()
    for _ in range(60):
        mesh.wait("10s")
    assert _reading(mesh) == reference[0]


def test_an_exception_inside_a_served_clock_advance_is_answered_and_loses_nothing(monkeypatch, reference):
    """A served request that advances the clock is interrupted at an event: 500 Status, then the rest as usual."""
    import json as _json
    import urllib.error
    import urllib.request

    mesh = _books()
    end = mesh.clock.t + 600.0
    served = mesh.serve(pace=0)
    injector = _Injector({1_234}, "raise")
    injector.install(monkeypatch)

    def advance(seconds: float):
        req = urllib.request.Request(served.url + "/labkit/v1/clock", method="POST",
                                     data=_json.dumps({"advance": seconds}).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {served.token}"})
        return urllib.request.urlopen(req, timeout=60)

    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            advance(600.0)
        assert err.value.code == 500 and _json.loads(err.value.read())["kind"] == "Status"
        assert injector.fired == 1 and mesh.clock.t < end
        advance(end - mesh.clock.t)
    finally:
        served.close()
        monkeypatch.undo()
    assert mesh.clock.t == end
    assert _reading(mesh) == reference[0]
