"""The README and docs/ point only at files that are in the repository."""
import re

import pytest

from conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)\s#?]+)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc):
    missing = [target for target in LINK.findall(doc.read_text()) if not (doc.parent / target).exists()]
    assert not missing, f"{doc.name} links to files not in the repository: {missing}"


def test_readme_links_the_architecture_document():
    assert "(docs/ARCHITECTURE.md)" in (ROOT / "README.md").read_text()


def test_architecture_document_names_only_modules_that_exist():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    paths = set(re.findall(r"`((?:labkit|tests|tools|manifests)/[\w/.-]+\.py)`", text))
    assert paths, "the document should name the modules it describes"
    assert not [p for p in paths if not (ROOT / p).exists()]
