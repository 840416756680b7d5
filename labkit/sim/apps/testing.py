"""A minimal stand-in for the data plane, to exercise app models on their own.

``MiniMesh`` resolves ``host[:port]`` to the model registered under the host's
first label (``web-svc.emojivoto:80`` → ``web-svc``), runs its ``handle``
synchronously, adds a fixed per-hop overhead, and runs ``schedule``d
callbacks on a virtual clock.  No proxies, no metrics: every response is
recorded in ``mesh.records`` so tests can compute success rates per service.

It is what the ``tests/test_apps_*.py`` use, and a reference for what the
real data plane has to provide to the models.
"""
from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
from collections import defaultdict
from typing import Callable

from . import build
from .model import Request, Response

EPOCH = 1_700_000_000.0


@dataclasses.dataclass
class Record:
    t: float
    source: str
    service: str
    method: str
    path: str
    status: int
    grpc_status: int | None
    latency_ms: float

    @property
    def ok(self) -> bool:
        return 100 <= self.status < 500 and not self.grpc_status


class Ctx:
    """The CallContext / ClientContext of one pod."""

    def __init__(self, mesh: "MiniMesh", name: str, seed: int):
        self.mesh = mesh
        self.name = name
        self.rng = random.Random(f"{seed}:{name}")

    @property
    def now(self) -> float:
        return self.mesh.now

    def call(self, target: str, method: str, path: str, *, grpc: bool = False,
             headers: dict | None = None, body_bytes: int = 0, body=None) -> Response:
        return self.mesh.dispatch(self.name, target, method, path, grpc, headers, body_bytes, body)

    def send(self, target: str, request: Request) -> Response:
        return self.call(target, request.method, request.path, grpc=request.grpc, headers=request.headers,
                         body_bytes=request.body_bytes, body=request.body)

    def schedule(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.mesh.schedule(delay_s, fn)

    def log(self, line: str) -> None:
        self.mesh.logs[self.name].append(line)


class PlainCtx(Ctx):
    """A context whose ``call`` has exactly the original interface (no ``body=``)."""

    def call(self, target: str, method: str, path: str, *, grpc: bool = False,
             headers: dict | None = None, body_bytes: int = 0) -> Response:
        return self.mesh.dispatch(self.name, target, method, path, grpc, headers, body_bytes, None)

    def send(self, target: str, request: Request) -> Response:
        return self.call(target, request.method, request.path, grpc=request.grpc, headers=request.headers,
                         body_bytes=request.body_bytes)


class BlockingCtx(Ctx):
    """A client context that can also advance the clock (``run_for``), like an
    interactive ``kubectl exec`` would wait for ``hey`` to finish."""

    def run_for(self, seconds: float) -> None:
        self.mesh.run_for(seconds)


class MiniMesh:
    """``plain=True`` behaves like a data plane built on the original four-field
    interface: ``call`` takes no ``body=``, responses are rebuilt from status,
    latency, length, grpc_status and error (body and headers dropped), and a
    missing service answers ``503`` with ``error=""``."""

    HOP_MS = 0.3

    def __init__(self, seed: int = 0, *, plain: bool = False):
        self.seed = seed
        self.plain = plain
        self.now = EPOCH
        self.apps: dict[str, object] = {}
        self.ctxs: dict[str, Ctx] = {}
        self.down: set[str] = set()
        self.records: list[Record] = []
        self.logs: dict[str, list[str]] = defaultdict(list)
        self._queue: list = []
        self._seq = itertools.count()

    # -- wiring ---------------------------------------------------------------------------------
    def add(self, name: str, app, *, start: bool = True):
        self.apps[name] = app
        ctx = self.ctxs[name] = (PlainCtx if self.plain else Ctx)(self, name, self.seed)
        if start:
            app.start(ctx)
        return app

    def deploy(self, name: str, container: dict, *, pod: dict | None = None,
               objects: dict | None = None, start: bool = True):
        """Build a model from a container spec (as ``apps.build`` does) and register it."""
        pod = pod or {"metadata": {"name": f"{name}-5d8f9c7b6-x2x4z", "namespace": "default"},
                      "spec": {"containers": [container]}}
        objects = objects or {}

        def lookup(kind, ns, obj_name):
            return objects.get((kind, obj_name))
        return self.add(name, build(container, pod, lookup), start=start)

    def blocking_ctx(self, name: str) -> BlockingCtx:
        return BlockingCtx(self, name, self.seed)

    # -- requests ----------------------------------------------------------------------------------
    def dispatch(self, source, target, method, path, grpc, headers, body_bytes, body) -> Response:
        hostport = target.split("://", 1)[-1].rstrip("/")
        host = hostport.split(":", 1)[0].split(".", 1)[0]
        app = self.apps.get(host)
        if app is None or host in self.down:
            resp = Response(503, 1.0, 0, None, "" if self.plain else None)   # the proxy's fail-fast
        else:
            req = Request(method, path, hostport, grpc, headers, body_bytes, body)
            out = app.handle(req, self.ctxs[host])
            if self.plain:
                resp = Response(out.status, out.latency_ms + self.HOP_MS, out.length, out.grpc_status, out.error)
            else:
                resp = dataclasses.replace(out, latency_ms=out.latency_ms + self.HOP_MS)
        self.records.append(Record(self.now, source, host, method, path, resp.status, resp.grpc_status,
                                   resp.latency_ms))
        return resp

    # -- the clock --------------------------------------------------------------------------------
    def schedule(self, delay_s: float, fn) -> None:
        heapq.heappush(self._queue, (self.now + max(0.0, delay_s), next(self._seq), fn))

    def run_for(self, seconds: float) -> None:
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            t, _, fn = heapq.heappop(self._queue)
            self.now = t
            fn()
        self.now = end

    # -- summaries ------------------------------------------------------------------------------------
    def served(self, service: str, *, source: str | None = None, method: str | None = None,
               path_prefix: str | None = None, since: float = 0.0) -> list[Record]:
        return [r for r in self.records if r.service == service and r.t >= since
                and (source is None or r.source == source) and (method is None or r.method == method)
                and (path_prefix is None or r.path.startswith(path_prefix))]

    @staticmethod
    def success(records: list[Record]) -> float:
        return sum(r.ok for r in records) / len(records) if records else float("nan")
