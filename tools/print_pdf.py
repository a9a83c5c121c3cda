"""Print the book's single-page HTML build to one PDF with headless Chromium.

Usage: python tools/print_pdf.py _build/singlehtml _build/pdf/softgrad.pdf

`make pdf` runs Sphinx's ``singlehtml`` builder first, then this script. Sphinx writes the whole
book into the root page's file (``chapters/00_start_here.html``) with links relative to the build
folder, so the script copies it to the folder's top (``softgrad.html``) and opens that copy from
disk, with every network request refused (the book needs none: MathJax comes from
``_static/mathjax``). It waits until MathJax has typeset every formula and every image has been
decoded, checks that in the print layout no display equation, table or code block is cut off, and
only then prints, through the DevTools protocol's ``Page.printToPDF``. That call goes straight to
the browser (selenium's ``execute_cdp_cmd``); WebDriver's own print command gives up after 10 s,
which a 200-page book on a busy machine exceeds.

Uses Debian's ``chromium`` and ``chromium-driver`` (``SOFTGRAD_CHROMIUM`` and
``SOFTGRAD_CHROMEDRIVER`` override the paths); it never downloads a browser.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = os.environ.get("SOFTGRAD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SOFTGRAD_CHROMEDRIVER", "/usr/bin/chromedriver")
ROOT_PAGE = "chapters/00_start_here.html"  # the root document (_toc.yml's root)
TITLE = "softgrad: gradients through softmax and cross-entropy"

# A4 with 15 mm margins, in inches (the protocol's unit), printed at 80 %: the text column is then
# 18 cm / 0.8 = 850 CSS pixels wide, wider than the desktop page's column, so every display
# equation that fits on screen fits on paper.
PAPER = {"paperWidth": 8.27, "paperHeight": 11.69}
MARGIN = 15 / 25.4
SCALE = 0.8
COLUMN_PX = round((PAPER["paperWidth"] - 2 * MARGIN) * 96 / SCALE)

# Resolves once MathJax has finished (or says why not) and every image is decoded.
_READY_JS = r"""
const done = arguments[arguments.length - 1];
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  for (let i = 0; i < 1200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++) {
    await wait(100);
  }
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return done('MathJax did not start');
  await MathJax.startup.promise;
  const imgs = Array.from(document.images);
  imgs.forEach((img) => { img.loading = 'eager'; });
  await Promise.all(imgs.map((img) => img.decode().catch(() => null)));
  const sources = document.querySelectorAll('.math, span.math, div.math').length;
  const typeset = document.querySelectorAll('mjx-container').length;
  const errors = document.querySelectorAll('mjx-merror').length;
  const bad = imgs.filter((img) => !(img.complete && img.naturalWidth > 0)).length;
  if (sources && !typeset) return done(`MathJax typeset nothing (${sources} math elements)`);
  done(errors || bad ? `${errors} MathJax errors, ${bad} images not loaded` : 'ready');
})();
"""

# In the print layout: every box that would need a scroll bar, which paper does not have.
_CUT_OFF_JS = r"""
const cut = [];
for (const el of document.querySelectorAll('mjx-container[display="true"], div.math, table, pre, img')) {
  const style = getComputedStyle(el);
  if (style.display === 'none' || el.closest('[hidden], details:not([open])')) continue;
  if (el.getClientRects().length === 0) continue;
  const over = el.tagName === 'IMG'
    ? el.getBoundingClientRect().right - document.documentElement.clientWidth
    : el.scrollWidth - el.clientWidth;
  if (over > 1) {
    const section = el.closest('section[id]');
    cut.push(`${el.tagName.toLowerCase()} in #${section ? section.id : '?'}: ` +
             `${Math.round(over)} px cut off: ${(el.textContent || el.alt || '').replace(/\s+/g, ' ').trim().slice(0, 80)}`);
  }
}
return cut;
"""

FOOTER = (
    '<div style="font-size: 8px; width: 100%; text-align: center; color: #555;">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)


def single_page(build: Path) -> Path:
    """The singlehtml build's book page, copied to the build folder's top (its links' base)."""
    source = build / ROOT_PAGE
    if not source.is_file():
        raise SystemExit(f"print_pdf: {source} not found (run the singlehtml build first)")
    page = build / "softgrad.html"
    shutil.copyfile(source, page)
    return page


def print_pdf(html: Path, pdf: Path) -> dict[str, float]:
    """Print `html` to `pdf` once MathJax and the images are ready and nothing is cut off.

    Returns the seconds spent loading and typesetting the page and printing it.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            raise SystemExit(
                f"print_pdf: {path} not found (apt-get install chromium chromium-driver)"
            )
    profile = tempfile.mkdtemp(prefix="softgrad-pdf-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-extensions",
        "--window-size=1280,1600",
        f"--user-data-dir={profile}",
        # No network: every proxied request goes to a closed port, every host name fails.
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(600)
        driver.set_script_timeout(600)
        start = time.perf_counter()
        driver.get(html.resolve().as_uri())
        state = driver.execute_async_script(_READY_JS)
        seconds = {"typeset": time.perf_counter() - start}
        if state != "ready":
            raise SystemExit(f"print_pdf: {html}: {state}")
        driver.execute_script("document.title = arguments[0]", TITLE)  # the PDF's Title

        # Lay the page out as it will be printed (print styles, the paper's column) and look
        # for boxes that would scroll on screen: on paper their overflow is lost.
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": COLUMN_PX, "height": 1600, "deviceScaleFactor": 1, "mobile": False},
        )
        cut = driver.execute_script(_CUT_OFF_JS)
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        if cut:
            raise SystemExit(
                f"print_pdf: {len(cut)} boxes would be cut off on paper:\n  " + "\n  ".join(cut)
            )

        start = time.perf_counter()
        result = driver.execute_cdp_cmd(
            "Page.printToPDF",
            {
                **PAPER,
                "marginTop": MARGIN,
                "marginBottom": MARGIN,
                "marginLeft": MARGIN,
                "marginRight": MARGIN,
                "scale": SCALE,
                "printBackground": True,
                "displayHeaderFooter": True,
                "headerTemplate": "<div></div>",
                "footerTemplate": FOOTER,
                "generateDocumentOutline": True,  # PDF bookmarks from the headings
                "generateTaggedPDF": True,  # structure for screen readers
            },
        )
        seconds["print"] = time.perf_counter() - start
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(base64.b64decode(result["data"]))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", type=Path, help="the singlehtml build folder (_build/singlehtml)")
    parser.add_argument("pdf", type=Path, help="where to write the PDF")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    seconds = print_pdf(single_page(args.build), args.pdf)
    size = args.pdf.stat().st_size / 2**20
    print(
        f"{args.pdf}: {size:.1f} MiB in {time.perf_counter() - start:.0f} s "
        f"(page loaded and typeset {seconds['typeset']:.0f} s, printed {seconds['print']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
