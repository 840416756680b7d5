"""Run the labs headlessly: executed notebooks and HTML handouts for instructors.

``make run`` (``python -m labkit run``) executes every lab on the embedded
mesh with papermill, writes the executed notebook and an HTML page per lab,
and prints each lab's self-check verdict. The tests use the same functions.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@dataclass
class LabRun:
    name: str
    path: Path
    ok: bool
    seconds: float
    verdict: str


def lab_notebooks(only: list[str] | None = None) -> list[Path]:
    """The lab notebooks in order; ``only`` picks labs by number ("3") or name ("03-canary")."""
    books = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    if not only:
        return books
    picked = []
    for want in only:
        match = [b for b in books if b.stem == want or b.stem.split("-", 1)[0].lstrip("0") == want.lstrip("0") or b.name == want]
        if not match:
            names = ", ".join(b.stem for b in books)
            raise SystemExit(f"no lab {want!r}; the labs are: {names}")
        picked.extend(match)
    return picked


def execute(notebook: Path, out_dir: Path, parameters: dict | None = None):
    """Execute one notebook with papermill (cwd = the notebooks folder, as JupyterLab and nbval run it)."""
    import os

    import papermill

    os.environ["LABKIT_HEADLESS"] = "1"  # live views render their final state; no progress bars
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / notebook.name
    return papermill.execute_notebook(
        str(notebook), str(out), parameters=parameters or {}, cwd=str(notebook.parent),
        kernel_name="python3", progress_bar=False, log_output=False,
    ), out


def stream_text(nb, source_contains: str) -> str:
    """The stdout of the first code cell whose source contains ``source_contains``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and source_contains in cell.source:
            return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    return ""


def cell_text(nb, source_contains: str) -> str:
    """All the text the first code cell whose source contains ``source_contains`` shows: its stdout, then the
    text/plain of what it displays or returns (a cell ending in ``labkit.cli_text(...)`` returns its table)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and source_contains in cell.source:
            parts = []
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream":
                    parts.append(out.get("text", ""))
                elif out.get("output_type") in ("display_data", "execute_result"):
                    parts.append(out.get("data", {}).get("text/plain", ""))
            return "".join(parts)
    return ""


def verdict(nb) -> str:
    text = stream_text(nb, "labkit.selfcheck").strip()
    return text.splitlines()[-1] if text else "(no self-check output)"


#: A markdown link to a lab notebook beside this one: ``[Lab 1 — Install Linkerd](01-install-linkerd.ipynb#top)``.
_LAB_LINK = re.compile(r"\]\((?P<stem>\d\d-[\w-]+)\.ipynb(?P<anchor>#[^)\s]*)?\)")


def lab_title(nb) -> str:
    """The lab's title: the text of its first markdown heading (``# Lab 2 — ...``), else "Notebook"."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return "Notebook"


def handout_links(markdown: str) -> str:
    """Links between lab notebooks rewritten to the handouts written beside them (``02-demo-app.html``).

    A handout is read in a browser with no Jupyter behind it, so a link to a
    ``.ipynb`` would download JSON instead of opening the next lab.
    """
    return _LAB_LINK.sub(lambda m: f"]({m['stem']}.html{m['anchor'] or ''})", markdown)


def to_html(nb, path: Path) -> None:
    """The handout: the executed notebook as one HTML page, titled with the lab's title, linking handouts."""
    import copy

    from nbconvert import HTMLExporter

    page = copy.deepcopy(nb)  # the executed .ipynb keeps its links to notebooks
    for cell in page.cells:
        if cell.cell_type == "markdown":
            cell.source = handout_links(cell.source)
    title = lab_title(page)
    page.metadata["title"] = title  # nbconvert's templates title the page with it
    body, _ = HTMLExporter().from_notebook_node(page, resources={"metadata": {"name": title}})
    path.write_text(body, encoding="utf-8")


def run_labs(out: str = "build/labs", seed: int = 0, only: list[str] | None = None, html: bool = True,
             solutions: bool = True) -> list[LabRun]:
    """Execute the labs headlessly. ``solutions=True`` (the default) fills every "your turn" task with its
    answer: the executed notebooks and HTML handouts are then the answer key, and each lab should say
    "Lab N complete". ``solutions=False`` runs them as a learner first opens them (tasks open)."""
    from tqdm.auto import tqdm

    out_dir = Path(out)
    results = []
    books = lab_notebooks(only)
    for book in tqdm(books, desc="labs", unit="lab"):
        start = time.perf_counter()
        try:
            nb, path = execute(book, out_dir, {"seed": seed, "solutions": solutions})
            v = verdict(nb)
            ok = v.endswith("complete") and "not complete" not in v
            if html:
                to_html(nb, path.with_suffix(".html"))
        except Exception as err:  # papermill raises PapermillExecutionError with the failing cell
            path, ok, v = out_dir / book.name, False, f"failed: {str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__}"
        results.append(LabRun(book.stem, path, ok, time.perf_counter() - start, v))
    width = max((len(r.name) for r in results), default=4)
    print()
    for r in results:
        print(f"{r.name:<{width}}  {r.seconds:6.1f}s  {r.verdict}")
    total = sum(r.seconds for r in results)
    print(f"{sum(r.ok for r in results)}/{len(results)} labs complete in {total:.1f}s; outputs in {out_dir}/")
    return results
