"""linkerd-viz's Prometheus HTTP API on the served mesh, as Prometheus 2.55 answers it.

Two ways in, one implementation (:class:`PrometheusAPI`):

* the port-forward path, as the kube backend and ``linkerd viz`` reach a real
  viz Prometheus (a port-forward to the ``prometheus`` pod's 9090 through the
  API server; see ``Served.port_forward``);
* ``served.prometheus_url``: a loopback HTTP server of its own, the address a
  user gets after ``kubectl -n linkerd-viz port-forward svc/prometheus 9090``,
  for Grafana, ``promtool query …`` or a browser. If the served API requires
  a bearer token, so does this URL (the same token).

Endpoints (``/api/v1/…``, GET or form-encoded POST): ``query``,
``query_range``, ``series``, ``labels``, ``label/<name>/values``,
``metadata``, ``status/buildinfo`` (and ``query_exemplars``, always empty:
Linkerd's proxies expose none); plus ``/-/ready`` and ``/-/healthy``.
Answers use Prometheus's envelope — ``{"status": "success", "data": …}`` or
``{"status": "error", "errorType": …, "error": …}`` with its HTTP codes
(400 ``bad_data`` for bad parameters and unparsable PromQL, 422 ``execution``
for errors while evaluating, 404 ``not_found``, 405 for other methods) —
and its value encoding (sample values as strings in Go's float format, times
as unix seconds).
"""
from __future__ import annotations

import hmac
import json
import math
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from labkit.errors import QueryError
from labkit.metrics import promql
from labkit.metrics.prom_api import instant_json, range_json

#: The Prometheus release linkerd-viz ships (the embedded evaluator models its PromQL).
VERSION = "2.55.1"
BUILDINFO = {"version": VERSION, "revision": "labkit-embedded", "branch": "HEAD", "buildUser": "labkit",
             "buildDate": "", "goVersion": "go1.23.2"}
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Prometheus's defaults when series/labels requests give no start/end: all of time.
_MIN_TIME, _MAX_TIME = -9_223_372_036_854_775.808, 9_223_372_036_854_775.807


class APIError(Exception):
    """An error answer: HTTP status, Prometheus's errorType, message."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind = status, kind


def _bad(message: str) -> APIError:
    return APIError(400, "bad_data", message)


def _time(params: dict, name: str, default: float | None = None) -> float:
    """A time parameter as Prometheus parses it: unix seconds (float) or RFC 3339."""
    text = params.get(name, [""])[-1]
    if text == "":
        if default is not None:
            return default
        raise _bad(f'invalid parameter "{name}": cannot parse "" to a valid timestamp')
    try:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError
        return value
    except ValueError:
        pass
    from labkit.sim.serve.kubeapi import parse_time

    try:
        return parse_time(text)
    except Exception:  # noqa: BLE001 - any parse failure is the client's bad parameter
        raise _bad(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp') from None


def _duration(params: dict, name: str) -> float:
    """A duration parameter: seconds as a float, or a Prometheus duration such as ``30s`` / ``1m``."""
    text = params.get(name, [""])[-1]
    try:
        value = float(text)
        if math.isfinite(value):
            return value
    except ValueError:
        pass
    from labkit.durations import seconds

    try:
        return seconds(text, name=name)
    except Exception:  # noqa: BLE001
        raise _bad(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration') from None


def _timestamp(t: float):
    """Unix seconds as Prometheus writes them: whole milliseconds, as a JSON number."""
    ms = int(round(t * 1000.0))
    return ms // 1000 if ms % 1000 == 0 else ms / 1000.0


class PrometheusAPI:
    """The API over a served mesh's embedded Prometheus; every call holds the served lock."""

    def __init__(self, served):
        self.served = served

    # -- the entry point ----------------------------------------------------------------------------------
    def respond(self, method: str, target: str, headers: dict, body: bytes) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) for one request; ``headers`` keys are lower-case."""
        url = urllib.parse.urlsplit(target)
        path = url.path
        if path in ("/-/ready", "/-/healthy"):
            word = "Ready" if path == "/-/ready" else "Healthy"
            return 200, "text/plain; charset=utf-8", f"Prometheus Server is {word}.\n".encode()
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            if method not in ("GET", "POST"):
                raise APIError(405, "bad_data", f"method {method} not allowed for {path}")
            if method == "POST":
                if "x-www-form-urlencoded" in headers.get("content-type", ""):
                    for key, vals in urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
                        params.setdefault(key, []).extend(vals)
            data = self._route(path, params)
        except APIError as err:
            payload = {"status": "error", "errorType": err.kind, "error": str(err)}
            return err.status, "application/json", json.dumps(payload).encode()
        return 200, "application/json", json.dumps(data).encode()

    def _route(self, path: str, params: dict) -> dict:
        if path == "/api/v1/query":
            return self.query(params)
        if path == "/api/v1/query_range":
            return self.query_range(params)
        if path == "/api/v1/series":
            return self.series(params)
        if path == "/api/v1/labels":
            return self.labels(params)
        match = re.fullmatch(r"/api/v1/label/([^/]+)/values", path)
        if match:
            return self.label_values(urllib.parse.unquote(match.group(1)), params)
        if path == "/api/v1/metadata":
            return self.metadata(params)
        if path == "/api/v1/status/buildinfo":
            return {"status": "success", "data": dict(BUILDINFO)}
        if path == "/api/v1/query_exemplars":  # Grafana asks; Linkerd's proxies expose no exemplars
            self._compiled(params)
            return {"status": "success", "data": []}
        raise APIError(404, "not_found", f"no API endpoint at {path} (the embedded Prometheus serves query, "
                                         f"query_range, series, labels, label/<name>/values, metadata and "
                                         f"status/buildinfo)")

    # -- PromQL ---------------------------------------------------------------------------------------
    def _compiled(self, params: dict) -> str:
        expr = params.get("query", [""])[-1]
        try:
            promql.compile_query(expr)
        except QueryError as exc:
            raise _bad(f'invalid parameter "query": {exc}') from None
        return expr

    def query(self, params: dict) -> dict:
        expr = self._compiled(params)
        kind = promql.result_type(expr)
        with self.served.lock:
            store, now = self.served.mesh.prometheus.store, self.served.mesh.clock.t
            at = _time(params, "time", now)
            try:
                if kind == "matrix":
                    result = promql.instant_matrix(expr, store, at)
                else:
                    result = promql.instant(expr, store, at)
            except QueryError as exc:
                raise APIError(422, "execution", str(exc)) from None
        if kind == "matrix":
            return range_json(result)
        if kind == "scalar":
            return {"status": "success", "data": {"resultType": "scalar",
                                                  "result": [_timestamp(at), promql.format_value(result[0][1])]}}
        return instant_json(result, _timestamp(at))

    def query_range(self, params: dict) -> dict:
        expr = self._compiled(params)
        start, end = _time(params, "start"), _time(params, "end")
        if end < start:
            raise _bad('invalid parameter "end": end timestamp must not be before start time')
        step = _duration(params, "step")
        if step <= 0:
            raise _bad('invalid parameter "step": zero or negative query resolution step widths are not accepted. '
                       'Try a positive integer')
        if (end - start) / step > promql.MAX_POINTS:
            raise _bad("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
                       "resolution (?step=XX)")
        if promql.result_type(expr) not in ("scalar", "vector"):
            raise _bad("invalid expression type \"range vector\" for range query, must be Scalar or instant Vector")
        with self.served.lock:
            try:
                result = promql.range_(expr, self.served.mesh.prometheus.store, start, end, step)
            except QueryError as exc:
                raise APIError(422, "execution", str(exc)) from None
        return range_json(result)

    # -- metadata about series --------------------------------------------------------------------------
    def _selected(self, params: dict, *, required: bool) -> list:
        """The series matching any ``match[]`` selector with a sample in [start, end] (all series if none)."""
        matches = params.get("match[]", [])
        if required and not matches:
            raise _bad("no match[] parameter provided")
        start = _time(params, "start", _MIN_TIME)
        end = _time(params, "end", _MAX_TIME)
        selectors = []
        for text in matches:
            try:
                node = promql.compile_query(text)
            except QueryError as exc:
                raise _bad(f"invalid parameter \"match[]\": {exc}") from None
            if not isinstance(node, promql.Sel) or node.offset_ms or node.at is not None:
                raise _bad(f'invalid parameter "match[]": {text!r} is not a series selector')
            selectors.append(node)
        with self.served.lock:
            store = self.served.mesh.prometheus.store
            found: dict[int, object] = {}
            for sel in selectors or [None]:
                series = store.select(sel.name, list(sel.matchers)) if sel else store.select(None, [])
                for s in series:
                    found.setdefault(s.sid, s)
            lo, hi = int(round(start * 1000)), int(round(end * 1000))
            return [s for s in found.values() if _has_sample(s, lo, hi)]

    def series(self, params: dict) -> dict:
        rows = sorted((s.labels for s in self._selected(params, required=True)), key=lambda d: sorted(d.items()))
        return {"status": "success", "data": rows}

    def labels(self, params: dict) -> dict:
        names = {"__name__"} if params.get("match[]") is None else set()
        for s in self._selected(params, required=False):
            names.update(s.labels)
        return {"status": "success", "data": sorted(names)}

    def label_values(self, name: str, params: dict) -> dict:
        if not _LABEL_NAME.match(name):
            raise _bad(f'invalid label name: "{name}"')
        values = {s.labels.get(name, "") for s in self._selected(params, required=False)}
        values.discard("")
        return {"status": "success", "data": sorted(values)}

    def metadata(self, params: dict) -> dict:
        """HELP/TYPE of the metric families in the store, as the scraped proxies declare them."""
        from labkit.sim.linkerd.proxy import HELP

        wanted = params.get("metric", [""])[-1]
        limit = _int(params, "limit")
        with self.served.lock:
            present = set(self.served.mesh.prometheus.store.names())
        data = {}
        for family in sorted(HELP):
            if wanted and family != wanted:
                continue
            kind, text = HELP[family]
            names = {family} if kind != "histogram" else {family + s for s in ("_bucket", "_sum", "_count")}
            if names & present:
                data[family] = [{"type": kind, "help": text, "unit": ""}]
            if limit is not None and len(data) >= limit:
                break
        return {"status": "success", "data": data}


def _int(params: dict, name: str) -> int | None:
    text = params.get(name, [""])[-1]
    if text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise _bad(f'invalid parameter "{name}": cannot parse "{text}" as an integer') from None
    return value if value > 0 else None


def _has_sample(series, lo_ms: int, hi_ms: int) -> bool:
    times = series.times_ms
    if len(times) == 0:
        return False
    return bool(times[0] <= hi_ms and times[-1] >= lo_ms and
                ((times >= lo_ms) & (times <= hi_ms)).any())


# ---- served.prometheus_url: a loopback HTTP server ---------------------------------------------------------


def _authorized(header: str, token: str) -> bool:
    """The served token as a bearer token, or as the password of basic auth (``http://labkit:TOKEN@host``): the
    form Prometheus's own tools send when a URL carries credentials (promtool 2.42 has no header option)."""
    import base64

    if hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        _, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(password.encode(), token.encode())


class _Handler(BaseHTTPRequestHandler):
    server_version = "Prometheus"
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        api: PrometheusAPI = self.server.api  # type: ignore[attr-defined]
        token = getattr(api.served, "token", None)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if token:
            given = self.headers.get("Authorization", "")
            if not _authorized(given, token):
                self._send(401, "application/json", json.dumps({
                    "status": "error", "errorType": "unauthorized",
                    "error": "this served mesh requires its bearer token (Authorization: Bearer <served.token>)",
                }).encode())
                return
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, ctype, payload = api.respond(self.command, self.path, headers, body)
        self._send(status, ctype, payload)

    def _send(self, status: int, ctype: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


class LoopbackPrometheus:
    """An HTTP server on 127.0.0.1 answering :class:`PrometheusAPI`; ``url``; ``close()`` stops it."""

    def __init__(self, served, host: str = "127.0.0.1", port: int = 0):
        self.api = PrometheusAPI(served)
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.api = self.api  # type: ignore[attr-defined]
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="labkit-prometheus", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
