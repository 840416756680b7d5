"""Generate labkit/sim/kube/crds/*.json: the real CustomResourceDefinitions the embedded mesh installs, as data.

    .venv/bin/python tools/crd_schemas.py            # rewrite the data files from the upstream snapshots
    .venv/bin/python tools/crd_schemas.py --check    # exit 1 (naming the files) if they differ from a fresh run

The embedded mesh serves Linkerd's, the Gateway API's, linkerd-smi's and Flagger's kinds through the CRDs
those projects publish, so that a resource is judged by the schema and CEL rules a cluster uses. Each release's
CRDs are read from a local snapshot of the upstream git repository at its release tag (bare git directories under
``../.mirror/<owner>+<name>/``, or ``--mirrors DIR``, or ``$LABKIT_MIRRORS``) and written as one JSON file per
release: schemas, names, versions, printer columns and ``x-kubernetes-validations`` rules with their messages are
kept; the prose (``description`` of schema nodes and printer columns) and what a server ignores on create
(``status``, ``metadata.creationTimestamp``) are dropped. Output is deterministic: the same snapshots give the
same bytes (upstream key order, no timestamps), which tests/test_crd_data.py checks when the snapshots exist.

Linkerd's CRDs come from the CLI's own rendered golden (``linkerd install --crds`` with test values), since the
chart's templates are not YAML until Helm renders them; the generator confirms that every policy/workload/profile
template of the chart at the same tag has exactly the golden's ``spec`` (Helm actions blanked out).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "labkit" / "sim" / "kube" / "crds"
DEFAULT_MIRRORS = ROOT.parent / ".mirror"


@dataclass(frozen=True)
class Release:
    """One upstream release's CRDs: where they live and under which file name they are written."""

    name: str          # data file stem, e.g. "gateway-api-v1.2.1"
    repository: str    # owner/name on GitHub
    tag: str
    paths: tuple[str, ...]

    @property
    def mirror(self) -> str:
        return self.repository.replace("/", "+")


_GATEWAY_KINDS = ("gatewayclasses", "gateways", "grpcroutes", "httproutes", "referencegrants")
#: The experimental channel adds these five kinds (and wider schemas for the five above).
_GATEWAY_EXPERIMENTAL_KINDS = ("backendlbpolicies", "backendtlspolicies", "gatewayclasses", "gateways", "grpcroutes",
                               "httproutes", "referencegrants", "tcproutes", "tlsroutes", "udproutes")

RELEASES = (
    # `linkerd install --crds` at 2.20 (installGatewayAPI: false): Linkerd's own ten CRDs.
    Release("linkerd-2.20", "linkerd/linkerd2", "version-2.20", ("cli/cmd/testdata/install_crds.golden",)),
    # The standard channel of the Gateway API release Linkerd 2.20 names (standard-install.yaml is these five).
    Release("gateway-api-v1.2.1", "kubernetes-sigs/gateway-api", "v1.2.1",
            tuple(f"config/crd/standard/gateway.networking.k8s.io_{k}.yaml" for k in _GATEWAY_KINDS)),
    # Its experimental channel (experimental-install.yaml): TCPRoute, TLSRoute and the other alpha kinds.
    Release("gateway-api-v1.2.1-experimental", "kubernetes-sigs/gateway-api", "v1.2.1",
            tuple(f"config/crd/experimental/gateway.networking.k8s.io_{k}.yaml" for k in _GATEWAY_EXPERIMENTAL_KINDS)),
    # `linkerd smi install` of the linkerd-smi release labkit.sim.linkerd.install.SMI_VERSION names.
    Release("linkerd-smi-v0.2.6", "linkerd/linkerd-smi", "v0.2.6", ("charts/linkerd-smi/templates/trafficsplit-crd.yaml",)),
    # Flagger's CRDs (Canary, MetricTemplate, AlertProvider) at the release labkit.sim.flagger.VERSION names.
    Release("flagger-v1.44.0", "fluxcd/flagger", "v1.44.0", ("artifacts/flagger/crd.yaml",)),
)

#: The chart templates whose spec must equal the Linkerd golden's (the Gateway API ones are off by default).
LINKERD_CHART = "charts/linkerd-crds/templates"

#: Schema keywords whose values are data (defaults, examples, enums), copied verbatim: a "description" key inside
#: a default value is not prose to drop.
_VERBATIM = frozenset({"default", "example", "enum", "x-kubernetes-validations"})


class SourceError(RuntimeError):
    pass


def git_dir(mirrors: Path, release: Release) -> Path:
    """The bare git directory of ``release``'s snapshot (``<mirrors>/<owner>+<name>/repo`` or the folder itself)."""
    base = mirrors / release.mirror
    for candidate in (base / "repo", base):
        if (candidate / "HEAD").is_file():
            return candidate
    raise SourceError(f"no git snapshot of {release.repository} under {base} (pass --mirrors DIR or set LABKIT_MIRRORS)")


def git(gdir: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(gdir), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SourceError(f"git -C {gdir} {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def strip_prose(node, field_names: bool = False):
    """``node`` without the ``description`` of schema nodes (a property *named* description stays)."""
    if isinstance(node, list):
        return [strip_prose(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if field_names:  # keys of a `properties` mapping are field names; their values are schemas
            out[key] = strip_prose(value)
        elif key == "description" and isinstance(value, str):
            continue
        elif key in _VERBATIM:
            out[key] = value
        else:
            out[key] = strip_prose(value, field_names=key in ("properties", "patternProperties"))
    return out


def compact_crd(doc: dict) -> dict:
    """The CRD as the installers apply it: prose, status and server-set metadata dropped."""
    metadata = {k: v for k, v in doc["metadata"].items() if k != "creationTimestamp" and v is not None}
    spec = dict(doc["spec"])
    versions = []
    for version in spec["versions"]:
        version = strip_prose(version)
        if "additionalPrinterColumns" in version:
            version["additionalPrinterColumns"] = [{k: v for k, v in col.items() if k != "description"}
                                                   for col in version["additionalPrinterColumns"]]
        versions.append(version)
    spec["versions"] = versions
    return {"apiVersion": doc["apiVersion"], "kind": doc["kind"], "metadata": metadata, "spec": spec}


def crd_documents(text: str, where: str) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
    if not crds:
        raise SourceError(f"{where}: no CustomResourceDefinition found")
    return crds


def confirm_linkerd_chart(gdir: Path, tag: str, golden: list[dict]) -> None:
    """Each non-Gateway-API CRD template of the linkerd-crds chart at ``tag`` has the golden's spec."""
    by_name = {d["metadata"]["name"]: d for d in golden}
    paths = [p for p in git(gdir, "ls-tree", "-r", "--name-only", tag, LINKERD_CHART).split()
             if p.endswith(".yaml") and "gateway.networking.k8s.io" not in p]
    seen = set()
    for path in paths:
        text = re.sub(r"\{\{.*?\}\}", "helm", git(gdir, "show", f"{tag}:{path}"))
        for doc in crd_documents(text, path):
            name = doc["metadata"]["name"]
            if name not in by_name or by_name[name]["spec"] != doc["spec"]:
                raise SourceError(f"{tag}:{path}: {name}'s spec differs from the rendered golden")
            seen.add(name)
    if seen != set(by_name):
        raise SourceError(f"{tag}:{LINKERD_CHART}: templates cover {sorted(seen)}, the golden has {sorted(by_name)}")


def bundle(release: Release, mirrors: Path) -> dict:
    """The data file's content for ``release``."""
    gdir = git_dir(mirrors, release)
    commit = git(gdir, "rev-parse", f"{release.tag}^{{commit}}").strip()
    upstream, files = [], {}
    for path in release.paths:
        for doc in crd_documents(git(gdir, "show", f"{release.tag}:{path}"), f"{release.tag}:{path}"):
            upstream.append(doc)
            files[doc["metadata"]["name"]] = path
    if release.repository == "linkerd/linkerd2":
        confirm_linkerd_chart(gdir, release.tag, upstream)
    return {
        "generatedBy": "tools/crd_schemas.py",
        "source": {"repository": release.repository, "tag": release.tag, "commit": commit, "files": files},
        "crds": [compact_crd(doc) for doc in upstream],
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def generate(mirrors: Path) -> dict[Path, str]:
    """Data file path → its content, for every release."""
    return {OUT / f"{release.name}.json": render(bundle(release, mirrors)) for release in RELEASES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    parser.add_argument("--mirrors", type=Path, default=Path(os.environ.get("LABKIT_MIRRORS", DEFAULT_MIRRORS)),
                        help="folder of the upstream git snapshots (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        files = generate(args.mirrors)
    except SourceError as err:
        print(f"crd_schemas: {err}", file=sys.stderr)
        return 2
    if args.check:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run tools/crd_schemas.py)", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
