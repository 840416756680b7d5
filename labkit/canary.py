"""Canary progress for people: Flagger's analysis interval by interval, plotted, watched, and played with.

    import labkit.canary as canary

    canary.canaries(mesh, "test")              # kubectl get canaries: NAME STATUS WEIGHT LASTTRANSITIONTIME
    canary.history(mesh, "podinfo", "test")    # one row per analysis interval
    canary.events(mesh, "podinfo", "test")     # Flagger's events, in order (kubectl logs deploy/flagger | jq .msg)
    canary.timeline(...), canary.report(...)   # the same two as text, for printing
    canary.plot(mesh, "podinfo", "test")       # weight, success rate and latency with Flagger's events marked
    canary.watch(mesh, "podinfo", "test")      # like `kubectl get canary -w` until the analysis ends
    canary.playground()                        # sliders: each change is a real run of a fresh embedded mesh
    canary.run_playground(error_rate=0.05)     # the same, without widgets

``history`` has columns ``time``, ``interval`` (Flagger's tick number),
``phase``, ``weight`` (the canary weight the TrafficSplit / HTTPRoute held
after the tick), ``canaryWeight`` / ``failedChecks`` / ``iterations`` (the
status Flagger wrote), ``success`` (0–1) and ``latency`` (ms) as Flagger's
checks measured them (NaN on ticks without a check), one column per metric
with the value Flagger saw, and the tick's ``events``.

The per-interval record comes from the embedded Flagger (``backend="sim"``).
On a real cluster (``labkit.canary_trail``), ``events`` reads Flagger's JSON
log, ``watch`` records the Canary's status and its router's weight as they
change, and ``history`` rebuilds each interval from those, running Flagger's
own queries again at the interval's time: the same table as the embedded
record (to the log's milliseconds) for every interval a watch saw.
"""
from __future__ import annotations

import math
import weakref
from typing import Any, Callable

import pandas as pd

from labkit.canary_trail import FIXED_COLUMNS as _HISTORY_FIXED  # one list of history's columns for both backends
from labkit.clitext import CliText
from labkit.errors import LabkitError

__all__ = ["canaries", "history", "events", "timeline", "report", "plot", "watch", "playground", "run_playground",
           "status_line"]

PHASES_DONE = ("Succeeded", "Failed")
#: What ``watch`` saw on backends without the embedded Flagger: mesh → {(ns, name): [canary_trail.Session]}.
_SESSIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _controller(mesh):
    if getattr(mesh, "backend", None) != "sim":
        raise LabkitError("the per-interval canary history is kept by the embedded mesh's Flagger (backend='sim'); "
                          "on a real cluster read `kubectl -n NS describe canary/NAME` (mesh.events) and Flagger's log")
    from labkit.sim.flagger import controller_of

    controller = controller_of(mesh)
    if controller is None:
        raise LabkitError("Flagger is not installed on this mesh yet: call mesh.install_flagger() first")
    return controller


def _ns(namespace: str | None) -> str:
    return namespace or "default"


def _time(t: float) -> pd.Timestamp:
    return pd.Timestamp(t, unit="s", tz="UTC")


def _since(since) -> float | None:
    if since is None:
        return None
    if isinstance(since, (int, float)):
        return float(since)
    return pd.Timestamp(since).timestamp()


# -- kubectl get canaries ---------------------------------------------------------------------------

def canaries(mesh, namespace: str | None = None) -> pd.DataFrame:
    """``kubectl get canaries [-n NS | -A]``: NAME STATUS WEIGHT LASTTRANSITIONTIME (``namespace="*"``: all)."""
    from labkit.tables import new_table

    all_ns = namespace == "*"
    if all_ns:
        rows_src = []
        for ns_obj in mesh.get("namespaces", None)["items"]:
            rows_src += mesh.get("canaries", None, ns_obj["metadata"]["name"])["items"]
    else:
        rows_src = mesh.get("canaries", None, _ns(namespace))["items"]
    rows = []
    for obj in rows_src:
        status = obj.get("status") or {}
        rows.append({"NAMESPACE": obj["metadata"]["namespace"], "NAME": obj["metadata"]["name"],
                     "STATUS": status.get("phase", ""), "WEIGHT": status.get("canaryWeight", 0),
                     "LASTTRANSITIONTIME": status.get("lastTransitionTime", "")})
    return new_table("canaries", rows, all_namespaces=all_ns, namespace=None if all_ns else _ns(namespace))


def status_line(mesh, name: str, namespace: str | None = None) -> str:
    """One ``kubectl get canary NAME`` row: ``podinfo   Progressing   15   2019-10-09T10:05:30Z``."""
    status = mesh.canary(name, _ns(namespace)).get("status") or {}
    return f"{name}   {status.get('phase', '')}   {status.get('canaryWeight', 0)}   {status.get('lastTransitionTime', '')}"


# -- the per-interval history -------------------------------------------------------------------------

def _success_and_latency(checks) -> tuple[float, float]:
    success = latency = math.nan
    for check in checks:
        if check.value is None:
            continue
        name = check.metric.lower()
        if check.unit == "%" or (not check.unit and "success" in name):
            success = check.value / 100.0
        elif check.unit == "ms" or (not check.unit and ("latency" in name or "duration" in name)):
            latency = check.value
    return success, latency




def history(mesh, name: str, namespace: str | None = None, *, since=None) -> pd.DataFrame:
    """One row per run of Flagger's analysis for this canary (see the module docstring for the columns)."""
    if getattr(mesh, "backend", None) != "sim":
        return _sampled_history(mesh, name, _ns(namespace), since)
    record = _controller(mesh).history.get(_ns(namespace), name)
    start = _since(since)
    rows = []
    metric_names: list[str] = []
    for tick in record.ticks if record else []:
        if start is not None and tick.time < start:
            continue
        success, latency = _success_and_latency(tick.checks)
        row: dict[str, Any] = {"time": _time(tick.time), "interval": tick.number, "phase": tick.phase,
                               "weight": tick.weight, "canaryWeight": tick.status_weight,
                               "failedChecks": tick.failed_checks, "iterations": tick.iterations,
                               "success": success, "latency": latency}
        for check in tick.checks:
            if check.metric in _HISTORY_FIXED:  # a template named like a fixed column ("latency"): that column
                continue
            if check.metric not in metric_names:
                metric_names.append(check.metric)
            row[check.metric] = math.nan if check.value is None else check.value
        row["events"] = " | ".join(message for _, message in tick.events)
        rows.append(row)
    columns = [*_HISTORY_FIXED, *metric_names, "events"]
    frame = pd.DataFrame(rows, columns=columns)
    for col in metric_names + ["success", "latency"]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame


def _metric_value(mesh, cd: dict, metric: dict, at: pd.Timestamp, provider: str) -> float:
    """What Flagger's check for ``metric`` would have seen at ``at`` (NaN: no value), from the same query text
    (``provider``: the observer of the built-in checks, ``queries.flagger_metrics_provider``)."""
    from labkit.metrics import queries

    ns, target = cd["metadata"]["namespace"], cd["spec"]["targetRef"]["name"]
    name, interval = metric.get("name", ""), metric.get("interval") or "1m"
    try:
        if name in ("request-success-rate", "request-duration"):
            query = queries.flagger_builtin_query(name, provider, ns, target, interval)
        elif metric.get("templateRef"):
            ref = metric["templateRef"]
            template = mesh.get("metrictemplate", ref.get("name"), ref.get("namespace") or ns)
            model = queries.flagger_template_model(cd, metric.get("interval") or "", metric.get("templateVariables"))
            query = queries.render_flagger_template((template.get("spec") or {}).get("query", ""), model,
                                                    ref.get("name", ""))
        elif metric.get("query"):
            query = metric["query"]
        else:
            return math.nan
        frame = mesh.query(query, time=at)
    except (LabkitError, queries.TemplateRenderError):
        return math.nan
    if frame is None or len(frame) == 0:
        return math.nan
    value = float(frame["value"].iloc[-1])
    if name == "request-duration" and value == value:
        return float(int(queries.flagger_duration_ms(value, provider)))  # Flagger compares whole milliseconds
    return value


def _trail(mesh, name: str, ns: str):
    """Flagger's log lines about this canary with their event types, or None when no Flagger log can be read."""
    from labkit import canary_trail

    text = canary_trail.flagger_log(mesh)
    if text is None:
        return None
    table = mesh.events(ns)
    table = table[table["OBJECT"] == f"canary/{name}"]
    known = dict(zip(table["MESSAGE"], table["TYPE"]))
    return [(e, canary_trail.event_type(e.message, e.level, known))
            for e in canary_trail.parse_log(text, f"{name}.{ns}")]


def _sampled_history(mesh, name: str, ns: str, since) -> pd.DataFrame:
    """``history`` on a real cluster: Flagger's log, the status ``watch`` saw and Flagger's queries run again
    at each tick (``labkit.canary_trail``)."""
    from labkit import canary_trail
    from labkit.metrics import queries

    sessions = (_SESSIONS.get(mesh) or {}).get((ns, name)) if _weakable(mesh) else None
    if not sessions:
        raise LabkitError(f"no analysis recorded for canary {name}.{ns}: on a real cluster, run "
                          "canary.watch(mesh, name, namespace) while Flagger analyses a release, then ask again")
    cd = mesh.canary(name, ns)
    log = _trail(mesh, name, ns)
    if log is None:
        raise LabkitError(f"Flagger's log cannot be read (no deploy/flagger in {', '.join(canary_trail.FLAGGER_NAMESPACES)}):"
                          " the per-interval history of a canary is rebuilt from it")
    start = _since(since)
    spec = cd.get("spec") or {}
    provider = queries.flagger_metrics_provider(canary_trail.flagger_mesh_provider(mesh), spec.get("provider"),
                                                (spec.get("targetRef") or {}).get("kind", "Deployment"))
    found, names = canary_trail.rows(log, sessions, spec, lambda metric, at: _metric_value(mesh, cd, metric, at, provider),
                                     since=None if start is None else _time(start), until=mesh.now)
    frame = pd.DataFrame(found, columns=[*_HISTORY_FIXED, *names, "events"])
    for col in names + ["success", "latency"]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.as_unit("ns")  # the embedded record's unit
    return frame


def _weakable(mesh) -> bool:
    try:
        weakref.ref(mesh)
    except TypeError:
        return False
    return True


def events(mesh, name: str, namespace: str | None = None, *, since=None) -> pd.DataFrame:
    """Flagger's events for this canary, every one in order (columns time, type, reason, message, interval).

    On a real cluster (no embedded Flagger) they come from ``kubectl get events``, which aggregates
    repeats: each distinct message once, at its last occurrence, and ``interval`` is -1.
    """
    start = _since(since)
    columns = ["time", "type", "reason", "message", "interval"]
    if getattr(mesh, "backend", None) != "sim":
        frame = pd.DataFrame(_cluster_events(mesh, name, _ns(namespace), start), columns=columns)
        frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.as_unit("ns")  # the embedded record's unit
        return frame
    record = _controller(mesh).history.get(_ns(namespace), name)
    rows = [{"time": _time(e.time), "type": e.type, "reason": e.reason, "message": e.message, "interval": e.tick}
            for e in (record.events if record else []) if start is None or e.time >= start]
    return pd.DataFrame(rows, columns=columns)


def _cluster_events(mesh, name: str, ns: str, start: float | None) -> list[dict]:
    """Every event from Flagger's log (numbered by tick); without a readable log, ``kubectl get events``,
    which folds repeats into their last occurrence (``interval`` -1)."""
    from labkit import canary_trail
    from labkit.durations import seconds

    log = _trail(mesh, name, ns)
    if log is None:
        table = mesh.events(ns)
        table = table[table["OBJECT"] == f"canary/{name}"]
        now = mesh.now
        rows = [{"time": now - pd.Timedelta(seconds=float(age)), "type": ty, "reason": reason, "message": msg,
                 "interval": -1}
                for age, ty, reason, msg in zip(table["LAST SEEN"], table["TYPE"], table["REASON"], table["MESSAGE"])]
    else:
        analysis = (mesh.canary(name, ns).get("spec") or {}).get("analysis") or {}
        interval = pd.Timedelta(seconds=seconds(analysis.get("interval") or "1m", name="spec.analysis.interval"))
        ticks = canary_trail.tick_times([e for e, _ in log], interval, mesh.now)
        rows = [{"time": e.time, "type": ty, "reason": "Synced", "message": e.message,
                 "interval": canary_trail.tick_of(e.time, ticks)} for e, ty in log]
    return [r for r in rows if start is None or r["time"].timestamp() >= start]


def timeline(mesh, name: str, namespace: str | None = None, *, since=None) -> str:
    """Flagger's events one per line, in order: ``10:02:54  Normal   New revision detected! ...``.

    A :class:`~labkit.clitext.CliText`, so a notebook shows one event per line however narrow the window.
    """
    frame = events(mesh, name, namespace, since=since)
    return CliText("".join(f"{t.strftime('%H:%M:%S')}  {ty:<8} {msg}\n"
                   for t, ty, msg in zip(frame["time"], frame["type"], frame["message"])))


def _cell(metric: str, value: float) -> str:
    if value != value:  # NaN: no value that interval
        return "-"
    if metric == "request-success-rate":
        return f"{value:.2f}%"
    if metric == "request-duration":
        return f"{int(value)}ms"
    return f"{value:.2f}"


def report(mesh, name: str, namespace: str | None = None, *, since=None) -> str:
    """The history as a table, one row per interval: TIME PHASE WEIGHT FAILED, each metric Flagger saw.

    A :class:`~labkit.clitext.CliText`: printed it is plain text, displayed it keeps its columns on one line.
    """
    frame = history(mesh, name, namespace, since=since)
    fixed = {"time", "interval", "phase", "weight", "canaryWeight", "failedChecks", "iterations", "success",
             "latency", "events"}
    metrics = [c for c in frame.columns if c not in fixed]
    header = ["TIME", "PHASE", "WEIGHT", "FAILED", *[m.upper() for m in metrics]]
    rows = [header]
    for rec in frame.to_dict("records"):
        rows.append([rec["time"].strftime("%H:%M:%S"), rec["phase"], str(rec["weight"]), str(rec["failedChecks"]),
                     *[_cell(m, rec[m]) for m in metrics]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return CliText("".join("   ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() + "\n" for r in rows))


def _thresholds(mesh, name: str, namespace: str) -> tuple[float | None, float | None]:
    try:
        spec = mesh.canary(name, namespace).get("spec") or {}
    except LabkitError:
        return None, None
    success = latency = None
    for metric in (spec.get("analysis") or {}).get("metrics") or []:
        tr = metric.get("thresholdRange") or {}
        lname = str(metric.get("name", "")).lower()
        if success is None and "success" in lname and tr.get("min") is not None:
            success = float(tr["min"])
        if latency is None and ("duration" in lname or "latency" in lname) and tr.get("max") is not None:
            latency = float(tr["max"])
    return success, latency


def plot(mesh, name: str, namespace: str | None = None, *, since=None, title: str | None = None):
    """Weight, success rate and latency per interval, Flagger's events marked (``labkit.plots.canary_progress``)."""
    from labkit import plots

    ns = _ns(namespace)
    frame = history(mesh, name, ns, since=since)
    if frame.empty:
        raise LabkitError(f"canary {name}.{ns} has no analysis history yet: wait for Flagger's first interval")
    success, latency = _thresholds(mesh, name, ns)
    return plots.canary_progress(frame, events(mesh, name, ns, since=since), title=title or f"canary {name}.{ns}",
                                 success_threshold=success, latency_threshold=latency)


# -- a live view ---------------------------------------------------------------------------------------

def watch(mesh, name: str, namespace: str | None = None, *, until: tuple[str, ...] = PHASES_DONE, timeout="30m",
          every="5s", out: Callable[[str], None] = print, pace: float = 0.0) -> dict:
    """Like ``kubectl get canary NAME -w``: a row each time Flagger changes the status, until a phase in ``until``.

    Rows show the virtual time, phase, weight and failed checks. ``pace`` (wall
    seconds per ``every`` of virtual time) slows the embedded mesh down to watch
    it live, a row at a time; by default it runs as fast as it can and the rows
    are written at the end in one piece (so a notebook's output is the same on
    every run). Returns the final Canary.
    """
    from labkit.durations import seconds

    ns = _ns(namespace)
    step = seconds(every, name="every")
    deadline = mesh.now + pd.Timedelta(seconds=seconds(timeout, name="timeout"))
    rows: list[str] = []
    live = out if pace > 0 else rows.append
    live(f"{'TIME':<10}{'STATUS':<18}{'WEIGHT':<8}{'FAILEDCHECKS':<14}LASTTRANSITIONTIME")
    try:
        return _watch_loop(mesh, name, ns, until, step, deadline, timeout, live, pace)
    finally:
        if rows:
            text = "\n".join(rows)
            if out is print:
                print(text + "\n", end="")  # one write: the same output chunks on every run
            else:
                out(text)


def _watch_loop(mesh, name, ns, until, step, deadline, timeout, out, pace) -> dict:
    import time as _time_mod

    from labkit import canary_trail

    last = None
    session = None
    if getattr(mesh, "backend", None) != "sim" and _weakable(mesh):  # a cluster: keep what Flagger's status says
        session = canary_trail.Session(mesh.now, mesh.now)
        _SESSIONS.setdefault(mesh, {}).setdefault((ns, name), []).append(session)
    while True:
        obj = mesh.canary(name, ns)
        status = obj.get("status") or {}
        row = (status.get("phase", ""), status.get("canaryWeight", 0), status.get("failedChecks", 0),
               status.get("lastTransitionTime", ""))
        if row[:3] != (last or (None,))[:3]:
            out(f"{mesh.now.strftime('%H:%M:%S'):<10}{row[0]:<18}{row[1]:<8}{row[2]:<14}{row[3]}")
            last = row
        if session is not None:
            session.seen(mesh.now, {**status, "routeWeight": canary_trail.route_weight(mesh, obj)})
        if row[0] in until:
            return obj
        if mesh.now >= deadline:
            raise TimeoutError(f"canary {name}.{ns} still {row[0]} after {timeout} (virtual time)")
        mesh.wait(step)
        if pace > 0:
            _time_mod.sleep(pace)


# -- the playground -------------------------------------------------------------------------------------

def run_playground(**params):
    """One playground run (a fresh embedded mesh): returns a result with ``.outcome``, ``.seconds``,
    ``.intervals``, ``.history``, ``.events``, ``.summary()`` and ``.plot()``.

    Parameters: ``step_weight`` (5), ``max_weight`` (50), ``interval`` ("30s"), ``threshold`` (5),
    ``error_rate`` (0.0: share of the new version's requests failing with 500), ``latency_ms``
    (0: extra latency of the new version), ``seed`` (0), ``max_latency_ms`` (500), ``success_rate`` (99),
    ``steady_traffic`` (False: only Flagger's load test; True: a client also calls the canary every second).
    """
    from labkit.sim.flagger import playground as pg

    return pg.run(**params)


def playground(**defaults):
    """An ipywidgets panel: Flagger's parameters and the new version's faults as sliders, a Run button, the result.

    Each run builds a fresh embedded mesh and lets Flagger analyse the release
    (a few seconds). Without a live kernel (a static notebook) the panel is
    inert; ``run_playground(...)`` gives the same result as plain Python.
    """
    import ipywidgets as w
    from IPython.display import display

    values = {"step_weight": 5, "max_weight": 50, "interval": "30s", "threshold": 5, "error_rate": 0.0,
              "latency_ms": 0, **defaults}
    style = {"description_width": "150px"}
    layout = w.Layout(width="460px")
    controls = {
        "step_weight": w.IntSlider(value=values["step_weight"], min=1, max=50, description="stepWeight (%)",
                                   style=style, layout=layout),
        "max_weight": w.IntSlider(value=values["max_weight"], min=5, max=100, step=5, description="maxWeight (%)",
                                  style=style, layout=layout),
        "interval": w.SelectionSlider(options=["10s", "15s", "30s", "1m", "2m"], value=values["interval"],
                                      description="interval", style=style, layout=layout),
        "threshold": w.IntSlider(value=values["threshold"], min=1, max=10, description="threshold",
                                 style=style, layout=layout),
        "error_rate": w.FloatSlider(value=values["error_rate"], min=0.0, max=0.2, step=0.005, readout_format=".1%",
                                    description="new version errors", style=style, layout=layout),
        "latency_ms": w.IntSlider(value=values["latency_ms"], min=0, max=2000, step=50,
                                  description="new version +latency (ms)", style=style, layout=layout),
    }
    button = w.Button(description="Run the canary", button_style="primary")
    output = w.Output()

    def run_once(_=None) -> None:
        params = {k: c.value for k, c in controls.items()}
        with output:
            output.clear_output(wait=True)
            print("Running Flagger on a fresh embedded mesh…")
            result = run_playground(**params)
            output.clear_output(wait=True)
            print(result.summary())
            display(result.plot())

    button.on_click(run_once)
    for control in controls.values():
        control.observe(lambda change: run_once() if auto.value else None, names="value")
    auto = w.Checkbox(value=False, description="re-run on every change")
    title = w.HTML("<b>Canary playground</b> — each run is a real run of the embedded mesh")
    return w.VBox([title, *controls.values(), w.HBox([button, auto]), output])
