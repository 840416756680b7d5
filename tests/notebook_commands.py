"""The ``linkerd …`` and ``kubectl …`` commands the labs show a learner, pulled out of the notebooks.

Where a command can be shown: markdown code spans and fenced code blocks, and
in code (the labs' code cells and their ``solutions/*.py``) comments and string
literals. Each command keeps the notebook and cell it came from, so a test can
bring the embedded mesh to the lab's state at that point before running it.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat

_COMMAND = re.compile(r"^(?:linkerd|kubectl)\s+[-\w]")  # the tool and a command word, not its bare name
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_SPAN = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Command:
    notebook: str  # e.g. "02-demo-app"
    cell: int  # the cell's index; solutions come after the last cell, in file order
    text: str  # one line, whitespace collapsed, as a shell would read it
    where: str  # "markdown span", "markdown block", "code comment", "code string"

    def __str__(self) -> str:
        return f"{self.notebook}[{self.cell}] {self.text}"


def _one_line(text: str) -> str:
    return " ".join(text.split()).removesuffix(" &").strip()


def _block_lines(block: str) -> list[str]:
    """Shell lines of a fenced block: backslash continuations joined, trailing ``# comments`` dropped."""
    lines, current = [], ""
    for raw in block.splitlines():
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        lines.append(current + raw)
        current = ""
    if current:
        lines.append(current)
    return [re.split(r"\s+#\s", line, maxsplit=1)[0] for line in lines]


def in_markdown(source: str) -> list[tuple[str, str]]:
    found = []
    for block in _FENCE.findall(source):
        found += [(_one_line(line), "markdown block") for line in _block_lines(block) if _COMMAND.match(line.strip())]
    for span in _SPAN.findall(_FENCE.sub("", source)):
        if _COMMAND.match(_one_line(span)):
            found.append((_one_line(span), "markdown span"))
    return found


def in_code(source: str) -> list[tuple[str, str]]:
    """Commands in comments (code spans, or a comment that is a command) and in plain string literals."""
    found = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return found
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            spans = [_one_line(s) for s in _SPAN.findall(text)]
            found += [(s, "code comment") for s in spans if _COMMAND.match(s)]
            if not spans and _COMMAND.match(text):
                found.append((_one_line(text), "code comment"))
        elif tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):
                continue  # an f-string: not a fixed command
            if isinstance(value, str) and _COMMAND.match(value.strip()):
                found.append((_one_line(value), "code string"))
    return found


def extract(notebooks: Path) -> list[Command]:
    """Every command shown in notebooks/NN-*.ipynb and notebooks/solutions/NN-*.py, in reading order."""
    out: list[Command] = []
    for path in sorted(notebooks.glob("[0-9][0-9]-*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        name = path.stem
        for index, cell in enumerate(nb.cells):
            pairs = in_markdown(cell.source) if cell.cell_type == "markdown" else in_code(cell.source)
            out += [Command(name, index, text, where) for text, where in pairs]
        for k, solution in enumerate(sorted((notebooks / "solutions").glob(f"{name[:2]}-*.py"))):
            out += [Command(name, len(nb.cells) + k, text, where) for text, where in in_code(solution.read_text())]
    return out
