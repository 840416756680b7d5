"""linkerd-viz's Prometheus in the embedded mesh: the scrape loop and the query API.

Like the real one (``job_name: linkerd-proxy``), it scrapes every meshed pod's
proxy on the interval its ``prometheus-config`` ConfigMap names (10 s as installed; an
edit takes effect at the next scrape, as after a reload) while linkerd-viz is running, adds the pod's labels the way
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


VIZ_NS, CONFIG_MAP = "linkerd-viz", "prometheus-config"
#: Prometheus's own default when a configuration names no interval.
PROMETHEUS_DEFAULT_INTERVAL = 60.0


def interval_of(config_map: dict | None) -> float:
    """The scrape interval of the ``linkerd-proxy`` job in a ``prometheus.yml`` (the job's, else ``global``'s)."""
    import yaml

    if config_map is None:
        return SCRAPE_INTERVAL
    try:
        config = yaml.safe_load(((config_map.get("data") or {}).get("prometheus.yml")) or "") or {}
    except yaml.YAMLError:
        return SCRAPE_INTERVAL  # Prometheus keeps its last good configuration
    if not isinstance(config, dict):
        return SCRAPE_INTERVAL
    job = next((j for j in config.get("scrape_configs") or [] if isinstance(j, dict) and j.get("job_name") == JOB), {})
    text = job.get("scrape_interval") or (config.get("global") or {}).get("scrape_interval")
    if not text:
        return PROMETHEUS_DEFAULT_INTERVAL
    try:
        value = seconds(str(text), name="scrape_interval")
    except ValueError:
        return SCRAPE_INTERVAL
    return value if value > 0 else SCRAPE_INTERVAL


class Prometheus:
    def __init__(self, cluster, dataplane, clock):
        self.cluster, self.dataplane, self.clock = cluster, dataplane, clock
        self.store = SeriesStore()
        self._started = False
        self._target_labels: dict[str, tuple] = {}
        self._keys: dict = {}
        self._plans: dict = {}  # uid → (label tuples, names, store series) of its last scrape, see scrape
        self._last: dict[str, list] = {}  # uid → the series it exposed at the last scrape
        self.scrapes = 0
        self._config_version: str | None = None
        self._interval = SCRAPE_INTERVAL

    def ensure_started(self) -> None:
        """Schedule the scrape loop once, on the scrape interval's grid."""
        if self._started:
            return
        self._started = True
        interval = self.scrape_interval()
        self.clock.at((int(self.clock.t // interval) + 1) * interval, self._tick)

    def _tick(self) -> None:
        self.scrape()
        interval = self.scrape_interval()  # read again each time: an edited ConfigMap takes effect, as on a reload
        self.clock.at((int(self.clock.t // interval + 1e-9) + 1) * interval, self._tick)

    def scrape_interval(self) -> float:
        """The ``linkerd-proxy`` job's interval from viz's ``prometheus-config`` ConfigMap (10 s as installed)."""
        api = self.cluster.api
        config_map = api.get(self.cluster.types.configmap, VIZ_NS, CONFIG_MAP)
        version = ((config_map or {}).get("metadata") or {}).get("resourceVersion")
        if self._config_version != version:
            self._config_version, self._interval = version, interval_of(config_map)
        return self._interval

    def running(self) -> bool:
        state = getattr(self.cluster, "control_plane", None)
        return bool(state and state().get("viz"))

    def scrape(self) -> None:
        """One scrape of every meshed pod's proxy (only while linkerd-viz's Prometheus runs)."""
        if not self.running():
            return
        self.dataplane.sync()
        t = self.clock.t
        all_series: list = []
        all_values: list = []
        current: dict[str, list] = {}
        for runtime in sorted(self.dataplane.pods.values(), key=lambda r: (r.namespace, r.name)):
            if runtime.proxy is None:
                continue
            uid = runtime.uid
            got = runtime.proxy.samples()
            names = [sample[0] for sample in got]
            labels = [sample[1] for sample in got]
            # A proxy exposes the same series in the same order scrape after scrape (and hands out the same label
            # tuples, so comparing is mostly identity checks): the store series of the last scrape serve again.
            plan = self._plans.get(uid)
            if plan is None or plan[0] != labels or plan[1] != names:
                plan = self._plans[uid] = (labels, names, self._series_of(runtime, names, labels))
            current[uid] = plan[2]
            all_series += plan[2]
            all_values += [sample[2] for sample in got]
        # A target that disappeared gets staleness markers, so its series leave instant queries at once.
        for uid in self._last.keys() - current.keys():
            all_series += self._last[uid]
            all_values += [STALE_NAN] * len(self._last[uid])
            self._target_labels.pop(uid, None)
            self._plans.pop(uid, None)
        self._last = current
        self.store.append_series(t, zip(all_series, all_values))
        self.scrapes += 1

    def _series_of(self, runtime, names: list, labels: list) -> list:
        """The store series for a pod's samples: its labels with the target's (target labels win, as with
        ``honor_labels: false``)."""
        uid = runtime.uid
        target = self._target_labels.get(uid)
        if target is None:
            target = self._target_labels[uid] = scrape_labels(runtime.pod)
        keys, out = self._keys, []
        for name, items in zip(names, labels):
            cache_key = (uid, name, items)
            series = keys.get(cache_key)
            if series is None:
                merged = dict(items)
                merged.update(target)
                series = keys[cache_key] = self.store.series(name, tuple(sorted(merged.items())))
            out.append(series)
        return out

    # -- the HTTP API's two endpoints, as DataFrames --------------------------------------------
    def query(self, expr: str, time=None) -> pd.DataFrame:
        at = self.clock.t if time is None else to_seconds(time)
        return promql.to_frame(promql.instant(expr, self.store, at))

    def query_range(self, expr: str, start, end, step="10s") -> pd.DataFrame:
        return promql.to_frame(
            promql.range_(expr, self.store, to_seconds(start), to_seconds(end), seconds(step, name="step"))
        )
