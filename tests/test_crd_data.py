"""The real CRDs as data (labkit/sim/kube/crds): regenerated from the upstream snapshots, installed by the mesh."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import labkit
from labkit.sim.kube import crds

from conftest import UPSTREAM

ROOT = Path(__file__).resolve().parent.parent
MIRRORS = Path(os.environ.get("LABKIT_MIRRORS", ROOT.parent / ".mirror"))


def _generator():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import crd_schemas
    finally:
        sys.path.pop(0)
    return crd_schemas


def test_the_generator_reproduces_the_committed_files():
    crd_schemas = _generator()
    missing = [r.repository for r in crd_schemas.RELEASES
               if not any((MIRRORS / r.mirror / sub / "HEAD").is_file() for sub in ("repo", "."))]
    if missing:
        pytest.skip(f"upstream git snapshots not found under {MIRRORS} ({', '.join(missing)}); set LABKIT_MIRRORS")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "crd_schemas.py"), "--check", "--mirrors", str(MIRRORS)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr


def test_linkerds_crds_are_the_real_clis_output_without_prose():
    """The shared copy of `linkerd install --crds`'s golden (no git snapshot needed) reduces to the data file."""
    import yaml

    golden = UPSTREAM / "linkerd" / "linkerd-install_crds.yaml"
    if not golden.is_file():
        pytest.skip(f"upstream Linkerd goldens not found at {golden.parent}")
    docs = [d for d in yaml.safe_load_all(golden.read_text()) if d]
    assert [_generator().compact_crd(d) for d in docs] == crds.crds(crds.LINKERD)


def _walk(node, found):
    if isinstance(node, dict):
        found["descriptions"] += isinstance(node.get("description"), str) and "type" in node
        found["rules"] += len(node.get("x-kubernetes-validations") or [])
        for value in node.values():
            _walk(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found)
    return found


def test_each_release_records_its_source_and_keeps_rules_but_not_prose():
    rules = {}
    for release in crds.RELEASES:
        source = crds.source(release)
        assert source["tag"] and len(source["commit"]) == 40
        objs = crds.crds(release)
        assert set(source["files"]) == {o["metadata"]["name"] for o in objs}
        found = _walk([v["schema"] for o in objs for v in o["spec"]["versions"]], {"descriptions": 0, "rules": 0})
        assert found["descriptions"] == 0, release
        rules[release] = found["rules"]
    # Gateway API v1.2.1 carries its CEL rules in the schemas; Linkerd's and linkerd-smi's CRDs have none
    assert rules[crds.GATEWAY_API] > 100 and rules[crds.LINKERD] == 0 and rules[crds.SMI] == 0


def test_copies_are_independent():
    first = crds.crds(crds.FLAGGER)
    first[0]["spec"]["names"]["kind"] = "Changed"
    assert crds.crds(crds.FLAGGER)[0]["spec"]["names"]["kind"] == "Canary"


def test_the_mesh_serves_the_real_schemas_and_prefers_the_highest_version():
    mesh = labkit.connect(seed=1)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.install_smi()
    crd = mesh.get("crd", "httproutes.gateway.networking.k8s.io")
    v1 = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    rule_node = v1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["rules"]
    assert rule_node["maxItems"] == 16 and rule_node.get("x-kubernetes-validations")
    assert [c["name"] for c in v1["additionalPrinterColumns"]] == ["Hostnames", "Age"]
    # the CRD lists v1 before v1beta1: kubectl's default version is still the preferred (highest) one
    assert mesh.cluster.resolve("httproute").api_version() == "gateway.networking.k8s.io/v1"
    assert mesh.cluster.resolve("trafficsplit").versions == ("v1alpha1", "v1alpha2")
    linkerd_route = mesh.get("crd", "httproutes.policy.linkerd.io")
    assert linkerd_route["metadata"]["labels"]["helm.sh/chart"].startswith("linkerd-crds-2")
