"""Fault injection in-process: structurally wrong manifests get one clear error naming the field; nothing applied."""
from __future__ import annotations

import pytest

import labkit
from labkit.errors import ApplyError

GOOD_CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\ndata: {a: b}\n"

BAD = {
    # kube-apiserver's JSON decoder refuses a value of the wrong type (400 BadRequest); kubectl decodes metadata itself
    "spec: hello": ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: hello\n",
                    ['Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" cannot be '
                     'handled as a Deployment: json: cannot unmarshal string into Go struct field Deployment.spec of type '
                     'v1.DeploymentSpec']),
    "metadata: [1]": ("apiVersion: v1\nkind: ConfigMap\nmetadata: [1]\n",
                      ['error: unable to decode "STDIN": json: cannot unmarshal array into Go struct field '
                       'metadataOnlyObject.metadata of type v1.ObjectMeta']),
    "labels: [1]": ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: [1]}\n",
                    ["cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string"]),
    "data: hello": ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: hello\n",
                    ['ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal string into Go '
                     'struct field ConfigMap.data of type map[string]string']),
    "containers: hello": ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: hello}\n",
                          ["json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type "
                           "[]v1.Container"]),
    "template: 3": ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
                    "spec: {selector: {matchLabels: {a: b}}, template: 3}\n",
                    ["json: cannot unmarshal number into Go struct field DeploymentSpec.spec.template of type "
                     "v1.PodTemplateSpec"]),
    "service spec: [1]": ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: [1]\n",
                          ['Service in version "v1" cannot be handled as a Service: json: cannot unmarshal array into Go '
                           'struct field Service.spec of type v1.ServiceSpec']),
    "strategy: hello": ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {a: b}}\n"
                        "  strategy: hello\n  template:\n    metadata: {labels: {a: b}}\n"
                        "    spec: {containers: [{name: c, image: nginx:1.25}]}\n",
                        ["json: cannot unmarshal string into Go struct field DeploymentSpec.spec.strategy of type "
                         "v1.DeploymentStrategy"]),
    "name of 300 characters": ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + "a" * 300 + "}\n",
                               ["must be no more than 253 characters"]),
    "namespace name of 64": ("apiVersion: v1\nkind: Namespace\nmetadata: {name: " + "n" * 64 + "}\n",
                             ["must be no more than 63 characters"]),
    "service name of 64": ("apiVersion: v1\nkind: Service\nmetadata: {name: " + "s" * 64 + "}\nspec: {ports: [{port: 80}]}\n",
                           ["must be no more than 63 characters"]),
}


@pytest.fixture(scope="module")
def mesh():
    return labkit.connect(seed=3)


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_wrong_shape_is_one_clear_error_and_nothing_is_applied(mesh, case):
    text, expected = BAD[case]
    before = mesh.cluster.revision
    with pytest.raises(ApplyError) as err:
        mesh.apply(GOOD_CM + "---\n" + text, namespace="default")  # the good document first: it must not land
    message = str(err.value)
    for part in expected:
        assert part in message
    assert "nothing from this apply was applied" in message
    assert "character" not in message or "no more than" in message  # a long name gets the length message only
    assert mesh.cluster.revision == before
    with pytest.raises(Exception):
        mesh.get("ConfigMap", "good", namespace="default")


@pytest.mark.parametrize("source", ["", "   \n", "# only a comment\n---\n", []])
def test_apply_and_delete_of_nothing_say_so_like_kubectl(mesh, source):
    before = mesh.cluster.revision
    with pytest.raises(ApplyError, match="no objects passed to apply"):
        mesh.apply(source)
    with pytest.raises(ApplyError, match="no objects passed to delete"):
        mesh.delete(source)
    assert mesh.cluster.revision == before


def test_a_valid_long_name_at_the_limit_is_accepted(mesh):
    assert mesh.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + "a" * 253 + "}\n",
                      namespace="default") == [f"configmap/{'a' * 253} created"]
