"""Print the pip requirements listed in environment.yml, one per line.

Binder builds its environment from environment.yml; CI and the Makefile have
no conda, so they install exactly this list with pip. Reading it here without
PyYAML keeps a fresh machine's bootstrap free of dependencies: the file keeps
to a plain block list under ``pip:`` (tests/test_packaging.py checks that this
reading agrees with a real YAML parse).
"""
from __future__ import annotations

import sys
from pathlib import Path


def pip_requirements(text: str) -> list[str]:
    """The entries of the ``pip:`` block list of an environment.yml text."""
    reqs: list[str] = []
    in_pip = False
    pip_indent = -1
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        item = line.strip()
        if item == "- pip:":
            in_pip, pip_indent = True, indent
            continue
        if in_pip:
            if indent <= pip_indent:
                in_pip = False
                continue
            if not item.startswith("- "):
                raise ValueError(f"environment.yml: unexpected line under pip: {raw!r}")
            reqs.append(item[2:].strip())
    if not reqs:
        raise ValueError("environment.yml: no `pip:` requirements found")
    return reqs


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "environment.yml"
    print("\n".join(pip_requirements(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
