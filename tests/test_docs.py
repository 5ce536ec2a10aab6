"""The repository is self-contained: code points to its own docs/, and every anchor exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    *sorted(
        p
        for folder in ("gkaan_cli", "tests", "benchmarks", "weights", "docs")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in {".py", ".md"}
    ),
    ROOT / "README.md",
    ROOT / "ARCHITECTURE.md",
    ROOT / "CHANGELOG.md",
]
#: ``docs/model.md#eq-4`` and bare ``#eq-7`` continuations after a docs link.
DOC_LINK = re.compile(r"docs/(\w+\.md)(?:#([\w-]+))?")


def anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    explicit = set(re.findall(r'<a id="([\w-]+)"', text))
    headings = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in text.splitlines()
        if line.startswith("#")
    }
    return explicit | headings


def test_nothing_points_outside_the_repository() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in SOURCES
        if p.name != "test_docs.py" and "DESIGN.md" in p.read_text(encoding="utf-8")
    ]
    assert offenders == [], "point to docs/ instead of a file outside the repository"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_docs_link_resolves(source: Path) -> None:
    for page, anchor in DOC_LINK.findall(source.read_text(encoding="utf-8")):
        target = ROOT / "docs" / page
        assert target.is_file(), f"{source.name}: docs/{page} does not exist"
        if anchor:
            assert anchor in anchors(target), f"{source.name}: docs/{page}#{anchor} has no anchor"
