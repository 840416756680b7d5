"""Linkerd 2.20's validating admission webhooks: ``linkerd-sp-validator`` and ``linkerd-policy-validator``.

``linkerd install`` registers two ValidatingWebhookConfigurations whose
backends run in the ``linkerd-destination`` pod. The API server calls them
after the object passed its own validation (the CRD schema), and shows a
refusal as ``admission webhook "<name>" denied the request: <reason>``.
Both have ``failurePolicy: Ignore``: while the destination pods are not
ready, nothing is checked — exactly as on a cluster, where an invalid
ServiceProfile applied right after ``linkerd install`` goes through.

* **sp-validator** (``pkg/profiles.Validate``): strict decoding into the Go
  ServiceProfile (which also reaches the match conditions the CRD schema
  leaves open), route names, timeouts (``time.ParseDuration``), that a
  request or response match sets a field, status ranges, the retry budget.
* **policy-validator** (``policy-controller/runtime/src/admission.rs``):
  a Server's ``accessPolicy``; an AuthorizationPolicy's target and
  authentication refs; HTTPRoute/GRPCRoute matches (absolute paths, regexes),
  timeouts, and — for the Gateway API kinds — a Service ``backendRef``
  without a port.

Each backend is ``check(obj) -> reason | None``; the API server's generic
validating admission (``APIServer.validating_admission``) decides whether it
is called.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable

from labkit.k8s import go_json_kind

NS = "linkerd"
SP_VALIDATOR = "linkerd-sp-validator"
POLICY_VALIDATOR = "linkerd-policy-validator"

# -- Go helpers ----------------------------------------------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_error(text: str) -> str | None:
    """Go's ``time.ParseDuration`` error for ``text`` (None if it parses), e.g. ``time: invalid duration "soon"``."""
    quoted = json.dumps(text, ensure_ascii=False)
    rest = text
    if rest[:1] in "+-":
        rest = rest[1:]
    if rest == "0":
        return None
    if not rest:
        return f"time: invalid duration {quoted}"
    while rest:
        m = re.match(r"(\d*)(\.\d*)?", rest)
        if not m or (m.group(1) == "" and (m.group(2) or "") in ("", ".")):
            return f"time: invalid duration {quoted}"
        rest = rest[m.end():]
        u = re.match(r"[^\d.]*", rest)
        unit = u.group(0) if u else ""
        if not unit:
            return f"time: missing unit in duration {quoted}"
        if unit not in _UNITS:
            return f"time: unknown unit {json.dumps(unit, ensure_ascii=False)} in duration {quoted}"
        rest = rest[len(unit):]
    return None


def _unknown_field(value: Any, known: set[str]) -> str | None:
    for key in value:
        if key not in known:
            return key
    return None


# -- sp-validator -------------------------------------------------------------------------------------------

_REQUEST_MATCH = {"all", "not", "any", "pathRegex", "method"}
_RESPONSE_MATCH = {"all", "not", "any", "status"}


class _Invalid(Exception):
    pass


def _strict(value: Any, known: set[str], struct: str, path: str) -> None:
    """``yaml.UnmarshalStrict`` into a Go struct: an unknown field or a non-object is a decoding error."""
    if not isinstance(value, dict):
        raise _Invalid(f"failed to validate ServiceProfile: error unmarshaling JSON: while decoding JSON: json: cannot "
                       f"unmarshal {go_json_kind(value)} into Go struct field {struct}.{path} of type v1alpha2.{struct}")
    unknown = _unknown_field(value, known)
    if unknown is not None:
        raise _Invalid(f"failed to validate ServiceProfile: error unmarshaling JSON: while decoding JSON: json: unknown "
                       f'field "{unknown}"')


def _all_any(match: dict, path: str, check: Callable[[Any, str], None]) -> bool:
    """A match's ``all``/``any`` lists, each condition checked by ``check``; True when it has either."""
    kinds = False
    for key in ("all", "any"):
        if key in match:
            kinds = True
            for child in match[key] or []:
                if child is None:
                    raise _Invalid(f'null condition "{key}"')
                check(child, f"{path}.{key}")
    return kinds


def _request_match(match: Any, path: str) -> None:
    _strict(match, _REQUEST_MATCH, "RequestMatch", path)
    kinds = _all_any(match, path, _request_match)
    if match.get("method"):
        kinds = True
    if match.get("not") is not None:
        kinds = True
        _request_match(match["not"], f"{path}.not")
    if match.get("pathRegex"):
        kinds = True
    if not kinds:
        raise _Invalid("A request match must have a field set")


def _response_match(match: Any, path: str) -> None:
    _strict(match, _RESPONSE_MATCH, "ResponseMatch", path)
    kinds = _all_any(match, path, _response_match)
    status = match.get("status")
    if status is not None:
        low, high = status.get("min") or 0, status.get("max") or 0
        if low and not 100 <= low <= 599:
            raise _Invalid("Range minimum must be between 100 and 599, inclusive")
        if high and not 100 <= high <= 599:
            raise _Invalid("Range maximum must be between 100 and 599, inclusive")
        if low and high and high < low:
            raise _Invalid("Range maximum cannot be smaller than minimum")
        kinds = True
    if match.get("not") is not None:
        kinds = True
        _response_match(match["not"], f"{path}.not")
    if not kinds:
        raise _Invalid("A response match must have a field set")


def _condition_problem(check: Callable[[Any, str], None], condition: Any, path: str) -> str | None:
    """What ``check`` finds wrong with a match condition, or None. A decoding error is not the condition's
    problem but the whole profile's (Linkerd reports it alone), so it propagates."""
    try:
        check(condition, path)
    except _Invalid as exc:
        if str(exc).startswith("failed to validate"):
            raise
        return str(exc)
    return None


def sp_validator(obj: dict) -> str | None:
    """``profiles.Validate``: the first problem, worded as Linkerd words it, or None."""
    name = (obj.get("metadata") or {}).get("name", "")
    spec = obj.get("spec") or {}
    try:
        for route in spec.get("routes") or []:
            if route is None:
                return f"ServiceProfile {json.dumps(name)} has a null route"
            if not route.get("name"):
                return f"ServiceProfile {json.dumps(name)} has a route with no name"
            if route.get("timeout"):
                problem = go_duration_error(str(route["timeout"]))
                if problem:
                    return f"ServiceProfile {json.dumps(name)} has a route with an invalid timeout: {problem}"
            if route.get("condition") is None:
                return f"ServiceProfile {json.dumps(name)} has a route with no condition"
            problem = _condition_problem(_request_match, route["condition"], "spec.routes.condition")
            if problem:
                return f"ServiceProfile {json.dumps(name)} has a route with an invalid condition: {problem}"
            for rc in route.get("responseClasses") or []:
                if rc is None:
                    return f"ServiceProfile {json.dumps(name)} has a null response class"
                if rc.get("condition") is None:
                    return f"ServiceProfile {json.dumps(name)} has a response class with no condition"
                problem = _condition_problem(_response_match, rc["condition"], "spec.routes.responseClasses.condition")
                if problem:
                    return f"ServiceProfile {json.dumps(name)} has a response class with an invalid condition: {problem}"
    except _Invalid as exc:
        return str(exc)
    budget = spec.get("retryBudget")
    if budget is not None:
        ratio = budget.get("retryRatio", 0)
        if isinstance(ratio, (int, float)) and ratio < 0:
            return f"ServiceProfile {json.dumps(name)} RetryBudget RetryRatio must be non-negative: {ratio:f}"
        if not budget.get("ttl"):
            return f"ServiceProfile {json.dumps(name)} RetryBudget missing TTL field"
        problem = go_duration_error(str(budget["ttl"]))
        if problem:
            return f"ServiceProfile {json.dumps(name)} RetryBudget: {problem}"
    return None


# -- policy-validator ------------------------------------------------------------------------------------------

ACCESS_POLICIES = ("all-authenticated", "all-unauthenticated", "cluster-authenticated", "cluster-unauthenticated",
                   "deny", "audit")


def _rust_debug(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _regex_error(pattern: str) -> str | None:
    """Whether Rust's ``regex`` crate (RE2-like syntax) refuses ``pattern``; its error's first line if so."""
    import re2

    opts = re2.Options()
    opts.log_errors = False
    try:
        re2.compile(pattern, options=opts)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return f"regex parse error:\n    {pattern}\nerror: {detail}"
    return None


def _http_match(match: dict) -> str | None:
    path = match.get("path")
    if path is not None:
        value = path.get("value", "/")
        kind = path.get("type", "PathPrefix")
        if kind in ("Exact", "PathPrefix") and not str(value).startswith("/"):
            return (f"HttpPathMatch paths must be absolute (begin with `/`); {_rust_debug(str(value))} is not an "
                    "absolute path")
        if kind == "RegularExpression":
            problem = _regex_error(str(value))
            if problem:
                return problem
    for header in match.get("headers") or []:
        if header.get("type") == "RegularExpression":
            problem = _regex_error(str(header.get("value", "")))
            if problem:
                return problem
    for query in match.get("queryParams") or []:
        if query.get("type") == "RegularExpression":
            problem = _regex_error(str(query.get("value", "")))
            if problem:
                return problem
    return None


def _egress_parent_without_port(spec: dict) -> str | None:
    for parent in spec.get("parentRefs") or []:
        if parent.get("kind") == "EgressNetwork" and parent.get("group") == "policy.linkerd.io" and parent.get("port") is None:
            return "cannot target an EgressNetwork without specifying a port"
    return None


def _seconds(text: str) -> float | None:
    total, found = 0.0, False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text):
        total += float(number) * {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
        found = True
    return total if found else None


def _linkerd_httproute(obj: dict) -> str | None:
    spec = obj.get("spec") or {}
    problem = _egress_parent_without_port(spec)
    if problem:
        return problem
    for rule in spec.get("rules") or []:
        for match in rule.get("matches") or []:
            problem = _http_match(match)
            if problem:
                return problem
        timeouts = rule.get("timeouts") or {}
        request, backend = timeouts.get("request"), timeouts.get("backendRequest")
        if request and backend:
            req_s, back_s = _seconds(str(request)), _seconds(str(backend))
            if req_s is not None and back_s is not None and back_s > req_s:
                return f"backendRequest timeout ({backend}) must not be greater than request timeout ({request})"
    return None


def _service_backend_without_port(ref: dict) -> bool:
    return ref.get("group") in (None, "", "core") and ref.get("kind") in (None, "Service") and not ref.get("port")


def _gateway_route(obj: dict, http: bool) -> str | None:
    spec = obj.get("spec") or {}
    problem = _egress_parent_without_port(spec)
    if problem:
        return problem
    for rule in spec.get("rules") or []:
        for match in rule.get("matches") or []:
            if http:
                problem = _http_match(match)
            elif (match.get("method") or {}).get("type") == "RegularExpression":
                problem = 'unsupported GRPCRoute method match type: Some(RegularExpression)'
            if problem:
                return problem
        for ref in rule.get("backendRefs") or []:
            if _service_backend_without_port(ref):
                return "invalid backendRef"
    return None


def _server(obj: dict) -> str | None:
    policy = (obj.get("spec") or {}).get("accessPolicy")
    if policy is not None and policy not in ACCESS_POLICIES:
        return f"Invalid 'accessPolicy' field: invalid mode: {_rust_debug(str(policy))}"
    return None


def _authorization_policy(obj: dict) -> str | None:
    spec = obj.get("spec") or {}
    target = spec.get("targetRef") or {}
    namespace = (obj.get("metadata") or {}).get("namespace", "")
    if target.get("kind", "").lower() == "namespace" and target.get("group", "") in ("", "core") \
            and target.get("name") != namespace:
        return f"cannot target another namespace: {target.get('name')}"
    refs = spec.get("requiredAuthenticationRefs") or []

    def count(kind: str, group: str) -> int:
        return sum(1 for r in refs if (r.get("kind") or "").lower() == kind.lower() and (r.get("group") or "") == group)

    mtls = count("MeshTLSAuthentication", "policy.linkerd.io")
    accounts = count("ServiceAccount", "")
    networks = count("NetworkAuthentication", "policy.linkerd.io")
    if mtls > 1:
        return "only a single MeshTLSAuthentication may be set"
    if accounts > 1:
        return "only a single ServiceAccount may be set"
    if mtls + accounts > 1:
        return "a MeshTLSAuthentication and ServiceAccount may not be set together"
    if networks > 1:
        return "only a single NetworkAuthentication may be set"
    if mtls + accounts + networks < len(refs):
        others = [f"{r.get('kind')}.{r.get('group')}" if r.get("group") else str(r.get("kind")) for r in refs
                  if (r.get("kind") or "").lower() not in ("meshtlsauthentication", "networkauthentication", "serviceaccount")]
        return f"unsupported authentication kind(s): {', '.join(others)}"
    return None


#: (group, kind) → the policy-validator's check of that kind.
POLICY_CHECKS: dict[tuple[str, str], Callable[[dict], str | None]] = {
    ("policy.linkerd.io", "Server"): _server,
    ("policy.linkerd.io", "AuthorizationPolicy"): _authorization_policy,
    ("policy.linkerd.io", "HTTPRoute"): _linkerd_httproute,
    ("gateway.networking.k8s.io", "HTTPRoute"): lambda o: _gateway_route(o, True),
    ("gateway.networking.k8s.io", "GRPCRoute"): lambda o: _gateway_route(o, False),
}


def policy_validator(obj: dict) -> str | None:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    check = POLICY_CHECKS.get((group, obj.get("kind", "")))
    return check(obj) if check else None


#: The Service each backend answers behind → the backend.
BACKENDS: dict[tuple[str, str], Callable[[dict], str | None]] = {
    (NS, SP_VALIDATOR): sp_validator,
    (NS, POLICY_VALIDATOR): policy_validator,
}
