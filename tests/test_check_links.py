"""Every "Read:" link of the checks resolves from the exercise notebook, in the kit and in the book.

A check's message names a subsection of the exercise's own chapter as a path relative to the
exercise notebook (``../../../chapters/01_softmax.ipynb#sec-softmax-logsumexp``), the link rule of
the course kit: from ``exercises/release/<ex>/<ex>.ipynb`` in the kit it names the chapter's
notebook, which must carry an ``<a id>`` of that label; in the built book the same page must have
that id. Read from the built site only (``make book`` first), like tests/test_kit.py.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from softgrad.checks import _SPECS, MISTAKES, SECTIONS, read_line

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("SOFTGRAD_BOOK_HTML", ROOT / "_build" / "html")).resolve()
KIT_ZIP = HTML_DIR / "kit" / "softgrad-course-kit.zip"


@pytest.fixture(scope="module")
def kit() -> dict[str, dict]:
    if not KIT_ZIP.is_file():
        pytest.fail(f"no course kit at {KIT_ZIP}: run `make book` first (`make test` does)")
    with zipfile.ZipFile(KIT_ZIP) as zf:
        return {
            str(PurePosixPath(n).relative_to("softgrad-course-kit")): json.loads(zf.read(n))
            for n in zf.namelist()
            if n.endswith(".ipynb")
        }


def _anchors(nb: dict) -> set[str]:
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return set(re.findall(r'<a id="([^"]+)"', text))


def test_every_read_link_of_every_check_resolves_in_the_kit_and_the_book(kit):
    exercises = {p.split("/")[2][:4]: p for p in kit if p.startswith("exercises/release/")}
    checked, problems = 0, []
    for spec in _SPECS.values():
        chapter = SECTIONS[spec.home][0]
        # exercise k belongs to chapter k, except exercise 7, which belongs to chapter 9
        notebook = exercises[f"ex{ {'09': '07'}.get(chapter[:2], chapter[:2]) }"]
        for label in sorted({spec.section(key) for key in MISTAKES} | {spec.home}):
            href = read_line(label).rsplit(": ", 1)[1]
            path, _, frag = href.partition("#")
            target = os.path.normpath(str(PurePosixPath(notebook).parent / path))
            where = f"{spec.check} from {notebook}: {href}"
            checked += 1
            if target not in kit:
                problems.append(f"{where}: no notebook {target} in the kit")
            elif frag not in _anchors(kit[target]):
                problems.append(f"{where}: #{frag} is not an anchor of {target}")
            page = HTML_DIR / (target.removesuffix(".ipynb") + ".html")
            if not page.is_file() or f'id="{frag}"' not in page.read_text(encoding="utf-8"):
                problems.append(f"{where}: #{frag} is not an id of the book's {page.name}")
    assert checked >= len(_SPECS)
    assert not problems, "Read: links that do not resolve:\n  " + "\n  ".join(problems)
