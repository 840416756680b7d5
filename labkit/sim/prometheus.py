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
        self._known: dict = {}  # uid → name → id(label tuple) → (the tuple, its Series), see scrape
        self._known_size = 0
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
        keys, known = self._keys, self._known
        samples = []
        current: dict[str, list] = {}
        for runtime in sorted(self.dataplane.pods.values(), key=lambda r: (r.namespace, r.name)):
            if runtime.proxy is None:
                continue
            uid = runtime.uid
            exposed = current[uid] = []
            target = self._target_labels.get(uid)
            if target is None:
                target = self._target_labels[uid] = scrape_labels(runtime.pod)
            pod_known = known.get(uid)
            if pod_known is None:
                pod_known = known[uid] = {}
            for name, items, value in runtime.proxy.samples():
                # A proxy hands out the same label tuples scrape after scrape: find the series by the tuple's
                # identity (the entry keeps the tuple alive, so its id cannot be reused) before hashing ~20 labels.
                by_id = pod_known.get(name)
                if by_id is None:
                    by_id = pod_known[name] = {}
                hit = by_id.get(id(items))
                if hit is None or hit[0] is not items:
                    cache_key = (uid, name, items)
                    series = keys.get(cache_key)
                    if series is None:
                        merged = dict(items)
                        merged.update(target)  # target labels win, as with honor_labels: false
                        series = keys[cache_key] = self.store.series(name, tuple(sorted(merged.items())))
                    hit = by_id[id(items)] = (items, series)
                    self._known_size += 1
                series = hit[1]
                samples.append((series, float(value)))
                exposed.append(series)
        # A target that disappeared gets staleness markers, so its series leave instant queries at once.
        for uid in self._last.keys() - current.keys():
            samples.extend((series, STALE_NAN) for series in self._last[uid])
            self._target_labels.pop(uid, None)
            self._known_size -= sum(len(by_id) for by_id in known.pop(uid, {}).values())
        if self._known_size > 2 * len(samples) + 1000:  # label tuples made afresh each scrape piled up
            self._known.clear()
            self._known_size = 0
        self._last = current
        self.store.append_series(t, samples)
        self.scrapes += 1

    # -- the HTTP API's two endpoints, as DataFrames --------------------------------------------
    def query(self, expr: str, time=None) -> pd.DataFrame:
        at = self.clock.t if time is None else to_seconds(time)
        return promql.to_frame(promql.instant(expr, self.store, at))

    def query_range(self, expr: str, start, end, step="10s") -> pd.DataFrame:
        return promql.to_frame(
            promql.range_(expr, self.store, to_seconds(start), to_seconds(end), seconds(step, name="step"))
        )
