"""`make run`: every lab executed headlessly into executed notebooks + HTML handouts, with a verdict each."""
import re

import nbformat
import pytest

from labkit.runner import handout_links, lab_notebooks, lab_title, run_labs


def test_run_writes_the_executed_notebook_and_an_html_handout(tmp_path, capsys):
    [result] = run_labs(out=str(tmp_path), only=["0"])
    assert result.ok and result.verdict == "Lab 0 complete"
    html = (tmp_path / "00-cluster.html").read_text()
    assert "Lab 0 complete" in html and "labs-control-plane" in html
    assert re.search(r"<title>\s*Lab 0 — Get a Kubernetes cluster\s*</title>", html)
    assert 'href="01-install-linkerd.html"' in html and 'href="01-install-linkerd.ipynb"' not in html
    executed = (tmp_path / "00-cluster.ipynb").read_text()
    assert "(01-install-linkerd.ipynb)" in executed  # the executed notebook still links notebooks
    assert "1/1 labs complete" in capsys.readouterr().out


def test_labs_are_picked_by_number_or_name():
    assert [p.stem for p in lab_notebooks(["5", "00-cluster"])] == ["05-debugging", "00-cluster"]


def test_an_unknown_lab_is_one_clear_error():
    with pytest.raises(SystemExit, match="no lab '9'; the labs are: 00-cluster"):
        lab_notebooks(["9"])


def test_handout_links_point_at_handouts_and_leave_other_links_alone():
    text = ("**Next:** [Lab 1 — Install Linkerd](01-install-linkerd.ipynb); [retries](02-demo-app.ipynb#retries), "
            "[a solution](solutions/00-q1.py), [elsewhere](https://example.org/03-x.ipynb)")
    assert handout_links(text) == (
        "**Next:** [Lab 1 — Install Linkerd](01-install-linkerd.html); [retries](02-demo-app.html#retries), "
        "[a solution](solutions/00-q1.py), [elsewhere](https://example.org/03-x.ipynb)")


def test_lab_title_is_the_first_heading():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1  # a comment"),
                                         nbformat.v4.new_markdown_cell("intro\n\n# Lab 7 — Something\n## Part")])
    assert lab_title(nb) == "Lab 7 — Something"
    assert lab_title(nbformat.v4.new_notebook()) == "Notebook"
