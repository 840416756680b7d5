"""The real CustomResourceDefinitions of the releases the embedded mesh models, as data.

One JSON file per release, written by ``tools/crd_schemas.py`` from the upstream repositories at their release
tags (never edit them by hand: re-run the generator)::

    linkerd-2.20.json          linkerd/linkerd2 version-2.20, `linkerd install --crds` (Linkerd's ten CRDs)
    gateway-api-v1.2.1.json    kubernetes-sigs/gateway-api v1.2.1, standard channel (five CRDs)
    gateway-api-v1.2.1-experimental.json   the same release's experimental channel (ten CRDs)
    linkerd-smi-v0.2.6.json    linkerd/linkerd-smi v0.2.6 (TrafficSplit)
    flagger-v1.44.0.json       fluxcd/flagger v1.44.0, artifacts/flagger/crd.yaml (Canary, MetricTemplate, AlertProvider)

Each file is ``{"generatedBy", "source": {"repository", "tag", "commit", "files": {crd name: path}}, "crds": [...]}``;
the CRDs keep their schemas, names, versions, printer columns and CEL rules, without the prose descriptions.

The installers apply these, so a custom resource meets the same schema and rules it meets on a cluster. Labs
install often (every fresh mesh), so a file is read and parsed once per process; each call of :func:`crds` still
returns fresh objects (the apply pipeline owns what it is given).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

LINKERD = "linkerd-2.20"
GATEWAY_API = "gateway-api-v1.2.1"
GATEWAY_API_EXPERIMENTAL = "gateway-api-v1.2.1-experimental"
SMI = "linkerd-smi-v0.2.6"
FLAGGER = "flagger-v1.44.0"
RELEASES = (LINKERD, GATEWAY_API, GATEWAY_API_EXPERIMENTAL, SMI, FLAGGER)


@functools.lru_cache(maxsize=None)
def _load(release: str) -> tuple[dict, tuple[str, ...]]:
    """(source record, each CRD as compact JSON text): parsed once, re-parsed per copy (faster than a deep copy)."""
    if release not in RELEASES:
        raise ValueError(f"unknown CRD release {release!r}; the data files are {', '.join(RELEASES)}")
    data = json.loads((HERE / f"{release}.json").read_text(encoding="utf-8"))
    return data["source"], tuple(json.dumps(crd, separators=(",", ":")) for crd in data["crds"])


def crds(release: str) -> list[dict]:
    """The release's CRDs, as fresh objects, in upstream order."""
    return [json.loads(text) for text in _load(release)[1]]


def source(release: str) -> dict:
    """Where the release's CRDs were read from: repository, tag, commit, and the file of each CRD."""
    return json.loads(json.dumps(_load(release)[0]))
