"""Open every page of the built book in headless Chromium, offline, and check what a reader sees.

Runs after `make book` (it is part of `make test`). For each page in `_toc.yml`, opened through a
file:// URL with every network request routed to nowhere:

- the page loads (the HTML file exists and the browser renders its title);
- MathJax has typeset the math: `mjx-container` elements are present where the page has math,
  no MathJax error (`mjx-merror`) is shown, and no raw `$$`, `\\frac`, `\\(`, `\\[` or `\\begin{`
  is left in the visible text outside code;
- every `<img>` has loaded (`naturalWidth > 0`);
- the page requested nothing but local files (the DevTools network log), and the browser console
  has no SEVERE entry (a failed request, a JavaScript error, a blocked font);
- every internal link resolves: the target file exists and its `#anchor`, if any, is an id in it;
- a screenshot is saved under `_build/screenshots/`.

`test_page_layout` opens every page again at a desktop width (1280 px) and a phone width (400 px):

- no element is wider than the viewport unless a scrolling box holds it, and the page itself never
  scrolls sideways;
- no display equation is cut off: at desktop width every display fits its box; at phone width one
  that does not must be in a box that scrolls (overflow-x auto or scroll); and no ancestor with
  hidden overflow clips it;
- every `<img>` has alt text that says something (not empty, not a file name or a hash, at least
  three words);
- axe-core (the npm package, installed by `make test` into `tests/js/node_modules`, injected from
  that local copy, never from a CDN) reports no violation of impact "serious" or "critical";
- a screenshot of the whole page is saved under `_build/screenshots/<width>px/`.

`test_quiz_answers_without_kernel_or_network` answers chapter 1's quiz: a wrong choice shows its own
explanation, the right one is marked correct, a typed number gets its feedback.

`test_explorer_redraws_what_softgrad_computes` moves the sliders of chapter 4's interactive figure with
the keyboard and compares every drawn value (p, the Jacobian, the gradient, the loss) with softgrad's.

`test_cheat_sheet_prints_on_two_a4_sides` prints the gradient cheat sheet with Chromium's
print-to-PDF (DevTools `Page.printToPDF`, the page size of the print CSS) and counts two A4 pages.

Needs Debian's Chromium (`apt-get install chromium chromium-driver`). Without it the test is skipped
with that message, except under `CI=true`, where a missing browser is a failure.
The book's location can be overridden with SOFTGRAD_BOOK_HTML (default `_build/html`), and the
table of contents with SOFTGRAD_BOOK_TOC (default `_toc.yml`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from booktoc import docname, toc_entries

pytestmark = [pytest.mark.browser, pytest.mark.book, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("SOFTGRAD_BOOK_HTML", ROOT / "_build" / "html")).resolve()
SCREENSHOT_DIR = HTML_DIR.parent / "screenshots"
SITE_PDF = HTML_DIR / "kit" / "softgrad.pdf"  # the book as one PDF, linked from the Start page
CHROMIUM = os.environ.get("SOFTGRAD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SOFTGRAD_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install chromium chromium-driver"
AXE = Path(
    os.environ.get(
        "SOFTGRAD_AXE", ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
    )
)
AXE_HINT = "cd tests/js && npm ci (make test does it)"
WIDTHS = (1280, 400)
DESKTOP = 1000  # from this width on, every display equation must fit without scrolling
RAW_TEX = ("$$", "\\frac", "\\(", "\\[", "\\begin{")


PAGES = [docname(e) for e in toc_entries()]


def _page_id(page: str) -> str:
    return page.replace("/", "__")


@pytest.fixture(scope="module")
def driver():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        message = f"headless Chromium not found ({', '.join(missing)}): {INSTALL_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: the browser test must run in CI)")
        pytest.skip(message)
    if not (HTML_DIR / "index.html").is_file():
        pytest.fail(f"no built book at {HTML_DIR}: run `make book` first")

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="softgrad-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--window-size=1280,1600",
        f"--user-data-dir={profile}",
        # No network: every proxied request goes to a closed port, every host name fails to resolve.
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(60)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


@cache
def _ids_in(path: Path) -> frozenset[str]:
    """All id= and <a name=> values in an HTML file (parsed statically)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")
    ids = {tag["id"] for tag in soup.find_all(id=True)}
    ids |= {tag["name"] for tag in soup.find_all("a", attrs={"name": True})}
    return frozenset(ids)


# Wait for MathJax (if the page loads it) and for every image, then report what the page shows.
_INSPECT_JS = r"""
const done = arguments[arguments.length - 1];
const timeout = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
(async () => {
  const mathjaxScript = !!document.querySelector('script[src*="mathjax"]');
  let mathjax = 'absent';
  if (mathjaxScript) {
    for (let i = 0; i < 300 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++) {
      await timeout(100);
    }
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await Promise.race([MathJax.startup.promise.then(() => 'typeset'), timeout(30000).then(() => 'timeout')])
        .then((v) => { mathjax = v; });
    } else {
      mathjax = 'did not start';
    }
  }
  const imgs = Array.from(document.images);
  imgs.forEach((img) => { img.loading = 'eager'; });
  await Promise.race([
    Promise.all(imgs.map((img) => img.complete ? null : new Promise((r) => {
      img.addEventListener('load', r); img.addEventListener('error', r); }))),
    timeout(15000)]);
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight, .output')
       .forEach((el) => el.remove());
  done({
    title: document.title,
    mathjax: mathjax,
    mathSources: document.querySelectorAll('.math, span.math, div.math').length,
    mjx: document.querySelectorAll('mjx-container').length,
    merrors: Array.from(document.querySelectorAll('mjx-merror')).map((e) =>
      e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5),
    text: clone.textContent,
    badImages: imgs.filter((img) => !(img.complete && img.naturalWidth > 0))
                   .map((img) => img.getAttribute('src')),
    links: Array.from(document.querySelectorAll('a[href], link[href]')).map((a) => [a.getAttribute('href'), a.href]),
  });
})();
"""


def _screenshot(driver, path: Path, max_height: int = 16000, width: int = 1280) -> None:
    """The whole page (up to max_height pixels), not just the window: grow the window, then shoot."""
    height = 1600
    full = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
    )
    try:
        driver.set_window_size(width, min(max(int(full), height), max_height))
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(width, height)


def _requested_urls(driver) -> list[str]:
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


@pytest.mark.parametrize("page", PAGES, ids=[_page_id(p) for p in PAGES])
def test_page_in_browser(driver, page):
    html = HTML_DIR / f"{page}.html"
    assert html.is_file(), (
        f"{page}: no {html.relative_to(HTML_DIR)} in the built book (is it in _toc.yml?)"
    )
    driver.get_log("browser")  # drop entries from the previous page
    driver.get_log("performance")
    driver.get(html.as_uri())
    for _ in range(100):
        if driver.execute_script("return document.readyState") == "complete":
            break
        time.sleep(0.1)
    info = driver.execute_async_script(_INSPECT_JS)
    _screenshot(driver, SCREENSHOT_DIR / f"{_page_id(page)}.png")
    problems: list[str] = []

    if not info["title"]:
        problems.append("the page has no title (did it load?)")

    # MathJax
    if info["mathSources"]:
        if info["mathjax"] != "typeset":
            problems.append(f"MathJax {info['mathjax']} ({info['mathSources']} math elements)")
        elif info["mjx"] == 0:
            problems.append("MathJax ran but rendered no mjx-container")
    if info["merrors"]:
        problems.append(f"MathJax errors: {info['merrors']}")
    for raw in RAW_TEX:
        at = info["text"].find(raw)
        if at >= 0:
            context = " ".join(info["text"][max(0, at - 60) : at + 60].split())
            problems.append(f"raw TeX {raw!r} in the visible text: ...{context}...")

    # Images
    if info["badImages"]:
        problems.append(f"images that did not load: {info['badImages']}")

    # Network: every request the page made (DevTools log), whether or not it failed loudly.
    remote = sorted(
        {
            url
            for url in _requested_urls(driver)
            if not url.startswith(("file:", "data:", "blob:", "about:", "chrome"))
        }
    )
    if remote:
        problems.append("requests to the network: " + ", ".join(remote))

    # Console
    severe = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    if severe:
        problems.append("console errors:\n    " + "\n    ".join(severe))

    # Internal links
    for raw_href, absolute in info["links"]:
        parts = urlsplit(absolute)
        if parts.scheme != "file":
            continue  # external (http, mailto) and javascript: links are not followed offline
        target = Path(unquote(parts.path))
        if target == SITE_PDF and not target.exists():
            continue  # `make pdf` puts it there; tests/test_pdf.py checks this link
        if not target.exists():
            problems.append(f"broken link {raw_href!r}: {target} does not exist")
            continue
        if target.is_dir():
            target = target / "index.html"
            if not target.is_file():
                problems.append(f"link {raw_href!r} points to a directory without index.html")
                continue
        anchor = unquote(parts.fragment)
        if anchor and target.suffix == ".html" and anchor not in _ids_in(target):
            problems.append(f"broken anchor {raw_href!r}: no id {anchor!r} in {target.name}")

    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def test_index_opens_the_start_page(driver):
    """`_build/html/index.html` (what a reader opens from disk) lands on Start here, math typeset."""
    driver.get((HTML_DIR / "index.html").as_uri())
    start = (HTML_DIR / f"{PAGES[0]}.html").as_uri()
    for _ in range(100):
        if driver.current_url.split("#")[0] == start:
            break
        time.sleep(0.1)
    assert driver.current_url.split("#")[0] == start, f"index.html led to {driver.current_url}"
    # The meta refresh is a second navigation: let it finish before inspecting the page.
    for _ in range(100):
        if driver.execute_script("return document.readyState") == "complete":
            break
        time.sleep(0.1)
    time.sleep(0.2)
    info = driver.execute_async_script(_INSPECT_JS)
    assert info["mathjax"] == "typeset", f"MathJax {info['mathjax']} on the start page"
    assert info["mjx"] > 0, "no typeset math on the start page"


# Layout at the current window width: what sticks out of the viewport, which display equations are
# cut off, and the alt text of every image. An element "sticks out" if its box reaches past the
# viewport's left or right edge and no ancestor that scrolls or clips horizontally contains it
# (such an ancestor is then checked in its place). Hidden elements (display: none, visibility:
# hidden, zero size, inside a closed dialog or an off-canvas sidebar that is not shown) are skipped.
_LAYOUT_JS = r"""
const vw = document.documentElement.clientWidth;
const describe = (el) => {
  let s = el.tagName.toLowerCase();
  if (el.id) s += '#' + el.id;
  if (el.classList.length) s += '.' + Array.from(el.classList).slice(0, 3).join('.');
  const label = el.closest('[id]');
  if (label && label !== el) s += ' in #' + label.id;
  return s;
};
const shown = (el) => {
  if (!el.getClientRects().length) return false;
  for (let a = el; a; a = a.parentElement) {
    const cs = getComputedStyle(a);
    if (cs.visibility === 'hidden' || cs.display === 'none') return false;
    if (a.tagName === 'DIALOG' && !a.open) return false;
  }
  return true;
};
const clipsX = (el) => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
const wide = [];
for (const el of document.body.querySelectorAll('*')) {
  if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE'].includes(el.tagName)) continue;
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) continue;
  if (r.right <= vw + 1 && r.left >= -1) continue;
  let clipped = false;
  for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
    if (clipsX(a)) { clipped = true; break; }
    if (getComputedStyle(a).position === 'fixed') break;
  }
  if (clipped || !shown(el)) continue;
  // an off-canvas fixed panel (a closed sidebar) sits wholly outside the viewport
  if (r.right <= 0 || r.left >= vw) continue;
  wide.push(`${describe(el)}: ${Math.round(r.left)}..${Math.round(r.right)} px`);
}
const mustFit = arguments[0];  // at desktop width a display must fit its box, not hide behind a scroll bar
const cut = [];
const source = (el) => {
  const mml = el.querySelector('mjx-assistive-mml');
  return ((mml && mml.textContent) || el.textContent || '').replace(/\s+/g, ' ').slice(0, 70);
};
for (const el of document.querySelectorAll('mjx-container[display="true"]')) {
  if (!shown(el)) continue;
  const cs = getComputedStyle(el);
  const tex = source(el);
  const inner = el.firstElementChild ? el.firstElementChild.getBoundingClientRect().width : el.scrollWidth;
  const width = Math.max(el.scrollWidth, inner);
  if (width > el.clientWidth + 1 && (mustFit || !['auto', 'scroll'].includes(cs.overflowX))) {
    const why = mustFit ? 'needs sideways scrolling at desktop width' : 'not scrollable';
    cut.push(`wider than its box, ${why} (${Math.round(width)} > ${el.clientWidth} px): ${tex}`);
    continue;
  }
  const r = el.getBoundingClientRect();
  for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
    if (!['hidden', 'clip'].includes(getComputedStyle(a).overflowX)) continue;
    const ar = a.getBoundingClientRect();
    if (r.right > ar.right + 1 || r.left < ar.left - 1) {
      cut.push(`clipped by ${describe(a)} (${Math.round(r.left)}..${Math.round(r.right)} px in `
               + `${Math.round(ar.left)}..${Math.round(ar.right)} px): ${tex}`);
      break;
    }
  }
}
return {
  viewport: vw,
  pageWidth: document.documentElement.scrollWidth,
  wide: wide.slice(0, 20),
  nWide: wide.length,
  cut: cut.slice(0, 20),
  nCut: cut.length,
  nDisplay: document.querySelectorAll('mjx-container[display="true"]').length,
  images: Array.from(document.images).map((img) => [img.getAttribute('src'), img.getAttribute('alt')]),
};
"""

# Run axe-core (already injected) on the page; keep only serious and critical violations.
_AXE_JS = r"""
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then((results) => {
  done(results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + (n.failureSummary || '')
                                                  .replace(/\s+/g, ' ').slice(0, 160)),
                  count: v.nodes.length})));
}).catch((err) => done([{id: 'axe-error', impact: 'critical', help: String(err), nodes: [], count: 1}]));
"""


def alt_text_problem(src: str | None, alt: str | None) -> str | None:
    """Why an image's alt text says nothing about the image, or None if it is meaningful.

    >>> alt_text_problem("a.png", None)
    'no alt attribute'
    >>> alt_text_problem("a.png", "8f14e45fceea167a5a36dedd4bea2543.png")
    'alt text is a file name or a hash'
    >>> alt_text_problem("a.png", "Line plot of the loss against the step") is None
    True
    """
    import re

    if alt is None:
        return "no alt attribute"
    text = alt.strip()
    if not text:
        return "empty alt text"
    name = (src or "").rsplit("/", 1)[-1]
    if text == name or re.search(r"\.(png|jpe?g|svg|gif|webp)$", text, re.IGNORECASE):
        return "alt text is a file name or a hash"
    if re.fullmatch(r"[0-9a-f_\-]{8,}", text, re.IGNORECASE):
        return "alt text is a file name or a hash"
    if len(text.split()) < 3:
        return f"alt text too short to describe the image: {text!r}"
    return None


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def _open(driver, page: str, width: int) -> None:
    driver.set_window_size(width, 1600)
    driver.get((HTML_DIR / f"{page}.html").as_uri())
    for _ in range(100):
        if driver.execute_script("return document.readyState") == "complete":
            break
        time.sleep(0.1)
    info = driver.execute_async_script(_INSPECT_JS)  # waits for MathJax and the images
    assert info["mathjax"] in ("typeset", "absent"), f"{page}: MathJax {info['mathjax']}"


@pytest.mark.parametrize("width", WIDTHS, ids=[f"{w}px" for w in WIDTHS])
@pytest.mark.parametrize("page", PAGES, ids=[_page_id(p) for p in PAGES])
def test_page_layout(driver, page, width):
    if not AXE.is_file():
        message = f"axe-core not found at {AXE}: {AXE_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: the accessibility audit must run in CI)")
        pytest.skip(message)
    try:
        _open(driver, page, width)
        layout = driver.execute_script(_LAYOUT_JS, width >= DESKTOP)
        driver.execute_script(_axe_source())
        serious = driver.execute_async_script(_AXE_JS)
        shots = SCREENSHOT_DIR / f"{width}px"
        shots.mkdir(parents=True, exist_ok=True)
        _screenshot(driver, shots / f"{_page_id(page)}.png", width=width)
    finally:
        driver.set_window_size(1280, 1600)

    problems: list[str] = []
    if layout["pageWidth"] > layout["viewport"] + 1:
        problems.append(
            f"the page scrolls sideways: {layout['pageWidth']} px wide in a "
            f"{layout['viewport']} px viewport"
        )
    if layout["nWide"]:
        problems.append(
            f"{layout['nWide']} elements wider than the viewport:\n    "
            + "\n    ".join(layout["wide"])
        )
    if layout["nCut"]:
        problems.append(
            f"{layout['nCut']} of {layout['nDisplay']} display equations cut off:\n    "
            + "\n    ".join(layout["cut"])
        )
    for src, alt in layout["images"]:
        why = alt_text_problem(src, alt)
        if why:
            problems.append(f"image {src}: {why}")
    for v in serious:
        problems.append(
            f"axe {v['impact']}: {v['id']} ({v['help']}), {v['count']} nodes:\n    "
            + "\n    ".join(v["nodes"])
        )
    assert not problems, f"{page} at {width} px:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------- the cheat sheet

CHEAT_SHEET = "chapters/cheat_sheet"
A4_POINTS = (595.28, 841.89)  # 210 x 297 mm


def test_cheat_sheet_prints_on_two_a4_sides(driver):
    """Chromium's print-to-PDF of the cheat sheet (the print CSS's own page size): two A4 pages.

    The page count is read from the PDF itself (its page objects and the page tree's /Count), and
    every page's /MediaBox must be A4, so a print that silently fell back to Letter also fails.
    """
    import base64
    import re

    if CHEAT_SHEET not in PAGES:
        pytest.fail(f"{CHEAT_SHEET} is not in _toc.yml")
    _open(driver, CHEAT_SHEET, 1280)
    pdf = base64.b64decode(
        driver.execute_cdp_cmd(
            "Page.printToPDF",
            {"preferCSSPageSize": True, "displayHeaderFooter": False, "printBackground": True},
        )["data"]
    )
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))
    counts = {int(c) for c in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", pdf)}
    counts |= {int(c) for c in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", pdf)}
    boxes = [
        tuple(float(v) for v in box.split()[2:4])
        for box in re.findall(rb"/MediaBox\s*\[([^\]]*)\]", pdf)
    ]
    (SCREENSHOT_DIR / "cheat_sheet.pdf").write_bytes(pdf)
    assert pages == 2, f"the cheat sheet prints on {pages} A4 pages, not 2 (page tree: {counts})"
    assert counts <= {2}, f"the PDF's page tree counts {counts} pages"
    assert boxes, "no /MediaBox in the printed PDF"
    for w, h in boxes:
        not_a4 = (
            f"a printed page is {w:.1f} x {h:.1f} pt, not A4 (the print CSS's size was ignored)"
        )
        assert abs(w - A4_POINTS[0]) < 1.5, not_a4
        assert abs(h - A4_POINTS[1]) < 1.5, not_a4


# --------------------------------------------------------------------------- self-test quizzes

QUIZ_PAGE = "chapters/01_softmax"


def test_quiz_answers_without_kernel_or_network(driver):
    """Chapter 1's quiz is drawn from its data and explains a wrong, then a right, answer.

    The page is opened offline (see the driver fixture). Every question of the quiz's JSON is drawn;
    clicking a wrong choice shows that choice's own explanation, marked incorrect; clicking the right
    one marks it correct; a numeric answer typed with Enter gets the explanation written for it.
    """
    import json

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open(driver, QUIZ_PAGE, 1280)
    data = driver.find_elements(By.CSS_SELECTOR, 'script.sg-quiz[type="application/json"]')
    assert data, f"{QUIZ_PAGE}: no quiz data on the page"
    questions = json.loads(data[0].get_attribute("textContent"))
    box = driver.find_element(By.ID, data[0].get_attribute("data-for"))
    for _ in range(50):
        wraps = box.find_elements(By.CSS_SELECTOR, ".Quiz")
        if len(wraps) == len(questions):
            break
        time.sleep(0.1)
    assert len(wraps) == len(questions), (
        f"{len(wraps)} of {len(questions)} questions drawn: did _static/jupyterquiz.js or "
        "_static/softgrad-quiz.js not run?"
    )

    def feedback_of(wrap):
        fb = wrap.find_element(By.CSS_SELECTOR, ".Feedback")
        return fb, " ".join(fb.text.split())

    def prefix(text):  # the explanation's words before its first formula, as the page shows them
        return " ".join(text.split("$")[0].split())

    mc = [(w, q) for w, q in zip(wraps, questions, strict=True) if q["type"] == "multiple_choice"]
    assert mc, "the quiz has no multiple-choice question"
    wrap, q = mc[0]
    labels = wrap.find_elements(By.CSS_SELECTOR, "label.MCButton")
    wrong = next(lab for lab in labels if lab.get_attribute("data-correct") == "false")
    right = next(lab for lab in labels if lab.get_attribute("data-correct") == "true")
    explanation = wrong.get_attribute("data-feedback")
    assert explanation in [a["feedback"] for a in q["answers"] if not a["correct"]]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", wrong)
    wrong.click()
    fb, shown = feedback_of(wrap)
    assert fb.is_displayed(), "a wrong answer showed no explanation"
    assert prefix(explanation) in shown, f"a wrong answer showed {shown!r}, not {explanation!r}"
    assert "incorrect" in fb.get_attribute("class")
    right.click()
    fb, shown = feedback_of(wrap)
    assert "correct" in fb.get_attribute("class").split(), f"the right answer showed {shown!r}"
    assert prefix(right.get_attribute("data-feedback")) in shown

    numeric = [(w, q) for w, q in zip(wraps, questions, strict=True) if q["type"] == "numeric"]
    assert numeric, "chapter 1's quiz has no numeric question"
    wrap, q = numeric[0]
    value = next(a for a in q["answers"] if a.get("correct"))
    field = wrap.find_element(By.CSS_SELECTOR, "input.Input-text")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
    field.click()
    field.send_keys(str(value["value"]), Keys.ENTER)
    fb, shown = feedback_of(wrap)
    assert "correct" in fb.get_attribute("class").split(), f"typing {value['value']}: {shown!r}"
    assert prefix(value["feedback"]) in shown, f"typing {value['value']} showed {shown!r}"


# --------------------------------------------------------------------------- the figure that moves

EXPLORER_PAGE = "chapters/04_cross_entropy"


def _explorer_state(driver, root):
    """The figure's inputs as its controls hold them, and every value it drew (data-value)."""
    return driver.execute_script(
        """
        const root = arguments[0];
        const num = (sel) => Array.from(root.querySelectorAll(sel)).map((e) => Number(e.dataset.value));
        const ranges = Array.from(root.querySelectorAll('input[type=range]'));
        const jac = Array.from(root.querySelectorAll('rect.sg-jacobian'))
          .map((e) => [Number(e.dataset.row), Number(e.dataset.col), Number(e.dataset.value)]);
        return {
          z: ranges.filter((r) => /-z\\d+$/.test(r.id)).map((r) => Number(r.value)),
          T: Number(root.querySelector('input[id$="-T"]').value),
          eps: Number(root.querySelector('input[id$="-eps"]').value),
          c: Number(root.querySelector('select').value),
          p: num('rect.sg-p'), y: num('rect.sg-target'), grad: num('rect.sg-grad'), jac: jac,
          loss: Number(root.querySelector('output.sg-loss').dataset.value),
        };
        """,
        root,
    )


def _softgrad_values(state):
    import numpy as np

    import softgrad as sg

    z, T, eps, c = np.array(state["z"]), state["T"], state["eps"], state["c"]
    n = len(z)
    return {
        "p": sg.softmax(z, temperature=T),
        "y": (1 - eps) * np.eye(n)[c] + eps / n,
        "jac": sg.softmax_jacobian(z / T) / T,
        "grad": sg.cross_entropy_grad(z / T, c, label_smoothing=eps) / T,
        "loss": sg.cross_entropy(z / T, c, label_smoothing=eps),
    }


def _assert_drawn_is_softgrad(state):
    import numpy as np

    want = _softgrad_values(state)
    n = len(state["z"])
    jac = np.full((n, n), np.nan)
    for i, j, v in state["jac"]:
        jac[int(i), int(j)] = v
    for key in ("p", "y", "grad"):
        np.testing.assert_allclose(state[key], want[key], rtol=1e-12, atol=1e-15, err_msg=key)
    np.testing.assert_allclose(jac, want["jac"], rtol=1e-12, atol=1e-15, err_msg="Jacobian")
    np.testing.assert_allclose(state["loss"], want["loss"], rtol=1e-12, err_msg="loss")


def test_explorer_redraws_what_softgrad_computes(driver):
    """Move the figure's sliders with the keyboard; the drawn p, Jacobian, gradient and loss are
    softgrad's for the new inputs (and differ from the values drawn before)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    _open(driver, EXPLORER_PAGE, 1280)
    roots = driver.find_elements(By.CSS_SELECTOR, ".sg-explorer[data-logits]")
    assert roots, f"{EXPLORER_PAGE}: no interactive figure"
    root = roots[0]
    for _ in range(50):
        if root.find_elements(By.CSS_SELECTOR, "rect.sg-p"):
            break
        time.sleep(0.1)
    before = _explorer_state(driver, root)
    assert len(before["p"]) == len(before["z"]) == 4, f"the figure drew {before['p']}"
    _assert_drawn_is_softgrad(before)

    def press(input_id_suffix, key, times):
        slider = root.find_element(By.CSS_SELECTOR, f'input[id$="{input_id_suffix}"]')
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
        slider.click()
        slider.send_keys(*([key] * times))

    press("-z2", Keys.ARROW_RIGHT, 25)  # the target's logit up by 2.5
    press("-z0", Keys.ARROW_LEFT, 7)
    press("-T", Keys.ARROW_RIGHT, 13)  # the temperature up by 0.65
    press("-eps", Keys.ARROW_RIGHT, 12)  # smoothing 0.12
    after = _explorer_state(driver, root)
    assert after["eps"] > 0, f"the smoothing slider did not move: {after}"
    assert after["T"] != before["T"], f"the temperature slider did not move: {after}"
    assert after["z"] != before["z"]
    assert after["p"] != before["p"], "moving the sliders did not redraw the figure"
    _assert_drawn_is_softgrad(after)

    Select(root.find_element(By.CSS_SELECTOR, "select")).select_by_value("0")
    changed = _explorer_state(driver, root)
    assert changed["c"] == 0
    assert changed["grad"] != after["grad"]
    _assert_drawn_is_softgrad(changed)
