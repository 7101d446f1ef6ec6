"""Every compatibility fact the product cites is in the repository's own docs/compatibility.md,
and nothing the product ships or prints names a path outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "compatibility.md"


def _tracked(*paths: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *paths], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    return [REPO / line for line in out.splitlines()]


def test_every_cited_section_exists() -> None:
    sections = set(re.findall(r"^## (.+)$", DOC.read_text(), re.M))
    cited: dict[str, set[str]] = {}
    for path in _tracked("migrate", "checks", "docs", "tests"):
        if path.suffix not in (".py", ".md", ".yaml", ".json") or path == DOC:
            continue
        text = path.read_text(errors="replace")
        for cite in re.findall(r"docs/compatibility\.md((?: ?[,;]? ?'[^']+')+)", text):
            for name in re.findall(r"'([^']+)'", cite):  # a name may wrap in prose
                cited.setdefault(" ".join(name.split()), set()).add(path.name)
    assert len(cited) >= 10
    missing = {name: files for name, files in cited.items() if name not in sections}
    assert missing == {}


def test_nothing_names_a_path_beside_the_repository() -> None:
    offenders = []
    for path in _tracked("migrate", "checks", "docs", "tests", "scripts", "playbooks"):
        if path.is_file() and "shared" + "/" in path.read_text(errors="replace"):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
