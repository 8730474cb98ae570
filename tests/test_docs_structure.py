"""The tutorial reads in order: each chapter's title carries its number in the index, each page leads on to the
next one and the last to Serving, in English and in Japanese; the examples' README numbers chapters the same."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXAMPLES_README = DOCS.parent / "examples" / "README.md"
#: How each language says "Next: [title](page)."
LINK = r"\[(?P<title>[^\]]+)\]\((?P<page>[^)]+)\)"
NEXT = {DOCS: rf"Next: {LINK}\.", DOCS / "ja": rf"次へ：{LINK}。"}


def chapters(folder: Path) -> list[tuple[int, str, str]]:
    """(number, title, page) of each numbered item of ``folder/index.md``, in order."""
    text = (folder / "index.md").read_text()
    return [(int(n), title, page) for n, title, page in re.findall(r"^(\d+)\. \[([^\]]+)\]\(([^)]+)\)", text, re.M)]


def last_line(page: Path) -> str:
    return [line for line in page.read_text().splitlines() if line.strip()][-1]


@pytest.mark.parametrize("folder", [DOCS, DOCS / "ja"], ids=["en", "ja"])
def test_chapters_are_numbered_as_the_index_and_each_leads_to_the_next(folder: Path) -> None:
    found = chapters(folder)
    assert [number for number, _, _ in found] == list(range(1, len(found) + 1))
    for number, title, page in found:
        assert page.startswith(f"{number:02d}-"), page
        assert (folder / page).read_text().splitlines()[0] == f"# {number}. {title}", page
    serve_title = (folder / "serve.md").read_text().splitlines()[0].removeprefix("# ")
    for index, (_, _, page) in enumerate(found):
        link = re.fullmatch(NEXT[folder], last_line(folder / page))
        assert link, f"{folder.name}/{page} does not end with a link to the next page: {last_line(folder / page)!r}"
        if index + 1 < len(found):
            number, title, following = found[index + 1]
            assert (link["title"], link["page"]) == (f"{number}. {title}", following), page
        else:
            assert link["page"] == "serve.md" and serve_title.startswith(link["title"]), page


def test_the_examples_readme_numbers_chapters_as_the_index() -> None:
    titles = {number: title.lower() for number, title, _ in chapters(DOCS)}
    rows = re.findall(r"^\| (\d+)(?:–\d+)? ([^|]+)\|", EXAMPLES_README.read_text(), re.M)
    assert rows
    for number, text in rows:
        assert int(number) in titles and text.strip().lower().startswith(titles[int(number)]), (number, text)
