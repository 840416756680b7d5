"""An error labkit raises on purpose shows in a notebook as its message, the way kubectl prints a refusal.

IPython replaces the traceback with ``_render_traceback_``: these run a real IPython shell and read what it
prints for a learner's typo, and check that a bug (any other exception) still shows its traceback.
"""
from __future__ import annotations

import pytest

import labkit

TYPO = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: default
dataa:
  colour: blue
"""


@pytest.fixture()
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    yield sh
    InteractiveShell.clear_instance()


def _run(shell, capsys, code: str) -> str:
    capsys.readouterr()
    shell.run_cell(code)
    return capsys.readouterr().out


def test_a_refused_manifest_shows_the_servers_words_not_a_traceback(shell, capsys):
    shell.user_ns.update(mesh=labkit.connect("sim", seed=0), TYPO=TYPO)
    out = _run(shell, capsys, "mesh.apply(TYPO)")
    assert "ApplyError: " in out
    assert 'unknown field "dataa"' in out
    assert "Traceback" not in out and "labkit/sim" not in out
    with pytest.raises(labkit.errors.NotFoundError):
        shell.user_ns["mesh"].get("ConfigMap", "settings", "default")


def test_several_causes_keep_their_lines(shell, capsys):
    from labkit.errors import ApplyError

    shell.user_ns["ApplyError"] = ApplyError
    out = _run(shell, capsys, 'raise ApplyError("The Service \\"s\\" is invalid: \\n* a: Required value\\n* b: Invalid value")')
    assert out.splitlines()[-3:] == ['ApplyError: The Service "s" is invalid: ', "* a: Required value", "* b: Invalid value"]


def test_a_bug_still_shows_its_traceback(shell, capsys):
    out = _run(shell, capsys, "def f():\n    return {}['x']\nf()")
    assert "KeyError" in out and ("Traceback" in out or "----> " in out)
