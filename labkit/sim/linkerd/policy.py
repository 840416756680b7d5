"""The outbound (and inbound) traffic policy a modelled ``linkerd-proxy`` applies.

What a client proxy does with a request to a Service, modelled on Linkerd 2.20
(reference: linkerd-2.20.md §5–6, flagger-and-policies.md §3–4,
linkerd-formats.md §1.2, §5.3):

* **ServiceProfile** (``linkerd.io`` v1alpha1/v1alpha2) named
  ``<svc>.<ns>.svc.cluster.local``, looked up in the client's namespace first,
  then in the Service's. Routes match in order (``method``, ``pathRegex``
  anchored as the proxy anchors it, ``all``/``any``/``not``); unmatched
  requests take the default route (metrics without ``rt_route``, shown as
  ``[DEFAULT]``). ``responseClasses`` classify responses (first match wins,
  else 5xx / gRPC rules). ``isRetryable`` retries failures while the profile's
  retry budget (:class:`TpsBudget`, tower's exact arithmetic) allows; there is
  no per-request cap. A route ``timeout`` wraps all attempts and answers 504.
  ``dstOverrides`` split traffic by weight (decimillis, weight 0 dropped).
* **TrafficSplit** (``split.smi-spec.io`` v1alpha1 and v1alpha2, what linkerd-smi serves): as on a cluster
  with the linkerd-smi extension, :class:`SMIAdaptor` writes each split into
  its apex Service's ServiceProfile ``dstOverrides`` (creating the profile if
  needed) and empties them when the split is deleted.
* **HTTPRoute** (``policy.linkerd.io`` and ``gateway.networking.k8s.io``) and
  **GRPCRoute** with a Service parent, as Linkerd 2.20's policy controller
  serves them: only routes whose ``status.parents`` it marked ``Accepted``
  (a GRPCRoute on the same parent makes HTTPRoutes ``RouteReasonConflicted``);
  rules matched with Gateway API precedence; weighted ``backendRefs``
  (default weight 1; a missing Service, a port-less or non-Service backend
  becomes a synthetic 500); header-modifier and redirect filters (mirror,
  rewrite and extension filters drop the route); the ``retry.linkerd.io/*``
  and ``timeout.linkerd.io/*`` annotations parsed strictly (an invalid one
  drops a route, and is ignored on a Service), on the route else on the
  Service; a rule's ``timeouts.request``. A ServiceProfile with routes or
  ``dstOverrides`` wins: the routes and annotations are ignored, as Linkerd
  documents; an empty one leaves the Service to client policy.
* **When proxies notice.** A proxy discovers a destination once and keeps it
  while it is in use: whether it routes by ServiceProfile or by client policy
  is fixed at that moment (linkerd/linkerd2#11032, #14274), so a profile
  created for a Service a pod already talks to takes effect for new pods (a
  ``kubectl rollout restart``, as the 2.14 books tutorial says) or after the
  destination went unused for the discovery cache's idle time (5 s outbound,
  90 s inbound). Edits to a profile or route already in use stream in at once
  ("after editing the service profile, Linkerd will begin to retry requests
  to this route automatically").

Backends are drawn per request and re-drawn per retry among those with ready
endpoints (weighted random, as ``Distribution::random_available`` does).

The data plane (``sim/dataplane.py``) asks :class:`Index` for a :class:`Plan`
per (client pod, Service, port) and caches it until ``cluster.revision``
moves; everything per request lives in the plan's plain attributes.
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from typing import Callable

from labkit.sim.kube.controller import Controller
from labkit.sim.kube.objects import parse_quantity_weight

CLUSTER_DOMAIN = "cluster.local"
#: The proxy's discovery caches drop a destination unused for this long (Helm
#: ``proxy.outboundDiscoveryCacheUnusedTimeout`` / ``inboundDiscoveryCacheUnusedTimeout``).
OUTBOUND_IDLE_S = 5.0
INBOUND_IDLE_S = 90.0
#: Requests whose body is larger than this are never retried (the body must be buffered to replay it).
MAX_RETRY_BODY = 64 * 1024
#: The destination controller's default budget, sent when a profile has none (profile_translator.go).
DEFAULT_BUDGET = (0.2, 10, 10.0)
#: 2.16+ annotation retries: backoff between attempts (policy-controller grpc/outbound/http.rs).
BACKOFF_MIN_MS, BACKOFF_MAX_MS = 25.0, 250.0
#: The policy controller's synthetic backend for a backendRef whose Service does not exist.
MISSING_BACKEND_STATUS = 500
TIMEOUT_STATUS = 504
TIMEOUT_ERROR = "timeout"
SMI_GROUP = "split.smi-spec.io"
HTTPROUTE_GROUPS = ("policy.linkerd.io", "gateway.networking.k8s.io")
#: Every route kind the policy controller serves for Service parents (GRPCRoute first: it wins conflicts).
ROUTE_PLURALS = ("grpcroutes.gateway.networking.k8s.io", "httproutes.policy.linkerd.io",
                 "httproutes.gateway.networking.k8s.io")
ROUTE_KINDS = (("gateway.networking.k8s.io", "GRPCRoute", "grpcroutes.gateway.networking.k8s.io"),
               ("policy.linkerd.io", "HTTPRoute", "httproutes.policy.linkerd.io"),
               ("gateway.networking.k8s.io", "HTTPRoute", "httproutes.gateway.networking.k8s.io"))
ROUTE_GROUP_KINDS = {(g, k) for g, k, _ in ROUTE_KINDS}
#: Routes whose status the policy controller writes: the HTTP ones, and the experimental channel's TLSRoute and
#: TCPRoute (for opaque and TLS traffic: status only — the embedded mesh routes no TCP by them).
STATUS_ROUTE_KINDS = ROUTE_KINDS + (("gateway.networking.k8s.io", "TLSRoute", "tlsroutes.gateway.networking.k8s.io"),
                                    ("gateway.networking.k8s.io", "TCPRoute", "tcproutes.gateway.networking.k8s.io"))
STATUS_GROUP_KINDS = {(g, k) for g, k, _ in STATUS_ROUTE_KINDS}
#: GEP-1426: a route conflicts with one of a kind before it on the same parent (``parent_has_conflicting_routes``).
ROUTE_PRECEDENCE = ("GRPCRoute", "HTTPRoute", "TLSRoute", "TCPRoute")
POLICY_CONTROLLER = "linkerd.io/policy-controller"


def fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def _f32(x: float) -> float:
    """Round to an IEEE single, as the proxy's ``f32`` retry ratio is."""
    return struct.unpack("f", struct.pack("f", float(x)))[0]


# ----------------------------------------------------------------------------- the retry budget

class TpsBudget:
    """tower's ``TpsBudget`` (tower/src/retry/budget/tps_budget.rs), the budget Linkerd's profile retries use.

    ``ttl`` is split into 10 slots; deposits and withdrawals go to the
    current slot (``writer``) and expire after ``ttl``; a withdrawal succeeds
    when ``current + Σslots + reserve >= withdraw``. With the defaults (0.2,
    10/s, 10 s): deposit 1, withdraw 5, reserve 500 — at most 20% of recent
    requests plus 10 retries a second. Times are seconds (kept as integer
    nanoseconds, like ``Instant``).
    """

    __slots__ = ("reserve", "slots", "window", "writer", "index", "gen_time", "deposit_amount", "withdraw_amount")

    def __init__(self, ttl_s: float, min_per_sec: int, retry_percent: float, now: float = 0.0):
        ttl_ns = int(round(ttl_s * 1e9))
        if not 1_000_000_000 <= ttl_ns <= 60_000_000_000:
            raise ValueError(f"ttl must be between 1s and 60s, got {ttl_s}s")
        ratio = _f32(retry_percent)
        if not 0.0 <= ratio <= 1000.0:
            raise ValueError(f"retry_percent must be between 0 and 1000, got {retry_percent}")
        if ratio == 0.0:
            self.deposit_amount, self.withdraw_amount = 0, 1
        elif ratio <= 1.0:
            self.deposit_amount, self.withdraw_amount = 1, int(_f32(1.0 / ratio))
        else:
            self.deposit_amount, self.withdraw_amount = 1000, int(_f32(1000.0 / ratio))
        self.reserve = int(min_per_sec) * (ttl_ns // 1_000_000_000) * self.withdraw_amount
        self.slots = [0] * 10
        self.window = ttl_ns // 10
        self.writer = 0
        self.index = 0
        self.gen_time = int(round(now * 1e9))

    def _expire(self, now_ns: int) -> None:
        diff = max(0, now_ns - self.gen_time)
        if diff < self.window:
            return
        self.slots[self.index] = self.writer
        self.writer = 0
        idx = (self.index + 1) % 10
        while diff > self.window:
            self.slots[idx] = 0
            diff -= self.window
            idx = (idx + 1) % 10
        self.index = idx
        self.gen_time = now_ns

    def sum(self) -> int:
        return self.writer + sum(self.slots) + self.reserve

    def deposit(self, now: float) -> None:
        self._expire(int(round(now * 1e9)))
        self.writer += self.deposit_amount

    def withdraw(self, now: float) -> bool:
        self._expire(int(round(now * 1e9)))
        if self.sum() >= self.withdraw_amount:
            self.writer -= self.withdraw_amount
            return True
        return False


def budget_params(spec_budget: dict | None) -> tuple[float, int, float] | None:
    """(ratio, min/s, ttl s) as the destination controller sends it and the proxy accepts it; None: no retries."""
    from labkit.sim.apps.base import go_duration

    if not spec_budget:
        return DEFAULT_BUDGET
    try:
        ratio = float(spec_budget.get("retryRatio", DEFAULT_BUDGET[0]))
        min_rps = int(spec_budget.get("minRetriesPerSecond", DEFAULT_BUDGET[1]))
        ttl = go_duration(str(spec_budget.get("ttl", "10s")))
    except (TypeError, ValueError):
        return DEFAULT_BUDGET  # the destination controller falls back to its default on a bad budget
    if not (0.0 <= _f32(ratio) <= 1000.0) or not 1.0 <= ttl <= 60.0 or not 0 <= min_rps < 2 ** 31:
        return None  # convert_retry_budget refuses it: the proxy retries nothing
    return (ratio, min_rps, ttl)


# ----------------------------------------------------------------------------- ServiceProfile matching

_RE2_UNSUPPORTED = re.compile(r"\(\?[=!<>]|\(\?P=|\\[1-9]")


def compile_path_regex(regex: str):
    """A ``pathRegex`` as the proxy compiles it: trimmed, then anchored with ``^``/``$`` unless already anchored.

    Go's RE2 (the sp-validator) and Rust's regex (the proxy) have no lookaround
    or backreferences; a pattern using them never reaches the proxy, so it
    matches nothing here. ``\\z`` (RE2's end of text) becomes Python's ``\\Z``.
    """
    text = str(regex).strip()
    if _RE2_UNSUPPORTED.search(text):
        return None
    anchored = ("" if text.startswith("^") else "^") + text + ("" if text.endswith("$") else "$")
    try:
        return re.compile(anchored.replace("\\z", "\\Z"))
    except re.error:
        return None


def compile_request_match(cond) -> Callable[[str, str], bool] | None:
    """``condition`` → ``f(method, path) -> bool`` (path without the query), or None when it is unusable."""
    if not isinstance(cond, dict) or not cond:
        return None
    parts: list[Callable[[str, str], bool]] = []
    # Several fields set (``method`` + ``pathRegex``, as `linkerd profile` writes them) combine as
    # ``all`` (profile_translator.go toRequestMatch); empty strings count as unset.
    if cond.get("method"):
        method = str(cond["method"])
        parts.append(lambda m, p, method=method: m == method)
    if cond.get("pathRegex"):
        rx = compile_path_regex(cond["pathRegex"])
        if rx is None:
            return None
        parts.append(lambda m, p, s=rx.search: s(p) is not None)
    if cond.get("all") is not None:
        subs = [s for s in (compile_request_match(c) for c in cond["all"] or []) if s is not None]
        parts.append(lambda m, p, subs=subs: all(s(m, p) for s in subs))
    if cond.get("any") is not None:
        subs = [s for s in (compile_request_match(c) for c in cond["any"] or []) if s is not None]
        parts.append(lambda m, p, subs=subs: any(s(m, p) for s in subs))
    if cond.get("not") is not None:
        sub = compile_request_match(cond["not"])
        if sub is None:
            return None
        parts.append(lambda m, p, sub=sub: not sub(m, p))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return lambda m, p: all(f(m, p) for f in parts)


def compile_response_match(cond) -> Callable[[int], bool] | None:
    """``responseClasses[].condition`` → ``f(status) -> bool``, or None (the proxy drops the class).

    Several fields set combine as ``all`` (as the destination controller sends
    them); an empty ``all``/``any`` or an invalid status drops the class.
    """
    if not isinstance(cond, dict) or not cond:
        return None
    parts: list[Callable[[int], bool]] = []
    if cond.get("status") is not None:
        st = cond["status"] or {}
        # "Specifying only one of min or max matches just that one status code" (the profile template).
        lo, hi = st.get("min"), st.get("max")
        try:
            lo, hi = int(lo if lo is not None else hi), int(hi if hi is not None else lo)
        except (TypeError, ValueError):
            return None
        if not (100 <= lo <= 999 and 100 <= hi <= 999):
            return None
        parts.append(lambda s, lo=lo, hi=hi: lo <= s <= hi)
    for key in ("all", "any"):
        if cond.get(key) is not None:
            subs = [f for f in (compile_response_match(c) for c in cond[key] or []) if f is not None]
            if not subs:
                return None
            if key == "all":
                parts.append(lambda s, subs=subs: all(f(s) for f in subs))
            else:
                parts.append(lambda s, subs=subs: any(f(s) for f in subs))
    if cond.get("not") is not None:
        sub = compile_response_match(cond["not"])
        if sub is None:
            return None
        parts.append(lambda s, sub=sub: not sub(s))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else (lambda s: all(f(s) for f in parts))


def default_failure(status: int, grpc_status: int | None, error: str | None) -> bool:
    from labkit.sim.linkerd.proxy import GRPC_FAILURES

    if error:
        return True
    if grpc_status is not None:
        return grpc_status in GRPC_FAILURES
    return 500 <= status <= 599


class Route:
    """One route a proxy knows: how it matches, classifies, retries and times out."""

    __slots__ = ("name", "match", "classes", "retryable", "timeout_ms", "kind",
                 "retry_statuses", "retry_limit", "try_timeout_ms", "response_timeout_ms", "idle_timeout_ms",
                 "backends", "order", "ident", "grpc", "retry_grpc", "filters")

    def __init__(self, name: str | None, match=None, classes=(), retryable: bool = False, timeout_ms: float | None = None,
                 kind: str = "profile"):
        self.name = name                  # None: the default route ([DEFAULT])
        self.match = match
        self.classes = tuple(classes)     # ((f(status), is_failure), ...)
        self.retryable = retryable
        self.timeout_ms = timeout_ms      # profile: wraps all attempts; policy: the request timeout
        self.kind = kind                  # "profile" | "policy"
        self.retry_statuses: tuple = ()   # policy retries: ((lo, hi), ...)
        self.retry_limit = 0              # policy retries: max retries per request (0: none)
        self.try_timeout_ms: float | None = None
        self.response_timeout_ms: float | None = None
        self.idle_timeout_ms: float | None = None  # policy: a response body that sends nothing this long is cut
        self.backends = None              # policy: [(weight, (ns, name, port) | None)] ; None: the parent
        self.order: tuple = ()
        self.ident: tuple | None = None   # policy: (group, kind, namespace, name) of the xRoute; None: the default route
        self.grpc = False                 # a GRPCRoute's route: metrics in the outbound_grpc_route_ family
        self.retry_grpc: frozenset = frozenset()  # policy retries: gRPC codes retried (retry.linkerd.io/grpc)
        self.filters: Filters | None = None       # policy: the rule's header modifiers / redirect

    def failed(self, status: int, grpc_status: int | None, error: str | None) -> bool:
        if error:
            return True
        for cond, is_failure in self.classes:
            if cond(status):
                return is_failure
        return default_failure(status, grpc_status, error)

    def __repr__(self) -> str:
        return f"<Route {self.name or '[DEFAULT]'}>"


DEFAULT_ROUTE = Route(None)


@dataclass
class Profile:
    """A ServiceProfile as the proxy receives it."""

    name: str
    namespace: str
    version: str
    routes: list[Route]
    budget: tuple[float, int, float] | None
    overrides: list[tuple[str, int, int]]   # (authority, port or 0, weight in decimillis), weight > 0
    default: Route = field(default_factory=lambda: DEFAULT_ROUTE)

    def match(self, method: str, path: str) -> Route:
        for route in self.routes:
            if route.match(method, path):
                return route
        return self.default


def _decimillis(weight) -> int:
    """The destination controller's ``uint32(w.MilliValue() * 10)`` (MilliValue rounds up)."""
    return int(math.ceil(parse_quantity_weight(weight) * 1000 - 1e-9)) * 10


def compile_profile(sp: dict) -> Profile:
    """A ServiceProfile object → :class:`Profile`; routes without a usable condition are dropped, as the proxy drops them."""
    from labkit.sim.apps.base import go_duration

    meta, spec = sp["metadata"], sp.get("spec") or {}
    routes = []
    budget = budget_params(spec.get("retryBudget"))
    for r in spec.get("routes") or []:
        if not isinstance(r, dict) or not r.get("name"):
            continue
        match = compile_request_match(r.get("condition"))
        if match is None:
            continue
        classes = []
        for rc in r.get("responseClasses") or []:
            cond = compile_response_match((rc or {}).get("condition"))
            if cond is not None:
                classes.append((cond, bool((rc or {}).get("isFailure", False))))
        timeout_ms = None
        if r.get("timeout"):
            try:
                secs = go_duration(str(r["timeout"]))
                timeout_ms = secs * 1000.0 if secs > 0 else None
            except ValueError:
                timeout_ms = None
        retryable = bool(r.get("isRetryable")) and budget is not None
        routes.append(Route(str(r["name"]), match, classes, retryable, timeout_ms))
    overrides = []
    for o in spec.get("dstOverrides") or []:
        try:
            w = _decimillis((o or {}).get("weight", 0))
        except ValueError:
            continue
        authority = str((o or {}).get("authority") or "")
        if w <= 0 or not authority:
            continue  # the proxy drops weight-0 overrides (proto.rs convert_dst_override)
        host, _, port = authority.partition(":")
        overrides.append((host, int(port) if port.isdigit() else 0, w))
    return Profile(meta["name"], meta.get("namespace", "default"), meta.get("resourceVersion", ""),
                   routes, budget, overrides)


# ----------------------------------------------------------------------------- HTTPRoute (client policy)

class AnnotationError(ValueError):
    """A ``retry.linkerd.io/*`` / ``timeout.linkerd.io/*`` value the policy controller cannot parse."""


#: ``retry.linkerd.io/grpc`` conditions → gRPC status codes.
GRPC_RETRY_CODES = {"cancelled": 1, "deadline-exceeded": 4, "internal": 13, "resource-exhausted": 8, "unavailable": 14}


U64_MAX = 2 ** 64 - 1


def parse_duration_ms(text) -> float:
    """The policy controller's ``parse_duration``: whole ``ms``/``s``/``m``/``h``/``d`` (``0`` alone allowed);
    fractions, negatives, bare numbers and other units are errors."""
    s = str(text).strip()
    if s.startswith("-"):
        raise AnnotationError(f"duration value cannot be negative: '{s}'")
    m = re.fullmatch(r"(.*\d)(\D*)", s)
    if m is None:
        raise AnnotationError(f"{s} does not contain a timeout duration value")
    magnitude, unit = m.groups()
    if "." in magnitude:
        raise AnnotationError("fractional values not supported")
    digits = magnitude[1:] if magnitude.startswith("+") else magnitude  # Rust's u64 parse takes a leading +
    if not digits.isascii() or not digits.isdigit():
        raise AnnotationError("invalid digit found in string")
    value = int(digits)
    if value > U64_MAX:
        raise AnnotationError("number too large to fit in target type")
    mul = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}.get(unit)
    if unit == "" and value == 0:
        return 0.0
    if unit == "":
        raise AnnotationError(f"missing duration unit; did you mean '{value}s' or '{value}ms'?")
    if mul is None:
        raise AnnotationError(f"invalid duration unit {unit} (expected one of 'ms', 's', 'm', 'h', or 'd')")
    if value * mul > U64_MAX:
        raise AnnotationError(f"Timeout value {s} overflows when converted to 'ms'")
    return float(value * mul)


def _duration_ms(text) -> float | None:
    """A Gateway API duration (``rules[].timeouts.request``) in ms; unparsable or 0: unset."""
    from labkit.sim.apps.base import go_duration

    if text is None:
        return None
    try:
        secs = go_duration(str(text))
    except ValueError:
        return None
    return secs * 1000.0 if secs > 0 else None


def _status_code(text: str) -> int | None:
    return int(text) if text.isdigit() and 100 <= int(text) < 600 else None


def parse_http_conditions(text: str) -> tuple:
    """``retry.linkerd.io/http``: ``5xx``, ``gateway-error``, ``NNN``, ``NNN-MMM`` (100–599), comma-separated,
    no spaces — anything else makes the whole annotation invalid, as in ``parse_http_retry``."""
    out = []
    for cond in str(text).split(","):
        if cond.lower() == "5xx":
            out.append((500, 599))
        elif cond.lower() == "gateway-error":
            out.append((502, 504))
        elif _status_code(cond) is not None:
            out.append((int(cond), int(cond)))
        else:
            lo, sep, hi = cond.partition("-")
            if sep and _status_code(lo) is not None and _status_code(hi) is not None and int(lo) <= int(hi):
                out.append((int(lo), int(hi)))
            else:
                raise AnnotationError(f"invalid retry condition: {text}")
    return tuple(out)


def parse_grpc_conditions(text: str) -> frozenset:
    """``retry.linkerd.io/grpc``: cancelled, deadline-exceeded, internal, resource-exhausted, unavailable."""
    codes = set()
    for cond in str(text).split(","):
        code = GRPC_RETRY_CODES.get(cond.lower())
        if code is None:
            raise AnnotationError(f"Unknown grpc retry condition: {cond}")
        codes.add(code)
    return frozenset(codes)


@dataclass(frozen=True)
class RetryTimeout:
    """The retry and timeout settings one set of annotations gives (``has_*`` False: none of that kind)."""

    has_retry: bool = False
    statuses: tuple = ()
    grpc_codes: frozenset = frozenset()
    limit: int = 1
    try_timeout_ms: float | None = None
    has_timeout: bool = False
    request_ms: float | None = None
    response_ms: float | None = None
    idle_ms: float | None = None
    timeout_keys: frozenset = frozenset()   # which timeout.linkerd.io/* were given (a 0 is given, yet unset)


def _retry_part(a: dict, grpc: bool) -> dict | None:
    """``parse_http_retry`` / ``parse_grpc_retry``: None when no retry annotation applies; errors raise."""
    limit = None
    if "retry.linkerd.io/limit" in a:
        text = str(a["retry.linkerd.io/limit"])
        if not text.isdigit() or int(text) > 65535:
            raise AnnotationError(f"invalid retry.linkerd.io/limit {text!r}: a whole number 0-65535")
        limit = int(text) or None  # 0 is unset
    timeout = None
    if "retry.linkerd.io/timeout" in a:
        timeout = parse_duration_ms(a["retry.linkerd.io/timeout"]) or None
    key = "retry.linkerd.io/grpc" if grpc else "retry.linkerd.io/http"
    conditions = None
    if key in a:
        conditions = parse_grpc_conditions(a[key]) if grpc else parse_http_conditions(a[key])
    if limit is None and timeout is None and conditions is None:
        return None
    return {"limit": limit or 1, "timeout": timeout, "conditions": conditions}


def _timeout_part(a: dict) -> dict:
    out = {}
    for what in ("request", "response", "idle"):
        key = f"timeout.linkerd.io/{what}"
        if key in a:
            out[what] = parse_duration_ms(a[key]) or None
    return out


def annotation_policy(annotations: dict | None, *, grpc: bool = False, lenient: bool = False) -> RetryTimeout:
    """The retry and timeout settings of a route's (or Service's) annotations, as the policy controller reads them.

    An invalid value raises :class:`AnnotationError` — for a route the
    controller then drops the whole route — unless ``lenient`` (a Service:
    the controller logs it and ignores that part, retries or timeouts).
    """
    a = annotations or {}
    try:
        retry = _retry_part(a, grpc)
    except AnnotationError:
        if not lenient:
            raise
        retry = None
    try:
        timeouts = _timeout_part(a)
    except AnnotationError:
        if not lenient:
            raise
        timeouts = {}
    retry = retry or {}
    return RetryTimeout(
        has_retry=bool(retry),
        statuses=() if grpc or retry.get("conditions") is None else retry["conditions"],
        grpc_codes=frozenset() if not grpc or retry.get("conditions") is None else retry["conditions"],
        limit=retry.get("limit", 1),
        try_timeout_ms=retry.get("timeout"),
        has_timeout=any(v is not None for v in timeouts.values()) or bool(timeouts),
        request_ms=timeouts.get("request"),
        response_ms=timeouts.get("response"),
        idle_ms=timeouts.get("idle"),
        timeout_keys=frozenset(timeouts),
    )


def _apply_retry_timeout(route: Route, own: RetryTimeout, parent: RetryTimeout, rule_timeouts: dict | None) -> None:
    """Route annotations replace the Service's (retries and timeouts each as a whole).

    Timeouts as the policy controller builds them (``outbound/index/http.rs`` then ``grpc/outbound/http.rs``):
    the route's ``timeout.linkerd.io/*``, its rule's ``timeouts.request`` standing in for an absent
    ``timeout.linkerd.io/request`` (0 there means none; ``backendRequest`` is ignored); only when that leaves
    no timeout at all do the Service's apply — so a rule's request timeout drops the Service's idle and
    response timeouts too.
    """
    retry = own if own.has_retry else parent
    if retry.has_retry:
        route.retry_statuses = retry.statuses
        route.retry_grpc = retry.grpc_codes
        route.retry_limit = retry.limit
        route.try_timeout_ms = retry.try_timeout_ms
        route.retryable = route.retry_limit > 0
    rule_request = _duration_ms((rule_timeouts or {}).get("request"))
    if own.has_timeout or rule_request is not None:
        route.timeout_ms = own.request_ms if "request" in own.timeout_keys else rule_request
        route.response_timeout_ms, route.idle_timeout_ms = own.response_ms, own.idle_ms
    else:
        route.timeout_ms = parent.request_ms
        route.response_timeout_ms, route.idle_timeout_ms = parent.response_ms, parent.idle_ms


def _compile_http_match(m: dict):
    """One HTTPRouteMatch → (f(method, path, query, headers) -> bool, precedence key)."""
    m = m or {}
    path = m.get("path") or {"type": "PathPrefix", "value": "/"}
    ptype, value = path.get("type", "PathPrefix"), str(path.get("value", "/"))
    if ptype == "Exact":
        pmatch = lambda p, v=value: p == v  # noqa: E731
        prec = (3, len(value))
    elif ptype == "RegularExpression":
        try:
            rx = re.compile(value)
        except re.error:
            return None
        pmatch = lambda p, f=rx.fullmatch: f(p) is not None  # noqa: E731
        prec = (2, len(value))
    else:
        prefix = value.rstrip("/") or "/"

        def pmatch(p, prefix=prefix):
            if prefix == "/":
                return p.startswith("/")
            return p == prefix or p.startswith(prefix + "/")
        prec = (1, len(prefix))
    method = m.get("method")
    headers = []
    for h in m.get("headers") or []:
        name, val, htype = str(h.get("name", "")).lower(), str(h.get("value", "")), h.get("type", "Exact")
        if htype == "RegularExpression":
            try:
                headers.append((name, re.compile(val).fullmatch))
            except re.error:
                return None
        else:
            headers.append((name, lambda x, v=val: x == v))
    queries = []
    for q in m.get("queryParams") or []:
        name, val, qtype = str(q.get("name", "")), str(q.get("value", "")), q.get("type", "Exact")
        if qtype == "RegularExpression":
            try:
                queries.append((name, re.compile(val).fullmatch))
            except re.error:
                return None
        else:
            queries.append((name, lambda x, v=val: x == v))

    def match(meth, p, query, hdrs):
        if method and meth != method:
            return False
        if not pmatch(p):
            return False
        if headers:
            low = {str(k).lower(): str(v) for k, v in (hdrs or {}).items()}
            for name, f in headers:
                if name not in low or not f(low[name]):
                    return False
        if queries:
            from urllib.parse import parse_qsl

            params = dict(parse_qsl(query, keep_blank_values=True))
            for name, f in queries:
                if name not in params or not f(params[name]):
                    return False
        return True
    return match, (prec, 1 if method else 0, len(headers), len(queries))


@dataclass
class ClientPolicy:
    """What the policy controller sends a client proxy for one Service port (no ServiceProfile)."""

    rules: list[tuple]             # (precedence key, match fn, Route), best first
    default: Route | None          # no HTTPRoute: the default route (Service annotations applied)
    has_routes: bool

    def match(self, method: str, path: str, query: str, headers) -> Route | None:
        if not self.has_routes:
            return self.default
        for _, f, route in self.rules:
            if f(method, path, query, headers):
                return route
        return None  # routes attached, none matched: the proxy answers 404


def _parent_matches(ref: dict, route_ns: str, svc_ns: str, svc_name: str, port: int) -> bool:
    if (ref.get("kind") or "Service") != "Service" or (ref.get("group") or "core") not in ("core", ""):
        return False
    if ref.get("name") != svc_name or (ref.get("namespace") or route_ns) != svc_ns:
        return False
    return ref.get("port") in (None, port)


# ----------------------------------------------------------------------------- the index the data plane reads

def _list(cluster, kind: str) -> list[dict]:
    try:
        return cluster.list(kind)
    except Exception:  # kind not served (CRD not installed): nothing of it exists
        return []


def _created_order(obj: dict) -> tuple:
    md = obj.get("metadata") or {}
    return (md.get("creationTimestamp") or "", md.get("namespace", ""), md.get("name", ""))


class Index:
    """Every ServiceProfile, HTTPRoute and annotated Service of the cluster, compiled once per revision."""

    def __init__(self, cluster, previous: "Index | None" = None):
        self.revision = cluster.revision
        cache = previous._compiled if previous is not None else {}
        self._compiled: dict = {}
        self.profiles: dict[tuple[str, str], Profile] = {}
        for sp in _list(cluster, "serviceprofiles.linkerd.io"):
            md = sp["metadata"]
            key = (md.get("uid"), md.get("resourceVersion"))
            prof = cache.get(key) or compile_profile(sp)
            self._compiled[key] = prof
            self.profiles[(md.get("namespace", "default"), md["name"])] = prof
        self.routes: dict[tuple[str, str], list[dict]] = {}
        for plural in ROUTE_PLURALS:
            for hr in _list(cluster, plural):
                md = hr["metadata"]
                for ref in (hr.get("spec") or {}).get("parentRefs") or []:
                    if (ref.get("kind") or "Service") == "Service" and (ref.get("group") or "core") in ("core", ""):
                        ns = ref.get("namespace") or md.get("namespace", "default")
                        bucket = self.routes.setdefault((ns, ref.get("name", "")), [])
                        if hr not in bucket:
                            bucket.append(hr)
        self.service_annotations: dict[tuple[str, str], dict] = {}
        self.services: set[tuple[str, str]] = set()
        for svc in _list(cluster, "Service"):
            md = svc["metadata"]
            key = (md.get("namespace", "default"), md["name"])
            self.services.add(key)
            ann = md.get("annotations") or {}
            if any(k.startswith(("retry.linkerd.io/", "timeout.linkerd.io/")) for k in ann):
                self.service_annotations[key] = ann

    # -- lookups -------------------------------------------------------------------------------------
    def profile_for(self, client_ns: str, svc_ns: str, svc_name: str) -> Profile | None:
        """The ServiceProfile the destination controller serves: the client's namespace first, then the Service's."""
        name = fqdn(svc_name, svc_ns)
        return self.profiles.get((client_ns, name)) or self.profiles.get((svc_ns, name))

    def has_client_policy(self, svc_ns: str, svc_name: str) -> bool:
        return (svc_ns, svc_name) in self.routes or (svc_ns, svc_name) in self.service_annotations

    def client_policy(self, client_ns: str, svc_ns: str, svc_name: str, port: int) -> ClientPolicy | None:
        """The policy controller's answer for ``svc:port`` to a client in ``client_ns``.

        Only routes the controller accepted for this parent count (a GRPCRoute
        on the same parent makes its HTTPRoutes ``RouteReasonConflicted``);
        consumer routes (the client's namespace) win over producer routes; a
        route with an invalid retry/timeout annotation or an unsupported filter
        is dropped whole. No route left: the default route, with the Service's
        annotations.
        """
        attached = [hr for hr in self.routes.get((svc_ns, svc_name), ())
                    if any(_parent_matches(ref, hr["metadata"].get("namespace", "default"), svc_ns, svc_name, port)
                           and route_accepted(hr, ref)
                           for ref in (hr.get("spec") or {}).get("parentRefs") or [])]
        consumer = [hr for hr in attached if hr["metadata"].get("namespace") == client_ns != svc_ns]
        producer = [hr for hr in attached if hr["metadata"].get("namespace") == svc_ns]
        chosen = consumer or producer
        svc_ann = self.service_annotations.get((svc_ns, svc_name))
        svc_rt = annotation_policy(svc_ann, lenient=True)
        rules = []
        for hr in sorted(chosen, key=_created_order):
            try:
                rules += self._route_rules(hr, svc_ns, port, svc_ann)
            except AnnotationError:
                continue  # "Failed to convert route": the controller leaves it out
        if not rules:
            if not svc_rt.has_retry and not svc_rt.has_timeout:
                return None
            route = Route(None, kind="policy")
            _apply_retry_timeout(route, RetryTimeout(), svc_rt, None)
            return ClientPolicy([], route, False)
        # Gateway API precedence: path kind and length, method, headers, query params; then route age and
        # name (already the iteration order), then rule order — a stable sort keeps those ties.
        rules.sort(key=lambda r: r[0], reverse=True)
        return ClientPolicy(rules, None, True)

    def _route_rules(self, hr: dict, svc_ns: str, port: int, svc_ann: dict | None) -> list[tuple]:
        md = hr["metadata"]
        route_ns = md.get("namespace", "default")
        grpc = hr.get("kind") == "GRPCRoute"
        own = annotation_policy(md.get("annotations"), grpc=grpc)
        parent = annotation_policy(svc_ann, grpc=grpc, lenient=True)
        out = []
        for rule in (hr.get("spec") or {}).get("rules") or [{}]:
            rule = rule or {}
            route = Route(md["name"], kind="policy")
            route.ident = (str(hr.get("apiVersion", "")).rpartition("/")[0], hr.get("kind", "HTTPRoute"),
                           route_ns, md["name"])
            route.grpc = grpc
            route.filters = compile_filters(rule.get("filters"))
            _apply_retry_timeout(route, own, parent, None if grpc else rule.get("timeouts"))
            refs = rule.get("backendRefs") or []
            if refs:
                backends = []
                for ref in refs:
                    w = ref.get("weight", 1)
                    try:
                        w = int(w)
                    except (TypeError, ValueError):
                        w = 1
                    bns = ref.get("namespace") or route_ns
                    target = None  # an invalid or missing backend: the proxy answers with a failure
                    if (ref.get("kind") or "Service") == "Service" and (ref.get("group") or "core") in ("core", "") \
                            and ref.get("port") and (bns, ref.get("name", "")) in self.services \
                            and not ref.get("filters"):
                        target = (bns, ref.get("name", ""), int(ref["port"]))
                    backends.append((max(0, w), target))
                route.backends = backends
            for m in rule.get("matches") or [{}]:
                compiled = _compile_grpc_match(m) if grpc else _compile_http_match(m)
                if compiled is None:
                    continue
                f, prec = compiled
                out.append((prec, f, route))
        return out


def route_accepted(route: dict, ref: dict) -> bool:
    """Whether the policy controller's status accepts ``route`` for the parent ``ref`` (it only serves those)."""
    for parent in (route.get("status") or {}).get("parents") or []:
        if parent.get("controllerName") != POLICY_CONTROLLER:
            continue
        pref = parent.get("parentRef") or {}
        if pref.get("name") != ref.get("name") or pref.get("port") != ref.get("port"):
            continue
        if (pref.get("kind") or "Service") != (ref.get("kind") or "Service"):
            continue
        for cond in parent.get("conditions") or []:
            if cond.get("type") == "Accepted":
                return cond.get("status") == "True"
    return False


@dataclass(frozen=True)
class Filters:
    """A rule's filters the proxy applies: request/response header modifiers, a redirect."""

    request_headers: tuple = ()    # (op, name, value): set / add / remove
    response_headers: tuple = ()
    redirect: dict | None = None

    def request(self, headers: dict | None) -> dict | None:
        return _modify(headers, self.request_headers) if self.request_headers else headers

    def response(self, headers: dict | None) -> dict | None:
        return _modify(headers, self.response_headers) if self.response_headers else headers


def _modify(headers: dict | None, ops: tuple) -> dict:
    out = dict(headers or {})
    lower = {k.lower(): k for k in out}
    for op, name, value in ops:
        existing = lower.get(name.lower())
        if op == "remove":
            if existing is not None:
                out.pop(existing)
                lower.pop(name.lower())
        elif op == "add" and existing is not None:
            out[existing] = f"{out[existing]},{value}"
        else:
            if existing is not None:
                out.pop(existing)
            out[name] = value
            lower[name.lower()] = name
    return out


def _header_ops(modifier: dict) -> tuple:
    ops = []
    for op in ("set", "add"):
        for h in (modifier or {}).get(op) or []:
            ops.append((op, str(h.get("name", "")), str(h.get("value", ""))))
    for name in (modifier or {}).get("remove") or []:
        ops.append(("remove", str(name), ""))
    return tuple(ops)


def compile_filters(filters) -> Filters | None:
    """A rule's ``filters`` as the policy controller converts them; RequestMirror, URLRewrite and
    ExtensionRef are "not supported" and drop the route (:class:`AnnotationError`)."""
    if not filters:
        return None
    req, rsp, redirect = (), (), None
    for f in filters:
        kind = (f or {}).get("type", "")
        if kind == "RequestHeaderModifier":
            req += _header_ops(f.get("requestHeaderModifier"))
        elif kind == "ResponseHeaderModifier":
            rsp += _header_ops(f.get("responseHeaderModifier"))
        elif kind == "RequestRedirect":
            redirect = dict(f.get("requestRedirect") or {})
        elif kind in ("RequestMirror", "URLRewrite", "ExtensionRef"):
            raise AnnotationError(f"{kind} filter is not supported")
        else:
            raise AnnotationError("unknown filter")
    return Filters(req, rsp, redirect)


def redirect_response(redirect: dict, authority: str, path: str):
    """The proxy's answer to a ``RequestRedirect`` rule: a 3xx (302 unless set) with ``location``."""
    from labkit.sim.apps.model import Response

    host, _, port = authority.partition(":")
    scheme = redirect.get("scheme") or "http"
    host = redirect.get("hostname") or host
    port = str(redirect.get("port") or port)
    default_port = {"http": "80", "https": "443"}.get(scheme)
    netloc = host if not port or port == default_port else f"{host}:{port}"
    new_path = path
    rp = redirect.get("path") or {}
    if rp.get("type") == "ReplaceFullPath":
        new_path = rp.get("replaceFullPath") or "/"
    elif rp.get("type") == "ReplacePrefixMatch":
        new_path = rp.get("replacePrefixMatch") or "/"
    status = int(redirect.get("statusCode") or 302)
    return Response(status, 1.0, 0, headers={"location": f"{scheme}://{netloc}{new_path}"})


def _compile_grpc_match(m: dict):
    """One GRPCRouteMatch → (f(method, path, query, headers) -> bool, precedence key); a regular-expression
    method match is rejected by the policy controller (None)."""
    m = m or {}
    method = m.get("method") or {}
    if method.get("type") == "RegularExpression":
        return None
    service, name = method.get("service"), method.get("method")
    headers = [(str(h.get("name", "")).lower(), str(h.get("value", ""))) for h in m.get("headers") or []]

    def match(_meth, path, _query, hdrs):
        svc, _, rpc = path.lstrip("/").partition("/")
        if service and svc != service:
            return False
        if name and rpc != name:
            return False
        if headers:
            low = {str(k).lower(): str(v) for k, v in (hdrs or {}).items()}
            return all(low.get(k) == v for k, v in headers)
        return True
    return match, ((1 if service else 0) + (1 if name else 0), len(headers), 0, 0)


# ----------------------------------------------------------------------------- per client × destination

class Plan:
    """What one client proxy applies to requests for one Service port, for the current cluster revision.

    ``kind`` is ``"profile"`` (ServiceProfile: per-route metrics, budget
    retries, route timeouts, ``dstOverrides``) or ``"policy"`` (client
    policy: HTTPRoutes and annotations). ``backends`` is the weighted list of
    concrete Services (``None`` when requests go to the Service itself).
    """

    __slots__ = ("kind", "profile", "client_policy", "dst", "backends", "total_weight", "budget", "stats", "metrics")

    def __init__(self, kind: str):
        self.kind = kind
        self.profile: Profile | None = None
        self.client_policy: ClientPolicy | None = None
        self.dst = ""
        self.backends: list | None = None   # [(cumulative weight, Service or None)]
        self.total_weight = 0
        self.budget: TpsBudget | None = None
        self.stats: dict = {}   # Route → (effective HttpStats, actual HttpStats)
        self.metrics: dict = {}  # Route → RouteMetrics (client policy: the 2.16+ route metrics)


class Discovered:
    """A proxy's discovery-cache entry for one destination: the routing kind it settled on, and when it was last used."""

    __slots__ = ("kind", "last", "rev", "plan", "budget_key", "budget", "idle", "route", "policy")

    def __init__(self, kind: str | None, idle: float):
        self.kind = kind          # "profile" | "policy" | None (no proxy)
        self.last = -math.inf
        self.rev = None
        self.plan: Plan | None = None
        self.budget_key = None
        self.budget: TpsBudget | None = None
        self.idle = idle
        self.route = None     # the default route's RouteMetrics (client policy without a route or annotation)
        self.policy = False   # requests go by client policy (no profile, or one without routes and dstOverrides)


def weighted(backends: list[tuple[int, object]]) -> tuple[list, int]:
    """[(weight, x)] → ([(weight, x)] without zero weights, total weight)."""
    out = [(int(w), x) for w, x in backends if w > 0]
    return out, sum(w for w, _ in out)


def draw(backends: list, total: int, rng, ready: Callable[[object], bool]):
    """One weighted random draw among ready backends (``Distribution::random_available``).

    A drawn backend that is not ready is disabled for this draw and the draw
    repeated; with one backend left it is used if ready. Returns ``NONE`` when
    no backend is ready.
    """
    items = backends
    while items:
        if len(items) == 1:
            x = items[0][1]
            return x if ready(x) else NONE
        pick = rng.random() * total
        acc = 0
        for i, (w, x) in enumerate(items):
            acc += w
            if pick < acc:
                break
        if ready(x):
            return x
        total -= w
        items = items[:i] + items[i + 1:]
    return NONE


NONE = object()


#: What a client sees of a response the client proxy cut after its headers (``Response.error``): the body
#: stops short (curl: "transfer closed with outstanding read data remaining").
INCOMPLETE_BODY = "incomplete body"


def rust_duration(ms: float) -> str:
    """A ``std::time::Duration`` as the proxy's errors print it (``{:?}``): ``2s``, ``1.5s``, ``250ms``."""
    if ms >= 1000:
        return f"{ms / 1000:g}s"
    return f"{ms:g}ms"


def streamed_ms(response) -> float:
    """How long the response body streams after the response headers (0: headers and body together)."""
    headers = getattr(response, "headers_ms", None)
    return max(0.0, response.latency_ms - headers) if headers is not None else 0.0


def body_cut(route: Route, head_ms: float, end_ms: float, to_request: float, to_response: float):
    """A stream deadline that ends a response body the client proxy is still receiving.

    ``head_ms``/``end_ms``: when the headers and the end of the body arrive (from the attempt's start);
    ``to_request``/``to_response``: what is left of the request timeout and the response timeout (inf:
    none). The idle timeout runs from the headers and is reset by every body frame — the model's bodies
    come in one piece, so it fires when the body takes longer than it (``stream_timeouts.rs``). Returns
    (when, ``error`` label, the proxy's error text) or None when the body arrives in time.
    """
    idle = route.idle_timeout_ms
    to_idle = head_ms + idle if idle is not None else math.inf
    cut = min(to_request, to_response, to_idle)
    if cut >= end_ms:
        return None
    from labkit.sim.linkerd import route_metrics as rmx

    if cut == to_request:
        return cut, rmx.REQUEST_TIMEOUT, f"stream deadline met: {rust_duration(route.timeout_ms or cut)}"
    if cut == to_response:
        return cut, rmx.RESPONSE_STREAM_TIMEOUT, \
            f"timed out waiting for response stream: {rust_duration(route.response_timeout_ms or cut)}"
    return cut, rmx.IDLE_TIMEOUT, f"stream timed out due to idleness: {rust_duration(idle)}"


def backoff_ms(attempt: int, rng) -> float:
    """Exponential backoff before retry ``attempt`` (1-based): 25 ms doubling to 250 ms, plus up to 100% jitter."""
    base = min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * (2 ** (attempt - 1)))
    return min(BACKOFF_MAX_MS, base + base * rng.random())


# ----------------------------------------------------------------------------- controllers: linkerd-smi and route status

class PolicyControllers(Controller):
    """linkerd-smi's adaptor (TrafficSplit → ServiceProfile ``dstOverrides``) and the policy controller's
    HTTPRoute status, reconciling on the virtual clock like the real controllers."""

    latency = 0.05

    def __init__(self, cluster):
        super().__init__(cluster)
        self.api.watch(None, self._on_event)
        for ts in _list(cluster, "trafficsplits.split.smi-spec.io"):
            md = ts["metadata"]
            self.enqueue(("ts", md.get("namespace", "default"), md["name"], (ts.get("spec") or {}).get("service", "")))
        self._enqueue_routes()

    def _enqueue_routes(self) -> None:
        for group, kind, plural in STATUS_ROUTE_KINDS:
            for hr in _list(self.cluster, plural):
                self.enqueue(("hr", group, kind, hr["metadata"].get("namespace", "default"), hr["metadata"]["name"]))

    def _on_event(self, event: str, old: dict | None, new: dict | None) -> None:
        obj = new or old or {}
        kind = obj.get("kind")
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        md = obj.get("metadata") or {}
        if kind == "TrafficSplit" and group == SMI_GROUP:
            for o in (old, new):
                if o is not None:
                    self.enqueue(("ts", md.get("namespace", "default"), md.get("name"), (o.get("spec") or {}).get("service", "")))
        elif (group, kind) in STATUS_GROUP_KINDS:
            if new is not None and (old is None or old.get("spec") != new.get("spec")):
                self.enqueue(("hr", group, kind, md.get("namespace", "default"), md.get("name")))
            if kind != "TCPRoute" and (old is None or new is None or old.get("spec") != new.get("spec")):
                self._enqueue_routes()  # routes of later kinds on the same parents may now (no longer) conflict
        elif kind == "Service" and (old is None or new is None
                                    or (old.get("spec") or {}).get("clusterIP") != (new.get("spec") or {}).get("clusterIP")):
            self._enqueue_routes()

    def sync(self, key) -> None:
        if key[0] == "ts":
            self._sync_split(*key[1:])
        else:
            self._sync_route(*key[1:])

    # -- linkerd-smi (pkg/adaptor/controller.go syncHandler) -----------------------------------------
    def _sync_split(self, namespace: str, name: str, service: str) -> None:
        sp_type = self.cluster.discovery.by_key("linkerd.io", "ServiceProfile")
        ts_type = self.cluster.discovery.by_key(SMI_GROUP, "TrafficSplit")
        if sp_type is None or ts_type is None or not service:
            return
        ts = self.api.get(ts_type, namespace, name)
        sp_name = fqdn(service, namespace)
        sp = self.api.get(sp_type, namespace, sp_name)
        if ts is None or (ts.get("spec") or {}).get("service") != service:
            # The split is gone (or now splits another apex): empty the profile's dstOverrides.
            if sp is not None and (sp.get("spec") or {}).get("dstOverrides"):
                new = _copy(sp)
                new["spec"]["dstOverrides"] = None
                self.api.update(sp_type, new)
            return
        overrides = [{"authority": fqdn(b.get("service", ""), namespace), "weight": b.get("weight")}
                     for b in (ts.get("spec") or {}).get("backends") or []]
        if sp is None:
            self.api.create(sp_type, {"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
                                      "metadata": {"name": sp_name, "namespace": namespace},
                                      "spec": {"dstOverrides": overrides}})
        elif (sp.get("spec") or {}).get("dstOverrides") != overrides:
            new = _copy(sp)
            new.setdefault("spec", {})["dstOverrides"] = overrides
            self.api.update(sp_type, new)

    # -- the policy controller's HTTPRoute status ------------------------------------------------------
    def _sync_route(self, group: str, kind: str, namespace: str, name: str) -> None:
        """The policy controller's ``status.parents`` for one route (``k8s/status/src/index.rs``).

        A Service parent gets [Accepted, ResolvedRefs]: Accepted when the
        Service exists with a ClusterIP (``NoMatchingParent`` otherwise, with
        ``parent service must have a ClusterIP`` for a headless one) and no
        route of a kind that wins over this one shares the parent
        (``RouteReasonConflicted``: GRPCRoute > HTTPRoute > TLSRoute >
        TCPRoute); ResolvedRefs ``BackendNotFound`` for a missing Service,
        ``InvalidKind`` for a backend that is no Service. A Server parent gets
        [Accepted] only, with the same conflicts.
        """
        rtype = self.cluster.discovery.by_key(group, kind)
        if rtype is None:
            return
        hr = self.api.get(rtype, namespace, name)
        if hr is None:
            return
        from labkit.sim.kube.objects import rfc3339

        svc_type = self.cluster.types.service
        old_parents = {_ref_key(p.get("parentRef") or {}): p for p in (hr.get("status") or {}).get("parents") or []}
        parents = []
        now = rfc3339(self.clock.t)
        backend = ("ResolvedRefs", "True", "ResolvedRefs", "")
        for rule in (hr.get("spec") or {}).get("rules") or []:
            for b in (rule or {}).get("backendRefs") or []:
                if (b.get("kind") or "Service") != "Service" or (b.get("group") or "core") not in ("core", ""):
                    backend = ("ResolvedRefs", "False", "InvalidKind", "")
                    break
                if self.api.get(svc_type, b.get("namespace") or namespace, b.get("name", "")) is None:
                    backend = ("ResolvedRefs", "False", "BackendNotFound", "")
                    break
            if backend[1] == "False":
                break
        for ref in (hr.get("spec") or {}).get("parentRefs") or []:
            pkind, pgroup = ref.get("kind") or "Service", ref.get("group") or "core"
            pns = ref.get("namespace") or namespace
            if pkind == "Service" and pgroup in ("core", ""):
                svc = self.api.get(svc_type, pns, ref.get("name", ""))
                if svc is None:
                    accepted = ("Accepted", "False", "NoMatchingParent", "")
                elif (svc.get("spec") or {}).get("clusterIP") in ("None", "", None):
                    accepted = ("Accepted", "False", "NoMatchingParent", "parent service must have a ClusterIP")
                elif self._conflicting(kind, pns, ref):
                    accepted = ("Accepted", "False", "RouteReasonConflicted", "")
                else:
                    accepted = ("Accepted", "True", "Accepted", "")
                conds = [accepted, backend]
                parent_ref = {"group": "core", "kind": "Service", "namespace": pns, "name": ref.get("name", "")}
                if ref.get("port") is not None:
                    parent_ref["port"] = ref["port"]
            elif pkind == "Server" and pgroup == "policy.linkerd.io":
                server = self.api.get(self.cluster.discovery.by_key("policy.linkerd.io", "Server"), pns,
                                      ref.get("name", "")) if self.cluster.discovery.by_key("policy.linkerd.io", "Server") else None
                conds = [("Accepted", "False", "NoMatchingParent", "") if server is None
                         else ("Accepted", "False", "RouteReasonConflicted", "") if self._conflicting(kind, pns, ref)
                         else ("Accepted", "True", "Accepted", "")]
                parent_ref = {"group": "policy.linkerd.io", "kind": "Server", "namespace": pns, "name": ref.get("name", "")}
            else:
                continue  # a parent kind the policy controller does not know: no status entry
            old = old_parents.get(_ref_key(parent_ref)) or old_parents.get(_ref_key(ref)) or {}
            old_conds = {c.get("type"): c for c in old.get("conditions") or []}
            conditions = []
            for ctype, status, reason, message in conds:
                prev = old_conds.get(ctype) or {}
                same = prev.get("status") == status and prev.get("reason") == reason
                when = prev.get("lastTransitionTime") if same else now
                conditions.append({"lastTransitionTime": when or now, "message": message, "reason": reason,
                                   "status": status, "type": ctype})
            parents.append({"conditions": conditions, "controllerName": POLICY_CONTROLLER, "parentRef": parent_ref})
        status = dict(hr.get("status") or {})
        status["parents"] = parents
        if status != hr.get("status"):
            self.api.update_status(rtype, hr, status)

    def _conflicting(self, kind: str, pns: str, ref: dict) -> bool:
        """Is a route of a kind that wins over ``kind`` attached to the same parent (GRPCRoute > HTTPRoute >
        TLSRoute > TCPRoute; ``policy-controller/k8s/status/src/index.rs``)?"""
        if kind not in ROUTE_PRECEDENCE:
            return False
        earlier = ROUTE_PRECEDENCE[:ROUTE_PRECEDENCE.index(kind)]
        pkind = ref.get("kind") or "Service"
        for _group, other, plural in STATUS_ROUTE_KINDS:
            if other not in earlier:
                continue
            for route in _list(self.cluster, plural):
                rns = route["metadata"].get("namespace", "default")
                for r in (route.get("spec") or {}).get("parentRefs") or []:
                    if (r.get("kind") or "Service") == pkind and r.get("name") == ref.get("name") \
                            and (r.get("namespace") or rns) == pns and r.get("port") == ref.get("port"):
                        return True
        return False


def _ref_key(ref: dict) -> tuple:
    return (ref.get("kind") or "Service", ref.get("name"), ref.get("port"))


def _copy(obj: dict) -> dict:
    from labkit.sim.kube.objects import clone

    return clone(obj)


def attach(cluster) -> PolicyControllers:
    """Start the policy controllers for ``cluster`` once (the data plane calls this when it starts)."""
    ctl = getattr(cluster, "_policy_controllers", None)
    if ctl is None:
        ctl = cluster._policy_controllers = PolicyControllers(cluster)
    return ctl
