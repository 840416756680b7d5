"""labkit.canary: the per-interval history, the plot, the live view and the canary playground."""
from __future__ import annotations

import io
import time

import pandas as pd
import pytest
from matplotlib.figure import Figure

import labkit.canary as canary
from labkit.errors import LabkitError


@pytest.fixture(scope="module")
def promoted():
    return canary.run_playground()


def test_a_good_version_is_promoted(promoted):
    assert promoted.outcome == "promoted" and promoted.phase == "Succeeded"
    assert promoted.summary().splitlines()[1].startswith("→ PROMOTED after ")
    frame = promoted.history
    assert list(frame.columns[:9]) == ["time", "interval", "phase", "weight", "canaryWeight", "failedChecks",
                                       "iterations", "success", "latency"]
    assert {"request-success-rate", "request-duration", "events"} <= set(frame.columns)
    assert frame["weight"].max() == 50 and frame["phase"].iloc[-1] == "Succeeded"
    seen = frame.dropna(subset=["request-success-rate"])
    assert (seen["success"] == seen["request-success-rate"] / 100).all()
    assert promoted.intervals == len(frame) - 1
    events = promoted.events
    assert list(events.columns) == ["time", "type", "reason", "message", "interval"]
    assert events["message"].iloc[-1] == "Promotion completed! Scaling down podinfo.test"


def test_errors_or_latency_roll_the_new_version_back():
    errors = canary.run_playground(error_rate=0.05)
    assert errors.outcome == "rolled back" and errors.failed_checks == 5
    assert any("advancement success rate" in m for m in errors.events["message"])
    slow = canary.run_playground(latency_ms=800, threshold=2)
    assert slow.outcome == "rolled back"
    assert any("advancement request duration" in m and m.endswith("> 500ms") for m in slow.events["message"])
    assert slow.seconds < errors.seconds, "a lower threshold rolls back sooner"


def test_the_weight_overshoots_max_weight():
    result = canary.run_playground(step_weight=20, max_weight=50, interval="1m")
    advances = [m for m in result.events["message"] if m.startswith("Advance")]
    assert advances == [f"Advance podinfo.test canary weight {w}" for w in (20, 40, 60)]
    assert result.outcome == "promoted"


def test_a_run_is_answered_in_seconds():
    start = time.perf_counter()
    canary.run_playground(error_rate=0.1, seed=3)
    assert time.perf_counter() - start < 5.0


def test_plot_marks_weight_success_latency_and_events(promoted):
    fig = promoted.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    weight, sr, lat = fig.axes
    assert weight.get_ylabel() == "canary weight (%)" and lat.get_ylabel() == "latency (ms)"
    n_events = len(promoted.events)
    assert len(weight.lines) >= 1 + n_events, "one vertical line per Flagger event"
    assert any(line.get_label() == "min 99%" for line in sr.lines)
    assert any(line.get_label() == "max 500 ms" for line in lat.lines)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


def test_watch_prints_a_row_per_status_change():
    from labkit.sim.flagger import playground as pg

    mesh = pg.prepare(12)
    pg.release(mesh)
    written: list[str] = []
    final = canary.watch(mesh, "podinfo", "test", out=written.append, timeout="30m")
    assert len(written) == 1, "at full speed the rows come out in one piece"
    lines = written[0].splitlines()
    assert final["status"]["phase"] == "Succeeded"
    assert lines[0].split() == ["TIME", "STATUS", "WEIGHT", "FAILEDCHECKS", "LASTTRANSITIONTIME"]
    assert lines[1].split()[1:3] == ["Initialized", "0"]
    assert [ln.split()[1] for ln in lines[-3:]] == ["Promoting", "Finalising", "Succeeded"]
    assert "Progressing" in {ln.split()[1] for ln in lines[2:]}


def test_playground_panel_has_the_sliders():
    ipywidgets = pytest.importorskip("ipywidgets")
    panel = canary.playground(error_rate=0.02)
    assert isinstance(panel, ipywidgets.VBox)
    descriptions = [c.description for c in panel.children if hasattr(c, "description") and c.description]
    assert descriptions == ["stepWeight (%)", "maxWeight (%)", "interval", "threshold", "new version errors",
                            "new version +latency (ms)"]
    assert panel.children[5].value == 0.02


def test_history_needs_flagger_or_a_watched_release():
    class Kube:
        backend = "kube"

    with pytest.raises(LabkitError, match="run canary.watch"):
        canary.history(Kube(), "podinfo", "test")
    import labkit

    with pytest.raises(LabkitError, match="install_flagger"):
        canary.history(labkit.connect(), "podinfo", "test")


def test_playground_rejects_impossible_parameters():
    with pytest.raises(ValueError, match="error_rate"):
        canary.run_playground(error_rate=1.5)


def test_history_on_the_kube_backend_equals_the_embedded_flaggers_record():
    """Through the kube backend (here: the served embedded mesh) there is no in-process Flagger to ask: ``events``
    reads Flagger's log, ``watch`` samples the Canary's status and router, ``history`` re-runs Flagger's queries at
    each tick. The result must be the record the embedded Flagger kept while it worked (to Flagger's millisecond
    log stamps), repeats of a message included, for a promotion and for a rollback."""
    import labkit
    from labkit.sim.serve import serve

    sim = labkit.connect("sim", seed=0)
    served = serve(sim, pace=0)
    try:
        kube = labkit.connect("kube", context=served.context, kubeconfig=served.kubeconfig, lab="flagger-test")
        kube.install_gateway_api()
        kube.install_linkerd(viz=True)
        kube.wait_for(lambda m: m.check().ok, timeout="5m")
        kube.install_flagger(provider="linkerd")
        for name in ("podinfo/00-namespace.yml", "podinfo/podinfo.yml", "podinfo/loadtester.yml"):
            kube.apply(name)
        kube.wait_for(lambda m: "successfully rolled out" in m.rollout_status("podinfo", "test"), timeout="5m")
        kube.apply("podinfo/flagger/canary.yml")
        kube.wait_for(lambda m: (m.canary("podinfo", "test").get("status") or {}).get("phase") == "Initialized",
                      timeout="5m")
        with pytest.raises(LabkitError, match="canary.watch"):
            canary.history(kube, "podinfo", "test")
        releases = []
        for image, fault in (("6.0.1", None), ("6.0.2", "status/500")):
            releases.append(kube.now)
            kube.set_image("podinfo", f"podinfod=ghcr.io/stefanprodan/podinfo:{image}", namespace="test")
            if fault:
                kube.wait_for(lambda m: m.canary("podinfo", "test")["status"]["phase"] == "Progressing",
                              timeout="5m", every="5s")
                kube.exec("deploy/flagger-loadtester", f"watch -n 1 curl -s http://podinfo-canary.test:9898/{fault}",
                          namespace="test")
            canary.watch(kube, "podinfo", "test", timeout="30m", out=lambda text: None)
        for release, outcome in zip(releases, ("Succeeded", "Failed")):
            got, want = canary.history(kube, "podinfo", "test", since=release), canary.history(sim, "podinfo", "test",
                                                                                               since=release)
            assert outcome in set(got["phase"]) and len(got) >= 8  # a rollback: 7 Progressing samples, then Failed
            assert (got["time"] - want["time"]).abs().max() <= pd.Timedelta(milliseconds=1)
            pd.testing.assert_frame_equal(got.drop(columns="time"), want.drop(columns="time"))
            got, want = canary.events(kube, "podinfo", "test", since=release), canary.events(sim, "podinfo", "test",
                                                                                             since=release)
            pd.testing.assert_frame_equal(got.drop(columns="time"), want.drop(columns="time"))
            assert canary.timeline(kube, "podinfo", "test", since=release) == canary.timeline(sim, "podinfo", "test",
                                                                                             since=release)
        halts = canary.events(kube, "podinfo", "test", since=releases[1])["message"].str.startswith("Halt")
        assert halts.sum() == 5  # every failed check, not the Events API's one aggregated line per message
        assert isinstance(canary.plot(kube, "podinfo", "test", since=releases[0]), Figure)
    finally:
        served.close()
