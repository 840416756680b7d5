"""labkit.plots: figures with the expected panels, lines and labels, drawn byte-identically every time."""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from labkit import plots

TIMES = pd.date_range("2024-05-01 10:00:00", periods=18, freq="10s")


def _history() -> pd.DataFrame:
    rows = []
    for name, success in (("web", 0.92), ("voting", 0.84), ("emoji", 1.0)):
        for i, t in enumerate(TIMES):
            quiet = name == "voting" and i < 2  # no traffic yet: NaN, drawn as a gap
            rows.append(dict(time=t, name=name, success=np.nan if quiet else success - 0.002 * (i % 3),
                             rps=0.0 if quiet else 1.0 + 0.05 * i, p50=np.nan if quiet else 2.0 + i % 2,
                             p95=np.nan if quiet else 8.0, p99=np.nan if quiet else 10.0 + i % 4))
    return pd.DataFrame(rows)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def test_golden_metrics_panels_lines_and_labels():
    fig = plots.golden_metrics(_history(), title="emojivoto")
    assert isinstance(fig, Figure)
    sr, rps, lat = fig.axes
    assert [len(ax.lines) for ax in fig.axes] == [3, 3, 9]
    assert sr.get_ylabel() == "success rate (%)" and rps.get_ylabel() == "requests / s"
    assert lat.get_ylabel() == "latency (ms)" and sr.get_title() == "emojivoto"
    assert [line.get_label() for line in sr.lines] == ["emoji", "voting", "web"]
    assert [line.get_label() for line in lat.lines][:3] == ["emoji p50", "emoji p95", "emoji p99"]
    assert [line.get_linestyle() for line in lat.lines][:3] == ["-", "--", ":"]
    # one colour per name in every panel
    assert sr.lines[2].get_color() == rps.lines[2].get_color() == lat.lines[6].get_color()
    # success plotted in percent
    assert np.nanmax(sr.lines[0].get_ydata()) == pytest.approx(100.0)
    # shared time axis
    assert sr.get_shared_x_axes().joined(sr, lat)


def test_figures_are_closed_from_pyplot():
    before = set(plt.get_fignums())
    plots.golden_metrics(_history())
    plots.success_rate(_history())
    assert set(plt.get_fignums()) == before


def test_golden_metrics_png_is_deterministic():
    first = _png(plots.golden_metrics(_history(), title="emojivoto"))
    second = _png(plots.golden_metrics(_history(), title="emojivoto"))
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    assert first == second


def test_golden_metrics_rejects_missing_columns():
    with pytest.raises(ValueError, match="p99"):
        plots.golden_metrics(_history().drop(columns=["p99"]))


def test_success_rate_single_panel_with_threshold():
    fig = plots.success_rate(_history(), names=["web"], threshold=90)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["web", "threshold 90%"]
    assert _png(fig) == _png(plots.success_rate(_history(), names=["web"], threshold=90))


def _edges() -> pd.DataFrame:
    return pd.DataFrame(dict(
        src=["vote-bot", "web", "web", "web"],
        dst=["web", "emoji", "voting", "web"],
        success=[0.92, 1.0, 0.84, np.nan],
        rps=[2.0, 2.0, 1.0, np.nan],
    ))


def test_topology_layout_and_labels():
    fig = plots.topology(_edges())
    (ax,) = fig.axes
    texts = [t.get_text() for t in ax.texts]
    for name in ("vote-bot", "web", "emoji", "voting"):
        assert name in texts
    assert "92.0%\n2.0 rps" in texts and "84.0%\n1.0 rps" in texts and "-" in texts
    boxes = {t.get_text(): t.get_position() for t in ax.texts if t.get_text() in ("vote-bot", "web", "emoji", "voting")}
    # callers left of callees: vote-bot → web → {emoji, voting}
    assert boxes["vote-bot"][0] < boxes["web"][0] < boxes["emoji"][0] == boxes["voting"][0]
    assert boxes["emoji"][1] > boxes["voting"][1]  # alphabetical, top to bottom


def test_topology_is_deterministic_and_handles_cycles_and_cli_edges():
    assert _png(plots.topology(_edges())) == _png(plots.topology(_edges().iloc[::-1]))
    cycle = pd.DataFrame(dict(src=["a", "b", "c"], dst=["b", "c", "a"], success=[1.0, 0.5, 0.95], rps=[1, 1, 1]))
    fig = plots.topology(cycle)
    positions = {t.get_text(): t.get_position() for t in fig.axes[0].texts if t.get_text() in "abc"}
    assert positions["a"][0] < positions["b"][0] < positions["c"][0]
    cli_edges = pd.DataFrame(dict(SRC=["vote-bot"], DST=["web"], SRC_NS=["emojivoto"], DST_NS=["emojivoto"]))
    assert "web" in [t.get_text() for t in plots.topology(cli_edges).axes[0].texts]


def _canary():
    weights = [0, 0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 50, 100, 100, 0, 0, 0]
    phases = ["Initialized"] * 2 + ["Progressing"] * 11 + ["Promoting"] * 2 + ["Finalising", "Succeeded", "Succeeded"]
    history = pd.DataFrame(dict(time=TIMES, weight=weights, success=[1.0] * 18,
                                latency=np.linspace(300, 420, 18), phase=phases))
    events = [
        dict(time=TIMES[2], type="Normal", message="Starting canary analysis for podinfo.test"),
        dict(time=TIMES[2], type="Normal", message="Advance podinfo.test canary weight 5"),
        dict(time=TIMES[6], type="Warning", message="Halt podinfo.test advancement success rate 55.06% < 99%"),
        dict(time=TIMES[16], type="Normal", message="Promotion completed! Scaling down podinfo.test"),
    ]
    return history, events


def test_canary_progress_marks_events_and_thresholds():
    history, events = _canary()
    fig = plots.canary_progress(history, events, title="podinfo", success_threshold=99, latency_threshold=500)
    w, sr, lat = fig.axes
    assert w.get_ylabel() == "canary weight (%)" and sr.get_ylabel() == "success rate (%)"
    assert lat.get_ylabel() == "latency (ms)" and w.get_title() == "podinfo"
    # data line (+ threshold) + one vertical line per event, on every panel
    assert len(w.lines) == 1 + 4 and len(sr.lines) == 1 + 1 + 4 and len(lat.lines) == 1 + 1 + 4
    warning_lines = [line for line in w.lines[1:] if line.get_color() == "#d62728"]
    assert len(warning_lines) == 1
    assert lat.get_ylim()[1] >= 500  # the threshold is in view
    assert [t.get_text() for t in w.texts] == ["Initialized", "Progressing", "Promoting", "Finalising", "Succeeded"]


def test_canary_progress_png_deterministic_and_events_as_frame():
    history, events = _canary()
    first = _png(plots.canary_progress(history, events))
    second = _png(plots.canary_progress(history, pd.DataFrame(events)))
    assert first == second


def test_plots_never_set_the_backend():
    import matplotlib

    backend = matplotlib.get_backend()
    plots.golden_metrics(_history())
    assert matplotlib.get_backend() == backend


def test_steps_are_drawn_as_labelled_lines_across_every_panel():
    times = pd.date_range("2026-06-01 10:00", periods=10, freq="10s")
    history = pd.DataFrame({"time": times, "name": "web", "success": 1.0, "rps": 2.0, "p50": 5.0, "p95": 9.0,
                            "p99": 12.0})
    fig = plots.golden_metrics(history, steps={"meshed": times[3], "retries on": times[7]})
    for ax in fig.axes:
        assert len([line for line in ax.get_lines() if line.get_linestyle() == "-."]) == 2
    assert [t.get_text() for t in fig.axes[0].texts] == ["meshed", "retries on"]
    plain = plots.success_rate(history)
    assert not plain.axes[0].texts
