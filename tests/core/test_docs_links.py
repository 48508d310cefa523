"""Every relative link in README.md and the manual (docs/) points at a file that exists, and every
`#anchor` at a heading of that file, as GitHub renders it.

Links inside fenced code blocks and inline code are not links. Folders whose name starts with `_`
(notes waiting to be folded into the manual) are not part of it.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
EXTERNAL = ("http://", "https://", "mailto:")


def manual_pages():
    pages = [ROOT / "README.md"]
    for path in sorted((ROOT / "docs").rglob("*.md")):
        if not any(part.startswith("_") for part in path.relative_to(ROOT / "docs").parts):
            pages.append(path)
    return pages


def prose_lines(text):
    """The lines of a Markdown text outside fenced code blocks, with their line numbers."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        match = FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif fence == match.group(1):
                fence = None
            continue
        if fence is None:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading: its text without markup, lower case, punctuation dropped
    (letters, digits, `_`, `-` and spaces stay), spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = "".join(ch for ch in text.lower() if ch.isalnum() or ch in "_- ")
    return text.replace(" ", "-")


def anchors(path):
    seen = {}
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path):
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(CODE_SPAN.sub("``", line)):
            yield number, match.group(1)


def broken_links(path):
    problems = []
    for number, target in links(path):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not destination.exists():
            problems.append(f"{where}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{where}: no heading with the anchor #{anchor} in {destination.relative_to(ROOT)}")
    return problems


def test_the_slug_is_githubs():
    assert slug("Bias report: definitions and the summary schema (assay.bias/v1)") == (
        "bias-report-definitions-and-the-summary-schema-assaybiasv1"
    )
    assert slug("Managing access (admins)") == "managing-access-admins"
    assert slug("Health: ok, degraded, unavailable") == "health-ok-degraded-unavailable"
    assert slug("The scope walk (`tests/core/test_scope_walk.py`)") == "the-scope-walk-testscoretest_scope_walkpy"
    assert slug("Break-glass (emergency) releases") == "break-glass-emergency-releases"


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Part two\n\n[ok](#part-two) [gone](missing.md) [bad anchor](#part-three)\n"
        "`[code](missing.md)`\n\n```\n[fenced](missing.md)\n```\n",
        encoding="utf-8",
    )
    targets = [target for _, target in links(page)]
    assert targets == ["#part-two", "missing.md", "#part-three"]
    assert anchors(page) == {"title", "part-two"}


@pytest.mark.parametrize("page", manual_pages(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file_and_heading_that_exist(page):
    assert broken_links(page) == []
