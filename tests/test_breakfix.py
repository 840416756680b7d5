"""Lab 6: every seeded fault shows its symptom, hides its cause, and is graded fixed only when fixed."""
from __future__ import annotations

import pytest

import labkit
from labkit import breakfix, steps


def fixed_after(mesh, wait="2m") -> breakfix.Grade:
    steps.wait_rolled_out(mesh, breakfix.DEPLOYMENTS, "booksapp")
    mesh.wait(wait)
    return breakfix.grade(mesh)


@pytest.mark.parametrize("fault", [f.name for f in breakfix.FAULTS])
def test_each_fault_is_broken_then_graded_fixed_by_its_answer(fault):
    mesh = labkit.connect(seed=5)
    scenario = breakfix.start(mesh, seed=5, fault=fault)
    assert breakfix.current(mesh) == scenario
    before = breakfix.grade(mesh)
    assert not before.fixed
    # the learner hears the ticket and the symptom, never the cause
    assert before.problems[0] == f'the ticket still holds: "{scenario.fault.report}"'
    if fault != "unmeshed":  # users feel every other fault: webapp fails (an unmeshed books only loses mTLS)
        success = mesh.stat("deploy", namespace="booksapp").set_index("NAME").loc["webapp", "SUCCESS"]
        assert success < breakfix.HEALTHY
    revealed = breakfix.problems(mesh, reveal=True)
    assert revealed and revealed[0] not in before.problems
    breakfix.answer(mesh)
    after = fixed_after(mesh)
    assert after.fixed, after.problems
    assert str(after).startswith("✓ Fixed, and nothing else is broken. What it was: ")


def test_a_fix_that_breaks_something_else_is_not_a_fix():
    mesh = labkit.connect(seed=1)
    breakfix.start(mesh, seed=1, fault="scaled-to-zero")
    mesh.patch("deploy", "authors", {"spec": {"replicas": 1}}, "booksapp")
    mesh.uninject("deploy", namespace="booksapp", name="traffic")
    grade = fixed_after(mesh)
    assert not grade.fixed and "traffic is not meshed" in grade.problems


def test_a_symptom_hidden_by_retries_fixes_the_failure_rate_fault():
    mesh = labkit.connect(seed=1)
    breakfix.start(mesh, seed=1, fault="failure-rate")
    steps.edit_route(mesh, "authors", "booksapp", "HEAD /authors/{id}.json", isRetryable=True)
    assert fixed_after(mesh).fixed


def test_same_seed_same_fault_and_each_run_of_seven_seeds_covers_every_fault():
    assert [breakfix.fault_for(s).name for s in range(20)] == [breakfix.fault_for(s).name for s in range(20)]
    n = len(breakfix.FAULTS)
    for start in range(0, 5 * n, n):
        assert {breakfix.fault_for(s).name for s in range(start, start + n)} == {f.name for f in breakfix.FAULTS}
    assert [breakfix.fault_for(s).name for s in range(n)] != [f.name for f in breakfix.FAULTS]  # shuffled


def test_there_are_at_least_six_faults_and_an_unknown_one_is_named():
    assert len(breakfix.FAULTS) >= 6
    with pytest.raises(ValueError, match="no break-fix fault 'dns'; the faults are: unmeshed, selector"):
        breakfix.start(labkit.connect(), fault="dns")


def test_grading_without_a_scenario_says_how_to_start_one():
    mesh = labkit.connect()
    assert breakfix.problems(mesh) == ["no break-fix scenario on this mesh: run labkit.breakfix.start(mesh, seed) first"]
    assert not breakfix.grade(mesh).fixed


def test_instructors_list_the_fault_of_each_seed(capsys):
    from labkit.__main__ import main

    assert main(["faults", "--seeds", "12"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 12
    for seed, row in enumerate(rows):
        assert row.split()[:3] == ["seed", str(seed), breakfix.fault_for(seed).name]
