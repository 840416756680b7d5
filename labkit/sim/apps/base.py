"""What every app model shares: image references, the container spec as the
container sees it, latency distributions, and the ``App`` base class.

Apps are leaves of the simulator: nothing here imports the cluster model or
the data plane; they reach the world only through the contexts they are given.
"""
from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Callable

from .model import LAST, Request, Response

# -- images --------------------------------------------------------------------

_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True, slots=True)
class ImageRef:
    """``ghcr.io/buoyantio/emojivoto-web:v11`` split the way a container runtime splits it."""
    text: str
    registry: str          # "docker.io" when none is written
    repository: str        # "buoyantio/emojivoto-web"; Docker Hub officials as "nginx"
    tag: str | None        # None when only a digest (or nothing) is given
    digest: str | None

    @property
    def version(self) -> str:
        return self.tag or "latest"


def parse_image(image: str) -> ImageRef:
    """Split an image reference; Docker Hub's implicit ``library/`` is dropped."""
    text = (image or "").strip()
    rest, _, digest = text.partition("@")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first.lower(), remainder
    else:
        registry, repository = "docker.io", rest
    if registry in _DOCKER_HUB:
        registry = "docker.io"
        if repository.startswith("library/"):
            repository = repository[len("library/"):]
    if tag is None and not digest:
        tag = "latest"
    return ImageRef(text, registry, repository.lower(), tag, digest or None)


# -- latency distributions -----------------------------------------------------

TABLE_BITS = _TABLE_BITS = 11
_TABLE_SIZE = 1 << _TABLE_BITS
_Z = [NormalDist().inv_cdf((i + 0.5) / _TABLE_SIZE) for i in range(_TABLE_SIZE)]


class Dist:
    """A service-time distribution in milliseconds: ``floor`` + a lognormal.

    Given by its median and 95th percentile (the numbers the tutorials print),
    precomputed as a quantile table so drawing a sample is one
    ``rng.getrandbits(11)`` and one index (≈ 0.15 µs) -- the hot path stays cheap.
    Hot handlers inline it as ``dist.table[rng.getrandbits(TABLE_BITS)]``.
    """

    __slots__ = ("table", "p50", "p95")

    def __init__(self, p50: float, p95: float, floor: float = 0.0):
        if not 0 <= floor < p50 < p95:
            raise ValueError(f"Dist needs 0 <= floor < p50 < p95, got {floor}, {p50}, {p95}")
        sigma = math.log((p95 - floor) / (p50 - floor)) / 1.6448536269514722
        scale = p50 - floor
        self.table = tuple(floor + scale * math.exp(sigma * z) for z in _Z)
        self.p50, self.p95 = p50, p95

    def sample(self, rng) -> float:
        return self.table[rng.getrandbits(_TABLE_BITS)]

    def quantile(self, q: float) -> float:
        return self.table[min(_TABLE_SIZE - 1, int(q * _TABLE_SIZE))]


# -- durations and flags as Go parses them --------------------------------------

_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration(text: str) -> float:
    """Seconds in a Go ``time.ParseDuration`` string (``30s``, ``1m30s``, ``100ms``).

    Raises ValueError with Go's wording, so a bad flag fails like the binary.
    """
    s = text.strip()
    sign = 1.0
    if s[:1] in "+-":
        sign, s = (-1.0 if s[0] == "-" else 1.0), s[1:]
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _GO_PART.match(s, pos)
        if not m:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


def go_duration_text(seconds: float) -> str:
    """Format like Go's ``time.Duration.String`` (``12.345ms``, ``1.5s``, ``2m0s``)."""
    if seconds == 0:
        return "0s"
    if seconds < 1e-6:
        return f"{round(seconds * 1e9)}ns"
    if seconds < 1e-3:
        return _trim(f"{seconds * 1e6:.3f}") + "µs"
    if seconds < 1:
        return _trim(f"{seconds * 1e3:.6f}") + "ms"
    if seconds < 60:
        return _trim(f"{seconds:.9f}") + "s"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    out = f"{int(h)}h" if h else ""
    return out + f"{int(m)}m" + _trim(f"{s:.9f}") + "s"


def _trim(num: str) -> str:
    return num.rstrip("0").rstrip(".") if "." in num else num


def ruby_to_f(text: str | None) -> float:
    """Ruby's ``String#to_f``: the longest numeric prefix, 0.0 when there is none."""
    m = re.match(r"\s*[+-]?(\d+(\.\d+)?([eE][+-]?\d+)?|\.\d+)", text or "")
    return float(m.group(0)) if m else 0.0


def go_flags(argv: list[str], spec: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Parse Go ``flag``-package style options (``-x=1``, ``-x 1``, ``--x=1``).

    ``spec`` maps a flag name to "bool" or "value".  Parsing stops at the first
    non-flag argument or ``--``, as Go's does.  Raises ValueError with Go's
    message for an undefined flag or a missing value.
    """
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        name = a.lstrip("-")
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        kind = spec.get(name)
        if kind is None:
            raise ValueError(f"flag provided but not defined: -{name}")
        if kind == "bool":
            flags[name] = value if value is not None else "true"
        else:
            if value is None:
                if i + 1 >= len(argv):
                    raise ValueError(f"flag needs an argument: -{name}")
                i += 1
                value = argv[i]
            flags[name] = value
        i += 1
    return flags, argv[i:]


def split_target(url: str, default_port: int = 80) -> tuple[str, str, str]:
    """``http://host:port/path?q`` or ``host:port`` → (target "host:port", path, scheme)."""
    scheme = "http"
    rest = url.strip()
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        scheme = scheme.lower()
        if scheme == "https" and default_port == 80:
            default_port = 443
    slash = rest.find("/")
    q = rest.find("?")
    cut = min(x for x in (slash, q, len(rest)) if x >= 0)
    hostport, path = rest[:cut], rest[cut:]
    if "@" in hostport:                     # user:pass@host
        hostport = hostport.rsplit("@", 1)[1]
    if not path.startswith("/"):
        path = "/" + path
    if hostport.startswith("["):            # [::1]:80
        host, _, port = hostport[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = hostport.partition(":")
    return f"{host}:{port or default_port}", path, scheme


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


# -- the container as it sees itself -------------------------------------------

class SpecError(ValueError):
    """The container cannot start with this spec (like CreateContainerConfigError)."""


@dataclass
class Spec:
    """A container of a pod, read the way the kubelet and the runtime present it.

    ``env`` holds the container's environment after ``valueFrom`` / ``envFrom``
    resolution and ``$(VAR)`` expansion; ``argv()`` applies Docker's
    ENTRYPOINT/CMD override rules to ``command`` / ``args``.
    """
    image: ImageRef
    container: dict
    pod: dict
    lookup: Callable[[str, str, str], dict | None]
    env: dict[str, str] = field(default_factory=dict)
    failure: str | None = None

    @property
    def name(self) -> str:
        return self.container.get("name", "")

    @property
    def namespace(self) -> str:
        return (self.pod.get("metadata") or {}).get("namespace") or "default"

    @property
    def pod_name(self) -> str:
        meta = self.pod.get("metadata") or {}
        return meta.get("name") or meta.get("generateName", "pod") + "sim"

    @property
    def hostname(self) -> str:
        return (self.pod.get("spec") or {}).get("hostname") or self.pod_name

    def argv(self, entrypoint: list[str], cmd: list[str] | None = None) -> list[str]:
        """The process argv: ``command`` replaces ENTRYPOINT, ``args`` replaces CMD."""
        command = self.container.get("command")
        args = self.container.get("args")
        command = [expand(c, self.env) for c in command] if command else None
        args = [expand(a, self.env) for a in args] if args is not None else None
        if command:
            return command + (args or [])
        return list(entrypoint) + (args if args is not None else list(cmd or []))

    def declared_ports(self) -> list[dict]:
        return list(self.container.get("ports") or [])

    def mounted_file(self, path: str) -> str | None:
        """Contents of a file the container sees at ``path`` when a ConfigMap or
        Secret volume provides it (subPath mounts and whole-directory mounts).

        Returns None when no volume covers ``path``; raises SpecError when the
        volume's ConfigMap is missing (the pod would never start: FailedMount).
        """
        volumes = {v.get("name"): v for v in (self.pod.get("spec") or {}).get("volumes") or []}
        for mount in self.container.get("volumeMounts") or []:
            mpath = mount.get("mountPath", "").rstrip("/")
            vol = volumes.get(mount.get("name"))
            if not vol:
                continue
            sub = mount.get("subPath")
            if sub:
                if mpath != path.rstrip("/"):
                    continue
                key_path = sub
            else:
                prefix = mpath + "/"
                if not path.startswith(prefix):
                    continue
                key_path = path[len(prefix):]
            files = self._volume_files(vol)
            if files is None:
                continue
            if key_path in files:
                return files[key_path]
        return None

    def mounted_dir(self, path: str) -> dict[str, str]:
        """All files under directory ``path`` provided by ConfigMap/Secret volumes."""
        out: dict[str, str] = {}
        volumes = {v.get("name"): v for v in (self.pod.get("spec") or {}).get("volumes") or []}
        want = path.rstrip("/")
        for mount in self.container.get("volumeMounts") or []:
            vol = volumes.get(mount.get("name"))
            if not vol:
                continue
            mpath = mount.get("mountPath", "").rstrip("/")
            files = self._volume_files(vol)
            if not files:
                continue
            if mount.get("subPath"):
                parent, _, fname = mpath.rpartition("/")
                if parent == want and mount["subPath"] in files:
                    out[fname] = files[mount["subPath"]]
            elif mpath == want:
                out.update({k: v for k, v in files.items() if "/" not in k})
        return out

    def _volume_files(self, vol: dict) -> dict[str, str] | None:
        for kind, src_key, name_key in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
            src = vol.get(src_key)
            if src is None:
                continue
            obj = self.lookup(kind, self.namespace, src.get(name_key, ""))
            if obj is None:
                if src.get("optional"):
                    return {}
                raise SpecError(
                    f'MountVolume.SetUp failed for volume "{vol.get("name")}" : '
                    f'{kind.lower()} "{src.get(name_key, "")}" not found')
            data = _object_data(kind, obj)
            items = src.get("items")
            if items:
                return {it.get("path", it.get("key")): data[it["key"]] for it in items if it.get("key") in data}
            return data
        return None


def _object_data(kind: str, obj: dict) -> dict[str, str]:
    data = dict(obj.get("data") or {})
    if kind == "Secret":
        decoded = {}
        for k, v in data.items():
            try:
                decoded[k] = base64.b64decode(v).decode("utf-8", "replace")
            except (ValueError, TypeError):
                decoded[k] = str(v)
        decoded.update(obj.get("stringData") or {})
        return decoded
    return {k: str(v) for k, v in data.items()}


_EXPAND = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known vars are replaced, unknown ones left
    as written, ``$$`` escapes a dollar."""
    if "$" not in text:
        return text

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)
    return _EXPAND.sub(sub, str(text))


def _field_ref(pod: dict, path: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", "default"),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
    }
    if path in simple:
        return str(simple[path])
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    return ""


def read_spec(image: ImageRef, container: dict, pod: dict,
              lookup: Callable[[str, str, str], dict | None]) -> Spec:
    """Resolve the container's environment the way the kubelet does.

    Order: ``envFrom`` first, then ``env`` entries in order, each value
    ``$(VAR)``-expanded against what is defined so far.  A missing
    ConfigMap/Secret key that is not optional makes the container
    un-startable; that is recorded in ``Spec.failure`` rather than raised,
    because a real cluster accepts such a pod and reports it in its status.
    """
    spec = Spec(image, container, pod, lookup)
    env: dict[str, str] = {"HOSTNAME": spec.hostname,
                           "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "HOME": "/root"}
    ns = spec.namespace
    try:
        for src in container.get("envFrom") or []:
            prefix = src.get("prefix", "")
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                ref = src.get(key)
                if ref is None:
                    continue
                obj = lookup(kind, ns, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise SpecError(f'{kind.lower()} "{ref.get("name", "")}" not found')
                for k, v in _object_data(kind, obj).items():
                    env[prefix + k] = v
        for item in container.get("env") or []:
            name = item.get("name", "")
            if "value" in item:
                env[name] = expand(str(item.get("value") or ""), env)
                continue
            vf = item.get("valueFrom") or {}
            if "fieldRef" in vf:
                env[name] = _field_ref(pod, vf["fieldRef"].get("fieldPath", ""))
            elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                kind, ref = ("ConfigMap", vf["configMapKeyRef"]) if "configMapKeyRef" in vf \
                    else ("Secret", vf["secretKeyRef"])
                obj = lookup(kind, ns, ref.get("name", ""))
                data = _object_data(kind, obj) if obj is not None else None
                if data is None or ref.get("key") not in data:
                    if ref.get("optional"):
                        continue
                    what = f'{kind.lower()} "{ref.get("name", "")}" not found' if data is None else \
                        f'couldn\'t find key {ref.get("key")} in {kind} {ns}/{ref.get("name", "")}'
                    raise SpecError(what)
                env[name] = data[ref["key"]]
            else:
                env[name] = ""
    except SpecError as e:
        spec.failure = f"CreateContainerConfigError: {e}"
    spec.env = env
    return spec


# -- the base class --------------------------------------------------------------

# Tools a typical Linux image (busybox/alpine or debian-slim) has on its PATH.
BASE_TOOLS = frozenset({
    "sh", "ash", "bash", "echo", "printf", "cat", "grep", "egrep", "head", "tail", "wc",
    "sleep", "true", "false", "env", "printenv", "hostname", "date", "ps", "kill", "pkill",
    "killall", "watch", "wget", "curl", "ls", "jq", "seq",
})

JSON_CT = "application/json; charset=utf-8"


class App:
    """Defaults for an app model: a 404 for every request, no background work,
    a small shell for ``exec``.

    Subclasses set ``name`` and ``ports`` in ``__init__`` and override
    ``handle``; client apps (vote-bot, books traffic) override ``start``.

    Beyond the ``AppModel`` protocol every model has:

    * ``failure`` -- None, or why the container cannot run (the log line the
      real binary prints before exiting, or a kubelet reason); the cluster
      model shows such a container as crashing / not starting.
    * ``stop()`` -- the container terminated: background loops end.
    * ``run(argv, ctx) -> (output, exit_code)`` -- ``exec`` with the exit code,
      for exec probes (``podcli check http …``, ``wget --spider …``).
    """

    name: str = "app"
    ports: dict[int, str]
    tools: frozenset[str] = BASE_TOOLS
    READY_AFTER = 1.0
    RECORDS_LAST = True     # False: the class stores model.LAST itself where content matters (hot paths)

    def __init_subclass__(cls, **kwargs):
        """Every ``handle`` records its response in ``model.LAST`` so that
        ``model.call`` can recover body/headers a data plane dropped."""
        super().__init_subclass__(**kwargs)
        inner = cls.__dict__.get("handle")
        if inner is None or getattr(inner, "_records_last", False) or not cls.RECORDS_LAST:
            return

        def handle(self, req, ctx, _inner=inner, _last=LAST):
            resp = _inner(self, req, ctx)
            _last[0] = resp
            return resp
        handle._records_last = True
        handle.__doc__ = inner.__doc__
        cls.handle = handle

    def __init__(self, spec: Spec):
        self.spec = spec
        self.env = spec.env
        self.ports = {}
        self.failure: str | None = spec.failure
        self.stopped = False
        self.jobs: list = []          # background jobs (hey, watch, loops), see shell.Job
        self.files: dict[str, str] = {}
        self.bg = None                # the ClientContext given to start()

    # -- protocol ------------------------------------------------------------
    def handle(self, req: Request, ctx) -> Response:
        return Response(404, 0.3, 19, body="404 page not found\n")

    def start(self, ctx) -> None:
        """Remember the container's client context: background work (webhook
        tasks, ``watch``) scheduled later from ``handle`` or ``exec`` needs it."""
        self.bg = ctx

    def exec(self, argv: list[str], ctx) -> str:
        out, code = self.run(argv, ctx)
        if code:
            if out and not out.endswith("\n"):
                out += "\n"
            out += f"command terminated with exit code {code}\n"
        return out

    def run(self, argv: list[str], ctx) -> tuple[str, int]:
        from . import shell
        if self.bg is None and hasattr(ctx, "schedule"):
            self.bg = ctx
        return shell.run_argv(self, list(argv), ctx)

    def ready_after(self) -> float:
        return self.READY_AFTER

    def stop(self) -> None:
        self.stopped = True
        for job in list(self.jobs):
            job.stop()

    # -- helpers for subclasses -------------------------------------------------
    def listen(self, port: int | str | None, proto: str = "http") -> None:
        try:
            p = int(port)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        if p > 0:
            self.ports[p] = proto

    def log(self, line: str) -> None:
        if self.bg is not None:
            self.bg.log(line)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ports={self.ports}>"


class Inert(App):
    """A container that only answers health probes (and Prometheus scrapes).

    Used for the Linkerd / linkerd-viz / Flagger control plane and Prometheus:
    their behaviour belongs to other parts of the simulator, but their pods
    must run, become ready and answer ``/ready``-style probes.
    """

    PROBE_PATHS = frozenset({"/ready", "/live", "/ping", "/healthz", "/readyz", "/livez",
                             "/-/ready", "/-/healthy", "/metrics", "/health", "/api/health"})

    def __init__(self, spec: Spec, name: str, tools: frozenset[str] = frozenset(),
                 ready_after: float = 3.0):
        super().__init__(spec)
        self.name = name
        self.tools = tools
        self.READY_AFTER = ready_after
        for p in spec.declared_ports():
            pname = (p.get("name") or "").lower()
            self.listen(p.get("containerPort"), "grpc" if "grpc" in pname else "http")

    def handle(self, req: Request, ctx) -> Response:
        path = req.path.split("?", 1)[0]
        if path in self.PROBE_PATHS:
            if path == "/metrics":
                return Response(200, 1.2, 2048, body="# HELP up embedded mesh placeholder\n")
            return Response(200, 0.4, 3, body="ok\n")
        return Response(404, 0.4, 19, body="404 page not found\n")

