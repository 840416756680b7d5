"""Every lab notebook follows one skeleton and is committed without outputs."""
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from conftest import NOTEBOOKS

LABS = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
#: Section headings are verbs (what the learner does); these few fixed headings are the exceptions.
FIXED_HEADINGS = {"Check your understanding", "Self-check", "Summary"}
#: Allowed too: the graded tasks' section ("your turn" tasks are ### headings under it).
OPTIONAL_HEADINGS = {"Your turn"}
VERBS = {
    "Choose", "Create", "Connect", "Inspect", "Check", "Install", "Open", "Deploy", "Inject", "Find", "Watch",
    "Add", "Retry", "Set", "Generate", "Split", "Remove", "Roll", "Promote", "Measure", "Compare", "Read",
    "Tap", "Capture", "Debug", "Look", "Draw", "Apply", "Break", "Restore", "Clean", "Explore", "Run", "Try", "Plot",
    "Mesh", "Send", "See", "Time", "Configure", "Switch", "Verify", "Use", "Start", "Stop", "Test", "Release",
    "Investigate", "Fix", "Read",
}


def lab_number(path):
    return int(path.name[:2])


def test_there_are_lab_notebooks():
    assert LABS and LABS[0].name == "00-cluster.ipynb"


@pytest.fixture(params=LABS, ids=lambda p: p.stem)
def lab(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_kernelspec_is_python3(lab):
    _, nb = lab
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_opens_with_title_objectives_prerequisites_and_time(lab):
    path, nb = lab
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith(f"# Lab {lab_number(path)} — ")
    for part in ("**Objectives**", "**Prerequisites:**", "**Time:**"):
        assert part in first.source, part


def test_parameters_are_typed_and_documented(lab):
    path, nb = lab
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    params = papermill.inspect_notebook(str(path))
    assert {"backend", "seed", "context"} <= set(params)
    assert params["backend"]["default"] == '"sim"' and params["backend"]["inferred_type_name"] == "str"
    assert params["seed"]["default"] == "0" and params["seed"]["inferred_type_name"] == "int"
    assert params["context"]["default"] == "None"
    assert all(p["help"] for p in params.values()), "every parameter has a # help comment"


def test_sections_are_verbs_and_the_skeleton_is_complete(lab):
    path, nb = lab
    headings = [m for c in nb.cells if c.cell_type == "markdown" for m in re.findall(r"^## (.+)$", c.source, re.M)]
    assert FIXED_HEADINGS <= set(headings)
    for heading in headings:
        if heading not in FIXED_HEADINGS | OPTIONAL_HEADINGS:
            assert heading.split()[0] in VERBS, f"section {heading!r} should start with a verb"
    assert headings[-1] == "Summary"


def test_self_check_cell_calls_the_labs_check(lab):
    path, nb = lab
    n = lab_number(path)
    assert any(f"labkit.selfcheck.lab{n}(mesh)" in c.source for c in nb.cells if c.cell_type == "code")


def test_solutions_exist_for_every_question(lab):
    path, nb = lab
    loads = [m for c in nb.cells for m in re.findall(r"%load (solutions/[\w.-]+\.py)", c.source)]
    assert loads, "check-your-understanding questions come with loadable solutions"
    for rel in loads:
        assert (NOTEBOOKS / rel).is_file(), rel


def test_summary_links_the_next_lab(lab):
    path, nb = lab
    n = lab_number(path)
    links = re.findall(r"\]\((\d\d-[\w-]+\.ipynb)\)", nb.cells[-1].source)
    if n < 5:
        assert links and links[0].startswith(f"{n + 1:02d}-")
        written = sorted(NOTEBOOKS.glob(f"{n + 1:02d}-*.ipynb"))
        if written:  # a lab not written yet is linked by its planned name
            assert links[0] == written[0].name


def test_committed_without_outputs(lab):
    path, nb = lab
    assert "papermill" not in nb.metadata and "widgets" not in nb.metadata
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.metadata.get("keep_output"):
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
        assert "papermill" not in cell.metadata and "execution" not in cell.metadata


def test_nbstripout_would_change_nothing():
    # nbstripout is a test dependency (environment.yml), so it sits beside this interpreter, whatever PATH says
    exe = str(Path(sys.executable).parent / "nbstripout")
    keys = "metadata.papermill cell.metadata.papermill cell.metadata.execution metadata.widgets"
    result = subprocess.run([exe, "--verify", "--keep-count", "--extra-keys", keys, *map(str, LABS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
