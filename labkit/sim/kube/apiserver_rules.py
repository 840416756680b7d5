"""kube-apiserver's hand-written validation: the Go checks (``pkg/apis/*/validation``) no schema expresses.

A built-in kind's OpenAPI says which fields exist and their types (decoding
against it is :mod:`labkit.sim.kube.builtin_schemas`); what makes a value
*valid* is Go code in the API server, run after decoding and defaulting:
names are DNS labels or subdomains, label keys and values have a syntax,
a Deployment's selector must match its template's labels and cannot change,
ports lie in 1-65535, enumerations such as ``restartPolicy`` or a Service's
``type`` have fixed values, a container needs a name and an image. Those
checks live here, worded as the API server words them (``spec.replicas:
Invalid value: -1: must be greater than or equal to 0``), for the kinds the
labs use; ObjectMeta's checks apply to every kind, custom resources
included.

The one check that is labkit's own and not the API server's: an image the
embedded mesh has no model for is refused at the container's ``image``
(``check_image``), so a typo in an image fails at apply rather than as a pod
that never starts.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from labkit.k8s import ANNOTATIONS_LIMIT, annotations_size
from labkit.sim.kube import fielderrors as fe
from labkit.sim.kube.fielderrors import FieldError, GoText
from labkit.sim.kube.objects import DNS1035_LABEL, DNS1123_LABEL, DNS1123_SUBDOMAIN, selector_matches

Errors = list[FieldError]

# -- apimachinery's name and label syntax (util/validation), messages verbatim ---------------------------------


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    """``validation.RegexError``: the message, examples, and the regex used."""
    shown = "".join((" or " if i else "") + f"'{e}', " for i, e in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')" if examples else \
        f"{message} (regex used for validation is '{pattern}')"


DNS1123_LABEL_MSG = _regex_error("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                                 "and must start and end with an alphanumeric character",
                                 "[a-z0-9]([-a-z0-9]*[a-z0-9])?", "my-name", "123-abc")
DNS1123_SUBDOMAIN_MSG = _regex_error("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                                     "'-' or '.', and must start and end with an alphanumeric character",
                                     r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", "example.com")
DNS1035_LABEL_MSG = _regex_error("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
                                 "an alphabetic character, and end with an alphanumeric character",
                                 "[a-z]([-a-z0-9]*[a-z0-9])?", "my-name", "abc-123")
QUALIFIED_NAME_MSG = _regex_error("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
                                  "and end with an alphanumeric character", "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]",
                                  "MyName", "my.name", "123-abc")
LABEL_VALUE_MSG = _regex_error("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
                               "or '.', and must start and end with an alphanumeric character",
                               "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", "MyValue", "my_value", "12345")
ENV_NAME_MSG = _regex_error("a valid environment variable name must consist of alphabetic characters, digits, '_', "
                            "'-', or '.', and must not start with a digit", "[-._a-zA-Z][-._a-zA-Z0-9]*",
                            "my.env-name", "MY_ENV.NAME", "MyEnvName1")
CONFIG_KEY_MSG = _regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                              "[-._a-zA-Z0-9]+", "key.name", "KEY_NAME", "key-name")
PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"

_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_PERCENT = re.compile(r"^[0-9]+%$")

#: metadata.name rules: (regex, its message, length limit)
NAME_RULES = {
    "subdomain": (DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MSG, 253),
    "label": (DNS1123_LABEL, DNS1123_LABEL_MSG, 63),
    "dns1035": (DNS1035_LABEL, DNS1035_LABEL_MSG, 63),
}


def name_errors(path: str, name: str, rule: str = "subdomain") -> Errors:
    regex, message, limit = NAME_RULES[rule]
    errors: Errors = []
    if len(name) > limit:
        errors.append(fe.invalid(path, name, f"must be no more than {limit} characters"))
    if not regex.match(name):
        errors.append(fe.invalid(path, name, message))
    return errors


def qualified_name_errors(path: str, key: str) -> Errors:
    """``IsQualifiedName`` for a label or annotation key: ``[prefix/]name``."""
    prefix, _, name = key.rpartition("/")
    errors: Errors = []
    if not name:
        errors.append(fe.invalid(path, key, "name part must be non-empty"))
    else:
        if len(name) > 63:
            errors.append(fe.invalid(path, key, "name part must be no more than 63 characters"))
        if not _QUALIFIED.match(name):
            errors.append(fe.invalid(path, key, QUALIFIED_NAME_MSG))
    if prefix:
        if len(prefix) > 253:
            errors.append(fe.invalid(path, key, "prefix part must be no more than 253 characters"))
        if not DNS1123_SUBDOMAIN.match(prefix):
            errors.append(fe.invalid(path, key, "prefix part " + DNS1123_SUBDOMAIN_MSG))
    return errors


def label_errors(path: str, labels: dict | None) -> Errors:
    errors: Errors = []
    for key, value in (labels or {}).items():
        errors += qualified_name_errors(path, str(key))
        value = str(value)
        if len(value) > 63:
            errors.append(fe.invalid(path, value, "must be no more than 63 characters"))
        if not _LABEL_VALUE.match(value):
            errors.append(fe.invalid(path, value, LABEL_VALUE_MSG))
    return errors


def annotation_errors(path: str, annotations: dict | None) -> Errors:
    errors: Errors = []
    for key in annotations or {}:
        errors += [fe.invalid(path, str(key), e.detail) for e in qualified_name_errors(path, str(key).lower())]
    if annotations_size(annotations) > ANNOTATIONS_LIMIT:
        errors.append(fe.too_long(path, ANNOTATIONS_LIMIT))
    return errors


def object_meta_errors(obj: dict, name_rule: str = "subdomain", namespaced: bool = True) -> Errors:
    """``ValidateObjectMeta``: name (or generateName), namespace, labels, annotations."""
    md = obj.get("metadata") or {}
    errors: Errors = []
    name = md.get("name")
    if not name:
        if not md.get("generateName"):
            errors.append(fe.required("metadata.name", "name or generateName is required"))
    else:
        errors += name_errors("metadata.name", name, name_rule)
    namespace = md.get("namespace")
    if namespaced and namespace:
        errors += name_errors("metadata.namespace", namespace, "label")
    errors += label_errors("metadata.labels", md.get("labels"))
    errors += annotation_errors("metadata.annotations", md.get("annotations"))
    return errors


# -- pods and pod templates ------------------------------------------------------------------------------------


def _port_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def port_name_errors(path: str, name: str, *, int_or_string: bool = False) -> Errors:
    """``IsValidPortName`` (an IANA_SVC_NAME). An IntOrString value prints unquoted (its ``String()``)."""
    msgs = []
    if len(name) > 15:
        msgs.append("must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", name):
        msgs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in name:
        msgs.append("must not contain consecutive hyphens")
    if not re.search(r"[a-z]", name):
        msgs.append("must contain at least one letter (a-z)")
    if name.startswith("-") or name.endswith("-"):
        msgs.append("must not begin or end with a hyphen")
    shown = GoText(name) if int_or_string else name
    return [fe.invalid(path, shown, m) for m in msgs]


def _probe(errors: Errors, path: str, probe: dict | None, ports: dict[str, int]) -> None:
    if not probe:
        return
    handlers = [k for k in ("exec", "httpGet", "tcpSocket", "grpc") if probe.get(k) is not None]
    if not handlers:
        errors.append(fe.required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        errors.append(fe.forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type"))
    for key in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
        if isinstance(probe.get(key), int) and probe[key] < 0:
            errors.append(fe.invalid(f"{path}.{key}", probe[key], "must be greater than or equal to 0"))
    for key in ("httpGet", "tcpSocket"):
        port = (probe.get(key) or {}).get("port")
        if port is None:
            if key in probe:
                errors.append(fe.required(f"{path}.{key}.port"))
            continue
        if isinstance(port, str):
            if not port.isdigit():
                errors += port_name_errors(f"{path}.{key}.port", port, int_or_string=True)
        elif not _port_number(port):
            errors.append(fe.invalid(f"{path}.{key}.port", GoText(str(port)), PORT_RANGE_MSG))
    if probe.get("exec") is not None and not (probe["exec"] or {}).get("command"):
        errors.append(fe.required(f"{path}.exec.command"))


def _container(errors: Errors, path: str, c: dict, check_image: Callable[[str], None] | None, names: set) -> None:
    name = c.get("name")
    if not name:
        errors.append(fe.required(f"{path}.name"))
    else:
        errors += name_errors(f"{path}.name", name, "label")
        if name in names:
            errors.append(fe.duplicate(f"{path}.name", name))
        names.add(name)
    image = c.get("image")
    if not image:
        errors.append(fe.required(f"{path}.image"))
    elif check_image is not None:
        try:
            check_image(image)
        except ValueError as exc:  # labkit's own: the embedded mesh has no model for this image
            errors.append(fe.FieldError("FieldValueNotSupported", f"{path}.image", fe.OMIT, str(exc)))
    policy = c.get("imagePullPolicy")
    if policy is not None and policy not in ("Always", "IfNotPresent", "Never"):
        errors.append(fe.not_supported(f"{path}.imagePullPolicy", policy, ["Always", "IfNotPresent", "Never"]))
    ports: dict[str, int] = {}
    for i, port in enumerate(c.get("ports") or []):
        p = f"{path}.ports[{i}]"
        cp = port.get("containerPort")
        if not cp:
            errors.append(fe.required(f"{p}.containerPort"))
        elif not _port_number(cp):
            errors.append(fe.invalid(f"{p}.containerPort", cp, PORT_RANGE_MSG))
        if "hostPort" in port and port["hostPort"] not in (0, None) and not _port_number(port["hostPort"]):
            errors.append(fe.invalid(f"{p}.hostPort", port["hostPort"], PORT_RANGE_MSG))
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            errors.append(fe.not_supported(f"{p}.protocol", protocol, ["SCTP", "TCP", "UDP"]))
        if port.get("name"):
            errors += port_name_errors(f"{p}.name", port["name"])
            if port["name"] in ports:
                errors.append(fe.duplicate(f"{p}.name", port["name"]))
            ports[port["name"]] = cp
    for i, env in enumerate(c.get("env") or []):
        p = f"{path}.env[{i}]"
        if not env.get("name"):
            errors.append(fe.required(f"{p}.name"))
        elif not _ENV_NAME.match(env["name"]):
            errors.append(fe.invalid(f"{p}.name", env["name"], ENV_NAME_MSG))
    for key in ("readinessProbe", "livenessProbe", "startupProbe"):
        _probe(errors, f"{path}.{key}", c.get(key), ports)


def pod_spec_errors(spec: dict | None, path: str, check_image: Callable[[str], None] | None, *,
                    restart_policies=("Always", "OnFailure", "Never")) -> Errors:
    """``ValidatePodSpec`` for the fields the labs use."""
    errors: Errors = []
    spec = spec or {}
    containers = spec.get("containers") or []
    if not containers:
        errors.append(fe.required(f"{path}.containers"))
    names: set = set()
    for i, c in enumerate(spec.get("initContainers") or []):
        _container(errors, f"{path}.initContainers[{i}]", c or {}, check_image, names)
    for i, c in enumerate(containers):
        _container(errors, f"{path}.containers[{i}]", c or {}, check_image, names)
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in restart_policies:
        errors.append(fe.not_supported(f"{path}.restartPolicy", policy, list(restart_policies)))
    account = spec.get("serviceAccountName")
    if account:
        errors += name_errors(f"{path}.serviceAccountName", account, "subdomain")
    return errors


def _selector(spec: dict, kind: str) -> Errors:
    selector = spec.get("selector")
    if selector is None:
        return [fe.required("spec.selector")]
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return [fe.invalid("spec.selector", GoText(_go_selector(selector)), f"empty selector is invalid for {kind}")]
    return []


def _template(spec: dict, check_image, *, restart_policies=("Always",), selector_required=True) -> Errors:
    """``ValidatePodTemplateSpecForReplicaSet`` (or a Job's template): labels against the selector, then the pod."""
    errors: Errors = []
    template = spec.get("template")
    if template is None:
        return [fe.required("spec.template")]
    tmeta = template.get("metadata") or {}
    selector = spec.get("selector")
    if selector_required and not (selector is not None and not (selector.get("matchLabels") or selector.get("matchExpressions"))):
        # a missing selector matches nothing, so it is reported here too (as the API server does)
        if selector is None or not selector_matches(selector, tmeta.get("labels") or {}):
            errors.append(fe.invalid("spec.template.metadata.labels",
                                     GoText(fe.go_syntax(tmeta.get("labels"), "map[string]string")
                                            if tmeta.get("labels") else "map[string]string(nil)"),
                                     "`selector` does not match template `labels`"))
    errors += label_errors("spec.template.metadata.labels", tmeta.get("labels"))
    errors += annotation_errors("spec.template.metadata.annotations", tmeta.get("annotations"))
    pod = template.get("spec") or {}
    errors += pod_spec_errors(pod, "spec.template.spec", check_image) if selector_required else \
        pod_spec_errors(pod, "spec.template.spec", check_image, restart_policies=restart_policies)
    policy = pod.get("restartPolicy", "Always")
    if selector_required and policy not in restart_policies:
        errors.append(fe.not_supported("spec.template.spec.restartPolicy", policy, list(restart_policies)))
    return errors


def _go_selector(selector: dict) -> str:
    labels = fe.go_syntax(selector.get("matchLabels"), "map[string]string") if selector.get("matchLabels") \
        else "map[string]string(nil)"
    return f"&v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}"


def _non_negative(errors: Errors, spec: dict, *keys: str) -> None:
    for key in keys:
        value = spec.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            errors.append(fe.invalid(f"spec.{key}", value, "must be greater than or equal to 0"))


def _int_or_percent(errors: Errors, path: str, value: Any) -> bool:
    """``ValidatePositiveIntOrPercent`` (the IntOrString value prints unquoted)."""
    if value is None:
        return True
    if isinstance(value, str):
        if not _PERCENT.match(value):
            errors.append(fe.invalid(path, GoText(value), "a valid percent string must be a numeric string followed by an "
                                                  "ending '%' (e.g. '1%',  or '93%', regex used for validation is "
                                                  "'[0-9]+%')"))
            return False
        return True
    if value < 0:
        errors.append(fe.invalid(path, GoText(str(value)), "must be greater than or equal to 0"))
        return False
    return True


# -- per kind ---------------------------------------------------------------------------------------------------


def deployment(obj: dict, check_image, old: dict | None = None) -> Errors:
    """``ValidateDeploymentSpec``, in its order: replicas, selector, template, strategy, the counters."""
    spec = obj.get("spec") or {}
    errors: Errors = []
    _non_negative(errors, spec, "replicas")
    errors += _selector(spec, "deployment")
    errors += _template(spec, check_image)
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type", "RollingUpdate")
    if kind not in ("Recreate", "RollingUpdate"):
        errors.append(fe.not_supported("spec.strategy.type", kind, ["Recreate", "RollingUpdate"]))
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate" and rolling is not None:
        errors.append(fe.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    if rolling:
        ok = _int_or_percent(errors, "spec.strategy.rollingUpdate.maxUnavailable", rolling.get("maxUnavailable"))
        ok &= _int_or_percent(errors, "spec.strategy.rollingUpdate.maxSurge", rolling.get("maxSurge"))
        if ok and rolling.get("maxSurge") in (0, "0%") and rolling.get("maxUnavailable") in (0, "0%"):
            errors.append(fe.invalid("spec.strategy.rollingUpdate.maxUnavailable", GoText(str(rolling.get("maxUnavailable"))),
                                     "may not be 0 when `maxSurge` is 0"))
    _non_negative(errors, spec, "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds")
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int) and deadline >= 0 and deadline <= spec.get("minReadySeconds", 0):
        errors.append(fe.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    errors += _immutable_selector(obj, old)
    return errors


def _immutable_selector(obj: dict, old: dict | None) -> Errors:
    if old is None:
        return []
    new_sel, old_sel = (obj.get("spec") or {}).get("selector"), (old.get("spec") or {}).get("selector")
    if new_sel is not None and new_sel != old_sel:
        return [fe.invalid("spec.selector", GoText(_go_selector(new_sel)), "field is immutable")]
    return []


def replicaset(obj: dict, check_image, old: dict | None = None) -> Errors:
    spec = obj.get("spec") or {}
    errors: Errors = []
    _non_negative(errors, spec, "replicas", "minReadySeconds")
    errors += _selector(spec, "replicaset") + _template(spec, check_image)
    return errors + _immutable_selector(obj, old)


def job(obj: dict, check_image, old: dict | None = None) -> Errors:
    return _template(obj.get("spec") or {}, check_image, restart_policies=("OnFailure", "Never"), selector_required=False)



def pod(obj: dict, check_image, old: dict | None = None) -> Errors:
    return pod_spec_errors(obj.get("spec"), "spec", check_image)


def service(obj: dict, check_image, old: dict | None = None) -> Errors:
    errors: Errors = []
    spec = obj.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errors.append(fe.not_supported("spec.type", kind, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]))
    ports = spec.get("ports") or []
    if kind != "ExternalName" and not ports:
        errors.append(fe.required("spec.ports"))
    names: set = set()
    for i, port in enumerate(ports):
        p = f"spec.ports[{i}]"
        name = port.get("name")
        if len(ports) > 1 and not name:
            errors.append(fe.required(f"{p}.name"))
        elif name:
            errors += name_errors(f"{p}.name", name, "label")
            if name in names:
                errors.append(fe.duplicate(f"{p}.name", name))
            names.add(name)
        if not _port_number(port.get("port")):
            errors.append(fe.invalid(f"{p}.port", port.get("port", 0), PORT_RANGE_MSG))
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            errors.append(fe.not_supported(f"{p}.protocol", protocol, ["SCTP", "TCP", "UDP"]))
        target = port.get("targetPort")
        if isinstance(target, str):
            errors += port_name_errors(f"{p}.targetPort", target, int_or_string=True)
        elif target is not None and not _port_number(target):
            errors.append(fe.invalid(f"{p}.targetPort", GoText(str(target)), PORT_RANGE_MSG))
    errors += label_errors("spec.selector", spec.get("selector"))
    ip = spec.get("clusterIP")
    if ip not in (None, "", "None") and not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", str(ip)):
        errors.append(fe.invalid("spec.clusterIP", ip, "must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    return errors


def configmap(obj: dict, check_image, old: dict | None = None) -> Errors:
    errors: Errors = []
    for field_name in ("data", "binaryData"):
        for key in obj.get(field_name) or {}:
            if len(key) > 253:
                errors.append(fe.invalid(f"{field_name}[{key}]", key, "must be no more than 253 characters"))
            if not _CONFIG_KEY.match(key):
                errors.append(fe.invalid(f"{field_name}[{key}]", key, CONFIG_KEY_MSG))
    for key in set(obj.get("data") or {}) & set(obj.get("binaryData") or {}):
        errors.append(fe.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    return errors


def hpa(obj: dict, check_image, old: dict | None = None) -> Errors:
    errors: Errors = []
    spec = obj.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    for key in ("kind", "name"):
        if not ref.get(key):
            errors.append(fe.required(f"spec.scaleTargetRef.{key}"))
    maximum, minimum = spec.get("maxReplicas"), spec.get("minReplicas")
    if isinstance(minimum, int) and minimum < 1:
        errors.append(fe.invalid("spec.minReplicas", minimum, "must be greater than or equal to 1"))
    if isinstance(maximum, int) and maximum < 1:
        errors.append(fe.invalid("spec.maxReplicas", maximum, "must be greater than or equal to 1"))
    if isinstance(maximum, int) and isinstance(minimum, int) and minimum > maximum:
        errors.append(fe.invalid("spec.maxReplicas", maximum, "must be greater than or equal to `minReplicas`"))
    if str(obj.get("apiVersion", "")).endswith("/v2"):
        kinds = ["ContainerResource", "External", "Object", "Pods", "Resource"]
        for i, metric in enumerate(spec.get("metrics") or []):
            kind = (metric or {}).get("type")
            if kind not in kinds:
                errors.append(fe.not_supported(f"spec.metrics[{i}].type", kind or "", kinds))
            elif kind == "Resource":
                resource = metric.get("resource") or {}
                if not resource.get("name"):
                    errors.append(fe.required(f"spec.metrics[{i}].resource.name"))
                if resource.get("target") is None:
                    errors.append(fe.required(f"spec.metrics[{i}].resource.target"))
    return errors


def _nothing(obj: dict, check_image, old: dict | None = None) -> Errors:
    return []


#: (group, kind) → (the kind's Go checks, its metadata.name rule). Kinds not listed get ObjectMeta's checks only.
KINDS: dict[tuple[str, str], tuple[Callable, str]] = {
    ("", "Namespace"): (_nothing, "label"),
    ("", "Service"): (service, "dns1035"),
    ("", "ConfigMap"): (configmap, "subdomain"),
    ("", "Pod"): (pod, "subdomain"),
    ("apps", "Deployment"): (deployment, "subdomain"),
    ("apps", "ReplicaSet"): (replicaset, "subdomain"),
    ("batch", "Job"): (job, "subdomain"),
    ("autoscaling", "HorizontalPodAutoscaler"): (hpa, "subdomain"),
}


def validate(obj: dict, group: str, kind: str, *, namespaced: bool = True, check_image=None,
             old: dict | None = None) -> Errors:
    """The API server's Go validation of a decoded object: ObjectMeta's, then the kind's own."""
    checker, rule = KINDS.get((group, kind), (_nothing, "subdomain"))
    return object_meta_errors(obj, rule, namespaced) + checker(obj, check_image, old)
