"""``linkerd profile``: a ServiceProfile from an OpenAPI (Swagger) spec, or the commented template.

``linkerd profile -n booksapp --open-api webapp.swagger webapp`` (the CLI's
``pkg/profiles/openapi.go``, reference linkerd-formats.md §5.4) makes one
route per path × method:

* paths sorted, each joined to the spec's ``basePath``; within a path the
  methods in the order DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT;
* the route is named ``"<METHOD> <path>"``; its condition is that method and
  ``pathRegex`` = the path with regex metacharacters escaped (Go's
  ``regexp.QuoteMeta``) and every ``{param}`` replaced by ``[^/]*``;
* one exact-status ``responseClasses`` entry per documented response code,
  ``isFailure`` when the code is 500 or more;
* the vendor extensions ``x-linkerd-retryable`` → ``isRetryable`` and
  ``x-linkerd-timeout`` → ``timeout``.

The result is the API-shaped dict the CLI prints as YAML (``apiVersion``
``linkerd.io/v1alpha2``, ``metadata.name`` the Service's FQDN,
``metadata.namespace`` the Service's namespace), ready for ``mesh.apply``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import LabkitError
from labkit.sim.linkerd.policy import fqdn

METHODS = ("delete", "get", "head", "options", "patch", "post", "put")
_GO_META = set("\\.+*?()|[]{}^$")
_PARAM = re.compile(r"\\\{[^}]*\\\}")


class ProfileError(LabkitError, ValueError):
    """An OpenAPI spec or option `linkerd profile` refuses, with its wording."""


def quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta``: a backslash before each of ``\\.+*?()|[]{}^$``."""
    return "".join("\\" + ch if ch in _GO_META else ch for ch in text)


def path_to_regex(path: str) -> str:
    """``/authors/{id}.json`` → ``/authors/[^/]*\\.json``, as ``PathToRegex`` does."""
    return _PARAM.sub("[^/]*", quote_meta(path))


def _join(base: str, rel: str) -> str:
    """Go's ``path.Join(basePath, path)``: cleaned, one slash between."""
    import posixpath

    if not base:
        joined = rel
    else:
        joined = posixpath.join(base, rel.lstrip("/")) if rel else base
    if not joined:
        return ""
    cleaned = posixpath.normpath(joined)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def load_spec(open_api: Any) -> dict:
    """A spec given as a dict, YAML/JSON text, or a path (relative: under ``manifests/`` first, then here)."""
    if isinstance(open_api, dict):
        return open_api
    text = None
    if isinstance(open_api, Path) or (isinstance(open_api, str) and "\n" not in open_api and not open_api.lstrip().startswith("{")):
        from labkit.manifests import MANIFESTS

        path = Path(open_api).expanduser()
        candidates = [path] if path.is_absolute() else [MANIFESTS / path, Path.cwd() / path]
        for candidate in candidates:
            if candidate.is_file():
                text = candidate.read_text(encoding="utf-8")
                break
        else:
            raise ProfileError(f"Error reading file: open {open_api}: no such file or directory")
    else:
        text = str(open_api)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"Error parsing yaml: {exc}") from None
    if not isinstance(doc, dict):
        raise ProfileError("Error parsing OpenAPI spec: the document is not an object")
    json.dumps(doc, default=str)  # the CLI converts YAML to JSON first; anything unrepresentable fails here
    return doc


def _route(path: str, method: str, operation: dict | None) -> dict:
    op = operation if isinstance(operation, dict) else {}
    route: dict[str, Any] = {"condition": {"method": method.upper(), "pathRegex": path_to_regex(path)}}
    retryable = op.get("x-linkerd-retryable")
    if retryable is True:
        route["isRetryable"] = True
    route["name"] = f"{method.upper()} {path}"
    statuses = sorted(int(code) for code in (op.get("responses") or {}) if str(code).isdigit())
    if statuses:
        route["responseClasses"] = [{"condition": {"status": {"max": s, "min": s}}, "isFailure": s >= 500}
                                    for s in statuses]
    timeout = op.get("x-linkerd-timeout")
    if isinstance(timeout, str) and timeout:
        route["timeout"] = timeout
    return route


def from_openapi(spec: dict, service: str, namespace: str) -> dict:
    """The ServiceProfile ``linkerd profile --open-api`` prints for ``spec``."""
    paths = spec.get("paths") or {}
    if not isinstance(paths, dict):
        raise ProfileError("Error parsing OpenAPI spec: paths must be an object")
    base = str(spec.get("basePath") or "")
    routes = []
    for rel in sorted(paths):
        item = paths[rel] or {}
        if not isinstance(item, dict):
            continue
        full = _join(base, str(rel))
        for method in METHODS:
            if method in item:
                routes.append(_route(full, method, item[method]))
    return {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"creationTimestamp": None, "name": fqdn(service, namespace), "namespace": namespace},
        "spec": {"routes": routes},
    }


def template(service: str, namespace: str) -> dict:
    """``linkerd profile --template``: the CLI's example profile (its comments are lost in a dict).

    One example route, ``/authors/{id}``, matching ``POST`` on ``/authors/\\d+``,
    with a 5xx response class marked as failures; the template's
    ``isRetryable``, ``timeout`` and ``retryBudget`` lines are commented out,
    so they are absent here.
    """
    return {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": fqdn(service, namespace), "namespace": namespace},
        "spec": {"routes": [{
            "name": "/authors/{id}",
            "condition": {"pathRegex": "/authors/\\d+", "method": "POST"},
            "responseClasses": [{"condition": {"status": {"min": 500, "max": 599}}, "isFailure": True}],
        }]},
    }


def generate(mesh, service: str, namespace: str | None = None, *, open_api=None, template: bool = False) -> dict:
    """``linkerd profile [--template | --open-api FILE] -n NAMESPACE SERVICE`` → the ServiceProfile dict."""
    ns = namespace or "default"
    if not service or "/" in service:
        raise ProfileError(f"invalid service name {service!r}: give the Service's name, e.g. 'webapp'")
    if bool(template) == (open_api is not None):
        raise ProfileError("Exactly one of --template, --open-api, or --proto must be specified")
    if mesh is not None and hasattr(mesh, "cluster"):
        src = "--template" if template else (
            f"--open-api {open_api}" if isinstance(open_api, (str, Path)) and "\n" not in str(open_api) else "--open-api -")
        mesh.cluster.last_command = f"linkerd profile -n {ns} {src} {service}"
    if template:
        return globals()["template"](service, ns)
    return from_openapi(load_spec(open_api), service, ns)
