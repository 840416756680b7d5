"""The Kubernetes API client the kube backend uses: one named context, retries where safe, one clear error.

``KubeClient(context)`` loads exactly the kubeconfig context the user named
(never the current one, and never writes the kubeconfig), and sends raw REST
requests through the ``kubernetes`` package's ``ApiClient`` (its TLS, client
certificates and token plugins such as OKE's ``oci ce cluster generate-token``).
Objects are plain dicts in API JSON shape, like the embedded mesh's.

Fault behaviour (documented contract, tested in tests/test_kube_client.py):

=====================================  ==================================================================
unreachable server / refused / reset   retried with backoff (0.25 s doubling, ``retries`` times) for
before the request was sent            every method; then :class:`Unreachable` naming the server,
                                       the context and the likely fix
read timeout (no answer in time)       retried for idempotent requests (GET, HEAD, PUT with a
                                       resourceVersion, DELETE); a POST or PATCH that timed out may
                                       have been applied, so it raises :class:`Timeout` at once
429 Too Many Requests                  retried for every method, honouring ``Retry-After`` (capped)
502 / 503 / 504                        retried (the API server or its proxy did not process it); a
                                       504 only for idempotent requests
500 Internal Server Error              retried for GET/HEAD only; otherwise :class:`KubeError`
409 Conflict                           never retried here: :class:`Conflict`. Read-modify-write
                                       callers (apply, set_image) re-read and retry the whole
                                       operation; AlreadyExists on create switches apply to update
404                                    ``labkit.NotFoundError`` (the same type the embedded mesh raises)
other 4xx                              :class:`KubeError` with the API server's message (422 →
                                       ``labkit.ApplyError``)
=====================================  ==================================================================

Every wait is bounded: each request has a connect and a read timeout, retries
stop after ``retries`` attempts, and a whole call (every attempt and every
pause between them) ends by its ``deadline`` (30 s by default; ``deadline=`` on
the client or per call): an attempt gets only the time left, and no retry
starts that could not finish in time. Errors say how many attempts were made
over how many seconds, measured, not estimated.
"""
from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

from labkit.errors import ApplyError, BackendError, LabkitError, NotFoundError

#: The label every object a lab creates carries, and the one naming the lab.
PART_OF = "app.kubernetes.io/part-of"
PART_OF_VALUE = "linkerd-labs"
LAB_LABEL = "linkerd-labs/lab"
#: The kubeconfig cluster extension a labkit-served embedded mesh announces itself with.
EMBEDDED_EXTENSION = "labkit.dev/embedded-mesh"

IDEMPOTENT = {"GET", "HEAD", "DELETE", "OPTIONS"}
#: Seconds one API call may take in all, retries and pauses included.
DEADLINE = 30.0
RETRY_STATUS = {429, 502, 503, 504}


class KubeError(LabkitError):
    """The API server refused a request (or could not be reached); ``status`` and ``reason`` as it said."""

    def __init__(self, message: str, status: int = 0, reason: str = "", body: dict | None = None):
        super().__init__(message)
        self.status, self.reason, self.body = status, reason, body or {}


class Unreachable(KubeError):
    """No answer from the API server at all (down, wrong address, network)."""


class Timeout(KubeError):
    """The API server did not answer in time."""


class Conflict(KubeError):
    """409: a write lost a race (stale resourceVersion) or the object already exists."""


@dataclass(frozen=True)
class Resource:
    """One served resource type, as discovery describes it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    singular: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """kubectl's ``kind.group`` in apply/delete output: ``deployment.apps``, ``service``."""
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()

    @property
    def plural_qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{urllib.parse.quote(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{urllib.parse.quote(name)}"
        if sub:
            base += f"/{sub}"
        return base


def load_configuration(context: str, kubeconfig: str | None = None):
    """(kubernetes Configuration for exactly ``context``, that context's cluster entry)."""
    import os

    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    # Read KUBECONFIG now: the kubernetes package reads it once, at its import.
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        contexts, _current = config.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, FileNotFoundError, OSError) as err:
        raise BackendError(
            f"cannot read a kubeconfig to find context {context!r}: {err}. "
            "Create one (kind create cluster, or oci ce cluster create-kubeconfig) or set KUBECONFIG"
        ) from None
    names = [c["name"] for c in contexts or []]
    if context not in names:
        raise BackendError(
            f"kubeconfig context {context!r} not found; available: {', '.join(names) or 'none'} "
            "(see `kubectl config get-contexts`)"
        )
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg, persist_config=False)
    except (ConfigException, OSError) as err:
        raise BackendError(f"cannot use kubeconfig context {context!r}: {err}") from None
    cfg.retries = False  # labkit retries itself, with backoff, only where safe
    cluster = _cluster_entry(kubeconfig, context)
    return cfg, cluster


def _cluster_entry(kubeconfig: str | None, context: str) -> dict:
    import os

    import yaml

    paths = [kubeconfig] if kubeconfig else (os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")).split(os.pathsep)
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                doc = yaml.safe_load(fh) or {}
        except OSError:
            continue
        ctx = next((c.get("context") or {} for c in doc.get("contexts") or [] if c.get("name") == context), None)
        if ctx is None:
            continue
        for c in doc.get("clusters") or []:
            if c.get("name") == ctx.get("cluster"):
                return c.get("cluster") or {}
    return {}


class KubeClient:
    """Raw JSON requests to one cluster, with discovery, retries and clear errors."""

    def __init__(self, context: str, kubeconfig: str | None = None, *, timeout: float = 30.0, connect_timeout: float = 5.0,
                 retries: int = 5, backoff: float = 0.25, sleep: Callable[[float], None] = time.sleep,
                 deadline: float = DEADLINE, clock: Callable[[], float] = time.monotonic):
        if not deadline > 0:
            raise ValueError(f"deadline must be > 0 seconds (the most one API call may take, retries included); "
                             f"got {deadline!r}")
        from kubernetes import client

        self.context = context
        self.kubeconfig = kubeconfig
        self.configuration, cluster = load_configuration(context, kubeconfig)
        self.api_client = client.ApiClient(self.configuration)
        self.server = self.configuration.host
        self.extension = next((e.get("extension") or {} for e in cluster.get("extensions") or []
                               if e.get("name") == EMBEDDED_EXTENSION), None)
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.retries, self.backoff, self.sleep = retries, backoff, sleep
        self.deadline, self.clock = float(deadline), clock
        self._resources: list[Resource] | None = None
        self._lock = threading.Lock()
        #: The API server's ``Warning`` headers seen (not for dry runs), for the caller to print as kubectl does.
        self.warnings: list[str] = []

    # -- transport --------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, query: list | dict | None = None, body: Any = None,
                content_type: str | None = None, accept: str = "application/json", timeout: float | None = None,
                idempotent: bool | None = None, retries: int | None = None,
                deadline: float | None = None) -> tuple[int, dict, bytes]:
        """One request with the retry policy above; returns (status, headers, raw body) for 2xx/3xx/4xx."""
        import urllib3

        max_retries = self.retries if retries is None else retries
        # A caller that asks for a longer read timeout than the deadline (a long exec, a clock advance) gets
        # that one attempt's worth; otherwise the deadline bounds every attempt and pause together.
        budget = float(deadline) if deadline is not None else max(self.deadline, timeout or 0.0)
        spent = 0.0  # seconds used so far: requests (measured) + pauses between them

        def left() -> float:
            return budget - spent
        method = method.upper()
        safe = method in IDEMPOTENT if idempotent is None else idempotent
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        params = list(query.items()) if isinstance(query, dict) else list(query or [])
        data = body  # dicts and lists are serialised by the client's REST layer (JSON)
        if body is not None and not isinstance(body, (bytes, str)):
            headers.setdefault("Content-Type", "application/json")
        attempt = 0
        last: str = ""
        while True:
            attempt += 1
            method_, url, hdrs, _, _ = self.api_client.param_serialize(
                method, path, query_params=params, header_params=dict(headers), auth_settings=["BearerToken"])
            read_timeout = max(0.05, min(timeout or self.timeout, left()))
            started = self.clock()
            try:
                try:
                    resp = self.api_client.rest_client.request(
                        method, url, headers=hdrs, body=data,
                        _request_timeout=(min(self.connect_timeout, read_timeout), read_timeout))
                    raw = resp.read()
                    status = resp.status
                    resp_headers = dict(resp.headers or {})
                finally:
                    spent += self.clock() - started
            except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError) as exc:
                last, retry, kind = _reason(exc), True, Unreachable  # never sent: safe to retry anything
            except urllib3.exceptions.MaxRetryError as exc:
                inner = exc.reason
                sent = not isinstance(inner, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError))
                timed_out = isinstance(inner, urllib3.exceptions.ReadTimeoutError)
                last, retry = _reason(inner or exc), (safe or not sent)
                kind = Timeout if timed_out else Unreachable
            except urllib3.exceptions.ReadTimeoutError as exc:
                last, retry, kind = f"no answer within {read_timeout:g}s ({exc})", safe, Timeout
            except (urllib3.exceptions.ProtocolError, ConnectionError) as exc:
                last, retry, kind = _reason(exc), safe, Unreachable
            except Exception as exc:  # noqa: BLE001 - e.g. ApiException(status=0) for TLS trouble
                if type(exc).__name__ == "ApiException" and getattr(exc, "status", 0) == 0:
                    last, retry, kind = str(getattr(exc, "reason", exc)), safe, Unreachable
                else:
                    raise
            else:
                if status in RETRY_STATUS or (status == 500 and method in ("GET", "HEAD")):
                    can = status in (429, 502, 503) or safe
                    delay = min(_retry_after(resp_headers) or self.backoff * 2 ** (attempt - 1), 5.0)
                    if can and attempt <= max_retries and delay < left():
                        self.sleep(delay)
                        spent += delay
                        continue
                return status, resp_headers, raw
            delay = self.backoff * 2 ** (attempt - 1)
            out_of_time = delay >= left()
            if not retry or attempt > max_retries or out_of_time:
                what = f"{method} {path}"
                tried = f"{attempt} attempt{'s' if attempt > 1 else ''} over {spent:.1f}s"
                why = f" (the call's deadline is {budget:g}s)" if out_of_time and retry else ""
                if kind is Timeout:
                    hint = ("the request may have been applied; check with mesh.get(...) before retrying"
                            if not safe else f"gave up after {tried}{why}")
                    raise Timeout(f"the Kubernetes API at {self.server} (context {self.context!r}) did not answer "
                                  f"{what} in time: {last}; {hint}", 0, "Timeout")
                raise Unreachable(f"cannot reach the Kubernetes API at {self.server} (context {self.context!r}) "
                                  f"for {what} after {tried}{why}: {last}. Is the cluster running (kind get "
                                  f"clusters, docker ps; or the OKE console), and is this the right context?",
                                  0, "Unreachable")
            self.sleep(delay)
            spent += delay

    def call(self, method: str, path: str, *, query=None, body=None, content_type: str | None = None,
             accept: str = "application/json", timeout: float | None = None, idempotent: bool | None = None,
             not_found: str | None = None, retries: int | None = None, deadline: float | None = None) -> Any:
        """A request whose answer is JSON; API errors raise (see the module table)."""
        status, headers, raw = self.request(method, path, query=query, body=body, content_type=content_type,
                                            accept=accept, timeout=timeout, idempotent=idempotent, retries=retries,
                                            deadline=deadline)
        warning = headers.get("Warning") or headers.get("warning")
        if warning and not (isinstance(query, dict) and query.get("dryRun")):
            self.warnings += parse_warnings(warning)
        if 200 <= status < 300:
            if not raw:
                return None
            ctype = headers.get("Content-Type", headers.get("content-type", ""))
            if "json" in ctype or raw[:1] in (b"{", b"["):
                return json.loads(raw)
            return raw.decode("utf-8", "replace")
        raise api_error(status, raw, f"{method} {path}", not_found)

    # -- labkit extensions of a served embedded mesh ------------------------------------------------
    @property
    def embedded(self) -> bool:
        return self.extension is not None

    # -- discovery -----------------------------------------------------------------------------------
    def resources(self, refresh: bool = False) -> list[Resource]:
        with self._lock:
            if self._resources is None or refresh:
                self._resources = self._discover()
            return self._resources

    def _discover(self) -> list[Resource]:
        found: list[Resource] = []
        core = self.call("GET", "/api/v1")
        found += _resources_of("", "v1", core)
        groups = (self.call("GET", "/apis") or {}).get("groups") or []
        builtin, custom = [], []
        for g in groups:
            (builtin if _is_builtin_group(g["name"]) else custom).append(g)
        custom.sort(key=lambda g: g["name"])  # kubectl: CRD groups after the built-ins, alphabetically
        for g in builtin + custom:
            preferred = (g.get("preferredVersion") or {}).get("version")
            versions = [v["version"] for v in g.get("versions") or []]
            for version in ([preferred] if preferred else []) + [v for v in versions if v != preferred]:
                try:  # an aggregated API that is down (metrics.k8s.io...) must not break discovery
                    doc = self.call("GET", f"/apis/{g['name']}/{version}", retries=1)
                except (NotFoundError, KubeError):
                    continue
                found += _resources_of(g["name"], version, doc, preferred=version == preferred)
        return found

    def resolve(self, name: str) -> Resource:
        """kubectl's resource-name resolution: ``deploy``, ``Deployment``, ``deployments.apps``, ``sp``..."""
        for refresh in (False, True):
            match = _match(self.resources(refresh), name)
            if match is not None:
                return match
        raise NotFoundError(f'error: the server doesn\'t have a resource type "{name}"')

    def for_manifest(self, api_version: str, kind: str, *, wait: float = 10.0) -> Resource | None:
        """The resource serving ``apiVersion``/``kind``, re-discovering once; if a CRD for it exists but is
        not served yet (just created, not Established), up to ``wait`` seconds more."""
        group, _, version = api_version.rpartition("/")
        deadline = time.monotonic() + wait
        refresh = False
        while True:
            for r in self.resources(refresh):
                if r.group == group and r.version == version and r.kind == kind:
                    return r
            if refresh and (time.monotonic() >= deadline or not self._crd_pending(group, version, kind)):
                return None
            if refresh:
                self.sleep(0.5)
            refresh = True

    def _crd_pending(self, group: str, version: str, kind: str) -> bool:
        if not group or "." not in group:
            return False
        try:
            crds = self.call("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions").get("items") or []
        except (NotFoundError, KubeError):
            return False
        return any((c.get("spec") or {}).get("group") == group and ((c.get("spec") or {}).get("names") or {}).get("kind") == kind
                   and any(v.get("name") == version for v in (c.get("spec") or {}).get("versions") or []) for c in crds)


def _is_builtin_group(name: str) -> bool:
    return name.endswith(".k8s.io") and not name.startswith("gateway.") or "." not in name


def _resources_of(group: str, version: str, doc: dict | None, preferred: bool = True) -> list[Resource]:
    out = []
    for r in (doc or {}).get("resources") or []:
        if "/" in r.get("name", ""):
            continue
        out.append(Resource(group, version, r["name"], r["kind"], bool(r.get("namespaced")),
                            tuple(r.get("shortNames") or ()), r.get("singularName") or r["kind"].lower()))
    return out


def _match(resources: list[Resource], name: str) -> Resource | None:
    raw = name.strip()
    lowered = raw.lower()
    base, _, group = lowered.partition(".")
    for r in resources:
        names = {r.plural, r.singular, r.kind.lower(), *r.short_names}
        if base in names and (not group or r.group == group):
            return r
    for r in resources:
        if lowered in (r.plural_qualified, r.qualified):
            return r
    return None


def _reason(exc: BaseException | None) -> str:
    text = str(exc or "")
    for marker in ("Connection refused", "timed out", "Name or service not known", "No route to host",
                   "Connection reset", "Remote end closed connection"):
        if marker.lower() in text.lower():
            return marker.lower()
    return text[:200]


def _retry_after(headers: dict) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def parse_warnings(header: str) -> list[str]:
    """The texts of a ``Warning`` header: ``299 - "unknown field \\"x\\"", 299 - "..."`` → ``['unknown field "x"', ...]``."""
    out = []
    for match in re.finditer(r'\d{3} \S+ "((?:[^"\\]|\\.)*)"', header):
        out.append(json.loads(f'"{match.group(1)}"') if "\\" in match.group(1) else match.group(1))
    return out


def api_error(status: int, raw: bytes, what: str, not_found: str | None = None) -> Exception:
    """A non-2xx answer as the exception labkit raises for it (message from the Status body)."""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {"message": raw.decode("utf-8", "replace")[:500]}
    if not isinstance(body, dict):
        body = {"message": str(body)}
    message = body.get("message") or f"HTTP {status}"
    reason = body.get("reason", "")
    if status == 404:
        return NotFoundError(not_found or f"Error from server (NotFound): {message}")
    if status == 409:
        return Conflict(f"Error from server ({reason or 'Conflict'}): {message}", status, reason, body)
    if status == 422:
        error = ApplyError(f"Error from server (Invalid): {message}")
        error.status_body = body  # type: ignore[attr-defined]  # the Status, for kubectl's layout of its causes
        return error
    label = reason or {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 429: "TooManyRequests"}.get(status, "")
    return KubeError(f"Error from server ({label or status}): {message} ({what})", status, reason, body)
