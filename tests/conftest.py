"""Shared fixtures: the repository's folders, headless notebook execution, and the system tools some tests need."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build" / "test-notebooks"
UPSTREAM = ROOT.parent / "shared" / "upstream"

# The kernel's inline backend must draw figures into cell outputs; MPLBACKEND=Agg would suppress them.
os.environ.pop("MPLBACKEND", None)
# Batch runs (papermill and nbval kernels inherit this): live views leave static final output, no progress bars.
os.environ["LABKIT_HEADLESS"] = "1"


# -- system tools --------------------------------------------------------------------------------------------
# A few tests check labkit against real programs (Prometheus, kubectl, a browser) that a Python venv cannot
# install. On a newcomer's machine they skip, naming the command that installs the program, so `make test` is
# green with Python and make alone. In CI (.ci/run installs the programs) or with LABKIT_REQUIRE_ALL=1 a missing
# program is a failure instead: a check that silently stopped running must not look green there.

REQUIRE_ALL_ENV = "LABKIT_REQUIRE_ALL"
#: The install commands the skip reasons name (.ci/run runs the same ones). Prometheus comes from Debian 13's
#: package (2.53.x, the 2.51+ rules of the modelled 2.55) by a script, as Debian 12's is 2.42.
PROMETHEUS_INSTALL = "bash .ci/install-prometheus"
#: The oldest Prometheus CI accepts for the cross-check: 2.52 changed how aggregations read their parameter and
#: 2.51 the extrapolation order; Debian 13's 2.53.3 has both, as the modelled 2.55 does. Outside CI an older one
#: (Debian 12's 2.42) still runs the cross-check, through the evaluator's ``compat="2.42"`` rules.
PROMETHEUS_CI_MIN = (2, 53)
KUBECTL_INSTALL = "apt-get install kubernetes-client"
BROWSER_INSTALL = "apt-get install chromium chromium-driver"


def tools_required() -> bool:
    """True when a missing system tool must fail the test: ``CI`` set (not "false"/"0") or LABKIT_REQUIRE_ALL=1."""
    ci = os.environ.get("CI", "").strip().lower()
    return ci not in ("", "false", "0") or os.environ.get(REQUIRE_ALL_ENV, "").strip() == "1"


def require_tool(name: str, install: str, *, usable: Callable[[str], str | None] | None = None) -> str:
    """The path of the program ``name``, or skip (locally) / fail (CI) with a reason that says how to install it.

    ``install`` is the command that provides it (``apt-get install prometheus``). ``usable(path)`` may reject a
    present but unsuitable program by returning why (an old version, say), which counts as missing.
    """
    path = shutil.which(name)
    problem = None if path else f"`{name}` is not on PATH"
    if path and usable is not None:
        problem = usable(path)
    if problem is None:
        return path
    reason = f"{problem}; install it with `{install}` (.ci/run does)"
    if tools_required():
        pytest.fail(f"{reason}. Required because CI or {REQUIRE_ALL_ENV}=1 is set.", pytrace=False)
    pytest.skip(reason)


def kubectl_too_old(path: str) -> str | None:
    """Why this kubectl cannot drive the served mesh (None: it can). Debian bookworm's 1.20 works."""
    import json
    import re
    import subprocess

    out = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30)
    try:
        minor = int(re.sub(r"\D.*", "", json.loads(out.stdout)["clientVersion"]["minor"]))
    except (ValueError, KeyError):
        return f"`{path} version --client -o json` gave no version ({out.stderr.strip()[:200]})"
    return None if minor >= 20 else f"kubectl 1.{minor} at {path} is older than 1.20"


def prometheus_version(path: str) -> tuple[int, int]:
    """(major, minor) of the Prometheus program (prometheus or promtool) at ``path``."""
    import re
    import subprocess

    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"version (\d+)\.(\d+)", out.stdout + out.stderr)
    if not match:
        raise RuntimeError(f"cannot read the version of {path}: {out.stdout!r} {out.stderr!r}")
    return int(match.group(1)), int(match.group(2))


def prometheus_unusable(path: str) -> str | None:
    """Why this Prometheus cannot be the cross-check's reference here (None: it can): in CI, older than 2.53."""
    version = prometheus_version(path)
    if tools_required() and version < PROMETHEUS_CI_MIN:
        return (f"Prometheus {version[0]}.{version[1]} at {path} predates 2.53, and CI checks the modelled 2.55's "
                f"2.51+ rules against a real server")
    return None


def require_prometheus(tool: str = "prometheus") -> str:
    """The path of ``prometheus`` or ``promtool``: skipped locally without it, a failure in CI (also if < 2.53)."""
    return require_tool(tool, PROMETHEUS_INSTALL, usable=prometheus_unusable)


def prometheus_compat(path: str) -> str | None:
    """The evaluator's ``compat`` that reproduces the Prometheus at ``path`` (None: the modelled 2.55's rules).

    Debian 12's 2.42 extrapolates rate/increase in the pre-2.51 order and reads
    an aggregation's parameter at every step (2.52+ use the first step's);
    ``compat="2.42"`` reproduces both. From 2.53 on nothing the cross-check
    compares differs from 2.55 (tests/test_prometheus_server.py lists what does).
    """
    return "2.42" if prometheus_version(path) < (2, 51) else None


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    """A kubectl >= 1.20: skipped locally without one, a failure in CI (require_tool)."""
    return require_tool("kubectl", KUBECTL_INSTALL, usable=kubectl_too_old)


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


def meshed_app(*sources, namespace: str = "emojivoto", seed: int = 0, wait="2m", settle="2m",
               before_inject: Callable | None = None):
    """An embedded mesh with Linkerd + viz installed and ``settle`` later, ``sources`` applied, then
    ``before_inject(mesh)`` if given, their namespace meshed, ``wait`` later."""
    import labkit

    mesh = labkit.connect(seed=seed)
    mesh.install_gateway_api()
    mesh.install_linkerd()
    mesh.wait(settle)
    for source in sources or ("emojivoto",):
        mesh.apply(source)
    if before_inject is not None:
        before_inject(mesh)
    mesh.inject("deploy", namespace=namespace)
    mesh.wait(wait)
    return mesh


def exposition_total(text: str, metric: str, **labels) -> float:
    """The sum of ``metric``'s samples in a ``/metrics`` text whose labels include all of ``labels``."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(metric + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()))


def podinfo_under_flagger(mesh) -> None:
    """Lab 3's setup on a mesh with Linkerd ready: Flagger rolled out, podinfo and the load tester, the Canary."""
    from labkit import steps

    mesh.install_flagger(provider="linkerd")  # the 2019 SMI provider, which canary.yml is written for
    mesh.wait_for(lambda m: "successfully rolled out" in m.rollout_status("flagger", "flagger-system"), timeout="5m")
    for name in ("podinfo/00-namespace.yml", "podinfo/podinfo.yml", "podinfo/loadtester.yml"):
        mesh.apply(name)
    steps.wait_rolled_out(mesh, ("podinfo", "flagger-loadtester"), "test")
    mesh.apply("podinfo/flagger/canary.yml")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts on loopback)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def set_container_arg(mesh, deployment: str, namespace: str, container: str, flag: str, value: str) -> None:
    """Edit one argument of a control-plane container (``kubectl edit deploy/…``): ``flag`` is its prefix up to
    the value (``--probe-networks=``); the Deployment then rolls out."""
    deploy = mesh.cluster.get("Deployment", deployment, namespace=namespace)
    containers = deploy["spec"]["template"]["spec"]["containers"]
    i = next(i for i, c in enumerate(containers) if c["name"] == container)
    args = [flag + value if a.startswith(flag) else a for a in containers[i]["args"]]
    assert flag + value in args, f"{flag} is not among {container}'s args"
    mesh.patch("deploy", deployment,
               [{"op": "replace", "path": f"/spec/template/spec/containers/{i}/args", "value": args}], namespace)
