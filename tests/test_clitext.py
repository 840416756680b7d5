"""CLI text in a notebook: the CLI's exact bytes for print/str, a block that never wraps for the eye."""
import html
import re

import pytest
from IPython.core.formatters import DisplayFormatter

import labkit
from conftest import meshed_app
from labkit.clitext import PRE_CLASS, CliText


@pytest.fixture(scope="module")
def top_table():
    mesh = meshed_app(seed=2, wait="1m")
    return mesh.top("deploy/web", namespace="emojivoto", window="1m")


def _pre(markup: str) -> tuple[str, str]:
    """(style, text) of the single <pre> in ``markup``."""
    m = re.fullmatch(r'<pre class="([^"]+)" style="([^"]+)">(.*)</pre>', markup, re.S)
    assert m and m[1] == PRE_CLASS, markup[:120]
    return m[2], html.unescape(m[3])


def test_print_and_str_are_the_clis_bytes(top_table, capsys):
    text = labkit.cli_text(top_table)
    assert isinstance(text, str) and isinstance(text, CliText)
    assert max(len(line) for line in text.splitlines()) > 100  # the kind of table that wrapped at 1366 px
    print(text, end="")
    assert capsys.readouterr().out == str(text)
    assert str(text).encode() == text.encode() and type(str(text)) is str


def test_a_notebook_shows_exact_text_and_a_non_wrapping_block(top_table):
    text = labkit.cli_text(top_table)
    data, _ = DisplayFormatter().format(text)  # what IPython puts in a cell's output
    assert data["text/plain"] == text  # no quotes, no escaped newlines: the table itself
    style, shown = _pre(data["text/html"])
    assert shown == text
    assert "white-space: pre;" in style and "overflow-x: auto" in style


def test_html_is_escaped():
    _, shown = _pre(CliText("<script>&amp;\n")._repr_mimebundle_()["text/html"])
    assert shown == "<script>&amp;\n"
    assert "<script>" not in CliText("<script>")._repr_mimebundle_()["text/html"]


def test_concatenation_keeps_one_block_either_side():
    table = CliText("NAME   READY\nweb    1/1\n")
    for joined in ("applied\n\n" + table, table + "\nnote\n", table + table):
        assert isinstance(joined, CliText)
    assert "applied\n\n" + table == "applied\n\nNAME   READY\nweb    1/1\n"
    with pytest.raises(TypeError):
        table + 1


def test_head_keeps_the_first_lines_like_head_n():
    text = CliText("a\nb\nc\n")
    assert text.head(2) == "a\nb\n" and isinstance(text.head(2), CliText)
    assert text.head(0) == "" and text.head(9) == text
    with pytest.raises(ValueError, match="head"):
        text.head(-1)


def test_canary_report_and_timeline_are_blocks_too():
    from labkit import canary

    mesh = labkit.connect(seed=0)
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=True)
    mesh.wait("2m")
    mesh.install_flagger(provider="linkerd")
    for name in ("podinfo/00-namespace.yml", "podinfo/podinfo.yml", "podinfo/loadtester.yml",
                 "podinfo/flagger/canary.yml"):
        mesh.apply(name)
    mesh.wait("3m")
    assert isinstance(canary.timeline(mesh, "podinfo", "test"), CliText)
    assert isinstance(canary.report(mesh, "podinfo", "test"), CliText)


def test_a_commands_text_passes_through_as_a_block():
    logs = "   61 45.275309086    127.0.0.1 → 127.0.0.1    HTTP2 130 HEADERS\n"
    shown = labkit.cli_text(logs)
    assert shown == logs and isinstance(shown, CliText)
    with pytest.raises(TypeError, match="a command's text"):
        labkit.cli_text(42)
