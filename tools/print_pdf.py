"""Print the single-page HTML build of the book to one PDF with headless Chromium.

Usage: python tools/print_pdf.py _build/singlehtml/chapters/00_start_here.html _build/pdf/softgrad.pdf

`make pdf` runs Sphinx's ``singlehtml`` builder first, then this script. The page is opened from
disk with every network request refused (the book needs none), the script waits until MathJax
has typeset every formula and every image has loaded, and only then asks Chromium to print
(DevTools ``Page.printToPDF`` through selenium's ``print_page``). Uses Debian's ``chromium`` and
``chromium-driver`` (``SOFTGRAD_CHROMIUM`` / ``SOFTGRAD_CHROMEDRIVER`` override the paths); it never
downloads a browser.
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

# Resolve once MathJax has finished (or report why not) and every image is decoded.
_READY_JS = r"""
const done = arguments[arguments.length - 1];
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  for (let i = 0; i < 600 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++) {
    await wait(100);
  }
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return done('MathJax did not start');
  await MathJax.startup.promise;
  if (MathJax.typesetPromise) await MathJax.typesetPromise();
  const imgs = Array.from(document.images);
  imgs.forEach((img) => { img.loading = 'eager'; });
  await Promise.all(imgs.map((img) => img.decode().catch(() => null)));
  const errors = document.querySelectorAll('mjx-merror').length;
  const bad = imgs.filter((img) => !(img.complete && img.naturalWidth > 0)).length;
  done(errors || bad ? `${errors} MathJax errors, ${bad} images not loaded` : 'ready');
})();
"""


def print_pdf(html: Path, pdf: Path) -> int:
    """Print `html` to `pdf`; return the number of pages Chromium reported."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.print_page_options import PrintOptions

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            raise SystemExit(
                f"print_pdf: {path} not found (apt-get install chromium chromium-driver)"
            )
    if not html.is_file():
        raise SystemExit(f"print_pdf: {html} not found (run the singlehtml build first)")

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
        "--window-size=1100,1600",
        f"--user-data-dir={profile}",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(120)
        driver.set_script_timeout(180)
        driver.get(html.resolve().as_uri())
        for _ in range(600):
            if driver.execute_script("return document.readyState") == "complete":
                break
            time.sleep(0.1)
        state = driver.execute_async_script(_READY_JS)
        if state != "ready":
            raise SystemExit(f"print_pdf: {html}: {state}")
        settings = PrintOptions()
        settings.page_width = 21.0  # A4, in centimetres
        settings.page_height = 29.7
        settings.margin_top = settings.margin_bottom = 1.5
        settings.margin_left = settings.margin_right = 1.5
        settings.background = True
        settings.scale = 0.8
        data = base64.b64decode(driver.print_page(settings))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(data)
    return data.count(b"/Type /Page") - data.count(b"/Type /Pages")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the singlehtml build's index.html")
    parser.add_argument("pdf", type=Path, help="where to write the PDF")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    pages = print_pdf(args.html, args.pdf)
    print(f"{args.pdf}: about {pages} pages, printed in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
