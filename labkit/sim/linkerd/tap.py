"""``linkerd viz tap`` and ``linkerd viz top`` on the embedded mesh.

Tap asks the proxies of the target's pods to stream an event for each
request they see — ``req`` when headers arrive, ``rsp`` when the response
headers return, ``end`` when the stream closes — for requests the filters
match. Here a tap session is a listener the data plane calls for every
request through a watched proxy (``Proxy.taps``); ``tap`` runs the virtual
clock for the session's duration and returns the events as the ``tap``
table. ``top`` is the CLI's aggregation of those same events.

As on a cluster, only pods that carry ``viz.linkerd.io/tap-enabled`` (added
by viz's tap injector when the pod was created) can be tapped, and tapping
nothing else fails with Linkerd's own message.
"""
from __future__ import annotations

import pandas as pd

from labkit.durations import seconds
from labkit.errors import LabkitError

#: gRPC status names as Go's ``codes.Code.String()`` prints them.
GRPC_NAMES = ("OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
              "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
              "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated")
#: Time from response headers to end of stream, µs per response byte and fixed (a small body streams fast).
STREAM_US_FIXED = 18.0
STREAM_US_PER_BYTE = 0.05
RESOURCE_KINDS = {"deploy": "deployment", "deployment": "deployment", "deployments": "deployment",
                  "po": "pod", "pod": "pod", "pods": "pod", "ns": "namespace", "namespace": "namespace"}


class TapError(LabkitError):
    """A tap the tap API refuses (no tappable pods), with Linkerd's message."""


def grpc_name(code: int) -> str:
    return GRPC_NAMES[code] if 0 <= code < len(GRPC_NAMES) else f"Code({code})"


def _kind_name(resource: str) -> tuple[str, str | None]:
    kind, _, name = resource.partition("/")
    canon = RESOURCE_KINDS.get(kind.lower())
    if canon is None:
        raise ValueError(f"cannot tap {resource!r}: use deploy/NAME, pod/NAME or ns/NAME")
    return canon, (name or None)


def _matches(runtime, kind: str, name: str | None, namespace: str) -> bool:
    if kind == "namespace":
        return runtime.namespace == (name or namespace)
    if runtime.namespace != namespace:
        return False
    if name is None:
        return kind != "deployment" or runtime.deployment is not None
    return (runtime.deployment if kind == "deployment" else runtime.name) == name


def target_pods(plane, resource: str, namespace: str) -> list:
    """The running, meshed pods a tap on ``resource`` watches; Linkerd's error when none can be tapped."""
    kind, name = _kind_name(resource)
    plane.sync()
    pods = sorted((p for p in plane.pods.values() if _matches(p, kind, name, namespace)), key=lambda p: p.name)
    tappable = [p for p in pods if p.proxy is not None and p.proxy.tap_enabled]
    if tappable:
        return tappable
    label = f"{kind}/{name}" if name else kind
    message = f"no pods to tap for {label}\n"
    not_enabled = [p.name for p in pods if p.proxy is not None and not p.proxy.tap_enabled]
    if not_enabled:
        listed = "".join(f"\t* {n}\n" for n in not_enabled)
        message += (f"{len(not_enabled)} pods found with tap not enabled:\n{listed}"
                    "restart these pods to enable tap and make them valid tap targets\n")
    if not pods:
        message = f"no pods to tap for {label}: no running pods in namespace {namespace!r}\n"
    raise TapError(message)


class TapSession:
    """One ``linkerd viz tap`` stream: filters, a per-second rate limit, and the events seen."""

    def __init__(self, plane, watched: set[str], *, namespace: str, to=None, to_namespace=None,
                 method=None, path=None, authority=None, max_rps: float = 100.0, wide: bool = False):
        self.plane = plane
        self.watched = watched  # pod uids
        self.to = None
        if to:
            kind, name = _kind_name(to)
            to_ns = to_namespace or namespace
            self.to = lambda pod: _matches(pod, kind, name, to_ns)
        self.method = method.upper() if method else None
        self.path = path
        self.authority = authority
        self.max_rps = max_rps
        self.rows: list[dict] = []
        self._second = None
        self._in_second = 0
        self._streams: dict[tuple, list[int]] = {}  # (proxy uid, peer uid, port) → [base, next stream]
        self._bases: dict[str, int] = {}
        self._ports: dict[tuple, int] = {}  # one client port per connection, as HTTP/2 reuses it

    def __call__(self, direction, client, server, request, response, target_port, latency_ms, route=None) -> None:
        watched_pod = server if direction == "in" else client
        if watched_pod.uid not in self.watched:
            return
        if self.to is not None and not self.to(server):
            return
        if self.method and request.method != self.method:
            return
        if self.path and not request.path.startswith(self.path):
            return
        if self.authority and request.authority != self.authority:
            return
        now = self.plane.clock.t
        second = int(now)
        if second != self._second:
            self._second, self._in_second = second, 0
        if self._in_second >= self.max_rps:
            return
        self._in_second += 1
        self._record(direction, client, server, request, response, target_port, latency_ms, route)

    def _ident(self, watched_pod, peer, port) -> str:
        key = (watched_pod.uid, peer.uid, port)
        stream = self._streams.get(key)
        if stream is None:
            base = self._bases.get(watched_pod.uid, 0)
            self._bases[watched_pod.uid] = base + 1
            stream = self._streams[key] = [base, 0]
        ident = f"{stream[0]}:{stream[1]}"
        stream[1] += 1
        return ident

    def _record(self, direction, client, server, request, response, target_port, latency_ms, route) -> None:
        inbound = direction == "in"
        conn = (client.uid, server.uid, target_port)
        port = self._ports.get(conn)
        if port is None:
            port = self._ports[conn] = client.client_port()
        src = f"{client.ip}:{port}"
        dst = f"{server.ip}:{target_port}"
        if inbound:
            tls = "true" if client.proxy is not None else "no_tls_from_remote"
        else:
            tls = "true" if server.proxy is not None else "not_provided_by_remote"
        ident = self._ident(server if inbound else client, client if inbound else server, target_port)
        latency_us = latency_ms * 1000.0
        duration_us = STREAM_US_FIXED + STREAM_US_PER_BYTE * response.length
        src_labels = _peer_labels(client, tls if inbound else None)
        dst_labels = _peer_labels(server, None if inbound else tls)
        common = {
            "id": ident, "proxy": direction, "src": src, "dst": dst, "tls": tls,
            "method": request.method, "authority": request.authority, "path": request.path,
            "src_res": _res(client), "src_ns": client.namespace, "dst_res": _res(server), "dst_ns": server.namespace,
            "rt_route": route, "src_labels": src_labels, "dst_labels": dst_labels,
        }
        # Calls are synchronous on the virtual clock, so every request of a call chain starts at the same
        # instant; order events as they would stream: a request starts before the calls it makes (longer
        # latency first), responses arrive at start + latency, ends after the body streamed.
        t_us = self.plane.clock.t * 1e6
        grpc = grpc_name(response.grpc_status) if response.grpc_status is not None else None
        status = response.status if response.status >= 100 else None
        reset = 2 if response.error and status is None else None  # h2 INTERNAL_ERROR for a reset stream
        req_headers, rsp_headers, trailers = _headers(request, response)
        self.rows.append({**common, "type": "req", "_at": (t_us, -latency_us), "_headers": req_headers})
        if status is not None:
            self.rows.append({**common, "type": "rsp", "status": status, "latency_us": latency_us,
                              "_at": (t_us + latency_us, 0.0), "_headers": rsp_headers})
        self.rows.append({**common, "type": "end", "status": status, "latency_us": latency_us + duration_us,
                          "duration_us": duration_us, "response_length": response.length,
                          "grpc_status": grpc, "reset_error": reset, "_at": (t_us + latency_us + duration_us, 0.0),
                          "_trailers": trailers})


def _headers(request, response) -> tuple[list, list, list]:
    """(request headers, response headers, trailers) as tap reports them: what the request and response
    carry in the model, plus what gRPC over HTTP/2 always sends (content-type, te: trailers; grpc-status in
    the trailers). Pseudo-headers (:authority, :path…) are not headers in tap's events."""
    grpc = response.grpc_status is not None or request.grpc
    req = [("content-type", "application/grpc"), ("te", "trailers")] if request.grpc else []
    req += [(str(k).lower(), str(v)) for k, v in (request.headers or {}).items()]
    rsp = [("content-type", "application/grpc")] if grpc else []
    rsp += [(str(k).lower(), str(v)) for k, v in (response.headers or {}).items()]
    trailers = [("grpc-status", str(response.grpc_status))] if response.grpc_status is not None else []
    return req, rsp, trailers


def _res(pod) -> str:
    return f"deploy/{pod.deployment}" if pod.deployment else f"pod/{pod.name}"


def _peer_labels(pod, tls: str | None) -> dict:
    labels = {"namespace": pod.namespace, "pod": pod.name, "serviceaccount": pod.serviceaccount}
    if pod.deployment:
        labels["deployment"] = pod.deployment
    if tls is not None:
        labels["tls"] = tls
    return labels


def tap(mesh, target: str, namespace: str | None = None, *, duration="10s", method=None, path=None,
        to=None, to_namespace=None, authority=None, max_rps: float = 100.0, wide: bool = False) -> pd.DataFrame:
    """Watch the target's requests for ``duration`` of (virtual) time; one row per req/rsp/end event."""
    from labkit.tables import new_table

    ns = namespace or "default"
    secs = seconds(duration, name="duration")
    plane = mesh.dataplane
    pods = target_pods(plane, target, ns)
    session = TapSession(plane, {p.uid for p in pods}, namespace=ns, to=to, to_namespace=to_namespace,
                         method=method, path=path, authority=authority, max_rps=max_rps, wide=wide)
    _watch_all(plane, session)
    try:
        mesh.wait(secs)
    finally:
        _unwatch_all(plane, session)
    rows = sorted(session.rows, key=lambda r: r["_at"])  # stable: ties keep the order they were seen
    rows = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
    return new_table("tap", rows, wide=wide, target=target, namespace=ns)


def _watch_all(plane, session) -> None:
    """Listen on every meshed pod's proxy: outbound events of watched pods come from their own proxy,
    inbound ones from theirs too, but a pod created mid-tap is not watched (as with a real tap stream)."""
    for pod in plane.pods.values():
        if pod.proxy is not None and pod.uid in session.watched:
            pod.proxy.taps.append(session)
    plane.drop_lanes()  # the watched proxies' requests take the long way, where tap sees them


def _unwatch_all(plane, session) -> None:
    for pod in plane.pods.values():
        if pod.proxy is not None and session in pod.proxy.taps:
            pod.proxy.taps.remove(session)


def top(mesh, target: str, namespace: str | None = None, *, window="1m", routes: bool = False, **filters) -> pd.DataFrame:
    """``linkerd viz top``: tap the target for ``window`` and aggregate by source, destination, method, path."""
    from labkit.tables import top_from_tap

    events = tap(mesh, target, namespace, duration=window, **filters)
    return top_from_tap(events, routes=routes, target=target, window=window)
