"""The notebooks readers download and the course kit, checked from the built site only.

- The kit (``_build/html/kit/softgrad-course-kit.zip``) is unzipped into an empty folder and
  installed exactly as its README says (the README's own command, run by bash), into a fresh
  venv: softgrad must come from the wheel in the kit, never from this repository. Every chapter
  notebook then executes with nbclient, and every exercise runs as released (its solution cells
  are the stubs): nothing fails before the first check, which says "not implemented yet".
- With softgrad hidden from the kernel, the first cell says what to install, not a traceback.
- No downloadable notebook has MyST-only syntax left, and every link in one points to a page of
  the built book, with its fragment an id of that page (and an anchor of the notebook).
- A page's download button serves the same bytes as the kit's copy of that notebook.
- The wheel and the kit in the site match ``SHA256SUMS``.

The install takes a minute or two (the package index is needed for NumPy and friends); it is
done once per session (``kit_venv``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("SOFTGRAD_BOOK_HTML", ROOT / "_build" / "html")).resolve()
KIT_ZIP = HTML_DIR / "kit" / "softgrad-course-kit.zip"
KIT_ROOT = "softgrad-course-kit"

# ------------------------------------------------------------------------------ the kit's files


def _kit_files() -> dict[str, bytes]:
    if not KIT_ZIP.is_file():
        pytest.fail(f"no course kit at {KIT_ZIP}: run `make book` first (`make test` does)")
    with zipfile.ZipFile(KIT_ZIP) as zf:
        return {
            str(PurePosixPath(n).relative_to(KIT_ROOT)): zf.read(n)
            for n in zf.namelist()
            if not n.endswith("/")
        }


@pytest.fixture(scope="module")
def kit_files() -> dict[str, bytes]:
    return _kit_files()


def _notebooks(files: dict[str, bytes]) -> dict[str, dict]:
    return {n: json.loads(b) for n, b in files.items() if n.endswith(".ipynb")}


def _markdown_cells(nb: dict):
    for i, cell in enumerate(nb["cells"], 1):
        if cell["cell_type"] == "markdown":
            yield i, "".join(cell["source"])


def test_kit_holds_every_page_the_wheel_and_the_instructions(kit_files):
    from booktoc import docname, toc_entries

    pages = {docname(e) + ".ipynb" for e in toc_entries()}
    missing = sorted(pages - set(kit_files))
    assert not missing, f"the kit lacks the notebooks of these pages: {missing}"
    wheels = [n for n in kit_files if re.fullmatch(r"softgrad-[^/]+-py3-none-any\.whl", n)]
    assert len(wheels) == 1, f"expected one pure-Python softgrad wheel in the kit, got {wheels}"
    reqs = kit_files["requirements.txt"].decode()
    assert f"./{wheels[0]}" in reqs.splitlines(), "requirements.txt does not install the kit wheel"
    for line in reqs.splitlines():
        if line and not line.startswith(("#", "./")):
            assert re.match(r"^[A-Za-z0-9_.-]+==\S+( ; .+)?$", line), f"not pinned: {line!r}"
    readme = kit_files["README.md"].decode()
    for command in ("pip install -r requirements.txt", "jupyter lab", "Scripts"):
        assert command in readme, f"the kit README does not say {command!r}"


def test_chapter_downloads_carry_their_outputs(kit_files):
    """The page shows every output; so must its notebook (myst-nb leaves them out on cache hits)."""
    for name, nb in _notebooks(kit_files).items():
        if not re.fullmatch(r"chapters/\d\d_\w+\.ipynb", name):
            continue
        code = [
            c for c in nb["cells"] if c["cell_type"] == "code" and c.get("id") != "softgrad-setup"
        ]
        with_outputs = [c for c in code if c.get("outputs")]
        assert len(with_outputs) >= len(code) // 2, (
            f"{name}: only {len(with_outputs)} of {len(code)} code cells have outputs"
        )


def test_site_checksums_match(kit_files):
    sums = (HTML_DIR / "kit" / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in sums)
    assert set(listed) == {KIT_ZIP.name} | {n for n in kit_files if n.endswith(".whl")}
    for name, digest in listed.items():
        data = (HTML_DIR / "kit" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"SHA256SUMS is wrong for {name}"
    wheel = next(n for n in kit_files if n.endswith(".whl"))
    assert kit_files[wheel] == (HTML_DIR / "kit" / wheel).read_bytes(), (
        "the site's wheel and the kit's wheel differ"
    )


# ------------------------------------------------------------------------------ downloads


def _download_links(page_html: Path) -> list[str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page_html.read_text(encoding="utf-8"), "html.parser")
    return [a["href"] for a in soup.select("a.btn-download-notebook-button, a[href$='.ipynb']")]


def test_every_notebook_page_serves_the_kit_file_and_links_the_kit(kit_files):
    from bs4 import BeautifulSoup

    offered = 0
    for name, data in sorted(kit_files.items()):
        if not name.endswith(".ipynb"):
            continue
        page = HTML_DIR / (name[: -len(".ipynb")] + ".html")
        assert page.is_file(), f"{name} is in the kit, but there is no page {page}"
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        kit_links = [a["href"] for a in soup.find_all("a", href=True) if "kit/" in a["href"]]
        assert any((page.parent / h).resolve() == KIT_ZIP for h in kit_links), (
            f"{page.relative_to(HTML_DIR)} does not link the course kit (links: {kit_links})"
        )
        own = [h for h in _download_links(page) if h.endswith(f"_sources/{name}")]
        if not own:
            continue  # a plain Markdown page (For instructors, Bibliography): the kit only
        offered += 1
        served = (page.parent / own[0]).resolve().read_bytes()
        assert served == data, f"{name}: the page's download and the kit's copy differ"
    assert offered >= 14, f"only {offered} pages offer their notebook"


# MyST syntax, found with plain patterns (independent of the converter's parser)
_MYST_LEFT = [
    (re.compile(r"^\s*(`{3,}|:{3,})\s*\{[\w:-]+\}", re.MULTILINE), "a directive fence"),
    (re.compile(r"\{[a-z][\w:-]*\}`"), "a {role}`...` "),
    (re.compile(r"^\s*\([\w-]+\)=\s*$", re.MULTILINE), "a (label)= target"),
    (re.compile(r"^\s*\$\$\s*\([\w-]+\)\s*$", re.MULTILINE), "a labelled $$ (label)"),
    (re.compile(r"^\s*:(label|class|name|header-rows):", re.MULTILINE), "a directive option"),
]


def _strip_code(md: str) -> str:
    """Markdown without fenced code blocks and code spans (where MyST text may be shown)."""
    md = re.sub(r"(?ms)^(\s*)(`{3,}|~{3,})(?!\s*\{).*?^\1\2\s*$", "", md)
    return re.sub(r"(`+)(?!\{)[^`]*?\1", "", md)


def test_downloads_have_no_myst_syntax(kit_files):
    from myst_to_jupyter import myst_parser_for

    md = myst_parser_for()
    problems = []
    for name, nb in _notebooks(kit_files).items():
        for i, text in _markdown_cells(nb):
            for pattern, what in _MYST_LEFT:
                for m in pattern.finditer(_strip_code(text)):
                    problems.append(f"{name} cell {i}: {what}: {m.group(0).strip()!r}")
            # and what MyST's own parser would still see as MyST
            for tok in md.parse(text):
                kinds = [tok] + list(tok.children or [])
                for t in kinds:
                    if t.type in ("myst_role", "myst_target", "math_block_label") or (
                        t.type in ("fence", "colon_fence") and t.info.strip().startswith("{")
                    ):
                        problems.append(f"{name} cell {i}: MyST {t.type} {t.content[:40]!r}")
    assert not problems, "MyST-only syntax in downloadable notebooks:\n  " + "\n  ".join(
        problems[:30]
    )


def _links(text: str) -> list[str]:
    from markdown_it import MarkdownIt

    hrefs = []
    for tok in MarkdownIt("commonmark").enable("table").parse(text):
        for t in [tok] + list(tok.children or []):
            if t.type == "link_open":
                hrefs.append(t.attrs["href"])
            if t.type in ("html_inline", "html_block"):
                hrefs += re.findall(r'href="([^"]+)"', t.content)
    return hrefs


@cache
def _ids(html_page: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html_page.read_text(encoding="utf-8")))


def test_every_link_in_a_download_points_to_a_page_of_the_book(kit_files):
    notebooks = _notebooks(kit_files)
    anchors = {
        n: {a for _, t in _markdown_cells(nb) for a in re.findall(r'<a id="([^"]+)"', t)}
        for n, nb in notebooks.items()
    }
    checked, problems = 0, []
    for name, nb in notebooks.items():
        for i, text in _markdown_cells(nb):
            for href in _links(text):
                if re.match(r"^(https?|mailto):", href):
                    continue  # the web (no base URL is set, so none of these is the book)
                checked += 1
                path, _, frag = href.partition("#")
                target = (
                    str(PurePosixPath(name).parent / path) if path else name
                )  # relative to the notebook, inside the kit
                target = os.path.normpath(target)
                where = f"{name} cell {i}: {href}"
                if target not in notebooks:
                    problems.append(f"{where}: no notebook {target} in the kit")
                    continue
                page = HTML_DIR / (target[: -len(".ipynb")] + ".html")
                if not page.is_file():
                    problems.append(f"{where}: the book has no page {page.relative_to(HTML_DIR)}")
                elif frag and frag not in _ids(page):
                    problems.append(f"{where}: #{frag} is not an id of {page.name}")
                elif frag and frag not in anchors[target]:
                    problems.append(f"{where}: #{frag} is not an anchor of {target}")
    assert checked > 100, f"only {checked} links between pages checked: did the roles vanish?"
    assert not problems, "broken links in downloadable notebooks:\n  " + "\n  ".join(problems[:30])


def test_exercise_locked_cells_are_the_released_ones(kit_files):
    """The grader compares locked cells with the release: the kit must not have rewritten them."""
    import nbformat

    exercises = sorted(n for n in kit_files if n.startswith("exercises/release/"))
    assert exercises, "no exercises in the kit"
    for name in exercises:
        released = nbformat.read(ROOT / name, as_version=4)
        kit = nbformat.reads(kit_files[name].decode(), as_version=4)
        assert kit.cells[0].id == "softgrad-setup", f"{name}: the set-up cell is not first"
        assert [(c.cell_type, c.source, c.metadata.get("nbgrader")) for c in kit.cells[1:]] == [
            (c.cell_type, c.source, c.metadata.get("nbgrader")) for c in released.cells
        ], f"{name}: the kit's cells differ from exercises/release/"


# ------------------------------------------------------------------------------ a fresh install


def _readme_commands(readme: str) -> list[str]:
    """The Linux/macOS commands of the kit README (its first ```sh block)."""
    block = re.search(r"```sh\n(.*?)```", readme, re.DOTALL)
    assert block, "the kit README has no ```sh block of commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture(scope="session")
def kit_venv(tmp_path_factory):
    """The kit unzipped into an empty folder and installed as its README says."""
    files = _kit_files()
    base = tmp_path_factory.mktemp("kit")
    with zipfile.ZipFile(KIT_ZIP) as zf:
        zf.extractall(base)
    kit = base / KIT_ROOT
    commands = _readme_commands((kit / "README.md").read_text(encoding="utf-8"))
    install = [c for c in commands if "pip install" in c]
    assert len(install) == 1, f"expected one install command in the README, got {commands}"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    # this repository's interpreter and tools must not be found first
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT))
    )
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", install[0]],
        cwd=kit,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert run.returncode == 0, (
        f"`{install[0]}` failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    )
    python = kit / ".venv" / "bin" / "python"
    # Jupyter's and IPython's own folders, so that no kernel or startup file of this machine's
    # user is picked up
    for d in ("jupyter-data", "jupyter-config", "ipython"):
        (base / d).mkdir()
    env.update(
        JUPYTER_DATA_DIR=str(base / "jupyter-data"),
        JUPYTER_CONFIG_DIR=str(base / "jupyter-config"),
        IPYTHONDIR=str(base / "ipython"),
    )
    assert files
    return {"kit": kit, "python": python, "env": env, "base": base}


_RUNNER = r"""
import json, sys, nbformat
from pathlib import Path
from nbclient import NotebookClient

path, allow_errors = Path(sys.argv[1]), sys.argv[2] == "1"
nb = nbformat.read(path, as_version=4)
for cell in nb.cells:  # the book's outputs come with the notebook: start from none
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=allow_errors,
                        resources={"metadata": {"path": str(path.parent)}})
failure = None
try:
    client.execute()
except Exception as exc:  # CellExecutionError: report it, with the outputs so far
    failure = str(exc)[-4000:]
cells = []
for cell in nb.cells:
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    cells.append({"type": cell.cell_type, "nbgrader": cell.metadata.get("nbgrader", {}),
                  "errors": [{"ename": e["ename"], "evalue": e["evalue"], "traceback": e["traceback"]}
                             for e in errors], "text": text})
print(json.dumps({"cells": cells, "error": failure}))
"""


def _execute(kit_venv, notebook: Path, allow_errors: bool = False, env=None) -> dict:
    run = subprocess.run(
        [str(kit_venv["python"]), "-c", _RUNNER, str(notebook), "1" if allow_errors else "0"],
        cwd=notebook.parent,
        env=env or kit_venv["env"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert run.returncode == 0, f"running {notebook.name} crashed:\n{run.stderr[-3000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_softgrad_comes_from_the_kit_wheel(kit_venv):
    probe = (
        "import json, softgrad, importlib.metadata as m; "
        "d = m.distribution('softgrad'); "
        "print(json.dumps({'file': softgrad.__file__, 'url': json.loads(d.read_text('direct_url.json'))['url']}))"
    )
    run = subprocess.run(
        [str(kit_venv["python"]), "-c", probe],
        cwd=kit_venv["base"],
        env=kit_venv["env"],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(run.stdout)
    venv = kit_venv["kit"] / ".venv"
    assert Path(got["file"]).resolve().is_relative_to(venv.resolve()), got
    assert got["url"].startswith("file://"), got
    assert got["url"].endswith("-py3-none-any.whl"), got
    assert Path(got["url"][len("file://") :]).parent == kit_venv["kit"], got


def _kit_notebooks(prefix: str) -> list[str]:
    if not KIT_ZIP.is_file():
        return []
    return sorted(n for n in _kit_files() if n.startswith(prefix) and n.endswith(".ipynb"))


CHAPTERS = [n for n in _kit_notebooks("chapters/") if re.search(r"/\d\d_", n)]
EXERCISES = _kit_notebooks("exercises/release/")


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS, ids=[PurePosixPath(n).stem for n in CHAPTERS])
def test_chapter_executes_in_the_kit(kit_venv, name):
    result = _execute(kit_venv, kit_venv["kit"] / name)
    assert result["error"] is None, f"{name} failed in the kit's environment:\n{result['error']}"


@pytest.mark.slow
@pytest.mark.parametrize("name", EXERCISES, ids=[PurePosixPath(n).stem for n in EXERCISES])
def test_exercise_runs_to_its_first_check(kit_venv, name):
    result = _execute(kit_venv, kit_venv["kit"] / name, allow_errors=True)
    cells = result["cells"]
    first_test = next(
        i for i, c in enumerate(cells) if c["type"] == "code" and c["nbgrader"].get("grade")
    )
    before = [(i, c["errors"]) for i, c in enumerate(cells[:first_test]) if c["errors"]]
    assert not before, f"{name}: cells before the first check failed: {before}"
    errors = cells[first_test]["errors"]
    assert errors, f"{name}: the first check passed, with nothing implemented"
    assert errors[0]["ename"] == "CheckFailed", (
        f"{name}: the first check should fail with CheckFailed, got {errors}"
    )
    assert "not implemented yet" in errors[0]["evalue"], errors[0]["evalue"]
    crashes = [
        (i, e["ename"], e["evalue"][:80])
        for i, c in enumerate(cells)
        for e in c["errors"]
        if e["ename"] in ("ModuleNotFoundError", "ImportError", "SyntaxError")
    ]
    assert not crashes, f"{name}: {crashes}"


@pytest.mark.slow
def test_first_cell_says_what_to_install_when_softgrad_is_missing(kit_venv):
    """softgrad hidden from the kernel (an IPython startup file): a message, not a traceback."""
    env = dict(kit_venv["env"])
    ipython = kit_venv["base"] / "ipython-no-softgrad"
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-hide-softgrad.py").write_text(
        "import sys\nsys.modules['softgrad'] = None  # as if it were not installed\n"
    )
    env["IPYTHONDIR"] = str(ipython)
    notebook = kit_venv["kit"] / "chapters" / "01_softmax.ipynb"
    result = _execute(kit_venv, notebook, env=env)
    assert result["error"], "the notebook ran on although softgrad is missing"
    assert not any(c["errors"] or c["text"] for c in result["cells"][1:]), (
        "cells after the first ran"
    )
    first = result["cells"][0]
    assert first["errors"], "the set-up cell did not stop the notebook although softgrad is missing"
    error = first["errors"][0]
    assert error["ename"] == "SoftgradNotInstalled", error
    shown = "\n".join(error["traceback"])
    assert "Traceback" not in shown, f"a traceback was shown:\n{shown}"
    assert 'File "' not in shown, f"a traceback was shown:\n{shown}"
    kit = str(kit_venv["kit"].resolve())
    wheel = next(kit_venv["kit"].glob("softgrad-*.whl")).name
    for needed in (kit, "pip install -r requirements.txt", "make venv", wheel):
        assert needed in shown, f"the message does not say {needed!r}:\n{shown}"
    # and away from the kit (a notebook downloaded alone), it names the kit and where to get it
    alone = kit_venv["base"] / "alone"
    alone.mkdir()
    (alone / notebook.name).write_bytes(notebook.read_bytes())
    shown = "\n".join(
        _execute(kit_venv, alone / notebook.name, env=env)["cells"][0]["errors"][0]["traceback"]
    )
    for needed in ("softgrad-course-kit.zip", "Start page", "Run it yourself"):
        assert needed in shown, f"the message does not say {needed!r}:\n{shown}"


@pytest.mark.slow
@pytest.mark.grading
def test_a_solved_kit_exercise_gets_every_autograded_point(kit_files, tmp_path):
    """The set-up cell and the kit's copy cost an honest student nothing: full marks, no flag.

    The expected score is the points of the source's graded code cells (the written answers are
    graded by hand), read from nbgrader's metadata, not from the grader.
    """
    import csv

    import nbformat

    from softgrad.grading.course import solved

    name = "ex01_stable_softmax"
    source = nbformat.read(ROOT / "exercises" / "source" / name / f"{name}.ipynb", as_version=4)
    graded = [c for c in source.cells if c.metadata.get("nbgrader", {}).get("grade")]
    auto = sum(c.metadata["nbgrader"]["points"] for c in graded if c.cell_type == "code")
    total = sum(c.metadata["nbgrader"]["points"] for c in graded)
    kit_nb = nbformat.reads(kit_files[f"exercises/release/{name}/{name}.ipynb"].decode(), 4)
    folder = tmp_path / "submissions" / "from_kit" / name
    folder.mkdir(parents=True)
    nbformat.write(solved(source, kit_nb), folder / f"{name}.ipynb")
    run = subprocess.run(
        [sys.executable, "-m", "softgrad.grading", "grade", str(tmp_path / "submissions")]
        + ["--out", str(tmp_path / "out"), "--course", str(ROOT / "exercises")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    with open(tmp_path / "out" / "grades.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["assignment"] == name)
    assert row["status"] == "ok", row
    assert row["flags"] == "", f"the kit's notebook was flagged: {row['flags']}"
    assert (float(row["score"]), float(row["max_score"])) == (auto, total), row


def test_assignment_zips_hold_one_exercise_each_and_are_reproducible(tmp_path):
    from softgrad.kit import assignment_zips

    first = assignment_zips(KIT_ZIP, tmp_path / "a")
    again = assignment_zips(KIT_ZIP, tmp_path / "b")
    assert [p.name for p in first] == [f"{PurePosixPath(n).parts[2]}.zip" for n in EXERCISES]
    for one, two in zip(first, again, strict=True):
        assert one.read_bytes() == two.read_bytes(), f"{one.name} differs between two runs"
        with zipfile.ZipFile(one) as zf:
            names = zf.namelist()
        exercise = one.stem
        assert [n for n in names if "/exercises/" in n] == [
            f"{exercise}/exercises/release/{exercise}/{exercise}.ipynb"
        ], f"{one.name}: {names}"
        for needed in ("README.md", "requirements.txt", "chapters/01_softmax.ipynb"):
            assert f"{exercise}/{needed}" in names, f"{one.name} lacks {needed}"


def test_a_kit_entry_may_not_leave_the_kit(tmp_path):
    from softgrad.kit import KitError, write_zip

    for bad in ("../evil.ipynb", "/etc/passwd", "chapters/../../x"):
        with pytest.raises(KitError, match="relative path inside the kit"):
            write_zip(tmp_path / "k.zip", {bad: b"x"})


def test_no_solution_reaches_the_kit(kit_files):
    """test_book searches the site's files for solutions; the kit is a zip, so search inside it."""
    from test_book import SOLUTION_MARKERS, _solution_probes, _squash

    probes, _ = _solution_probes()
    assert probes, "no solution lines to search for: the search would prove nothing"
    leaks = []
    for name, data in kit_files.items():
        if not name.endswith((".ipynb", ".md", ".txt")):
            continue
        text = data.decode("utf-8")
        try:
            text += "\n" + "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        except (ValueError, KeyError):
            pass
        squashed = _squash(text)
        leaks += [f"{name}: {m!r}" for m in SOLUTION_MARKERS if m in text]
        leaks += [f"{name}: {p!r} (from {o})" for p, o in probes if p in squashed]
    assert not leaks, "solution or hidden-test code in the course kit:\n  " + "\n  ".join(
        leaks[:20]
    )
