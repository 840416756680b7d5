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
import struct

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


def _pod_order(runtime) -> tuple:
    return runtime.namespace, runtime.name


def _block_order(plans: list):
    """Where each series' value of a scrape is among the values the proxies hand out, end to end (each proxy's
    layout orders its own; staleness markers come in order), as a numpy index; None if they are in order."""
    import numpy as np

    order: list = []
    start = 0
    for layout, series in plans:
        if layout is None or layout.order is None:
            order += range(start, start + len(series))
            start += len(series) if layout is None else layout.size
        else:
            order += [start + i for i in layout.order]
            start += layout.size
    if order == list(range(start)):
        return None
    return np.array(order, dtype=np.intp)


def _in_order(values: list, order):
    """``values`` taken in ``order`` (see _block_order), as doubles: packed once, then one numpy take."""
    import numpy as np

    return np.frombuffer(struct.pack(f"{len(values)}d", *values), dtype=np.float64)[order]


class Prometheus:
    #: Scrape every sample on its own (:meth:`_scrape_plain`) instead of by layouts: for tests to compare.
    plain = False

    def __init__(self, cluster, dataplane, clock):
        self.cluster, self.dataplane, self.clock = cluster, dataplane, clock
        self.store = SeriesStore()
        self._started = False
        self._target_labels: dict[str, tuple] = {}
        self._keys: dict = {}  # (uid, name, labels) → store series
        self._plans: dict = {}  # uid → (its proxy's layout, the store series of its samples) at its last scrape
        self._last: dict[str, tuple] = {}  # uid → (layout, store series) of the last scrape (for staleness markers)
        self._block: tuple | None = None  # (the last scrape's plans, all their series in one tuple)
        self._running: tuple = (None, False)  # (API revision, running then)
        self._pods: tuple = ([], [])  # (the data plane's pods, the same by namespace and name)
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
        if not state:
            return False
        # The answer derives from API objects alone: the same while the API revision stays the same.
        revision = getattr(self.cluster, "revision", None)
        if revision is not None and revision == self._running[0]:
            return self._running[1]
        running = bool(state().get("viz"))
        self._running = (revision, running)
        return running

    def _pods_in_order(self) -> list:
        """The data plane's pods by namespace and name (sorted again only when they are other pods)."""
        pods = list(self.dataplane.pods.values())
        if pods != self._pods[0]:  # runtimes compare by identity
            self._pods = (pods, sorted(pods, key=_pod_order))
        return self._pods[1]

    def scrape(self) -> None:
        """One scrape of every meshed pod's proxy (only while linkerd-viz's Prometheus runs)."""
        if not self.running():
            return
        self.dataplane.sync()
        if self.plain:
            return self._scrape_plain()
        t = self.clock.t
        plans: list = []
        values: list = []
        current: dict = {}
        for runtime in self._pods_in_order():
            if runtime.proxy is None:
                continue
            uid = runtime.uid
            layout, parts = runtime.proxy.scrape_columns()
            # A proxy whose series are those of the last scrape hands out the same layout object: the store
            # series resolved for it then serve again, and the values go to them in order.
            plan = self._plans.get(uid)
            if plan is None or plan[0] is not layout:
                plan = self._plans[uid] = (layout, tuple(self._series_of(runtime, layout.names, layout.labels)))
            current[uid] = plan
            plans.append(plan)
            for part in parts:
                values += part
        for series in self._gone(current):
            plans.append((None, series))
            values += [STALE_NAN] * len(series)
        # The same plans as last time: the same series, in one tuple the store already knows, and the same order
        # to put the proxies' values in (one numpy take for the whole scrape).
        block = self._block
        if block is None or block[0] != plans:  # plans compare by identity (their layouts do not define ==)
            block = self._block = (plans, tuple(series for plan in plans for series in plan[1]), _block_order(plans))
        self.store.append_block(t, block[1], values if block[2] is None else _in_order(values, block[2]))
        self.scrapes += 1

    def _scrape_plain(self) -> None:
        """:meth:`scrape` the plain way, every sample on its own: each proxy's ``samples()``, each looked up by
        its name and labels. The reference the layouts are held to (``plain = True``)."""
        t = self.clock.t
        samples: list = []
        current: dict = {}
        for runtime in sorted(self.dataplane.pods.values(), key=_pod_order):
            if runtime.proxy is None:
                continue
            got = runtime.proxy.samples()
            series = self._series_of(runtime, [s[0] for s in got], [s[1] for s in got])
            current[runtime.uid] = (None, tuple(series))
            samples += zip(series, [s[2] for s in got])
        for series in self._gone(current):
            samples += [(one, STALE_NAN) for one in series]
        self.store.append_series(t, samples)
        self.scrapes += 1

    def _gone(self, current: dict) -> list[tuple]:
        """The store series of each target the last scrape read and this one (``current``: uid → (layout, series))
        did not: they get staleness markers, so they leave instant queries at once. Forgets those targets and
        keeps ``current`` as the last scrape."""
        gone = []
        for uid in self._last.keys() - current.keys():
            gone.append(self._last[uid][1])
            self._target_labels.pop(uid, None)
            self._plans.pop(uid, None)
        self._last = current
        return gone

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
