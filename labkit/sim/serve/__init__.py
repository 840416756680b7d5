"""``mesh.serve()``: the embedded mesh as a Kubernetes API server (and linkerd-viz Prometheus) on loopback.

``serve(mesh, port=0)`` starts an HTTP server on 127.0.0.1 in a background
thread and returns a :class:`Served` with ``.url``, ``.kubeconfig`` (a file
path), ``.context`` and ``.close()``. Point ``kubectl`` or the kube backend
at it::

    served = mesh.serve()
    kube = labkit.connect("kube", context=served.context, kubeconfig=served.kubeconfig)
    # or, in a terminal:  KUBECONFIG=<served.kubeconfig> kubectl get pods -A

What is served (see ``http.py`` and ``kubeapi.py`` for the paths):

* the Kubernetes REST API for the labs' kinds: discovery, get/list/watch,
  create/replace/patch/delete (``dryRun`` too), server-side tables (what
  ``kubectl get`` prints), ``pods/log``, ``pods/exec`` and
  ``pods/portforward`` over WebSocket (``v4.channel.k8s.io``);
* linkerd-viz's Prometheus, reached the way the kube backend reaches a real
  one: a port-forward to the ``prometheus`` pod's port 9090 (the API
  server's service proxy is refused by viz's authorization policy on Linkerd
  ≥ 2.13), then Prometheus's HTTP API over that stream, answered by the
  embedded PromQL evaluator in Prometheus' JSON (``prometheus_api.py``);
  ``served.prometheus_url`` serves the same API on a loopback port;
* proxy metrics: a port-forward to any meshed pod's 4191 (``/metrics``), and
  ``linkerd diagnostics proxy-metrics`` through the CLI stand-in;
* a ``linkerd`` executable (``served.linkerd``): a stand-in for the real CLI
  that answers, in the real CLI's formats, from the embedded mesh (see
  ``cli.py``); the kube backend finds it through the kubeconfig (or
  ``LABKIT_LINKERD``) and runs it as it runs the real one;
* the virtual clock: it keeps running while served, at ``pace`` virtual
  seconds per real second (1.0, real time, by default; ``pace=0`` stops it
  so only clients move it). Clients that know the labkit extension
  (``/labkit/v1/clock``, named in the kubeconfig) fast-forward it instead of
  sleeping: the kube backend's ``wait`` does, so a lab runs in seconds.

The model is single-threaded: every request holds ``served.lock`` while it
touches the mesh, and the pacing thread takes the same lock.

Locked and bounded (``auth.py``, ``tls.py``, ``http.py``): a random bearer
token and a self-signed certificate per serve, written only into the
kubeconfig (0600); kubectl speaks HTTPS (it sends tokens only over TLS) and
the same port answers plain HTTP for clients given the token otherwise
(``served.url``; ``served.https_url`` is the kubeconfig's). Every request gets
a Kubernetes ``Status`` when it fails (bodies above 3 MiB: 413; too many in
flight: 429; unknown methods: 405; undecodable bodies: 400/415; wrong shapes:
422); idle or stalled connections close after ``idle_timeout``; a clock
advance is at most ``MAX_ADVANCE`` seconds and runs in slices; ``close()``
ends every connection and in-flight request before it returns.
"""
from __future__ import annotations

import base64
import collections
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from labkit.sim.serve import websocket as ws
from labkit.sim.serve.http import MAX_ADVANCE

CONTEXT = "labkit-embedded"
EXTENSION = "labkit.dev/embedded-mesh"
PACE_TICK = 0.2
#: Wall seconds an idle keep-alive connection, or a client stalled in the middle of a request, is kept.
IDLE_TIMEOUT = 60.0
FLAGGER_IMAGE = "ghcr.io/fluxcd/flagger:"  # seconds of real time between two steps of the paced clock


class Served:
    """A running served mesh. Use it as a context manager, or call :meth:`close`."""

    def __init__(self, mesh, port: int = 0, *, pace: float = 1.0, host: str = "127.0.0.1",
                 token: str | None = "", workdir: str | os.PathLike | None = None, context: str = CONTEXT,
                 idle_timeout: float = IDLE_TIMEOUT):
        from labkit.sim.serve import auth
        from labkit.sim.serve.http import Server, serve_forever_in_thread
        from labkit.sim.serve.kubeapi import KubeAPI

        if pace < 0:
            raise ValueError("pace must be >= 0 (virtual seconds per real second; 0 stops the clock)")
        if not idle_timeout > 0:
            raise ValueError("idle_timeout must be > 0 wall seconds (how long an idle or stalled connection is kept)")
        self.mesh = mesh
        self.lock = threading.RLock()
        self.changed = threading.Event()
        self.closed = threading.Event()
        self.api = KubeAPI(mesh)
        # Locked by default (auth.py): a fresh random token unless one is given; token=None serves unlocked.
        self.token = auth.new_token() if token == "" else token
        self.idle_timeout = float(idle_timeout)
        self.errors: list[str] = []  # requests that hit a bug (answered 500): for tests and bug reports
        self.pace = float(pace)
        self.context = context
        self.requests = 0
        self.faults: list[tuple[str, str, int]] = []  # (method, path regex, status): for tests only
        self._taps: dict[int, dict] = {}
        self._tap_ids = 0
        # Every change the embedded API server makes, for watches (objects are copy-on-write: safe to keep).
        self.changes: collections.deque = collections.deque(maxlen=100_000)
        self.change_seq = 0
        self._flagger_pending: list[dict] = []
        self._prometheus = None  # the loopback Prometheus API, started by .prometheus_url
        mesh.cluster.api.watch(None, self._record_change)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="labkit-serve-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        from labkit.sim.serve import tls

        # kubectl sends the token only over TLS: the kubeconfig names https://, with this serve's own certificate.
        self.tls, self.certificate = tls.self_signed(self.workdir, host) if self.token else (None, b"")
        self._server = Server((host, port), self)
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"  # the same port answers plain HTTP (token required too)
        self.https_url = f"https://{self.host}:{self.port}" if self.tls else self.url
        self.linkerd = str(self._write_shim())
        self.kubeconfig = str(self._write_kubeconfig())
        self._guarded = _guard(mesh, self.lock)
        self._thread = serve_forever_in_thread(self._server)
        self._pacer = threading.Thread(target=self._pace_loop, name="labkit-serve-pacer", daemon=True)
        self._pacer.start()

    def __repr__(self) -> str:
        return f"<Served {self.url} context={self.context} kubeconfig={self.kubeconfig}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- files ---------------------------------------------------------------------------------------
    def _write_shim(self) -> Path:
        bin_dir = self.workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        shim = bin_dir / "linkerd"
        root = Path(__file__).resolve().parents[3]
        shim.write_text(
            "#!/bin/sh\n"
            "# The labkit embedded mesh's stand-in for the linkerd CLI (see labkit/sim/serve/cli.py).\n"
            f"PYTHONPATH={_sh(str(root))}${{PYTHONPATH:+:$PYTHONPATH}} exec {_sh(sys.executable)} "
            "-m labkit.sim.serve.shim \"$@\"\n")
        shim.chmod(0o755)
        return shim

    def _write_kubeconfig(self) -> Path:
        import yaml

        doc = {
            "apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": self.context,
            "clusters": [{"name": self.context, "cluster": {
                "server": self.https_url,
                **({"certificate-authority-data": base64.b64encode(self.certificate).decode("ascii")}
                   if self.certificate else {}),
                "extensions": [{"name": EXTENSION, "extension": {
                    "clock": "/labkit/v1/clock", "max_advance": MAX_ADVANCE, "linkerd": self.linkerd,
                    "seed": getattr(self.mesh, "seed", 0)}}]}}],
            "users": [{"name": f"{self.context}-user", "user": {"token": self.token} if self.token else {}}],
            "contexts": [{"name": self.context, "context": {"cluster": self.context, "user": f"{self.context}-user",
                                                            "namespace": "default"}}],
        }
        path = self.workdir / "kubeconfig"
        # Created 0600 (never readable by others, not even for a moment): it holds the bearer token.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(yaml.safe_dump(doc, sort_keys=False))
        path.chmod(0o600)
        return path

    # -- lifecycle ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop serving: no new connection, every open one (keep-alive, watch, stream, in-flight request)
        ended, the paced clock stopped; when this returns, the mesh is the notebook's alone again."""
        if self.closed.is_set():
            return
        self.closed.set()
        for tap in list(self._taps.values()):
            tap["stop"].set()
        if self._prometheus is not None:
            self._prometheus.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._pacer.join(timeout=5)
        self._server.end_connections(timeout=10)
        for name in self._guarded:
            self.mesh.__dict__.pop(name, None)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _pace_loop(self) -> None:
        last = time.monotonic()
        while not self.closed.wait(PACE_TICK):
            now = time.monotonic()
            elapsed, last = now - last, now
            if self.pace > 0:
                with self.lock:
                    self.mesh.wait(elapsed * self.pace)
                self.changed.set()
                self.changed.clear()

    def _record_change(self, event: str, old, new) -> None:
        if event == "DELETED" and old is not None:
            # A DELETED watch event carries the deletion's resourceVersion, as the API server's does (the object
            # as it was, stamped with the revision of the delete), so events stay in resourceVersion order.
            rv = str(self.mesh.cluster.api.revision)
            old = {**old, "metadata": {**(old.get("metadata") or {}), "resourceVersion": rv}}
        self.change_seq += 1
        self.changes.append((self.change_seq, event, old, new))
        self.changed.set()
        if event in ("ADDED", "MODIFIED") and new is not None and new.get("kind") == "Deployment":
            def containers(obj):
                return (((obj or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []

            flags = [(c.get("command"), c.get("args")) for c in containers(new)]
            # Flagger's Deployment created, or its flags changed (another -mesh-provider): (re)configure its controller
            if any(str(c.get("image", "")).startswith(FLAGGER_IMAGE) for c in containers(new)) and (
                    event == "ADDED" or flags != [(c.get("command"), c.get("args")) for c in containers(old)]):
                self._flagger_pending.append(new)

    def after_write(self) -> None:
        """Work a write request leaves for the model once it is stored (called with the lock held).

        Flagger's controller: the embedded mesh runs Flagger's behaviour in-process; it starts when
        Flagger's Deployment is created, as the embedded ``install_flagger`` starts it right after
        applying the same manifests.
        """
        while self._flagger_pending:
            deploy = self._flagger_pending.pop(0)
            from labkit.sim import flagger

            args = {}
            for c in deploy["spec"]["template"]["spec"].get("containers") or []:
                for arg in (c.get("command") or []) + (c.get("args") or []):
                    key, _, value = str(arg).lstrip("-").partition("=")
                    args[key] = value
            ns = deploy["metadata"].get("namespace", "default")
            provider = args.get("mesh-provider", "linkerd")
            metrics = args.get("metrics-server", flagger.DEFAULT_METRICS_SERVER)
            flagger.ensure_controller(self.mesh, provider=provider, namespace=ns, metrics_server=metrics)

    def flagger_manifests(self, provider: str = "linkerd", namespace: str | None = None) -> str:
        """Flagger's kustomization, rendered (what ``kubectl kustomize .../kustomize/linkerd`` prints)."""
        from labkit.manifests import dump
        from labkit.sim import flagger

        ns = namespace or flagger.default_namespace(provider)
        return dump(flagger.crd_objects() + flagger.objects(provider, ns, flagger.DEFAULT_METRICS_SERVER))

    def clock_doc(self) -> dict:
        return {"now": self.mesh.clock.t, "pace": self.pace}

    def fault_for(self, method: str, path: str) -> int | None:
        for i, (m, pattern, status) in enumerate(self.faults):
            if m in (method, "*") and re.search(pattern, path):
                return status
        return None

    # -- exec ---------------------------------------------------------------------------------------------
    def exec(self, sock: ws.WebSocket, namespace: str, pod: str, container: str | None, command: list[str]) -> None:
        """Run ``command`` in the pod's container model; stdout on channel 1, the exit status on 3."""
        from labkit.errors import LabkitError

        if not command:
            sock.send_channel(3, json.dumps(_status_failure("you must specify at least one command for the container",
                                                           "BadRequest")).encode())
            return
        with self.lock:
            try:
                out = self.mesh.exec(f"pod/{pod}", list(command), namespace=namespace, container=container)
                code = 0
            except LabkitError as exc:
                out, code = f"{exc}\n", 126
        match = re.search(r"(?:^|\n)command terminated with exit code (\d+)\n$", out)
        if match:
            code = int(match.group(1))
            out = out[:match.start() + (1 if out[match.start()] == "\n" else 0)]
        if out:
            data = out.encode("utf-8")
            for i in range(0, len(data), 32768):
                sock.send_channel(1, data[i:i + 32768])
        status = {"metadata": {}, "status": "Success"} if code == 0 else {
            "metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command {command}, exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        sock.send_channel(3, json.dumps(status).encode("utf-8"))

    # -- port-forward ----------------------------------------------------------------------------------
    def port_forward(self, sock: ws.WebSocket, pod: dict, ports: list[int]) -> None:
        """Each port gets channels 2i (data) and 2i+1 (errors); HTTP requests on a data channel are answered."""
        if not ports:
            return
        for i, port in enumerate(ports):
            head = bytes([port & 0xFF, port >> 8])
            sock.send_channel(2 * i, head)
            sock.send_channel(2 * i + 1, head)
        buffers = {i: b"" for i in range(len(ports))}
        handlers = {i: self._port_handler(pod, port) for i, port in enumerate(ports)}
        for i, handler in handlers.items():
            if handler is None:
                name = pod["metadata"]["name"]
                sock.send_channel(2 * i + 1, f"error forwarding port {ports[i]} to pod {name}: connection refused "
                                             f"(the embedded mesh forwards to the prometheus pod's 9090 and meshed "
                                             f"pods' 4191)".encode())
        while True:
            opcode, data = sock.recv()
            if opcode == ws.OP_CLOSE:
                return
            if not data:
                continue
            channel, payload = data[0], data[1:]
            index = channel // 2
            if channel % 2 or index not in buffers or handlers.get(index) is None:
                continue
            buffers[index] += payload
            while True:
                request, rest = _split_http(buffers[index])
                if request is None:
                    break
                buffers[index] = rest
                response = handlers[index](*request)
                for k in range(0, len(response), 32768):
                    sock.send_channel(2 * index, response[k:k + 32768])

    def port_forward_spdy(self, sock: ws.WebSocket, pod: dict) -> None:
        """``kubectl port-forward``: SPDY/3.1 inside the WebSocket (see ``spdy.py``)."""
        from labkit.sim.serve import spdy

        stream = spdy.ByteStream(sock)
        session = spdy.Session(stream.read, lambda data: sock.send(data))
        spdy.serve_port_forward(session, lambda port: self._port_handler(pod, port))

    def _port_handler(self, pod: dict, port: int):
        labels = (pod.get("metadata") or {}).get("labels") or {}
        ns = pod["metadata"].get("namespace")
        name = pod["metadata"]["name"]
        if port == 9090 and labels.get("component") == "prometheus" and ns == "linkerd-viz":
            return self._prometheus_http
        if port == 4191 and "linkerd.io/control-plane-ns" in labels:
            return lambda method, target, headers, body: self._admin_http(ns, name, method, target)
        with self.lock:
            runtime = next((r for r in self.mesh.dataplane.pods.values()
                            if r.name == name and r.namespace == ns), None)
            model = runtime.by_port.get(port) if runtime is not None else None
        if model is None:
            return None
        return lambda method, target, headers, body: self._app_http(runtime, model, port, method, target, headers, body)

    def _app_http(self, runtime, model, port: int, method: str, target: str, headers: dict, body: bytes) -> bytes:
        """A forwarded HTTP request answered by the pod's modelled app, as the container would on localhost
        (past the proxy's inbound side; the app's own calls go out through its proxy as usual)."""
        from labkit.sim.apps.model import Request

        with self.lock:
            request = Request(method or "GET", target or "/", f"localhost:{port}", False, headers, len(body),
                              body.decode("utf-8", "replace") if body else None)
            response = model.handle(request, runtime.ctx)
        payload = response.body
        if payload is None:
            data, ctype = b"", "text/plain"
        elif isinstance(payload, (bytes, bytearray)):
            data, ctype = bytes(payload), "application/octet-stream"
        elif isinstance(payload, str):
            data = payload.encode("utf-8")
            ctype = "text/html; charset=utf-8" if payload.lstrip().startswith("<") else "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(payload).encode("utf-8"), "application/json"
        for key, value in (response.headers or {}).items():
            if key.lower() == "content-type":
                ctype = value
        return _http_response(response.status or 502, data, ctype)

    def _admin_http(self, namespace: str, pod: str, method: str, target: str) -> bytes:
        path = urllib.parse.urlsplit(target).path
        if path == "/metrics":
            from labkit.sim.linkerd import proxy as lp

            with self.lock:
                runtime = self.mesh.dataplane.find_pods(f"pod/{pod}", namespace)[0]
                body = lp.exposition(runtime.proxy) if runtime.proxy is not None else ""
            return _http_response(200, body.encode("utf-8"), "text/plain")
        if path in ("/ready", "/live"):
            return _http_response(200, b"ready\n" if path == "/ready" else b"live\n", "text/plain")
        return _http_response(404, b"not found\n", "text/plain")

    def _prometheus_http(self, method: str, target: str, headers: dict, body: bytes) -> bytes:
        """linkerd-viz's Prometheus HTTP API over a port-forward (see prometheus_api.py)."""
        from labkit.sim.serve.prometheus_api import PrometheusAPI

        status, ctype, payload = PrometheusAPI(self).respond(method, target, headers, body)
        return _http_response(status, payload, ctype)

    @property
    def prometheus_url(self) -> str:
        """A loopback URL answering as linkerd-viz's Prometheus does after a port-forward (started on first use)."""
        from labkit.sim.serve.prometheus_api import LoopbackPrometheus

        with self.lock:
            if self.closed.is_set():
                raise RuntimeError("this served mesh is closed; serve it again for a Prometheus URL")
            if self._prometheus is None:
                self._prometheus = LoopbackPrometheus(self, host=self.host)
            return self._prometheus.url

    # -- the linkerd CLI stand-in -------------------------------------------------------------------------
    def run_linkerd(self, handler, argv: list[str], stdin: str | None, files: dict) -> None:
        from labkit.sim.serve import cli

        with self.lock:
            result = cli.run(self.mesh, argv, stdin, files)
        handler._start_chunked("application/x-ndjson")
        try:
            if result.tap is not None:
                self._stream_tap(handler, argv, result.tap)
                return
            if result.stdout:
                handler._chunk(json.dumps({"stdout": result.stdout}).encode() + b"\n")
            if result.stderr:
                handler._chunk(json.dumps({"stderr": result.stderr}).encode() + b"\n")
            handler._chunk(json.dumps({"exit": result.code}).encode() + b"\n")
            handler._end_chunked()
        except OSError:
            pass

    def _stream_tap(self, handler, argv: list[str], spec: dict) -> None:
        """``linkerd viz tap``: events as they happen on the virtual clock, until stopped (or the client leaves)."""
        from labkit.sim.linkerd import tap as sim_tap
        from labkit.sim.serve import cli

        with self.lock:
            try:
                plane = self.mesh.dataplane
                plane.sync()
                pods = sim_tap.target_pods(plane, spec["target"], spec["namespace"])
                session = sim_tap.TapSession(plane, {p.uid for p in pods}, namespace=spec["namespace"],
                                             wide=spec["output"] == "wide", **spec["options"])
                sim_tap._watch_all(plane, session)
            except Exception as exc:  # noqa: BLE001 - Linkerd's own message, as the CLI prints it
                handler._chunk(json.dumps({"stderr": f"Error: {exc}\n"}).encode() + b"\n")
                handler._chunk(json.dumps({"exit": 1}).encode() + b"\n")
                handler._end_chunked()
                return
            self._tap_ids += 1
            tap_id = self._tap_ids
            stop = threading.Event()
            self._taps[tap_id] = {"id": tap_id, "argv": argv, "stop": stop, "session": session, "sent": 0}
        grpc: set = set()
        pending: list = []
        seen = 0
        try:
            while True:
                stopping = stop.wait(0.05) or self.closed.is_set()
                with self.lock:
                    if stopping:
                        sim_tap._unwatch_all(plane, session)
                    new_rows = session.rows[seen:]
                    seen = len(session.rows)
                    now_us = self.mesh.clock.t * 1e6
                for row in new_rows:
                    if row.get("type") == "end" and row.get("grpc_status") is not None:
                        grpc.add(cli._stream(row))
                pending.extend(new_rows)
                pending.sort(key=lambda r: r["_at"])  # stable: ties keep the order the proxies saw them
                ready = pending if stopping else [r for r in pending if r["_at"][0] < now_us]
                pending = [] if stopping else pending[len(ready):]
                if ready:
                    rows = [{k: v for k, v in r.items() if k != "_at"} for r in ready]
                    handler._chunk(json.dumps({"stdout": cli.tap_text(rows, spec["output"], grpc)}).encode() + b"\n")
                    self._taps[tap_id]["sent"] += len(rows)
                if stopping:
                    break
            handler._chunk(json.dumps({"exit": 0}).encode() + b"\n")
            handler._end_chunked()
        except OSError:
            with self.lock:
                sim_tap._unwatch_all(plane, session)
        finally:
            self._taps.pop(tap_id, None)

    def taps_doc(self) -> dict:
        return {"taps": [{"id": t["id"], "argv": t["argv"], "sent": t["sent"]} for t in list(self._taps.values())],
                "started": self._tap_ids}

    def stop_tap(self, tap_id: int) -> None:
        tap = self._taps.get(tap_id)
        if tap is not None:
            tap["stop"].set()
            deadline = time.monotonic() + 10
            while tap_id in self._taps and time.monotonic() < deadline:
                time.sleep(0.01)


def _guard(mesh, lock) -> list[str]:
    """Make the mesh's own contract calls take the served lock while it is served.

    A notebook keeps using ``mesh`` while the server's threads (requests, the
    paced clock) use it too; the model is single-threaded, so each public
    method of this instance is wrapped to hold the same (re-entrant) lock.
    ``close()`` removes the wrappers.
    """
    import functools

    names = []
    for name in dir(type(mesh)):
        if name.startswith("_") or name == "serve" or isinstance(getattr(type(mesh), name, None), property):
            continue
        method = getattr(mesh, name, None)
        if not callable(method):
            continue

        def locked(*args, __method=method, **kwargs):
            with lock:
                return __method(*args, **kwargs)

        mesh.__dict__[name] = functools.wraps(method)(locked)
        names.append(name)
    return names


def serve(mesh, port: int = 0, *, pace: float = 1.0, **options) -> Served:
    """Serve ``mesh`` on 127.0.0.1:``port`` (0: any free port); see the module docstring.

    Locked by default: requests must carry the bearer token written into ``served.kubeconfig``
    (``served.token``); ``token=None`` serves without one, for a machine of your own.
    """
    return Served(mesh, port, pace=pace, **options)


# -- helpers --------------------------------------------------------------------------------------------

def _sh(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _status_failure(message: str, reason: str) -> dict:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason}


def _split_http(buf: bytes):
    """One complete HTTP/1.1 request from ``buf``: ((method, target, headers, body), rest) or (None, buf)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None, buf
    head = buf[:end].decode("latin-1").split("\r\n")
    method, target, _ = (head[0].split(" ", 2) + ["", ""])[:3]
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    if len(buf) < end + 4 + length:
        return None, buf
    body = buf[end + 4:end + 4 + length]
    return (method, target, headers, body), buf[end + 4 + length:]


def _http_response(code: int, body: bytes, ctype: str) -> bytes:
    reason = {200: "OK", 201: "Created", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
              405: "Method Not Allowed", 422: "Unprocessable Entity", 500: "Internal Server Error",
              502: "Bad Gateway", 503: "Service Unavailable"}
    head = (f"HTTP/1.1 {code} {reason.get(code, 'OK')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nDate: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}\r\n\r\n")
    return head.encode("latin-1") + body


def serve_main(port: int = 0, seed: int = 0, pace: float = 1.0) -> int:
    """``python -m labkit serve``: serve a fresh embedded mesh until interrupted; prints how to reach it."""
    import signal

    import labkit

    mesh = labkit.connect("sim", seed=seed)
    served = serve(mesh, port=port, pace=pace)
    bin_dir = os.path.dirname(served.linkerd)
    print(f"kubeconfig: {served.kubeconfig}")
    print(f"context: {served.context}")
    print(f"server: {served.url}")
    print(f"linkerd: {served.linkerd}")
    print(f"# in a terminal:  export KUBECONFIG={served.kubeconfig} PATH={bin_dir}:$PATH; kubectl get nodes")
    print(f"# in a notebook:  labkit.connect('kube', context='{served.context}', kubeconfig='{served.kubeconfig}')")
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        served.close()
    return 0
