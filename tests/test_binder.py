"""Binder: the image repo2docker builds from binder/ has kubectl, exact pins within pyproject's bounds, no test tools.

The pins are checked against pyproject.toml here; what repo2docker makes of
the folder is checked with repo2docker itself (``--no-build`` prints the
Dockerfile it would build: no container engine is needed). CI installs
repo2docker into a throwaway venv and names it in ``LABKIT_REPO2DOCKER``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import tools_required, ROOT

sys.path.insert(0, str(ROOT / "tools"))
from binder_pins import CONDA, canonical, render, runtime_requirements, extra_test_requirements  # noqa: E402
from requirements import pip_requirements  # noqa: E402

BINDER = ROOT / "binder"
#: The Ubuntu release of repo2docker's base image that binder/environment.yml's kubectl choice was checked against.
UBUNTU = "24.04"


def _binder_env():
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if not isinstance(d, dict)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return env, conda, pip


def _pins() -> dict[str, Version]:
    _, _, pip = _binder_env()
    out = {}
    for line in pip:
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==", f"{line!r} is not an exact pin"
        out[canonical(req.name)] = Version(spec[0].version)
    return out


def test_every_binder_requirement_is_an_exact_pin_and_listed_once():
    _, _, pip = _binder_env()
    pins = _pins()
    assert len(pins) == len(pip)
    assert pip == sorted(pip, key=lambda line: canonical(Requirement(line).name))


def test_every_runtime_requirement_is_pinned_within_its_lower_bound():
    pins = _pins()
    for req in runtime_requirements():
        name = canonical(req.name)
        assert name in pins, f"{req} (pyproject.toml) has no pin in binder/environment.yml"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"binder pins {name}=={pins[name]}, outside pyproject.toml's {req}: regenerate with tools/binder_pins.py"


def test_the_learners_image_carries_no_test_tool():
    pins = _pins()
    runtime = {canonical(r.name) for r in runtime_requirements()}
    for req in extra_test_requirements():
        if canonical(req.name) not in runtime:
            assert canonical(req.name) not in pins, f"{req.name} is a test tool; keep it out of the Binder image"


def test_binder_environment_is_exactly_what_the_pin_tool_renders():
    """Hand edits (a loosened pin, a reordered block) drift from the generator; it must stay regenerable."""
    _, conda, pip = _binder_env()
    assert tuple(conda) == CONDA
    assert render(pip) == (BINDER / "environment.yml").read_text()
    # the bootstrap reader Make/CI use understands it too
    assert pip_requirements((BINDER / "environment.yml").read_text()) == pip


def test_kubectl_comes_from_conda_forge_pinned():
    env, conda, _ = _binder_env()
    assert env["channels"] == ["conda-forge"]
    kubectl = [d for d in conda if d.startswith("kubernetes-client")]
    assert len(kubectl) == 1 and re.fullmatch(r"kubernetes-client=1\.\d+\.\d+", kubectl[0])


def test_postbuild_installs_labkit_without_touching_the_pins():
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK)
    text = post.read_text()
    assert text.startswith("#!") and "pip install --no-deps -e ." in text
    assert not (ROOT / "postBuild").exists(), "a root postBuild is ignored by repo2docker once binder/ exists"


# -- the first page a Binder user sees ---------------------------------------------------------------------

def test_the_binder_link_opens_a_lab_that_says_embedded_mesh_before_any_cloud_console():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"https://mybinder\.org/v2/gh/[^)\s]+", readme)
    assert links, "README has no Binder link"
    for link in links:
        labpath = re.search(r"[?&]labpath=([^&)]+)", link)
        assert labpath, f"{link} opens no lab"
        path = ROOT / labpath.group(1).replace("%2F", "/")
        assert path.is_file(), f"{link} opens {path}, which does not exist"
        first = nbformat.read(path, as_version=4).cells[0]
        text = first.source
        assert first.cell_type == "markdown" and "embedded mesh" in text
        head = text[: text.index("embedded mesh")]
        for cloud in ("OKE", "Oracle", "console", "kind", "oci "):
            assert cloud not in head, f"{path.name} mentions {cloud!r} before saying the labs run on the embedded mesh"
        assert "on the embedded mesh" in text.split("\n\n")[1], \
            f"{path.name}'s first paragraph after the title must say where the learner is"


# -- what repo2docker makes of the folder ------------------------------------------------------------------

def _repo2docker() -> str | None:
    return os.environ.get("LABKIT_REPO2DOCKER") or shutil.which("jupyter-repo2docker")


@pytest.fixture(scope="module")
def dockerfile() -> str:
    exe = _repo2docker()
    if not exe:
        reason = ("jupyter-repo2docker not installed (python3 -m venv /tmp/r2d && /tmp/r2d/bin/pip install "
                  "jupyter-repo2docker, then LABKIT_REPO2DOCKER=/tmp/r2d/bin/jupyter-repo2docker; .ci/run does)")
        if tools_required():
            pytest.fail(reason + ". Required because CI or LABKIT_REQUIRE_ALL=1 is set.", pytrace=False)
        pytest.skip(reason)
    out = subprocess.run([exe, "--no-build", "--debug", str(ROOT)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert "FROM " in text, text[-2000:]
    return text


def test_repo2docker_builds_on_the_ubuntu_release_the_kubectl_choice_was_checked_for(dockerfile):
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    assert base.endswith(f":{UBUNTU}"), (
        f"repo2docker's base image is now {base}: check whether its Ubuntu archive has a kubectl package "
        "(an apt.txt would then be simpler than conda-forge's kubernetes-client) and update UBUNTU")


def test_repo2docker_installs_binders_pinned_environment_with_kubectl_then_postbuild(dockerfile):
    update = re.search(r'env update -p \$\{NB_PYTHON_PREFIX\} --file "([^"]+)"', dockerfile)
    assert update and update.group(1) == "binder/environment.yml", "repo2docker does not install binder/environment.yml"
    assert "COPY --chown=0:0 src/binder/environment.yml" in dockerfile
    _, conda, pip = _binder_env()
    assert any(d.startswith("kubernetes-client=") for d in conda) and len(pip) == len(_pins())
    assert re.search(r"^RUN \./binder/postBuild$", dockerfile, re.M)
    # nothing else installs Python packages behind the pins' back
    assert "requirements.txt" not in re.sub(r"/tmp/env/requirements\.txt|requirements\.py-[\d.]+\.pip", "", dockerfile)
    assert '--file "environment.yml"' not in dockerfile
