"""The documentation holds together: its links lead somewhere, and nothing points outside.

Fast and without a database: it reads the Markdown pages (README.md, docs/*.md,
sql/README.md) and the files git tracks.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PAGES = sorted(
    [ROOT / "README.md", ROOT / "sql" / "README.md", *(ROOT / "docs").glob("*.md")],
)

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:...

# Documents that live outside the repository: nothing tracked may point at them. The
# patterns are written so that this file does not match them itself.
_OUTSIDE = {
    "a path into a shared/ folder beside the repository": re.compile(r"\.\./shared"),
    "the old warehouse or CLI spec": re.compile(r"spec/(warehouse|cli-and-config)\.md"),
    "the old ZVM API notes": re.compile(r"reference/zvm-(api-facts\.md|tasks-api\.txt)"),
    "a design page other than docs/design.md": re.compile(r"(?<![\w./-])design\.md"),
}


def _prose(text: str) -> str:
    """The Markdown without code blocks and inline code (their brackets are not links)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to ``-``."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = "".join(c for c in text.lower() if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(page: Path) -> list[str]:
    return _LINK.findall(_prose(page.read_text(encoding="utf-8")))


def test_the_pages_exist() -> None:
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    for name in ("design", "warehouse", "operations", "zvm-api"):
        assert f"docs/{name}.md" in names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_existing_files(page: Path) -> None:
    broken: list[str] = []
    for target in _links(page):
        if _EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target}: {destination} does not exist")
        elif not destination.is_relative_to(ROOT):
            broken.append(f"{target}: leads outside the repository")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(f"{target}: {destination.name} has no heading #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_no_tracked_file_points_outside_the_repository() -> None:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    except FileNotFoundError:
        pytest.skip("git is not installed")
    if listed.returncode != 0:
        pytest.skip("not a git checkout: git ls-files is unavailable")
    found: list[str] = []
    for name in listed.stdout.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            for what, pattern in _OUTSIDE.items():
                if pattern.search(line):
                    found.append(f"{name}:{number}: {what}: {line.strip()}")
    assert not found, "\n".join(found)


def test_every_test_the_reliability_page_names_exists() -> None:
    """docs/reliability.md cites its evidence as ``file.py::test``: each must be a test
    function defined in that file under tests/, so the table cannot outlive its tests."""
    page = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"`(\w+\.py)::(test_\w+)`", page))
    assert len(cited) > 50
    missing = [
        f"{path}::{name}"
        for path, name in sorted(cited)
        if not re.search(
            rf"^def {name}\(", (ROOT / "tests" / path).read_text(encoding="utf-8"), re.MULTILINE
        )
    ]
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
