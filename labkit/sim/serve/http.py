"""The served mesh's HTTP server: Kubernetes REST, streaming (exec, port-forward, watch), and labkit's extensions.

One ``ThreadingHTTPServer`` on 127.0.0.1. Every request that touches the mesh
takes the served mesh's lock, so the model (which is single-threaded) sees
one request at a time; streams (watches, port-forwards, taps) take it per
step and release it in between.

Paths:

* the Kubernetes API (``kubeapi.py``): discovery, CRUD, patches, tables, watches;
* ``/api/v1/namespaces/NS/pods/NAME/log``: ``kubectl logs``;
* ``/api/v1/namespaces/NS/pods/NAME/exec`` and ``.../portforward``: WebSocket
  upgrades in the ``v4.channel.k8s.io`` framing. Port-forwarding reaches the
  linkerd-viz Prometheus pod on 9090 (``/api/v1/query``, ``/api/v1/query_range``
  answered by the embedded evaluator, ``/-/ready``, ``/api/v1/status/buildinfo``)
  and any meshed pod's proxy admin port 4191 (``/metrics``, ``/ready``);
* labkit's extensions, which no real cluster has, under ``/labkit/v1/``:
  ``clock`` (GET: virtual now and pace; POST ``{"advance": seconds}``: run the
  virtual clock forward, what the kube backend's ``wait`` does here instead
  of sleeping), ``linkerd`` (POST ``{"argv", "stdin", "files"}``: the
  ``linkerd`` CLI stand-in, answered as NDJSON lines ``{"stdout"|"stderr"|"exit"}``),
  ``taps`` (GET: active tap streams; POST ``taps/ID/stop``: end one, as
  Ctrl-C ends a real ``linkerd viz tap``).
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from labkit.sim.serve import websocket as ws
from labkit.sim.serve.kubeapi import ApiError, error_from

_CORE = re.compile(r"^/api/v1(?:/(.*))?$")
_GROUP = re.compile(r"^/apis/([^/]+)/([^/]+)(?:/(.*))?$")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, served):
        self.served = served
        super().__init__(addr, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "labkit-embedded-mesh"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK cost 40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet; the served object keeps a request count instead
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

    def _authorized(self) -> bool:
        token = self.served.token
        if not token:
            return True
        if self.headers.get("Authorization", "") == f"Bearer {token}":
            return True
        self._json(401, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        return False

    def _dispatch(self) -> None:
        served = self.served
        served.requests += 1
        # Read the whole body first: an error answered before the handler reads it must not leave it in
        # the stream, where it would be parsed as the next request of this keep-alive connection.
        n = int(self.headers.get("Content-Length") or 0)
        self._raw = self.rfile.read(n) if n else b""
        fault = served.fault_for(self.command, self.path)
        if fault is not None:
            self._json(fault, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": f"injected fault {fault}", "reason": "InternalError", "code": fault})
            return
        if not self._authorized():
            return
        url = urllib.parse.urlsplit(self.path)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        multi = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            self._route(url.path.rstrip("/") or "/", params, multi)
        except ApiError as err:
            self._error(err)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = lambda self: self._dispatch()  # noqa: E731

    # -- routing ------------------------------------------------------------------------------------
    def _route(self, path: str, params: dict, multi: dict) -> None:
        api = self.served.api
        lock = self.served.lock
        if path.startswith("/labkit/v1"):
            return self._labkit(path[len("/labkit/v1"):], params)
        if self.command == "GET":
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
            if path == "/openapi/v3":
                return self._json(200, {"paths": {}})
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
        with lock:
            rtype = api.resolve(group, version, plural)
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
                body = _decode(self._body(), self.headers.get("Content-Type"))
                with lock:
                    created = api.create(rtype, namespace, body, dry_run)
                    self.served.after_write()
                    # like an admission warning: kubectl prints "Warning: ..." for an image the model runs as another version
                    notices = [] if dry_run else api.cluster.image_notices_for(created)
                    warning = ", ".join(f'299 - "{n}"' for n in notices)
                    return self._json(201, created, {"Warning": warning} if warning else None)
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow {method} on a collection here")
        if method == "GET" or method == "HEAD":
            with lock:
                obj = api.get(rtype, namespace, name)
                if TABLE in self.headers.get("Accept", ""):
                    return self._json(200, api.table(rtype, [obj], params.get("includeObject", "Metadata")))
            if sub == "scale":
                obj = _scale(obj)
            return self._json(200, obj)
        if method == "PUT":
            body = _decode(self._body(), self.headers.get("Content-Type"))
            with lock:
                return self._json(200, api.replace(rtype, namespace, name, body, dry_run, sub))
        if method == "PATCH":
            raw = self._body()
            with lock:
                return self._json(200, api.patch(rtype, namespace, name, raw, self.headers.get("Content-Type", ""),
                                                 dry_run, sub))
        if method == "DELETE":
            self._body()
            with lock:
                return self._json(200, api.delete(rtype, namespace, name, dry_run))
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow {method} here")

    # -- logs, watch --------------------------------------------------------------------------------------
    def _logs(self, rtype, namespace: str, name: str, params: dict) -> None:
        tail = params.get("tailLines")
        with self.served.lock:
            _require_container(self.served.api.get(rtype, namespace, name), params.get("container"))
            try:
                text = self.served.mesh.logs(f"pod/{name}", namespace=namespace, container=params.get("container"),
                                             tail=int(tail) if tail else None)
            except Exception as exc:  # noqa: BLE001
                raise error_from(exc, None, name) from None
        self._send(200, text.encode("utf-8"), "text/plain")

    def _watch(self, rtype, namespace, params) -> None:
        """A watch: the current objects as ADDED (unless a resourceVersion says the client has them), then
        every change the API server makes, in order. Events (which the embedded recorder keeps outside the
        object store) are diffed every 0.1 s instead."""
        served, api = self.served, self.served.api
        timeout = float(params.get("timeoutSeconds") or 1800)
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
        ws.handshake(self)
        sock = ws.WebSocket(self.rfile, self.wfile)
        self.close_connection = True
        try:
            if sub == "portforward":
                ports = [int(p) for v in multi.get("ports", []) for p in v.split(",") if p]
                served.port_forward(sock, pod, ports)
            else:
                served.exec(sock, namespace, name, container, multi.get("command", []))
        except ws.WebSocketClosed:
            pass
        finally:
            sock.close()

    # -- labkit extensions --------------------------------------------------------------------------
    def _labkit(self, path: str, params: dict) -> None:
        served = self.served
        if path == "/clock":
            if self.command == "POST":
                body = _decode(self._body(), "application/json") or {}
                seconds = float(body.get("advance", 0))
                if seconds < 0:
                    raise ApiError(400, "BadRequest", "advance must be >= 0 seconds")
                with served.lock:
                    served.mesh.wait(seconds)
                    served.changed.set()
                    served.changed.clear()
                    return self._json(200, served.clock_doc())
            with served.lock:
                return self._json(200, served.clock_doc())
        if path == "/linkerd" and self.command == "POST":
            body = _decode(self._body(), "application/json") or {}
            return served.run_linkerd(self, body.get("argv") or [], body.get("stdin"), body.get("files") or {})
        if path == "/flagger" and self.command == "GET":
            with served.lock:
                text = served.flagger_manifests(params.get("provider") or "linkerd", params.get("namespace") or None)
            return self._send(200, text.encode("utf-8"), "application/yaml")
        if path == "/gateway-api" and self.command == "GET":  # the release manifest, for a cluster with no internet
            from labkit.manifests import dump
            from labkit.sim.linkerd import install

            return self._send(200, dump(install.gateway_api_objects()).encode("utf-8"), "application/yaml")
        if path == "/taps" and self.command == "GET":
            return self._json(200, served.taps_doc())
        m = re.fullmatch(r"/taps/(\d+)/stop", path)
        if m and self.command == "POST":
            self._body()
            served.stop_tap(int(m.group(1)))
            return self._json(200, served.taps_doc())
        raise ApiError(404, "NotFound", f"no labkit extension at {path}")


TABLE = "as=Table"


def _decode(raw: bytes, ctype: str | None):
    if not raw:
        return None
    text = raw.decode("utf-8")
    if ctype and "yaml" in ctype:
        import yaml

        return yaml.safe_load(text)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"the request body is not JSON: {exc}") from None


def _rv(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def _scale(obj: dict) -> dict:
    md = obj["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)}}


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
