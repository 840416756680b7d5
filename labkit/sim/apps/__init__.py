"""Behaviour models of the container images the labs run, keyed by image and version.

The embedded mesh knows an image only if a model here says how it behaves;
anything else is refused when it is applied (``check_image``), with the list of
what is modelled, instead of producing invented numbers.

    check_image("ghcr.io/buoyantio/emojivoto-web:v11")         # fine
    app = build(container, pod, lookup)                         # an AppModel
    app.handle(Request("GET", "/api/list", "web-svc.emojivoto:80"), ctx)

``build`` reads the container exactly as the real one would be configured:
``env`` (with ``valueFrom`` / ``envFrom`` through ``lookup(kind, namespace,
name)``), ``command`` / ``args`` over the image's entrypoint, ports, and
ConfigMap / Secret volume mounts.  The interface between the models and the
data plane is in ``model.py``; ``testing.MiniMesh`` is a minimal data plane
that runs models on their own (what ``tests/test_apps_*.py`` use).

Beyond the ``AppModel`` protocol every model (``base.App``) has:

* ``failure: str | None`` -- why the container cannot run (the binary's own
  fatal log line, nginx's ``[emerg]``, a missing ConfigMap…); the cluster
  model should show such a container crashing / not starting;
* ``stop()`` -- the container ended: background loops and jobs stop;
* ``run(argv, ctx) -> (output, exit_code)`` -- ``exec`` with the exit status,
  for exec probes (``podcli check http …``, ``wget --spider …``).

Client loops (vote-bot, books traffic, slow_cooker) start in ``start(ctx)``;
servers remember ``ctx`` there for background work they start later (the
loadtester's webhook tasks), so the data plane calls ``start`` for every
container, servers included.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from labkit.errors import ApplyError

from . import booksapp, emojivoto, linkerd, loadtester, nginx, podinfo
from .base import App, ImageRef, Spec, SpecError, parse_image, read_spec
from .model import AppModel, CallContext, ClientContext, Request, Response

__all__ = ["AppModel", "CallContext", "ClientContext", "Request", "Response", "UnknownImageError",
           "build", "check_image", "parse_image", "supported_images"]


class UnknownImageError(ApplyError):
    """An image the embedded mesh has no behaviour model for (a ValueError)."""


@dataclass(frozen=True)
class Family:
    label: str                                  # how the error message names it
    repositories: frozenset[str]
    versions: str                               # human-readable supported versions
    version_ok: Callable[[ImageRef], bool]
    make: Callable[[Spec, ImageRef], App]
    registries: frozenset[str] | None = None    # None: any registry (mirrors included)

    def matches(self, ref: ImageRef) -> bool:
        if ref.repository not in self.repositories and not any(
                r.endswith("/*") and ref.repository.startswith(r[:-1]) for r in self.repositories):
            return False
        return self.registries is None or ref.registry in self.registries


def _tag_re(pattern: str, lo: int | None = None, hi: int | None = None) -> Callable[[ImageRef], bool]:
    rx = re.compile(pattern)

    def ok(ref: ImageRef) -> bool:
        m = rx.fullmatch(ref.tag or "")
        if not m:
            return False
        if lo is None:
            return True
        n = int(m.group(1))
        return lo <= n <= (hi if hi is not None else n)
    return ok


def _any(ref: ImageRef) -> bool:
    return True


def _emojivoto(ref: ImageRef, spec: Spec) -> App:
    component = ref.repository.split("emojivoto-", 1)[1]
    return emojivoto.build(spec, component, ref.tag or "")


FAMILIES: tuple[Family, ...] = (
    Family("ghcr.io/buoyantio/emojivoto-{web,emoji-svc,voting-svc}",
           frozenset({"buoyantio/emojivoto-web", "buoyantio/emojivoto-emoji-svc", "buoyantio/emojivoto-voting-svc"}),
           "v8–v12", _tag_re(r"v(\d+)", 8, 12), lambda s, r: _emojivoto(r, s)),
    Family("ghcr.io/buoyantio/booksapp", frozenset({"buoyantio/booksapp"}),
           "v0.0.3–v0.0.5", _tag_re(r"v0\.0\.(\d+)", 3, 5), lambda s, r: booksapp.build(s, r.tag or "", False)),
    Family("ghcr.io/buoyantio/booksapp-traffic",
           frozenset({"buoyantio/booksapp-traffic"}), "v0.0.3–v0.0.5", _tag_re(r"v0\.0\.(\d+)", 3, 5),
           lambda s, r: booksapp.build(s, r.tag or "", True)),
    Family("{ghcr.io,quay.io}/stefanprodan/podinfo",
           frozenset({"stefanprodan/podinfo"}), "1.x–6.x", _tag_re(r"v?(\d+)\.\d+\.\d+(?:-[\w.]+)?", 1, 6),
           lambda s, r: podinfo.build(s, r.tag or "")),
    Family("nginx", frozenset({"nginx"}), "<any tag>", _any,
           lambda s, r: nginx.build(s, r.tag or r.version)),
    Family("{ghcr.io/fluxcd,weaveworks}/flagger-loadtester",
           frozenset({"fluxcd/flagger-loadtester", "weaveworks/flagger-loadtester"}), "<any tag>", _any,
           lambda s, r: loadtester.build(s, r.tag or r.version)),
    Family("curlimages/curl", frozenset({"curlimages/curl"}), "<any tag>", _any,
           lambda s, r: linkerd.build_curl(s, r.version)),
    Family("buoyantio/slow_cooker", frozenset({"buoyantio/slow_cooker"}), "<any tag>", _any,
           lambda s, r: linkerd.build_slow_cooker(s, r.version)),
    Family("cr.l5d.io/linkerd/* (Linkerd, viz, debug; also gcr.io/linkerd-io/*)",
           frozenset({"linkerd/*", "linkerd-io/*"}), "<any tag>", _any,
           lambda s, r: linkerd.build_control_plane(s, r.repository, r.version),
           frozenset({"cr.l5d.io", "ghcr.io", "gcr.io", "docker.io"})),
    Family("prom/prometheus", frozenset({"prom/prometheus"}), "<any tag>", _any,
           lambda s, r: linkerd.build_control_plane(s, r.repository, r.version)),
    Family("grafana/grafana", frozenset({"grafana/grafana"}), "<any tag>", _any,
           lambda s, r: linkerd.build_control_plane(s, r.repository, r.version)),
    Family("{ghcr.io/fluxcd,weaveworks}/flagger", frozenset({"fluxcd/flagger", "weaveworks/flagger"}),
           "<any tag>", _any, lambda s, r: linkerd.build_control_plane(s, r.repository, r.version)),
)


def supported_images() -> list[str]:
    """One line per modelled image family, with its versions."""
    return [f"{f.label}:{f.versions}" if " (" not in f.label else
            f"{f.label.split(' (')[0]}:{f.versions} ({f.label.split(' (', 1)[1]}" for f in FAMILIES]


def _refuse(image: str, why: str = "") -> UnknownImageError:
    return UnknownImageError(
        f"image '{image}' is not modelled by the embedded mesh{why}; supported: "
        + ", ".join(supported_images())
        + " (from any registry mirror of these names); use one of these or run the lab on a real cluster")


def family_of(image: str) -> tuple[Family, ImageRef]:
    ref = parse_image(image)
    if not ref.repository:
        raise _refuse(image, " (no image name)")
    for fam in FAMILIES:
        if fam.matches(ref):
            if not fam.version_ok(ref):
                shown = ref.tag or f"@{ref.digest}"
                raise _refuse(image, f" ({ref.repository} is modelled for {fam.versions}, not {shown})")
            return fam, ref
    raise _refuse(image)


def check_image(image: str) -> None:
    """Raise UnknownImageError unless ``image`` has a behaviour model."""
    family_of(image)


def build(container: dict, pod: dict, lookup: Callable[[str, str, str], dict | None]) -> AppModel:
    """The behaviour model of one container of one pod.

    Raises UnknownImageError for an image without a model.  A container the
    real runtime could not start (missing env the binary requires, bad flags,
    a missing ConfigMap) still gets a model, whose ``failure`` says why.
    """
    image = container.get("image") or ""
    fam, ref = family_of(image)
    spec = read_spec(ref, container, pod, lookup)
    try:
        return fam.make(spec, ref)
    except SpecError as e:
        app = App(spec)
        app.name = f"{ref.repository.rsplit('/', 1)[-1]}:{ref.version}"
        app.failure = str(e)
        return app
