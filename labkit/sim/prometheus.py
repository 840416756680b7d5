"""linkerd-viz's Prometheus in the embedded mesh: the scrape loop and the query API.

Like the real one (``job_name: linkerd-proxy``), it scrapes every meshed pod's
proxy every 10 s while linkerd-viz is running, adds the pod's labels the way
viz's relabelling rules do (namespace, pod, ``linkerd.io/proxy-deployment`` →
``deployment``, other pod labels with dots and dashes turned into
underscores, ``instance``, ``job``), and stores the samples with their
timestamps. ``query`` and ``query_range`` evaluate PromQL on that store with
``labkit.metrics.promql``: the same queries linkerd-viz and Flagger send, so
``stat`` and Flagger's checks are computed from the numbers, not beside them.
"""
from __future__ import annotations

import re

import pandas as pd

from labkit.durations import seconds
from labkit.metrics import promql
from labkit.sim.store import STALE_NAN, SeriesStore

SCRAPE_INTERVAL = 10.0
JOB = "linkerd-proxy"
_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_OWNER_LABELS = {  # linkerd.io/proxy-<kind> → <kind>, as viz's relabel config maps them
    "linkerd.io/proxy-deployment": "deployment",
    "linkerd.io/proxy-replicaset": "replicaset",
    "linkerd.io/proxy-statefulset": "statefulset",
    "linkerd.io/proxy-daemonset": "daemonset",
    "linkerd.io/proxy-job": "k8s_job",
}


def scrape_labels(pod: dict) -> tuple[tuple[str, str], ...]:
    """The target labels Prometheus attaches to every series scraped from ``pod``'s proxy."""
    meta = pod["metadata"]
    labels: dict[str, str] = {}
    for key, value in (meta.get("labels") or {}).items():
        if key in _OWNER_LABELS:
            labels[_OWNER_LABELS[key]] = value
        elif key.startswith("linkerd.io/"):
            labels[_INVALID.sub("_", key[len("linkerd.io/"):])] = value
        else:
            labels[_INVALID.sub("_", key)] = value
    labels["namespace"] = meta.get("namespace", "default")
    labels["pod"] = meta["name"]
    labels["instance"] = f"{pod.get('status', {}).get('podIP', '')}:4191"
    labels["job"] = JOB
    return tuple(labels.items())


def to_seconds(when) -> float:
    """A query time: a Timestamp, an ISO string, or unix seconds."""
    if isinstance(when, (int, float)):
        return float(when)
    return pd.Timestamp(when).timestamp()


class Prometheus:
    def __init__(self, cluster, dataplane, clock):
        self.cluster, self.dataplane, self.clock = cluster, dataplane, clock
        self.store = SeriesStore()
        self._started = False
        self._target_labels: dict[str, tuple] = {}
        self._keys: dict = {}
        self._last: dict[str, list] = {}  # uid → the (name, labels) it exposed at the last scrape
        self.scrapes = 0

    def ensure_started(self) -> None:
        """Schedule the scrape loop once, on the 10 s grid."""
        if self._started:
            return
        self._started = True
        first = (int(self.clock.t // SCRAPE_INTERVAL) + 1) * SCRAPE_INTERVAL
        self.clock.every(SCRAPE_INTERVAL, self.scrape, first=first)

    def running(self) -> bool:
        state = getattr(self.cluster, "control_plane", None)
        return bool(state and state().get("viz"))

    def scrape(self) -> None:
        """One scrape of every meshed pod's proxy (only while linkerd-viz's Prometheus runs)."""
        if not self.running():
            return
        self.dataplane.sync()
        t = self.clock.t
        keys = self._keys
        batch = []
        current: dict[str, list] = {}
        for runtime in sorted(self.dataplane.pods.values(), key=lambda r: (r.namespace, r.name)):
            if runtime.proxy is None:
                continue
            exposed = current[runtime.uid] = []
            target = self._target_labels.get(runtime.uid)
            if target is None:
                target = self._target_labels[runtime.uid] = scrape_labels(runtime.pod)
            for name, items, value in runtime.proxy.samples():
                cache_key = (runtime.uid, name, items)
                key = keys.get(cache_key)
                if key is None:
                    merged = dict(items)
                    merged.update(target)  # target labels win, as with honor_labels: false
                    key = keys[cache_key] = tuple(sorted(merged.items()))
                batch.append((name, key, float(value)))
                exposed.append((name, key))
        # A target that disappeared gets staleness markers, so its series leave instant queries at once.
        for uid in self._last.keys() - current.keys():
            batch.extend((name, key, STALE_NAN) for name, key in self._last[uid])
            self._target_labels.pop(uid, None)
        self._last = current
        self.store.append_many(t, batch)
        self.scrapes += 1

    # -- the HTTP API's two endpoints, as DataFrames --------------------------------------------
    def query(self, expr: str, time=None) -> pd.DataFrame:
        at = self.clock.t if time is None else to_seconds(time)
        return promql.to_frame(promql.instant(expr, self.store, at))

    def query_range(self, expr: str, start, end, step="10s") -> pd.DataFrame:
        return promql.to_frame(
            promql.range_(expr, self.store, to_seconds(start), to_seconds(end), seconds(step, name="step"))
        )
