"""Shared fixtures: the repository's folders and headless notebook execution."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build" / "test-notebooks"
UPSTREAM = ROOT.parent / "shared" / "upstream"

# The kernel's inline backend must draw figures into cell outputs; MPLBACKEND=Agg would suppress them.
os.environ.pop("MPLBACKEND", None)
# Batch runs (papermill and nbval kernels inherit this): live views leave static final output, no progress bars.
os.environ["LABKIT_HEADLESS"] = "1"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def upstream() -> Path:
    if not UPSTREAM.is_dir():
        pytest.skip(f"upstream manifests not found at {UPSTREAM} (they live in ../shared/upstream)")
    return UPSTREAM


_executed: dict[tuple, object] = {}


def run_notebook(name: str, **parameters):
    """Execute notebooks/<name> with papermill once per parameter set; return the executed notebook."""
    from labkit.runner import execute

    key = (name, tuple(sorted(parameters.items())))
    if key not in _executed:
        tag = "-".join(f"{k}{v}" for k, v in sorted(parameters.items())) or "default"
        nb, _ = execute(NOTEBOOKS / name, BUILD / tag, parameters)
        _executed[key] = nb
    return _executed[key]


def pytest_collection_finish(session):
    """Refuse a run that collected no tests at all: an empty run must never look green."""
    if not session.items and not session.config.getoption("collectonly"):
        raise pytest.UsageError("no tests were collected; check the paths given to pytest")


def meshed_app(*sources, namespace: str = "emojivoto", seed: int = 0, wait="2m"):
    """An embedded mesh with Linkerd + viz ready, ``sources`` applied, their namespace meshed, ``wait`` later."""
    import labkit

    mesh = labkit.connect(seed=seed)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait("2m")
    for source in sources or ("emojivoto",):
        mesh.apply(source)
    mesh.inject("deploy", namespace=namespace)
    mesh.wait(wait)
    return mesh
