"""CI and `make` install from one list: environment.yml. It must agree with pyproject.toml (Binder: test_binder.py)."""
import sys
import tomllib

import yaml

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from requirements import pip_requirements  # noqa: E402


def _env_pip():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pips = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    return env, pips[0]["pip"]


def test_environment_yml_lists_exactly_pyprojects_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    _, pip = _env_pip()
    assert sorted(pip) == sorted(declared)


def test_conda_provides_only_python_311_and_pip():
    env, _ = _env_pip()
    plain = [d for d in env["dependencies"] if not isinstance(d, dict)]
    assert sorted(plain) == ["pip", "python=3.11"]


def test_bootstrap_reader_agrees_with_yaml():
    _, pip = _env_pip()
    assert pip_requirements((ROOT / "environment.yml").read_text()) == pip


def test_bounds_are_lower_bounds_not_exact_pins():
    _, pip = _env_pip()
    assert all(">=" in req and "==" not in req for req in pip)


def test_labkit_is_installed_by_postbuild_not_environment_yml():
    _, pip = _env_pip()
    assert not any(req.startswith("-e") or req == "." for req in pip)
    assert "pip install --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()


def test_ci_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "\nmake test\n" in ci
