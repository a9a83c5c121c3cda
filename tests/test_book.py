"""Static checks of the built HTML book in `_build/html` (run `make book` first; `make test` does).

- the full book builds with warnings as errors (rebuilt into a temporary directory, reusing the
  jupyter-cache, so no chapter is re-executed unless it changed);
- every page named in `_toc.yml` was built;
- no raw TeX (`$$`, `\\frac`, `\\(`, `$...$`) is left in the text outside math and code;
- MathJax is served from the book (`_static/mathjax`), and no page loads a script, stylesheet,
  font, image or frame from the network;
- every chapter page offers its `.ipynb` download and the link resolves on disk; released exercise
  pages are shown but not executed;
- no solution code and no hidden test reaches the book: nbgrader's delimiters, and every distinctive
  line (> 25 characters) of the solution and hidden-test blocks of `exercises/source/`, are searched
  for in every file of `_build/html` (`_sources` and the downloads included).

- every chapter ends with a self-test quiz (jupyterquiz) whose every answer has an explanation, and
  jupyterquiz's JavaScript is served from `_static` (the pinned package's files), never inline.

The book's location can be overridden with SOFTGRAD_BOOK_HTML (default `_build/html`), and the
table of contents with SOFTGRAD_BOOK_TOC (default `_toc.yml`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from booktoc import docname as _docname
from booktoc import toc_entries

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("SOFTGRAD_BOOK_HTML", ROOT / "_build" / "html")).resolve()
MIN_PROBE_LEN = 25
SOLUTION_MARKERS = (
    "### BEGIN SOLUTION",
    "### END SOLUTION",
    "### BEGIN HIDDEN TESTS",
    "### END HIDDEN TESTS",
    "=== BEGIN MARK SCHEME ===",
)
REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


def _source(entry: str) -> Path:
    """The source file of a toc entry (`.md` or `.ipynb`)."""
    name = _docname(entry)
    for suffix in (".md", ".ipynb"):
        if (ROOT / f"{name}{suffix}").is_file():
            return ROOT / f"{name}{suffix}"
    return ROOT / entry


PAGES = [_docname(e) for e in toc_entries()]
PAGE_IDS = [p.replace("/", "__") for p in PAGES]


@pytest.fixture(scope="module")
def html_dir() -> Path:
    if not (HTML_DIR / "index.html").is_file():
        pytest.fail(f"no built book at {HTML_DIR}: run `make book` first (`make test` does)")
    return HTML_DIR


@cache
def _soup(path: Path):
    from bs4 import BeautifulSoup

    return BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")


def _html_files(html_dir: Path) -> list[Path]:
    return sorted(
        p for p in html_dir.rglob("*.html") if "_static" not in p.relative_to(html_dir).parts
    )


def _is_notebook_chapter(source: Path) -> bool:
    if source.suffix != ".md":
        return False
    text = source.read_text(encoding="utf-8")
    return text.startswith("---") and "kernelspec" in text.split("\n---", 1)[0]


# --------------------------------------------------------------------------- the build itself


BASEURL = "https://example.org/softgrad-book"
KIT = "softgrad-course-kit"


def _config_with_baseurl(tmp_path: Path) -> Path:
    """_config.yml with ``html.baseurl`` set (and the extension's folder made absolute)."""
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    for old, new in [
        ('  baseurl: ""', f'  baseurl: "{BASEURL}/"'),
        ("softgrad_book: chapters/_ext", f"softgrad_book: {ROOT / 'chapters' / '_ext'}"),
    ]:
        assert text.count(old) == 1, f"_config.yml no longer has {old!r}: update this test"
        text = text.replace(old, new)
    path = tmp_path / "_config.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_full_build_has_no_warnings(tmp_path):
    """Rebuild the whole book from scratch with -W -n, reusing the execution cache.

    Under `make test` this runs right after `make book`, so no chapter should execute again.
    The rebuild sets ``html.baseurl``, as a book published on the web would: its downloadable
    notebooks must then link to the pages by absolute URL (checked at the end).
    """
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(jb),
        "build",
        ".",
        "--builder",
        "html",
        "-W",
        "-n",
        "--keep-going",
        "--config",
        str(_config_with_baseurl(tmp_path)),
        "--path-output",
        str(tmp_path),
    ]
    run = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    log = run.stdout + run.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    # The kernel's own start-up notice is not a Sphinx warning.
    warnings = [w for w in warnings if "Kernel is running over TCP" not in w]
    assert run.returncode == 0, f"`{' '.join(cmd)}` failed (exit {run.returncode}):\n" + "\n".join(
        warnings or log.splitlines()[-40:]
    )
    assert not warnings, "the book built, but with warnings:\n" + "\n".join(warnings)

    # jupyter-cache: a chapter is re-executed only if it, or the softgrad package it imports
    # (the cache is keyed on both, see chapters/_ext), changed since _build/html was built.
    package = max(
        p.stat().st_mtime
        for p in (ROOT / "src" / "softgrad").rglob("*.py")
        if not {"grading", "kit.py"} & set(p.relative_to(ROOT / "src" / "softgrad").parts)
    )
    executed = re.findall(r"^(\S+\.(?:md|ipynb)): Executing notebook", log, flags=re.MULTILINE)
    stale = []
    for source in map(Path, executed):
        built = HTML_DIR / source.resolve().relative_to(ROOT).with_suffix(".html")
        if built.is_file() and max(source.stat().st_mtime, package) <= built.stat().st_mtime:
            stale.append(str(source.relative_to(ROOT)))
    assert not stale, (
        "re-executed although unchanged since the last `make book` (is the jupyter-cache used?): "
        + ", ".join(stale)
    )
    _check_links_are_absolute(tmp_path / "_build" / "html")


def _check_links_are_absolute(site: Path) -> None:
    """With a base URL, a download's cross-references are web addresses of existing pages."""
    import zipfile

    from markdown_it import MarkdownIt

    with zipfile.ZipFile(site / "kit" / "softgrad-course-kit.zip") as zf:
        notebooks = {n: json.loads(zf.read(n)) for n in zf.namelist() if n.endswith(".ipynb")}
    absolute, problems = 0, []
    for name, nb in notebooks.items():
        setup = "".join(nb["cells"][0]["source"]) if nb["cells"] else ""
        code = [c for c in nb["cells"][1:] if c["cell_type"] == "code"]
        if name.startswith(f"{KIT}/chapters/0") and not any(c.get("outputs") for c in code):
            # this build takes every chapter from the execution cache, where myst-nb's own
            # executed notebook has no outputs: the download must have them all the same
            problems.append(f"{name}: the download has no outputs")
        if nb["cells"] and nb["cells"][0].get("id") == "softgrad-setup":
            assert f"{BASEURL}/kit/softgrad-course-kit.zip" in setup, f"{name}: no kit URL"
        for cell in nb["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for tok in MarkdownIt("commonmark").enable("table").parse("".join(cell["source"])):
                for t in tok.children or []:
                    href = t.attrs.get("href", "") if t.type == "link_open" else ""
                    if not href.startswith(BASEURL + "/"):
                        continue
                    absolute += 1
                    path, _, frag = href[len(BASEURL) + 1 :].partition("#")
                    if path == "kit/softgrad.pdf":
                        continue  # `make pdf` adds it to the site; tests/test_pdf.py checks it
                    page = site / path
                    if not page.is_file():
                        problems.append(f"{name}: {href}: no page {path}")
                    elif frag and f'id="{frag}"' not in page.read_text(encoding="utf-8"):
                        problems.append(f"{name}: {href}: no id {frag} on {path}")
    assert absolute > 100, f"only {absolute} links to {BASEURL}: are roles still relative?"
    assert not problems, "problems in the downloads of a build with a base URL:\n  " + "\n  ".join(
        problems[:20]
    )


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_toc_page_is_built(html_dir, page):
    assert (html_dir / f"{page}.html").is_file(), (
        f"{page} is in _toc.yml but {page}.html was not built"
    )


# --------------------------------------------------------------------------- math


def _text_outside_math_and_code(path: Path) -> str:
    soup = _soup(path)
    main = soup.find("main") or soup.body or soup
    main = type(soup)(str(main), "html.parser")  # a copy we may cut up
    for tag in main.find_all(["script", "style", "pre", "code", "textarea", "nav"]):
        tag.decompose()
    for tag in main.select(".math, .highlight, .cell_output, .output"):
        tag.decompose()
    return main.get_text(" ")


RAW_TEX = re.compile(
    r"\$\$|\\frac|\\\(|\\\[|\\begin\{|(?<![\w$])\$[^\s$][^$\n]{0,200}?(?<!\s)\$(?![\w$])"
)


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_no_raw_tex_outside_math(html_dir, page):
    path = html_dir / f"{page}.html"
    if not path.is_file():
        pytest.skip(f"{page}.html not built (reported by test_toc_page_is_built)")
    text = _text_outside_math_and_code(path)
    hits = [
        " ".join(text[max(0, m.start() - 50) : m.end() + 50].split())
        for m in RAW_TEX.finditer(text)
    ]
    assert not hits, (
        f"{page}: TeX outside math (a missing $ or an unparsed directive?):\n  "
        + "\n  ".join(hits[:10])
    )


def test_mathjax_is_served_from_the_book(html_dir):
    assert (html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file(), (
        "MathJax was not copied into _static"
    )
    fonts = list((html_dir / "_static" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff"))
    assert fonts, "MathJax's CHTML fonts were not copied into _static/mathjax"
    pages_with_math = 0
    for path in _html_files(html_dir):
        soup = _soup(path)
        sources = [
            s["src"] for s in soup.find_all("script", src=True) if "mathjax" in s["src"].lower()
        ]
        for src in sources:
            assert not REMOTE.match(src), (
                f"{path.relative_to(html_dir)} loads MathJax from the network: {src}"
            )
            local = (path.parent / src.split("?")[0]).resolve()
            assert local.is_file(), (
                f"{path.relative_to(html_dir)}: MathJax script {src} does not exist"
            )
        if soup.select(".math"):
            pages_with_math += 1
            assert sources, f"{path.relative_to(html_dir)} has math but no MathJax script"
    assert pages_with_math, (
        "no page of the book has any math: did the MyST math extensions stop working?"
    )


# --------------------------------------------------------------------------- offline assets


def test_no_asset_is_loaded_from_the_network(html_dir):
    problems = []
    attrs = {
        "script": "src",
        "img": "src",
        "iframe": "src",
        "source": "src",
        "video": "src",
        "audio": "src",
        "embed": "src",
        "object": "data",
        "track": "src",
    }
    for path in _html_files(html_dir):
        soup = _soup(path)
        rel = path.relative_to(html_dir)
        for name, attr in attrs.items():
            for tag in soup.find_all(name, attrs={attr: True}):
                if REMOTE.match(tag[attr]):
                    problems.append(f"{rel}: <{name} {attr}={tag[attr]!r}>")
        for tag in soup.find_all("link", href=True):
            rels = {r.lower() for r in tag.get("rel", [])}
            if rels & {
                "stylesheet",
                "preload",
                "modulepreload",
                "prefetch",
                "icon",
                "manifest",
                "preconnect",
                "dns-prefetch",
            } and REMOTE.match(tag["href"]):
                problems.append(f"{rel}: <link rel={sorted(rels)} href={tag['href']!r}>")
        for tag in soup.find_all("script", src=False):
            for url in re.findall(r"https?://[^\s\"'<>]+", tag.get_text()):
                if re.search(r"\.(m?js|css)(\W|$)|unpkg|jsdelivr|cdnjs|googleapis", url):
                    problems.append(f"{rel}: an inline script references {url}")
    for css in (html_dir / "_static").rglob("*.css"):
        text = re.sub(
            r"/\*.*?\*/", "", css.read_text(encoding="utf-8", errors="replace"), flags=re.DOTALL
        )
        for m in re.finditer(
            r"(?:url\(\s*[\"']?|@import\s+[\"']?)((?:https?:)?//[^\"')\s]+)", text
        ):
            problems.append(f"{css.relative_to(html_dir)}: loads {m.group(1)}")
    assert not problems, "the book would load these from the network:\n  " + "\n  ".join(
        sorted(set(problems))
    )


# --------------------------------------------------------------------------- chapter spine

CHAPTER_PAGES = [p for p in PAGES if re.fullmatch(r"chapters/0[1-9]_\w+", p)]


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=[p.split("/")[-1] for p in CHAPTER_PAGES])
def test_chapter_has_the_spine(html_dir, page):
    """Overview, proofs, a common-mistakes box, hidden worked solutions, summary, exercises, sources."""
    path = html_dir / f"{page}.html"
    if not path.is_file():
        pytest.skip(f"{page}.html not built (reported by test_toc_page_is_built)")
    main = _soup(path).find("main") or _soup(path)
    headings = [h.get_text(" ", strip=True) for h in main.find_all(["h2", "h3"])]
    titles = [
        t.get_text(" ", strip=True) for t in main.select(".admonition-title, .sd-summary-title")
    ]
    missing = [
        what
        for what, ok in [
            ("an Overview section", any("Overview" in h for h in headings)),
            ("a Summary section", any("Summary" in h for h in headings)),
            ("an Exercises section", any("Exercise" in h for h in headings)),
            ("a 'Common mistakes' box", any("mistake" in t.lower() for t in titles)),
            ("a theorem/proof block (sphinx-proof)", bool(main.select(".proof"))),
            ("a worked solution behind a toggle", bool(main.select("details, .dropdown"))),
            (
                "a link to its graded notebook",
                any("exercises/release/" in a["href"] for a in main.find_all("a", href=True)),
            ),
            ("a citation", bool(main.select("a[href*='bibliography.html#']"))),
        ]
        if not ok
    ]
    assert not missing, f"{page} lacks " + ", ".join(missing)


# --------------------------------------------------------------------------- downloads


# Every toc page but the plain Markdown ones (For instructors, Bibliography): those have no
# notebook to offer. An exercise page whose .ipynb is not generated yet stays in, and fails.
NOTEBOOK_ENTRIES = [
    e for e in toc_entries() if _source(e).suffix != ".md" or _is_notebook_chapter(_source(e))
]


@pytest.mark.parametrize(
    "entry", NOTEBOOK_ENTRIES, ids=[_docname(e).replace("/", "__") for e in NOTEBOOK_ENTRIES]
)
def test_page_offers_its_notebook(html_dir, entry):
    import nbformat

    page, source = _docname(entry), _source(entry)
    path = html_dir / f"{page}.html"
    if not path.is_file():
        pytest.skip(f"{page}.html not built (reported by test_toc_page_is_built)")
    links = [
        a["href"]
        for a in _soup(path).find_all("a", href=True)
        if a["href"].split("#")[0].endswith(".ipynb")
    ]
    own = [h for h in links if h.split("#")[0].endswith(f"_sources/{page}.ipynb")]
    assert own, f"{page}: no download link to _sources/{page}.ipynb (links to notebooks: {links})"
    target = (path.parent / own[0]).resolve()
    assert target.is_file(), f"{page}: the download link {own[0]} does not resolve to a file"
    nb = nbformat.read(target, as_version=4)
    nbformat.validate(nb)
    # the download starts with its set-up cell (see test_kit.py); the rest is the page's
    assert nb.cells, f"{page}: the downloadable notebook is empty"
    assert nb.cells[0].get("id") == "softgrad-setup", (
        f"{page}: the downloadable notebook does not start with the softgrad set-up cell"
    )
    nb.cells = nb.cells[1:]
    if source.suffix == ".ipynb":
        assert [c.source for c in nb.cells] == [
            c.source for c in nbformat.read(source, as_version=4).cells
        ], f"{page}: the downloadable notebook differs from {source.relative_to(ROOT)}"
        # Released exercises are shown, not executed: their answers are blank.
        assert not _soup(path).select(".cell_output"), (
            f"{page}: the exercise page has outputs (was it executed?)"
        )
    else:
        import jupytext

        code = [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]
        got = [c.source for c in nb.cells if c.cell_type == "code"]
        assert got == code, (
            f"{page}: the downloadable notebook's code cells differ from {source.name}"
        )


# --------------------------------------------------------------------------- no solutions


def _published_files(html_dir: Path):
    """(relative path, searchable text) for every text file of the book except theme assets."""
    for path in sorted(html_dir.rglob("*")):
        rel = path.relative_to(html_dir)
        if not path.is_file() or (
            rel.parts[0] == "_static" and path.suffix in {".js", ".css", ".woff", ".woff2"}
        ):
            continue
        if path.suffix in {
            ".png",
            ".jpg",
            ".jpeg",
            ".gif",
            ".svg",
            ".woff",
            ".woff2",
            ".inv",
            ".ico",
            ".pdf",
        }:
            continue
        raw = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".html":
            text = _soup(path).get_text()
            yield rel, raw + "\n" + text
        elif path.suffix == ".ipynb":
            try:
                cells = json.loads(raw).get("cells", [])
                text = "\n".join("".join(c.get("source", "")) for c in cells)
            except (json.JSONDecodeError, AttributeError):
                text = ""
            yield rel, raw + "\n" + text
        else:
            yield rel, raw


def _squash(text: str) -> str:
    return " ".join(text.split())


def _solution_probes() -> tuple[list[tuple[str, str]], int]:
    """Distinctive lines of solution and hidden-test blocks in exercises/source (and how many notebooks)."""
    import nbformat

    notebooks = sorted((ROOT / "exercises" / "source").glob("*/*.ipynb"))
    public = "\n".join(
        p.read_text(encoding="utf-8") for p in sorted((ROOT / "chapters").glob("*.md"))
    )
    secret: list[tuple[str, str]] = []  # (line, notebook)
    visible: list[str] = []  # what students see anyway, in any released notebook
    for nb_path in notebooks:
        nb = nbformat.read(nb_path, as_version=4)
        origin = str(nb_path.relative_to(ROOT))
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            lines = cell.source.splitlines()
            if meta.get("solution") and "BEGIN SOLUTION" not in cell.source:
                # a whole solution cell (e.g. a written answer) is replaced in the release
                secret += [(line, origin) for line in lines]
                continue
            hidden = False
            for line in lines:
                stripped = line.strip()
                if stripped.startswith(("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS")):
                    hidden = True
                elif stripped.startswith(("### END SOLUTION", "### END HIDDEN TESTS")):
                    hidden = False
                elif hidden:
                    secret.append((line, origin))
                else:
                    visible.append(line)
    seen_elsewhere = _squash("\n".join(visible)) + "\n" + _squash(public)
    probes: dict[str, str] = {}
    for line, origin in secret:
        probe = _squash(line)
        if len(probe) > MIN_PROBE_LEN and probe not in seen_elsewhere:
            probes.setdefault(probe, origin)
    return sorted(probes.items()), len(notebooks)


def test_no_solution_markers_in_book(html_dir):
    leaks = [
        f"{rel}: {marker!r}"
        for rel, text in _published_files(html_dir)
        for marker in SOLUTION_MARKERS
        if marker in text
    ]
    assert not leaks, (
        "nbgrader solution / hidden-test delimiters in the built book:\n  " + "\n  ".join(leaks)
    )


def test_no_solution_code_in_book(html_dir):
    probes, n_notebooks = _solution_probes()
    # the book shows six exercises: an empty probe set would make this test pass vacuously
    assert n_notebooks > 0, "no exercises/source/*/*.ipynb found: nothing to search the book for"
    assert probes, (
        f"{n_notebooks} source notebooks but no solution line longer than {MIN_PROBE_LEN} characters: "
        "the search would prove nothing"
    )
    leaks = []
    for rel, text in _published_files(html_dir):
        squashed = _squash(text)
        leaks += [
            f"{rel}: {probe!r} (from {origin})" for probe, origin in probes if probe in squashed
        ]
    assert not leaks, "solution or hidden-test code in the built book:\n  " + "\n  ".join(
        leaks[:30]
    )


# --------------------------------------------------------------------------- self-test quizzes


def _quizzes(path: Path) -> list[tuple[str, list]]:
    """(container id, questions) of every jupyterquiz quiz on a built page."""
    return [
        (tag["data-for"], json.loads(tag.get_text()))
        for tag in _soup(path).select('script.sg-quiz[type="application/json"]')
    ]


def _quiz_problems(questions: list) -> list[str]:
    problems = []
    for i, q in enumerate(questions, 1):
        where = f"question {i} ({q.get('question', '')[:50]!r})"
        answers = q.get("answers", [])
        if q.get("type") in ("multiple_choice", "many_choice"):
            if len(answers) < 2:
                problems.append(f"{where}: fewer than two answers")
            if not any(a.get("correct") for a in answers):
                problems.append(f"{where}: no correct answer")
            problems += [
                f"{where}: answer {a.get('answer', '')[:40]!r} has no explanation"
                for a in answers
                if not str(a.get("feedback", "")).strip()
            ]
        elif q.get("type") == "numeric":
            if not any(a.get("correct") and "value" in a for a in answers):
                problems.append(f"{where}: no correct value")
            if not any(a.get("type") == "default" for a in answers):
                problems.append(f"{where}: no explanation for an unforeseen answer (type default)")
            problems += [
                f"{where}: answer {a.get('value', a.get('range', a.get('type')))} has no explanation"
                for a in answers
                if not str(a.get("feedback", "")).strip()
            ]
        else:
            problems.append(f"{where}: unknown type {q.get('type')!r}")
    return problems


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=[p.split("/")[-1] for p in CHAPTER_PAGES])
def test_chapter_ends_with_a_quiz(html_dir, page):
    """A self-test quiz whose every answer explains itself, drawn from the page's own data."""
    path = html_dir / f"{page}.html"
    if not path.is_file():
        pytest.skip(f"{page}.html not built (reported by test_toc_page_is_built)")
    quizzes = _quizzes(path)
    assert quizzes, f"{page} has no self-test quiz (a jupyterquiz cell rewritten by softgrad_quiz)"
    soup = _soup(path)
    for box_id, questions in quizzes:
        box = soup.find(id=box_id)
        assert box is not None, f"{page}: quiz data for #{box_id}, but no element with that id"
        assert box.has_attr("data-numquestions"), (
            f"{page}: #{box_id} is not a jupyterquiz container"
        )
        assert len(questions) >= 3, f"{page}: a quiz of {len(questions)} questions"
        problems = _quiz_problems(questions)
        assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def test_quiz_javascript_is_the_pinned_package(html_dir):
    """jupyterquiz's JavaScript ships in the site, is the installed package's, and no page inlines it."""
    from importlib.metadata import version
    from importlib.resources import files

    shipped = html_dir / "_static" / "jupyterquiz.js"
    assert shipped.is_file(), "no _static/jupyterquiz.js in the built book"
    pinned = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.lower().startswith("jupyterquiz==")
    ]
    assert pinned == [f"JupyterQuiz=={version('jupyterquiz')}"], (
        f"constraints.txt pins {pinned}, the environment has {version('jupyterquiz')}"
    )
    js_dir = files("jupyterquiz").joinpath("js")
    for part in sorted(p.name for p in js_dir.iterdir() if p.name.endswith(".js")):
        assert js_dir.joinpath(part).read_text(encoding="utf-8") in shipped.read_text(
            encoding="utf-8"
        ), f"_static/jupyterquiz.js lacks the package's {part}"
    inline = []
    for path in _html_files(html_dir):
        soup = _soup(path)
        if soup.select("script.sg-quiz"):
            srcs = [s["src"] for s in soup.find_all("script", src=True)]
            if not any("jupyterquiz.js" in s for s in srcs):
                inline.append(f"{path.relative_to(html_dir)}: a quiz, but no jupyterquiz.js script")
        for tag in soup.find_all("script", src=False):
            if "show_questions" in tag.get_text() or "var questions" in tag.get_text():
                inline.append(f"{path.relative_to(html_dir)}: jupyterquiz's code inline")
    assert not inline, "\n  ".join(inline)
