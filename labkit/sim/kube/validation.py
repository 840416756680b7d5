"""kube-apiserver's handling of a write: decode with field validation, default, validate, admit — or refuse.

Every object written through the embedded API server (``kubectl apply``,
the served REST API, a ``kubectl patch``) goes through :func:`review`, in
the API server's order:

1. **decode** the body. A built-in kind is decoded against Kubernetes 1.32's
   OpenAPI (:mod:`~labkit.sim.kube.builtin_schemas`): a value of the wrong
   type is a 400 (``Deployment in version "v1" cannot be handled as a
   Deployment: json: cannot unmarshal …``). A custom resource is pruned by
   its CRD's structural schema (:mod:`~labkit.sim.kube.schema`). Fields the
   schema does not know and keys a mapping repeats are then handled per
   **field validation**, as kubectl asks for it: ``Strict`` (kubectl's
   default since 1.27) refuses them with a 400 ``strict decoding error:
   unknown field "spec.replica"``; ``Warn`` (the API server's default for
   other clients) drops them with one warning each; ``Ignore`` drops them
   silently;
2. **default** a custom resource from its schema (built-ins are defaulted by
   :mod:`~labkit.sim.kube.defaults` when stored);
3. **validate**: ObjectMeta and the built-in kinds' Go checks
   (:mod:`~labkit.sim.kube.apiserver_rules`); a custom resource's schema
   (types, required, enums, patterns, bounds…), list-type invariants and
   CEL rules — all errors together, as one 422 ``Invalid`` whose causes
   kubectl prints (``The Deployment "web" is invalid: spec.replicas:
   Invalid value: -1: …``);
4. **admit**: the validating admission webhooks registered in the cluster
   (Linkerd's sp-validator and policy-validator) may deny it.

The refusals are :class:`StatusError` s (an :class:`~labkit.errors.ApplyError`)
carrying the ``metav1.Status`` the API server answers with, so the served
API returns it as is and ``mesh.apply`` prints what kubectl prints for it
(:func:`labkit.k8s.kubectl_error`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labkit.errors import ApplyError
from labkit.k8s import clone, invalid_message, kubectl_error
from labkit.k8s import field_validation as k8s_field_validation
from labkit.sim.kube import apiserver_rules, builtin_schemas, schema as structural
from labkit.sim.kube import fielderrors as fe
from labkit.sim.kube.fielderrors import FieldError

NOT_CHECKED = ("some validation rules were not checked because the object was invalid; correct the existing errors "
               "to complete validation")


def field_validation(value: Any) -> str:
    """``validate=`` (kubectl's ``--validate``) or a request's ``fieldValidation`` → ``Strict``/``Warn``/``Ignore``."""
    if value in ("Strict", "Warn", "Ignore"):
        return value
    return k8s_field_validation(value)


class StatusError(ApplyError):
    """The API server refused a write: ``code``, ``reason`` and ``details`` of its ``metav1.Status``."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict:
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
               "reason": self.reason, "code": self.code}
        if not self.reason:
            del out["reason"]
        if self.details:
            out["details"] = self.details
        return out

    def kubectl(self, verb: str = "creating", source: str = "") -> str:
        """What ``kubectl apply -f <source>`` prints for this refusal."""
        return kubectl_error(self.status(), verb, source)

    @property
    def causes(self) -> list[tuple[str, str]]:
        """``[(field, message)]`` of a 422 (empty for other refusals)."""
        return [(c["field"], c["message"]) for c in self.details.get("causes") or []]


def bad_request(kind: str, version: str, detail: str) -> StatusError:
    """A body the decoder refuses (wrong type, or strict field validation)."""
    return StatusError(400, "BadRequest", f'{kind} in version "{version}" cannot be handled as a {kind}: {detail}')


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> StatusError:
    """``apierrors.NewInvalid``: 422 with one cause per field error."""
    causes = [e.cause() for e in errors]
    return StatusError(422, "Invalid", invalid_message(kind, group, name, [str(e) for e in errors]),
                       {"name": name, "group": group, "kind": kind, "causes": causes})


def denied(webhook: str, reason: str) -> StatusError:
    """A validating webhook's denial (code 400, no reason, as kube-apiserver wraps it)."""
    return StatusError(400, "", f'admission webhook "{webhook}" denied the request: {reason}')


@dataclass
class Review:
    """An admitted write: the object as it will be stored (pruned, defaulted), and the warnings for the client."""

    obj: dict
    warnings: list[str] = field(default_factory=list)


def crd_schema(api, rtype, version: str) -> dict | None:
    """The ``openAPIV3Schema`` of ``version`` in the CRD stored for ``rtype`` (None: no schema)."""
    crd_type = api.discovery.by_key("apiextensions.k8s.io", "CustomResourceDefinition")
    crd = api.get(crd_type, None, rtype.crd) if crd_type is not None else None
    for entry in ((crd or {}).get("spec") or {}).get("versions") or []:
        if entry.get("name") == version:
            return (entry.get("schema") or {}).get("openAPIV3Schema")
    return None


def deprecation(api, rtype, version: str) -> str | None:
    """The warning kube-apiserver adds to every request for a CRD version marked ``deprecated: true``.

    It is the version's ``deprecationWarning``, or ``<group>/<version> <Kind> is deprecated`` when the CRD
    gives none (Linkerd's older policy API versions carry theirs, e.g. ``policy.linkerd.io/v1beta1 Server is
    deprecated; use policy.linkerd.io/v1beta3 Server``). Built-in kinds have none here: the modelled 1.32 API
    server serves no deprecated built-in version.
    """
    if rtype.crd is None:
        return None
    crd_type = api.discovery.by_key("apiextensions.k8s.io", "CustomResourceDefinition")
    crd = api.get(crd_type, None, rtype.crd) if crd_type is not None else None
    for entry in ((crd or {}).get("spec") or {}).get("versions") or []:
        if entry.get("name") == version and entry.get("deprecated"):
            return entry.get("deprecationWarning") or f"{rtype.group}/{version} {rtype.kind} is deprecated"
    return None


def review(api, rtype, obj: dict, *, validation: str = "Strict", duplicates: tuple[str, ...] | list[str] = (),
           old: dict | None = None, check_image=None, operation: str = "CREATE") -> Review:
    """Decode, default, validate and admit ``obj`` as kube-apiserver does; raise :class:`StatusError` if refused."""
    mode = field_validation(validation)
    obj = clone(obj)
    api_version = str(obj.get("apiVersion") or rtype.api_version())
    version = api_version.rpartition("/")[2]
    name = (obj.get("metadata") or {}).get("name") or ""
    drop = mode != "Strict"
    problems: list[str]
    schema = None
    if rtype.crd is None:
        kind_schema = builtin_schemas.kind_schema(api_version, rtype.kind)
        problems = []
        if kind_schema is not None:
            decoded = builtin_schemas.decode(obj, kind_schema, duplicates=tuple(duplicates), drop=drop)
            if decoded.error:
                raise bad_request(rtype.kind, version, decoded.error)
            problems = decoded.strict
    else:
        schema = crd_schema(api, rtype, version)
        problems = [f'duplicate field "{d}"' for d in duplicates]
        problems += [f'unknown field "{p}"' for p in structural.prune(obj, schema, drop=drop)]
    warnings: list[str] = []
    if problems:
        if mode == "Strict":
            raise bad_request(rtype.kind, version, "strict decoding error: " + ", ".join(problems))
        if mode == "Warn":
            warnings = problems
    errors = apiserver_rules.validate(obj, rtype.group, rtype.kind, namespaced=rtype.namespaced,
                                      check_image=check_image, old=old)
    if schema is not None:
        structural.default(obj, schema)
        errors += custom_resource_errors(obj, schema, old)
    if errors:
        raise invalid(rtype.kind, rtype.group, name, errors)
    denial = api.validating_admission(rtype, obj, operation)
    if denial is not None:
        raise denied(*denial)
    return Review(obj, warnings)


def custom_resource_errors(obj: dict, schema: dict, old: dict | None = None) -> list[FieldError]:
    """A custom resource's schema errors, list-type invariants, then (only if nothing blocking came first) CEL."""
    result = structural.validate(obj, schema, old=old if old is not None else structural._MISSING)
    errors = result.errors + structural.list_errors(obj, schema)
    if result.cel or structural.has_rules(schema):
        if any(e.reason in ("FieldValueNotSupported", "FieldValueTypeInvalid") for e in errors):
            errors.append(fe.invalid("<nil>", None, NOT_CHECKED))
        else:
            errors += cel_errors(result.cel)
    return errors


CEL_MODULE = "labkit.sim.kube.cel"


def cel_module():
    """``labkit.sim.kube.cel`` (the CEL evaluator) if it exists, else None: then rules are not checked.

    Only the module's absence is tolerated; an error inside it propagates.
    """
    import importlib
    import importlib.util
    import sys

    if CEL_MODULE in sys.modules:
        return sys.modules[CEL_MODULE]
    if importlib.util.find_spec(CEL_MODULE) is None:
        return None
    return importlib.import_module(CEL_MODULE)


def cel_errors(nodes: list) -> list[FieldError]:
    """Each node's ``x-kubernetes-validations`` through ``cel.check_rules(rules, value, path, [old=], schema=)``."""
    cel = cel_module()
    if cel is None:
        return []
    out: list[FieldError] = []
    for node in nodes:
        kwargs = {} if node.old is structural._MISSING else {"old": node.old}
        for path, message in cel.check_rules(node.rules, node.value, node.path, schema=node.schema, **kwargs):
            out.append(fe.from_pair(path, message))
    return out
