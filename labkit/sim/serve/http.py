"""The served mesh's HTTP server: Kubernetes REST, streaming (exec, port-forward, watch), and labkit's extensions.

One ``ThreadingHTTPServer`` on 127.0.0.1. Every request that touches the mesh
takes the served mesh's lock, so the model (which is single-threaded) sees
one request at a time; streams (watches, port-forwards, taps) take it per
step and release it in between.

Paths:

* the Kubernetes API (``kubeapi.py``): discovery, CRUD, patches, tables, watches;
* ``/api/v1/namespaces/NS/pods/NAME/log``: ``kubectl logs``;
* ``/api/v1/namespaces/NS/pods/NAME/exec`` and ``.../portforward``: WebSocket
  upgrades in the ``v4.channel.k8s.io`` framing, or, for kubectl's
  port-forward, SPDY/3.1 inside the WebSocket (``spdy.py``). Port-forwarding
  reaches the linkerd-viz Prometheus pod on 9090 (``/api/v1/query``,
  ``/api/v1/query_range`` answered by the embedded evaluator, ``/-/ready``,
  ``/api/v1/status/buildinfo``), any meshed pod's proxy admin port 4191
  (``/metrics``, ``/ready``) and any port a pod's modelled app serves;
* ``.../deployments/NAME/scale``: an ``autoscaling/v1`` Scale;
  ``selfsubjectaccessreviews`` (``kubectl auth can-i``); ``/openapi/v3``
  (``kubectl explain``, ``openapi.py``); protobuf request bodies for the
  kinds ``kubectl create`` sends (``protobuf.py``);
* labkit's extensions, which no real cluster has, under ``/labkit/v1/``:
  ``clock`` (GET: virtual now and pace; POST ``{"advance": seconds}``: run the
  virtual clock forward, what the kube backend's ``wait`` does here instead
  of sleeping), ``linkerd`` (POST ``{"argv", "stdin", "files"}``: the
  ``linkerd`` CLI stand-in, answered as NDJSON lines ``{"stdout"|"stderr"|"exit"}``),
  ``taps`` (GET: active tap streams; POST ``taps/ID/stop``: end one, as
  Ctrl-C ends a real ``linkerd viz tap``).

Every request passes through ``Handler._dispatch`` (body limits, the bearer
token via ``auth.authenticate``, routing, and a ``Status`` for any failure);
an endpoint added to this server is covered by adding its route there.
"""
from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from labkit.sim.serve import auth
from labkit.sim.serve import websocket as ws
from labkit.sim.serve.kubeapi import ApiError, error_from

_CORE = re.compile(r"^/api/v1(?:/(.*))?$")
_GROUP = re.compile(r"^/apis/([^/]+)/([^/]+)(?:/(.*))?$")

#: The largest request body accepted: a real API server's limit (3 MiB), answered 413 above it.
MAX_BODY = 3 * 1024 * 1024
#: Requests served at once (streams excluded, as the API server's max-in-flight excludes long-running ones);
#: more are answered 429 with Retry-After, which kubectl and client-go retry.
MAX_IN_FLIGHT = 64
#: The most virtual seconds one clock request may advance (the model is busy meanwhile); clients send several.
MAX_ADVANCE = 3600.0
#: An advance runs in slices this long, taking the lock for each, so other requests and close() get in.
ADVANCE_SLICE = 10.0


class Server(ThreadingHTTPServer):
    """The HTTP server; it knows its open connections and their threads, so ``close()`` can end them all."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, served):
        self.served = served
        self.in_flight = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._open: dict = {}  # connection socket → its handler thread
        self._sockets: dict = {}  # handler thread → the socket it uses now, when not the accepted one (TLS)
        self._open_lock = threading.Lock()
        super().__init__(addr, Handler)

    def process_request(self, request, client_address):
        if self.served.closed.is_set():
            self.shutdown_request(request)
            return
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name=f"labkit-serve-conn:{client_address[1]}", daemon=True)
        with self._open_lock:
            self._open[request] = thread
        thread.start()

    def _serve_connection(self, request, client_address):
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.pop(request, None)
                self._sockets.pop(threading.current_thread(), None)

    def track(self, sock) -> None:
        """The socket this thread's connection now uses (a TLS wrapper replaces the accepted one)."""
        with self._open_lock:
            self._sockets[threading.current_thread()] = sock

    def open_connections(self) -> int:
        with self._open_lock:
            return len(self._open)

    def end_connections(self, timeout: float = 10.0) -> int:
        """Shut every open connection down and wait for its thread: no request runs once this returns.

        Returns how many threads were still running at the deadline (0 when all ended).
        """
        with self._open_lock:
            open_now = dict(self._open)
            sockets = [self._sockets.get(thread, sock) for sock, thread in open_now.items()]
        for sock in sockets:
            try:
                if sock is not None:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the TCP connection, under any TLS layer
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in open_now.values():
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return sum(t.is_alive() for t in open_now.values())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "labkit-embedded-mesh"

    def setup(self):
        # Idle keep-alive connections and clients that stall mid-request are dropped after this many seconds.
        self.timeout = self.server.served.idle_timeout
        self.request.settimeout(self.timeout)
        tls = self.server.served.tls
        if tls is not None and _first_byte(self.request) == b"\x16":  # a TLS ClientHello: this connection is HTTPS
            try:
                self.request = tls.wrap_socket(self.request, server_side=True)
            except (OSError, ValueError):
                self.request = None
            self.server.track(self.request)
            if self.request is None:
                return
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK cost 40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._responded = False

    def log_message(self, fmt, *args):  # quiet; the served object keeps a request count instead
        pass

    def log_request(self, code="-", size="-"):
        pass

    def handle(self):
        if self.request is not None:  # None: a failed TLS handshake, nothing to answer on
            super().handle()

    def finish(self):
        if self.request is None:
            return
        try:
            super().finish()
        finally:
            if self.server.served.tls is not None and hasattr(self.request, "unwrap"):
                self.request.close()  # the accepted socket was detached by the TLS wrapper

    def handle_one_request(self):
        """One request, but never a hang: a closed server, a TLS handshake or an idle client end the connection."""
        if self.served.closed.is_set():
            self.close_connection = True
            return
        self._responded = False
        try:
            first = self.rfile.peek(1)[:1]
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if first == b"\x16":  # a TLS record (ClientHello) on a plain-HTTP connection (a server serving without TLS)
            self.request_version, self.command, self.requestline = "HTTP/1.1", None, ""
            self._final(ApiError(400, "BadRequest", f"this server speaks plain HTTP ({self.served.url}); the client sent "
                                                    "a TLS handshake: use the server URL from the served kubeconfig"))
            return
        try:
            super().handle_one_request()
        except TimeoutError:
            self.close_connection = True

    def send_response(self, code, message=None):
        self._responded = True
        super().send_response(code, message)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, header too long, unknown method) as Kubernetes Status."""
        if code == 501:
            err = ApiError(405, "MethodNotAllowed", f"the server does not allow the method {self.command!r}")
        else:
            reasons = {400: "BadRequest", 408: "Timeout", 413: "RequestEntityTooLarge", 414: "RequestURITooLong",
                       431: "RequestHeaderFieldsTooLarge"}
            err = ApiError(code, reasons.get(code, "BadRequest"), message or "malformed request")
        self._final(err)

    def _final(self, err: ApiError) -> None:
        """Answer ``err`` and close: what follows on this connection cannot be trusted to be a request."""
        self.close_connection = True
        if getattr(self, "request_version", None) in (None, "HTTP/0.9"):
            self.request_version = "HTTP/1.1"
        try:
            self._send(err.code, json.dumps(err.status()).encode("utf-8"), headers={"Connection": "close"})
        except OSError:
            pass

    # -- plumbing -----------------------------------------------------------------------------------
    @property
    def served(self):
        return self.server.served

    def _send(self, code: int, body: bytes, ctype: str = "application/json", headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj, headers: dict | None = None) -> None:
        deprecated = getattr(self, "_deprecated", None)
        if deprecated:  # first, as kube-apiserver adds it before handling the request
            first = f"299 - {json.dumps(deprecated)}"
            rest = (headers or {}).get("Warning")
            headers = dict(headers or {}, Warning=f"{first}, {rest}" if rest else first)
        self._send(code, json.dumps(obj).encode("utf-8"), headers=headers)

    def _error(self, err: ApiError) -> None:
        self._json(err.code, err.status())

    def _body(self) -> bytes:
        return self._raw

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()

    def _start_chunked(self, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _end_chunked(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass

    def _read_body(self) -> bytes:
        """The whole body, within :data:`MAX_BODY`; a length that is not a count, or too big, ends the connection."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        declared = self.headers.get("Content-Length")
        if declared is None:
            return b""
        try:
            n = int(declared.strip())
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "BadRequest", f"invalid Content-Length header {declared!r}: "
                                              "must be a non-negative integer") from None
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY} bytes "
                                                         f"(this request declares {n})")
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            self.close_connection = True
            raise ApiError(400, "BadRequest", f"the body ended after {len(data)} of the {n} bytes declared")
        return data

    def _read_chunked(self) -> bytes:
        body = b""
        while True:
            line = self.rfile.readline(100)
            try:
                size = int(line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "BadRequest", f"malformed chunk size {line[:40]!r} in a chunked body") from None
            if size == 0:
                while self.rfile.readline(1000).strip():
                    pass  # trailers
                return body
            if len(body) + size > MAX_BODY:
                self.close_connection = True
                raise ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY} bytes")
            body += self.rfile.read(size)
            self.rfile.readline(10)

    def _dispatch(self) -> None:
        """Every request passes here: body, authentication, routing; whatever goes wrong, a Status answers."""
        served = self.served
        served.requests += 1
        long_running = _long_running(self.command, self.path)
        slots = self.server.in_flight  # released below to the very semaphore it was taken from
        admitted = long_running or slots.acquire(blocking=False)
        try:
            if not admitted:
                self._body_or_close()
                raise ApiError(429, "TooManyRequests", f"too many requests in flight (more than {MAX_IN_FLIGHT}); "
                                                       "please try again later", {"retryAfterSeconds": 1})
            # Read the whole body first: an error answered before the handler reads it must not leave it in
            # the stream, where it would be parsed as the next request of this keep-alive connection.
            self._raw = self._read_body()
            self._deprecated = None  # the deprecation warning of the CRD version this request is for, if any
            fault = served.fault_for(self.command, self.path)
            if fault is not None:
                raise ApiError(fault, "InternalError", f"injected fault {fault}")
            auth.authenticate(self.headers, served.token)
            url = urllib.parse.urlsplit(self.path)
            multi = urllib.parse.parse_qs(url.query, keep_blank_values=True)
            params = {k: v[-1] for k, v in multi.items()}
            self._route(url.path.rstrip("/") or "/", params, multi)
        except ApiError as err:
            self._answer_error(err)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, ws.WebSocketClosed):
            self.close_connection = True
        except BaseException as exc:  # noqa: BLE001 - a bug (or an injected interrupt) still gets an answer
            served.errors.append(f"{self.command} {self.path}: {type(exc).__name__}: {exc}")
            self._answer_error(ApiError(500, "InternalError", f"Internal error occurred: {type(exc).__name__}: {exc} "
                                                              "(a labkit bug: please report it)"))
        finally:
            if admitted and not long_running:
                slots.release()

    def _body_or_close(self) -> None:
        try:
            self._raw = self._read_body()
        except ApiError:
            self.close_connection = True

    def _answer_error(self, err: ApiError) -> None:
        if self._responded:  # the answer had begun (a stream): nothing valid can follow on this connection
            self.close_connection = True
            return
        headers = {"Retry-After": "1"} if err.code == 429 else None
        if self.close_connection:
            headers = dict(headers or {}, Connection="close")
        try:
            self._send(err.code, json.dumps(err.status()).encode("utf-8"), headers=headers)
        except OSError:
            self.close_connection = True
            return
        if self.close_connection:
            self._lingering_close()

    def _lingering_close(self, seconds: float = 2.0, most: int = 2 * MAX_BODY) -> None:
        """Close as HTTP servers do after refusing a request whose body is still arriving: answer, stop writing,
        then read and drop what the client still sends (bounded in time and bytes). Closing at once with unread
        data makes the kernel reset the connection, and the client may lose the answer (a broken pipe instead of
        the 413)."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.2)
            deadline, drained = time.monotonic() + seconds, 0
            while time.monotonic() < deadline and drained < most:
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = lambda self: self._dispatch()  # noqa: E731
    do_OPTIONS = do_TRACE = do_CONNECT = lambda self: self._dispatch()  # noqa: E731 - answered 405 by the router

    # -- routing ------------------------------------------------------------------------------------
    def _route(self, path: str, params: dict, multi: dict) -> None:
        api = self.served.api
        lock = self.served.lock
        if self.command not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow the method {self.command}")
        if path.startswith("/labkit/v1"):
            return self._labkit(path[len("/labkit/v1"):], params)
        if self.command not in ("GET", "HEAD") and (path in ("/version", "/api", "/apis", "/healthz", "/readyz",
                                                             "/livez") or path.startswith("/openapi")):
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow {self.command} on {path}")
        if self.command in ("GET", "HEAD"):
            static = {"/version": api.version, "/api": api.api_versions, "/apis": api.api_group_list}
            if path in static:
                with lock:
                    return self._json(200, static[path]())
            if path in ("/healthz", "/readyz", "/livez"):
                return self._send(200, b"ok", "text/plain")
            if path == "/openapi/v2":
                # An empty gnostic OpenAPIv2 Document (the empty protobuf message): kubectl finds no schema
                # for any kind and leaves validation to the server, as for a CRD without a schema.
                return self._send(200, b"", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
            if path.startswith("/openapi/v3"):
                from labkit.sim.serve import openapi

                with lock:
                    cluster = self.served.mesh.cluster
                    types = cluster.discovery.all()
                    crd_type = cluster.discovery.by_key("apiextensions.k8s.io", "CustomResourceDefinition")
                    crds = {c["metadata"]["name"]: c for c in cluster.api.list(crd_type)} if crd_type else {}
                if path == "/openapi/v3":
                    return self._json(200, openapi.index(types, crds))
                doc = openapi.document(types, path[len("/openapi/v3/"):], crds)
                if doc is None:
                    raise ApiError(404, "NotFound", f"no OpenAPI v3 document at {path}")
                return self._json(200, doc)
            if path.startswith("/openapi"):
                raise ApiError(404, "NotFound", "the embedded mesh serves no OpenAPI document")
        m = _CORE.match(path)
        if m:
            return self._resource("", "v1", m.group(1) or "", params, multi)
        m = _GROUP.match(path)
        if m:
            return self._resource(m.group(1), m.group(2), m.group(3) or "", params, multi)
        if self.command == "GET" and path.startswith("/apis/"):
            with lock:
                doc = api.api_group(path[len("/apis/"):])
            if doc is not None:
                return self._json(200, doc)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _resource(self, group: str, version: str, rest: str, params: dict, multi: dict) -> None:
        api, lock = self.served.api, self.served.lock
        parts = [urllib.parse.unquote(p) for p in rest.split("/") if p]
        if not parts:
            if self.command != "GET":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
            with lock:
                doc = api.resource_list(group, version)
            if doc is None:
                raise ApiError(404, "NotFound", f"the server could not find the requested resource ({group}/{version})")
            return self._json(200, doc)
        namespace = None
        if parts[0] == "namespaces" and len(parts) >= 3:
            with lock:
                try:
                    rt = api.resolve(group, version, parts[2])
                    namespaced = rt.namespaced
                except ApiError:
                    namespaced = False
            if namespaced:
                namespace, parts = parts[1], parts[2:]
        plural, name = parts[0], (parts[1] if len(parts) > 1 else None)
        sub = parts[2] if len(parts) > 2 else None
        if group == "authorization.k8s.io" and plural in ("selfsubjectaccessreviews", "selfsubjectrulesreviews"):
            return self._access_review(plural)
        from labkit.sim.kube.validation import deprecation

        with lock:
            rtype = api.resolve(group, version, plural)
            self._deprecated = deprecation(api.cluster.api, rtype, version)
        if rtype.namespaced is False:
            namespace = None
        dry_run = params.get("dryRun") == "All"
        if rtype.kind == "Pod" and sub in ("exec", "attach", "portforward"):
            return self._stream(rtype, namespace or "default", name, sub, params, multi)
        if rtype.kind == "Pod" and sub == "log":
            return self._logs(rtype, namespace or "default", name, params)
        if sub not in (None, "status", "scale"):
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({plural}/{sub})")
        method = self.command
        if sub == "scale":
            return self._scale(rtype, namespace, name, method, dry_run)
        if name is None:
            if method == "GET" and params.get("watch") in ("true", "1"):
                return self._watch(rtype, namespace, params)
            if method == "GET":
                with lock:
                    if TABLE in self.headers.get("Accept", ""):
                        objs = api.objects(rtype, namespace, params)
                        return self._json(200, api.table(rtype, objs, params.get("includeObject", "Metadata")))
                    return self._json(200, api.list(rtype, namespace, params))
            if method == "POST":
                raw = self._body()
                body = _decode(raw, self.headers.get("Content-Type"))
                with lock:
                    api.begin(params, _duplicates(raw, self.headers.get("Content-Type")))
                    created = api.create(rtype, namespace, body, dry_run)
                    self.served.after_write()
                    # like an admission warning: kubectl prints "Warning: ..." for an image the model runs as another version
                    notices = [] if dry_run else api.cluster.image_notices_for(created)
                    api.warnings += notices
                    return self._json(201, created, api.warning_header())
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow {method} on a collection here")
        if method == "GET" or method == "HEAD":
            with lock:
                obj = api.get(rtype, namespace, name)
                if TABLE in self.headers.get("Accept", ""):
                    return self._json(200, api.table(rtype, [obj], params.get("includeObject", "Metadata")))
            return self._json(200, obj)
        if method == "PUT":
            raw = self._body()
            body = _decode(raw, self.headers.get("Content-Type"))
            with lock:
                api.begin(params, _duplicates(raw, self.headers.get("Content-Type")))
                replaced = api.replace(rtype, namespace, name, body, dry_run, sub)
                return self._json(200, replaced, api.warning_header())
        if method == "PATCH":
            raw = self._body()
            with lock:
                ctype = self.headers.get("Content-Type", "")
                api.begin(params, _duplicates(raw, ctype) if "json-patch" not in ctype else ())
                patched = api.patch(rtype, namespace, name, raw, ctype, dry_run, sub)
                return self._json(200, patched, api.warning_header())
        if method == "DELETE":
            self._body()
            with lock:
                return self._json(200, api.delete(rtype, namespace, name, dry_run))
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow {method} here")

    def _scale(self, rtype, namespace, name: str, method: str, dry_run: bool) -> None:
        """The ``scale`` subresource: reads and writes an ``autoscaling/v1`` Scale (spec.replicas only)."""
        api, lock = self.served.api, self.served.lock
        if method in ("GET", "HEAD"):
            with lock:
                return self._json(200, api.scale(rtype, namespace, name))
        if method not in ("PUT", "PATCH"):
            raise ApiError(405, "MethodNotAllowed", f"the scale subresource does not allow {method}")
        raw, ctype = self._body(), self.headers.get("Content-Type", "")
        body = _decode(raw, ctype) if method == "PUT" else None
        with lock:
            api.begin({})
            return self._json(200, api.update_scale(rtype, namespace, name, method, raw, ctype, body, dry_run))

    def _access_review(self, plural: str) -> None:
        """``kubectl auth can-i``: whoever holds the served kubeconfig's token is the cluster's admin."""
        if self.command != "POST":
            raise ApiError(405, "MethodNotAllowed", f"{plural} are created (POST), never read")
        body = _object(_decode(self._body(), self.headers.get("Content-Type")) or {}, plural)
        kind = {"selfsubjectaccessreviews": "SelfSubjectAccessReview",
                "selfsubjectrulesreviews": "SelfSubjectRulesReview"}[plural]
        out = {"kind": kind, "apiVersion": "authorization.k8s.io/v1", "metadata": {},
               "spec": body.get("spec") or {}}
        if kind == "SelfSubjectAccessReview":
            out["status"] = {"allowed": True, "reason": "the served kubeconfig's token is the embedded mesh's "
                                                        "cluster-admin"}
        else:
            out["status"] = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                             "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}
        return self._json(201, out)

    # -- logs, watch --------------------------------------------------------------------------------------
    def _logs(self, rtype, namespace: str, name: str, params: dict) -> None:
        _int_param(params, "tailLines", minimum=0)  # a bad value is the client's error, answered before any work
        with self.served.lock:
            _require_container(self.served.api.get(rtype, namespace, name), params.get("container"))
            try:
                text = self.served.mesh.logs(f"pod/{name}", namespace=namespace, container=params.get("container"),
                                             tail=_int_param(params, "tailLines", minimum=0))
            except Exception as exc:  # noqa: BLE001
                raise error_from(exc, None, name) from None
        self._send(200, text.encode("utf-8"), "text/plain")

    def _watch(self, rtype, namespace, params) -> None:
        """A watch: the current objects as ADDED (unless a resourceVersion says the client has them), then
        every change the API server makes, in order. Events (which the embedded recorder keeps outside the
        object store) are diffed every 0.1 s instead."""
        served, api = self.served, self.served.api
        timeout = _int_param(params, "timeoutSeconds", minimum=0)
        timeout = 1800 if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with served.lock:
            current = api.snapshot(rtype, namespace, params)
            rv = params.get("resourceVersion")
            before = {k: v for k, v in current.items() if _rv(v[0]) <= _rv(rv)} if rv and rv != "0" else {}
            initial = api.watch_events(rtype, before, current)
            cursor = served.change_seq
        self._start_chunked("application/json")
        try:
            for event in initial:
                self._chunk(json.dumps(event).encode("utf-8") + b"\n")
            while not served.closed.is_set() and time.monotonic() < deadline:
                served.changed.wait(0.1)
                served.changed.clear()
                with served.lock:
                    if rtype.kind == "Event":
                        after = api.snapshot(rtype, namespace, params)
                        events = api.watch_events(rtype, current, after)
                        current = after
                    else:
                        changes = [c for c in list(served.changes) if c[0] > cursor]
                        cursor = served.change_seq
                        events = api.changes_to_events(rtype, namespace, params, changes)
                for event in events:
                    self._chunk(json.dumps(event).encode("utf-8") + b"\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            return
        self._end_chunked()

    # -- exec and port-forward over WebSocket ----------------------------------------------------------------
    def _stream(self, rtype, namespace: str, name: str, sub: str, params: dict, multi: dict) -> None:
        served = self.served
        if self.headers.get("Upgrade", "").lower() != "websocket":
            raise ApiError(400, "BadRequest", f"{sub} needs a WebSocket upgrade (Upgrade: websocket, "
                                              "Sec-WebSocket-Protocol: v4.channel.k8s.io); SPDY is not served")
        with served.lock:
            pod = served.api.get(rtype, namespace, name)
            if (pod.get("status") or {}).get("phase") != "Running":
                raise ApiError(400, "BadRequest", f"pod {name} is not running (phase "
                                                  f"{(pod.get('status') or {}).get('phase', 'Pending')})")
            spec = pod.get("spec") or {}
            containers = [c["name"] for c in spec.get("containers") or []] + \
                [c["name"] for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
            container = params.get("container")
            if sub == "exec":
                _require_container(pod, container)
            if sub == "exec" and container and container not in containers:
                raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        protocol = ws.handshake(self)
        sock = ws.WebSocket(self.rfile, self.wfile)
        self.close_connection = True
        self.connection.settimeout(None)  # a port-forward may sit idle for long; close() still ends it
        try:
            if sub == "portforward" and (protocol or "").startswith("SPDY/3.1+"):
                served.port_forward_spdy(sock, pod)  # kubectl's: SPDY streams inside the WebSocket
            elif sub == "portforward":
                ports = [int(p) for v in multi.get("ports", []) for p in v.split(",") if p.strip().isdigit()]
                served.port_forward(sock, pod, ports)
            else:
                served.exec(sock, namespace, name, container, multi.get("command", []))
        except ws.WebSocketClosed:
            pass
        except Exception as exc:  # noqa: BLE001 - a malformed stream ends the stream, not the server
            served.errors.append(f"{sub} stream: {type(exc).__name__}: {exc}")
        finally:
            sock.close()

    # -- labkit extensions --------------------------------------------------------------------------
    def _advance(self, seconds: float) -> None:
        """Run the virtual clock ``seconds`` forward, a slice at a time, stopping if the server closes."""
        served = self.served
        with served.lock:
            target = served.mesh.clock.t + seconds
        while True:
            with served.lock:
                left = target - served.mesh.clock.t
                if left <= 0:
                    break
                if served.closed.is_set():
                    raise ApiError(503, "ServiceUnavailable", "the served mesh was closed during the advance; "
                                                              f"the clock stopped at {served.mesh.clock.t}")
                served.mesh.wait(min(ADVANCE_SLICE, left))
                served.changed.set()
                served.changed.clear()

    def _labkit(self, path: str, params: dict) -> None:
        served = self.served
        if path == "/clock":
            if self.command == "POST":
                seconds = _advance_seconds(_object(_decode(self._body(), "application/json") or {}, "clock"))
                self._advance(seconds)
                with served.lock:
                    return self._json(200, served.clock_doc())
            with served.lock:
                return self._json(200, served.clock_doc())
        if path == "/linkerd" and self.command == "POST":
            body = _object(_decode(self._body(), "application/json") or {}, "linkerd")
            if not isinstance(body.get("argv") or [], list) or not isinstance(body.get("files") or {}, dict):
                raise ApiError(400, "BadRequest", 'the linkerd request is {"argv": [...], "stdin": "...", "files": {...}}')
            return served.run_linkerd(self, body.get("argv") or [], body.get("stdin"), body.get("files") or {})
        if path == "/flagger" and self.command == "GET":
            with served.lock:
                text = served.flagger_manifests(params.get("provider") or "linkerd", params.get("namespace") or None)
            return self._send(200, text.encode("utf-8"), "application/yaml")
        if path == "/gateway-api" and self.command == "GET":  # the release manifest, for a cluster with no internet
            from labkit.manifests import dump
            from labkit.sim.linkerd import install

            channel = params.get("channel") or "standard"
            if channel not in install.GATEWAY_API_CHANNELS:
                raise ApiError(400, "BadRequest", f"channel={channel!r}: 'standard' or 'experimental'")
            return self._send(200, dump(install.gateway_api_objects(channel)).encode("utf-8"), "application/yaml")
        if path == "/taps" and self.command == "GET":
            return self._json(200, served.taps_doc())
        m = re.fullmatch(r"/taps/(\d+)/stop", path)
        if m and self.command == "POST":
            self._body()
            served.stop_tap(int(m.group(1)))
            return self._json(200, served.taps_doc())
        raise ApiError(404, "NotFound", f"no labkit extension at {path}")


TABLE = "as=Table"


_JSON_TYPES = ("application/json", "*/*", "")
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
PROTOBUF = "application/vnd.kubernetes.protobuf"


def _decode(raw: bytes, ctype: str | None):
    """A request body as the API server decodes it: JSON, YAML, or Kubernetes protobuf (what kubectl create sends)."""
    if not raw:
        return None
    media = (ctype or "").split(";")[0].strip().lower()
    if media == PROTOBUF:
        from labkit.sim.serve import protobuf

        return protobuf.decode(raw)
    if media not in _JSON_TYPES + _YAML_TYPES:
        raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format ({media}) - "
                                                    f"accepted media types include: application/json, application/yaml, "
                                                    f"{PROTOBUF}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "BadRequest", f"the request body is not UTF-8 text (byte {exc.start}: "
                                          f"{raw[exc.start:exc.start + 1]!r}); send JSON or YAML") from None
    if media in _YAML_TYPES:
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ApiError(400, "BadRequest", f"the request body is not valid YAML: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"the request body is not JSON: {exc}") from None


def _duplicates(raw: bytes, ctype: str | None) -> list[str]:
    """The field paths a JSON or YAML body repeats (the decoder keeps the last; strict validation refuses them)."""
    media = (ctype or "").split(";")[0].strip().lower()
    if not raw or media == PROTOBUF:
        return []
    from labkit import manifests

    try:
        text = raw.decode("utf-8")
        if media in _YAML_TYPES:
            docs = manifests.parse(text, "<body>")
            return list(docs[0].duplicates) if docs else []
        return manifests.load_json(text)[1]
    except Exception:  # noqa: BLE001 - a body that does not parse was refused already
        return []


def _object(body, what: str) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", f"the {what} request body must be a JSON object, not {type(body).__name__}")
    return body


def _advance_seconds(body: dict) -> float:
    """``{"advance": seconds}``: a finite, non-negative number, at most :data:`MAX_ADVANCE`."""
    value = body.get("advance", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ApiError(400, "BadRequest", f"advance must be a finite number of seconds >= 0, e.g. {{\"advance\": 30}}; "
                                          f"got {value!r}")
    if value > MAX_ADVANCE:
        raise ApiError(400, "BadRequest", f"advance is at most {MAX_ADVANCE:.0f} virtual seconds per request (the "
                                          f"model is busy while it runs); got {value}: send several requests")
    return float(value)


def _int_param(params: dict, name: str, *, minimum: int | None = None) -> int | None:
    text = params.get(name)
    if text in (None, ""):
        return None
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "BadRequest", f"invalid value for {name}: {text!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ApiError(400, "BadRequest", f"invalid value for {name}: {value} (must be >= {minimum})")
    return value


def _first_byte(sock) -> bytes:
    try:
        return sock.recv(1, socket.MSG_PEEK)
    except (OSError, ValueError):
        return b""


def _long_running(method: str, path: str) -> bool:
    """Watches, streams and taps: not counted against :data:`MAX_IN_FLIGHT` (as the API server's long-running check)."""
    target = path.split("?", 1)
    query = target[1] if len(target) > 1 else ""
    return (("watch=true" in query or "watch=1" in query) or target[0].endswith(("/exec", "/attach", "/portforward"))
            or target[0].startswith("/labkit/v1/linkerd") or "follow=true" in query)


def _rv(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def serve_forever_in_thread(server: Server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name=f"labkit-serve:{server.server_address[1]}", daemon=True)
    thread.start()
    return thread


def _require_container(pod: dict, container: str | None) -> None:
    """The API server does not guess a container (kubectl does, client-side): with several, one must be named."""
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    if container or len(names) <= 1:
        return
    inits = [c["name"] for c in spec.get("initContainers") or []]
    message = f"a container name must be specified for pod {pod['metadata']['name']}, choose one of: [{' '.join(names)}]"
    if inits:
        message += f" or one of the init containers: [{' '.join(inits)}]"
    raise ApiError(400, "BadRequest", message)
