"""The user's guide holds together: the README is short (a guide, not a manual), every relative link in it,
the changelog and ``docs/`` names a file that exists (and an anchor a heading of it), and the README's
pipeline file is a valid pipeline."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from orchestrator import parse_pipeline

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a page."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            words = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower())
            found.add(words.replace(" ", "-"))
    return found


def test_the_readme_is_a_short_guide() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in _LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            where = (page.parent / path).resolve() if path else page
            if not where.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and where.suffix == ".md" and anchor not in _anchors(where):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_the_readme_pipeline_is_valid(tmp_path: Path) -> None:
    [snippet] = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    pipeline = parse_pipeline(tomllib.loads(snippet), project_dir=tmp_path)
    assert [p.name for p in pipeline.phases] == ["research", "implement", "release"]
    implement = pipeline.phase("implement")
    assert implement.isolation == "worktree" and implement.max_pids == 256 and pipeline.phase("release").approval


def test_nothing_points_outside_the_repository() -> None:
    """Material we were given lives outside the repository; what we took from it is here in our own words
    (docs/failures.md, migration/MIGRATION.md, docs/temporal.md), so no tracked file cites it."""
    import subprocess

    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    pointing = []
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if name and path.suffix in (".py", ".md", ".toml", ".sh", ".txt", "") and path.is_file():
            text = path.read_text(errors="replace")
            pointing += [name for marker in ("../" + "shared/",) if marker in text]  # (this file: in parts)
    assert pointing == []
