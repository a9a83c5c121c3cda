"""The graded exercises (exercises/source/*/*.ipynb): the solutions pass, the tests bite, the format holds.

- every source notebook passes ``pytest --nbval-lax`` (its solutions pass all its tests, hidden ones
  included), one test per notebook so a failure names it;
- every released notebook, generated from source as ``make release`` does and run as a student receives
  it (blank answers), fails each of its autograded test cells: no test passes without an answer;
- structure: stored without outputs, descriptive unique grade ids, a markdown lead-in before every graded
  cell, visible tests that call ``softgrad.checks``, hidden tests that use the rules (allow-list,
  tolerance) of a visible check of the same notebook, solutions written without softgrad's reference
  implementations, return types stated, at least one hand-graded written answer, and a working link to
  the chapter.

That a catalogued mistake in an answer cell is named by the notebook's own test cells is tested on a
corpus of 190 wrong answers, in-process (tests/test_feedback_corpus.py).

The released notebooks are not committed (``exercises/release/`` is generated), so there is nothing to
prove current; if they are ever committed, ``test_committed_release_is_current`` compares them.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "exercises"
SOURCE = COURSE / "source"
ASSIGNMENTS = [
    "ex01_stable_softmax",
    "ex02_softmax_jacobian",
    "ex03_softmax_backprop",
    "ex04_cross_entropy_grad",
    "ex05_gradient_checker",
    "ex06_train_classifier",
    "ex07_framework_conventions",
]
CHAPTERS = {  # assignment -> the chapter it links to
    "ex01_stable_softmax": "01_softmax.md",
    "ex02_softmax_jacobian": "02_softmax_jacobian.md",
    "ex03_softmax_backprop": "03_softmax_backprop.md",
    "ex04_cross_entropy_grad": "04_cross_entropy.md",
    "ex05_gradient_checker": "05_gradient_checking.md",
    "ex06_train_classifier": "06_putting_it_together.md",
    "ex07_framework_conventions": "09_frameworks.md",
}
GRADE_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$|^[a-z]{4,}$")
TIMEOUT = 600


def source_notebook(name: str) -> Path:
    return SOURCE / name / f"{name}.ipynb"


@cache
def read(path: Path):
    return nbformat.read(path, as_version=4)


def meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_test_cell(cell) -> bool:
    m = meta(cell)
    return cell.cell_type == "code" and bool(m.get("grade")) and not m.get("solution")


def is_written_answer(cell) -> bool:
    m = meta(cell)
    return (
        cell.cell_type == "markdown"
        and bool(m.get("grade"))
        and bool(m.get("solution"))
        and not m.get("task")
        and m.get("points", 0) > 0
    )


def _visible(source: str) -> str:
    """The part of a test cell a student sees (hidden-test blocks removed)."""
    return re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", source, flags=re.DOTALL)


def _secret_lines(cell) -> list[str]:
    """Lines of a cell that students must not see: solution and hidden-test blocks, written model answers."""
    m = meta(cell)
    if m.get("solution") and "### BEGIN SOLUTION" not in cell.source:
        return cell.source.splitlines()
    blocks = re.findall(
        r"### BEGIN (?:SOLUTION|HIDDEN TESTS)(.*?)### END (?:SOLUTION|HIDDEN TESTS)",
        cell.source,
        flags=re.DOTALL,
    )
    return [line for block in blocks for line in block.splitlines()]


# --------------------------------------------------------------------------- structure (no kernel)


def test_every_assignment_has_its_notebook():
    found = sorted(p.parent.name for p in SOURCE.glob("*/*.ipynb"))
    assert found == ASSIGNMENTS, f"exercises/source holds {found}, expected {ASSIGNMENTS}"
    for name in ASSIGNMENTS:
        assert [p.name for p in (SOURCE / name).glob("*.ipynb")] == [f"{name}.ipynb"], name
    assert (COURSE / "nbgrader_config.py").is_file(), "exercises/nbgrader_config.py is missing"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_stored_without_outputs(name):
    nb = read(source_notebook(name))
    nbformat.validate(nb)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, (
        f"{name}: cells {dirty} have outputs or an execution count; store the notebook cleared"
    )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_grade_ids_unique_and_descriptive(name):
    nb = read(source_notebook(name))
    ids = [meta(c).get("grade_id") for c in nb.cells]
    missing = [i for i, gid in enumerate(ids) if not gid]
    assert not missing, (
        f"{name}: cells {missing} carry no nbgrader grade_id (lock instruction cells too)"
    )
    dupes = sorted({gid for gid in ids if ids.count(gid) > 1})
    assert not dupes, f"{name}: duplicate grade ids {dupes}"
    bad = [gid for gid in ids if gid.startswith("cell-") or not GRADE_ID.match(gid)]
    assert not bad, f"{name}: grade ids that do not say what they hold: {bad}"
    tests = [meta(c)["grade_id"] for c in nb.cells if is_test_cell(c)]
    assert all(gid.startswith("test_") for gid in tests), (
        f"{name}: test cells must be named test_*: {tests}"
    )
    for c in nb.cells:
        m = meta(c)
        assert m.get("schema_version") == 3, (
            f"{name}: {m.get('grade_id')}: nbgrader schema_version must be 3"
        )
        if m.get("grade"):
            assert m.get("points", 0) > 0, f"{name}: graded cell {m['grade_id']} has no points"
        if not m.get("solution"):
            assert m.get("locked"), f"{name}: {m['grade_id']} is neither an answer cell nor locked"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_graded_cell_has_a_markdown_lead_in(name):
    cells = read(source_notebook(name)).cells
    assert cells[0].cell_type == "markdown", f"{name}: the notebook must open with a markdown cell"
    assert cells[0].source.startswith("# Exercise"), (
        f"{name}: the first cell must be '# Exercise ...'"
    )
    assert "**Goal.**" in cells[0].source, f"{name}: the first cell must state the goal"
    for i, cell in enumerate(cells):
        m = meta(cell)
        if m.get("grade") or m.get("solution"):
            assert i > 0, f"{name}: the notebook starts with a graded cell"
            assert cells[i - 1].cell_type == "markdown", (
                f"{name}: graded/answer cell {m['grade_id']} is not preceded by a markdown lead-in"
            )
            assert not meta(cells[i - 1]).get("grade"), (
                f"{name}: the cell before {m['grade_id']} is itself graded, not a lead-in"
            )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_tests_visible_and_hidden(name):
    cells = read(source_notebook(name)).cells
    tests = [c for c in cells if is_test_cell(c)]
    assert len(tests) >= 2, (
        f"{name}: expected at least two autograded test cells, found {len(tests)}"
    )
    for c in tests:
        visible = _visible(c.source)
        assert visible.strip(), (
            f"{name}: {meta(c)['grade_id']} has no visible test: it would pass unanswered"
        )
        assert c.source.count("### BEGIN HIDDEN TESTS") == c.source.count("### END HIDDEN TESTS")
    assert any("### BEGIN HIDDEN TESTS" in c.source for c in tests), f"{name}: no hidden tests"
    assert any(re.search(r"\bcheck_\w+\(", _visible(c.source)) for c in tests), (
        f"{name}: no visible test calls a softgrad.checks function"
    )
    imports = "\n".join(
        c.source for c in cells if c.cell_type == "code" and not meta(c).get("grade")
    )
    assert "from softgrad.checks import" in imports, (
        f"{name}: the checks are not imported in a locked cell"
    )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solutions_use_numpy_not_softgrad(name):
    cells = read(source_notebook(name)).cells
    solutions = [c for c in cells if c.cell_type == "code" and meta(c).get("solution")]
    assert solutions, f"{name}: no solution cells"
    for c in solutions:
        src = c.source
        for marker in ("### BEGIN SOLUTION", "### END SOLUTION"):
            assert marker in src, f"{name}: {meta(c)['grade_id']} lacks the {marker} delimiter"
        body = src.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
        assert not re.search(r"\bsoftgrad\b|\bsg\.", body), (
            f"{name}: the solution in {meta(c)['grade_id']} uses softgrad; write it with numpy"
        )
        assert not meta(c).get("grade"), (
            f"{name}: {meta(c)['grade_id']}: code answers are graded by tests"
        )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_has_a_hand_graded_derivation(name):
    cells = read(source_notebook(name)).cells
    written = [c for c in cells if is_written_answer(c)]
    assert written, f"{name}: no manually graded written answer (markdown, grade and solution true)"
    for c in written:
        assert "BEGIN SOLUTION" not in c.source, "the whole written cell is the model answer"
        assert len(c.source) > 300, (
            f"{name}: {meta(c)['grade_id']}: the model answer is too short to grade by"
        )
        assert "Marking" in c.source, f"{name}: {meta(c)['grade_id']}: say how the points are given"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_links_to_its_chapter(name):
    """The introduction links its chapter's notebook, ``../../../chapters/NN_x.ipynb``.

    That is where the chapter is in the course kit (a notebook at its page's path), and the book
    takes it as a link to the page; so the kit needs no rewriting of this locked cell.
    """
    intro = read(source_notebook(name)).cells[0].source
    links = re.findall(r"\]\(([^)]+)\)", intro)
    want = f"../../../chapters/{CHAPTERS[name].removesuffix('.md')}.ipynb"
    assert want in links, (
        f"{name}: the introduction must link to its chapter as {want}, found {links}"
    )
    # release/<a>/<a>.ipynb sits at the same depth as source/<a>/<a>.ipynb; a link names a page
    # (its MyST source, with the notebook's suffix)
    for link in links:
        path = link.split("#")[0]
        target = (SOURCE / name / path).resolve()
        assert path.endswith(".ipynb"), f"{name}: link {link} is not a page's notebook"
        assert target.with_suffix(".md").is_file(), f"{name}: link {link} names no page ({target})"


# --------------------------------------------------------------------------- executing notebooks


@pytest.mark.notebooks
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_source_solutions_pass_nbval(name):
    """``pytest --nbval-lax`` over the source notebook: every cell, hidden tests included, runs cleanly."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "-q",
            "--no-header",
            str(source_notebook(name).relative_to(ROOT)),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, (
        f"{name}: nbval-lax failed\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    )


_EXECUTE = """
import json, sys
import nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
rows = []
for cell in nb.cells:
    if cell.cell_type != "code":
        continue
    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
    rows.append({"grade_id": cell.metadata.get("nbgrader", {}).get("grade_id"),
                 "error": errors[0]["ename"] + ": " + errors[0]["evalue"][:3000] if errors else None})
print(json.dumps(rows))
"""


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The student versions, generated from a copy of the course as `make release` does."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(SOURCE, course / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    env_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": env_bin + os.pathsep + os.environ.get("PATH", "")}
    if importlib.util.find_spec("softgrad.grading") is not None:  # the real `make release` path
        commands = [[sys.executable, "-m", "softgrad.grading", "--course", str(course), "release"]]
    else:  # plain nbgrader, same course config
        commands = [
            [
                sys.executable,
                "-m",
                "nbgrader",
                "generate_assignment",
                name,
                "--force",
                f"--CourseDirectory.root={course}",
                f"--CourseDirectory.db_url=sqlite:///{course}/gradebook.db",
            ]
            for name in ASSIGNMENTS
        ]
    for cmd in commands:
        proc = subprocess.run(
            cmd, check=False, cwd=course, capture_output=True, text=True, timeout=TIMEOUT, env=env
        )
        assert proc.returncode == 0, (
            f"release failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return course / "release"


@pytest.mark.notebooks
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_released_notebook_hides_answers(released, name):
    path = released / name / f"{name}.ipynb"
    assert path.is_file(), f"release produced no {path}"
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for marker in (
        "### BEGIN SOLUTION",
        "### END SOLUTION",
        "### BEGIN HIDDEN TESTS",
        "### END HIDDEN TESTS",
    ):
        assert marker not in text, f"{name}: the released notebook still contains {marker!r}"
    src = read(source_notebook(name))
    public = {
        line.strip()
        for c in src.cells
        if not meta(c).get("solution")
        for line in _visible(c.source).splitlines()
    }
    secret = {line.strip() for c in src.cells for line in _secret_lines(c)} - public
    leaked = sorted(line for line in secret if len(line) > 25 and line in text)
    assert not leaked, (
        f"{name}: solution or hidden-test lines in the released notebook: {leaked[:5]}"
    )
    assert [meta(c).get("grade_id") for c in nb.cells] == [
        meta(c).get("grade_id") for c in src.cells
    ]
    for cell in nb.cells:
        if is_written_answer(cell):
            assert cell.source.strip() == "YOUR ANSWER HERE", f"{name}: a model answer was released"


@pytest.mark.notebooks
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_released_notebook_fails_every_test_cell(released, name):
    """Run the blank student version: each autograded test cell must error (the tests bite)."""
    path = released / name / f"{name}.ipynb"
    proc = subprocess.run(
        [sys.executable, "-c", _EXECUTE, str(path), str(path.parent)],
        check=False,
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, (
        f"{name}: could not execute the released notebook\n{proc.stderr[-4000:]}"
    )
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    by_id = {r["grade_id"]: r["error"] for r in rows}
    nb = nbformat.read(path, as_version=4)
    tests = [meta(c)["grade_id"] for c in nb.cells if is_test_cell(c)]
    assert tests, f"{name}: the released notebook has no autograded test cells"
    passing = [gid for gid in tests if by_id.get(gid) is None]
    assert not passing, (
        f"{name}: test cells that pass with blank answers (they prove nothing): {passing}"
    )
    # the failures come from the blank answers, not from a broken notebook
    assert by_id.get("imports", "missing") is None, (
        f"{name}: the imports cell fails: {by_id.get('imports')}"
    )


def test_release_is_generated_not_committed():
    """Student notebooks are made from the sources by `make release` on every build; a committed
    copy could go stale beside them (and would be what a clone hands out)."""
    tracked = subprocess.run(
        ["git", "ls-files", "exercises/release"],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert not tracked, (
        f"generated files are committed (remove them, `make release` makes them): {tracked}"
    )
    ignored = subprocess.run(
        [
            "git",
            "check-ignore",
            "-q",
            "exercises/release/ex01_stable_softmax/ex01_stable_softmax.ipynb",
        ],
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0, "exercises/release/ is not in .gitignore"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_hidden_tests_use_the_rules_of_a_visible_check(name):
    """One allow-list per check: a hidden test names the visible check whose rules it applies
    (``check_matches(..., check="check_softmax")``), never an allow= list of its own."""
    from softgrad.checks import ALLOWED

    tests = [c for c in read(source_notebook(name)).cells if is_test_cell(c)]
    visible = {n for c in tests for n in re.findall(r"\b(check_\w+)\(", _visible(c.source))}
    calls = 0
    for c in tests:
        gid = meta(c)["grade_id"]
        assert "allow=" not in c.source, f"{name}: {gid} has an allow= list of its own"
        for node in ast.walk(ast.parse(c.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "check_matches":
                calls += 1
                rules = [k.value.value for k in node.keywords if k.arg == "check"]
                assert rules, f"{name}: {gid}: check_matches without check= (line {node.lineno})"
                assert rules[0] in ALLOWED, f"{name}: {gid}: check={rules[0]!r} is not a check"
                assert rules[0] in visible, f"{name}: {gid}: {rules[0]} is not a visible test here"
    assert calls, f"{name}: no check_matches call found (did the parse miss them?)"
    assert visible - {"check_matches"} <= set(ALLOWED), sorted(visible - set(ALLOWED))


RETURNS = {  # answer cell -> words its lead-in must use to say what the function returns
    "softmax_impl": ("float64 array", "shape of `z`"),
    "log_softmax_impl": ("float64 array", "shape of `z`"),
    "jacobian_loops_impl": ("float array",),
    "softmax_vjp_impl": ("float array", "shape of `p`"),
    "cross_entropy_impl": ("one number",),
    "cross_entropy_grad_impl": ("float array", "`(N, n)`"),
    "numerical_gradient_impl": ("float array", "shape of `x`"),
    "gradient_error_impl": ("Python float",),
    "directional_error_impl": ("Python float",),
    "loss_and_grad_impl": ("the tuple `(loss, dW, db)`", "one number"),
    "train_impl": ("the tuple `(W, b, losses)`", "a list or a 1-D array"),
}


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_return_types_the_checks_require_are_stated(name):
    cells = read(source_notebook(name)).cells
    for i, cell in enumerate(cells):
        gid = meta(cell).get("grade_id")
        for words in RETURNS.get(gid, ()):
            assert words in cells[i - 1].source, (
                f"{name}: the lead-in of {gid} does not say {words!r}"
            )
