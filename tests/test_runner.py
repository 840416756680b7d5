"""`make run`: every lab executed headlessly into executed notebooks + HTML handouts, with a verdict each."""
import pytest

from labkit.runner import lab_notebooks, run_labs


def test_run_writes_the_executed_notebook_and_an_html_handout(tmp_path, capsys):
    [result] = run_labs(out=str(tmp_path), only=["0"])
    assert result.ok and result.verdict == "Lab 0 complete"
    html = (tmp_path / "00-cluster.html").read_text()
    assert "Lab 0 complete" in html and "labs-control-plane" in html
    assert (tmp_path / "00-cluster.ipynb").is_file()
    assert "1/1 labs complete" in capsys.readouterr().out


def test_labs_are_picked_by_number_or_name():
    assert [p.stem for p in lab_notebooks(["5", "00-cluster"])] == ["05-debugging", "00-cluster"]


def test_an_unknown_lab_is_one_clear_error():
    with pytest.raises(SystemExit, match="no lab '9'; the labs are: 00-cluster"):
        lab_notebooks(["9"])
