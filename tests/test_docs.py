"""Every document or file of the repository that a docstring, doc or benchmark names exists in it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: a path from the repository root: docs/x.md, benchmarks/bench_x.py, configs/x.yaml, ...
ROOTED = re.compile(r"(?<![\w./-])((?:docs|benchmarks|tests|configs|src)/[\w./-]*\w\.(?:md|py|yaml|png|sh))\b")
#: a bare document name (NAME.md), found beside the citing file or at the repository root
BARE = re.compile(r"(?<![\w./-])([\w-]+\.md)\b")
#: a relative Markdown link: [text](target)
LINK = re.compile(r"\]\((?!https?:|#)([^)#\s]+)")


def _texts() -> list[Path]:
    files = [REPO / "README.md", REPO / "Makefile", *sorted((REPO / "docs").glob("*.md"))]
    for folder in ("src", "benchmarks", "tests"):
        files += sorted((REPO / folder).rglob("*.py"))
    return files


def test_named_documents_exist():
    missing = []
    for path in _texts():
        if path == Path(__file__).resolve():  # its patterns' examples
            continue
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(REPO)
        for name in ROOTED.findall(text):
            if not (REPO / name).exists():
                missing.append(f"{where}: {name}")
        for name in BARE.findall(text):
            if not ((path.parent / name).exists() or (REPO / name).exists()):
                missing.append(f"{where}: {name}")
        if path.suffix == ".md":
            for target in LINK.findall(text):
                if not (path.parent / target).exists():
                    missing.append(f"{where}: ({target})")
    assert not missing, "named but not in the repository:\n" + "\n".join(missing)
