"""``SimMesh``: the labkit contract (DESIGN.md) over the embedded mesh.

This class only forwards: the cluster model (``sim/kube``, ``sim/linkerd``),
the data plane (``sim/dataplane.py``) and linkerd-viz's Prometheus
(``sim/prometheus.py``) do the work, and the CLI-shaped tables are computed by
the code both backends share (``labkit/metrics/viz.py``) from ``query``.
"""
from __future__ import annotations

import random
from typing import Callable

import pandas as pd

from labkit.durations import seconds
from labkit.sim.clock import Clock, hold_interrupts

#: Waits at least this long (virtual seconds) can show a progress bar, advanced in steps of PROGRESS_STEP.
PROGRESS_MIN_VIRTUAL = 120.0
PROGRESS_STEP = 30.0


def _headless() -> bool:
    from labkit.widgets import headless

    return headless()


class SimMesh:
    """The embedded mesh. Create it with ``labkit.connect()`` or ``labkit.connect("sim", seed=7)``."""

    backend = "sim"

    def __init__(self, seed: int = 0):
        from labkit.sim.kube.cluster import Cluster

        self.seed = seed
        self.clock = Clock()
        self.cluster = Cluster(self.clock, seed=seed)
        from labkit.sim.linkerd.install import register

        # Linkerd's in-process parts (its webhooks answer once their pods serve), so a control plane applied
        # from the real `linkerd install` output works like one `install_linkerd()` applied
        register(self.cluster)
        self._dataplane = None
        self._prometheus = None
        self._revision_after_wait = None  # the cluster's revision when the last wait stopped

    # -- helpers -------------------------------------------------------------
    def rng(self, name: str) -> random.Random:
        """A random stream of its own for one component, derived from the seed.

        Separate streams keep one component's draws from shifting another's
        when a lab adds a call, so outputs stay comparable across edits.
        """
        return random.Random(f"{self.seed}:{name}")

    @property
    def dataplane(self):
        if self._dataplane is None:
            from labkit.sim.dataplane import DataPlane

            self._dataplane = DataPlane(self.cluster, self.clock, seed=self.seed)
        return self._dataplane

    @property
    def prometheus(self):
        if self._prometheus is None:
            from labkit.sim.prometheus import Prometheus

            self._prometheus = Prometheus(self.cluster, self.dataplane, self.clock)
        return self._prometheus

    def __repr__(self) -> str:
        return f"<SimMesh seed={self.seed} now={self.now}>"

    # -- time ----------------------------------------------------------------
    @property
    def now(self) -> pd.Timestamp:
        return pd.Timestamp(self.clock.t, unit="s", tz="UTC")

    def wait(self, duration) -> pd.Timestamp:
        """Advance the virtual clock; every controller and request due meanwhile runs."""
        secs = seconds(duration, name="duration")
        with hold_interrupts():
            # Catch up with what the lab changed since the last wait (an apply starts pods' traffic now, not
            # at the next periodic sync). Only then: wait(a); wait(b) must run exactly as wait(a + b), which is
            # also what makes continuing after an interrupted wait give an uninterrupted run's results.
            if self.cluster.revision != self._revision_after_wait or not self.dataplane._started:
                self.dataplane.sync()
            self.prometheus.ensure_started()
            end = self.clock.t + secs
            try:
                if secs >= PROGRESS_MIN_VIRTUAL and not _headless():
                    self._wait_with_progress(end, secs)
                self.clock.run_until(end)
            finally:
                self._revision_after_wait = self.cluster.revision
        return self.now

    def _wait_with_progress(self, end: float, secs: float) -> None:
        """A progress bar for long waits, shown only once a wait has taken a couple of wall seconds."""
        from tqdm.auto import tqdm

        with tqdm(total=int(secs), unit="s", desc="virtual time", delay=2, leave=False) as bar:
            while self.clock.t < end:
                before = self.clock.t
                self.clock.run_until(min(end, before + PROGRESS_STEP))
                bar.update(int(self.clock.t - before))

    def wait_for(self, condition: Callable[["SimMesh"], bool], timeout="10m", every="10s") -> pd.Timestamp:
        limit, step = seconds(timeout, name="timeout"), seconds(every, name="every")
        if step <= 0:
            raise ValueError("every= must be a positive duration, e.g. '10s'")
        deadline = self.clock.t + limit
        while True:
            if condition(self):
                return self.now
            if self.clock.t >= deadline:
                name = getattr(condition, "__name__", repr(condition))
                raise TimeoutError(f"condition {name} still false after {timeout} (virtual time)")
            self.wait(min(step, deadline - self.clock.t))

    # -- cluster ---------------------------------------------------------------
    def nodes(self) -> pd.DataFrame:
        return self.cluster.nodes()

    def apply(self, source, namespace: str | None = None, *, server_side: bool = False,
              validate: str | bool = "strict") -> list[str]:
        return self.cluster.apply(source, namespace=namespace, server_side=server_side, validate=validate)

    def delete(self, source, namespace: str | None = None) -> list[str]:
        return self.cluster.delete(source, namespace=namespace)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict:
        return self.cluster.get(kind, name, namespace=namespace)

    def pods(self, namespace: str | None = None) -> pd.DataFrame:
        return self.cluster.pods(namespace=namespace)

    def events(self, namespace: str | None = None) -> pd.DataFrame:
        return self.cluster.events(namespace=namespace)

    def set_image(self, deployment: str, image: str, namespace: str | None = None, container: str | None = None):
        return self.cluster.set_image(deployment, image, namespace=namespace, container=container)

    def patch(self, kind: str, name: str, patch: dict, namespace: str | None = None) -> dict:
        return self.cluster.patch(kind, name, patch, namespace=namespace)

    def annotate(self, kind: str, name: str, annotations: dict, namespace: str | None = None) -> str:
        """``kubectl annotate --overwrite KIND NAME K=V …`` (a None value removes K): ``kind/name annotated``."""
        from labkit.k8s import annotation_patch

        patch = annotation_patch(annotations)
        rtype = self.cluster.resolve(kind)
        self.cluster.patch(kind, name, patch, namespace=namespace)
        return f"{rtype.qualified}/{name} annotated"

    def exec(self, target: str, command, namespace: str | None = None, container: str | None = None) -> str:
        return self.dataplane.exec(target, command, namespace=namespace, container=container)

    def logs(self, target: str, namespace: str | None = None, container: str | None = None, tail: int | None = None) -> str:
        return self.dataplane.logs(target, namespace=namespace, container=container, tail=tail)

    def rollout_status(self, deployment: str, namespace: str | None = None) -> str:
        return self.cluster.rollout_status(deployment, namespace=namespace)

    # -- Linkerd ---------------------------------------------------------------
    def check(self, pre: bool = False, proxy: bool = False, namespace: str | None = None):
        return self.cluster.check(pre=pre, proxy=proxy, namespace=namespace)

    def install_linkerd(self, viz: bool = True) -> list[str]:
        return self.cluster.install_linkerd(viz=viz)

    def install_gateway_api(self, *, channel: str = "standard") -> list[str]:
        """The Gateway API CRDs (the release Linkerd 2.20 names): install them before Linkerd.
        ``channel="experimental"`` adds TCPRoute and TLSRoute."""
        return self.cluster.install_gateway_api(channel)

    def install_smi(self) -> list[str]:
        """The linkerd-smi extension (SMI's TrafficSplit, which the 2019 labs use): ``linkerd smi install``."""
        return self.cluster.install_smi()

    @property
    def versions(self) -> dict[str, str]:
        """What the embedded mesh models: the Linkerd release, Kubernetes, the Gateway API, Flagger."""
        from labkit.sim import flagger, linkerd
        from labkit.sim.kube.cluster import KUBERNETES_VERSION
        from labkit.sim.linkerd import install

        return {"linkerd": linkerd.LINKERD_VERSION, "kubernetes": KUBERNETES_VERSION,
                "gateway_api": install.GATEWAY_API_VERSION, "flagger": flagger.VERSION}

    def inject(self, kind: str, namespace: str | None = None, name: str | None = None, **options) -> list[str]:
        """Like ``kubectl get KIND | linkerd inject [--enable-debug-sidecar] - | kubectl apply -f -``."""
        return self.cluster.inject(kind, namespace=namespace, name=name, **options)

    def uninject(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[str]:
        return self.cluster.uninject(kind, namespace=namespace, name=name)

    def profile(self, service: str, namespace: str | None = None, *, open_api=None, template: bool = False) -> dict:
        from labkit.sim.linkerd import profile

        return profile.generate(self, service, namespace=namespace, open_api=open_api, template=template)

    def proxy_metrics(self, target: str, namespace: str | None = None) -> str:
        return self.dataplane.proxy_metrics(target, namespace=namespace)

    def query(self, promql: str, time=None) -> pd.DataFrame:
        return self.prometheus.query(promql, time=time)

    def query_range(self, promql: str, start, end, step="10s") -> pd.DataFrame:
        return self.prometheus.query_range(promql, start, end, step=step)

    def stat(self, resource: str, namespace: str | None = None, *, to=None, from_=None, window="1m") -> pd.DataFrame:
        from labkit.metrics import viz

        return viz.stat(self, resource, namespace=namespace, to=to, from_=from_, window=window)

    def history(self, target: str, namespace: str | None = None, *, since=None, step="10s") -> pd.DataFrame:
        from labkit.metrics import viz

        return viz.history(self, target, namespace=namespace, since=since, step=step)

    def routes(self, target: str, namespace: str | None = None, *, to=None, wide: bool = False) -> pd.DataFrame:
        from labkit.metrics import routes

        return routes.routes(self, target, namespace=namespace, to=to, wide=wide)

    def stat_outbound(self, target: str, namespace: str | None = None, *, window="1m") -> pd.DataFrame:
        """``linkerd viz stat-outbound``: the target's traffic per Service, route and backend (2.17+)."""
        from labkit.metrics import stat_outbound

        return stat_outbound.stat_outbound(self, target, namespace=namespace, window=window)

    def authz(self, target: str, namespace: str | None = None, *, window="1m") -> pd.DataFrame:
        """``linkerd viz authz``: the target's inbound traffic per route, server and authorization (denied too)."""
        from labkit.metrics import authz

        return authz.authz(self, target, namespace=namespace, window=window)

    def stat_inbound(self, target: str, namespace: str | None = None, *, window="1m") -> pd.DataFrame:
        """``linkerd viz stat-inbound``: the target's inbound traffic per server port and route (2.17+)."""
        from labkit.metrics import stat_inbound

        return stat_inbound.stat_inbound(self, target, namespace=namespace, window=window)

    def top(self, target: str, namespace: str | None = None, *, window="1m", **filters) -> pd.DataFrame:
        from labkit.sim.linkerd import tap

        return tap.top(self, target, namespace=namespace, window=window, **filters)

    def tap(self, target: str, namespace: str | None = None, *, duration="10s", method=None, path=None,
            **filters) -> pd.DataFrame:
        from labkit.sim.linkerd import tap

        return tap.tap(self, target, namespace=namespace, duration=duration, method=method, path=path, **filters)

    def edges(self, resource: str, namespace: str | None = None) -> pd.DataFrame:
        from labkit.metrics import viz

        return viz.edges(self, resource, namespace=namespace)

    # -- outward -----------------------------------------------------------------
    def export_metrics(self, path) -> str:
        from labkit.sim import export

        return export.openmetrics(self.prometheus.store, path)

    def serve(self, port: int = 0, **options):
        """The Kubernetes and Prometheus APIs on 127.0.0.1 (``pace=``: virtual seconds per wall second)."""
        from labkit.sim import serve

        return serve.serve(self, port=port, **options)

    # -- Flagger -----------------------------------------------------------------
    def install_flagger(self, **options) -> list[str]:
        from labkit.sim import flagger

        return flagger.install(self, **options)

    def canary(self, name: str, namespace: str | None = None) -> dict:
        return self.get("Canary", name, namespace=namespace)

    # The workload helpers the data plane and Prometheus share with the tables.
    def _meshed_counts(self, kind: str, namespace: str | None) -> dict[str, tuple[int, int]]:
        return self.cluster.meshed_counts(kind, namespace)

    def _service_accounts(self, namespace: str) -> dict[str, str]:
        """pod name → service account, for the client identities `edges` shows."""
        return {p["metadata"]["name"]: p["spec"].get("serviceAccountName") or "default"
                for p in self.cluster.list("Pod", namespace)}
