"""Manifests: load YAML the way ``kubectl apply -f`` reads it, and ``linkerd inject`` / ``uninject`` as pure transforms.

Both backends consume the same YAML (``manifests/`` in this repository), so
loading is shared: a ``source`` is a file, a folder (its ``.yaml``, ``.yml``
and ``.json`` files, not recursing, in name order — exactly what ``kubectl
apply -f DIR`` takes), multi-document YAML text, a dict or a list of dicts.
Relative paths are looked up in the repository's ``manifests/`` folder first.
Each document remembers its file and position so an error can name them.

:func:`inject_yaml` does what ``linkerd inject`` does by default: it only adds
the ``linkerd.io/inject: enabled`` annotation (plus ``config.linkerd.io/*``
annotations for options such as ``enable_debug_sidecar=True``) to pod
templates and namespaces, and reports ``deployment "web" injected`` lines;
the proxy itself is added later by the proxy injector when pods are created.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from labkit.errors import ApplyError

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
SUFFIXES = (".yaml", ".yml", ".json")

try:  # the C loader is ~10x faster; fall back to the pure-Python one
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


class _DuplicateKeyLoader(_Loader):  # type: ignore[misc, valid-type]
    """The safe loader, remembering each mapping's repeated keys instead of silently keeping the last.

    A YAML mapping may not repeat a key, but PyYAML (like the Go YAML library kubectl converts with) keeps the
    last value. Under strict field validation the API server refuses a duplicate field, so the loader notes
    them (by the id of the dict built) for :func:`duplicate_paths` to name.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self.repeated: dict[int, list[str]] = {}

    def construct_yaml_map(self, node):
        data: dict = {}
        yield data
        seen, repeated = set(), []
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen and key not in repeated:
                repeated.append(key)
            seen.add(key)
        if repeated:
            self.repeated[id(data)] = [str(k) for k in repeated]
        data.update(self.construct_mapping(node))


_DuplicateKeyLoader.add_constructor("tag:yaml.org,2002:map", _DuplicateKeyLoader.construct_yaml_map)


def duplicate_paths(obj: Any, repeated: dict[int, list[str]], path: str = "") -> list[str]:
    """The field paths (``spec.replicas``, ``spec.ports[0].name``) of the keys ``repeated`` records under ``obj``."""
    out: list[str] = []
    if isinstance(obj, dict):
        dups = repeated.get(id(obj), ())
        for key, value in obj.items():
            child = f"{path}.{key}" if path else str(key)
            if key in dups:
                out.append(child)
            out += duplicate_paths(value, repeated, child)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += duplicate_paths(value, repeated, f"{path}[{i}]")
    return out


def load_json(text: str) -> tuple[Any, list[str]]:
    """JSON text → (value, paths of repeated keys): like ``json.loads``, which silently keeps the last one."""
    repeated: dict[int, list[str]] = {}

    def pairs(items: list) -> dict:
        out: dict = {}
        dups = []
        for key, value in items:
            if key in out and key not in dups:
                dups.append(key)
            out[key] = value
        if dups:
            repeated[id(out)] = dups
        return out

    value = json.loads(text, object_pairs_hook=pairs)
    return value, (duplicate_paths(value, repeated) if repeated else [])


@dataclass(frozen=True)
class Document:
    """One object from a source: the object, where it came from, and its 1-based position there.

    ``duplicates`` are the field paths a mapping of the source repeated (only the last value is in ``obj``):
    strict field validation refuses them, ``warn`` reports them, ``ignore`` keeps the last value.
    """

    obj: dict
    origin: str
    index: int
    duplicates: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.origin}, document {self.index}"


def display_path(path: Path) -> str:
    """A path as a learner would type it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def looks_like_yaml(text: str) -> bool:
    stripped = text.lstrip()
    return "\n" in text or stripped.startswith(("{", "[", "---", "apiVersion", "kind:", "#"))


def resolve_path(source: str | Path) -> Path:
    """A relative path is looked up under ``manifests/`` first, then the working directory."""
    path = Path(source).expanduser()
    if path.is_absolute():
        if not path.exists():
            raise ApplyError(f'error: the path "{source}" does not exist')
        return path
    tried = [MANIFESTS / path, Path.cwd() / path]
    for candidate in tried:
        if candidate.exists():
            return candidate
    raise ApplyError(f'error: the path "{source}" does not exist (looked in {", ".join(display_path(t) for t in tried)})')


def files_of(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    return [path]


def parse(text: str, origin: str, *, keep_null_items: bool = False) -> list[Document]:
    """Documents of a YAML (or JSON) stream; ``kind: List`` items are expanded, empty documents skipped.

    A null item of a List is dropped (``kubectl apply``) or kept as a ``None`` document (``keep_null_items``:
    ``linkerd inject`` reports it as a document without a kind).
    """
    raw: list[tuple[Any, dict[int, list[str]]]] = []
    loader = _DuplicateKeyLoader(text)
    try:
        while loader.check_data():
            raw.append((loader.get_data(), loader.repeated))
            loader.repeated = {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ApplyError(f"error: error parsing {origin}: {problem}{where}") from None
    finally:
        loader.dispose()
    docs: list[Document] = []
    for i, (obj, repeated) in enumerate(raw, start=1):
        if obj is None:
            continue
        if not isinstance(obj, dict):
            raise ApplyError(f"error: error parsing {origin}, document {i}: expected an object (a mapping), got {type(obj).__name__}")
        if obj.get("kind") == "List" or (str(obj.get("kind", "")).endswith("List") and "items" in obj):
            for item in obj.get("items") or []:
                if item is not None or keep_null_items:  # kubectl skips a null item of a List
                    dups = tuple(duplicate_paths(item, repeated)) if repeated else ()
                    docs.append(Document(item, origin, i, dups))
        else:
            docs.append(Document(obj, origin, i, tuple(duplicate_paths(obj, repeated)) if repeated else ()))
    return docs


def load(source: Any, verb: str | None = None) -> tuple[list[Document], str]:
    """(documents, the ``-f`` argument kubectl would be given) for any accepted source.

    With ``verb`` (``"apply"``, ``"delete"``), a source without a single object
    is refused as kubectl refuses it ("no objects passed to apply"), rather
    than quietly doing nothing: an empty string is a mistake, not a request.
    """
    docs, arg = _load(source)
    if verb and not docs:
        shown = repr(source) if isinstance(source, str) and len(source) < 60 else type(source).__name__
        raise ApplyError(f"error: no objects passed to {verb} (the source {shown} holds no Kubernetes object; "
                         "pass YAML text, a manifest file or folder, a dict or a list of dicts)")
    return docs, arg


def _load(source: Any) -> tuple[list[Document], str]:
    if isinstance(source, str) and not source.strip():
        return [], "-"  # not a path: "" would otherwise name the current folder
    if isinstance(source, dict):
        return parse_objects([source]), "-"
    if isinstance(source, (list, tuple)):
        return parse_objects(source), "-"
    if isinstance(source, str) and looks_like_yaml(source):
        return parse(source, "<stdin>"), "-"
    if isinstance(source, (str, Path)):
        path = resolve_path(source)
        docs: list[Document] = []
        for file in files_of(path):
            text = file.read_text()
            if file.suffix == ".json":
                try:
                    obj, dups = load_json(text)
                except json.JSONDecodeError as exc:
                    raise ApplyError(f"error: error parsing {display_path(file)}: {exc}") from None
                found = parse_objects([obj], display_path(file))
                if dups and len(found) == 1 and found[0].obj is obj:
                    found = [Document(obj, found[0].origin, 1, tuple(dups))]
                docs += found
            else:
                docs += parse(text, display_path(file))
        return docs, display_path(path)
    raise ApplyError(f"cannot apply {type(source).__name__}: pass a path (file or folder), YAML text, a dict or a list of dicts")


def parse_objects(objs: Iterable[Any], origin: str = "<objects>") -> list[Document]:
    docs = []
    for i, obj in enumerate(objs, start=1):
        if not isinstance(obj, dict):
            raise ApplyError(f"error: {origin}, document {i}: expected a dict in Kubernetes API shape, got {type(obj).__name__}")
        if obj.get("kind") == "List":
            docs += [Document(item, origin, i) for item in obj.get("items") or [] if item is not None]
        else:
            docs.append(Document(obj, origin, i))
    return docs


def dump(objs: Iterable[dict]) -> str:
    """Objects as a multi-document YAML stream (keys sorted, like Linkerd's and kubectl's output)."""
    return "---\n".join(yaml.safe_dump(o, sort_keys=True, default_flow_style=False, allow_unicode=True)
                        for o in objs if o is not None)


# -- linkerd inject / uninject -----------------------------------------------------------------------

#: Kinds whose pods come from a template, and where the template lives.
WORKLOADS = {
    "Deployment": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

INJECT_ANNOTATION = "linkerd.io/inject"
COMPONENT_LABEL = "linkerd.io/control-plane-component"
#: ``linkerd inject`` flags (as keyword arguments) → the pod annotation each one sets.
INJECT_OPTIONS = {
    "enable_debug_sidecar": "config.linkerd.io/enable-debug-sidecar",
    "proxy_version": "config.linkerd.io/proxy-version",
    "proxy_log_level": "config.linkerd.io/proxy-log-level",
    "skip_inbound_ports": "config.linkerd.io/skip-inbound-ports",
    "skip_outbound_ports": "config.linkerd.io/skip-outbound-ports",
    "opaque_ports": "config.linkerd.io/opaque-ports",
    "proxy_cpu_request": "config.linkerd.io/proxy-cpu-request",
    "proxy_memory_request": "config.linkerd.io/proxy-memory-request",
    "wait_before_exit_seconds": "config.alpha.linkerd.io/proxy-wait-before-exit-seconds",
}


def _pod_meta_and_spec(obj: dict) -> tuple[dict, dict] | None:
    kind = obj.get("kind")
    if kind == "Pod":
        return obj.setdefault("metadata", {}), obj.setdefault("spec", {})
    path = WORKLOADS.get(kind)
    if path is None:
        return None
    node = obj
    for part in path:
        node = node.setdefault(part, {})
    return node.setdefault("metadata", {}), node.setdefault("spec", {})


def _option_annotations(options: dict) -> dict[str, str]:
    unknown = sorted(set(options) - set(INJECT_OPTIONS) - {"ingress"})
    if unknown:
        raise TypeError(f"unknown inject option(s) {', '.join(unknown)}; known: {', '.join(sorted(INJECT_OPTIONS))}, ingress")
    out = {}
    for key, annotation in INJECT_OPTIONS.items():
        value = options.get(key)
        if value is None or value is False:
            continue
        out[annotation] = "true" if value is True else (",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))
    return out


def _report(lines: list[str], warnings: list[str]) -> str:
    return "\n" + "".join(w + "\n" for w in warnings) + ("\n" if warnings else "") + "".join(l + "\n" for l in lines) + "\n"


class InjectError(ApplyError):
    """``linkerd inject`` refused a resource (exit status 1, nothing printed to stdout); the message is the CLI's."""


def _transform_each(objs: list, on_namespace, on_pod) -> tuple[list, list[str]]:
    """The walk ``linkerd inject`` and ``uninject`` share: each object copied, a Namespace given to
    ``on_namespace(obj)``, a workload to ``on_pod(obj, kind, name, pod_metadata, pod_spec)``, anything else
    skipped; each returns the verb of its report line (``deployment "web" injected``). A document without a
    kind (a null item of a List) is reported as the CLI does and passed through."""
    import copy

    out, lines = [], []
    for original in objs:
        if not isinstance(original, dict) or not original.get("kind"):
            lines.append('document missing "kind" field, skipped')
            out.append(original)
            continue
        obj = copy.deepcopy(original)
        kind = str(obj.get("kind", ""))
        name = (obj.get("metadata") or {}).get("name", "")
        if kind == "Namespace":
            verb = on_namespace(obj)
        else:
            parts = _pod_meta_and_spec(obj)
            verb = on_pod(obj, kind, name, *parts) if parts is not None else "skipped"
        if verb is not None:
            lines.append(f'{kind.lower()} "{name}" {verb}')
        out.append(obj)
    return out, lines


#: Other meshes' sidecars (and Linkerd's own, before the re-inject) as 2.20's ``HasExistingSidecars`` knows them.
THIRD_PARTY_SIDECARS = ("istio-proxy", "istio-init")
THIRD_PARTY_IMAGES = ("gcr.io/istio-release/proxyv2:", "gcr.io/istio-release/proxy_init:")


def _has_other_sidecar(spec: dict) -> bool:
    return any(c.get("name") in THIRD_PARTY_SIDECARS or str(c.get("image", "")).startswith(THIRD_PARTY_IMAGES)
               for c in (spec.get("initContainers") or []) + (spec.get("containers") or []))


def _udp(spec: dict) -> bool:
    return any((p or {}).get("protocol") == "UDP" for c in spec.get("containers") or [] for p in c.get("ports") or [])


def inject_objects(objs: list, *, manual=None, **options: Any) -> tuple[list, list[str], list[str]]:
    """``linkerd inject`` on objects: (new objects, summary lines, warnings).

    As 2.20's CLI: a workload gets ``linkerd.io/inject: enabled`` (the injector adds the proxy when its pods are
    created); one already injected by Linkerd is uninjected first; ``linkerd.io/inject: disabled`` is a warning and
    a skip; UDP ports are a warning; host networking, another mesh's sidecar and control-plane components (which
    need ``--manual``) are errors (:class:`InjectError`, nothing output). Inputs are not modified.

    ``manual`` (``--manual``): ``manual(kind, name, pod_metadata, pod_spec)`` writes the proxy into the pod
    template itself, in place of the annotation (the caller brings the injector, which needs the install's values).
    """
    extra = _option_annotations(options)
    mode = "ingress" if options.get("ingress") else "enabled"
    disabled, udp, errors = [], [], []
    annotatable = injected = False
    for obj in objs:
        parts = _pod_meta_and_spec(dict(obj)) if isinstance(obj, dict) and obj.get("kind") else None
        if parts and COMPONENT_LABEL in (parts[0].get("labels") or {}) and manual is None:
            raise InjectError("Error transforming resources:\n--manual must be set when injecting control plane components")
    objs, _ = uninject_objects(objs)  # re-injecting an injected workload starts from the uninjected one

    def on_namespace(obj: dict) -> str:
        nonlocal annotatable
        annotatable = True
        ann = obj.setdefault("metadata", {}).setdefault("annotations", {})
        ann[INJECT_ANNOTATION] = mode
        ann.update(extra)
        return "annotated"

    def on_pod(obj: dict, kind: str, name: str, pmeta: dict, pspec: dict) -> str:
        nonlocal annotatable, injected
        annotatable = True
        ann = pmeta.setdefault("annotations", {})
        reasons = [why for why, bad in (("hostNetwork is enabled", pspec.get("hostNetwork")),
                                        ("pod has a sidecar injected already", _has_other_sidecar(pspec))) if bad]
        if reasons:
            if _udp(pspec):
                reasons.append("UDP port(s) configured on pod spec")
            errors.append(f"failed to inject {kind.lower()}/{name}: {', '.join(reasons)}")
            return "skipped"
        if ann.get(INJECT_ANNOTATION) == "disabled":
            disabled.append(f"{kind.lower()}/{name}")
            return "skipped"
        if _udp(pspec):
            udp.append(f"{kind.lower()}/{name}")
        ann.update(extra)
        if manual is not None:
            ann.pop(INJECT_ANNOTATION, None)  # not needed when the proxy is in the manifest itself
            manual(kind, name, pmeta, pspec)
        else:
            ann[INJECT_ANNOTATION] = mode
        injected = True
        return "injected"

    out, lines = _transform_each(objs, on_namespace, on_pod)
    if errors:
        raise InjectError("Error transforming resources:\n" + "\n".join(errors))
    warnings = []
    if disabled:
        warnings.append(f'\u203c "{INJECT_ANNOTATION}: disabled" annotation set on {", ".join(disabled)}')
    if not injected and not annotatable:
        warnings.append("\u203c no supported objects found")
    if udp:
        warnings.append(f'\u203c {", ".join(udp)} {"uses" if len(udp) == 1 else "use"} "protocol: UDP"')
    return out, lines, warnings


#: The volumes the injector adds, which ``linkerd uninject`` removes.
INJECTED_VOLUMES = ("linkerd-identity-end-entity", "linkerd-proxy-init-xtables-lock", "linkerd-identity-token")


def _uninject_meta(meta: dict | None) -> bool:
    """Drop ``linkerd.io*`` annotations and labels (not ``config.linkerd.io/*``, not ``linkerd.io/inject: disabled``),
    as 2.20's ``pkg/inject/uninject.go`` does; control-plane components are left alone. True if any went."""
    if not meta or COMPONENT_LABEL in (meta.get("labels") or {}):
        return False
    ann = meta.get("annotations") or {}
    drop = [k for k, v in ann.items() if k.startswith("linkerd.io") and not (k == INJECT_ANNOTATION and v == "disabled")]
    for key in drop:
        del ann[key]
    if "annotations" in meta and not ann:
        del meta["annotations"]
    labels = meta.get("labels") or {}
    for key in [k for k in labels if k.startswith("linkerd.io")]:
        del labels[key]
    return bool(drop)


def uninject_objects(objs: list) -> tuple[list, list[str]]:
    """``linkerd uninject`` on objects: the proxy and linkerd-init go (wherever they are), with their volumes and
    the ``linkerd.io*`` metadata; ``config.linkerd.io/*`` and ``linkerd.io/inject: disabled`` stay (2.20)."""
    def on_namespace(obj: dict) -> str:
        return "uninjected" if _uninject_meta(obj.get("metadata")) else "skipped"

    def on_pod(obj: dict, kind: str, name: str, pmeta: dict, pspec: dict) -> str:
        changed = False
        for field, names in (("initContainers", ("linkerd-init", "linkerd-proxy")), ("containers", ("linkerd-proxy",))):
            before = pspec.get(field) or []
            after = [c for c in before if c.get("name") not in names]
            if len(after) != len(before):
                changed = True
                if after:
                    pspec[field] = after
                else:
                    pspec.pop(field, None)
        volumes = pspec.get("volumes") or []
        kept = [v for v in volumes if v.get("name") not in INJECTED_VOLUMES]
        if len(kept) != len(volumes):
            if kept:
                pspec["volumes"] = kept
            else:
                pspec.pop("volumes", None)
        if kind != "Pod":
            changed = _uninject_meta(obj.get("metadata")) or changed
        changed = _uninject_meta(pmeta) or changed
        return "uninjected" if changed else "skipped"

    return _transform_each(objs, on_namespace, on_pod)


def _objects_of_text(yaml_text: str) -> list[dict]:
    if not isinstance(yaml_text, str):
        raise TypeError(f"expected YAML text, got {type(yaml_text).__name__} (use labkit.manifests.load for paths)")
    return [d.obj for d in parse(yaml_text, "<stdin>", keep_null_items=True)]


def inject_yaml(yaml_text: str, *, manual=None, **options: Any) -> tuple[str, str]:
    """Like ``linkerd inject [--manual] -``: (YAML with the inject annotation or the proxy added, Linkerd's report)."""
    objs, lines, warnings = inject_objects(_objects_of_text(yaml_text), manual=manual, **options)
    return dump(objs), _report(lines, warnings)


def uninject_yaml(yaml_text: str) -> tuple[str, str]:
    """Like ``linkerd uninject -``: (YAML without Linkerd's annotations and containers, the report)."""
    objs, lines = uninject_objects(_objects_of_text(yaml_text))
    return dump(objs), _report(lines, [])
