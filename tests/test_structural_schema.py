"""A CRD's structural schema, applied as the API server applies it: pruning, defaults, kube-openapi's checks, CEL.

Small hand-written CRDs exercise each part of the schema language the real
CRDs use; expected messages follow kube-openapi's and apimachinery's wording.
The CEL hook is checked with a stand-in evaluator (the real one is
``labkit.sim.kube.cel``): which nodes it is given, with which paths and old
values, and that a blocking error skips it as the API server does.
"""
from __future__ import annotations

import sys
import types

import pytest

import labkit
from labkit.errors import ApplyError

WIDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "colour": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "code": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "wait": {"type": "string", "format": "duration"},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "ports": {"type": "array", "items": {"type": "object", "required": ["port"],
                                                     "properties": {"port": {"type": "integer"}, "name": {"type": "string"}}},
                          "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"]},
                "target": {"x-kubernetes-int-or-string": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True},
            },
        },
    },
}


def crd(schema: dict) -> dict:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def replace_crd(mesh, schema: dict) -> None:
    mesh.delete("crd/widgets.example.com")
    mesh.apply([crd(schema)])


def widget(**spec) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
            "spec": {"size": 3, **spec}}


@pytest.fixture
def mesh():
    mesh = labkit.connect(seed=2)
    mesh.apply([crd(WIDGET_SCHEMA)])
    return mesh


def refusal(mesh, obj) -> str:
    with pytest.raises(ApplyError) as err:
        mesh.apply([obj])
    return str(err.value).rsplit("\n(", 1)[0]


@pytest.mark.parametrize("spec, expected", [
    ({"size": 0}, "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"),
    ({"size": 11}, "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"),
    ({"size": "3"}, 'spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"'),
    ({"colour": "green"}, 'spec.colour: Unsupported value: "green": supported values: "red", "blue"'),
    ({"code": "ABC"}, "spec.code: Invalid value: \"ABC\": spec.code in body should match '^[a-z]+$'"),
    ({"code": "abcdef"}, "spec.code: Too long: may not be more than 5 bytes"),
    ({"wait": "soon"}, 'spec.wait: Invalid value: "soon": spec.wait in body must be of type duration: "soon"'),
    ({"tags": ["a", "b", "c"]}, "spec.tags: Too many: 3: must have at most 2 items"),
    ({"tags": ["a", "a"]}, 'spec.tags[1]: Duplicate value: "a"'),
    ({"ports": [{"port": 80}, {"port": 80, "name": "again"}]},
     'spec.ports[1]: Duplicate value: map[string]interface {}{"port":80}'),
    ({"ports": [{"name": "http"}]}, "spec.ports[0].port: Required value"),
    ({"target": 1.5}, 'spec.target: Invalid value: "number": spec.target in body must be of type integer,string: "number"'),
    ({"labels": {"a": "1", "b": "2", "c": "3"}}, "spec.labels: Too many: 3: must have at most 2 items"),
    ({"labels": {"a": 1}}, 'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: '
                           '"integer"'),
])
def test_each_check_is_worded_as_kube_openapi_words_it(mesh, spec, expected):
    assert refusal(mesh, widget(**spec)) == f'The Widget "w" is invalid: {expected}'


def test_missing_required_and_unknown_fields(mesh):
    assert refusal(mesh, {**widget(), "spec": {}}) == 'The Widget "w" is invalid: spec.size: Required value'
    text = refusal(mesh, widget(sise=3, extra={"anything": {"goes": 1}}, template={"metadata": {"bogus": 1}}))
    assert text == ('Error from server (BadRequest): error when creating "STDIN": Widget in version "v1" cannot be '
                    'handled as a Widget: strict decoding error: unknown field "spec.sise", unknown field '
                    '"spec.template.metadata.bogus"'), "sorted; preserve-unknown-fields keeps spec.extra's"


def test_pruning_defaults_and_int_or_string_on_what_is_stored(mesh):
    assert mesh.apply([widget(target="http", extra={"x": {"y": 1}}, sise=4)], validate="ignore") == \
        ["widget.example.com/w created"]
    spec = mesh.get("widget", "w", "default")["spec"]
    assert spec == {"size": 3, "target": "http", "extra": {"x": {"y": 1}}, "colour": "red"}


def test_the_cel_hook_gets_each_rule_node_after_defaulting_and_is_skipped_after_a_blocking_error(mesh, monkeypatch):
    calls = []

    def check_rules(rules, value, path, **kwargs):
        calls.append((path, value, kwargs.get("old", "no old")))
        if value.get("low", 0) > value.get("high", 0):
            return [(path, f'Invalid value: "object": {rules[0]["message"]}')]
        return []

    monkeypatch.setitem(sys.modules, "labkit.sim.kube.cel", types.SimpleNamespace(check_rules=check_rules))
    import copy

    schema = copy.deepcopy(WIDGET_SCHEMA)
    schema["properties"]["spec"]["properties"]["limits"] = {
        "type": "object", "properties": {"low": {"type": "integer"}, "high": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.low <= self.high", "message": "low must not exceed high"}]}
    replace_crd(mesh, schema)
    assert mesh.apply([widget(limits={"low": 1, "high": 2})]) == ["widget.example.com/w created"]
    assert calls == [("spec.limits", {"low": 1, "high": 2}, "no old")]
    text = refusal(mesh, widget(limits={"low": 5, "high": 2}))
    assert text == 'The Widget "w" is invalid: spec.limits: Invalid value: "object": low must not exceed high'
    assert calls[-1] == ("spec.limits", {"low": 5, "high": 2}, {"low": 1, "high": 2}), "the old value, on update"
    calls.clear()
    text = refusal(mesh, widget(colour="green", limits={"low": 5, "high": 2}))
    assert calls == [], "an enum error is blocking: no rule is evaluated"
    assert text.endswith('* <nil>: Invalid value: "null": some validation rules were not checked because the object '
                         "was invalid; correct the existing errors to complete validation")


def test_one_of_any_of_and_not(mesh):
    schema = {"type": "object", "properties": {"spec": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"},
                       "n": {"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}]},
                       "s": {"type": "string", "not": {"enum": ["forbidden"]}}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}}}
    replace_crd(mesh, schema)
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}}
    assert refusal(mesh, {**obj, "spec": {"a": "x", "b": "y"}}) == (
        'The Widget "w" is invalid: <nil>: Invalid value: "": "spec" must validate one and only one schema (oneOf). '
        "Found 2 valid alternatives")
    text = refusal(mesh, {**obj, "spec": {"a": "x", "n": 5, "s": "forbidden"}})
    assert set(text.split("\n")[1:]) == {
        '* <nil>: Invalid value: "": "spec.n" must validate at least one schema (anyOf)',
        "* spec.n: Invalid value: 5: spec.n in body should be greater than or equal to 10",
        '* <nil>: Invalid value: "": "spec.s" must not validate the schema (not)'}
