"""Plots of mesh metrics, for both backends' outputs.

Every function takes plain DataFrames (``mesh.history(...)``, an edges table,
a canary history) and returns a matplotlib ``Figure`` that has already been
closed from pyplot: a notebook shows it once (as the cell's value or with
``display(fig)``) and the inline backend does not show it a second time at
the end of the cell, so nbval sees exactly one image. Styling is fixed
(colours by sorted name, fixed sizes and fonts), so the same input gives the
same PNG bytes.

No backend is chosen here and ``plt.show()`` is never called: the notebook's
kernel decides how figures are displayed.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["golden_metrics", "success_rate", "topology", "canary_progress", "PALETTE", "QUANTILE_STYLES"]

#: Colours assigned to names in sorted order (matplotlib's tab10), so a service keeps its colour across plots.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
#: Line style per latency quantile.
QUANTILE_STYLES = {"p50": "-", "p95": "--", "p99": ":"}

_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100.0,
    "savefig.dpi": 100.0,
    "axes.prop_cycle": plt.cycler(color=list(PALETTE)),
}


def _new_figure(height: float, nrows: int, *, width: float = 9.0, sharex: bool = True) -> tuple[Figure, list[Any]]:
    """A pyplot-made figure (so the inline backend knows how to display it) with fixed styling."""
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(nrows, 1, figsize=(width, height), sharex=sharex, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _finish(fig: Figure) -> Figure:
    """Lay out and close from pyplot: the caller owns the figure; the notebook shows it once."""
    with plt.rc_context(_RC):
        fig.tight_layout()
    plt.close(fig)
    return fig


def _colors(names: Iterable[Any]) -> dict[Any, str]:
    """Stable colour per name: sorted order through the palette."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(names), key=str))}


def _times(series: pd.Series) -> np.ndarray:
    """Timestamps as numpy datetime64 (timezone dropped) for matplotlib's date axis."""
    values = pd.to_datetime(series)
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.to_numpy()


def _date_axis(ax: Any) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _mark_steps(axes: Sequence[Any], steps: Mapping[str, Any] | None) -> None:
    """The lab's own steps ("meshed", "retries on") as labelled vertical lines, so a change in a curve can be
    read against what the learner did; the label sits at the top of the first panel."""
    if not steps:
        return
    for label, when in steps.items():
        x = _times(pd.Series([when]))[0]
        for ax in axes:
            ax.axvline(x, color="#555555", ls="-.", lw=0.9, alpha=0.8, zorder=0)
        top = axes[0]
        top.annotate(str(label), xy=(x, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3),
                     textcoords="offset points", ha="left", va="top", fontsize=8, color="#333333",
                     rotation=90)


def _check_columns(df: pd.DataFrame, needed: Iterable[str], what: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs columns {', '.join(missing)}; got {', '.join(map(str, df.columns))}")


def _by_name(history: pd.DataFrame, names: Sequence[str] | None) -> list[tuple[str, pd.DataFrame]]:
    """Groups of the long history, one per name, each sorted by time, names in sorted order."""
    wanted = list(names) if names is not None else sorted(history["name"].dropna().unique(), key=str)
    groups = []
    for name in wanted:
        part = history[history["name"] == name].sort_values("time", kind="stable")
        groups.append((name, part))
    return groups


def golden_metrics(history: pd.DataFrame, title: str | None = None, *, names: Sequence[str] | None = None,
                   steps: Mapping[str, Any] | None = None) -> Figure:
    """The three golden metrics over time: success rate (%), requests per second, latency p50/p95/p99 (ms).

    ``history`` is the long frame ``mesh.history()`` returns (columns
    ``time, name, success, rps, p50, p95, p99``); one line per name, same
    colour in every panel; latency quantiles are solid / dashed / dotted.
    Gaps (NaN, no traffic) are left as gaps. ``steps`` maps a label to a
    time (``{"retries on": t}``): each is drawn across the panels.
    """
    _check_columns(history, ["time", "name", "success", "rps", "p50", "p95", "p99"], "golden_metrics")
    fig, (ax_sr, ax_rps, ax_lat) = _new_figure(7.0, 3)
    groups = _by_name(history, names)
    colors = _colors([n for n, _ in groups])
    with plt.rc_context(_RC):
        for name, part in groups:
            t = _times(part["time"])
            color = colors[name]
            ax_sr.plot(t, part["success"].astype(float).to_numpy() * 100.0, color=color, lw=1.6, label=str(name))
            ax_rps.plot(t, part["rps"].astype(float).to_numpy(), color=color, lw=1.6, label=str(name))
            for q, style in QUANTILE_STYLES.items():
                ax_lat.plot(t, part[q].astype(float).to_numpy(), color=color, ls=style, lw=1.4, label=f"{name} {q}")
        ax_sr.set_ylabel("success rate (%)")
        ax_sr.set_ylim(-2, 102)
        ax_rps.set_ylabel("requests / s")
        ax_rps.set_ylim(bottom=0)
        ax_lat.set_ylabel("latency (ms)")
        ax_lat.set_ylim(bottom=0)
        ax_lat.set_xlabel("time")
        _date_axis(ax_lat)
        if groups:
            ax_sr.legend(loc="lower left", ncol=min(len(groups), 4), frameon=False)
            ax_lat.legend(loc="upper left", ncol=min(len(groups), 3), frameon=False)
        _mark_steps([ax_sr, ax_rps, ax_lat], steps)
        ax_sr.set_title(title or "Golden metrics")
    return _finish(fig)


def success_rate(
    history: pd.DataFrame,
    title: str | None = None,
    *,
    names: Sequence[str] | None = None,
    threshold: float | None = None,
    steps: Mapping[str, Any] | None = None,
) -> Figure:
    """Success rate (%) over time, one line per name, with an optional threshold line (percent, e.g. 99) and the
    lab's ``steps`` ({label: time}) as labelled vertical lines."""
    _check_columns(history, ["time", "name", "success"], "success_rate")
    fig, (ax,) = _new_figure(3.2, 1)
    groups = _by_name(history, names)
    colors = _colors([n for n, _ in groups])
    with plt.rc_context(_RC):
        for name, part in groups:
            ax.plot(_times(part["time"]), part["success"].astype(float).to_numpy() * 100.0,
                    color=colors[name], lw=1.6, label=str(name))
        if threshold is not None:
            ax.axhline(float(threshold), color="#d62728", ls="--", lw=1.0, label=f"threshold {threshold:g}%")
        ax.set_ylabel("success rate (%)")
        ax.set_ylim(-2, 102)
        ax.set_xlabel("time")
        _date_axis(ax)
        if groups or threshold is not None:
            ax.legend(loc="lower left", frameon=False)
        _mark_steps([ax], steps)
        ax.set_title(title or "Success rate")
    return _finish(fig)


# --------------------------------------------------------------------------- topology


def _layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Left-to-right layer of every node: callers left of callees (longest path from the nodes nobody calls).

    Cycles are broken deterministically first: a depth-first walk from the
    uncalled nodes (then from any node left, alphabetically) drops the edges
    that point back to a node on the current path, so a pair calling each
    other keeps its first-seen direction.
    """
    callees: dict[str, list[str]] = {n: [] for n in nodes}
    incoming = {n: 0 for n in nodes}
    for src, dst in edges:
        if src != dst and dst not in callees[src]:
            callees[src].append(dst)
            incoming[dst] += 1
    for n in callees:
        callees[n].sort()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    order: list[str] = []  # reverse postorder = a topological order of the acyclic part
    forward: dict[str, list[str]] = {n: [] for n in nodes}

    def visit(root: str) -> None:
        stack = [(root, iter(callees[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if state.get(child) == 1:
                    continue  # back edge: ignored for layout
                forward[node].append(child)
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(callees[child])))
                    break
            else:
                state[node] = 2
                order.append(node)
                stack.pop()

    for root in [n for n in nodes if incoming[n] == 0] + list(nodes):
        if root not in state:
            visit(root)
    layer = {n: 0 for n in nodes}
    for node in reversed(order):
        for child in forward[node]:
            layer[child] = max(layer[child], layer[node] + 1)
    return layer


def _positions(columns: Mapping[int, Sequence[str]], pairs: Sequence[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """(x, y) of every node: x is its layer; within a layer nodes sit in the order of their callers' heights.

    The first layer is alphabetical (top to bottom); each next layer is
    sorted by the mean height of the node's callers already placed (the
    barycenter heuristic), ties by name, which keeps separate apps apart and
    avoids most crossings.
    """
    callers: dict[str, list[str]] = {}
    for src, dst in pairs:
        if src != dst:
            callers.setdefault(dst, []).append(src)
    pos: dict[str, tuple[float, float]] = {}
    for col in sorted(columns):
        members = list(columns[col])

        def key(n: str) -> tuple[float, str]:
            heights = [pos[c][1] for c in callers.get(n, []) if c in pos]
            return (-(sum(heights) / len(heights)) if heights else 0.0, n)

        ordered = sorted(members) if col == min(columns) else sorted(members, key=key)
        for i, n in enumerate(ordered):
            pos[n] = (float(col), (len(ordered) - 1) / 2.0 - i)
    return pos


def _anchors(a: tuple[float, float], b: tuple[float, float], w: float, h: float):
    """Where an arrow from box ``a`` to box ``b`` starts and ends, and how much it bends.

    Forward edges go right edge → left edge, straight; backward edges go
    left edge → right edge with a bend; edges within a column go from the
    facing top/bottom edges with a bend so they do not cross other boxes.
    """
    (x0, y0), (x1, y1) = a, b
    if x1 > x0:
        return (x0 + w / 2, y0), (x1 - w / 2, y1), 0.0
    if x1 < x0:  # a call back to an earlier layer, bent
        return (x0 - w / 2, y0), (x1 + w / 2, y1), 0.3
    if y1 < y0:
        return (x0, y0 - h / 2), (x1, y1 + h / 2), 0.3
    return (x0, y0 + h / 2), (x1, y1 - h / 2), 0.3


def _edge_color(success: float) -> str:
    if success is None or (isinstance(success, float) and math.isnan(success)):
        return "#9e9e9e"
    if success >= 0.99:
        return "#2ca02c"
    if success >= 0.90:
        return "#ff7f0e"
    return "#d62728"


def _edge_label(success: Any, rps: Any) -> str:
    sr = "-" if success is None or pd.isna(success) else f"{float(success) * 100:.1f}%"
    rate = "" if rps is None or pd.isna(rps) else f"\n{float(rps):.1f} rps"
    return sr + rate


def topology(edges: pd.DataFrame, title: str | None = None) -> Figure:
    """Who calls whom: boxes for workloads laid out left to right, arrows labelled with success rate and RPS.

    ``edges`` has columns ``src, dst, success`` (0–1, NaN without traffic)
    and ``rps``; an edges table (``SRC``, ``DST``) works too, without labels.
    Arrows are green at ≥ 99 % success, orange at ≥ 90 %, red below, grey
    without traffic.
    """
    frame = edges.rename(columns={"SRC": "src", "DST": "dst"})
    _check_columns(frame, ["src", "dst"], "topology")
    if "success" not in frame.columns:
        frame = frame.assign(success=np.nan)
    if "rps" not in frame.columns:
        frame = frame.assign(rps=np.nan)
    pairs = [(str(s), str(d)) for s, d in zip(frame["src"], frame["dst"])]
    nodes = sorted({n for pair in pairs for n in pair})
    layer = _layers(nodes, pairs)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(layer[n], []).append(n)
    depth = max(columns) + 1 if columns else 1
    tallest = max((len(v) for v in columns.values()), default=1)
    pos = _positions(columns, pairs)
    fig, (ax,) = _new_figure(max(2.6, 1.3 * tallest + 0.8), 1, width=min(14.0, max(6.0, 2.8 * depth + 1.0)),
                             sharex=False)
    box_w, box_h = 0.62, 0.34
    with plt.rc_context(_RC):
        ax.set_xlim(-0.6, depth - 0.4)
        ax.set_ylim(-(tallest / 2.0) - 0.1, tallest / 2.0 + 0.1)
        ax.set_axis_off()
        for n in nodes:
            x, y = pos[n]
            ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                        boxstyle="round,pad=0.02", fc="#eef3fb", ec="#1f77b4", lw=1.2, zorder=2))
            ax.text(x, y, n, ha="center", va="center", fontsize=9, zorder=3)
        ordered = sorted(zip(pairs, frame["success"], frame["rps"]), key=lambda item: item[0])
        pair_set = set(pairs)
        for (src, dst), success, rps in ordered:
            (x0, y0), (x1, y1) = pos[src], pos[dst]
            sr = float("nan") if success is None or pd.isna(success) else float(success)
            color = _edge_color(sr)
            if src == dst:
                arrow = FancyArrowPatch((x0 + 0.12, y0 + box_h / 2), (x0 - 0.12, y0 + box_h / 2),
                                        connectionstyle="arc3,rad=1.2", arrowstyle="-|>", mutation_scale=12,
                                        color=color, lw=1.4, zorder=1)
                ax.add_patch(arrow)
                ax.text(x0 + 0.2, y0 + box_h / 2 + 0.08, _edge_label(success, rps), ha="left", va="bottom",
                        fontsize=8, color=color)
                continue
            start, end, rad = _anchors((x0, y0), (x1, y1), box_w, box_h)
            if x1 - x0 > 1:
                rad = -0.2  # skips a layer: bend around the boxes in between
            if (dst, src) in pair_set:
                rad = 0.25  # both directions: same bend, opposite sides (arc3 bends relative to direction)
            ax.add_patch(FancyArrowPatch(start, end, connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                         mutation_scale=14, color=color, lw=1.6, zorder=1))
            # the label sits on the bent arrow: the Bézier midpoint of matplotlib's arc3 curve
            dx, dy = end[0] - start[0], end[1] - start[1]
            mx, my = (start[0] + end[0]) / 2.0 + 0.5 * rad * dy, (start[1] + end[1]) / 2.0 - 0.5 * rad * dx
            ax.text(mx, my + 0.04, _edge_label(success, rps), ha="center", va="bottom", fontsize=8, color=color,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85}, zorder=4)
        ax.set_title(title or "Topology (success rate, requests/s)")
    return _finish(fig)


# --------------------------------------------------------------------------- canary progress


def _event_rows(events: Any) -> list[dict[str, Any]]:
    """Flagger events as dicts with ``time``, ``message`` and ``type`` from a list of dicts or a DataFrame."""
    if events is None:
        return []
    if isinstance(events, pd.DataFrame):
        records = events.to_dict("records")
    else:
        records = [dict(e) for e in events]
    out = []
    for e in records:
        when = e.get("time", e.get("lastTimestamp", e.get("LAST SEEN")))
        if when is None or pd.isna(when):
            continue
        out.append({"time": pd.Timestamp(when), "message": str(e.get("message", e.get("MESSAGE", ""))),
                    "type": str(e.get("type", e.get("TYPE", "Normal")))})
    return sorted(out, key=lambda e: (e["time"], e["message"]))


def canary_progress(
    history: pd.DataFrame,
    events: Iterable[Mapping[str, Any]] | pd.DataFrame | None = None,
    title: str | None = None,
    *,
    success_threshold: float | None = None,
    latency_threshold: float | None = None,
) -> Figure:
    """A canary's analysis over time: canary weight (%), success rate (%), latency (ms), phases and Flagger's events.

    ``history`` has columns ``time, weight, success`` (0–1), ``latency`` (ms)
    and optionally ``phase``; ``events`` are Flagger's events (``time``,
    ``message``, ``type``): each is a vertical line on every panel, red for
    Warnings. Phase changes are written on the weight panel.
    Thresholds (percent and ms, as in the Canary's metrics) draw dashed lines.
    Times are drawn to the whole second, as Flagger prints them: a cluster's record comes from log stamps in
    milliseconds, the embedded one from a finer clock, and the same analysis must give the same figure.
    """
    _check_columns(history, ["time", "weight", "success", "latency"], "canary_progress")
    frame = history.sort_values("time", kind="stable")
    t = _times(pd.to_datetime(frame["time"]).dt.floor("s"))
    fig, (ax_w, ax_sr, ax_lat) = _new_figure(7.0, 3)
    with plt.rc_context(_RC):
        ax_w.step(t, frame["weight"].astype(float).to_numpy(), where="post", color=PALETTE[0], lw=1.8, label="canary weight")
        ax_w.set_ylabel("canary weight (%)")
        ax_w.set_ylim(-5, 105)
        ax_sr.plot(t, frame["success"].astype(float).to_numpy() * 100.0, color=PALETTE[2], lw=1.6, marker="o", ms=3,
                   label="success rate")
        ax_sr.set_ylabel("success rate (%)")
        ax_sr.set_ylim(-2, 102)
        ax_lat.plot(t, frame["latency"].astype(float).to_numpy(), color=PALETTE[1], lw=1.6, marker="o", ms=3,
                    label="latency")
        ax_lat.set_ylabel("latency (ms)")
        ax_lat.set_ylim(bottom=0)
        ax_lat.set_xlabel("time")
        if success_threshold is not None:
            ax_sr.axhline(float(success_threshold), color="#d62728", ls="--", lw=1.0,
                          label=f"min {success_threshold:g}%")
        if latency_threshold is not None:
            ax_lat.axhline(float(latency_threshold), color="#d62728", ls="--", lw=1.0,
                           label=f"max {latency_threshold:g} ms")
            top = np.nanmax(np.append(frame["latency"].astype(float).to_numpy(), float(latency_threshold)))
            ax_lat.set_ylim(0, float(top) * 1.1 if top > 0 else 1.0)
        if "phase" in frame.columns:
            previous = None
            for when, phase in zip(t, frame["phase"]):
                if phase is not None and not pd.isna(phase) and phase != previous:
                    ax_w.annotate(str(phase), (when, 100), xytext=(2, -2), textcoords="offset points",
                                  fontsize=7, color="#555555", va="top", rotation=90)
                    previous = phase
        for event in _event_rows(events):
            color = "#d62728" if event["type"].lower() == "warning" else "#7f7f7f"
            stamp = event["time"].floor("s")
            when = np.datetime64(stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp)
            for ax in (ax_w, ax_sr, ax_lat):
                ax.axvline(when, color=color, lw=0.8, alpha=0.6, ls="-" if color == "#d62728" else ":")
        _date_axis(ax_lat)
        ax_w.legend(loc="center left", frameon=False)  # the weight line starts at 0 and phase names sit on top
        ax_sr.legend(loc="lower left", frameon=False)
        ax_lat.legend(loc="lower left", frameon=False)
        ax_w.set_title(title or "Canary analysis")
    return _finish(fig)
