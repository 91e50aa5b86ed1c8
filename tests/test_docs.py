"""The documentation's own links: every relative link in README.md and docs/ names a file that
exists and, with ``#anchor``, a heading that file has (GitHub's anchors)."""

import re

import pytest
from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text without its code blocks (which hold neither links nor headings)."""
    return re.sub(r"```.*?```", "", text, flags=re.S)


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped except '-' and '_', spaces to '-'."""
    out = set()
    for heading in re.findall(r"^#+\s+(.*?)\s*#*\s*$", _prose(text), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-")
        out.add(slug)
    return out


def broken(page) -> list[str]:
    bad = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            bad.append(f"{target}: no file {path}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            bad.append(f"{target}: no heading #{anchor} in {file.name}")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    assert broken(page) == []


def test_the_check_can_fail(tmp_path):
    (tmp_path / "b.md").write_text("# A heading, with `code`\n")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#a-heading-with-code) [gone](c.md) [anchor](b.md#nothing) [web](https://x.org/y)\n")
    assert broken(page) == ["c.md: no file c.md", "b.md#nothing: no heading #nothing in b.md"]
