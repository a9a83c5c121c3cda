"""The PDF of the whole book, `_build/pdf/softgrad.pdf` (built by `make pdf`; CI builds it).

Read with poppler's command-line tools (`pdfinfo`, `pdftotext`, `pdfimages`), which know nothing of
how the PDF was made. Expectations come from the book's sources, not from the PDF pipeline:

- every page of the table of contents starts a new sheet that opens with the page's title (the
  first heading of its source), and the sheets come in the order of `_toc.yml`;
- the page count lies between one sheet per page of the book and a generous upper bound;
- no raw TeX is left in the text, and the typeset formulas are there: at least as many "∂" as a
  half of the `\\partial` in the chapters' sources;
- every figure of the chapters is in it (`pdfimages`), with its numbered caption ("Fig. 3.1");
- the Start page of the HTML book links to it (the site's `kit/softgrad.pdf`, the same file).

When the PDF has not been built the tests skip, saying how to build it; under `CI=true` they fail
instead, since CI must check the PDF. `SOFTGRAD_BOOK_PDF` points them at another file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest
from booktoc import docname, toc_entries

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
PDF = Path(os.environ.get("SOFTGRAD_BOOK_PDF", ROOT / "_build" / "pdf" / "softgrad.pdf")).resolve()
HTML_DIR = Path(os.environ.get("SOFTGRAD_BOOK_HTML", ROOT / "_build" / "html")).resolve()
SITE_PDF = HTML_DIR / "kit" / "softgrad.pdf"  # where the Start page's link points
RAW_TEX = ("$$", "\\frac", "\\(", "\\[", "\\begin{")  # as in tests/test_browser.py
MAX_PAGES = 600
TOOLS = ("pdfinfo", "pdftotext", "pdfimages")
PAGES = [docname(e) for e in toc_entries()]


def _missing(message: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: the PDF must be built and checked in CI)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def pdf() -> Path:
    if not PDF.is_file():
        _missing(f"no PDF at {PDF}: run `make pdf`")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        _missing(f"{', '.join(missing)} not found: apt-get install poppler-utils")
    return PDF


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout


@pytest.fixture(scope="module")
def sheets(pdf) -> list[str]:
    """The text of each sheet (pdftotext separates them with form feeds)."""
    return _run("pdftotext", "-enc", "UTF-8", str(pdf), "-").split("\f")[:-1]


def _squash(text: str) -> str:
    """Text without spacing and hyphens, in compatibility form (𝑝 and p compare equal).

    pdftotext joins a word hyphenated at the end of a line ("log-" + "softmax" gives
    "logsoftmax"), and MathJax's minus is U+2212: hyphens and minus signs are dropped.
    """
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s\-\u2010\u2011\u2212]+", "", text)


def _title(page: str) -> str:
    """A page's title as its source writes it, with the math delimiters dropped ($p - y$: p - y)."""
    import json

    md = ROOT / f"{page}.md"
    if md.is_file():
        lines = md.read_text(encoding="utf-8").splitlines()
    else:
        nb = json.loads((ROOT / f"{page}.ipynb").read_text(encoding="utf-8"))
        lines = [
            line
            for cell in nb["cells"]
            if cell["cell_type"] == "markdown"
            for line in "".join(cell["source"]).splitlines()
        ]
    heading = next(line for line in lines if line.startswith("# "))
    return heading[2:].replace("$", "").replace("`", "").strip()


def test_page_count(pdf, sheets):
    info = _run("pdfinfo", str(pdf))
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))
    assert pages == len(sheets)
    # every page of the book starts a sheet of its own, and the chapters hold several sheets each
    assert 2 * len(PAGES) <= pages <= MAX_PAGES, f"{pages} pages for {len(PAGES)} pages of the book"
    empty = [k + 1 for k, text in enumerate(sheets) if len(_squash(text)) < 20]
    assert not empty, f"sheets with (next to) no text: {empty}"


def test_every_page_of_the_book_starts_a_sheet_with_its_title(sheets):
    # a numbered chapter's heading carries its number ("4. Cross-entropy meets softmax: ...")
    tops = [re.sub(r"^\d+\.", "", _squash(text)[:400]) for text in sheets]
    found, problems = [], []
    for page in PAGES:
        title = _squash(_title(page))
        where = [k for k, top in enumerate(tops) if top.startswith(title)]
        if not where:
            problems.append(f"{page}: no sheet opens with its title {_title(page)!r}")
        else:
            found.append(where[0])
    assert not problems, "\n".join(problems)
    assert found == sorted(found), f"the pages are out of the order of _toc.yml: {found}"


def test_no_raw_tex_and_the_math_is_typeset(sheets):
    text = "\f".join(sheets)
    problems = []
    for raw in RAW_TEX:
        at = text.find(raw)
        if at >= 0:
            context = " ".join(text[max(0, at - 60) : at + 60].split())
            problems.append(f"raw TeX {raw!r}: ...{context}...")
    assert not problems, "\n".join(problems)
    sources = [ROOT / f"{page}.md" for page in PAGES if (ROOT / f"{page}.md").is_file()]
    partials = sum(p.read_text(encoding="utf-8").count("\\partial") for p in sources)
    assert partials > 100
    assert text.count("\u2202") >= partials // 2, (
        f"{text.count(chr(0x2202))} typeset ∂ for {partials} \\partial in the sources"
    )


def _figures_in_sources() -> int:
    """Figures of the chapters: myst-nb figure cells and {figure} directives in the sources."""
    count = 0
    for page in PAGES:
        md = ROOT / f"{page}.md"
        if md.is_file():
            text = md.read_text(encoding="utf-8")
            count += len(re.findall(r"^\s+figure:\s*$", text, re.MULTILINE))
            count += len(re.findall(r"^[`:]{3,}\{figure\}", text, re.MULTILINE))
    return count


def test_every_figure_is_in_it_with_its_caption(pdf, sheets):
    figures = _figures_in_sources()
    assert figures >= 17, f"only {figures} figures found in the sources: has their syntax changed?"
    rows = _run("pdfimages", "-list", str(pdf)).splitlines()[2:]
    images = [r.split() for r in rows]
    # a figure is an image; a plotted figure is at least a few hundred pixels wide and high
    pictures = [r for r in images if r[2] == "image" and int(r[3]) >= 200 and int(r[4]) >= 100]
    # the figure the reader moves is drawn by the page's script, not an image
    moving = sum(
        (ROOT / f"{page}.md").read_text(encoding="utf-8").count('class="sg-explorer"')
        for page in PAGES
        if (ROOT / f"{page}.md").is_file()
    )
    assert len(pictures) >= figures - moving, (
        f"{len(pictures)} images in the PDF for {figures} figures"
    )
    captions = set(re.findall(r"Fig\.\s*(\d+\.\d+)", "\f".join(sheets)))
    assert len(captions) >= figures, f"numbered captions {sorted(captions)} for {figures} figures"


def test_the_start_page_links_it(pdf):
    from bs4 import BeautifulSoup

    start = HTML_DIR / f"{PAGES[0]}.html"
    if not start.is_file():
        pytest.fail(f"no built book at {HTML_DIR}: run `make book` first")
    soup = BeautifulSoup(start.read_text(encoding="utf-8"), "html.parser")
    targets = {
        (start.parent / unquote(a["href"].split("#")[0])).resolve()
        for a in soup.select("article a[href]")
        if a["href"].split("#")[0].endswith(".pdf")
    }
    assert SITE_PDF in targets, f"the Start page links {sorted(map(str, targets))}, not {SITE_PDF}"
    assert SITE_PDF.is_file(), f"{SITE_PDF} is missing: `make pdf` puts it there"
    assert SITE_PDF.read_bytes() == pdf.read_bytes(), f"{SITE_PDF} is not the PDF at {pdf}"
