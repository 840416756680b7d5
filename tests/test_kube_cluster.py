"""The kube backend on a real cluster (kind, k3d, OKE...): only when LABKIT_CONTEXT names one.

    LABKIT_CONTEXT=kind-labs .venv/bin/python -m pytest -m cluster tests/test_kube_cluster.py

Everything these tests create lives in a namespace of their own, labelled,
and is torn down at the end; nothing else in the cluster is touched.
"""
from __future__ import annotations

import os
import uuid

import pytest

import labkit

CONTEXT = os.environ.get("LABKIT_CONTEXT")
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not CONTEXT, reason="needs a real cluster: set LABKIT_CONTEXT to a kubeconfig context "
                                           "(e.g. kind-labs); the served embedded mesh covers the same code paths"),
]


@pytest.fixture(scope="module")
def mesh():
    return labkit.connect("kube", context=CONTEXT, lab="labkit-tests")


def test_nodes_are_listed(mesh):
    nodes = mesh.nodes()
    assert list(nodes.columns) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] and len(nodes) > 0


def test_apply_patch_get_delete_and_teardown_in_a_namespace_of_its_own(mesh):
    ns = f"labkit-test-{uuid.uuid4().hex[:6]}"
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe", "namespace": ns}, "data": {"a": "1"}}]
    try:
        assert mesh.apply(docs) == [f"namespace/{ns} created", "configmap/probe created"]
        assert mesh.apply(docs) == [f"namespace/{ns} unchanged", "configmap/probe unchanged"]
        mesh.patch("configmap", "probe", {"data": {"a": "2"}}, namespace=ns)
        cm = mesh.get("configmap", "probe", ns)
        assert cm["data"] == {"a": "2"} and cm["metadata"]["labels"]["linkerd-labs/lab"] == "labkit-tests"
        assert mesh.pods(ns).empty
    finally:
        lines = mesh.teardown("labkit-tests")
    assert f'namespace "{ns}" deleted' in lines


def test_viz_prometheus_through_a_port_forward(mesh):
    try:
        frame = mesh.query("vector(1)")
    except labkit.QueryError as exc:
        pytest.skip(f"linkerd-viz is not installed in this cluster: {exc}")
    assert frame["value"].tolist() == [1.0]
