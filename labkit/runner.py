"""Run the labs headlessly: executed notebooks and HTML handouts for instructors.

``make run`` (``python -m labkit run``) executes every lab on the embedded
mesh with papermill, writes the executed notebook and an HTML page per lab,
and prints each lab's self-check verdict. The tests use the same functions.
"""
from __future__ import annotations

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


def to_html(nb, path: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")


def run_labs(out: str = "build/labs", seed: int = 0, only: list[str] | None = None, html: bool = True) -> list[LabRun]:
    from tqdm.auto import tqdm

    out_dir = Path(out)
    results = []
    books = lab_notebooks(only)
    for book in tqdm(books, desc="labs", unit="lab"):
        start = time.perf_counter()
        try:
            nb, path = execute(book, out_dir, {"seed": seed})
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
