"""podinfo (stefanprodan/podinfo 1.x–6.x), the app Flagger's canary labs deploy.

The version it reports is the image tag (``quay.io/stefanprodan/podinfo:1.7.1``
→ ``"version": "1.7.1"``), which is how a learner sees a rollout progress.
Configuration as the binary reads it: pflag options on the command line
(``--port=9898 --port-metrics=9797 --grpc-port=9999 --random-error=false``…),
else the ``PODINFO_<FLAG>`` environment variables viper binds
(``PODINFO_UI_COLOR``, ``PODINFO_UI_MESSAGE``…), else the defaults.

Routes (``pkg/api/server.go``): ``GET /`` and ``/api/info`` (info JSON),
``/version``, ``/healthz``, ``/readyz`` (+ ``/readyz/enable|disable``),
``/status/{code}`` (answers that code), ``/delay/{seconds}`` (sleeps that
long), ``/chunked/{seconds}`` (sends the headers at once, the body after that
long: a streamed response an idle timeout can cut), ``POST /token`` (a JWT valid one minute), ``/token/validate``,
``/env``, ``/headers``, ``POST /echo``, ``/metrics``; a known path with the
wrong method is 405, anything else 404.  ``--random-error`` fails one request
in three with 500/400/409 and ``--random-delay`` sleeps ``random-delay-min``
to ``-max`` (seconds by default) before each request, as the middlewares do.
Service time otherwise ≈ 1–3 ms.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from .base import BASE_TOOLS, App, Dist, Spec
from .model import Response, header, request_body

FLAGS = {  # flag → (kind, default)
    "port": ("value", "9898"), "port-metrics": ("value", "0"), "grpc-port": ("value", "0"),
    "grpc-service-name": ("value", "podinfo"), "level": ("value", "info"),
    "random-delay": ("bool", "false"), "random-delay-min": ("value", "0"),
    "random-delay-max": ("value", "5"), "random-delay-unit": ("value", "s"),
    "random-error": ("bool", "false"), "unhealthy": ("bool", "false"), "unready": ("bool", "false"),
    "ui-color": ("value", ""), "ui-message": ("value", ""), "ui-logo": ("value", ""),
    "ui-path": ("value", "./ui"), "data-path": ("value", "/data"), "config-path": ("value", ""),
    "cert-path": ("value", "/data/cert"), "secure-port": ("value", "0"), "host": ("value", ""),
    "hostname": ("value", ""), "h2c": ("bool", "false"), "jwt-secret": ("value", "changeme"),
    "cache-server": ("value", ""), "backend-url": ("value", ""), "config": ("value", "config.yaml"),
    "http-client-timeout": ("value", "2m"), "http-server-timeout": ("value", "30s"),
    "http-server-shutdown-timeout": ("value", "5s"), "stress-cpu": ("value", "0"),
    "stress-memory": ("value", "0"), "otel-service-name": ("value", ""),
}
ALIASES = {"p": "port"}

RUNTIME = {1: "go1.11.2", 2: "go1.12.6", 3: "go1.13.4", 4: "go1.14.2", 5: "go1.15.6", 6: "go1.16.5"}
LOGO = "https://raw.githubusercontent.com/stefanprodan/podinfo/gh-pages/cuddle_clap.gif"

_METHODS = {  # path → allowed methods (gorilla mux answers 405 for a known path, wrong method)
    "/": ("GET",), "/api/info": ("GET",), "/version": ("GET",), "/healthz": ("GET",),
    "/readyz": ("GET",), "/readyz/enable": ("POST",), "/readyz/disable": ("POST",),
    "/token": ("POST",), "/token/validate": ("GET",), "/env": ("GET", "POST"),
    "/headers": ("GET", "POST"), "/echo": ("POST",), "/api/echo": ("POST",), "/metrics": None,
    "/panic": ("GET",), "/configs": ("GET",), "/swagger.json": None, "/chunked": None,
}


def parse_flags(argv: list[str]) -> tuple[dict[str, str], str | None]:
    """pflag: ``--name=value``, ``--name value``, bare ``--bool``; returns (set flags, error)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-") or a == "-":
            i += 1
            continue
        name, eq, value = a.lstrip("-").partition("=")
        name = ALIASES.get(name, name)
        if name not in FLAGS:
            return out, f"Error: unknown flag: {a.split('=')[0]}"
        kind = FLAGS[name][0]
        if kind == "bool":
            out[name] = value if eq else "true"
        else:
            if not eq:
                i += 1
                if i >= len(argv):
                    return out, f"Error: flag needs an argument: --{name}"
                value = argv[i]
            out[name] = value
        i += 1
    return out, None


def _truthy(v: str) -> bool:
    return v.strip().lower() in ("1", "t", "true", "yes", "on")


def pretty(obj) -> str:
    """podinfo's JSON responses: indented two spaces, no trailing newline."""
    return json.dumps(obj, indent=2)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_hs256(claims: dict, secret: str) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


class Podinfo(App):
    READY_AFTER = 1.0
    tools = BASE_TOOLS | {"podcli"}
    SERVE = Dist(1.2, 2.8, 0.3)
    RANDOM_ERRORS = (500, 400, 409)

    def __init__(self, spec: Spec, version: str):
        super().__init__(spec)
        self.version = version
        self.name = f"podinfo:{version}"
        self.argv = spec.argv(["./podinfo"])
        flags, err = parse_flags(self.argv[1:])
        if err and self.failure is None:
            self.failure = err
        cfg = {}
        for name, (_, default) in FLAGS.items():
            env_name = "PODINFO_" + name.upper().replace("-", "_")
            cfg[name] = flags.get(name, self.env.get(env_name, default))
        self.cfg = cfg
        major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 6
        self.revision = hashlib.sha1(f"podinfo {version}".encode()).hexdigest()
        self.color = cfg["ui-color"] or ("blue" if major <= 2 else "#34577c")
        self.message = cfg["ui-message"] or f"greetings from podinfo v{version}"
        self.hostname = cfg["hostname"] or spec.hostname
        self.healthy = not _truthy(cfg["unhealthy"])
        self.ready = not _truthy(cfg["unready"])
        self.random_error = _truthy(cfg["random-error"])
        self.random_delay = _truthy(cfg["random-delay"])
        unit = 0.001 if cfg["random-delay-unit"] == "ms" else 1.0
        try:
            self.delay_min_ms = float(cfg["random-delay-min"]) * unit * 1000
            self.delay_max_ms = float(cfg["random-delay-max"]) * unit * 1000
        except ValueError:
            self.delay_min_ms, self.delay_max_ms = 0.0, 5000.0
        self.listen(cfg["port"])
        self.listen(cfg["port-metrics"])
        self.listen(cfg["grpc-port"], "grpc")
        info = {"hostname": self.hostname, "version": version, "revision": self.revision,
                "color": self.color}
        if major >= 3:
            info["logo"] = cfg["ui-logo"] or LOGO
        info.update({"message": self.message, "goos": "linux", "goarch": "amd64",
                     "runtime": RUNTIME.get(major, "go1.16.5"), "num_goroutine": "8", "num_cpu": "2"})
        self.info_json = pretty(info)
        self.version_json = pretty({"commit": self.revision, "version": version})
        self.ok_json = pretty({"status": "OK"})
        self.metrics_text = (f'# HELP podinfo_info Podinfo version.\n# TYPE podinfo_info gauge\n'
                             f'podinfo_info{{version="{version}"}} 1\n')

    def handle(self, req, ctx):
        rng = ctx.rng
        extra = 0.0
        if self.random_delay:
            extra = self.delay_min_ms + rng.random() * (self.delay_max_ms - self.delay_min_ms)
        if self.random_error and rng.random() < 1 / 3:
            code = self.RANDOM_ERRORS[int(rng.random() * 3)]
            return Response(code, extra + self.SERVE.sample(rng), 0)
        path = req.path.split("?", 1)[0]
        ms = extra + self.SERVE.sample(rng)
        method = req.method
        if path.startswith("/status/"):
            code_text = path[8:]
            if code_text.isdigit() and method in ("GET", "POST", "PUT", "HEAD"):
                code = int(code_text)
                if not 100 <= code <= 999:
                    return Response(502, ms, error=f"connection reset: invalid WriteHeader code {code}")
                body = pretty({"status": code})
                return Response(code, ms, len(body), body=body)
        elif path.startswith("/chunked/"):
            # chunkedHandler: flush the headers (200, chunked), sleep, then write the JSON body
            wait = path[9:]
            if wait.isdigit():
                body = pretty({"delay": int(wait)})
                return Response(200, ms + int(wait) * 1000.0, len(body), body=body, headers_ms=ms)
        elif path.startswith("/delay/"):
            wait = path[7:]
            if wait.isdigit() and method in ("GET", "HEAD"):
                body = pretty({"delay": int(wait)})
                return Response(200, ms + int(wait) * 1000.0, len(body), body=body)
        allowed = _METHODS.get(path, ())
        if allowed == ():
            return Response(404, ms, 19, body="404 page not found\n")
        if allowed is not None and method not in allowed and not (method == "HEAD" and "GET" in allowed):
            return Response(405, ms, 0)
        return self._route(path, req, ctx, ms)

    def _route(self, path, req, ctx, ms) -> Response:
        if path in ("/", "/api/info"):
            ua = header(req.headers, "user-agent") or ""
            if path == "/" and ua.startswith("Mozilla"):
                html = f"<!DOCTYPE html><html><head><title>{self.hostname}</title></head><body>podinfo</body></html>"
                return Response(200, ms, len(html), body=html)
            return Response(200, ms, len(self.info_json), body=self.info_json)
        if path == "/version":
            return Response(200, ms, len(self.version_json), body=self.version_json)
        if path == "/healthz":
            return Response(200, ms, len(self.ok_json), body=self.ok_json) if self.healthy else Response(503, ms, 0)
        if path == "/readyz":
            return Response(200, ms, len(self.ok_json), body=self.ok_json) if self.ready else Response(503, ms, 0)
        if path in ("/readyz/enable", "/readyz/disable"):
            self.ready = path.endswith("enable")
            return Response(202, ms, 0)
        if path == "/token":
            return self._token(req, ctx, ms)
        if path == "/token/validate":
            return self._validate(req, ctx, ms)
        if path == "/env":
            body = pretty([f"{k}={v}" for k, v in sorted(self.env.items())])
            return Response(200, ms, len(body), body=body)
        if path == "/headers":
            body = pretty({k.title(): [str(v)] for k, v in (req.headers or {}).items()
                           if not k.startswith("x-labkit")})
            return Response(200, ms, len(body), body=body)
        if path in ("/echo", "/api/echo"):
            body = request_body(req)
            text = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
            return Response(202, ms, len(text), body=text)
        if path == "/metrics":
            return Response(200, ms, len(self.metrics_text), body=self.metrics_text)
        if path == "/panic":
            return Response(502, ms, error="connection reset by peer (podinfo exited: panic)")
        body = pretty({})
        return Response(200, ms, len(body), body=body)

    def _token(self, req, ctx, ms) -> Response:
        """POST /token: a JWT for the posted user name ("anonymous" without a body)."""
        body = request_body(req)
        user = body if isinstance(body, str) and body else (
            body.decode() if isinstance(body, bytes) and body else "anonymous")
        exp = int(ctx.now) + 60
        token = jwt_hs256({"name": user, "exp": exp, "iss": "podinfo"}, self.cfg["jwt-secret"])
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        text = pretty({"token": token, "expires_at": expires})
        return Response(200, ms, len(text), body=text)

    def _validate(self, req, ctx, ms) -> Response:
        auth = header(req.headers, "authorization") or ""
        parts = auth.split(" ")
        if len(parts) != 2 or parts[0].lower() != "bearer":
            text = pretty({"code": 401, "message": "authorization bearer header required"})
            return Response(401, ms, len(text), body=text)
        try:
            head, claims_b64, sig = parts[1].split(".")
            expect = jwt_hs256(json.loads(base64.urlsafe_b64decode(claims_b64 + "==")), self.cfg["jwt-secret"])
            claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=="))
        except (ValueError, TypeError):
            expect, claims = "", {}
        if expect != parts[1] or claims.get("exp", 0) < ctx.now:
            text = pretty({"code": 401, "message": "Invalid authorization token"})
            return Response(401, ms, len(text), body=text)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
        text = pretty({"token_name": claims.get("name", ""), "expires_at": expires})
        return Response(200, ms, len(text), body=text)


def build(spec: Spec, tag: str) -> App:
    return Podinfo(spec, tag.lstrip("v"))

