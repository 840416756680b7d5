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


def test_interactive_live_stat_redraws_a_widget(mesh, monkeypatch):
    monkeypatch.setenv("LABKIT_HEADLESS", "0")
    box = widgets.live_stat(mesh, "deploy", "emojivoto", duration="30s", every="10s", pace=0, plot=False)
    heading, table, _ = box.children
    assert "(3/3)" in heading.value
    assert "voting" in table.value and table.value.startswith("<pre>")


def test_live_top_headless_aggregates_the_whole_window(mesh, capsys, monkeypatch):
    monkeypatch.setenv("LABKIT_HEADLESS", "1")
    widgets.live_top(mesh, "deploy/web", "emojivoto", duration="20s", every="10s")
    out = capsys.readouterr().out
    assert "/api/list" in out and "Success Rate" in out.splitlines()[0]


def test_bad_step_is_one_clear_error(mesh):
    with pytest.raises(ValueError, match="every="):
        widgets.live_stat(mesh, duration="1m", every=0)
