"""Live views: paced and redrawn interactively, a deterministic final state when headless."""
import pytest

import labkit
from conftest import meshed_app
from labkit import widgets


@pytest.fixture
def mesh():
    return meshed_app(seed=4, wait="1m")


def test_headless_live_stat_prints_the_final_table(mesh, capsys, monkeypatch):
    monkeypatch.setenv("LABKIT_HEADLESS", "1")
    start = mesh.clock.t
    assert widgets.live_stat(mesh, "deploy", "emojivoto", duration="1m", every="10s", plot=False) is None
    assert mesh.clock.t - start == 60
    printed = capsys.readouterr().out
    assert printed == labkit.cli_text(mesh.stat("deploy", namespace="emojivoto"))


def _displayed(monkeypatch) -> list:
    """Record what IPython's display() is handed (the live views import it when called)."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    return shown


def test_interactive_live_stat_redraws_one_displayed_widget(mesh, monkeypatch):
    monkeypatch.setenv("LABKIT_HEADLESS", "0")
    shown = _displayed(monkeypatch)
    # A cell's last line: a non-None value would be displayed a second time by the shell.
    assert widgets.live_stat(mesh, "deploy", "emojivoto", duration="30s", every="10s", pace=0, plot=False) is None
    (box,) = shown
    heading, table, _ = box.children
    assert "(3/3)" in heading.value
    assert "voting" in table.value and table.value.startswith('<pre class="labkit-cli"')
    assert "white-space: pre;" in table.value  # rows never wrap in a narrow window


def test_interactive_live_top_displays_once(mesh, monkeypatch):
    monkeypatch.setenv("LABKIT_HEADLESS", "0")
    shown = _displayed(monkeypatch)
    assert widgets.live_top(mesh, "deploy/web", "emojivoto", duration="20s", every="10s", pace=0) is None
    (table,) = shown
    assert "/api/list" in table.value and "white-space: pre;" in table.value


def test_live_top_headless_aggregates_the_whole_window(mesh, capsys, monkeypatch):
    monkeypatch.setenv("LABKIT_HEADLESS", "1")
    widgets.live_top(mesh, "deploy/web", "emojivoto", duration="20s", every="10s")
    out = capsys.readouterr().out
    assert "/api/list" in out and "Success Rate" in out.splitlines()[0]


def test_bad_step_is_one_clear_error(mesh):
    with pytest.raises(ValueError, match="every="):
        widgets.live_stat(mesh, duration="1m", every=0)


def test_a_live_view_as_a_cells_last_line_shows_once_in_a_real_kernel(monkeypatch):
    """The README's usage, run by a Jupyter kernel: one widget output, no second copy as the cell's value."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LABKIT_HEADLESS", "0")  # the kernel inherits it: an interactive session
    setup = ("import labkit, labkit.widgets\n"
             "mesh = labkit.connect(seed=4)\nmesh.install_gateway_api()\nmesh.install_linkerd()\nmesh.wait('2m')\nmesh.apply('emojivoto')\n"
             "mesh.inject('deploy', namespace='emojivoto')\nmesh.wait('1m')")
    cells = [nbformat.v4.new_code_cell(setup),
             nbformat.v4.new_code_cell('labkit.widgets.live_stat(mesh, "deploy", "emojivoto", duration="20s", '
                                       'every="10s", pace=0, plot=False)'),
             nbformat.v4.new_code_cell('labkit.widgets.live_top(mesh, "deploy/web", "emojivoto", duration="20s", '
                                       'every="10s", pace=0)')]
    nb = nbformat.v4.new_notebook(cells=cells)
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    for cell in nb.cells[1:]:
        kinds = [(o["output_type"], sorted(o.get("data", {}))) for o in cell.outputs]
        assert kinds == [("display_data", ["application/vnd.jupyter.widget-view+json", "text/plain"])], kinds
