"""A client proxy's backend queue: fail-fast, its gate, and the load shedding above it (Linkerd 2.20).

In front of each backend's load balancer the proxy keeps a queue (``linkerd/proxy/balance/queue``; the
policy controller configures it with capacity 100 and a 3 s ``failfast_timeout``,
``policy-controller/grpc/src/outbound.rs``). A request for a backend without an available endpoint waits
in that queue; if none becomes available within the fail-fast timeout the queue enters *fail-fast*: the
waiting requests fail with ``FailFastError`` (``error="FAIL_FAST"``, on the route and the backend) and
its gate shuts. While the gate is shut the route's distribution is not ready, and the ``LoadShed`` layer
under the route's retry layer fails new requests at once (``LoadShedError``, ``error="LOAD_SHED"``, no
backend series: no backend is reached) — until an endpoint is available again.

That LoadShed layer is also why ``outbound_http_route_retry_overflow_total`` stays 0 in 2.20: the retry
layer counts an overflow only when its inner service is not ready for a retry
(``linkerd/http/retry/src/lib.rs``), and a LoadShed service always reports ready. A retry that meets a
shut gate is sent, counted in ``retry_requests_total``, and fails with LOAD_SHED, which is not retried.
A ``FailFastError`` is retryable whatever the retry conditions say (``route/retry.rs``), a
``LoadShedError`` is not. Requests whose body is larger than the retry buffer (64 KiB,
``max_request_bytes``) are never retried and counted in no retry series (``ReplayBody::try_new`` fails,
the retry policy is skipped).

The embedded mesh keeps, per client proxy and backend, when requests first found it unavailable since its
endpoints went away; a request then waits for what is left of the fail-fast timeout and fails FAIL_FAST,
or, once the timeout has passed, is shed. (A backend that regains endpoints while a request waits is not
modelled: the request fails at the timeout.)
"""
from __future__ import annotations

FAILFAST_S = 3.0
FAIL_FAST = "FAIL_FAST"
LOAD_SHED = "LOAD_SHED"
#: The ``error`` a failed-fast attempt carries in the data plane (``route_metrics.error_label`` → FAIL_FAST).
FAIL_FAST_ERROR = "no endpoints: service in fail-fast"


class Gates:
    """Each client proxy's backend queues that have met an unavailable backend."""

    __slots__ = ("_since",)

    def __init__(self):
        self._since: dict = {}  # key → (when the backend lost its endpoints, when a request first waited)

    def unavailable(self, key, empty_since: float | None, now: float) -> tuple[str, float]:
        """A request for an unavailable backend at ``now`` (seconds): (``FAIL_FAST``, ms it waited) while
        the queue waits for an endpoint, (``LOAD_SHED``, 0.0) once it has entered fail-fast.

        ``empty_since`` is when the backend's last endpoint went away (None: unknown); a new outage
        restarts the wait.
        """
        seen = self._since.get(key)
        if seen is None or (empty_since is not None and seen[0] != empty_since):
            seen = self._since[key] = (empty_since, now)
        failfast_at = seen[1] + FAILFAST_S
        if now < failfast_at:
            return FAIL_FAST, (failfast_at - now) * 1000.0
        return LOAD_SHED, 0.0
