"""The served ``linkerd`` stand-in reads its argv as cobra does: global flags before or after the subcommand words.

The notebooks print ``linkerd viz -n emojivoto stat deploy``; the real CLI
also takes ``linkerd -n emojivoto viz stat deploy`` and ``... stat deploy
-n emojivoto``, ``--namespace=emojivoto`` and ``-nemojivoto``. Each spelling
must give the very same answer (stat reads the mesh without moving its clock).
"""
from __future__ import annotations

import shlex

import pytest

from conftest import meshed_app
from labkit.sim.serve import cli


@pytest.fixture(scope="module")
def mesh():
    return meshed_app("emojivoto", wait="3m")


def run(mesh, line: str, stdin: str | None = None) -> cli.Result:
    return cli.run(mesh, shlex.split(line), stdin)


@pytest.mark.parametrize("line", [
    "viz -n emojivoto stat deploy",
    "-n emojivoto viz stat deploy",
    "viz stat deploy -n emojivoto",
    "viz stat -n emojivoto deploy",
    "viz stat deploy --namespace=emojivoto",
    "viz stat deploy --namespace emojivoto",
    "viz -nemojivoto stat deploy",
    "viz stat deploy -n=emojivoto",
    "--verbose viz stat deploy -n emojivoto",
    "-L linkerd viz -n emojivoto stat deploy",
    "--linkerd-namespace=linkerd viz stat deploy -n emojivoto",
])
def test_every_flag_placement_gives_the_same_stat(mesh, line):
    expected = run(mesh, "viz stat deploy -n emojivoto")
    assert expected.code == 0 and expected.stdout.splitlines()[0].split()[:2] == ["NAME", "MESHED"]
    assert {row.split()[0] for row in expected.stdout.splitlines()[1:]} == {"emoji", "voting", "web", "vote-bot"}
    got = run(mesh, line)
    assert (got.code, got.stdout, got.stderr) == (0, expected.stdout, "")


def test_output_flag_attached_and_separate_agree(mesh):
    attached = run(mesh, "viz stat deploy -n emojivoto -ojson").stdout
    assert attached.lstrip().startswith("[") and '"name": "voting"' in attached
    assert attached == run(mesh, "viz -o json -n emojivoto stat deploy").stdout


@pytest.mark.parametrize("line", ["-n emojivoto check --proxy", "check -n emojivoto --proxy",
                                  "check --proxy -n emojivoto"])
def test_check_proxy_with_the_namespace_anywhere(mesh, line):
    out = run(mesh, line)
    assert out.code == 0 and "linkerd-data-plane" in out.stdout and "Status check results are" in out.stdout


def test_diagnostics_and_inject_take_flags_before_the_subcommand(mesh):
    metrics = run(mesh, "-n emojivoto diagnostics proxy-metrics deploy/voting")
    assert metrics.code == 0 and metrics.stdout.startswith("#\n# POD voting-")
    manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: []}}}\n"
    injected = run(mesh, "--verbose inject --enable-debug-sidecar -", stdin=manifest)
    assert injected.code == 0 and "config.linkerd.io/enable-debug-sidecar" in injected.stdout


@pytest.mark.parametrize("line, message", [
    ("viz -n emojivoto frobnicate deploy", 'unknown command "frobnicate" for "linkerd viz"'),
    ("-n emojivoto frobnicate", 'unknown command "frobnicate" for "linkerd"'),
    ("viz -n emojivoto", "linkerd viz needs a command"),
    ("viz stat deploy -n", "flag needs an argument: -n"),
    ("viz stat deploy --frob", "unknown flag: --frob"),
])
def test_mistakes_get_one_clear_error(mesh, line, message):
    out = run(mesh, line)
    assert out.code == 1 and message in out.stderr and out.stdout == ""


def test_top_prints_one_frame_of_the_targets_requests(mesh):
    before = mesh.now
    out = run(mesh, "viz -n emojivoto top deploy/web")
    assert out.code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["Source", "Destination", "Method", "Path"]
    assert any("VoteDoughnut" in line for line in lines[1:])
    assert mesh.now > before  # it tapped mesh time, as the real view does in real time
    routes = run(mesh, "viz top deploy/web -n emojivoto --routes")
    assert routes.code == 0 and "Route" in routes.stdout.splitlines()[0]


def test_smi_install_prints_the_trafficsplit_crd(mesh):
    out = run(mesh, "smi install")
    assert out.code == 0
    assert "kind: CustomResourceDefinition" in out.stdout and "name: trafficsplits.split.smi-spec.io" in out.stdout
    assert out.stdout.count("kind: CustomResourceDefinition") == 1


def test_smi_install_needs_the_control_plane_first_unless_told_to_skip_the_checks():
    import labkit

    bare = labkit.connect("sim", seed=0)
    refused = run(bare, "smi install")
    assert refused.code == 1 and refused.stdout == "" and "linkerd-config" in refused.stderr
    assert run(bare, "smi install --skip-checks").stdout == run(bare, "smi --skip-checks install").stdout != ""


@pytest.mark.parametrize("argv, path, rest", [
    (["viz", "-n", "x", "stat", "deploy"], ["viz", "stat"], ["-n", "x", "deploy"]),
    (["-n", "viz", "viz", "stat"], ["viz", "stat"], ["-n", "viz"]),  # a flag's value is never a command word
    (["check", "--pre"], ["check"], ["--pre"]),
    (["--verbose", "version", "--client"], ["version"], ["--verbose", "--client"]),
    (["viz", "tap", "deploy/web", "--to", "deploy/voting"], ["viz", "tap"], ["deploy/web", "--to", "deploy/voting"]),
])
def test_command_path_walks_the_tree_past_flags(argv, path, rest):
    assert cli.command_path(argv) == (path, rest)
