"""Live views for learners: tables and plots that refresh while the mesh runs.

On the embedded mesh a live view runs *paced*: it advances the virtual
clock a step at a time and sleeps so that, say, ten virtual seconds pass per
wall second, redrawing after each step; on a real cluster it simply waits in
real time. In a headless run (papermill, nbval, ``make run``: the
``LABKIT_HEADLESS`` environment variable is set) the same call advances the
clock without sleeping and leaves only its final state as ordinary, static
output, so executed notebooks are deterministic and nbval can compare them
(ecosystem.md: nbval ignores ``clear_output``; widget state differs between
papermill and nbval).

A live view displays itself and returns ``None``: written as a cell's last
line (as the README shows it) it must not be shown a second time as the
cell's value. Its table is the same non-wrapping block as ``cli_text``'s.
"""
from __future__ import annotations

import os
import time
from typing import Callable

from labkit.clitext import pre_html
from labkit.durations import seconds

HEADLESS_ENV = "LABKIT_HEADLESS"


def headless() -> bool:
    """True in batch runs (the runner and the test suite set ``LABKIT_HEADLESS=1``)."""
    return os.environ.get(HEADLESS_ENV, "") not in ("", "0")


def _steps(duration, every) -> tuple[int, float]:
    total = seconds(duration, name="duration")
    step = seconds(every, name="every")
    if step <= 0:
        raise ValueError("every= must be a positive duration, e.g. '10s'")
    return max(1, int(round(total / step))), step


def _run(mesh, duration, every, pace: float, render: Callable[[], tuple[str, object | None]], title: str) -> None:
    """Drive the mesh ``duration`` in ``every`` steps, redrawing ``render()`` (text, figure) after each."""
    from IPython.display import display

    n, step = _steps(duration, every)
    if headless():
        mesh.wait(n * step)
        text, fig = render()
        print(text, end="" if text.endswith("\n") else "\n")
        if fig is not None:
            display(fig)
        return None
    import ipywidgets as widgets

    heading = widgets.HTML()
    table = widgets.HTML()
    plot = widgets.Output()
    box = widgets.VBox([heading, table, plot])
    display(box)
    for i in range(n):
        started = time.monotonic()
        mesh.wait(step)
        text, fig = render()
        heading.value = f"<b>{title}</b> — {mesh.now:%H:%M:%S} ({i + 1}/{n})"
        table.value = pre_html(text)
        if fig is not None:
            plot.clear_output(wait=True)
            with plot:
                display(fig)
        if mesh.backend == "sim" and pace > 0:
            time.sleep(max(0.0, step / pace - (time.monotonic() - started)))
    return None  # already displayed; returning the box would show it twice as the cell's value


def live_stat(mesh, resource: str = "deploy", namespace: str | None = None, *, duration="2m", every="10s",
              pace: float = 10.0, plot: bool = True):
    """An auto-refreshing ``linkerd viz stat`` table and golden-metrics plot.

    ``pace`` is virtual seconds per wall second on the embedded mesh (10× real
    time by default); a real cluster always runs at 1×.
    """
    from labkit import plots
    from labkit.tables import cli_text

    def render():
        text = cli_text(mesh.stat(resource, namespace=namespace))
        fig = None
        if plot:
            history = mesh.history(resource, namespace=namespace)
            if len(history):
                fig = plots.golden_metrics(history, title=f"{resource} in {namespace or 'default'}")
        return text, fig

    return _run(mesh, duration, every, pace, render, f"stat {resource} -n {namespace or 'default'}")


def live_top(mesh, target: str, namespace: str | None = None, *, duration="1m", every="10s", pace: float = 10.0):
    """``linkerd viz top``, refreshed every step from the requests tapped during it."""
    from labkit.tables import cli_text

    state = {"text": ""}

    def render():
        return state["text"], None

    n, step = _steps(duration, every)
    if headless():
        print(cli_text(mesh.top(target, namespace, window=n * step)), end="")
        return None
    import ipywidgets as widgets
    from IPython.display import display

    table = widgets.HTML()
    display(table)
    for _ in range(n):
        started = time.monotonic()
        top = mesh.top(target, namespace, window=step)
        table.value = pre_html(cli_text(top))
        if mesh.backend == "sim" and pace > 0:
            time.sleep(max(0.0, step / pace - (time.monotonic() - started)))
    return None  # already displayed, as in live_stat
