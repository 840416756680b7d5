"""Validation of the objects the labs apply, for the fields the model relies on.

The real API server (and the CRDs' OpenAPI schemas, and Linkerd's and
Flagger's validating webhooks) reject malformed objects before anything is
stored. The embedded cluster checks the same fields so a typo in a manifest
fails at ``apply`` with the field named, instead of surfacing later as a
silently wrong simulation. Each checker returns ``[(field path, message)]``;
an empty list means valid.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from labkit.durations import DurationError, seconds
from labkit.k8s import ANNOTATIONS_LIMIT, annotations_size
from labkit.sim.kube.objects import DNS1035_LABEL, DNS1123_LABEL, DNS1123_SUBDOMAIN, parse_quantity_weight, selector_matches

Errors = list[tuple[str, str]]

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_PERCENT = re.compile(r"^\d+%$")
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}


def _required(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _label_map(errors: Errors, path: str, labels: Any) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        errors.append((path, "must be a map of string keys to string values"))
        return
    for key, value in labels.items():
        name = str(key).rsplit("/", 1)[-1]
        if not _LABEL_KEY_NAME.match(name) or len(name) > 63:
            errors.append((f"{path}", f"Invalid value: {key!r}: name part must consist of alphanumeric characters, '-', '_' or '.'"))
        if not isinstance(value, str):
            errors.append((f"{path}.{key}", f"Invalid value: {value!r}: label values must be strings (quote them in YAML)"))
        elif len(value) > 63 or not _LABEL_VALUE.match(value):
            errors.append((f"{path}.{key}", f"Invalid value: {value!r}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'"))


def _annotation_map(errors: Errors, path: str, annotations: Any) -> None:
    if annotations is None:
        return
    if not isinstance(annotations, dict):
        errors.append((path, "must be a map of string keys to string values"))
        return
    for key, value in annotations.items():
        if not isinstance(value, str):
            errors.append((f"{path}.{key}", f"Invalid value: {value!r}: annotation values must be strings (quote them in YAML)"))
    if annotations_size(annotations) > ANNOTATIONS_LIMIT:
        errors.append((path, f"Too long: must have at most {ANNOTATIONS_LIMIT} bytes"))


def validate_metadata(obj: dict, *, name_rule: str = "subdomain") -> Errors:
    errors: Errors = []
    md = obj.get("metadata")
    if not isinstance(md, dict):
        return [("metadata", "Required value")]
    name = md.get("name")
    if _required(name):
        if not md.get("generateName"):
            errors.append(("metadata.name", "Required value: name or generateName is required"))
    elif not isinstance(name, str):
        errors.append(("metadata.name", f"Invalid value: {name!r}: must be a string"))
    else:
        rule = {"subdomain": DNS1123_SUBDOMAIN, "label": DNS1123_LABEL, "dns1035": DNS1035_LABEL}[name_rule]
        limit = 253 if name_rule == "subdomain" else 63
        if len(name) > limit:  # the API server's message for a name too long, whatever its characters
            errors.append(("metadata.name", f"Invalid value: {name!r}: must be no more than {limit} characters"))
        elif not rule.match(name):
            what = {
                "subdomain": "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                "label": "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                "dns1035": "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            }[name_rule]
            errors.append(("metadata.name", f"Invalid value: {name!r}: {what}"))
    _label_map(errors, "metadata.labels", md.get("labels"))
    _annotation_map(errors, "metadata.annotations", md.get("annotations"))
    return errors


# -- pods and templates ---------------------------------------------------------------------

def _port_number(value: Any) -> bool:
    return _is_int(value) and 1 <= value <= 65535


def _probe(errors: Errors, path: str, probe: Any, ports: dict[str, int]) -> None:
    if probe is None:
        return
    if not isinstance(probe, dict):
        errors.append((path, "must be an object"))
        return
    handlers = [k for k in ("httpGet", "tcpSocket", "exec", "grpc") if k in probe]
    if len(handlers) != 1:
        errors.append((path, "Required value: must specify exactly one handler: httpGet, tcpSocket, exec or grpc"))
    for key in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
        if key in probe and (not _is_int(probe[key]) or probe[key] < 0):
            errors.append((f"{path}.{key}", f"Invalid value: {probe[key]!r}: must be a non-negative integer"))
    for key in ("httpGet", "tcpSocket"):
        if key in probe:
            port = (probe[key] or {}).get("port")
            if isinstance(port, str):
                if port not in ports and not port.isdigit():
                    errors.append((f"{path}.{key}.port", f"Invalid value: {port!r}: no container port named {port!r}"))
            elif not _port_number(port):
                errors.append((f"{path}.{key}.port", f"Invalid value: {port!r}: must be between 1 and 65535, inclusive"))
    if "exec" in probe and _required((probe["exec"] or {}).get("command")):
        errors.append((f"{path}.exec.command", "Required value"))


def _container(errors: Errors, path: str, c: Any, check_image: Callable[[str], None] | None, names: set) -> None:
    if not isinstance(c, dict):
        errors.append((path, "must be an object"))
        return
    name = c.get("name")
    if _required(name):
        errors.append((f"{path}.name", "Required value"))
    elif not isinstance(name, str) or not DNS1123_LABEL.match(name):
        errors.append((f"{path}.name", f"Invalid value: {name!r}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"))
    elif name in names:
        errors.append((f"{path}.name", f"Duplicate value: {name!r}"))
    else:
        names.add(name)
    image = c.get("image")
    if _required(image):
        errors.append((f"{path}.image", "Required value"))
    elif not isinstance(image, str):
        errors.append((f"{path}.image", f"Invalid value: {image!r}: must be a string"))
    elif check_image is not None:
        try:
            check_image(image)
        except ValueError as exc:
            errors.append((f"{path}.image", f"Unsupported value: {exc}"))
    for key in ("command", "args"):
        value = c.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            errors.append((f"{path}.{key}", f"Invalid value: {value!r}: must be a list of strings (quote numbers)"))
    ports: dict[str, int] = {}
    for i, port in enumerate(c.get("ports") or []):
        p = f"{path}.ports[{i}]"
        if not isinstance(port, dict):
            errors.append((p, "must be an object"))
            continue
        if not _port_number(port.get("containerPort")):
            errors.append((f"{p}.containerPort", f"Invalid value: {port.get('containerPort')!r}: must be between 1 and 65535, inclusive"))
        if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
            errors.append((f"{p}.protocol", f"Unsupported value: {port.get('protocol')!r}: supported values: \"SCTP\", \"TCP\", \"UDP\""))
        if port.get("name"):
            if len(port["name"]) > 15 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", str(port["name"])):
                errors.append((f"{p}.name", f"Invalid value: {port['name']!r}: must be no more than 15 characters, lower case alphanumerics or '-'"))
            ports[port["name"]] = port.get("containerPort")
    for i, env in enumerate(c.get("env") or []):
        p = f"{path}.env[{i}]"
        if not isinstance(env, dict) or _required(env.get("name")):
            errors.append((f"{p}.name", "Required value"))
            continue
        if not _ENV_NAME.match(str(env["name"])):
            errors.append((f"{p}.name", f"Invalid value: {env['name']!r}: a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.'"))
        if "value" in env and env["value"] is not None and not isinstance(env["value"], str):
            errors.append((f"{p}.value", f"Invalid value: {env['value']!r}: env values must be strings (quote them in YAML)"))
    for key in ("readinessProbe", "livenessProbe", "startupProbe"):
        _probe(errors, f"{path}.{key}", c.get(key), ports)


def validate_pod_spec(spec: Any, path: str, check_image: Callable[[str], None] | None, *, restart_policies=("Always", "OnFailure", "Never")) -> Errors:
    errors: Errors = []
    if not isinstance(spec, dict):
        return [(path, "Required value")]
    containers = spec.get("containers")
    if _required(containers) or not isinstance(containers, list):
        errors.append((f"{path}.containers", "Required value"))
        containers = []
    names: set = set()
    for i, c in enumerate(spec.get("initContainers") or []):
        _container(errors, f"{path}.initContainers[{i}]", c, check_image, names)
    for i, c in enumerate(containers):
        _container(errors, f"{path}.containers[{i}]", c, check_image, names)
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in restart_policies:
        allowed = ", ".join(f'"{r}"' for r in restart_policies)
        errors.append((f"{path}.restartPolicy", f"Unsupported value: {rp!r}: supported values: {allowed}"))
    sa = spec.get("serviceAccountName")
    if sa is not None and (not isinstance(sa, str) or not DNS1123_SUBDOMAIN.match(sa)):
        errors.append((f"{path}.serviceAccountName", f"Invalid value: {sa!r}"))
    return errors


def _template(obj: dict, check_image, *, restart_policies=("Always",), selector_required=True, path="spec") -> Errors:
    errors: Errors = []
    spec = obj.get(path.split(".")[0]) if "." not in path else None
    if path == "spec":
        spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    tpl = spec.get("template")
    if not isinstance(tpl, dict):
        return [(f"{path}.template", "Required value")]
    tmeta = tpl.get("metadata") or {}
    _label_map(errors, f"{path}.template.metadata.labels", tmeta.get("labels"))
    _annotation_map(errors, f"{path}.template.metadata.annotations", tmeta.get("annotations"))
    errors += validate_pod_spec(tpl.get("spec"), f"{path}.template.spec", check_image, restart_policies=restart_policies)
    selector = spec.get("selector")
    if selector_required:
        if not isinstance(selector, dict) or _required(selector):
            errors.append((f"{path}.selector", "Required value"))
        elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
            errors.append((f"{path}.selector", "Invalid value: empty selector is invalid for deployment"))
        elif not selector_matches(selector, tmeta.get("labels") or {}):
            errors.append((f"{path}.template.metadata.labels", f"Invalid value: {tmeta.get('labels')!r}: `selector` does not match template `labels`"))
    return errors


def _replicas(errors: Errors, spec: dict, key: str = "replicas") -> None:
    if key in spec and spec[key] is not None and (not _is_int(spec[key]) or spec[key] < 0):
        errors.append((f"spec.{key}", f"Invalid value: {spec[key]!r}: must be greater than or equal to 0"))


def _int_or_percent(errors: Errors, path: str, value: Any) -> bool:
    if value is None:
        return True
    if _is_int(value) and value >= 0:
        return True
    if isinstance(value, str) and _PERCENT.match(value):
        return True
    errors.append((path, f"Invalid value: {value!r}: must be an integer or percentage (e.g. '5%')"))
    return False


# -- per-kind checkers ---------------------------------------------------------------------

def check_deployment(obj: dict, check_image) -> Errors:
    errors = _template(obj, check_image)
    spec = obj.get("spec") or {}
    _replicas(errors, spec)
    strategy = spec.get("strategy") or {}
    stype = strategy.get("type", "RollingUpdate")
    if stype not in ("RollingUpdate", "Recreate"):
        errors.append(("spec.strategy.type", f"Unsupported value: {stype!r}: supported values: \"Recreate\", \"RollingUpdate\""))
    ru = strategy.get("rollingUpdate")
    if stype == "Recreate" and ru:
        errors.append(("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'"))
    if isinstance(ru, dict):
        ok = _int_or_percent(errors, "spec.strategy.rollingUpdate.maxSurge", ru.get("maxSurge"))
        ok &= _int_or_percent(errors, "spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"))
        if ok and ru.get("maxSurge") in (0, "0%") and ru.get("maxUnavailable") in (0, "0%"):
            errors.append(("spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: 0: may not be 0 when `maxSurge` is 0"))
    for key in ("minReadySeconds", "progressDeadlineSeconds", "revisionHistoryLimit"):
        if key in spec and (not _is_int(spec[key]) or spec[key] < 0):
            errors.append((f"spec.{key}", f"Invalid value: {spec[key]!r}: must be greater than or equal to 0"))
    return errors


def check_replicaset(obj: dict, check_image) -> Errors:
    errors = _template(obj, check_image)
    _replicas(errors, obj.get("spec") or {})
    return errors


def check_job(obj: dict, check_image) -> Errors:
    return _template(obj, check_image, restart_policies=("OnFailure", "Never"), selector_required=False)


def check_pod(obj: dict, check_image) -> Errors:
    return validate_pod_spec(obj.get("spec"), "spec", check_image)


def check_service(obj: dict, check_image) -> Errors:
    errors: Errors = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    stype = spec.get("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errors.append(("spec.type", f"Unsupported value: {stype!r}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""))
    ports = spec.get("ports")
    if stype != "ExternalName" and (_required(ports) or not isinstance(ports, list)):
        errors.append(("spec.ports", "Required value"))
        ports = []
    seen_names: set = set()
    for i, port in enumerate(ports or []):
        p = f"spec.ports[{i}]"
        if not isinstance(port, dict):
            errors.append((p, "must be an object"))
            continue
        if not _port_number(port.get("port")):
            errors.append((f"{p}.port", f"Invalid value: {port.get('port')!r}: must be between 1 and 65535, inclusive"))
        target = port.get("targetPort")
        if target is not None and not (_port_number(target) or (isinstance(target, str) and re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", target))):
            errors.append((f"{p}.targetPort", f"Invalid value: {target!r}: must be a port number or a container port name"))
        if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
            errors.append((f"{p}.protocol", f"Unsupported value: {port.get('protocol')!r}: supported values: \"SCTP\", \"TCP\", \"UDP\""))
        name = port.get("name")
        if len(ports) > 1 and _required(name):
            errors.append((f"{p}.name", "Required value"))
        elif name:
            if name in seen_names:
                errors.append((f"{p}.name", f"Duplicate value: {name!r}"))
            seen_names.add(name)
    selector = spec.get("selector")
    if selector is not None:
        _label_map(errors, "spec.selector", selector)
    cip = spec.get("clusterIP")
    if cip not in (None, "", "None") and not re.match(r"^\d+\.\d+\.\d+\.\d+$", str(cip)):
        errors.append(("spec.clusterIP", f"Invalid value: {cip!r}: must be a valid IP address or \"None\""))
    return errors


def check_namespace(obj: dict, check_image) -> Errors:
    return []


def check_configmap(obj: dict, check_image) -> Errors:
    errors: Errors = []
    data = obj.get("data")
    if data is not None:
        if not isinstance(data, dict):
            errors.append(("data", "must be a map of string keys to string values"))
        else:
            for key, value in data.items():
                if not isinstance(value, str):
                    errors.append((f"data.{key}", f"Invalid value: {value!r}: ConfigMap values must be strings (quote them in YAML)"))
    return errors


def check_hpa(obj: dict, check_image) -> Errors:
    errors: Errors = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    ref = spec.get("scaleTargetRef")
    if not isinstance(ref, dict):
        errors.append(("spec.scaleTargetRef", "Required value"))
    else:
        for key in ("kind", "name"):
            if _required(ref.get(key)):
                errors.append((f"spec.scaleTargetRef.{key}", "Required value"))
    max_r = spec.get("maxReplicas")
    if not _is_int(max_r) or max_r < 1:
        errors.append(("spec.maxReplicas", f"Invalid value: {max_r!r}: must be greater than or equal to 1" if max_r is not None else "Required value"))
    min_r = spec.get("minReplicas")
    if min_r is not None:
        if not _is_int(min_r) or min_r < 1:
            errors.append(("spec.minReplicas", f"Invalid value: {min_r!r}: must be greater than or equal to 1"))
        elif _is_int(max_r) and min_r > max_r:
            errors.append(("spec.maxReplicas", f"Invalid value: {max_r}: must be greater than or equal to `minReplicas`"))
    version = obj.get("apiVersion", "")
    if version.endswith("/v2"):
        for i, metric in enumerate(spec.get("metrics") or []):
            mtype = (metric or {}).get("type")
            if mtype not in ("Resource", "Pods", "Object", "External", "ContainerResource"):
                errors.append((f"spec.metrics[{i}].type", f"Unsupported value: {mtype!r}: supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\""))
            elif mtype == "Resource":
                res = metric.get("resource") or {}
                if _required(res.get("name")):
                    errors.append((f"spec.metrics[{i}].resource.name", "Required value"))
                if not isinstance(res.get("target"), dict):
                    errors.append((f"spec.metrics[{i}].resource.target", "Required value"))
    return errors


# -- CRDs the labs use ------------------------------------------------------------------

def _duration(errors: Errors, path: str, value: Any) -> None:
    if value is None:
        return
    try:
        seconds(value, name=path)
    except DurationError:
        errors.append((path, f"Invalid value: {value!r}: not a valid duration (e.g. 250ms, 10s, 1m)"))


def _request_match(errors: Errors, path: str, cond: Any) -> None:
    if not isinstance(cond, dict) or not cond:
        errors.append((path, "Required value: a route needs a condition (method, pathRegex, all, any or not)"))
        return
    method = cond.get("method")
    if method is not None and str(method).upper() not in HTTP_METHODS:
        errors.append((f"{path}.method", f"Unsupported value: {method!r}"))
    regex = cond.get("pathRegex")
    if regex is not None:
        try:
            re.compile(str(regex))
        except re.error as exc:
            errors.append((f"{path}.pathRegex", f"Invalid value: {regex!r}: {exc}"))
    for key in ("all", "any"):
        for i, sub in enumerate(cond.get(key) or []):
            _request_match(errors, f"{path}.{key}[{i}]", sub)
    if "not" in cond:
        _request_match(errors, f"{path}.not", cond["not"])


def check_serviceprofile(obj: dict, check_image) -> Errors:
    """The CRD schema (spec.routes required) plus what Linkerd's sp-validator webhook checks."""
    errors: Errors = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    routes = spec.get("routes")
    if routes is None or not isinstance(routes, list):
        errors.append(("spec.routes", "Required value"))
        routes = []
    for i, route in enumerate(routes):
        p = f"spec.routes[{i}]"
        if not isinstance(route, dict):
            errors.append((p, "must be an object"))
            continue
        if _required(route.get("name")):
            errors.append((f"{p}.name", "Required value: ServiceProfile \"routes\" must have a name"))
        _request_match(errors, f"{p}.condition", route.get("condition"))
        _duration(errors, f"{p}.timeout", route.get("timeout"))
        if "isRetryable" in route and not isinstance(route["isRetryable"], bool):
            errors.append((f"{p}.isRetryable", f"Invalid value: {route['isRetryable']!r}: must be true or false"))
        for j, rc in enumerate(route.get("responseClasses") or []):
            cond = (rc or {}).get("condition")
            if not isinstance(cond, dict) or not cond:
                errors.append((f"{p}.responseClasses[{j}].condition", "Required value"))
            status = (cond or {}).get("status") or {}
            for bound in ("min", "max"):
                if bound in status and not (_is_int(status[bound]) and 100 <= status[bound] <= 599):
                    errors.append((f"{p}.responseClasses[{j}].condition.status.{bound}", f"Invalid value: {status[bound]!r}: must be an HTTP status between 100 and 599"))
    budget = spec.get("retryBudget")
    if budget is not None:
        if not isinstance(budget, dict):
            errors.append(("spec.retryBudget", "must be an object"))
        else:
            for key in ("retryRatio", "minRetriesPerSecond", "ttl"):
                if key not in budget:
                    errors.append((f"spec.retryBudget.{key}", "Required value"))
            if "retryRatio" in budget and (not isinstance(budget["retryRatio"], (int, float)) or budget["retryRatio"] < 0):
                errors.append(("spec.retryBudget.retryRatio", f"Invalid value: {budget['retryRatio']!r}: must be a non-negative number"))
            _duration(errors, "spec.retryBudget.ttl", budget.get("ttl"))
    for i, override in enumerate(spec.get("dstOverrides") or []):
        p = f"spec.dstOverrides[{i}]"
        if _required((override or {}).get("authority")):
            errors.append((f"{p}.authority", "Required value"))
        try:
            parse_quantity_weight((override or {}).get("weight"))
        except ValueError as exc:
            errors.append((f"{p}.weight", f"Invalid value: {exc}"))
    return errors


def check_trafficsplit(obj: dict, check_image) -> Errors:
    errors: Errors = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    if _required(spec.get("service")):
        errors.append(("spec.service", "Required value"))
    backends = spec.get("backends")
    if _required(backends) or not isinstance(backends, list):
        errors.append(("spec.backends", "Required value"))
        backends = []
    for i, backend in enumerate(backends):
        p = f"spec.backends[{i}]"
        if _required((backend or {}).get("service")):
            errors.append((f"{p}.service", "Required value"))
        if "weight" not in (backend or {}):
            errors.append((f"{p}.weight", "Required value"))
        else:
            try:
                if parse_quantity_weight(backend["weight"]) < 0:
                    raise ValueError("weights must not be negative")
            except ValueError as exc:
                errors.append((f"{p}.weight", f"Invalid value: {exc}"))
    return errors


def check_httproute(obj: dict, check_image) -> Errors:
    """HTTPRoute, both ``policy.linkerd.io`` and ``gateway.networking.k8s.io`` (same shape)."""
    errors: Errors = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    parents = spec.get("parentRefs")
    if _required(parents) or not isinstance(parents, list):
        errors.append(("spec.parentRefs", "Required value: the route must attach to a parent (a Service or Server)"))
        parents = []
    for i, ref in enumerate(parents):
        p = f"spec.parentRefs[{i}]"
        if _required((ref or {}).get("name")):
            errors.append((f"{p}.name", "Required value"))
        if "port" in (ref or {}) and not _port_number(ref["port"]):
            errors.append((f"{p}.port", f"Invalid value: {ref['port']!r}: must be between 1 and 65535, inclusive"))
    for i, rule in enumerate(spec.get("rules") or []):
        p = f"spec.rules[{i}]"
        if not isinstance(rule, dict):
            errors.append((p, "must be an object"))
            continue
        for j, match in enumerate(rule.get("matches") or []):
            path = (match or {}).get("path")
            if path is not None:
                ptype = path.get("type", "PathPrefix")
                if ptype not in ("Exact", "PathPrefix", "RegularExpression"):
                    errors.append((f"{p}.matches[{j}].path.type", f"Unsupported value: {ptype!r}: supported values: \"Exact\", \"PathPrefix\", \"RegularExpression\""))
                value = path.get("value", "/")
                if ptype != "RegularExpression" and not str(value).startswith("/"):
                    errors.append((f"{p}.matches[{j}].path.value", f"Invalid value: {value!r}: must be an absolute path"))
                if ptype == "RegularExpression":
                    try:
                        re.compile(str(value))
                    except re.error as exc:
                        errors.append((f"{p}.matches[{j}].path.value", f"Invalid value: {value!r}: {exc}"))
            method = (match or {}).get("method")
            if method is not None and method not in HTTP_METHODS:
                errors.append((f"{p}.matches[{j}].method", f"Unsupported value: {method!r}"))
        for j, ref in enumerate(rule.get("backendRefs") or []):
            bp = f"{p}.backendRefs[{j}]"
            if _required((ref or {}).get("name")):
                errors.append((f"{bp}.name", "Required value"))
            kind = (ref or {}).get("kind", "Service")
            if kind == "Service" and "port" not in (ref or {}):
                errors.append((f"{bp}.port", "Required value: must be specified when referencing a Service"))
            elif "port" in (ref or {}) and not _port_number(ref["port"]):
                errors.append((f"{bp}.port", f"Invalid value: {ref['port']!r}: must be between 1 and 65535, inclusive"))
            weight = (ref or {}).get("weight", 1)
            if not _is_int(weight) or not 0 <= weight <= 1000000:
                errors.append((f"{bp}.weight", f"Invalid value: {weight!r}: must be an integer between 0 and 1000000"))
        timeouts = rule.get("timeouts") or {}
        for key in ("request", "backendRequest"):
            _duration(errors, f"{p}.timeouts.{key}", timeouts.get(key))
    return errors


def check_canary(obj: dict, check_image) -> Errors:
    errors: Errors = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    ref = spec.get("targetRef")
    if not isinstance(ref, dict) or _required(ref.get("name")):
        errors.append(("spec.targetRef.name", "Required value"))
    elif ref.get("kind", "Deployment") not in ("Deployment", "DaemonSet"):
        errors.append(("spec.targetRef.kind", f"Unsupported value: {ref.get('kind')!r}: supported values: \"DaemonSet\", \"Deployment\""))
    service = spec.get("service")
    if not isinstance(service, dict) or not _port_number(service.get("port")):
        errors.append(("spec.service.port", "Required value: the canary's service port (1-65535)"))
    analysis = spec.get("analysis")
    if analysis is None and "canaryAnalysis" in spec:
        errors.append(("spec.canaryAnalysis", "Invalid value: flagger.app/v1beta1 calls this field `analysis` (canaryAnalysis was v1alpha3)"))
    elif not isinstance(analysis, dict):
        errors.append(("spec.analysis", "Required value"))
    else:
        _duration(errors, "spec.analysis.interval", analysis.get("interval"))
        if _required(analysis.get("interval")):
            errors.append(("spec.analysis.interval", "Required value"))
        for key in ("threshold", "stepWeight", "maxWeight", "iterations"):
            if key in analysis and (not _is_int(analysis[key]) or analysis[key] < 0):
                errors.append((f"spec.analysis.{key}", f"Invalid value: {analysis[key]!r}: must be a non-negative integer"))
        if "maxWeight" in analysis and _is_int(analysis["maxWeight"]) and analysis["maxWeight"] > 100:
            errors.append(("spec.analysis.maxWeight", f"Invalid value: {analysis['maxWeight']}: must be at most 100"))
        for i, metric in enumerate(analysis.get("metrics") or []):
            p = f"spec.analysis.metrics[{i}]"
            if _required((metric or {}).get("name")):
                errors.append((f"{p}.name", "Required value"))
            _duration(errors, f"{p}.interval", (metric or {}).get("interval"))
            builtin = (metric or {}).get("name") in ("request-success-rate", "request-duration")
            if not builtin and not (metric or {}).get("templateRef") and not (metric or {}).get("query"):
                errors.append((f"{p}.templateRef", "Required value: a custom metric needs a templateRef (or a query)"))
        for i, hook in enumerate(analysis.get("webhooks") or []):
            p = f"spec.analysis.webhooks[{i}]"
            if _required((hook or {}).get("name")):
                errors.append((f"{p}.name", "Required value"))
            if _required((hook or {}).get("url")):
                errors.append((f"{p}.url", "Required value"))
            htype = (hook or {}).get("type", "rollout")
            if htype not in ("confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase", "confirm-promotion", "post-rollout", "rollback", "event"):
                errors.append((f"{p}.type", f"Unsupported value: {htype!r}"))
            _duration(errors, f"{p}.timeout", (hook or {}).get("timeout"))
    return errors


def check_metrictemplate(obj: dict, check_image) -> Errors:
    errors: Errors = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    provider = spec.get("provider")
    if not isinstance(provider, dict) or _required(provider.get("type")):
        errors.append(("spec.provider.type", "Required value"))
    if _required(spec.get("query")):
        errors.append(("spec.query", "Required value"))
    return errors


#: (group, kind) → (checker, metadata.name rule)
CHECKERS: dict[tuple[str, str], tuple[Callable, str]] = {
    ("", "Namespace"): (check_namespace, "label"),
    ("", "Service"): (check_service, "dns1035"),
    ("", "ServiceAccount"): (lambda o, c: [], "subdomain"),
    ("", "ConfigMap"): (check_configmap, "subdomain"),
    ("", "Pod"): (check_pod, "subdomain"),
    ("apps", "Deployment"): (check_deployment, "subdomain"),
    ("apps", "ReplicaSet"): (check_replicaset, "subdomain"),
    ("batch", "Job"): (check_job, "subdomain"),
    ("autoscaling", "HorizontalPodAutoscaler"): (check_hpa, "subdomain"),
    ("linkerd.io", "ServiceProfile"): (check_serviceprofile, "subdomain"),
    ("split.smi-spec.io", "TrafficSplit"): (check_trafficsplit, "subdomain"),
    ("policy.linkerd.io", "HTTPRoute"): (check_httproute, "subdomain"),
    ("gateway.networking.k8s.io", "HTTPRoute"): (check_httproute, "subdomain"),
    ("flagger.app", "Canary"): (check_canary, "subdomain"),
    ("flagger.app", "MetricTemplate"): (check_metrictemplate, "subdomain"),
}


def validate(obj: dict, group: str, kind: str, check_image: Callable[[str], None] | None = None) -> Errors:
    """All field errors of ``obj`` (already known to be a served kind)."""
    checker, name_rule = CHECKERS.get((group, kind), (lambda o, c: [], "subdomain"))
    errors = validate_metadata(obj, name_rule=name_rule)
    try:
        errors += checker(obj, check_image)
    except (AttributeError, TypeError, KeyError) as exc:  # a wrong shape deeper than structure_errors looks
        errors.append(("spec", f"Invalid value: a field has the wrong type ({exc}); compare the manifest with "
                               f"`kubectl explain {kind.lower()}`"))
    return errors
