"""nginx (any tag): serves what its configuration says.

The configuration is read the way the container sees it: ``/etc/nginx/nginx.conf``
from a mounted ConfigMap (Lab 4's error injector mounts one with ``subPath``)
or the image's default, which includes ``/etc/nginx/conf.d/*.conf`` (mountable
too) and serves the welcome page on :80.  The subset of nginx modelled:

* ``server`` blocks with ``listen`` (default 80) and ``server_name``;
* ``location`` matching in nginx's order: ``=`` exact, then the longest
  prefix (``^~`` stops there), then regex locations (``~``, ``~*``) in order,
  else the longest prefix;
* ``return CODE [TEXT|URL]`` (bare 4xx/5xx codes get nginx's default error
  page), ``proxy_pass`` (a call through the mesh; 502 when the upstream cannot
  be reached), and static files (``/`` → the welcome page, else 404).

So the error injector's ``location / { return 500; }`` answers every request
500 in about a millisecond.  A configuration nginx would refuse (unbalanced
braces, no ``events`` section) leaves the container failing with nginx's
``[emerg]`` message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .base import App, Dist, Spec, SpecError, split_target
from .model import Response, call, header, request_body

CONF = "/etc/nginx/nginx.conf"
CONF_D = "/etc/nginx/conf.d"
DEFAULT_CONF = """user  nginx;
worker_processes  auto;
error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;
events {
    worker_connections  1024;
}
http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;
    sendfile        on;
    keepalive_timeout  65;
    include /etc/nginx/conf.d/*.conf;
}
"""
DEFAULT_SITE = """server {
    listen       80;
    listen  [::]:80;
    server_name  localhost;
    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }
    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
"""
WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
</body>
</html>
"""
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Not Allowed", 408: "Request Time-out", 429: "Too Many Requests",
           500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
           503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


class ConfError(ValueError):
    pass


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list["Directive"] | None
    line: int


def tokenize(text: str, fname: str) -> list[tuple[str, int]]:
    toks: list[tuple[str, int]] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            toks.append((c, line))
            i += 1
        elif c in "\"'":
            j = i + 1
            buf = []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                if text[j] == "\n":
                    line += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise ConfError(f"nginx: [emerg] unexpected end of file, expecting \";\" or \"}}\" in {fname}:{line}")
            toks.append(("\x00" + "".join(buf), line))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};#\"'":
                j += 1
            toks.append((text[i:j], line))
            i = j
    return toks


def parse(text: str, fname: str = CONF) -> list[Directive]:
    """nginx's configuration grammar: ``name args… ;`` or ``name args… { … }``."""
    toks = tokenize(text, fname)
    pos = 0

    def block(depth: int) -> list[Directive]:
        nonlocal pos
        out: list[Directive] = []
        words: list[str] = []
        start = 0
        while pos < len(toks):
            t, line = toks[pos]
            pos += 1
            if t == ";":
                if not words:
                    raise ConfError(f'nginx: [emerg] unexpected ";" in {fname}:{line}')
                out.append(Directive(words[0], words[1:], None, start))
                words = []
            elif t == "{":
                if not words:
                    raise ConfError(f'nginx: [emerg] unexpected "{{" in {fname}:{line}')
                out.append(Directive(words[0], words[1:], block(depth + 1), start))
                words = []
            elif t == "}":
                if depth == 0:
                    raise ConfError(f'nginx: [emerg] unexpected "}}" in {fname}:{line}')
                if words:
                    raise ConfError(f'nginx: [emerg] unexpected "}}" in {fname}:{line}')
                return out
            else:
                if not words:
                    start = line
                words.append(t.lstrip("\x00"))
        if depth:
            last = toks[-1][1] if toks else 1
            raise ConfError(f'nginx: [emerg] unexpected end of file, expecting "}}" in {fname}:{last}')
        if words:
            raise ConfError(f'nginx: [emerg] unexpected end of file, expecting ";" or "}}" in {fname}:{toks[-1][1]}')
        return out
    return block(0)


@dataclass
class Location:
    modifier: str          # "=", "^~", "~", "~*" or "" (prefix)
    pattern: str
    regex: re.Pattern | None
    action: tuple          # ("return", code, text) | ("proxy", url) | ("static",)


@dataclass
class Server:
    ports: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    exact: dict[str, Location] = field(default_factory=dict)
    prefixes: list[Location] = field(default_factory=list)     # longest first
    regexes: list[Location] = field(default_factory=list)
    server_return: tuple | None = None


def _action(directives: list[Directive]) -> tuple:
    for d in directives:
        if d.name == "return" and d.args:
            a0 = d.args[0]
            if a0.isdigit():
                return ("return", int(a0), d.args[1] if len(d.args) > 1 else None)
            return ("return", 302, a0)
        if d.name == "proxy_pass" and d.args:
            return ("proxy", d.args[0])
    return ("static",)


def build_server(d: Directive) -> Server:
    srv = Server()
    for x in d.block or []:
        if x.name == "listen" and x.args:
            m = re.search(r"(\d+)$", x.args[0].split("]")[-1])
            if m:
                port = int(m.group(1))
                if port not in srv.ports:
                    srv.ports.append(port)
        elif x.name == "server_name":
            srv.names.extend(x.args)
        elif x.name == "return":
            srv.server_return = _action([x])
        elif x.name == "location" and x.args:
            if len(x.args) >= 2 and x.args[0] in ("=", "^~", "~", "~*"):
                mod, pat = x.args[0], x.args[1]
            else:
                mod, pat = "", x.args[0]
            rx = None
            if mod in ("~", "~*"):
                try:
                    rx = re.compile(pat, re.I if mod == "~*" else 0)
                except re.error:
                    raise ConfError(f'nginx: [emerg] pcre2_compile() failed in "{pat}"')
            loc = Location(mod, pat, rx, _action(x.block or []))
            if mod == "=":
                srv.exact[pat] = loc
            elif rx is not None:
                srv.regexes.append(loc)
            else:
                srv.prefixes.append(loc)
    if not srv.ports:
        srv.ports.append(80)
    srv.prefixes.sort(key=lambda l: -len(l.pattern))
    return srv


def error_page(code: int, version: str) -> str:
    title = f"{code} {REASONS.get(code, '')}".strip()
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            f"<hr><center>nginx/{version}</center>\r\n</body>\r\n</html>\r\n")


class Nginx(App):
    READY_AFTER = 0.2
    SERVE = Dist(0.25, 0.8, 0.05)
    PROXY = Dist(0.2, 0.6, 0.05)

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec)
        self.name = f"nginx:{tag}"
        m = re.match(r"(\d+\.\d+(?:\.\d+)?)", tag or "")
        self.version = m.group(1) if m else "1.27.3"
        self.servers: list[Server] = []
        self._pages: dict[int, str] = {}
        try:
            self._load()
        except (ConfError, SpecError) as e:
            if self.failure is None:
                self.failure = str(e)
        for srv in self.servers:
            for p in srv.ports:
                self.listen(p)

    def _load(self) -> None:
        text = self.spec.mounted_file(CONF)
        main = parse(text if text is not None else DEFAULT_CONF, CONF)
        if not any(d.name == "events" for d in main):
            raise ConfError('nginx: [emerg] no "events" section in configuration')
        conf_d = self.spec.mounted_dir(CONF_D)
        if not conf_d and not any(m.get("mountPath", "").rstrip("/") == CONF_D
                                  for m in self.spec.container.get("volumeMounts") or []):
            conf_d = {"default.conf": DEFAULT_SITE}
        for d in main:
            if d.name != "http":
                continue
            for x in d.block or []:
                if x.name == "server":
                    self.servers.append(build_server(x))
                elif x.name == "include" and x.args and x.args[0].startswith(CONF_D + "/"):
                    pattern = x.args[0][len(CONF_D) + 1:]
                    rx = re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$")
                    for fname in sorted(conf_d):
                        if rx.match(fname):
                            for y in parse(conf_d[fname], f"{CONF_D}/{fname}"):
                                if y.name == "server":
                                    self.servers.append(build_server(y))

    def _server(self, req) -> Server | None:
        if len(self.servers) <= 1:
            return self.servers[0] if self.servers else None
        host = (header(req.headers, "host") or req.authority).split(":")[0]
        for srv in self.servers:
            if host in srv.names:
                return srv
        return self.servers[0]

    @staticmethod
    def match(srv: Server, path: str) -> Location | None:
        """nginx's location selection."""
        loc = srv.exact.get(path)
        if loc is not None:
            return loc
        best = None
        for p in srv.prefixes:
            if path.startswith(p.pattern):
                best = p
                break
        if best is not None and best.modifier == "^~":
            return best
        for r in srv.regexes:
            if r.regex.search(path):
                return r
        return best

    def page(self, code: int) -> str:
        text = self._pages.get(code)
        if text is None:
            text = self._pages[code] = error_page(code, self.version)
        return text

    def handle(self, req, ctx):
        srv = self._server(req)
        ms = self.SERVE.sample(ctx.rng)
        if srv is None:
            return Response(0, 0.1, error="connection refused")
        path = req.path.split("?", 1)[0]
        action = srv.server_return
        loc = None
        if action is None:
            loc = self.match(srv, path)
            action = loc.action if loc is not None else ("static",)
        kind = action[0]
        if kind == "return":
            code, text = action[1], action[2]
            if code in (301, 302, 303, 307, 308):
                page = self.page(code)
                return Response(code, ms, len(page), body=page, headers={"location": text or "/"})
            if text is None:
                page = self.page(code) if code >= 400 else ""
                return Response(code, ms, len(page), body=page)
            return Response(code, ms, len(text), body=text)
        if kind == "proxy":
            return self._proxy(action[1], loc, req, ctx)
        if path in ("/", "/index.html", "/50x.html"):
            return Response(200, ms, len(WELCOME), body=WELCOME)
        page = self.page(404)
        return Response(404, ms, len(page), body=page)

    def _proxy(self, upstream: str, loc: Location | None, req, ctx) -> Response:
        """proxy_pass: with a URI part the matched prefix is replaced by it."""
        target, up_path, _ = split_target(upstream)
        path = req.path
        if "://" in upstream and upstream.split("://", 1)[1].find("/") >= 0 and loc is not None and not loc.regex:
            path = up_path + path[len(loc.pattern):] if path.startswith(loc.pattern) else path
        headers = dict(req.headers or {})
        headers["host"] = target.rsplit(":", 1)[0] if target.endswith(":80") else target
        r = call(ctx, target, req.method, path, headers=headers, body=request_body(req),
                 body_bytes=req.body_bytes)
        ms = self.PROXY.sample(ctx.rng) + r.latency_ms
        if r.status < 100:
            page = self.page(502)
            return Response(502, ms, len(page), body=page)
        return Response(r.status, ms, r.length, body=r.body, headers=r.headers)


def build(spec: Spec, tag: str) -> App:
    return Nginx(spec, tag)
