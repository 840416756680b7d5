""""Your turn": tasks the learner does in a lab, graded on the mesh.

A lab's narrative does the work up to a point; a task then asks the learner to
write the next piece themselves — the YAML, the annotation, the query or the
labkit call — in an empty cell, and the cell after it grades what is now *on
the mesh* (or what the learner's query returns there), not what was typed:

    labkit.tasks.check(mesh, "2.1")        # ✓ done, or what is still wrong, precisely
    labkit.tasks.hint("2.1")               # the next hint, one at a time
    %load solutions/02-t1.py               # one worked answer

A check never raises for an unfinished task and never changes the mesh: it
returns the list of problems, phrased for a learner ("the route has no
parentRef to the books Service"), empty when the task is done. The same
checks feed each lab's self-check, so "Lab N complete" means every task was
really done. The notebooks' ``solutions`` parameter runs each task's solution
file in the task's own cell (``make run`` and the tests use it to produce the
answer key).

Tasks are defined per lab in this package's modules (``cluster``, ``install``,
``books``, ``canary``, ``emojivoto``), on the labkit contract only, so they
grade a real cluster the same way as the embedded mesh.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from labkit.errors import LabkitError
from labkit.lookups import is_number, query_sum

#: Every task by its key ("2.1"), filled in by the lab modules below on import.
TASKS: dict[str, "Task"] = {}


@dataclass(frozen=True)
class Task:
    key: str                          # "<lab>.<n>", as the notebook heading numbers it
    title: str                        # what the learner achieves, one line
    command: str                      # the kubectl / linkerd command the labkit call stands for
    grade: Callable[..., list[str]]   # (mesh, answer) -> what is still wrong; [] when done
    hints: tuple[str, ...] = ()
    takes_answer: bool = False        # graded on a value the learner gives (a query), not only the mesh
    undone_later: bool = False        # the lab's narrative removes it afterwards: the self-check counts a pass seen

    @property
    def lab(self) -> int:
        return int(self.key.split(".")[0])

    @property
    def solution_file(self) -> str:
        """Where the worked answer lives, relative to the notebooks folder."""
        lab, n = self.key.split(".")
        return f"solutions/{int(lab):02d}-t{n}.py"


@dataclass
class Result:
    """What ``check`` prints: the task, and what is still wrong (nothing when done)."""

    task: Task
    problems: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = f"Your turn {self.task.key} — {self.task.title}"
        if self.done:
            return f"✓ {head}: done"
        lines = [f"✗ {head}: not done yet"] + [f"  - {p}" for p in self.problems]
        if self.task.hints:
            lines.append(f"  (a hint: labkit.tasks.hint({self.task.key!r}); an answer: %load {self.task.solution_file})")
        return "\n".join(lines)

    __repr__ = __str__


def task(key: str, title: str, command: str, *hints: str, takes_answer: bool = False, undone_later: bool = False):
    """Register a lab's grader as the task ``key`` (a decorator for the lab modules)."""
    def register(grade: Callable[..., list[str]]) -> Callable[..., list[str]]:
        if key in TASKS:
            raise ValueError(f"task {key} is defined twice")
        TASKS[key] = Task(key, title, command, grade, tuple(hints), takes_answer, undone_later)
        return grade
    return register


def get(key: str) -> Task:
    """The task ``key`` ("2.1"); a clear error naming the lab's tasks otherwise."""
    key = str(key)
    if key not in TASKS:
        lab = key.split(".")[0]
        mine = [k for k in TASKS if k.split(".")[0] == lab] or sorted(TASKS)
        raise KeyError(f"no task {key!r}; the tasks are: {', '.join(mine)}")
    return TASKS[key]


def of_lab(lab: int) -> list[Task]:
    """A lab's tasks in order."""
    return sorted((t for t in TASKS.values() if t.lab == lab), key=lambda t: int(t.key.split(".")[1]))


def check(mesh, key: str, answer: Any = None) -> Result:
    """Grade task ``key`` on ``mesh`` (and the learner's ``answer`` for a query task).

    A grader that trips over something unexpected reports it as a problem
    rather than raising: the learner sees what could not be read.
    """
    t = get(key)
    if answer is None:
        answer = _answers.get(key)
    else:
        _answers[key] = answer
    if t.takes_answer and (answer is None or not str(answer).strip()):
        return Result(t, ["no answer given yet: pass yours, e.g. labkit.tasks.check(mesh, "
                          f"{key!r}, answer=my_query)"])
    try:
        problems = t.grade(mesh, answer) if t.takes_answer else t.grade(mesh)
    except LabkitError as err:
        problems = [f"could not read the mesh: {err}"]
    except Exception as err:  # noqa: BLE001 - a grader must not stop the lab
        frame = traceback.extract_tb(err.__traceback__)[-1]
        problems = [f"the check itself failed ({type(err).__name__}: {err} at {frame.name}); please report it"]
    if not problems:
        _passed.add(key)
    return Result(t, list(problems))


#: The last answer given for each query task, so the lab's self-check grades it again.
_answers: dict[str, Any] = {}
#: The tasks seen done in this kernel, for the self-check of a task the lab later undoes (the split removed).
_passed: set[str] = set()
_hints_given: dict[str, int] = {}


def hint(key: str, n: int | None = None) -> str:
    """The task's next hint (or hint number ``n``), one more each call."""
    t = get(key)
    if not t.hints:
        return f"Task {key} has no hints; the answer is in {t.solution_file}"
    i = (n - 1) if n is not None else _hints_given.get(key, 0)
    i = max(0, min(i, len(t.hints) - 1))
    _hints_given[key] = i + 1
    more = "" if i + 1 < len(t.hints) else f" (last hint; the answer: %load {t.solution_file})"
    return f"Hint {i + 1}/{len(t.hints)} for {key}: {t.hints[i]}{more}"


def grade_query(mesh, answer: str, reference: str, *, what: str, tolerance: float = 0.02) -> list[str]:
    """Run the learner's PromQL on the mesh and compare it with the reference query, now."""
    try:
        mine = mesh.query(answer)
    except Exception as err:  # noqa: BLE001 - any error is the learner's to see
        return [f"the query does not run: {err}"]
    expected = query_sum(mesh, reference)
    if not len(mine):
        return ["the query returns nothing: check the metric and label names (and that there is traffic)"]
    if len(mine) > 1:
        return [f"the query returns {len(mine)} series; {what} is one number: sum() them"]
    value = float(mine["value"].iloc[0])
    if not is_number(value):
        return ["the query returns NaN: no traffic matches it in the last minute"]
    if value > 1.0 + 1e-9 and abs(value / 100 - expected) <= tolerance:
        return ["that is a percentage; the task asks for a fraction between 0 and 1"]
    if abs(value - expected) > tolerance:
        return [f"the query gives {value:.4f}, but {what} is {expected:.4f} now"]
    return []


def expect_all(selfcheck, mesh, lab: int, answers: dict | None = None) -> None:
    """Add one self-check line per task of ``lab``: done, or its first problem."""
    for t in of_lab(lab):
        if t.undone_later and t.key in _passed:
            selfcheck.expect(f"your turn {t.key}: {t.title} (done earlier in the lab)", True)
            continue
        result = check(mesh, t.key, (answers or {}).get(t.key))
        selfcheck.expect(f"your turn {t.key}: {t.title}", result.done,
                         result.problems[0] if result.problems else "")


# Importing the lab modules registers their tasks (they import ``task`` from here, so this comes last).
from labkit.tasks import books, canary, cluster, emojivoto, install  # noqa: E402

LAB_MODULES = (cluster, install, books, canary, emojivoto)
