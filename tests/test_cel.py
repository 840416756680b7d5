"""The CEL rules of the shipped CRDs (Gateway API v1.2.1, Flagger v1.44.0), evaluated as kube-apiserver does.

For each rule family: a value that breaks the rule and one that keeps it, at the schema node that carries the
rule, with the value as it reaches the rules (after defaulting). The expected texts are the rules' own messages
(from the CRDs) in the API server's layout, written out here.
"""
from __future__ import annotations

import pytest

from labkit.sim.kube import cel, crds

HTTPROUTE, GRPCROUTE = "httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io"
GATEWAY, GATEWAYCLASS = "gateways.gateway.networking.k8s.io", "gatewayclasses.gateway.networking.k8s.io"
CANARY = "canaries.flagger.app"


def _crd(name: str) -> dict:
    for release in crds.RELEASES:
        for crd in crds.crds(release):
            if crd["metadata"]["name"] == name:
                return crd
    raise KeyError(name)


def node(crd: str, where: str, version: str = "v1") -> dict:
    """The schema node at ``where`` (``spec.rules[].matches[].path``: ``[]`` steps into items)."""
    schema = next(v for v in _crd(crd)["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
    for part in where.split("."):
        name, items = part.removesuffix("[]"), part.count("[]")
        schema = schema["properties"][name]
        for _ in range(items):
            schema = schema["items"]
    return schema


def check(crd: str, where: str, value, path: str = "p", version: str = "v1", **kw) -> list[str]:
    schema = node(crd, where, version)
    return [f"{p}: {m}" for p, m in cel.check_rules(schema["x-kubernetes-validations"], value, path, schema=schema, **kw)]


def bad(message: str, path: str = "p", kind: str = "object") -> str:
    """The API server's line for a broken rule at a node of type ``kind``."""
    return f'{path}: Invalid value: "{kind}": {message}'


def bad_list(message: str, path: str = "p") -> str:
    return bad(message, path, "array")


# -- every shipped rule --------------------------------------------------------------------------------------------

def _rules(schema, found):
    if isinstance(schema, dict):
        found += schema.get("x-kubernetes-validations") or []
        for value in schema.values():
            _rules(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _rules(value, found)
    return found


def test_every_rule_of_the_shipped_crds_compiles_with_modelled_functions():
    rules = _rules([crds.crds(release) for release in crds.RELEASES], [])
    assert len(rules) > 200
    for rule in rules:
        compiled = cel.compile_rule(rule["rule"])  # raises CelUnsupportedError on a function not modelled
        assert compiled.uses_old_self == ("oldSelf" in rule["rule"])
        if rule.get("messageExpression"):
            cel.compile_rule(rule["messageExpression"])


# -- HTTPRoute -------------------------------------------------------------------------------------------------------

PATH_RULES = [
    ({"type": "PathPrefix", "value": "api"},
     "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"),
    ({"type": "Exact", "value": "/a//b"}, "must not contain '//' when type one of ['Exact', 'PathPrefix']"),
    ({"type": "Exact", "value": "/a/./b"}, "must not contain '/./' when type one of ['Exact', 'PathPrefix']"),
    ({"type": "PathPrefix", "value": "/a/../b"}, "must not contain '/../' when type one of ['Exact', 'PathPrefix']"),
    ({"type": "PathPrefix", "value": "/a%2fb"}, "must not contain '%2f' when type one of ['Exact', 'PathPrefix']"),
    ({"type": "PathPrefix", "value": "/a%2Fb"}, "must not contain '%2F' when type one of ['Exact', 'PathPrefix']"),
    ({"type": "Exact", "value": "/a/.."}, "must not end with '/..' when type one of ['Exact', 'PathPrefix']"),
    ({"type": "Exact", "value": "/a/b\\c"},
     "must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) "
     "for types ['Exact', 'PathPrefix']"),
    ({"type": "Prefix", "value": "/"}, "type must be one of ['Exact', 'PathPrefix', 'RegularExpression']"),
]


@pytest.mark.parametrize("value, message", PATH_RULES)
def test_httproute_path_match_values(value, message):
    assert check(HTTPROUTE, "spec.rules[].matches[].path", value, "spec.rules[0].matches[0].path") == \
        [bad(message, "spec.rules[0].matches[0].path")]


@pytest.mark.parametrize("value", [{"type": "PathPrefix", "value": "/api"}, {"type": "Exact", "value": "/books.json"},
                                   {"type": "RegularExpression", "value": "api/.*"},
                                   {"type": "PathPrefix", "value": "/a%20b"}])
def test_httproute_path_match_values_that_pass(value):
    assert check(HTTPROUTE, "spec.rules[].matches[].path", value) == []


def test_several_broken_rules_at_one_node_are_all_reported_in_the_crds_order():
    assert check(HTTPROUTE, "spec.rules[].matches[].path", {"type": "Exact", "value": "a//b#"}) == [
        bad("value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"),
        bad("must not contain '//' when type one of ['Exact', 'PathPrefix']"),
        bad("must not contain '#' when type one of ['Exact', 'PathPrefix']"),
        bad("must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) "
            "for types ['Exact', 'PathPrefix']"),
    ]


@pytest.mark.parametrize("where", ["spec.rules[].filters[]", "spec.rules[].backendRefs[].filters[]"])
@pytest.mark.parametrize("value, message", [
    ({"type": "RequestHeaderModifier"}, "filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type"),
    ({"type": "ResponseHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "1"}]},
      "responseHeaderModifier": {"remove": ["x"]}},
     "filter.requestHeaderModifier must be nil if the filter.type is not RequestHeaderModifier"),
    ({"type": "URLRewrite"}, "filter.urlRewrite must be specified for URLRewrite filter.type"),
    ({"type": "RequestRedirect", "requestRedirect": {"statusCode": 302}, "urlRewrite": {"hostname": "a"}},
     "filter.urlRewrite must be nil if the filter.type is not URLRewrite"),
    ({"type": "RequestMirror"}, "filter.requestMirror must be specified for RequestMirror filter.type"),
    ({"type": "ExtensionRef"}, "filter.extensionRef must be specified for ExtensionRef filter.type"),
])
def test_httproute_filter_type_matches_its_field(where, value, message):
    assert check(HTTPROUTE, where, value) == [bad(message)]


@pytest.mark.parametrize("value", [
    {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "1"}], "remove": ["y"]}},
    {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "x", "value": "1"}]}},
    {"type": "URLRewrite", "urlRewrite": {"hostname": "books"}},
    {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}},
])
def test_httproute_filters_that_pass(value):
    assert check(HTTPROUTE, "spec.rules[].filters[]", value) == []


def _filters(*types: str) -> list[dict]:
    fields = {"RequestHeaderModifier": "requestHeaderModifier", "ResponseHeaderModifier": "responseHeaderModifier",
              "RequestRedirect": "requestRedirect", "URLRewrite": "urlRewrite"}
    return [{"type": t, fields[t]: {}} for t in types]


@pytest.mark.parametrize("types, messages", [
    (("RequestHeaderModifier", "RequestHeaderModifier"), ["RequestHeaderModifier filter cannot be repeated"]),
    (("ResponseHeaderModifier", "ResponseHeaderModifier"), ["ResponseHeaderModifier filter cannot be repeated"]),
    (("RequestRedirect", "URLRewrite"),
     ["May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both"]),
    (("URLRewrite", "URLRewrite"), ["URLRewrite filter cannot be repeated"]),
    (("RequestRedirect", "RequestRedirect"), ["RequestRedirect filter cannot be repeated"]),
    (("RequestHeaderModifier", "ResponseHeaderModifier", "URLRewrite"), []),
])
def test_httproute_filter_lists(types, messages):
    assert check(HTTPROUTE, "spec.rules[].filters", _filters(*types), "spec.rules[0].filters") == \
        [bad_list(m, "spec.rules[0].filters") for m in messages]


@pytest.mark.parametrize("filter_", ["urlRewrite", "requestRedirect"])
@pytest.mark.parametrize("value, messages", [
    ({"type": "ReplaceFullPath"}, ["replaceFullPath must be specified when type is set to 'ReplaceFullPath'"]),
    ({"type": "ReplacePrefixMatch", "replaceFullPath": "/x"},
     ["type must be 'ReplaceFullPath' when replaceFullPath is set",
      "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'"]),
    ({"type": "ReplaceFullPath", "replaceFullPath": "/x", "replacePrefixMatch": "/y"},
     ["type must be 'ReplacePrefixMatch' when replacePrefixMatch is set"]),
    ({"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}, []),
    ({"type": "ReplaceFullPath", "replaceFullPath": "/"}, []),
])
def test_httproute_rewrite_and_redirect_paths(filter_, value, messages):
    assert check(HTTPROUTE, f"spec.rules[].filters[].{filter_}.path", value) == [bad(m) for m in messages]


def _rule(filters=(), matches=({"path": {"type": "PathPrefix", "value": "/"}},), backends=()):
    return {"matches": list(matches), "filters": list(filters), "backendRefs": list(backends)}


PREFIX_REWRITE = {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}}
PREFIX_REDIRECT = {"type": "RequestRedirect",
                   "requestRedirect": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}}
BACKEND = {"name": "books", "port": 7002, "group": "", "kind": "Service", "weight": 1}


@pytest.mark.parametrize("rule, messages", [
    (_rule([PREFIX_REDIRECT], backends=[BACKEND]), ["RequestRedirect filter must not be used together with backendRefs"]),
    (_rule([PREFIX_REWRITE], matches=[{"path": {"type": "Exact", "value": "/a"}}], backends=[BACKEND]),
     ["When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"]),
    (_rule([PREFIX_REDIRECT], matches=[{"path": {"type": "PathPrefix", "value": "/a"}},
                                       {"path": {"type": "PathPrefix", "value": "/b"}}]),
     ["When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"]),
    (_rule(backends=[{**BACKEND, "filters": [PREFIX_REWRITE]}], matches=[{"headers": [{"name": "x", "value": "1"}]}]),
     ["Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match "
      "must be specified"]),
    (_rule([PREFIX_REWRITE], backends=[BACKEND]), []),
    (_rule([PREFIX_REDIRECT]), []),
])
def test_httproute_rule_level_filter_rules(rule, messages):
    assert check(HTTPROUTE, "spec.rules[]", rule, "spec.rules[0]") == [bad(m, "spec.rules[0]") for m in messages]


@pytest.mark.parametrize("ref, ok", [
    ({"name": "books", "group": "", "kind": "Service"}, False),
    ({"name": "books", "group": "", "kind": "Service", "port": 7002}, True),
    ({"name": "bucket", "group": "example.com", "kind": "Bucket"}, True),  # only Service references need a port
])
def test_backend_refs_to_a_service_need_a_port(ref, ok):
    expected = [] if ok else [bad("Must have port for Service reference", "spec.rules[0].backendRefs[0]")]
    assert check(HTTPROUTE, "spec.rules[].backendRefs[]", ref, "spec.rules[0].backendRefs[0]") == expected
    mirror = "spec.rules[].filters[].requestMirror.backendRef"
    assert check(HTTPROUTE, mirror, ref, "m") == ([] if ok else [bad("Must have port for Service reference", "m")])
    assert check(GRPCROUTE, "spec.rules[].backendRefs[]", ref, "g") == \
        ([] if ok else [bad("Must have port for Service reference", "g")])


def test_the_match_total_counts_sixteen_rules():
    eight = [{"path": {"type": "PathPrefix", "value": f"/{i}"}} for i in range(8)]
    nine = eight + [{"path": {"type": "Exact", "value": "/x"}}]
    message = ("While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in "
               "a route must be less than 128")
    assert check(HTTPROUTE, "spec.rules", [_rule(matches=eight)] * 16, "spec.rules") == []  # 128
    assert check(HTTPROUTE, "spec.rules", [_rule(matches=nine)] + [_rule(matches=eight)] * 15, "spec.rules") == \
        [bad_list(message, "spec.rules")]
    assert check(GRPCROUTE, "spec.rules", [{"matches": [{}] * 9}] * 15, "spec.rules") == \
        [bad_list(message, "spec.rules")]


@pytest.mark.parametrize("timeouts, ok", [
    ({"request": "10s", "backendRequest": "1m"}, False),
    ({"request": "1m", "backendRequest": "10s"}, True),
    ({"request": "0s", "backendRequest": "1h"}, True),  # 0s: no request timeout
    ({"backendRequest": "1h"}, True),
])
def test_backend_request_timeout_within_the_request_timeout(timeouts, ok):
    expected = [] if ok else [bad("backendRequest timeout cannot be longer than request timeout")]
    assert check(HTTPROUTE, "spec.rules[].timeouts", timeouts) == expected


def _parent(name="books", **extra):
    return {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name, **extra}


@pytest.mark.parametrize("crd", [HTTPROUTE, GRPCROUTE])
@pytest.mark.parametrize("refs, messages", [
    ([_parent(), _parent(sectionName="http")],
     ["sectionName must be specified when parentRefs includes 2 or more references to the same parent"]),
    ([_parent(sectionName="http"), _parent(sectionName="http")],
     ["sectionName must be unique when parentRefs includes 2 or more references to the same parent"]),
    ([_parent(sectionName="http"), _parent(sectionName="https")], []),
    ([_parent(), _parent("other")], []),
    # `namespace` is a CEL reserved word: the rules spell it __namespace__, and it tells the two parents apart
    ([_parent(namespace="a"), _parent(namespace="b", sectionName="http")], []),
    ([_parent(namespace="a"), _parent(namespace="a")],
     ["sectionName must be unique when parentRefs includes 2 or more references to the same parent"]),
])
def test_parent_refs_to_the_same_parent_need_distinct_section_names(crd, refs, messages):
    assert check(crd, "spec.parentRefs", refs, "spec.parentRefs") == [bad_list(m, "spec.parentRefs") for m in messages]


def test_the_v1beta1_httproute_carries_the_same_rules():
    value = {"type": "PathPrefix", "value": "api"}
    assert check(HTTPROUTE, "spec.rules[].matches[].path", value, version="v1beta1") == \
        check(HTTPROUTE, "spec.rules[].matches[].path", value, version="v1")


# -- GRPCRoute, Gateway, GatewayClass, Canary -------------------------------------------------------------------

@pytest.mark.parametrize("method, messages", [
    ({"type": "Exact"}, ["One or both of 'service' or 'method' must be specified"]),
    ({"type": "Exact", "service": "emoji.Emoji Service"},
     ["service must only contain valid characters (matching ^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$)"]),
    ({"type": "Exact", "service": "emojivoto.v1.EmojiService", "method": "List-All"},
     ["method must only contain valid characters (matching ^[A-Za-z_][A-Za-z_0-9]*$)"]),
    ({"type": "Exact", "service": "emojivoto.v1.EmojiService", "method": "ListAll"}, []),  # (?i): upper case passes
    ({"type": "RegularExpression", "service": "emoji.*", "method": "List.*"}, []),
])
def test_grpcroute_method_matches(method, messages):
    assert check(GRPCROUTE, "spec.rules[].matches[].method", method) == [bad(m) for m in messages]


def test_grpcroute_filters():
    assert check(GRPCROUTE, "spec.rules[].filters", _filters("RequestHeaderModifier", "RequestHeaderModifier")) == \
        [bad_list("RequestHeaderModifier filter cannot be repeated")]
    assert check(GRPCROUTE, "spec.rules[].filters[]", {"type": "RequestMirror"}) == \
        [bad("filter.requestMirror must be specified for RequestMirror filter.type")]
    assert check(GRPCROUTE, "spec.rules[].filters", _filters("RequestHeaderModifier", "ResponseHeaderModifier")) == []


def test_gateway_listeners_and_infrastructure_maps():
    http = {"name": "http", "port": 80, "protocol": "HTTP"}
    assert check(GATEWAY, "spec.listeners", [http, {**http, "port": 8080}]) == \
        [bad_list("Listener name must be unique within the Gateway")]
    assert check(GATEWAY, "spec.listeners", [{**http, "tls": {"mode": "Terminate"}}]) == \
        [bad_list("tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']")]
    assert check(GATEWAY, "spec.listeners", [http, {**http, "name": "other"}]) == \
        [bad_list("Combination of port, protocol and hostname must be unique for each listener")]
    # a map (additionalProperties): the rules see its keys as written, "/" and "." included
    labels = node(GATEWAY, "spec.infrastructure.labels")
    assert cel.check_rules(labels["x-kubernetes-validations"], {"app.kubernetes.io/name": "gw"}, "l", schema=labels) == []
    assert cel.check_rules(labels["x-kubernetes-validations"], {"-bad": "x"}, "l", schema=labels) == [
        ("l", 'Invalid value: "object": Label keys must be in the form of an optional DNS subdomain prefix followed '
              'by a required name segment of up to 63 characters.')]


def test_gatewayclass_controller_name_is_immutable_a_transition_rule():
    where = "spec.controllerName"
    assert check(GATEWAYCLASS, where, "linkerd.io/gateway") == []  # a create: no oldSelf, not evaluated
    assert check(GATEWAYCLASS, where, "linkerd.io/gateway", old="linkerd.io/gateway") == []
    assert check(GATEWAYCLASS, where, "example.net/gateway", old="linkerd.io/gateway") == \
        ['p: Invalid value: "string": Value is immutable']


def test_flagger_canary_mirror_backend_ref_needs_a_port():
    where = "spec.service.mirror[].backendRef"
    ref = {"name": "podinfo", "group": "", "kind": "Service"}
    assert check(CANARY, where, ref, version="v1beta1") == [bad("Must have port for Service reference")]
    assert check(CANARY, where, {**ref, "port": 9898}, version="v1beta1") == []


# -- the evaluator's Kubernetes semantics ---------------------------------------------------------------------------

def test_message_expression_reason_and_field_path():
    rules = [{"rule": "self.replicas <= self.max", "messageExpression": "'replicas ' + string(self.replicas) + ' > max'",
              "fieldPath": ".replicas"},
             {"rule": "has(self.owner)", "message": "an owner is needed", "reason": "FieldValueRequired",
              "fieldPath": ".owner"},
             {"rule": "self.max > 100", "message": "too few", "reason": "FieldValueForbidden"},
             {"rule": "self.max != 5", "reason": "FieldValueDuplicate"},
             {"rule": "self.max > 1000"}]
    assert cel.check_rules(rules, {"replicas": 7, "max": 5}, "spec") == [
        ("spec.replicas", 'Invalid value: "object": replicas 7 > max'),
        ("spec.owner", "Required value: an owner is needed"),
        ("spec", "Forbidden: too few"),
        ("spec", 'Duplicate value: "object"'),
        ("spec", 'Invalid value: "object": failed rule: self.max > 1000'),
    ]
    # a messageExpression that fails or yields nothing usable falls back to the message
    broken = [{"rule": "false", "message": "plain", "messageExpression": "self.nope"},
              {"rule": "false", "message": "plain", "messageExpression": "'  '"}]
    assert [m for _, m in cel.check_rules(broken, {}, "x")] == ['Invalid value: "object": plain'] * 2


def test_field_path_through_a_map_is_a_key():
    schema = {"type": "object", "properties": {"labels": {"type": "object", "additionalProperties": {"type": "string"}}},
              "x-kubernetes-validations": [{"rule": "!has(self.labels) || !('app' in self.labels)",
                                            "message": "app is reserved", "fieldPath": ".labels['app']"}]}
    assert cel.check_rules(schema["x-kubernetes-validations"], {"labels": {"app": "x"}}, "spec", schema=schema) == \
        [("spec.labels[app]", 'Invalid value: "object": app is reserved')]


def test_evaluation_errors_are_reported_as_the_api_server_does():
    rules = [{"rule": "self.port > 0", "message": "port must be positive"}]
    assert cel.check_rules(rules, {"name": "x"}, "spec") == \
        [("spec", 'Invalid value: "object": no such key: port evaluating rule: port must be positive')]
    # int-or-string is dynamic: comparing a string with an int has no overload
    schema = {"x-kubernetes-int-or-string": True}
    assert cel.check_rules([{"rule": "self > 1"}], "25%", "spec.maxSurge", schema=schema) == \
        [("spec.maxSurge", "Invalid value: \"\": 'no such overload': call arguments did not match a supported "
                           "operator, function or macro signature for rule: self > 1")]
    assert cel.check_rules([{"rule": "self > 1"}], 3, "spec.maxSurge", schema=schema) == []


def test_numbers_follow_the_schema_type():
    number = {"type": "number", "x-kubernetes-validations": [{"rule": "type(self) == double"}]}
    integer = {"type": "integer", "x-kubernetes-validations": [{"rule": "type(self) == int"}]}
    assert cel.check_rules(number["x-kubernetes-validations"], 1, "w", schema=number) == []
    assert cel.check_rules(integer["x-kubernetes-validations"], 1, "w", schema=integer) == []
    assert cel.check_rules([{"rule": "self == 1.0 && self < 1.5"}], 1, "w") == []  # heterogeneous numbers compare


def test_formats_become_durations_and_timestamps():
    schema = {"type": "object", "properties": {
        "interval": {"type": "string", "format": "duration"},
        "until": {"type": "string", "format": "date-time"}}}
    rules = [{"rule": "self.interval < duration('1m') && self.until.getFullYear() == 2026"}]
    assert cel.check_rules(rules, {"interval": "30s", "until": "2026-06-01T00:00:00Z"}, "s", schema=schema) == []
    assert len(cel.check_rules(rules, {"interval": "2m", "until": "2026-06-01T00:00:00Z"}, "s", schema=schema)) == 1


def test_optional_old_self_runs_on_create_too():
    rules = [{"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "message": "may only grow",
              "optionalOldSelf": True}]
    schema = {"type": "integer"}
    assert cel.check_rules(rules, 3, "spec.size", schema=schema) == []
    assert cel.check_rules(rules, 3, "spec.size", old=2, schema=schema) == []
    assert cel.check_rules(rules, 1, "spec.size", old=2, schema=schema) == \
        [("spec.size", 'Invalid value: "integer": may only grow')]
    plain = [{"rule": "self >= oldSelf", "message": "may only grow"}]
    assert cel.check_rules(plain, 1, "spec.size", schema=schema) == []  # transition rule: skipped on create
    assert cel.check_rules(plain, 1, "spec.size", old=2, schema=schema) == \
        [("spec.size", 'Invalid value: "integer": may only grow')]


def test_a_root_rule_reports_nil_and_null_values_are_not_validated():
    assert cel.check_rules([{"rule": "false", "message": "no"}], {}, "") == [("<nil>", 'Invalid value: "object": no')]
    assert cel.check_rules([{"rule": "false"}], None, "spec.x") == []


def test_reserved_and_special_property_names_are_escaped():
    assert [cel.escape(n) for n in ("namespace", "x-y", "a.b/c", "a__b", "plain", "has space")] == \
        ["__namespace__", "x__dash__y", "a__dot__b__slash__c", "a__underscores__b", "plain", None]
    schema = {"type": "object", "properties": {"x-y": {"type": "string"}, "if": {"type": "string"}}}
    rules = [{"rule": "self.x__dash__y == self.__if__"}]
    assert cel.check_rules(rules, {"x-y": "a", "if": "a"}, "s", schema=schema) == []
    assert len(cel.check_rules(rules, {"x-y": "a", "if": "b"}, "s", schema=schema)) == 1


@pytest.mark.parametrize("rule", [
    "'a/b/c'.split('/') == ['a', 'b', 'c'] && 'a/b/c'.split('/', 2) == ['a', 'b/c'] && 'abc'.split('', -1).size() == 3",
    "'Hello'.lowerAscii() == 'hello' && 'Hello'.upperAscii() == 'HELLO' && '  x '.trim() == 'x'",
    "'hello'.charAt(1) == 'e' && 'hello'.charAt(5) == '' && 'hello'.indexOf('l') == 2 && 'hello'.lastIndexOf('l') == 3",
    "'hello'.indexOf('l', 3) == 3 && 'hello'.substring(1, 3) == 'el' && 'hello'.substring(3) == 'lo'",
    "'a-b-c'.replace('-', '+') == 'a+b+c' && 'a-b-c'.replace('-', '+', 1) == 'a+b-c' && ['a', 'b'].join('/') == 'a/b'",
    "[1, 2, 2].isSorted() && ![2, 1].isSorted() && [1, 2, 3].sum() == 6 && [3, 1].min() == 1 && [3, 1].max() == 3",
    "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(3) == -1",
    "'abc 123 def 456'.find('[0-9]+') == '123' && 'abc 123 def 456'.findAll('[0-9]+') == ['123', '456']",
])
def test_kubernetes_library_functions(rule):
    assert cel.check_rules([{"rule": rule}], {}, "x") == []


def test_library_errors_and_unmodelled_functions():
    assert cel.check_rules([{"rule": "'abc'.charAt(9) == 'x'"}], {}, "x") == \
        [("x", "Invalid value: \"object\": index out of range: 9 evaluating rule: 'abc'.charAt(9) == 'x'")]
    assert cel.check_rules([{"rule": "[].min() == 0", "message": "m"}], {}, "x") == \
        [("x", 'Invalid value: "object": min called on empty list evaluating rule: m')]
    with pytest.raises(cel.CelUnsupportedError, match=r"\(\) \(the quantity library\)"):
        cel.check_rules([{"rule": "quantity(self.size).isGreaterThan(quantity('1Gi'))"}], {"size": "2Gi"}, "spec")
    with pytest.raises(cel.CelUnsupportedError, match="isURL"):
        cel.compile_rule("isURL(self.url)")
    with pytest.raises(cel.CelError, match="compilation failed"):
        cel.compile_rule("self.a ==")


def test_without_the_schema_reserved_names_are_still_escaped_and_types_come_from_the_value():
    rules = node(HTTPROUTE, "spec.parentRefs")["x-kubernetes-validations"]
    refs = [_parent(namespace="a"), _parent(namespace="b", sectionName="http")]
    assert cel.check_rules(rules, refs, "spec.parentRefs") == []
    assert cel.check_rules(rules, [_parent(namespace="a")] * 2, "spec.parentRefs") == [
        ("spec.parentRefs", 'Invalid value: "array": sectionName must be unique when parentRefs includes 2 or more '
                            'references to the same parent')]
