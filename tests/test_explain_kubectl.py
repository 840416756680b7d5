"""``kubectl explain`` against the served mesh: every field of built-in kinds and CRDs, from the real schemas.

The served ``/openapi/v3`` documents are made of what the embedded API server
validates with (Kubernetes 1.32's OpenAPI from kubernetes-validate, the stored
CRDs' ``openAPIV3Schema``). The expected FIELD/TYPE/ENUM lines below are read
off those schemas: e.g. HTTPGetAction.port is a required IntOrString, the
HTTPRoute path match's type an enum of Exact, PathPrefix, RegularExpression.
"""
from __future__ import annotations

import os
import subprocess

import pytest
import yaml

KUBECTL = "kubectl"


@pytest.fixture(scope="module")
def served(kubectl_bin, tmp_path_factory):
    global KUBECTL
    KUBECTL = kubectl_bin
    import labkit

    mesh = labkit.connect(seed=0)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.install_flagger(provider="linkerd")
    mesh.wait("1m")
    s = mesh.serve(pace=0)
    # kubectl caches OpenAPI documents by their hash under its cache dir: one of our own, so no earlier run's
    # documents are ever read
    s.cache_dir = str(tmp_path_factory.mktemp("kube-cache"))
    yield mesh, s
    s.close()


def kubectl(s, *args, ok: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": s.kubeconfig}
    out = subprocess.run([KUBECTL, f"--cache-dir={s.cache_dir}", *args], capture_output=True, text=True, env=env,
                         timeout=60, input=stdin)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def fields(text: str) -> dict[str, str]:
    """The FIELDS section's ``name <type>`` lines of kubectl explain, as name → type (required marked)."""
    out = {}
    for line in text.split("FIELDS:", 1)[-1].splitlines():
        if line.startswith("  ") and not line.startswith("    ") and "\t" in line:
            name, _, kind = line.strip().partition("\t")
            out[name] = kind
    return out


def test_a_deep_field_of_a_builtin_kind(served):
    _, s = served
    out = kubectl(s, "explain", "deployment.spec.template.spec.containers.readinessProbe.httpGet.port").stdout
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out and "VERSION:    v1" in out
    assert "FIELD: port <IntOrString>" in out
    assert "Name or number of the port to access on the container" in out  # 1.32's description, as shipped
    parent = kubectl(s, "explain", "deployment.spec.template.spec.containers.readinessProbe.httpGet").stdout
    assert "FIELD: httpGet <HTTPGetAction>" in parent
    assert fields(parent) == {"host": "<string>", "httpHeaders": "<[]HTTPHeader>", "path": "<string>",
                              "port": "<IntOrString> -required-", "scheme": "<string>"}
    resources = fields(kubectl(s, "explain", "pod.spec.containers.resources").stdout)
    assert resources["limits"] == resources["requests"] == "<map[string]Quantity>"


def test_a_field_path_that_does_not_exist_is_refused_by_kubectl(served):
    _, s = served
    out = kubectl(s, "explain", "deployment.spec.template.spec.containers.readinesProbe", ok=False)
    assert out.returncode != 0 and 'field "readinesProbe" does not exist' in out.stderr


def test_httproute_path_match_type_is_an_enum(served):
    _, s = served
    out = kubectl(s, "explain", "httproute.spec.rules.matches.path.type").stdout
    assert "KIND:       HTTPRoute" in out and "FIELD: type <string>" in out
    assert out.split("ENUM:", 1)[1].split()[:3] == ["Exact", "PathPrefix", "RegularExpression"]
    gateway = kubectl(s, "explain", "httproutes.gateway.networking.k8s.io.spec.parentRefs").stdout
    assert "GROUP:      gateway.networking.k8s.io" in gateway and "FIELD: parentRefs <[]Object>" in gateway
    assert fields(gateway)["name"] == "<string> -required-" and fields(gateway)["port"] == "<integer>"


def test_crd_fields_of_linkerd_and_flagger(served):
    _, s = served
    retry = kubectl(s, "explain", "serviceprofile.spec.routes.isRetryable").stdout
    assert "GROUP:      linkerd.io" in retry and "VERSION:    v1alpha2" in retry
    assert "FIELD: isRetryable <boolean>" in retry
    analysis = kubectl(s, "explain", "canary.spec.analysis").stdout
    assert "GROUP:      flagger.app" in analysis and "FIELD: analysis <Object>" in analysis
    found = fields(analysis)
    assert found["interval"] == "<string>" and found["stepWeights"] == "<[]number>"
    assert found["metrics"] == found["webhooks"] == "<[]Object>" and found["mirror"] == "<boolean>"


def test_recursive_lists_every_field_below_a_node(served):
    _, s = served
    out = kubectl(s, "explain", "deployment.spec.template.spec.containers.readinessProbe.httpGet",
                  "--recursive").stdout
    listed = [line.strip() for line in out.split("FIELDS:", 1)[1].splitlines() if line.strip()]
    assert listed == ["host\t<string>", "httpHeaders\t<[]HTTPHeader>", "name\t<string> -required-",
                      "value\t<string> -required-", "path\t<string>", "port\t<IntOrString> -required-",
                      "scheme\t<string>"]


WIDGETS = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.lab.example.com"},
    "spec": {"group": "lab.example.com", "scope": "Namespaced",
             "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "description": "A widget of the lab.",
                 "properties": {"spec": {"type": "object", "properties": {
                     "color": {"type": "string", "enum": ["red", "green"], "description": "The widget's color."},
                     "size": {"type": "integer", "minimum": 1},
                     "tags": {"type": "array", "items": {"type": "string"}}}}}}}}]},
}


def test_a_crd_the_user_applies_is_explained_and_its_changes_too(served):
    _, s = served
    kubectl(s, "apply", "-f", "-", stdin=yaml.safe_dump(WIDGETS))
    out = kubectl(s, "explain", "widget.spec").stdout
    assert "GROUP:      lab.example.com" in out and "KIND:       Widget" in out
    assert fields(out) == {"color": "<string>", "size": "<integer>", "tags": "<[]string>"}
    color = kubectl(s, "explain", "widget.spec.color").stdout
    assert "The widget's color." in color and color.split("ENUM:", 1)[1].split()[:2] == ["red", "green"]
    top = kubectl(s, "explain", "widget").stdout
    assert "A widget of the lab." in top and fields(top)["metadata"] == "<ObjectMeta>"
    # a new field in the CRD: the group-version's hash changes, so kubectl reads the new document
    changed = yaml.safe_load(yaml.safe_dump(WIDGETS))
    spec = changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["weight"] = {"type": "number"}
    kubectl(s, "apply", "-f", "-", stdin=yaml.safe_dump(changed))
    assert fields(kubectl(s, "explain", "widget.spec").stdout)["weight"] == "<number>"


# -- deprecated CRD versions ------------------------------------------------------------------------------------------
# linkerd 2.20's servers.policy.linkerd.io marks v1beta1 deprecated, with this deprecationWarning:
SERVER_V1BETA1_WARNING = "policy.linkerd.io/v1beta1 Server is deprecated; use policy.linkerd.io/v1beta3 Server"


def server(version: str, name: str) -> dict:
    return {"apiVersion": f"policy.linkerd.io/{version}", "kind": "Server",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"podSelector": {"matchLabels": {"app": name}}, "port": 8080}}


def test_kubectl_prints_the_deprecation_warning_of_a_crd_version(served):
    _, s = served
    old = kubectl(s, "apply", "-f", "-", stdin=yaml.safe_dump(server("v1beta1", "old-api")))
    assert "server.policy.linkerd.io/old-api created" in old.stdout
    assert f"Warning: {SERVER_V1BETA1_WARNING}" in old.stderr.splitlines()
    read = kubectl(s, "get", "servers.v1beta1.policy.linkerd.io", "old-api", "-o", "name")
    assert read.stdout == "server.policy.linkerd.io/old-api\n" and f"Warning: {SERVER_V1BETA1_WARNING}" in read.stderr
    current = kubectl(s, "apply", "-f", "-", stdin=yaml.safe_dump(server("v1beta3", "new-api")))
    assert "created" in current.stdout and "Warning" not in current.stderr
    assert "Warning" not in kubectl(s, "get", "servers.policy.linkerd.io", "-o", "name").stderr


def test_mesh_apply_prints_the_deprecation_warning(served, capsys):
    mesh, s = served
    with s.lock:
        mesh.apply([server("v1beta1", "old-lib")])
        mesh.apply([server("v1beta3", "new-lib")])
    err = capsys.readouterr().err.splitlines()
    assert err.count(f"Warning: {SERVER_V1BETA1_WARNING}") == 1 and len(err) == 1
