"""The contract between the data plane and the app behaviour models.

The data plane (``labkit/sim/dataplane.py``) owns the proxies; it hands every
request that reaches a container to that container's ``AppModel.handle`` and
gives the model a ``CallContext`` through which the model makes its own
downstream calls (which go back out through the mesh, so they are measured by
the proxies like real traffic).

Three optional fields extend the interface the data plane was designed
against, because the real apps depend on message *content*, not only on sizes:

* ``Request.body``  -- the request payload (``str``, ``bytes`` or a decoded
  JSON-like object).  Flagger's webhook payload (``{"metadata": {"cmd": ...}}``)
  and the books app's form / JSON bodies travel here.
* ``Response.body`` -- what a client such as ``curl`` prints, and structured
  payloads the apps pass each other (voting ``Results``).  Models precompute
  constant bodies so setting it costs nothing on the hot path.
* ``Response.headers`` -- response headers; the books traffic generator reads
  ``Location`` of the webapp's 303 to learn the new author / book id, exactly
  as ``traffic/main.go`` does.

A data plane that passes the model's ``Response`` object through (or copies it
with ``dataclasses.replace``) keeps them.  ``CallContext.call`` may accept a
``body=`` keyword; when it does not, :func:`call` carries the body in the
reserved header ``x-labkit-body`` instead and :func:`request_body` reads
either.  If the data plane rebuilds the Response from the four original
fields, :func:`call` recovers ``body``/``headers`` from the response the
server model returned during that same synchronous call (``LAST``, set by
``App.handle``'s wrapper), when the status matches.

``error`` is informative: a client treats a response as a connection-level
failure when ``status < 100`` or the error names a reset/refusal or a body
cut short after its headers (``incomplete body: …``, a proxy's stream
timeout) (:func:`transport_error`); ``status=503, error=""`` is an ordinary 503.
"""
from __future__ import annotations

import dataclasses
import inspect
import random
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

BODY_HEADER = "x-labkit-body"


@dataclass(slots=True)
class Request:
    """One request as a server model receives it. Read it, never change it: the data plane hands the same
    object again for an identical request from the same client to the same target (a model that needs other
    headers builds a new Request)."""

    method: str            # "GET", "POST", ...
    path: str              # "/api/vote?choice=:doughnut:" (query included) or
    #                        "/emojivoto.v1.VotingService/VoteDoughnut"
    authority: str         # "web-svc.emojivoto:80", "books:7002"
    grpc: bool = False     # content-type application/grpc
    headers: dict | None = None
    body_bytes: int = 0
    body: Any = None       # extension: the payload itself (see module docstring)


def authority_of(target: str) -> str:
    """A call target's :authority, as a client's HTTP library sends it: ``"http://web-svc.emojivoto:80/x"`` →
    ``"web-svc.emojivoto:80"``."""
    return target.split("://", 1)[-1].split("/", 1)[0]


def request_to(target: str, method: str, path: str, grpc: bool = False, headers: dict | None = None,
               body_bytes: int = 0, body=None) -> Request:
    """The :class:`Request` a client sends to ``target`` with :meth:`PodContext.send`: built once by a client
    whose calls never change (vote-bot's votes, a gRPC stub's methods)."""
    return Request(method, path, authority_of(target), grpc, headers, body_bytes, body)


@dataclass(slots=True)
class Response:
    """One response as a server model returns it. A handler hands it over for good: return a new one (or one a
    downstream call of its own returned), never one kept for reuse, since the data plane updates ``latency_ms``
    in place as the answer passes back through the proxies (one object per request instead of two)."""

    status: int            # HTTP status (gRPC: 200 even when the call fails)
    latency_ms: float      # server time incl. downstream calls
    length: int = 0        # response body bytes
    grpc_status: int | None = None   # numeric code for gRPC, None for HTTP
    error: str | None = None         # stream error (reset, timeout) — rare
    body: Any = None                 # extension: what curl prints / structured payload
    headers: dict | None = None      # extension: e.g. {"location": "/authors/12"}
    headers_ms: float | None = None  # extension: a streamed body — the headers came this early, the body
    #                                  at latency_ms (podinfo's /chunked); None: both together


_new = object.__new__


def response(status: int, latency_ms: float, length: int = 0, grpc_status: int | None = None,
             error: str | None = None, body: Any = None, headers: dict | None = None) -> Response:
    """``Response(...)`` for a handler on the hot path (one per simulated request): calling the class goes
    through C to reach the dataclass's ``__init__``; a plain function does not."""
    r = _new(Response)
    r.status = status
    r.latency_ms = latency_ms
    r.length = length
    r.grpc_status = grpc_status
    r.error = error
    r.body = body
    r.headers = headers
    r.headers_ms = None
    return r


class CallContext(Protocol):
    rng: random.Random
    now: float

    def call(self, target: str, method: str, path: str, *, grpc: bool = False,
             headers: dict | None = None, body_bytes: int = 0) -> Response: ...

    def send(self, target: str, request: Request) -> Response:
        """``call`` with a Request the client built once (:func:`request_to`): a client whose calls never change
        (a load generator, a gRPC stub's methods) neither builds nor looks one up per call."""


class ClientContext(CallContext, Protocol):
    def schedule(self, delay_s: float, fn: Callable[[], None]) -> None: ...

    def log(self, line: str) -> None: ...


@runtime_checkable
class AppModel(Protocol):
    name: str
    ports: dict[int, str]

    def handle(self, req: Request, ctx: CallContext) -> Response: ...

    def start(self, ctx: ClientContext) -> None: ...

    def exec(self, argv: list[str], ctx: ClientContext) -> str: ...

    def ready_after(self) -> float: ...


# -- bodies across the mesh ----------------------------------------------------

LAST: list = [None]
"""The Response most recently returned by a model's ``handle`` (see ``App``)."""

_ACCEPTS_BODY: dict[type, bool] = {}


def _accepts_body(ctx) -> bool:
    """Whether ``ctx.call`` takes a ``body=`` keyword (checked once per context class)."""
    cls = type(ctx)
    known = _ACCEPTS_BODY.get(cls)
    if known is None:
        try:
            params = inspect.signature(ctx.call).parameters
            known = "body" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
        except (TypeError, ValueError):
            known = False
        _ACCEPTS_BODY[cls] = known
    return known


def call(ctx, target: str, method: str, path: str, *, grpc: bool = False,
         headers: dict | None = None, body: Any = None, body_bytes: int = 0) -> Response:
    """``ctx.call`` that carries a payload and keeps the response's body and
    headers (see the module docstring).

    Calls whose result content matters go through here; the hot paths call
    ``ctx.call`` directly.
    """
    LAST[0] = None
    if body is None:
        resp = ctx.call(target, method, path, grpc=grpc, headers=headers, body_bytes=body_bytes)
    elif _accepts_body(ctx):
        resp = ctx.call(target, method, path, grpc=grpc, headers=headers, body_bytes=body_bytes, body=body)
    else:
        merged = dict(headers or {})
        merged[BODY_HEADER] = body
        resp = ctx.call(target, method, path, grpc=grpc, headers=merged, body_bytes=body_bytes)
    src = LAST[0]
    LAST[0] = None
    if (resp.body is None and resp.headers is None and src is not None and src is not resp
            and src.status == resp.status and (src.body is not None or src.headers is not None)):
        resp = dataclasses.replace(resp, body=src.body, headers=src.headers)
    return resp


def transport_error(resp: Response) -> str | None:
    """The connection-level failure a client sees, or None when an HTTP response arrived.

    No HTTP response below status 100; an ``error`` naming a reset, refusal or
    resolution failure wins over a status.  ``Response(503, error="")`` (a
    proxy's fail-fast) is an ordinary 503.
    """
    err = resp.error
    if not err:  # the common case, decided without building a string
        return None if resp.status >= 100 else "connection refused"
    err = err.lower()
    if resp.status < 100:
        return err
    if any(k in err for k in ("reset", "refused", "resolve", "no such host", "incomplete body")):
        return err
    return None


def request_body(req: Request) -> Any:
    """The payload of ``req``, wherever the data plane put it."""
    if req.body is not None:
        return req.body
    if req.headers:
        return req.headers.get(BODY_HEADER)
    return None


def header(headers: dict | None, name: str) -> str | None:
    """Case-insensitive header lookup (HTTP header names are case-insensitive)."""
    if not headers:
        return None
    if name in headers:
        return headers[name]
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v
    return None
