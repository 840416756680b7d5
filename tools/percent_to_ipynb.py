"""Write a lab notebook from a py:percent script (authoring aid; the .ipynb is what is committed).

    python tools/percent_to_ipynb.py draft.py notebooks/NN-name.ipynb

``# %%`` starts a code cell (``# %% tags=["parameters"]`` adds tags),
``# %% [markdown]`` a markdown cell whose lines lose their leading ``# ``.
The result has the labs' notebook metadata (kernelspec python3) and no
outputs, so it passes tests/test_notebook_conventions.py as written.
"""
from __future__ import annotations

import json
import re
import sys

import nbformat

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
LANGUAGE_INFO = {"name": "python", "pygments_lexer": "ipython3"}
_HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def cells_from_percent(text: str) -> list:
    cells, kind, tags, lines = [], None, [], []

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(re.sub(r"^# ?", "", line) for line in body.splitlines())
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def notebook_from_percent(text: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells_from_percent(text)
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO}
    for i, cell in enumerate(nb.cells):  # the ids nbstripout gives, so its --verify passes
        cell["id"] = str(i)
    return nb


def main(argv: list[str]) -> int:
    src, dst = argv[1], argv[2]
    nb = notebook_from_percent(open(src, encoding="utf-8").read())
    nbformat.validate(nb)
    nbformat.write(nb, dst)
    print(f"wrote {dst}: {len(nb.cells)} cells")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
