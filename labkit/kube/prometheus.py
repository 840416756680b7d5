"""linkerd-viz's Prometheus, reached through a port-forward the ``kubernetes`` client opens itself.

Why a port-forward: the API server's service proxy
(``/api/v1/namespaces/linkerd-viz/services/prometheus:9090/proxy/...``) dials
the Prometheus pod from outside the mesh, and since Linkerd 2.13 viz ships a
``Server``/``AuthorizationPolicy`` pair that admits only the ``metrics-api``
ServiceAccount over mTLS, so that path answers 403 unless an extra policy is
applied (reference/linkerd-formats.md §4.2). A port-forward enters the pod
over its loopback, which the proxy's iptables rules leave alone — it is what
``linkerd viz`` itself does — so it works on every version with no policy
change and nothing to clean up.

Each query opens ``pods/portforward`` on the ``prometheus`` pod's port 9090
with ``kubernetes.stream.portforward`` (a WebSocket in the
``v4.channel.k8s.io`` framing), sends one HTTP/1.1 request
(``/api/v1/query`` or ``/api/v1/query_range``) over that stream, and parses
Prometheus' JSON into the same DataFrames the embedded mesh's ``query``
returns (``labkit.metrics.promql.to_frame``). The served embedded mesh
answers the very same port-forward, so this code is what its tests run.
"""
from __future__ import annotations

import http.client
import json
import math
import time
import urllib.parse

from labkit.errors import QueryError

VIZ_NAMESPACE = "linkerd-viz"
PROMETHEUS_SELECTOR = "component=prometheus"
PROMETHEUS_PORT = 9090


class PrometheusClient:
    def __init__(self, kube, namespace: str = VIZ_NAMESPACE, *, timeout: float = 30.0):
        self.kube = kube  # labkit.kube.client.KubeClient
        self.namespace = namespace
        self.timeout = timeout
        self._pod: str | None = None

    def _prometheus_pod(self, refresh: bool = False) -> str:
        if self._pod is None or refresh:
            pods = self.kube.call("GET", f"/api/v1/namespaces/{self.namespace}/pods",
                                  query={"labelSelector": PROMETHEUS_SELECTOR}).get("items") or []
            running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
                       and not p["metadata"].get("deletionTimestamp")]
            if not running:
                raise QueryError(f"linkerd-viz's Prometheus is not running (no running pod with {PROMETHEUS_SELECTOR} "
                                 f"in namespace {self.namespace}); install viz with mesh.install_linkerd(viz=True) "
                                 "and wait for `linkerd viz check`")
            self._pod = sorted(p["metadata"]["name"] for p in running)[0]
        return self._pod

    def get(self, path: str, params: dict) -> dict:
        """GET ``path`` on Prometheus through a fresh port-forward; the decoded JSON body."""
        last = None
        for attempt in range(2):  # the pod may have been replaced since we looked it up
            pod = self._prometheus_pod(refresh=attempt > 0)
            try:
                return self._get_via(pod, path, params)
            except (OSError, http.client.HTTPException, ConnectionError) as exc:
                last = exc
        raise QueryError(f"cannot reach linkerd-viz's Prometheus through a port-forward to "
                         f"{self.namespace}/{self._pod}:{PROMETHEUS_PORT}: {last}")

    def _get_via(self, pod: str, path: str, params: dict) -> dict:
        from kubernetes import client
        from kubernetes.stream import portforward

        core = client.CoreV1Api(self.kube.api_client)
        try:
            pf = portforward(core.connect_get_namespaced_pod_portforward, pod, self.namespace,
                             ports=str(PROMETHEUS_PORT))
        except Exception as exc:  # noqa: BLE001 - ApiException(status=0) from the WebSocket handshake
            raise ConnectionError(f"port-forward refused: {getattr(exc, 'reason', exc)}") from None
        sock = pf.socket(PROMETHEUS_PORT)
        sock.settimeout(self.timeout)
        conn = http.client.HTTPConnection("localhost", PROMETHEUS_PORT, timeout=self.timeout)
        conn.sock = sock
        try:
            conn.request("GET", path + "?" + urllib.parse.urlencode(params),
                         headers={"Accept": "application/json", "Connection": "close"})
            resp = conn.getresponse()
            raw = resp.read()
            status = resp.status
        finally:
            conn.close()
            try:
                sock.close()
            except OSError:
                pass
            pf.close()
            error = pf.error(PROMETHEUS_PORT)
        if error:
            raise ConnectionError(error)
        try:
            body = json.loads(raw)
        except ValueError:
            raise QueryError(f"Prometheus answered HTTP {status} with a body that is not JSON: {raw[:200]!r}") from None
        return body

    # -- the two query endpoints -------------------------------------------------------------------
    def query(self, expr: str, time_: float | None = None):
        params = {"query": expr}
        if time_ is not None:
            params["time"] = _num(time_)
        return frame_from_json(self.get("/api/v1/query", params), kind="instant")

    def query_range(self, expr: str, start: float, end: float, step: float):
        params = {"query": expr, "start": _num(start), "end": _num(end), "step": _num(step)}
        return frame_from_json(self.get("/api/v1/query_range", params), kind="range")


def _num(value: float) -> str:
    """A float as an exact decimal (``repr``): Prometheus accepts any float for times and steps."""
    return repr(float(value))


def frame_from_json(body: dict, kind: str | None = None):
    """A Prometheus API response (reference §4.3) → the DataFrame ``mesh.query`` / ``query_range`` returns.

    The parsing lives in ``labkit.metrics.prom_api`` beside the JSON the served embedded mesh writes, so
    the two directions cannot drift apart.
    """
    from labkit.metrics.prom_api import frame_from_json as parse

    return parse(body)


def to_seconds(when) -> float:
    import pandas as pd

    if isinstance(when, (int, float)) and not isinstance(when, bool):
        if math.isnan(float(when)):
            raise ValueError("a query time cannot be NaN")
        return float(when)
    return pd.Timestamp(when).timestamp()  # as the embedded mesh's Prometheus converts it


__all__ = ["PrometheusClient", "frame_from_json", "to_seconds", "time"]
